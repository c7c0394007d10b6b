//! `cargo xtask wheel`: the `fmtool` wheel (pyproject.toml: maturin, `bindings = "bin"`), built in
//! `.venv-wheel` with pinned maturin and ziglang. zig links against glibc 2.17's symbols, so the
//! wheel is tagged manylinux2014 and installs with any pip on common Linux machines (Colab, Ubuntu
//! 20.04+, Debian 10+, RHEL 7+). `cargo xtask wheel-check` then installs it into a fresh venv and
//! runs it there (xtask/py/wheel_check.py).

use crate::python::{ensure_venv, repo_root, run};
use std::path::PathBuf;
use std::process::Command;

/// Pinned: the wheel's tags and contents depend on them.
const WHEEL_REQUIREMENTS: &[&str] = &["maturin==1.16.0", "ziglang==0.17.1"];

/// Where the wheel goes: one at a time, the previous ones removed first.
pub fn wheel_dir() -> PathBuf {
    repo_root().join("target/wheels")
}

pub fn build() -> Result<PathBuf, String> {
    let bin = ensure_venv(".venv-wheel", WHEEL_REQUIREMENTS)?;
    let dir = wheel_dir();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().ends_with(".whl") {
                std::fs::remove_file(e.path()).map_err(|err| format!("cannot remove {}: {err}", e.path().display()))?;
            }
        }
    }
    // maturin finds zig as `python -m ziglang` through the venv's bin on PATH.
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(std::iter::once(bin.clone()).chain(std::env::split_paths(&path)))
        .map_err(|e| e.to_string())?;
    run(Command::new(bin.join("maturin"))
        .args(["build", "--release", "--zig", "--compatibility", "manylinux2014", "--out"])
        .arg(&dir)
        .env("PATH", path)
        .current_dir(repo_root()))?;
    let wheel = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or("maturin built no wheel")?;
    println!("{}", wheel.display());
    Ok(wheel)
}
