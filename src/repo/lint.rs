//! A static lint of the student's `nn_predict.py`: imports of modules the grader's runner does not
//! have. The runner has Python's standard library, what the workflow's setup-commands pip-install
//! (with their dependencies) and the repo's own modules; nothing else (no tensorflow, no keras).

use super::pysrc::{Block, code_lines, function_of};
use super::stdlib::is_stdlib;
use super::workflow::{Setup, Workflow, interpret_setup};
use crate::checks::Code;
use crate::checks::{Finding, Location, Severity};
use std::collections::BTreeSet;
use std::path::Path;

/// The modules `import` finds on the grader's runner.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Available {
    /// The pip packages the setup-commands install, as written (for messages).
    pub packages: Vec<String>,
    /// Importable top-level names besides the standard library: the packages', their
    /// dependencies', and the repo's own.
    modules: BTreeSet<String>,
}

/// The import names of a pip package and the packages it pulls in, for the packages students use.
/// Anything else imports under its own name with `-` as `_`.
fn package_info(package: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match package {
        "pytest" => (&["pytest", "_pytest", "py"], &["pluggy", "iniconfig", "packaging"]),
        "pandas" => (&["pandas"], &["numpy", "python-dateutil", "pytz", "tzdata"]),
        "python-dateutil" => (&["dateutil"], &["six"]),
        "scikit-learn" | "sklearn" => (&["sklearn"], &["numpy", "scipy", "joblib", "threadpoolctl"]),
        "scipy" | "h5py" | "opencv-python" | "opencv-python-headless" => {
            (if package.starts_with("opencv") { &["cv2"] } else { &[] }, &["numpy"])
        }
        "pillow" => (&["PIL"], &[]),
        "matplotlib" => (
            &["matplotlib", "mpl_toolkits", "pylab"],
            &[
                "numpy",
                "pillow",
                "python-dateutil",
                "packaging",
                "pyparsing",
                "cycler",
                "kiwisolver",
                "fonttools",
                "contourpy",
            ],
        ),
        "fonttools" => (&["fontTools"], &[]),
        "tensorflow" | "tensorflow-cpu" => (&["tensorflow"], &["numpy", "h5py", "keras", "packaging", "six"]),
        "tf-keras" => (&["tf_keras"], &["tensorflow"]),
        "keras" => (&["keras"], &["numpy", "h5py", "packaging"]),
        "torch" => (&["torch"], &["typing-extensions", "sympy", "networkx", "jinja2", "fsspec", "filelock"]),
        "typing-extensions" => (&["typing_extensions"], &[]),
        "pyyaml" => (&["yaml"], &[]),
        _ => (&[], &[]),
    }
}

/// The top-level names `import` finds once the pip package `package` is installed (`scikit-learn`:
/// `sklearn`; most packages: their own name with `-` as `_`).
pub fn import_names(package: &str) -> Vec<String> {
    let p = package.to_ascii_lowercase().replace('_', "-");
    match package_info(&p).0 {
        [] => vec![p.replace('-', "_")],
        names => names.iter().take(1).map(|n| n.to_string()).collect(),
    }
}

impl Available {
    /// `packages` pip-installed (with their dependencies) plus the repo's `own_modules`.
    pub fn new(packages: &[String], own_modules: &[String]) -> Available {
        let mut modules = BTreeSet::new();
        let mut todo: Vec<String> = packages.iter().map(|p| p.to_ascii_lowercase().replace('_', "-")).collect();
        let mut seen = BTreeSet::new();
        while let Some(p) = todo.pop() {
            if !seen.insert(p.clone()) {
                continue;
            }
            let (names, deps) = package_info(&p);
            if names.is_empty() {
                modules.insert(p.replace('-', "_"));
            }
            modules.extend(names.iter().map(|n| n.to_string()));
            todo.extend(deps.iter().map(|d| d.to_string()));
        }
        modules.extend(own_modules.iter().cloned());
        Available { packages: packages.to_vec(), modules }
    }

    /// What the workflows' setup-commands install plus the repo's own modules (`X.py` files and
    /// `X/` folders at the repo root).
    pub fn from_repo(repo_root: &Path, workflows: &[Workflow]) -> Available {
        let mut packages: Vec<String> = Vec::new();
        for s in workflows.iter().flat_map(|w| &w.steps) {
            if let Some(Setup::PipInstall { packages: p, .. }) = s.setup_command.as_deref().map(interpret_setup) {
                for p in p {
                    if !packages.contains(&p) {
                        packages.push(p);
                    }
                }
            }
        }
        Available::new(&packages, &own_modules(repo_root))
    }

    /// The importable top-level names besides the standard library.
    pub fn modules(&self) -> impl Iterator<Item = &str> {
        self.modules.iter().map(String::as_str)
    }

    /// True when `import module` (its top-level name) succeeds on the runner.
    pub fn has(&self, module: &str) -> bool {
        let top = module.split('.').next().unwrap_or(module);
        is_stdlib(top) || self.modules.contains(top)
    }
}

/// The repo's own importable modules: `X.py` files and folders at the root (a folder is importable
/// as a namespace package even without `__init__.py`).
pub fn own_modules(repo_root: &Path) -> Vec<String> {
    let Ok(Some(entries)) = crate::fsguard::list_dir(repo_root) else { return Vec::new() };
    let mut out: Vec<String> = entries
        .into_iter()
        .filter_map(|e| {
            let name = e.name.to_str()?.to_string();
            let is_dir = e.is_dir;
            let module = if is_dir { name } else { name.strip_suffix(".py")?.to_string() };
            let ok = !module.is_empty()
                && !module.starts_with('.')
                && module.chars().all(|c| c.is_alphanumeric() || c == '_')
                && !module.starts_with(|c: char| c.is_ascii_digit());
            ok.then_some(module)
        })
        .collect();
    out.sort();
    out
}

/// The functions of nn_predict.py the grader's tests call: an import failing inside them costs points.
pub const GRADED_FUNCTIONS: &[&str] = &["relu", "softmax", "nn_inference"];

/// One `import` statement's modules, or `None` when the line is no import.
fn imported_modules(code: &str) -> Option<Vec<String>> {
    if let Some(rest) = code.strip_prefix("import ") {
        let mods = rest
            .split(',')
            .map(|part| part.split_whitespace().next().unwrap_or("").trim_matches(['(', ')']).to_string())
            .filter(|m| !m.is_empty())
            .collect();
        return Some(mods);
    }
    if let Some(rest) = code.strip_prefix("from ") {
        let module = rest.split_whitespace().next().unwrap_or("");
        if rest.split_whitespace().nth(1) != Some("import") {
            return None;
        }
        // A relative import (`from . import x`) is the repo's own code.
        if module.starts_with('.') {
            return Some(Vec::new());
        }
        return Some(vec![module.to_string()]);
    }
    None
}

/// Findings for imports in `nn_predict.py` that fail on the grader's runner. `path_for_messages`
/// is how the file is named (`nn_predict.py`). An import inside `try:`/`except:` is left alone (its
/// ImportError may be caught), and one under `if __name__ == "__main__":` is only a warning (pytest
/// never runs that block).
pub fn lint_nn_predict(path_for_messages: &str, text: &str, available: &Available) -> Vec<Finding> {
    let mut out = Vec::new();
    let has_list = if available.packages.is_empty() {
        "only Python's standard library and the repo's own modules".to_string()
    } else {
        format!(
            "Python's standard library, the repo's own modules and what the workflow installs ({})",
            available.packages.join(", ")
        )
    };
    for line in code_lines(text) {
        // `try: import x` on one line is guarded too; any other header holds no import.
        let (stmt, blocks) = match (&line.opens, line.body_at) {
            (None, _) => (line.code, line.blocks.clone()),
            (Some(_), Some(at)) => (&line.code[at..], line.blocks_at(at)),
            (Some(_), None) => continue,
        };
        let Some(mods) = imported_modules(stmt) else { continue };
        if blocks.iter().any(|b| matches!(b, Block::Try | Block::Except)) {
            continue;
        }
        let main = blocks.contains(&Block::Main);
        let function = function_of(&blocks).0;
        for m in mods.iter().filter(|m| !available.has(m)) {
            let top = m.split('.').next().unwrap_or(m);
            let stmt_shown = stmt.trim();
            let (severity, effect) = match function {
                _ if main => (
                    Severity::Warning,
                    "inside `if __name__ == \"__main__\":`, which the grader's tests never run: only `python nn_predict.py` needs it".to_string(),
                ),
                None => (
                    Severity::Error,
                    "so `from nn_predict import ...` in model_test.py fails and every test gives 0 points".to_string(),
                ),
                Some(f) if GRADED_FUNCTIONS.contains(&f) => (
                    Severity::Error,
                    format!("so {f}() fails with ModuleNotFoundError whenever the grader's tests call it"),
                ),
                Some(f) => {
                    (Severity::Warning, format!("inside {f}(), so it fails with ModuleNotFoundError when {f}() runs"))
                }
            };
            out.push(
                Finding::new(Code::GraderMissingImport,
                    severity,
                    Location::line(path_for_messages, line.number),
                    format!("`{stmt_shown}`: the grader's runner has no module {top} (it has {has_list}), {effect}"),
                )
                .hint(format!(
                    "remove the import of {top} and write that part with NumPy: the grader runs nn_predict.py without {top}"
                )),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn course() -> Available {
        Available::new(
            &["pytest".into(), "pandas".into(), "argparse".into()],
            &["nn_predict".into(), "model_test".into(), "utils".into()],
        )
    }

    #[test]
    fn the_course_runner() {
        let a = course();
        for m in [
            "numpy",
            "numpy.linalg",
            "json",
            "os",
            "dateutil",
            "pytz",
            "six",
            "pluggy",
            "pytest",
            "utils.mnist_reader",
            "argparse",
            "pandas",
        ] {
            assert!(a.has(m), "{m}");
        }
        for m in ["tensorflow", "keras", "torch", "sklearn", "matplotlib", "cv2", "PIL", "scipy", "h5py"] {
            assert!(!a.has(m), "{m}");
        }
        assert!(Available::new(&["scikit-learn".into()], &[]).has("scipy"));
    }

    #[test]
    fn template_is_clean() {
        let text = "import numpy as np\nimport json\n\ndef relu(x):\n    return x\n";
        assert_eq!(lint_nn_predict("nn_predict.py", text, &course()), vec![]);
    }

    #[test]
    fn tensorflow_imports_at_module_level_and_inside_functions() {
        let text = "import numpy as np\nimport tensorflow as tf\nfrom keras.models import load_model\n\"\"\"\nimport torch\n\"\"\"\ntry:\n    import scipy\nexcept ImportError:\n    import sklearn\n\ndef nn_inference(model_arch, weights, data):\n    import cv2  # comment\n    return data\n\ndef plot(x):\n    if x:\n        from matplotlib import pyplot as plt\n    return x\nimport os, PIL.Image as im\nfrom . import helpers\nif __name__ == \"__main__\":\n    import matplotlib.pyplot as plt\n";
        let f = lint_nn_predict("nn_predict.py", text, &course());
        let got: Vec<(usize, Severity, bool)> = f
            .iter()
            .map(|f| (f.location.line.unwrap(), f.severity, f.message.contains("inside") || f.message.contains("()")))
            .collect();
        assert_eq!(
            got,
            [
                (2, Severity::Error, false),
                (3, Severity::Error, false),
                (13, Severity::Error, true),
                (18, Severity::Warning, true),
                (20, Severity::Error, false),
                (23, Severity::Warning, true)
            ],
            "{f:#?}"
        );
        assert!(
            f[0].message.contains("no module tensorflow") && f[0].message.contains("every test gives 0 points"),
            "{}",
            f[0].message
        );
        assert!(f[0].message.contains("pytest, pandas, argparse"), "{}", f[0].message);
        assert!(f[2].message.contains("nn_inference()"), "{}", f[2].message);
        assert!(f[3].message.contains("when plot() runs"), "{}", f[3].message);
        // pytest never runs `if __name__ == "__main__":`, so an import there does not cost points.
        assert!(f[5].message.contains("__main__") && f[5].message.contains("never run"), "{}", f[5].message);
        assert!(f.iter().all(|f| f.code == "grader-missing-import" && f.hint.is_some()));
    }

    #[test]
    fn own_modules_are_files_and_folders() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("nn_predict.py"), "").unwrap();
        std::fs::write(dir.path().join("layers.py"), "").unwrap();
        std::fs::write(dir.path().join("README.md"), "").unwrap();
        std::fs::create_dir(dir.path().join("utils")).unwrap();
        std::fs::create_dir(dir.path().join(".github")).unwrap();
        assert_eq!(own_modules(dir.path()), ["layers", "nn_predict", "utils"]);
        let wf = super::super::workflow::parse_workflow(
            "c.yml",
            include_str!("../../tests/fixtures/student/workflows/classroom.yml"),
        )
        .unwrap();
        let a = Available::from_repo(dir.path(), &[wf]);
        assert_eq!(a.packages, ["pytest", "pandas", "argparse"]);
        assert!(a.has("layers") && a.has("numpy") && !a.has("tensorflow"));
    }

    #[test]
    fn stdlib_list_is_sorted_for_binary_search() {
        let s = super::super::stdlib::STDLIB_MODULES;
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert!(is_stdlib("json") && is_stdlib("argparse") && !is_stdlib("numpy"));
    }
}
