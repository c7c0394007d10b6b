//! Limits that bound a student as a whole, not one process at a time: how many processes, how
//! much resident memory and how much disk all of one repository's processes use together.
//! Per-process limits (RLIMIT_AS, RLIMIT_NPROC) do not: three children of 1.5 GB each pass a 4 GiB
//! address-space limit, and children that call setsid leave the process group. This machine has
//! no delegated cgroup v2 to set a hard limit with (nor do most staff laptops), so a watchdog
//! counts every 20 ms, from outside the sandbox: the processes in the sandbox's own PID namespace
//! (each process's `/proc/N/ns/pid`), their resident memory (`/proc/N/statm`), and every 0.5 s the
//! bytes and files under the folders the student can write. Past a limit the caller kills the
//! sandbox; the reason becomes the row's "stopped: ...". A process that allocates faster than one
//! tick can pass the memory limit for up to 20 ms; the kernel's OOM killer takes the student's
//! processes first (their oom_score_adj is 1000).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What one student may use at once, all processes together.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Limits {
    /// Processes at once (the student's own; the sandbox's init and fmtool's server not counted).
    pub processes: usize,
    /// Resident memory of all the student's processes together, in bytes.
    pub memory: u64,
    /// Bytes the student's code may add to its folders (copy, /tmp, $HOME, outputs).
    pub disk: u64,
    /// Files and folders it may add there.
    pub files: u64,
}

pub const DEFAULT: Limits = Limits { processes: 64, memory: 4 << 30, disk: 1 << 30, files: 50_000 };

/// Which processes are the student's.
#[derive(Clone)]
pub enum Target {
    /// Those in this PID namespace (its inode), less `own` of fmtool's (init and the server).
    Namespace { inode: u64, own: usize },
    /// Without a sandbox: those in these sessions (each child of the server starts one); a child
    /// that calls setsid itself is not seen.
    Sessions(Arc<Mutex<Vec<u32>>>),
}

/// How much a student uses now.
#[derive(Debug, Default, Clone)]
pub struct Usage {
    pub processes: usize,
    /// Resident memory, shared pages counted once per process (an upper bound).
    pub memory: u64,
    pub pids: Vec<u32>,
}

impl Usage {
    /// The memory the student's processes hold together (their PSS summed).
    pub fn proportional(&self) -> u64 {
        self.pids.iter().map(|p| proportional(*p)).sum()
    }
}

fn page_size() -> u64 {
    #[cfg(unix)]
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    #[cfg(not(unix))]
    let p = 4096;
    if p > 0 { p as u64 } else { 4096 }
}

/// The inode of the PID namespace process `pid` is in.
pub fn pid_namespace(pid: u32) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(format!("/proc/{pid}/ns/pid")).ok().map(|m| m.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        None
    }
}

fn session_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "N (comm) S ppid pgrp session ...": comm may hold spaces and parentheses.
    stat.rsplit_once(')')?.1.split_whitespace().nth(3)?.parse().ok()
}

fn resident(pid: u32, page: u64) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/statm"))
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * page)
}

/// The proportional set size: resident pages, each shared one divided among the processes that
/// share it. Forked children share their parent's pages until they write them, so their resident
/// sizes added up count those pages once per child; their PSS adds up to what they really hold.
/// Dearer to read than `statm` (the kernel walks the page tables), so it is read only when the
/// resident sizes pass the limit.
fn proportional(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Pss:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// Counts the student's processes and their memory. `foreign` remembers processes seen to be
/// someone else's, so that a tick stats only new pids.
pub fn usage(target: &Target, foreign: &mut HashSet<u32>) -> Usage {
    let page = page_size();
    let mut u = Usage::default();
    let Ok(entries) = std::fs::read_dir("/proc") else { return u };
    let sessions = match target {
        Target::Sessions(s) => s.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        Target::Namespace { .. } => Vec::new(),
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if foreign.contains(&pid) {
            continue;
        }
        let ours = match target {
            Target::Namespace { inode, .. } => match pid_namespace(pid) {
                Some(i) => i == *inode,
                None => continue,
            },
            Target::Sessions(_) => session_of(pid).is_some_and(|s| sessions.contains(&s)),
        };
        if ours {
            u.processes += 1;
            u.memory += resident(pid, page);
            u.pids.push(pid);
        } else if matches!(target, Target::Namespace { .. }) {
            // A process never moves into another PID namespace; pids are reused only after
            // pid_max more processes, and the cache is dropped every few seconds anyway.
            foreign.insert(pid);
        }
    }
    if let Target::Namespace { own, .. } = target {
        u.processes = u.processes.saturating_sub(*own);
    }
    u
}

/// Bytes and files under `dirs`, never following links; stops counting past `max_files`.
pub fn disk(dirs: &[PathBuf], max_files: u64) -> (u64, u64) {
    fn walk(dir: &Path, depth: usize, acc: &mut (u64, u64), max: u64) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            if acc.1 > max {
                return;
            }
            let Ok(m) = e.metadata() else { continue };
            acc.1 += 1;
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                acc.0 += m.blocks() * 512;
            }
            #[cfg(not(unix))]
            {
                acc.0 += m.len();
            }
            if m.is_dir() && depth < 64 {
                walk(&e.path(), depth + 1, acc, max);
            }
        }
    }
    let mut acc = (0, 0);
    for d in dirs {
        walk(d, 0, &mut acc, max_files);
    }
    acc
}

/// Watches one sandbox until `done`; returns why it must be stopped, if a limit was passed.
/// `base` is the disk use (bytes, files) before the student's code ran.
pub fn watch(target: &Target, dirs: &[PathBuf], limits: Limits, base: (u64, u64), done: &AtomicBool) -> Option<String> {
    let mut foreign = HashSet::new();
    let mut last_disk = Instant::now();
    let mut last_forget = Instant::now();
    while !done.load(Ordering::Relaxed) {
        let u = usage(target, &mut foreign);
        if u.processes > limits.processes {
            return Some(format!(
                "the student's code had {} processes at once (at most {} are allowed; does it call os.fork() or start processes in a loop?)",
                u.processes, limits.processes
            ));
        }
        if u.memory > limits.memory {
            let held = u.proportional();
            if held > limits.memory {
                return Some(format!(
                    "the student's processes used {} MiB of memory together (at most {} MiB are allowed)",
                    held >> 20,
                    limits.memory >> 20
                ));
            }
        }
        if last_disk.elapsed() >= Duration::from_millis(500) {
            last_disk = Instant::now();
            let (bytes, files) = disk(dirs, base.1 + limits.files);
            if bytes > base.0 + limits.disk {
                return Some(format!(
                    "the student's code wrote more than {} MiB to disk (its copy of the repository, /tmp and $HOME together)",
                    limits.disk >> 20
                ));
            }
            if files > base.1 + limits.files {
                return Some(format!("the student's code made more than {} files and folders on disk", limits.files));
            }
        }
        if last_forget.elapsed() >= Duration::from_secs(3) {
            last_forget = Instant::now();
            foreign.clear();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_disk_walk_counts_bytes_and_files_without_following_links() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("a")).unwrap();
        std::fs::write(d.path().join("a/x"), vec![1u8; 100_000]).unwrap();
        std::os::unix::fs::symlink("/usr", d.path().join("usr")).unwrap();
        let (bytes, files) = disk(&[d.path().to_path_buf()], 1000);
        assert_eq!(files, 3);
        assert!((100_000..200_000).contains(&bytes), "{bytes}");
    }

    /// A session's processes are counted with their memory; others are not.
    #[test]
    fn a_sessions_processes_are_counted() {
        let mut child =
            std::process::Command::new("setsid").args(["/bin/sh", "-c", "sleep 30 & sleep 30 & wait"]).spawn().unwrap();
        let sid = child.id();
        std::thread::sleep(Duration::from_millis(300));
        let target = Target::Sessions(Arc::new(Mutex::new(vec![sid])));
        let u = usage(&target, &mut HashSet::new());
        assert_eq!(u.processes, 3, "{u:?}");
        assert!(u.memory > 0);
        // SAFETY: kills the session's group, started above.
        unsafe { libc::kill(-(sid as i32), libc::SIGKILL) };
        let _ = child.wait();
    }
}
