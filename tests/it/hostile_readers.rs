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
    let (code, text) = bounded(dir, args);
    assert!(code == 1 || code == 2, "fmtool {args:?} exited {code} (want 1 or 2):\n{text}");
    text
}

/// Like [`hostile`], for runs that may also succeed: `score` scores a model that cannot run as
/// 0 points (exit 0). Still no panic, no hang, no abort under 1 GiB, no leftover files.
fn bounded(dir: &Path, args: &[&str]) -> (i32, String) {
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
    assert!((0..=2).contains(&code), "fmtool {args:?} exited {code} (a panic, abort or hang):\n{text}");
    assert!(!text.contains("panicked"), "fmtool {args:?} panicked:\n{text}");
    assert_eq!(listing(dir), before, "fmtool {args:?} left files behind or removed some");
    (code, text)
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

// ---- one budget, checked before work ----

/// A course model whose npz member `name` has `header` and `data`, deflated.
fn repo_with_npz_member(header: &str, data: &[u8]) -> tempfile::TempDir {
    let dir = repo_with_model();
    let bytes = zip_bytes(&[("dense_0.npy", npy(header, data))], true);
    std::fs::write(dir.path().join("model/fashion_mnist.npz"), bytes).unwrap();
    dir
}

#[test]
fn npz_member_declaring_a_billion_values_is_refused_before_reading() {
    // 268,435,456 float32 values declared (the issue's 1 GiB bomb); 1 MB of zeros really there.
    let dir = repo_with_npz_member(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (16384, 16384), }",
        &vec![0u8; 1 << 20],
    );
    let want = "member dense_0.npy: shape [16384, 16384] (268435456 values) is over the budget of 16777216 values";
    let out = hostile(dir.path(), &["check", "model"]);
    assert!(out.contains("model/fashion_mnist.npz") && out.contains(want), "{out}");
    // score grades a model that cannot run as 0 points.
    let (_, out) = bounded(dir.path(), &["score", "--model", "model"]);
    assert!(out.contains("THE MODEL DOES NOT RUN") && out.contains(want), "{out}");
}

#[test]
fn npz_member_with_a_huge_shape_product_is_refused() {
    let dir = repo_with_npz_member(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999, 99999999999, 99999999999, 99999999999), }",
        &[],
    );
    let out = hostile(dir.path(), &["check", "model"]);
    assert!(out.contains("member dense_0.npy: shape [99999999999, 99999999999, 99999999999, 99999999999] (too many values) is over the budget"), "{out}");
}

#[test]
fn npz_header_over_numpys_limit_is_refused() {
    let header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }}{}", " ".repeat(20_000));
    let mut member = b"\x93NUMPY\x02\x00".to_vec();
    member.extend_from_slice(&(header.len() as u32 + 1).to_le_bytes());
    member.extend_from_slice(header.as_bytes());
    member.extend_from_slice(b"\n\0\0\0\0");
    let dir = repo_with_model();
    std::fs::write(dir.path().join("model/fashion_mnist.npz"), zip_bytes(&[("dense_0.npy", member)], true)).unwrap();
    let out = hostile(dir.path(), &["check", "model"]);
    assert!(
        out.contains("member dense_0.npy: header of 20058 characters is longer than NumPy's limit of 10000"),
        "{out}"
    );
}

#[test]
fn architecture_json_over_its_budget_is_refused() {
    let dir = repo_with_model();
    let json = dir.path().join("model/fashion_mnist.json");
    std::fs::write(&json, format!("[{}]", " ".repeat(17 << 20))).unwrap();
    let want = "model/fashion_mnist.json is 17825794 bytes, more than the 16777216 bytes fmtool reads";
    let out = hostile(dir.path(), &["check", "model"]);
    assert!(out.contains(want), "{out}");
    let out = hostile(dir.path(), &["score", "--model", "model"]);
    assert!(out.contains(want), "{out}");
}

#[test]
fn keras_archive_with_a_huge_config_is_refused_on_its_declared_size() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = zip_bytes(
        &[("metadata.json", b"{}".to_vec()), ("config.json", vec![b' '; 17 << 20]), ("model.weights.h5", Vec::new())],
        true,
    );
    assert!(bytes.len() < 100_000);
    std::fs::write(dir.path().join("model.keras"), bytes).unwrap();
    let out = hostile(dir.path(), &["convert", "model.keras", "--out", "out"]);
    assert!(
        out.contains("model.keras: config.json is 17825792 bytes, more than the 16777216 bytes fmtool reads for it"),
        "{out}"
    );
    let out = hostile(dir.path(), &["check", "model.keras"]);
    assert!(out.contains("config.json is 17825792 bytes"), "{out}");
}

/// A Keras 3 `.h5` fixture with the Dense kernel's dataspace patched to declare 8192x8192.
fn h5_with_huge_dataset() -> Vec<u8> {
    let mut d = std::fs::read(fixture("keras3/identities/model.h5")).unwrap();
    let pat: Vec<u8> = [338u64, 10].iter().flat_map(|v| v.to_le_bytes()).collect();
    let at = d.windows(16).position(|w| w == pat).expect("the kernel's dataspace");
    let big: Vec<u8> = [8192u64, 8192].iter().flat_map(|v| v.to_le_bytes()).collect();
    d[at..at + 16].copy_from_slice(&big);
    d
}

#[test]
fn h5_dataset_declaring_too_many_values_is_refused_before_reading() {
    let dir = repo_with_model();
    std::fs::write(dir.path().join("big.h5"), h5_with_huge_dataset()).unwrap();
    let want = "dataset \"dense/kernel\" has shape [8192, 8192] (67108864 values), over the budget of 16777216 values";
    let out = hostile(dir.path(), &["convert", "big.h5", "--out", "out"]);
    assert!(out.contains("big.h5") && out.contains(want), "{out}");
    // The stale-.h5 comparison beside an export reads it the same way: a warning, not an abort.
    std::fs::write(dir.path().join("model/fashion_mnist.h5"), h5_with_huge_dataset()).unwrap();
    let out = Command::new("timeout")
        .args(["10", "prlimit", "--as=1073741824", "--"])
        .arg(env!("CARGO_BIN_EXE_fmtool"))
        .args(["check", "model"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(matches!(out.status.code(), Some(0..=2)), "{text}");
    assert!(text.contains(want), "{text}");
}

#[test]
fn h5_with_a_user_block_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = vec![0u8; 512];
    bytes.extend(std::fs::read(fixture("keras3/identities/model.h5")).unwrap());
    std::fs::write(dir.path().join("ub.h5"), bytes).unwrap();
    let run = fmtool_in(dir.path(), &["convert", "ub.h5", "--out", "out"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(dir.path().join("out/fashion_mnist.npz").is_file());
}

fn jpeg_28() -> Vec<u8> {
    let mut out = Vec::new();
    let pixels: Vec<u8> = (0..784).map(|i| (i % 251) as u8).collect();
    image::codecs::jpeg::JpegEncoder::new(&mut out).encode(&pixels, 28, 28, image::ExtendedColorType::L8).unwrap();
    out
}

fn png_28() -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, 28, 28);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(&[7u8; 784]).unwrap();
    out
}

#[test]
fn jpeg_declaring_65535_squared_pixels_is_refused_before_decoding() {
    let mut j = jpeg_28();
    let sof = j.windows(2).position(|w| w == [0xff, 0xc0]).expect("a baseline JPEG");
    j[sof + 5..sof + 9].copy_from_slice(&[0xff, 0xff, 0xff, 0xff]);
    let dir = repo_with_model();
    std::fs::write(dir.path().join("huge.jpg"), j).unwrap();
    let out = hostile(dir.path(), &["predict", "huge.jpg"]);
    assert!(out.contains("huge.jpg is 65535x65535 pixels, larger than fmtool reads"), "{out}");
}

#[test]
fn png_declaring_20000_squared_pixels_is_refused_before_decoding() {
    let mut p = png_28();
    // IHDR: length (4), "IHDR", width (4), height (4), ...; its CRC covers type and data.
    p[16..20].copy_from_slice(&20000u32.to_be_bytes());
    p[20..24].copy_from_slice(&20000u32.to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(&p[12..29]);
    p[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    let dir = repo_with_model();
    std::fs::write(dir.path().join("huge.png"), p).unwrap();
    let out = hostile(dir.path(), &["predict", "huge.png"]);
    assert!(out.contains("huge.png is 20000x20000 pixels, larger than fmtool reads"), "{out}");
}

#[test]
fn pictures_cut_in_half_are_refused() {
    let dir = repo_with_model();
    let j = jpeg_28();
    std::fs::write(dir.path().join("half.jpg"), &j[..j.len() / 2]).unwrap();
    let out = hostile(dir.path(), &["predict", "half.jpg"]);
    assert!(out.contains("half.jpg is cut short: its end-of-image marker is missing"), "{out}");
    let p = png_28();
    std::fs::write(dir.path().join("half.png"), &p[..p.len() - 12]).unwrap();
    let out = hostile(dir.path(), &["predict", "half.png"]);
    assert!(out.contains("half.png is cut short: its IEND chunk is missing"), "{out}");
    // The whole pictures are still read.
    std::fs::write(dir.path().join("whole.jpg"), &j).unwrap();
    assert_eq!(fmtool_in(dir.path(), &["predict", "whole.jpg"]).code, 0);
}

#[test]
fn idx_header_declaring_more_than_the_budget_is_refused() {
    let dir = repo_with_model();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    // 60000 x 2000 x 2000 images declared in 16 bytes; labels fine.
    let mut images = vec![0, 0, 8, 3];
    for d in [60000u32, 2000, 2000] {
        images.extend_from_slice(&d.to_be_bytes());
    }
    std::fs::write(data.join("t10k-images-idx3-ubyte"), &images).unwrap();
    let mut labels = vec![0, 0, 8, 1];
    labels.extend_from_slice(&1u32.to_be_bytes());
    labels.push(0);
    std::fs::write(data.join("t10k-labels-idx1-ubyte"), &labels).unwrap();
    let out = hostile(dir.path(), &["score", "--model", "model", "--data", "data"]);
    assert!(
        out.contains("t10k-images-idx3-ubyte: the header declares [60000, 2000, 2000] (240000000000 bytes), more than"),
        "{out}"
    );
    // The same header gzipped, with 50 MB of zeros behind it: refused before inflating them.
    std::fs::remove_file(data.join("t10k-images-idx3-ubyte")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&images).unwrap();
    gz.write_all(&vec![0u8; 50 << 20]).unwrap();
    std::fs::write(data.join("t10k-images-idx3-ubyte.gz"), gz.finish().unwrap()).unwrap();
    let out = hostile(dir.path(), &["score", "--model", "model", "--data", "data"]);
    assert!(
        out.contains("t10k-images-idx3-ubyte.gz: the header declares 240000000000 bytes of data, more than"),
        "{out}"
    );
}

// ---- NumPy's reading, exactly: a differential test against real NumPy ----

/// Builds each case's zip with Python's zipfile (which, unlike the zip crate, writes duplicate
/// member names), then answers every query with `np.load(path)[key]`.
const NUMPY_LOADER: &str = r#"
import json, sys, zipfile, warnings
import numpy as np
warnings.simplefilter("ignore")
cases = json.load(open(sys.argv[1]))
out = {}
for c in cases:
    with zipfile.ZipFile(c["file"], "w") as z:
        for name, hexbytes in c["members"]:
            z.writestr(name, bytes.fromhex(hexbytes))
    answers = []
    for q in c["queries"]:
        try:
            with np.load(c["file"]) as f:
                a = f[q]
            if not isinstance(a, np.ndarray):
                raise ValueError("not an array")
            answers.append({"shape": list(a.shape), "values": [float(v) for v in a.ravel(order="C")]})
        except Exception as e:
            answers.append({"err": type(e).__name__ + ": " + str(e)[:200]})
    out[c["file"]] = answers
json.dump(out, open(sys.argv[2], "w"))
"#;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A .npy with header text `h` (not padded), format `major.minor`, and `data`.
fn npy_raw(major: u8, minor: u8, h: &str, data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x93, b'N', b'U', b'M', b'P', b'Y', major, minor];
    if major == 1 {
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(h.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out
}

fn f4_le(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn npz_reading_matches_real_numpy() {
    let Some(py) = python_with_numpy() else {
        assert!(std::env::var("FMTOOL_NO_PYTHON").is_ok_and(|v| v == "1"), "no Python with NumPy (set FMTOOL_PYTHON)");
        return;
    };
    let six = f4_le(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let six_be: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0].iter().flat_map(|x| x.to_be_bytes()).collect();
    let std = "'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)";
    // (header text, format major, minor, data): each becomes member "a.npy", queried as "a".
    let headers: Vec<(String, u8, u8, Vec<u8>)> = vec![
        (format!("{{{std}, }}\n"), 1, 0, six.clone()),
        ("{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2, 3)}\n".into(), 1, 0, six.clone()),
        ("{'descr':'<f4','fortran_order':False,'shape':(2,3)}".into(), 1, 0, six.clone()),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'shape': (2, 3)}\n".to_string(), 1, 0, six.clone()),
        ("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), 'descr': '<f4'}\n".into(), 1, 0, six.clone()),
        (
            "{'fortran_order': True, 'descr': '<f4', 'shape': (2, 3), 'fortran_order': False}\n".into(),
            1,
            0,
            six.clone(),
        ),
        (format!("{{{std}, 'extra': 1}}\n"), 1, 0, six.clone()),
        (format!("{{{std}}} x\n"), 1, 0, six.clone()),
        (format!("{{{std}}}\n  "), 1, 0, six.clone()),
        (format!("{{{std}}}    \n"), 1, 0, six.clone()),
        ("{'descr': '<f4', 'fortran_order': False}\n".into(), 1, 0, six.clone()),
        ("{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}\n".into(), 1, 0, six.clone()),
        ("{'descr': '<f4',\n 'fortran_order': False,\n    'shape': (2, 3)}\n".into(), 1, 0, six.clone()),
        (format!("{{{std}}} # a comment\n"), 1, 0, six.clone()),
        ("{'descr': '<f4', # why\n 'fortran_order': False, 'shape': (2,3)}\n".into(), 1, 0, six.clone()),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3]}\n".into(), 1, 0, six.clone()),
        ("{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3)}\n".into(), 1, 0, six.clone()),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }\n".into(), 1, 0, six.clone()),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }\n".into(), 2, 0, six.clone()),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }\n".into(), 3, 0, six.clone()),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (True, 6)}\n".into(), 1, 0, six.clone()),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (-2, -3)}\n".into(), 1, 0, six.clone()),
        ("{'descr': '<' 'f4', 'fortran_order': False, 'shape': (2, 3)}\n".into(), 1, 0, six.clone()),
        ("{u'descr': u'<f4', 'fortran_order': False, 'shape': (2, 3)}\n".into(), 1, 0, six.clone()),
        ("{b'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}\n".into(), 1, 0, six.clone()),
        (format!("({{{std}}})\n"), 1, 0, six.clone()),
        (format!("{{{std}}}\n"), 2, 0, six.clone()),
        (format!("{{{std}}}\n"), 3, 0, six.clone()),
        (format!("{{{std}}}\n"), 1, 1, six.clone()),
        (format!("{{{std}}}\n"), 4, 0, six.clone()),
        (format!("{{{std}}}\0\n"), 1, 0, six.clone()),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (6)}\n".into(), 1, 0, six.clone()),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (0x2, 0b11)}\n".into(), 1, 0, six.clone()),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 0_3)}\n".into(), 1, 0, six.clone()),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (02, 3)}\n".into(), 1, 0, six.clone()),
        ("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3)}\n".into(), 1, 0, six.clone()),
        ("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3)}\n".into(), 1, 0, six_be.clone()),
        (format!("{{{std}}}{}\n", " ".repeat(10_000)), 2, 0, six.clone()),
        (format!("{{{std}}}{}\n", " ".repeat(9_000)), 2, 0, six.clone()),
        ("{'descr': '\\x3cf4', 'fortran_order': False, 'shape': (2, 3)}\n".into(), 1, 0, six.clone()),
        ("{'descr': r'<f4', 'fortran_order': False, 'shape': (2, 3)}\n".into(), 1, 0, six.clone()),
        ("{'descr': '''<f4''', 'fortran_order': False, 'shape': (2, 3)}\n".into(), 1, 0, six.clone()),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3,)}\n".into(), 1, 0, six.clone()),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,, 3)}\n".into(), 1, 0, six.clone()),
        ("{}\n".into(), 1, 0, six.clone()),
        ("{'descr', 'fortran_order', 'shape'}\n".into(), 1, 0, six.clone()),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (+2, 3)}\n".into(), 1, 0, six.clone()),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (--2, 3)}\n".into(), 1, 0, six.clone()),
        (format!("\n{{{std}}}\n"), 1, 0, six.clone()),
        (format!("  \t{{{std}}}\n"), 1, 0, six.clone()),
        (format!("\n  {{{std}}}\n"), 1, 0, six.clone()),
        (format!("{{{std}, True: 1}}\n"), 1, 0, six.clone()),
        (format!("{{{std}}};\n"), 1, 0, six.clone()),
        (format!("{{{std}}}\r\n"), 1, 0, six.clone()),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}\n".into(), 1, 0, six[..20].to_vec()),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}\n".into(), 1, 0, [&six[..], &[0u8; 8]].concat()),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), **{}}\n".into(), 1, 0, six.clone()),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (2.0, 3)}\n".into(), 1, 0, six.clone()),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)".into(), 1, 0, six.clone()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut cases = Vec::new();
    for (i, (h, major, minor, data)) in headers.iter().enumerate() {
        let file = dir.path().join(format!("h{i}.npz"));
        let member = hex(&npy_raw(*major, *minor, h, data));
        cases.push(serde_json::json!({"file": file, "members": [["a.npy", member]], "queries": ["a", "a.npy"]}));
    }
    // Member lookup: which member `np.load(f)[key]` reads when names collide.
    let one = hex(&npy(&format!("{{{std}, }}"), &six));
    let two =
        hex(&npy("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", &f4_le(&[9.0, 8.0, 7.0, 6.0, 5.0, 4.0])));
    type Members<'a> = Vec<(&'a str, &'a String)>;
    let lookups: Vec<(Members, Vec<&str>)> = vec![
        (vec![("dense_0.npy", &one), ("dense_0", &two)], vec!["dense_0", "dense_0.npy"]),
        (vec![("dense_0", &two), ("dense_0.npy", &one)], vec!["dense_0", "dense_0.npy"]),
        (vec![("w.npy", &one)], vec!["w", "w.npy", "w.npy.npy"]),
        (vec![("w.npy.npy", &one)], vec!["w", "w.npy", "w.npy.npy"]),
        (vec![("w.npy", &one), ("w.npy.npy", &two)], vec!["w", "w.npy", "w.npy.npy"]),
        (vec![("w.npy.npy", &two), ("w.npy", &one)], vec!["w", "w.npy", "w.npy.npy"]),
        (vec![("x", &one)], vec!["x", "x.npy"]),
        (vec![("a.npy", &one), ("a.npy", &two)], vec!["a", "a.npy"]),
        (vec![("a", &one), ("a", &two), ("a.npy", &one)], vec!["a", "a.npy"]),
    ];
    for (i, (members, queries)) in lookups.iter().enumerate() {
        let file = dir.path().join(format!("l{i}.npz"));
        cases.push(serde_json::json!({"file": file, "members": members, "queries": queries}));
    }
    let manifest = dir.path().join("cases.json");
    let answers = dir.path().join("answers.json");
    std::fs::write(&manifest, serde_json::to_vec(&cases).unwrap()).unwrap();
    let script = dir.path().join("load.py");
    std::fs::write(&script, NUMPY_LOADER).unwrap();
    let run = Command::new(&py).arg(&script).arg(&manifest).arg(&answers).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let answers: serde_json::Value = serde_json::from_slice(&std::fs::read(&answers).unwrap()).unwrap();
    let mut mismatches = Vec::new();
    for c in &cases {
        let file = c["file"].as_str().unwrap();
        let npz = fmtool::model::npz::read_npz(Path::new(file));
        for (q, want) in c["queries"].as_array().unwrap().iter().zip(answers[file].as_array().unwrap()) {
            let q = q.as_str().unwrap();
            let got = match &npz {
                Err(e) => Err(e.message.clone()),
                Ok(n) => n.array(q).map_err(|e| e.message).map(|a| (a.shape.clone(), a.values().collect::<Vec<f64>>())),
            };
            let agree = match (&got, want.get("err")) {
                (Err(_), Some(_)) => true,
                (Ok((shape, values)), None) => {
                    let ws: Vec<usize> = serde_json::from_value(want["shape"].clone()).unwrap();
                    let wv: Vec<f64> = serde_json::from_value(want["values"].clone()).unwrap();
                    *shape == ws && *values == wv
                }
                _ => false,
            };
            if !agree {
                let members: Vec<&str> =
                    c["members"].as_array().unwrap().iter().map(|m| m[0].as_str().unwrap()).collect();
                let header = headers.get(file_index(file)).map(|h| format!("{:?} v{}.{}", h.0, h.1, h.2));
                mismatches.push(format!("{members:?} {header:?} [{q}]: numpy {want}, fmtool {got:?}"));
            }
        }
    }
    assert!(cases.len() >= 60, "{} cases", cases.len());
    assert!(mismatches.is_empty(), "{} disagreements with NumPy:\n{}", mismatches.len(), mismatches.join("\n"));
}

/// The header index of a `h<i>.npz` case file (lookup cases give an index past the list).
fn file_index(file: &str) -> usize {
    let name = Path::new(file).file_stem().unwrap().to_str().unwrap();
    name.strip_prefix('h').and_then(|n| n.parse().ok()).unwrap_or(usize::MAX)
}
