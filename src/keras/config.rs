//! Keras model configs (the `.h5` `model_config` attribute, the `.keras` `config.json`): the layer
//! list in `model.layers` order, the inbound wiring of functional graphs (Keras 2 and Keras 3
//! encodings), and nested models inlined into one flat graph.

use crate::err;
use crate::error::Result;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

/// The class names Keras gives whole models.
pub const MODEL_CLASSES: &[&str] = &["Sequential", "Functional", "Model"];

/// A model as its config describes it; nested models stay nested.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub class_name: String,
    pub name: String,
    /// False for `Sequential` (layers chained in order), true for functional graphs.
    pub functional: bool,
    pub layers: Vec<ConfigLayer>,
    /// Functional models: the names of the input layers and of the output layers.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

/// One entry of a model config's layer list.
#[derive(Debug, Clone)]
pub struct ConfigLayer {
    pub name: String,
    pub class_name: String,
    /// The layer's `get_config()` (for a nested model: the model's config).
    pub config: Map<String, Value>,
    /// Names of the layers feeding it, in call order (functional models only).
    pub inbound: Vec<String>,
    /// Where a `.keras` archive keeps its variables, below its model's `layers/`: Keras names them
    /// after the class in snake case, numbered per class in model order (`conv2d`, `conv2d_1`).
    pub archive_key: String,
    /// The parsed model when this layer is itself a model.
    pub nested: Option<Box<ModelConfig>>,
}

/// Parses `{"class_name": "Sequential"|"Functional", "config": {"layers": [...]}}`.
pub fn parse_model(config: &Value) -> Result<ModelConfig> {
    parse_model_at(config, 0)
}

/// Deeper nesting than this is refused, so that a crafted config cannot exhaust the stack.
const MAX_DEPTH: usize = 16;

fn parse_model_at(config: &Value, depth: usize) -> Result<ModelConfig> {
    let class_name = config.get("class_name").and_then(Value::as_str).unwrap_or("").to_string();
    if !MODEL_CLASSES.contains(&class_name.as_str()) {
        let what = if class_name.is_empty() { "no class_name".to_string() } else { format!("a {class_name:?}") };
        return Err(err!("the model config describes {what}, not a Sequential or functional Keras model").with_hint(
            "fmtool converts models built with keras.Sequential or the functional API (keras.Model(inputs, outputs)); \
             subclassed models cannot be saved as .h5",
        ));
    }
    let inner = config.get("config").ok_or_else(|| err!("the model config has no \"config\""))?;
    // Keras 2.0-2.2 Sequential configs are the bare layer list.
    let list = inner
        .get("layers")
        .or(if inner.is_array() { Some(inner) } else { None })
        .and_then(Value::as_array)
        .ok_or_else(|| err!("the model config has no list of layers"))?;
    let name = inner.get("name").and_then(Value::as_str).unwrap_or("model").to_string();
    let functional = class_name != "Sequential";
    let mut used: HashMap<String, usize> = HashMap::new();
    let mut layers = Vec::with_capacity(list.len());
    for (i, l) in list.iter().enumerate() {
        let cls = l
            .get("class_name")
            .and_then(Value::as_str)
            .ok_or_else(|| err!("layer {i} of model {name} has no class_name"))?
            .to_string();
        let cfg = l.get("config").and_then(Value::as_object).cloned().unwrap_or_default();
        let lname = l
            .get("name")
            .and_then(Value::as_str)
            .or_else(|| cfg.get("name").and_then(Value::as_str))
            .ok_or_else(|| err!("layer {i} ({cls}) of model {name} has no name"))?
            .to_string();
        let inbound = if functional { inbound_names(l.get("inbound_nodes"), &lname)? } else { Vec::new() };
        let base = snake_case(&cls);
        let n = used.entry(base.clone()).and_modify(|c| *c += 1).or_insert(0);
        let archive_key = if *n == 0 { base } else { format!("{base}_{n}") };
        let nested = if MODEL_CLASSES.contains(&cls.as_str()) {
            if depth >= MAX_DEPTH {
                return Err(err!("model {lname} is nested more than {MAX_DEPTH} levels deep"));
            }
            let sub = parse_model_at(l, depth + 1).map_err(|e| e.context(format!("nested model {lname}")))?;
            Some(Box::new(sub))
        } else {
            None
        };
        layers.push(ConfigLayer { name: lname, class_name: cls, config: cfg, inbound, archive_key, nested });
    }
    let (inputs, outputs) = if functional {
        (history_names(inner.get("input_layers")), history_names(inner.get("output_layers")))
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(ModelConfig { class_name, name, functional, layers, inputs, outputs })
}

/// The layer names in an `input_layers` / `output_layers` value: Keras 2 writes
/// `[["name", 0, 0], ...]`, Keras 3 `["name", 0, 0]` for one tensor, lists or dicts of them for more.
fn history_names(v: Option<&Value>) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Array(items) => match items.first() {
                Some(Value::String(s)) => out.push(s.clone()),
                _ => items.iter().for_each(|x| walk(x, out)),
            },
            Value::Object(m) => m.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Some(v) = v {
        walk(v, &mut out);
    }
    out
}

/// The names of the layers feeding one layer, from Keras 2's `[[["name", 0, 0, {}], ...]]` or
/// Keras 3's `[{"args": [...keras tensors...], "kwargs": {}}]` (a merge layer gets a list inside
/// `args[0]`).
pub fn inbound_names(nodes: Option<&Value>, layer: &str) -> Result<Vec<String>> {
    let Some(Value::Array(nodes)) = nodes else { return Ok(Vec::new()) };
    if nodes.len() > 1 {
        return Err(err!(
            "layer {layer} is called {} times (a shared layer); fmtool converts models that call each layer once",
            nodes.len()
        )
        .with_hint("give each call its own layer, retrain or copy the weights, and save the model again"));
    }
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
    let mut names = Vec::new();
    for node in nodes {
        match node {
            Value::Object(m) => walk(m.get("args").unwrap_or(&Value::Null), &mut names),
            Value::Array(tensors) => {
                for t in tensors {
                    match t.get(0) {
                        Some(Value::String(n)) => names.push(n.clone()),
                        _ => return Err(err!("layer {layer}: cannot read its inbound node {}", node)),
                    }
                }
            }
            _ => return Err(err!("layer {layer}: cannot read its inbound node {}", node)),
        }
    }
    Ok(names)
}

/// Keras' `naming.to_snake_case`: `BatchNormalization` -> `batch_normalization`, `PReLU` -> `p_re_lu`.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().filter(|c| c.is_alphanumeric() || *c == '_').collect();
    // re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    let mut a = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if i > 0 && c.is_ascii_uppercase() && chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase()) {
            a.push('_');
        }
        a.push(c);
    }
    // re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
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

/// One layer of the flattened model.
#[derive(Debug, Clone)]
pub struct FlatLayer {
    pub name: String,
    pub class_name: String,
    pub config: Map<String, Value>,
    /// Names of the flat layers feeding it, in call order; empty for the model input.
    pub inbound: Vec<String>,
    /// Indices from the top model down to this layer (`[2, 1]`: layer 1 of the model that is
    /// layer 2 of the top model), to find its weights.
    pub path: Vec<usize>,
}

/// A model with every nested model inlined.
#[derive(Debug, Clone)]
pub struct FlatModel {
    /// True when the layers form a graph that needs `inbound` lists; false for a plain chain
    /// from a Sequential model.
    pub functional: bool,
    pub layers: Vec<FlatLayer>,
    /// The names of the nested models that were inlined, outermost first.
    pub inlined: Vec<String>,
}

impl ModelConfig {
    /// Inlines nested models: their layers take the nested model's place, in order, their inputs
    /// wired to what fed the nested model, and the layers it fed wired to its output. The nested
    /// models' own InputLayers disappear. Errors for graphs the course format cannot express:
    /// several inputs or outputs, an output that is not the last layer, duplicate names.
    pub fn flatten(&self) -> Result<FlatModel> {
        let mut out = Vec::with_capacity(self.layers.len());
        let mut inlined = Vec::new();
        let outputs = inline(self, None, &mut Vec::new(), &mut out, &mut inlined)?;
        if out.is_empty() {
            return Err(err!("the model has no layers"));
        }
        let mut seen = HashSet::new();
        for l in &out {
            if !seen.insert(l.name.as_str()) {
                return Err(err!(
                    "two layers are named {:?} once the nested models are inlined; fmtool needs unique layer names",
                    l.name
                )
                .with_hint("give the layers of the nested model their own names (name=...), save and convert again"));
            }
        }
        if self.functional {
            let inputs: Vec<&FlatLayer> = out.iter().filter(|l| l.inbound.is_empty()).collect();
            if inputs.len() > 1 {
                let names: Vec<&str> = inputs.iter().map(|l| l.name.as_str()).collect();
                return Err(err!(
                    "the model has {} inputs ({}); the grader feeds one image",
                    names.len(),
                    names.join(", ")
                )
                .with_hint("build a model with one input of shape (784,), (28, 28) or (28, 28, 1)"));
            }
            if outputs.len() != 1 {
                return Err(err!(
                    "the model has {} outputs ({}); the grader reads one (the 10 class scores)",
                    outputs.len(),
                    outputs.join(", ")
                )
                .with_hint("build a model with one output: Dense(10, activation=\"softmax\")"));
            }
            let last = &out[out.len() - 1].name;
            if &outputs[0] != last {
                return Err(err!(
                    "the model's output is layer {} but its last layer is {last}; the course format runs the last layer as the output",
                    outputs[0]
                )
                .with_hint("remove the layers that do not lead to the output, save and convert again"));
            }
        }
        let chain = out
            .iter()
            .enumerate()
            .all(|(i, l)| if i == 0 { l.inbound.is_empty() } else { l.inbound == [out[i - 1].name.clone()] });
        let functional = self.functional || (!chain && !inlined.is_empty());
        Ok(FlatModel { functional, layers: out, inlined })
    }
}

/// Appends the layers of `model` to `out`. `feeds` are the flat layers feeding a nested model
/// (`None` for the top model, whose InputLayers stay). Returns the names of its output layers.
fn inline(
    model: &ModelConfig,
    feeds: Option<&[String]>,
    path: &mut Vec<usize>,
    out: &mut Vec<FlatLayer>,
    inlined: &mut Vec<String>,
) -> Result<Vec<String>> {
    // Names as this model's config uses them -> the flat layer producing that tensor.
    let mut alias: HashMap<&str, String> = HashMap::new();
    let mut prev: Option<String> = match feeds {
        Some([one]) => Some(one.clone()),
        Some(many) if !model.functional => {
            return Err(err!("nested Sequential model {} is fed by {} tensors; it takes one", model.name, many.len()));
        }
        _ => None,
    };
    for (i, l) in model.layers.iter().enumerate() {
        path.push(i);
        let inbound: Vec<String> = if model.functional {
            l.inbound
                .iter()
                .map(|n| {
                    alias.get(n.as_str()).cloned().ok_or_else(|| {
                        err!("layer {} of model {} is fed by {n:?}, which is not an earlier layer", l.name, model.name)
                    })
                })
                .collect::<Result<_>>()?
        } else {
            prev.iter().cloned().collect()
        };
        if l.class_name == "InputLayer" && feeds.is_some() {
            // A nested model's input: its consumers read what fed the nested model.
            let feeds = feeds.unwrap_or_default();
            let fed = if model.functional {
                let pos = model.inputs.iter().position(|n| n == &l.name).unwrap_or(0);
                feeds.get(pos).cloned()
            } else {
                prev.clone()
            };
            let fed =
                fed.ok_or_else(|| err!("the input {} of nested model {} is not connected", l.name, model.name))?;
            alias.insert(&l.name, fed.clone());
            prev = Some(fed);
        } else if let Some(sub) = &l.nested {
            inlined.push(l.name.clone());
            let outs = inline(sub, Some(&inbound), path, out, inlined)?;
            let [one] = outs.as_slice() else {
                return Err(err!("nested model {} has {} outputs; fmtool inlines models with one", l.name, outs.len()));
            };
            alias.insert(&l.name, one.clone());
            prev = Some(one.clone());
        } else {
            out.push(FlatLayer {
                name: l.name.clone(),
                class_name: l.class_name.clone(),
                config: l.config.clone(),
                inbound,
                path: path.clone(),
            });
            alias.insert(&l.name, l.name.clone());
            prev = Some(l.name.clone());
        }
        path.pop();
    }
    if model.functional {
        model
            .outputs
            .iter()
            .map(|n| {
                alias
                    .get(n.as_str())
                    .cloned()
                    .ok_or_else(|| err!("model {}: its output {n:?} is not a layer", model.name))
            })
            .collect()
    } else {
        Ok(prev.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
            ("Sequential", "sequential"),
        ] {
            assert_eq!(snake_case(a), b);
        }
    }

    #[test]
    fn inbound_names_read_both_encodings() {
        let k2 = json!([[["conv2d", 0, 0, {}], ["conv2d_1", 0, 0, {}]]]);
        assert_eq!(inbound_names(Some(&k2), "add").unwrap(), ["conv2d", "conv2d_1"]);
        let k3 = json!([{"args": [[
            {"class_name": "__keras_tensor__", "config": {"keras_history": ["a", 0, 0]}},
            {"class_name": "__keras_tensor__", "config": {"keras_history": ["b", 0, 0]}}]], "kwargs": {}}]);
        assert_eq!(inbound_names(Some(&k3), "add").unwrap(), ["a", "b"]);
        let shared = json!([[["a", 0, 0, {}]], [["b", 0, 0, {}]]]);
        assert!(inbound_names(Some(&shared), "d").unwrap_err().message.contains("shared layer"));
    }

    #[test]
    fn history_names_read_keras2_and_keras3() {
        assert_eq!(history_names(Some(&json!([["in", 0, 0]]))), ["in"]);
        assert_eq!(history_names(Some(&json!(["in", 0, 0]))), ["in"]);
        assert_eq!(history_names(Some(&json!([["a", 0, 0], ["b", 0, 0]]))), ["a", "b"]);
    }

    fn dense(name: &str, inbound: Value) -> Value {
        json!({"class_name": "Dense", "name": name, "config": {"name": name, "units": 4}, "inbound_nodes": inbound})
    }

    #[test]
    fn a_nested_sequential_is_inlined_and_wired() {
        // Keras 2 encoding: the outer Dense reads node 1 of the nested model.
        let cfg = json!({"class_name": "Functional", "config": {"name": "outer", "layers": [
            {"class_name": "InputLayer", "name": "in", "config": {"name": "in", "batch_input_shape": [null, 784]}, "inbound_nodes": []},
            {"class_name": "Sequential", "name": "inner", "config": {"name": "inner", "layers": [
                {"class_name": "InputLayer", "config": {"name": "inner_in", "batch_input_shape": [null, 784]}},
                {"class_name": "Dense", "config": {"name": "d1"}},
                {"class_name": "Dense", "config": {"name": "d2"}}]},
             "inbound_nodes": [[["in", 0, 0, {}]]]},
            dense("out", json!([[["inner", 1, 0, {}]]]))],
            "input_layers": [["in", 0, 0]], "output_layers": [["out", 0, 0]]}});
        let m = parse_model(&cfg).unwrap();
        let flat = m.flatten().unwrap();
        let got: Vec<(&str, Vec<String>, Vec<usize>)> =
            flat.layers.iter().map(|l| (l.name.as_str(), l.inbound.clone(), l.path.clone())).collect();
        assert_eq!(
            got,
            [
                ("in", vec![], vec![0]),
                ("d1", vec!["in".to_string()], vec![1, 1]),
                ("d2", vec!["d1".to_string()], vec![1, 2]),
                ("out", vec!["d2".to_string()], vec![2]),
            ]
        );
        assert!(flat.functional);
        assert_eq!(flat.inlined, ["inner"]);
    }

    #[test]
    fn a_nested_functional_in_a_sequential_stays_a_chain_when_it_is_one() {
        let cfg = json!({"class_name": "Sequential", "config": {"name": "outer", "layers": [
            {"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [null, 784]}},
            {"class_name": "Functional", "config": {"name": "inner", "layers": [
                {"class_name": "InputLayer", "name": "x", "config": {"name": "x"}, "inbound_nodes": []},
                dense("d1", json!([{"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": ["x", 0, 0]}}], "kwargs": {}}]))],
                "input_layers": ["x", 0, 0], "output_layers": ["d1", 0, 0]}},
            {"class_name": "Dense", "config": {"name": "out"}}]}});
        let flat = parse_model(&cfg).unwrap().flatten().unwrap();
        let names: Vec<&str> = flat.layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["in", "d1", "out"]);
        assert!(!flat.functional);
    }

    #[test]
    fn graphs_the_course_format_cannot_hold_are_refused() {
        let two_out = json!({"class_name": "Functional", "config": {"name": "m", "layers": [
            {"class_name": "InputLayer", "name": "in", "config": {"name": "in"}, "inbound_nodes": []},
            dense("a", json!([[["in", 0, 0, {}]]])), dense("b", json!([[["in", 0, 0, {}]]]))],
            "input_layers": [["in", 0, 0]], "output_layers": [["a", 0, 0], ["b", 0, 0]]}});
        let e = parse_model(&two_out).unwrap().flatten().unwrap_err();
        assert!(e.message.contains("2 outputs (a, b)"), "{}", e.message);
        let dup = json!({"class_name": "Sequential", "config": {"name": "m", "layers": [
            {"class_name": "Dense", "config": {"name": "d"}},
            {"class_name": "Sequential", "config": {"name": "inner", "layers": [{"class_name": "Dense", "config": {"name": "d"}}]}}]}});
        let e = parse_model(&dup).unwrap().flatten().unwrap_err();
        assert!(e.message.contains("\"d\""), "{}", e.message);
        let e = parse_model(&json!({"class_name": "MyModel", "config": {}})).unwrap_err();
        assert!(e.message.contains("\"MyModel\""), "{}", e.message);
    }

    #[test]
    fn archive_keys_count_per_class() {
        let cfg = json!({"class_name": "Sequential", "config": {"name": "m", "layers": [
            {"class_name": "InputLayer", "config": {"name": "i"}},
            {"class_name": "Dense", "config": {"name": "dense_7"}},
            {"class_name": "BatchNormalization", "config": {"name": "bn"}},
            {"class_name": "Dense", "config": {"name": "dense_8"}}]}});
        let keys: Vec<String> = parse_model(&cfg).unwrap().layers.into_iter().map(|l| l.archive_key).collect();
        assert_eq!(keys, ["input_layer", "dense", "batch_normalization", "dense_1"]);
    }
}
