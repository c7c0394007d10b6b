//! The student's Python, for `fmtool check` run as a pre-commit hook. Under pre-commit's
//! `language: python` hook, `python3` on PATH (and `$VIRTUAL_ENV`) is the hook's own virtual
//! environment, which has fmtool but not NumPy; the student's Python is elsewhere. Looked for in
//! order: `--python`, the repository's `.venv` and `venv`, `$VIRTUAL_ENV`, `$CONDA_PREFIX`, then
//! every `python3` on PATH. A virtual environment without NumPy in its `site-packages` is passed
//! over without starting it, so that the choice costs at most one start of an interpreter (the
//! one that says its versions); an interpreter that is no virtual environment cannot be read from
//! its files and is taken as it is.

use super::{Python, find_python};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Where to look, in order, without duplicates.
pub fn candidates(
    repo: &Path,
    virtual_env: Option<PathBuf>,
    conda_prefix: Option<PathBuf>,
    path: Option<OsString>,
) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let envs = [repo.join(".venv"), repo.join("venv")].into_iter().chain(virtual_env).chain(conda_prefix);
    let env_pythons = envs.map(|e| e.join("bin/python"));
    let on_path: Vec<PathBuf> =
        path.map(|p| std::env::split_paths(&p).map(|d| d.join("python3")).collect()).unwrap_or_default();
    for p in env_pythons.chain(on_path) {
        if !p.is_file() {
            continue;
        }
        let key = p.canonicalize().ok();
        // Two names of one virtual environment's interpreter are one candidate; two venvs whose
        // `python` links to the same base interpreter are not (their site-packages differ).
        let same = |q: &PathBuf| match (venv_of(q), venv_of(&p)) {
            (Some(a), Some(b)) => a == b,
            (None, None) => q.canonicalize().ok() == key,
            _ => false,
        };
        if !out.iter().any(same) {
            out.push(p);
        }
    }
    out
}

/// The virtual environment an interpreter path belongs to (`<env>/bin/python`, `pyvenv.cfg` in
/// `<env>`).
fn venv_of(python: &Path) -> Option<&Path> {
    let env = python.parent()?.parent()?;
    env.join("pyvenv.cfg").is_file().then_some(env)
}

/// Whether an interpreter may have NumPy: a virtual environment only when `numpy/` is in its
/// `site-packages` or it sees the system's packages; any other interpreter, as far as its files
/// tell.
pub fn may_have_numpy(python: &Path) -> bool {
    let Some(env) = venv_of(python) else { return true };
    let cfg = crate::fsguard::read(&env.join("pyvenv.cfg"), crate::fsguard::budget::SOURCE).unwrap_or_default();
    let cfg = String::from_utf8_lossy(&cfg);
    let system = cfg.lines().any(|l| {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        k.trim() == "include-system-site-packages" && v.trim().eq_ignore_ascii_case("true")
    });
    let lib = |l: &str| crate::fsguard::list_dir(&env.join(l)).ok().flatten().unwrap_or_default();
    let site = ["lib", "lib64"].into_iter().flat_map(|l| lib(l).into_iter().map(move |e| env.join(l).join(e.name)));
    system || site.into_iter().any(|d| d.join("site-packages/numpy/__init__.py").is_file())
}

/// The student's Python for `repo`: `requested`, else the first candidate that may have NumPy,
/// asked once for its versions. The error says where fmtool looked.
pub fn student_python(repo: &Path, requested: Option<&Path>) -> Result<Python, String> {
    if requested.is_some() {
        return find_python(requested);
    }
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let all =
        candidates(repo, env("VIRTUAL_ENV").map(PathBuf::from), env("CONDA_PREFIX").map(PathBuf::from), env("PATH"));
    match all.iter().find(|p| may_have_numpy(p)) {
        Some(p) => find_python(Some(p)),
        None if all.is_empty() => {
            Err("no Python found (no .venv or venv in the repository, no python3 on PATH); pass --python".into())
        }
        None => Err(format!(
            "no Python with NumPy found: {} {} NumPy; pass --python PATH, or install NumPy into the repository's .venv",
            all.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
            if all.len() == 1 { "lacks" } else { "lack" }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake virtual environment: `bin/python` (a file), `pyvenv.cfg`, NumPy if asked.
    fn venv(dir: &Path, numpy: bool, system: bool) -> PathBuf {
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::write(dir.join("bin/python"), "").unwrap();
        std::fs::write(dir.join("bin/python3"), "").unwrap();
        std::fs::write(dir.join("pyvenv.cfg"), format!("home = /usr/bin\ninclude-system-site-packages = {system}\n"))
            .unwrap();
        let site = dir.join("lib/python3.11/site-packages");
        std::fs::create_dir_all(&site).unwrap();
        if numpy {
            std::fs::create_dir_all(site.join("numpy")).unwrap();
            std::fs::write(site.join("numpy/__init__.py"), "").unwrap();
        }
        dir.join("bin/python")
    }

    #[test]
    fn the_hooks_own_environment_is_passed_over_for_the_students() {
        let t = tempfile::tempdir().unwrap();
        let repo = t.path().join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        // pre-commit's hook environment: first on PATH and $VIRTUAL_ENV, without NumPy.
        let hook = venv(&t.path().join("py_env-python3"), false, false);
        let system = t.path().join("usr/bin");
        std::fs::create_dir_all(&system).unwrap();
        std::fs::write(system.join("python3"), "").unwrap();
        let path = std::env::join_paths([hook.parent().unwrap(), &system]).unwrap();
        let venv_dir = Some(t.path().join("py_env-python3"));
        let found = candidates(&repo, venv_dir.clone(), None, Some(path.clone()));
        assert_eq!(found, [t.path().join("py_env-python3/bin/python"), system.join("python3")]);
        let chosen = found.iter().find(|p| may_have_numpy(p));
        assert_eq!(chosen, Some(&system.join("python3")));
        // The repository's own .venv with NumPy comes first.
        let own = venv(&repo.join(".venv"), true, false);
        let found = candidates(&repo, venv_dir, None, Some(path));
        assert_eq!(found.iter().find(|p| may_have_numpy(p)), Some(&own));
    }

    #[test]
    fn numpy_is_read_from_the_environment_files() {
        let t = tempfile::tempdir().unwrap();
        assert!(!may_have_numpy(&venv(&t.path().join("a"), false, false)));
        assert!(may_have_numpy(&venv(&t.path().join("b"), true, false)));
        // It sees the system's packages: it may have NumPy from there.
        assert!(may_have_numpy(&venv(&t.path().join("c"), false, true)));
        // No pyvenv.cfg: an interpreter whose packages its files do not tell.
        std::fs::write(t.path().join("python3"), "").unwrap();
        assert!(may_have_numpy(&t.path().join("python3")));
    }

    #[test]
    fn a_hook_environment_alone_offers_no_python() {
        let t = tempfile::tempdir().unwrap();
        let hook = venv(&t.path().join("hook"), false, false);
        let found = candidates(t.path(), None, None, Some(hook.parent().unwrap().as_os_str().to_owned()));
        assert_eq!(found, [hook.parent().unwrap().join("python3")]);
        assert!(!found.iter().any(|p| may_have_numpy(p)));
    }
}
