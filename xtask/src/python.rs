//! The Python side of the developer tasks: creates `.venv/` with pinned TensorFlow CPU, tf_keras and
//! NumPy, and runs scripts from `xtask/py/` in it from the repository root.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Pinned versions: fixtures and the shipped model are reproducible only with these.
pub const REQUIREMENTS: &[&str] = &["tensorflow-cpu==2.21.0", "tf_keras==2.21.0", "pillow", "pytest"];

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the repo root").to_path_buf()
}

/// Returns the venv's python, creating the venv and installing the pinned packages if needed.
pub fn venv_python() -> Result<PathBuf, String> {
    let root = repo_root();
    let venv = root.join(".venv");
    let python = venv.join("bin").join("python");
    let marker = venv.join(".fmtool-requirements");
    let wanted = REQUIREMENTS.join("\n");
    if python.exists() && std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(python);
    }
    if !python.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    run(Command::new(&python).args(["-m", "pip", "install", "-q"]).args(REQUIREMENTS))?;
    std::fs::write(&marker, wanted).map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
    Ok(python)
}

fn run(cmd: &mut Command) -> Result<(), String> {
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

/// What the test suite needs from Python: NumPy (cross-checks against a real NumPy forward pass)
/// and the pre-commit framework (the hook test). Small, unlike the TensorFlow venv.
pub const TEST_REQUIREMENTS: &[&str] = &["numpy", "pre-commit", "pytest"];

/// `cargo xtask test`: makes `.venv-test` with [`TEST_REQUIREMENTS`] if needed, puts it first on
/// PATH and runs `cargo test --workspace` with the given extra arguments.
pub fn test(args: &[String]) -> Result<(), String> {
    let root = repo_root();
    let venv = root.join(".venv-test");
    let bin = venv.join("bin");
    let marker = venv.join(".fmtool-requirements");
    let wanted = TEST_REQUIREMENTS.join("\n");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(wanted.as_str()) {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        run(Command::new(bin.join("python"))
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .args(TEST_REQUIREMENTS))?;
        std::fs::write(&marker, wanted).map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
    }
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
        .current_dir(&root))
}
