//! The only code that knows HDF5 and the Keras file layouts (Keras 2 / tf.keras .h5, Keras 3 .h5,
//! and the Keras 3 .keras zip). [`read_model`] parses a file into a faithful [`KerasModel`];
//! [`KerasModel::to_course`] translates it into course-format entries and arrays.

pub mod h5;

use crate::err;
use crate::error::{Error, Result};
use crate::layers::Weight;
use crate::model::ArchEntry;
use ndarray::ArrayD;
use serde_json::{Map, Value};
use std::io::Read;
use std::path::Path;

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
}

/// One layer as the file describes it.
#[derive(Debug, Clone)]
pub struct KerasLayer {
    pub name: String,
    pub class_name: String,
    /// The layer's `get_config()`.
    pub config: Map<String, Value>,
    /// Names of the layers feeding it (functional models).
    pub inbound: Vec<String>,
    /// Its weights in `get_weights()` order.
    pub weights: Vec<ArrayD<f32>>,
}

/// A parsed Keras model file.
#[derive(Debug, Clone)]
pub struct KerasModel {
    pub layout: Layout,
    pub keras_version: Option<String>,
    /// `Sequential` or `Functional`.
    pub class_name: String,
    pub functional: bool,
    pub layers: Vec<KerasLayer>,
}

/// Reads a Keras `.h5` (Keras 2 or 3) or `.keras` file. Never panics, whatever the bytes.
pub fn read_model(path: &Path) -> Result<KerasModel> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, &e))?;
    let shown = path.display().to_string();
    // The HDF5 reader is third-party code fed with untrusted bytes: a panic inside it must become
    // an error message, not a crash.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_bytes(&bytes, &shown)));
    std::panic::set_hook(previous);
    match result {
        Ok(Err(e)) if e.hint.is_none() => Err(e.with_hint(
            "the file may be truncated or corrupt: save the model again with model.save(\"fashion_mnist.h5\")",
        )),
        Ok(r) => r,
        Err(_) => Err(err!("{shown} is corrupt: its HDF5 structure could not be decoded")
            .with_hint("save the model again with model.save(\"fashion_mnist.h5\")")),
    }
}

fn read_bytes(bytes: &[u8], shown: &str) -> Result<KerasModel> {
    if bytes.starts_with(h5::SIGNATURE) {
        read_h5(bytes, shown)
    } else if bytes.starts_with(b"PK") {
        read_keras_zip(bytes, shown)
    } else if bytes.is_empty() {
        Err(err!("{shown} is empty"))
    } else {
        Err(err!("{shown} is neither an HDF5 file (.h5) nor a .keras archive")
            .with_hint("save the model with model.save(\"fashion_mnist.h5\") or model.save(\"fashion_mnist.keras\")"))
    }
}

fn weights_only(shown: &str) -> Error {
    err!("{shown} holds only weights (written by model.save_weights), not the model's architecture")
        .with_hint("save the whole model with model.save(\"fashion_mnist.h5\"), then convert that file")
}

fn read_h5(bytes: &[u8], shown: &str) -> Result<KerasModel> {
    let file = h5::open(bytes, shown)?;
    let root = h5::root(&file, shown)?;
    let config_text = match h5::attr_string(&root, "model_config").map_err(|e| e.context(shown))? {
        Some(t) => t,
        None if h5::has_attr(&root, "layer_names") || h5::has_group(&root, "layers") => {
            return Err(weights_only(shown));
        }
        None => {
            return Err(err!("{shown} is an HDF5 file but not a Keras model (it has no model_config attribute)")
                .with_hint("save the model with model.save(\"fashion_mnist.h5\")"));
        }
    };
    let keras_version = h5::attr_string(&root, "keras_version").ok().flatten();
    let config: Value = serde_json::from_str(&config_text)
        .map_err(|e| err!("{shown}: the model_config attribute is not valid JSON ({e})"))?;
    let (class_name, functional, defs) = parse_model_config(&config).map_err(|e| e.context(shown))?;
    let mw = if h5::has_group(&root, "model_weights") {
        root.group("model_weights").map_err(|e| err!("{shown}: cannot open model_weights ({e})"))?
    } else {
        root.clone()
    };
    let names = h5::attr_string_list(&mw, "layer_names").map_err(|e| e.context(shown))?.unwrap_or_default();
    let mut layout = Layout::H5Keras3;
    let mut layers = Vec::with_capacity(defs.len());
    for d in defs {
        let weights = if names.iter().any(|n| n == &d.name) {
            let g = mw.group(&d.name).map_err(|e| err!("{shown}: no weight group for layer {} ({e})", d.name))?;
            let wnames = h5::attr_string_list(&g, "weight_names")
                .map_err(|e| e.context(format!("{shown}: layer {}", d.name)))?
                .unwrap_or_default();
            let mut ws = Vec::with_capacity(wnames.len());
            for w in &wnames {
                if w.ends_with(":0") {
                    layout = Layout::H5Keras2;
                }
                ws.push(h5::read_f32(&g, w).map_err(|e| e.context(format!("{shown}: layer {}", d.name)))?);
            }
            ws
        } else {
            Vec::new()
        };
        layers.push(KerasLayer {
            name: d.name,
            class_name: d.class_name,
            config: d.config,
            inbound: d.inbound,
            weights,
        });
    }
    if keras_version.as_deref().is_some_and(|v| v.starts_with('2')) {
        layout = Layout::H5Keras2;
    }
    Ok(KerasModel { layout, keras_version, class_name, functional, layers })
}

fn read_keras_zip(bytes: &[u8], shown: &str) -> Result<KerasModel> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| err!("{shown} is not a readable .keras archive ({e}); the file may be truncated"))?;
    let mut member = |name: &str, limit: u64| -> Result<Vec<u8>> {
        let mut f = zip.by_name(name).map_err(|_| {
            err!("{shown} has no {name}; it is not a Keras .keras model archive")
                .with_hint("save the model with model.save(\"fashion_mnist.keras\")")
        })?;
        let mut out = Vec::new();
        f.by_ref().take(limit).read_to_end(&mut out).map_err(|e| err!("{shown}: cannot read {name} ({e})"))?;
        Ok(out)
    };
    let config_bytes = member("config.json", 64 << 20)?;
    let weights_bytes = member("model.weights.h5", 2 << 30)?;
    let keras_version = member("metadata.json", 1 << 20)
        .ok()
        .and_then(|m| serde_json::from_slice::<Value>(&m).ok())
        .and_then(|m| m.get("keras_version").and_then(Value::as_str).map(str::to_string));
    let mut config: Value =
        serde_json::from_slice(&config_bytes).map_err(|e| err!("{shown}: config.json is not valid JSON ({e})"))?;
    // The .keras writer tags shared objects with `shared_object_id`; get_config() has no such key.
    strip_key(&mut config, "shared_object_id");
    let (class_name, functional, defs) = parse_model_config(&config).map_err(|e| e.context(shown))?;
    let what = format!("{shown} (model.weights.h5)");
    let file = h5::open(&weights_bytes, &what)?;
    let root = h5::root(&file, &what)?;
    // Keras 3 names each layer's variables after its class, in snake case, numbered per class in
    // model order: layers/conv2d, layers/conv2d_1, ... (not after the layer's own name).
    let mut used: std::collections::HashMap<String, usize> = Default::default();
    let mut layers = Vec::with_capacity(defs.len());
    for d in defs {
        let base = snake_case(&d.class_name);
        let n = used.entry(base.clone()).and_modify(|c| *c += 1).or_insert(0);
        let key = if *n == 0 { base } else { format!("{base}_{n}") };
        let path = format!("layers/{key}/vars");
        let weights = match h5::subgroup(&root, &path) {
            Err(_) => Vec::new(),
            Ok(g) => {
                let mut ws = Vec::new();
                for name in h5::numbered_datasets(&g).map_err(|e| e.context(&what))? {
                    ws.push(h5::read_f32(&g, &name).map_err(|e| e.context(format!("{what}: {path}")))?);
                }
                ws
            }
        };
        layers.push(KerasLayer {
            name: d.name,
            class_name: d.class_name,
            config: d.config,
            inbound: d.inbound,
            weights,
        });
    }
    Ok(KerasModel { layout: Layout::KerasZip, keras_version, class_name, functional, layers })
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

/// Keras' `naming.to_snake_case`: `BatchNormalization` -> `batch_normalization`, `PReLU` -> `p_re_lu`.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().filter(|c| c.is_alphanumeric() || *c == '_').collect();
    // (.)([A-Z][a-z]+) -> \1_\2
    let mut a = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if i > 0 && c.is_ascii_uppercase() && chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase()) {
            a.push('_');
        }
        a.push(c);
    }
    // ([a-z])([A-Z]) -> \1_\2
    let chars: Vec<char> = a.chars().collect();
    let mut b = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if i > 0 && c.is_ascii_uppercase() && chars[i - 1].is_ascii_lowercase() {
            b.push('_');
        }
        b.push(c);
    }
    b.to_lowercase()
}

/// A layer as listed in a model config.
struct LayerDef {
    name: String,
    class_name: String,
    config: Map<String, Value>,
    inbound: Vec<String>,
}

const MODEL_CLASSES: &[&str] = &["Sequential", "Functional", "Model"];

/// Parses `{"class_name": "Sequential"|"Functional", "config": {"layers": [...]}}` into layers in
/// `model.layers` order (InputLayer entries included), with inbound names for functional models.
fn parse_model_config(config: &Value) -> Result<(String, bool, Vec<LayerDef>)> {
    let class_name = config.get("class_name").and_then(Value::as_str).unwrap_or("").to_string();
    if !MODEL_CLASSES.contains(&class_name.as_str()) {
        return Err(err!("the model config describes a {class_name:?}, not a Sequential or functional Keras model"));
    }
    let inner = config.get("config").ok_or_else(|| err!("the model config has no \"config\""))?;
    let list = inner
        .get("layers")
        .or(if inner.is_array() { Some(inner) } else { None })
        .and_then(Value::as_array)
        .ok_or_else(|| err!("the model config has no list of layers"))?;
    let functional = class_name != "Sequential";
    let mut defs = Vec::with_capacity(list.len());
    for (i, l) in list.iter().enumerate() {
        let cls = l
            .get("class_name")
            .and_then(Value::as_str)
            .ok_or_else(|| err!("layer {i} of the model config has no class_name"))?;
        let cfg = l.get("config").and_then(Value::as_object).cloned().unwrap_or_default();
        let name = l
            .get("name")
            .and_then(Value::as_str)
            .or_else(|| cfg.get("name").and_then(Value::as_str))
            .ok_or_else(|| err!("layer {i} ({cls}) of the model config has no name"))?
            .to_string();
        if MODEL_CLASSES.contains(&cls) {
            return Err(err!(
                "layer {name} is a whole {cls} model nested inside this one; fmtool converts flat models only"
            )
            .with_hint(
                "rebuild the model without nesting (add the inner model's layers directly), save it, and convert again",
            ));
        }
        let inbound = if functional { inbound_names(l.get("inbound_nodes"), &name)? } else { Vec::new() };
        defs.push(LayerDef { name, class_name: cls.to_string(), config: cfg, inbound });
    }
    Ok((class_name, functional, defs))
}

/// The names of the layers feeding one layer, from Keras 2's `[[["name", 0, 0, {}], ...]]` or
/// Keras 3's `[{"args": [...keras tensors...], "kwargs": {}}]`.
fn inbound_names(nodes: Option<&Value>, layer: &str) -> Result<Vec<String>> {
    let Some(Value::Array(nodes)) = nodes else { return Ok(Vec::new()) };
    if nodes.len() > 1 {
        return Err(err!(
            "layer {layer} is called {} times (a shared layer); fmtool converts models that call each layer once",
            nodes.len()
        ));
    }
    let mut names = Vec::new();
    fn walk(v: &Value, names: &mut Vec<String>) {
        match v {
            Value::Object(m) if m.get("class_name").and_then(Value::as_str) == Some("__keras_tensor__") => {
                if let Some(n) =
                    m.get("config").and_then(|c| c.get("keras_history")).and_then(|h| h.get(0)).and_then(Value::as_str)
                {
                    names.push(n.to_string());
                }
            }
            Value::Object(m) => m.values().for_each(|x| walk(x, names)),
            Value::Array(items) => items.iter().for_each(|x| walk(x, names)),
            _ => {}
        }
    }
    for node in nodes {
        match node {
            Value::Object(m) => walk(m.get("args").unwrap_or(&Value::Null), &mut names),
            Value::Array(tensors) => {
                for t in tensors {
                    if let Some(n) = t.get(0).and_then(Value::as_str) {
                        names.push(n.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(names)
}

impl KerasModel {
    /// The course-format entries (`model.layers` order, InputLayer entries kept so the input shape
    /// survives; the course template skips them) and the weights for each entry.
    pub fn to_course(&self) -> (Vec<ArchEntry>, Vec<Vec<Weight>>) {
        let mut entries = Vec::with_capacity(self.layers.len());
        let mut weights = Vec::with_capacity(self.layers.len());
        for (index, l) in self.layers.iter().enumerate() {
            let keys: Vec<String> = (0..l.weights.len()).map(|i| format!("{}_{i}", l.name)).collect();
            weights
                .push(keys.iter().zip(&l.weights).map(|(k, a)| Weight { key: k.clone(), array: a.clone() }).collect());
            entries.push(ArchEntry {
                index,
                name: l.name.clone(),
                class_name: l.class_name.clone(),
                config: l.config.clone(),
                weights: keys,
                inbound: if self.functional { Some(l.inbound.clone()) } else { None },
            });
        }
        (entries, weights)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_is_keras() {
        for (a, b) in [
            ("BatchNormalization", "batch_normalization"),
            ("Conv2D", "conv2d"),
            ("PReLU", "p_re_lu"),
            ("DepthwiseConv2D", "depthwise_conv2d"),
            ("Dense", "dense"),
            ("ReLU", "re_lu"),
            ("GlobalAveragePooling2D", "global_average_pooling2d"),
            ("UpSampling2D", "up_sampling2d"),
        ] {
            assert_eq!(snake_case(a), b);
        }
    }

    #[test]
    fn inbound_names_read_both_encodings() {
        let k2 = serde_json::json!([[["conv2d", 0, 0, {}], ["conv2d_1", 0, 0, {}]]]);
        assert_eq!(inbound_names(Some(&k2), "add").unwrap(), ["conv2d", "conv2d_1"]);
        let k3 = serde_json::json!([{"args": [[
            {"class_name": "__keras_tensor__", "config": {"keras_history": ["a", 0, 0]}},
            {"class_name": "__keras_tensor__", "config": {"keras_history": ["b", 0, 0]}}]], "kwargs": {}}]);
        assert_eq!(inbound_names(Some(&k3), "add").unwrap(), ["a", "b"]);
    }
}
