"""A class graded: `cargo xtask bench-grade [--repos N] [--out BENCHMARKS.md]`.

Assembles N student repositories from tests/fixtures/student's MLP cases (the course's files, each
case's nn_predict.py and model, the t10k data; each one's nn_predict.py ends with its own comment,
so no two are the same submission), then times, on the same machine:
  - every repository's workflow run for real, one repository after another, as GitHub Classroom
    runs each (tests/student/run_workflow.py: each command-grader step through sh + pytest);
  - `fmtool grade` over the same class (no cache), with --jobs 1 and with its default (one
    repository per core).
Checks that both give every repository the same points, and writes the section between the markers
in BENCHMARKS.md.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

from bench_student import ROOT, assemble, fmtool_binary, write

BEGIN = "<!-- bench-grade: begin -->"
END = "<!-- bench-grade: end -->"
CASES = ["correct", "softmax_axis1", "template_todo", "relu_np_max", "softmax_exp_only", "tensorflow_import"]
PYTHON = os.path.join(ROOT, ".venv-test", "bin", "python")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--repos", type=int, default=30)
    ap.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"))
    args = ap.parse_args(argv)
    fmtool = fmtool_binary()
    if not os.path.exists(PYTHON):
        sys.exit("bench-grade runs the workflows with .venv-test's Python: run `cargo xtask test` once first")
    with tempfile.TemporaryDirectory() as tmp:
        names = []
        for i in range(args.repos):
            name = f"student{i:02d}-{CASES[i % len(CASES)]}"
            repo = os.path.join(tmp, "class", name)
            assemble(CASES[i % len(CASES)], repo)
            with open(os.path.join(repo, "nn_predict.py"), "a") as f:
                f.write(f"\n# {name}\n")
            names.append(name)

        # The workflows, one repository after another (each in its own copy: the steps write into it).
        serial_points = {}
        t = time.perf_counter()
        for name in names:
            copy = os.path.join(tmp, "runs", name)
            shutil.copytree(os.path.join(tmp, "class", name), copy)
            out = subprocess.run(
                [PYTHON, os.path.join(ROOT, "tests", "student", "run_workflow.py"), copy],
                capture_output=True,
                text=True,
                check=True,
            )
            serial_points[name] = json.loads(out.stdout)["total"]
        serial = time.perf_counter() - t

        # fmtool grade: repositories one at a time (each one's images on every core), then in
        # parallel (the default: one repository per core, the cores shared).
        times = {}
        for jobs in ["1", str(os.cpu_count())]:
            t = time.perf_counter()
            out = subprocess.run(
                [fmtool, "grade", os.path.join(tmp, "class"), "--python", PYTHON, "--jobs", jobs, "--format", "json"],
                capture_output=True,
                text=True,
                check=True,
            )
            times[jobs] = time.perf_counter() - t
            rows = json.loads(out.stdout)["repos"]
            fm_points = {os.path.basename(r["repo"]): r["points"] for r in rows}
            differ = [n for n in names if fm_points.get(n) != serial_points[n]]
            if differ:
                sys.exit(f"fmtool grade --jobs {jobs} and the workflows disagree on {differ}")
        one, graded = times["1"], times[str(os.cpu_count())]

    import numpy

    text = f"""{BEGIN}
## A class graded (`cargo xtask bench-grade`)

{args.repos} student repositories assembled from tests/fixtures/student's MLP cases
({", ".join(CASES)}), each repository's own workflow (the course's `classroom.yml`) run for real
step by step, one repository after another, against `fmtool grade` over the same class (no cache);
Python {platform.python_version()}, NumPy {numpy.__version__}, {os.cpu_count()} cores, load average
{os.getloadavg()[0]:.2f} when it finished. Both gave every repository the same points (total
{sum(serial_points.values())} over the class).

| what | time |
|---|---|
| every workflow, one repository after another (sh + pytest per step) | {serial:.1f} s |
| `fmtool grade --jobs 1`: one repository at a time, its images on every core | {one:.1f} s ({serial / one:.2f}x sooner) |
| `fmtool grade` (default `--jobs {os.cpu_count()}`: the same points, plus the credit sheet, the engine's accuracy and `check`) | {graded:.1f} s ({serial / graded:.2f}x sooner) |

{END}"""
    print(text)
    write(args.out, text, BEGIN, END)


if __name__ == "__main__":
    main()
