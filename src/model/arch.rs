//! The course's architecture file `fashion_mnist.json`: a JSON list with one
//! `{"name", "type", "config", "weights"}` entry per layer (plus fmtool's optional `inbound` key for
//! functional graphs), and recognition of the other layouts students produce instead.

use crate::err;
use crate::error::Result;
use serde_json::{Map, Value};
use std::path::Path;

/// The key fmtool adds to each entry of a functional model: the names of the layers feeding it, in
/// call order. The course template ignores unknown keys.
pub const INBOUND_KEY: &str = "inbound";

/// One layer entry of the course format.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchEntry {
    /// Position in the JSON list, for `$[i]` pointers in messages.
    pub index: usize,
    pub name: String,
    pub class_name: String,
    pub config: Map<String, Value>,
    /// The npz keys of this layer's weights, in `get_weights()` order.
    pub weights: Vec<String>,
    /// Names of the layers feeding this one (functional models only).
    pub inbound: Option<Vec<String>>,
    /// The course keys (`"config"`, `"weights"`) the JSON entry does not have. fmtool reads them as
    /// empty, but the course template's `layer['config']` raises KeyError on them.
    pub absent_keys: Vec<&'static str>,
}

impl ArchEntry {
    /// A JSON-path-style pointer to this entry, as check-jsonschema prints them: `$[3]`.
    pub fn pointer(&self) -> String {
        format!("$[{}]", self.index)
    }

    pub fn layer(&self) -> crate::layers::LayerConfig<'_> {
        crate::layers::LayerConfig::new(&self.name, &self.class_name, &self.config)
    }

    /// Serializes back into the course format (key order: name, type, config, weights, inbound).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), Value::from(self.name.clone()));
        m.insert("type".into(), Value::from(self.class_name.clone()));
        m.insert("config".into(), Value::Object(self.config.clone()));
        m.insert("weights".into(), Value::from(self.weights.clone()));
        if let Some(inb) = &self.inbound {
            m.insert(INBOUND_KEY.into(), Value::from(inb.clone()));
        }
        Value::Object(m)
    }
}

/// Which JSON layout a file has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// The course format: a list of `{"name", "type", "config", "weights"}`.
    Course,
    /// Keras' `model.to_json()`: `{"class_name": "Sequential", "config": {"layers": [...]}}`.
    KerasModelJson,
    /// A list of `{"class_name", "config"}` dicts, as `model.get_config()["layers"]` gives.
    ConfigList,
    /// `{"layers": [...]}` wrapped around a list of entries.
    LayersWrapper,
    /// Anything else.
    Unknown,
}

impl Layout {
    pub fn describe(self) -> &'static str {
        match self {
            Layout::Course => "the course format (a list of {name, type, config, weights})",
            Layout::KerasModelJson => "Keras' model.to_json() output, not the course format",
            Layout::ConfigList => "a list of Keras get_config() dicts, not the course format",
            Layout::LayersWrapper => "a {\"layers\": [...]} object, not the course format (a plain list)",
            Layout::Unknown => {
                "not the course format (a JSON list with one {name, type, config, weights} entry per layer)"
            }
        }
    }
}

/// Recognises the layout of a parsed JSON document.
pub fn detect_layout(v: &Value) -> Layout {
    let is_course_entry = |e: &Value| e.get("type").is_some() && e.get("name").is_some();
    let is_config_entry = |e: &Value| e.get("class_name").is_some() && e.get("config").is_some();
    match v {
        Value::Array(items) if items.iter().any(is_course_entry) => Layout::Course,
        Value::Array(items) if !items.is_empty() && items.iter().all(is_config_entry) => Layout::ConfigList,
        Value::Array(items) if items.is_empty() => Layout::Course,
        Value::Object(m)
            if m.get("class_name").is_some() && m.get("config").and_then(|c| c.get("layers")).is_some() =>
        {
            Layout::KerasModelJson
        }
        Value::Object(m) if m.get("layers").map(Value::is_array).unwrap_or(false) => Layout::LayersWrapper,
        _ => Layout::Unknown,
    }
}

/// The hint for any layout that is not the course's.
pub fn reexport_hint() -> String {
    "convert the saved Keras model with `fmtool convert model.h5` (writes the course's fashion_mnist.json and fashion_mnist.npz)"
        .into()
}

/// Reads and parses `fashion_mnist.json` strictly in the course format.
pub fn read_arch(path: &Path) -> Result<Vec<ArchEntry>> {
    let bytes = crate::fsguard::read(path, crate::fsguard::budget::JSON)?;
    parse_arch_bytes(path, &bytes)
}

/// Parses the bytes of `fashion_mnist.json` read from `path` (used in messages only).
pub fn parse_arch_bytes(path: &Path, bytes: &[u8]) -> Result<Vec<ArchEntry>> {
    parse_arch(&parse_json_bytes(path, bytes)?).map_err(|e| e.context(path.display()))
}

/// The JSON document in the bytes of `path`, whatever its layout.
pub fn parse_json_bytes(path: &Path, bytes: &[u8]) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|e| {
        err!("{} is not valid JSON: {e}", path.display()).with_hint("the file may be truncated; export it again")
    })
}

/// Parses a JSON value in the course format, with a JSON pointer in every error.
pub fn parse_arch(value: &Value) -> Result<Vec<ArchEntry>> {
    let layout = detect_layout(value);
    let items = match (layout, value) {
        (Layout::Course, Value::Array(items)) => items,
        _ => return Err(err!("{}", layout.describe()).with_hint(reexport_hint())),
    };
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let at = format!("$[{index}]");
        let obj = item.as_object().ok_or_else(|| err!("{at}: expected an object, found {}", short(item)))?;
        let string = |key: &str| -> Result<String> {
            match obj.get(key) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(err!("{at}.{key}: expected a string, found {}", short(other))),
                None => Err(err!(
                    "{at}: the entry has no {key:?} key; the course template's layer[{key:?}] raises KeyError: '{key}'"
                )
                .with_hint(format!(
                    "every entry needs \"name\", \"type\", \"config\" and \"weights\"; {}",
                    reexport_hint()
                ))),
            }
        };
        let name = string("name")?;
        let class_name = string("type")?;
        let absent_keys: Vec<&'static str> =
            ["config", "weights"].into_iter().filter(|k| !obj.contains_key(*k)).collect();
        let config = match obj.get("config") {
            Some(Value::Object(m)) => m.clone(),
            Some(other) => return Err(err!("{at}.config: expected an object, found {}", short(other))),
            None => Map::new(),
        };
        let weights = match obj.get("weights") {
            None => Vec::new(),
            Some(Value::Array(ws)) => ws
                .iter()
                .enumerate()
                .map(|(j, w)| {
                    w.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| err!("{at}.weights[{j}]: expected an npz key (a string), found {}", short(w)))
                })
                .collect::<Result<_>>()?,
            Some(other) => return Err(err!("{at}.weights: expected a list of npz keys, found {}", short(other))),
        };
        let inbound = match obj.get(INBOUND_KEY) {
            None | Some(Value::Null) => None,
            Some(Value::Array(ns)) => Some(
                ns.iter()
                    .enumerate()
                    .map(|(j, n)| {
                        n.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| err!("{at}.{INBOUND_KEY}[{j}]: expected a layer name, found {}", short(n)))
                    })
                    .collect::<Result<_>>()?,
            ),
            Some(other) => {
                return Err(err!("{at}.{INBOUND_KEY}: expected a list of layer names, found {}", short(other)));
            }
        };
        out.push(ArchEntry { index, name, class_name, config, weights, inbound, absent_keys });
    }
    Ok(out)
}

/// A value shortened for a message.
pub fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 { format!("{}...", s.chars().take(57).collect::<String>()) } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_course_entries() {
        let v = json!([{"name": "flatten", "type": "Flatten", "config": {}, "weights": []},
                       {"name": "dense", "type": "Dense", "config": {"units": 10}, "weights": ["dense_0", "dense_1"]}]);
        let a = parse_arch(&v).unwrap();
        assert_eq!(a[1].weights, ["dense_0", "dense_1"]);
        assert_eq!(a[1].pointer(), "$[1]");
        assert_eq!(a[0].to_json(), v[0]);
    }

    #[test]
    fn recognises_other_layouts() {
        assert_eq!(
            detect_layout(&json!({"class_name": "Sequential", "config": {"layers": []}})),
            Layout::KerasModelJson
        );
        assert_eq!(detect_layout(&json!([{"class_name": "Dense", "config": {}}])), Layout::ConfigList);
        assert_eq!(detect_layout(&json!({"layers": []})), Layout::LayersWrapper);
        let e = parse_arch(&json!({"layers": []})).unwrap_err();
        assert!(e.hint.unwrap().contains("fmtool convert"));
    }

    #[test]
    fn errors_carry_json_pointers() {
        let e = parse_arch(&json!([{"name": "d", "type": "Dense", "weights": ["a", 3]}])).unwrap_err();
        assert!(e.message.starts_with("$[0].weights[1]"), "{}", e.message);
    }
}
