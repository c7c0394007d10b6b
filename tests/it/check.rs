//! `fmtool check`: each finding on a minimal broken copy of a real-Keras fixture, the exit codes,
//! the JSON report against its schema, and the schemas kept in step with the code.

use crate::common::*;
use serde_json::{Value, json};
use std::path::Path;

/// A temporary copy of a real-Keras MLP (Flatten, Dense relu, Dropout, Dense softmax).
fn good_model() -> tempfile::TempDir {
    let tmp = tempdir();
    let src = fixture("keras3/mlp_flatten");
    for f in ["fashion_mnist.json", "fashion_mnist.npz"] {
        std::fs::copy(src.join(f), tmp.path().join(f)).unwrap();
    }
    tmp
}

fn arch(dir: &Path) -> Vec<Value> {
    serde_json::from_str::<Value>(&std::fs::read_to_string(dir.join("fashion_mnist.json")).unwrap())
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn write_arch(dir: &Path, a: &[Value]) {
    std::fs::write(dir.join("fashion_mnist.json"), serde_json::to_string(a).unwrap()).unwrap();
}

/// Rewrites the npz through `edit`, which gets and returns (key, array) pairs.
fn edit_npz(dir: &Path, edit: impl FnOnce(Vec<(String, ndarray::ArrayD<f32>)>) -> Vec<(String, ndarray::ArrayD<f32>)>) {
    let npz = fmtool::model::npz::read_npz(&dir.join("fashion_mnist.npz")).unwrap();
    let arrays = npz.entries.iter().map(|e| (e.key.clone(), e.array.as_ref().unwrap().to_f32())).collect();
    let f = std::fs::File::create(dir.join("fashion_mnist.npz")).unwrap();
    fmtool::model::npz::write_npz(f, &edit(arrays)).unwrap();
}

fn check(dir: &Path, extra: &[&str]) -> (i32, Value, String) {
    let d = dir.to_str().unwrap();
    let mut args = vec!["check", d, "--format", "json"];
    args.extend(extra);
    let run = fmtool(&args);
    let human = fmtool(&[&["check", d][..], extra].concat());
    assert_eq!(run.code, human.code);
    let v: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {} {}", run.stdout, run.stderr));
    (run.code, v, human.stdout)
}

fn codes(v: &Value) -> Vec<String> {
    v["findings"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap().to_string()).collect()
}

fn finding<'a>(v: &'a Value, code: &str) -> &'a Value {
    v["findings"].as_array().unwrap().iter().find(|f| f["code"] == code).unwrap_or_else(|| panic!("no {code} in {v}"))
}

#[test]
fn a_good_model_has_no_findings() {
    let tmp = good_model();
    let (code, v, human) = check(tmp.path(), &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(codes(&v), Vec::<String>::new());
    assert!(human.contains("no problems found"), "{human}");
}

#[test]
fn other_json_layouts_point_to_convert() {
    let tmp = good_model();
    for doc in [
        json!({"class_name": "Sequential", "config": {"name": "s", "layers": []}}),
        json!([{"class_name": "Dense", "config": {"units": 10}}]),
        json!({"layers": [{"name": "d", "type": "Dense", "config": {}, "weights": []}]}),
    ] {
        std::fs::write(tmp.path().join("fashion_mnist.json"), doc.to_string()).unwrap();
        let (code, v, _) = check(tmp.path(), &[]);
        assert_eq!(code, 1);
        let f = finding(&v, "not-course-layout");
        assert!(f["hint"].as_str().unwrap().contains("fmtool convert"), "{f}");
    }
    std::fs::write(tmp.path().join("fashion_mnist.json"), "[{\"name\": ").unwrap();
    let (code, v, _) = check(tmp.path(), &[]);
    assert_eq!((code, codes(&v)), (1, vec!["invalid-json".to_string()]));
}

#[test]
fn schema_violations_carry_json_pointers() {
    let tmp = good_model();
    let mut a = arch(tmp.path());
    a[1].as_object_mut().unwrap().remove("weights");
    write_arch(tmp.path(), &a);
    let (code, v, human) = check(tmp.path(), &[]);
    assert_eq!(code, 1);
    assert_eq!(finding(&v, "schema")["location"]["pointer"], "$[1]");
    assert!(human.contains("fashion_mnist.json::$[1]: error[schema]"), "{human}");
}

#[test]
fn unknown_layers_missing_and_shared_keys_and_unused_arrays_are_all_reported() {
    let tmp = good_model();
    let mut a = arch(tmp.path());
    let dense: Vec<usize> = (0..a.len()).filter(|&i| a[i]["type"] == "Dense").collect();
    let (first, last) = (dense[0], *dense.last().unwrap());
    let first_name = a[first]["name"].as_str().unwrap().to_string();
    // A type fmtool does not run, a weight name that is not in the npz, a key used twice.
    a[2]["type"] = json!("LSTM");
    a[first]["weights"][0] = json!(format!("{first_name}/kernel:0"));
    let shared = a[last]["weights"][1].clone();
    a[first]["weights"][1] = shared;
    write_arch(tmp.path(), &a);
    edit_npz(tmp.path(), |mut v| {
        v.push(("leftover".into(), ndarray::arr1(&[1.0f32]).into_dyn()));
        v
    });
    let (code, v, human) = check(tmp.path(), &[]);
    assert_eq!(code, 1);
    let c = codes(&v);
    for want in ["unsupported-layer", "missing-weight", "shared-weight", "unused-array"] {
        assert!(c.contains(&want.to_string()), "{want} missing from {c:?}");
    }
    let missing = finding(&v, "missing-weight");
    assert_eq!(missing["location"]["pointer"], format!("$[{first}].weights[0]"));
    assert!(missing["message"].as_str().unwrap().contains("is not in fashion_mnist.npz"));
    assert_eq!(finding(&v, "unused-array")["severity"], "warning");
    assert!(human.contains("hint:"), "{human}");
    assert_eq!(v["errors"].as_u64().unwrap() as usize, c.len() - v["warnings"].as_u64().unwrap() as usize);
}

#[test]
fn a_kernel_that_does_not_fit_names_the_layer_and_shapes() {
    let tmp = good_model();
    let a = arch(tmp.path());
    let dense = a.iter().find(|e| e["type"] == "Dense").unwrap();
    let key = dense["weights"][0].as_str().unwrap().to_string();
    edit_npz(tmp.path(), |v| {
        v.into_iter()
            .map(|(k, x)| if k == key { (k, x.reversed_axes().as_standard_layout().into_owned()) } else { (k, x) })
            .collect()
    });
    let (code, v, _) = check(tmp.path(), &[]);
    assert_eq!(code, 1);
    let f = finding(&v, "shape-mismatch");
    let msg = f["message"].as_str().unwrap();
    assert!(msg.contains("expected shape (784,") && msg.contains("found"), "{msg}");
    assert_eq!(f["location"]["layer"], dense["name"]);
}

#[test]
fn nan_weights_and_a_missing_softmax_are_reported() {
    let tmp = good_model();
    let mut a = arch(tmp.path());
    let last = a.len() - 1;
    a[last]["config"]["activation"] = json!("linear");
    write_arch(tmp.path(), &a);
    edit_npz(tmp.path(), |mut v| {
        v[0].1[[0, 0]] = f32::NAN;
        v
    });
    let (code, v, _) = check(tmp.path(), &[]);
    assert_eq!(code, 1);
    assert!(finding(&v, "non-finite")["message"].as_str().unwrap().contains("1 NaN"));
    assert_eq!(finding(&v, "no-softmax")["severity"], "warning");
}

#[test]
fn template_skips_are_warnings_and_errors_under_classic() {
    let dir = fixture_models("keras3")
        .into_iter()
        .chain(fixture_models("special"))
        .find(|d| {
            let t = layer_types(d);
            t.contains(&"BatchNormalization".to_string())
                && t.iter().all(|t| !t.starts_with("Conv") && t != "Normalization" && t != "Rescaling")
        })
        .expect("a Dense + BatchNormalization fixture");
    let (code, v, _) = check(&dir, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(finding(&v, "template-skips")["severity"], "warning");
    let (code, v, _) = check(&dir, &["--grader", "classic"]);
    assert_eq!(code, 1);
    assert_eq!(finding(&v, "template-skips")["severity"], "error");
}

#[test]
fn conv_models_fed_flat_rows_get_an_input_finding() {
    let dir = fixture_models("keras3").into_iter().find(|d| layer_types(d).iter().any(|t| t == "Conv2D")).unwrap();
    let (_, v, _) = check(&dir, &[]);
    let f = finding(&v, "input-reshape");
    assert_eq!(f["severity"], "warning");
    assert!(f["hint"].as_str().unwrap().contains("Reshape((28, 28, 1))"));
}

#[test]
fn a_stale_h5_beside_the_export_is_an_error_with_the_reexport_command() {
    let tmp = good_model();
    std::fs::copy(fixture("keras3/mlp_flatten/model.h5"), tmp.path().join("fashion_mnist.h5")).unwrap();
    let (code, v, _) = check(tmp.path(), &[]);
    assert_eq!(code, 0, "a matching h5 is fine: {v}");
    edit_npz(tmp.path(), |mut v| {
        v[0].1.mapv_inplace(|x| x * 1.5);
        v
    });
    let (code, v, _) = check(tmp.path(), &[]);
    assert_eq!(code, 1);
    let f = finding(&v, "stale-export");
    assert!(f["hint"].as_str().unwrap().contains("fmtool convert"), "{f}");
    assert!(f["hint"].as_str().unwrap().contains("--force"), "{f}");
}

#[test]
fn json_report_follows_its_schema() {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("schemas/check-report.schema.json")).unwrap())
            .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let tmp = good_model();
    let mut a = arch(tmp.path());
    a[0]["type"] = json!("Mystery");
    write_arch(tmp.path(), &a);
    let mut dirs = vec![tmp.path().to_path_buf()];
    dirs.extend(check_fixtures());
    dirs.extend(fixture_models("keras3"));
    let mut seen = std::collections::BTreeSet::new();
    for d in dirs {
        let (_, v, _) = check(&d, &["--grader", "classic"]);
        let errors: Vec<String> = validator.iter_errors(&v).map(|e| format!("{}: {e}", e.instance_path())).collect();
        assert_eq!(errors, Vec::<String>::new(), "{}", d.display());
        seen.extend(codes(&v));
    }
    // The schema was exercised by many kinds of finding, not just one.
    assert!(seen.len() >= 12, "{seen:?}");
}

#[test]
fn missing_directory_exits_2() {
    let run = fmtool(&["check", "no/such/model"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(run.stderr.contains("no/such/model"), "{}", run.stderr);
}

/// The committed schemas are generated from the code (the architecture schema's `type` enum is
/// the layer registry). Regenerate with FMTOOL_UPDATE_SCHEMAS=1 cargo test.
#[test]
fn schemas_are_in_step_with_the_code() {
    for (file, value) in [
        ("model-architecture.schema.json", fmtool::checks::schema::architecture_schema()),
        ("check-report.schema.json", fmtool::checks::schema::check_report_schema()),
    ] {
        let path = root().join("schemas").join(file);
        let want = serde_json::to_string_pretty(&value).unwrap() + "\n";
        if std::env::var_os("FMTOOL_UPDATE_SCHEMAS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        if have != want {
            panic!(
                "{file} is out of date; regenerate with FMTOOL_UPDATE_SCHEMAS=1 cargo test --test it schemas (- committed, + generated):\n{}",
                line_diff(&have, &want)
            );
        }
    }
}

/// A unified-style line diff (longest common subsequence), with 2 lines of context.
fn line_diff(old: &str, new: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] > lcs[i + 1][j]) {
            ops.push(('+', b[j]));
            j += 1;
        } else {
            ops.push(('-', a[i]));
            i += 1;
        }
    }
    let near = |k: usize| ops[k.saturating_sub(2)..(k + 3).min(ops.len())].iter().any(|(c, _)| *c != ' ');
    (0..ops.len()).filter(|&k| near(k)).map(|k| format!("{}{}", ops[k].0, ops[k].1)).collect::<Vec<_>>().join("\n")
}

#[test]
fn line_diff_shows_changed_lines_with_context() {
    let d = line_diff("a\nb\nc\nd\ne\nf\ng", "a\nb\nc\nX\ne\nf\ng");
    assert_eq!(d, " b\n c\n-d\n+X\n e\n f");
}

/// The fixtures written by real NumPy and Keras for these tests (`xtask/py/make_check_fixtures.py`).
fn check_fixtures() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(fixture("check"))
        .expect("tests/fixtures/check exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

#[test]
fn every_real_keras_export_checks_without_errors() {
    let mut n = 0;
    for group in ["keras3", "keras2", "special"] {
        for d in fixture_models(group) {
            let (code, v, human) = check(&d, &[]);
            assert_eq!((code, v["errors"].as_u64()), (0, Some(0)), "{}:\n{human}", d.display());
            let t = layer_types(&d);
            if t.iter().all(|t| matches!(t.as_str(), "Dense" | "Flatten" | "InputLayer" | "Dropout"))
                && !d.ends_with("numpy_variants")
            {
                assert_eq!(codes(&v), Vec::<String>::new(), "{}", d.display());
            }
            n += 1;
        }
    }
    assert!(n >= 30, "only {n} fixtures");
}

#[test]
fn numpy_and_keras_written_files_get_their_findings() {
    let expect: &[(&str, &[&str])] = &[
        ("good", &[]),
        // Float64 and Fortran order are read correctly: a warning, and the shapes flow.
        ("float64_fortran", &["float64-weights"]),
        ("object_array", &["pickled-array"]),
        ("non_npy_member", &["not-npy-member"]),
        ("int_nan", &["non-finite", "non-float-weights"]),
        ("variable_names", &["missing-weight", "missing-weight"]),
        ("positional", &["missing-weight", "missing-weight"]),
        ("to_json", &["not-course-layout"]),
        ("config_list", &["not-course-layout"]),
    ];
    let dirs = check_fixtures();
    assert_eq!(dirs.len(), expect.len(), "{dirs:?}");
    for (case, want) in expect {
        let (code, v, human) = check(&fixture(&format!("check/{case}")), &[]);
        assert_eq!(codes(&v), *want, "{case}:\n{human}");
        let errors = v["errors"].as_u64().unwrap();
        assert_eq!(code, if errors > 0 { 1 } else { 0 }, "{case}");
    }
    let (_, v, _) = check(&fixture("check/int_nan"), &[]);
    let nan = finding(&v, "non-finite");
    assert!(
        nan["message"].as_str().unwrap().contains("2 NaN and 1 infinite value(s) of 7840; the first is NaN at [3, 7]"),
        "{nan}"
    );
    let (_, v, _) = check(&fixture("check/non_npy_member"), &[]);
    assert_eq!(finding(&v, "not-npy-member")["location"]["key"], "notes.txt");
    let (_, v, _) = check(&fixture("check/object_array"), &[]);
    assert_eq!(finding(&v, "pickled-array")["severity"], "error");
}

#[test]
fn human_output_reads_like_a_compiler() {
    let dir = fixture("check/variable_names");
    let run = fmtool(&["check", dir.to_str().unwrap()]);
    assert_eq!(run.code, 1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    let d = dir.display();
    assert_eq!(
        lines[0],
        format!(
            "{d}/fashion_mnist.json::$[0].weights[0]: error[missing-weight]: dense_0 (kernel of layer dense) is not in fashion_mnist.npz"
        )
    );
    assert!(
        lines[1]
            .starts_with("    hint: did you mean \"sequential/dense/kernel\"? The npz names arrays by Keras variable"),
        "{}",
        lines[1]
    );
    assert_eq!(lines[3], "    hint: did you mean \"sequential/dense/bias\"? (same naming scheme as $[0].weights[0])");
    assert_eq!(*lines.last().unwrap(), "2 errors, 0 warnings");
    let pos = fmtool(&["check", fixture("check/positional").to_str().unwrap()]);
    assert!(pos.stdout.contains("did you mean \"arr_0\"?"), "{}", pos.stdout);
}

#[test]
fn files_are_completed_by_their_siblings() {
    let good = fixture("check/good");
    let bad = fixture("check/int_nan");
    // Only the npz of the broken model is named: its JSON is found beside it.
    let run = fmtool(&[
        "check",
        "--format",
        "json",
        good.join("fashion_mnist.json").to_str().unwrap(),
        bad.join("fashion_mnist.npz").to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["models"].as_array().unwrap().len(), 2);
    assert_eq!(v["checked"].as_array().unwrap().len(), 4);
    assert_eq!(codes(&v), ["non-finite", "non-float-weights"]);
    // The same model named by both of its files is checked once.
    let run = fmtool(&[
        "check",
        good.join("fashion_mnist.npz").to_str().unwrap(),
        good.join("fashion_mnist.json").to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0);
    assert_eq!(run.stdout.matches("checked ").count(), 1, "{}", run.stdout);
}

#[test]
fn a_keras_file_alone_is_checked_as_fmtool_convert_would_write_it() {
    let run = fmtool(&["check", fixture("special/unsupported_keras3/model.h5").to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("model.h5::$[1].type: error[unsupported-layer]: layer conv1d has type \"Conv1D\""),
        "{}",
        run.stdout
    );
    let run = fmtool(&["check", fixture("keras3/mlp_flatten/model.keras").to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("no problems found"), "{}", run.stdout);
    let run = fmtool(&["check", fixture("special/weights_only_keras3/model.weights.h5").to_str().unwrap()]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("error[unreadable-keras]") && run.stdout.contains("save_weights"), "{}", run.stdout);
}

#[test]
fn a_directory_without_a_model_exits_2() {
    let tmp = tempdir();
    let run = fmtool(&["check", tmp.path().to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("holds no model"), "{}", run.stderr);
    std::fs::write(tmp.path().join("notes.txt"), "x").unwrap();
    let run = fmtool(&["check", tmp.path().join("notes.txt").to_str().unwrap()]);
    assert_eq!(run.code, 2);
}

#[test]
fn missing_npz_is_a_finding_not_a_crash() {
    let tmp = good_model();
    std::fs::remove_file(tmp.path().join("fashion_mnist.npz")).unwrap();
    let (code, v, _) = check(tmp.path(), &[]);
    assert_eq!(code, 1);
    assert_eq!(codes(&v), ["missing-file"]);
    std::fs::write(tmp.path().join("fashion_mnist.npz"), b"PK\x03\x04 truncated").unwrap();
    let (code, v, _) = check(tmp.path(), &[]);
    assert_eq!((code, codes(&v)), (1, vec!["unreadable-npz".to_string()]));
}
