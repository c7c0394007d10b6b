//! The student's own code (`nn_predict.py`, `model_test.py`), run as the course's grader runs it:
//! through a Python with NumPy, in a sandboxed copy of the repository (`sandbox.rs`), by a small
//! harness (`harness.py`, embedded) that calls the repo's own test functions. `test_inference`, the
//! slow one, runs in one worker process per core when it is the course's own; each worker calls the
//! student's `nn_inference` exactly as the test does, so the predictions are the same.

mod beneath;
mod bwrap;
pub mod discover;
pub mod sandbox;
pub mod trial;
pub mod watchdog;

use crate::err;
use crate::error::Result;
pub use beneath::Planted;
pub use sandbox::Isolation;
use sandbox::{Limits, Outcome, Sandbox};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub(crate) const HARNESS: &str = include_str!("harness.py");
/// The course's `model_test.py` as distributed: its `test_inference` is the one fmtool may run in
/// parallel (compared by syntax tree, so comments and spacing do not matter).
pub const COURSE_MODEL_TEST: &str = include_str!("course/model_test.py");
const MARK: &str = "@@fmtool@@";
/// Address space for one process of student code: NumPy and a course model need a few hundred
/// megabytes; this stops a runaway allocation long before the machine swaps.
pub const DEFAULT_MEMORY: u64 = 4 << 30;

/// The Python that runs the student's code.
#[derive(Debug, Clone, Serialize)]
pub struct Python {
    pub path: PathBuf,
    pub version: String,
    pub numpy: String,
    /// `sys.executable`: what the sandbox runs (not a pyenv shim, which is a shell script).
    #[serde(skip)]
    pub executable: PathBuf,
    /// The interpreter's folders (prefixes, `sys.path`, NumPy's), read-only in the sandbox.
    #[serde(skip)]
    pub folders: Vec<PathBuf>,
    /// Whether it can import pytest (the workflow's commands need it; fmtool's harness does not).
    pub pytest: bool,
}

/// What the interpreter says of itself, in isolated mode (-I: no PYTHONPATH, no user site), as
/// the sandbox runs it.
const ASK_PYTHON: &str = "import importlib.util, json, os, sys, numpy\nprint(json.dumps({'version': sys.version.split()[0], 'numpy': numpy.__version__, 'pytest': importlib.util.find_spec('pytest') is not None, 'executable': sys.executable, 'folders': [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, os.path.dirname(os.path.dirname(numpy.__file__))] + sys.path}))";

/// Finds a Python with NumPy: `requested`, else `python3` on PATH. The error says why the student's
/// code cannot be run, for the "not run" rows.
pub fn find_python(requested: Option<&Path>) -> std::result::Result<Python, String> {
    let exe = requested.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("python3"));
    // A path (`.venv/bin/python`) is made absolute here: the student's code runs in another folder.
    let resolved =
        if exe.components().count() > 1 { Some(std::path::absolute(&exe).unwrap_or(exe.clone())) } else { which(&exe) };
    let Some(path) = resolved else {
        return Err(format!("no {} on PATH; install Python 3 with NumPy or pass --python", exe.display()));
    };
    let out = std::process::Command::new(&path)
        .args(["-I", "-c", ASK_PYTHON])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or("").trim().to_string();
        return Err(format!(
            "{} cannot import NumPy ({last}); install it with `{} -m pip install numpy` or pass --python",
            path.display(),
            path.display()
        ));
    }
    #[derive(Deserialize)]
    struct Said {
        version: String,
        numpy: String,
        pytest: bool,
        executable: PathBuf,
        folders: Vec<PathBuf>,
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let said: Said =
        text.lines().rev().find_map(|l| serde_json::from_str(l).ok()).ok_or_else(|| {
            format!("{} did not say what it is: {}", path.display(), crate::text::clip(text.trim(), 200))
        })?;
    let executable = if said.executable.as_os_str().is_empty() { path.clone() } else { said.executable };
    let mut folders = said.folders;
    folders.extend(executable.parent().map(Path::to_path_buf));
    folders.push(executable.clone());
    Ok(Python { path, version: said.version, numpy: said.numpy, executable, folders, pytest: said.pytest })
}

/// The first `name` on PATH.
pub(crate) fn which(name: &Path) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file())
}

/// One frame of a Python traceback in the student's files.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Frame {
    pub file: String,
    pub line: usize,
    pub function: String,
    pub source: String,
}

/// An exception raised by the student's code.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PyError {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    #[serde(default)]
    pub frames: Vec<Frame>,
    /// The layer `nn_inference` was running (a local `layer` dict or `lname`), when known.
    #[serde(default)]
    pub layer: Option<String>,
    /// The test image (index in t10k) being classified, for `test_inference`.
    #[serde(default)]
    pub image: Option<usize>,
}

impl PyError {
    /// `ZeroDivisionError: division by zero (nn_predict.py:12 in softmax)`.
    pub fn summary(&self) -> String {
        let mut s = format!("{}: {}", self.kind, first_line(&self.message, 300));
        if let Some(f) = self.frames.iter().rev().find(|f| f.file != "model_test.py").or(self.frames.last()) {
            s.push_str(&format!(" ({}:{} in {}", f.file, f.line, f.function));
            if let Some(l) = &self.layer {
                s.push_str(&format!(", layer {l}"));
            }
            s.push(')');
        }
        s
    }
}

fn first_line(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or("");
    crate::text::clip(line, max)
}

/// What the harness says about `model_test.py` without running it.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Inspect {
    pub exists: bool,
    pub tests: Vec<String>,
    /// `test_inference` is the course's own, so fmtool may run it in parallel.
    pub course_inference: bool,
    pub error: Option<String>,
    /// `OUTPUT_FILE` when it is a plain string (`test_acc.txt`).
    #[serde(default)]
    pub output_file: Option<String>,
}

/// The student's relu and softmax called directly, for the diagnosis.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct Probe {
    /// `import nn_predict` failed.
    pub import: Option<PyError>,
    #[serde(default)]
    pub relu: std::collections::BTreeMap<String, Call>,
    #[serde(default)]
    pub softmax: std::collections::BTreeMap<String, Call>,
}

/// One call of a student function.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct Call {
    pub value: Option<serde_json::Value>,
    pub shape: Option<Vec<usize>>,
    pub error: Option<PyError>,
}

/// One test function's result.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct NodeResult {
    pub node: String,
    pub passed: bool,
    /// model_test.py has no such test (pytest: "not found", exit 4).
    #[serde(default)]
    pub missing: bool,
    /// model_test.py itself could not be imported (pytest: collection error).
    #[serde(default)]
    pub collect: bool,
    pub error: Option<PyError>,
    #[serde(default)]
    pub stdout: String,
    #[serde(default)]
    pub seconds: f64,
}

/// One process's run of several test functions (one pytest invocation of a workflow step).
#[derive(Debug, Clone, Serialize)]
pub struct TestsRun {
    /// The process's exit status decided it: 0 when every test passed, as pytest's.
    pub passed: bool,
    /// What the process said about each test: for messages only (the student's code may print
    /// anything), never for points.
    pub results: Vec<NodeResult>,
    pub seconds: f64,
    /// Why the process failed as a whole (time limit, killed, no result), if it did.
    pub failure: Option<String>,
    pub timed_out: bool,
}

/// `test_inference` run by fmtool's workers.
#[derive(Debug, Clone, Serialize)]
pub struct InferenceRun {
    pub passed: bool,
    /// The accuracy `test_inference` computes and writes to `test_acc.txt`.
    pub accuracy: Option<f64>,
    /// What `test_inference` would print after "Error!".
    pub error: Option<String>,
    /// The exception in the student's code, with where it happened.
    pub exception: Option<PyError>,
    pub workers: usize,
    /// Wall time of the parallel run.
    pub seconds: f64,
    /// The sum of the workers' times: what the grader's one serial process would take here.
    pub serial_seconds: f64,
    pub timed_out: bool,
    /// The student's outputs, one row per t10k image in file order (for the comparison).
    #[serde(skip)]
    pub outputs: Option<ndarray::Array2<f64>>,
    #[serde(skip)]
    pub predictions: Option<Vec<usize>>,
}

/// One workflow command, run as the runner runs it.
#[derive(Debug, Clone, Serialize)]
pub struct ShellRun {
    /// The shell's exit status (None when a signal ended it).
    pub code: Option<i32>,
    pub timed_out: bool,
    pub seconds: f64,
    /// The end of what it printed (stdout, then stderr).
    pub output: String,
    /// Why fmtool stopped the sandbox, when it did.
    pub stopped: Option<String>,
}

/// The programs a workflow's commands find on PATH, as the runner has them after `setup-python`
/// and `pip install pytest`: `python`, `python3` and `pytest`, all of them the chosen interpreter.
/// `pytest` is pip's console script, so that `sys.path[0]` is a folder holding nothing of the
/// student's; `site/sitecustomize.py` makes the imports the runner lacks fail.
struct Shims {
    /// PATH's folders: `pytest`'s, then `python`'s.
    pytest_dir: String,
    bin_dir: String,
    site_dir: String,
}

/// Runs a student's code in a sandboxed copy of their repository.
pub struct Runner {
    sandbox: Sandbox,
    python: Python,
    course_test: String,
    /// Top-level modules the grader's runner has besides the standard library.
    allowed: String,
    pub memory: u64,
    pub workers: usize,
    /// The most any one step's processes may run (`--timeout`), probes and finishing included.
    pub cap: Option<Duration>,
    /// Written when the first workflow command runs.
    shims: std::sync::OnceLock<std::result::Result<Shims, String>>,
}

impl Runner {
    /// Copies `repo` and prepares the harness. `allowed` lists the third-party top-level modules
    /// the grader's runner has (from the workflow's setup commands); None lets every import through.
    pub fn new(repo: &Path, python: Python, allowed: Option<&[String]>, isolation: Isolation) -> Result<Runner> {
        let sandbox = Sandbox::copy_of(repo, isolation, &python.executable, &python.folders)?;
        sandbox.write_harness("fmtool_harness.py", HARNESS.as_bytes())?;
        let course_test = sandbox.write_harness("course_model_test.py", COURSE_MODEL_TEST.as_bytes())?;
        let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 16);
        Ok(Runner {
            sandbox,
            python,
            course_test,
            allowed: allowed.map(|a| a.join(",")).unwrap_or_else(|| "\u{0}".into()),
            memory: DEFAULT_MEMORY,
            workers,
            cap: None,
            shims: std::sync::OnceLock::new(),
        })
    }

    pub fn python(&self) -> &Python {
        &self.python
    }

    pub fn isolation(&self) -> &Isolation {
        self.sandbox.isolation()
    }

    /// Bounds the repository as a whole: nothing runs past `total` from now.
    pub fn set_total_time(&mut self, total: Duration) {
        self.sandbox.set_total_time(total);
    }

    /// Why fmtool stopped the student's code (a limit on the student as a whole, the total time).
    pub fn stopped(&self) -> Option<String> {
        self.sandbox.stopped()
    }

    /// Links the student's code planted for fmtool to follow.
    pub fn planted_links(&self) -> Vec<Planted> {
        self.sandbox.planted_links()
    }

    /// The sandbox's copy of the repository (where `test_acc.txt` is written).
    pub fn repo(&self) -> &Path {
        &self.sandbox.repo
    }

    /// A text file the student's code wrote in its copy (`test_acc.txt`).
    pub fn read_in_copy(&self, name: &str) -> Option<String> {
        self.sandbox.read_in_copy(name)
    }

    /// The accuracy the first line of `name` in the copy holds, as `load_test_acc` reads it.
    pub fn accuracy_in_copy(&self, name: &str) -> Option<f64> {
        self.read_in_copy(name).and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<f64>().ok()))
    }

    fn harness(&self, args: &[String], timeout: Duration, on_line: &(dyn Fn(&str) + Sync)) -> Result<Outcome> {
        let timeout = self.cap.map_or(timeout, |c| c.min(timeout));
        let env: Vec<(&str, String)> =
            if self.allowed == "\u{0}" { Vec::new() } else { vec![("FMTOOL_ALLOWED", self.allowed.clone())] };
        self.sandbox.run(args, &env, Limits { timeout, memory: self.memory }, on_line)
    }

    /// Reads model_test.py's tests without running any student code (the one mode whose printed
    /// answer fmtool believes: no code of the student's runs in its process, and it runs first).
    pub fn inspect(&self) -> Result<Inspect> {
        let out = self.harness(&["inspect".into(), self.course_test.clone()], Duration::from_secs(60), &|_| {})?;
        parse_result(&out, "reading model_test.py")
    }

    /// Calls the student's relu and softmax directly (for the diagnosis only: what it prints is
    /// the student's process talking).
    pub fn probe(&self, timeout: Duration) -> Result<Probe> {
        let out = self.harness(&["probe".into()], timeout, &|_| {})?;
        parse_result(&out, "calling relu() and softmax()")
    }

    /// Runs test functions of model_test.py in one process, in order, as one pytest command does:
    /// they pass when the process exits 0.
    pub fn tests(&self, nodes: &[String], timeout: Duration) -> TestsRun {
        let mut args = vec!["tests".to_string()];
        args.extend_from_slice(nodes);
        match self.harness(&args, timeout, &|_| {}) {
            Err(e) => TestsRun {
                passed: false,
                results: Vec::new(),
                seconds: 0.0,
                failure: Some(e.message),
                timed_out: false,
            },
            Ok(out) => {
                #[derive(Deserialize)]
                struct R {
                    results: Vec<NodeResult>,
                }
                let said = parse_result::<R>(&out, "running model_test.py");
                let passed = out.code == Some(0) && !out.timed_out;
                let failure = match (&said, passed) {
                    (_, true) => None,
                    (Ok(r), false) if r.results.iter().any(|n| !n.passed) => None,
                    (Ok(_), false) => Some(exit_message(&out, "running model_test.py")),
                    (Err(e), false) => Some(e.message.clone()),
                };
                TestsRun {
                    passed,
                    results: said.map(|r| r.results).unwrap_or_default(),
                    seconds: out.seconds,
                    failure,
                    timed_out: out.timed_out,
                }
            }
        }
    }

    /// Replaces a file of the copy before any of the student's code ran (the course's own files,
    /// for the points the student would get without editing them).
    pub fn write_in_copy(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.sandbox.write_in_copy(name, bytes)
    }

    fn shims(&self) -> std::result::Result<&Shims, String> {
        self.shims
            .get_or_init(|| {
                let exe = self.python.executable.display().to_string();
                if exe.contains('\'') {
                    return Err(format!("the interpreter's path {exe} holds a quote, which the shims cannot name"));
                }
                let write = |name: &str, text: String| self.sandbox.write_tool(name, text.as_bytes()).map_err(|e| e.message);
                let entry = write(
                    "entry/run_pytest.py",
                    "import sys\nfrom pytest import console_main\nsys.argv[0] = 'pytest'\nsys.exit(console_main())\n".into(),
                )?;
                let python = format!("#!/bin/sh\nexec '{exe}' \"$@\"\n");
                let bin = write("bin/python", python.clone())?;
                write("bin/python3", python)?;
                let pytest = write("pytest-bin/pytest", format!("#!/bin/sh\nexec '{exe}' '{entry}' \"$@\"\n"))?;
                let harness = self.sandbox.harness_path("");
                let site = write(
                    "site/sitecustomize.py",
                    format!(
                        "import sys\nsys.path.insert(0, {harness:?})\ntry:\n    import fmtool_harness\nfinally:\n    del sys.path[0]\n    sys.modules.pop('fmtool_harness', None)\nfmtool_harness.install_grader_imports()\n"
                    ),
                )?;
                let dir = |p: &str| p.rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_default();
                Ok(Shims { pytest_dir: dir(&pytest), bin_dir: dir(&bin), site_dir: dir(&site) })
            })
            .as_ref()
            .map_err(String::clone)
    }

    /// A workflow step's command as the runner runs it: `/bin/sh -c COMMAND` in the copy, with
    /// `pytest` on PATH when a setup-command installed it (`pytest`), in the runner's environment
    /// (`CI`, `GITHUB_ACTIONS`). The step passes when it exits 0.
    pub fn shell(&self, command: &str, pytest: bool, timeout: Duration) -> ShellRun {
        let failed = |why: String| ShellRun { code: None, timed_out: false, seconds: 0.0, output: why, stopped: None };
        let shims = match self.shims() {
            Ok(s) => s,
            Err(why) => return failed(why),
        };
        let mut path = String::new();
        if pytest {
            path.push_str(&shims.pytest_dir);
            path.push(':');
        }
        path.push_str(&shims.bin_dir);
        path.push_str(":/usr/local/bin:/usr/bin:/bin");
        let mut env: Vec<(&str, String)> = vec![
            ("PATH", path),
            ("PYTHONPATH", shims.site_dir.clone()),
            ("CI", "true".into()),
            ("GITHUB_ACTIONS", "true".into()),
        ];
        if self.allowed != "\u{0}" {
            env.push(("FMTOOL_ALLOWED", self.allowed.clone()));
        }
        let timeout = self.cap.map_or(timeout, |c| c.min(timeout));
        let args = ["shell".to_string(), command.to_string()];
        match self.sandbox.run(&args, &env, Limits { timeout, memory: self.memory }, &|_| {}) {
            Err(e) => failed(e.message),
            Ok(out) => {
                let mut output = out.stdout.clone();
                output.push_str(&out.stderr);
                let tail = output.char_indices().rev().nth(3000).map_or(0, |(i, _)| i);
                ShellRun {
                    code: out.code,
                    timed_out: out.timed_out,
                    seconds: out.seconds,
                    output: output[tail..].to_string(),
                    stopped: out.stopped,
                }
            }
        }
    }

    /// The course's `test_inference`, split over one worker process per core. `timeout` is the
    /// grader's limit for the serial run; the workers together get the same CPU time.
    /// `progress` is called with the number of images classified so far.
    pub fn parallel_inference(
        &self,
        images: usize,
        timeout: Duration,
        output_file: Option<&str>,
        labels: Option<&[u8]>,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<InferenceRun> {
        let n = self.workers.min(images.max(1));
        let start = std::time::Instant::now();
        let counts: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
        let ranges: Vec<(usize, usize)> = (0..n).map(|i| (images * i / n, images * (i + 1) / n)).collect();
        let results: Vec<Result<(Outcome, String)>> = std::thread::scope(|s| {
            let handles: Vec<_> = ranges
                .iter()
                .enumerate()
                .map(|(i, &(a, b))| {
                    let counts = &counts;
                    s.spawn(move || {
                        let name = format!("outputs_{i}.npz");
                        let on_line = |line: &str| {
                            if let Some(k) = line.strip_prefix("@@progress ").and_then(|k| k.trim().parse().ok()) {
                                counts[i].store(k, Ordering::Relaxed);
                                progress(counts.iter().map(|c| c.load(Ordering::Relaxed)).sum());
                            }
                        };
                        let args =
                            vec!["infer".to_string(), a.to_string(), b.to_string(), self.sandbox.output_path(&name)];
                        self.harness(&args, timeout, &on_line).map(|o| (o, name))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(err!("a worker thread failed")))).collect()
        });
        let mut serial = 0.0;
        let mut outs = Vec::new();
        let mut exception: Option<PyError> = None;
        let mut error: Option<String> = None;
        let mut timed_out = false;
        for r in results {
            let (o, name) = r?;
            serial += o.seconds;
            timed_out |= o.timed_out;
            if let Some(why) = &o.stopped {
                error.get_or_insert_with(|| format!("fmtool stopped the student's code: {why}"));
                continue;
            }
            if o.code == Some(0) {
                outs.push(name);
                continue;
            }
            // Failed, by its exit status; what it printed only says why.
            #[derive(Deserialize)]
            struct W {
                error: Option<PyError>,
            }
            match parse_result::<W>(&o, "test_inference") {
                Ok(W { error: Some(e) }) => {
                    // The first failing image in file order is the one to report.
                    if exception.as_ref().is_none_or(|x| x.image > e.image) {
                        error = Some(e.message.clone());
                        exception = Some(e);
                    }
                }
                _ => {
                    error.get_or_insert_with(|| exit_message(&o, "test_inference"));
                }
            }
        }
        progress(images);
        let late =
            |t: bool| t.then(|| format!("the run took longer than the step's limit of {:.0} s", timeout.as_secs_f64()));
        // The rest of test_inference: in Rust when the outputs are the usual (n, 1, classes), the
        // labels are the repository's own and the accuracy prints as Python prints it (a Python
        // start saved), else in Python.
        let fast = match (&error, output_file, labels) {
            // test_inference removes the file first and writes it last: the same end state.
            (None, Some(file), Some(labels)) => {
                let bytes: Option<Vec<Vec<u8>>> =
                    outs.iter().map(|n| self.sandbox.read_output(n, crate::fsguard::budget::NPZ)).collect();
                bytes.and_then(|b| finish_here(&b, labels)).and_then(|(accuracy, outputs, predictions, text)| {
                    self.sandbox.write_in_copy(file, text.as_bytes()).ok().map(|()| (accuracy, outputs, predictions))
                })
            }
            _ => None,
        };
        if let Some((accuracy, outputs, predictions)) = fast {
            return Ok(InferenceRun {
                passed: !timed_out && serial <= timeout.as_secs_f64(),
                accuracy: Some(accuracy),
                error: late(timed_out),
                exception,
                workers: n,
                seconds: start.elapsed().as_secs_f64(),
                serial_seconds: serial,
                timed_out,
                outputs: Some(outputs),
                predictions: Some(predictions),
            });
        }
        // It runs even when a worker failed, as the test itself would have (and removes a stale
        // test_acc.txt). Its result is its exit status and the test_acc.txt it leaves.
        let mut args = vec!["finish".to_string(), error.clone().unwrap_or_default()];
        if error.is_none() {
            args.extend(outs.iter().map(|n| self.sandbox.output_path(n)));
        }
        let fin = self.harness(&args, Duration::from_secs(120), &|_| {})?;
        let written = output_file.and_then(|f| self.accuracy_in_copy(f));
        let accuracy = written.filter(|_| fin.code == Some(0));
        #[derive(Deserialize)]
        struct F {
            error: Option<String>,
        }
        let said = parse_result::<F>(&fin, "test_inference").ok().and_then(|f| f.error);
        let (outputs, predictions) = if accuracy.is_some() { self.read_result() } else { (None, None) };
        let run_error = if timed_out {
            late(true)
        } else if let Some(why) = &fin.stopped {
            Some(format!("fmtool stopped the student's code: {why}"))
        } else if accuracy.is_none() {
            Some(error.or(said).unwrap_or_else(|| exit_message(&fin, "test_inference")))
        } else {
            None
        };
        Ok(InferenceRun {
            passed: accuracy.is_some() && !timed_out && serial <= timeout.as_secs_f64(),
            accuracy,
            error: run_error,
            exception,
            workers: n,
            seconds: start.elapsed().as_secs_f64(),
            serial_seconds: serial,
            timed_out,
            outputs,
            predictions,
        })
    }

    fn read_result(&self) -> (Option<ndarray::Array2<f64>>, Option<Vec<usize>>) {
        let Some(bytes) = self.sandbox.read_output("result.npz", crate::fsguard::budget::NPZ) else {
            return (None, None);
        };
        let Ok(npz) = crate::model::npz::read_npz_bytes(&self.sandbox.output_host_path("result.npz"), &bytes) else {
            return (None, None);
        };
        let outputs = npz.array("outputs").ok().and_then(|a| a.to_f64().into_dimensionality::<ndarray::Ix2>().ok());
        let preds = npz.array("predictions").ok().map(|a| a.values().map(|v| v as usize).collect());
        (outputs, preds)
    }
}

/// The end of the course's test_inference, done here for the usual case: every worker's outputs
/// of shape (k, 1, classes) (what `np.array` of the (1, classes) results gives), so that
/// `outputs.squeeze(axis=1)` is (n, classes); NumPy's argmax against the repository's own labels
/// (read by fmtool, not by the student's code); `correct / len(y_test)`; the accuracy written as
/// Python's `str` writes it. None (the harness does it instead) for anything else: another shape,
/// a worker's file that does not read, an accuracy Python would print in exponent form.
fn finish_here(outs: &[Vec<u8>], labels: &[u8]) -> Option<(f64, ndarray::Array2<f64>, Vec<usize>, String)> {
    let mut rows: Vec<f64> = Vec::new();
    let mut n = 0;
    let mut classes = None;
    for bytes in outs {
        let npz = crate::model::npz::read_npz_bytes(Path::new("outputs.npz"), bytes).ok()?;
        let o = npz.array("outputs").ok()?;
        let [k, 1, c] = o.shape[..] else { return None };
        if *classes.get_or_insert(c) != c || c == 0 {
            return None;
        }
        rows.extend(o.values());
        n += k;
    }
    let c = classes?;
    if n != labels.len() {
        return None;
    }
    let outputs = ndarray::Array2::from_shape_vec((n, c), rows).ok()?;
    let predictions: Vec<usize> =
        outputs.rows().into_iter().map(|r| crate::grader::argmax(r.iter().copied())).collect();
    let correct = predictions.iter().zip(labels).filter(|(p, l)| **p == **l as usize).count();
    let accuracy = correct as f64 / n as f64;
    let text = python_float(accuracy)?;
    Some((accuracy, outputs, predictions, text))
}

/// `str(x)` of a Python float in [0, 1] where Python writes no exponent; None elsewhere.
fn python_float(x: f64) -> Option<String> {
    if !(0.0..=1.0).contains(&x) || (x != 0.0 && x < 1e-4) {
        return None;
    }
    if x.fract() == 0.0 { Some(format!("{x:.1}")) } else { Some(format!("{x}")) }
}

/// What the harness printed (the last line starting with the mark), or why there is none.
fn parse_result<T: serde::de::DeserializeOwned>(out: &Outcome, what: &str) -> Result<T> {
    if let Some(line) = out.stdout.lines().rev().find_map(|l| l.strip_prefix(MARK)) {
        return serde_json::from_str(line).map_err(|e| err!("fmtool's harness gave an unreadable result ({e})"));
    }
    Err(err!("{}", exit_message(out, what)))
}

/// Why a process ended as it did, for a message.
fn exit_message(out: &Outcome, what: &str) -> String {
    if let Some(why) = &out.stopped {
        return format!("{what} was stopped: {why}");
    }
    if out.timed_out {
        return format!("{what} did not finish in {:.0} s; fmtool stopped it", out.seconds);
    }
    let last = out.stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    let why = match out.code {
        None => "it was killed (out of memory, or a signal)".to_string(),
        Some(c) => format!("it exited with code {c}"),
    };
    format!(
        "{what} stopped before it finished: {why}{}",
        if last.is_empty() { String::new() } else { format!(": {}", crate::text::clip(last, 300)) }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracies_are_written_as_python_writes_them() {
        // str(np.float64(x)) in Python for the accuracies test_inference computes.
        assert_eq!(python_float(8641.0 / 10000.0).as_deref(), Some("0.8641"));
        assert_eq!(python_float(1.0).as_deref(), Some("1.0"));
        assert_eq!(python_float(0.0).as_deref(), Some("0.0"));
        assert_eq!(python_float(1.0 / 3.0).as_deref(), Some("0.3333333333333333"));
        assert_eq!(python_float(0.0001).as_deref(), Some("0.0001"));
        // Python writes 5e-05: left to the harness.
        assert_eq!(python_float(0.00005), None);
    }
}
