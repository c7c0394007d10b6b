//! Writes output files whole or not at all: the bytes go into a temporary file in the target's
//! directory, which is then renamed over the target, so an error or a crash never leaves a
//! half-written file where a student expects a result.

use crate::err;
use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// A step that undoes part of a write in progress: run in reverse order on an error, and by the
/// signal thread on SIGINT/SIGTERM/SIGHUP, so that neither leaves a temporary file, a half
/// replaced model or a new empty folder behind.
#[derive(Debug, Clone)]
pub enum Undo {
    RemoveFile(PathBuf),
    /// Renames a file moved aside back to where it was.
    Restore {
        aside: PathBuf,
        target: PathBuf,
    },
    /// Removes a folder this run created (only when empty).
    RemoveDir(PathBuf),
    /// Removes a temporary folder and everything in it (the copy a student's code runs in).
    RemoveTree(PathBuf),
    /// Kills a process group this run started (the student's code), which a Ctrl-C at the
    /// terminal does not reach: it runs in a group of its own.
    KillGroup(u32),
}

static PENDING: Mutex<Vec<Undo>> = Mutex::new(Vec::new());
/// Steps undone only by a signal, kept apart from [`PENDING`]'s stack so that taking and giving
/// them back in any order never shifts a [`mark`].
static HELD: Mutex<Vec<Undo>> = Mutex::new(Vec::new());

fn held() -> MutexGuard<'static, Vec<Undo>> {
    HELD.lock().unwrap_or_else(|p| p.into_inner())
}

fn pending() -> MutexGuard<'static, Vec<Undo>> {
    PENDING.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs a file-system step and records how to undo it under one lock, so a signal arriving in
/// between cannot see the step done but not recorded. Returns the result of `f`.
pub fn tracked<T>(f: impl FnOnce(&mut Vec<Undo>) -> T) -> T {
    f(&mut pending())
}

/// Records a step that is undone only by a signal (or [`forget`]): for resources that several
/// threads take and give back in any order, where [`mark`] and [`commit`] do not fit.
pub fn remember(step: Undo) {
    held().push(step);
}

/// Drops a step recorded by [`remember`] once it is no longer needed.
pub fn forget(matches: impl Fn(&Undo) -> bool) {
    let mut p = held();
    if let Some(i) = p.iter().rposition(matches) {
        p.remove(i);
    }
}

/// The current length of the undo list, to [`commit`] or [`rollback`] to later.
pub fn mark() -> usize {
    pending().len()
}

/// Forgets the steps recorded after `mark`: they are kept.
pub fn commit(mark: usize) {
    pending().truncate(mark);
}

/// Undoes the steps recorded after `mark`, newest first.
pub fn rollback(mark: usize) {
    let mut p = pending();
    let from = mark.min(p.len());
    let steps: Vec<Undo> = p.drain(from..).collect();
    run_undo(steps);
}

fn run_undo(steps: Vec<Undo>) {
    for step in steps.into_iter().rev() {
        match step {
            Undo::RemoveFile(p) => {
                let _ = std::fs::remove_file(p);
            }
            Undo::Restore { aside, target } => {
                let _ = std::fs::rename(aside, target);
            }
            Undo::RemoveDir(d) => {
                let _ = std::fs::remove_dir(d);
            }
            Undo::RemoveTree(d) => {
                let _ = std::fs::remove_dir_all(d);
            }
            Undo::KillGroup(pid) => {
                #[cfg(unix)]
                // SAFETY: signals the process group the child leads (created with process_group(0)).
                unsafe {
                    libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
                }
                #[cfg(not(unix))]
                let _ = pid;
            }
        }
    }
}

/// Makes SIGINT, SIGTERM and SIGHUP undo the recorded steps before the process ends: the signals
/// are blocked in the calling thread and taken by a thread of their own, which runs the undo list
/// and then ends the process by the same signal. Call it at the start of a command that writes
/// files, before any other thread starts (threads inherit the blocked set). Children inherit the
/// blocked set too: a command that starts child processes unblocks the signals in the child
/// ([`unblock_signals_in_child`]).
#[cfg(unix)]
pub fn clean_up_on_signals() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: plain libc calls on a local, initialized signal set.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::sigaddset(&mut set, s);
            }
            if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return;
            }
            let set_copy = set;
            std::thread::spawn(move || {
                let mut sig: libc::c_int = 0;
                if libc::sigwait(&set_copy, &mut sig) != 0 {
                    return;
                }
                // The lock is held until the process ends, so the command cannot take a further
                // recorded step meanwhile.
                let mut p = pending();
                run_undo(std::mem::take(&mut *p));
                let mut h = held();
                run_undo(std::mem::take(&mut *h));
                libc::signal(sig, libc::SIG_DFL);
                let mut one: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut one);
                libc::sigaddset(&mut one, sig);
                libc::pthread_sigmask(libc::SIG_UNBLOCK, &one, std::ptr::null_mut());
                libc::raise(sig);
                libc::_exit(128 + sig);
            });
        }
    });
}

#[cfg(not(unix))]
pub fn clean_up_on_signals() {}

/// Undoes [`clean_up_on_signals`]'s blocking in a child process, between fork and exec.
///
/// # Safety
/// Call it only in a `pre_exec` closure: it makes one async-signal-safe system call.
#[cfg(unix)]
pub unsafe fn unblock_signals_in_child() {
    // SAFETY: sigemptyset and sigprocmask on a local set are async-signal-safe.
    unsafe {
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
}

/// Writes `bytes` to `path` atomically. With `overwrite` false an existing `path` is an error
/// (checked again at the rename, so a file created meanwhile is not clobbered either).
pub fn write_atomic(path: &Path, bytes: &[u8], overwrite: bool) -> Result<()> {
    write_atomic_mode(path, bytes, overwrite, None)
}

/// [`write_atomic`] with the file's permission bits set before it is renamed into place (an
/// executable git hook: `0o755`); the platform's default mode when `mode` is None.
pub fn write_atomic_mode(path: &Path, bytes: &[u8], overwrite: bool, mode: Option<u32>) -> Result<()> {
    check_target(path, overwrite)?;
    let dir = parent(path);
    let mark = mark();
    let result = write_atomic_steps(path, dir, bytes, overwrite, mode);
    match result {
        Ok(()) => commit(mark),
        Err(_) => rollback(mark),
    }
    result
}

fn write_atomic_steps(path: &Path, dir: &Path, bytes: &[u8], overwrite: bool, mode: Option<u32>) -> Result<()> {
    let mut tmp = tracked(|u| {
        let t = temp_file_in(dir, ".fmtool-")?;
        u.push(Undo::RemoveFile(t.path().to_path_buf()));
        Ok::<_, Error>(t)
    })?;
    tmp.write_all(bytes).map_err(|e| Error::io("write", path, &e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io("write", path, &e))?;
    #[cfg(unix)]
    if let Some(mode) = mode {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io("set the permissions of", tmp.path(), &e))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    let persisted = if overwrite { tmp.persist(path) } else { tmp.persist_noclobber(path) };
    // On failure the temporary file is dropped with the error, which deletes it.
    persisted.map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            exists(path)
        } else {
            Error::io("write", path, &e.error)
        }
    })?;
    Ok(())
}

/// A temporary file in `dir` (named `<prefix>....tmp`) that becomes an output by a rename.
/// NamedTempFile is created 0600; this asks for the mode an ordinary file gets (0666 less the
/// umask), so the result is as readable as if it had been written directly.
pub fn temp_file_in(dir: &Path, prefix: &str) -> Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir).map_err(|e| Error::io("create a temporary file in", dir, &e))
}

/// Checks that `path` can be written: its directory exists, it is not a directory, and it does not
/// exist unless `overwrite`. Commands call this before long work so they fail early.
pub fn check_target(path: &Path, overwrite: bool) -> Result<()> {
    let dir = parent(path);
    if path.is_dir() {
        return Err(err!("cannot write {}: it is a directory", path.display()));
    }
    if !dir.is_dir() {
        return Err(err!("cannot write {}: the directory {} does not exist", path.display(), dir.display()));
    }
    // symlink_metadata: a dangling symbolic link is there too, and writing would replace it.
    if !overwrite && path.symlink_metadata().is_ok() {
        return Err(exists(path));
    }
    Ok(())
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn exists(path: &Path) -> Error {
    let what =
        if path.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) { " (a symbolic link)" } else { "" };
    err!("{} already exists{what}", path.display()).with_hint("pass --force to replace it, or choose another file name")
}

/// The error for output files that are already there (a dangling symbolic link counts): fmtool
/// replaces nothing without `--force`.
pub fn refuse_existing(paths: &[&Path]) -> Result<()> {
    // symlink_metadata, not exists(): a dangling symbolic link is there too, and must not be
    // written through or silently replaced.
    let existing: Vec<String> = paths
        .iter()
        .filter_map(|p| {
            let m = p.symlink_metadata().ok()?;
            let link = if m.file_type().is_symlink() { " (a symbolic link)" } else { "" };
            Some(format!("{}{link}", p.display()))
        })
        .collect();
    match existing.as_slice() {
        [] => Ok(()),
        [one] => Err(err!("{one} already exists; fmtool does not overwrite it")
            .with_hint("pass --force to replace it, or --out DIR to write elsewhere")),
        many => Err(err!("{} already exist; fmtool does not overwrite them", many.join(" and "))
            .with_hint("pass --force to replace them, or --out DIR to write elsewhere")),
    }
}

/// Writes `files` (name, bytes) into `dir` all together or not at all: each goes to a temporary
/// file in `dir` first; then existing targets (only with `force`) are moved aside and the new
/// files renamed into place. Every step is recorded in the undo list, so a
/// failure, or SIGINT/SIGTERM, undoes them all, including creating `dir`: `dir` is left as it was.
pub fn write_together(dir: &Path, files: &[(&str, &[u8])], force: bool) -> Result<()> {
    let mark = mark();
    let result = create_dirs(dir).and_then(|()| write_steps(dir, files, force));
    match result {
        Ok(()) => commit(mark),
        Err(_) => rollback(mark),
    }
    result
}

/// Creates `dir` and missing parents, recording each folder it created.
fn create_dirs(dir: &Path) -> Result<()> {
    let mut missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.as_os_str().is_empty() && !d.exists()).collect();
    missing.reverse();
    for d in missing {
        tracked(|u| {
            std::fs::create_dir(d).map_err(|e| Error::io("create the directory", d, &e))?;
            u.push(Undo::RemoveDir(d.to_path_buf()));
            Ok::<_, Error>(())
        })?;
    }
    Ok(())
}

fn write_steps(dir: &Path, files: &[(&str, &[u8])], force: bool) -> Result<()> {
    // Created with an ordinary file's mode: the outputs were 0600 before (issue 5's model/).
    let temp = |prefix: &str| {
        tracked(|u| {
            let t = temp_file_in(dir, prefix)?;
            u.push(Undo::RemoveFile(t.path().to_path_buf()));
            Ok::<_, Error>(t)
        })
    };
    // 1. Every new file complete on disk under a temporary name.
    let mut staged = Vec::with_capacity(files.len());
    for (name, bytes) in files {
        let mut t = temp(".fmtool-new-")?;
        t.write_all(bytes).map_err(|e| Error::io("write", t.path(), &e))?;
        t.as_file().sync_all().map_err(|e| Error::io("write", t.path(), &e))?;
        staged.push((dir.join(name), t));
    }
    // 2. Rename into place. Anything already there counts, a dangling symbolic link too: without
    // --force it is refused; with it, the link itself is moved aside (never written through).
    let mut aside: Vec<PathBuf> = Vec::new();
    for (target, t) in staged {
        if target.symlink_metadata().is_ok() {
            if !force {
                return refuse_existing(&[&target]);
            }
            let old =
                temp(".fmtool-old-")?.into_temp_path().keep().map_err(|e| Error::io("replace", &target, &e.error))?;
            tracked(|u| {
                std::fs::rename(&target, &old).map_err(|e| Error::io("replace", &target, &e))?;
                u.push(Undo::Restore { aside: old.clone(), target: target.clone() });
                Ok::<_, Error>(())
            })?;
            aside.push(old);
        }
        tracked(|u| {
            t.persist_noclobber(&target).map_err(|e| Error::io("write", &target, &e.error))?;
            u.push(Undo::RemoveFile(target.clone()));
            Ok::<_, Error>(())
        })?;
        // The written file must be there as a regular file before it is reported.
        if !target.symlink_metadata().is_ok_and(|m| m.is_file()) {
            return Err(err!("cannot write {}: it is not there after the rename", target.display()));
        }
    }
    // 3. Done: the replaced files go (an interrupted removal is finished by the signal thread).
    tracked(|u| u.extend(aside.iter().cloned().map(Undo::RemoveFile)));
    for old in &aside {
        let _ = std::fs::remove_file(old);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The undo list is one per process (a signal must see every step), so the tests that write
    /// through it take turns: a rollback to one test's mark would otherwise cut another's steps.
    static UNDO_LIST: Mutex<()> = Mutex::new(());

    fn turn() -> MutexGuard<'static, ()> {
        UNDO_LIST.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".fmtool-"))
            .collect()
    }

    #[test]
    fn writes_refuses_and_overwrites() {
        let _turn = turn();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        write_atomic(&p, b"one", false).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        let e = write_atomic(&p, b"two", false).unwrap_err();
        assert!(e.message.ends_with("a.npy already exists"), "{}", e.message);
        assert!(e.hint.unwrap().contains("--force"));
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        write_atomic(&p, b"two", true).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn missing_directory_and_directory_target_are_errors() {
        let _turn = turn();
        let dir = tempfile::tempdir().unwrap();
        let e = write_atomic(&dir.path().join("no/such/x.npy"), b"x", true).unwrap_err();
        assert!(e.message.contains("does not exist"), "{}", e.message);
        let e = write_atomic(dir.path(), b"x", true).unwrap_err();
        assert!(e.message.contains("is a directory"), "{}", e.message);
        assert!(leftovers(dir.path()).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn result_is_not_private() {
        let _turn = turn();
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.png");
        write_atomic(&p, b"x", false).unwrap();
        // Whatever the umask, the owner can read and write, and the mode is not the 0600 of a
        // temporary file unless the umask itself says so.
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o600, 0o600);
        let umask_allows_group_read = {
            let probe = dir.path().join("probe");
            std::fs::write(&probe, b"").unwrap();
            std::fs::metadata(&probe).unwrap().permissions().mode() & 0o040 != 0
        };
        assert_eq!(mode & 0o040 != 0, umask_allows_group_read);
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn files_land_together_and_replace_only_with_force() {
        let _turn = turn();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        write_together(&dir, &[("x", b"1"), ("y", b"2")], false).unwrap();
        assert_eq!(names(&dir), ["x", "y"]);
        let e = write_together(&dir, &[("x", b"3")], false).unwrap_err();
        assert!(e.hint.unwrap().contains("--force"));
        assert_eq!(std::fs::read(dir.join("x")).unwrap(), b"1");
        write_together(&dir, &[("x", b"3"), ("y", b"4")], true).unwrap();
        assert_eq!(names(&dir), ["x", "y"]);
        assert_eq!(std::fs::read(dir.join("y")).unwrap(), b"4");
    }

    #[test]
    fn a_failure_restores_the_directory() {
        let _turn = turn();
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("x"), b"old").unwrap();
        // "y" is a directory, so renaming a file over it fails after "x" was already replaced.
        std::fs::create_dir(tmp.path().join("y")).unwrap();
        std::fs::write(tmp.path().join("y/keep"), b"").unwrap();
        assert!(write_together(tmp.path(), &[("x", b"new"), ("y", b"new")], true).is_err());
        assert_eq!(names(tmp.path()), ["x", "y"]);
        assert_eq!(std::fs::read(tmp.path().join("x")).unwrap(), b"old");
        // A directory it created is removed again.
        let fresh = tmp.path().join("new/deeper");
        assert!(write_together(&fresh, &[("x", b"1"), ("x", b"2")], false).is_err());
        assert!(!tmp.path().join("new").exists());
    }
}
