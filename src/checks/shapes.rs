//! Findings from building the model layer by layer with the registry's builders, the way the
//! engine does: the first layer where the shapes stop flowing (`shape-mismatch`, `unknown-inbound`),
//! a model that does not end in 10 class scores (`output-shape`), an input that is not one 28x28
//! image (`input-shape`), and an input the grader's flat (1, 784) rows cannot feed without a
//! Reshape (`input-reshape`). Layers whose weights are missing or whose type is
//! unknown stop the flow silently: those are reported by their own checks.

use super::{Finding, Location, ModelView};
use crate::checks::Code;
use crate::engine::{IMAGE_VALUES, InputShape, Source, Wiring, input_shape};
use crate::error::Error;
use crate::layers::{self, BuildCtx, Shape, Weight, fmt_shape};
use crate::model::ArchEntry;

/// What shape inference found, for the report's model summary.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ShapeSummary {
    pub input: Option<InputShape>,
    /// Per image; `None` when the shapes do not flow to the end.
    pub output_shape: Option<Shape>,
    /// `None` when some weights are missing or unreadable.
    pub parameters: Option<usize>,
    /// What one image costs (`crate::cost`); `None` when the shapes do not flow to the end.
    pub cost: Option<crate::cost::Cost>,
}

/// How far the shapes flowed from a given input.
enum Flow {
    /// Every layer built; the output shape of each, and what one image costs.
    Done(Vec<Shape>, crate::cost::Cost),
    /// Layer `i` (position in the arch slice) refused its input shapes.
    Broken { at: usize, error: Error, inputs: Vec<Shape>, before: Vec<Shape> },
    /// Entry `i` names an inbound layer `name` that is not an earlier layer (its `k`-th).
    BadInbound { at: usize, k: usize, name: String },
    /// Layer `i` cannot be built for a reason reported elsewhere (missing weight, unknown type).
    Blocked,
}

pub fn check(view: &ModelView) -> (Vec<Finding>, Option<ShapeSummary>) {
    let (Some(_), true, false) = (view.npz, view.arch_complete, view.arch.is_empty()) else {
        return (Vec::new(), None);
    };
    let arch = view.arch;
    let weights: Vec<Option<Vec<Weight>>> = arch
        .iter()
        .map(|e| {
            if !layers::takes_weights(&e.class_name) {
                return Some(Vec::new());
            }
            e.weights
                .iter()
                .map(|k| view.array(k).map(|a| Weight { key: k.clone(), array: a.to_f32() }))
                .collect::<Option<Vec<_>>>()
        })
        .collect();
    let parameters = weights
        .iter()
        .map(|ws| ws.as_ref().map(|ws| ws.iter().map(|w| w.array.len()).sum::<usize>()))
        .sum::<Option<usize>>();
    let plain: Vec<Vec<Weight>> = weights.iter().map(|w| w.clone().unwrap_or_default()).collect();
    let input = match input_shape(arch, &plain) {
        Ok(i) => i,
        Err(_) => return (Vec::new(), None),
    };
    let mut out = Vec::new();
    // The engine's gate on the input shape (no empty axis, a bounded size), before any layer.
    if let Err(e) = layers::check_shape("the model's input", &input.shape) {
        out.push(Finding::error(Code::InputShape, Location::entry(view.json_file, &arch[0]), e.message));
        return (out, Some(ShapeSummary { input: Some(input), output_shape: None, parameters, cost: None }));
    }
    let flow = run_flow(arch, &weights, &input.shape);
    let mut output_shape = None;
    let mut cost = None;
    match flow {
        Flow::Done(shapes, c) => {
            cost = Some(c);
            let last = shapes.last().expect("a non-empty model").clone();
            if last != [10] {
                out.push(output_finding(view, arch.last().expect("non-empty"), &last));
            }
            output_shape = Some(last.clone());
            // A model whose output is already wrong gets no second finding about its input.
            if input.shape != [IMAGE_VALUES] && (last == [10] || input.shape.iter().product::<usize>() != IMAGE_VALUES)
            {
                out.extend(input_finding(view, &weights, &input, &last));
            }
        }
        Flow::Broken { at, error, inputs, before } => {
            out.push(broken_finding(view, &arch[at], error, &inputs, &input, &before, arch));
        }
        Flow::BadInbound { at, k, name } => {
            let e = &arch[at];
            out.push(
                Finding::error(Code::UnknownInbound,
                    Location::json(view.json_file, format!("{}.inbound[{k}]", e.pointer()), Some(&e.name)),
                    format!("layer {} is fed by {name:?}, which is not an earlier layer of the list", e.name),
                )
                .hint("list the layers in call order (model.layers order) and name only layers of this model in \"inbound\""),
            );
        }
        Flow::Blocked => {}
    }
    (out, Some(ShapeSummary { input: Some(input), output_shape, parameters, cost }))
}

/// Builds the layers in order from per-sample input `input`, wiring them as the engine does.
fn run_flow(arch: &[ArchEntry], weights: &[Option<Vec<Weight>>], input: &Shape) -> Flow {
    let mut shapes: Vec<Shape> = Vec::with_capacity(arch.len());
    let mut costs = Vec::with_capacity(arch.len());
    let mut wiring = Wiring::new(arch);
    for (i, e) in arch.iter().enumerate() {
        let Some(ws) = &weights[i] else { return Flow::Blocked };
        if layers::lookup(&e.class_name).is_none() {
            return Flow::Blocked;
        }
        let sources = match wiring.inputs(i, e) {
            Ok(sources) => sources,
            Err(bad) => return Flow::BadInbound { at: i, k: bad.k, name: bad.name.to_string() },
        };
        let inputs: Vec<Shape> = sources
            .iter()
            .map(|s| match s {
                Source::ModelInput => input.clone(),
                Source::Node(j) => shapes[*j].clone(),
            })
            .collect();
        let ctx = BuildCtx { layer: e.layer(), weights: ws.clone(), input_shapes: &inputs };
        match layers::build(&ctx) {
            Ok(b) => {
                costs.push(crate::engine::layer_cost(e, b.op.as_ref(), &b.output_shape, &sources));
                shapes.push(b.output_shape);
                wiring.built(i, e);
            }
            Err(error) => return Flow::Broken { at: i, error, inputs, before: shapes },
        }
    }
    let input_values = layers::shape_values(input).unwrap_or(usize::MAX) as u64;
    Flow::Done(shapes, crate::cost::cost(&costs, input_values))
}

/// `input (None, 784) → dense (None, 128) → dense_1 ✗`, for hints.
fn chain(arch: &[ArchEntry], input: &InputShape, before: &[Shape], at: &ArchEntry) -> String {
    let mut parts = vec![format!("input {}", fmt_shape(&input.shape))];
    let shown: Vec<String> = arch.iter().zip(before).map(|(e, s)| format!("{} {}", e.name, fmt_shape(s))).collect();
    // Long models: the last few layers before the break are what matter.
    if shown.len() > 6 {
        parts.push("...".into());
        parts.extend(shown[shown.len() - 5..].iter().cloned());
    } else {
        parts.extend(shown);
    }
    parts.push(format!("{} ✗", at.name));
    parts.join(" → ")
}

fn broken_finding(
    view: &ModelView,
    e: &ArchEntry,
    error: Error,
    inputs: &[Shape],
    input: &InputShape,
    before: &[Shape],
    arch: &[ArchEntry],
) -> Finding {
    // Point at the weight the builder complained about, when it names one.
    let loc = match e.weights.iter().position(|k| error.message.contains(&format!("({k})"))) {
        Some(j) => Location::weight(view.json_file, e, j),
        None => Location::entry(view.json_file, e),
    };
    let ins: Vec<String> = inputs.iter().map(|s| fmt_shape(s)).collect();
    let msg = if error.message.contains(&e.name) {
        format!("{} (its input is {})", error.message, ins.join(" + "))
    } else {
        format!("layer {} ({}) with input {}: {}", e.name, e.class_name, ins.join(" + "), error.message)
    };
    let mut hint = format!("shapes: {}", chain(arch, input, before, e));
    if input.inferred {
        hint.push_str(&format!(
            "; the export has no input shape, fmtool assumed {} ({})",
            fmt_shape(&input.shape),
            input.source
        ));
    }
    match error.hint {
        Some(h) => hint.push_str(&format!("; {h}")),
        None if !e.weights.is_empty() => hint.push_str(
            "; a weight that does not fit usually means the JSON and the npz come from different models: export both again from the same model",
        ),
        None => {}
    }
    Finding::error(Code::ShapeMismatch, loc, msg).hint(hint)
}

fn output_finding(view: &ModelView, last: &ArchEntry, shape: &Shape) -> Finding {
    let hint = if shape.len() > 1 {
        "add a Flatten before the Dense layers (a Dense on a multi-axis input acts on the last axis only), and end with Dense(10, activation=\"softmax\")"
    } else {
        "end the model with Dense(10, activation=\"softmax\"): one score per Fashion-MNIST class"
    };
    Finding::error(
        Code::OutputShape,
        Location::entry(view.json_file, last),
        format!(
            "the model ends with {} per image (layer {}); the grader needs 10 class scores, (None, 10)",
            fmt_shape(shape),
            last.name
        ),
    )
    .hint(hint)
}

/// The grader feeds flat (1, 784) rows. A model declared with another input must take them too.
fn input_finding(
    view: &ModelView,
    weights: &[Option<Vec<Weight>>],
    input: &InputShape,
    declared_out: &Shape,
) -> Option<Finding> {
    let arch = view.arch;
    let values: usize = input.shape.iter().product();
    if values != IMAGE_VALUES {
        return Some(
            Finding::error(Code::InputShape,
                Location::entry(view.json_file, &arch[0]),
                format!(
                    "the model's input {} ({}) holds {values} values per image; the grader feeds the 784 of one 28x28 grey image",
                    fmt_shape(&input.shape),
                    input.source
                ),
            )
            .hint("train on Fashion-MNIST as the course ships it: keras.Input((28, 28, 1)) or keras.Input((784,))"),
        );
    }
    let flat = vec![IMAGE_VALUES];
    let problem = match run_flow(arch, weights, &flat) {
        Flow::Done(shapes, _) if shapes.last() == Some(declared_out) => return None,
        Flow::Done(shapes, _) => format!(
            "it runs, but gives {} instead of {}",
            fmt_shape(shapes.last().expect("non-empty")),
            fmt_shape(declared_out)
        ),
        Flow::Broken { at, .. } => {
            format!("layer {} ({}) cannot take a (None, 784) input", arch[at].name, arch[at].class_name)
        }
        Flow::BadInbound { .. } | Flow::Blocked => return None,
    };
    let first = &arch[0];
    let declared = if input.inferred {
        format!(
            "the export carries no input shape; its first layer needs {} ({})",
            fmt_shape(&input.shape),
            input.source
        )
    } else {
        format!("the model's input is {} ({})", fmt_shape(&input.shape), input.source)
    };
    let dims: Vec<String> = input.shape.iter().map(|d| d.to_string()).collect();
    let reshape = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    Some(
        Finding::new(Code::InputReshape,
            view.template_severity(),
            Location::entry(view.json_file, first),
            format!("{declared}; the course template feeds each image as a flat (1, 784) row, and {problem}"),
        )
        .hint(format!(
            "start the model with keras.Input((784,)) followed by keras.layers.Reshape({reshape}), so flat rows work as they are (fmtool score reshapes the rows itself; the course template does not)"
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use crate::checks::Severity;
    use crate::grader::Grader;
    use serde_json::json;

    #[test]
    fn reports_the_first_layer_where_shapes_break() {
        // dense_1's kernel belongs to a model with 64 hidden units.
        let a = arch(json!([
            {"name": "flatten", "type": "Flatten", "config": {"batch_input_shape": [null, 28, 28]}, "weights": []},
            dense("dense", 128, "relu"),
            dense("dense_1", 64, "relu"),
            dense("dense_2", 10, "softmax"),
        ]));
        let n = npz(&[
            ("dense_0", &[784, 128]),
            ("dense_1", &[128]),
            ("dense_1_0", &[64, 64]),
            ("dense_1_1", &[64]),
            ("dense_2_0", &[32, 10]),
            ("dense_2_1", &[10]),
        ]);
        let (f, summary) = check(&view(&a, &n, Grader::Full));
        assert_eq!(codes(&f), ["shape-mismatch"], "only the first break: {f:?}");
        assert_eq!(f[0].location.pointer.as_deref(), Some("$[2].weights[0]"));
        assert_eq!(f[0].location.key.as_deref(), Some("dense_1_0"));
        assert!(f[0].message.contains("expected shape (128, 64), found (64, 64)"), "{}", f[0].message);
        let hint = f[0].hint.as_deref().unwrap();
        assert!(hint.contains("input (None, 28, 28) → flatten (None, 784) → dense (None, 128) → dense_1 ✗"), "{hint}");
        let s = summary.unwrap();
        assert_eq!(s.output_shape, None);
        assert_eq!(s.parameters, Some(784 * 128 + 128 + 64 * 64 + 64 + 320 + 10));
    }

    #[test]
    fn units_disagreeing_with_the_bias() {
        let a = arch(json!([dense("dense", 10, "softmax")]));
        let n = npz(&[("dense_0", &[784, 10]), ("dense_1", &[12])]);
        let (f, _) = check(&view(&a, &n, Grader::Full));
        assert_eq!(codes(&f), ["shape-mismatch"]);
        assert_eq!(f[0].location.pointer.as_deref(), Some("$[0].weights[1]"));
    }

    #[test]
    fn output_must_be_ten_scores() {
        let a = arch(
            json!([{"name": "flatten", "type": "Flatten", "config": {}, "weights": []}, dense("dense", 128, "relu")]),
        );
        let n = npz(&[("dense_0", &[784, 128]), ("dense_1", &[128])]);
        let (f, summary) = check(&view(&a, &n, Grader::Full));
        assert_eq!(codes(&f), ["output-shape"]);
        assert!(f[0].message.contains("(None, 128)"));
        assert_eq!(summary.unwrap().output_shape, Some(vec![128]));
    }

    fn conv_first() -> (Vec<ArchEntry>, crate::model::Npz) {
        let a = arch(json!([
            {"name": "conv2d", "type": "Conv2D", "config": {"filters": 4, "kernel_size": [3, 3], "activation": "relu",
             "batch_input_shape": [null, 28, 28, 1]}, "weights": ["conv2d_0", "conv2d_1"]},
            {"name": "flatten", "type": "Flatten", "config": {}, "weights": []},
            dense("dense", 10, "softmax"),
        ]));
        let n = npz(&[
            ("conv2d_0", &[3, 3, 1, 4]),
            ("conv2d_1", &[4]),
            ("dense_0", &[26 * 26 * 4, 10]),
            ("dense_1", &[10]),
        ]);
        (a, n)
    }

    #[test]
    fn conv_first_model_cannot_take_flat_rows() {
        let (a, n) = conv_first();
        let (f, summary) = check(&view(&a, &n, Grader::Full));
        assert_eq!(codes(&f), ["input-reshape"]);
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(f[0].message.contains("(None, 28, 28, 1)"), "{}", f[0].message);
        assert!(f[0].message.contains("layer conv2d (Conv2D) cannot take a (None, 784) input"), "{}", f[0].message);
        assert!(f[0].hint.as_deref().unwrap().contains("Reshape((28, 28, 1))"));
        assert_eq!(summary.unwrap().output_shape, Some(vec![10]));
        let (f, _) = check(&view(&a, &n, Grader::Classic));
        assert_eq!(f[0].severity, Severity::Error);
    }

    #[test]
    fn an_input_that_is_not_one_image() {
        let a = arch(json!([
            {"name": "flatten", "type": "Flatten", "config": {"batch_input_shape": [null, 32, 32, 3]}, "weights": []},
            dense("dense", 10, "softmax"),
        ]));
        let n = npz(&[("dense_0", &[3072, 10]), ("dense_1", &[10])]);
        let (f, _) = check(&view(&a, &n, Grader::Full));
        assert_eq!(codes(&f), ["input-shape"]);
        assert_eq!(f[0].severity, Severity::Error);
        assert!(f[0].message.contains("3072 values"), "{}", f[0].message);
    }

    #[test]
    fn flatten_first_model_takes_flat_rows() {
        let (a, n) = mlp();
        let (f, summary) = check(&view(&a, &n, Grader::Classic));
        assert_eq!(f, vec![]);
        let s = summary.unwrap();
        assert_eq!(s.input.unwrap().shape, vec![28, 28]);
    }

    #[test]
    fn dense_on_images_without_flatten() {
        // Input (28, 28) straight into Dense: Keras applies it per row, giving (None, 28, 10).
        let a = arch(json!([
            {"name": "dense", "type": "Dense", "config": {"units": 10, "activation": "softmax", "batch_input_shape": [null, 28, 28]},
             "weights": ["dense_0", "dense_1"]},
        ]));
        let n = npz(&[("dense_0", &[28, 10]), ("dense_1", &[10])]);
        let (f, _) = check(&view(&a, &n, Grader::Full));
        assert_eq!(codes(&f), ["output-shape"]);
        assert!(f[0].hint.as_deref().unwrap().contains("Flatten"));
    }

    #[test]
    fn missing_weights_stop_the_flow_silently() {
        let (a, n) = mlp();
        let mut n = n;
        n.entries.retain(|e| e.key != "dense_1_0");
        let (f, summary) = check(&view(&a, &n, Grader::Full));
        assert_eq!(f, vec![]);
        assert_eq!(summary.unwrap().parameters, None);
    }

    #[test]
    fn functional_inbound_must_name_an_earlier_layer() {
        let a = arch(json!([
            {"name": "input", "type": "InputLayer", "config": {"batch_shape": [null, 784]}, "weights": [], "inbound": []},
            {"name": "dense", "type": "Dense", "config": {"units": 10, "activation": "softmax"}, "weights": ["dense_0", "dense_1"], "inbound": ["inptu"]},
        ]));
        let n = npz(&[("dense_0", &[784, 10]), ("dense_1", &[10])]);
        let (f, _) = check(&view(&a, &n, Grader::Full));
        assert_eq!(codes(&f), ["unknown-inbound"]);
        assert_eq!(f[0].location.pointer.as_deref(), Some("$[1].inbound[0]"));
    }
}
