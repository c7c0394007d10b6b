"""`fmtool check` on crafted large models and in student repositories: `cargo xtask bench-check [--repeat N]
[--out BENCHMARKS.md]`.

Two inputs from issue 11, written with NumPy: a model of 20,000 Dense(1) layers with every weight
present, and a model of 3,000 Dense layers whose weights are all missing while the npz holds 3,000
unrelated keys (the key-suggestion worst case). Then `fmtool check` run in student repositories as the
pre-commit hook runs it (issue 27): the course's loader (judged from the files), an extended loader reading
Keras' model.to_json() and an `import tensorflow` the tests never reach (both run the student's code on the
tests' path, with this Python). Times the whole `fmtool check` process (release build, median of N) and writes
the section between the markers in BENCHMARKS.md.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from bench_student import write as write_section

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BEGIN = "<!-- bench-check: begin -->"
END = "<!-- bench-check: end -->"


def many_layers(d, n):
    arch = [{"name": "flatten", "type": "Flatten", "config": {"batch_input_shape": [None, 784]}, "weights": []}]
    arrays = {}
    width = 784
    for i in range(n):
        units = 10 if i == n - 1 else 1
        name = f"dense_{i}"
        arch.append(
            {
                "name": name,
                "type": "Dense",
                "config": {"units": units, "activation": "relu"},
                "weights": [f"{name}_0", f"{name}_1"],
            }
        )
        arrays[f"{name}_0"] = np.zeros((width, units), np.float32)
        arrays[f"{name}_1"] = np.zeros((units,), np.float32)
        width = units
    write(d, arch, arrays)


def missing_weights(d, n):
    arch = [
        {"name": f"dense_{i}", "type": "Dense", "config": {"units": 10}, "weights": [f"dense_{i}_0", f"dense_{i}_1"]}
        for i in range(n)
    ]
    arrays = {f"unrelated_key_{i}": np.zeros((1,), np.float32) for i in range(n)}
    write(d, arch, arrays)


def write(d, arch, arrays):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "fashion_mnist.json"), "w") as f:
        json.dump(arch, f)
    np.savez(os.path.join(d, "fashion_mnist.npz"), **arrays)


def timed(fmtool, d, repeat, args=(), cwd=None):
    walls = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run([fmtool, "check", *args, d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd)
        walls.append(time.perf_counter() - t)
    return statistics.median(walls)


def student_repo(d, case, overlay=None):
    """A student repository as tests/it/student.rs builds it: the course's files, a student case, the t10k data, and
    an overlay case of tests/fixtures/loaders on top."""
    fixtures = os.path.join(ROOT, "tests", "fixtures")
    skip = shutil.ignore_patterns("nn_predict_template.py", "classroom_fixed.yml", "case.json")
    shutil.copytree(os.path.join(fixtures, "student", "course"), d, ignore=skip)
    shutil.copytree(os.path.join(fixtures, "student", "cases", case), d, ignore=skip, dirs_exist_ok=True)
    if overlay:
        shutil.copytree(os.path.join(fixtures, "loaders", overlay), d, ignore=skip, dirs_exist_ok=True)
    os.makedirs(os.path.join(d, "data", "fashion"))
    for f in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(os.path.join(ROOT, "data", "fashion", f), os.path.join(d, "data", "fashion", f))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"))
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "fmtool"], cwd=ROOT, check=True)
    fmtool = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "fmtool")
    with tempfile.TemporaryDirectory() as tmp:
        a, b = os.path.join(tmp, "layers"), os.path.join(tmp, "missing")
        many_layers(a, 20_000)
        missing_weights(b, 3_000)
        ta, tb = timed(fmtool, a, args.repeat), timed(fmtool, b, args.repeat)
        repos = [
            ("the course's loader, relu and softmax written (`correct`): judged from the files", "correct", None),
            (
                "an extended loader reading Keras 3's model.to_json(): its code run on 8 images",
                "correct",
                "to_json_keras3_own_loader",
            ),
            (
                "`import tensorflow` in a branch the tests never take: its code run on 8 images",
                "correct",
                "tf_import_untaken_branch",
            ),
        ]
        rows = []
        for what, case, overlay in repos:
            d = os.path.join(tmp, overlay or case)
            student_repo(d, case, overlay)
            # As the hook runs it: in the repository, with the model's files named.
            rows.append((what, timed(fmtool, "model/fashion_mnist.json", args.repeat, ["--python", sys.executable], d)))
    text = f"""{BEGIN}
## `fmtool check` on crafted large models (`cargo xtask bench-check`)

Whole process, release build, median of {args.repeat}, load average {os.getloadavg()[0]:.2f} when it finished:

| input | `fmtool check` |
|---|---|
| 20,000 Dense layers, every weight present (40,000 npz members) | {ta:.2f} s |
| 3,000 Dense layers, every weight missing, 3,000 unrelated npz keys | {tb:.2f} s |

In a student repository, as the pre-commit hook runs it (`fmtool check model/fashion_mnist.json` in the
repository; the student's code runs in the bubblewrap sandbox, Python {sys.version.split()[0]}, NumPy {np.__version__}):

| repository | `fmtool check` |
|---|---|
{chr(10).join(f"| {what} | {t:.2f} s |" for what, t in rows)}

{END}"""
    print(text)
    write_section(args.out, text, BEGIN, END)


if __name__ == "__main__":
    main()
