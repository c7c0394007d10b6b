//! What the course autograder does: its points table, the relu/softmax self-test, and the course
//! template's own forward pass (`--grader classic`): float64, one image at a time as (1, 784), only
//! Flatten and Dense with relu/softmax, every other layer silently skipped.

use crate::err;
use crate::error::{Error, Result};
use crate::layers::{Classic, fmt_dims};
use crate::model::{ArchEntry, Npz, NpzIndex};
use ndarray::{Array1, Array2, ArrayD, ArrayView2, Axis};
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
    /// `passed`, `failed`, or `not_run`: a row fmtool could not run never claims its points.
    pub status: Status,
    /// Why a row was not run, or what decided it.
    pub note: Option<String>,
}

/// Which forward pass grades the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Grader {
    /// fmtool's engine: every supported layer, float32, as Keras computes it.
    #[default]
    Full,
    /// The unmodified course template: float64, one image at a time, only Flatten and Dense with
    /// relu/softmax; every other layer is silently skipped.
    Classic,
}

/// Whether a row's points were earned, lost, or could not be found out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    Failed,
    /// fmtool did not run it (no Python, no nn_predict.py, a command it does not model).
    NotRun,
}

/// The whole table, as the course sheet lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Points {
    pub items: Vec<PointsItem>,
    pub total: u32,
    pub max: u32,
}

/// Whether a test passed, failed, or was not run (and why).
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Passed,
    Failed,
    NotRun(String),
}

fn item(name: impl Into<String>, max: u32, outcome: &Outcome) -> PointsItem {
    use Status;
    let (passed, status, note) = match outcome {
        Outcome::Passed => (true, Status::Passed, None),
        Outcome::Failed => (false, Status::Failed, None),
        Outcome::NotRun(why) => (false, Status::NotRun, Some(why.clone())),
    };
    PointsItem { item: name.into(), earned: if passed { max } else { 0 }, max, passed, status, note }
}

/// Scores a result the way the credit sheet does. `relu` and `softmax` are the student's own
/// functions' results (not run outside a student repository); `accuracy` is `None` when the model
/// did not run.
pub fn points(relu: &Outcome, softmax: &Outcome, model_runs: bool, accuracy: Option<f64>) -> Points {
    let model = if model_runs { Outcome::Passed } else { Outcome::Failed };
    let mut items =
        vec![item("relu", 10, relu), item("softmax", 10, softmax), item("valid model that runs inference", 50, &model)];
    for (threshold, pts) in ACCURACY_TIERS {
        let passed = model_runs && accuracy.is_some_and(|a| a >= threshold);
        items.push(item(
            format!("accuracy >= {threshold:.2}"),
            pts,
            if passed { &Outcome::Passed } else { &Outcome::Failed },
        ));
    }
    let total = items.iter().map(|i| i.earned).sum();
    let max = items.iter().map(|i| i.max).sum();
    Points { items, total, max }
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

/// What the course template does with one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// It computes the layer (Flatten, Dense).
    Ran,
    /// It has no branch for the type and goes on without it.
    Skipped,
    /// It raises on this entry (a KeyError, an IndexError) and stops.
    Crashed,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Ran => "ran",
            Action::Skipped => "skipped",
            Action::Crashed => "crashed",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the course template did with one layer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TemplateStep {
    pub name: String,
    #[serde(rename = "type")]
    pub class_name: String,
    pub action: Action,
    /// Whether skipping this layer changes the model (from the registry).
    pub changes_result: bool,
    pub detail: String,
}

/// The course template's plan for a model: which entries it runs and how, up to the entry it
/// crashes on, if any.
pub struct TemplatePlan {
    pub steps: Vec<TemplateStep>,
    /// The Dense layers it runs, in order (its Flatten leaves a (1, k) row unchanged).
    ops: Vec<TemplateDense>,
    /// What the template raises at the entry after the last op (a KeyError, an IndexError).
    crash: Option<Error>,
}

/// `x @ w + b`, then the activation. `b` keeps the shape it was saved with, since NumPy's
/// broadcasting of it decides what the template computes.
struct TemplateDense {
    name: String,
    w: Array2<f64>,
    b: ArrayD<f64>,
    act: TemplateAct,
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
    let mut plan = plan_template_with(arch, &NpzIndex::new(npz));
    match plan.crash.take() {
        Some(e) => Err(e),
        None => Ok(plan),
    }
}

/// What the template does with entry `e` on its own: its step, or what it raises on it. `check`
/// asks entry by entry, so that one crash does not hide the findings after it; the pass itself is
/// [`plan_template`], the same planner entry after entry.
pub fn template_step(e: &ArchEntry, npz: &NpzIndex) -> Result<TemplateStep> {
    let mut plan = TemplatePlan { steps: Vec::new(), ops: Vec::new(), crash: None };
    plan_entry(e, npz, &mut plan)?;
    Ok(plan.steps.pop().expect("plan_entry adds a step when it succeeds"))
}

/// Like [`plan_template`], but a crash is kept in the plan: [`TemplatePlan::run`] runs the
/// entries before it (whose own errors, such as a matmul that does not fit, come first, as in
/// Python) and then fails with it.
pub fn plan_template_pass(arch: &[ArchEntry], npz: &Npz) -> TemplatePlan {
    plan_template_with(arch, &NpzIndex::new(npz))
}

fn plan_template_with(arch: &[ArchEntry], npz: &NpzIndex) -> TemplatePlan {
    let mut plan = TemplatePlan { steps: Vec::new(), ops: Vec::new(), crash: None };
    for e in arch {
        if let Err(crash) = plan_entry(e, npz, &mut plan) {
            plan.steps.push(step(e, Action::Crashed, true, crash.message.clone()));
            plan.crash = Some(crash);
            break;
        }
    }
    plan
}

/// Adds one entry to the plan, or returns what the template raises on it.
fn plan_entry(e: &ArchEntry, npz: &NpzIndex, plan: &mut TemplatePlan) -> Result<()> {
    // `layer['config']` and `layer['weights']` are read for every entry, before the type test.
    if let Some(key) = e.absent_keys.first() {
        return Err(err!(
            "{} (layer {}): the entry has no {key:?} key; the course template's layer[{key:?}] raises KeyError: '{key}'",
            e.pointer(),
            e.name
        )
        .with_hint(format!("add \"{key}\": {} to the entry", if *key == "config" { "{}" } else { "[]" })));
    }
    match e.class_name.as_str() {
        "Flatten" => {
            plan.steps.push(step(e, Action::Ran, false, "x.reshape(x.shape[0], -1)".into()));
        }
        "Dense" => {
            if e.weights.len() < 2 {
                return Err(err!(
                    "{} (layer {}): the course template reads weights[wnames[0]] and weights[wnames[1]], but the entry lists {} weight name(s); wnames[1] raises IndexError: list index out of range",
                    e.pointer(),
                    e.name,
                    e.weights.len()
                )
                .with_hint("the template needs Dense layers with use_bias=True"));
            }
            let get = |j: usize| -> Result<ArrayD<f64>> {
                let key = &e.weights[j];
                if npz.get(key).is_none() {
                    return Err(err!(
                        "{}.weights[{j}] (layer {}): {key} is not in the npz; the template's weights[wnames[{j}]] raises KeyError: '{key} is not a file in the archive'",
                        e.pointer(),
                        e.name
                    ));
                }
                Ok(npz
                    .array(key)
                    .map_err(|er| {
                        er.context(format!("{}.weights[{j}] (layer {}): np.load cannot read it", e.pointer(), e.name))
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
            if b.ndim() > 2 {
                return Err(err!(
                    "{} (layer {}): bias {} has shape {}; NumPy would broadcast x into {} axes, which fmtool does not follow",
                    e.pointer(),
                    e.name,
                    e.weights[1],
                    fmt_dims(b.shape()),
                    b.ndim()
                )
                .with_hint(format!("save the bias with shape ({},)", w.ncols())));
            }
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
            plan.steps.push(step(e, Action::Ran, ignored, format!("x @ W{} + b, {act_txt}", fmt_dims(w.shape()))));
            plan.ops.push(TemplateDense { name: e.name.clone(), w, b, act });
        }
        other => {
            let changes =
                crate::layers::lookup(other).map(|s| s.classic == Classic::SkipsChangingResult).unwrap_or(true);
            plan.steps.push(step(e, Action::Skipped, changes, "the template has no branch for this type".into()));
        }
    }
    Ok(())
}

fn step(e: &ArchEntry, action: Action, changes_result: bool, detail: String) -> TemplateStep {
    TemplateStep { name: e.name.clone(), class_name: e.class_name.clone(), action, changes_result, detail }
}

/// A bias as a 2-D shape, the way NumPy lines it up with the (rows, columns) of `x @ W`.
fn bias_2d(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [c] => (1, *c),
        [r, c, ..] => (*r, *c),
    }
}

/// NumPy's broadcasting of one axis: equal sizes, or a 1 that stretches.
fn broadcast_axis(a: usize, b: usize) -> Option<usize> {
    match (a, b) {
        _ if a == b => Some(a),
        (1, _) => Some(b),
        (_, 1) => Some(a),
        _ => None,
    }
}

impl TemplatePlan {
    /// Follows the shape of one image through the pass, as NumPy computes it from the (1, 784)
    /// row `np.expand_dims(img, axis=0)`, and returns the first exception the template (or
    /// `model_test.py`'s `outputs.squeeze(axis=1)`) raises.
    fn numpy_shapes(&self) -> Result<()> {
        let (mut rows, mut cols) = (1usize, crate::engine::IMAGE_VALUES);
        for op in &self.ops {
            let TemplateDense { name, w, b, .. } = op;
            if cols != w.nrows() {
                return Err(err!(
                    "layer {name}: the template computes x @ W with x of shape ({rows}, {cols}) and W of shape {}; NumPy raises ValueError (matmul shapes do not match: {} is different from {cols})",
                    fmt_dims(w.shape()),
                    w.nrows()
                ));
            }
            let (br, bc) = bias_2d(b.shape());
            match (broadcast_axis(rows, br), broadcast_axis(w.ncols(), bc)) {
                (Some(r), Some(c)) => (rows, cols) = (r, c),
                _ => {
                    return Err(err!(
                        "layer {name}: the template adds a bias of shape {} to x @ W of shape ({rows}, {}); NumPy raises ValueError: operands could not be broadcast together",
                        fmt_dims(b.shape()),
                        w.ncols()
                    )
                    .with_hint(format!("save the bias with shape ({},)", w.ncols())));
                }
            }
        }
        if let Some(crash) = &self.crash {
            return Err(crash.clone());
        }
        if rows != 1 {
            let culprit = self
                .ops
                .iter()
                .find(|op| bias_2d(op.b.shape()).0 != 1)
                .map(|op| format!(" (the bias of layer {} has shape {})", op.name, fmt_dims(op.b.shape())))
                .unwrap_or_default();
            return Err(err!(
                "the template returns a ({rows}, {cols}) array per image instead of (1, {cols}){culprit}, so model_test.py's outputs.squeeze(axis=1) raises ValueError: cannot select an axis to squeeze out which has size not equal to one"
            )
            .with_hint("save every Dense bias with shape (n,): NumPy broadcasts an (n, 1) bias into an (n, n) matrix"));
        }
        Ok(())
    }

    /// Runs the template's pass over every image. Each row is computed exactly as the template
    /// computes a (1, 784) input; rows are batched only to use the matrix kernels.
    pub fn run(&self, images: ArrayView2<f64>) -> Result<Array2<f64>> {
        self.numpy_shapes()?;
        let chunks: Vec<_> = images.axis_chunks_iter(Axis(0), 256).collect();
        let outs: Vec<Result<Array2<f64>>> = chunks.par_iter().map(|c| self.run_chunk(c.to_owned())).collect();
        let outs: Vec<Array2<f64>> = outs.into_iter().collect::<Result<_>>()?;
        let views: Vec<_> = outs.iter().map(|o| o.view()).collect();
        ndarray::concatenate(Axis(0), &views).map_err(|e| err!("template output: {e}"))
    }

    /// One chunk of rows; [`TemplatePlan::numpy_shapes`] has checked that every image stays one
    /// row, so each bias holds one value per column (or one value for all of them).
    fn run_chunk(&self, mut x: Array2<f64>) -> Result<Array2<f64>> {
        for op in &self.ops {
            let TemplateDense { name, w, b, act } = op;
            if x.ncols() != w.nrows() {
                return Err(err!("layer {name}: x has {} columns but W has {} rows", x.ncols(), w.nrows()));
            }
            let xw = x.dot(w);
            let bias: Vec<f64> = b.iter().copied().collect();
            x = match (bias.len(), xw.ncols()) {
                (1, _) => xw + bias[0],
                (n, m) if n == m => xw + &Array1::from(bias),
                (n, 1) => Array2::from_shape_fn((xw.nrows(), n), |(i, j)| xw[[i, 0]] + bias[j]),
                (n, m) => {
                    return Err(err!("layer {name}: a bias of {n} values cannot be added to {m} columns"));
                }
            };
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
        let ok = Outcome::Passed;
        let full = points(&ok, &ok, true, Some(0.92));
        assert_eq!((full.total, full.max), (100, 100));
        let p = points(&ok, &ok, true, Some(0.8999999));
        assert_eq!(p.total, 20 + 50 + 10 + 2 + 2 + 2 + 3);
        assert_eq!(points(&ok, &ok, false, Some(0.95)).total, 20);
        assert_eq!(points(&ok, &ok, true, Some(0.80)).total, 80);
        assert_eq!(points(&ok, &ok, true, Some(0.79)).total, 70);
        // A row that was not run claims nothing.
        let not_run = Outcome::NotRun("no nn_predict.py".into());
        let p = points(&not_run, &Outcome::Failed, true, Some(0.92));
        assert_eq!(p.total, 80);
        assert_eq!(p.items[0].status, Status::NotRun);
        assert_eq!(p.items[0].note.as_deref(), Some("no nn_predict.py"));
    }

    /// A one-Dense model on the (1, 784) row, with the bias saved in `bias_shape`, and `extra`
    /// entries after it.
    fn one_dense(bias_shape: &[usize], extra: serde_json::Value) -> (Vec<ArchEntry>, Npz) {
        let mut entries = vec![
            serde_json::json!({"name": "d", "type": "Dense", "config": {"activation": "softmax"}, "weights": ["d_0", "d_1"]}),
        ];
        entries.extend(extra.as_array().unwrap().iter().cloned());
        let arch = crate::model::arch::parse_arch(&serde_json::Value::Array(entries)).unwrap();
        let n: usize = bias_shape.iter().product();
        let w =
            ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[784, 10]), |i| ((i[0] * 3 + i[1] * 7) % 11) as f32 * 0.01);
        let b = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(bias_shape), (0..n).map(|i| i as f32 * 0.1).collect())
            .unwrap();
        let arrays = vec![("d_0".to_string(), w), ("d_1".to_string(), b)];
        let cur = crate::model::npz::write_npz(std::io::Cursor::new(Vec::new()), &arrays).unwrap();
        (arch, crate::model::npz::read_npz_bytes(std::path::Path::new("m.npz"), cur.get_ref()).unwrap())
    }

    fn images() -> Array2<f64> {
        Array2::from_shape_fn((5, 784), |(i, j)| ((i * 13 + j) % 255) as f64 / 255.0)
    }

    #[test]
    fn template_adds_biases_as_numpy_broadcasts_them() {
        let (a, n) = one_dense(&[10], serde_json::json!([]));
        let flat = plan_template(&a, &n).unwrap().run(images().view()).unwrap();
        let (a, n) = one_dense(&[1, 10], serde_json::json!([]));
        assert_eq!(plan_template(&a, &n).unwrap().run(images().view()).unwrap(), flat);
        // (10, 1) broadcasts to (10, 10): the grader's squeeze(axis=1) fails.
        let (a, n) = one_dense(&[10, 1], serde_json::json!([]));
        let e = plan_template(&a, &n).unwrap().run(images().view()).unwrap_err();
        assert!(e.message.contains("ValueError: cannot select an axis to squeeze out"), "{}", e.message);
        let (a, n) = one_dense(&[2, 5], serde_json::json!([]));
        let e = plan_template(&a, &n).unwrap().run(images().view()).unwrap_err();
        assert!(e.message.contains("operands could not be broadcast together"), "{}", e.message);
    }

    #[test]
    fn template_crashes_in_layer_order_with_pythons_exception() {
        // An entry without "weights" raises KeyError when the loop reaches it...
        let (a, n) = one_dense(&[10], serde_json::json!([{"name": "drop", "type": "Dropout", "config": {}}]));
        assert!(plan_template(&a, &n).is_err());
        let e = plan_template_pass(&a, &n).run(images().view()).unwrap_err();
        assert!(e.message.contains("KeyError: 'weights'") && e.message.starts_with("$[1]"), "{}", e.message);
        // ... but a matmul that does not fit before it raises first.
        let (a, n) = one_dense(
            &[10],
            serde_json::json!([
                {"name": "d2", "type": "Dense", "config": {}, "weights": ["d_0", "d_1"]},
                {"name": "drop", "type": "Dropout", "config": {}},
            ]),
        );
        let e = plan_template_pass(&a, &n).run(images().view()).unwrap_err();
        assert!(e.message.contains("layer d2") && e.message.contains("matmul"), "{}", e.message);
    }

    #[test]
    fn template_applies_only_the_strings_relu_and_softmax() {
        let run = |act: serde_json::Value| {
            let (mut a, n) = one_dense(&[10], serde_json::json!([]));
            match act {
                serde_json::Value::Null => {
                    a[0].config.remove("activation");
                }
                v => {
                    a[0].config.insert("activation".into(), v);
                }
            }
            plan_template(&a, &n).unwrap().run(images().view()).unwrap()
        };
        let linear = run(serde_json::json!("linear"));
        for other in [
            serde_json::Value::Null,
            serde_json::json!("Softmax"),
            serde_json::json!("tanh"),
            serde_json::json!({"class_name": "softmax"}),
        ] {
            assert_eq!(run(other.clone()), linear, "{other}");
        }
        assert_ne!(run(serde_json::json!("softmax")), linear);
    }

    #[test]
    fn argmax_is_numpys() {
        assert_eq!(argmax([1.0f32, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax([1.0f64, f64::NAN, 5.0]), 1);
        assert_eq!(argmax([f32::NEG_INFINITY, f32::NEG_INFINITY]), 0);
    }
}
