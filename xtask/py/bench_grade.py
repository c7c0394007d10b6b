"""A class graded: `cargo xtask bench-grade [--repos N] [--baseline FMTOOL] [--rounds K] [--out BENCHMARKS.md]`.

Assembles N student repositories from tests/fixtures/student's MLP cases (the course's files, each
case's nn_predict.py and model, the t10k data; each one's nn_predict.py ends with its own comment,
so no two are the same submission), then times, on the same machine:
  - every repository's workflow run for real, one repository after another, as GitHub Classroom
    runs each (tests/student/run_workflow.py: each command-grader step through sh + pytest);
  - `fmtool grade` over the same class (no cache), with --jobs 1 and with its default (one
    repository per core);
  - the cost of the course's rules checked by running: `--audit 0` (fmtool's harness only), the
    default (a random tenth of the repositories also run as GitHub runs them) and `--exact` (all);
    no honest repository may get a departure from the course's rules;
  - the cost of the sandbox: the default `fmtool grade` (each repository in bubblewrap), the same
    with `--no-isolation`, and, with `--baseline FMTOOL`, another fmtool binary (the release before
    the sandbox), run in turns for K rounds so that a slow spell of the machine falls on each; the
    medians are compared.
Checks that all of them give every repository the same points, and writes the section between the
markers in BENCHMARKS.md.
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
    ap.add_argument("--baseline", help="an fmtool binary to compare with (the release before the sandbox)")
    ap.add_argument("--rounds", type=int, default=3)
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

        # The real runs' cost: none, the audit sample, every repository.
        audits = []
        for label, extra in [
            ("`--audit 0`: fmtool's harness only", ["--audit", "0"]),
            ("default `--audit 0.1`: a random tenth also run as GitHub runs them", []),
            ("`--exact`: every repository also run as GitHub runs it", ["--exact"]),
        ]:
            t = time.perf_counter()
            out = subprocess.run(
                [fmtool, "grade", os.path.join(tmp, "class"), "--python", PYTHON, "--format", "json", *extra],
                capture_output=True,
                text=True,
                check=True,
            )
            spent = time.perf_counter() - t
            rows = json.loads(out.stdout)["repos"]
            departing = [os.path.basename(r["repo"]) for r in rows if r["integrity"]]
            if departing:
                sys.exit(f"honest repositories with a departure from the course's rules: {departing}")
            fm_points = {os.path.basename(r["repo"]): r["points"] for r in rows}
            differ = [n for n in names if fm_points.get(n) != serial_points[n]]
            if differ:
                sys.exit(f"fmtool grade {extra} and the workflows disagree on {differ}")
            audits.append((label, spent, sum(1 for r in rows if r["real_run"])))

        # The sandbox's cost: the variants in turns, K rounds, default --jobs.
        variants = [("sandbox", [fmtool], []), ("no-isolation", [fmtool], ["--no-isolation"])]
        if args.baseline:
            variants.append(("baseline", [args.baseline], []))
        runs = {v[0]: [] for v in variants}
        for _ in range(args.rounds):
            for label, cmd, extra in variants:
                t = time.perf_counter()
                out = subprocess.run(
                    [*cmd, "grade", os.path.join(tmp, "class"), "--python", PYTHON, "--format", "json", *extra],
                    capture_output=True,
                    text=True,
                )
                runs[label].append(time.perf_counter() - t)
                rows = json.loads(out.stdout)["repos"]
                fm_points = {os.path.basename(r["repo"]): r["points"] for r in rows}
                differ = [n for n in names if fm_points.get(n) != serial_points[n]]
                if differ:
                    sys.exit(f"fmtool grade ({label}) and the workflows disagree on {differ}")
        medians = {k: sorted(v)[len(v) // 2] for k, v in runs.items()}

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

The course's rules checked by running (issue 26): no repository of the class departs from them (none
has an integrity finding, so none is "changes the grade"); the workflows run as GitHub runs them only
for the audit sample, or for all with `--exact`, each run giving every repository the same points.

| variant | time | run as GitHub runs them |
|---|---|---|
{chr(10).join(f"| {label} | {spent:.1f} s | {n} of {args.repos} |" for label, spent, n in audits)}

The sandbox's cost: each variant run {args.rounds} times in turns (default `--jobs`), every run giving every
repository the same points as the workflows; medians, with every run's time.

| variant | median | runs |
|---|---|---|
{sandbox_rows(runs, medians)}

{END}"""
    print(text)
    write(args.out, text, BEGIN, END)


def sandbox_rows(runs, medians):
    what = {
        "sandbox": "`fmtool grade`: each repository in its bubblewrap sandbox",
        "no-isolation": "`fmtool grade --no-isolation`: the same server, no sandbox",
        "baseline": "the release before the sandbox (`--baseline`)",
    }
    base = medians.get("baseline")
    rows = []
    for k, v in runs.items():
        vs = f" ({medians[k] / base:.2f}x the baseline)" if base and k != "baseline" else ""
        rows.append(f"| {what[k]} | {medians[k]:.1f} s{vs} | {', '.join(f'{t:.1f}' for t in v)} |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
