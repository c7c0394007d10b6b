//! Paths the grader's runner lacks (issue 27): student repositories whose model_test.py or
//! nn_predict.py names a path on the student's computer (tests/fixtures/paths, from `cargo xtask
//! path-fixtures`). `fmtool check` makes an error where the workflow's inference step really fails
//! on it (the workflow run for real: the ground truth), and only a warning where the tests never
//! reach the path.

use crate::common::*;
use crate::student::{build_overlay, ground_truth, overlay_cases, require_workflow_python};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The committed cases are what xtask/py/make_path_repos.py writes.
#[test]
fn the_path_fixtures_are_what_their_script_writes() {
    let out = Command::new(require_workflow_python())
        .arg(root().join("xtask/py/make_path_repos.py"))
        .arg("--check")
        .output()
        .expect("python runs");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// Where a finding is and how bad: (file, line, severity).
type Place = (String, u64, String);

/// The place of a finding whose file and line `at` holds.
fn place(at: &Value, severity: &Value) -> Place {
    let text = |v: &Value| v.as_str().unwrap().to_string();
    (text(&at["file"]), at["line"].as_u64().unwrap(), text(severity))
}

/// What `fmtool check --format json` said in a repository about paths the runner lacks.
struct Checked {
    code: i32,
    places: Vec<Place>,
    /// The first runner-missing-path finding's message and hint.
    first: Option<(String, String)>,
}

fn check_paths(repo: &Path) -> Checked {
    let run = fmtool_in(repo, &["check", "--format", "json"]);
    let v: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.stdout));
    assert_eq!(crate::score::schema_errors("check-report.schema.json", &v), Vec::<String>::new());
    let found: Vec<&Value> =
        v["findings"].as_array().unwrap().iter().filter(|f| f["code"] == "runner-missing-path").collect();
    let places = found.iter().map(|f| place(&f["location"], &f["severity"])).collect();
    let first = found.first().map(|f| (f["message"].as_str().unwrap().into(), f["hint"].as_str().unwrap().into()));
    Checked { code: run.code, places, first }
}

/// Each case's findings, severities, files, lines and exit code are the ones case.json names; an
/// error names the runner's checkout and says what to write instead.
#[test]
fn check_names_each_path_where_it_is() {
    let cases = overlay_cases("paths");
    assert!(cases.len() >= 4, "{}", cases.len());
    let mut failures = Vec::new();
    for (name, case) in &cases {
        let repo = tempdir();
        build_overlay(repo.path(), "paths", name, case);
        let Checked { code, places, first } = check_paths(repo.path());
        let want: Vec<Place> = case["findings"].as_array().unwrap().iter().map(|f| place(f, &f["severity"])).collect();
        if places != want || code as u64 != case["exit"].as_u64().unwrap() {
            failures.push(format!("{name}: exit {code}, found {places:?}\n  want exit {}, {want:?}", case["exit"]));
        }
        if let (Some((message, hint)), Some(f)) = (first, want.first())
            && f.2 == "error"
            && !(message.contains("/home/runner/work/<repo>/<repo>") && hint.contains("'model/fashion_mnist.npz'"))
        {
            failures.push(format!(
                "{name}: the message must name the runner's checkout and the relative path:\n  {message}\n  hint: {hint}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The errors are right and the warning is right not to block: the workflow, run for real, fails
/// the Model Inference step (0 points) where check says error, and passes it where check only
/// warns or finds nothing.
#[test]
fn the_workflow_fails_the_inference_step_where_check_says_error() {
    let mut failures = Vec::new();
    for (name, case) in &overlay_cases("paths") {
        let repo = tempdir();
        build_overlay(repo.path(), "paths", name, case);
        let real = ground_truth(repo.path());
        let step = real["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["test_name"] == "Model Inference")
            .unwrap_or_else(|| panic!("{name}: no Model Inference step: {real:#}"));
        let passes = case["inference_passes"].as_bool().unwrap();
        let errors = case["findings"].as_array().unwrap().iter().any(|f| f["severity"] == "error");
        assert_eq!(passes, !errors, "{name}: case.json pairs an error with a failing inference step");
        let points = step["points"].as_u64().unwrap();
        if (points > 0) != passes || step["passed"] != passes {
            failures.push(format!(
                "{name}: Model Inference gave {points} points (passed: {}), case.json: passes {passes}\n{}",
                step["passed"], step["output"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
