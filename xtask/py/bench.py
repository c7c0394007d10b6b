"""The speed benchmark: `cargo xtask bench [--quick] [--out BENCHMARKS.md] [--models DIR...]`.

In one run on one machine, for each model: whole-process `fmtool score` (median of several runs,
peak memory), a batched float32 NumPy forward pass (im2col + matmul), the course's per-image loop
(float64, one (1, 784) image at a time), and Keras' own `predict` (warm call in-process, and a cold
process). Also measures the machine's float32 matmul peak to state how close fmtool gets to the
arithmetic limit. Writes BENCHMARKS.md. Speed is measured only here, never in tests.
"""

import argparse
import datetime
import gzip
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "data", "fashion")
TRAIN = os.environ.get("FASHION_MNIST", "/usr/share/datasets/fashion-mnist")
CACHE = os.path.join(ROOT, "target", "bench-models")


def load_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def fmtool_binary():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "fmtool"], cwd=ROOT, check=True)
    path = os.path.join(target, "release", "fmtool")
    if not os.path.exists(path):
        sys.exit(f"bench: {path} was not built")
    return path


# ---- models ---------------------------------------------------------------------------------------


def bench_models(fmtool):
    """The issue's two benchmark models, trained for one epoch on 5,000 images, cached."""
    import keras

    L = keras.layers
    specs = {
        "bench-mlp": lambda: keras.Sequential(
            [keras.Input((28, 28)), L.Flatten(), L.Dense(256, activation="relu"), L.Dense(128, activation="relu"),
             L.Dense(10, activation="softmax")]
        ),
        "bench-cnn": lambda: keras.Sequential(
            [keras.Input((28, 28, 1)), L.Conv2D(16, 3, padding="same"), L.BatchNormalization(), L.ReLU(),
             L.MaxPooling2D(2), L.Conv2D(32, 3, padding="valid"), L.BatchNormalization(), L.ReLU(),
             L.MaxPooling2D(2), L.Flatten(), L.Dense(10, activation="softmax")]
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


# ---- NumPy forward passes -------------------------------------------------------------------------


def conv2d(x, k, b, stride, padding):
    """im2col + one matmul; x (N, H, W, C), k (kh, kw, C, F)."""
    kh, kw, c, f = k.shape
    n, h, w, _ = x.shape
    if padding == "same":
        oh, ow = -(-h // stride), -(-w // stride)
        ph = max((oh - 1) * stride + kh - h, 0)
        pw = max((ow - 1) * stride + kw - w, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]
    # win: (N, OH, OW, C, kh, kw) -> rows of (kh, kw, C)
    cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(-1, kh * kw * c)
    y = cols @ k.reshape(-1, f)
    if b is not None:
        y += b
    return y.reshape(n, win.shape[1], win.shape[2], f)


def maxpool(x, p, s):
    win = np.lib.stride_tricks.sliding_window_view(x, (p, p), axis=(1, 2))[:, ::s, ::s]
    return win.max(axis=(-1, -2))


def activation(x, name):
    if name == "relu":
        return np.maximum(x, 0)
    if name == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if name in (None, "linear"):
        return x
    raise NotImplementedError(name)


def numpy_forward(arch, w, x, input_shape):
    """A batched float32 pass over the layer types the benchmark models use."""
    x = x.reshape((x.shape[0],) + tuple(input_shape))
    for e in arch:
        t, cfg, names = e["type"], e["config"], e["weights"]
        ws = [w[n] for n in names]
        if t in ("InputLayer", "Dropout"):
            continue
        if t == "Flatten":
            x = x.reshape(x.shape[0], -1)
        elif t == "Reshape":
            x = x.reshape((x.shape[0],) + tuple(cfg["target_shape"]))
        elif t == "Dense":
            x = activation(x @ ws[0] + (ws[1] if len(ws) > 1 else 0), cfg.get("activation"))
        elif t == "Conv2D":
            s = cfg["strides"][0] if isinstance(cfg["strides"], list) else cfg["strides"]
            x = activation(conv2d(x, ws[0], ws[1] if len(ws) > 1 else None, s, cfg["padding"]), cfg.get("activation"))
        elif t == "BatchNormalization":
            i = 0
            g = ws[i] if cfg.get("scale", True) else 1.0
            i += cfg.get("scale", True)
            b = ws[i] if cfg.get("center", True) else 0.0
            i += cfg.get("center", True)
            inv = g / np.sqrt(ws[i + 1] + cfg["epsilon"])
            x = x * inv + (b - ws[i] * inv)
        elif t == "ReLU":
            x = np.maximum(x, 0)
        elif t == "Activation":
            x = activation(x, cfg["activation"])
        elif t == "MaxPooling2D":
            p = cfg["pool_size"][0] if isinstance(cfg["pool_size"], list) else cfg["pool_size"]
            s = cfg.get("strides") or p
            s = s[0] if isinstance(s, list) else s
            x = maxpool(x, p, s)
        else:
            raise NotImplementedError(f"bench NumPy pass: {t}")
    return x


def input_shape(arch, w):
    for e in arch:
        cfg = e["config"]
        for k in ("batch_shape", "batch_input_shape"):
            if cfg.get(k):
                return cfg[k][1:]
    first = arch[0]
    if first["type"] == "Conv2D":
        return (28, 28, w[first["weights"][0]].shape[2])
    return (784,)


def flops(arch, w, shape):
    """2 x multiply-adds of Conv2D and Dense layers, from a shape trace."""
    total = 0
    x = np.zeros((1,) + tuple(shape), np.float32)
    for e in arch:
        if e["type"] == "Conv2D":
            k = w[e["weights"][0]]
            y = numpy_forward([e], w, x, x.shape[1:])
            total += 2 * k.size * y.shape[1] * y.shape[2]
            x = y
        elif e["type"] == "Dense":
            total += 2 * w[e["weights"][0]].size
            x = numpy_forward([e], w, x, x.shape[1:])
        else:
            x = numpy_forward([e], w, x, x.shape[1:])
    return total


def timed(fn, repeat):
    times = []
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times), out


def run_process(cmd):
    """Wall time and peak RSS (MiB) of one child process."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    out = p.stdout.read()
    if status != 0:
        sys.exit(f"bench: {cmd} failed: {p.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024, out


# ---- main -----------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"))
    ap.add_argument("--models", nargs="*", default=None)
    args = ap.parse_args()
    repeat = 3 if args.quick else 7

    fmtool = fmtool_binary()
    models = bench_models(fmtool)
    extra = args.models if args.models is not None else [p for p in ("model", "model/classic") if os.path.exists(os.path.join(ROOT, p, "fashion_mnist.npz"))]
    models += [(p.rstrip("/"), os.path.join(ROOT, p)) for p in extra]

    images = load_idx(f"{DATA}/t10k-images-idx3-ubyte.gz").reshape(-1, 784)
    labels = load_idx(f"{DATA}/t10k-labels-idx1-ubyte.gz")
    x32 = images.astype(np.float32) / 255.0
    x64 = images.astype(np.float64) / 255.0

    a = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)
    best = min(timed(lambda: a @ a, 5)[:2])
    peak = 2 * 2048**3 / best / 1e9

    import keras

    rows = []
    for name, d in models:
        with open(os.path.join(d, "fashion_mnist.json")) as f:
            arch = json.load(f)
        with np.load(os.path.join(d, "fashion_mnist.npz")) as z:
            w = {k: z[k] for k in z.files}
        shape = input_shape(arch, w)
        fl = flops(arch, w, shape)

        run_process([fmtool, "score", "--model", d, "--format", "json"])  # warm-up (page cache)
        walls, rss = [], 0
        for _ in range(repeat):
            wall, mem, out = run_process([fmtool, "score", "--model", d, "--format", "json"])
            walls.append(wall)
            rss = max(rss, mem)
        report = json.loads(out)
        fm = statistics.median(walls)

        np_med, _, np_out = timed(lambda: numpy_forward(arch, w, x32, shape), 3)
        np_acc = float(np.mean(np.argmax(np_out, axis=1) == labels))

        def course_loop():
            return np.array([np.argmax(numpy_forward(arch, w, x64[i : i + 1], shape)) for i in range(len(x64))])

        loop_s, _, loop_pred = timed(course_loop, 1)

        h5 = os.path.join(d, "fashion_mnist.h5")
        kw_s = kc_s = None
        keras_acc = None
        if os.path.exists(h5):
            m = keras.models.load_model(h5, compile=False)
            xk = x32.reshape((-1,) + tuple(m.input_shape[1:]))
            m.predict(xk[:512], batch_size=256, verbose=0)
            kw_s, _, kout = timed(lambda: m.predict(xk, batch_size=256, verbose=0), 3)
            keras_acc = float(np.mean(np.argmax(kout, axis=1) == labels))
            code = (
                "import os; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'; os.environ['CUDA_VISIBLE_DEVICES']='-1';"
                "import gzip, numpy as np, keras;"
                f"d=gzip.open('{DATA}/t10k-images-idx3-ubyte.gz').read();"
                "x=np.frombuffer(d,np.uint8,offset=16).reshape(-1,784).astype(np.float32)/255;"
                f"m=keras.models.load_model('{h5}', compile=False);"
                "m.predict(x.reshape((-1,)+tuple(m.input_shape[1:])), batch_size=256, verbose=0)"
            )
            kc_s = run_process([sys.executable, "-c", code])[0]
        rows.append(
            dict(
                name=name, flops=fl, fmtool=fm, fmtool_min=min(walls), rss=rss, acc=report["accuracy"], np=np_med,
                np_acc=np_acc, loop=loop_s, loop_acc=float(np.mean(loop_pred == labels)), keras_warm=kw_s,
                keras_cold=kc_s, keras_acc=keras_acc,
            )
        )
        print(f"{name}: fmtool {fm:.3f}s  numpy {np_med:.3f}s  loop {loop_s:.2f}s  keras warm {kw_s}  cold {kc_s}", flush=True)

    write(args.out, rows, peak, fmtool)


def fmt(v, unit="s"):
    return "n/a" if v is None else f"{v:.3f} {unit}"


def write(path, rows, peak, fmtool):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    mem = next((l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")), "?")
    import tensorflow as tf

    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    lines = [
        "# Benchmarks",
        "",
        f"Measured by `cargo xtask bench` on {datetime.date.today()}, all rows in one run on one machine:",
        f"{cpu}, {os.cpu_count()} cores, {int(mem) // 1024} MiB memory, {platform.platform()};",
        f"{rustc}, NumPy {np.__version__}, TensorFlow {tf.__version__}.",
        f"Float32 matmul peak of this machine (NumPy 2048x2048 @ 2048x2048, best of 5): {peak:.0f} GFLOP/s.",
        "",
        "Times are for all 10,000 test images. `fmtool score` is the whole process (start, load, run, report),",
        "median of several runs; peak RSS from wait4. NumPy batched is an in-process float32 im2col + matmul",
        "pass over all images at once; the course loop is the template's float64 pass, one (1, 784) image at a",
        "time; Keras warm is `model.predict` (batch 256) after a warm-up call; Keras cold is a whole Python",
        "process that imports Keras, loads the .h5 and predicts.",
        "",
        "| model | MFLOP/image | fmtool score | peak RSS | NumPy batched | course loop | Keras warm | Keras cold | arithmetic limit |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        limit = r["flops"] * 10000 / (peak * 1e9)
        lines.append(
            f"| {r['name']} | {r['flops'] / 1e6:.2f} | {r['fmtool']:.3f} s | {r['rss']:.0f} MiB | {r['np']:.3f} s | "
            f"{r['loop']:.2f} s | {fmt(r['keras_warm'])} | {fmt(r['keras_cold'])} | {limit:.3f} s |"
        )
    lines += ["", "Speed-ups of `fmtool score` (whole process) and accuracies:", ""]
    for r in rows:
        limit = r["flops"] * 10000 / (peak * 1e9)
        kw = f"{r['keras_warm'] / r['fmtool']:.1f}x Keras warm predict" if r["keras_warm"] else "no .h5 for Keras"
        lines.append(
            f"- {r['name']}: {r['np'] / r['fmtool']:.1f}x the batched NumPy pass, {r['loop'] / r['fmtool']:.0f}x the course loop, "
            f"{kw}; {r['fmtool'] / limit:.1f}x the arithmetic limit. Accuracy: fmtool {r['acc']:.4f}, NumPy {r['np_acc']:.4f}, "
            f"course loop {r['loop_acc']:.4f}, Keras {fmt(r['keras_acc'], '')}."
        )
    cnn = next((r for r in rows if r["name"] == "bench-cnn"), None)
    mlp = next((r for r in rows if r["name"] == "bench-mlp"), None)
    lines += ["", "Targets of the issue:", ""]
    if cnn:
        limit = cnn["flops"] * 10000 / (peak * 1e9)
        lines.append(f"- CNN: >= 5x the batched NumPy pass: {'PASS' if cnn['np'] / cnn['fmtool'] >= 5 else 'FAIL'} ({cnn['np'] / cnn['fmtool']:.1f}x)")
        if cnn["keras_warm"]:
            lines.append(f"- CNN: faster than Keras' warm predict: {'PASS' if cnn['fmtool'] < cnn['keras_warm'] else 'FAIL'}")
        lines.append(f"- CNN: within 3x of the arithmetic limit: {'PASS' if cnn['fmtool'] <= 3 * limit else 'FAIL'} ({cnn['fmtool'] / limit:.1f}x; the whole process, including start-up and loading, against pure arithmetic)")
    if mlp:
        lines.append(f"- MLP: >= 40x the course loop: {'PASS' if mlp['loop'] / mlp['fmtool'] >= 40 else 'FAIL'} ({mlp['loop'] / mlp['fmtool']:.0f}x)")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
