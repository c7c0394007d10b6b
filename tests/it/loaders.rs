//! check's verdict follows the student's own code (issue 27): student repositories whose
//! nn_predict.py reads other JSON layouts, or imports TensorFlow where the tests do or do not reach
//! it (tests/fixtures/loaders, from `cargo xtask loader-fixtures`). `fmtool check` runs the
//! student's code on the tests' path; its exit code is 1 exactly where the workflow, run for real,
//! fails the Model Inference step.

use crate::common::*;
use crate::student::{build_overlay, ground_truth, overlay_cases, require_workflow_python, student_repo};
use serde_json::Value;
use std::path::Path;

/// `fmtool check --format json` in a repository, with the workflow's Python for the student's code.
fn check_json(repo: &Path, extra: &[&str]) -> (i32, Value) {
    let python = require_workflow_python();
    let mut args = vec!["check", "--format", "json", "--python", &python];
    args.extend_from_slice(extra);
    let run = fmtool_in(repo, &args);
    let v: Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", run.stdout, run.stderr));
    assert_eq!(crate::score::schema_errors("check-report.schema.json", &v), Vec::<String>::new());
    (run.code, v)
}

/// The severity of the first finding of `code`.
fn severity_of(v: &Value, code: &str) -> Option<String> {
    v["findings"].as_array().unwrap().iter().find(|f| f["code"] == code).map(|f| f["severity"].as_str().unwrap().into())
}

/// Each case's exit code and findings are the ones case.json names, and the student's code ran
/// where only a run can judge.
#[test]
fn check_judges_each_repository_by_running_its_code() {
    let cases = overlay_cases("loaders");
    assert!(cases.len() >= 11, "{}", cases.len());
    let mut failures = Vec::new();
    for (name, case) in &cases {
        let repo = tempdir();
        build_overlay(repo.path(), "loaders", name, case);
        let (code, v) = check_json(repo.path(), &[]);
        let want_exit = case["exit"].as_i64().unwrap() as i32;
        if code != want_exit {
            failures.push(format!("{name}: exit {code}, want {want_exit}: {:#}", v["findings"]));
        }
        for (c, sev) in case["findings"].as_object().unwrap() {
            let got = severity_of(&v, c);
            if got.as_deref() != sev.as_str() {
                failures.push(format!("{name}: {c} is {got:?}, want {sev}: {:#}", v["findings"]));
            }
        }
        let ran = !v["student_code"][0]["trial"].is_null();
        if ran != case["student_code_runs"].as_bool().unwrap() {
            failures.push(format!("{name}: the student's code ran: {ran}: {:#}", v["student_code"]));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// An error where the inference step fails, none where it passes: the workflow run for real.
#[test]
fn check_blocks_exactly_where_the_workflow_fails_the_inference_step() {
    let mut failures = Vec::new();
    for (name, case) in &overlay_cases("loaders") {
        let repo = tempdir();
        build_overlay(repo.path(), "loaders", name, case);
        let real = ground_truth(repo.path());
        let step = real["steps"].as_array().unwrap().iter().find(|s| s["test_name"] == "Model Inference").unwrap();
        let passes = case["inference_passes"].as_bool().unwrap();
        assert_eq!(passes, case["exit"] == 0, "{name}: case.json pairs exit 1 with a failing inference step");
        if step["passed"] != passes {
            failures.push(format!(
                "{name}: Model Inference passed: {}, case.json: {passes}\n{}",
                step["passed"], step["output"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The reasons are the student's: a layout read by the student's loader is a note that says so;
/// the failing case names the exception's line in nn_predict.py; the human report says what ran.
#[test]
fn the_messages_say_what_ran_and_where_it_failed() {
    let cases = overlay_cases("loaders");
    let case = |n: &str| cases.iter().find(|(name, _)| name == n).unwrap().1.clone();
    let repo = tempdir();
    build_overlay(repo.path(), "loaders", "to_json_keras3_own_loader", &case("to_json_keras3_own_loader"));
    let (_, v) = check_json(repo.path(), &[]);
    let note = v["findings"].as_array().unwrap().iter().find(|f| f["code"] == "not-course-layout").unwrap();
    assert!(
        note["message"].as_str().unwrap().contains("layers_of")
            || note["message"].as_str().unwrap().contains("nn_forward_h5()"),
        "{note:#}"
    );
    assert_eq!(v["notes"], 1);
    let python = require_workflow_python();
    let human = fmtool_in(repo.path(), &["check", "--python", &python]);
    assert_eq!(human.code, 0, "{}", human.stdout);
    assert!(human.stdout.contains("note[not-course-layout]"), "{}", human.stdout);
    assert!(
        human.stdout.contains("ran your nn_predict.py as the tests do")
            && human.stdout.contains("8 test images classified"),
        "{}",
        human.stdout
    );
    // Judged from the files alone, the same repository is an error.
    let (code, v) = check_json(repo.path(), &["--no-student-code"]);
    assert_eq!((code, severity_of(&v, "not-course-layout").as_deref()), (1, Some("error")));

    let repo = tempdir();
    build_overlay(repo.path(), "loaders", "tf_import_called_helper", &case("tf_import_called_helper"));
    let (_, v) = check_json(repo.path(), &[]);
    let f = v["findings"].as_array().unwrap().iter().find(|f| f["code"] == "grader-missing-import").unwrap();
    let text = std::fs::read_to_string(repo.path().join("nn_predict.py")).unwrap();
    let line = text.lines().position(|l| l.contains("import tensorflow")).unwrap() + 1;
    assert_eq!(f["location"]["line"], line, "{f:#}");
    assert!(f["message"].as_str().unwrap().contains("failed here"), "{f:#}");
}

/// The student cases whose inference step fails stay errors when their code runs: a module-level
/// TensorFlow import, and an IndexError in the course's loader edited by the student (its files
/// are fine: only the run finds it), at the line that raised; the template with relu and softmax
/// written, the course's loader, is judged from its files without starting Python.
#[test]
fn failing_student_code_is_an_error_at_its_line() {
    let repo = student_repo("tensorflow_import");
    let (code, v) = check_json(repo.path(), &[]);
    assert_eq!((code, severity_of(&v, "grader-missing-import").as_deref()), (1, Some("error")), "{v:#}");
    let repo = student_repo("crash_in_inference");
    let (code, v) = check_json(repo.path(), &[]);
    assert_eq!((code, severity_of(&v, "inference-fails").as_deref()), (1, Some("error")), "{v:#}");
    let f = v["findings"].as_array().unwrap().iter().find(|f| f["code"] == "inference-fails").unwrap();
    let text = std::fs::read_to_string(repo.path().join("nn_predict.py")).unwrap();
    let line = text.lines().position(|l| l.contains("wnames[2]")).unwrap() + 1;
    assert_eq!(
        (f["location"]["file"].as_str(), f["location"]["line"].as_u64()),
        (Some("nn_predict.py"), Some(line as u64)),
        "{f:#}"
    );
    assert!(
        f["message"].as_str().unwrap().contains("IndexError")
            && f["message"].as_str().unwrap().contains("test image 0"),
        "{f:#}"
    );
    let repo = student_repo("correct");
    let (code, v) = check_json(repo.path(), &[]);
    assert_eq!(code, 0, "{v:#}");
    assert!(v["student_code"].as_array().unwrap().is_empty(), "{v:#}");
}

/// Under pre-commit's `language: python` hook, python3 on PATH and $VIRTUAL_ENV are the hook's
/// own environment without NumPy: check passes over it to the student's Python.
#[test]
fn the_hooks_own_environment_is_passed_over() {
    let cases = overlay_cases("loaders");
    let (name, case) = cases.iter().find(|(n, _)| n == "to_json_keras3_own_loader").unwrap();
    let repo = tempdir();
    build_overlay(repo.path(), "loaders", name, case);
    let hook = tempdir();
    let bin = hook.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(hook.path().join("pyvenv.cfg"), "home = /usr/bin\ninclude-system-site-packages = false\n").unwrap();
    std::fs::create_dir_all(hook.path().join("lib/python3.11/site-packages")).unwrap();
    std::os::unix::fs::symlink("/bin/false", bin.join("python3")).unwrap();
    let student = Path::new(&require_workflow_python()).parent().unwrap().to_path_buf();
    let path = std::env::join_paths([bin.clone(), student.clone(), "/usr/bin".into(), "/bin".into()]).unwrap();
    // check in the repository as the hook runs it: PATH and $VIRTUAL_ENV as pre-commit sets them.
    let as_hook = |path: std::ffi::OsString| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_fmtool"))
            .args(["check", "--format", "json"])
            .current_dir(repo.path())
            .env("PATH", path)
            .env("VIRTUAL_ENV", hook.path())
            .env_remove("CONDA_PREFIX")
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(0), "{v:#}");
        v
    };
    let v = as_hook(path);
    let python = v["student_code"][0]["python"].as_str().unwrap();
    assert!(python.starts_with(&student.join("python3").display().to_string()), "{python}");
    // With only the hook's environment, the code is not run: a warning, never an error.
    let v = as_hook(std::env::join_paths([bin]).unwrap());
    assert_eq!(severity_of(&v, "not-course-layout").as_deref(), Some("warning"));
    assert_eq!(severity_of(&v, "student-code-not-run").as_deref(), Some("warning"));
}
