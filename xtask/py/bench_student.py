"""The student's own pass: `cargo xtask bench-student [--repeat N] [--out BENCHMARKS.md]`.

Assembles the `correct` student repository of tests/fixtures/student (the course's files, a correct
nn_predict.py, a Dense(64) MLP, the t10k data), then times, one after the other on the same machine:
  - the grader's step as the workflow runs it: `python -m pytest model_test.py::test_inference`
    (one process, one image at a time), whole process;
  - `fmtool score` in the same repository, which runs the same test_inference with one worker
    process per core (the student's pass alone, and the whole command with every workflow step).
Checks that both compute the same accuracy, and writes the section between the markers in
BENCHMARKS.md (bench.py calls this too, so a full bench keeps it). Speed is measured only here.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, "tests", "fixtures", "student")
BEGIN = "<!-- bench-student: begin -->"
END = "<!-- bench-student: end -->"


def assemble(case, dest):
    shutil.copytree(os.path.join(FIX, "course"), dest, dirs_exist_ok=True)
    for extra in ("nn_predict_template.py", "classroom_fixed.yml"):
        for dirpath, _dirs, files in os.walk(dest):
            if extra in files:
                os.remove(os.path.join(dirpath, extra))
    shutil.copytree(os.path.join(FIX, "cases", case), dest, dirs_exist_ok=True)
    os.remove(os.path.join(dest, "case.json"))
    os.makedirs(os.path.join(dest, "data", "fashion"), exist_ok=True)
    for f in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(os.path.join(ROOT, "data", "fashion", f), os.path.join(dest, "data", "fashion", f))


def fmtool_binary():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "fmtool"], cwd=ROOT, check=True)
    return os.path.join(target, "release", "fmtool")


def run(case, repeat, fmtool):
    serial, fm_pass, fm_whole = [], [], []
    acc_serial = acc_fmtool = None
    with tempfile.TemporaryDirectory() as tmp:
        repo = os.path.join(tmp, "repo")
        assemble(case, repo)
        env = {"PATH": os.path.dirname(sys.executable) + ":/usr/bin:/bin", "HOME": tmp}
        for _ in range(repeat):
            t = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "model_test.py::test_inference"],
                cwd=repo,
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            serial.append(time.perf_counter() - t)
            with open(os.path.join(repo, "test_acc.txt")) as f:
                acc_serial = float(f.read())
            os.remove(os.path.join(repo, "test_acc.txt"))
            t = time.perf_counter()
            out = subprocess.run(
                [fmtool, "score", "--format", "json", "--python", sys.executable],
                cwd=repo,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            fm_whole.append(time.perf_counter() - t)
            grade = json.loads(out)["grade"]
            fm_pass.append(grade["inference"]["seconds"])
            acc_fmtool = grade["student_accuracy"]
            workers = grade["inference"]["workers"]
    if acc_serial != acc_fmtool:
        sys.exit(f"bench-student: accuracies differ: pytest {acc_serial}, fmtool {acc_fmtool}")
    return {
        "case": case,
        "serial": statistics.median(serial),
        "pass": statistics.median(fm_pass),
        "whole": statistics.median(fm_whole),
        "accuracy": acc_serial,
        "workers": workers,
        "repeat": repeat,
    }


def section(r):
    import numpy

    load = os.getloadavg()[0]
    return f"""{BEGIN}
## The student's own pass (`cargo xtask bench-student`)

The `correct` student repository of tests/fixtures/student (Flatten, Dense(64, relu), Dense(10,
softmax); the student's own nn_predict.py and the course's model_test.py), medians of {r["repeat"]}
alternating runs, Python {platform.python_version()}, NumPy {numpy.__version__}, {os.cpu_count()} cores,
load average {load:.2f} when it finished:

| what | time | accuracy |
|---|---|---|
| the grader's step: `pytest model_test.py::test_inference`, one process | {r["serial"]:.2f} s | {r["accuracy"]:.4f} |
| fmtool: the same test_inference in {r["workers"]} worker processes | {r["pass"]:.2f} s ({r["serial"] / r["pass"]:.2f}x sooner) | {r["accuracy"]:.4f} |
| fmtool score, whole command: the engine's pass, every workflow step, the credit sheet, the comparison | {r["whole"]:.2f} s | |

{END}"""


def write(path, text, begin=BEGIN, end=END):
    """Puts `text` (which starts with `begin` and ends with `end`) in place of that section of
    `path`, or at its end; the benches' shared way to keep BENCHMARKS.md's sections."""
    old = open(path).read() if os.path.exists(path) else ""
    if begin in old and end in old:
        new = old[: old.index(begin)] + text + old[old.index(end) + len(end) :]
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    with open(path, "w") as f:
        f.write(new)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--case", default="correct")
    ap.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"))
    args = ap.parse_args(argv)
    r = run(args.case, args.repeat, fmtool_binary())
    text = section(r)
    print(text)
    write(args.out, text)


if __name__ == "__main__":
    main()
