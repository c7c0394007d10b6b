//! `fmtool convert --for-template`: a trained model rewritten into the only layers the course's
//! template runs (one Flatten, then Dense layers with relu, softmax or no activation) so that it
//! computes the same function. The template silently skips every other layer, so a student whose
//! model has a BatchNormalization is graded on a different model than the one they trained; doing
//! the folding by hand is error-prone arithmetic. Element-wise affine layers (BatchNormalization,
//! Rescaling, Normalization: `y = x * s + t`) are folded into the Dense before them when that
//! Dense has no activation yet, else into the Dense after them (`W' = diag(s) W`, `b' = t W + b`);
//! an Activation (relu, softmax, linear) is merged into the Dense before it; layers that are
//! identities at inference are removed. Anything else is refused by layer name, with the reason:
//! the rewrite is exact or it is not written. Pure computation: the caller reads and writes.

use crate::engine::{Model, Source};
use crate::err;
use crate::error::Result;
use crate::layers::{Activation, Classic};
use crate::model::{ArchEntry, NpyArray, Npz, npz::NpzEntry};
use ndarray::{Array1, Array2, ArrayD};
use serde_json::{Map, Value, json};

/// What `check` and `score --grader classic` tell a student whose model has layers the template
/// skips but this module folds.
pub const HINT: &str = "`fmtool convert MODEL --for-template --out DIR` (MODEL: the .h5, .keras or model folder) rewrites \
     BatchNormalization, Rescaling, Normalization and activation layers exactly into the Dense layers the template runs, \
     and removes Dropout";

/// What happened to one layer of the trained model.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FoldStep {
    pub name: String,
    #[serde(rename = "type")]
    pub class_name: String,
    /// `kept` (a Dense, possibly with layers folded into it), `folded` (an affine layer folded
    /// into a Dense), `merged` (an activation merged into a Dense) or `removed`.
    pub action: &'static str,
    pub detail: String,
}

/// The rewritten model.
#[derive(Debug)]
pub struct Folded {
    pub entries: Vec<ArchEntry>,
    pub npz: Npz,
    pub steps: Vec<FoldStep>,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Act {
    Linear,
    Relu,
    Softmax,
}

impl Act {
    fn name(self) -> &'static str {
        match self {
            Act::Linear => "linear",
            Act::Relu => "relu",
            Act::Softmax => "softmax",
        }
    }
}

/// A Dense being built: `act(x @ w + b)`.
struct OpenDense {
    name: String,
    config: Map<String, Value>,
    w: Array2<f64>,
    b: Array1<f64>,
    act: Act,
}

/// What the template can compute for an activation, or None.
fn template_act(a: &Activation) -> Option<Act> {
    match a.name() {
        "linear" => Some(Act::Linear),
        "relu" => Some(Act::Relu),
        "softmax" => Some(Act::Softmax),
        _ => None,
    }
}

fn refuse(e: &ArchEntry, why: impl std::fmt::Display) -> crate::error::Error {
    err!("layer {} ({}): {why}; nothing was written", e.name, e.class_name).with_hint(
        "the template runs only Flatten and Dense (relu, softmax or no activation): replace this layer in the model and \
         train again, or grade the model with fmtool's engine (`fmtool score`)",
    )
}

/// Rewrites `entries` + `npz` (built into `model`) for the course template.
pub fn fold(entries: &[ArchEntry], npz: &Npz, model: &Model) -> Result<Folded> {
    let index = crate::model::NpzIndex::new(npz);
    let mut steps = Vec::with_capacity(entries.len());
    let mut done: Vec<OpenDense> = Vec::new();
    let mut open: Option<OpenDense> = None;
    // An affine map waiting for the next Dense's input: (scale, shift) per feature.
    let mut pending: Option<(Vec<f64>, Vec<f64>)> = None;
    for (i, (e, node)) in entries.iter().zip(&model.nodes).enumerate() {
        // A chain: each layer takes the one before it (or the model's input).
        let chained = match node.inputs.as_slice() {
            // Only InputLayers before it: nothing was computed yet.
            [Source::ModelInput] => entries[..i].iter().all(|p| p.class_name == "InputLayer"),
            [Source::Node(j)] => *j + 1 == i,
            [] => i == 0,
            _ => false,
        };
        if !chained {
            return Err(refuse(e, "the template runs one layer after another, and this layer takes other inputs"));
        }
        let input_shape: Vec<usize> = match node.inputs.first() {
            Some(Source::Node(j)) => model.nodes[*j].output_shape.clone(),
            _ => model.input.shape.clone(),
        };
        let spec = crate::layers::lookup(&e.class_name);
        // Scale and shift per element, for BatchNormalization, Rescaling and Normalization.
        let mut affine = node.op.affine(&input_shape);
        let step = |action: &'static str, detail: String| FoldStep {
            name: e.name.clone(),
            class_name: e.class_name.clone(),
            action,
            detail,
        };
        match e.class_name.as_str() {
            "Dense" => {
                if input_shape.len() != 1 {
                    return Err(refuse(
                        e,
                        format!(
                            "it runs on each row of a {} input; the template flattens first",
                            crate::layers::fmt_dims(&input_shape)
                        ),
                    ));
                }
                let act = Activation::from_json(e.config.get("activation")).map_err(|m| refuse(e, m))?;
                let Some(act) = template_act(&act) else {
                    return Err(refuse(e, format!("activation {} is not one the template computes", act.name())));
                };
                let get = |j: usize| -> Result<Option<ArrayD<f64>>> {
                    match e.weights.get(j) {
                        None => Ok(None),
                        Some(key) => Ok(Some(index.array(key)?.to_f64())),
                    }
                };
                let w = get(0)?
                    .ok_or_else(|| refuse(e, "it has no kernel"))?
                    .into_dimensionality::<ndarray::Ix2>()
                    .map_err(|_| refuse(e, "its kernel is not a matrix"))?;
                let units = w.ncols();
                let b = match get(1)? {
                    Some(b) if b.len() == units => Array1::from_iter(b.iter().copied()),
                    Some(b) => return Err(refuse(e, format!("its bias has {} values for {units} units", b.len()))),
                    None => Array1::zeros(units),
                };
                let (mut w, mut b) = (w, b);
                let mut folded = String::new();
                if let Some((s, t)) = pending.take() {
                    // x' = x * s + t, then x' @ W + b = x @ (diag(s) W) + (t @ W + b).
                    b = t_dot(&t, &w) + &b;
                    for (mut row, sk) in w.rows_mut().into_iter().zip(&s) {
                        row.mapv_inplace(|v| v * sk);
                    }
                    folded = ", with the layers before it folded into its kernel and bias".into();
                }
                if let Some(prev) = open.take() {
                    done.push(prev);
                }
                let mut config = e.config.clone();
                config.insert("use_bias".into(), Value::Bool(true));
                open = Some(OpenDense { name: e.name.clone(), config, w, b, act });
                steps.push(step("kept", format!("{} units, {}{folded}", units, act.name())));
            }
            "Activation" | "ReLU" | "Softmax" => {
                let act = match e.class_name.as_str() {
                    "Activation" => {
                        let a = Activation::from_json(e.config.get("activation")).map_err(|m| refuse(e, m))?;
                        template_act(&a).ok_or_else(|| {
                            refuse(e, format!("activation {} is not one the template computes", a.name()))
                        })?
                    }
                    "ReLU" => {
                        let default =
                            |k: &str, d: f64| e.config.get(k).is_none_or(|v| v.is_null() || v.as_f64() == Some(d));
                        if !(e.config.get("max_value").is_none_or(Value::is_null)
                            && default("negative_slope", 0.0)
                            && default("threshold", 0.0))
                        {
                            return Err(refuse(
                                e,
                                "a ReLU with max_value, negative_slope or threshold is not plain relu",
                            ));
                        }
                        Act::Relu
                    }
                    _ => {
                        if input_shape.len() != 1 {
                            return Err(refuse(e, "a softmax over a tensor of more than one axis"));
                        }
                        Act::Softmax
                    }
                };
                match (&mut open, &pending) {
                    _ if act == Act::Linear => steps.push(step("removed", "linear: the identity".into())),
                    (Some(d), None) if d.act == Act::Linear => {
                        d.act = act;
                        steps.push(step("merged", format!("{} became {}'s activation", act.name(), d.name)));
                    }
                    (Some(d), None) if d.act == Act::Relu && act == Act::Relu => {
                        steps.push(step("removed", format!("relu after {}'s relu changes nothing", d.name)));
                    }
                    _ => {
                        return Err(refuse(
                            e,
                            "this activation does not follow a Dense without activation, so no Dense can take it",
                        ));
                    }
                }
            }
            _ if affine.is_some() => {
                let (s, t) = affine.take().expect("checked");
                match &mut open {
                    Some(d) if d.act == Act::Linear && pending.is_none() => {
                        // (x @ W + b) * s + t = x @ (W diag(s)) + (b * s + t).
                        for (mut col, sk) in d.w.columns_mut().into_iter().zip(&s) {
                            col.mapv_inplace(|v| v * sk);
                        }
                        d.b = &d.b * &Array1::from(s) + &Array1::from(t);
                        steps.push(step("folded", format!("into {}'s kernel and bias (the Dense before it)", d.name)));
                    }
                    _ => {
                        pending = Some(match pending.take() {
                            None => (s, t),
                            // (x * s1 + t1) * s2 + t2
                            Some((s1, t1)) => (
                                s1.iter().zip(&s).map(|(a, b)| a * b).collect(),
                                t1.iter().zip(&s).zip(&t).map(|((a, b), c)| a * b + c).collect(),
                            ),
                        });
                        steps.push(step("folded", "into the next Dense's kernel and bias".into()));
                    }
                }
            }
            "Flatten" | "Reshape" | "InputLayer" => {
                // Before the first Dense every shape is the same 784 values in the same order
                // (a Dense on a non-flat input is refused above).
                steps.push(step("removed", "the template's one Flatten takes its place".into()));
            }
            _ if spec.is_some_and(|s| s.classic == Classic::SkipsHarmlessly) || node.op.is_identity() => {
                steps.push(step("removed", "an identity at inference".into()));
            }
            other => return Err(refuse(e, why_not(other))),
        }
    }
    if let Some(d) = open.take() {
        done.push(d);
    }
    if pending.is_some() {
        let last = entries.iter().rev().find(|e| e.class_name != "Dense").expect("an affine layer is not a Dense");
        return Err(refuse(last, "it comes after the last Dense's activation, where no Dense can take it"));
    }
    if done.is_empty() {
        return Err(err!("the model has no Dense layer; nothing to rewrite for the template"));
    }
    Ok(assemble(done, steps, model))
}

/// Why a layer of this type has no exact Flatten + Dense form.
fn why_not(class_name: &str) -> &'static str {
    match class_name {
        "LeakyReLU" | "PReLU" | "ELU" => "its activation is not relu or softmax, the two the template applies",
        "LayerNormalization" => "it divides each image by that image's own spread, which no fixed Dense computes",
        c if c.contains("Conv") => "a convolution; lowering it to Dense layers is not implemented",
        c if c.contains("Pooling") => "pooling; lowering it to Dense layers is not implemented",
        "Add" | "Subtract" | "Multiply" | "Average" | "Maximum" | "Minimum" | "Concatenate" => {
            "it merges several branches; the template runs one layer after another"
        }
        _ => "it cannot be expressed exactly with Flatten and Dense layers",
    }
}

/// `t @ W` for a row vector `t`.
fn t_dot(t: &[f64], w: &Array2<f64>) -> Array1<f64> {
    Array1::from(t.to_vec()).dot(w)
}

/// One Flatten (with the model's input shape, so the engine knows it) and the Dense layers.
fn assemble(dense: Vec<OpenDense>, steps: Vec<FoldStep>, model: &Model) -> Folded {
    let mut shape = vec![Value::Null];
    shape.extend(model.input.shape.iter().map(|&d| json!(d)));
    let mut entries = vec![ArchEntry {
        index: 0,
        name: "flatten".into(),
        class_name: "Flatten".into(),
        config: json!({"name": "flatten", "batch_input_shape": shape, "dtype": "float32"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        weights: Vec::new(),
        inbound: None,
        absent_keys: Vec::new(),
    }];
    let mut arrays = Vec::with_capacity(2 * dense.len());
    for d in dense {
        let mut config = d.config;
        config.insert("activation".into(), Value::String(d.act.name().into()));
        config.insert("units".into(), json!(d.w.ncols()));
        let (k, b) = (format!("{}_0", d.name), format!("{}_1", d.name));
        let to_f32 = |a: ArrayD<f64>| NpyArray::from_f32_owned(a.mapv(|v| v as f32));
        arrays.push(NpzEntry { key: k.clone(), array: Ok(to_f32(d.w.into_dyn())) });
        arrays.push(NpzEntry { key: b.clone(), array: Ok(to_f32(d.b.into_dyn())) });
        entries.push(ArchEntry {
            index: entries.len(),
            name: d.name,
            class_name: "Dense".into(),
            config,
            weights: vec![k, b],
            inbound: None,
            absent_keys: Vec::new(),
        });
    }
    Folded { entries, npz: Npz { path: Default::default(), entries: arrays, plain: Vec::new() }, steps }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{ArrayD, IxDyn};

    /// A model from course-format entries and (key, shape, values) arrays, built by the engine.
    fn model(arch: Value, arrays: &[(&str, &[usize], Vec<f32>)]) -> (Vec<ArchEntry>, Npz, Model) {
        let entries = crate::model::arch::parse_arch(&arch).unwrap();
        let npz = Npz {
            path: Default::default(),
            entries: arrays
                .iter()
                .map(|(k, shape, v)| NpzEntry {
                    key: k.to_string(),
                    array: Ok(NpyArray::from_f32_owned(ArrayD::from_shape_vec(IxDyn(shape), v.clone()).unwrap())),
                })
                .collect(),
            plain: Vec::new(),
        };
        let m = Model::build(&entries, &npz).unwrap();
        (entries, npz, m)
    }

    fn dense(name: &str, act: &str) -> Value {
        json!({"name": name, "type": "Dense", "config": {"activation": act}, "weights": [format!("{name}_0"), format!("{name}_1")]})
    }

    fn rescale(scale: f64, offset: f64) -> Value {
        json!({"name": "r", "type": "Rescaling", "config": {"scale": scale, "offset": offset}, "weights": []})
    }

    fn flatten() -> Value {
        json!({"name": "f", "type": "Flatten", "config": {"batch_input_shape": [null, 2]}, "weights": []})
    }

    /// Dense d: W = [[1, 2], [3, 4]], b = [0.5, -0.5].
    fn arrays() -> Vec<(&'static str, &'static [usize], Vec<f32>)> {
        vec![("d_0", &[2, 2], vec![1.0, 2.0, 3.0, 4.0]), ("d_1", &[2], vec![0.5, -0.5])]
    }

    #[test]
    fn an_affine_layer_folds_into_the_dense_before_it_when_that_dense_has_no_activation_yet() {
        let (e, n, m) = model(json!([flatten(), dense("d", "linear"), rescale(2.0, 1.0)]), &arrays());
        let f = fold(&e, &n, &m).unwrap();
        let b = f.npz.entries[1].array.as_ref().unwrap().to_f64();
        // (x W + b) * 2 + 1
        assert_eq!(b.iter().copied().collect::<Vec<_>>(), vec![2.0, 0.0]);
        assert_eq!(f.steps[2].action, "folded");
    }

    #[test]
    fn an_affine_layer_before_a_dense_folds_into_its_input_side() {
        let (e, n, m) = model(json!([flatten(), rescale(2.0, 1.0), dense("d", "relu")]), &arrays());
        let f = fold(&e, &n, &m).unwrap();
        let w = f.npz.entries[0].array.as_ref().unwrap().to_f64();
        let b = f.npz.entries[1].array.as_ref().unwrap().to_f64();
        // (2x + 1) W + b = x (2W) + (1 W + b): t @ W = [1+3, 2+4].
        assert_eq!(w.iter().copied().collect::<Vec<_>>(), vec![2.0, 4.0, 6.0, 8.0]);
        assert_eq!(b.iter().copied().collect::<Vec<_>>(), vec![4.5, 5.5]);
    }

    #[test]
    fn what_has_no_dense_to_go_into_is_refused() {
        // An affine map after the last activation.
        let (e, n, m) = model(json!([flatten(), dense("d", "softmax"), rescale(2.0, 0.0)]), &arrays());
        let err = fold(&e, &n, &m).unwrap_err();
        assert!(err.message.contains("layer r (Rescaling)") && err.message.contains("after the last Dense"), "{err:?}");
        // An activation after an affine map that follows an activated Dense.
        let act = json!({"name": "a", "type": "Activation", "config": {"activation": "relu"}, "weights": []});
        let (e, n, m) = model(json!([flatten(), dense("d", "relu"), rescale(2.0, 0.0), act]), &arrays());
        let err = fold(&e, &n, &m).unwrap_err();
        assert!(err.message.contains("layer a (Activation)"), "{err:?}");
        // An activation the template does not compute.
        let (e, n, m) = model(json!([flatten(), dense("d", "tanh")]), &arrays());
        assert!(fold(&e, &n, &m).unwrap_err().message.contains("activation tanh"));
    }

    #[test]
    fn an_activation_layer_is_merged_and_a_repeated_relu_removed() {
        let relu = |n: &str| json!({"name": n, "type": "ReLU", "config": {}, "weights": []});
        let (e, n, m) = model(json!([flatten(), dense("d", "linear"), relu("a"), relu("b")]), &arrays());
        let f = fold(&e, &n, &m).unwrap();
        assert_eq!(f.entries[1].config["activation"], "relu");
        let actions: Vec<&str> = f.steps.iter().map(|s| s.action).collect();
        assert_eq!(actions, ["removed", "kept", "merged", "removed"]);
    }
}
