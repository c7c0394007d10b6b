//! `fmtool grade`: a class of student repositories (the fixtures' cases, a repo without a
//! workflow, a broken one) graded in one run; every row is what `fmtool score` gives in that
//! repository alone, and a re-run with the cache grades only what changed.

use crate::common::*;
use crate::student::{require_workflow_python, student_repo};
use serde_json::Value;
use std::path::Path;

fn copy_tree(from: &Path, to: &Path) {
    crate::student::copy_tree(from, to, &[]);
}

/// A class folder: four fixture cases (one with a hand-trimmed JSON layout: no `units`, weight
/// names on Flatten, (1, n) float64 biases), the correct one again without its workflow (graded
/// by the credit sheet), and a repository whose model JSON is cut off.
fn class() -> tempfile::TempDir {
    let class = tempdir();
    for case in ["correct", "template_todo", "tensorflow_import", "handwritten_json"] {
        copy_tree(student_repo(case).path(), &class.path().join(case));
    }
    let no_workflow = class.path().join("no_workflow");
    copy_tree(&class.path().join("correct"), &no_workflow);
    std::fs::remove_dir_all(no_workflow.join(".github")).unwrap();
    let broken = class.path().join("broken");
    copy_tree(&class.path().join("correct"), &broken);
    std::fs::write(broken.join("model/fashion_mnist.json"), "[{\"name\": ").unwrap();
    class
}

#[test]
fn a_class_is_graded_as_score_grades_each_repo_and_regraded_incrementally() {
    let python = require_workflow_python();
    let class = class();
    let out = tempdir();
    let (csv, json, cache) = (out.path().join("class.csv"), out.path().join("class.json"), out.path().join("cache"));
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["grade", class.path().to_str().unwrap(), "--python", &python, "--cache"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.push(cache.to_str().unwrap().into());
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |a: Vec<String>| fmtool(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let page = out.path().join("report");
    let first = run(args(&[
        "--csv",
        csv.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--report",
        page.to_str().unwrap(),
    ]));
    assert_eq!(first.code, 0, "{}", first.stderr);
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    // The HTML page, as a real browser renders it, shows the JSON's numbers.
    crate::browser::check_grade_page(&page.join("index.html"), &report);
    assert_eq!(crate::score::schema_errors("grade-report.schema.json", &report), Vec::<String>::new());
    let rows = report["repos"].as_array().unwrap();
    let names: Vec<&str> =
        rows.iter().map(|r| Path::new(r["repo"].as_str().unwrap()).file_name().unwrap().to_str().unwrap()).collect();
    assert_eq!(names, ["broken", "correct", "handwritten_json", "no_workflow", "template_todo", "tensorflow_import"]);
    assert_eq!(report["cached"], 0);

    // Every row is what `fmtool score` gives in that repository alone.
    for row in rows {
        let repo = Path::new(row["repo"].as_str().unwrap());
        let alone = fmtool_in(repo, &["score", "--format", "json", "--python", &python]);
        let v: Value = serde_json::from_str(&alone.stdout).unwrap_or_else(|e| panic!("{e}: {}", alone.stderr));
        assert_eq!(row["points"], v["points"], "{}", repo.display());
        assert_eq!(row["model_accuracy"], v["accuracy"], "{}", repo.display());
        assert_eq!(row["student_accuracy"], v["grade"]["student_accuracy"], "{}", repo.display());
        assert_eq!(row["credit_sheet"], v["grade"]["credit_sheet"]["total"], "{}", repo.display());
        let steps: Vec<(Value, Value)> = v["grade"]["workflow"]["steps"]
            .as_array()
            .map(|s| s.iter().map(|s| (s["name"].clone(), s["points"].clone())).collect())
            .unwrap_or_default();
        let ours: Vec<(Value, Value)> =
            row["steps"].as_array().unwrap().iter().map(|s| (s["name"].clone(), s["points"].clone())).collect();
        assert_eq!(ours, steps, "{}", repo.display());
    }
    let by = |name: &str| rows.iter().find(|r| r["repo"].as_str().unwrap().ends_with(name)).unwrap();
    assert_eq!(by("/correct")["points"], 79, "the distributed workflow's softmax step never passes");
    assert_eq!(by("/no_workflow")["points"], 86, "without a workflow: the credit sheet");
    assert_eq!(by("/template_todo")["relu"], "failed");
    assert_eq!(by("/tensorflow_import")["check_errors"], 1);
    assert!(by("/handwritten_json")["points"].as_u64().unwrap() > 50, "{}", by("/handwritten_json"));
    assert!(by("/broken")["first_finding"].as_str().unwrap().starts_with("invalid-json"), "{}", by("/broken"));

    // The CSV: a header with one column per workflow step, then a row per repository.
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 6);
    assert!(lines[0].starts_with("repo,commit,points,max,credit_sheet,") && lines[0].contains("step: Accuracy >= 92"));
    assert!(lines[2].contains(",79,100,86,"), "{}", lines[2]);

    // Again: everything from the cache. Then one student pushes: only that repository is graded.
    let again = run(args(&["--format", "json"]));
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(json_of(&again)["cached"], 6);
    let nn = class.path().join("template_todo/nn_predict.py");
    let fixed = std::fs::read_to_string(class.path().join("correct/nn_predict.py")).unwrap();
    std::fs::write(&nn, fixed + "# relu and softmax done\n").unwrap();
    let after = run(args(&["--format", "json"]));
    let v = json_of(&after);
    assert_eq!(v["cached"], 5);
    let row = v["repos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["repo"].as_str().unwrap().ends_with("/template_todo"))
        .unwrap();
    assert_eq!(
        (row["cached"].clone(), row["relu"].clone(), row["points"].clone()),
        (false.into(), "passed".into(), 79.into())
    );

    // A file of the user's is not replaced by --csv without --overwrite, and nothing is graded.
    let mine = out.path().join("mine.csv");
    std::fs::write(&mine, "my notes").unwrap();
    let refused = run(args(&["--csv", mine.to_str().unwrap()]));
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("nothing was graded") && refused.stderr.contains("--overwrite"),
        "{}",
        refused.stderr
    );
    assert_eq!(std::fs::read_to_string(&mine).unwrap(), "my notes");
    // Nor a page of the user's in the --report folder.
    let theirs = out.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::write(theirs.join("index.html"), "<p>my page</p>").unwrap();
    let refused = run(args(&["--report", theirs.to_str().unwrap()]));
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("not a page fmtool grade wrote"), "{}", refused.stderr);
    assert_eq!(std::fs::read_to_string(theirs.join("index.html")).unwrap(), "<p>my page</p>");
}

fn json_of(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

#[test]
fn a_path_that_is_no_class_is_an_error_naming_it() {
    let empty = tempdir();
    let run = fmtool(&["grade", empty.path().to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no student repository in it"), "{}", run.stderr);
}

/// A submission that hangs, one that allocates without bound, one that forks and one that deletes its folder
/// become rows with their error, within their limits, and change nothing for the others or in
/// their own repositories.
#[test]
fn hostile_submissions_are_rows_and_leave_the_others_alone() {
    let python = require_workflow_python();
    let class = tempdir();
    let good = class.path().join("good");
    copy_tree(student_repo("tensorflow_import").path(), &good);
    let bodies = [
        ("hangs", "def nn_inference(model_arch, weights, data):\n    while True:\n        pass\n"),
        (
            "greedy",
            "def nn_inference(model_arch, weights, data):\n    hog = []\n    while True:\n        hog.append(bytearray(1 << 26))\n",
        ),
        (
            // 400 at most, so that a failing check leaves the time limit to clean up.
            "forks",
            "import os, time\n\ndef nn_inference(model_arch, weights, data):\n    for _ in range(400):\n        if os.fork() == 0:\n            time.sleep(60)\n            os._exit(0)\n    time.sleep(60)\n",
        ),
        (
            // Appends to its classmates' nn_predict.py through relative paths: were the code run
            // in place, "../good" would be the sibling repository.
            "tampers",
            "import os\n\ndef nn_inference(model_arch, weights, data):\n    for up in ('..', '../..', '../../..'):\n        for name in ('good', 'hangs', 'tampers'):\n            try:\n                with open(os.path.join(up, name, 'nn_predict.py'), 'a') as f:\n                    f.write('# tampered')\n            except OSError:\n                pass\n    raise SystemExit(1)\n",
        ),
        (
            "deletes",
            "import os, shutil\n\ndef nn_inference(model_arch, weights, data):\n    shutil.rmtree(os.getcwd(), ignore_errors=True)\n    raise SystemExit(1)\n",
        ),
    ];
    for (name, body) in bodies {
        let repo = class.path().join(name);
        copy_tree(student_repo("correct").path(), &repo);
        let nn = repo.join("nn_predict.py");
        let text = std::fs::read_to_string(&nn).unwrap() + "\n\n" + body;
        std::fs::write(&nn, text).unwrap();
    }
    let names = ["hangs", "greedy", "forks", "tampers", "deletes", "good"];
    let before: Vec<(String, usize)> =
        names.iter().map(|n| (n.to_string(), std::fs::read_dir(class.path().join(n)).unwrap().count())).collect();
    let code_before: Vec<String> =
        names.iter().map(|n| std::fs::read_to_string(class.path().join(n).join("nn_predict.py")).unwrap()).collect();
    let start = std::time::Instant::now();
    let run =
        fmtool(&["grade", class.path().to_str().unwrap(), "--python", &python, "--timeout", "8", "--format", "json"]);
    // 1: fmtool stopped a student's code (the fork bomb); the report is there all the same.
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(start.elapsed().as_secs() < 120, "the hanging submission held the class up: {:?}", start.elapsed());
    let v = json_of(&run);
    let row = |name: &str| {
        v["repos"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["repo"].as_str().unwrap().ends_with(&format!("/{name}")))
            .unwrap()
            .clone()
    };
    for name in ["hangs", "greedy", "forks", "tampers", "deletes"] {
        let r = row(name);
        let inference = r["steps"].as_array().unwrap().iter().find(|s| s["name"] == "Model Inference").unwrap().clone();
        assert_eq!(inference["points"], 0, "{name}: {r:#}");
        assert_eq!(r["student_accuracy"], Value::Null, "{name}");
    }
    for name in ["hangs", "greedy", "forks"] {
        assert_eq!(row(name)["relu"], "passed", "{name}: relu is graded whatever nn_inference does");
    }
    let forks = row("forks");
    let stopped = forks["stopped"].as_str().unwrap_or_default();
    assert!(stopped.contains("processes at once"), "the fork bomb is named: {forks}");
    assert_eq!(row("good")["stopped"], Value::Null);
    // As on the runner, the steps after the one that deleted the checkout find nothing to run.
    assert_eq!(row("deletes")["points"], 0);
    // The good repository's row is what score gives it alone; every repository is as it was.
    let alone = fmtool_in(&good, &["score", "--format", "json", "--python", &python]);
    let alone: Value = serde_json::from_str(&alone.stdout).unwrap();
    assert_eq!(row("good")["points"], alone["points"]);
    for (name, count) in before {
        assert_eq!(std::fs::read_dir(class.path().join(&name)).unwrap().count(), count, "{name} was changed");
    }
    assert!(class.path().join("deletes/nn_predict.py").is_file());
    for (name, code) in names.iter().zip(&code_before) {
        let now = std::fs::read_to_string(class.path().join(name).join("nn_predict.py")).unwrap();
        assert_eq!(&now, code, "{name}/nn_predict.py was changed");
    }
}

/// Grading at scale: reports `fmtool score --format json` wrote in each repository (on its own CI
/// runner) are rows as they are, beside repositories graded here; a file that is no such report
/// is a row with that error. Such rows are what the student says: the JSON, the CSV, the table
/// and the page mark them self-reported, and the row graded here "graded".
#[test]
fn collected_score_reports_are_rows() {
    let python = require_workflow_python();
    let repo = student_repo("tensorflow_import");
    let run = fmtool_in(repo.path(), &["score", "--format", "json", "--python", &python]);
    let out = tempdir();
    let collected = out.path().join("alice.json");
    std::fs::write(&collected, &run.stdout).unwrap();
    let other = out.path().join("bob.json");
    std::fs::write(&other, "{\"hello\": 1}").unwrap();
    let (csv, page) = (out.path().join("class.csv"), out.path().join("page"));
    let files = ["--csv", csv.to_str().unwrap(), "--report", page.to_str().unwrap()];
    let mut args = vec!["grade", collected.to_str().unwrap(), other.to_str().unwrap(), repo.path().to_str().unwrap()];
    args.extend(["--python", &python, "--format", "json"]);
    let graded = fmtool(&[&args[..], &files].concat());
    assert_eq!(graded.code, 0, "{}", graded.stderr);
    let v = json_of(&graded);
    assert_eq!(crate::score::schema_errors("grade-report.schema.json", &v), Vec::<String>::new());
    crate::browser::check_grade_page(&page.join("index.html"), &v);
    let sources: Vec<(&str, &str)> = v["repos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["repo"].as_str().unwrap(), r["source"].as_str().unwrap()))
        .collect();
    let here = repo.path().to_str().unwrap();
    assert!(sources.iter().all(|&(r, s)| (s == "graded") == (r == here)), "{sources:?}");
    assert_eq!(sources.iter().filter(|(_, s)| *s == "self-reported").count(), 2, "{sources:?}");
    let csv = std::fs::read_to_string(&csv).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let column = header.iter().position(|h| *h == "source").expect("a source column");
    let cells: Vec<String> = csv.lines().skip(1).map(|l| l.split(',').nth(column).unwrap().to_string()).collect();
    let mut counted = cells.clone();
    counted.sort();
    assert_eq!(counted, ["graded", "self-reported", "self-reported"], "{csv}");
    let table = fmtool(&[&args[..4], &["--python", &python]].concat());
    assert!(table.stdout.lines().filter(|l| l.contains(" self-reported ")).count() == 2, "{}", table.stdout);
    let score: Value = serde_json::from_str(&run.stdout).unwrap();
    let rows = v["repos"].as_array().unwrap();
    let alice = rows.iter().find(|r| r["repo"].as_str().unwrap().contains("alice.json")).unwrap();
    assert_eq!(alice["points"], score["points"]);
    assert_eq!(alice["credit_sheet"], score["grade"]["credit_sheet"]["total"]);
    assert_eq!(alice["model_accuracy"], score["accuracy"]);
    assert_eq!(alice["steps"].as_array().unwrap().len(), score["grade"]["workflow"]["steps"].as_array().unwrap().len());
    assert_eq!(alice["diagnosis"][0], score["grade"]["diagnosis"][0]["code"]);
    let bob = rows.iter().find(|r| r["repo"].as_str().unwrap().contains("bob.json")).unwrap();
    assert!(bob["error"].as_str().unwrap().contains("not a report of `fmtool score --format json`"), "{bob}");
}

/// The distributed workflow's two defects (the softmax step's command without `pytest`, the
/// ">= 90" step running test_acc_80) are the course's: the report states them once, with how
/// many repositories they affect, and leaves them out of each row's advice and first problem. A
/// student who fixed the workflow has a file of their own; a finding that depends on a student's
/// edited model_test.py stays with the students who have it (their classmates' identical
/// workflows lack it); and a repository graded alone keeps every finding.
#[test]
fn course_wide_findings_are_stated_once_and_left_out_of_each_row() {
    let python = require_workflow_python();
    let class = tempdir();
    for (name, case) in [
        ("alice", "correct"),
        ("bob", "correct"),
        ("carol", "correct_fixed_workflow"),
        ("dave", "edited_model_test"),
        ("erin", "edited_model_test"),
    ] {
        copy_tree(student_repo(case).path(), &class.path().join(name));
    }
    let out = tempdir();
    let page = out.path().join("page");
    let grade = |what: &Path, extra: &[&str]| {
        let mut args = vec!["grade", what.to_str().unwrap(), "--python", &python];
        args.extend(extra);
        fmtool(&args)
    };
    let run = grade(class.path(), &["--format", "json", "--report", page.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = json_of(&run);
    assert_eq!(crate::score::schema_errors("grade-report.schema.json", &v), Vec::<String>::new());
    crate::browser::check_grade_page(&page.join("index.html"), &v);
    let name = |r: &Value| Path::new(r.as_str().unwrap()).file_name().unwrap().to_str().unwrap().to_string();
    let course: Vec<(String, String, Vec<String>)> = v["course_wide"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let repos = c["repos"].as_array().unwrap().iter().map(name).collect();
            (c["code"].as_str().unwrap().into(), c["place"].as_str().unwrap().into(), repos)
        })
        .collect();
    let four: Vec<String> = ["alice", "bob", "dave", "erin"].map(String::from).to_vec();
    assert_eq!(
        course,
        [
            ("workflow-command-not-found".into(), ".github/workflows/classroom.yml:34".into(), four.clone()),
            ("workflow-threshold-mismatch".into(), ".github/workflows/classroom.yml:88".into(), four)
        ],
        "{:#}",
        v["course_wide"]
    );
    let row = |n: &str| v["repos"].as_array().unwrap().iter().find(|r| name(&r["repo"]) == n).unwrap().clone();
    let codes = |n: &str| -> Vec<String> {
        row(n)["advice"].as_array().unwrap().iter().map(|a| a["code"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(codes("alice"), Vec::<String>::new());
    assert_eq!(row("alice")["first_finding"], Value::Null);
    assert_eq!(row("alice")["check_warnings"], 2, "the counts are fmtool check's");
    // test_acc_88 edited to assert 0.8: dave's and erin's own finding, at line 79.
    assert_eq!(codes("dave"), ["workflow-threshold-mismatch"]);
    let first = row("dave")["first_finding"].as_str().unwrap().to_string();
    assert!(first.starts_with("workflow-threshold-mismatch: step \"Accuracy >= 88\""), "{first}");

    // The table: the course-wide section, and each row's own first problem.
    let table = grade(class.path(), &[]).stdout;
    let line = |n: &str| table.lines().find(|l| l.contains(&format!("/{n} "))).unwrap_or_else(|| panic!("{table}"));
    assert!(!line("alice").contains("workflow-"), "{table}");
    assert!(line("dave").contains("Accuracy >= 88"), "{table}");
    let section = table.split("course-wide").nth(1).unwrap_or_else(|| panic!("no course-wide section: {table}"));
    assert!(
        section.contains(".github/workflows/classroom.yml:34: warning[workflow-command-not-found] in 4 repositories"),
        "{table}"
    );

    // Alone, a student's findings are their own.
    let alone = json_of(&grade(&class.path().join("alice"), &["--format", "json"]));
    assert_eq!(alone["course_wide"], Value::Array(vec![]));
    let first = alone["repos"][0]["first_finding"].as_str().unwrap().to_string();
    assert!(first.starts_with("workflow-command-not-found"), "{first}");
}

/// Ctrl-C while two repositories are graded at once kills both students' processes, removes both
/// temporary copies, and writes no --csv, --json or --report file, whole or half.
#[cfg(unix)]
#[test]
fn ctrl_c_during_a_class_leaves_nothing_behind() {
    let python = require_workflow_python();
    let class = tempdir();
    for name in ["a", "b", "c"] {
        let repo = class.path().join(name);
        copy_tree(student_repo("correct").path(), &repo);
        let nn = repo.join("nn_predict.py");
        let text = std::fs::read_to_string(&nn).unwrap();
        std::fs::write(&nn, text + "\n\ndef nn_inference(model_arch, weights, data):\n    while True:\n        pass\n")
            .unwrap();
    }
    let tmp = tempdir();
    let out = tempdir();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fmtool"))
        .args(["grade", class.path().to_str().unwrap(), "--python", &python, "--jobs", "2"])
        .args([
            "--csv",
            out.path().join("c.csv").to_str().unwrap(),
            "--json",
            out.path().join("c.json").to_str().unwrap(),
        ])
        .args(["--report", out.path().join("page").to_str().unwrap()])
        .args(["--cache", out.path().join("cache").to_str().unwrap()])
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Interrupted while two repositories are graded at once.
    crate::student::interrupt_once_copied(&mut child, tmp.path(), 2);
    let written: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "cache")
        .collect();
    assert!(written.is_empty(), "written: {written:?}");
}

/// A cached row is believed only with its MAC: an entry edited to give 100 points is graded again
/// (and gets its real points), and the MAC's key is the grader's alone (mode 0600). A change of
/// isolation is another key: the same files graded without the sandbox are not the sandbox's row.
#[cfg(unix)]
#[test]
fn a_tampered_cache_entry_is_graded_again() {
    use std::os::unix::fs::PermissionsExt;
    let python = require_workflow_python();
    let class = tempdir();
    copy_tree(student_repo("tensorflow_import").path(), &class.path().join("alice"));
    let cache = tempdir();
    let grade = |extra: &[&str]| {
        let mut args = vec!["grade", class.path().to_str().unwrap(), "--python", &python, "--format", "json"];
        args.extend(["--cache", cache.path().to_str().unwrap()]);
        args.extend(extra);
        json_of(&fmtool(&args))
    };
    let first = grade(&[]);
    let real = first["repos"][0]["points"].clone();
    assert_eq!(real, 0, "{first:#}");
    let key = cache.path().join(".fmtool-key");
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let entries: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(grade(&[])["repos"][0]["cached"], true);
    // Edited as a student with the old harness could: the row's points set to the maximum.
    let mut entry: Value = serde_json::from_slice(&std::fs::read(&entries[0]).unwrap()).unwrap();
    let mut row: Value = serde_json::from_str(entry["row"].as_str().unwrap()).unwrap();
    row["points"] = 100.into();
    entry["row"] = row.to_string().into();
    std::fs::write(&entries[0], entry.to_string()).unwrap();
    let again = grade(&[]);
    assert_eq!((again["repos"][0]["cached"].clone(), again["repos"][0]["points"].clone()), (false.into(), real));
    let unsandboxed = grade(&["--no-isolation"]);
    assert_eq!(unsandboxed["repos"][0]["cached"], false, "the isolation is part of the key");
    assert_eq!(unsandboxed["repos"][0]["isolation"], "none");
}
