//! Student repositories of the course (tests/fixtures/student, from `cargo xtask student-fixtures`) and
//! the ground truth for grading them: their GitHub Classroom workflow run for real, step by step, with
//! sh + pytest (tests/student/run_workflow.py) in a temporary copy.

use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `tests/fixtures/student/<rel>`.
pub fn student_fixture(rel: &str) -> PathBuf {
    fixture("student").join(rel)
}

/// Every case under tests/fixtures/student/cases.
pub fn student_cases() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(student_fixture("cases"))
        .expect("tests/fixtures/student/cases exists: run `cargo xtask student-fixtures`")
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Copies the tree at `from` into `to` (created), skipping the top-level names in `skip`.
pub fn copy_tree(from: &Path, to: &Path, skip: &[&str]) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("cannot create {}: {e}", to.display()));
    for e in std::fs::read_dir(from).unwrap_or_else(|e| panic!("cannot read {}: {e}", from.display())).flatten() {
        let name = e.file_name();
        if skip.iter().any(|s| name == **s) {
            continue;
        }
        let (src, dst) = (e.path(), to.join(&name));
        if src.is_dir() {
            copy_tree(&src, &dst, &[]);
        } else {
            std::fs::copy(&src, &dst)
                .unwrap_or_else(|e| panic!("cannot copy {} to {}: {e}", src.display(), dst.display()));
        }
    }
}

/// A student repo for `case`, as its owner has it: the course's files (model_test.py,
/// utils/mnist_reader.py, .github/workflows/classroom.yml as distributed), the case's own files on top
/// (nn_predict.py, model/fashion_mnist.{json,npz}, any override) and the project's t10k files in
/// data/fashion/. Nothing else: no case.json, no test_acc.txt.
pub fn student_repo(case: &str) -> tempfile::TempDir {
    let case_dir = student_fixture("cases").join(case);
    assert!(case_dir.is_dir(), "no student case {case} in {}", case_dir.display());
    let tmp = tempdir();
    copy_tree(&student_fixture("course"), tmp.path(), &["nn_predict_template.py", "classroom_fixed.yml"]);
    copy_tree(&case_dir, tmp.path(), &["case.json"]);
    let data = tmp.path().join("data/fashion");
    std::fs::create_dir_all(&data).unwrap();
    for f in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        std::fs::copy(root().join("data/fashion").join(f), data.join(f))
            .expect("the project's data/fashion t10k files");
    }
    tmp
}

/// The cases of a generated family of student repositories, `tests/fixtures/<family>` (made by an
/// xtask: `integrity-fixtures`, `path-fixtures`): each a folder with its `case.json` and the files
/// it lays over its base student case, sorted by name.
pub fn overlay_cases(family: &str) -> Vec<(String, Value)> {
    let dir = fixture(family);
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (the xtask of tests/fixtures/{family} writes it)", dir.display()))
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let case = std::fs::read_to_string(e.path().join("case.json")).unwrap();
            (name, serde_json::from_str(&case).unwrap())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// An overlay case's repository, built in `dest`: its `base` student case, its files on top, and
/// the files of its `remove` list (if it has one) deleted.
pub fn build_overlay(dest: &Path, family: &str, name: &str, case: &Value) {
    let base = student_repo(case["base"].as_str().unwrap());
    copy_tree(base.path(), dest, &[]);
    copy_tree(&fixture(family).join(name), dest, &["case.json"]);
    for r in case["remove"].as_array().into_iter().flatten() {
        std::fs::remove_file(dest.join(r.as_str().unwrap())).unwrap();
    }
}

/// A Python that runs a workflow's steps like the grader's runner: pytest, NumPy and PyYAML
/// (`$FMTOOL_PYTHON`, else python3 or python on PATH).
pub fn require_workflow_python() -> String {
    let from_env = std::env::var("FMTOOL_PYTHON").ok();
    for py in from_env.iter().map(String::as_str).chain(["python3", "python"]) {
        let ok = Command::new(py)
            .args(["-c", "import pytest, numpy, yaml"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return py.to_string();
        }
    }
    panic!(
        "running a student repo's workflow needs a Python with pytest, numpy and PyYAML: `cargo xtask test` \
         makes one in .venv-test, or set FMTOOL_PYTHON"
    )
}

/// Runs `repo`'s workflow for real, as GitHub Classroom's command-grader does, in a temporary copy
/// (`repo` itself is left as it was, so fmtool can grade the same files afterwards). Returns
/// run_workflow.py's JSON: `{"steps": [{"name", "test_name", "command", "max", "points", "passed",
/// "exit_code", "timed_out", "seconds", "notes", "output"}], "total", "max", "accuracy"}`.
pub fn run_workflow_for_real(repo: &Path) -> Value {
    let python = require_workflow_python();
    let tmp = tempdir();
    let copy = tmp.path().join("repo");
    copy_tree(repo, &copy, &[]);
    let out = Command::new(&python)
        .arg(root().join("tests/student/run_workflow.py"))
        .arg(&copy)
        .output()
        .expect("python runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "run_workflow.py failed on {}: {stderr}", repo.display());
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("run_workflow.py's output is not JSON ({e}): {stderr}"))
}

/// Where measured workflow runs are kept: `<digest>.json`, the digest covering the repository's
/// files and the Python, NumPy and pytest that ran them.
fn ground_truth_dir() -> PathBuf {
    student_fixture("ground_truth")
}

/// FNV-1a over every file of `repo` (relative path and bytes, in path order) and `versions`:
/// a stored run is used only for the very files and interpreter it was measured with.
fn repo_digest(repo: &Path, versions: &str) -> String {
    fn files(dir: &Path, base: &Path, out: &mut Vec<(String, PathBuf)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                files(&p, base, out);
            } else {
                out.push((p.strip_prefix(base).unwrap().to_string_lossy().into_owned(), p));
            }
        }
    }
    let mut all = Vec::new();
    files(repo, repo, &mut all);
    all.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes.iter().chain(&[0xff]) {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    };
    eat(versions.as_bytes());
    for (rel, p) in all {
        eat(rel.as_bytes());
        eat(&std::fs::read(p).unwrap());
    }
    format!("{h:016x}")
}

/// `sys.version`, NumPy's and pytest's versions of the workflow Python.
fn workflow_python_versions(python: &str) -> String {
    let out = Command::new(python)
        .args(["-c", "import sys, numpy, pytest; print(sys.version.split()[0], numpy.__version__, pytest.__version__)"])
        .output()
        .expect("python runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The ground truth for `repo`: what its workflow gave when run for real on these very files with
/// this Python and NumPy. Runs are measured by [`run_workflow_for_real`] and kept in
/// tests/fixtures/student/ground_truth (`FMTOOL_STORE_GROUND_TRUTH=1 cargo xtask test student::`
/// writes them); one that is missing or was measured on other files or versions is run now, so
/// the answer is always a real run's. `stored_ground_truth_is_reproduced` runs one case for
/// real every time.
pub fn ground_truth(repo: &Path) -> Value {
    let versions = workflow_python_versions(&require_workflow_python());
    let path = ground_truth_dir().join(format!("{}.json", repo_digest(repo, &versions)));
    if let Ok(text) = std::fs::read_to_string(&path) {
        return serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    let run = run_workflow_for_real(repo);
    if std::env::var_os("FMTOOL_STORE_GROUND_TRUTH").is_some() {
        std::fs::create_dir_all(ground_truth_dir()).unwrap();
        std::fs::write(&path, serde_json::to_string_pretty(&run).unwrap() + "\n").unwrap();
    }
    run
}

/// `fmtool score --format json` in `repo` (a student repository: fmtool runs the student's own code
/// with the Python the ground truth uses).
fn fmtool_score(repo: &Path) -> Value {
    let python = require_workflow_python();
    let run = fmtool_in(repo, &["score", "--format", "json", "--python", &python]);
    assert!(run.code == 0 || run.code == 1, "fmtool score exited {}: {}", run.code, run.stderr);
    let v: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.stdout));
    assert_eq!(crate::score::schema_errors("score-report.schema.json", &v), Vec::<String>::new());
    assert!(!repo.join("test_acc.txt").exists(), "fmtool wrote into the student's repo");
    v
}

/// fmtool's points equal what the real workflow run awarded, step by step, and its student accuracy
/// is the one test_inference wrote.
fn assert_fmtool_matches(repo: &Path, real: &Value) -> Value {
    let v = fmtool_score(repo);
    let grade = &v["grade"];
    let steps = grade["workflow"]["steps"].as_array().unwrap_or_else(|| panic!("no workflow steps: {v:#}"));
    let real_steps = real["steps"].as_array().unwrap();
    assert_eq!(steps.len(), real_steps.len());
    for (f, r) in steps.iter().zip(real_steps) {
        assert_eq!(f["name"], r["test_name"], "{f:#}");
        assert_eq!(
            (f["name"].clone(), f["points"].clone()),
            (r["test_name"].clone(), r["points"].clone()),
            "fmtool {f:#}\nreal {r:#}"
        );
        assert_eq!(f["passed"], r["passed"], "fmtool {f:#}\nreal {r:#}");
    }
    assert_eq!(grade["workflow"]["total"], real["total"], "{:#}", grade["workflow"]);
    assert_eq!(v["points"], real["total"]);
    assert_eq!(grade["student_accuracy"], real["accuracy"], "{:#}", grade["inference"]);
    v
}

/// The codes of fmtool's diagnosis.
fn diagnosis_codes(v: &Value) -> Vec<String> {
    v["grade"]["diagnosis"].as_array().unwrap().iter().map(|d| d["code"].as_str().unwrap().to_string()).collect()
}

/// The step of `run` named `name`.
fn step<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {run:#}"))
}

fn points(run: &Value, name: &str) -> u64 {
    step(run, name)["points"].as_u64().unwrap()
}

fn output(run: &Value, name: &str) -> String {
    step(run, name)["output"].as_str().unwrap().to_string()
}

/// The eight accuracy steps' points, in the workflow's order.
fn accuracy_points(run: &Value) -> Vec<u64> {
    [80, 82, 84, 86, 88, 90, 91, 92].iter().map(|t| points(run, &format!("Accuracy >= {t}"))).collect()
}

/// The course template's NumPy pass (tests/numpy/course_template.py, correct relu/softmax) over the
/// repo's model: its accuracy on the t10k set.
fn numpy_template_accuracy(repo: &Path) -> f64 {
    let python = require_numpy();
    let tmp = tempdir();
    let out = tmp.path().join("out.npz");
    let status = Command::new(python)
        .arg(root().join("tests/numpy/course_template.py"))
        .arg(repo.join("model"))
        .arg(repo.join("data/fashion"))
        .arg(&out)
        .status()
        .expect("python runs");
    assert!(status.success(), "course_template.py failed on {}", repo.display());
    let npz = fmtool::model::npz::read_npz(&out).unwrap();
    let preds = npz.array("predictions").unwrap();
    let data = fmtool::dataset::embedded_test_set();
    let correct = preds.values().zip(&data.labels).filter(|(p, l)| *p as usize == **l as usize).count();
    correct as f64 / data.len() as f64
}

/// The distributed workflow's defects hold for every case: softmax's step runs `model_test.py::...` without
/// pytest (the shell cannot find it: exit 127), and "Accuracy >= 90" awards its points at 0.80.
fn assert_distributed_workflow(run: &Value) {
    assert_eq!(run["max"], 100, "{run:#}");
    let names: Vec<&str> = run["steps"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "Model Inference",
            "relu()",
            "softmax()",
            "Accuracy >= 80",
            "Accuracy >= 82",
            "Accuracy >= 84",
            "Accuracy >= 86",
            "Accuracy >= 88",
            "Accuracy >= 90",
            "Accuracy >= 91",
            "Accuracy >= 92"
        ]
    );
    let softmax = step(run, "softmax()");
    assert_eq!(softmax["points"], 0, "{softmax:#}");
    assert_eq!(softmax["exit_code"], 127, "{softmax:#}");
    assert!(softmax["output"].as_str().unwrap().contains("not found"), "{softmax:#}");
    assert_eq!(step(run, "Accuracy >= 90")["command"], "pytest model_test.py::test_acc_80");
    assert_eq!(step(run, "Accuracy >= 90")["passed"], step(run, "Accuracy >= 80")["passed"], "{run:#}");
    let total: u64 = run["steps"].as_array().unwrap().iter().map(|s| s["points"].as_u64().unwrap()).sum();
    assert_eq!(run["total"].as_u64().unwrap(), total);
}

#[test]
fn student_repo_holds_the_course_files_and_the_case() {
    assert!(student_cases().len() >= 9, "{:?}", student_cases());
    let repo = student_repo("correct");
    for f in [
        "nn_predict.py",
        "model_test.py",
        "utils/mnist_reader.py",
        "model/fashion_mnist.json",
        "model/fashion_mnist.npz",
        ".github/workflows/classroom.yml",
        "data/fashion/t10k-images-idx3-ubyte.gz",
        "data/fashion/t10k-labels-idx1-ubyte.gz",
    ] {
        assert!(repo.path().join(f).is_file(), "{f} missing from the assembled repo");
    }
    for f in ["case.json", "nn_predict_template.py", "classroom_fixed.yml", "test_acc.txt"] {
        assert!(!repo.path().join(f).exists(), "{f} should not be in a student repo");
    }
    // The template as shipped is the course's template, verbatim; the overrides replace the course's files.
    assert_eq!(
        std::fs::read_to_string(student_fixture("cases/template_todo/nn_predict.py")).unwrap(),
        std::fs::read_to_string(student_fixture("course/nn_predict_template.py")).unwrap()
    );
    let fixed = student_repo("correct_fixed_workflow");
    assert_eq!(
        std::fs::read_to_string(fixed.path().join(".github/workflows/classroom.yml")).unwrap(),
        std::fs::read_to_string(student_fixture("course/classroom_fixed.yml")).unwrap()
    );
    // Every npz stays small.
    for case in student_cases() {
        let npz = student_fixture("cases").join(&case).join("model/fashion_mnist.npz");
        let len = std::fs::metadata(&npz).unwrap().len();
        assert!(len < 500 * 1024, "{}: {len} bytes", npz.display());
    }
}

#[test]
fn ground_truth_template_todo_fails_relu_and_softmax() {
    let repo = student_repo("template_todo");
    let run = ground_truth(repo.path());
    assert_distributed_workflow(&run);
    assert_eq!(points(&run, "relu()"), 0, "{run:#}");
    assert!(output(&run, "relu()").contains("(0) == 3"), "{}", output(&run, "relu()"));
    assert_eq!(points(&run, "Model Inference"), 50, "{run:#}");
    // Without relu the good MLP is a linear model: below every tier.
    let acc = run["accuracy"].as_f64().unwrap();
    assert!(acc < 0.80 && acc < numpy_template_accuracy(repo.path()) - 0.05, "accuracy {acc}");
    assert_eq!(accuracy_points(&run), [0; 8]);
    assert_eq!(run["total"], 50);
    assert!(!repo.path().join("test_acc.txt").exists(), "the run wrote into the repo instead of a copy");
    let v = assert_fmtool_matches(repo.path(), &run);
    let codes = diagnosis_codes(&v);
    assert!(codes.contains(&"relu-todo".to_string()) && codes.contains(&"softmax-todo".to_string()), "{codes:?}");
    assert_eq!(v["grade"]["credit_sheet"]["total"], 50);
}

#[test]
fn ground_truth_correct_gets_no_softmax_points_and_the_90_step_at_080() {
    let repo = student_repo("correct");
    let run = ground_truth(repo.path());
    assert_distributed_workflow(&run);
    assert_eq!(points(&run, "Model Inference"), 50);
    assert_eq!(points(&run, "relu()"), 10);
    // The accuracy is the course template's NumPy pass on the same model.
    let acc = run["accuracy"].as_f64().unwrap();
    assert_eq!(acc, numpy_template_accuracy(repo.path()));
    assert!((0.86..0.88).contains(&acc), "the fixture's MLP should sit between the 0.86 and 0.88 tiers: {acc}");
    assert_eq!(accuracy_points(&run), [10, 2, 2, 2, 0, 3, 0, 0]);
    assert_eq!(run["total"], 79);
    let setup = step(&run, "Model Inference")["notes"].to_string();
    assert!(setup.contains("skipped `pip3 install pytest pandas argparse`"), "{setup}");
    let v = assert_fmtool_matches(repo.path(), &run);
    // The credit sheet gives softmax its points and tests 0.90 at 0.90.
    assert_eq!(v["grade"]["credit_sheet"]["total"], 86, "{:#}", v["grade"]["credit_sheet"]);
    assert_eq!(v["grade"]["comparison"]["same_prediction"], 10_000, "{:#}", v["grade"]["comparison"]);
    assert_eq!(diagnosis_codes(&v), Vec::<String>::new());
}

#[test]
fn ground_truth_fixed_workflow_awards_softmax_and_tests_090() {
    let repo = student_repo("correct_fixed_workflow");
    let run = ground_truth(repo.path());
    assert_eq!(step(&run, "softmax()")["command"], "pytest model_test.py::test_softmax");
    assert_eq!(points(&run, "softmax()"), 10, "{run:#}");
    assert_eq!(points(&run, "relu()"), 10);
    assert_eq!(points(&run, "Model Inference"), 50);
    assert!(run["accuracy"].as_f64().unwrap() < 0.90);
    assert_eq!(accuracy_points(&run), [10, 2, 2, 2, 0, 0, 0, 0]);
    assert_eq!(run["total"], 86);
    let v = assert_fmtool_matches(repo.path(), &run);
    assert_eq!(v["grade"]["credit_sheet"]["total"], run["total"]);
}

#[test]
fn ground_truth_softmax_axis1_raises_axis_error_on_1d_input() {
    // The distributed workflow never runs test_softmax; run the fixed one to see the student's error.
    let repo = student_repo("softmax_axis1");
    std::fs::copy(student_fixture("course/classroom_fixed.yml"), repo.path().join(".github/workflows/classroom.yml"))
        .unwrap();
    let run = ground_truth(repo.path());
    assert_eq!(points(&run, "softmax()"), 0, "{run:#}");
    assert!(output(&run, "softmax()").contains("AxisError"), "{}", output(&run, "softmax()"));
    // Inference's (1, 10) rows have an axis 1: the accuracy is the correct solution's.
    assert_eq!(points(&run, "Model Inference"), 50);
    assert_eq!(run["accuracy"].as_f64().unwrap(), numpy_template_accuracy(repo.path()));
    assert_eq!(run["total"], 76);
    let v = assert_fmtool_matches(repo.path(), &run);
    assert!(diagnosis_codes(&v).contains(&"softmax-axis".to_string()), "{:?}", diagnosis_codes(&v));
}

#[test]
fn ground_truth_tensorflow_import_fails_every_step() {
    let repo = student_repo("tensorflow_import");
    let run = ground_truth(repo.path());
    assert_distributed_workflow(&run);
    for s in run["steps"].as_array().unwrap() {
        assert_eq!(s["points"], 0, "{s:#}");
    }
    assert!(output(&run, "Model Inference").contains("No module named 'tensorflow'"), "{run:#}");
    assert_eq!(run["accuracy"], Value::Null);
    assert_eq!(run["total"], 0);
    let v = assert_fmtool_matches(repo.path(), &run);
    assert!(diagnosis_codes(&v).contains(&"nn-predict-import".to_string()), "{:?}", diagnosis_codes(&v));
    assert_eq!(v["grade"]["credit_sheet"]["total"], 0);
}

#[test]
fn ground_truth_batchnorm_dense_only_gets_the_templates_accuracy() {
    let repo = student_repo("batchnorm_dense_only");
    let run = ground_truth(repo.path());
    assert_distributed_workflow(&run);
    let acc = run["accuracy"].as_f64().unwrap();
    assert_eq!(
        acc,
        numpy_template_accuracy(repo.path()),
        "the student's loop skips BatchNormalization like the template"
    );
    // The model itself (fmtool's engine runs BatchNormalization) is far better than what the loop gets.
    let model = repo.path().join("model");
    let engine = fmtool(&["score", "--model", model.to_str().unwrap(), "--format", "json"]);
    assert!(engine.code == 0 || engine.code == 1, "{}", engine.stderr);
    let engine: Value = serde_json::from_str(&engine.stdout).unwrap();
    let model_acc = engine["accuracy"].as_f64().unwrap();
    assert!(model_acc > 0.86 && model_acc - acc > 0.1, "model {model_acc}, student's loop {acc}");
    assert_eq!(points(&run, "Model Inference"), 50);
    assert_eq!(points(&run, "relu()"), 10);
    assert_eq!(accuracy_points(&run), [0; 8]);
    assert_eq!(run["total"], 60);
    let v = assert_fmtool_matches(repo.path(), &run);
    let d = v["grade"]["diagnosis"].to_string();
    assert!(d.contains("differs-from-model") && d.contains("BatchNormalization"), "{d}");
}

#[test]
fn ground_truth_handwritten_json_runs_in_the_grader() {
    let repo = student_repo("handwritten_json");
    let arch: Value =
        serde_json::from_str(&std::fs::read_to_string(repo.path().join("model/fashion_mnist.json")).unwrap()).unwrap();
    assert!(arch.as_array().unwrap().iter().all(|l| l["config"].get("units").is_none()));
    let b = fmtool::model::npz::read_npz(&repo.path().join("model/fashion_mnist.npz")).unwrap();
    assert_eq!(b.array("dense_2_b").unwrap().shape, [1, 64]);
    let run = ground_truth(repo.path());
    assert_distributed_workflow(&run);
    let acc = run["accuracy"].as_f64().unwrap();
    assert_eq!(acc, numpy_template_accuracy(repo.path()));
    assert_eq!(accuracy_points(&run), [10, 2, 2, 2, 0, 3, 0, 0]);
    assert_eq!(run["total"], 79);
    assert_fmtool_matches(repo.path(), &run);
}

#[test]
fn ground_truth_edited_model_test_changes_the_grade() {
    let repo = student_repo("edited_model_test");
    let run = ground_truth(repo.path());
    assert_distributed_workflow(&run);
    assert!(run["accuracy"].as_f64().unwrap() < 0.88);
    // test_acc_88 asserts acc >= 0.8 in this repo: its 3 points come on top of `correct`'s 79.
    assert_eq!(points(&run, "Accuracy >= 88"), 3, "{run:#}");
    assert_eq!(run["total"], 82);
    assert_fmtool_matches(repo.path(), &run);
}

#[test]
fn ground_truth_crash_in_inference_fails_inference_and_every_accuracy_step() {
    let repo = student_repo("crash_in_inference");
    let run = ground_truth(repo.path());
    assert_distributed_workflow(&run);
    assert_eq!(points(&run, "Model Inference"), 0);
    assert!(output(&run, "Model Inference").contains("list index out of range"), "{run:#}");
    assert_eq!(points(&run, "relu()"), 10);
    assert_eq!(run["accuracy"], Value::Null);
    assert_eq!(accuracy_points(&run), [0; 8]);
    assert_eq!(run["total"], 10);
    assert_eq!(accuracy_points(&run), [0; 8]);
    assert_eq!(run["total"], 10);
    let v = assert_fmtool_matches(repo.path(), &run);
    let d = &v["grade"]["diagnosis"];
    assert!(d.to_string().contains("inference-exception") && d.to_string().contains("IndexError"), "{d:#}");
}

/// A repository whose model is not there yet still earns what its relu() and softmax() earn: the
/// grader runs those tests whatever the model. fmtool grades it instead of stopping (exit 2).
#[test]
fn a_repo_without_a_model_is_graded_not_refused() {
    let repo = student_repo("correct");
    std::fs::remove_dir_all(repo.path().join("model")).unwrap();
    let run = ground_truth(repo.path());
    assert_eq!(points(&run, "relu()"), 10, "{run:#}");
    assert_eq!(points(&run, "Model Inference"), 0, "{run:#}");
    let v = assert_fmtool_matches(repo.path(), &run);
    assert_eq!(v["accuracy"], Value::Null);
    assert!(v["failure"].as_str().unwrap().contains("fashion_mnist"), "{}", v["failure"]);
    // Named from outside the repository, as --model REPO, it is the same grade.
    let python = require_workflow_python();
    let outside = fmtool(&["score", "--format", "json", "--python", &python, "--model", repo.path().to_str().unwrap()]);
    let o: Value = serde_json::from_str(&outside.stdout).unwrap_or_else(|e| panic!("{e}: {}", outside.stderr));
    assert_eq!(o["grade"]["workflow"]["total"], run["total"]);
}

/// `fmtool check` in a student repository names the workflow's two defects by line, as warnings
/// (they fail for every student, so they must not block a commit), and an import the grader does
/// not have as an error at its line.
#[test]
fn check_names_the_workflow_defects_and_the_missing_import() {
    let repo = student_repo("correct");
    let run = fmtool_in(repo.path(), &["check", "--format", "json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    let places: Vec<(String, String, u64)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"].as_str().unwrap().starts_with("workflow"))
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
                f["location"]["line"].as_u64().unwrap(),
            )
        })
        .collect();
    let yml = std::fs::read_to_string(repo.path().join(".github/workflows/classroom.yml")).unwrap();
    let line_of = |needle: &str| yml.lines().position(|l| l.trim() == needle).unwrap() as u64 + 1;
    assert_eq!(
        places,
        [
            ("workflow-command-not-found".to_string(), "warning".to_string(), line_of("- name: softmax()")),
            ("workflow-threshold-mismatch".to_string(), "warning".to_string(), line_of("- name: Accuracy >= 90"))
        ]
    );
    let fixed = student_repo("correct_fixed_workflow");
    let run = fmtool_in(fixed.path(), &["check", "--format", "json"]);
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(!v["findings"].to_string().contains("workflow-"), "{:#}", v["findings"]);

    let tf = student_repo("tensorflow_import");
    let run = fmtool_in(tf.path(), &["check"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("nn_predict.py:") && run.stdout.contains("tensorflow"), "{}", run.stdout);
}

/// A test_inference the student edited runs as written (in one process, not fmtool's parallel
/// workers): fmtool's accuracy is the one it writes.
#[test]
fn ground_truth_edited_test_inference_runs_as_written() {
    let repo = student_repo("edited_test_inference");
    let run = ground_truth(repo.path());
    assert_distributed_workflow(&run);
    let acc = run["accuracy"].as_f64().unwrap();
    assert!(acc != numpy_template_accuracy(repo.path()), "the edit changes the accuracy: {acc}");
    let v = assert_fmtool_matches(repo.path(), &run);
    assert_eq!(v["grade"]["inference"], Value::Null, "not the course's test_inference: no parallel run");
}

/// softmax without the division, and relu with np.max (a reduction) instead of np.maximum: the
/// family of "implemented, but wrong" activations.
#[test]
fn ground_truth_wrong_activations() {
    let repo = student_repo("softmax_exp_only");
    let run = ground_truth(repo.path());
    let v = assert_fmtool_matches(repo.path(), &run);
    let sheet = &v["grade"]["credit_sheet"]["rows"];
    assert_eq!(sheet[1]["item"], "softmax");
    assert_eq!(sheet[1]["status"], "failed", "{sheet:#}");
    assert!(diagnosis_codes(&v).contains(&"softmax-not-normalised".to_string()), "{:?}", diagnosis_codes(&v));

    let repo = student_repo("relu_np_max");
    let run = ground_truth(repo.path());
    assert_eq!(points(&run, "relu()"), 0, "{run:#}");
    let v = assert_fmtool_matches(repo.path(), &run);
    let codes = diagnosis_codes(&v);
    assert!(codes.iter().any(|c| c.starts_with("relu-")), "{codes:?}");
}

/// relu() and softmax() are the graded assignment: a student's hints say which property fails on
/// which of the course's inputs, never the code that fixes it; `--solutions` (for teaching staff)
/// shows the code. The TODO left, softmax over axis 1, softmax without the division, relu with
/// np.max.
#[test]
fn hints_teach_relu_and_softmax_and_solutions_show_the_code() {
    let python = require_workflow_python();
    let cases: [(&str, &[&str], &str); 4] = [
        (
            "template_todo",
            &[
                "relu must map negative inputs to 0",
                "relu(np.array([-2, -1, 0, 1, 2])) and expects 3, yours gives 0",
                "softmax(np.array([2.0, 1.0, 0.1]))",
                "[0, 1]",
            ],
            "return np.maximum(0, x)",
        ),
        ("softmax_axis1", &["np.array([2.0, 1.0, 0.1])", "no axis 1", "(1, 10) rows"], "axis=-1"),
        ("softmax_exp_only", &["softmax(np.array([2.0, 1.0, 0.1]))", "sum to 1", "yours sum to"], "np.exp(...)"),
        ("relu_np_max", &["negative values mapped to 0", "np.array([-2, -1, 0, 1, 2])"], "np.maximum(0, x)"),
    ];
    for (case, says, code) in cases {
        let repo = student_repo(case);
        let hints = |extra: &[&str]| -> String {
            let mut args = vec!["score", "--format", "json", "--python", &python];
            args.extend(extra);
            let run = fmtool_in(repo.path(), &args);
            let v: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{case}: {e}: {}", run.stderr));
            let d = v["grade"]["diagnosis"].as_array().unwrap_or_else(|| panic!("{case}: no diagnosis: {v:#}"));
            d.iter().map(|d| d["hint"].as_str().unwrap_or_default().to_string()).collect::<Vec<_>>().join("\n")
        };
        let taught = hints(&[]);
        for solution in ["np.maximum", "np.exp", "return", "keepdims", "axis="] {
            assert!(!taught.contains(solution), "{case}: a hint hands out `{solution}`:\n{taught}");
        }
        for s in says {
            assert!(taught.contains(s), "{case}: no hint says {s:?}:\n{taught}");
        }
        let solved = hints(&["--solutions"]);
        assert!(solved.contains(code), "{case}: --solutions does not show `{code}`:\n{solved}");
    }
}

/// Ctrl-C while the student's code runs kills its processes (they run in a process group of their
/// own, which the terminal's SIGINT does not reach) and removes the temporary copy.
#[cfg(unix)]
#[test]
fn ctrl_c_leaves_no_copy_and_no_process_behind() {
    let python = require_workflow_python();
    let repo = student_repo("correct");
    let tmp = tempdir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fmtool"))
        .args(["score", "--python", &python])
        .current_dir(repo.path())
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    interrupt_once_copied(&mut child, tmp.path(), 1);
}

/// Waits until `copies` temporary copies exist in `tmp` (the child's TMPDIR) and the student's
/// code runs, sends SIGINT, and asserts that the child failed, that no copy is left and that no
/// process of the student's is still running.
#[cfg(unix)]
pub fn interrupt_once_copied(child: &mut std::process::Child, tmp: &Path, copies: usize) {
    let start = std::time::Instant::now();
    while std::fs::read_dir(tmp).unwrap().count() < copies && start.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(1000));
    assert_eq!(std::fs::read_dir(tmp).unwrap().count(), copies, "fmtool's copies of the repositories in TMPDIR");
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
    let left: Vec<_> = std::fs::read_dir(tmp).unwrap().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let left = processes_using(tmp);
    assert!(left.is_empty(), "student processes still running: {left:?}");
}

/// The processes whose command line names `dir`, or that have a folder of it mounted (a sandbox:
/// inside bubblewrap the student's processes see their copy as /repo, and only their mount table
/// says where it is on the host).
pub fn processes_using(dir: &Path) -> Vec<u32> {
    let needle = dir.display().to_string();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let mounts = std::fs::read_to_string(e.path().join("mountinfo")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&needle) || mounts.contains(&needle) {
            found.push(pid);
        }
    }
    found
}

/// A package the workflow installs but the local Python lacks: fmtool says its rows are not what
/// the grader gives, and how to fix the Python, instead of passing the failure off as the grade.
#[test]
fn a_package_the_grader_installs_but_this_python_lacks_is_named() {
    let python = require_workflow_python();
    let repo = student_repo("correct");
    let yml = repo.path().join(".github/workflows/classroom.yml");
    let text = std::fs::read_to_string(&yml).unwrap();
    std::fs::write(
        &yml,
        text.replace("pip3 install pytest pandas argparse", "pip3 install pytest pandas argparse fmtool-absent-pkg"),
    )
    .unwrap();
    let nn = repo.path().join("nn_predict.py");
    let code = std::fs::read_to_string(&nn).unwrap();
    std::fs::write(&nn, format!("import fmtool_absent_pkg\n{code}")).unwrap();
    let run = fmtool_in(repo.path(), &["score", "--format", "json", "--python", &python]);
    let v: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stderr));
    let d = &v["grade"]["diagnosis"][0];
    assert_eq!(d["code"], "python-lacks-package", "{:#}", v["grade"]["diagnosis"]);
    assert!(d["message"].as_str().unwrap().contains("fmtool_absent_pkg"), "{d:#}");
    assert_eq!(crate::score::schema_errors("score-report.schema.json", &v), Vec::<String>::new());
}

/// The stored ground truth is what the workflow gives now: one case run for real on every run of
/// the suite, step for step (points, pass or fail, exit code), total and accuracy.
#[test]
fn stored_ground_truth_is_reproduced() {
    let repo = student_repo("softmax_axis1");
    let stored = ground_truth(repo.path());
    let real = run_workflow_for_real(repo.path());
    let key = |v: &Value| -> Vec<(Value, Value, Value, Value)> {
        v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["test_name"].clone(), s["points"].clone(), s["passed"].clone(), s["exit_code"].clone()))
            .collect()
    };
    assert_eq!(key(&stored), key(&real));
    assert_eq!((&stored["total"], &stored["accuracy"]), (&real["total"], &real["accuracy"]));
}

/// `--python` given as a relative path (`.venv/bin/python`) names the file from where
/// fmtool was started, although the student's code runs in a temporary copy elsewhere.
#[cfg(unix)]
#[test]
fn a_relative_python_path_is_the_one_beside_the_caller() {
    let python = require_workflow_python();
    let python = if python.contains('/') {
        std::path::PathBuf::from(&python)
    } else {
        std::env::split_paths(&std::env::var_os("PATH").unwrap())
            .map(|d| d.join(&python))
            .find(|p| p.is_file())
            .unwrap()
    };
    let here = tempdir();
    // The same interpreter, named relative to `here` (`../../work/.venv-test/bin/python`): a venv's
    // python must keep its own path to find its packages.
    let up = "../".repeat(here.path().components().count() - 1);
    let relative = format!("{up}{}", python.display().to_string().trim_start_matches('/'));
    copy_tree(student_repo("tensorflow_import").path(), &here.path().join("repo"), &[]);
    let run = fmtool_in(here.path(), &["score", "--model", "repo", "--python", &relative, "--format", "json"]);
    let v: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stderr));
    assert_eq!(v["grade"]["not_run"], Value::Null, "{:#}", v["grade"]);
    assert!(v["grade"]["python"]["path"].as_str().unwrap().starts_with('/'), "{:#}", v["grade"]["python"]);
}

/// `fmtool score` in one's own repository where no sandbox can be made (here: a bwrap that is not
/// there) still grades it, says once that the code ran without one, and gives the same points;
/// a `--timeout` other than the workflow's is said with the points.
#[test]
fn score_without_a_sandbox_says_so_and_grades_the_same() {
    let python = require_workflow_python();
    let repo = student_repo("tensorflow_import");
    let run = |extra: &[&str], bwrap: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fmtool"));
        cmd.args(["score", "--python", &python]).args(extra).current_dir(repo.path());
        if let Some(b) = bwrap {
            cmd.env("FMTOOL_BWRAP", b);
        }
        let out = cmd.output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, text) = run(&[], Some("/nonexistent/bwrap"));
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(text.matches("ran without a sandbox").count(), 1, "{text}");
    assert!(text.contains("run without a sandbox with Python"), "{text}");
    let (_, json) = run(&["--format", "json", "--timeout", "30"], Some("/nonexistent/bwrap"));
    let unsandboxed: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(unsandboxed["grade"]["isolation"], "none");
    let notes = unsandboxed["grade"]["notes"].to_string();
    assert!(notes.contains("--timeout 30 s instead of the workflow's own"), "{notes}");
    if crate::common::sandbox_or_skip("score_without_a_sandbox_says_so_and_grades_the_same") {
        let (_, json) = run(&["--format", "json", "--timeout", "30"], None);
        let sandboxed: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(sandboxed["grade"]["isolation"], "bubblewrap");
        assert_eq!(sandboxed["points"], unsandboxed["points"]);
        let steps = |v: &Value| -> Vec<(Value, Value)> {
            v["grade"]["workflow"]["steps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| (s["name"].clone(), s["points"].clone()))
                .collect()
        };
        assert_eq!(steps(&sandboxed), steps(&unsandboxed));
    }
}
