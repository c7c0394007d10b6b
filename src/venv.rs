//! The grader's Python environment, made for the student (`fmtool score --setup`). Its packages
//! come from the workflow's setup-commands as `repo::workflow` reads them (the student's shell
//! text is never run): plain requirements only, each handed to the installer as one argument. It
//! is a virtual environment in fmtool's cache (`envs/<key>`, the key a hash of the base Python and
//! the requirements), made with `uv` when it is on PATH, else with `python3 -m venv` and pip.
//!
//! It is made in its final folder, because a venv's scripts (`bin/pytest`) name their folder, and
//! trusted only once its marker file, written last, is there: an install that was killed or failed
//! leaves nothing a later run uses (the next one removes the remains and starts again). Nothing
//! here runs the student's code; `grade` never calls it (a class is graded with the staff's
//! `--python`).

use crate::err;
use crate::error::{Error, Result};
use crate::repo::workflow::{Setup, Workflow, interpret_setup};
use serde::{Deserialize, Serialize};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The file that says an environment is complete (this struct's JSON), written last.
const MARKER: &str = "fmtool-env.json";
/// Overrides the cache folder (tests use a temporary one).
pub const CACHE_VAR: &str = "FMTOOL_CACHE_DIR";
/// A folder of wheels to install from instead of PyPI (`--no-index --find-links DIR`): the tests
/// install from a local folder, without the network.
pub const FIND_LINKS_VAR: &str = "FMTOOL_PIP_FIND_LINKS";

/// What the environment gets: the workflow's plain requirements, one per package.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Requirements {
    /// As written (`pytest`, `numpy==2.4.6`), in the workflow's order; NumPy always among them.
    pub install: Vec<String>,
    /// What fmtool leaves out, and why.
    pub skipped: Vec<String>,
}

impl Requirements {
    /// The packages the setup-commands of `workflow` pip-install (the course's where there is no
    /// workflow), and NumPy, which fmtool's harness needs whatever the workflow says.
    pub fn of(workflow: Option<&Workflow>) -> Requirements {
        let mut out = Requirements::default();
        let mut names: Vec<String> = Vec::new();
        let mut add = |req: &str, out: &mut Requirements| match plain_requirement(req) {
            Err(reason) => out.skipped.push(format!("{}: {reason}", crate::text::clip(req, 100))),
            Ok(name) if crate::repo::stdlib::is_stdlib(&name.replace('-', "_")) => out
                .skipped
                .push(format!("{req}: part of Python's standard library (pip's copy on the runner is never imported)")),
            Ok(name) if names.contains(&name) => {
                if !out.install.iter().any(|r| r == req) {
                    out.skipped.push(format!("{req}: an earlier setup-command already installs {name}"));
                }
            }
            Ok(name) => {
                names.push(name);
                out.install.push(req.to_string());
            }
        };
        match workflow {
            Some(w) => {
                for command in w.steps.iter().filter_map(|s| s.setup_command.as_deref()) {
                    match interpret_setup(command) {
                        Setup::PipInstall { requirements, .. } => requirements.iter().for_each(|r| add(r, &mut out)),
                        Setup::Empty => {}
                        Setup::Other { reason } => {
                            out.skipped.push(format!("`{}`: {reason}", crate::text::clip(command.trim(), 100)))
                        }
                    }
                }
            }
            None => crate::autograde::COURSE_PACKAGES.iter().for_each(|r| add(r, &mut out)),
        }
        if !out.names().iter().any(|n| n == "numpy") {
            out.install.push("numpy".into());
        }
        out
    }

    /// The package names (lower case, `-` for `_`), in order.
    pub fn names(&self) -> Vec<String> {
        self.install.iter().filter_map(|r| plain_requirement(r).ok()).collect()
    }
}

/// The package name of a plain requirement (`name`, `name[extra]`, `name==1.2`, `name>=1,<2`), or
/// why it is not one (a URL, a path, an environment marker, an option).
pub fn plain_requirement(req: &str) -> std::result::Result<String, String> {
    let end = req.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))).unwrap_or(req.len());
    let (name, mut rest) = req.split_at(end);
    if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphanumeric()) || name.ends_with(['.', '-', '_']) {
        return Err("not a package name".into());
    }
    if let Some(extras) = rest.strip_prefix('[') {
        let close = extras.find(']').ok_or("an unclosed `[`")?;
        let ok = extras[..close].split(',').all(|e| {
            let e = e.trim();
            !e.is_empty() && e.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        });
        if !ok {
            return Err("extras that are not names".into());
        }
        rest = &extras[close + 1..];
    }
    if !rest.is_empty() {
        for spec in rest.split(',') {
            let version = ["===", "==", ">=", "<=", "~=", "!=", "<", ">"]
                .iter()
                .find_map(|op| spec.trim().strip_prefix(op))
                .ok_or_else(|| format!("`{}` is not a version specifier", crate::text::clip(spec, 40)))?;
            let version = version.trim();
            if version.is_empty()
                || !version.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '*' | '+' | '!' | '-' | '_'))
            {
                return Err(format!("`{}` is not a version", crate::text::clip(version, 40)));
            }
        }
    }
    Ok(name.to_ascii_lowercase().replace(['_', '.'], "-"))
}

/// The cache key of an environment: the base Python (version and executable, whose folder the
/// venv links to) and the sorted requirements.
pub fn cache_key(version: &str, executable: &Path, requirements: &[String]) -> String {
    use sha2::Digest;
    let mut sorted = requirements.to_vec();
    sorted.sort();
    let text = format!("fmtool-env 1\n{version}\n{}\n{}", executable.display(), sorted.join("\n"));
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// fmtool's folder of environments: `$FMTOOL_CACHE_DIR/envs`, else `$XDG_CACHE_HOME/fmtool/envs`,
/// else `~/.cache/fmtool/envs`.
pub fn envs_dir() -> Result<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let base = var(CACHE_VAR)
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("fmtool")))
        .or_else(|| var("HOME").map(|h| h.join(".cache/fmtool")))
        .ok_or_else(|| {
            err!("fmtool has no folder for its Python environments: neither HOME nor XDG_CACHE_HOME is set")
                .with_hint(format!("set {CACHE_VAR} to a folder, or pass --python"))
        })?;
    Ok(std::path::absolute(&base).unwrap_or(base).join("envs"))
}

/// `python3` on PATH, as far as the environment goes: which of the packages it lacks.
#[derive(Debug, Clone)]
pub struct Base {
    /// As found on PATH.
    pub path: PathBuf,
    pub version: String,
    /// `sys.executable`.
    pub executable: PathBuf,
    /// The packages (of those asked about) it cannot import.
    pub missing: Vec<String>,
}

const ASK_BASE: &str = "import importlib.util, json, sys\nmissing = []\nfor arg in sys.argv[1:]:\n    package, _, module = arg.partition('=')\n    try:\n        found = importlib.util.find_spec(module) is not None\n    except Exception:\n        found = False\n    if not found:\n        missing.append(package)\nprint(json.dumps({'version': sys.version.split()[0], 'executable': sys.executable, 'missing': missing}))";

/// Asks `python3` on PATH (in isolated mode, as the sandbox runs it) which of `packages` it cannot
/// import. The error says why there is no answer (no python3, or it does not run).
pub fn probe_base(packages: &[String]) -> std::result::Result<Base, String> {
    let path = crate::student::which(Path::new("python3")).ok_or("no python3 on PATH")?;
    let args: Vec<String> = packages
        .iter()
        .map(|p| format!("{p}={}", crate::repo::lint::import_names(p).first().cloned().unwrap_or_default()))
        .collect();
    #[derive(Deserialize)]
    struct Said {
        version: String,
        executable: PathBuf,
        missing: Vec<String>,
    }
    let said: Said = ask(&path, ASK_BASE, &args)?;
    let executable = if said.executable.as_os_str().is_empty() { path.clone() } else { said.executable };
    Ok(Base { path, version: said.version, executable, missing: said.missing })
}

/// Runs `python -I -c script args...` and reads the last line of its output as JSON.
fn ask<T: serde::de::DeserializeOwned>(python: &Path, script: &str, args: &[String]) -> std::result::Result<T, String> {
    let out = Command::new(python)
        .args(["-I", "-c", script])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.lines().rev().find_map(|l| serde_json::from_str(l).ok()) {
        Some(t) if out.status.success() => Ok(t),
        _ => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr.lines().last().unwrap_or("").trim();
            Err(format!("{} did not run ({}): {}", python.display(), out.status, crate::text::clip(last, 200)))
        }
    }
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    /// `None`: not installed.
    pub version: Option<String>,
}

/// An environment fmtool made. Its JSON (with `created: false`) is the marker file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// The venv's folder.
    pub dir: PathBuf,
    /// Its `bin/python`, which runs the student's code.
    pub python: PathBuf,
    pub python_version: String,
    /// `uv`, or `pip` (`python3 -m venv` and pip).
    pub installer: String,
    /// What was installed, as the workflow wrote it.
    pub requirements: Vec<String>,
    /// What the workflow installs that fmtool left out, and why.
    pub skipped: Vec<String>,
    /// The versions installed: the requirements' packages, and pytest's.
    pub packages: Vec<Package>,
    /// Made by this run (else found in the cache).
    #[serde(default)]
    pub created: bool,
    /// How long making it took (0 when found in the cache).
    #[serde(default)]
    pub seconds: f64,
}

impl Environment {
    /// `numpy 2.4.6, pytest 9.2.0`.
    pub fn versions(&self) -> String {
        let shown: Vec<String> = self
            .packages
            .iter()
            .map(|p| format!("{} {}", p.name, p.version.as_deref().unwrap_or("(not installed)")))
            .collect();
        shown.join(", ")
    }
}

const ASK_VERSIONS: &str = "import importlib.metadata, json, sys\nout = []\nfor name in sys.argv[1:]:\n    try:\n        version = importlib.metadata.version(name)\n    except Exception:\n        version = None\n    out.append({'name': name, 'version': version})\nprint(json.dumps({'version': sys.version.split()[0], 'packages': out}))";

/// The Python version and the installed versions of `names` in the environment at `dir`.
fn versions(dir: &Path, names: &[String]) -> std::result::Result<(String, Vec<Package>), String> {
    #[derive(Deserialize)]
    struct Said {
        version: String,
        packages: Vec<Package>,
    }
    let said: Said = ask(&venv_python(dir), ASK_VERSIONS, names)?;
    Ok((said.version, said.packages))
}

/// The packages whose versions the report names: the requirements', then pytest's.
fn shown_packages(requirements: &Requirements) -> Vec<String> {
    let mut names = requirements.names();
    if !names.iter().any(|n| n == "pytest") {
        names.push("pytest".into());
    }
    names
}

/// The interpreter of the venv at `dir`.
fn venv_python(dir: &Path) -> PathBuf {
    if cfg!(windows) { dir.join("Scripts").join("python.exe") } else { dir.join("bin").join("python") }
}

/// The first of the requirements' packages that is not installed.
fn lacking<'a>(requirements: &Requirements, packages: &'a [Package]) -> Option<&'a Package> {
    let names = requirements.names();
    packages.iter().find(|p| p.version.is_none() && names.contains(&p.name))
}

/// The complete environment at `dir`: `None` when there is none (no marker), `Err` when its marker
/// is there but it no longer runs (its base Python was removed, say) or lacks a package.
pub fn cached(dir: &Path, requirements: &Requirements) -> Option<std::result::Result<Environment, String>> {
    let marker = dir.join(MARKER);
    if std::fs::symlink_metadata(&marker).is_err() {
        return None;
    }
    let read = crate::fsguard::read(&marker, crate::fsguard::budget::SOURCE)
        .map_err(|e| e.one_line())
        .and_then(|b| serde_json::from_slice::<Environment>(&b).map_err(|e| format!("{}: {e}", marker.display())));
    let check = |mut env: Environment| {
        let (version, packages) = versions(dir, &shown_packages(requirements))?;
        if let Some(p) = lacking(requirements, &packages) {
            return Err(format!("it lacks {}", p.name));
        }
        env.python_version = version;
        env.packages = packages;
        env.created = false;
        env.seconds = 0.0;
        Ok(env)
    };
    Some(read.and_then(check))
}

/// How the environment is made.
#[derive(Debug, Clone, PartialEq)]
pub enum Installer {
    /// `uv venv` and `uv pip install`, with this `uv`.
    Uv(PathBuf),
    /// `python3 -m venv` and the venv's pip.
    Pip,
}

impl Installer {
    /// `uv` when it is on PATH, else pip.
    pub fn find() -> Installer {
        crate::student::which(Path::new("uv")).map(Installer::Uv).unwrap_or(Installer::Pip)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Installer::Uv(_) => "uv",
            Installer::Pip => "pip",
        }
    }
}

/// What [`create`] makes: the environment at `dir`, from `base`, with `requirements` installed by
/// `installer`.
pub struct Recipe<'a> {
    pub base: &'a Base,
    pub requirements: &'a Requirements,
    pub dir: &'a Path,
    pub installer: &'a Installer,
}

/// Makes the environment of `recipe` and tells `say` what it does, line by line (the installer's
/// own lines too). Under a lock, so that two fmtools do not make one environment at once; a
/// complete one found then is used as it is.
pub fn create(recipe: &Recipe, say: &(dyn Fn(&str) + Sync)) -> Result<Environment> {
    let Recipe { requirements, dir, .. } = *recipe;
    let start = Instant::now();
    let parent = dir.parent().ok_or_else(|| err!("{}: no parent folder", dir.display()))?;
    std::fs::create_dir_all(parent).map_err(|e| Error::io("create the directory", parent, &e))?;
    let _lock = Lock::take(&dir.with_extension("lock"), say)?;
    if let Some(Ok(env)) = cached(dir, requirements) {
        say(&format!("fmtool: another fmtool made {} meanwhile; using it", dir.display()));
        return Ok(env);
    }
    if std::fs::symlink_metadata(dir).is_ok() {
        say(&format!("fmtool: removing the unfinished or broken environment {}", dir.display()));
        std::fs::remove_dir_all(dir).map_err(|e| Error::io("remove", dir, &e))?;
    }
    let mark = crate::atomic::mark();
    crate::atomic::tracked(|undo| undo.push(crate::atomic::Undo::RemoveTree(dir.to_path_buf())));
    let made = make(recipe, say);
    match made {
        Ok(mut env) => {
            crate::atomic::commit(mark);
            env.created = true;
            env.seconds = start.elapsed().as_secs_f64();
            say(&format!("fmtool: made {} in {:.1} s: {}", dir.display(), env.seconds, env.versions()));
            Ok(env)
        }
        Err(e) => {
            crate::atomic::rollback(mark);
            Err(e)
        }
    }
}

/// The steps of [`create`], the marker last.
fn make(recipe: &Recipe, say: &(dyn Fn(&str) + Sync)) -> Result<Environment> {
    let Recipe { base, requirements, dir, installer } = *recipe;
    let find_links = std::env::var_os(FIND_LINKS_VAR).filter(|v| !v.is_empty());
    let source = match &find_links {
        Some(d) => format!("from {}", Path::new(d).display()),
        None => "from PyPI".into(),
    };
    say(&format!(
        "fmtool: making a Python environment in {} with {} (Python {}, {})",
        dir.display(),
        installer.name(),
        base.version,
        base.executable.display()
    ));
    let python = venv_python(dir);
    let mut install = match installer {
        Installer::Uv(uv) => {
            let mut venv = Command::new(uv);
            venv.arg("venv").arg("--python").arg(&base.executable).arg(dir);
            run_logged(&mut venv, "uv venv", say)?;
            let mut c = Command::new(uv);
            c.args(["pip", "install", "--python"]).arg(&python);
            c
        }
        Installer::Pip => {
            let mut venv = Command::new(&base.executable);
            venv.args(["-I", "-m", "venv"]).arg(dir);
            run_logged(&mut venv, &format!("{} -m venv", base.path.display()), say)?;
            let mut c = Command::new(&python);
            c.args(["-I", "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]);
            c
        }
    };
    if let Some(d) = &find_links {
        install.arg("--no-index").arg("--find-links").arg(d);
    }
    // `--` ends the options: a requirement is never read as one.
    install.arg("--").args(&requirements.install);
    say(&format!("fmtool: installing {} {source}", requirements.install.join(" ")));
    run_logged(&mut install, &format!("{} install", installer.name()), say)?;
    let (version, packages) = versions(dir, &shown_packages(requirements))
        .map_err(|why| err!("the new environment in {} does not run: {why}", dir.display()))?;
    if let Some(p) = lacking(requirements, &packages) {
        return Err(err!("{} did not install {} into {}", installer.name(), p.name, dir.display()));
    }
    let env = Environment {
        dir: dir.to_path_buf(),
        python,
        python_version: version,
        installer: installer.name().into(),
        requirements: requirements.install.clone(),
        skipped: requirements.skipped.clone(),
        packages,
        created: false,
        seconds: 0.0,
    };
    let json = serde_json::to_vec_pretty(&env).map_err(|e| err!("cannot write the environment's marker: {e}"))?;
    crate::atomic::write_atomic(&dir.join(MARKER), &json, false)?;
    Ok(env)
}

/// Runs `cmd` (never through a shell), its stdout and stderr handed to `say` line by line; an
/// error names `what` and ends with its last lines.
fn run_logged(cmd: &mut Command, what: &str, say: &(dyn Fn(&str) + Sync)) -> Result<()> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err!("cannot run {what} ({:?}): {e}", cmd.get_program()))?;
    // Both pipes are read on threads of their own, but every line is said from this one: the
    // caller may hold stderr's lock (lib.rs does), which another thread would wait for forever.
    let (send, lines) = std::sync::mpsc::channel::<String>();
    let mut tail = std::collections::VecDeque::new();
    let pipes: [Option<Box<dyn std::io::Read + Send>>; 2] = [
        child.stdout.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        child.stderr.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    ];
    std::thread::scope(|s| {
        for pipe in pipes.into_iter().flatten() {
            let send = send.clone();
            s.spawn(move || {
                for line in std::io::BufReader::new(pipe).lines().map_while(std::result::Result::ok) {
                    if send.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        drop(send);
        for line in lines {
            let line = crate::text::clip(line.trim_end(), 300);
            if line.trim().is_empty() {
                continue;
            }
            say(&format!("  {line}"));
            tail.push_back(line);
            if tail.len() > 8 {
                tail.pop_front();
            }
        }
    });
    let status = child.wait().map_err(|e| err!("{what}: {e}"))?;
    if status.success() {
        return Ok(());
    }
    let tail: Vec<String> = tail.into();
    Err(err!("{what} failed ({status}): {}", tail.join(" | ")).with_hint(
        "check your network (pip reads PyPI, or PIP_INDEX_URL), or make the environment yourself and pass `--python PATH`",
    ))
}

/// An exclusive lock on a file beside the environment, held until dropped.
struct Lock(#[allow(dead_code)] std::fs::File);

impl Lock {
    fn take(path: &Path, say: &(dyn Fn(&str) + Sync)) -> Result<Lock> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| Error::io("open", path, &e))?;
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: flock on a descriptor this function owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                say(&format!("fmtool: another fmtool is making this environment; waiting for it ({})", path.display()));
                // SAFETY: as above.
                if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
                    return Err(Error::io("lock", path, &std::io::Error::last_os_error()));
                }
            }
        }
        #[cfg(not(unix))]
        let _ = say;
        Ok(Lock(file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_requirements_are_names_extras_and_versions() {
        for (req, name) in [
            ("numpy", "numpy"),
            ("numpy==1.26", "numpy"),
            ("Scikit_Learn>=1.0,<2", "scikit-learn"),
            ("pandas[performance]", "pandas"),
            ("zope.interface~=6.0", "zope-interface"),
            ("torch==2.3.0+cpu", "torch"),
            ("numpy==2.*", "numpy"),
        ] {
            assert_eq!(plain_requirement(req), Ok(name.to_string()), "{req}");
        }
        for req in [
            "git+https://example.com/x.git",
            "./wheels/numpy.whl",
            "numpy; python_version<'3.12'",
            "numpy @ https://example.com/n.whl",
            "-e",
            "numpy==",
            "numpy==1.0$(rm -rf ~)",
            "numpy[a b]",
            "",
        ] {
            assert!(plain_requirement(req).is_err(), "{req}: {:?}", plain_requirement(req));
        }
    }

    fn workflow(setups: &[&str]) -> Workflow {
        let mut yaml = String::from("jobs:\n  j:\n    steps:\n");
        for (i, s) in setups.iter().enumerate() {
            yaml.push_str(&format!(
                "      - name: s{i}\n        uses: classroom-resources/autograding-command-grader@v1\n        with:\n          test-name: s{i}\n          setup-command: \"{s}\"\n          command: pytest model_test.py::test_relu\n          max-score: 1\n"
            ));
        }
        crate::repo::workflow::parse_workflow("classroom.yml", &yaml).expect("the test workflow parses")
    }

    #[test]
    fn requirements_come_from_the_setup_commands_and_numpy_is_always_there() {
        let r = Requirements::of(Some(&workflow(&["pip3 install pytest pandas argparse", ""])));
        assert_eq!(r.install, ["pytest", "pandas", "numpy"]);
        assert_eq!(r.skipped.len(), 1, "{:?}", r.skipped);
        assert!(r.skipped[0].starts_with("argparse: part of Python's standard library"), "{:?}", r.skipped);

        let r = Requirements::of(Some(&workflow(&[
            "pip install 'numpy==2.4.6' pytest",
            "pip install numpy==1.26 pytest 'numpy @ https://x/n.whl'",
            "curl x | sh",
        ])));
        assert_eq!(r.install, ["numpy==2.4.6", "pytest"]);
        assert_eq!(r.names(), ["numpy", "pytest"]);
        assert_eq!(r.skipped.len(), 3, "{:?}", r.skipped);
        assert!(
            r.skipped[0].starts_with("numpy==1.26: an earlier setup-command already installs numpy"),
            "{:?}",
            r.skipped
        );
        assert!(r.skipped[1].contains("not a version specifier"), "{:?}", r.skipped);
        assert!(r.skipped[2].starts_with("`curl x | sh`"), "{:?}", r.skipped);

        // No workflow: the course's.
        assert_eq!(Requirements::of(None).install, ["pytest", "pandas", "numpy"]);
    }

    /// Regression: the installer's stderr lines were said from a thread of their own, which waited
    /// forever for the stderr lock that lib.rs holds while a command runs (uv writes to stderr).
    #[cfg(unix)]
    #[test]
    fn the_installers_lines_are_said_while_the_caller_holds_stderr() {
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _stderr = std::io::stderr().lock();
            let said = std::sync::Mutex::new(Vec::new());
            let mut cmd = Command::new("sh");
            cmd.args(["-c", "echo to stdout; echo to stderr >&2; exit 3"]);
            let outcome = run_logged(&mut cmd, "sh", &|l| said.lock().unwrap().push(l.to_string()));
            done.send((outcome.map_err(|e| e.message), said.into_inner().unwrap())).unwrap();
        });
        let (outcome, mut said) = result.recv_timeout(std::time::Duration::from_secs(60)).expect("run_logged returns");
        said.sort();
        assert_eq!(said, ["  to stderr", "  to stdout"]);
        let message = outcome.unwrap_err();
        assert!(message.starts_with("sh failed (exit status: 3): "), "{message}");
    }

    #[test]
    fn the_cache_key_is_the_base_python_and_the_sorted_requirements() {
        let py = Path::new("/usr/bin/python3.11");
        let reqs = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let k = cache_key("3.11.7", py, &reqs(&["pytest", "numpy"]));
        assert_eq!(k.len(), 16);
        assert!(k.chars().all(|c| c.is_ascii_hexdigit()), "{k}");
        assert_eq!(k, cache_key("3.11.7", py, &reqs(&["numpy", "pytest"])));
        assert_ne!(k, cache_key("3.11.8", py, &reqs(&["numpy", "pytest"])));
        assert_ne!(k, cache_key("3.11.7", Path::new("/opt/python3"), &reqs(&["numpy", "pytest"])));
        assert_ne!(k, cache_key("3.11.7", py, &reqs(&["numpy==2.4.6", "pytest"])));
    }
}
