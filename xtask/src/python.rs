//! The Python side of the developer tasks: creates `.venv/` with pinned TensorFlow CPU, tf_keras and
//! NumPy, and runs scripts from `xtask/py/` in it from the repository root; creates `.venv-test/`
//! (what the test suite and the Python lint need) for `test` and `lint-py`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Pinned versions: fixtures and the shipped model are reproducible only with these. ONNX and
/// ONNX Runtime are for `cargo xtask bench`'s ONNX Runtime column.
pub const REQUIREMENTS: &[&str] = &[
    "tensorflow-cpu==2.21.0",
    "tf_keras==2.21.0",
    "numpy==2.4.6",
    "pillow==13.0.0",
    "pytest==9.2.0",
    "onnx==1.23.2",
    "onnxruntime==1.32.0",
];

/// What the test suite needs from Python: NumPy (cross-checks against a real NumPy forward pass),
/// the pre-commit framework (the hook test), pytest and PyYAML (tests/student/run_workflow.py), and
/// Ruff for `lint-py`. Small, unlike the TensorFlow venv; pinned like it.
pub const TEST_REQUIREMENTS: &[&str] =
    &["numpy==2.4.6", "pre-commit==4.7.0", "pytest==9.2.0", "pyyaml==6.0.4", "ruff==0.17.6"];

/// What `tests/it/setup.rs` installs `fmtool score --setup`'s environment from, offline: the
/// course workflow's packages (pytest, pandas) and NumPy, pinned, with their dependencies.
pub const TEST_WHEELS: &[&str] = &["numpy==2.4.6", "pytest==9.2.0", "pandas==3.1.2"];

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the repo root").to_path_buf()
}

/// Returns the `bin/` folder of the venv `name` at the repo root, creating the venv and installing
/// `requirements` unless its marker file already lists exactly them (so a changed list reinstalls).
pub fn ensure_venv(name: &str, requirements: &[&str]) -> Result<PathBuf, String> {
    let venv = repo_root().join(name);
    let bin = venv.join("bin");
    let marker = venv.join(".fmtool-requirements");
    let wanted = requirements.join("\n");
    if bin.join("python").exists() && std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(bin);
    }
    if !bin.join("python").exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    run(Command::new(bin.join("python"))
        .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
        .args(requirements))?;
    std::fs::write(&marker, wanted).map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
    Ok(bin)
}

/// Returns `target/test-wheels`, where `.venv-test`'s pip downloads [`TEST_WHEELS`] (wheels for
/// its Python) unless its marker file already lists exactly them: the wheel folder the tests of
/// `fmtool score --setup` install from, without the network (`$FMTOOL_TEST_WHEELS` for them).
pub fn ensure_test_wheels(bin: &Path) -> Result<PathBuf, String> {
    let dir = repo_root().join("target/test-wheels");
    let marker = dir.join(".fmtool-requirements");
    let wanted = TEST_WHEELS.join("\n");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(dir);
    }
    run(Command::new(bin.join("python"))
        .args(["-m", "pip", "download", "-q", "--disable-pip-version-check", "--only-binary", ":all:", "-d"])
        .arg(&dir)
        .args(TEST_WHEELS))?;
    std::fs::write(&marker, wanted).map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
    Ok(dir)
}

/// Returns the `.venv` python, creating the venv and installing [`REQUIREMENTS`] if needed.
pub fn venv_python() -> Result<PathBuf, String> {
    Ok(ensure_venv(".venv", REQUIREMENTS)?.join("python"))
}

pub fn run(cmd: &mut Command) -> Result<(), String> {
    let status = cmd.status().map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{cmd:?} failed with {status}")) }
}

/// Runs `script` (relative to the repo root) in the venv with `args`, from the repo root.
pub fn run_script(script: &str, args: &[String]) -> Result<(), String> {
    let python = venv_python()?;
    let root = repo_root();
    // Scripts that start commands through `cargo xtask measure` find this binary here.
    let xtask = std::env::current_exe().map_err(|e| format!("cannot find the xtask binary: {e}"))?;
    run(Command::new(python).arg(root.join(script)).args(args).env("FMTOOL_XTASK", xtask).current_dir(&root))
}

/// Runs `script` with `.venv-test`'s Python (small: no TensorFlow), from the repo root.
pub fn run_test_script(script: &str, args: &[String]) -> Result<(), String> {
    let bin = ensure_venv(".venv-test", TEST_REQUIREMENTS)?;
    let root = repo_root();
    run(Command::new(bin.join("python")).arg(root.join(script)).args(args).current_dir(&root))
}

/// `cargo xtask test`: makes `.venv-test` with [`TEST_REQUIREMENTS`] and the wheel folder of
/// [`TEST_WHEELS`] if needed, puts the venv first on PATH, finds (or installs) chromium for the HTML report's test and bubblewrap for the sandbox and runs `cargo test --workspace` with the given extra arguments.
pub fn test(args: &[String]) -> Result<(), String> {
    let root = repo_root();
    let bin = ensure_venv(".venv-test", TEST_REQUIREMENTS)?;
    let wheels = ensure_test_wheels(&bin)?;
    let chromium = crate::chromium::ensure()?;
    crate::bubblewrap::ensure()?;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![bin.clone()];
    paths.extend(std::env::split_paths(&path));
    let path = std::env::join_paths(paths).map_err(|e| e.to_string())?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo)
        .args(["test", "--workspace"])
        .args(args)
        .env("PATH", path)
        .env("FMTOOL_PYTHON", bin.join("python"))
        .env("FMTOOL_CHROMIUM", chromium)
        .env("FMTOOL_TEST_WHEELS", wheels)
        .current_dir(&root))
}

/// `cargo xtask lint-py`: makes `.venv-test` as `test` does, then runs its Ruff over the repo's Python
/// (ruff.toml says which files and rules): `ruff check` and `ruff format --check`, both, failing if
/// either fails.
pub fn lint_py() -> Result<(), String> {
    let root = repo_root();
    let ruff = ensure_venv(".venv-test", TEST_REQUIREMENTS)?.join("ruff");
    let check = run(Command::new(&ruff).arg("check").current_dir(&root));
    let format = run(Command::new(&ruff).args(["format", "--check"]).current_dir(&root));
    let failed: Vec<String> = [check, format].into_iter().filter_map(Result::err).collect();
    if failed.is_empty() { Ok(()) } else { Err(failed.join("; ")) }
}
