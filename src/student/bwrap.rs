//! The sandbox a student's code runs in: bubblewrap (`bwrap`, the sandbox Flatpak is built on),
//! which makes it from the kernel's namespaces without privileges. fmtool does not make namespaces
//! itself; this module only says which ones bubblewrap makes and what it lets in:
//! - new user, PID, network, IPC, UTS and cgroup namespaces, no nested user namespaces, every
//!   capability dropped, an unprivileged uid (1001, the GitHub runner's) even when fmtool runs as
//!   root, a new session (no controlling terminal to inject keystrokes into), and death with fmtool;
//! - read-only: the system's programs and libraries and the interpreter's own folders (its prefix,
//!   base prefix and `sys.path`, wherever they are); read-write: the repository's copy (`/repo`),
//!   a private `/tmp` and `$HOME` (`/home/runner`), and fmtool's output folder; nothing else of the
//!   host (no class folder, other copies, cache, reports, real `$HOME`, `/tmp` or `/run`).
//!
//! Its arguments reach bwrap through a pipe (`--args`), and it starts with an environment of the
//! student's only: the sandbox's init (pid 1, a copy of bwrap) shows neither fmtool's command line
//! nor its environment at `/proc/1`.

use std::path::{Path, PathBuf};

/// Where things are inside the sandbox.
pub const REPO: &str = "/repo";
pub const HOME: &str = "/home/runner";
pub const HARNESS_DIR: &str = "/fmtool";
pub const OUT_DIR: &str = "/fmtool-out";
/// The uid and gid the student's code has inside: a user's, never root's.
const UID: &str = "1001";

/// The host folders of one sandbox.
pub struct Folders<'a> {
    pub repo: &'a Path,
    pub tmp: &'a Path,
    pub home: &'a Path,
    pub harness: &'a Path,
    pub out: &'a Path,
}

/// The bubblewrap program: `$FMTOOL_BWRAP`, else `bwrap` on PATH.
fn program() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FMTOOL_BWRAP") {
        return Some(PathBuf::from(p));
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).map(|d| d.join("bwrap")).find(|p| p.is_file())
}

/// Whether this machine can make the sandbox: bubblewrap is there and starts a process inside
/// one. Asked once per run; the error says why not and how to fix it.
pub fn available() -> Result<PathBuf, String> {
    probed().clone().map(|(bwrap, _)| bwrap)
}

fn probed() -> &'static Result<(PathBuf, bool), String> {
    static ANSWER: std::sync::OnceLock<Result<(PathBuf, bool), String>> = std::sync::OnceLock::new();
    ANSWER.get_or_init(|| {
        if !cfg!(target_os = "linux") {
            return Err("the sandbox needs Linux (bubblewrap and user namespaces)".into());
        }
        match program() {
            Some(bwrap) => probe(&bwrap),
            None => Err("bubblewrap (bwrap) is not installed: `sudo apt-get install bubblewrap` (Debian, Ubuntu) or `sudo dnf install bubblewrap`".into()),
        }
    })
}

/// Starts `true` in a sandbox made as fmtool makes them. bubblewrap before 0.8 (Ubuntu 22.04's
/// 0.6) has no `--disable-userns`: then the sandbox is made without it (the second value is
/// false), and the student's code may make a user namespace of its own inside, in which the
/// read-only binds stay read-only (the kernel locks the flags of mounts it inherits).
fn probe(bwrap: &Path) -> Result<(PathBuf, bool), String> {
    let attempt = |disable_userns: bool| {
        let mut args = namespaces(disable_userns);
        args.extend(system_binds());
        args.extend(["--proc", "/proc", "--dev", "/dev", "--", "true"].map(String::from));
        std::process::Command::new(bwrap)
            .args(&args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("cannot start {}: {e}", bwrap.display()))
    };
    let mut out = attempt(true)?;
    let mut disable_userns = true;
    if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--disable-userns") {
        disable_userns = false;
        out = attempt(false)?;
    }
    if out.status.success() {
        return Ok((bwrap.to_path_buf(), disable_userns));
    }
    let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let why = crate::text::clip(&said, 300);
    let fix = if said.contains("uid map")
        || said.contains("Permission denied")
        || said.contains("Operation not permitted")
    {
        "; unprivileged user namespaces are off here (on Ubuntu 24.04: `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`; elsewhere `sudo sysctl -w kernel.unprivileged_userns_clone=1`); in a container, run it with `--security-opt seccomp=unconfined --security-opt apparmor=unconfined` or as a privileged one"
    } else {
        ""
    };
    Err(format!("bubblewrap cannot make a sandbox here ({why}){fix}"))
}

/// The namespaces, identity and lifetime of the sandbox.
fn namespaces(disable_userns: bool) -> Vec<String> {
    let mut args: Vec<String> = ["--unshare-all", "--unshare-user"].map(String::from).to_vec();
    if disable_userns {
        args.push("--disable-userns".into());
    }
    args.extend(
        [
            "--uid",
            UID,
            "--gid",
            UID,
            "--cap-drop",
            "ALL",
            "--new-session",
            "--die-with-parent",
            "--hostname",
            "fmtool-sandbox",
        ]
        .map(String::from),
    );
    args
}

/// The system's programs and libraries, read-only; the top-level links of a merged /usr stay links.
fn system_binds() -> Vec<String> {
    let mut args = vec!["--ro-bind".into(), "/usr".into(), "/usr".into()];
    for top in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
        let p = Path::new(top);
        match std::fs::read_link(p) {
            Ok(target) => args.extend(["--symlink".into(), target.display().to_string(), top.into()]),
            Err(_) if p.is_dir() => args.extend(["--ro-bind".into(), top.into(), top.into()]),
            Err(_) => {}
        }
    }
    // The dynamic loader's cache, Debian's alternatives (libblas.so.3 and /usr/bin/python3 may
    // link through them), the time zone, and a Debian Python's own configuration.
    let mut etc: Vec<String> =
        ["/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/localtime"]
            .map(String::from)
            .to_vec();
    if let Ok(entries) = std::fs::read_dir("/etc") {
        etc.extend(
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
                .map(|e| e.path().display().to_string()),
        );
    }
    for p in etc {
        args.extend(["--ro-bind-try".into(), p.clone(), p]);
    }
    args
}

/// The interpreter's folders, read-only where they are: those under /usr are there already, and a
/// folder inside another one listed is covered by it. The root itself is never bound, nor a folder
/// that holds the user's `$HOME` or the temporary folder (where the copies and the class may be):
/// a `.pth` file that puts `$HOME` on `sys.path` must not hand it to the student.
/// Each folder is taken as named and as resolved: a prefix reached through a link is used under
/// both names (a venv's `bin/python` links to its base interpreter).
fn python_binds(paths: &[PathBuf]) -> Vec<String> {
    let resolved = paths.iter().filter_map(|p| std::fs::canonicalize(p).ok());
    let named: Vec<PathBuf> = paths.iter().cloned().chain(resolved).collect();
    let mut keep: Vec<PathBuf> = named
        .iter()
        .filter(|p| p.is_absolute() && p.exists() && p.parent().is_some())
        .filter(|p| !p.starts_with("/usr") && !p.starts_with("/proc") && !p.starts_with("/dev"))
        .filter(|p| !holds_private(p))
        .cloned()
        .collect();
    keep.sort();
    keep.dedup();
    let mut out: Vec<PathBuf> = Vec::new();
    for p in keep {
        if !out.iter().any(|o| p.starts_with(o)) {
            out.push(p);
        }
    }
    out.into_iter().flat_map(|p| ["--ro-bind".into(), p.display().to_string(), p.display().to_string()]).collect()
}

/// Whether binding `p` would show the user's home or temporary folder whole.
fn holds_private(p: &Path) -> bool {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let tmp = std::env::temp_dir();
    home.iter().chain([&tmp]).any(|private| private.starts_with(p))
}

/// bwrap's options for a sandbox over `dirs`, with the interpreter's folders `python` read-only;
/// `info_fd` is where bwrap writes its init's pid. They go through `--args`; bwrap takes the
/// command itself (after `--`) from its own argv only.
pub fn options(dirs: &Folders, python: &[PathBuf], info_fd: i32) -> Vec<String> {
    let disable_userns = probed().as_ref().map_or(true, |(_, d)| *d);
    let mut args = namespaces(disable_userns);
    args.extend(system_binds());
    let d = |p: &Path| p.display().to_string();
    args.extend([
        "--proc".into(),
        "/proc".into(),
        "--dev".into(),
        "/dev".into(),
        "--bind".into(),
        d(dirs.tmp),
        "/tmp".into(),
        "--bind".into(),
        d(dirs.home),
        HOME.into(),
        "--bind".into(),
        d(dirs.repo),
        REPO.into(),
        "--ro-bind".into(),
        d(dirs.harness),
        HARNESS_DIR.into(),
        "--bind".into(),
        d(dirs.out),
        OUT_DIR.into(),
    ]);
    // After the sandbox's own /tmp and $HOME: an interpreter under the host's /tmp or
    // /home/runner (a venv in a CI checkout) would otherwise be hidden beneath them.
    args.extend(python_binds(python));
    args.extend(["--chdir".into(), REPO.into(), "--info-fd".into(), info_fd.to_string()]);
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interpreter_folders_are_bound_once_and_never_the_root_or_usr() {
        let d = tempfile::tempdir().unwrap();
        let venv = d.path().join("venv");
        std::fs::create_dir_all(venv.join("lib/site-packages")).unwrap();
        let args = python_binds(&[
            venv.join("lib/site-packages"),
            venv.clone(),
            PathBuf::from("/"),
            PathBuf::from("/usr/lib/python3"),
            d.path().join("missing"),
            std::env::temp_dir(),
        ]);
        assert_eq!(args, vec!["--ro-bind".to_string(), venv.display().to_string(), venv.display().to_string()]);
    }

    /// An older bubblewrap (Ubuntu 22.04's 0.6) refuses `--disable-userns`: the sandbox is made
    /// without that one option rather than not at all.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_bubblewrap_without_disable_userns_still_makes_the_sandbox() {
        let Some(real) = program() else {
            assert!(std::env::var_os("CI").is_none(), "no bwrap on CI");
            return;
        };
        let d = tempfile::tempdir().unwrap();
        let old = d.path().join("bwrap-0.6");
        let script = format!(
            "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = --disable-userns ] && {{ echo 'bwrap: Unknown option --disable-userns' >&2; exit 1; }}; done\nexec {} \"$@\"\n",
            real.display()
        );
        std::fs::write(&old, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
        match probe(&real) {
            Ok((_, true)) => {}
            Ok((_, false)) => panic!("a current bubblewrap was taken for an old one"),
            Err(why) if std::env::var_os("CI").is_none() => {
                eprintln!("skipped: no sandbox here: {why}");
                return;
            }
            Err(why) => panic!("{why}"),
        }
        assert_eq!(probe(&old).map(|(_, d)| d), Ok(false));
    }

    /// bwrap mounts in order: the interpreter's folders come after /tmp and $HOME, so that a venv
    /// under the host's /tmp (a fresh clone there) is not hidden by the sandbox's own /tmp.
    #[test]
    fn the_interpreter_is_bound_after_the_sandboxs_own_tmp_and_home() {
        let d = tempfile::tempdir().unwrap();
        let venv = d.path().join("venv");
        std::fs::create_dir(&venv).unwrap();
        let f = Folders { repo: d.path(), tmp: d.path(), home: d.path(), harness: d.path(), out: d.path() };
        let args = options(&f, std::slice::from_ref(&venv), 5);
        let at = |target: &str| args.windows(3).position(|w| w[0].ends_with("bind") && w[2] == target).unwrap() + 2;
        let venv_at = args.iter().rposition(|a| *a == venv.display().to_string()).unwrap();
        assert!(venv_at > at("/tmp") && venv_at > at(HOME), "{args:?}");
    }

    #[test]
    fn the_options_make_an_unprivileged_sandbox_without_nested_namespaces() {
        let d = tempfile::tempdir().unwrap();
        let f = Folders { repo: d.path(), tmp: d.path(), home: d.path(), harness: d.path(), out: d.path() };
        let args = options(&f, &[], 5);
        assert!(!args.iter().any(|a| a == "--"), "the command is not among the options");
        assert!(args.windows(2).any(|w| w[0] == "--uid" && w[1] == UID));
        for flag in ["--disable-userns", "--unshare-all", "--new-session", "--die-with-parent"] {
            assert!(args.iter().any(|a| a == flag), "{flag}");
        }
    }
}
