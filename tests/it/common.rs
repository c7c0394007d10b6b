//! Helpers shared by the integration tests: running the fmtool binary, locating fixtures.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    root().join("tests/fixtures").join(rel)
}

/// The result of one fmtool run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the fmtool binary with `args` in `dir`, with no stdin.
pub fn fmtool_in(dir: &Path, args: &[&str]) -> Run {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_fmtool"))
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the fmtool binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs fmtool from the repository root.
pub fn fmtool(args: &[&str]) -> Run {
    fmtool_in(&root(), args)
}

/// Reads an npz written by NumPy into (key, shape, f32 values) through fmtool's own reader.
pub fn npz_f32(path: &Path, key: &str) -> (Vec<usize>, Vec<f32>) {
    let npz = fmtool::model::npz::read_npz(path).expect("fixture npz reads");
    let a = npz.array(key).expect("key present").to_f32();
    (a.shape().to_vec(), a.iter().copied().collect())
}

/// A python3 with numpy, if this machine has one (CI installs numpy; tests that need it say so).
pub fn python_with_numpy() -> Option<String> {
    for py in ["python3", "python"] {
        let ok = Command::new(py).args(["-c", "import numpy"]).output().map(|o| o.status.success()).unwrap_or(false);
        if ok {
            return Some(py.to_string());
        }
    }
    None
}
