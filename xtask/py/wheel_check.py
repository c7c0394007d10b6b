"""The fmtool wheel as a user gets it: `cargo xtask wheel-check [--bench]`, after `cargo xtask wheel`.

In a fresh venv (no Rust anywhere on its PATH):
  - the README's "In Colab or Jupyter" lines, read from the README and run in order: `!pip install
    fmtool-fashion-mnist` installs the wheel from target/wheels (no index), `model.save(...)` runs with real Keras
    when .venv has it (on the committed MLP, model/classic/fashion_mnist.h5, loaded and saved again),
    and every `!fmtool ...` line runs from the venv's PATH and must succeed;
  - `fmtool --version` is Cargo.toml's version;
  - `fmtool score --model model/classic` prints the same report as the cargo build (the last line,
    the run time, left out);
  - the wheel is manylinux2014 (glibc 2.17) and at most 1.5x the size of the binary cargo built;
  - the student's pre-commit hook (hooks/pre-commit-wheel.yaml) with an empty pre-commit cache:
    installs the wheel, passes a good model, refuses a broken one.
With --bench, also times the Rust route's first commit (.pre-commit-hooks.yaml, `language: rust`:
a full `cargo install` in the release profile) and writes both times, the wheel's size and its
install time to BENCHMARKS.md.
"""

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from bench_student import ROOT, write

WHEELS = os.path.join(ROOT, "target", "wheels")
# The distribution's name ("fmtool" on PyPI is an unrelated package); the command is `fmtool`.
DIST = "fmtool-fashion-mnist"
BEGIN = "<!-- bench-wheel: begin -->"
END = "<!-- bench-wheel: end -->"


def fail(msg):
    sys.exit(f"wheel-check: {msg}")


def cargo_version():
    with open(os.path.join(ROOT, "Cargo.toml")) as f:
        return re.search(r'^version = "([^"]+)"', f.read(), re.M).group(1)


def readme_cells():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    section = text.split("## In Colab or Jupyter", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    if not block:
        fail("README's 'In Colab or Jupyter' section has no python block")
    return [line for line in block.group(1).splitlines() if line.strip()]


def run(cmd, env=None, cwd=None, check=True):
    out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if check and out.returncode != 0:
        fail(f"{cmd} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out


def venv(path):
    run([sys.executable, "-m", "venv", path])
    bin_dir = os.path.join(path, "bin")
    env = dict(os.environ)
    # A user's PATH without cargo: nothing may come from a Rust toolchain.
    env["PATH"] = bin_dir + os.pathsep + "/usr/local/bin:/usr/bin:/bin"
    env.pop("CARGO_TARGET_DIR", None)
    return bin_dir, env


def keras_python():
    py = os.path.join(ROOT, ".venv", "bin", "python")
    if os.path.exists(py) and run([py, "-c", "import keras"], check=False).returncode == 0:
        return py
    return None


def cargo_binary():
    built = os.path.join(ROOT, "target", "debug", "fmtool")
    if not os.path.exists(built):
        run(["cargo", "build", "--bin", "fmtool"], cwd=ROOT)
    return built


def without_time(report):
    return [line for line in report.splitlines() if not line.startswith("scored in")]


def notebook(bin_dir, env, work, measured):
    """The README's cells, in order, in `work`."""
    for line in readme_cells():
        if line.startswith("!pip install"):
            args = line[1:].split()[2:]
            t = time.perf_counter()
            run([os.path.join(bin_dir, "pip"), "install", "-q", "--no-index", "--find-links", WHEELS] + args, env=env)
            measured["install_seconds"] = time.perf_counter() - t
            print(f"  {line}: installed from {WHEELS} in {measured['install_seconds']:.2f} s")
        elif line.startswith("!"):
            out = run(["sh", "-c", line[1:]], env=env, cwd=work)
            print(f"  {line}: ok")
            measured.setdefault("outputs", {})[line] = out.stdout
        elif line.startswith("model.save("):
            target = re.match(r'model\.save\("([^"]+)"\)', line).group(1)
            source = os.path.join(ROOT, "model", "classic", "fashion_mnist.h5")
            py = keras_python()
            if py:
                code = (
                    # model/classic was written by Keras 3 (model/classic/README.md).
                    f"import keras\nmodel = keras.models.load_model({source!r})\n{line}\nprint(keras.__version__)\n"
                )
                out = run([py, "-c", code], cwd=work)
                print(f"  {line}: run with real Keras {out.stdout.strip().splitlines()[-1]}")
                measured["keras"] = True
            else:
                shutil.copy(source, os.path.join(work, target))
                print(f"  {line}: not run (no Keras in .venv); used {source}, which Keras wrote")
                measured["keras"] = False
        else:
            fail(f"a README cell this check does not know how to run: {line!r}")


def pre_commit_first_commit(bin_dir, env, config_text, extra_env):
    """A student's first commit with the hook in `config_text`: (seconds, passed, refused, output)."""
    pre_commit = os.path.join(ROOT, ".venv-test", "bin", "pre-commit")
    with tempfile.TemporaryDirectory() as repo, tempfile.TemporaryDirectory() as home:
        run(["git", "init", "-q"], cwd=repo)
        os.makedirs(os.path.join(repo, "model"))
        for f in ["fashion_mnist.json", "fashion_mnist.npz"]:
            shutil.copy(
                os.path.join(ROOT, "tests", "fixtures", "keras3", "mlp_flatten", f), os.path.join(repo, "model")
            )
        with open(os.path.join(repo, ".pre-commit-config.yaml"), "w") as f:
            f.write(config_text)
        e = dict(env, PRE_COMMIT_HOME=home, GIT_AUTHOR_NAME="s", GIT_AUTHOR_EMAIL="s@x", **extra_env)
        e["GIT_COMMITTER_NAME"], e["GIT_COMMITTER_EMAIL"] = "s", "s@x"
        run([pre_commit, "install"], cwd=repo, env=e)
        run(["git", "add", "-A"], cwd=repo, env=e)
        t = time.perf_counter()
        good = run(["git", "commit", "-q", "-m", "model"], cwd=repo, env=e, check=False)
        seconds = time.perf_counter() - t
        path = os.path.join(repo, "model", "fashion_mnist.json")
        with open(path) as f:
            arch = json.load(f)
        dense = next(x for x in arch if x["type"] == "Dense")
        dense["weights"][0] = "no_such_key"
        with open(path, "w") as f:
            json.dump(arch, f)
        run(["git", "add", "-A"], cwd=repo, env=e)
        bad = run(["git", "commit", "-q", "-m", "broken"], cwd=repo, env=e, check=False)
        return seconds, good, bad


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", action="store_true", help="also time the Rust route and write BENCHMARKS.md")
    args = ap.parse_args(argv)
    wheels = glob.glob(os.path.join(WHEELS, f"{DIST.replace('-', '_')}-*.whl"))
    if len(wheels) != 1:
        fail(f"expected one wheel in {WHEELS}, found {len(wheels)}: run `cargo xtask wheel` first")
    wheel = wheels[0]
    version = cargo_version()
    name = os.path.basename(wheel)
    print(f"wheel-check: {name}")
    if not name.startswith(f"{DIST.replace('-', '_')}-{version}-") or "manylinux_2_17_x86_64" not in name:
        fail(f"{name}: not {DIST} {version} for manylinux_2_17_x86_64")
    measured = {}
    binary = os.path.join(ROOT, "target", "x86_64-unknown-linux-gnu", "release", "fmtool")
    if not os.path.exists(binary):
        binary = os.path.join(ROOT, "target", "release", "fmtool")
    measured["wheel_bytes"] = os.path.getsize(wheel)
    measured["binary_bytes"] = os.path.getsize(binary)
    ratio = measured["wheel_bytes"] / measured["binary_bytes"]
    print(
        f"  size: wheel {measured['wheel_bytes'] / 1e6:.1f} MB, the release binary {measured['binary_bytes'] / 1e6:.1f} MB ({ratio:.2f}x)"
    )
    if ratio > 1.5:
        fail(f"the wheel is {ratio:.2f}x the release binary's size (at most 1.5x)")

    with tempfile.TemporaryDirectory() as tmp:
        bin_dir, env = venv(os.path.join(tmp, "venv"))
        work = os.path.join(tmp, "notebook")
        os.makedirs(work)
        notebook(bin_dir, env, work, measured)
        fmtool = shutil.which("fmtool", path=env["PATH"])
        if fmtool != os.path.join(bin_dir, "fmtool"):
            fail(f"fmtool on the venv's PATH is {fmtool}, not the wheel's")
        got = run([fmtool, "--version"], env=env).stdout.strip()
        if got != f"fmtool {version}":
            fail(f"fmtool --version says {got!r}, Cargo.toml {version}")
        print(f"  fmtool --version: {got}")
        wheel_report = run([fmtool, "score", "--model", "model/classic"], env=env, cwd=ROOT).stdout
        cargo_report = run([cargo_binary(), "score", "--model", "model/classic"], cwd=ROOT).stdout
        if without_time(wheel_report) != without_time(cargo_report):
            fail(f"the wheel's score report differs from the cargo build's:\n{wheel_report}\n---\n{cargo_report}")
        print("  fmtool score --model model/classic: the same report as the cargo build")
        # The notebook's model is model/classic's, converted: the same accuracy line.
        acc = [line for line in cargo_report.splitlines() if line.startswith("accuracy:")]
        nb = measured["outputs"]["!fmtool score --model model"]
        if not acc or acc[0] not in nb:
            fail(f"the notebook's score does not show {acc}:\n{nb}")

        with open(os.path.join(ROOT, "hooks", "pre-commit-wheel.yaml")) as f:
            config = f.read()
        if f'"{DIST}=={version}"' not in config:
            fail(f"hooks/pre-commit-wheel.yaml does not pin {DIST}=={version}")
        # The wheel from target/wheels (it is on no index); pre-commit's own build of its hook
        # package takes setuptools from PyPI, as on a student's machine.
        wheel_env = {"PIP_FIND_LINKS": WHEELS}
        seconds, good, bad = pre_commit_first_commit(bin_dir, env, config, wheel_env)
        if good.returncode != 0:
            fail(f"the wheel hook refused a good model:\n{good.stdout}\n{good.stderr}")
        if bad.returncode == 0 or "missing-weight" not in bad.stdout + bad.stderr:
            fail(f"the wheel hook let a broken model through:\n{bad.stdout}\n{bad.stderr}")
        measured["wheel_hook_seconds"] = seconds
        print(f"  pre-commit, wheel route: first commit {seconds:.1f} s; a broken model refused")

        if args.bench:
            rust_config = (
                f"repos:\n  - repo: {ROOT}\n    rev: {run(['git', 'rev-parse', 'HEAD'], cwd=ROOT).stdout.strip()}\n"
                "    hooks:\n      - id: fmtool-check\n"
            )
            cargo_env = dict(env)
            cargo_env["PATH"] = env["PATH"] + os.pathsep + os.path.expanduser("~/.cargo/bin")
            seconds, good, _ = pre_commit_first_commit(bin_dir, cargo_env, rust_config, {})
            if good.returncode != 0:
                fail(f"the Rust hook failed:\n{good.stdout}\n{good.stderr}")
            measured["rust_hook_seconds"] = seconds
            print(f"  pre-commit, Rust route: first commit {seconds:.1f} s")
            write_bench(measured, name)


def write_bench(m, name):
    import platform

    text = f"""{BEGIN}
## The wheel and a student's first commit (`cargo xtask wheel-check --bench`)

`{name}` (maturin, `bindings = "bin"`, linked by zig against glibc 2.17):
{m["wheel_bytes"] / 1e6:.1f} MB, against {m["binary_bytes"] / 1e6:.1f} MB for the release binary
({m["wheel_bytes"] / m["binary_bytes"]:.2f}x: the wheel's binary is stripped and compressed).
`pip install` of it into a fresh venv (no index): {m["install_seconds"]:.2f} s. Python
{platform.python_version()}, {os.cpu_count()} cores.

A student's first commit of a model with the pre-commit hook (pre-commit's cache empty, the hook's
environment made by that commit):

| route | first commit |
|---|---|
| wheel: `hooks/pre-commit-wheel.yaml` (`language: python`, the wheel from a local folder, setuptools from PyPI) | {m["wheel_hook_seconds"]:.1f} s |
| Rust: `.pre-commit-hooks.yaml` (`language: rust`, `cargo install` in the release profile, crates already downloaded) | {m["rust_hook_seconds"]:.1f} s |

{END}"""
    print(text)
    write(os.path.join(ROOT, "BENCHMARKS.md"), text, BEGIN, END)


if __name__ == "__main__":
    main()
