//! The course's rules (issue 26): repositories that edit the course's files or play a trick on the
//! grader (tests/fixtures/integrity, from `cargo xtask integrity-fixtures`) get the points their
//! workflow really awards (run for real with sh + pytest: the ground truth), and every departure is
//! named; the honest student cases have none.

use crate::common::*;
use crate::student::{
    build_overlay, copy_tree, ground_truth, overlay_cases, require_workflow_python, student_cases, student_repo,
};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// `fmtool grade` over `class` as JSON, in the sandbox where one can be made (else without it:
/// these repositories are benign).
fn grade(class: &Path, extra: &[&str]) -> Value {
    let python = require_workflow_python();
    let out = tempdir();
    let json = out.path().join("grade.json");
    let json_s = json.display().to_string();
    let class_s = class.display().to_string();
    let mut args = vec!["grade", &class_s, "--json", &json_s, "--python", &python, "--jobs", "2"];
    args.extend_from_slice(extra);
    let isolated = Command::new("bwrap")
        .args(["--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--", "/bin/true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !isolated {
        args.push("--no-isolation");
    }
    let run = fmtool_in(class, &args);
    assert!(run.code == 0 || run.code == 1, "fmtool grade exited {}: {}", run.code, run.stderr);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(crate::score::schema_errors("grade-report.schema.json", &v), Vec::<String>::new());
    v
}

fn row<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["repos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["repo"].as_str().unwrap().ends_with(&format!("/{name}")))
        .unwrap_or_else(|| panic!("no row for {name}"))
}

fn codes(row: &Value) -> Vec<String> {
    row["integrity"].as_array().unwrap().iter().map(|d| d["code"].as_str().unwrap().to_string()).collect()
}

/// The committed cases are what xtask/py/make_integrity_repos.py writes.
#[test]
fn the_integrity_fixtures_are_what_their_script_writes() {
    let out = Command::new(require_workflow_python())
        .arg(root().join("xtask/py/make_integrity_repos.py"))
        .arg("--check")
        .output()
        .expect("python runs");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// Each case's row: the real workflow's points, step by step, and its departures named. A case
/// whose trick fmtool's harness does not see (the harness calls the tests itself) is run as GitHub
/// runs it, and says that the harness alone gave other points.
#[test]
fn every_departure_is_named_and_the_points_are_what_github_awards() {
    let class = tempdir();
    let cases = overlay_cases("integrity");
    assert!(cases.len() >= 15, "{}", cases.len());
    for (name, case) in &cases {
        build_overlay(&class.path().join(name), "integrity", name, case);
    }
    let report = grade(class.path(), &[]);
    let mut failures = Vec::new();
    for (name, case) in &cases {
        let real = ground_truth(&class.path().join(name));
        let r = row(&report, name);
        let steps: Vec<(String, u64)> = r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["name"].as_str().unwrap().to_string(), s["points"].as_u64().unwrap()))
            .collect();
        let want: Vec<(String, u64)> = real["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["test_name"].as_str().unwrap().to_string(), s["points"].as_u64().unwrap()))
            .collect();
        if steps != want || r["points"] != real["total"] {
            failures.push(format!("{name}: fmtool {} {steps:?}\n  real {} {want:?}", r["points"], real["total"]));
        }
        let found = codes(r);
        for c in case["codes"].as_array().unwrap() {
            if !found.iter().any(|f| f == c.as_str().unwrap()) {
                failures.push(format!("{name}: {c} not named; found {found:?}"));
            }
        }
        // Every case departs, so every case's workflow ran as GitHub runs it.
        if r["real_run"].is_null() {
            failures.push(format!("{name}: the workflow did not run as GitHub runs it: {r:#}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Where the harness alone is fooled or too strict, the row says what it gave.
    let exit = row(&report, "exit_at_import");
    assert!(exit["harness_points"].as_u64().unwrap() < exit["points"].as_u64().unwrap(), "{exit:#}");
    assert!(codes(exit).contains(&"behaves-differently".to_string()), "{exit:#}");
    // A trick that changes nothing on the runner is only suspicious.
    let site = row(&report, "sitecustomize_patch");
    assert!(site["integrity"].as_array().unwrap().iter().all(|d| d["effect"] == "suspicious"), "{site:#}");
    // An edited course file's effect is measured against the course's own files.
    let wf = row(&report, "edited_workflow");
    assert_eq!(wf["course_files_points"], 79, "{wf:#}");
    let edited = wf["integrity"].as_array().unwrap().iter().find(|d| d["code"] == "course-file-changed").unwrap();
    assert_eq!(edited["effect"], "changes the grade", "{edited:#}");
    assert!(
        edited["details"].as_array().unwrap().iter().any(|d| d.as_str().unwrap().contains("max-score 10 became 20")),
        "{edited:#}"
    );
}

/// The honest student cases depart from nothing, and their workflows are not run twice.
#[test]
fn honest_repositories_have_no_departure() {
    let departing = ["edited_model_test", "edited_test_inference", "correct_fixed_workflow"];
    let class = tempdir();
    let honest: Vec<String> = student_cases().into_iter().filter(|c| !departing.contains(&c.as_str())).collect();
    for c in &honest {
        copy_tree(student_repo(c).path(), &class.path().join(c), &[]);
    }
    let report = grade(class.path(), &["--audit", "0"]);
    for c in &honest {
        let r = row(&report, c);
        assert_eq!(r["integrity"], Value::Array(Vec::new()), "{c}: {r:#}");
        assert_eq!(r["real_run"], Value::Null, "{c}");
    }
}

/// `fmtool check` names a departure as a warning (the hook must not block a commit the workflow
/// still grades), and as an error under `--strict`.
#[test]
fn check_warns_of_departures_and_strict_makes_them_errors() {
    let (name, case) = overlay_cases("integrity").into_iter().find(|(n, _)| n == "pytest_ini_collect_only").unwrap();
    let repo = tempdir();
    build_overlay(repo.path(), "integrity", &name, &case);
    let run = fmtool_in(repo.path(), &["check"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("pytest.ini:2: warning[pytest-config]"), "{}", run.stdout);
    assert!(run.stdout.contains("[changes the grade]"), "{}", run.stdout);
    let strict = fmtool_in(repo.path(), &["check", "--strict"]);
    assert_eq!(strict.code, 1, "{}", strict.stdout);
    assert!(strict.stdout.contains("pytest.ini:2: error[pytest-config]"), "{}", strict.stdout);
    // An edited model_test.py: the function and the short diff.
    let edited = student_repo("edited_model_test");
    let run = fmtool_in(edited.path(), &["check"]);
    assert!(run.stdout.contains("warning[course-file-changed]"), "{}", run.stdout);
    assert!(run.stdout.contains("test_acc_88: `assert acc >= 0.88` became `assert acc >= 0.8`"), "{}", run.stdout);
}

/// A whole course's reference can be another checkout (`--course`): the same edit is then no
/// departure.
#[test]
fn a_course_checkout_replaces_the_built_in_course() {
    let edited = student_repo("edited_model_test");
    let course = tempdir();
    copy_tree(edited.path(), course.path(), &[]);
    let dir = course.path().display().to_string();
    let run = fmtool_in(edited.path(), &["check", "--course", &dir]);
    assert!(!run.stdout.contains("course-file-changed"), "{}", run.stdout);
    let missing = fmtool_in(edited.path(), &["check", "--course", "/nonexistent-course"]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(missing.stderr.contains("no model_test.py"), "{}", missing.stderr);
}
