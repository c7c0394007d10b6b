//! `fmtool score --setup` (issue 27): a student whose python3 lacks NumPy and what the workflow
//! installs gets the grader's environment, made from the workflow's setup-commands into fmtool's
//! cache, from a local wheel folder (no network: `cargo xtask test` downloads the wheels into
//! `target/test-wheels` and names it in `$FMTOOL_TEST_WHEELS`).

use super::common::{require_numpy, root, tempdir};
use super::student::student_repo;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The wheel folder: `$FMTOOL_TEST_WHEELS`, else `target/test-wheels` when `cargo xtask test` made
/// it. Without one the test is skipped with the reason, except under CI, where it fails.
fn wheels() -> Option<PathBuf> {
    let dir =
        std::env::var_os("FMTOOL_TEST_WHEELS").map(PathBuf::from).unwrap_or_else(|| root().join("target/test-wheels"));
    if dir.join(".fmtool-requirements").is_file() {
        return Some(dir);
    }
    let why = format!(
        "no wheel folder at {} for the tests of `fmtool score --setup` (`cargo xtask test` makes it)",
        dir.display()
    );
    if std::env::var_os("CI").is_some() {
        panic!("{why}");
    }
    eprintln!("skipped: {why}");
    None
}

/// A student's computer: `python3` first on PATH is a bare venv's, without NumPy or pytest.
struct Laptop {
    _tmp: tempfile::TempDir,
    path: std::ffi::OsString,
    cache: PathBuf,
    wheels: PathBuf,
}

impl Laptop {
    fn new(wheels: PathBuf) -> Laptop {
        let tmp = tempdir();
        let bare = tmp.path().join("bare");
        let made = Command::new(require_numpy()).args(["-m", "venv", "--without-pip"]).arg(&bare).output().unwrap();
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        let lacks = Command::new(bare.join("bin/python3")).args(["-c", "import numpy"]).output().unwrap();
        assert!(!lacks.status.success(), "the bare venv's python3 imports numpy");
        let mut paths = vec![bare.join("bin")];
        paths.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
        let cache = tmp.path().join("cache");
        Laptop { path: std::env::join_paths(paths).unwrap(), cache, wheels, _tmp: tmp }
    }

    /// `fmtool ARGS` in `repo` on this laptop, with no stdin (so never a terminal to ask at).
    fn fmtool(&self, repo: &Path, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_fmtool"))
            .args(args)
            .current_dir(repo)
            .env("PATH", &self.path)
            .env("FMTOOL_CACHE_DIR", &self.cache)
            .env("FMTOOL_PIP_FIND_LINKS", &self.wheels)
            .stdin(Stdio::null())
            .output()
            .expect("the fmtool binary runs");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
    }

    fn envs(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.cache.join("envs"))
            .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// The rows of the workflow's table that were not run.
fn not_run_rows(v: &Value) -> usize {
    v["grade"]["workflow"]["steps"].as_array().unwrap().iter().filter(|s| s["status"] == "not_run").count()
}

/// The laptop, step by step: `score` says what is missing and installs nothing; `--setup`
/// makes the environment from the course workflow's setup-command (pytest, pandas; argparse is
/// the standard library's), runs the rows in it and gives the points `--python` with NumPy gives;
/// the next run uses the cache without installing, and `grade` does not; an environment without
/// its marker (a killed install) is never used.
#[test]
fn score_setup_makes_the_workflows_environment_once_and_grades_in_it() {
    let Some(wheels) = wheels() else { return };
    let laptop = Laptop::new(wheels);
    let repo = student_repo("correct");
    let repo = repo.path();

    // No --setup, no terminal: what is missing, and how to fix it; nothing installed.
    let (code, stdout, stderr) = laptop.fmtool(repo, &["score", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let v = json(&stdout);
    assert_eq!(v["points"], 0, "{stdout}");
    assert!(v["environment"].is_null(), "{stdout}");
    assert!(not_run_rows(&v) > 0, "{stdout}");
    let notes = v["notes"].to_string();
    assert!(notes.contains("lacks") && notes.contains("numpy") && notes.contains("pytest"), "{notes}");
    assert!(notes.contains("fmtool score --setup") && notes.contains("--python"), "{notes}");
    assert!(v["grade"]["not_run"].as_str().unwrap().contains("fmtool score --setup"), "{stdout}");
    assert!(!stderr.contains("installing"), "{stderr}");
    assert_eq!(laptop.envs(), Vec::<PathBuf>::new(), "nothing is installed without --setup");

    // --setup: made, said so on stderr, and graded in it.
    let (code, stdout, stderr) = laptop.fmtool(repo, &["score", "--setup", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("making a Python environment") && stderr.contains("installing pytest pandas numpy"),
        "{stderr}"
    );
    let made = json(&stdout);
    let env = &made["environment"];
    assert_eq!(env["created"], true, "{stdout}");
    assert_eq!(env["requirements"], serde_json::json!(["pytest", "pandas", "numpy"]), "{stdout}");
    assert!(env["skipped"][0].as_str().unwrap().starts_with("argparse: part of Python's standard library"), "{env}");
    let version = |name: &str| {
        env["packages"].as_array().unwrap().iter().find(|p| p["name"] == name).map(|p| p["version"].clone())
    };
    assert_eq!(version("numpy"), Some("2.4.6".into()), "{env}");
    assert_eq!(version("pytest"), Some("9.2.0".into()), "{env}");
    assert_eq!(version("pandas"), Some("3.1.2".into()), "{env}");
    assert_eq!(made["grade"]["python"]["path"], env["python"], "{stdout}");
    assert_eq!(made["grade"]["python"]["numpy"], "2.4.6", "{stdout}");
    assert_eq!(not_run_rows(&made), 0, "{stdout}");
    assert_eq!(crate::score::schema_errors("score-report.schema.json", &made), Vec::<String>::new());
    assert_eq!(laptop.envs().len(), 1, "{:?}", laptop.envs());

    // The points are those of a Python that has NumPy and pytest.
    let python = require_numpy();
    let (_, with_python, stderr) = laptop.fmtool(repo, &["score", "--python", &python, "--format", "json"]);
    let with_python = json(&with_python);
    assert!(with_python["environment"].is_null(), "{stderr}");
    assert_eq!(made["points"], with_python["points"]);
    assert_eq!(made["grade"]["credit_sheet"]["total"], with_python["grade"]["credit_sheet"]["total"]);
    assert!(made["points"].as_u64().unwrap() > 50, "{}", made["points"]);

    // The next run, without --setup: the cache, no install.
    let (code, stdout, stderr) = laptop.fmtool(repo, &["score"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("installing"), "{stderr}");
    assert!(
        stdout.contains("in the Python environment fmtool keeps for your workflow (made by an earlier --setup"),
        "{stdout}"
    );
    assert!(stdout.contains("numpy 2.4.6") && stdout.contains("pytest 9.2.0"), "{stdout}");
    let total = stdout.lines().find(|l| l.trim_start().starts_with("total")).unwrap_or("");
    assert!(total.ends_with(&format!(" {} / 100", made["points"])), "{total}");

    // `fmtool grade` never uses what a student's workflow asks for, even where it is made.
    let (code, stdout, stderr) = laptop.fmtool(repo, &["grade", repo.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("0/100") && stdout.contains("cannot import NumPy"), "{stdout}");
    assert!(!stdout.contains("--setup") && !stderr.contains("installing"), "{stdout}\n{stderr}");
    assert_eq!(laptop.envs().len(), 1, "{:?}", laptop.envs());

    // A folder without its marker (an install that was killed) is not an environment.
    let env_dir = laptop.envs().remove(0);
    std::fs::remove_file(env_dir.join("fmtool-env.json")).unwrap();
    let (_, stdout, _) = laptop.fmtool(repo, &["score", "--format", "json"]);
    let v = json(&stdout);
    assert!(v["environment"].is_null() && v["points"] == 0, "{stdout}");

    // --setup and --python together are refused.
    let (code, _, stderr) = laptop.fmtool(repo, &["score", "--setup", "--python", &python]);
    assert_eq!(code, 2, "{stderr}");
}

/// A python3 with NumPy and pytest but not pandas (which the course workflow installs): the rows
/// run in it as before, the report says what it lacks and how to fix it, and nothing is installed.
/// With pandas too, nothing is said at all.
#[test]
fn score_with_numpy_and_pytest_runs_and_names_what_python3_lacks() {
    let python = require_numpy();
    let has =
        |m: &str| Command::new(&python).args(["-c", &format!("import {m}")]).output().is_ok_and(|o| o.status.success());
    if !has("pytest") {
        eprintln!("skipped: {python} has no pytest");
        return;
    }
    let repo = student_repo("correct");
    let cache = tempdir();
    let mut paths: Vec<PathBuf> =
        Path::new(&python).parent().filter(|p| !p.as_os_str().is_empty()).map(Path::to_path_buf).into_iter().collect();
    paths.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    let out = Command::new(env!("CARGO_BIN_EXE_fmtool"))
        .args(["score", "--format", "json"])
        .current_dir(repo.path())
        .env("PATH", std::env::join_paths(paths).unwrap())
        .env("FMTOOL_CACHE_DIR", cache.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let v = json(&String::from_utf8_lossy(&out.stdout));
    assert!(v["environment"].is_null(), "{v}");
    assert_eq!(not_run_rows(&v), 0, "{v}");
    let notes = v["notes"].to_string();
    if has("pandas") {
        assert!(!notes.contains("--setup"), "{notes}");
    } else {
        assert!(
            notes.contains("lacks pandas, which your workflow installs: code that imports them fails here"),
            "{notes}"
        );
        assert!(notes.contains("fmtool score --setup"), "{notes}");
    }
    assert!(!cache.path().join("envs").exists(), "nothing is installed without --setup");
}
