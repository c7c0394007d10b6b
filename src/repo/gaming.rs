//! The ways a repository can make the grader award what its code does not earn, found by reading
//! (nothing runs): pytest configuration that changes what the workflow's `pytest` collects or how
//! its tests end, a `conftest.py`, start-up hooks, modules that shadow NumPy, pytest or the
//! standard library, code in `nn_predict.py` (and the repository's modules it imports) that ends
//! the process, patches a library, reads the test set or touches `test_acc.txt`, and a committed
//! `test_acc.txt`. Reading is line by line and forgiving: an obfuscated trick escapes it, which is
//! why the workflow is also run as GitHub runs it (autograde's real run) and compared.

use super::integrity::{Departure, Effect};
use crate::checks::Code;
use std::path::Path;

const CONFIGS: [(&str, &[&str]); 4] = [
    ("pytest.ini", &["pytest"]),
    ("pyproject.toml", &["tool.pytest.ini_options", "tool.pytest"]),
    ("tox.ini", &["pytest", "tool:pytest"]),
    ("setup.cfg", &["tool:pytest"]),
];

/// pytest options that change which tests run or how they end.
const OUTCOME_KEYS: [&str; 10] = [
    "addopts",
    "python_files",
    "python_classes",
    "python_functions",
    "pythonpath",
    "usefixtures",
    "required_plugins",
    "xfail_strict",
    "strict_xfail",
    "strict",
];

/// Modules the tests import after pytest puts the repository on `sys.path`: a file of the same
/// name in the repository is imported instead.
const SHADOWS_GRADE: [&str; 6] = ["numpy", "gzip", "pytest", "_pytest", "pluggy", "pandas"];

/// Everything found in the repository at `root`.
pub fn gaming(root: &Path) -> Vec<Departure> {
    let mut out = Vec::new();
    for (file, sections) in CONFIGS {
        if let Some(text) = read(root, file) {
            out.extend(pytest_config(file, &text, sections));
        }
    }
    if let Some(text) = read(root, "conftest.py") {
        out.push(conftest(&text));
        out.extend(scan_code("conftest.py", &text));
    }
    startup_hooks(root, "", 0, &mut out);
    out.extend(shadow_modules(root));
    if let Some(text) = read(root, "nn_predict.py") {
        out.extend(scan_code("nn_predict.py", &text));
        for m in own_imports(root, &text) {
            let file = format!("{m}.py");
            if let Some(t) = read(root, &file) {
                out.extend(scan_code(&file, &t));
            }
        }
    }
    if root.join("test_acc.txt").is_file() {
        out.push(
            Departure::new(
                Code::CommittedTestAcc,
                Effect::Suspicious,
                "test_acc.txt",
                None,
                "test_acc.txt is committed: the accuracy steps read it when test_inference has not written its own".into(),
            )
            .hint("delete test_acc.txt from the repository (git rm test_acc.txt); test_inference writes it when the workflow runs"),
        );
    }
    out
}

fn read(root: &Path, rel: &str) -> Option<String> {
    let path = root.join(rel);
    if !path.is_file() {
        return None;
    }
    crate::fsguard::read(&path, crate::fsguard::budget::SOURCE).ok().map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// The options of a pytest configuration file's pytest section (`key = value` or `key: value`,
/// with indented continuation lines), with their 1-based lines.
fn ini_options(text: &str, sections: &[&str]) -> Vec<(usize, String, String)> {
    let mut out: Vec<(usize, String, String)> = Vec::new();
    let mut inside = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') || trimmed.starts_with(';') || trimmed.is_empty() {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            inside = sections.contains(&name.trim());
            continue;
        }
        if !inside {
            continue;
        }
        if line.starts_with([' ', '\t'])
            && let Some(last) = out.last_mut()
        {
            last.2.push(' ');
            last.2.push_str(trimmed);
            continue;
        }
        if let Some(at) = trimmed.find(['=', ':']) {
            let key = trimmed[..at].trim().trim_matches('"').to_string();
            let value = trimmed[at + 1..].trim().trim_matches(['"', '\'', '[', ']']).to_string();
            out.push((i + 1, key, value));
        }
    }
    out
}

fn pytest_config(file: &str, text: &str, sections: &[&str]) -> Vec<Departure> {
    ini_options(text, sections)
        .into_iter()
        .map(|(line, key, value)| {
            let warns_as_errors = key == "filterwarnings" && value.contains("error");
            let changes = OUTCOME_KEYS.contains(&key.as_str()) || warns_as_errors;
            let what = if key == "addopts" {
                format!("pytest adds `{}` to every command the workflow runs", crate::text::clip(&value, 120))
            } else {
                format!("pytest runs every step with `{key} = {}`", crate::text::clip(&value, 120))
            };
            let effect = if changes { Effect::ChangesTheGrade } else { Effect::Suspicious };
            Departure::new(
                Code::PytestConfig,
                effect,
                file,
                Some(line),
                format!("{what} ({file} configures the grader's pytest)"),
            )
            .hint(format!("remove `{key}` from {file}: the course's tests run with pytest's defaults"))
        })
        .collect()
}

/// `conftest.py` at the root: pytest loads it before collecting `model_test.py`. Hooks
/// (`pytest_*` functions) and autouse fixtures act on every test; plain fixtures are only odd.
fn conftest(text: &str) -> Departure {
    let mut hooks: Vec<(usize, String)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim_start();
        let def = l.strip_prefix("def ").or_else(|| l.strip_prefix("async def "));
        if let Some(name) = def.map(|r| r.split(|c: char| !(c.is_alphanumeric() || c == '_')).next().unwrap_or(""))
            && name.starts_with("pytest_")
        {
            hooks.push((i + 1, name.to_string()));
        }
        if l.contains("autouse=True") || l.starts_with("pytest_plugins") {
            hooks.push((i + 1, l.split('(').next().unwrap_or(l).trim().to_string()));
        }
    }
    let (effect, line, message) = match hooks.first() {
        Some((line, _)) => (
            Effect::ChangesTheGrade,
            Some(*line),
            format!(
                "conftest.py acts on every test the workflow runs ({})",
                hooks.iter().map(|(_, h)| h.as_str()).collect::<Vec<_>>().join(", ")
            ),
        ),
        None => (Effect::Suspicious, None, "conftest.py is loaded by pytest before the course's tests".into()),
    };
    Departure::new(Code::Conftest, effect, "conftest.py", line, message)
        .hint("delete conftest.py: the course's tests need none")
}

/// `sitecustomize.py`, `usercustomize.py` and `.pth` files, anywhere in the repository (a few
/// folders deep).
fn startup_hooks(root: &Path, rel: &str, depth: usize, out: &mut Vec<Departure>) {
    let Ok(Some(entries)) = crate::fsguard::list_dir(&root.join(rel)) else { return };
    for e in entries.into_iter().take(2000) {
        let Some(name) = e.name.to_str() else { continue };
        let path = if rel.is_empty() { name.to_string() } else { format!("{rel}/{name}") };
        if e.is_dir && depth < 4 && !name.starts_with('.') {
            startup_hooks(root, &path, depth + 1, out);
        } else if e.is_file && (name == "sitecustomize.py" || name == "usercustomize.py" || name.ends_with(".pth")) {
            out.push(
                Departure::new(
                    Code::StartupHook,
                    Effect::Suspicious,
                    &path,
                    None,
                    format!("{path} is code Python runs at start-up when its folder is where Python looks for it"),
                )
                .hint(format!("delete {path}: nothing in the assignment needs it")),
            );
        }
    }
}

/// Root-level modules (`X.py`, or a folder with `__init__.py`: a folder without one is a namespace
/// package, which never wins over a real module) named like NumPy, pytest or the standard library.
fn shadow_modules(root: &Path) -> Vec<Departure> {
    let mut out = Vec::new();
    for m in super::lint::own_modules(root) {
        let file = if root.join(format!("{m}.py")).is_file() {
            format!("{m}.py")
        } else if root.join(&m).join("__init__.py").is_file() {
            format!("{m}/__init__.py")
        } else {
            continue;
        };
        let effect = if SHADOWS_GRADE.contains(&m.as_str()) {
            Effect::ChangesTheGrade
        } else if super::stdlib::is_stdlib(&m) && m != "test" {
            Effect::Suspicious
        } else {
            continue;
        };
        out.push(
            Departure::new(
                Code::ShadowModule,
                effect,
                &file,
                None,
                format!("{file} has the name of the module `{m}`: the tests' `import {m}` may get it instead"),
            )
            .hint(format!("rename {file}: a file of the repository must not be named like a library")),
        );
    }
    out
}

/// The repository's own `.py` modules that `nn_predict.py` imports (one level).
fn own_imports(root: &Path, text: &str) -> Vec<String> {
    let own = super::lint::own_modules(root);
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.trim_start();
        let names: Vec<&str> = if let Some(r) = l.strip_prefix("import ") {
            r.split(',').filter_map(|p| p.split_whitespace().next()).collect()
        } else if let Some(r) = l.strip_prefix("from ") {
            r.split_whitespace().next().into_iter().collect()
        } else {
            continue;
        };
        for n in names {
            let top = n.split('.').next().unwrap_or(n).to_string();
            if top != "nn_predict"
                && own.contains(&top)
                && !out.contains(&top)
                && root.join(format!("{top}.py")).is_file()
            {
                out.push(top);
            }
        }
    }
    out
}

/// True when `code` calls `name(` with `name` not part of a longer name.
fn calls(code: &str, name: &str) -> bool {
    code.match_indices(&format!("{name}("))
        .any(|(i, _)| i == 0 || !code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '.'))
}

/// The names a file binds to NumPy, pytest, the builtins and the modules tests use (`np`,
/// `numpy`, `import numpy as anp` adds `anp`).
fn library_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> =
        ["np", "numpy", "builtins", "__builtins__", "pytest", "_pytest", "sys", "os", "json", "gzip", "math"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    for line in text.lines() {
        let l = super::pysrc::split(line).0.trim();
        if let Some(r) = l.strip_prefix("import ") {
            for part in r.split(',') {
                let w: Vec<&str> = part.split_whitespace().collect();
                if let [module, "as", alias] = w[..]
                    && names.iter().any(|n| n == module.split('.').next().unwrap_or(module))
                {
                    names.push(alias.to_string());
                }
            }
        }
    }
    names
}

/// The tricks in one Python file of the student's, line by line; the body of
/// `if __name__ == "__main__":` is skipped (it never runs under pytest).
fn scan_code(file: &str, text: &str) -> Vec<Departure> {
    let libs = library_names(text);
    let mut out: Vec<Departure> = Vec::new();
    let mut docstrings = super::pysrc::Docstrings::default();
    let mut main_block = false;
    let mut seen: Vec<Code> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if docstrings.inside(raw) {
            continue;
        }
        let (code, bare) = super::pysrc::split(raw);
        let trimmed = code.trim();
        if trimmed.is_empty() {
            continue;
        }
        if !code.starts_with([' ', '\t']) {
            main_block = trimmed.starts_with("if __name__") && trimmed.contains("__main__");
        }
        if main_block {
            continue;
        }
        let line = Some(i + 1);
        let shown = crate::text::clip(trimmed, 100);
        let mut found = |code_: Code, message: String, hint: &str| {
            // One finding per kind and file: the first place says it.
            if !seen.contains(&code_) {
                seen.push(code_);
                out.push(Departure::new(code_, Effect::ChangesTheGrade, file, line, message).hint(hint));
            }
        };
        let bare = bare.trim();
        let ends = ["os._exit", "sys.exit", "exit", "quit", "os.kill", "os.killpg", "os.abort", "signal.raise_signal"]
            .iter()
            .any(|f| calls(bare, f))
            || bare.contains("SystemExit");
        if ends {
            found(
                Code::EndsProcess,
                format!("`{shown}` ends the test process: pytest then exits as the code decides, not as the tests do"),
                "remove it: nn_predict.py defines functions; the tests decide how the process ends",
            );
        }
        if patches(bare, &libs) {
            found(
                Code::PatchesLibrary,
                format!("`{shown}` replaces part of a library the tests use"),
                "remove it: the tests must run with NumPy and Python as they are",
            );
        }
        let lower = trimmed.to_ascii_lowercase();
        if ["t10k", "labels-idx", "images-idx", "load_mnist", "mnist_reader"].iter().any(|p| lower.contains(p)) {
            found(
                Code::ReadsTestSet,
                format!("`{shown}` reads the test set, on which the grader computes your accuracy"),
                "remove it: nn_inference must classify the image it is given from the model alone",
            );
        }
        if lower.contains("test_acc") {
            found(
                Code::TestAccFile,
                format!("`{shown}` touches test_acc.txt, where test_inference writes the accuracy"),
                "remove it: only the course's test_inference writes test_acc.txt",
            );
        }
    }
    out
}

/// An assignment to an attribute or item of a library (`np.sum = ...`, `builtins.print = ...`,
/// `sys.modules['numpy'] = ...`) or a `setattr`/`delattr` on one.
fn patches(code: &str, libs: &[String]) -> bool {
    let lib_target = |target: &str| {
        let t = target.trim();
        libs.iter()
            .any(|l| t.strip_prefix(l.as_str()).is_some_and(|rest| rest.starts_with('.') || rest.starts_with('[')))
    };
    for f in ["setattr(", "delattr("] {
        if let Some(at) = code.find(f)
            && calls(code, &f[..f.len() - 1])
            && lib_target(&format!("{}.", code[at + f.len()..].split(',').next().unwrap_or("")))
        {
            return true;
        }
    }
    // `target = value`, `a = b = value`, `target += value`: every target before the last `=`.
    let bytes = code.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b != b'=' {
            continue;
        }
        let prev = if i > 0 { bytes[i - 1] } else { b' ' };
        let next = bytes.get(i + 1).copied().unwrap_or(b' ');
        if next == b'=' || matches!(prev, b'=' | b'!' | b'<' | b'>') {
            continue;
        }
        let target = code[start..i].trim_end_matches(['+', '-', '*', '/', '|', '&', '%', '^', '@']);
        if target.contains('(') {
            return false;
        }
        if lib_target(target) {
            return true;
        }
        start = i + 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (p, t) in files {
            let path = dir.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, t).unwrap();
        }
        dir
    }

    fn found(files: &[(&str, &str)]) -> Vec<String> {
        let r = repo(files);
        gaming(r.path())
            .iter()
            .map(|d| {
                format!(
                    "{} {} {}",
                    d.code.as_str(),
                    d.place(),
                    if d.effect == Effect::ChangesTheGrade { "!" } else { "?" }
                )
            })
            .collect()
    }

    const HONEST: &str = "import numpy as np\nimport json\n\ndef relu(x):\n    return np.maximum(0, x)  # x = 1\n\ndef softmax(x):\n    e = np.exp(x - np.max(x, axis=-1, keepdims=True))\n    return e / np.sum(e, axis=-1, keepdims=True)\n\nif __name__ == \"__main__\":\n    import sys\n    from utils import mnist_reader\n    x, y = mnist_reader.load_mnist('data/fashion', kind='t10k')\n    sys.exit(0)\n";

    #[test]
    fn honest_code_is_no_finding() {
        assert_eq!(
            found(&[("nn_predict.py", HONEST), ("utils/mnist_reader.py", "import gzip\n"), ("data/x.txt", "")]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn import_time_tricks_are_named_with_their_line() {
        let code = HONEST.replace("if __name__", "import os\nos._exit(0)\nnp.sum = lambda *a, **k: 10000\nif __name__");
        assert_eq!(
            found(&[("nn_predict.py", &code)]),
            ["ends-process nn_predict.py:12 !", "patches-library nn_predict.py:13 !"]
        );
        let aliased =
            "import numpy as anp\nimport builtins\nsetattr(builtins, 'sum', lambda x: 3)\nanp.argmax = None\n";
        assert_eq!(found(&[("nn_predict.py", aliased)]), ["patches-library nn_predict.py:3 !"]);
        // Comparisons and keyword arguments are no assignments; strings and comments are no code.
        let calm = "import numpy as np\ny = np.sum(x, axis=-1) == np.max(x)\nprint('sys.exit(0)')  # os._exit(1)\n";
        assert_eq!(found(&[("nn_predict.py", calm)]), Vec::<String>::new());
    }

    #[test]
    fn reading_the_test_set_and_test_acc_are_named() {
        let code = "import numpy as np\nfrom utils import mnist_reader\nX, Y = mnist_reader.load_mnist('data/fashion', kind='t10k')\ndef nn_inference(a, w, x):\n    open('test_acc.txt', 'w').write('1.0')\n";
        assert_eq!(
            found(&[("nn_predict.py", code)]),
            ["reads-test-set nn_predict.py:2 !", "test-acc-file nn_predict.py:5 !"]
        );
        // In a module of the repository's that nn_predict.py imports.
        let helper = "import os\ndef go():\n    os._exit(0)\n";
        assert_eq!(
            found(&[("nn_predict.py", "from helper import go\n"), ("helper.py", helper)]),
            ["ends-process helper.py:3 !"]
        );
    }

    #[test]
    fn pytest_configuration_routes() {
        assert_eq!(
            found(&[("pytest.ini", "[pytest]\naddopts = --co\nmarkers =\n    slow\n")]),
            ["pytest-config pytest.ini:2 !", "pytest-config pytest.ini:3 ?"]
        );
        assert_eq!(
            found(&[("tox.ini", "[tox]\nenvlist = py311\n[tool:pytest]\npython_functions = nothing_*\n")]),
            ["pytest-config tox.ini:4 !"]
        );
        assert_eq!(
            found(&[("setup.cfg", "[metadata]\naddopts = x\n[tool:pytest]\nfilterwarnings = error\n")]),
            ["pytest-config setup.cfg:4 !"]
        );
        assert_eq!(
            found(&[(
                "pyproject.toml",
                "[project]\nname = \"x\"\n[tool.pytest.ini_options]\naddopts = \"-p no:python\"\n"
            )]),
            ["pytest-config pyproject.toml:4 !"]
        );
        let r = repo(&[("pytest.ini", "[pytest]\naddopts = --co -q\n")]);
        assert!(gaming(r.path())[0].message.contains("pytest adds `--co -q` to every command"));
    }

    #[test]
    fn conftest_hooks_and_fixtures() {
        let hook = "import pytest\n\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n    yield\n";
        assert_eq!(found(&[("conftest.py", hook)]), ["conftest conftest.py:4 !"]);
        assert_eq!(
            found(&[("conftest.py", "import pytest\n@pytest.fixture\ndef x():\n    return 1\n")]),
            ["conftest conftest.py ?"]
        );
    }

    #[test]
    fn startup_hooks_shadows_and_committed_accuracy() {
        assert_eq!(
            found(&[
                ("sitecustomize.py", ""),
                ("lib/x.pth", ""),
                ("numpy.py", ""),
                ("random.py", ""),
                ("test.py", ""),
                ("json/data.txt", ""),
                ("test_acc.txt", "0.95")
            ]),
            [
                "startup-hook lib/x.pth ?",
                "startup-hook sitecustomize.py ?",
                "shadow-module numpy.py !",
                "shadow-module random.py ?",
                "committed-test-acc test_acc.txt ?"
            ]
        );
    }
}
