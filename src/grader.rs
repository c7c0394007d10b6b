//! What the course autograder does: its points table, the relu/softmax self-test, and the course
//! template's own forward pass (`--grader classic`): float64, one image at a time as (1, 784), only
//! Flatten and Dense with relu/softmax, every other layer silently skipped.

use crate::err;
use crate::error::Result;
use crate::layers::{Classic, fmt_dims};
use crate::model::{ArchEntry, Npz};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use rayon::prelude::*;
use serde_json::Value;

/// The accuracy tiers of the course sheet: (threshold, points), compared with `>=`.
pub const ACCURACY_TIERS: [(f64, u32); 8] =
    [(0.80, 10), (0.82, 2), (0.84, 2), (0.86, 2), (0.88, 3), (0.90, 3), (0.91, 4), (0.92, 4)];

/// One row of the points table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PointsItem {
    pub item: String,
    pub earned: u32,
    pub max: u32,
    pub passed: bool,
}

/// The whole table, as the course sheet lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Points {
    pub items: Vec<PointsItem>,
    pub total: u32,
    pub max: u32,
}

/// Scores a result the way the autograder does. `accuracy` is `None` when the model did not run.
pub fn points(relu_ok: bool, softmax_ok: bool, model_runs: bool, accuracy: Option<f64>) -> Points {
    let mut items = vec![
        PointsItem { item: "relu".into(), earned: if relu_ok { 10 } else { 0 }, max: 10, passed: relu_ok },
        PointsItem { item: "softmax".into(), earned: if softmax_ok { 10 } else { 0 }, max: 10, passed: softmax_ok },
        PointsItem {
            item: "valid model that runs inference".into(),
            earned: if model_runs { 50 } else { 0 },
            max: 50,
            passed: model_runs,
        },
    ];
    for (threshold, pts) in ACCURACY_TIERS {
        let passed = model_runs && accuracy.is_some_and(|a| a >= threshold);
        items.push(PointsItem {
            item: format!("accuracy >= {threshold:.2}"),
            earned: if passed { pts } else { 0 },
            max: pts,
            passed,
        });
    }
    let total = items.iter().map(|i| i.earned).sum();
    let max = items.iter().map(|i| i.max).sum();
    Points { items, total, max }
}

/// The course template's relu, in float64.
pub fn relu64(x: &mut [f64]) {
    for v in x {
        *v = v.max(0.0);
    }
}

/// The course template's softmax over one row, in float64: `exp(x - max) / sum`.
pub fn softmax64(x: &mut [f64]) {
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    for v in x.iter_mut() {
        *v = (*v - max).exp();
    }
    let sum: f64 = x.iter().sum();
    for v in x.iter_mut() {
        *v /= sum;
    }
}

/// The autograder's checks of relu and softmax, run against fmtool's own implementations (the
/// float64 ones the classic grader uses and the float32 ones of the engine).
pub fn self_test() -> (bool, bool) {
    let input = [-3.0, -0.5, 0.0, 0.5, 2.0, 10.0];
    let mut r = input;
    relu64(&mut r);
    let mut r32 = ndarray::arr1(&input.map(|v| v as f32)).into_dyn();
    crate::layers::Activation::by_name("relu").expect("relu is registered").apply(&mut r32);
    let relu_ok = r == [0.0, 0.0, 0.0, 0.5, 2.0, 10.0] && r32.iter().zip(&r).all(|(a, b)| *a as f64 == *b);

    let mut s = input;
    softmax64(&mut s);
    let expected: Vec<f64> = {
        let e: Vec<f64> = input.iter().map(|v: &f64| v.exp()).collect();
        let sum: f64 = e.iter().sum();
        e.iter().map(|v| v / sum).collect()
    };
    let mut s32 = ndarray::arr2(&[input.map(|v| v as f32)]).into_dyn();
    crate::layers::Activation::by_name("softmax").expect("softmax is registered").apply(&mut s32);
    let mut big = [1000.0, 1001.0, 1002.0];
    softmax64(&mut big);
    let softmax_ok = s.iter().zip(&expected).all(|(a, b)| (a - b).abs() < 1e-12)
        && (s.iter().sum::<f64>() - 1.0).abs() < 1e-12
        && s32.iter().zip(&expected).all(|(a, b)| (*a as f64 - b).abs() < 1e-6)
        && big.iter().all(|v| v.is_finite())
        && (big.iter().sum::<f64>() - 1.0).abs() < 1e-12;
    (relu_ok, softmax_ok)
}

/// What the course template did with one layer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TemplateStep {
    pub name: String,
    #[serde(rename = "type")]
    pub class_name: String,
    /// `ran`, `skipped`.
    pub action: &'static str,
    /// Whether skipping this layer changes the model (from the registry).
    pub changes_result: bool,
    pub detail: String,
}

/// The course template's plan for a model: which entries it runs and how.
pub struct TemplatePlan {
    pub steps: Vec<TemplateStep>,
    ops: Vec<TemplateOp>,
}

enum TemplateOp {
    Flatten,
    Dense { w: Array2<f64>, b: Array1<f64>, act: TemplateAct },
}

#[derive(Clone, Copy)]
enum TemplateAct {
    None,
    Relu,
    Softmax,
}

/// Plans the course template's pass over a model: the template compares
/// `config.get("activation")` with the strings "relu" and "softmax" and reads
/// `weights[wnames[0]]`, `weights[wnames[1]]` for every Dense. Errors are what would crash the
/// template (a missing key, a Dense without bias).
pub fn plan_template(arch: &[ArchEntry], npz: &Npz) -> Result<TemplatePlan> {
    let mut steps = Vec::new();
    let mut ops = Vec::new();
    for e in arch {
        match e.class_name.as_str() {
            "Flatten" => {
                ops.push(TemplateOp::Flatten);
                steps.push(step(e, "ran", false, "x.reshape(x.shape[0], -1)".into()));
            }
            "Dense" => {
                if e.weights.len() < 2 {
                    return Err(err!(
                        "{} (layer {}): the course template reads weights[wnames[0]] and weights[wnames[1]], but the entry lists {} weight name(s); it would crash with IndexError",
                        e.pointer(),
                        e.name,
                        e.weights.len()
                    )
                    .with_hint("the template needs Dense layers with use_bias=True"));
                }
                let get = |j: usize| -> Result<ndarray::ArrayD<f64>> {
                    Ok(npz
                        .array(&e.weights[j])
                        .map_err(|er| {
                            er.context(format!(
                                "{}.weights[{j}] (layer {}): the template would crash with KeyError",
                                e.pointer(),
                                e.name
                            ))
                        })?
                        .to_f64())
                };
                let w = get(0)?;
                let b = get(1)?;
                let w = w.into_dimensionality::<ndarray::Ix2>().map_err(|_| {
                    err!(
                        "{} (layer {}): kernel {} is not a matrix; the template's x @ W would fail",
                        e.pointer(),
                        e.name,
                        e.weights[0]
                    )
                })?;
                let b = b
                    .into_dimensionality::<ndarray::Ix1>()
                    .map_err(|_| err!("{} (layer {}): bias {} is not a vector", e.pointer(), e.name, e.weights[1]))?;
                let act = match e.config.get("activation") {
                    Some(Value::String(s)) if s == "relu" => TemplateAct::Relu,
                    Some(Value::String(s)) if s == "softmax" => TemplateAct::Softmax,
                    _ => TemplateAct::None,
                };
                let shown = match e.config.get("activation") {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => "none".into(),
                };
                let (ignored, act_txt) = match act {
                    TemplateAct::None if shown != "linear" && shown != "none" => {
                        (true, format!("activation {shown} IGNORED"))
                    }
                    TemplateAct::None => (false, "no activation".to_string()),
                    TemplateAct::Relu => (false, "relu".to_string()),
                    TemplateAct::Softmax => (false, "softmax".to_string()),
                };
                steps.push(step(e, "ran", ignored, format!("x @ W{} + b, {act_txt}", fmt_dims(w.shape()))));
                ops.push(TemplateOp::Dense { w, b, act });
            }
            other => {
                let changes =
                    crate::layers::lookup(other).map(|s| s.classic == Classic::SkipsChangingResult).unwrap_or(true);
                steps.push(step(e, "skipped", changes, "the template has no branch for this type".into()));
            }
        }
    }
    Ok(TemplatePlan { steps, ops })
}

fn step(e: &ArchEntry, action: &'static str, changes_result: bool, detail: String) -> TemplateStep {
    TemplateStep { name: e.name.clone(), class_name: e.class_name.clone(), action, changes_result, detail }
}

impl TemplatePlan {
    /// Runs the template's pass over every image. Each row is computed exactly as the template
    /// computes a (1, 784) input; rows are batched only to use the matrix kernels.
    pub fn run(&self, images: ArrayView2<f64>) -> Result<Array2<f64>> {
        let chunks: Vec<_> = images.axis_chunks_iter(Axis(0), 256).collect();
        let outs: Vec<Result<Array2<f64>>> = chunks.par_iter().map(|c| self.run_chunk(c.to_owned())).collect();
        let outs: Vec<Array2<f64>> = outs.into_iter().collect::<Result<_>>()?;
        let views: Vec<_> = outs.iter().map(|o| o.view()).collect();
        ndarray::concatenate(Axis(0), &views).map_err(|e| err!("template output: {e}"))
    }

    fn run_chunk(&self, mut x: Array2<f64>) -> Result<Array2<f64>> {
        for (op, st) in self.ops.iter().zip(self.steps.iter().filter(|s| s.action == "ran")) {
            match op {
                TemplateOp::Flatten => {}
                TemplateOp::Dense { w, b, act } => {
                    if x.ncols() != w.nrows() {
                        return Err(err!(
                            "layer {}: the template computes x @ W with x of shape (1, {}) and W of shape {}; NumPy raises ValueError (matmul shapes do not match)",
                            st.name,
                            x.ncols(),
                            fmt_dims(w.shape())
                        ));
                    }
                    if b.len() != w.ncols() {
                        return Err(err!(
                            "layer {}: bias of shape ({},) cannot be added to x @ W of shape (1, {})",
                            st.name,
                            b.len(),
                            w.ncols()
                        ));
                    }
                    x = x.dot(w) + b;
                    match act {
                        TemplateAct::None => {}
                        TemplateAct::Relu => x.mapv_inplace(|v| v.max(0.0)),
                        TemplateAct::Softmax => {
                            for mut row in x.rows_mut() {
                                softmax64(row.as_slice_mut().expect("rows of a standard array are contiguous"));
                            }
                        }
                    }
                }
            }
        }
        Ok(x)
    }
}

/// NumPy's argmax: the first index of the maximum, or of the first NaN.
pub fn argmax<T: Copy + PartialOrd + Into<f64>>(row: impl IntoIterator<Item = T>) -> usize {
    let mut best = 0;
    let mut best_v = f64::NEG_INFINITY;
    for (i, v) in row.into_iter().enumerate() {
        let v: f64 = v.into();
        if v.is_nan() {
            return i;
        }
        if i == 0 || v > best_v {
            best = i;
            best_v = v;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_table_totals_100_and_uses_ge() {
        let full = points(true, true, true, Some(0.92));
        assert_eq!((full.total, full.max), (100, 100));
        let p = points(true, true, true, Some(0.8999999));
        assert_eq!(p.total, 20 + 50 + 10 + 2 + 2 + 2 + 3);
        assert_eq!(points(true, true, false, Some(0.95)).total, 20);
        assert_eq!(points(true, true, true, Some(0.80)).total, 80);
        assert_eq!(points(true, true, true, Some(0.79)).total, 70);
    }

    #[test]
    fn self_test_passes() {
        assert_eq!(self_test(), (true, true));
    }

    #[test]
    fn argmax_is_numpys() {
        assert_eq!(argmax([1.0f32, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax([1.0f64, f64::NAN, 5.0]), 1);
        assert_eq!(argmax([f32::NEG_INFINITY, f32::NEG_INFINITY]), 0);
    }
}
