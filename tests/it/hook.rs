//! The pre-commit hook: `fmtool hook install` in a real git repository, and the real pre-commit
//! framework running this repository's `.pre-commit-hooks.yaml`.

use crate::common::*;
use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .args(["-c", "user.name=Student", "-c", "user.email=s@example.invalid", "-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .env("PATH", path_with_fmtool())
        .output()
        .expect("git runs")
}

/// PATH with the directory of the fmtool binary under test first.
fn path_with_fmtool() -> std::ffi::OsString {
    let bin = Path::new(env!("CARGO_BIN_EXE_fmtool")).parent().unwrap().to_path_buf();
    let mut paths = vec![bin];
    paths.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(paths).unwrap()
}

/// A git repository with a good model in model/.
fn course_repo() -> tempfile::TempDir {
    let tmp = tempdir();
    assert!(git(tmp.path(), &["init", "-q"]).status.success());
    std::fs::create_dir(tmp.path().join("model")).unwrap();
    for f in ["fashion_mnist.json", "fashion_mnist.npz"] {
        std::fs::copy(fixture("keras3/mlp_flatten").join(f), tmp.path().join("model").join(f)).unwrap();
    }
    tmp
}

fn break_model(repo: &Path) {
    let p = repo.join("model/fashion_mnist.json");
    let text = std::fs::read_to_string(&p).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let dense = v.as_array_mut().unwrap().iter_mut().find(|e| e["type"] == "Dense").unwrap();
    dense["weights"][0] = serde_json::json!("no_such_key");
    std::fs::write(&p, v.to_string()).unwrap();
}

#[test]
fn installed_hook_refuses_a_broken_model() {
    let repo = course_repo();
    let r = repo.path().to_str().unwrap();
    let run = fmtool(&["hook", "install", "--repo", r]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let hook = repo.path().join(".git/hooks/pre-commit");
    assert!(hook.is_file());
    // A second install does not replace the hook without --force.
    let again = fmtool(&["hook", "install", "--repo", r]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
    assert_eq!(fmtool(&["hook", "install", "--repo", r, "--force"]).code, 0);

    git(repo.path(), &["add", "model"]);
    let ok = git(repo.path(), &["commit", "-q", "-m", "good model"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));

    break_model(repo.path());
    git(repo.path(), &["add", "model"]);
    let refused = git(repo.path(), &["commit", "-q", "-m", "broken model"]);
    assert!(!refused.status.success(), "the hook let a broken model through");
    let out = String::from_utf8_lossy(&refused.stdout).to_string() + &String::from_utf8_lossy(&refused.stderr);
    assert!(out.contains("missing-weight"), "{out}");
}

#[test]
fn hook_install_outside_a_repository_says_so() {
    let tmp = tempdir();
    let run = fmtool(&["hook", "install", "--repo", tmp.path().to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("not inside a git repository"), "{}", run.stderr);
}

/// The real pre-commit framework: `pre-commit try-repo` builds this repository's hook with
/// `language: rust` (cargo install) and runs it. CI installs pre-commit (`cargo xtask test`).
#[test]
fn pre_commit_framework_runs_fmtool_check() {
    let pre_commit = ["pre-commit"]
        .into_iter()
        .find(|p| Command::new(p).arg("--version").output().is_ok_and(|o| o.status.success()))
        .expect("this test drives the real pre-commit framework: pip install pre-commit (cargo xtask test does)");
    // try-repo clones this repository at HEAD: the hooks file must be committed.
    let repo = course_repo();
    git(repo.path(), &["add", "model"]);
    let home = tempdir();
    let run = |files: &[&str]| {
        Command::new(pre_commit)
            .args(["try-repo", root().to_str().unwrap(), "fmtool-check", "--files"])
            .args(files)
            .current_dir(repo.path())
            .env("PRE_COMMIT_HOME", home.path())
            .output()
            .expect("pre-commit runs")
    };
    let files = ["model/fashion_mnist.json", "model/fashion_mnist.npz"];
    let good = run(&files);
    let good_out = String::from_utf8_lossy(&good.stdout).to_string() + &String::from_utf8_lossy(&good.stderr);
    assert!(good.status.success(), "a good model must pass:\n{good_out}");
    assert!(good_out.contains("Passed"), "{good_out}");

    break_model(repo.path());
    git(repo.path(), &["add", "model"]);
    let bad = run(&files);
    let bad_out = String::from_utf8_lossy(&bad.stdout).to_string() + &String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success(), "a broken model must be refused:\n{bad_out}");
    assert!(bad_out.contains("missing-weight") && bad_out.contains("Failed"), "{bad_out}");
}
