"""Writes tests/fixtures/student/: student repositories of the course's assignment, as fixtures for
grading a repo the way its GitHub Classroom workflow does (issue 10).

  course/                       the course's files as distributed: model_test.py, utils/mnist_reader.py,
                                nn_predict_template.py (the TODO template), .github/workflows/classroom.yml
                                (GitHub Classroom's generated workflow, with its two defects) and
                                classroom_fixed.yml (softmax run by pytest, ">= 90" running test_acc_90)
  cases/<case>/                 only what differs from the course: nn_predict.py, model/fashion_mnist.{json,npz},
                                case.json (a one-line description) and optional overrides (model_test.py,
                                .github/workflows/classroom.yml)
  README.md                     the cases with their measured accuracies and the points their workflow awards

A repo is course/ (without nn_predict_template.py and classroom_fixed.yml) + cases/<case>/ on top +
data/fashion/t10k-*-ubyte.gz copied from the project's data/fashion/ (not committed again here).

Models are small MLPs trained with real Keras (tf_keras) on Fashion-MNIST's training set from Debian's
dataset-fashion-mnist (`apt-get install dataset-fashion-mnist`, or --data DIR), seeded, and exported with
the course notebook's export ([{name, type, config, weights}] + np.savez of float32 arrays).

Run with `cargo xtask student-fixtures` (the .venv of `cargo xtask fixtures`). The README's points come from
running every case's workflow for real with tests/student/run_workflow.py, through a Python with pytest,
NumPy and PyYAML: --test-python, else $FMTOOL_PYTHON, else .venv-test/bin/python of this repo or of the
main checkout it was branched from.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "student")
RUNNER = os.path.join(ROOT, "tests", "student", "run_workflow.py")
# The IDX reader, the course notebook's export and the course template's forward pass, shared with the
# cross-check tests.
sys.path.insert(0, os.path.join(ROOT, "tests", "numpy"))
from course import IMAGES_MAGIC, LABELS_MAGIC, course_export, load_export, load_idx, model_test_accuracy, write_export  # noqa: E402

SEED = 20261210
# The course's grade tiers: an accuracy this close to one is too fragile for a fixture.
TIERS = [0.80, 0.82, 0.84, 0.86, 0.88, 0.90, 0.91, 0.92]

# ---- the course's files, verbatim (tests compare them with /work/notes' facts) ------------------------

TEMPLATE_NN_PREDICT = r"""import numpy as np
import json

# === Activation functions ===
def relu(x):
    # TODO: Implement the Rectified Linear Unit
    return x

def softmax(x):
    # TODO: Implement the SoftMax function
    return x

# === Flatten ===
def flatten(x):
    return x.reshape(x.shape[0], -1)

# === Dense layer ===
def dense(x, W, b):
    return x @ W + b

# Infer TensorFlow h5 model using numpy
# Support only Dense, Flatten, relu, softmax now
def nn_forward_h5(model_arch, weights, data):
    x = data
    for layer in model_arch:
        lname = layer['name']
        ltype = layer['type']
        cfg = layer['config']
        wnames = layer['weights']

        if ltype == "Flatten":
            x = flatten(x)
        elif ltype == "Dense":
            W = weights[wnames[0]]
            b = weights[wnames[1]]
            x = dense(x, W, b)
            if cfg.get("activation") == "relu":
                x = relu(x)
            elif cfg.get("activation") == "softmax":
                x = softmax(x)

    return x


# You are free to replace nn_forward_h5() with your own implementation 
def nn_inference(model_arch, weights, data):
    return nn_forward_h5(model_arch, weights, data)
"""

MNIST_READER = r'''def load_mnist(path, kind='train'):
    import os
    import gzip
    import numpy as np

    """Load MNIST data from `path`"""
    labels_path = os.path.join(path, '%s-labels-idx1-ubyte.gz' % kind)
    images_path = os.path.join(path, '%s-images-idx3-ubyte.gz' % kind)

    with gzip.open(labels_path, 'rb') as lbpath:
        labels = np.frombuffer(lbpath.read(), dtype=np.uint8, offset=8)

    with gzip.open(images_path, 'rb') as imgpath:
        images = np.frombuffer(imgpath.read(), dtype=np.uint8, offset=16).reshape(len(labels), 784)

    return images, labels
'''

# The course's model_test.py as distributed: the copy fmtool embeds (src/student/course/), so that
# the fixtures and the binary cannot drift apart.
with open(os.path.join(ROOT, "src", "student", "course", "model_test.py")) as _f:
    MODEL_TEST = _f.read()

# ---- the workflow GitHub Classroom generates --------------------------------------------------------

# (name, id, setup-command, command, max-score), in the distributed order. Two defects, as distributed:
# softmax's command has no `pytest` (the shell cannot run it), "Accuracy >= 90" runs test_acc_80.
STEPS = [
    (
        "Model Inference",
        "model-inference",
        "pip3 install pytest pandas argparse",
        "pytest model_test.py::test_inference",
        50,
    ),
    ("relu()", "relu", "", "pytest model_test.py::test_relu", 10),
    ("softmax()", "softmax", "", "model_test.py::test_softmax", 10),
    ("Accuracy >= 80", "accuracy-80", "", "pytest model_test.py::test_acc_80", 10),
    ("Accuracy >= 82", "accuracy-82", "", "pytest model_test.py::test_acc_82", 2),
    ("Accuracy >= 84", "accuracy-84", "", "pytest model_test.py::test_acc_84", 2),
    ("Accuracy >= 86", "accuracy-86", "", "pytest model_test.py::test_acc_86", 2),
    ("Accuracy >= 88", "accuracy-88", "", "pytest model_test.py::test_acc_88", 3),
    ("Accuracy >= 90", "accuracy-90", "", "pytest model_test.py::test_acc_80", 3),
    ("Accuracy >= 91", "accuracy-91", "", "pytest model_test.py::test_acc_91", 4),
    ("Accuracy >= 92", "accuracy-92", "", "pytest model_test.py::test_acc_92", 4),
]

FIXES = {
    "softmax": "pytest model_test.py::test_softmax",
    "accuracy-90": "pytest model_test.py::test_acc_90",
}


def yaml_str(s):
    """A scalar as GitHub Classroom's generator writes it: plain unless YAML would read it otherwise."""
    if s == "":
        return "''"
    if ": " in s or " #" in s or s[0] in "-?:,[]{}#&*!|>'\"%@`" or s.strip() != s:
        return "'" + s.replace("'", "''") + "'"
    return s


def classroom_yml(fixed):
    L = [
        "name: Autograding Tests",
        "'on':",
        "- push",
        "- repository_dispatch",
        "permissions:",
        "  checks: write",
        "  actions: read",
        "  contents: read",
        "jobs:",
        "  run-autograding-tests:",
        "    runs-on: ubuntu-latest",
        "    if: github.actor != 'github-classroom[bot]'",
        "    steps:",
        "    - name: Checkout code",
        "      uses: actions/checkout@v4",
    ]
    for name, sid, setup, command, score in STEPS:
        if fixed:
            command = FIXES.get(sid, command)
        L += [
            f"    - name: {yaml_str(name)}",
            f"      id: {sid}",
            "      uses: classroom-resources/autograding-command-grader@v1",
            "      with:",
            f"        test-name: {yaml_str(name)}",
            f"        setup-command: {yaml_str(setup)}",
            f"        command: {yaml_str(command)}",
            "        timeout: 10",
            f"        max-score: {score}",
        ]
    L += [
        "    - name: Autograding Reporter",
        "      uses: classroom-resources/autograding-grading-reporter@v1",
        "      env:",
    ]
    for _, sid, _, _, _ in STEPS:
        L.append(f'        {sid.upper()}_RESULTS: "${{{{steps.{sid}.outputs.result}}}}"')
    L += [
        "      with:",
        "        runners: " + ",".join(s[1] for s in STEPS),
    ]
    return "\n".join(L) + "\n"


# ---- the students' nn_predict.py ----------------------------------------------------------------------

RELU_TODO = """def relu(x):
    # TODO: Implement the Rectified Linear Unit
    return x
"""
SOFTMAX_TODO = """def softmax(x):
    # TODO: Implement the SoftMax function
    return x
"""
RELU = """def relu(x):
    return np.maximum(0, x)
"""
SOFTMAX = """def softmax(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)
"""
SOFTMAX_EXP_ONLY = """def softmax(x):
    return np.exp(x)
"""
RELU_NP_MAX = """def relu(x):
    return np.max(0, x)
"""
SOFTMAX_AXIS1 = """def softmax(x):
    e = np.exp(x - np.max(x, axis=1, keepdims=True))
    return e / np.sum(e, axis=1, keepdims=True)
"""


def edit(text, old, new):
    if text.count(old) != 1:
        raise SystemExit(f"the template does not hold exactly one {old!r}")
    return text.replace(old, new)


def nn_predict(softmax=SOFTMAX, relu=RELU):
    return edit(edit(TEMPLATE_NN_PREDICT, RELU_TODO, relu), SOFTMAX_TODO, softmax)


# ---- models ---------------------------------------------------------------------------------------------


def tier_margin(acc):
    return min(abs(acc - t) for t in TIERS)


def train(keras, build, xtr, ytr, xte, yte, log, by_keras=False, lo=0.86, hi=0.88, max_epochs=15):
    """Trains one epoch at a time until the template's accuracy (Keras' own with `by_keras`) lies in
    [lo, hi) and at least 0.003 from every grade tier; returns (model, template accuracy, Keras accuracy).
    `xte` is model_test.py's input: (N, 784) float64."""
    keras.utils.set_random_seed(SEED)
    model = build(keras)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    for epoch in range(1, max_epochs + 1):
        model.fit(xtr, ytr, epochs=1, batch_size=128, verbose=0, shuffle=True)
        arch, arrays = course_export(model)
        acc = model_test_accuracy(arch, arrays, xte, yte)
        keras_acc = float(model.evaluate(xte.reshape(-1, 28, 28).astype(np.float32), yte, verbose=0)[1])
        log(f"  {model.name} epoch {epoch}: template {acc:.4f}, keras {keras_acc:.4f}")
        goal = keras_acc if by_keras else acc
        if lo <= goal < hi and tier_margin(goal) >= 0.003:
            return model, acc, keras_acc
    raise SystemExit(f"{model.name}: no epoch up to {max_epochs} lands in [{lo}, {hi}) away from the tiers")


def mlp(keras):
    L = keras.layers
    return keras.Sequential(
        [L.Flatten(input_shape=(28, 28)), L.Dense(64, activation="relu"), L.Dense(10, activation="softmax")],
        name="mlp",
    )


def mlp_batchnorm(keras):
    L = keras.layers
    return keras.Sequential(
        [
            L.Flatten(input_shape=(28, 28)),
            L.Dense(64, activation="relu"),
            L.BatchNormalization(),
            L.Dense(10, activation="softmax"),
        ],
        name="mlp_batchnorm",
    )


def handwritten(arch, arrays):
    """What a student writes by hand from the good MLP: Dense configs with only `activation`, Flatten listing
    a weight name with no array, weights under their own names, biases (1, n), float64."""
    out_arch, out = [], {}
    for i, e in enumerate(arch, start=1):
        name = f"{e['type'].lower()}_{i}"
        if e["type"] == "Flatten":
            out_arch.append({"name": name, "type": "Flatten", "config": {}, "weights": [f"{name}_W"]})
            continue
        w, b = (arrays[n] for n in e["weights"])
        out_arch.append(
            {
                "name": name,
                "type": "Dense",
                "config": {"activation": e["config"]["activation"]},
                "weights": [f"{name}_W", f"{name}_b"],
            }
        )
        out[f"{name}_W"] = w.astype(np.float64)
        out[f"{name}_b"] = b.astype(np.float64).reshape(1, -1)
    return out_arch, out


# ---- writing ----------------------------------------------------------------------------------------------


def read_model(case_dir):
    """A committed case's model (the course export) and its Keras accuracy from the README."""
    arch, arrays = load_export(os.path.join(case_dir, "model"))
    name = os.path.basename(case_dir)
    with open(os.path.join(OUT, "README.md")) as f:
        row = next(line for line in f if line.startswith(f"| `{name}` |"))
    return (arch, arrays), float(row.split("|")[3])


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def write_course():
    c = os.path.join(OUT, "course")
    write(os.path.join(c, "model_test.py"), MODEL_TEST)
    write(os.path.join(c, "utils", "mnist_reader.py"), MNIST_READER)
    write(os.path.join(c, "nn_predict_template.py"), TEMPLATE_NN_PREDICT)
    write(os.path.join(c, ".github", "workflows", "classroom.yml"), classroom_yml(fixed=False))
    write(os.path.join(c, "classroom_fixed.yml"), classroom_yml(fixed=True))


def write_case(name, description, nn_predict_text, model, overrides=None):
    d = os.path.join(OUT, "cases", name)
    write(os.path.join(d, "case.json"), json.dumps({"description": description}) + "\n")
    write(os.path.join(d, "nn_predict.py"), nn_predict_text)
    write_export(os.path.join(d, "model"), *model)
    for rel, text in (overrides or {}).items():
        write(os.path.join(d, rel), text)


def assemble(case, dest):
    """A student repo: course/ + cases/<case>/ + the project's t10k files (what tests/it/student.rs does)."""
    course = os.path.join(OUT, "course")
    shutil.copytree(course, dest, ignore=shutil.ignore_patterns("nn_predict_template.py", "classroom_fixed.yml"))
    shutil.copytree(os.path.join(OUT, "cases", case), dest, dirs_exist_ok=True)
    os.remove(os.path.join(dest, "case.json"))
    os.makedirs(os.path.join(dest, "data", "fashion"))
    for kind in ("images-idx3", "labels-idx1"):
        f = f"t10k-{kind}-ubyte.gz"
        shutil.copy(os.path.join(ROOT, "data", "fashion", f), os.path.join(dest, "data", "fashion", f))


def find_test_python(given):
    cands = [given, os.environ.get("FMTOOL_PYTHON"), os.path.join(ROOT, ".venv-test", "bin", "python")]
    # A git worktree: the main checkout's .venv-test.
    try:
        common = subprocess.run(["git", "rev-parse", "--git-common-dir"], cwd=ROOT, capture_output=True, text=True)
        cands.append(
            os.path.join(
                os.path.dirname(os.path.abspath(os.path.join(ROOT, common.stdout.strip()))),
                ".venv-test",
                "bin",
                "python",
            )
        )
    except OSError:
        pass
    for py in filter(None, cands):
        ok = (
            subprocess.run([py, "-c", "import pytest, numpy, yaml"], capture_output=True).returncode == 0
            if os.path.exists(py)
            else False
        )
        if ok:
            return py
    return None


def measure(cases, test_python, log):
    """Runs every case's workflow for real; returns case -> run_workflow.py's JSON."""
    out = {}
    for case in cases:
        with tempfile.TemporaryDirectory() as tmp:
            repo = os.path.join(tmp, "repo")
            assemble(case, repo)
            p = subprocess.run([test_python, RUNNER, repo], capture_output=True, text=True)
            if p.returncode != 0:
                raise SystemExit(f"run_workflow.py failed on {case}:\n{p.stderr}")
            out[case] = json.loads(p.stdout)
            log(f"  {case}: {out[case]['total']}/{out[case]['max']}, accuracy {out[case].get('accuracy')}")
    return out


def write_readme(cases, facts, runs, test_python):
    short = {"model-inference": "inf", "relu": "relu", "softmax": "smax"}
    L = [
        "# Student-repo fixtures (generated by `cargo xtask student-fixtures`; do not edit)",
        "",
        "Student repositories of the course's assignment, to compare `fmtool score` on a repo with what the",
        "repo's GitHub Classroom workflow really awards. A repo is `course/` (without `nn_predict_template.py`",
        "and `classroom_fixed.yml`), then `cases/<case>/` on top, then `data/fashion/t10k-*-ubyte.gz` copied",
        "from the project's `data/fashion/` (tests/it/student.rs's `student_repo`).",
        "",
        "- `course/`: the course's `model_test.py`, `utils/mnist_reader.py`, the TODO template",
        "  (`nn_predict_template.py`), `.github/workflows/classroom.yml` as GitHub Classroom distributes it",
        '  (softmax\'s command lacks `pytest`, so it fails for everyone; "Accuracy >= 90" runs `test_acc_80`)',
        "  and `classroom_fixed.yml` (both fixed).",
        "- `cases/<case>/`: `nn_predict.py`, `model/fashion_mnist.{json,npz}`, `case.json`, optional overrides.",
        "",
        "Models: MLPs trained with tf_keras %s on Fashion-MNIST's training set (seed %d), exported with the"
        % (facts["keras"], SEED),
        "course notebook's export. *Model* is Keras' own test accuracy; *grader* is the accuracy `test_inference`",
        "wrote to `test_acc.txt` with the case's own code, and the points are what each workflow step awarded,",
        "all measured by running the workflow with `tests/student/run_workflow.py`"
        + (
            f" (Python: pytest {facts['pytest']}, NumPy {facts['numpy']})."
            if runs
            else " (not run: no Python with pytest, NumPy and PyYAML)."
        ),
        "",
    ]
    if runs:
        heads = [short.get(sid, sid.replace("accuracy-", ">=")) for sid in (x[1] for x in STEPS)]
        L.append("| case | what | model | grader | " + " | ".join(heads) + " | total |")
        L.append("|---|---|---|---|" + "---|" * len(heads) + "---|")
        for case, desc in cases:
            r = runs[case]
            acc = r.get("accuracy")
            pts = [str(s["points"]) for s in r["steps"]]
            if len(pts) != len(heads):
                pts = [f"{len(r['steps'])} steps"] + [""] * (len(heads) - 1)
            L.append(
                f"| `{case}` | {desc} | {facts['model_acc'].get(case, '')} | "
                + ("error" if acc is None else f"{acc:.4f}")
                + " | "
                + " | ".join(pts)
                + f" | **{r['total']}**/{r['max']} |"
            )
    else:
        for case, desc in cases:
            L.append(f"- `{case}`: {desc}")
    L += ["", "Sizes: " + ", ".join(f"{c} {facts['sizes'][c] // 1024} KB" for c, _ in cases) + " (npz).", ""]
    write(os.path.join(OUT, "README.md"), "\n".join(L))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist", help="Fashion-MNIST's training set")
    ap.add_argument("--test-python", default=None, help="a Python with pytest, NumPy and PyYAML")
    ap.add_argument(
        "--reuse-models",
        action="store_true",
        help="take the two models from the committed cases (correct, batchnorm_dense_only) instead of training",
    )
    args = ap.parse_args()

    def log(m):
        print(m, flush=True)

    if args.reuse_models:
        good_model, good_keras = read_model(os.path.join(OUT, "cases", "correct"))
        bn_model, bn_keras = read_model(os.path.join(OUT, "cases", "batchnorm_dense_only"))
        import tf_keras as keras
    else:
        train_images = os.path.join(args.data, "train-images-idx3-ubyte.gz")
        if not os.path.exists(train_images):
            raise SystemExit(f"{train_images} not found: apt-get install dataset-fashion-mnist, or pass --data DIR")
        import tensorflow as tf
        import tf_keras as keras

        tf.config.experimental.enable_op_determinism()
        xtr = load_idx(train_images, IMAGES_MAGIC).astype(np.float32) / 255.0
        ytr = load_idx(os.path.join(args.data, "train-labels-idx1-ubyte.gz"), LABELS_MAGIC).astype(np.int64)
        te = os.path.join(ROOT, "data", "fashion")
        xte_u8 = load_idx(os.path.join(te, "t10k-images-idx3-ubyte.gz"), IMAGES_MAGIC)
        yte = load_idx(os.path.join(te, "t10k-labels-idx1-ubyte.gz"), LABELS_MAGIC).astype(np.int64)
        xte64 = xte_u8.reshape(-1, 784) / 255.0  # model_test.py's input: float64

        log("training the MLP")
        good, _, good_keras = train(keras, mlp, xtr, ytr, xte64, yte, log)
        log("training the MLP with BatchNormalization")
        # The Keras model lands between tiers; the template's pass (BatchNormalization skipped) is far below.
        bn, _, bn_keras = train(keras, mlp_batchnorm, xtr, ytr, xte64, yte, log, by_keras=True)
        good_model = course_export(good)
        bn_model = course_export(bn)

    # Only what this script writes: tests/fixtures/student/workflows/ belongs to the repo:: unit tests.
    for sub in ("course", "cases"):
        if os.path.isdir(os.path.join(OUT, sub)):
            shutil.rmtree(os.path.join(OUT, sub))
    write_course()
    edited_test = edit(
        MODEL_TEST,
        "def test_acc_88():\n    acc = load_test_acc()\n    assert acc >= 0.88",
        "def test_acc_88():\n    acc = load_test_acc()\n    assert acc >= 0.8",
    )
    crash = edit(nn_predict(), "b = weights[wnames[1]]", "b = weights[wnames[2]]")
    edited_inference = edit(
        edit(
            edit(MODEL_TEST, "        np.random.shuffle(indices)\n", ""),
            "x_test_shuffled = x_test[indices]",
            "x_test_shuffled = x_test[indices][:2000]",
        ),
        "y_test_shuffled = y_test[indices]",
        "y_test_shuffled = y_test[indices][:2000]",
    )
    tf_import = edit(nn_predict(), "import json\n", "import json\nimport tensorflow as tf\n")
    cases = [
        (
            "template_todo",
            "the template as shipped (relu and softmax `return x`) with a good MLP",
            TEMPLATE_NN_PREDICT,
            good_model,
            None,
        ),
        (
            "correct",
            "relu and softmax implemented (softmax over axis=-1, keepdims=True), good MLP",
            nn_predict(),
            good_model,
            None,
        ),
        (
            "correct_fixed_workflow",
            "as `correct`, with the corrected workflow (classroom_fixed.yml)",
            nn_predict(),
            good_model,
            {".github/workflows/classroom.yml": classroom_yml(fixed=True)},
        ),
        (
            "softmax_axis1",
            "softmax over axis=1: fine on inference's (1, 10) rows, AxisError on test_softmax's 1-D input",
            nn_predict(softmax=SOFTMAX_AXIS1),
            good_model,
            None,
        ),
        (
            "tensorflow_import",
            "`import tensorflow as tf` in nn_predict.py: the grader has no TensorFlow",
            tf_import,
            good_model,
            None,
        ),
        (
            "batchnorm_dense_only",
            "an MLP with BatchNormalization, run by the template's Dense-only loop",
            nn_predict(),
            bn_model,
            None,
        ),
        (
            "handwritten_json",
            "hand-trimmed JSON (no units, Flatten naming absent weights), (1, n) float64 biases",
            nn_predict(),
            handwritten(*good_model),
            None,
        ),
        (
            "edited_model_test",
            "model_test.py edited: test_acc_88 asserts acc >= 0.8",
            nn_predict(),
            good_model,
            {"model_test.py": edited_test},
        ),
        (
            "crash_in_inference",
            "nn_inference raises in the first Dense (typo `weights[wnames[2]]`: IndexError)",
            crash,
            good_model,
            None,
        ),
        (
            "edited_test_inference",
            "model_test.py's test_inference edited: no shuffle, the first 2000 images only",
            nn_predict(),
            good_model,
            {"model_test.py": edited_inference},
        ),
        (
            "softmax_exp_only",
            "softmax returns np.exp(x): not normalised (test_softmax fails), same argmax",
            nn_predict(softmax=SOFTMAX_EXP_ONLY),
            good_model,
            None,
        ),
        (
            "relu_np_max",
            "relu uses np.max(0, x) (a reduction, not np.maximum): test_relu and inference fail",
            nn_predict(relu=RELU_NP_MAX),
            good_model,
            None,
        ),
    ]
    for name, desc, code, model, overrides in cases:
        write_case(name, desc, code, model, overrides)
    # The hand-written JSON is indented, as a person writes it.
    write_export(os.path.join(OUT, "cases", "handwritten_json", "model"), *handwritten(*good_model), indent=2)

    sizes = {c[0]: os.path.getsize(os.path.join(OUT, "cases", c[0], "model", "fashion_mnist.npz")) for c in cases}
    for c, s in sizes.items():
        if s >= 500 * 1024:
            raise SystemExit(f"{c}: npz of {s} bytes, over the 500 KB budget")
    model_acc = {c[0]: f"{bn_keras:.4f}" if c[3] is bn_model else f"{good_keras:.4f}" for c in cases}
    facts = {"keras": keras.__version__, "sizes": sizes, "model_acc": model_acc}
    test_python = find_test_python(args.test_python)
    runs = {}
    if test_python:
        log(f"running each case's workflow with {test_python}")
        v = subprocess.run(
            [test_python, "-c", "import pytest, numpy; print(pytest.__version__, numpy.__version__)"],
            capture_output=True,
            text=True,
        ).stdout.split()
        facts["pytest"], facts["numpy"] = v
        runs = measure([c[0] for c in cases], test_python, log)
    else:
        log("no Python with pytest, NumPy and PyYAML: the README lists the cases without points")
    write_readme([(c[0], c[1]) for c in cases], facts, runs, test_python)
    log(f"wrote {OUT}")


if __name__ == "__main__":
    main()
