//! Adversarial students (issue 25): the repositories of tests/fixtures/hostile (`cargo xtask
//! hostile-fixtures`), each the honest `correct` case with attack code appended to nn_predict.py,
//! graded by `fmtool grade` beside an honest classmate. The students' code runs in bubblewrap
//! (private PID, network, IPC and user namespaces; only its copy writable, and a private /tmp; no
//! host HOME, TMPDIR or class folder), and each test asserts that the harm did not happen: HOME,
//! the class folder, the cache and the report folders as they were, byte for byte; no secret in
//! fmtool's outputs; no process of an attack left; the honest classmate's row what `fmtool score`
//! gives it alone; a forger's row what the real workflow awards it.
//!
//! A grade run holds several attacks that do not get in each other's way (the suite stays fast),
//! and its test lists every check that failed, each named by its attack, not only the first. Every
//! run happens in a `World` of the test's own: HOME, TMPDIR and fmtool's working folder (the class,
//! the cache and the reports, named relative to it) side by side in one temporary folder, which
//! holds the `FMTOOL_HOSTILE_TARGETS_OK` file that the attack code requires before it writes
//! outside its copy. Its `Reaper` kills, by pid, every process whose command line holds the world's
//! token or folder when the test ends, passed or failed.

use crate::common::*;
use crate::student::{copy_tree, require_workflow_python, run_workflow_for_real, student_repo};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

/// The file below which the attack code may write outside its copy (xtask/py/make_hostile_repos.py).
const CONSENT: &str = "FMTOOL_HOSTILE_TARGETS_OK";

fn random_hex() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 12];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).expect("/dev/urandom reads");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One grade run's surroundings: `home/` (HOME), `tmp/` (TMPDIR) and `work/` (fmtool's working
/// folder: `class/`, `cache/`, `out/`), side by side.
struct World {
    base: tempfile::TempDir,
    /// In the command line of every process an attack starts: `FMTOOL_HOSTILE_<attack>_<token>`.
    token: String,
    /// Planted in the honest classmate's `secret.txt` and nn_predict.py.
    secret: String,
}

impl World {
    fn new() -> World {
        let base = tempdir();
        for d in ["home", "tmp", "work/class", "work/out"] {
            std::fs::create_dir_all(base.path().join(d)).unwrap();
        }
        std::fs::write(base.path().join(CONSENT), "the hostile fixtures may write below this folder\n").unwrap();
        World { base, token: random_hex(), secret: format!("SECRET-{}", random_hex()) }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.base.path().join(rel)
    }

    fn home(&self) -> PathBuf {
        self.path("home")
    }

    fn tmp(&self) -> PathBuf {
        self.path("tmp")
    }

    fn class(&self) -> PathBuf {
        self.path("work/class")
    }

    /// `FMTOOL_HOSTILE_<attack>_<token>`.
    fn marker(&self, attack: &str) -> String {
        format!("FMTOOL_HOSTILE_{attack}_{}", self.token)
    }

    /// Kills what this world's attacks left running when dropped (declare it after the world).
    fn reaper(&self) -> Reaper {
        Reaper { patterns: vec![self.token.clone(), self.base.path().display().to_string()], token: self.token.clone() }
    }

    /// `class/good`: the honest `correct` case, with the world's secret in `secret.txt` and in a
    /// comment of its nn_predict.py.
    fn add_good(&self) {
        let good = self.class().join("good");
        copy_tree(student_repo("correct").path(), &good, &[]);
        std::fs::write(good.join("secret.txt"), format!("{}\n", self.secret)).unwrap();
        let nn = good.join("nn_predict.py");
        let code = std::fs::read_to_string(&nn).unwrap();
        std::fs::write(&nn, format!("# my notes: {}\n{code}", self.secret)).unwrap();
    }

    /// `class/<attack>`: the `correct` case with tests/fixtures/hostile/<attack>/ on top, and the
    /// world's token in `.hostile-token`.
    fn add_attack(&self, attack: &str) {
        let overlay = fixture("hostile").join(attack);
        assert!(overlay.is_dir(), "no {}: run `cargo xtask hostile-fixtures`", overlay.display());
        let repo = self.class().join(attack);
        copy_tree(student_repo("correct").path(), &repo, &[]);
        copy_tree(&overlay, &repo, &[]);
        std::fs::write(repo.join(".hostile-token"), &self.token).unwrap();
    }

    /// `fmtool grade class --python PY --jobs 2 --cache cache --csv out/c.csv --json out/c.json
    /// --report out/page --format json EXTRA...` in `work/`, with the world's HOME and TMPDIR and
    /// `env`; killed at `deadline`.
    fn grade(&self, extra: &[&str], env: &[(&str, &str)], deadline: Duration) -> Graded {
        let python = require_workflow_python();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fmtool"));
        cmd.args(["grade", "class", "--python", &python, "--jobs", "2", "--cache", "cache"])
            .args(["--csv", "out/c.csv", "--json", "out/c.json", "--report", "out/page", "--format", "json"])
            .args(extra)
            .current_dir(self.path("work"))
            .env("HOME", self.home())
            .env("TMPDIR", self.tmp())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        run_until(cmd, deadline)
    }

    /// The `--json` report of the last run, when there is one.
    fn report(&self) -> Option<Value> {
        serde_json::from_slice(&std::fs::read(self.path("work/out/c.json")).ok()?).ok()
    }

    /// The text of `rel` (in `work/`), or "" when there is none.
    fn text(&self, rel: &str) -> String {
        std::fs::read(self.path("work").join(rel)).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }
}

/// Kills, by pid, every process whose command line holds one of `patterns` (a world's token and
/// folder: the attacks' processes, fmtool's harness and sandbox processes in its TMPDIR), and
/// removes what an attack left in the host's /tmp (`/tmp/FMTOOL_HOSTILE_*_<token>`).
struct Reaper {
    patterns: Vec<String>,
    token: String,
}

impl Drop for Reaper {
    fn drop(&mut self) {
        for _ in 0..5 {
            let pids: Vec<u32> = self.patterns.iter().flat_map(|p| pids_matching(p)).collect();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).stderr(Stdio::null()).status();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        for e in std::fs::read_dir("/tmp").into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("FMTOOL_HOSTILE_") && name.ends_with(&format!("_{}", self.token)) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// `pgrep -f pattern`: the pids of the processes whose command line holds `pattern` (not this one).
fn pids_matching(pattern: &str) -> Vec<u32> {
    let Ok(out) = Command::new("pgrep").args(["-f", pattern]).output() else { return Vec::new() };
    let me = std::process::id();
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().parse().ok()).filter(|p| *p != me).collect()
}

/// One hostile grade run at a time: each loads the machine (hundreds of processes, gigabytes of
/// memory and disk), and a run slowed down by another could miss its time limits.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The processes whose command line holds `pattern`, as `pid command line`, once they had 5 s to
/// be reaped (a killed process takes a moment to go).
fn left_running(pattern: &str) -> Vec<String> {
    let start = Instant::now();
    loop {
        let out = Command::new("pgrep").args(["-a", "-f", pattern]).output().expect("pgrep runs");
        let me = std::process::id().to_string();
        let left: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.split_whitespace().next() != Some(me.as_str()))
            .map(|l| clip(l, 160))
            .collect();
        if left.is_empty() || start.elapsed() > Duration::from_secs(5) {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One run of fmtool.
struct Graded {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    seconds: f64,
    /// Still running at the test's deadline (then killed).
    deadline_hit: bool,
}

impl Graded {
    fn status(&self) -> String {
        match (self.deadline_hit, self.code) {
            (true, _) => format!("still running after {:.0} s: killed by the test", self.seconds),
            (false, Some(c)) => format!("exit {c} after {:.0} s", self.seconds),
            (false, None) => format!("killed by a signal after {:.0} s", self.seconds),
        }
    }
}

/// Runs `cmd` (stdout and stderr piped) and kills it at `deadline`.
fn run_until(mut cmd: Command, deadline: Duration) -> Graded {
    let start = Instant::now();
    let mut child = cmd.spawn().expect("the fmtool binary runs");
    // Read on threads: a process that outlives fmtool may hold its pipes open.
    fn reader(mut pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            let _ = tx.send(bytes);
        });
        rx
    }
    let out = reader(child.stdout.take().expect("piped"));
    let err = reader(child.stderr.take().expect("piped"));
    let mut deadline_hit = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for fmtool") {
            break status;
        }
        if start.elapsed() > deadline {
            deadline_hit = true;
            let _ = child.kill();
            break child.wait().expect("wait for fmtool");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let seconds = start.elapsed().as_secs_f64();
    let text = |rx: mpsc::Receiver<Vec<u8>>| {
        rx.recv_timeout(Duration::from_secs(10)).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    };
    Graded { code: status.code(), stdout: text(out), stderr: text(err), seconds, deadline_hit }
}

/// The row of the repository `class/<name>`.
fn row<'a>(report: &'a Value, name: &str) -> Option<&'a Value> {
    report["repos"].as_array()?.iter().find(|r| r["repo"].as_str().is_some_and(|p| Path::new(p).ends_with(name)))
}

/// `fmtool score --format json` in the honest `correct` case alone (once per test binary).
fn solo_correct() -> &'static Value {
    static SOLO: OnceLock<Value> = OnceLock::new();
    SOLO.get_or_init(|| {
        let repo = student_repo("correct");
        let run = fmtool_in(repo.path(), &["score", "--format", "json", "--python", &require_workflow_python()]);
        serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("fmtool score in `correct` gave no JSON ({e}): {}", run.stderr))
    })
}

/// (step, points) of a grade row.
fn row_steps(row: &Value) -> Vec<(Value, Value)> {
    row["steps"]
        .as_array()
        .map(|s| s.iter().map(|s| (s["name"].clone(), s["points"].clone())).collect())
        .unwrap_or_default()
}

/// Whether `row` is what `fmtool score` gives the honest `correct` case alone (points, and each
/// step's), and was not stopped; why not, when it is not.
fn is_honest(row: &Value) -> Result<(), String> {
    let solo = solo_correct();
    let solo_steps: Vec<(Value, Value)> = solo["grade"]["workflow"]["steps"]
        .as_array()
        .map(|s| s.iter().map(|s| (s["name"].clone(), s["points"].clone())).collect())
        .unwrap_or_default();
    let steps = row_steps(row);
    if row["points"] != solo["points"] || steps != solo_steps || !row["stopped"].is_null() {
        let differ: Vec<String> = steps
            .iter()
            .zip(&solo_steps)
            .filter(|(a, b)| a != b)
            .map(|((name, points), (_, alone))| format!("{} {points} (alone {alone})", name.as_str().unwrap_or("?")))
            .collect();
        return Err(format!(
            "{} points, where `fmtool score` gives the honest case {} alone (steps: {}; stopped: {}; cause: {})",
            row["points"],
            solo["points"],
            if steps.len() == solo_steps.len() { list(&differ) } else { format!("{} steps", steps.len()) },
            row["stopped"],
            clip(&row["cause"].to_string(), 300),
        ));
    }
    Ok(())
}

fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// `needle` in `hay` with some text around it (on one line), or None.
fn found_in(hay: &str, needle: &str) -> Option<String> {
    let at = hay.find(needle)?;
    let mut from = at.saturating_sub(120);
    while !hay.is_char_boundary(from) {
        from -= 1;
    }
    Some(clip(&hay[from..], 120 + needle.len() + 80).escape_debug().to_string())
}

/// A file or folder of a tree, compared by content (links are not followed).
#[derive(Debug, PartialEq)]
enum Entry {
    Dir,
    File(Vec<u8>),
    Link(PathBuf),
    Other,
}

/// Every entry below `root` (relative path to entry); a file by its SHA-256.
fn snapshot(root: &Path) -> BTreeMap<String, Entry> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Entry>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let path = e.path();
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
            if out.len() > 200_000 {
                return;
            }
            if meta.file_type().is_symlink() {
                out.insert(rel, Entry::Link(std::fs::read_link(&path).unwrap_or_default()));
            } else if meta.is_dir() {
                out.insert(rel, Entry::Dir);
                walk(root, &path, out);
            } else if meta.is_file() {
                let digest = std::fs::read(&path).map(|b| Sha256::digest(&b).to_vec()).unwrap_or_default();
                out.insert(rel, Entry::File(digest));
            } else {
                out.insert(rel, Entry::Other);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// What differs between two snapshots: `changed x`, `new y`, `gone z`.
fn changes(before: &BTreeMap<String, Entry>, after: &BTreeMap<String, Entry>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in before {
        match after.get(k) {
            None => out.push(format!("gone {k}")),
            Some(w) if w != v => out.push(format!("changed {k}")),
            _ => {}
        }
    }
    out.extend(after.keys().filter(|k| !before.contains_key(*k)).map(|k| format!("new {k}")));
    out
}

fn list(items: &[String]) -> String {
    let mut s = items.iter().take(8).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > 8 {
        s.push_str(&format!(" (and {} more)", items.len() - 8));
    }
    s
}

/// Accepts connections on a unix socket until stopped (or for 10 minutes at most), counting them.
struct Listener {
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Listener {
    fn start(socket: UnixListener) -> Listener {
        socket.set_nonblocking(true).unwrap();
        let (accepted, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let (a, s) = (accepted.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(600);
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                match socket.accept() {
                    Ok(_) => {
                        a.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Listener { accepted, stop, thread }
    }

    /// Stops listening; how many connections were accepted.
    fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.accepted.load(Ordering::Relaxed)
    }
}

/// Every check that failed, each named by the attack (or the part) it is about.
#[derive(Default)]
struct Breaches(Vec<String>);

impl Breaches {
    fn check(&mut self, who: &str, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(format!("{who}: {}", what()));
        }
    }

    /// The run's exit status (one of `codes`), its `--json` report (returned) and its schema, each
    /// row's sandbox (`"isolation": "bubblewrap"`), and the honest classmate's row, when the class
    /// has one.
    fn common(&mut self, world: &World, run: &Graded, codes: &[i32], names: &[&str]) -> Option<Value> {
        self.check("fmtool", !run.deadline_hit && run.code.is_some_and(|c| codes.contains(&c)), || {
            format!("{} (expected exit {codes:?}): {}", run.status(), clip(run.stderr.trim(), 600))
        });
        let Some(report) = world.report() else {
            self.check("fmtool", false, || "no --json report (out/c.json) to read".into());
            return None;
        };
        let errors = crate::score::schema_errors("grade-report.schema.json", &report);
        self.check("fmtool", errors.is_empty(), || format!("the report breaks its schema: {}", list(&errors)));
        let mut unsandboxed = Vec::new();
        for name in names {
            match row(&report, name) {
                None => self.check(name, false, || "no row in the report".into()),
                Some(r) if r["isolation"] != "bubblewrap" => unsandboxed.push(format!("{name} ({})", r["isolation"])),
                Some(_) => {}
            }
        }
        self.check("sandbox", unsandboxed.is_empty(), || {
            format!("rows without \"isolation\": \"bubblewrap\": {}", list(&unsandboxed))
        });
        if world.class().join("good").is_dir() {
            if let Some(good) = row(&report, "good") {
                if let Err(why) = is_honest(good) {
                    self.check("good (the honest classmate)", false, || why);
                }
            } else {
                self.check("good", false, || "no row in the report".into());
            }
        }
        Some(report)
    }

    /// Nothing left in the world's TMPDIR but `keep`, and no process of `attacks` (their markers) or
    /// of fmtool's in TMPDIR (its folder in their command line) still running.
    fn nothing_left(&mut self, world: &World, attacks: &[&str], keep: &[String]) {
        let left: Vec<String> = std::fs::read_dir(world.tmp())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !keep.contains(n))
            .collect();
        self.check("TMPDIR", left.is_empty(), || format!("left in the TMPDIR fmtool was given: {}", list(&left)));
        for attack in attacks {
            let running = left_running(&world.marker(attack));
            self.check(attack, running.is_empty(), || format!("still running after fmtool exited: {}", list(&running)));
        }
        let running = left_running(&world.tmp().display().to_string());
        self.check("fmtool", running.is_empty(), || {
            format!("processes in the TMPDIR fmtool was given still running: {}", list(&running))
        });
    }

    fn assert_none(self, what: &str, run: &Graded) {
        assert!(
            self.0.is_empty(),
            "{what}: {} check(s) failed (fmtool: {}):\n  - {}\nfmtool's stderr ends: {}",
            self.0.len(),
            run.status(),
            self.0.join("\n  - "),
            clip(run.stderr.get(run.stderr.len().saturating_sub(800)..).unwrap_or(&run.stderr), 800)
        );
    }
}

/// Writes outside the copy: into the grader's HOME, the class folder, the cache and the report
/// folders (escape_writes), into the folder of fmtool's harness (shadow_module), through links
/// planted where fmtool writes (planted_symlink), into fmtool's pipes (parent_fds), to the test's
/// sockets (unix_socket). Nothing changes but the files fmtool writes, the honest classmate's row is
/// its row alone, and a re-run from the cache gives the same rows.
#[test]
fn writes_outside_the_copy_change_nothing() {
    if !sandbox_or_skip("hostile students writing outside their copy") {
        return;
    }
    let _alone = one_at_a_time();
    let world = World::new();
    let _reaper = world.reaper();
    let attacks = ["escape_writes", "parent_fds", "planted_symlink", "shadow_module", "unix_socket"];
    world.add_good();
    for a in attacks {
        world.add_attack(a);
    }
    std::fs::write(world.home().join(".bashrc"), "# the grader's shell\nexport EDITOR=vi\n").unwrap();
    std::fs::write(world.home().join("victim.txt"), "the grader's notes\n").unwrap();
    std::fs::write(world.home().join("victim.npz"), b"the grader's data, not an npz\n").unwrap();
    let socket = format!("fmtool-test-{}.sock", world.token);
    let on_path = Listener::start(UnixListener::bind(world.tmp().join(&socket)).unwrap());
    let name = format!("fmtool-test-{}", world.token);
    let on_abstract = {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        Listener::start(UnixListener::bind_addr(&addr).unwrap())
    };
    let home = snapshot(&world.home());
    let class = snapshot(&world.class());

    let run = world.grade(&[], &[], Duration::from_secs(300));
    let (path_accepted, abstract_accepted) = (on_path.stop(), on_abstract.stop());
    let mut b = Breaches::default();
    let mut names = attacks.to_vec();
    names.push("good");
    let report = b.common(&world, &run, &[0], &names);

    let home_changes = changes(&home, &snapshot(&world.home()));
    let (victims, others): (Vec<String>, Vec<String>) = home_changes.into_iter().partition(|c| c.contains("victim"));
    b.check("escape_writes", others.is_empty(), || format!("the grader's HOME changed: {}", list(&others)));
    b.check("planted_symlink", victims.is_empty(), || format!("fmtool wrote through its links: {}", list(&victims)));
    let class_changes = changes(&class, &snapshot(&world.class()));
    b.check("escape_writes", class_changes.is_empty(), || {
        format!("the class folder changed: {}", list(&class_changes))
    });
    let out: Vec<String> = snapshot(&world.path("work/out")).into_keys().collect();
    b.check("escape_writes", out == ["c.csv", "c.json", "page", "page/index.html"], || {
        format!("the report folders hold more than fmtool's files: {}", list(&out))
    });
    b.check("unix_socket", path_accepted == 0, || {
        format!("the test's socket in TMPDIR accepted {path_accepted} connection(s)")
    });
    b.check("unix_socket", abstract_accepted == 0, || {
        format!("the test's abstract socket accepted {abstract_accepted} connection(s)")
    });
    let marker = "FMTOOL_HOSTILE_parent_fds";
    b.check("parent_fds", serde_json::from_str::<Value>(&run.stdout).is_ok(), || {
        format!("fmtool's stdout is not its JSON report: {}", found_in(&run.stdout, marker).unwrap_or_default())
    });
    for (what, text) in [("stdout", &run.stdout), ("stderr", &run.stderr), ("--json report", &world.text("out/c.json"))]
    {
        b.check("parent_fds", !text.contains(marker), || {
            format!("its line is in fmtool's {what}: {}", found_in(text, marker).unwrap_or_default())
        });
    }
    if let Some(report) = &report {
        // Every cached row is the row fmtool reported for that repository, as it reported it.
        let rows = report["repos"].as_array().cloned().unwrap_or_default();
        let cache = world.path("work/cache");
        // The cache holds its MAC key (`.fmtool-key`, mode 0600) and one entry per row: the row's
        // JSON text and its MAC.
        let key_mode = std::fs::metadata(cache.join(".fmtool-key")).map(|m| m.permissions().mode() & 0o777);
        b.check("escape_writes", key_mode.as_ref().is_ok_and(|m| *m == 0o600), || {
            format!("the cache's key is not the grader's alone: {key_mode:?}")
        });
        let files: Vec<PathBuf> = std::fs::read_dir(&cache)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n != ".fmtool-key"))
            .collect();
        b.check("escape_writes", files.len() == rows.len(), || {
            format!("{} files in the cache for {} rows", files.len(), rows.len())
        });
        for f in &files {
            let entry: Option<Value> = std::fs::read(f).ok().and_then(|b| serde_json::from_slice(&b).ok());
            let cached: Option<Value> = entry
                .as_ref()
                .filter(|e| e["mac"].as_str().is_some_and(|m| m.len() == 64))
                .and_then(|e| serde_json::from_str(e["row"].as_str()?).ok());
            let ours = cached.as_ref().and_then(|c| rows.iter().find(|r| r["repo"] == c["repo"]));
            b.check("escape_writes", cached.as_ref().zip(ours).is_some_and(|(c, r)| same_but_hoisted(c, r)), || {
                let c = cached.as_ref();
                format!(
                    "the cached row {} is not the row fmtool reported (repo {}, points {} cached, {} reported)",
                    f.file_name().unwrap().to_string_lossy(),
                    c.map(|c| c["repo"].to_string()).unwrap_or_else(|| "?".into()),
                    c.map(|c| c["points"].to_string()).unwrap_or_else(|| "?".into()),
                    ours.map(|r| r["points"].to_string()).unwrap_or_else(|| "none".into())
                )
            });
        }
        if let Some(r) = row(report, "shadow_module")
            && let Err(why) = is_honest(r)
        {
            b.check("shadow_module", false, || format!("its row is not the honest 79: {why}"));
        }
        if let Some(r) = row(report, "planted_symlink") {
            let codes: Vec<String> = r["advice"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x["code"].as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            b.check("planted_symlink", codes.iter().any(|c| c == "planted-link"), || {
                format!("no `planted-link` advice in its row (advice: {})", list(&codes))
            });
        }
        // A re-run takes every row from the cache: the same points. (Only when the class is as it
        // was: a changed repository is graded again, and its attack with it.)
        if class_changes.is_empty() {
            world.grade(&[], &[], Duration::from_secs(120));
            let again = world.report().unwrap_or(Value::Null);
            for r in &rows {
                let other = again["repos"].as_array().and_then(|a| a.iter().find(|x| x["repo"] == r["repo"]));
                b.check(
                    "escape_writes",
                    other.is_some_and(|o| o["points"] == r["points"] && o["cached"] == true),
                    || {
                        format!(
                            "re-run from the cache: {} has {} points, not {} (cached: {})",
                            r["repo"],
                            other.map(|o| o["points"].to_string()).unwrap_or_else(|| "no row".into()),
                            r["points"],
                            other.map(|o| o["cached"].to_string()).unwrap_or_default()
                        )
                    },
                );
            }
        }
    }
    b.nothing_left(&world, &attacks, &[socket]);
    b.assert_none("students writing outside their copy", &run);
}

/// Reads of a classmate's files (reads_classmates), of fmtool's environment, command line and
/// working folder (reads_fmtool_env) and of fmtool's memory (reads_parent_memory), each raised
/// from nn_inference so that it would land in the grade's messages, and a forged harness result
/// (forges_result). No secret and no host path reaches fmtool's outputs; the readers found nothing
/// (their rows are the honest 79); the forger gets what the real workflow awards it.
#[test]
fn reads_and_forgeries_are_contained() {
    if !sandbox_or_skip("hostile students reading and forging") {
        return;
    }
    let _alone = one_at_a_time();
    let world = World::new();
    let _reaper = world.reaper();
    let attacks = ["forges_result", "reads_classmates", "reads_fmtool_env", "reads_parent_memory"];
    world.add_good();
    for a in attacks {
        world.add_attack(a);
    }
    let env_secret = format!("envsecret{}", random_hex());
    let run = world.grade(&[], &[("FMTOOL_TEST_SECRET", &env_secret)], Duration::from_secs(300));
    let mut b = Breaches::default();
    let mut names = attacks.to_vec();
    names.push("good");
    let report = b.common(&world, &run, &[0], &names);

    let needles = [
        ("the classmate's secret.txt", world.secret.clone()),
        ("fmtool's FMTOOL_TEST_SECRET", env_secret.clone()),
        ("the class folder's absolute path", world.path("work").display().to_string()),
        ("the grader's HOME", world.home().display().to_string()),
    ];
    let mut leaked_in_rows = Vec::new();
    if let Some(report) = &report {
        for name in &names {
            let Some(r) = row(report, name) else { continue };
            let text = r.to_string();
            for (what, needle) in &needles {
                if let Some(context) = found_in(&text, needle) {
                    leaked_in_rows.push(needle.clone());
                    b.check(name, false, || format!("its row holds {what}: {context}"));
                }
            }
        }
        for name in ["reads_classmates", "reads_fmtool_env", "reads_parent_memory"] {
            if let Some(r) = row(report, name)
                && let Err(why) = is_honest(r)
            {
                b.check(name, false, || format!("found something to raise: {why}"));
            }
        }
        if let Some(r) = row(report, "forges_result") {
            let real = run_workflow_for_real(&world.class().join("forges_result"));
            b.check("forges_result", r["points"] == real["total"], || {
                let real_steps: Vec<(Value, Value)> = real["steps"]
                    .as_array()
                    .map(|s| s.iter().map(|s| (s["test_name"].clone(), s["points"].clone())).collect())
                    .unwrap_or_default();
                let differ: Vec<String> = row_steps(r)
                    .iter()
                    .zip(&real_steps)
                    .filter(|(a, b)| a != b)
                    .map(|((name, points), (_, real))| {
                        format!("{} {points} (real {real})", name.as_str().unwrap_or("?"))
                    })
                    .collect();
                format!(
                    "{} points, where the real workflow (sh + pytest) awards {} (steps: {})",
                    r["points"],
                    real["total"],
                    list(&differ)
                )
            });
        }
    }
    let outputs = [
        ("stdout", run.stdout.clone()),
        ("stderr", run.stderr.clone()),
        ("--json report", world.text("out/c.json")),
        ("--csv", world.text("out/c.csv")),
        ("--report page", world.text("out/page/index.html")),
    ];
    for (what, needle) in &needles {
        if leaked_in_rows.contains(needle) {
            continue;
        }
        for (file, text) in &outputs {
            if let Some(context) = found_in(text, needle) {
                b.check("outputs", false, || format!("fmtool's {file} holds {what}: {context}"));
            }
        }
    }
    b.nothing_left(&world, &attacks, &[]);
    b.assert_none("students reading and forging", &run);
}

/// Resources: 400 processes in sessions of their own (fork_bomb), 3 x 1.5 GB at once
/// (memory_spread), 1.2 GB of files (disk_fill), 60,000 files (inode_fill). Each row is stopped by
/// its limit and says which (`fmtool grade` exits 1), nothing is left running or on disk, and the
/// honest classmate is graded as alone.
#[test]
fn resource_attacks_are_stopped() {
    if !sandbox_or_skip("hostile students exhausting resources") {
        return;
    }
    let _alone = one_at_a_time();
    let world = World::new();
    let _reaper = world.reaper();
    let attacks = ["disk_fill", "fork_bomb", "inode_fill", "memory_spread"];
    world.add_good();
    for a in attacks {
        world.add_attack(a);
    }
    let class = snapshot(&world.class());
    let run = world.grade(&[], &[], Duration::from_secs(300));
    let mut b = Breaches::default();
    let mut names = attacks.to_vec();
    names.push("good");
    let report = b.common(&world, &run, &[1], &names);
    if let Some(report) = &report {
        let limits: [(&str, &[&str]); 4] = [
            ("fork_bomb", &["process"]),
            ("memory_spread", &["memory"]),
            ("disk_fill", &["disk", "space"]),
            ("inode_fill", &["disk", "file", "inode"]),
        ];
        for (attack, words) in limits {
            let Some(r) = row(report, attack) else { continue };
            let stopped = r["stopped"].as_str().unwrap_or("").to_lowercase();
            b.check(attack, words.iter().any(|w| stopped.contains(w)), || {
                format!("not stopped for {} (stopped: {}; points {})", words.join(" or "), r["stopped"], r["points"])
            });
        }
    }
    let class_changes = changes(&class, &snapshot(&world.class()));
    b.check("class", class_changes.is_empty(), || format!("the class folder changed: {}", list(&class_changes)));
    let in_tmp = Path::new("/tmp").join(world.marker("disk_fill"));
    b.check("disk_fill", !in_tmp.exists(), || format!("{} is in the host's /tmp", in_tmp.display()));
    b.nothing_left(&world, &attacks, &[]);
    b.assert_none("students exhausting resources", &run);
}

/// A student that SIGKILLs its parent and every process it sees, at import and in nn_inference:
/// fmtool still writes its reports (exit 0 or 1), the honest classmate is graded as alone, and no
/// copy or process is left behind.
#[test]
fn a_student_killing_its_parent_leaves_a_report() {
    if !sandbox_or_skip("a hostile student killing its parent") {
        return;
    }
    let _alone = one_at_a_time();
    let world = World::new();
    let _reaper = world.reaper();
    world.add_good();
    world.add_attack("kills_parent");
    let run = world.grade(&[], &[], Duration::from_secs(180));
    let mut b = Breaches::default();
    b.check("kills_parent", !run.deadline_hit && matches!(run.code, Some(0 | 1)), || {
        format!("fmtool did not finish with a report: {}", run.status())
    });
    for f in ["out/c.csv", "out/c.json", "out/page/index.html"] {
        b.check("kills_parent", world.path("work").join(f).is_file(), || format!("no {f}"));
    }
    b.common(&world, &run, &[0, 1], &["kills_parent", "good"]);
    b.nothing_left(&world, &["kills_parent"], &[]);
    b.assert_none("a student killing its parent", &run);
}

/// A student that sleeps 120 s at import (sleeping_import) and one that leaves a child in a
/// session of its own sleeping 120 s with fmtool's pipes open (setsid_daemon), graded with
/// `--timeout 2`: the class is done well within a minute, the sleeper's row is stopped for its
/// time, and the daemon does not outlive fmtool.
#[test]
fn sleeping_and_daemonising_students_do_not_hold_the_class_up() {
    if !sandbox_or_skip("hostile students sleeping and daemonising") {
        return;
    }
    let _alone = one_at_a_time();
    let world = World::new();
    let _reaper = world.reaper();
    let attacks = ["setsid_daemon", "sleeping_import"];
    for a in attacks {
        world.add_attack(a);
    }
    let run = world.grade(&["--timeout", "2"], &[], Duration::from_secs(90));
    let mut b = Breaches::default();
    b.check("sleeping_import, setsid_daemon", !run.deadline_hit && run.seconds < 60.0, || {
        format!("the class of two took {:.0} s with --timeout 2 ({})", run.seconds, run.status())
    });
    if let Some(report) = b.common(&world, &run, &[1], &attacks)
        && let Some(r) = row(&report, "sleeping_import")
    {
        let stopped = r["stopped"].as_str().unwrap_or("").to_lowercase();
        b.check("sleeping_import", stopped.contains("time"), || format!("not stopped for time: {}", r["stopped"]));
        b.check("sleeping_import", r["seconds"].as_f64().is_some_and(|s| s < 60.0), || {
            format!("its row took {} s", r["seconds"])
        });
    }
    b.nothing_left(&world, &attacks, &[]);
    b.assert_none("students sleeping and daemonising", &run);
}

/// Without bubblewrap (`FMTOOL_BWRAP` naming no program), `fmtool grade` grades nothing and says
/// how to go on (exit 2, `--no-isolation`); with `--no-isolation` it grades, and every row says it
/// ran without a sandbox. Needs no sandbox itself.
#[test]
fn without_bubblewrap_grade_refuses_unless_told_no_isolation() {
    let _alone = one_at_a_time();
    let world = World::new();
    let _reaper = world.reaper();
    world.add_good();
    let refused = world.grade(&[], &[("FMTOOL_BWRAP", "/nonexistent")], Duration::from_secs(180));
    assert_eq!(refused.code, Some(2), "{}: {}", refused.status(), refused.stderr);
    assert!(refused.stderr.contains("--no-isolation"), "{}", refused.stderr);
    assert!(world.report().is_none(), "nothing was graded, so no --json report is written");
    let graded = world.grade(&["--no-isolation"], &[("FMTOOL_BWRAP", "/nonexistent")], Duration::from_secs(180));
    assert_eq!(graded.code, Some(0), "{}: {}", graded.status(), graded.stderr);
    let report = world.report().expect("the --json report");
    let good = row(&report, "good").expect("the row of good");
    assert_eq!(good["isolation"], "none", "{good:#}");
    // What the real workflow awards the honest case (stored ground truth: no sandbox needed here).
    let real = crate::student::ground_truth(student_repo("correct").path());
    assert_eq!(good["points"], real["total"], "{good:#}");
    assert_eq!(good["stopped"], Value::Null, "{good:#}");
}

/// The cached row is the row fmtool reported, but for the course-wide findings the class report
/// states once (taken out of the reported row's advice and first finding; see
/// `commands::grade::hoist`): every other field the same, the reported advice a part of the cached.
fn same_but_hoisted(cached: &Value, reported: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        for k in ["advice", "first_finding"] {
            v.as_object_mut().map(|o| o.remove(k));
        }
        v
    };
    let advice = |v: &Value| v["advice"].as_array().cloned().unwrap_or_default();
    let (ca, ra) = (advice(cached), advice(reported));
    strip(cached) == strip(reported) && ra.iter().all(|a| ca.contains(a))
}

/// The committed overlays are what xtask/py/make_hostile_repos.py writes.
#[test]
fn the_hostile_fixtures_are_what_their_script_writes() {
    let out = Command::new(require_workflow_python())
        .arg(root().join("xtask/py/make_hostile_repos.py"))
        .arg("--check")
        .output()
        .expect("python runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
