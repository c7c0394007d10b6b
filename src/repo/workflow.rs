//! The repo's GitHub Actions workflows as the grader runs them: the command-grader steps of
//! `.github/workflows/*.yml` (what each runs and awards) and what `/bin/sh` makes of their commands.
//!
//! The action (`classroom-resources/autograding-command-grader`) runs `setup-command`, then `command`,
//! through `/bin/sh -c` with only PATH and HOME set; exit 0 gives `max-score`, anything else 0. It reads
//! `timeout` with JavaScript's `parseFloat` (minutes, default 10) and `max-score` with `parseInt`
//! (default 0); [`js_parse_float`] and [`js_parse_int`] copy that.

use super::yaml::{self, Doc, Node};
use crate::{Error, Result};
use std::path::Path;

/// The largest workflow file read (GitHub's own limit on a workflow is far below this).
pub const MAX_WORKFLOW_BYTES: u64 = 1024 * 1024;

/// The folder GitHub reads workflows from, relative to the repo root.
pub const WORKFLOW_DIR: &str = ".github/workflows";

/// One workflow file's command-grader steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    /// The file as shown in messages: `.github/workflows/classroom.yml`.
    pub file: String,
    /// The workflow's `name:`.
    pub name: Option<String>,
    /// The command-grader steps of every job, in file order.
    pub steps: Vec<Step>,
    /// Values the action would read differently from what they look like (`max-score: ten`), with
    /// their line, for findings.
    pub notes: Vec<(usize, String)>,
}

impl Workflow {
    /// The points all steps together can award.
    pub fn max_total(&self) -> u64 {
        self.steps.iter().map(|s| s.max_score).sum()
    }
}

/// One command-grader step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The workflow file as shown in messages (`.github/workflows/classroom.yml`).
    pub file: String,
    /// 0-based among the file's command-grader steps.
    pub index: usize,
    /// The job's key (`run-autograding-tests`).
    pub job: String,
    pub name: Option<String>,
    pub id: Option<String>,
    /// The step's `uses:` (`classroom-resources/autograding-command-grader@v1`).
    pub uses: String,
    pub test_name: Option<String>,
    pub setup_command: Option<String>,
    pub command: Option<String>,
    /// Minutes (the action's default 10).
    pub timeout_minutes: f64,
    /// Points when the command exits 0 (the action's default 0).
    pub max_score: u64,
    /// 1-based line of the step in the file.
    pub line: usize,
}

impl Step {
    /// What the report calls the step: its test-name, else its name, else its id, else `step N`.
    pub fn title(&self) -> String {
        self.test_name
            .clone()
            .or_else(|| self.name.clone())
            .or_else(|| self.id.clone())
            .unwrap_or_else(|| format!("step {}", self.index + 1))
    }

    pub fn timeout_seconds(&self) -> f64 {
        self.timeout_minutes * 60.0
    }
}

/// True when a step's `uses:` names the command grader, whoever publishes it and at any version.
pub fn is_command_grader(uses: &str) -> bool {
    let name = uses.split('@').next().unwrap_or("");
    name.rsplit('/').next() == Some("autograding-command-grader")
}

/// Every workflow in `<repo_root>/.github/workflows/` that has command-grader steps, sorted by file
/// name. A file that does not mention the command grader is skipped unread beyond that; one that
/// does but cannot be read (over 1 MiB, not YAML, an alias bomb) is an error naming the file, since
/// the points it would award cannot be known.
pub fn find_workflows(repo_root: &Path) -> Result<Vec<Workflow>> {
    let dir = repo_root.join(WORKFLOW_DIR);
    let Some(entries) = crate::fsguard::list_dir(&dir)? else { return Ok(Vec::new()) };
    let mut files: Vec<(String, std::path::PathBuf)> = Vec::new();
    for entry in entries {
        let Some(name) = entry.name.to_str().map(str::to_string) else { continue };
        if (name.ends_with(".yml") || name.ends_with(".yaml")) && entry.is_file {
            let path = dir.join(&name);
            files.push((name, path));
        }
    }
    let mut out = Vec::new();
    for (name, path) in files {
        let shown = format!("{WORKFLOW_DIR}/{name}");
        let len = crate::fsguard::metadata(&path)?.len();
        if len > MAX_WORKFLOW_BYTES {
            return Err(Error::new(format!(
                "{shown} is {len} bytes; fmtool reads workflow files of at most {MAX_WORKFLOW_BYTES} bytes (1 MiB)"
            ))
            .with_hint("a GitHub Classroom workflow is a few kilobytes: restore the one the assignment came with"));
        }
        let bytes = crate::fsguard::read(&path, MAX_WORKFLOW_BYTES)?;
        let text = String::from_utf8_lossy(&bytes);
        if !text.contains("autograding-command-grader") {
            continue;
        }
        let wf = parse_workflow(&shown, &text)?;
        if !wf.steps.is_empty() {
            out.push(wf);
        }
    }
    Ok(out)
}

/// The command-grader steps of one workflow file's text. `file` is how messages name it.
pub fn parse_workflow(file: &str, text: &str) -> Result<Workflow> {
    if text.len() as u64 > MAX_WORKFLOW_BYTES {
        return Err(Error::new(format!(
            "{file} is {} bytes; fmtool reads workflow files of at most {MAX_WORKFLOW_BYTES} bytes (1 MiB)",
            text.len()
        )));
    }
    let bad = |msg: String| {
        Error::new(format!("{file}: {msg}"))
            .with_hint("GitHub does not run a workflow it cannot read, so no step of it awards points; compare it with the one the assignment came with")
    };
    let doc = yaml::parse(text).map_err(&bad)?;
    let Some(root) = doc.root else { return Err(bad("the file is empty".into())) };
    if !matches!(doc.node(root), Node::Map { .. }) {
        return Err(bad(format!(
            "line {}: a workflow is a mapping (name:, on:, jobs:), not {}",
            doc.line(root),
            doc.kind(root)
        )));
    }
    let mut wf = Workflow {
        file: file.to_string(),
        name: doc.get(root, "name").and_then(|n| doc.str(n)).map(str::to_string),
        steps: Vec::new(),
        notes: Vec::new(),
    };
    let Some(jobs) = doc.get(root, "jobs") else { return Ok(wf) };
    let Node::Map { entries: jobs, .. } = doc.node(jobs) else {
        return Err(bad(format!(
            "line {}: `jobs:` must be a mapping of job ids to jobs, not {}",
            doc.line(jobs),
            doc.kind(jobs)
        )));
    };
    for &(job_key, job) in jobs {
        let job_name = doc.str(job_key).unwrap_or("?").to_string();
        let Some(steps) = doc.get(job, "steps") else { continue };
        let Node::Seq { items, .. } = doc.node(steps) else {
            return Err(bad(format!(
                "line {}: `steps:` of job {job_name} must be a list of steps (`- name: ...`), not {}",
                doc.line(steps),
                doc.kind(steps)
            )));
        };
        for &step in items {
            if let Some(s) = read_step(&doc, step, file, &job_name, wf.steps.len(), &mut wf.notes) {
                wf.steps.push(s);
            }
        }
    }
    Ok(wf)
}

/// The step at node `step` when it uses the command grader.
fn read_step(
    doc: &Doc,
    step: usize,
    file: &str,
    job: &str,
    index: usize,
    notes: &mut Vec<(usize, String)>,
) -> Option<Step> {
    let uses = doc.get(step, "uses").and_then(|u| doc.str(u))?;
    if !is_command_grader(uses) {
        return None;
    }
    let line = doc.line(step);
    let text = |map: Option<usize>, key: &str| -> Option<String> {
        let v = doc.get(map?, key)?;
        if doc.is_null(v) { None } else { doc.str(v).map(str::to_string) }
    };
    let with = doc.get(step, "with");
    let mut s = Step {
        file: file.to_string(),
        index,
        job: job.to_string(),
        name: text(Some(step), "name"),
        id: text(Some(step), "id"),
        uses: uses.to_string(),
        test_name: text(with, "test-name"),
        setup_command: text(with, "setup-command"),
        command: text(with, "command"),
        timeout_minutes: 10.0,
        max_score: 0,
        line,
    };
    let title = s.title();
    if let Some(t) = text(with, "timeout").filter(|t| !t.trim().is_empty()) {
        match js_parse_float(&t) {
            Some(v) if v > 0.0 => s.timeout_minutes = v,
            _ => notes.push((
                line,
                format!(
                    "step \"{title}\": timeout `{t}` is not a number of minutes; the action's timer then fires at once"
                ),
            )),
        }
    }
    if let Some(m) = text(with, "max-score").filter(|m| !m.trim().is_empty()) {
        match js_parse_int(&m) {
            Some(v) if v >= 0 => s.max_score = v as u64,
            _ => notes.push((line, format!("step \"{title}\": max-score `{m}` is not a whole number of points; the action awards nothing for it"))),
        }
    }
    Some(s)
}

/// JavaScript's `parseFloat`: the longest decimal prefix after leading white space; `None` for NaN.
pub fn js_parse_float(s: &str) -> Option<f64> {
    let t = s.trim_start();
    let b = t.as_bytes();
    let mut end = 0;
    if end < b.len() && (b[end] == b'+' || b[end] == b'-') {
        end += 1;
    }
    let digits_start = end;
    while end < b.len() && b[end].is_ascii_digit() {
        end += 1;
    }
    if end < b.len() && b[end] == b'.' {
        end += 1;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
    }
    if end == digits_start || &t[digits_start..end] == "." {
        return None;
    }
    let mut last = end;
    if end < b.len() && (b[end] == b'e' || b[end] == b'E') {
        let mut e = end + 1;
        if e < b.len() && (b[e] == b'+' || b[e] == b'-') {
            e += 1;
        }
        let ds = e;
        while e < b.len() && b[e].is_ascii_digit() {
            e += 1;
        }
        if e > ds {
            last = e;
        }
    }
    t[..last].parse().ok()
}

/// JavaScript's `parseInt(s)` (base 10): the longest integer prefix; `None` for NaN.
pub fn js_parse_int(s: &str) -> Option<i64> {
    let t = s.trim_start();
    let b = t.as_bytes();
    let mut end = 0;
    if end < b.len() && (b[end] == b'+' || b[end] == b'-') {
        end += 1;
    }
    let ds = end;
    while end < b.len() && b[end].is_ascii_digit() {
        end += 1;
    }
    if end == ds {
        return None;
    }
    t[..end].parse().ok()
}

/// A pytest node id: `model_test.py::test_relu` (function `test_relu`) or `model_test.py` (every test).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestNode {
    pub file: String,
    /// The test function (a method is `Class::method`; a parametrised id keeps its `[...]`).
    pub function: Option<String>,
}

impl std::fmt::Display for TestNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.function {
            Some(func) => write!(f, "{}::{func}", self.file),
            None => f.write_str(&self.file),
        }
    }
}

/// What `/bin/sh -c COMMAND` does, as far as fmtool models it.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// pytest runs `nodes` (empty: pytest collects `test_*.py` / `*_test.py` from the repo root,
    /// which in the course is every test of `model_test.py`); `args` are its other arguments. The
    /// command exits 0 only if every selected test passes.
    Pytest { nodes: Vec<TestNode>, args: Vec<String> },
    /// The first word is no program on the runner: sh prints `sh: 1: X: not found` and exits 127.
    NotFound { program: String },
    /// Nothing to run (the action then fails the step: `command` is required).
    Empty,
    /// Shell syntax or a program fmtool does not model.
    Other { reason: String },
}

/// What a step's `setup-command` does.
#[derive(Debug, Clone, PartialEq)]
pub enum Setup {
    /// `pip install` / `pip3 install` / `python -m pip install` of these packages (their names,
    /// without version specifiers, lower case, `_` as `-`).
    PipInstall {
        packages: Vec<String>,
        /// The same packages as written, version specifiers and all (`numpy==1.26`), in order.
        requirements: Vec<String>,
    },
    Empty,
    Other {
        reason: String,
    },
}

/// Programs an Ubuntu runner has on PATH (and sh builtins) that are not pytest or Python. A first
/// word outside this list, with no slash, is taken as not found unless a setup-command installed it.
const RUNNER_PROGRAMS: &[&str] = &[
    ".", ":", "[", "alias", "awk", "bash", "bc", "cat", "cd", "chmod", "cmp", "command", "cp", "curl", "cut", "date",
    "diff", "dirname", "echo", "env", "eval", "exec", "exit", "export", "false", "find", "gcc", "git", "grep", "head",
    "jq", "ls", "make", "mkdir", "mv", "node", "npm", "npx", "pipx", "printf", "pwd", "rm", "sed", "set", "sh",
    "sleep", "sort", "source", "tail", "tee", "test", "time", "timeout", "touch", "tr", "true", "type", "uniq",
    "unset", "wc", "wget", "xargs",
];

/// Splits a command into words the way sh would for the simple commands fmtool models; `Err` names
/// the shell syntax it does not model.
fn split_words(command: &str) -> std::result::Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '#' if !in_word => break,
            '\n' | '\r' => return Err("it has several lines (several shell commands)".into()),
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err("it has a quote (') that is not closed".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('$' | '`' | '\\') => {
                            return Err("it expands variables or commands inside double quotes".into());
                        }
                        Some(ch) => cur.push(ch),
                        None => return Err("it has a quote (\") that is not closed".into()),
                    }
                }
            }
            '&' if chars.peek() == Some(&'&') => return Err("it chains commands with &&".into()),
            '|' if chars.peek() == Some(&'|') => return Err("it chains commands with ||".into()),
            '&' => return Err("it runs a command in the background (&)".into()),
            '|' => return Err("it pipes one command into another (|)".into()),
            ';' => return Err("it runs several commands (;)".into()),
            '$' if chars.peek() == Some(&'(') => return Err("it substitutes a command's output ($(...))".into()),
            '$' => return Err("it expands a variable ($)".into()),
            '`' => return Err("it substitutes a command's output (`...`)".into()),
            '<' | '>' => return Err("it redirects input or output (< or >)".into()),
            '(' | ')' => return Err("it uses a subshell or parentheses".into()),
            '\\' => return Err("it escapes characters with a backslash".into()),
            '*' | '?' | '[' | '~' if !in_word || c != '[' => {
                // A glob or ~ that sh would expand; `[` inside a word (a parametrised node id) is
                // kept only when it cannot match a file, which fmtool cannot know either.
                return Err(format!("it uses the shell pattern or expansion `{c}`"));
            }
            _ => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// pytest options that take the next word as their value (when not written `--opt=value`).
const PYTEST_VALUE_OPTIONS: &[&str] = &[
    "-p",
    "-c",
    "-o",
    "-W",
    "--tb",
    "--rootdir",
    "--maxfail",
    "--junitxml",
    "--junit-xml",
    "--timeout",
    "--durations",
    "--basetemp",
    "--import-mode",
    "--log-level",
    "--log-file",
    "--color",
    "--capture",
    "--confcutdir",
    "--override-ini",
    "--cov",
    "--cov-report",
    "-n",
    "--ignore",
    "--ignore-glob",
    "--deselect",
    "--show-capture",
    "-r",
];

/// How `/bin/sh -c command` is understood: see [`Command`].
pub fn interpret(command: &str) -> Command {
    let words = match split_words(command.trim()) {
        Ok(w) => w,
        Err(reason) => return Command::Other { reason },
    };
    let Some(first) = words.first() else { return Command::Empty };
    // Leading `NAME=value` words set the environment of the command.
    if first.contains('=') && !first.starts_with('-') && !first.starts_with('=') {
        return Command::Other { reason: format!("it sets an environment variable ({first})") };
    }
    let rest: &[String] = match first.as_str() {
        "pytest" | "py.test" => &words[1..],
        "python" | "python3"
            if words.get(1).map(String::as_str) == Some("-m") && words.get(2).map(String::as_str) == Some("pytest") =>
        {
            &words[3..]
        }
        "python" | "python3" => {
            return Command::Other { reason: format!("it runs `{first}` on something other than `-m pytest`") };
        }
        "cd" => return Command::Other { reason: "it changes directory (cd)".into() },
        w if w.contains('/') => return Command::Other { reason: format!("it runs the program `{w}`") },
        w if RUNNER_PROGRAMS.contains(&w) || w.starts_with("python") || w.starts_with("pip") => {
            return Command::Other { reason: format!("it runs `{w}`, which fmtool does not model") };
        }
        w => return Command::NotFound { program: w.to_string() },
    };
    pytest_args(rest)
}

fn pytest_args(words: &[String]) -> Command {
    let mut nodes = Vec::new();
    let mut args = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        if w.starts_with('-') {
            if w == "-k"
                || w == "-m"
                || w.starts_with("-k")
                || w.starts_with("-m") && w.len() > 2 && !w.starts_with("--")
            {
                return Command::Other {
                    reason: format!("pytest selects tests by expression ({w}), which fmtool does not evaluate"),
                };
            }
            if w == "--lf"
                || w == "--last-failed"
                || w == "--ff"
                || w == "--sw"
                || w == "--stepwise"
                || w == "--collect-only"
                || w == "--co"
            {
                return Command::Other { reason: format!("pytest's {w} depends on earlier runs or runs nothing") };
            }
            args.push(w.clone());
            if PYTEST_VALUE_OPTIONS.contains(&w.as_str())
                && !w.contains('=')
                && let Some(v) = words.get(i + 1)
            {
                args.push(v.clone());
                i += 1;
            }
        } else if w == "." || w == "./" {
            // The repo root: what pytest collects without arguments.
        } else if let Some((file, func)) = w.split_once("::") {
            nodes.push(TestNode { file: file.trim_start_matches("./").to_string(), function: Some(func.to_string()) });
        } else if w.ends_with(".py") {
            nodes.push(TestNode { file: w.trim_start_matches("./").to_string(), function: None });
        } else {
            return Command::Other { reason: format!("pytest is given `{w}`, which is not a test file or node id") };
        }
        i += 1;
    }
    Command::Pytest { nodes, args }
}

/// How a `setup-command` is understood: see [`Setup`].
pub fn interpret_setup(command: &str) -> Setup {
    let words = match split_words(command.trim()) {
        Ok(w) => w,
        Err(reason) => return Setup::Other { reason },
    };
    if words.is_empty() {
        return Setup::Empty;
    }
    let ws: Vec<&str> = words.iter().map(String::as_str).collect();
    let rest = match ws.as_slice() {
        ["pip" | "pip3", "install", rest @ ..] => rest,
        ["python" | "python3", "-m", "pip", "install", rest @ ..] => rest,
        _ => return Setup::Other { reason: format!("it runs `{}`, not `pip install`", words.join(" ")) },
    };
    let mut packages = Vec::new();
    let mut requirements = Vec::new();
    let mut it = rest.iter();
    while let Some(w) = it.next() {
        match *w {
            "-r" | "--requirement" | "-e" | "--editable" | "-c" | "--constraint" => {
                return Setup::Other {
                    reason: format!("pip installs from a file or folder ({w}), which fmtool does not read"),
                };
            }
            "-i" | "--index-url" | "--extra-index-url" | "-f" | "--find-links" | "--target" | "-t" | "--prefix"
            | "--root" => {
                it.next();
            }
            w if w.starts_with('-') => {}
            w => {
                let name: String = w
                    .split(['=', '<', '>', '!', '~', '[', ';', '@', ' '])
                    .next()
                    .unwrap_or(w)
                    .trim()
                    .to_ascii_lowercase()
                    .replace('_', "-");
                if name.is_empty() || name.contains('/') || name.ends_with(".whl") || name.ends_with(".tar.gz") {
                    return Setup::Other { reason: format!("pip installs `{w}`, which is not a package name") };
                }
                packages.push(name);
                requirements.push(w.to_string());
            }
        }
    }
    Setup::PipInstall { packages, requirements }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(file: &str, f: Option<&str>) -> TestNode {
        TestNode { file: file.into(), function: f.map(str::to_string) }
    }

    #[test]
    fn pytest_forms() {
        assert_eq!(
            interpret("pytest model_test.py::test_relu"),
            Command::Pytest { nodes: vec![node("model_test.py", Some("test_relu"))], args: vec![] }
        );
        assert_eq!(
            interpret("python3 -m pytest -v --tb=short -p no:cacheprovider model_test.py"),
            Command::Pytest {
                nodes: vec![node("model_test.py", None)],
                args: vec!["-v".into(), "--tb=short".into(), "-p".into(), "no:cacheprovider".into()]
            }
        );
        assert_eq!(
            interpret("  py.test -q -x model_test.py::test_acc_80 model_test.py::test_acc_82 "),
            Command::Pytest {
                nodes: vec![node("model_test.py", Some("test_acc_80")), node("model_test.py", Some("test_acc_82"))],
                args: vec!["-q".into(), "-x".into()]
            }
        );
        assert_eq!(interpret("python -m pytest"), Command::Pytest { nodes: vec![], args: vec![] });
        assert_eq!(interpret("pytest ."), Command::Pytest { nodes: vec![], args: vec![] });
        assert_eq!(
            interpret("pytest 'model_test.py::test_relu'"),
            Command::Pytest { nodes: vec![node("model_test.py", Some("test_relu"))], args: vec![] }
        );
    }

    #[test]
    fn a_node_id_alone_is_not_found() {
        assert_eq!(
            interpret("model_test.py::test_softmax"),
            Command::NotFound { program: "model_test.py::test_softmax".into() }
        );
        assert_eq!(interpret("pytset model_test.py"), Command::NotFound { program: "pytset".into() });
        assert_eq!(interpret(""), Command::Empty);
        assert_eq!(interpret("   "), Command::Empty);
    }

    #[test]
    fn shell_syntax_is_other() {
        for c in [
            "pip install pytest && pytest",
            "pytest; echo done",
            "pytest | tee log",
            "pytest $(ls)",
            "cd tests",
            "cd tests && pytest",
            "pytest 'unclosed",
            "FOO=1 pytest",
            "pytest -k relu",
            "./run.sh",
            "python nn_predict.py",
            "pytest > out.txt",
            "pytest tests/",
        ] {
            assert!(matches!(interpret(c), Command::Other { .. }), "{c}: {:?}", interpret(c));
        }
        let Command::Other { reason } = interpret("pytest && echo ok") else { panic!() };
        assert!(reason.contains("&&"), "{reason}");
    }

    #[test]
    fn setup_commands() {
        assert_eq!(
            interpret_setup("pip3 install pytest pandas argparse"),
            Setup::PipInstall {
                packages: vec!["pytest".into(), "pandas".into(), "argparse".into()],
                requirements: vec!["pytest".into(), "pandas".into(), "argparse".into()]
            }
        );
        assert_eq!(
            interpret_setup("python -m pip install -q --upgrade 'numpy==1.26' Scikit_Learn"),
            Setup::PipInstall {
                packages: vec!["numpy".into(), "scikit-learn".into()],
                requirements: vec!["numpy==1.26".into(), "Scikit_Learn".into()]
            }
        );
        assert_eq!(interpret_setup(""), Setup::Empty);
        assert!(matches!(interpret_setup("pip install -r requirements.txt"), Setup::Other { .. }));
        assert!(matches!(interpret_setup("sudo apt-get install -y python3-numpy"), Setup::Other { .. }));
    }

    #[test]
    fn javascript_number_parsing() {
        assert_eq!(js_parse_float("10"), Some(10.0));
        assert_eq!(js_parse_float(" 2.5min"), Some(2.5));
        assert_eq!(js_parse_float("1e1"), Some(10.0));
        assert_eq!(js_parse_float("ten"), None);
        assert_eq!(js_parse_float("."), None);
        assert_eq!(js_parse_int("2.9"), Some(2));
        assert_eq!(js_parse_int("50 points"), Some(50));
        assert_eq!(js_parse_int("x"), None);
    }

    #[test]
    fn command_grader_owners_and_versions() {
        assert!(is_command_grader("classroom-resources/autograding-command-grader@v1"));
        assert!(is_command_grader("education/autograding-command-grader@main"));
        assert!(!is_command_grader("classroom-resources/autograding-grading-reporter@v1"));
        assert!(!is_command_grader("actions/checkout@v4"));
    }

    const AS_DISTRIBUTED: &str = include_str!("../../tests/fixtures/student/workflows/classroom.yml");
    const FIXED: &str = include_str!("../../tests/fixtures/student/workflows/classroom_fixed.yml");

    #[test]
    fn the_course_workflow_as_distributed() {
        let wf = parse_workflow(".github/workflows/classroom.yml", AS_DISTRIBUTED).unwrap();
        assert_eq!(wf.name.as_deref(), Some("Autograding Tests"));
        assert_eq!(wf.steps.len(), 11);
        assert_eq!(wf.max_total(), 100);
        let first = &wf.steps[0];
        assert_eq!(first.id.as_deref(), Some("model-inference"));
        assert_eq!(first.test_name.as_deref(), Some("Model Inference"));
        assert_eq!(first.setup_command.as_deref(), Some("pip3 install pytest pandas argparse"));
        assert_eq!(
            (first.max_score, first.timeout_minutes, first.line, first.job.as_str()),
            (50, 10.0, 14, "run-autograding-tests")
        );
        // `setup-command:` with nothing after it is YAML null: no setup.
        assert_eq!(wf.steps[1].setup_command, None);
        let softmax = &wf.steps[2];
        assert_eq!((softmax.index, softmax.line, softmax.max_score), (2, 32, 10));
        assert_eq!(
            interpret(softmax.command.as_deref().unwrap()),
            Command::NotFound { program: "model_test.py::test_softmax".into() }
        );
        let acc90 = &wf.steps[8];
        assert_eq!(acc90.title(), "Accuracy >= 90");
        assert_eq!(acc90.command.as_deref(), Some("pytest model_test.py::test_acc_80"));
        let scores: Vec<u64> = wf.steps.iter().map(|s| s.max_score).collect();
        assert_eq!(scores, [50, 10, 10, 10, 2, 2, 2, 3, 3, 4, 4]);
        assert!(wf.notes.is_empty(), "{:?}", wf.notes);
    }

    #[test]
    fn the_corrected_workflow() {
        let wf = parse_workflow("classroom_fixed.yml", FIXED).unwrap();
        assert_eq!(wf.steps.len(), 11);
        assert_eq!(
            interpret(wf.steps[2].command.as_deref().unwrap()),
            Command::Pytest { nodes: vec![node("model_test.py", Some("test_softmax"))], args: vec![] }
        );
        assert_eq!(wf.steps[8].command.as_deref(), Some("pytest model_test.py::test_acc_90"));
    }

    #[test]
    fn quoted_numbers_and_other_owners() {
        let text = "jobs:\n  a:\n    steps:\n      - uses: education/autograding-command-grader@v1\n        with:\n          command: pytest\n          timeout: '2.5'\n          max-score: \"7\"\n      - run: echo hi\n  b:\n    steps:\n      - id: x\n        uses: classroom-resources/autograding-command-grader@main\n        with: {command: pytest, max-score: ten, timeout: soon}\n";
        let wf = parse_workflow("w.yml", text).unwrap();
        assert_eq!(wf.steps.len(), 2);
        assert_eq!((wf.steps[0].timeout_minutes, wf.steps[0].max_score, wf.steps[0].line), (2.5, 7, 4));
        assert_eq!(
            (wf.steps[1].job.as_str(), wf.steps[1].index, wf.steps[1].max_score, wf.steps[1].title()),
            ("b", 1, 0, "x".to_string())
        );
        assert_eq!(wf.notes.len(), 2, "{:?}", wf.notes);
        assert!(wf.notes[0].1.contains("timeout `soon`"), "{:?}", wf.notes);
    }

    #[test]
    fn hostile_yaml_is_an_error_not_a_panic() {
        let mut bomb =
            String::from("jobs:\n  a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
        for (prev, next) in
            ["a", "b", "c", "d", "e", "f", "g", "h"].iter().zip(["b", "c", "d", "e", "f", "g", "h", "i"])
        {
            bomb.push_str(&format!("  {next}: &{next} [{}]\n", vec![format!("*{prev}"); 9].join(",")));
        }
        let e = parse_workflow("bomb.yml", &bomb).unwrap_err();
        assert!(e.message.contains("alias bomb"), "{}", e.message);

        let big = format!("name: x\n# {}\n", "a".repeat(2 * 1024 * 1024));
        let e = parse_workflow("big.yml", &big).unwrap_err();
        assert!(e.message.contains("1 MiB"), "{}", e.message);

        let e = parse_workflow("c.yml", "jobs: [unclosed\n  steps: {\n").unwrap_err();
        assert!(e.message.starts_with("c.yml: not valid YAML"), "{}", e.message);
        assert!(e.hint.is_some());

        let e = parse_workflow("s.yml", "jobs:\n  a:\n    steps: pytest model_test.py\n").unwrap_err();
        assert!(e.message.contains("line 3") && e.message.contains("must be a list"), "{}", e.message);

        let e = parse_workflow("l.yml", "- a\n- b\n").unwrap_err();
        assert!(e.message.contains("not a list"), "{}", e.message);
        assert!(parse_workflow("e.yml", "").is_err());
        // A workflow without jobs or without grader steps has no steps (and is not an error).
        assert_eq!(parse_workflow("n.yml", "name: CI\non: push\n").unwrap().steps, vec![]);
    }

    #[test]
    fn find_workflows_reads_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(find_workflows(dir.path()).unwrap(), vec![]);
        let wdir = dir.path().join(WORKFLOW_DIR);
        std::fs::create_dir_all(&wdir).unwrap();
        std::fs::write(wdir.join("classroom.yml"), AS_DISTRIBUTED).unwrap();
        std::fs::write(wdir.join("ci.yaml"), "name: CI\njobs: {a: {steps: [{run: cargo test}]}}\n").unwrap();
        std::fs::write(wdir.join("notes.txt"), "autograding-command-grader").unwrap();
        // A broken file that is not a grader workflow is not fmtool's business.
        std::fs::write(wdir.join("broken.yml"), "jobs: [\n").unwrap();
        let found = find_workflows(dir.path()).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].file, ".github/workflows/classroom.yml");
        assert_eq!(found[0].steps.len(), 11);

        std::fs::write(wdir.join("huge.yml"), "a".repeat(MAX_WORKFLOW_BYTES as usize + 1)).unwrap();
        let e = find_workflows(dir.path()).unwrap_err();
        assert!(e.message.contains(".github/workflows/huge.yml"), "{}", e.message);
    }
}
