"""Writes tests/fixtures/loaders/: student repositories whose nn_predict.py is not the course's loader, or imports what
the grader's runner lacks (issue 27). `fmtool check` judges them by running the student's own code on the tests' path:

  - the other JSON layouts students export, written by real Keras from the `correct` case's trained MLP: Keras 3's and
    tf_keras' `model.to_json()`, Keras 3's `model.get_config()["layers"]` (a list of get_config() dicts) and the
    course's list wrapped as `{"layers": [...]}`; each read by an extended nn_predict.py (the inference step passes:
    check's not-course-layout is a note, exit 0) and by the course's loader (it fails: an error, exit 1);
  - `import tensorflow` in a branch of nn_inference the tests never take (statically an error; the run shows it is not
    reached: a warning), in a function nothing calls (a warning), and in a helper nn_forward_h5 calls on every image
    (statically a warning; the run reaches it: an error).

  <case>/case.json   {"base": a student case, "what": one line, "exit": fmtool check's exit code,
                      "findings": {code: severity} that check must make (others may be there too),
                      "inference_passes": whether the workflow's "Model Inference" step passes when run for real,
                      "student_code_runs": whether check runs the student's code (not for the course's loader)}
  <case>/...         the files the case replaces, on top of the base repository
  README.md          one row per case

tests/it/loaders.rs runs `fmtool check` in each and runs the workflow for real (sh + pytest, the ground truth).

Run with `cargo xtask loader-fixtures` (the .venv with TensorFlow and tf_keras; each Keras runs in its own process, as
Keras 3 and tf_keras cannot share one); `--check` compares the committed files with what it would write.
"""

import json
import os
import subprocess
import sys

import generated

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "loaders")
STUDENT = os.path.join(ROOT, "tests", "fixtures", "student")
CORRECT = os.path.join(STUDENT, "cases", "correct")

# Run in a child process per Keras: builds the `correct` case's MLP with its trained weights and prints the layouts
# that Keras writes, as JSON {"to_json": text, "config_layers": [...], "version": ...}.
KERAS_CHILD = r"""
import json, sys
import numpy as np
which = sys.argv[1]
if which == "tf_keras":
    import tf_keras as keras
else:
    import keras
arch = json.load(open(sys.argv[2]))
w = np.load(sys.argv[3])
dense = [e for e in arch if e["type"] == "Dense"]
layers = [keras.layers.Flatten(name="flatten")]
layers += [keras.layers.Dense(e["config"]["units"], activation=e["config"]["activation"], name=e["name"]) for e in dense]
model = keras.Sequential([keras.Input((28, 28))] + layers)
for e in dense:
    model.get_layer(e["name"]).set_weights([w[k] for k in e["weights"]])
x = np.load(sys.argv[4])
print(json.dumps({
    "to_json": model.to_json(),
    "config_layers": model.get_config()["layers"],
    "version": keras.__version__,
    "predictions": [int(i) for i in np.argmax(model.predict(x, verbose=0), axis=-1)],
}))
"""

# The extended loader: nn_forward_h5 reads every layout through layers_of(); the rest is the course's template.
LAYERS_OF = """
# The course's list, Keras' model.to_json(), a list of get_config() dicts, or {"layers": [...]}
def layers_of(model_arch):
    if isinstance(model_arch, dict):
        model_arch = model_arch["config"]["layers"] if "config" in model_arch else model_arch["layers"]
    out = []
    for entry in model_arch:
        if "class_name" in entry:
            cfg = entry["config"]
            name = cfg["name"]
            wnames = [f"{name}_0", f"{name}_1"] if entry["class_name"] == "Dense" else []
            out.append({"name": name, "type": entry["class_name"], "config": cfg, "weights": wnames})
        else:
            out.append(entry)
    return out

"""


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def edit(text, old, new):
    if old not in text:
        sys.exit(f"make_loader_repos.py: {old!r} is not in the file it edits")
    return text.replace(old, new, 1)


def keras_layouts():
    """{"keras3": ..., "tf_keras": ...}: each Keras's own layouts of the correct case's model, and its predictions on
    the first test images (checked against the course's float64 pass here, so the layouts hold the trained model)."""
    import gzip

    import numpy as np

    with gzip.open(os.path.join(ROOT, "data", "fashion", "t10k-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:64] / 255.0
    arch = json.loads(read(os.path.join(CORRECT, "model", "fashion_mnist.json")))
    w = np.load(os.path.join(CORRECT, "model", "fashion_mnist.npz"))
    x = images.reshape(len(images), -1)
    for e in arch:
        if e["type"] == "Dense":
            x = x @ w[e["weights"][0]] + w[e["weights"][1]]
            x = np.maximum(x, 0) if e["config"]["activation"] == "relu" else x
    expected = [int(i) for i in np.argmax(x, axis=-1)]
    tmp = os.path.join(OUT + ".images.npy")
    np.save(tmp, images.astype(np.float32))
    out = {}
    try:
        for which in ("keras3", "tf_keras"):
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_USE_LEGACY_KERAS="1" if which == "tf_keras" else "0")
            run = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    KERAS_CHILD,
                    which,
                    os.path.join(CORRECT, "model", "fashion_mnist.json"),
                    os.path.join(CORRECT, "model", "fashion_mnist.npz"),
                    tmp,
                ],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            if run.returncode != 0:
                sys.exit(f"make_loader_repos.py: {which} failed:\n{run.stderr[-3000:]}")
            said = json.loads(run.stdout.strip().splitlines()[-1])
            if said["predictions"] != expected:
                sys.exit(f"make_loader_repos.py: {which}'s model predicts otherwise than the course's pass")
            out[which] = said
    finally:
        os.remove(tmp)
    return out


def cases():
    """(name, what, files {path: text}, exit, findings {code: severity}, inference passes)."""
    k = keras_layouts()
    course_list = json.loads(read(os.path.join(CORRECT, "model", "fashion_mnist.json")))
    layouts = [
        ("to_json_keras3", f"Keras {k['keras3']['version']}'s model.to_json()", k["keras3"]["to_json"]),
        ("to_json_tf_keras", f"tf_keras {k['tf_keras']['version']}'s model.to_json()", k["tf_keras"]["to_json"]),
        (
            "config_list",
            f'a list of get_config() dicts (Keras {k["keras3"]["version"]}\'s model.get_config()["layers"])',
            json.dumps(k["keras3"]["config_layers"]),
        ),
        ("layers_wrapper", 'the course\'s list wrapped as {"layers": [...]}', json.dumps({"layers": course_list})),
    ]
    nn = read(os.path.join(CORRECT, "nn_predict.py"))
    own = edit(
        nn,
        "# Infer TensorFlow h5 model using numpy",
        LAYERS_OF.strip("\n") + "\n\n# Infer TensorFlow h5 model using numpy",
    )
    own = edit(own, "    for layer in model_arch:", "    for layer in layers_of(model_arch):")
    out = []
    for name, what, text in layouts:
        model = {"model/fashion_mnist.json": text}
        out.append(
            (
                f"{name}_own_loader",
                f"{what}, read by an extended nn_predict.py",
                {**model, "nn_predict.py": own},
                0,
                {"not-course-layout": "note"},
                True,
            )
        )
        out.append(
            (
                f"{name}_course_loader",
                f"{what}, read by the course's loader",
                model,
                1,
                {"not-course-layout": "error"},
                False,
            )
        )
    inference = "def nn_inference(model_arch, weights, data):\n"
    out.append(
        (
            "tf_import_untaken_branch",
            "`import tensorflow` in a branch of nn_inference the tests never take (a model path given as a string)",
            {
                "nn_predict.py": edit(
                    nn,
                    inference,
                    inference + "    if isinstance(model_arch, str):\n"
                    "        import tensorflow as tf\n"
                    "        return tf.keras.models.load_model(model_arch).predict(data)\n",
                )
            },
            0,
            {"grader-missing-import": "warning"},
            True,
        )
    )
    out.append(
        (
            "tf_import_uncalled_function",
            "`import tensorflow` in a function of nn_predict.py that nothing calls",
            {
                "nn_predict.py": nn + "\n\ndef keras_predict(path, data):\n    import tensorflow as tf\n"
                "    return tf.keras.models.load_model(path).predict(data)\n"
            },
            0,
            {"grader-missing-import": "warning"},
            True,
        )
    )
    out.append(
        (
            "tf_import_called_helper",
            "`import tensorflow` in a helper that nn_forward_h5 calls on every image",
            {
                "nn_predict.py": edit(
                    edit(
                        nn,
                        "# === Dense layer ===",
                        "def as_array(x):\n    import tensorflow as tf\n"
                        "    return tf.convert_to_tensor(x).numpy()\n\n# === Dense layer ===",
                    ),
                    "    x = data\n",
                    "    x = as_array(data)\n",
                )
            },
            1,
            {"grader-missing-import": "error"},
            False,
        )
    )
    return out


def write(out):
    generated.fresh_folder(out)
    rows = []
    for name, what, files, exit_code, findings, inference_passes in cases():
        # The course's loader is judged from the files alone, without starting Python.
        runs = not name.endswith("_course_loader")
        case = {
            "base": "correct",
            "what": what,
            "exit": exit_code,
            "findings": findings,
            "inference_passes": inference_passes,
            "student_code_runs": runs,
        }
        generated.write_case(os.path.join(out, name), files, case)
        shown = ", ".join(f"{c}: {s}" for c, s in findings.items())
        rows.append(f"| `{name}` | {what} | {shown} | {exit_code} | {'passes' if inference_passes else 'fails'} |")
    generated.write_readme(
        out,
        [
            "# Loaders of the student's own, and imports the runner lacks (generated by `cargo xtask loader-fixtures`; do not edit)",
            "",
            "Student repositories (the `correct` case of tests/fixtures/student with the case's files on top) whose",
            "nn_predict.py reads other JSON layouts, or imports TensorFlow where the tests do or do not reach it (issue 27).",
            "The layouts are written by real Keras from the `correct` case's trained MLP (see make_loader_repos.py).",
            "tests/it/loaders.rs runs `fmtool check` in each (it runs the student's code on the tests' path) and the",
            "workflow for real (sh + pytest; the runs are kept in tests/fixtures/student/ground_truth).",
            "",
            "| case | what | check's finding | check's exit | Model Inference |",
            "|---|---|---|---|---|",
            *rows,
            "",
        ],
    )


if __name__ == "__main__":
    generated.main(__doc__, OUT, write)
