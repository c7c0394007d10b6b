//! The pre-commit hook: `fmtool hook install` in a real git repository, and the real pre-commit
//! framework running this repository's `.pre-commit-hooks.yaml`.

use crate::common::*;
use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> std::process::Output {
    git_env(dir, args, &[])
}

/// git with this machine's global and system configuration ignored (a global core.hooksPath
/// would move the hook), and extra environment variables for the hook.
fn git_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new("git")
        .args(["-c", "user.name=Student", "-c", "user.email=s@example.invalid", "-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .env("PATH", path_with_fmtool())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .envs(env.iter().copied())
        .output()
        .expect("git runs")
}

fn text(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
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
/// `language: rust` (cargo install) and runs it. CI installs pre-commit (`cargo xtask test`). A
/// full `cargo install` takes minutes, so it is its own step of `.ci/run`:
/// `cargo xtask test --test it -- --ignored hook::pre_commit_framework_runs_fmtool_check`.
#[test]
#[ignore = "its own .ci/run step (a full cargo install): run with --ignored"]
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
            .args(["try-repo", root().to_str().unwrap(), "fmtool-check", "--ref", "HEAD", "--files"])
            .args(files)
            .current_dir(repo.path())
            .env("PRE_COMMIT_HOME", home.path())
            // `language: rust` runs `cargo install --path .` on a clone; a build directory kept
            // between runs makes later runs rebuild only fmtool itself.
            .env("CARGO_TARGET_DIR", pre_commit_target())
            // The test is about the hook's wiring, not the binary's speed: an unoptimized build
            // takes a fraction of the release profile's time (thin LTO on 2 cores: minutes).
            .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "0")
            .env("CARGO_PROFILE_RELEASE_LTO", "false")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16")
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

#[test]
fn the_hook_checks_what_is_staged_not_the_working_tree() {
    let repo = course_repo();
    let r = repo.path().to_str().unwrap();
    assert_eq!(fmtool(&["hook", "install", "--repo", r]).code, 0);
    // A broken model is staged, then repaired in the working tree only: the commit would hold
    // the broken one, so it is refused.
    let good = std::fs::read(repo.path().join("model/fashion_mnist.json")).unwrap();
    break_model(repo.path());
    git(repo.path(), &["add", "model"]);
    std::fs::write(repo.path().join("model/fashion_mnist.json"), &good).unwrap();
    let refused = git(repo.path(), &["commit", "-q", "-m", "broken in the index"]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(text(&refused).contains("model/fashion_mnist.json::$["), "paths are the repository's: {}", text(&refused));
    // Staging the good file makes the commit pass, even with a broken working tree.
    git(repo.path(), &["add", "model"]);
    break_model(repo.path());
    let ok = git(repo.path(), &["commit", "-q", "-m", "good in the index"]);
    assert!(ok.status.success(), "{}", text(&ok));
    // Staging only the npz still checks it against the committed JSON.
    git(repo.path(), &["checkout", "--", "model"]);
    let npz = repo.path().join("model/fashion_mnist.npz");
    let mut z = fmtool::model::npz::read_npz(&npz).unwrap();
    z.entries.truncate(1);
    let arrays: Vec<(String, ndarray::ArrayD<f32>)> =
        z.entries.iter().map(|e| (e.key.clone(), e.array.as_ref().unwrap().to_f32())).collect();
    fmtool::model::npz::write_npz(std::fs::File::create(&npz).unwrap(), &arrays).unwrap();
    git(repo.path(), &["add", "model/fashion_mnist.npz"]);
    let refused = git(repo.path(), &["commit", "-q", "-m", "npz only"]);
    assert!(!refused.status.success());
    assert!(text(&refused).contains("missing-weight"), "{}", text(&refused));
}

#[test]
fn without_fmtool_the_hook_says_how_to_install_it_and_lets_other_commits_through() {
    let repo = course_repo();
    assert_eq!(fmtool(&["hook", "install", "--repo", repo.path().to_str().unwrap()]).code, 0);
    let no_fmtool = [("FMTOOL", "/nonexistent/fmtool")];
    std::fs::write(repo.path().join("README.md"), "notes").unwrap();
    git(repo.path(), &["add", "README.md"]);
    let ok = git_env(repo.path(), &["commit", "-q", "-m", "no model files"], &no_fmtool);
    assert!(ok.status.success(), "a commit without model files needs no fmtool: {}", text(&ok));
    git(repo.path(), &["add", "model"]);
    let refused = git_env(repo.path(), &["commit", "-q", "-m", "model"], &no_fmtool);
    assert!(!refused.status.success());
    let out = text(&refused);
    assert!(out.contains("not installed") && out.contains("cargo install"), "{out}");
    assert!(out.contains("model/fashion_mnist.json"), "the unchecked files are listed: {out}");
}

#[test]
fn min_accuracy_also_scores_the_staged_model() {
    let repo = course_repo();
    let r = repo.path().to_str().unwrap();
    assert_eq!(fmtool(&["hook", "install", "--repo", r, "--min-accuracy", "0.999"]).code, 0);
    git(repo.path(), &["add", "model"]);
    let refused = git(repo.path(), &["commit", "-q", "-m", "too weak"]);
    assert!(!refused.status.success());
    assert!(text(&refused).contains("below --min-accuracy 0.999"), "{}", text(&refused));
    assert_eq!(fmtool(&["hook", "install", "--repo", r, "--min-accuracy", "0.05", "--force"]).code, 0);
    let ok = git(repo.path(), &["commit", "-q", "-m", "good enough"]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("model: accuracy:"), "{}", text(&ok));
    let bad = fmtool(&["hook", "install", "--repo", r, "--min-accuracy", "85", "--force"]);
    assert_eq!(bad.code, 2);
}

#[test]
fn a_foreign_hook_is_kept_without_force() {
    let repo = course_repo();
    let hook = repo.path().join(".git/hooks/pre-commit");
    std::fs::write(&hook, "#!/bin/sh\necho mine\n").unwrap();
    let run = fmtool(&["hook", "install", "--repo", repo.path().to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("did not write"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&hook).unwrap(), "#!/bin/sh\necho mine\n");
    let run = fmtool(&["hook", "install", "--repo", repo.path().to_str().unwrap(), "--force"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&hook).unwrap().permissions().mode() & 0o111, 0o111, "executable");
    }
}

/// A student's repository (the `correct` case: the course's files, a good model) committed in
/// git, for the commits the hook judges.
fn student_git_repo() -> tempfile::TempDir {
    let repo = crate::student::student_repo("correct");
    assert!(git(repo.path(), &["init", "-q"]).status.success());
    repo
}

/// One commit a student makes: the file it changes, the change, whether the hook must run
/// `fmtool check` on it and whether it must be refused, with what the output then shows.
struct Commit {
    file: &'static str,
    change: fn(&str) -> String,
    checked: bool,
    refused: Option<&'static str>,
}

/// A commit that changes only nn_predict.py, model_test.py, utils/ or the workflow is checked (and
/// refused when the grader would fail it); one that changes only README.md is not.
const COMMITS: &[Commit] = &[
    Commit {
        file: "nn_predict.py",
        change: |t| {
            t.replace(
                "    return nn_forward_h5(model_arch, weights, data)",
                "    weights = np.load('/home/amy/hw/model/fashion_mnist.npz')\n    return nn_forward_h5(model_arch, weights, data)",
            )
        },
        checked: true,
        refused: Some("error[runner-missing-path]"),
    },
    Commit {
        file: ".github/workflows/classroom.yml",
        change: |t| t.replace("pytest model_test.py::test_relu", "pytest model_test.py::test_relu_twice"),
        checked: true,
        refused: Some("error[workflow-unknown-test]"),
    },
    Commit {
        file: "model_test.py",
        change: |t| {
            t.replace("YOUR_MODEL_PATH = 'model/fashion_mnist'", r"YOUR_MODEL_PATH = r'C:\hw\model\fashion_mnist'")
        },
        checked: true,
        refused: Some("error[runner-missing-path]"),
    },
    Commit { file: "utils/mnist_reader.py", change: |t| format!("{t}\n# read once\n"), checked: true, refused: None },
    Commit { file: "README.md", change: |_| "notes\n".into(), checked: false, refused: None },
];

/// Makes each commit of [`COMMITS`] in `repo` (whose hook is installed; `env` for git) and checks
/// what the hook did; `ran` says whether a commit's output shows that the check ran.
fn each_commit_is_judged(repo: &Path, env: &[(&str, &str)], ran: impl Fn(&str) -> bool) {
    let mut failures = Vec::new();
    for c in COMMITS {
        let path = repo.join(c.file);
        let before = std::fs::read_to_string(&path).unwrap_or_default();
        let after = (c.change)(&before);
        assert_ne!(before, after, "{}: the change must change the file", c.file);
        std::fs::write(&path, after).unwrap();
        git(repo, &["add", c.file]);
        let commit = git_env(repo, &["commit", "-q", "-m", c.file], env);
        let out = text(&commit);
        if ran(&out) != c.checked {
            failures.push(format!("{}: the check ran: {}, expected {}\n{out}", c.file, ran(&out), c.checked));
        }
        match c.refused {
            Some(finding) if commit.status.success() || !out.contains(finding) => {
                failures.push(format!("{}: not refused with {finding}\n{out}", c.file))
            }
            None if !commit.status.success() => failures.push(format!("{}: refused\n{out}", c.file)),
            _ => {}
        }
        // Back to the last commit that went through.
        git(repo, &["reset", "-q", "--hard"]);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn installed_hook_checks_commits_of_the_files_that_decide_the_grade() {
    let repo = student_git_repo();
    git(repo.path(), &["add", "."]);
    assert!(git(repo.path(), &["commit", "-q", "-m", "course"]).status.success());
    assert_eq!(fmtool(&["hook", "install", "--repo", repo.path().to_str().unwrap()]).code, 0);
    each_commit_is_judged(repo.path(), &[], |out| out.contains("checked model/fashion_mnist.json"));
}

/// The real pre-commit framework, with the hooks' `files:` pattern (FILES_REGEX, which both hook
/// files use) and `fmtool check` from this build: it decides which commits are checked.
#[test]
fn pre_commit_framework_checks_commits_of_the_files_that_decide_the_grade() {
    let pre_commit = std::env::var("FMTOOL_PYTHON")
        .ok()
        .and_then(|py| Path::new(&py).parent().map(|bin| bin.join("pre-commit")))
        .filter(|p| p.is_file())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "pre-commit".into());
    let ok = Command::new(&pre_commit).arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(ok, "this test drives the real pre-commit framework: pip install pre-commit (cargo xtask test does)");
    let repo = student_git_repo();
    let config = format!(
        "repos:\n- repo: local\n  hooks:\n  - id: fmtool-check\n    name: fmtool check\n    entry: fmtool check\n    language: system\n    files: '{}'\n    pass_filenames: true\n",
        fmtool::commands::hook::FILES_REGEX
    );
    std::fs::write(repo.path().join(".pre-commit-config.yaml"), config).unwrap();
    git(repo.path(), &["add", "."]);
    assert!(git(repo.path(), &["commit", "-q", "-m", "course"]).status.success());
    let home = tempdir();
    let home_s = home.path().to_str().unwrap();
    let install = Command::new(&pre_commit)
        .arg("install")
        .current_dir(repo.path())
        .env("PRE_COMMIT_HOME", home_s)
        .output()
        .unwrap();
    assert!(install.status.success(), "{}", text(&install));
    // pre-commit prints `fmtool check....Passed` (or Failed) for a hook it runs, and
    // `...(no files to check)Skipped` for one whose files the commit does not touch.
    each_commit_is_judged(repo.path(), &[("PRE_COMMIT_HOME", home_s)], |out| {
        out.contains("fmtool check") && !out.contains("Skipped")
    });
}

/// Both hook files run fmtool check on the same files as `fmtool hook install`'s hook.
#[test]
fn both_hook_files_match_the_files_that_decide_the_grade() {
    for file in [".pre-commit-hooks.yaml", "hooks/pre-commit-wheel.yaml"] {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        // The hook's own lines: from its `- id:` (not a comment's) to the next hook's.
        let files = text
            .lines()
            .map(str::trim)
            .skip_while(|l| *l != "- id: fmtool-check")
            .skip(1)
            .take_while(|l| !l.starts_with("- id:"))
            .find_map(|l| l.strip_prefix("files: "))
            .unwrap_or_else(|| panic!("{file}: no files: in its fmtool-check hook"));
        assert_eq!(files, fmtool::commands::hook::FILES_REGEX, "{file}");
    }
}

/// `target/pre-commit-build`, beside the test binaries.
fn pre_commit_target() -> std::path::PathBuf {
    let exe = Path::new(env!("CARGO_BIN_EXE_fmtool"));
    exe.parent().and_then(Path::parent).unwrap_or(exe).join("pre-commit-build")
}

/// A FIFO where the hook goes is refused by name: looking for fmtool's marker in it goes through
/// fsguard, which never opens it for reading (that would wait for a writer forever).
#[cfg(unix)]
#[test]
fn a_fifo_named_pre_commit_is_refused_not_read() {
    let repo = course_repo();
    let hook = repo.path().join(".git/hooks/pre-commit");
    let c = std::ffi::CString::new(hook.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let mut child = Command::new(env!("CARGO_BIN_EXE_fmtool"))
        .args(["hook", "install", "--repo", repo.path().to_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("fmtool hook install blocked on a FIFO named pre-commit");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("already exists") && stderr.contains("--force"), "{stderr}");
}
