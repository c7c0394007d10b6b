//! A work budget for models (issue 28): small crafted models whose one image costs billions of
//! operations or gigabytes of live outputs, each refused by `check` (naming the layer and the
//! figures) and by `score` and `predict` at once (exit 2), under `prlimit --data=1GiB` (RLIMIT_DATA:
//! an address-space limit would also count every rayon thread's stack) and never an abort; the
//! shipped models and every model fixture stay within the budget.

use crate::common::root;
use crate::hostile_engine::model;
use fmtool::cost::Budget;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn up(name: &str, size: usize) -> Value {
    json!({"name": name, "type": "UpSampling2D", "config": {"size": [size, size]}, "weights": []})
}

fn relu(name: &str, inbound: Option<&str>) -> Value {
    let mut v = json!({"name": name, "type": "ReLU", "config": {}, "weights": []});
    if let Some(i) = inbound {
        v["inbound"] = json!([i]);
    }
    v
}

/// A global pool and Dense(10, softmax): the model ends in 10 class scores.
fn head() -> Vec<Value> {
    vec![
        json!({"name": "gap", "type": "GlobalAveragePooling2D", "config": {}, "weights": []}),
        json!({"name": "out", "type": "Dense", "config": {"units": 10, "activation": "softmax"}, "weights": ["out_0", "out_1"]}),
    ]
}

/// One bomb: its layers and arrays, the layer check must name and a figure its message must hold.
struct Bomb {
    name: &'static str,
    layers: Vec<Value>,
    arrays: Vec<(&'static str, Vec<usize>)>,
    layer: &'static str,
    figure: &'static str,
}

fn bombs() -> Vec<Bomb> {
    let dense_head = vec![("out_0", vec![1, 10]), ("out_1", vec![10])];
    let mut chain = vec![up("up", 146)];
    chain.extend((0..30).map(|k| relu(&format!("relu{k}"), None)));
    chain.extend(head());
    let mut fan = vec![up("up", 100)];
    fan.extend((0..8).map(|k| relu(&format!("branch{k}"), Some("up"))));
    fan.push(json!({"name": "add", "type": "Add", "config": {}, "weights": [], "inbound": (0..8).map(|k| format!("branch{k}")).collect::<Vec<_>>()}));
    let mut fan_head = head();
    fan_head[0]["inbound"] = json!(["add"]);
    fan.extend(fan_head);
    vec![
        Bomb {
            name: "conv_after_upsampling",
            layers: [
                vec![
                    up("up", 73),
                    json!({"name": "conv", "type": "Conv2D", "config": {"filters": 1, "kernel_size": [22, 22], "padding": "same", "strides": [1, 1]}, "weights": ["conv_0", "conv_1"]}),
                ],
                head(),
            ]
            .concat(),
            arrays: [vec![("conv_0", vec![22, 22, 1, 1]), ("conv_1", vec![1])], dense_head.clone()].concat(),
            layer: "conv",
            figure: "GFLOP",
        },
        Bomb {
            name: "dense_on_spatial",
            layers: [
                vec![
                    up("up", 4),
                    json!({"name": "wide", "type": "Dense", "config": {"units": 1024}, "weights": ["wide_0", "wide_1"]}),
                    json!({"name": "wider", "type": "Dense", "config": {"units": 1024}, "weights": ["wider_0", "wider_1"]}),
                    json!({"name": "gap", "type": "GlobalAveragePooling2D", "config": {}, "weights": []}),
                    json!({"name": "out", "type": "Dense", "config": {"units": 10, "activation": "softmax"}, "weights": ["out_0", "out_1"]}),
                ],
            ]
            .concat(),
            arrays: vec![
                ("wide_0", vec![1, 1024]),
                ("wide_1", vec![1024]),
                ("wider_0", vec![1024, 1024]),
                ("wider_1", vec![1024]),
                ("out_0", vec![1024, 10]),
                ("out_1", vec![10]),
            ],
            layer: "wider",
            figure: "floating-point operations",
        },
        Bomb { name: "relu_chain", layers: chain, arrays: dense_head.clone(), layer: "relu", figure: "GFLOP" },
        Bomb { name: "add_fan_out", layers: fan, arrays: dense_head.clone(), layer: "branch7", figure: "MiB" },
        Bomb {
            name: "huge_max_pool",
            layers: [
                vec![
                    up("up", 100),
                    json!({"name": "pool", "type": "MaxPooling2D", "config": {"pool_size": [2800, 2800], "strides": [1, 1], "padding": "same"}, "weights": []}),
                ],
                head(),
            ]
            .concat(),
            arrays: dense_head,
            layer: "pool",
            figure: "floating-point operations",
        },
    ]
}

/// fmtool under `prlimit --data=1GiB` and a 20 s kill: its exit code, output and time.
fn limited(dir: &Path, args: &[&str]) -> (i32, String, Duration) {
    let start = Instant::now();
    let out = Command::new("timeout")
        .args(["-s", "KILL", "20", "prlimit", "--data=1073741824", "--"])
        .arg(env!("CARGO_BIN_EXE_fmtool"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("timeout and prlimit run");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("panicked") && !text.contains("memory allocation"), "{args:?}: {text}");
    (out.status.code().unwrap_or(-1), text, start.elapsed())
}

#[test]
fn every_bomb_is_refused_by_check_score_and_predict_at_once() {
    let mut failures = Vec::new();
    for b in bombs() {
        let dir = tempfile::tempdir().unwrap();
        let arrays: Vec<(&str, &[usize])> = b.arrays.iter().map(|(k, s)| (*k, s.as_slice())).collect();
        model(dir.path(), Value::Array(b.layers), &arrays);
        let d = dir.path().to_str().unwrap();
        let (code, text, _) = limited(&root(), &["check", d]);
        let named = text.lines().any(|l| l.contains("error[") && l.contains(b.layer) && l.contains(b.figure));
        if code != 1 || !named {
            failures.push(format!(
                "{}: check exit {code}, wants an error naming {} and {}:\n{text}",
                b.name, b.layer, b.figure
            ));
        }
        for args in [vec!["score", "--model", d], vec!["predict", "--model", d, "--out", "p.npy"]] {
            let (code, text, took) = limited(dir.path(), &args);
            if code != 2 || !text.contains(b.layer) || took > Duration::from_secs(5) {
                failures.push(format!(
                    "{}: {} exit {code} in {took:?}, wants 2 naming {}:\n{text}",
                    b.name, args[0], b.layer
                ));
            }
        }
        assert!(!dir.path().join("p.npy").exists(), "{}: predict wrote its output", b.name);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `--no-budget` makes check's finding a warning (exit 0) and lets predict run the model.
#[test]
fn no_budget_runs_it_anyway() {
    let dir = tempfile::tempdir().unwrap();
    // 70 ReLUs on a (2800, 2800, 1) upsampled image: 0.56 GFLOP per image, over the budget; a
    // fraction of a second per image.
    let mut layers = vec![up("up", 100)];
    layers.extend((0..70).map(|k| relu(&format!("relu{k}"), None)));
    layers.extend(head());
    model(dir.path(), Value::Array(layers), &[("out_0", &[1, 10]), ("out_1", &[10])]);
    let d = dir.path().to_str().unwrap();
    let (code, text, _) = limited(&root(), &["check", d]);
    assert!(code == 1 && text.contains("error[over-budget]") && text.contains("0.56 GFLOP"), "{text}");
    let (code, text, _) = limited(&root(), &["check", d, "--no-budget"]);
    assert!(code == 0 && text.contains("warning[over-budget]"), "{text}");
    // Two test images, as IDX files.
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mut images = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28];
    images.extend(std::iter::repeat_n(7u8, 2 * 784));
    std::fs::write(data.join("t10k-images-idx3-ubyte"), images).unwrap();
    std::fs::write(data.join("t10k-labels-idx1-ubyte"), [0, 0, 8, 1, 0, 0, 0, 2, 3, 4]).unwrap();
    let predict = |extra: &[&str]| {
        let mut args = vec!["predict", "--model", d, "--out", "p.npy", "--data", data.to_str().unwrap()];
        args.extend_from_slice(extra);
        limited(dir.path(), &args)
    };
    let (code, text, _) = predict(&[]);
    assert!(code == 2 && text.contains("too expensive to run"), "{text}");
    let (code, text, _) = predict(&["--no-budget"]);
    assert_eq!(code, 0, "{text}");
    assert!(dir.path().join("p.npy").is_file());
}

/// The shipped models and every model among the fixtures cost less than the budget (the same
/// figure check reports: the engine counts it as check does).
#[test]
fn the_shipped_models_and_the_fixtures_are_within_the_budget() {
    let mut dirs: Vec<std::path::PathBuf> = vec![root().join("model"), root().join("model/ensemble")];
    let mut stack = vec![root().join("tests/fixtures")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "fashion_mnist.json") {
                dirs.push(d.clone());
            }
        }
    }
    let mut built = 0;
    let mut over = Vec::new();
    for d in &dirs {
        let Ok(files) = fmtool::model::load(d) else { continue };
        let Ok(m) = fmtool::engine::Model::build(&files.arch, &files.npz) else { continue };
        built += 1;
        if let Some(why) = m.cost.over(&Budget::PER_IMAGE) {
            over.push(format!("{}: {why}", d.display()));
        }
    }
    assert!(built >= 20, "only {built} models built");
    assert!(over.is_empty(), "{}", over.join("\n"));
    let ensemble = fmtool::model::load(&root().join("model/ensemble")).unwrap();
    let m = fmtool::engine::Model::build(&ensemble.arch, &ensemble.npz).unwrap();
    assert!(m.cost.flops > 100_000_000 && m.cost.flops < Budget::PER_IMAGE.flops, "{}", m.cost.flops);
}
