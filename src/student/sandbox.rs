//! Runs a student's Python code without trusting it: one sandbox per repository, alive across the
//! repository's steps. The code runs in a temporary copy of the repository (nothing is written
//! into the student's folder, not even `test_acc.txt`), with only the student's environment.
//!
//! Inside, fmtool's harness runs as a small server (`harness.py serve`) that runs none of the
//! student's code itself: fmtool sends it one request per step or worker over a socket, and it
//! forks a child for each, whose stdout and stderr are pipes fmtool made and passed along. What
//! fmtool takes from a child is its exit status (as the grader takes pytest's); the server tells
//! fmtool that status over a socket the student's processes cannot reach. A fork is also what
//! makes a step cheap: NumPy is imported once per repository, not once per step.
//!
//! With bubblewrap (`bwrap.rs`), the server and every process of the student's live in a PID
//! namespace of their own: at each step's end the server kills every process but itself (setsid
//! daemons too), and when fmtool kills the sandbox (a time limit, a limit of `watchdog.rs`) the
//! kernel kills all of them at once. Without it (`--no-isolation`, or `score` in one's own
//! repository on a machine that cannot make one) the same server runs as an ordinary process: the
//! copy, the clean environment, the time limits and the process-group kills remain, but nothing
//! stops the code from reading or writing the user's other files.

use super::beneath::{self, Planted, Refused};
use super::bwrap;
use super::watchdog;
use crate::err;
use crate::error::{Error, Result};
use serde_json::Value;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The most a copied repository may hold: a student repo is a few megabytes of code, model and
/// data; a folder past this is not one, and copying it would fill the disk.
const MAX_COPY_BYTES: u64 = 1 << 30;
const MAX_COPY_FILES: usize = 20_000;
/// The most of a process's stdout or stderr kept for messages.
const KEEP_OUTPUT: usize = 256 * 1024;
/// How long the server may take to start (import NumPy) and to clean up after a step.
const SERVER_START: Duration = Duration::from_secs(60);
const CLEAN: Duration = Duration::from_secs(10);

/// Limits for one process of student code.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub timeout: Duration,
    /// Address space, in bytes (RLIMIT_AS).
    pub memory: u64,
}

/// How the student's code is kept from the rest of the machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Isolation {
    /// In a bubblewrap sandbox, with this bwrap.
    Bubblewrap(PathBuf),
    /// As an ordinary process (the reason is said once to the user).
    Off(String),
}

impl Isolation {
    /// The sandbox when this machine can make one, else why not.
    pub fn best() -> std::result::Result<Isolation, String> {
        bwrap::available().map(Isolation::Bubblewrap)
    }

    /// `bubblewrap` or `none`, as reports name it.
    pub fn name(&self) -> &'static str {
        match self {
            Isolation::Bubblewrap(_) => "bubblewrap",
            Isolation::Off(_) => "none",
        }
    }
}

/// How one process ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The exit code, or None when a signal ended it (or fmtool stopped it).
    pub code: Option<i32>,
    pub timed_out: bool,
    /// Why fmtool stopped the whole sandbox while this process ran (a limit on the student as a
    /// whole, the repository's total time, or the sandbox's server killed by the student's code).
    pub stopped: Option<String>,
    pub stdout: String,
    pub stderr: String,
    pub seconds: f64,
}

/// A temporary copy of a student repository, the folders beside it, and the sandbox that runs
/// the student's code over them.
pub struct Sandbox {
    dir: tempfile::TempDir,
    /// The copy of the repository: the student code's working directory.
    pub repo: PathBuf,
    /// fmtool's files (the harness): read-only inside.
    harness: PathBuf,
    /// Where the workers write their outputs: writable inside, so read without following links.
    out: PathBuf,
    tmp: PathBuf,
    home: PathBuf,
    isolation: Isolation,
    python: PathBuf,
    python_paths: Vec<PathBuf>,
    pub limits: watchdog::Limits,
    /// Disk use before any of the student's code ran (bytes, files).
    disk_base: (u64, u64),
    /// When the repository's total time is up, and that total.
    deadline: Option<(Instant, Duration)>,
    #[cfg(unix)]
    server: Mutex<Option<Arc<Server>>>,
    spawner: Spawner,
    /// The first reason the sandbox was stopped for (see [`Outcome::stopped`]).
    stopped: Arc<Mutex<Option<String>>>,
    planted: Mutex<Vec<Planted>>,
}

impl Sandbox {
    /// Copies the regular files of `repo` (not `.git`, not links, not FIFOs or devices) into a new
    /// temporary folder, to be run by `python` (its folders `python_paths` read-only inside).
    pub fn copy_of(repo: &Path, isolation: Isolation, python: &Path, python_paths: &[PathBuf]) -> Result<Sandbox> {
        let dir = tempfile::Builder::new()
            .prefix("fmtool-student-")
            .tempdir()
            .map_err(|e| err!("cannot create a temporary folder for the student's code: {e}"))?;
        let [copy, harness, out, tmp, home] = ["repo", "work", "out", "tmp", "home"].map(|n| dir.path().join(n));
        for d in [&copy, &harness, &out, &tmp, &home] {
            std::fs::create_dir(d).map_err(|e| Error::io("create", d, &e))?;
        }
        // A Ctrl-C (or SIGTERM) while the student's code runs removes the copy too.
        crate::atomic::remember(crate::atomic::Undo::RemoveTree(dir.path().to_path_buf()));
        let mut budget = (0u64, 0usize);
        copy_tree(repo, &copy, &mut budget, 0)?;
        let disk_base = watchdog::disk(&[copy.clone(), out.clone(), tmp.clone(), home.clone()], u64::MAX);
        Ok(Sandbox {
            dir,
            repo: copy,
            harness,
            out,
            tmp,
            home,
            isolation,
            python: python.to_path_buf(),
            python_paths: python_paths.to_vec(),
            limits: watchdog::DEFAULT,
            disk_base,
            deadline: None,
            #[cfg(unix)]
            server: Mutex::new(None),
            spawner: Spawner::new(),
            stopped: Arc::new(Mutex::new(None)),
            planted: Mutex::new(Vec::new()),
        })
    }

    /// Bounds the repository as a whole: no process of it runs past `total` from now.
    pub fn set_total_time(&mut self, total: Duration) {
        self.deadline = Some((Instant::now() + total, total));
    }

    pub fn isolation(&self) -> &Isolation {
        &self.isolation
    }

    /// Why the sandbox was stopped, if it was.
    pub fn stopped(&self) -> Option<String> {
        self.stopped.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Links the student's code planted where fmtool reads or writes (each a finding), and those
    /// left in the copy pointing out of it.
    pub fn planted_links(&self) -> Vec<Planted> {
        let mut all = self.planted.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for p in beneath::links_out(&self.repo, 20) {
            if !all.iter().any(|a| a.name == p.name) {
                all.push(p);
            }
        }
        all
    }

    fn note_link(&self, p: Planted) {
        let mut v = self.planted.lock().unwrap_or_else(|p| p.into_inner());
        if !v.contains(&p) {
            v.push(p);
        }
    }

    /// Writes `bytes` to `name` inside the copy, where the student's tests would have written it
    /// (`test_acc.txt`): as a new file, never through a link the student's code left there.
    pub fn write_in_copy(&self, name: &str, bytes: &[u8]) -> Result<()> {
        match beneath::replace(&self.repo, name, bytes) {
            Ok(planted) => {
                planted.into_iter().for_each(|p| self.note_link(p));
                Ok(())
            }
            Err(Refused::Link(p)) => {
                let msg = format!("{name}: the student's code put a link at {} (to {})", p.name, p.target);
                self.note_link(p);
                Err(err!("{msg}"))
            }
            Err(Refused::Other(m)) => Err(err!("{m}")),
        }
    }

    /// The text of `name` inside the copy (what the student's code wrote), when it is a regular
    /// file of at most 1 MiB reached without a link.
    pub fn read_in_copy(&self, name: &str) -> Option<String> {
        String::from_utf8(self.read_beneath(&self.repo, name, 1 << 20)?).ok()
    }

    /// A file the workers wrote into the output folder, read without following links.
    pub fn read_output(&self, name: &str, budget: u64) -> Option<Vec<u8>> {
        self.read_beneath(&self.out, name, budget)
    }

    /// The host path of an output file (for messages).
    pub fn output_host_path(&self, name: &str) -> PathBuf {
        self.out.join(name)
    }

    fn read_beneath(&self, root: &Path, name: &str, budget: u64) -> Option<Vec<u8>> {
        match beneath::read(root, name, budget) {
            Ok(b) => Some(b),
            Err(Refused::Link(p)) => {
                self.note_link(p);
                None
            }
            Err(Refused::Other(_)) => None,
        }
    }

    /// Writes one of fmtool's own files (the harness) into the folder that is read-only inside.
    /// Returns its path as the student's code sees it.
    pub fn write_harness(&self, name: &str, bytes: &[u8]) -> Result<String> {
        let path = self.harness.join(name);
        std::fs::write(&path, bytes).map_err(|e| Error::io("write", &path, &e))?;
        Ok(self.inside(&self.harness, bwrap::HARNESS_DIR, name))
    }

    /// Writes an executable of fmtool's (a shim on the workflow commands' PATH) into the harness
    /// folder, `name` possibly in a subfolder. Returns its path as the student's code sees it.
    pub fn write_tool(&self, name: &str, bytes: &[u8]) -> Result<String> {
        let path = self.harness.join(name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create the directory", dir, &e))?;
        }
        std::fs::write(&path, bytes).map_err(|e| Error::io("write", &path, &e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| Error::io("make executable", &path, &e))?;
        }
        Ok(self.inside(&self.harness, bwrap::HARNESS_DIR, name))
    }

    /// The path the student's code sees for the harness folder's `name` (`""`: the folder).
    pub fn harness_path(&self, name: &str) -> String {
        self.inside(&self.harness, bwrap::HARNESS_DIR, name).trim_end_matches('/').to_string()
    }

    /// The path the student's code sees for an output file `name`.
    pub fn output_path(&self, name: &str) -> String {
        self.inside(&self.out, bwrap::OUT_DIR, name)
    }

    fn inside(&self, host: &Path, sandboxed: &str, name: &str) -> String {
        match self.isolation {
            Isolation::Bubblewrap(_) => format!("{sandboxed}/{name}"),
            Isolation::Off(_) => host.join(name).display().to_string(),
        }
    }

    /// The temporary folder holding everything (removed when the sandbox is dropped).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The environment the student's code gets: the grader's PATH and HOME, nothing of fmtool's.
    fn environment(&self) -> Vec<(String, String)> {
        let mut path = String::new();
        if let Some(parent) = self.python.parent().filter(|p| !p.as_os_str().is_empty()) {
            path.push_str(&parent.display().to_string());
            path.push(':');
        }
        path.push_str("/usr/local/bin:/usr/bin:/bin");
        let (home, out) = match self.isolation {
            Isolation::Bubblewrap(_) => (bwrap::HOME.to_string(), bwrap::OUT_DIR.to_string()),
            Isolation::Off(_) => (self.home.display().to_string(), self.out.display().to_string()),
        };
        [
            ("PATH", path),
            ("HOME", home),
            ("FMTOOL_OUT", out),
            // One BLAS thread per process: the grader feeds one (1, 784) row at a time, and the
            // workers already use every core.
            ("OPENBLAS_NUM_THREADS", "1".into()),
            ("OMP_NUM_THREADS", "1".into()),
            ("MKL_NUM_THREADS", "1".into()),
            ("MPLBACKEND", "Agg".into()),
            ("PYTHONIOENCODING", "utf-8".into()),
            ("LANG", "C.UTF-8".into()),
            ("FMTOOL_NPROC", (self.limits.processes + 2).to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    #[cfg(unix)]
    /// The running server, started when there is none (the first step, or after fmtool stopped
    /// the last one).
    fn server(&self, memory: u64) -> Result<Arc<Server>> {
        let mut slot = self.server.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = slot.as_ref().filter(|s| s.alive()) {
            return Ok(s.clone());
        }
        if let Some(old) = slot.take() {
            old.kill(Gone::TimedOut);
        }
        let s = Server::start(self, memory)?;
        *slot = Some(s.clone());
        Ok(s)
    }

    /// Stops the sandbox: every process of the student's is killed; the next run starts a new one.
    /// A reason other than a time limit is the repository's `stopped`.
    #[cfg(unix)]
    fn stop(&self, server: &Server, why: Gone) {
        if let Gone::Stopped(w) = &why {
            self.note_stop(w.clone());
        }
        server.kill(why);
    }

    /// Keeps the first reason the sandbox was stopped for.
    fn note_stop(&self, why: String) {
        self.stopped.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(why);
    }

    fn total_limit_message(&self) -> String {
        let secs = self.deadline.map_or(0.0, |(_, d)| d.as_secs_f64());
        format!("the repository's total time limit of {secs:.0} s ran out")
    }

    /// Runs `args` (a mode of the harness and its arguments) in the sandbox. `on_line` sees every
    /// stdout line as it arrives (for progress). At the time limit the sandbox is stopped; when no
    /// other run is in flight, every process the run left behind is killed.
    pub fn run(
        &self,
        args: &[String],
        env: &[(&str, String)],
        limits: Limits,
        on_line: &(dyn Fn(&str) + Sync),
    ) -> Result<Outcome> {
        #[cfg(unix)]
        return self.run_here(args, env, limits, on_line);
        #[cfg(not(unix))]
        {
            let _ = (args, env, limits, on_line);
            Err(err!("fmtool runs a student's code on Linux and macOS only")
                .with_hint("grade in a Linux VM or container (see the README's section on the sandbox), or in WSL"))
        }
    }

    #[cfg(unix)]
    fn run_here(
        &self,
        args: &[String],
        env: &[(&str, String)],
        limits: Limits,
        on_line: &(dyn Fn(&str) + Sync),
    ) -> Result<Outcome> {
        let start = Instant::now();
        let mut deadline = start + limits.timeout;
        let mut total_limit = false;
        if let Some((total, _)) = self.deadline
            && total < deadline
        {
            deadline = total;
            total_limit = true;
        }
        if Instant::now() >= deadline {
            return Ok(self.not_started(total_limit, start));
        }
        let server = self.server(limits.memory)?;
        let id = server.next.fetch_add(1, Ordering::Relaxed);
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let mut vars: serde_json::Map<String, Value> =
            self.environment().into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        for (k, v) in env {
            vars.insert(k.to_string(), Value::String(v.clone()));
        }
        let request = serde_json::json!({"op": "run", "id": id, "argv": args, "env": vars});
        server.in_flight.fetch_add(1, Ordering::SeqCst);
        let sent = server.send(&request, &[&out_w, &err_w]);
        drop((out_w, err_w));
        let out_buf = Arc::new(Output::default());
        let err_buf = Arc::new(Output::default());
        let (tx, rx) = std::sync::mpsc::sync_channel(64);
        spawn_reader(out_r, out_buf.clone(), Some(tx));
        spawn_reader(err_r, err_buf.clone(), None);
        let end = match sent {
            Err(e) => End::Died(Gone::Stopped(format!("cannot talk to the sandbox's server: {e}"))),
            Ok(()) => server.wait(id, deadline, &mut || {
                while let Ok(l) = rx.try_recv() {
                    on_line(l.trim_end());
                }
            }),
        };
        let last = server.in_flight.fetch_sub(1, Ordering::SeqCst) == 1;
        let (code, timed_out, stopped) = match end {
            End::Exited(c) => (Some(c), false, None),
            End::Signaled => (None, false, None),
            End::TimedOut if total_limit => {
                let why = self.total_limit_message();
                self.stop(&server, Gone::Stopped(why.clone()));
                (None, true, Some(why))
            }
            // A hang: the step fails (as GitHub fails a step at its timeout), and the repository's
            // row says fmtool had to kill its code. Another run of this sandbox that reached its
            // time limit ends this one with it.
            End::TimedOut | End::Died(Gone::TimedOut) => {
                self.note_stop(format!(
                    "the student's code ran past a step's time limit of {:.0} s and was killed",
                    limits.timeout.as_secs_f64()
                ));
                self.stop(&server, Gone::TimedOut);
                (None, true, None)
            }
            End::Died(Gone::Stopped(why)) => {
                // The watchdog's reason when it stopped the sandbox, else the server's own end.
                server.kill(Gone::Stopped(why.clone()));
                self.note_stop(why);
                (None, false, self.stopped())
            }
        };
        if last && server.alive() && !server.clean() {
            self.stop(&server, Gone::Stopped("the student's processes could not be ended after the step".into()));
        }
        let seconds = start.elapsed().as_secs_f64();
        // The pipes close once every process holding them is gone: after the clean-up, or when
        // the sandbox was stopped. A process of another run still in flight may hold them open;
        // then what arrived so far is what there is.
        let stdout = out_buf.take_within(Duration::from_secs(2));
        let mut stderr = err_buf.take_within(Duration::from_millis(200));
        if let Some(why) = &stopped {
            stderr.push_str(&format!("\nfmtool stopped the student's code: {why}\n"));
        }
        Ok(Outcome { code, timed_out, stopped, stdout, stderr, seconds })
    }

    fn not_started(&self, total_limit: bool, start: Instant) -> Outcome {
        let why = if total_limit { self.total_limit_message() } else { "no time was left for this step".to_string() };
        if total_limit {
            self.note_stop(why.clone());
        }
        Outcome {
            code: None,
            timed_out: true,
            stopped: total_limit.then_some(why.clone()),
            stdout: String::new(),
            stderr: why,
            seconds: start.elapsed().as_secs_f64(),
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(s) = self.server.lock().unwrap_or_else(|p| p.into_inner()).take() {
            s.kill(Gone::TimedOut);
        }
        let dir = self.dir.path().to_path_buf();
        make_removable(&dir);
        crate::atomic::forget(|u| matches!(u, crate::atomic::Undo::RemoveTree(d) if *d == dir));
    }
}

/// Folders the student's code left without write or search permission cannot be emptied by a
/// user that is not root: give them back before the temporary folder is removed.
fn make_removable(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fn walk(d: &Path, depth: usize) {
            if depth > 64 {
                return;
            }
            let _ = std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700));
            let Ok(entries) = std::fs::read_dir(d) else { return };
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&e.path(), depth + 1);
                }
            }
        }
        walk(dir, 0);
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Starts the sandbox's server from one thread that lives as long as the sandbox. bubblewrap's
/// `--die-with-parent` (PR_SET_PDEATHSIG) ends the sandbox when the *thread* that started it
/// ends, and a server restarted after a time limit may be started by a short-lived thread (a
/// worker of test_inference): started here, it lives until the sandbox is dropped, or fmtool dies.
struct Spawner {
    tx: Mutex<std::sync::mpsc::Sender<(Command, std::sync::mpsc::Sender<std::io::Result<Child>>)>>,
}

impl Spawner {
    fn new() -> Spawner {
        let (tx, rx) = std::sync::mpsc::channel::<(Command, std::sync::mpsc::Sender<std::io::Result<Child>>)>();
        std::thread::spawn(move || {
            while let Ok((mut cmd, reply)) = rx.recv() {
                let _ = reply.send(cmd.spawn());
            }
        });
        Spawner { tx: Mutex::new(tx) }
    }

    fn spawn(&self, cmd: Command) -> std::io::Result<Child> {
        let (reply, answer) = std::sync::mpsc::channel();
        let sent = self.tx.lock().unwrap_or_else(|p| p.into_inner()).send((cmd, reply));
        sent.map_err(|_| std::io::Error::other("the sandbox's spawning thread is gone"))?;
        answer.recv().map_err(|_| std::io::Error::other("the sandbox's spawning thread is gone"))?
    }
}

/// How a run ended.
enum End {
    Exited(i32),
    Signaled,
    TimedOut,
    Died(Gone),
}

/// Why a server is gone.
#[derive(Clone, Debug)]
enum Gone {
    /// fmtool killed it at a run's time limit.
    TimedOut,
    /// A limit on the student as a whole, or the server died (killed by the student's code).
    Stopped(String),
}

/// A process's stdout or stderr as it arrives, its tail kept.
#[derive(Default)]
struct Output {
    text: Mutex<String>,
    done: Mutex<bool>,
    cond: Condvar,
}

impl Output {
    fn push(&self, more: &str) {
        let mut kept = self.text.lock().unwrap_or_else(|p| p.into_inner());
        kept.push_str(more);
        if kept.len() > KEEP_OUTPUT {
            let mut cut = kept.len() - KEEP_OUTPUT;
            while !kept.is_char_boundary(cut) {
                cut += 1;
            }
            kept.drain(..cut);
        }
    }

    fn finish(&self) {
        *self.done.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cond.notify_all();
    }

    fn take_within(&self, wait: Duration) -> String {
        let done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self.cond.wait_timeout_while(done, wait, |d| !*d);
        std::mem::take(&mut *self.text.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[cfg(unix)]
/// Reads a pipe on a thread of its own into `buf` (which keeps the tail); `@@progress` lines also
/// go to `progress`, dropped when the caller is behind. The thread may outlive the run: a daemon
/// of the student's can hold the pipe until the step's clean-up.
fn spawn_reader(fd: std::os::fd::OwnedFd, buf: Arc<Output>, progress: Option<std::sync::mpsc::SyncSender<String>>) {
    std::thread::spawn(move || {
        let mut reader = std::io::BufReader::new(std::fs::File::from(fd));
        let mut line = Vec::new();
        loop {
            line.clear();
            // A line is bounded too: student code may print without newlines.
            match std::io::BufRead::read_until(&mut (&mut reader).take(KEEP_OUTPUT as u64), b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line).into_owned();
                    if let Some(tx) = &progress
                        && text.starts_with("@@progress")
                    {
                        let _ = tx.try_send(text.clone());
                    }
                    buf.push(&text);
                }
            }
        }
        buf.finish();
    });
}

#[cfg(unix)]
fn pipe() -> Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe fills two descriptors we then own. Close-on-exec: atomically on Linux (pipe2);
    // elsewhere just after, so that a process another thread spawns meanwhile could inherit them.
    unsafe {
        #[cfg(target_os = "linux")]
        let r = libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC);
        #[cfg(not(target_os = "linux"))]
        let r = libc::pipe(fds.as_mut_ptr());
        if r != 0 {
            return Err(err!("cannot make a pipe: {}", std::io::Error::last_os_error()));
        }
        Ok(owned_pair(fds))
    }
}

/// Two new descriptors, owned; close-on-exec set where the call that made them could not.
///
/// # Safety
/// `fds` must be two open descriptors that nothing else owns.
#[cfg(unix)]
unsafe fn owned_pair(fds: [i32; 2]) -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    // SAFETY: the caller's descriptors, given to OwnedFd once each.
    unsafe {
        #[cfg(not(target_os = "linux"))]
        for fd in fds {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
        (std::os::fd::OwnedFd::from_raw_fd(fds[0]), std::os::fd::OwnedFd::from_raw_fd(fds[1]))
    }
}

/// The harness's server in one sandbox, and fmtool's end of its socket.
#[cfg(unix)]
struct Server {
    child: Mutex<Child>,
    /// The host pid of the sandbox's init (bubblewrap), whose death ends every process inside.
    init: Option<u32>,
    sock: std::os::fd::OwnedFd,
    replies: Mutex<Replies>,
    cond: Condvar,
    next: AtomicU64,
    in_flight: AtomicUsize,
    /// Set once the server is gone or killed; ends the watchdog.
    done: Arc<AtomicBool>,
    /// Without a sandbox: the sessions of the server's children, killed by group.
    sessions: Arc<Mutex<Vec<u32>>>,
    log: Arc<Output>,
}

#[derive(Default)]
struct Replies {
    by_id: HashMap<u64, Vec<Value>>,
    gone: Option<Gone>,
}

#[cfg(unix)]
impl Server {
    fn start(sb: &Sandbox, memory: u64) -> Result<Arc<Server>> {
        use std::os::fd::AsRawFd;
        let (ours, theirs) = socket_pair()?;
        let harness = sb.inside(&sb.harness, bwrap::HARNESS_DIR, "fmtool_harness.py");
        let mut command = vec![sb.python.display().to_string(), "-I".into(), "-B".into(), harness, "serve".into()];
        let env = sb.environment();
        let (mut cmd, args_pipe, info) = match &sb.isolation {
            Isolation::Bubblewrap(bwrap_path) => {
                let (args_r, args_w) = pipe()?;
                let (info_r, info_w) = pipe()?;
                let dirs =
                    bwrap::Folders { repo: &sb.repo, tmp: &sb.tmp, home: &sb.home, harness: &sb.harness, out: &sb.out };
                let mut bytes = Vec::new();
                for a in bwrap::options(&dirs, &sb.python_paths, 5) {
                    bytes.extend_from_slice(a.as_bytes());
                    bytes.push(0);
                }
                // The sandbox's init shows this argv at /proc/1/cmdline: the interpreter and the
                // harness, not fmtool's own command line or the folders bound.
                let mut c = Command::new(bwrap_path);
                c.args(["--args", "4", "--"]).args(&command);
                (c, Some((args_r, args_w, bytes)), Some((info_r, info_w)))
            }
            Isolation::Off(_) => {
                command.push("--no-isolation".into());
                let mut c = Command::new(&command[0]);
                c.args(&command[1..]).current_dir(&sb.repo);
                (c, None, None)
            }
        };
        cmd.env_clear().envs(env).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let fds = [
            theirs.as_raw_fd(),
            args_pipe.as_ref().map_or(-1, |a| a.0.as_raw_fd()),
            info.as_ref().map_or(-1, |i| i.1.as_raw_fd()),
        ];
        confine(&mut cmd, memory, fds, matches!(sb.isolation, Isolation::Off(_)));
        let mut child = sb.spawner.spawn(cmd).map_err(|e| {
            err!("cannot start the sandbox for the student's code ({}): {e}", sb.python.display())
                .with_hint("pass --python PATH, a Python 3 with NumPy installed")
        })?;
        drop(theirs);
        let pid = child.id();
        crate::atomic::remember(crate::atomic::Undo::KillGroup(pid));
        let log = Arc::new(Output::default());
        if let Some(stderr) = child.stderr.take() {
            spawn_reader(stderr.into(), log.clone(), None);
        }
        let mut init = None;
        if let Some((args_r, args_w, bytes)) = args_pipe {
            drop(args_r);
            let mut w = std::fs::File::from(args_w);
            let _ = std::io::Write::write_all(&mut w, &bytes);
            drop(w);
        }
        if let Some((info_r, info_w)) = info {
            drop(info_w);
            // bwrap writes {"child-pid": N, ...} and closes it, or exits having failed.
            let mut text = String::new();
            let _ = std::fs::File::from(info_r).take(1 << 16).read_to_string(&mut text);
            init = serde_json::from_str::<Value>(&text).ok().and_then(|v| v["child-pid"].as_u64()).map(|p| p as u32);
            if init.is_none() {
                let _ = child.kill();
                let _ = child.wait();
                crate::atomic::forget(|u| matches!(u, crate::atomic::Undo::KillGroup(p) if *p == pid));
                let said = log.take_within(Duration::from_secs(2));
                return Err(err!("bubblewrap could not make the sandbox: {}", crate::text::clip(said.trim(), 300))
                    .with_hint("run `bwrap --ro-bind / / true` to see why, or pass --no-isolation to run the code without it (only for code you trust)"));
            }
        }
        let server = Arc::new(Server {
            child: Mutex::new(child),
            init,
            sock: ours,
            replies: Mutex::new(Replies::default()),
            cond: Condvar::new(),
            next: AtomicU64::new(1),
            in_flight: AtomicUsize::new(0),
            done: Arc::new(AtomicBool::new(false)),
            sessions: Arc::new(Mutex::new(Vec::new())),
            log,
        });
        let reader = server.clone();
        std::thread::spawn(move || reader.read_replies());
        let target = match init.and_then(watchdog::pid_namespace) {
            // init and the server itself are fmtool's.
            Some(inode) => watchdog::Target::Namespace { inode, own: 2 },
            None => watchdog::Target::Sessions(server.sessions.clone()),
        };
        let watched = server.clone();
        let stopped = sb.stopped.clone();
        let dirs = vec![sb.repo.clone(), sb.out.clone(), sb.tmp.clone(), sb.home.clone()];
        let (limits, base) = (sb.limits, sb.disk_base);
        std::thread::spawn(move || {
            if let Some(why) = watchdog::watch(&target, &dirs, limits, base, &watched.done) {
                stopped.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(why.clone());
                watched.kill(Gone::Stopped(why));
            }
        });
        // The server is ready once it answers: a clean-up request before any child.
        let id = server.next.fetch_add(1, Ordering::Relaxed);
        server.send(&serde_json::json!({"op": "clean", "id": id}), &[]).ok();
        match server.wait_for(id, Instant::now() + SERVER_START, |v| v.get("cleaned").is_some()) {
            Some(_) => Ok(server),
            None => {
                server.kill(Gone::TimedOut);
                let said = server.log.take_within(Duration::from_secs(1));
                Err(err!(
                    "the sandbox's Python did not start: {}",
                    crate::text::clip(said.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message"), 300)
                )
                .with_hint("pass --python PATH, a Python 3.9 or later with NumPy installed"))
            }
        }
    }

    fn alive(&self) -> bool {
        !self.done.load(Ordering::SeqCst)
    }

    /// Whether the server's process (bwrap, or the Python itself) has ended.
    fn exited(&self) -> bool {
        self.child.lock().unwrap_or_else(|p| p.into_inner()).try_wait().is_ok_and(|s| s.is_some())
    }

    fn read_replies(&self) {
        use std::os::fd::AsRawFd;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            // SAFETY: recv into a buffer of the given length on a socket we own.
            let n = unsafe { libc::recv(self.sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n <= 0 {
                if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                break;
            }
            let Ok(v) = serde_json::from_slice::<Value>(&buf[..n as usize]) else { continue };
            let Some(id) = v["id"].as_u64() else { continue };
            if let Some(pid) = v["pid"].as_u64() {
                self.sessions.lock().unwrap_or_else(|p| p.into_inner()).push(pid as u32);
            }
            let mut r = self.replies.lock().unwrap_or_else(|p| p.into_inner());
            r.by_id.entry(id).or_default().push(v);
            self.cond.notify_all();
        }
        let mut r = self.replies.lock().unwrap_or_else(|p| p.into_inner());
        r.gone.get_or_insert_with(|| {
            Gone::Stopped("fmtool's server in the sandbox ended unexpectedly (did the student's code kill it?)".into())
        });
        self.done.store(true, Ordering::SeqCst);
        self.cond.notify_all();
    }

    fn send(&self, msg: &Value, fds: &[&std::os::fd::OwnedFd]) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let data = msg.to_string().into_bytes();
        let raw: Vec<libc::c_int> = fds.iter().map(|f| f.as_raw_fd()).collect();
        // SAFETY: a sendmsg with one iovec over `data` and, when there are fds, one SCM_RIGHTS
        // control message in a buffer sized by CMSG_SPACE and aligned for cmsghdr (u64 words).
        unsafe {
            let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
            let payload = std::mem::size_of_val(raw.as_slice()) as u32;
            let space = libc::CMSG_SPACE(payload) as usize;
            let mut control = vec![0u64; space.div_ceil(8)];
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            if !raw.is_empty() {
                msg.msg_control = control.as_mut_ptr().cast();
                msg.msg_controllen = space as _;
                let cmsg = libc::CMSG_FIRSTHDR(&msg);
                (*cmsg).cmsg_level = libc::SOL_SOCKET;
                (*cmsg).cmsg_type = libc::SCM_RIGHTS;
                (*cmsg).cmsg_len = libc::CMSG_LEN(payload) as _;
                std::ptr::copy_nonoverlapping(raw.as_ptr(), libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), raw.len());
            }
            // No MSG_NOSIGNAL (not on macOS): Rust's runtime ignores SIGPIPE.
            if libc::sendmsg(self.sock.as_raw_fd(), &msg, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// The first reply for `id` that `wanted` accepts, before `deadline`; None past it or when the
    /// server is gone.
    fn wait_for(&self, id: u64, deadline: Instant, wanted: impl Fn(&Value) -> bool) -> Option<Value> {
        let mut r = self.replies.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(v) = r.by_id.get(&id).and_then(|v| v.iter().find(|x| wanted(x))) {
                let v = v.clone();
                r.by_id.remove(&id);
                return Some(v);
            }
            let now = Instant::now();
            if r.gone.is_some() || now >= deadline {
                return None;
            }
            r = self
                .cond
                .wait_timeout(r, (deadline - now).min(Duration::from_millis(100)))
                .map(|x| x.0)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Waits for run `id` to end, calling `tick` every 50 ms meanwhile (progress).
    fn wait(&self, id: u64, deadline: Instant, tick: &mut dyn FnMut()) -> End {
        let ended = |v: &Value| v.get("status").is_some() || v.get("signal").is_some();
        loop {
            let step = (Instant::now() + Duration::from_millis(50)).min(deadline);
            tick();
            if let Some(v) = self.wait_for(id, step, ended) {
                tick();
                return match v["status"].as_i64() {
                    Some(c) => End::Exited(c as i32),
                    None => End::Signaled,
                };
            }
            if let Some(gone) = self.replies.lock().unwrap_or_else(|p| p.into_inner()).gone.clone() {
                return End::Died(gone);
            }
            if self.exited() {
                self.done.store(true, Ordering::SeqCst);
                return End::Died(Gone::Stopped(
                    "fmtool's server in the sandbox ended unexpectedly (did the student's code kill it?)".into(),
                ));
            }
            if Instant::now() >= deadline {
                return End::TimedOut;
            }
        }
    }

    /// Kills every process the student left; false when that did not work (then the caller
    /// stops the sandbox).
    fn clean(&self) -> bool {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        if self.send(&serde_json::json!({"op": "clean", "id": id}), &[]).is_err() {
            return false;
        }
        let ok = self.wait_for(id, Instant::now() + CLEAN, |v| v.get("cleaned").is_some());
        let ok = ok.is_some_and(|v| v["cleaned"] == true);
        if ok {
            self.sessions.lock().unwrap_or_else(|p| p.into_inner()).clear();
        }
        ok
    }

    /// Kills the sandbox: its init (every process in its PID namespace dies with it), or without
    /// one the server and its children's sessions.
    fn kill(&self, why: Gone) {
        self.done.store(true, Ordering::SeqCst);
        #[cfg(unix)]
        {
            // SAFETY: SIGKILL to processes this server started: the sandbox's init (a host pid
            // we were told by bwrap), and without a sandbox the sessions its children lead.
            unsafe {
                if let Some(init) = self.init {
                    libc::kill(init as libc::pid_t, libc::SIGKILL);
                }
                for s in self.sessions.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                    libc::kill(-(*s as libc::pid_t), libc::SIGKILL);
                }
            }
        }
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        let pid = child.id();
        #[cfg(unix)]
        // SAFETY: the server's own process group (process_group(0) at spawn).
        unsafe {
            libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
        }
        let _ = child.kill();
        let _ = child.wait();
        crate::atomic::forget(|u| matches!(u, crate::atomic::Undo::KillGroup(p) if *p == pid));
        let mut r = self.replies.lock().unwrap_or_else(|p| p.into_inner());
        r.gone.get_or_insert(why);
        self.cond.notify_all();
    }
}

#[cfg(unix)]
fn socket_pair() -> Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    let mut fds = [0i32; 2];
    // SOCK_SEQPACKET keeps each JSON message whole and says when the peer is gone. Elsewhere
    // (macOS has no SOCK_SEQPACKET for unix sockets) datagrams keep messages whole, and the
    // server's end is noticed by its exit instead ([`Server::wait`]).
    // SAFETY: socketpair fills two descriptors we then own.
    unsafe {
        #[cfg(target_os = "linux")]
        let kind = libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC;
        #[cfg(not(target_os = "linux"))]
        let kind = libc::SOCK_DGRAM;
        if libc::socketpair(libc::AF_UNIX, kind, 0, fds.as_mut_ptr()) != 0 {
            return Err(err!("cannot make a socket for the sandbox: {}", std::io::Error::last_os_error()));
        }
        Ok(owned_pair(fds))
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

/// Between fork and exec of the server (or of bwrap): the socket, bwrap's argument pipe and its
/// info pipe at fds 3, 4 and 5; per-process limits; first in the OOM killer's line; signals
/// unblocked; its own process group (and without a sandbox, its own session).
#[cfg(unix)]
fn confine(cmd: &mut Command, memory: u64, fds: [i32; 3], own_session: bool) {
    use std::os::unix::process::CommandExt;
    if !own_session {
        cmd.process_group(0);
    }
    // SAFETY: the closure runs in the child between fork and exec and only makes system calls
    // (fcntl, dup2, setrlimit, open, write, close, setsid), which are async-signal-safe; it
    // allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            crate::atomic::unblock_signals_in_child();
            if own_session {
                libc::setsid();
            }
            // Out of the way first, so that moving one to 3 cannot overwrite another.
            let mut high = [-1i32; 3];
            for (i, fd) in fds.iter().enumerate() {
                if *fd >= 0 {
                    high[i] = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 10);
                    if high[i] < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
            }
            for (i, fd) in high.iter().enumerate() {
                if *fd >= 0 && libc::dup2(*fd, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
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
                let path = c"/proc/self/oom_score_adj";
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd >= 0 {
                    libc::write(fd, b"1000".as_ptr().cast(), 4);
                    libc::close(fd);
                }
                // Without bubblewrap, still no network where the OS gives an unprivileged process
                // a namespace of its own.
                if own_session && libc::unshare(libc::CLONE_NEWNET) != 0 {
                    libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET);
                }
            }
            Ok(())
        });
    }
}

#[cfg(not(unix))]
fn confine(_cmd: &mut Command, _memory: u64, _fds: [i32; 3], _own_session: bool) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command as Cmd;

    /// The sandbox, or None when this machine cannot make one (then the test says so and passes;
    /// on CI, where bubblewrap is installed, it fails instead).
    fn sandbox_or_skip(test: &str) -> Option<(Isolation, crate::student::Python)> {
        let isolation = match Isolation::best() {
            Ok(i) => i,
            Err(why) if std::env::var_os("CI").is_some() => panic!("{test}: no sandbox on CI: {why}"),
            Err(why) => {
                eprintln!("skipped {test}: no sandbox here: {why}");
                return None;
            }
        };
        let requested = std::env::var_os("FMTOOL_PYTHON").map(PathBuf::from);
        match crate::student::find_python(requested.as_deref()) {
            Ok(p) => Some((isolation, p)),
            Err(why) if std::env::var_os("CI").is_some() => panic!("{test}: no Python with NumPy on CI: {why}"),
            Err(why) => {
                eprintln!("skipped {test}: {why}");
                None
            }
        }
    }

    /// A sandbox over a repository whose model_test.py is `tests`.
    fn sandbox_with(
        tests: &str,
        isolation: Isolation,
        python: &crate::student::Python,
    ) -> (tempfile::TempDir, Sandbox) {
        let repo = tempfile::tempdir().unwrap();
        std::fs::write(repo.path().join("model_test.py"), tests).unwrap();
        let sb = Sandbox::copy_of(repo.path(), isolation, &python.executable, &python.folders).unwrap();
        sb.write_harness("fmtool_harness.py", crate::student::HARNESS.as_bytes()).unwrap();
        (repo, sb)
    }

    fn run(sb: &Sandbox, test: &str, secs: u64) -> Outcome {
        let limits = Limits { timeout: Duration::from_secs(secs), memory: 4 << 30 };
        sb.run(&["tests".into(), test.into()], &[], limits, &|_| {}).unwrap()
    }

    /// The host pids whose command line holds `marker`, after up to `wait` for them to go.
    fn left(marker: &str, wait: Duration) -> Vec<u32> {
        let start = Instant::now();
        loop {
            let o = Cmd::new("pgrep").args(["-f", marker]).output().unwrap();
            let pids: Vec<u32> =
                String::from_utf8_lossy(&o.stdout).split_whitespace().filter_map(|p| p.parse().ok()).collect();
            if pids.is_empty() || start.elapsed() > wait {
                for p in &pids {
                    // SAFETY: the test's own cleanup of processes carrying its marker.
                    unsafe { libc::kill(*p as i32, libc::SIGKILL) };
                }
                return pids;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A daemon that calls setsid and keeps the step's stdout open ends with the step: the step
    /// returns at once, and no process of it is left.
    #[test]
    fn a_step_ends_with_every_process_it_started() {
        let Some((iso, py)) = sandbox_or_skip("a_step_ends_with_every_process_it_started") else { return };
        let (_repo, sb) = sandbox_with(
            "import subprocess, sys\n\ndef test_daemon():\n    subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', 'FMTOOL_T_DAEMON'], start_new_session=True)\n",
            iso,
            &py,
        );
        let t = Instant::now();
        let out = run(&sb, "test_daemon", 30);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        assert_eq!(left("FMTOOL_T_DAEMON", Duration::from_secs(2)), Vec::<u32>::new(), "a daemon survived its step");
        assert_eq!(sb.stopped(), None);
    }

    /// At a step's time limit every process of the sandbox dies; the next step gets a new one.
    #[test]
    fn a_time_limit_ends_the_step_and_the_next_step_runs() {
        let Some((iso, py)) = sandbox_or_skip("a_time_limit_ends_the_step_and_the_next_step_runs") else { return };
        let (_repo, sb) =
            sandbox_with("import time\n\ndef test_hang():\n    time.sleep(60)\n\ndef test_ok():\n    pass\n", iso, &py);
        let t = Instant::now();
        let out = run(&sb, "test_hang", 1);
        assert!(out.timed_out && out.code.is_none(), "{out:?}");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert_eq!(out.stopped, None, "a step's time limit fails the step; the sandbox goes on");
        assert!(sb.stopped().is_some_and(|w| w.contains("time limit of 1 s")), "{:?}", sb.stopped());
        assert_eq!(run(&sb, "test_ok", 30).code, Some(0));
    }

    /// The repository's total time bounds every step after it: a step that would run past it is
    /// killed there, and the ones after it do not start; the row says why.
    #[test]
    fn the_total_time_bounds_the_repository() {
        let Some((iso, py)) = sandbox_or_skip("the_total_time_bounds_the_repository") else { return };
        let (_repo, mut sb) = sandbox_with("import time\n\ndef test_slow():\n    time.sleep(60)\n", iso, &py);
        sb.set_total_time(Duration::from_secs(2));
        let t = Instant::now();
        let first = run(&sb, "test_slow", 30);
        assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());
        assert!(first.timed_out && first.stopped.as_deref().is_some_and(|s| s.contains("total time limit of 2 s")));
        let second = run(&sb, "test_slow", 30);
        assert!(second.timed_out && second.seconds < 0.5, "{second:?}");
        assert!(sb.stopped().is_some_and(|s| s.contains("total time limit")));
    }

    /// A server restarted by a short-lived thread (a worker of test_inference, after a time limit
    /// killed the last one) outlives that thread: bubblewrap dies with the thread that started it.
    #[test]
    fn a_server_outlives_the_thread_that_started_it() {
        let Some((iso, py)) = sandbox_or_skip("a_server_outlives_the_thread_that_started_it") else { return };
        let (_repo, sb) = sandbox_with(
            "import time\n\ndef test_hang():\n    time.sleep(60)\n\ndef test_ok():\n    pass\n\ndef test_slow():\n    time.sleep(2)\n",
            iso,
            &py,
        );
        assert!(run(&sb, "test_hang", 1).timed_out);
        let slow = std::thread::scope(|s| {
            // Starts the new server, and ends while the other thread's step runs on it.
            s.spawn(|| {
                assert_eq!(run(&sb, "test_ok", 30).code, Some(0));
                std::thread::sleep(Duration::from_millis(1000));
            });
            let slow = s.spawn(|| {
                std::thread::sleep(Duration::from_millis(300));
                run(&sb, "test_slow", 30)
            });
            slow.join().unwrap()
        });
        assert_eq!((slow.code, slow.stopped), (Some(0), None), "{}", slow.stderr);
    }

    /// Children that call setsid escape a process group, not the sandbox: the student's process
    /// count stops them long before the time limit, and none is left.
    #[test]
    fn a_fork_bomb_is_stopped_by_the_students_process_count() {
        let Some((iso, py)) = sandbox_or_skip("a_fork_bomb_is_stopped_by_the_students_process_count") else { return };
        let (_repo, sb) = sandbox_with(
            "import os, time\n\ndef test_bomb():\n    for _ in range(300):\n        if os.fork() == 0:\n            os.setsid()\n            os.execv('/bin/sleep', ['sleep', '30', 'FMTOOL_T_BOMB'])\n    time.sleep(30)\n",
            iso,
            &py,
        );
        let t = Instant::now();
        let out = run(&sb, "test_bomb", 60);
        assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
        let why = out.stopped.unwrap_or_default();
        assert!(why.contains("processes at once"), "{why}");
        assert_eq!(sb.stopped().as_deref(), Some(why.as_str()));
        assert_eq!(left("FMTOOL_T_BOMB", Duration::from_secs(3)), Vec::<u32>::new(), "processes of the bomb survived");
    }

    /// Memory is bounded for the student as a whole: three children of 300 MB each pass a 512 MiB
    /// limit together although each is far below it.
    #[test]
    fn memory_spread_over_children_is_limited_as_a_whole() {
        let Some((iso, py)) = sandbox_or_skip("memory_spread_over_children_is_limited_as_a_whole") else { return };
        let (_repo, mut sb) = sandbox_with(
            "import os, time\n\ndef test_spread():\n    for _ in range(3):\n        if os.fork() == 0:\n            b = bytearray(300_000_000)\n            time.sleep(30)\n            os._exit(0)\n    time.sleep(30)\n",
            iso,
            &py,
        );
        sb.limits.memory = 512 << 20;
        let out = run(&sb, "test_spread", 60);
        let why = out.stopped.unwrap_or_default();
        assert!(why.contains("MiB of memory"), "{why}");
    }

    /// Forked children share their parent's pages: a parent of 200 MB with five children that only
    /// read is 200 MB, not 1.2 GB, and passes a 512 MiB limit.
    #[test]
    fn memory_shared_with_forked_children_counts_once() {
        let Some((iso, py)) = sandbox_or_skip("memory_shared_with_forked_children_counts_once") else { return };
        let (_repo, mut sb) = sandbox_with(
            "import os, time\n\ndef test_share():\n    b = bytearray(200_000_000)\n    for _ in range(5):\n        if os.fork() == 0:\n            time.sleep(3)\n            os._exit(0)\n    time.sleep(3)\n",
            iso,
            &py,
        );
        sb.limits.memory = 512 << 20;
        let out = run(&sb, "test_share", 60);
        assert_eq!(out.stopped, None);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
    }

    /// What the student's code sees of the machine: its own uid, its own /proc (pid 1 is the
    /// sandbox's init, whose command line and environment are not fmtool's), an empty /tmp, no
    /// host folder, no network, no terminal to inject keys into, read-only system folders that
    /// cannot be remounted, and no new user namespace to gain privileges in.
    #[test]
    fn the_sandbox_shows_nothing_of_the_host() {
        let Some((iso, py)) = sandbox_or_skip("the_sandbox_shows_nothing_of_the_host") else { return };
        let host_dir = tempfile::tempdir().unwrap();
        let secret = host_dir.path().join("secret.txt");
        std::fs::write(&secret, "SECRET").unwrap();
        let sock_path = host_dir.path().join("grader.sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        tcp.set_nonblocking(true).unwrap();
        let port = tcp.local_addr().unwrap().port();
        let script = format!(
            r#"import ctypes, fcntl, json, os, socket, sys, termios

def attempt(f):
    try:
        return repr(f())
    except BaseException as e:
        return "refused: " + type(e).__name__

def sti():
    fd = os.open("/dev/tty", os.O_RDWR)
    fcntl.ioctl(fd, termios.TIOCSTI, b"x")

def unix():
    s = socket.socket(socket.AF_UNIX)
    s.connect({sock:?})

def tcp():
    socket.create_connection(("127.0.0.1", {port}), timeout=2)

def write_prefix():
    open(os.path.join(sys.prefix, "planted.txt"), "w").write("x")

libc = ctypes.CDLL(None, use_errno=True)

def test_look():
    print("@@look" + json.dumps({{
        "uid": os.getuid(),
        "init_cmdline": open("/proc/1/cmdline", "rb").read().decode(errors="replace"),
        "init_environ": open("/proc/1/environ", "rb").read().decode(errors="replace"),
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "tmp": os.listdir("/tmp"),
        "secret": attempt(lambda: open({secret:?}).read()),
        "sti": attempt(sti),
        "unix": attempt(unix),
        "tcp": attempt(tcp),
        "write_prefix": attempt(write_prefix),
        "remount": libc.mount(None, b"/usr", None, 0x20 | 0x1000 | 0x4000, None),
        "userns": libc.unshare(0x10000000),
    }}))
"#,
            sock = sock_path.display().to_string(),
            secret = secret.display().to_string(),
        );
        let (_repo, sb) = sandbox_with(&script, iso, &py);
        let out = run(&sb, "test_look", 30);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        // The harness keeps what a test prints with its result, as pytest captures it.
        let said: Value = out
            .stdout
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("@@fmtool@@"))
            .map(|l| serde_json::from_str(l).unwrap())
            .expect(&out.stdout);
        let printed = said["results"][0]["stdout"].as_str().unwrap().to_string();
        let line = printed.lines().find_map(|l| l.strip_prefix("@@look")).expect(&printed);
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["uid"], 1001, "an unprivileged uid even when fmtool is root");
        let cmdline = v["init_cmdline"].as_str().unwrap();
        assert!(!cmdline.contains(&sb.path().display().to_string()), "host folders in /proc/1: {cmdline}");
        let environ = v["init_environ"].as_str().unwrap();
        for var in environ.split('\0').filter(|e| !e.is_empty()) {
            let name = var.split('=').next().unwrap();
            assert!(sb.environment().iter().any(|(k, _)| k == name), "fmtool's environment in /proc/1: {var}");
        }
        assert!(
            v["pids"].as_array().unwrap().iter().all(|p| p.as_u64().unwrap() < 100),
            "host processes: {}",
            v["pids"]
        );
        // Empty but for the folders leading to an interpreter that lives under the host's /tmp
        // (bound there read-only, as it is named in /proc/1/cmdline anyway).
        let leading: Vec<String> = py
            .folders
            .iter()
            .filter_map(|f| f.strip_prefix("/tmp").ok()?.components().next())
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        for entry in v["tmp"].as_array().unwrap() {
            assert!(leading.iter().any(|l| entry == l), "the host's /tmp: {}", v["tmp"]);
        }
        for k in ["secret", "sti", "unix", "tcp", "write_prefix"] {
            assert!(v[k].as_str().unwrap().starts_with("refused"), "{k}: {}", v[k]);
        }
        assert_eq!(v["remount"], -1, "a read-only bind was remounted");
        assert_eq!(v["userns"], -1, "a nested user namespace was made");
        assert!(listener.accept().is_err() && tcp.accept().is_err(), "a host socket was reached");
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "SECRET");
    }

    /// A link the student's code plants where fmtool writes is replaced, never written through.
    #[test]
    fn fmtool_never_writes_through_a_planted_link() {
        let Some((iso, py)) = sandbox_or_skip("fmtool_never_writes_through_a_planted_link") else { return };
        let host = tempfile::tempdir().unwrap();
        let victim = host.path().join("victim.txt");
        std::fs::write(&victim, "precious").unwrap();
        let (_repo, sb) = sandbox_with(
            &format!(
                "import os\n\ndef test_plant():\n    os.symlink({:?}, 'test_acc.txt')\n",
                victim.display().to_string()
            ),
            iso,
            &py,
        );
        assert_eq!(run(&sb, "test_plant", 30).code, Some(0));
        sb.write_in_copy("test_acc.txt", b"0.95").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(sb.read_in_copy("test_acc.txt").as_deref(), Some("0.95"));
        let planted = sb.planted_links();
        assert_eq!(planted.len(), 1, "{planted:?}");
        assert_eq!(planted[0].target, victim.display().to_string());
    }

    #[test]
    fn the_copy_leaves_out_git_and_links_and_the_original_is_untouched() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir(src.path().join(".git")).unwrap();
        std::fs::write(src.path().join(".git/config"), "x").unwrap();
        std::fs::create_dir(src.path().join("model")).unwrap();
        std::fs::write(src.path().join("model/a.json"), "[]").unwrap();
        std::os::unix::fs::symlink("/dev/zero", src.path().join("zero.npz")).unwrap();
        let sb = Sandbox::copy_of(src.path(), Isolation::Off("test".into()), Path::new("python3"), &[]).unwrap();
        assert!(sb.repo.join("model/a.json").is_file());
        assert!(!sb.repo.join(".git").exists());
        assert!(!sb.repo.join("zero.npz").exists());
        let path = sb.path().to_path_buf();
        drop(sb);
        assert!(!path.exists(), "the sandbox is removed when dropped");
        assert!(src.path().join("model/a.json").is_file());
    }
}
