//! The layer registry: every Keras class fmtool can run, how to build it from a config and its
//! weights, and which of them the course template runs. `convert`, `check`, `score` and
//! `fmtool layers` all read this one table.

pub mod activation;
pub mod config;
pub mod core;

pub use activation::Activation;
pub use config::LayerConfig;

use crate::error::Result;
use ndarray::ArrayD;

/// A batch of activations, batch axis first, channels last (Keras' `channels_last`).
pub type Tensor = ArrayD<f32>;

/// The shape of one sample, without the batch axis: `[28, 28, 1]` for a grey image.
pub type Shape = Vec<usize>;

/// Formats a per-sample shape the way Keras prints it: `(None, 28, 28, 1)`.
pub fn fmt_shape(shape: &[usize]) -> String {
    let mut s = String::from("(None");
    for d in shape {
        s.push_str(&format!(", {d}"));
    }
    s.push(')');
    s
}

/// Formats an array shape like NumPy: `(784, 128)`, `(10,)`.
pub fn fmt_dims(shape: &[usize]) -> String {
    match shape {
        [d] => format!("({d},)"),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    }
}

/// One weight array handed to a builder, with the npz key it came from (for error messages).
#[derive(Debug, Clone)]
pub struct Weight {
    pub key: String,
    pub array: ArrayD<f32>,
}

/// Everything a builder needs: the layer's name, config, weights in `get_weights()` order and the
/// per-sample shapes of its inputs.
pub struct BuildCtx<'a> {
    pub layer: LayerConfig<'a>,
    pub weights: Vec<Weight>,
    pub input_shapes: &'a [Shape],
}

/// A runnable layer. Builders check shapes up front, so `forward` only fails on conditions that
/// cannot be known before data arrives.
pub trait Op: Send + Sync {
    /// Runs the layer on a batch. `inputs` has one tensor per inbound layer.
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor>;

    /// The number of floating-point operations per sample, for the benchmark and the summary.
    fn flops_per_sample(&self) -> u64 {
        0
    }
}

/// What a builder returns: the runnable op and the per-sample shape it produces.
pub struct Built {
    pub op: Box<dyn Op>,
    pub output_shape: Shape,
}

/// The families shown by `fmtool layers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Core,
    Activation,
    Identity,
    Normalization,
    Convolution,
    Pooling,
    Reshaping,
    Merge,
}

impl Family {
    pub fn title(self) -> &'static str {
        match self {
            Family::Core => "core",
            Family::Activation => "activation layers",
            Family::Identity => "identity at inference",
            Family::Normalization => "normalization",
            Family::Convolution => "convolution",
            Family::Pooling => "pooling",
            Family::Reshaping => "reshaping",
            Family::Merge => "merge",
        }
    }
}

/// What the course's template forward pass does with a layer of this class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Classic {
    /// The template runs it (Flatten, Dense with relu/softmax/linear).
    Runs,
    /// The template silently skips it, and the result does not change (identity at inference,
    /// an InputLayer).
    SkipsHarmlessly,
    /// The template silently skips it, and the model it grades is no longer the trained one.
    SkipsChangingResult,
}

/// One registry row.
pub struct LayerSpec {
    /// The Keras class name as it appears in `"type"` / `"class_name"`.
    pub class_name: &'static str,
    pub family: Family,
    pub classic: Classic,
    /// The weights in `get_weights()` order, as Keras names them (`kernel`, `bias`, ...), for the
    /// printed table and for messages. Builders decide what is optional.
    pub weights: &'static str,
    pub build: fn(&BuildCtx) -> Result<Built>,
}

/// All layers fmtool runs, in the order `fmtool layers` prints them.
pub fn registry() -> &'static [LayerSpec] {
    use Classic::*;
    use Family::*;
    static REGISTRY: &[LayerSpec] = &[
        LayerSpec {
            class_name: "InputLayer",
            family: Core,
            classic: SkipsHarmlessly,
            weights: "",
            build: core::build_input,
        },
        LayerSpec {
            class_name: "Dense",
            family: Core,
            classic: Runs,
            weights: "kernel, bias",
            build: core::build_dense,
        },
        LayerSpec { class_name: "Flatten", family: Reshaping, classic: Runs, weights: "", build: core::build_flatten },
        LayerSpec {
            class_name: "Activation",
            family: Activation,
            classic: SkipsChangingResult,
            weights: "",
            build: core::build_activation,
        },
        LayerSpec {
            class_name: "Dropout",
            family: Identity,
            classic: SkipsHarmlessly,
            weights: "",
            build: core::build_identity,
        },
    ];
    REGISTRY
}

/// Finds the registry row for a Keras class name.
pub fn lookup(class_name: &str) -> Option<&'static LayerSpec> {
    registry().iter().find(|s| s.class_name == class_name)
}

/// Builds one layer: finds its registry row, then runs the builder.
pub fn build(ctx: &BuildCtx) -> Result<Built> {
    match lookup(ctx.layer.class_name) {
        Some(spec) => (spec.build)(ctx),
        None => {
            Err(crate::err!("layer {} has type {:?}, which fmtool cannot run", ctx.layer.name, ctx.layer.class_name)
                .with_hint("run `fmtool layers` for the supported layer types"))
        }
    }
}
