//! Crafted models and file-system traps for the engine and the writers (issue 11): each runs the
//! fmtool binary under 1 GiB of address space and 10 s, and must end with exit 1 or 2, a message
//! naming the layer or file, no panic and no leftover files.

use crate::common::root;
use ndarray::{ArrayD, IxDyn};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Stdio};

/// The result of one bounded run.
struct Bounded {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs fmtool with `args` in `dir` under `prlimit --as=1GiB` and `timeout 10`; it must exit 1 or 2.
fn bounded_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Bounded {
    let r = run_bounded(dir, args, env);
    assert!(
        r.code == 1 || r.code == 2,
        "{args:?}: exit {} (1 or 2 expected; 101/134 is a panic or abort, -1 a kill)\n{}\n{}",
        r.code,
        r.stdout,
        r.stderr
    );
    r
}

/// Like [`bounded_in`], for `score`, which reports a model that does not run and exits 0 (it
/// grades it with 0 points): any exit but a panic, an abort or a kill.
fn run_bounded(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Bounded {
    let out = Command::new("timeout")
        .args(["-s", "KILL", "10", "prlimit", "--as=1073741824", "--"])
        .arg(env!("CARGO_BIN_EXE_fmtool"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("timeout and prlimit run");
    let r = Bounded {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        [0, 1, 2].contains(&r.code),
        "{args:?}: exit {} (a panic, an abort or a kill)\n{}\n{}",
        r.code,
        r.stdout,
        r.stderr
    );
    assert!(!r.stderr.contains("panicked"), "{args:?}: {}", r.stderr);
    r
}

fn bounded(args: &[&str]) -> Bounded {
    bounded_in(&root(), args, &[])
}

/// Writes a course-format model: `layers` after a (28, 28, 1) InputLayer, and `arrays`.
pub fn model(dir: &Path, layers: Value, arrays: &[(&str, &[usize])]) {
    let mut all =
        vec![json!({"name": "in", "type": "InputLayer", "config": {"batch_shape": [null, 28, 28, 1]}, "weights": []})];
    all.extend(layers.as_array().unwrap().iter().cloned());
    std::fs::write(dir.join("fashion_mnist.json"), serde_json::to_string(&all).unwrap()).unwrap();
    let arrays: Vec<(String, ArrayD<f32>)> =
        arrays.iter().map(|(k, s)| (k.to_string(), ArrayD::from_elem(IxDyn(s), 0.01f32))).collect();
    let f = std::fs::File::create(dir.join("fashion_mnist.npz")).unwrap();
    fmtool::model::npz::write_npz(f, &arrays).unwrap();
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// `check` and `score` on one crafted model: both refuse it, naming `layer` and `words`.
fn both_refuse(layers: Value, arrays: &[(&str, &[usize])], layer: &str, words: &str) {
    let tmp = tempfile::tempdir().unwrap();
    model(tmp.path(), layers, arrays);
    let d = tmp.path().to_str().unwrap();
    let c = bounded(&["check", d]);
    assert_eq!(c.code, 1, "{}{}", c.stdout, c.stderr);
    assert!(c.stdout.contains(layer) && c.stdout.contains(words), "check: {}", c.stdout);
    let s = run_bounded(&root(), &["score", "--model", d], &[]);
    let all = format!("{}{}", s.stdout, s.stderr);
    assert!(all.contains(layer) && all.contains("DOES NOT RUN") || s.code == 2, "score: {all}");
    assert_eq!(files(tmp.path()), ["fashion_mnist.json", "fashion_mnist.npz"]);
}

#[test]
fn dense_with_zero_units_before_dense_prelu_and_normalization() {
    for (next, arrays) in [
        (
            json!({"name": "d2", "type": "Dense", "config": {"units": 10}, "weights": ["d2_0", "d2_1"]}),
            vec![("d2_0", vec![0, 10]), ("d2_1", vec![10])],
        ),
        (json!({"name": "p", "type": "PReLU", "config": {}, "weights": ["p_0"]}), vec![("p_0", vec![0])]),
        (
            json!({"name": "bn", "type": "BatchNormalization", "config": {}, "weights": ["b0", "b1", "b2", "b3"]}),
            vec![("b0", vec![0]), ("b1", vec![0]), ("b2", vec![0]), ("b3", vec![0])],
        ),
        (
            json!({"name": "ln", "type": "LayerNormalization", "config": {}, "weights": ["l0", "l1"]}),
            vec![("l0", vec![0]), ("l1", vec![0])],
        ),
    ] {
        let layers = json!([
            {"name": "f", "type": "Flatten", "config": {}, "weights": []},
            {"name": "zero_units", "type": "Dense", "config": {"units": 0}, "weights": ["z_0", "z_1"]},
            next,
        ]);
        let mut all: Vec<(&str, &[usize])> = vec![("z_0", &[784, 0]), ("z_1", &[0])];
        all.extend(arrays.iter().map(|(k, s)| (*k, s.as_slice())));
        both_refuse(layers, &all, "zero_units", "axis of size 0");
    }
}

#[test]
fn separable_conv_with_zero_filters() {
    let layers = json!([{"name": "sep0", "type": "SeparableConv2D", "config": {"filters": 0, "kernel_size": 3}, "weights": ["s0", "s1"]}]);
    both_refuse(layers, &[("s0", &[3, 3, 1, 1]), ("s1", &[1, 1, 1, 0])], "sep0", "");
}

#[test]
fn padding_cropping_and_upsampling_beyond_any_image() {
    let big = 1u64 << 63;
    for (class, key, v, words) in [
        ("ZeroPadding2D", "padding", json!([[big, big], [1, 1]]), "at most"),
        ("Cropping2D", "cropping", json!([[big, big], [0, 0]]), "at most"),
        ("UpSampling2D", "size", json!(1000), "more than fmtool runs"),
    ] {
        let layers = json!([{"name": "evil_layer", "type": class, "config": {key: v}, "weights": []}]);
        both_refuse(layers, &[], "evil_layer", words);
    }
}

#[test]
fn same_pooling_with_a_huge_pool_answers_at_once() {
    for pool in [1000, 100_000] {
        let layers = json!([
            {"name": "big_pool", "type": "MaxPooling2D", "config": {"pool_size": pool, "padding": "same"}, "weights": []},
            {"name": "f", "type": "Flatten", "config": {}, "weights": []},
        ]);
        // The model runs (one value per image), so the only finding is its output shape.
        both_refuse(layers, &[], "(None, 1)", "");
    }
}

/// Dense acts on the last axis at every position of the others: on a (112, 112, 1024) tensor a
/// Dense(1024) costs 2.6e10 operations per image, not the 2.1e6 its kernel alone would say, and is
/// refused by the per-layer limit before anything runs (issue 28: it ran for hours).
#[test]
fn dense_over_a_spatial_tensor_is_costed_over_every_position() {
    let layers = json!([
        {"name": "up", "type": "UpSampling2D", "config": {"size": 4}, "weights": []},
        {"name": "wide", "type": "Dense", "config": {"units": 1024}, "weights": ["w0", "w1"]},
        {"name": "spatial_dense", "type": "Dense", "config": {"units": 1024}, "weights": ["s0", "s1"]},
        {"name": "f", "type": "Flatten", "config": {}, "weights": []},
    ]);
    let arrays: &[(&str, &[usize])] = &[("w0", &[1, 1024]), ("w1", &[1024]), ("s0", &[1024, 1024]), ("s1", &[1024])];
    both_refuse(layers, arrays, "spatial_dense", "floating-point operations per image");
}

/// Pooling is costed by the taps it visits: a 2800-pixel max-pooling window over a 2800x2800
/// upsampled image (3e13 taps per image, days of work) is refused by the per-layer limit before it
/// runs; the same window as an average goes through the summed-area table and is cheap.
#[test]
fn a_huge_max_pooling_window_over_a_huge_image_is_refused_before_it_runs() {
    let layers = json!([
        {"name": "up", "type": "UpSampling2D", "config": {"size": 100}, "weights": []},
        {"name": "huge_pool", "type": "MaxPooling2D", "config": {"pool_size": 2800, "strides": 1, "padding": "same"}, "weights": []},
        {"name": "f", "type": "Flatten", "config": {}, "weights": []},
    ]);
    both_refuse(layers, &[], "huge_pool", "floating-point operations per image");
}

#[test]
fn terminal_escapes_in_layer_names_are_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let layers = json!([{"name": "\u{1b}[2Jevil", "type": "Dense", "config": {"units": 0}, "weights": ["a", "b"]}]);
    model(tmp.path(), layers, &[("a", &[1, 0]), ("b", &[0])]);
    let c = bounded(&["check", tmp.path().to_str().unwrap()]);
    assert!(!c.stdout.contains('\u{1b}') && !c.stderr.contains('\u{1b}'), "{:?}", c.stdout);
    assert!(c.stdout.contains("\\u{1b}[2Jevil"), "{}", c.stdout);
}

/// An npz whose one member `key` is a float64 array of `values`, written as NumPy lays it out.
fn npz_f64(path: &Path, key: &str, shape: &[usize], values: &[f64]) {
    use std::io::Write;
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    npy.extend((header.len() as u16).to_le_bytes());
    npy.extend(header.as_bytes());
    for v in values {
        npy.extend(v.to_le_bytes());
    }
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file(format!("{key}.npy"), opts).unwrap();
    zip.write_all(&npy).unwrap();
    zip.finish().unwrap();
}

#[test]
fn a_float64_weight_beyond_float32_is_a_check_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let arch = json!([
        {"name": "f", "type": "Flatten", "config": {}, "weights": []},
        {"name": "d", "type": "Dense", "config": {"units": 10, "activation": "softmax", "use_bias": false}, "weights": ["huge_kernel"]},
    ]);
    std::fs::write(tmp.path().join("fashion_mnist.json"), arch.to_string()).unwrap();
    let mut values = vec![0.0; 7840];
    values[5] = 1e300;
    npz_f64(&tmp.path().join("fashion_mnist.npz"), "huge_kernel", &[784, 10], &values);
    let c = bounded(&["check", tmp.path().to_str().unwrap()]);
    assert_eq!(c.code, 1, "{}", c.stdout);
    assert!(c.stdout.contains("huge_kernel") && c.stdout.contains("float32"), "{}", c.stdout);
}

#[test]
fn a_closed_stdout_keeps_checks_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let layers = json!([{"name": "d0", "type": "Dense", "config": {"units": 0}, "weights": ["a", "b"]}]);
    model(tmp.path(), layers, &[("a", &[1, 0]), ("b", &[0])]);
    // `fmtool check m | head -0`: the reader is gone before fmtool writes.
    let out = Command::new("sh")
        .arg("-c")
        .arg("\"$0\" check \"$1\" | true; exit 0")
        .arg(env!("CARGO_BIN_EXE_fmtool"))
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut child = Command::new(env!("CARGO_BIN_EXE_fmtool"))
        .arg("check")
        .arg(tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    assert_eq!(child.wait().unwrap().code(), Some(1));
}

#[test]
fn an_empty_data_set_is_an_error_not_nan() {
    let tmp = tempfile::tempdir().unwrap();
    let mut images = vec![0, 0, 8, 3];
    images.extend(0u32.to_be_bytes());
    images.extend(28u32.to_be_bytes());
    images.extend(28u32.to_be_bytes());
    let mut labels = vec![0, 0, 8, 1];
    labels.extend(0u32.to_be_bytes());
    std::fs::write(tmp.path().join("t10k-images-idx3-ubyte"), images).unwrap();
    std::fs::write(tmp.path().join("t10k-labels-idx1-ubyte"), labels).unwrap();
    let m = root().join("tests/fixtures/keras3/mlp_784");
    let s = bounded(&[
        "score",
        "--model",
        m.to_str().unwrap(),
        "--data",
        tmp.path().to_str().unwrap(),
        "--min-accuracy",
        "0.5",
    ]);
    assert_eq!(s.code, 2);
    assert!(s.stderr.contains("0 images") && !s.stdout.contains("NaN"), "{}{}", s.stdout, s.stderr);
}

#[cfg(unix)]
#[test]
fn convert_refuses_a_dangling_symlink_and_replaces_only_the_link_with_force() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("elsewhere/x.npz"), out.join("fashion_mnist.npz")).unwrap();
    let input = root().join("tests/fixtures/keras3/identities/model.h5");
    let args = ["convert", input.to_str().unwrap(), "--out", out.to_str().unwrap()];
    let r = bounded(&args);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("fashion_mnist.npz") && r.stderr.contains("symbolic link"), "{}", r.stderr);
    assert!(!r.stdout.contains("wrote"), "{}", r.stdout);
    assert_eq!(files(&out), ["fashion_mnist.npz"]);
    // With --force the link itself is replaced by the file; nothing is written through it.
    let ok = crate::common::fmtool(&[&args[..], &["--force"]].concat());
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(std::fs::symlink_metadata(out.join("fashion_mnist.npz")).unwrap().is_file());
    assert!(!tmp.path().join("elsewhere").exists());
    assert_eq!(files(&out), ["fashion_mnist.json", "fashion_mnist.npz"]);
}

#[cfg(unix)]
#[test]
fn hook_install_refuses_a_dangling_pre_commit_symlink() {
    let tmp = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| Command::new("git").args(args).current_dir(tmp.path()).output().unwrap();
    assert!(git(&["init", "-q"]).status.success());
    let hooks = tmp.path().join(".git/hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    std::os::unix::fs::symlink("/nonexistent/hook", hooks.join("pre-commit")).unwrap();
    let r = bounded(&["hook", "install", "--repo", tmp.path().to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("pre-commit") && r.stderr.contains("already exists"), "{}", r.stderr);
    assert!(std::fs::symlink_metadata(hooks.join("pre-commit")).unwrap().file_type().is_symlink());
}

#[cfg(unix)]
#[test]
fn the_hook_checks_models_under_odd_names_and_option_like_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path();
    let git = |args: &[&str]| {
        let o = Command::new("git").args(args).current_dir(repo).output().unwrap();
        assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    git(&["init", "-q"]);
    let r = crate::common::fmtool(&["hook", "install", "--repo", repo.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let broken = json!([{"name": "d0", "type": "Dense", "config": {"units": 0}, "weights": ["a", "b"]}]);
    let good = root().join("tests/fixtures/keras3/mlp_784");
    // A good model under an option-like folder passes; a broken one under any name is blocked.
    for (folder, ok) in
        [("-x", true), ("--format=json", true), ("-x", false), ("tab\there", false), ("new\nline \"q\" \\", false)]
    {
        let d = repo.join(folder);
        std::fs::create_dir(&d).unwrap();
        if ok {
            for f in ["fashion_mnist.json", "fashion_mnist.npz"] {
                std::fs::copy(good.join(f), d.join(f)).unwrap();
            }
        } else {
            model(&d, broken.clone(), &[("a", &[1, 0]), ("b", &[0])]);
        }
        git(&["add", "--", folder]);
        let out = Command::new("sh")
            .arg(repo.join(".git/hooks/pre-commit"))
            .current_dir(repo)
            .env("FMTOOL", env!("CARGO_BIN_EXE_fmtool"))
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(if ok { 0 } else { 1 }), "{folder:?}: {text}");
        if !ok {
            assert!(text.contains("axis of size 0"), "{folder:?}: {text}");
        }
        git(&["rm", "-q", "-r", "--cached", "--", folder]);
        std::fs::remove_dir_all(&d).unwrap();
    }
}

#[cfg(unix)]
#[test]
fn a_signal_during_convert_leaves_nothing_behind() {
    use std::os::unix::process::ExitStatusExt;
    let input = root().join("model/ensemble/fashion_mnist.h5");
    // Signals at several moments of the run: before, while and after the files are staged.
    for (i, ms) in [0u64, 20, 40, 60, 80, 100, 130, 160].into_iter().enumerate() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("new/deeper");
        let mut child = Command::new(env!("CARGO_BIN_EXE_fmtool"))
            .arg("convert")
            .arg(&input)
            .arg("--out")
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(ms));
        let sig = if i % 2 == 0 { "-TERM" } else { "-INT" };
        let _ = Command::new("kill").args([sig, &child.id().to_string()]).status();
        let status = child.wait().unwrap();
        let left: Vec<String> = walk(tmp.path());
        if status.success() {
            assert_eq!(files(&out), ["fashion_mnist.json", "fashion_mnist.npz"], "{ms} ms");
        } else {
            assert!(matches!(status.signal(), Some(2 | 15)), "{ms} ms: {status:?}");
            assert!(left.is_empty(), "{ms} ms: {sig} left {left:?}");
        }
    }
}

/// Every path under `dir`, recursively.
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        out.push(e.path().display().to_string());
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        }
    }
    out
}
