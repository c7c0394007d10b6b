"""The speed benchmark: `cargo xtask bench [--quick] [--out BENCHMARKS.md] [--models DIR...]`.

In one run on one machine, for each model: whole-process `fmtool score` (median of several runs)
and its engine time (the forward pass, from the report's timings), ONNX Runtime on the model's
ONNX graph (xtask/py/onnx_graph.py; outputs checked against fmtool's to 1e-5; a warm pass after
each fmtool run, in a process that lives through them), a batched float32
NumPy forward pass (im2col + matmul), the course's per-image loop (float64, one (1, 784) image at a
time), and Keras' own `predict` (warm call, and a cold process). Each of them runs in a process of
its own, started through `cargo xtask measure`, so that every row has its own peak memory. Also
measures the machine's float32 matmul speed (NumPy's, ONNX Runtime's and fmtool's own; the fastest
is taken as the peak) to state how close fmtool gets to the arithmetic limit. Writes BENCHMARKS.md and the `fmtool
score` line of each shipped model's card.
Speed is measured only here, never in tests.
"""

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "data", "fashion")
TRAIN = os.environ.get("FASHION_MNIST", "/usr/share/datasets/fashion-mnist")
CACHE = os.path.join(ROOT, "target", "bench-models")


def fmtool_binary():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "fmtool"], cwd=ROOT, check=True)
    path = os.path.join(target, "release", "fmtool")
    if not os.path.exists(path):
        sys.exit(f"bench: {path} was not built")
    return path


# ---- models ---------------------------------------------------------------------------------------


def bench_models(fmtool):
    """The benchmark models (the smallest MLP, a larger MLP and a small CNN), trained for one epoch on
    5,000 images, cached."""
    import keras

    L = keras.layers
    specs = {
        # The smallest MLP a student hands in (784-128-10): its whole-process time is fmtool's fixed cost.
        "bench-mlp-128": lambda: keras.Sequential(
            [
                keras.Input((28, 28)),
                L.Flatten(),
                L.Dense(128, activation="relu"),
                L.Dense(10, activation="softmax"),
            ]
        ),
        "bench-mlp": lambda: keras.Sequential(
            [
                keras.Input((28, 28)),
                L.Flatten(),
                L.Dense(256, activation="relu"),
                L.Dense(128, activation="relu"),
                L.Dense(10, activation="softmax"),
            ]
        ),
        "bench-cnn": lambda: keras.Sequential(
            [
                keras.Input((28, 28, 1)),
                L.Conv2D(16, 3, padding="same"),
                L.BatchNormalization(),
                L.ReLU(),
                L.MaxPooling2D(2),
                L.Conv2D(32, 3, padding="valid"),
                L.BatchNormalization(),
                L.ReLU(),
                L.MaxPooling2D(2),
                L.Flatten(),
                L.Dense(10, activation="softmax"),
            ]
        ),
    }
    out = []
    for name, build in specs.items():
        d = os.path.join(CACHE, name)
        h5 = os.path.join(d, "fashion_mnist.h5")
        if not os.path.exists(os.path.join(d, "fashion_mnist.npz")):
            os.makedirs(d, exist_ok=True)
            keras.utils.set_random_seed(1)
            m = build()
            x = load_idx(f"{TRAIN}/train-images-idx3-ubyte.gz")[:5000].astype(np.float32) / 255.0
            y = load_idx(f"{TRAIN}/train-labels-idx1-ubyte.gz")[:5000]
            x = x.reshape((-1,) + tuple(m.input_shape[1:]))
            m.compile("adam", "sparse_categorical_crossentropy")
            m.fit(x, y, epochs=1, batch_size=128, verbose=0)
            m.save(h5)
            subprocess.run([fmtool, "convert", h5, "--out", d, "--force"], check=True, capture_output=True)
        out.append((name, d))
    return out


# ---- NumPy forward pass: the one the cross-check test uses ----------------------------------------

sys.path.insert(0, os.path.join(ROOT, "tests", "numpy"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from course import load_export, load_idx  # noqa: E402
from numpy_forward import input_shape, numpy_forward  # noqa: E402


def flops(arch, w, shape):
    """2 x multiply-adds of Conv2D and Dense layers, from a shape trace of one image."""
    total = [0]

    def count(e, _inp, out):
        if e["type"] == "Conv2D":
            total[0] += 2 * w[e["weights"][0]].size * out.shape[1] * out.shape[2]
        elif e["type"] == "Dense":
            total[0] += 2 * w[e["weights"][0]].size

    numpy_forward(arch, w, np.zeros((1,) + tuple(shape), np.float32), shape, count)
    return total[0]


def timed(fn, repeat):
    times = []
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times), out


def measure_argv(report, cmd):
    """`cmd` run through `cargo xtask measure`, which writes its wall time and peak RSS to `report`."""
    xtask = os.environ.get("FMTOOL_XTASK")
    if not xtask:
        sys.exit("bench: run me as `cargo xtask bench` (FMTOOL_XTASK is not set)")
    return [xtask, "measure", "--report", report, "--", *cmd]


def measure_report(report):
    """(wall seconds, peak RSS in MiB) from a report of `cargo xtask measure`."""
    with open(report) as f:
        m = json.load(f)
    return m["wall_s"], m["max_rss_kib"] / 1024


def worker_argv(kind, d):
    """This script as the worker `kind` on the model in `d`."""
    return [sys.executable, os.path.abspath(__file__), "--worker", kind, d]


def measured(cmd, env=None):
    """Runs `cmd` through `cargo xtask measure`: (wall seconds, peak RSS in MiB, stdout)."""
    with tempfile.NamedTemporaryFile("r", suffix=".json") as rep:
        p = subprocess.run(
            measure_argv(rep.name, cmd), capture_output=True, cwd=ROOT, env={**os.environ, **(env or {})}
        )
        if p.returncode != 0:
            sys.exit(f"bench: {cmd} failed: {p.stderr.decode()[-2000:]}")
        return (*measure_report(rep.name), p.stdout)


def worker_result(kind, d, env=None):
    """Runs one worker of this script in its own measured process; its JSON plus wall and RSS."""
    # The course loop multiplies one (1, 784) row at a time, which a second BLAS thread cannot
    # speed up; with two, its time varied fivefold between runs (model/classic: 7 s and 38 s).
    env = {**(env or {}), "OPENBLAS_NUM_THREADS": "1"} if kind == "loop" else env
    wall, rss, out = measured(worker_argv(kind, d), env)
    r = json.loads(out.decode().strip().splitlines()[-1])
    r.update(wall=wall, rss=rss)
    return r


# ---- workers: each runs in a process of its own ----------------------------------------------------


def test_set():
    images = load_idx(f"{DATA}/t10k-images-idx3-ubyte.gz").reshape(-1, 784)
    labels = load_idx(f"{DATA}/t10k-labels-idx1-ubyte.gz")
    return images, labels


def worker(kind, d, repeat):
    images, labels = test_set()
    if kind == "ort":
        return ort_server(d, images, labels)
    if kind in ("numpy", "loop"):
        arch, w = load_export(d)
        shape = input_shape(arch, w)
        if kind == "numpy":
            x32 = images.astype(np.float32) / 255.0

            # Batches of 1,000 images: all 10,000 at once would need a 4.5 GB im2col matrix.
            def batched():
                return np.concatenate(
                    [numpy_forward(arch, w, x32[i : i + 1000], shape) for i in range(0, len(x32), 1000)]
                )

            secs, _, out = timed(batched, repeat)
            pred = np.argmax(out, axis=1)
        else:
            x64 = images.astype(np.float64) / 255.0

            def course_loop():
                return np.array([np.argmax(numpy_forward(arch, w, x64[i : i + 1], shape)) for i in range(len(x64))])

            secs, _, pred = timed(course_loop, 1)
        return {"seconds": secs, "accuracy": float(np.mean(pred == labels))}
    import keras

    m = keras.models.load_model(os.path.join(d, "fashion_mnist.h5"), compile=False)
    xk = (images.astype(np.float32) / 255.0).reshape((-1,) + tuple(m.input_shape[1:]))
    if kind == "keras-cold":
        # The whole process (import, load, one predict) is what the parent measures.
        pred = np.argmax(m.predict(xk, batch_size=256, verbose=0), axis=1)
        return {"seconds": None, "accuracy": float(np.mean(pred == labels))}
    m.predict(xk[:512], batch_size=256, verbose=0)
    secs, _, out = timed(lambda: m.predict(xk, batch_size=256, verbose=0), repeat)
    return {"seconds": secs, "accuracy": float(np.mean(np.argmax(out, axis=1) == labels))}


def ort_session(model):
    """An ONNX Runtime session on both cores, all graph optimisations on."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = os.cpu_count()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def ort_server(d, images, labels):
    """ONNX Runtime on the model's ONNX graph: all images in batches of 1,000, two passes for each
    "run" line on stdin, the second's time printed as a JSON line, so that the parent can alternate
    them with fmtool's processes (see `ort_beside_fmtool`). The first pass after the session is
    made (cold) is timed on its own. At the end of stdin, the last pass's outputs are compared
    with fmtool's (`fmtool predict`, in $BENCH_REFERENCE)."""
    from onnx_graph import onnx_model

    arch, w = load_export(d)
    session = ort_session(onnx_model(arch, w, input_shape(arch, w)))
    x = images.astype(np.float32) / 255.0

    def run():
        return np.concatenate([session.run(None, {"images": x[i : i + 1000]})[0] for i in range(0, len(x), 1000)])

    first, _, out = timed(run, 1)
    times = []
    print(json.dumps({"first": first}), flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        # Two passes back to back, the second timed: warm as a server that runs all the time is,
        # after the fmtool process that ran in between.
        timed(run, 1)
        secs, _, out = timed(run, 1)
        times.append(secs)
        # ONNX Runtime's threads spin a while after a pass; the next fmtool process must not meet them.
        time.sleep(0.2)
        print(json.dumps({"seconds": secs}), flush=True)
    diff = float(np.max(np.abs(out - np.load(os.environ["BENCH_REFERENCE"]))))
    acc = float(np.mean(np.argmax(out, axis=1) == labels))
    return {"seconds": statistics.median(times), "best": min(times), "first": first, "accuracy": acc, "max_diff": diff}


def ort_beside_fmtool(d, cmd, repeat, ref):
    """`repeat` runs of fmtool's `cmd` (each through `measured`), each followed by a warm
    ONNX Runtime pass in a server process (`ort_server`) that lives through all of them: the two
    are measured side by side, so a slow spell of the machine falls on both rather than on
    whichever ran during it (one bench run had bench-cnn's ONNX Runtime median at 0.208 s and the
    next at 0.132 s). Returns fmtool's runs and the ONNX Runtime row (its time the median of the
    `repeat` passes, with wall and peak memory of its process)."""
    with tempfile.NamedTemporaryFile("r", suffix=".json") as rep:
        server = subprocess.Popen(
            measure_argv(rep.name, worker_argv("ort", d)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, "BENCH_REFERENCE": ref},
            text=True,
        )

        def answer():
            line = server.stdout.readline()
            if not line:
                server.wait()
                sys.exit(f"bench: {d}: the ONNX Runtime worker stopped (exit {server.returncode})")
            return json.loads(line)

        answer()  # the session is made and its cold pass done
        runs = []
        for _ in range(repeat):
            runs.append(measured(cmd))
            server.stdin.write("run\n")
            server.stdin.flush()
            answer()
        out, _ = server.communicate("")
        if server.returncode != 0:
            sys.exit(f"bench: {d}: the ONNX Runtime worker failed (exit {server.returncode})")
        row = json.loads(out.strip().splitlines()[-1])
        row["wall"], row["rss"] = measure_report(rep.name)
    return runs, row


def fmtool_peak(fmtool):
    """fmtool's own float32 product on this machine, GFLOP/s: the engine time of `fmtool score` on a
    wide MLP (784-2048-2048-10, random weights written by NumPy) whose time is nearly all matrix
    product; best of 5."""
    from course import write_export

    d = os.path.join(CACHE, "peak-mlp")
    if not os.path.exists(os.path.join(d, "fashion_mnist.npz")):
        rng = np.random.default_rng(0)
        sizes = [784, 2048, 2048, 10]
        arch, arrays = [], {}
        for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
            name = f"dense_{i}"
            act = "softmax" if b == 10 else "relu"
            arch.append(
                {
                    "name": name,
                    "type": "Dense",
                    "config": {"units": b, "activation": act},
                    "weights": [f"{name}_0", f"{name}_1"],
                }
            )
            arrays[f"{name}_0"] = (rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32)
            arrays[f"{name}_1"] = np.zeros(b, np.float32)
        write_export(d, arch, arrays)
    arch, w = load_export(d)
    fl = flops(arch, w, input_shape(arch, w)) * 10000
    engine = []
    for _ in range(5):
        p = subprocess.run([fmtool, "score", "--model", d, "--format", "json"], capture_output=True, check=True)
        engine.append(json.loads(p.stdout)["timings"]["engine"])
    return fl / min(engine) / 1e9


def ort_peak():
    """ONNX Runtime's float32 matmul speed on this machine (2048^3, both cores, best of 5), GFLOP/s."""
    from onnx_graph import matmul_model

    n = 2048
    session = ort_session(matmul_model(n))
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    session.run(None, {"a": a, "b": a})
    best = min(timed(lambda: session.run(None, {"a": a, "b": a}), 5)[:2])
    return 2 * n**3 / best / 1e9


# ---- main -----------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"))
    ap.add_argument("--models", nargs="*", default=None)
    ap.add_argument("--no-cards", action="store_true", help="leave the model cards' fmtool score lines alone")
    ap.add_argument("--worker", nargs=2, metavar=("KIND", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    repeat = 3 if args.quick else 7
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], 3)))
        return

    fmtool = fmtool_binary()
    models = bench_models(fmtool)
    extra = (
        args.models
        if args.models is not None
        else [
            p
            for p in ("model", "model/ensemble", "model/classic")
            if os.path.exists(os.path.join(ROOT, p, "fashion_mnist.npz"))
        ]
    )
    models += [(p.rstrip("/"), os.path.join(ROOT, p)) for p in extra]

    a = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)
    best = min(timed(lambda: a @ a, 5)[:2])
    peaks = {"NumPy": 2 * 2048**3 / best / 1e9, "ONNX Runtime": ort_peak(), "fmtool": fmtool_peak(fmtool)}

    rows = []
    for name, d in models:
        arch, w = load_export(d)
        fl = flops(arch, w, input_shape(arch, w))

        cmd = [fmtool, "score", "--model", d, "--format", "json"]
        measured(cmd)  # warm-up (page cache)
        with tempfile.TemporaryDirectory() as tmp:
            ref = os.path.join(tmp, "fmtool.npy")
            subprocess.run([fmtool, "predict", "--model", d, "--out", ref], check=True, capture_output=True)
            runs, ort_row = ort_beside_fmtool(d, cmd, repeat, ref)
        walls = [r[0] for r in runs]
        reports = [json.loads(r[2]) for r in runs]
        report = reports[-1]
        if ort_row["max_diff"] > 1e-5:
            sys.exit(
                f"bench: {name}: ONNX Runtime's outputs differ from fmtool's by {ort_row['max_diff']:.2e} (> 1e-5)"
            )
        row = dict(
            name=name,
            dir=d,
            flops=fl,
            fmtool=statistics.median(walls),
            engine=statistics.median(r["timings"]["engine"] for r in reports),
            ort=ort_row,
            runs=len(walls),
            rss=max(r[1] for r in runs),
            acc=report["accuracy"],
            points=report["points"],
            np=worker_result("numpy", d),
            loop=worker_result("loop", d),
            keras_warm=None,
            keras_cold=None,
        )
        if os.path.exists(os.path.join(d, "fashion_mnist.h5")):
            row["keras_warm"] = worker_result("keras-warm", d)
            row["keras_cold"] = worker_result("keras-cold", d)
        rows.append(row)
        print(
            f"{name}: fmtool {row['fmtool']:.3f} s ({row['rss']:.0f} MiB), engine {row['engine']:.4f} s, "
            f"ONNX Runtime {ort_row['seconds']:.4f} s (first {ort_row['first']:.4f} s), numpy {row['np']['seconds']:.3f} s, "
            f"loop {row['loop']['seconds']:.2f} s, keras warm {fmt(row['keras_warm'] and row['keras_warm']['seconds'])}, "
            f"cold {fmt(row['keras_cold'] and row['keras_cold']['wall'])}",
            flush=True,
        )

    # The sections measured by their own xtasks (bench-student, bench-check) are kept.
    kept = []
    if os.path.exists(args.out):
        old = open(args.out).read()
        for m in re.finditer(r"<!-- (bench-[a-z]+): begin -->.*?<!-- \1: end -->", old, re.S):
            kept.append(m.group(0))
    write(args.out, rows, peaks)
    if kept:
        with open(args.out, "a") as f:
            f.write("\n" + "\n\n".join(kept) + "\n")
    if not args.no_cards:
        for r in rows:
            update_card(r)


def fmt(v, unit="s"):
    return "n/a" if v is None else f"{v:.3f} {unit}"


def mib(r):
    return "n/a" if r is None else f"{r['rss']:.0f} MiB"


def update_card(r):
    """Writes the measured `fmtool score` line into the model's card (README.md beside the model)."""
    card = os.path.join(r["dir"], "README.md")
    if not os.path.exists(card):
        return
    line = (
        f"- fmtool score: accuracy {r['acc']:.4f}, {r['points']}/100 points (relu and softmax not run: no nn_predict.py), "
        f"{r['fmtool']:.3f} s whole process "
        f"(median of {r['runs']}), peak memory {r['rss']:.0f} MiB (cargo xtask bench, {datetime.date.today()}; "
        "see BENCHMARKS.md)"
    )
    with open(card) as f:
        text = f.read()
    new, n = re.subn(r"^- fmtool score:.*$", line, text, count=1, flags=re.M)
    if n:
        with open(card, "w") as f:
            f.write(new)


def write(path, rows, peaks):
    peak = max(peaks.values())
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor(),
    )
    mem = next((line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal")), "?")
    load = open("/proc/loadavg").read().split()[0]
    tf_version = subprocess.run(
        [sys.executable, "-c", "import tensorflow as tf, keras; print(tf.__version__, keras.__version__)"],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    ).stdout.split()
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    lines = [
        "# Benchmarks",
        "",
        f"Measured by `cargo xtask bench` on {datetime.date.today()}, all rows in one run on one machine",
        f"(load average {load} when it finished): {cpu}, {os.cpu_count()} cores, {int(mem) // 1024} MiB memory,",
        f"{platform.platform()}; {rustc}, Python {platform.python_version()}, NumPy {np.__version__},",
        f"TensorFlow {tf_version[0] if tf_version else '?'}, Keras {tf_version[1] if len(tf_version) > 1 else '?'}.",
        "Float32 matmul speed of this machine on both cores, best of 5 (NumPy and ONNX Runtime: 2048x2048 @ "
        "2048x2048; fmtool: the engine time of a 784-2048-2048-10 MLP on the 10,000 images): "
        + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items())
        + f"; the arithmetic limit below takes the fastest, {peak:.0f} GFLOP/s.",
        "",
        "Times are for all 10,000 test images. `fmtool score` is the whole process (start, load, run,",
        "report), median of several runs; fmtool engine is the forward pass inside those runs (its",
        "`timings.engine`, median; one cold pass per process). ONNX Runtime is `InferenceSession.run` on",
        "the model's ONNX graph (xtask/py/onnx_graph.py, built from the course JSON + npz; its outputs",
        "within 1e-5 of fmtool's), batches of 1,000, both cores, median of warm passes (the first, cold",
        "pass in parentheses): after each fmtool run, two passes back to back, the second timed, so that",
        "both see the machine in the same state.",
        "NumPy batched is a float32 im2col + matmul pass (tests/numpy/",
        "numpy_forward.py) in batches of 1,000 images, timed inside its process (median of 3; NumPy's BLAS",
        "uses every core); the course loop is the template's float64 pass, one (1, 784) image at a time",
        "(one BLAS thread), extended to the layers of the model; Keras warm is `model.predict` (batch",
        "256) after a warm-up call (median of 3); Keras cold is the whole process that imports Keras, loads",
        "the .h5 and predicts once. The arithmetic limit is the model's FLOPs at the matmul peak.",
        "",
        "| model | MFLOP/image | fmtool score | fmtool engine | ONNX Runtime | NumPy batched | course loop | Keras warm | Keras cold | arithmetic limit |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        limit = r["flops"] * 10000 / (peak * 1e9)
        kw, kc, o = r["keras_warm"], r["keras_cold"], r["ort"]
        lines.append(
            f"| {r['name']} | {r['flops'] / 1e6:.2f} | {r['fmtool']:.3f} s | {r['engine']:.4f} s | "
            f"{o['seconds']:.4f} s ({o['first']:.4f} s) | {r['np']['seconds']:.3f} s | "
            f"{r['loop']['seconds']:.2f} s | {fmt(kw and kw['seconds'])} | {fmt(kc and kc['wall'])} | {limit:.4f} s |"
        )
    lines += [
        "",
        "Peak memory (maximum resident set of each process, from wait4 in `cargo xtask measure`; the NumPy,",
        "course-loop and Keras processes include the Python interpreter and their libraries):",
        "",
        "| model | fmtool score | ONNX Runtime | NumPy batched | course loop | Keras warm | Keras cold |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['rss']:.0f} MiB | {mib(r['ort'])} | {mib(r['np'])} | {mib(r['loop'])} | {mib(r['keras_warm'])} | "
            f"{mib(r['keras_cold'])} |"
        )
    lines += [
        "",
        "fmtool's engine against ONNX Runtime and the arithmetic limit, speed-ups of `fmtool score`, accuracies:",
        "",
    ]
    for r in rows:
        limit = r["flops"] * 10000 / (peak * 1e9)
        kw = (
            f"{r['keras_warm']['seconds'] / r['fmtool']:.1f}x Keras warm predict"
            if r["keras_warm"]
            else "no .h5 for Keras"
        )
        keras_acc = f"{r['keras_warm']['accuracy']:.4f}" if r["keras_warm"] else "n/a"
        o = r["ort"]
        lines.append(
            f"- {r['name']}: engine {r['engine']:.4f} s against ONNX Runtime's {o['seconds']:.4f} s "
            f"({o['seconds'] / r['engine']:.2f}x; outputs within {o['max_diff']:.1e}), "
            f"{r['engine'] / limit:.1f}x the arithmetic limit; whole process "
            f"{r['np']['seconds'] / r['fmtool']:.1f}x the batched NumPy pass, "
            f"{r['loop']['seconds'] / r['fmtool']:.0f}x the course loop, {kw}. Accuracy: fmtool {r['acc']:.4f} ({r['points']} points), "
            f"ONNX Runtime {o['accuracy']:.4f}, NumPy {r['np']['accuracy']:.4f}, course loop {r['loop']['accuracy']:.4f}, Keras {keras_acc}."
        )
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
