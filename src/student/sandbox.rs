//! Runs a student's Python code without trusting it. The code runs in a temporary copy of the
//! repository (nothing is written into the student's folder, not even `test_acc.txt`), with only
//! PATH and HOME in its environment as on the grader, in its own process group so that a timeout
//! kills every process it started, under an address-space limit, and without network where the
//! OS lets an unprivileged process have its own network namespace.

use crate::err;
use crate::error::{Error, Result};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The most a copied repository may hold: a student repo is a few megabytes of code, model and
/// data; a folder past this is not one, and copying it would fill the disk.
const MAX_COPY_BYTES: u64 = 1 << 30;
const MAX_COPY_FILES: usize = 20_000;
/// The most processes one run of student code may have at once: the harness is one, a student's
/// multiprocessing pool a few more; past this it is a fork bomb, and the whole group is killed
/// before it can exhaust the machine's process table (RLIMIT_NPROC would not do: it counts every
/// process of the user, and root is exempt from it).
const MAX_PROCESSES: usize = 64;
/// The most of a process's stdout or stderr kept for messages.
const KEEP_OUTPUT: usize = 256 * 1024;

/// Limits for one process of student code.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub timeout: Duration,
    /// Address space, in bytes (RLIMIT_AS).
    pub memory: u64,
}

/// How one process ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The exit code, or None when a signal ended it (or the timeout killed it).
    pub code: Option<i32>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
    pub seconds: f64,
}

/// A temporary copy of a student repository and a folder for fmtool's own files beside it.
pub struct Sandbox {
    dir: tempfile::TempDir,
    /// The copy of the repository: the student code's working directory.
    pub repo: PathBuf,
    /// fmtool's files (the harness, worker outputs); not inside the copy.
    pub work: PathBuf,
    home: PathBuf,
}

impl Sandbox {
    /// Copies the regular files of `repo` (not `.git`, not links, not FIFOs or devices) into a new
    /// temporary folder.
    pub fn copy_of(repo: &Path) -> Result<Sandbox> {
        let dir = tempfile::Builder::new()
            .prefix("fmtool-student-")
            .tempdir()
            .map_err(|e| err!("cannot create a temporary folder for the student's code: {e}"))?;
        let copy = dir.path().join("repo");
        let work = dir.path().join("work");
        let home = dir.path().join("home");
        for d in [&copy, &work, &home] {
            std::fs::create_dir(d).map_err(|e| Error::io("create", d, &e))?;
        }
        // A Ctrl-C (or SIGTERM) while the student's code runs removes the copy too.
        crate::atomic::remember(crate::atomic::Undo::RemoveTree(dir.path().to_path_buf()));
        let mut budget = (0u64, 0usize);
        copy_tree(repo, &copy, &mut budget, 0)?;
        Ok(Sandbox { dir, repo: copy, work, home })
    }

    /// Writes `bytes` to `name` inside the copy, where the student's tests would have written it
    /// (`test_acc.txt`). A name that would leave the copy (absolute, or with `..`) is refused.
    pub fn write_in_copy(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.inside_copy(name).ok_or_else(|| err!("{name}: not a file name inside the repository"))?;
        std::fs::write(&path, bytes).map_err(|e| Error::io("write", &path, &e))
    }

    /// The text of `name` inside the copy (what the student's code wrote), when it is a regular
    /// file of at most 1 MiB.
    pub fn read_in_copy(&self, name: &str) -> Option<String> {
        let bytes = crate::fsguard::read(&self.inside_copy(name)?, 1 << 20).ok()?;
        String::from_utf8(bytes).ok()
    }

    fn inside_copy(&self, name: &str) -> Option<PathBuf> {
        let rel = Path::new(name);
        let plain = rel.components().all(|c| matches!(c, std::path::Component::Normal(_)));
        (plain && !name.is_empty()).then(|| self.repo.join(rel))
    }

    /// Writes one of fmtool's own files (the harness) into the work folder beside the copy.
    pub fn write_work(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        let path = self.work.join(name);
        std::fs::write(&path, bytes).map_err(|e| Error::io("write", &path, &e))?;
        Ok(path)
    }

    /// The temporary folder holding everything (removed when the sandbox is dropped).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `program args...` (a Python) in the copy. `on_line` sees every stdout line as it arrives (for
    /// progress); the whole process group is killed at the time limit and after the process ends.
    pub fn run(
        &self,
        python: &Path,
        args: &[String],
        env: &[(&str, String)],
        limits: Limits,
        on_line: &(dyn Fn(&str) + Sync),
    ) -> Result<Outcome> {
        let mut path = std::ffi::OsString::new();
        if let Some(parent) = python.parent().filter(|p| !p.as_os_str().is_empty()) {
            path.push(parent.as_os_str());
            path.push(":");
        }
        path.push("/usr/local/bin:/usr/bin:/bin");
        let mut cmd = Command::new(python);
        cmd.args(args)
            .current_dir(&self.repo)
            .env_clear()
            .env("PATH", path)
            .env("HOME", &self.home)
            .env("FMTOOL_OUT", &self.work)
            // One BLAS thread per process: the grader feeds one (1, 784) row at a time, and the
            // workers already use every core.
            .env("OPENBLAS_NUM_THREADS", "1")
            .env("OMP_NUM_THREADS", "1")
            .env("MKL_NUM_THREADS", "1")
            .env("MPLBACKEND", "Agg")
            .env("PYTHONIOENCODING", "utf-8")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        confine(&mut cmd, limits);
        let start = Instant::now();
        let mut child = cmd.spawn().map_err(|e| {
            err!("cannot start {}: {e}", python.display())
                .with_hint("pass --python PATH, a Python 3 with NumPy installed")
        })?;
        let pid = child.id();
        crate::atomic::remember(crate::atomic::Undo::KillGroup(pid));
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let (status, out, errs, timed_out) = std::thread::scope(|s| {
            let out = s.spawn(move || {
                let mut kept = String::new();
                let mut reader = BufReader::new(stdout);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    // A line is bounded too: student code may print without newlines.
                    match (&mut reader).take(KEEP_OUTPUT as u64).read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let text = String::from_utf8_lossy(&line);
                            on_line(text.trim_end());
                            keep_tail(&mut kept, &text);
                        }
                    }
                }
                kept
            });
            let errs = s.spawn(move || {
                let mut kept = String::new();
                let mut buf = vec![0u8; 64 * 1024];
                let mut r = stderr;
                while let Ok(n) = r.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    keep_tail(&mut kept, &String::from_utf8_lossy(&buf[..n]));
                }
                kept
            });
            let deadline = start + limits.timeout;
            let mut timed_out = false;
            let mut forked = None;
            let mut polls = 0u32;
            let status = loop {
                match child.try_wait() {
                    Ok(Some(st)) => break Some(st),
                    Ok(None) if Instant::now() >= deadline => {
                        timed_out = true;
                        kill_group(pid);
                        break child.wait().ok();
                    }
                    Ok(None) => {
                        polls += 1;
                        // Every 20 ms: a fork bomb doubles in a few milliseconds per generation.
                        if polls.is_multiple_of(2) {
                            let n = processes_in_group(pid);
                            if n > MAX_PROCESSES {
                                forked = Some(n);
                                kill_group(pid);
                                break child.wait().ok();
                            }
                        }
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(_) => break None,
                }
            };
            // Whatever the student's code left running goes with it.
            kill_group(pid);
            crate::atomic::forget(|u| matches!(u, crate::atomic::Undo::KillGroup(p) if *p == pid));
            let mut errs = errs.join().unwrap_or_default();
            if let Some(n) = forked {
                errs.push_str(&format!(
                    "\nfmtool stopped the student's code: it had {n} processes running at once (at most \
                     {MAX_PROCESSES} are allowed; does it call os.fork() or start processes in a loop?)\n"
                ));
            }
            (status, out.join().unwrap_or_default(), errs, timed_out)
        });
        Ok(Outcome {
            code: status.and_then(|s| s.code()),
            timed_out,
            stdout: out,
            stderr: errs,
            seconds: start.elapsed().as_secs_f64(),
        })
    }
}

fn keep_tail(kept: &mut String, more: &str) {
    kept.push_str(more);
    if kept.len() > KEEP_OUTPUT {
        let mut cut = kept.len() - KEEP_OUTPUT;
        while !kept.is_char_boundary(cut) {
            cut += 1;
        }
        kept.drain(..cut);
    }
}

fn copy_tree(from: &Path, to: &Path, budget: &mut (u64, usize), depth: usize) -> Result<()> {
    if depth > 32 {
        return Err(err!("{}: folders nested more than 32 deep; not a student repository", from.display()));
    }
    let entries = std::fs::read_dir(from).map_err(|e| Error::io("read the folder", from, &e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read the folder", from, &e))?;
        let name = entry.file_name();
        if name == ".git" {
            continue;
        }
        let src = entry.path();
        // symlink_metadata: a link is never followed (it could point at /dev/zero or outside).
        let meta = std::fs::symlink_metadata(&src).map_err(|e| Error::io("read", &src, &e))?;
        let dst = to.join(&name);
        if meta.is_dir() {
            std::fs::create_dir(&dst).map_err(|e| Error::io("create", &dst, &e))?;
            copy_tree(&src, &dst, budget, depth + 1)?;
        } else if meta.is_file() {
            budget.0 += meta.len();
            budget.1 += 1;
            if budget.0 > MAX_COPY_BYTES || budget.1 > MAX_COPY_FILES {
                return Err(err!(
                    "{}: the repository holds more than {} MiB or {MAX_COPY_FILES} files; not a student repository",
                    from.display(),
                    MAX_COPY_BYTES >> 20
                ));
            }
            std::fs::copy(&src, &dst).map_err(|e| Error::io("copy", &src, &e))?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn confine(cmd: &mut Command, limits: Limits) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    let memory = limits.memory;
    // SAFETY: the closure runs in the child between fork and exec and only makes system calls
    // (setrlimit, unshare), which are async-signal-safe; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            crate::atomic::unblock_signals_in_child();
            let set = |res, v: u64| {
                let lim = libc::rlimit { rlim_cur: v as libc::rlim_t, rlim_max: v as libc::rlim_t };
                libc::setrlimit(res, &lim);
            };
            set(libc::RLIMIT_AS, memory);
            set(libc::RLIMIT_CORE, 0);
            // No single file past 1 GiB: a student's loop writing without end fills no disk.
            set(libc::RLIMIT_FSIZE, 1 << 30);
            #[cfg(target_os = "linux")]
            {
                // Its own network namespace has only a loopback that is down: no network.
                // Unprivileged processes need a user namespace for it; where neither is
                // allowed, the code runs with the network it has.
                if libc::unshare(libc::CLONE_NEWNET) != 0 {
                    libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET);
                }
            }
            Ok(())
        });
    }
}

#[cfg(not(unix))]
fn confine(_cmd: &mut Command, _limits: Limits) {}

#[cfg(unix)]
fn kill_group(pid: u32) {
    // SAFETY: kill with a negative pid signals the process group the child leads; it was created
    // by process_group(0) above, so it holds only the student's processes.
    unsafe {
        libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
    }
}

#[cfg(not(unix))]
fn kill_group(_pid: u32) {}

/// How many processes are in the process group `pgid` (Linux: from /proc; elsewhere 0, and only
/// the time limit bounds a fork bomb).
fn processes_in_group(pgid: u32) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
        .filter(|e| {
            // /proc/N/stat: "N (comm) S ppid pgrp ...": comm may hold spaces and parentheses, so
            // the fields are counted from the last ')'.
            std::fs::read_to_string(e.path().join("stat")).ok().is_some_and(|stat| {
                stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(2)?.parse::<u32>().ok())
                    == Some(pgid)
            })
        })
        .count()
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let dir = self.dir.path().to_path_buf();
        crate::atomic::forget(|u| matches!(u, crate::atomic::Undo::RemoveTree(d) if *d == dir));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sandbox runs any program; /bin/sh keeps these tests free of Python.
    fn sh_python() -> PathBuf {
        PathBuf::from("/bin/sh")
    }

    fn limits(secs: u64) -> Limits {
        Limits { timeout: Duration::from_secs(secs), memory: 1 << 30 }
    }

    #[cfg(unix)]
    #[test]
    fn timeout_kills_the_whole_process_tree() {
        let src = tempfile::tempdir().unwrap();
        let sb = Sandbox::copy_of(src.path()).unwrap();
        let marker = sb.work.join("still-running");
        let script = format!("(sleep 3; touch {}) & sleep 30", marker.display());
        let t = Instant::now();
        let out = sb.run(&sh_python(), &["-c".into(), script], &[], limits(1), &|_| {}).unwrap();
        assert!(out.timed_out);
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        std::thread::sleep(Duration::from_millis(3500));
        assert!(!marker.exists(), "a grandchild survived the timeout");
    }

    /// A run that starts processes without end is stopped once it has more than MAX_PROCESSES,
    /// long before its time limit, and none of them is left. (Bounded at 300 here, so that a
    /// failure of the check leaves the time limit to clean up, not the machine's process table.)
    #[cfg(target_os = "linux")]
    #[test]
    fn a_fork_bomb_is_stopped_by_its_process_count() {
        let src = tempfile::tempdir().unwrap();
        let sb = Sandbox::copy_of(src.path()).unwrap();
        let script = "i=0; while [ $i -lt 300 ]; do sleep 31 & i=$((i+1)); done; wait".to_string();
        let t = Instant::now();
        let out = sb.run(&sh_python(), &["-c".into(), script], &[], limits(20), &|_| {}).unwrap();
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        assert!(!out.timed_out);
        assert!(out.stderr.contains("processes running at once"), "{}", out.stderr);
        // Killed processes take a moment to be reaped.
        let left = || {
            let o = std::process::Command::new("pgrep").args(["-c", "-f", "^sleep 31$"]).output().unwrap();
            String::from_utf8_lossy(&o.stdout).trim().parse::<usize>().unwrap_or(0)
        };
        let t = Instant::now();
        while left() > 0 && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(left(), 0, "processes of the fork bomb survived");
    }

    #[test]
    fn the_copy_leaves_out_git_and_links_and_the_original_is_untouched() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir(src.path().join(".git")).unwrap();
        std::fs::write(src.path().join(".git/config"), "x").unwrap();
        std::fs::create_dir(src.path().join("model")).unwrap();
        std::fs::write(src.path().join("model/a.json"), "[]").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("/dev/zero", src.path().join("zero.npz")).unwrap();
        let sb = Sandbox::copy_of(src.path()).unwrap();
        assert!(sb.repo.join("model/a.json").is_file());
        assert!(!sb.repo.join(".git").exists());
        assert!(!sb.repo.join("zero.npz").exists());
        let out = sb
            .run(
                &sh_python(),
                &["-c".into(), "echo hi > written.txt; echo $HOME; env | wc -l".into()],
                &[],
                limits(5),
                &|_| {},
            )
            .unwrap();
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert!(sb.repo.join("written.txt").is_file());
        assert!(!src.path().join("written.txt").exists());
        let path = sb.path().to_path_buf();
        drop(sb);
        assert!(!path.exists(), "the sandbox is removed when dropped");
    }

    #[cfg(unix)]
    #[test]
    fn memory_is_limited() {
        let src = tempfile::tempdir().unwrap();
        let sb = Sandbox::copy_of(src.path()).unwrap();
        let l = Limits { timeout: Duration::from_secs(10), memory: 64 << 20 };
        // 200 MB of zeros through `head -c` into a shell variable needs more than 64 MiB.
        let out = sb
            .run(
                &sh_python(),
                &["-c".into(), "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}".into()],
                &[],
                l,
                &|_| {},
            )
            .unwrap();
        assert_ne!(out.stdout.trim(), "200000000");
    }
}
