//! The only code that knows HDF5 and the Keras file layouts (Keras 2 / tf.keras .h5, Keras 3 .h5,
//! and the Keras 3 .keras zip). [`read_model`] parses a file into a [`KerasModel`]: the layers in
//! `model.layers` order with nested models inlined, each with its config, inbound layers and
//! weights in `get_weights()` order; [`KerasModel::take_course`] translates it into course entries.

pub mod config;
pub mod guard;
pub mod h5;

use crate::err;
use crate::error::{Error, Result};
use crate::model::ArchEntry;
use crate::model::npz::{NpyArray, Npz, NpzEntry};
use config::{ConfigLayer, FlatModel, ModelConfig};
use hdf5_reader::group::Group;
use ndarray::ArrayD;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

/// Which writer's layout a file has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// Keras 2 / tf.keras `.h5`: `model_weights/<layer>/<layer>/kernel:0`.
    H5Keras2,
    /// Keras 3 legacy `.h5`: `model_weights/<layer>/<model>/<layer>/kernel`.
    H5Keras3,
    /// Keras 3 `.keras` zip: `config.json` + `model.weights.h5` with `layers/<...>/vars/<i>`.
    KerasZip,
    /// Not a Keras file: the course's own export (`convert --for-template` on a model folder).
    CourseExport,
}

impl Layout {
    pub fn describe(self) -> &'static str {
        match self {
            Layout::H5Keras2 => "Keras 2 .h5",
            Layout::H5Keras3 => "Keras 3 .h5",
            Layout::KerasZip => "Keras 3 .keras",
            Layout::CourseExport => "the course's fashion_mnist.json + fashion_mnist.npz",
        }
    }
}

/// One layer of the (flattened) model.
#[derive(Debug, Clone)]
pub struct KerasLayer {
    pub name: String,
    pub class_name: String,
    /// The layer's `get_config()`, as the file's model config holds it.
    pub config: Map<String, Value>,
    /// Names of the layers feeding it, in call order (empty for the model input).
    pub inbound: Vec<String>,
    /// Its weights in `get_weights()` order (empty after [`KerasModel::take_course`]).
    pub weights: Vec<ArrayD<f32>>,
}

/// A parsed Keras model file.
#[derive(Debug, Clone)]
pub struct KerasModel {
    pub layout: Layout,
    pub keras_version: Option<String>,
    /// The top model's class: `Sequential` or `Functional`.
    pub class_name: String,
    /// True when the layers need `inbound` lists (a functional graph), false for a chain.
    pub functional: bool,
    pub layers: Vec<KerasLayer>,
    /// Names of the nested models whose layers were inlined.
    pub inlined: Vec<String>,
}

/// Files larger than this are refused before they are read into memory: a Fashion-MNIST model is
/// a few megabytes, and a multi-gigabyte "model" is the wrong file.
pub const MAX_FILE_BYTES: u64 = crate::fsguard::budget::KERAS;

/// Reads a Keras `.h5` (Keras 2 or 3) or `.keras` file. Never panics and never hangs, whatever the
/// bytes: parsing runs under [`guard::run`].
pub fn read_model(path: &Path) -> Result<KerasModel> {
    let shown = path.display().to_string();
    let meta = crate::fsguard::metadata(path)?;
    if meta.is_dir() {
        let hint = if path.join("saved_model.pb").exists() {
            "this is a TensorFlow SavedModel directory; save the model with model.save(\"fashion_mnist.h5\") instead"
        } else {
            "pass the model file itself, e.g. fashion_mnist.h5"
        };
        return Err(err!("{shown} is a directory, not a Keras model file").with_hint(hint));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(err!(
            "{shown} is {:.1} GB, far larger than any Fashion-MNIST model; is it the right file?",
            meta.len() as f64 / 1e9
        ));
    }
    let bytes = crate::fsguard::read(path, MAX_FILE_BYTES)?;
    read_model_bytes(bytes, &shown)
}

/// Like [`read_model`], from bytes in memory; `shown` names the file in messages.
pub fn read_model_bytes(bytes: Vec<u8>, shown: &str) -> Result<KerasModel> {
    // Parsing runs at well over 100 MB/s; the limit only ends a parser stuck in a loop.
    let limit = Duration::from_secs(30) + Duration::from_millis(bytes.len() as u64 / 10_000);
    let what = shown.to_string();
    let result = guard::run(shown, limit, move || read_bytes(bytes, &what));
    result.map_err(|e| {
        if e.hint.is_some() {
            e
        } else {
            e.with_hint(
                "the file may be truncated or corrupt: save the model again with model.save(\"fashion_mnist.h5\")",
            )
        }
    })
}

fn read_bytes(bytes: Vec<u8>, shown: &str) -> Result<KerasModel> {
    if h5::has_signature(&bytes) {
        read_h5(bytes, shown)
    } else if bytes.starts_with(b"PK") {
        read_keras_zip(&bytes, shown)
    } else if bytes.is_empty() {
        Err(err!("{shown} is empty").with_hint("save the model again with model.save(\"fashion_mnist.h5\")"))
    } else {
        Err(err!("{shown} is neither an HDF5 file (.h5) nor a .keras archive")
            .with_hint("save the model with model.save(\"fashion_mnist.h5\") or model.save(\"fashion_mnist.keras\")"))
    }
}

fn weights_only(shown: &str) -> Error {
    err!("{shown} holds only weights (written by model.save_weights), not the model's architecture").with_hint(
        "save the whole model with model.save(\"fashion_mnist.h5\") (not save_weights), then convert that file",
    )
}

/// Parses the model config JSON text and checks the Keras version can be read.
fn parse_config(
    text: &str,
    keras_version: Option<&str>,
    shown: &str,
    member: &str,
) -> Result<(ModelConfig, FlatModel)> {
    if let Some(v) = keras_version.filter(|v| v.starts_with("1.")) {
        return Err(err!("{shown} was written by Keras {v}; fmtool reads files from Keras 2 and Keras 3")
            .with_hint("load the model in a current Keras and save it again with model.save(\"fashion_mnist.h5\")"));
    }
    if text.len() > MAX_CONFIG_BYTES as usize {
        return Err(err!(
            "{shown}: the {member} is {} bytes, more than the {MAX_CONFIG_BYTES} bytes of any real model config",
            text.len()
        ));
    }
    let text = python_json(text);
    let mut config: Value =
        serde_json::from_str(&text).map_err(|e| err!("{shown}: the {member} is not valid JSON ({e})"))?;
    // The .keras writer tags objects used twice with `shared_object_id`; get_config() has no such key.
    strip_key(&mut config, "shared_object_id");
    let model = config::parse_model(&config).map_err(|e| e.context(shown))?;
    let flat = model.flatten().map_err(|e| e.context(shown))?;
    Ok((model, flat))
}

/// Builds the [`KerasModel`] from the flattened config, asking `weights` for each flat layer's
/// arrays in `get_weights()` order.
fn finish(
    layout: Layout,
    keras_version: Option<String>,
    model: &ModelConfig,
    flat: FlatModel,
    mut weights: impl FnMut(&config::FlatLayer) -> Result<Vec<ArrayD<f32>>>,
) -> Result<KerasModel> {
    let mut layers = Vec::with_capacity(flat.layers.len());
    for l in &flat.layers {
        let w = weights(l)?;
        layers.push(KerasLayer {
            name: l.name.clone(),
            class_name: l.class_name.clone(),
            config: l.config.clone(),
            inbound: l.inbound.clone(),
            weights: w,
        });
    }
    Ok(KerasModel {
        layout,
        keras_version,
        class_name: model.class_name.clone(),
        functional: flat.functional,
        layers,
        inlined: flat.inlined,
    })
}

fn read_h5(bytes: Vec<u8>, shown: &str) -> Result<KerasModel> {
    let file = h5::open(bytes, shown)?;
    let root = h5::root(&file, shown)?;
    let attrs = h5::Attrs::of(&root).map_err(|e| e.context(shown))?;
    let config_text = match attrs.string("model_config").map_err(|e| e.context(shown))? {
        Some(t) => t,
        None if attrs.has("layer_names") || attrs.has("layer_names0") || h5::has_group(&root, "layers") => {
            return Err(weights_only(shown));
        }
        None => {
            return Err(err!("{shown} is an HDF5 file but not a Keras model (it has no model_config attribute)")
                .with_hint("save the Keras model with model.save(\"fashion_mnist.h5\") and convert that file"));
        }
    };
    let keras_version = attrs.string("keras_version").ok().flatten();
    let (model, flat) = parse_config(&config_text, keras_version.as_deref(), shown, "model_config attribute")?;
    let mw = if h5::has_group(&root, "model_weights") {
        root.group("model_weights").map_err(|e| err!("{shown}: cannot open model_weights ({e})"))?
    } else {
        root.clone()
    };
    let groups = read_weight_groups(&mw).map_err(|e| e.context(format!("{shown}: model_weights")))?;
    let keras2 = keras_version.as_deref().is_some_and(|v| v.starts_with('2'))
        || groups.weights.values().flatten().any(|(n, _)| n.ends_with(":0"));
    let layout = if keras2 { Layout::H5Keras2 } else { Layout::H5Keras3 };
    let mut assigner = H5Weights { groups, nested: HashMap::new() };
    let km = finish(layout, keras_version, &model, flat, |l| {
        assigner.take(&model, l).map_err(|e| e.context(format!("{shown}: layer {}", l.name)))
    })?;
    if let Some((name, _)) = assigner.groups.weights.iter().find(|(_, ws)| !ws.is_empty()) {
        return Err(err!("{shown}: the file holds weights for a layer {name:?} that its model config does not list")
            .with_hint("the file is inconsistent; save the model again with model.save(\"fashion_mnist.h5\")"));
    }
    Ok(km)
}

/// The weight groups of a legacy `.h5` file, read the way Keras' `load_weights_from_hdf5_group`
/// reads them: the layers named by `layer_names`, and each layer's arrays in its `weight_names`
/// order.
struct WeightGroups {
    /// Every name in `layer_names`.
    names: Vec<String>,
    /// Layer name -> (weight name, array) for the layers that have weights.
    weights: HashMap<String, Vec<(String, ArrayD<f32>)>>,
}

fn read_weight_groups(mw: &Group) -> Result<WeightGroups> {
    let attrs = h5::Attrs::of(mw)?;
    let names = attrs.string_list("layer_names")?.ok_or_else(|| err!("no layer_names attribute"))?;
    let mut weights = HashMap::new();
    for name in &names {
        let g = mw.group(name).map_err(|e| err!("no weight group for layer {name} ({e})"))?;
        let wnames = h5::Attrs::of(&g)
            .and_then(|a| a.string_list("weight_names"))
            .map_err(|e| e.context(format!("layer {name}")))?
            .unwrap_or_default();
        let mut ws = Vec::with_capacity(wnames.len());
        for w in wnames {
            let a = h5::read_f32(&g, &w).map_err(|e| e.context(format!("layer {name}")))?;
            ws.push((w, a));
        }
        if !ws.is_empty() {
            weights.insert(name.clone(), ws);
        }
    }
    Ok(WeightGroups { names, weights })
}

/// Hands each flat layer its arrays from the legacy `.h5` weight groups.
struct H5Weights {
    groups: WeightGroups,
    /// For nested models: top-level layer name -> (inner layer name -> arrays).
    nested: HashMap<String, HashMap<String, Vec<ArrayD<f32>>>>,
}

impl H5Weights {
    fn take(&mut self, model: &ModelConfig, l: &config::FlatLayer) -> Result<Vec<ArrayD<f32>>> {
        let top = &model.layers[l.path[0]];
        if l.path.len() == 1 {
            if !self.groups.names.contains(&top.name) && top.class_name != "InputLayer" {
                return Err(err!("the file's layer_names do not list this layer, so it has no weights"));
            }
            return Ok(self.groups.weights.remove(&top.name).unwrap_or_default().into_iter().map(|(_, a)| a).collect());
        }
        if !self.nested.contains_key(&top.name) {
            let split = split_nested(top, self.groups.weights.remove(&top.name).unwrap_or_default())?;
            self.nested.insert(top.name.clone(), split);
        }
        Ok(self.nested.get_mut(&top.name).and_then(|m| m.remove(&l.name)).unwrap_or_default())
    }
}

/// Splits a nested model's weight group among its layers. Keras writes the nested model's
/// weights as one list (all trainable, then all non-trainable); each weight's name ends in
/// `<layer>/<variable>` (`dense_1/kernel:0`, `inner/dense_1/kernel`), and each layer's arrays keep
/// their relative order, which is its `get_weights()` order.
fn split_nested(top: &ConfigLayer, ws: Vec<(String, ArrayD<f32>)>) -> Result<HashMap<String, Vec<ArrayD<f32>>>> {
    fn leaves<'a>(m: &'a ModelConfig, out: &mut Vec<&'a str>) {
        for l in &m.layers {
            match &l.nested {
                Some(sub) => leaves(sub, out),
                None => out.push(&l.name),
            }
        }
    }
    let mut names = Vec::new();
    if let Some(sub) = &top.nested {
        leaves(sub, &mut names);
    }
    let mut out: HashMap<String, Vec<ArrayD<f32>>> = HashMap::new();
    for (w, a) in ws {
        let var = w.rsplit_once(':').filter(|(_, n)| n.parse::<u32>().is_ok()).map(|(v, _)| v).unwrap_or(&w);
        let owner = var.rsplit('/').nth(1).filter(|o| names.contains(o)).ok_or_else(|| {
            err!("cannot tell which layer of nested model {} the weight {w:?} belongs to", top.name).with_hint(
                "rebuild the model without nesting (add the inner model's layers directly) and save it again",
            )
        })?;
        out.entry(owner.to_string()).or_default().push(a);
    }
    Ok(out)
}

/// A model config (`config.json`, the `model_config` attribute) larger than this is refused: a
/// 20,000-layer model's config is a few MB.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;
/// A `.keras` archive holds three members; more than this is not a Keras model.
pub const MAX_ZIP_MEMBERS: usize = 1000;

fn read_keras_zip(bytes: &[u8], shown: &str) -> Result<KerasModel> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| err!("{shown} is not a readable .keras archive ({e}); the file may be truncated"))?;
    if zip.len() > MAX_ZIP_MEMBERS {
        return Err(err!("{shown} holds {} members; a .keras model archive holds three", zip.len()));
    }
    // Each member is refused on its declared size, and read through a limit in case the
    // declaration lies.
    let mut member = |name: &str, limit: u64| -> Result<Vec<u8>> {
        let mut f = zip.by_name(name).map_err(|_| {
            err!("{shown} has no {name}; it is not a Keras .keras model archive")
                .with_hint("save the model with model.save(\"fashion_mnist.keras\")")
        })?;
        let too_big = |n: u64| err!("{shown}: {name} is {n} bytes, more than the {limit} bytes fmtool reads for it");
        if f.size() > limit {
            return Err(too_big(f.size()));
        }
        let mut out = Vec::with_capacity(f.size() as usize);
        f.by_ref().take(limit + 1).read_to_end(&mut out).map_err(|e| err!("{shown}: cannot read {name} ({e})"))?;
        if out.len() as u64 > limit {
            return Err(err!(
                "{shown}: {name} holds more than the {limit} bytes fmtool reads for it (more than it declares)"
            ));
        }
        Ok(out)
    };
    let config_bytes = member("config.json", MAX_CONFIG_BYTES)?;
    let weights_bytes = member("model.weights.h5", MAX_FILE_BYTES)?;
    let keras_version = member("metadata.json", 1 << 20)
        .ok()
        .and_then(|m| serde_json::from_slice::<Value>(&m).ok())
        .and_then(|m| m.get("keras_version").and_then(Value::as_str).map(str::to_string));
    let text = String::from_utf8(config_bytes).map_err(|_| err!("{shown}: config.json is not UTF-8 text"))?;
    let (model, flat) = parse_config(&text, keras_version.as_deref(), shown, "config.json")?;
    let what = format!("{shown} (model.weights.h5)");
    let file = h5::open(weights_bytes, &what)?;
    let root = h5::root(&file, &what)?;
    finish(Layout::KerasZip, keras_version, &model, flat, |l| {
        // Keras 3 keeps each layer's variables below its model's `layers/`, under the snake-case
        // class name numbered per class (not the layer's own name); nested models nest.
        let mut path = String::new();
        let mut m = &model;
        for (depth, &i) in l.path.iter().enumerate() {
            let layer = &m.layers[i];
            path.push_str("layers/");
            path.push_str(&layer.archive_key);
            path.push('/');
            if depth + 1 < l.path.len() {
                m = layer.nested.as_deref().expect("inner paths run through nested models");
            }
        }
        path.push_str("vars");
        let Ok(g) = h5::subgroup(&root, &path) else { return Ok(Vec::new()) };
        let mut ws = Vec::new();
        for name in h5::numbered_datasets(&g).map_err(|e| e.context(&what))? {
            ws.push(h5::read_f32(&g, &name).map_err(|e| e.context(format!("{what}: {path}")))?);
        }
        Ok(ws)
    })
}

fn strip_key(v: &mut Value, key: &str) {
    match v {
        Value::Object(m) => {
            m.remove(key);
            m.values_mut().for_each(|x| strip_key(x, key));
        }
        Value::Array(items) => items.iter_mut().for_each(|x| strip_key(x, key)),
        _ => {}
    }
}

/// Python's `json.dumps`, which Keras writes its configs with, spells non-finite floats `NaN`,
/// `Infinity` and `-Infinity`, which JSON has not. Outside strings they become `null` (NaN) and
/// the largest finite float (the infinities), so that a config Keras reads back is read here too.
pub fn python_json(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("NaN") && !text.contains("Infinity") {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let (token, replacement) = if rest.starts_with("-Infinity") {
            ("-Infinity", "-1.7976931348623157e308")
        } else if rest.starts_with("Infinity") {
            ("Infinity", "1.7976931348623157e308")
        } else if rest.starts_with("NaN") {
            ("NaN", "null")
        } else {
            if c == '"' {
                in_string = true;
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        };
        out.push_str(replacement);
        rest = &rest[token.len()..];
    }
    std::borrow::Cow::Owned(out)
}

/// The npz key of a layer's `i`-th weight: `<name>_<i>`, as the course notebook writes it, with
/// every character other than letters, digits, `_`, `-` and `.` (a `/` of a crafted layer name
/// such as `../../tmp/EVIL`, a NUL, a backslash) written as `_`, a leading `.` too, so that no
/// member name of the npz is a path; a clash with a key already used gets a numbered suffix.
pub fn member_key(name: &str, i: usize, used: &mut std::collections::HashSet<String>) -> String {
    let mut safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') { c } else { '_' }).collect();
    if safe.starts_with('.') || safe.is_empty() {
        safe.insert(0, '_');
    }
    let mut key = format!("{safe}_{i}");
    let mut n = 1;
    while !used.insert(key.clone()) {
        key = format!("{safe}_{i}_{n}");
        n += 1;
    }
    key
}

impl KerasModel {
    /// The course model the file holds, as `fmtool convert` writes it and as `model::load` would
    /// read it back: the entries (`model.layers` order, InputLayer entries kept so the input shape
    /// survives; the course template skips them) and, in an [`Npz`] under the keys `<name>_<i>`,
    /// their float32 arrays. The weights move out of the layers, which keep everything else.
    pub fn take_course(&mut self, path: &Path) -> (Vec<ArchEntry>, Npz) {
        let mut entries = Vec::with_capacity(self.layers.len());
        let mut arrays = Vec::new();
        let mut used = std::collections::HashSet::new();
        for (index, l) in self.layers.iter_mut().enumerate() {
            let keys: Vec<String> = (0..l.weights.len()).map(|i| member_key(&l.name, i, &mut used)).collect();
            let taken = std::mem::take(&mut l.weights);
            arrays.extend(
                keys.iter()
                    .zip(taken)
                    .map(|(k, a)| NpzEntry { key: k.clone(), array: Ok(NpyArray::from_f32_owned(a)) }),
            );
            entries.push(ArchEntry {
                index,
                name: l.name.clone(),
                class_name: l.class_name.clone(),
                config: l.config.clone(),
                weights: keys,
                inbound: if self.functional { Some(l.inbound.clone()) } else { None },
                absent_keys: Vec::new(),
            });
        }
        (entries, Npz { path: path.to_path_buf(), entries: arrays, plain: Vec::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_json_non_finite_floats_are_read() {
        let text = r#"{"a": NaN, "b": Infinity, "c": [-Infinity, 1], "s": "NaN Infinity \" NaN"}"#;
        let v: Value = serde_json::from_str(&python_json(text)).unwrap();
        assert_eq!(v["a"], Value::Null);
        assert_eq!(v["b"].as_f64(), Some(f64::MAX));
        assert_eq!(v["c"][0].as_f64(), Some(f64::MIN));
        assert_eq!(v["s"], "NaN Infinity \" NaN");
        assert!(matches!(python_json("{\"x\": 1}"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn npz_member_keys_are_never_paths() {
        let mut used = std::collections::HashSet::new();
        assert_eq!(member_key("dense_1", 0, &mut used), "dense_1_0");
        assert_eq!(member_key("../../../../tmp/EVIL_dense", 0, &mut used), "_.._.._.._.._tmp_EVIL_dense_0");
        assert_eq!(member_key("a/b", 1, &mut used), "a_b_1");
        // A different name that maps to a key already taken gets a suffix.
        assert_eq!(member_key("a:b", 1, &mut used), "a_b_1_1");
        assert_eq!(member_key("", 0, &mut used), "__0");
    }

    #[test]
    fn nested_weights_are_split_by_layer_keeping_order() {
        let cfg = serde_json::json!({"class_name": "Sequential", "config": {"name": "inner", "layers": [
            {"class_name": "Dense", "config": {"name": "d"}},
            {"class_name": "BatchNormalization", "config": {"name": "bn"}}]}});
        let top = ConfigLayer {
            name: "inner".into(),
            class_name: "Sequential".into(),
            config: Map::new(),
            inbound: vec![],
            archive_key: "sequential".into(),
            nested: Some(Box::new(config::parse_model(&cfg).unwrap())),
        };
        let a = |v: f32| ArrayD::from_elem(ndarray::IxDyn(&[1]), v);
        // Trainable first (kernel, bias, gamma, beta), then non-trainable (moving mean, variance).
        let ws = ["d/kernel:0", "d/bias:0", "bn/gamma:0", "bn/beta:0", "bn/moving_mean:0", "bn/moving_variance:0"]
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), a(i as f32)))
            .collect();
        let split = split_nested(&top, ws).unwrap();
        let vals = |k: &str| split[k].iter().map(|x| x[[0]]).collect::<Vec<_>>();
        assert_eq!(vals("d"), [0.0, 1.0]);
        assert_eq!(vals("bn"), [2.0, 3.0, 4.0, 5.0]);
        let e = split_nested(&top, vec![("other/kernel".into(), a(0.0))]).unwrap_err();
        assert!(e.message.contains("\"other/kernel\""), "{}", e.message);
    }
}
