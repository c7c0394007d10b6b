//! The activation functions (`activation="relu"` on a layer, or an `Activation` layer), with Keras'
//! exact formulas in float32, and which of them the course template applies.

use super::Tensor;
use crate::err;
use crate::error::Result;
use ndarray::Axis;
use serde_json::Value;

/// How an activation is computed.
#[derive(Clone, Copy)]
enum Kind {
    Elementwise(fn(f32) -> f32),
    /// Softmax over the last axis.
    Softmax,
    /// log(softmax(x)) over the last axis.
    LogSoftmax,
}

/// One registry row of activations.
pub struct ActivationSpec {
    pub name: &'static str,
    /// Other names Keras accepts for the same function.
    pub aliases: &'static [&'static str],
    /// The course template applies it (relu, softmax) or it changes nothing (linear).
    pub classic: bool,
    kind: Kind,
}

/// A parsed activation, ready to apply.
#[derive(Clone, Copy)]
pub struct Activation {
    pub spec: &'static ActivationSpec,
}

fn relu(x: f32) -> f32 {
    x.max(0.0)
}
fn relu6(x: f32) -> f32 {
    x.clamp(0.0, 6.0)
}
fn leaky_relu(x: f32) -> f32 {
    // keras.activations.leaky_relu defaults to negative_slope=0.2.
    if x >= 0.0 { x } else { 0.2 * x }
}
fn elu(x: f32) -> f32 {
    if x > 0.0 { x } else { x.exp_m1() }
}
fn selu(x: f32) -> f32 {
    const ALPHA: f32 = 1.673_263_2;
    const SCALE: f32 = 1.050_701;
    if x > 0.0 { SCALE * x } else { SCALE * ALPHA * x.exp_m1() }
}
pub(crate) fn gelu_exact(x: f32) -> f32 {
    0.5 * x * (1.0 + libm::erff(x / std::f32::consts::SQRT_2))
}
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}
fn hard_sigmoid(x: f32) -> f32 {
    // Keras 3: relu6(x + 3) / 6.
    relu6(x + 3.0) / 6.0
}
fn hard_sigmoid_keras2(x: f32) -> f32 {
    // Keras 2 / tf.keras: clip(0.2 * x + 0.5, 0, 1).
    (0.2 * x + 0.5).clamp(0.0, 1.0)
}
fn tanh(x: f32) -> f32 {
    x.tanh()
}
pub(crate) fn softplus(x: f32) -> f32 {
    // log(1 + exp(x)) without overflow for large x.
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}
fn softsign(x: f32) -> f32 {
    x / (1.0 + x.abs())
}
fn swish(x: f32) -> f32 {
    x * sigmoid(x)
}
fn hard_swish(x: f32) -> f32 {
    x * hard_sigmoid(x)
}
fn mish(x: f32) -> f32 {
    x * softplus(x).tanh()
}
fn exponential(x: f32) -> f32 {
    x.exp()
}
fn linear(x: f32) -> f32 {
    x
}

static ACTIVATIONS: &[ActivationSpec] = &[
    ActivationSpec { name: "linear", aliases: &[], classic: true, kind: Kind::Elementwise(linear) },
    ActivationSpec { name: "relu", aliases: &[], classic: true, kind: Kind::Elementwise(relu) },
    ActivationSpec { name: "softmax", aliases: &[], classic: true, kind: Kind::Softmax },
    ActivationSpec { name: "relu6", aliases: &[], classic: false, kind: Kind::Elementwise(relu6) },
    ActivationSpec { name: "leaky_relu", aliases: &[], classic: false, kind: Kind::Elementwise(leaky_relu) },
    ActivationSpec { name: "elu", aliases: &[], classic: false, kind: Kind::Elementwise(elu) },
    ActivationSpec { name: "selu", aliases: &[], classic: false, kind: Kind::Elementwise(selu) },
    ActivationSpec { name: "gelu", aliases: &[], classic: false, kind: Kind::Elementwise(gelu_exact) },
    ActivationSpec { name: "sigmoid", aliases: &[], classic: false, kind: Kind::Elementwise(sigmoid) },
    ActivationSpec { name: "hard_sigmoid", aliases: &[], classic: false, kind: Kind::Elementwise(hard_sigmoid) },
    ActivationSpec {
        name: "hard_sigmoid_keras2",
        aliases: &[],
        classic: false,
        kind: Kind::Elementwise(hard_sigmoid_keras2),
    },
    ActivationSpec { name: "tanh", aliases: &[], classic: false, kind: Kind::Elementwise(tanh) },
    ActivationSpec { name: "softplus", aliases: &[], classic: false, kind: Kind::Elementwise(softplus) },
    ActivationSpec { name: "softsign", aliases: &[], classic: false, kind: Kind::Elementwise(softsign) },
    ActivationSpec { name: "silu", aliases: &["swish"], classic: false, kind: Kind::Elementwise(swish) },
    ActivationSpec { name: "hard_silu", aliases: &["hard_swish"], classic: false, kind: Kind::Elementwise(hard_swish) },
    ActivationSpec { name: "mish", aliases: &[], classic: false, kind: Kind::Elementwise(mish) },
    ActivationSpec { name: "exponential", aliases: &[], classic: false, kind: Kind::Elementwise(exponential) },
    ActivationSpec { name: "log_softmax", aliases: &[], classic: false, kind: Kind::LogSoftmax },
];

/// All activations, in the order `fmtool layers` prints them.
pub fn activations() -> &'static [ActivationSpec] {
    ACTIVATIONS
}

impl Activation {
    /// Finds an activation by its Keras name or alias.
    pub fn by_name(name: &str) -> Option<Activation> {
        ACTIVATIONS.iter().find(|s| s.name == name || s.aliases.contains(&name)).map(|spec| Activation { spec })
    }

    pub fn linear() -> Activation {
        Activation::by_name("linear").expect("linear is in the table")
    }

    /// Reads an activation the way Keras 2 and 3 serialize it: `"relu"`, `null` (linear),
    /// `{"class_name": "relu"}` or Keras 3's `{"class_name": "function", "config": "relu"}`.
    pub fn from_json(value: Option<&Value>) -> Result<Activation, String> {
        let name = match value {
            None | Some(Value::Null) => return Ok(Activation::linear()),
            Some(Value::String(s)) => s.as_str(),
            Some(Value::Object(m)) => match (m.get("config"), m.get("class_name")) {
                (Some(Value::String(s)), _) => s.as_str(),
                (_, Some(Value::String(s))) => s.as_str(),
                _ => return Err(format!("activation {value:?} is not one fmtool understands", value = m)),
            },
            Some(other) => return Err(format!("activation {other} is not a name")),
        };
        Activation::by_name(name).ok_or_else(|| format!("activation {name:?} is not supported"))
    }

    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// Applies the activation in place; softmax and log_softmax act on the last axis.
    pub fn apply(&self, x: &mut Tensor) {
        match (self.spec.kind, x.as_slice_mut()) {
            (Kind::Elementwise(_), Some(xs)) => {
                self.apply_slice(xs);
            }
            (Kind::Elementwise(f), None) => x.mapv_inplace(f),
            (Kind::Softmax, _) => softmax_last_axis(x, false),
            (Kind::LogSoftmax, _) => softmax_last_axis(x, true),
        }
    }

    /// True for the activations that act on each value alone (all but softmax and log_softmax).
    pub fn is_elementwise(&self) -> bool {
        matches!(self.spec.kind, Kind::Elementwise(_))
    }

    /// Applies an element-wise activation to `xs` in place, the same bits as [`Activation::apply`];
    /// returns false, doing nothing, for softmax and log_softmax, which need their axis.
    pub fn apply_slice(&self, xs: &mut [f32]) -> bool {
        let Kind::Elementwise(f) = self.spec.kind else { return false };
        match self.spec.name {
            "linear" => {}
            // The common case, without a call through `f` per value.
            "relu" => super::fast::relu(xs),
            _ => xs.iter_mut().for_each(|v| *v = f(*v)),
        }
        true
    }
}

/// Reads a layer's `activation` key into an [`Activation`], naming the layer on failure.
///
/// `hard_sigmoid` changed its formula between Keras 2 and Keras 3; a config whose `dtype` is a
/// plain string (Keras 2, and the first Keras 3 releases) gets the Keras 2 formula, a DTypePolicy
/// dict (Keras 3) the Keras 3 one.
pub fn layer_activation(layer: &super::LayerConfig, key: &str) -> Result<Activation> {
    let act = Activation::from_json(layer.get(key)).map_err(|e| {
        err!("layer {} ({}): {e}", layer.name, layer.class_name)
            .with_hint("run `fmtool layers` for the supported activations")
    })?;
    if act.name() == "hard_sigmoid" && !layer.get("dtype").is_some_and(|d| d.is_object()) {
        return Ok(Activation::by_name("hard_sigmoid_keras2").expect("in the table"));
    }
    Ok(act)
}

/// Softmax (or log-softmax) over the last axis, computed as Keras does: `exp(x - max) / sum`.
pub fn softmax_last_axis(x: &mut Tensor, log: bool) {
    let last = x.ndim() - 1;
    for mut row in x.lanes_mut(Axis(last)) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if log {
            let sum: f32 = row.iter().map(|v| (v - max).exp()).sum();
            let lse = sum.ln();
            row.mapv_inplace(|v| v - max - lse);
        } else {
            row.mapv_inplace(|v| (v - max).exp());
            let sum: f32 = row.sum();
            row.mapv_inplace(|v| v / sum);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn parses_keras2_and_keras3_spellings() {
        assert_eq!(Activation::from_json(Some(&Value::from("relu"))).unwrap().name(), "relu");
        assert_eq!(Activation::from_json(None).unwrap().name(), "linear");
        let k3: Value = serde_json::json!({"module": "keras.activations", "class_name": "function", "config": "swish", "registered_name": "function"});
        assert_eq!(Activation::from_json(Some(&k3)).unwrap().name(), "silu");
        assert!(Activation::from_json(Some(&Value::from("no_such"))).is_err());
    }

    #[test]
    fn softmax_rows_sum_to_one_and_keep_order() {
        let mut x = array![[1.0f32, 2.0, 3.0], [1000.0, 0.0, -1000.0]].into_dyn();
        softmax_last_axis(&mut x, false);
        for row in x.rows() {
            assert!((row.sum() - 1.0).abs() < 1e-6);
        }
        assert!(x[[0, 2]] > x[[0, 1]] && x[[0, 1]] > x[[0, 0]]);
        assert_eq!(x[[1, 0]], 1.0);
    }

    #[test]
    fn elementwise_values_match_keras_formulas() {
        let at = |name: &str, v: f32| {
            let mut t = array![v].into_dyn();
            Activation::by_name(name).unwrap().apply(&mut t);
            t[[0]]
        };
        assert_eq!(at("relu", -2.0), 0.0);
        assert_eq!(at("relu6", 7.0), 6.0);
        assert!((at("sigmoid", 0.0) - 0.5).abs() < 1e-7);
        assert!((at("gelu", 1.0) - 0.841_344_8).abs() < 1e-6);
        assert!((at("softplus", 100.0) - 100.0).abs() < 1e-5);
        assert!((at("selu", -1.0) - (-1.111_330_7)).abs() < 1e-6);
        assert_eq!(at("hard_sigmoid", 3.0), 1.0);
        assert!((at("mish", 1.0) - 0.865_098_4).abs() < 1e-6);
    }
}
