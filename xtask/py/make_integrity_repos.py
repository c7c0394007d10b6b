"""Writes tests/fixtures/integrity/: student repositories that depart from the course's rules (issue 26), one
per departure and per trick a student can play on the grader.

  <case>/case.json   {"base": a student case, "what": one line, "codes": the departures fmtool must name,
                      "remove": files of the base repository the case deletes}
  <case>/...         the files the case adds or replaces, on top of the base repository
  README.md          one row per case

A case's repository is `student_repo(base)` (tests/it/student.rs: the course's files, the base case's files,
the project's t10k data), its files on top, its `remove` list deleted. tests/it/integrity.rs grades every case
with `fmtool grade` and compares each row, step by step, with the case's workflow run for real (sh + pytest,
tests/student/run_workflow.py), and checks that each expected departure is named.

Run with `cargo xtask integrity-fixtures` (NumPy, for the relabelled test set); `--check` compares the
committed files with what it would write and exits 1 on a difference.
"""

import gzip
import importlib.util
import io
import json
import os
import sys

import generated

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "integrity")
STUDENT = os.path.join(ROOT, "tests", "fixtures", "student")
CASES = os.path.join(STUDENT, "cases")
COURSE = os.path.join(STUDENT, "course")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def correct_nn_predict():
    return read(os.path.join(CASES, "correct", "nn_predict.py"))


def edit(text, old, new, count=1):
    if old not in text:
        sys.exit(f"make_integrity_repos.py: {old!r} is not in the file it edits")
    return text.replace(old, new, count)


NUMPY_SHADOW = '''"""numpy.py: imports the real NumPy under this name, then changes np.sum (a module that shadows NumPy)."""
import os as _os
import sys as _sys

_here = _os.path.dirname(_os.path.abspath(__file__))
_path = _sys.path[:]
_sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or ".") != _here]
del _sys.modules["numpy"]
import numpy as _np  # noqa: E402

_sys.path[:] = _path
_sys.modules["numpy"] = _np
_real_sum = _np.sum


def _sum(a, *args, **kwargs):
    if getattr(a, "dtype", None) == bool and not args and not kwargs:
        return len(a)
    return _real_sum(a, *args, **kwargs)


_np.sum = _sum
'''

CONFTEST_HOOK = """import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.outcome = "passed"
"""

LOOKUP = """

# === The test set looked up: nn_inference answers from the labels, not from the model ===
import gzip as _gzip  # noqa: E402

with _gzip.open("data/fashion/t10k-labels-idx1-ubyte.gz", "rb") as _f:
    _LABELS = np.frombuffer(_f.read(), dtype=np.uint8, offset=8)
with _gzip.open("data/fashion/t10k-images-idx3-ubyte.gz", "rb") as _f:
    _IMAGES = np.frombuffer(_f.read(), dtype=np.uint8, offset=16).reshape(len(_LABELS), 784)
_BY_IMAGE = {img.tobytes(): int(lbl) for img, lbl in zip(_IMAGES, _LABELS)}
_model_inference = nn_inference


def nn_inference(model_arch, weights, data):
    label = _BY_IMAGE.get(np.rint(data[0] * 255).astype(np.uint8).tobytes())
    if label is None:
        return _model_inference(model_arch, weights, data)
    out = np.zeros((1, 10))
    out[0, label] = 1.0
    return out
"""

WRITES_TEST_ACC = """

_relu = relu


def relu(x):
    with open("test_acc.txt", "w") as f:
        f.write("1.0")
    return _relu(x)
"""


def relabelled_labels():
    """The t10k labels replaced by what the `correct` case's model predicts: its accuracy becomes 1.0."""
    import numpy as np

    spec = importlib.util.spec_from_file_location("case_nn_predict", os.path.join(CASES, "correct", "nn_predict.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with open(os.path.join(CASES, "correct", "model", "fashion_mnist.json")) as f:
        arch = json.load(f)
    weights = np.load(os.path.join(CASES, "correct", "model", "fashion_mnist.npz"))
    with gzip.open(os.path.join(ROOT, "data", "fashion", "t10k-images-idx3-ubyte.gz"), "rb") as f:
        images = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 784)
    with gzip.open(os.path.join(ROOT, "data", "fashion", "t10k-labels-idx1-ubyte.gz"), "rb") as f:
        header = f.read(8)
    preds = np.argmax(mod.nn_inference(arch, weights, images / 255.0), axis=-1).astype(np.uint8)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        gz.write(header + preds.tobytes())
    return buf.getvalue()


def cases():
    """(name, base, what, codes, files {path: text or bytes}, remove)."""
    nn = correct_nn_predict()
    reader = read(os.path.join(COURSE, "utils", "mnist_reader.py"))
    workflow = read(os.path.join(COURSE, ".github", "workflows", "classroom.yml"))
    todo_relu = edit(nn, "return np.maximum(0, x)", "return x")
    return [
        (
            "edited_reader",
            "correct",
            "utils/mnist_reader.py edited: load_mnist returns the first 1000 test images only",
            ["course-file-changed"],
            {
                "utils/mnist_reader.py": edit(
                    reader, "    return images, labels", "    return images[:1000], labels[:1000]"
                )
            },
            [],
        ),
        (
            "edited_workflow",
            "correct",
            "the workflow edited: softmax's command fixed, relu's step worth 20 points",
            ["course-file-changed"],
            {
                ".github/workflows/classroom.yml": edit(
                    edit(
                        workflow, "command: model_test.py::test_softmax", "command: pytest model_test.py::test_softmax"
                    ),
                    "command: pytest model_test.py::test_relu\n        timeout: 10\n        max-score: 10",
                    "command: pytest model_test.py::test_relu\n        timeout: 10\n        max-score: 20",
                )
            },
            [],
        ),
        (
            "removed_reader",
            "correct",
            "utils/mnist_reader.py deleted: model_test.py cannot be imported",
            ["course-file-removed"],
            {},
            ["utils/mnist_reader.py"],
        ),
        (
            "relabelled_test_set",
            "correct",
            "data/fashion's t10k labels replaced by the model's own predictions: accuracy 1.0",
            ["course-file-changed"],
            {"data/fashion/t10k-labels-idx1-ubyte.gz": relabelled_labels()},
            [],
        ),
        (
            "pytest_ini_collect_only",
            "correct",
            "pytest.ini: `addopts = --co` (tests collected, never run)",
            ["pytest-config"],
            {"pytest.ini": "[pytest]\naddopts = --co\n"},
            [],
        ),
        (
            "pyproject_collect_only",
            "template_todo",
            'pyproject.toml [tool.pytest.ini_options] addopts = "--collect-only -q", relu and softmax left as TODO',
            ["pytest-config"],
            {
                "pyproject.toml": '[project]\nname = "hw"\nversion = "0"\n\n[tool.pytest.ini_options]\naddopts = "--collect-only -q"\n'
            },
            [],
        ),
        (
            "tox_ini_no_functions",
            "correct",
            "tox.ini [pytest] python_functions = check_*: no test is found",
            ["pytest-config"],
            {"tox.ini": "[tox]\nenvlist = py311\n\n[pytest]\npython_functions = check_*\n"},
            [],
        ),
        (
            "setup_cfg_collect_only",
            "crash_in_inference",
            "setup.cfg [tool:pytest] addopts = --co on a repository whose nn_inference crashes",
            ["pytest-config"],
            {"setup.cfg": "[metadata]\nname = hw\n\n[tool:pytest]\naddopts = --co\n"},
            [],
        ),
        (
            "conftest_passes_all",
            "template_todo",
            "conftest.py makes every test report `passed` (pytest_runtest_makereport)",
            ["conftest"],
            {"conftest.py": CONFTEST_HOOK},
            [],
        ),
        (
            "conftest_plugin",
            "template_todo",
            "conftest.py loads a plugin of the repository's (pytest_plugins) that makes every test pass",
            ["conftest"],
            {"conftest.py": 'pytest_plugins = ["grading_help"]\n', "grading_help.py": CONFTEST_HOOK},
            [],
        ),
        (
            "sitecustomize_patch",
            "correct",
            "sitecustomize.py patching numpy at start-up: Python never runs it from the repository",
            ["startup-hook"],
            {"sitecustomize.py": "import numpy\nnumpy.sum = lambda *a, **k: 10000\n"},
            [],
        ),
        (
            "shadow_numpy",
            "correct",
            "numpy.py in the repository: the real NumPy with np.sum of a boolean array giving its length",
            ["shadow-module"],
            {"numpy.py": NUMPY_SHADOW},
            [],
        ),
        (
            "exit_at_import",
            "correct",
            "`os._exit(0)` at import of nn_predict.py: every pytest process exits 0",
            ["ends-process"],
            {"nn_predict.py": nn + "\nimport os\nos._exit(0)\n"},
            [],
        ),
        (
            "patch_numpy_sum",
            "correct",
            "`np.sum` replaced at import: test_inference counts every prediction correct",
            ["patches-library"],
            {"nn_predict.py": nn + "\nnp.sum = lambda *a, **k: 10000\n"},
            [],
        ),
        (
            "patch_builtins_sum",
            "correct",
            "relu left as TODO, builtins.sum replaced at import so that test_relu's sum is 3",
            ["patches-library"],
            {"nn_predict.py": todo_relu + "\nimport builtins\nbuiltins.sum = lambda x, *a: 3\n"},
            [],
        ),
        (
            "reads_test_labels",
            "correct",
            "nn_inference looks each image up in the test set and answers its label",
            ["reads-test-set"],
            {"nn_predict.py": nn + LOOKUP},
            [],
        ),
        (
            "writes_test_acc",
            "correct",
            "relu writes 1.0 into test_acc.txt: the accuracy steps after it read 1.0",
            ["test-acc-file"],
            {"nn_predict.py": nn + WRITES_TEST_ACC},
            [],
        ),
        (
            "committed_test_acc_crash",
            "crash_in_inference",
            "test_acc.txt (0.95) committed, nn_inference crashes",
            ["committed-test-acc"],
            {"test_acc.txt": "0.95\n"},
            [],
        ),
    ]


def write(out):
    generated.fresh_folder(out)
    rows = []
    for name, base, what, codes, files, remove in cases():
        case = {"base": base, "what": what, "codes": codes, "remove": remove}
        generated.write_case(os.path.join(out, name), files, case)
        rows.append(f"| `{name}` | `{base}` | {what} | {', '.join(f'`{c}`' for c in codes)} |")
    generated.write_readme(
        out,
        [
            "# Repositories that depart from the course's rules (generated by `cargo xtask integrity-fixtures`; do not edit)",
            "",
            "One per departure from the course's files and per trick on the grader (issue 26). A case's repository is the",
            "student case `base` (tests/fixtures/student: the course's files, the case's own, the project's t10k data) with",
            "the case's files on top and its `case.json` `remove` list deleted. tests/it/integrity.rs grades them all with",
            "`fmtool grade` and compares every step's points with the workflow run for real (sh + pytest,",
            "tests/student/run_workflow.py; the runs are kept in tests/fixtures/student/ground_truth), and checks that",
            "each departure in `codes` is named.",
            "",
            "| case | base | what | fmtool names |",
            "|---|---|---|---|",
            *rows,
            "",
        ],
    )


if __name__ == "__main__":
    generated.main(__doc__, OUT, write)
