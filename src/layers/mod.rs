//! The layer registry: every Keras class fmtool can run, how to build it from a config and its
//! weights, and which of them the course template runs. `convert`, `check`, `score` and
//! `fmtool layers` all read this one table.

pub mod act_layers;
pub mod activation;
pub mod config;
pub mod conv;
pub mod core;
pub mod fast;
pub mod geometry;
pub mod matmul;
pub mod merge;
pub mod norm;
pub mod packed;
pub mod pool;
pub mod reshape;
pub mod winograd;

pub use activation::Activation;
pub use config::LayerConfig;

use crate::error::Result;
use ndarray::{ArrayD, IxDyn};

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

/// `x` with the shape `shape` (batch axis first), the values in row-major order as NumPy's
/// reshape takes them. A tensor in standard layout keeps its buffer; others are copied into one.
pub fn reshaped(x: Tensor, shape: &[usize]) -> Result<Tensor> {
    let x = if x.is_standard_layout() { x } else { x.as_standard_layout().into_owned() };
    x.into_shape_with_order(IxDyn(shape)).map_err(|e| crate::err!("{e}"))
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

    /// Runs a one-input layer on an input that nothing else reads: an element-wise layer
    /// (ReLU, BatchNormalization, Activation) overwrites it instead of allocating, filling and
    /// copying a new tensor, which cost a small CNN a fifth of its time. The result must be what
    /// [`Op::forward`] gives.
    fn forward_owned(&self, x: Tensor) -> Result<Tensor> {
        self.forward(&[&x])
    }

    /// For an element-wise layer that the Conv2D or Dense before it can apply to each output row
    /// as it adds its bias (BatchNormalization on the channel axis, ReLU): that step.
    fn as_post(&self) -> Option<Post> {
        None
    }

    /// Takes `post` on as the last step of its own output (the engine then skips the layer that
    /// computed it); false when this layer cannot.
    fn absorb(&mut self, _post: &Post) -> bool {
        false
    }

    /// The number of floating-point operations per sample, for the benchmark and the summary.
    fn flops_per_sample(&self) -> u64 {
        0
    }

    /// True for a layer that returns its one input unchanged (Dropout and friends): the engine
    /// then hands the input on instead of copying it, so 20,000 Dropout layers cost nothing.
    fn is_identity(&self) -> bool {
        false
    }

    /// For a layer that computes `y = x * scale + shift` element by element (BatchNormalization,
    /// Rescaling and Normalization at inference): the scale and shift of every element of one
    /// sample of shape `sample`, flattened in row-major order. `convert --for-template` folds such
    /// layers into a Dense.
    fn affine(&self, _sample: &[usize]) -> Option<(Vec<f64>, Vec<f64>)> {
        None
    }
}

/// An element-wise layer applied by the layer before it, on each row of channels it writes, with
/// the same float32 operations in the same order as the layer itself: the results are the same
/// bits, without another pass over (and copy of) the tensor. A small CNN spent a fifth of its
/// time in those passes.
#[derive(Debug, Clone)]
pub enum Post {
    /// `v * scale[c] + shift[c]` (BatchNormalization at inference).
    Affine { scale: Vec<f32>, shift: Vec<f32> },
    /// Keras' ReLU layer with its options.
    Relu(act_layers::Relu),
}

impl Post {
    /// Applies the step to whole rows of channels.
    pub fn apply(&self, rows: &mut [f32]) {
        match self {
            Post::Affine { scale, shift } => fast::affine(rows, scale, shift),
            Post::Relu(r) => r.apply(rows),
        }
    }

    /// The number of channels the step needs, or `None` for any.
    fn channels(&self) -> Option<usize> {
        match self {
            Post::Affine { scale, .. } => Some(scale.len()),
            Post::Relu(_) => None,
        }
    }

    /// True when the step fits rows of `c` channels.
    pub fn fits(&self, c: usize) -> bool {
        self.channels().is_none_or(|n| n == c)
    }

    /// [`Op::absorb`] for a layer that writes rows of `c` channels and keeps its steps in `posts`.
    pub fn absorb_into(&self, posts: &mut Vec<Post>, c: usize) -> bool {
        self.fits(c) && {
            posts.push(self.clone());
            true
        }
    }
}

/// A layer's own bias, its element-wise activation (the caller checks
/// [`activation::Activation::is_elementwise`]) and the steps it absorbed, in that order, on rows
/// of `c` values: in one pass ([`fast::epilogue`]) when every step has a fused form, else pass by
/// pass. The same bits either way.
pub fn finish_rows<'a>(
    xs: &mut [f32],
    c: usize,
    bias: Option<&'a [f32]>,
    activation: &activation::Activation,
    posts: &'a [Post],
) {
    if let Some(e) = fused(bias, activation, posts)
        && fast::epilogue(xs, c, &e)
    {
        return;
    }
    if let Some(b) = bias {
        fast::add_bias(xs, b);
    }
    activation.apply_slice(xs);
    for p in posts {
        p.apply(xs);
    }
}

/// The steps of [`finish_rows`] as one [`fast::Epilogue`], when they come in its order.
fn fused<'a>(
    bias: Option<&'a [f32]>,
    activation: &activation::Activation,
    posts: &'a [Post],
) -> Option<fast::Epilogue<'a>> {
    let mut e = fast::Epilogue { bias, ..Default::default() };
    match activation.spec.name {
        "linear" => {}
        "relu" => e.relu = true,
        _ => return None,
    }
    let mut posts = posts.iter().peekable();
    if let Some(Post::Affine { scale, shift }) = posts.peek() {
        e.affine = Some((scale, shift));
        posts.next();
    }
    if let Some(Post::Relu(r)) = posts.peek()
        && r.is_plain()
    {
        e.relu_layer = true;
        posts.next();
    }
    posts.next().is_none().then_some(e)
}

/// Applies `posts` in order to every row of `c` values of `y` (standard layout), a block of rows
/// at a time (each step passes over a block while it is in the cache).
pub fn apply_posts(posts: &[Post], y: &mut Tensor, c: usize) {
    if posts.is_empty() {
        return;
    }
    let data = y.as_slice_mut().expect("a new tensor is in standard layout");
    for block in data.chunks_mut(c * (4096 / c.max(1)).max(1)) {
        for p in posts {
            p.apply(block);
        }
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
    pub weights: &'static [&'static str],
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
            weights: &[],
            build: core::build_input,
        },
        LayerSpec {
            class_name: "Dense",
            family: Core,
            classic: Runs,
            weights: &["kernel", "bias"],
            build: core::build_dense,
        },
        LayerSpec {
            class_name: "Activation",
            family: Activation,
            classic: SkipsChangingResult,
            weights: &[],
            build: core::build_activation,
        },
        LayerSpec {
            class_name: "ReLU",
            family: Activation,
            classic: SkipsChangingResult,
            weights: &[],
            build: act_layers::build_relu,
        },
        LayerSpec {
            class_name: "LeakyReLU",
            family: Activation,
            classic: SkipsChangingResult,
            weights: &[],
            build: act_layers::build_leaky_relu,
        },
        LayerSpec {
            class_name: "PReLU",
            family: Activation,
            classic: SkipsChangingResult,
            weights: &["alpha"],
            build: act_layers::build_prelu,
        },
        LayerSpec {
            class_name: "ELU",
            family: Activation,
            classic: SkipsChangingResult,
            weights: &[],
            build: act_layers::build_elu,
        },
        LayerSpec {
            class_name: "Softmax",
            family: Activation,
            classic: SkipsChangingResult,
            weights: &[],
            build: act_layers::build_softmax,
        },
        LayerSpec {
            class_name: "Dropout",
            family: Identity,
            classic: SkipsHarmlessly,
            weights: &[],
            build: core::build_identity,
        },
        LayerSpec {
            class_name: "SpatialDropout1D",
            family: Identity,
            classic: SkipsHarmlessly,
            weights: &[],
            build: core::build_identity,
        },
        LayerSpec {
            class_name: "SpatialDropout2D",
            family: Identity,
            classic: SkipsHarmlessly,
            weights: &[],
            build: core::build_identity,
        },
        LayerSpec {
            class_name: "GaussianNoise",
            family: Identity,
            classic: SkipsHarmlessly,
            weights: &[],
            build: core::build_identity,
        },
        LayerSpec {
            class_name: "GaussianDropout",
            family: Identity,
            classic: SkipsHarmlessly,
            weights: &[],
            build: core::build_identity,
        },
        LayerSpec {
            class_name: "AlphaDropout",
            family: Identity,
            classic: SkipsHarmlessly,
            weights: &[],
            build: core::build_identity,
        },
        LayerSpec {
            class_name: "ActivityRegularization",
            family: Identity,
            classic: SkipsHarmlessly,
            weights: &[],
            build: core::build_identity,
        },
        LayerSpec {
            class_name: "RandomFlip",
            family: Identity,
            classic: SkipsHarmlessly,
            weights: &[],
            build: core::build_identity,
        },
        LayerSpec {
            class_name: "RandomRotation",
            family: Identity,
            classic: SkipsHarmlessly,
            weights: &[],
            build: core::build_identity,
        },
        LayerSpec {
            class_name: "RandomTranslation",
            family: Identity,
            classic: SkipsHarmlessly,
            weights: &[],
            build: core::build_identity,
        },
        LayerSpec {
            class_name: "RandomZoom",
            family: Identity,
            classic: SkipsHarmlessly,
            weights: &[],
            build: core::build_identity,
        },
        LayerSpec {
            class_name: "RandomContrast",
            family: Identity,
            classic: SkipsHarmlessly,
            weights: &[],
            build: core::build_identity,
        },
        LayerSpec {
            class_name: "RandomBrightness",
            family: Identity,
            classic: SkipsHarmlessly,
            weights: &[],
            build: core::build_identity,
        },
        LayerSpec {
            class_name: "BatchNormalization",
            family: Normalization,
            classic: SkipsChangingResult,
            weights: &["gamma", "beta", "moving_mean", "moving_variance"],
            build: norm::build_batch_norm,
        },
        LayerSpec {
            class_name: "LayerNormalization",
            family: Normalization,
            classic: SkipsChangingResult,
            weights: &["gamma", "beta"],
            build: norm::build_layer_norm,
        },
        LayerSpec {
            class_name: "Rescaling",
            family: Normalization,
            classic: SkipsChangingResult,
            weights: &[],
            build: norm::build_rescaling,
        },
        LayerSpec {
            class_name: "Normalization",
            family: Normalization,
            classic: SkipsChangingResult,
            weights: &["mean", "variance", "count"],
            build: norm::build_normalization,
        },
        LayerSpec {
            class_name: "Conv2D",
            family: Convolution,
            classic: SkipsChangingResult,
            weights: &["kernel", "bias"],
            build: conv::build_conv2d,
        },
        LayerSpec {
            class_name: "DepthwiseConv2D",
            family: Convolution,
            classic: SkipsChangingResult,
            weights: &["depthwise_kernel", "bias"],
            build: conv::build_depthwise,
        },
        LayerSpec {
            class_name: "SeparableConv2D",
            family: Convolution,
            classic: SkipsChangingResult,
            weights: &["depthwise_kernel", "pointwise_kernel", "bias"],
            build: conv::build_separable,
        },
        LayerSpec {
            class_name: "MaxPooling2D",
            family: Pooling,
            classic: SkipsChangingResult,
            weights: &[],
            build: pool::build_max_pool,
        },
        LayerSpec {
            class_name: "AveragePooling2D",
            family: Pooling,
            classic: SkipsChangingResult,
            weights: &[],
            build: pool::build_avg_pool,
        },
        LayerSpec {
            class_name: "GlobalAveragePooling2D",
            family: Pooling,
            classic: SkipsChangingResult,
            weights: &[],
            build: pool::build_global_avg,
        },
        LayerSpec {
            class_name: "GlobalMaxPooling2D",
            family: Pooling,
            classic: SkipsChangingResult,
            weights: &[],
            build: pool::build_global_max,
        },
        LayerSpec { class_name: "Flatten", family: Reshaping, classic: Runs, weights: &[], build: core::build_flatten },
        LayerSpec {
            class_name: "Reshape",
            family: Reshaping,
            classic: SkipsHarmlessly,
            weights: &[],
            build: reshape::build_reshape,
        },
        LayerSpec {
            class_name: "Permute",
            family: Reshaping,
            classic: SkipsChangingResult,
            weights: &[],
            build: reshape::build_permute,
        },
        LayerSpec {
            class_name: "ZeroPadding2D",
            family: Reshaping,
            classic: SkipsChangingResult,
            weights: &[],
            build: reshape::build_zero_padding,
        },
        LayerSpec {
            class_name: "Cropping2D",
            family: Reshaping,
            classic: SkipsChangingResult,
            weights: &[],
            build: reshape::build_cropping,
        },
        LayerSpec {
            class_name: "UpSampling2D",
            family: Reshaping,
            classic: SkipsChangingResult,
            weights: &[],
            build: reshape::build_upsampling,
        },
        LayerSpec {
            class_name: "Add",
            family: Merge,
            classic: SkipsChangingResult,
            weights: &[],
            build: merge::build_add,
        },
        LayerSpec {
            class_name: "Subtract",
            family: Merge,
            classic: SkipsChangingResult,
            weights: &[],
            build: merge::build_subtract,
        },
        LayerSpec {
            class_name: "Multiply",
            family: Merge,
            classic: SkipsChangingResult,
            weights: &[],
            build: merge::build_multiply,
        },
        LayerSpec {
            class_name: "Average",
            family: Merge,
            classic: SkipsChangingResult,
            weights: &[],
            build: merge::build_average,
        },
        LayerSpec {
            class_name: "Maximum",
            family: Merge,
            classic: SkipsChangingResult,
            weights: &[],
            build: merge::build_maximum,
        },
        LayerSpec {
            class_name: "Minimum",
            family: Merge,
            classic: SkipsChangingResult,
            weights: &[],
            build: merge::build_minimum,
        },
        LayerSpec {
            class_name: "Concatenate",
            family: Merge,
            classic: SkipsChangingResult,
            weights: &[],
            build: merge::build_concatenate,
        },
    ];
    REGISTRY
}

/// Finds the registry row for a Keras class name.
pub fn lookup(class_name: &str) -> Option<&'static LayerSpec> {
    registry().iter().find(|s| s.class_name == class_name)
}

/// False for a registered layer that has no weights (Flatten, Dropout, pooling, ...): weight names
/// listed on such an entry are never read, by the course template or by fmtool, so they need no
/// array in the npz. Unknown classes count as taking weights.
pub fn takes_weights(class_name: &str) -> bool {
    lookup(class_name).is_none_or(|s| !s.weights.is_empty())
}

/// The most values one layer may produce per image. A Fashion-MNIST model's largest layer holds
/// tens of thousands (a 28x28x64 convolution: 50,176); this is a thousand times more, and still
/// lets a chunk of images fit in memory. A crafted config (UpSampling2D size 1000, a padding of
/// 2^40) is refused when the layer is built, before any allocation.
pub const MAX_LAYER_VALUES: usize = 1 << 24;

/// The largest integer a layer's config may hold for a size (units, filters, kernel, pool,
/// stride, padding, cropping, upsampling factor). Far above any real model, and small enough
/// that sums and products of a few of them cannot overflow a `usize`.
pub const MAX_CONFIG_INT: usize = 1 << 20;

/// The most floating-point operations one layer may cost per image: the shipped CNN's layers
/// cost a few million; a crafted 1000x1000 "same" kernel would cost billions per image.
pub const MAX_LAYER_FLOPS: u64 = 1 << 32;

/// The number of values in a per-sample shape, or `None` when the product overflows.
pub fn shape_values(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// The plausibility gate every shape passes, for the model input and for each layer's output:
/// no empty axis (a Dense(units=0) would make the next layer divide by zero) and at most
/// [`MAX_LAYER_VALUES`] values. `what` names the layer or input in the message.
pub fn check_shape(what: &str, shape: &[usize]) -> Result<()> {
    if shape.contains(&0) {
        return Err(crate::err!("{what} would produce an empty output {}: an axis of size 0", fmt_shape(shape))
            .with_hint("every units, filters and size in the config must be at least 1"));
    }
    match shape_values(shape) {
        Some(n) if n <= MAX_LAYER_VALUES => Ok(()),
        n => Err(crate::err!(
            "{what} would produce {} values per image {}, more than fmtool runs ({MAX_LAYER_VALUES})",
            n.map(|n| n.to_string()).unwrap_or_else(|| "more than 2^64".into()),
            fmt_shape(shape)
        )),
    }
}

/// Builds one layer: finds its registry row, runs the builder, then passes the output shape
/// through [`check_shape`], so `check` and `score` refuse the same layers, before any work.
pub fn build(ctx: &BuildCtx) -> Result<Built> {
    match lookup(ctx.layer.class_name) {
        Some(spec) => {
            let built = (spec.build)(ctx)?;
            let what = format!("layer {} ({})", crate::text::clip(ctx.layer.name, 100), ctx.layer.class_name);
            check_shape(&what, &built.output_shape)?;
            let flops = built.op.flops_per_sample();
            if flops > MAX_LAYER_FLOPS {
                return Err(crate::err!(
                    "{what} is {}: it would cost {flops} floating-point operations per image, more than fmtool runs in one layer ({MAX_LAYER_FLOPS})",
                    crate::cost::TOO_EXPENSIVE
                )
                .with_hint(crate::cost::HINT));
            }
            Ok(built)
        }
        None => Err(crate::err!(
            "layer {} has type {}, which fmtool cannot run",
            crate::text::clip(ctx.layer.name, 100),
            crate::text::clip(ctx.layer.class_name, 100)
        )
        .with_hint("run `fmtool layers` for the supported layer types")),
    }
}
