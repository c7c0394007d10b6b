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

/// A python with numpy: `$FMTOOL_PYTHON`, else `python3` or `python` on PATH (CI installs numpy
/// into the venv it puts first on PATH).
pub fn python_with_numpy() -> Option<String> {
    let from_env = std::env::var("FMTOOL_PYTHON").ok();
    for py in from_env.iter().map(String::as_str).chain(["python3", "python"]) {
        let ok = Command::new(py).args(["-c", "import numpy"]).output().map(|o| o.status.success()).unwrap_or(false);
        if ok {
            return Some(py.to_string());
        }
    }
    None
}

/// Like [`python_with_numpy`], but a test that needs NumPy fails with a clear message when there is
/// none, instead of passing without having checked anything.
pub fn require_numpy() -> String {
    python_with_numpy().expect(
        "this test compares with real NumPy: install numpy for python3 (CI does: see .ci/run), or set FMTOOL_PYTHON",
    )
}

/// Every fixture model directory (holding fashion_mnist.json + fashion_mnist.npz) under `tests/fixtures/<group>`.
pub fn fixture_models(group: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(fixture(group)) else { return out };
    for e in rd.flatten() {
        let p = e.path();
        if p.join("fashion_mnist.json").is_file() && p.join("fashion_mnist.npz").is_file() {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The layer types of a course-format model.
pub fn layer_types(dir: &Path) -> Vec<String> {
    fmtool::model::arch::read_arch(&dir.join("fashion_mnist.json"))
        .expect("fixture json parses")
        .into_iter()
        .map(|e| e.class_name)
        .collect()
}

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

/// The outcome of relu()/softmax() outside a student repository: not run, no points claimed.
pub fn not_run() -> fmtool::grader::Outcome {
    fmtool::grader::Outcome::NotRun(String::new())
}

/// Every `step`-th image of the test set (from image 0), written as gzip IDX files
/// (`t10k-images-idx3-ubyte.gz`, `t10k-labels-idx1-ubyte.gz`) into `dir`, for the cross-checks
/// that run a slow NumPy pass: a sample covers every code path the full set does (an image's
/// outputs never depend on its batch, which the engine's own tests check). Returns the sample.
pub fn write_sample(dir: &Path, step: usize) -> fmtool::dataset::Dataset {
    use std::io::Write;
    let full = fmtool::dataset::embedded_test_set();
    let n = full.image_values();
    let picked: Vec<usize> = (0..full.len()).step_by(step).collect();
    let pixels: Vec<u8> = picked.iter().flat_map(|&i| full.pixels[i * n..(i + 1) * n].iter().copied()).collect();
    let labels: Vec<u8> = picked.iter().map(|&i| full.labels[i]).collect();
    let gz = |name: &str, header: &[u32], body: &[u8]| {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for v in header {
            enc.write_all(&v.to_be_bytes()).unwrap();
        }
        enc.write_all(body).unwrap();
        std::fs::write(dir.join(name), enc.finish().unwrap()).unwrap();
    };
    let count = picked.len() as u32;
    gz("t10k-images-idx3-ubyte.gz", &[0x0803, count, full.rows as u32, full.cols as u32], &pixels);
    gz("t10k-labels-idx1-ubyte.gz", &[0x0801, count], &labels);
    let sample = fmtool::dataset::load_dir(dir, "t10k").unwrap();
    assert_eq!((sample.len(), &sample.labels), (picked.len(), &labels));
    sample
}

/// Whether bubblewrap can make a sandbox here (`bwrap`, or `$FMTOOL_BWRAP`): the tests of the
/// students' sandbox start with it. Where it cannot, the test is skipped with the reason on stderr,
/// except under CI (`$CI` set), which must run them: there it fails with the reason.
pub fn sandbox_or_skip(why: &str) -> bool {
    let bwrap = std::env::var_os("FMTOOL_BWRAP").unwrap_or_else(|| "bwrap".into());
    let tried = Command::new(&bwrap)
        .args(["--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--", "/bin/true"])
        .stdin(std::process::Stdio::null())
        .output();
    let reason = match tried {
        Ok(out) if out.status.success() => return true,
        Ok(out) => format!(
            "{} cannot make a sandbox here ({}): {}",
            Path::new(&bwrap).display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => format!("cannot run {}: {e}", Path::new(&bwrap).display()),
    };
    if std::env::var_os("CI").is_some() {
        panic!("{why}: {reason} (CI is set: these tests must run; install bubblewrap and allow user namespaces)");
    }
    eprintln!("skipped: {why}: {reason}");
    false
}
