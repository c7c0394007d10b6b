//! Crafted input files for every reader, run through the fmtool binary as an attacker would hand
//! them over: under 1 GiB of address space and 10 s, each must end with exit 1 or 2 and a message
//! naming the file and the problem, never a panic, a hang or an allocation abort, and leave no
//! files behind.

use crate::common::*;
use std::io::Write;
use std::path::Path;
use std::process::Command;

/// Runs fmtool in `dir` under `prlimit --as=1 GiB` and `timeout 10`, and checks what every hostile
/// case must hold: exit 1 or 2 (not 101/134 for a panic or abort, not 124 for a hang), no files
/// added or removed in `dir`. Returns stdout and stderr together.
fn hostile(dir: &Path, args: &[&str]) -> String {
    let before = listing(dir);
    let out = Command::new("timeout")
        .args(["10", "prlimit", "--as=1073741824", "--"])
        .arg(env!("CARGO_BIN_EXE_fmtool"))
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("timeout, prlimit and fmtool run");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let code = out.status.code().unwrap_or(-1);
    assert!(code == 1 || code == 2, "fmtool {args:?} exited {code} (want 1 or 2):\n{text}");
    assert!(!text.contains("panicked"), "fmtool {args:?} panicked:\n{text}");
    assert_eq!(listing(dir), before, "fmtool {args:?} left files behind or removed some");
    text
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        walk(dir).into_iter().map(|p| p.strip_prefix(dir).unwrap().display().to_string()).collect();
    v.sort();
    v
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        out.push(p.clone());
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&p));
        }
    }
    out
}

/// A temporary folder holding `model/` with a good course-format model.
fn repo_with_model() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("model");
    std::fs::create_dir(&m).unwrap();
    for f in ["fashion_mnist.json", "fashion_mnist.npz"] {
        std::fs::copy(fixture("check/good").join(f), m.join(f)).unwrap();
    }
    dir
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", p.display());
}

fn replace_with_fifo(p: &Path) {
    let _ = std::fs::remove_file(p);
    mkfifo(p);
}

fn replace_with_link(p: &Path, target: &str) {
    let _ = std::fs::remove_file(p);
    std::os::unix::fs::symlink(target, p).unwrap();
}

// ---- files that are not files ----

#[test]
fn npz_fifo_is_refused_by_check_and_score() {
    let dir = repo_with_model();
    replace_with_fifo(&dir.path().join("model/fashion_mnist.npz"));
    let out = hostile(dir.path(), &["check", "model"]);
    assert!(out.contains("model/fashion_mnist.npz is a FIFO, not a file"), "{out}");
    let out = hostile(dir.path(), &["score", "--model", "model"]);
    assert!(out.contains("model/fashion_mnist.npz is a FIFO, not a file"), "{out}");
}

#[test]
fn json_fifo_is_refused_by_check_and_score() {
    let dir = repo_with_model();
    replace_with_fifo(&dir.path().join("model/fashion_mnist.json"));
    let out = hostile(dir.path(), &["check", "model"]);
    assert!(out.contains("fashion_mnist.json is a FIFO, not a file"), "{out}");
    let out = hostile(dir.path(), &["score", "--model", "model"]);
    assert!(out.contains("fashion_mnist.json is a FIFO, not a file"), "{out}");
}

#[test]
fn npz_symlink_to_dev_zero_is_a_character_device() {
    let dir = repo_with_model();
    replace_with_link(&dir.path().join("model/fashion_mnist.npz"), "/dev/zero");
    let out = hostile(dir.path(), &["check", "model"]);
    assert!(out.contains("fashion_mnist.npz is a symbolic link to a character device, not a file"), "{out}");
    let out = hostile(dir.path(), &["score", "--model", "model"]);
    assert!(out.contains("fashion_mnist.npz is a symbolic link to a character device"), "{out}");
}

#[test]
fn json_symlink_to_dev_zero_is_a_character_device() {
    let dir = repo_with_model();
    replace_with_link(&dir.path().join("model/fashion_mnist.json"), "/dev/zero");
    let out = hostile(dir.path(), &["check", "model"]);
    assert!(out.contains("fashion_mnist.json is a symbolic link to a character device, not a file"), "{out}");
}

#[test]
fn keras_file_that_is_a_fifo_or_device_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    mkfifo(&dir.path().join("model.h5"));
    let out = hostile(dir.path(), &["convert", "model.h5", "--out", "out"]);
    assert!(out.contains("model.h5 is a FIFO, not a file"), "{out}");
    replace_with_link(&dir.path().join("model.keras"), "/dev/zero");
    let out = hostile(dir.path(), &["convert", "model.keras", "--out", "out"]);
    assert!(out.contains("model.keras is a symbolic link to a character device"), "{out}");
    let out = hostile(dir.path(), &["check", "model.h5"]);
    assert!(out.contains("model.h5 is a FIFO"), "{out}");
}

#[test]
fn stale_h5_comparison_skips_a_fifo() {
    let dir = repo_with_model();
    mkfifo(&dir.path().join("model/fashion_mnist.h5"));
    let out = Command::new("timeout")
        .args(["10", "prlimit", "--as=1073741824", "--"])
        .arg(env!("CARGO_BIN_EXE_fmtool"))
        .args(["check", "model"])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // The export itself is good: the FIFO beside it is not a Keras file to compare with, and
    // never a hang.
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("no problems found"), "{text}");
}

#[test]
fn picture_that_is_a_fifo_or_device_is_refused() {
    let dir = repo_with_model();
    mkfifo(&dir.path().join("shoe.png"));
    let out = hostile(dir.path(), &["predict", "shoe.png"]);
    assert!(out.contains("shoe.png is a FIFO, not a file"), "{out}");
    replace_with_link(&dir.path().join("boot.jpg"), "/dev/zero");
    let out = hostile(dir.path(), &["predict", "boot.jpg"]);
    assert!(out.contains("boot.jpg is a symbolic link to a character device"), "{out}");
}

/// Writes a zip with the given (name, bytes) members, deflated when `deflate`.
fn zip_bytes(members: &[(&str, Vec<u8>)], deflate: bool) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let method = if deflate { zip::CompressionMethod::Deflated } else { zip::CompressionMethod::Stored };
    let opts = zip::write::SimpleFileOptions::default().compression_method(method).large_file(false);
    for (name, bytes) in members {
        zip.start_file(*name, opts).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// The bytes of a .npy with a given header dict text, padded like NumPy, then `data`.
fn npy(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.to_string();
    let total = 10 + h.len() + 1;
    h.push_str(&" ".repeat((64 - total % 64) % 64));
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out
}
