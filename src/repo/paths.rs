//! Paths the grader's runner lacks: string literals in `model_test.py` and `nn_predict.py` that
//! name a place on the student's own computer (a Windows drive, a home folder, Colab's /content).
//! The runner is Ubuntu with the repository checked out at /home/runner/work/<repo>/<repo>, so
//! opening such a path fails there, and with it every step whose tests reach the line. An error
//! only where the tests surely reach it; a warning where they may not (a branch, an uncalled
//! function, `if __name__ == "__main__":`), so that the hook never blocks a commit the grader passes.

use super::lint::GRADED_FUNCTIONS;
use super::pysrc::{Block, CodeLine, code_lines, function_of, literals};
use crate::checks::{Code, Finding, Location, Severity};
use std::collections::BTreeSet;

/// Where the grader's runner has the repository; the tests run from there.
pub const RUNNER_CHECKOUT: &str = "/home/runner/work/<repo>/<repo>";

/// The top-level folders of the runner's Ubuntu: an absolute path under one of them may exist
/// there (`/usr/lib`, `/tmp/x` written by the tests, `/dev/null`).
const RUNNER_TOP: &[&str] = &[
    "bin",
    "boot",
    "dev",
    "etc",
    "home",
    "lib",
    "lib32",
    "lib64",
    "libx32",
    "lost+found",
    "media",
    "mnt",
    "opt",
    "proc",
    "root",
    "run",
    "sbin",
    "snap",
    "srv",
    "sys",
    "tmp",
    "usr",
    "var",
];

/// Which of the course's Python files is read: it decides which functions the tests run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `nn_predict.py`: model_test.py imports it, and its tests call relu, softmax and nn_inference.
    NnPredict,
    /// `model_test.py`: pytest imports it and runs its `test*` functions.
    ModelTest,
}

impl Role {
    /// The file's name.
    fn file(self) -> &'static str {
        match self {
            Role::NnPredict => "nn_predict.py",
            Role::ModelTest => "model_test.py",
        }
    }

    /// Whether the grader's tests call `function` themselves.
    fn is_root(self, function: &str) -> bool {
        match self {
            Role::NnPredict => GRADED_FUNCTIONS.contains(&function),
            Role::ModelTest => function.starts_with("test"),
        }
    }
}

/// The place on the student's computer that an absolute path names, in words; `None` for a path
/// the runner has or may have (a relative path, `/usr/...`, `/tmp/...`, `/home/runner/...`).
pub fn foreign_place(path: &str) -> Option<&'static str> {
    let b = path.as_bytes();
    if b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && matches!(b[2], b'\\' | b'/') {
        return Some("a Windows drive");
    }
    if path.starts_with(r"\\") {
        return Some("a Windows network share");
    }
    if path.starts_with("~/") || path.starts_with(r"~\") {
        return Some("your home folder (~, which open() does not expand)");
    }
    let mut parts = path.strip_prefix('/')?.split('/').filter(|p| !p.is_empty());
    let top = parts.next()?;
    let next = parts.next();
    if !top.chars().all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '+')) {
        return None;
    }
    match (top, next) {
        ("home", Some("runner") | None) => None,
        ("home" | "Users", Some(_)) => Some("a home folder on your computer"),
        ("content", _) => Some("Google Colab's file system"),
        ("kaggle", _) => Some("Kaggle's file system"),
        ("mnt" | "media" | "Volumes", Some(_)) => Some("a drive mounted on your computer"),
        ("root", Some(_)) => Some("the root user's home folder, which the runner's user cannot read"),
        (t, _) if RUNNER_TOP.contains(&t) => None,
        // One component alone (`'/predict'`) is more likely no file at all.
        (_, Some(_)) => Some("a folder the runner does not have"),
        (_, None) => None,
    }
}

/// The path's longest tail, of whole folders, that names something in the repository
/// (`model/fashion_mnist.npz` for `D:\hw\model\fashion_mnist.npz`): what to write instead.
fn in_repository(path: &str, in_repo: &dyn Fn(&str) -> bool) -> Option<String> {
    let parts: Vec<&str> =
        path.split(['/', '\\']).filter(|p| !matches!(*p, "" | "." | "~") && !p.ends_with(':')).collect();
    if parts.contains(&"..") {
        return None;
    }
    (0..parts.len()).map(|k| parts[k..].join("/")).find(|c| in_repo(c))
}

/// Where a piece of code is, as far as the grader's steps go.
#[derive(Debug, Clone, PartialEq)]
enum Place {
    /// Under `if __name__ == "__main__":`, which pytest never runs.
    Main,
    /// In `function` (`None`: the module's own code); `conditional` when an `if`, `try` or
    /// `except` inside the function holds it.
    Code { function: Option<String>, conditional: bool },
}

fn place(role: Role, blocks: &[Block]) -> Place {
    if blocks.contains(&Block::Main) {
        return Place::Main;
    }
    let (function, inner) = function_of(blocks);
    // A test that catches a failure still fails its assert (the course's test_inference catches
    // every exception and then finds acc None), so a `try` in a test decides nothing.
    let try_decides = !(role == Role::ModelTest && function.is_some_and(|f| role.is_root(f)));
    let conditional =
        inner.iter().any(|b| matches!(b, Block::Branch | Block::Except) || (try_decides && *b == Block::Try));
    Place::Code { function: function.map(str::to_string), conditional }
}

/// Byte offsets of `word` in `text` as a whole name (no letter, digit or `_` around it), with
/// whether a `.` comes before it (an attribute, not a name of this file).
fn names_at<'a>(text: &'a str, word: &'a str) -> impl Iterator<Item = (usize, bool)> + 'a {
    let is_name = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word).filter_map(move |(i, _)| {
        let before = text[..i].trim_end().chars().last();
        let clear = !text[..i].ends_with(is_name) && !text[i + word.len()..].starts_with(is_name);
        clear.then_some((i, before == Some('.')))
    })
}

/// The functions of a file that the grader's tests run: those they call (`Role::is_root`) and
/// those called from there or from the module's own code, surely (on a line no branch holds) or
/// maybe.
struct Reach {
    sure: BTreeSet<Option<String>>,
    maybe: BTreeSet<Option<String>>,
}

impl Reach {
    fn new(role: Role, lines: &[CodeLine]) -> Reach {
        let defs: BTreeSet<&str> = lines
            .iter()
            .filter_map(|l| match &l.opens {
                Some(Block::Def(n)) if !n.is_empty() => Some(n.as_str()),
                _ => None,
            })
            .collect();
        // (caller, callee, surely): a callee named without a call (`map(helper, x)`) runs maybe.
        let mut edges: Vec<(Option<String>, String, bool)> = Vec::new();
        for l in lines {
            for callee in &defs {
                for (at, attribute) in names_at(&l.bare, callee) {
                    let called = l.bare[at + callee.len()..].trim_start().starts_with('(');
                    let blocks = l.blocks_at(l.code_at(at));
                    if let (false, Place::Code { function, conditional }) = (attribute, place(role, &blocks))
                        && function.as_deref() != Some(callee)
                    {
                        edges.push((function, callee.to_string(), called && !conditional));
                    }
                }
            }
        }
        let roots: Vec<Option<String>> =
            std::iter::once(None).chain(defs.iter().filter(|d| role.is_root(d)).map(|d| Some(d.to_string()))).collect();
        let closure = |sure_only: bool| {
            let mut seen: BTreeSet<Option<String>> = roots.iter().cloned().collect();
            let mut todo = roots.clone();
            while let Some(f) = todo.pop() {
                for (_, callee, _) in edges.iter().filter(|(from, _, sure)| *from == f && (*sure || !sure_only)) {
                    if seen.insert(Some(callee.clone())) {
                        todo.push(Some(callee.clone()));
                    }
                }
            }
            seen
        };
        Reach { sure: closure(true), maybe: closure(false) }
    }

    /// Whether the tests surely run code at `place`.
    fn surely(&self, place: &Place) -> bool {
        matches!(place, Place::Code { function, conditional: false } if self.sure.contains(function))
    }
}

/// The name a line assigns to, when it assigns to one plain name (`NAME = ...`, `NAME: str = ...`).
fn assigned_name(code: &str) -> Option<&str> {
    let end = code.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(code.len());
    let name = &code[..end];
    let rest = code[end..].trim_start();
    let rest = match rest.strip_prefix(':') {
        Some(annotated) => &annotated[annotated.find('=')?..],
        None => rest,
    };
    let plain = rest.starts_with('=') && !rest.starts_with("==");
    (plain && !name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit())).then_some(name)
}

/// Whether a line's calls (in its blanked code) only build a path (`os.path.join(...)`,
/// `Path(...)`) and open nothing, so that a path it assigns fails only where it is used.
fn only_builds_a_path(bare: &str) -> bool {
    const BUILDERS: &[&str] = &[
        "join",
        "Path",
        "PurePath",
        "PosixPath",
        "WindowsPath",
        "PureWindowsPath",
        "abspath",
        "normpath",
        "expanduser",
        "realpath",
        "dirname",
        "basename",
        "str",
        "format",
        "replace",
    ];
    let mut calls = bare.match_indices('(').map(|(i, _)| {
        let before = bare[..i].trim_end();
        let start = before
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
            .map_or(0, |(j, c)| j + c.len_utf8());
        &before[start..]
    });
    // A bracket after no name is grouping (or a tuple), not a call.
    calls.all(|name| name.is_empty() || BUILDERS.contains(&name))
}

/// Why the grader's steps fail on a path at a line (`Ok`: where the tests reach it), or why
/// they do not (`Err`).
fn verdict(role: Role, lines: &[CodeLine], reach: &Reach, line: &CodeLine, at: usize) -> Result<String, String> {
    let (function, conditional) = match place(role, &line.blocks_at(at)) {
        Place::Main => {
            return Err("it is inside `if __name__ == \"__main__\":`, which the grader's tests never run".into());
        }
        Place::Code { function, conditional } => (function, conditional),
    };
    let name = function.as_deref().map(|f| format!("{f}()"));
    if !reach.maybe.contains(&function) {
        return Err(format!("it is inside {}, which the grader's tests never call", name.unwrap_or_default()));
    }
    if !reach.sure.contains(&function) {
        return Err(format!("the grader's tests call {} only under a condition", name.unwrap_or_default()));
    }
    if conditional {
        return Err("it is inside an `if`, `try` or `except` block, so whether the runner gets there depends on the branch it takes".into());
    }
    let b = &line.bare;
    if ["exists(", "isfile(", "isdir(", "is_file(", "is_dir("].iter().any(|f| b.contains(f)) || b.contains("sys.path") {
        return Err("the line only asks whether the path exists, or adds it to sys.path, which fails nothing".into());
    }
    let reached_here = match (&name, role) {
        (Some(f), _) if role.is_root(function.as_deref().unwrap_or("")) => format!("the grader's tests run {f}"),
        (Some(f), _) => format!("the grader's tests reach {f}"),
        (None, Role::NnPredict) => "model_test.py imports nn_predict.py, running this line, for every step".into(),
        (None, Role::ModelTest) => "pytest runs this line whenever it loads model_test.py".into(),
    };
    let Some(var) = assigned_name(line.code).filter(|_| only_builds_a_path(b)) else { return Ok(reached_here) };
    // A path kept in a name fails where the name is used.
    let used = lines.iter().filter(|l| l.number != line.number).find_map(|l| {
        names_at(l.code, var).map(|(i, attribute)| (attribute, place(role, &l.blocks_at(i)))).find_map(
            |(attribute, p)| match p {
                Place::Code { function, .. } if !attribute && reach.surely(&p) => Some((function, l.number)),
                _ => None,
            },
        )
    });
    match used {
        Some((Some(f), n)) => Ok(format!("{f}() uses {var} on line {n}, which the grader's tests run")),
        Some((None, n)) => Ok(format!("line {n} uses {var} when the tests load {}", role.file())),
        None => Err(format!("{var} is not used anywhere the grader's tests surely run")),
    }
}

/// Findings for the string literals in `text` (the file `file`, read as `role`) that name a path
/// on the student's computer: errors where the grader's tests surely open them, warnings
/// elsewhere. `in_repo` says whether a relative path names something in the repository.
pub fn runner_missing_paths(file: &str, role: Role, text: &str, in_repo: &dyn Fn(&str) -> bool) -> Vec<Finding> {
    let lines = code_lines(text);
    let reach = Reach::new(role, &lines);
    let mut out = Vec::new();
    for line in &lines {
        for lit in literals(line.code) {
            let path = lit.value();
            let what = match foreign_place(&path) {
                Some(w) => w,
                // `model\fashion_mnist.npz`: a file of the repository, named the Windows way.
                None if path.contains('\\') && in_repo(&path.replace('\\', "/")) => {
                    "written with Windows' \\ between folders, which Linux reads as part of a file name"
                }
                None => continue,
            };
            let shown = crate::text::clip(line.code, 100);
            let path_shown = crate::text::clip(&path, 200);
            let runner = format!("the grader's runner (Ubuntu, your repository at {RUNNER_CHECKOUT}) has no such path");
            let (severity, message) = match verdict(role, &lines, &reach, line, lit.at) {
                Ok(reached) => (
                    Severity::Error,
                    format!(
                        "`{shown}` names {path_shown}, {what}: {runner}, and {reached}, so the steps that open it fail"
                    ),
                ),
                Err(why) => (
                    Severity::Warning,
                    format!(
                        "`{shown}` names {path_shown}, {what}: {runner}; {why}, so it costs no points, but the code fails wherever it runs outside your computer"
                    ),
                ),
            };
            let instead = in_repository(&path, in_repo).unwrap_or_else(|| "model/fashion_mnist.npz".into());
            out.push(Finding::new(Code::RunnerMissingPath, severity, Location::line(file, line.number), message).hint(
                format!(
                    "write the path relative to the repository, with / between folders (the tests run from its root): '{instead}'"
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> bool {
        false
    }

    /// (line, severity) of each finding.
    fn found(role: Role, text: &str) -> Vec<(usize, Severity)> {
        runner_missing_paths("f.py", role, text, &none).iter().map(|f| (f.location.line.unwrap(), f.severity)).collect()
    }

    #[test]
    fn places_the_runner_lacks() {
        for p in [
            r"D:\hw\model\fashion_mnist.npz",
            "C:/Users/amy/model.json",
            r"\\server\share\model.npz",
            "/home/amy/hw/model/fashion_mnist.npz",
            "/Users/amy/hw/model.json",
            "/content/drive/MyDrive/hw/model",
            "/mnt/c/Users/amy/hw",
            "/kaggle/working/model.npz",
            "/root/hw/model.npz",
            "/data/hw/model.npz",
            "~/hw/model.npz",
        ] {
            assert!(foreign_place(p).is_some(), "{p}");
        }
        for p in [
            "model/fashion_mnist.npz",
            "/tmp/out.npz",
            "/usr/share/dict/words",
            "/dev/null",
            "/home/runner/work/hw/hw/model",
            "/home",
            "/predict",
            "/",
            "",
            "a:b",
            "C:",
        ] {
            assert_eq!(foreign_place(p), None, "{p}");
        }
    }

    #[test]
    fn the_hint_names_the_file_of_the_repository() {
        let repo = |p: &str| p == "model/fashion_mnist.npz" || p == "model";
        assert_eq!(in_repository(r"D:\hw\model\fashion_mnist.npz", &repo).as_deref(), Some("model/fashion_mnist.npz"));
        assert_eq!(in_repository("/content/drive/MyDrive/hw/model", &repo).as_deref(), Some("model"));
        assert_eq!(in_repository("/home/amy/notes.txt", &repo), None);
        // Nothing outside the repository is looked at.
        assert_eq!(in_repository("/home/amy/../model", &|_: &str| true), None);
    }

    #[test]
    fn errors_where_the_tests_surely_reach_the_line() {
        let text = "import numpy as np\nW = np.load('/home/amy/w.npz')\n\ndef relu(x):\n    np.load(r'C:\\w.npz')\n    return x\n\ndef helper():\n    return np.load('/Users/amy/w.npz')\n\ndef nn_inference(a, w, d):\n    helper()\n    return d\n\ndef unused():\n    return np.load('/home/amy/w.npz')\n";
        assert_eq!(
            found(Role::NnPredict, text),
            [(2, Severity::Error), (5, Severity::Error), (9, Severity::Error), (16, Severity::Warning)]
        );
    }

    #[test]
    fn warnings_where_the_tests_may_not_go() {
        let text = "import os\nimport numpy as np\n\ndef nn_inference(a, w, d):\n    if os.path.exists('/content/drive'):\n        w = np.load('/content/drive/w.npz')\n    try:\n        w = np.load('C:/w.npz')\n    except OSError:\n        w = np.load('D:/w.npz')\n    if d is None: maybe()\n    return d\n\ndef maybe():\n    np.load('/home/amy/w.npz')\n\nif __name__ == '__main__':\n    np.load('/content/w.npz')\n";
        assert_eq!(
            found(Role::NnPredict, text),
            [
                (5, Severity::Warning),
                (6, Severity::Warning),
                (8, Severity::Warning),
                (10, Severity::Warning),
                (15, Severity::Warning),
                (18, Severity::Warning)
            ]
        );
        let f = runner_missing_paths("nn_predict.py", Role::NnPredict, text, &none);
        assert!(f[5].message.contains("__main__") && f[5].message.contains("costs no points"), "{}", f[5].message);
        assert!(f[0].message.contains("only asks whether the path exists"), "{}", f[0].message);
    }

    #[test]
    fn a_path_in_a_name_fails_where_the_name_is_used() {
        // The course's model_test.py, its weights path made absolute: test_inference opens it
        // inside its `try`, whose failure the test still fails on.
        let text = "import numpy as np\nMODEL_WEIGHTS_PATH = 'D:\\\\hw\\\\model\\\\fashion_mnist.npz'\nOLD = '/home/amy/old.npz'\nLATER = '/home/amy/later.npz'\n\ndef test_inference():\n    acc = None\n    try:\n        w = np.load(MODEL_WEIGHTS_PATH)\n        acc = 1\n    except Exception as e:\n        print(e)\n    assert acc != None\n\nif __name__ == '__main__':\n    np.load(LATER)\n";
        let f = runner_missing_paths("model_test.py", Role::ModelTest, text, &|p: &str| p == "model/fashion_mnist.npz");
        let got: Vec<(usize, Severity)> = f.iter().map(|f| (f.location.line.unwrap(), f.severity)).collect();
        assert_eq!(got, [(2, Severity::Error), (3, Severity::Warning), (4, Severity::Warning)]);
        let m = &f[0].message;
        assert!(m.contains(r"D:\hw\model\fashion_mnist.npz") && m.contains("a Windows drive"), "{m}");
        assert!(
            m.contains("/home/runner/work/<repo>/<repo>")
                && m.contains("test_inference() uses MODEL_WEIGHTS_PATH on line 9"),
            "{m}"
        );
        assert_eq!(
            f[0].hint.as_deref(),
            Some(
                "write the path relative to the repository, with / between folders (the tests run from its root): 'model/fashion_mnist.npz'"
            )
        );
        assert!(f[1].message.contains("OLD is not used"), "{}", f[1].message);
    }

    #[test]
    fn windows_separators_in_a_relative_path() {
        let text = "import numpy as np\nW = np.load('model\\\\fashion_mnist.npz')\nR = '\\\\d+'\n";
        let f = runner_missing_paths("nn_predict.py", Role::NnPredict, text, &|p: &str| p == "model/fashion_mnist.npz");
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!((f[0].location.line, f[0].severity), (Some(2), Severity::Error));
        assert!(f[0].message.contains("Linux reads as part of a file name"), "{}", f[0].message);
    }

    /// Student files need not parse: any mix of quotes, brackets, backslashes, headers and
    /// non-ASCII text is read without a panic.
    #[test]
    fn odd_text_never_panics() {
        const PIECES: &[&str] = &[
            "'", "\"", "\\", "é", "→", "(", ")", "[", ":", "=", " ", "    ", "\n", "#", "def f", "if x", "try", "r'",
            "f\"", "\"\"\"", "C:\\", "/home/a/", "~/", "np.load(", "W", "__main__", "{",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..3000 {
            let mut text = String::new();
            for _ in 0..40 {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                text.push_str(PIECES[(seed >> 33) as usize % PIECES.len()]);
            }
            for role in [Role::NnPredict, Role::ModelTest] {
                let _ = runner_missing_paths("f.py", role, &text, &|_: &str| true);
            }
        }
    }

    #[test]
    fn comments_docstrings_and_relative_paths_are_no_finding() {
        let text = "# W = np.load('/home/amy/w.npz')\n\"\"\"\nnp.load('/home/amy/w.npz')\n\"\"\"\nW = np.load('model/fashion_mnist.npz')  # was '/home/amy/w.npz'\n";
        assert_eq!(found(Role::NnPredict, text), []);
    }
}
