"""Writes tests/fixtures/paths/: student repositories whose model_test.py or nn_predict.py names a path on the
student's own computer, which the grader's runner (Ubuntu, the repository at /home/runner/work/<repo>/<repo>)
does not have (issue 27), and one that names its model relative to the repository.

  <case>/case.json   {"base": a student case, "what": one line,
                      "findings": the runner-missing-path findings fmtool check must make ({"file", "line",
                      "severity"}), "exit": fmtool check's exit code, "inference_passes": whether the workflow's
                      "Model Inference" step passes when run for real}
  <case>/...         the files the case replaces, on top of the base repository
  README.md          one row per case

A case's repository is `student_repo(base)` (tests/it/student.rs: the course's files, the base case's files, the
project's t10k data) with its files on top. tests/it/paths.rs runs `fmtool check` in each and compares the findings,
and runs the workflow for real (sh + pytest, tests/student/run_workflow.py) to show that an error is one: the
inference step fails there.

Run with `cargo xtask path-fixtures` (standard library only); `--check` compares the committed files with what it
would write and exits 1 on a difference.
"""

import os
import sys

import generated

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "paths")
STUDENT = os.path.join(ROOT, "tests", "fixtures", "student")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def edit(text, old, new):
    if old not in text:
        sys.exit(f"make_path_repos.py: {old!r} is not in the file it edits")
    return text.replace(old, new, 1)


def line_of(text, needle):
    """The 1-based line of `text` that holds `needle`, which must be on one line only."""
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    if len(hits) != 1:
        sys.exit(f"make_path_repos.py: {needle!r} is on {len(hits)} lines of the file it wrote, not one")
    return hits[0]


COLAB_MAIN = """

if __name__ == "__main__":
    # Tried on Colab, with the model on Google Drive
    with open('/content/drive/MyDrive/hw/model/fashion_mnist.json') as f:
        arch = json.load(f)
    weights = np.load('/content/drive/MyDrive/hw/model/fashion_mnist.npz')
    print(nn_inference(arch, weights, np.zeros((1, 784))))
"""


def cases():
    """(name, base, what, files {path: text}, findings [(file, needle, severity)], exit, inference passes)."""
    nn = read(os.path.join(STUDENT, "cases", "correct", "nn_predict.py"))
    model_test = read(os.path.join(STUDENT, "course", "model_test.py"))
    weights_line = "MODEL_WEIGHTS_PATH = f'{YOUR_MODEL_PATH}.npz'"
    return [
        (
            "windows_weights_path",
            "correct",
            "model_test.py's MODEL_WEIGHTS_PATH is a Windows drive path (D:\\hw\\model\\fashion_mnist.npz)",
            {
                "model_test.py": edit(
                    model_test, weights_line, "MODEL_WEIGHTS_PATH = 'D:\\\\hw\\\\model\\\\fashion_mnist.npz'"
                )
            },
            [("model_test.py", "MODEL_WEIGHTS_PATH = 'D:", "error")],
            1,
            False,
        ),
        (
            "home_path_in_inference",
            "correct",
            "nn_inference in nn_predict.py loads its weights from /home/amy/hw/model/fashion_mnist.npz",
            {
                "nn_predict.py": edit(
                    nn,
                    "    return nn_forward_h5(model_arch, weights, data)",
                    "    weights = np.load('/home/amy/hw/model/fashion_mnist.npz')\n"
                    "    return nn_forward_h5(model_arch, weights, data)",
                )
            },
            [("nn_predict.py", "/home/amy/hw/model", "error")],
            1,
            False,
        ),
        (
            "colab_path_in_main",
            "correct",
            'Colab\'s /content paths only under `if __name__ == "__main__":` of nn_predict.py, which pytest never runs',
            {"nn_predict.py": nn + COLAB_MAIN},
            [
                ("nn_predict.py", "/content/drive/MyDrive/hw/model/fashion_mnist.json", "warning"),
                ("nn_predict.py", "/content/drive/MyDrive/hw/model/fashion_mnist.npz", "warning"),
            ],
            0,
            True,
        ),
        (
            "relative_path",
            "correct",
            "model_test.py's MODEL_WEIGHTS_PATH written out relative to the repository (model/fashion_mnist.npz)",
            {"model_test.py": edit(model_test, weights_line, "MODEL_WEIGHTS_PATH = 'model/fashion_mnist.npz'")},
            [],
            0,
            True,
        ),
    ]


def write(out):
    generated.fresh_folder(out)
    rows = []
    for name, base, what, files, findings, exit_code, inference_passes in cases():
        expected = [
            {"file": file, "line": line_of(files[file], needle), "severity": severity}
            for file, needle, severity in findings
        ]
        case = {
            "base": base,
            "what": what,
            "findings": expected,
            "exit": exit_code,
            "inference_passes": inference_passes,
        }
        generated.write_case(os.path.join(out, name), files, case)
        shown = ", ".join(f"{e['severity']} at {e['file']}:{e['line']}" for e in expected) or "none"
        rows.append(f"| `{name}` | `{base}` | {what} | {shown} | {'passes' if inference_passes else 'fails'} |")
    generated.write_readme(
        out,
        [
            "# Paths the grader's runner lacks (generated by `cargo xtask path-fixtures`; do not edit)",
            "",
            "Student repositories whose model_test.py or nn_predict.py names a path on the student's computer (issue 27).",
            "A case's repository is the student case `base` (tests/fixtures/student) with the case's files on top.",
            "tests/it/paths.rs runs `fmtool check` in each and compares its runner-missing-path findings and exit code",
            "with `case.json`, and runs the workflow for real (sh + pytest; the runs are kept in",
            "tests/fixtures/student/ground_truth) to show what the Model Inference step does.",
            "",
            "| case | base | what | runner-missing-path | Model Inference |",
            "|---|---|---|---|---|",
            *rows,
            "",
        ],
    )


if __name__ == "__main__":
    generated.main(__doc__, OUT, write)
