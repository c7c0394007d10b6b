"""Runs a student repo's GitHub Classroom workflow for real, as the autograding command-grader does, and
prints the points as one JSON object: the ground truth that `fmtool score` on a repo is compared with.

    python tests/student/run_workflow.py REPO

Every `.github/workflows/*.yml` (and *.yaml) is read with yaml.safe_load; each step that uses
classroom-resources/autograding-command-grader runs, in file and step order, in REPO itself (so a file one
step writes is there for the next; pass a temporary copy): its `setup-command`, then its `command`, each
through `/bin/sh -c` with only PATH (this Python's bin folder first, then /usr/bin:/bin) and HOME in the
environment, each under the step's `timeout` (minutes, default 10; the whole process group is killed on
timeout). Exit 0 of both gives `max-score`; anything else (not found, non-zero exit, timeout) gives 0.

`pip install` / `pip3 install` parts of a setup command are never run (no network here, and they would
change this Python's environment): the step's `notes` say which of the packages this Python can import and
which it cannot (the grader would install those).

Output: {"steps": [{"name", "test_name", "command", "max", "points", "passed", "exit_code", "timed_out",
"seconds", "notes", "output"}], "total", "max", "accuracy"}, where `output` is the end of what the step
printed and `accuracy` is the number in REPO/test_acc.txt after the last step (null when there is none).
Needs PyYAML. Exit status 0 when the workflow ran (whatever its points), 2 when it cannot be read.
"""

import glob
import importlib.util
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import yaml

GRADER = "classroom-resources/autograding-command-grader"
PIP = re.compile(r"^\s*(?:sudo\s+)?(?:pip3?|python3?\s+-m\s+pip)\s+install\b(.*)$")
OUTPUT_TAIL = 4000


def fail(msg):
    print(f"run_workflow.py: {msg}", file=sys.stderr)
    sys.exit(2)


def grader_steps(repo):
    """(workflow file, job, step) for every command-grader step, in order."""
    files = sorted(glob.glob(os.path.join(repo, ".github", "workflows", "*.yml")))
    files += sorted(glob.glob(os.path.join(repo, ".github", "workflows", "*.yaml")))
    if not files:
        fail(f"no workflow in {os.path.join(repo, '.github', 'workflows')}")
    out = []
    for path in files:
        try:
            with open(path) as f:
                doc = yaml.safe_load(f)
        except (OSError, yaml.YAMLError) as e:
            fail(f"{path}: {e}")
        jobs = doc.get("jobs") if isinstance(doc, dict) else None
        for job in (jobs or {}).values():
            for step in (job or {}).get("steps") or []:
                if isinstance(step, dict) and str(step.get("uses", "")).startswith(GRADER):
                    out.append(step)
    return out


def importable(package):
    """Whether this Python imports `package` (a pip requirement such as `pandas>=2` or `scikit-learn`)."""
    name = re.split(r"[<>=!~\[;@ ]", package, maxsplit=1)[0].strip()
    module = {"scikit-learn": "sklearn", "pillow": "PIL", "pyyaml": "yaml", "opencv-python": "cv2"}.get(
        name.lower(), name.replace("-", "_")
    )
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def strip_pip(setup):
    """The setup command without its pip install parts, and notes on what those parts would install."""
    keep, notes = [], []
    for line in setup.splitlines():
        parts = []
        for part in line.split("&&"):
            m = PIP.match(part)
            if not m:
                parts.append(part.strip())
                continue
            try:
                args = shlex.split(m.group(1))
            except ValueError:
                args = m.group(1).split()
            pkgs = [a for a in args if not a.startswith("-")]
            have = [p for p in pkgs if importable(p)]
            missing = [p for p in pkgs if p not in have]
            note = f"skipped `{part.strip()}`"
            if have:
                note += f"; importable already: {', '.join(have)}"
            if missing:
                note += f"; NOT importable here (the grader would install them): {', '.join(missing)}"
            notes.append(note)
        parts = [p for p in parts if p]
        if parts:
            keep.append(" && ".join(parts))
    return "\n".join(keep), notes


def run_sh(command, repo, env, timeout_s):
    """(exit code or None on timeout, timed out, output)."""
    p = subprocess.Popen(
        ["/bin/sh", "-c", command],
        cwd=repo,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = p.communicate(timeout=timeout_s)
        return p.returncode, False, out.decode(errors="replace")
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        return None, True, out.decode(errors="replace")


def number(v, default):
    try:
        return float(v) if v not in (None, "") else default
    except (TypeError, ValueError):
        return default


def main():
    if len(sys.argv) != 2:
        fail("usage: run_workflow.py REPO")
    repo = os.path.abspath(sys.argv[1])
    env = {
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), "/usr/bin", "/bin"]),
        "HOME": os.environ.get("HOME", "/tmp"),
    }
    steps = []
    for step in grader_steps(repo):
        w = step.get("with") or {}
        name = str(step.get("name", ""))
        test_name = str(w.get("test-name", name))
        command = str(w.get("command", "") or "")
        max_score = number(w.get("max-score"), 0.0)
        max_score = int(max_score) if max_score.is_integer() else max_score
        timeout_s = number(w.get("timeout"), 10.0) * 60.0
        setup, notes = strip_pip(str(w.get("setup-command", "") or ""))
        for n in notes:
            print(f"{test_name}: {n}", file=sys.stderr)
        start = time.monotonic()
        output = ""
        code, timed_out = 0, False
        if setup.strip():
            code, timed_out, output = run_sh(setup, repo, env, timeout_s)
        if code == 0 and not timed_out:
            code, timed_out, out = run_sh(command, repo, env, timeout_s)
            output += out
        passed = code == 0 and not timed_out
        steps.append(
            {
                "name": name,
                "test_name": test_name,
                "command": command,
                "max": max_score,
                "points": max_score if passed else 0,
                "passed": passed,
                "exit_code": code,
                "timed_out": timed_out,
                "seconds": round(time.monotonic() - start, 3),
                "notes": notes,
                "output": output[-OUTPUT_TAIL:],
            }
        )
    accuracy = None
    try:
        with open(os.path.join(repo, "test_acc.txt")) as f:
            accuracy = float(f.readline().strip())
    except (OSError, ValueError):
        pass
    print(
        json.dumps(
            {
                "steps": steps,
                "total": sum(s["points"] for s in steps),
                "max": sum(s["max"] for s in steps),
                "accuracy": accuracy,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
