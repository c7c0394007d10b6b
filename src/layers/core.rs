//! Core layers: InputLayer, Dense, Flatten, Activation, and the layers that are identities at
//! inference time (Dropout and friends).

use super::{Activation, BuildCtx, Built, Op, Shape, Tensor, Weight, fmt_dims};
use crate::err;
use crate::error::{Error, Result};
use ndarray::{Array2, ArrayD, Ix2, IxDyn};

/// Checks the number of weights a layer carries, naming what was expected.
pub fn expect_weights(ctx: &BuildCtx, allowed: &[usize], what: &str) -> Result<()> {
    if allowed.contains(&ctx.weights.len()) {
        return Ok(());
    }
    let keys: Vec<&str> = ctx.weights.iter().map(|w| w.key.as_str()).collect();
    Err(err!(
        "layer {} ({}) should have {what}, but it lists {} weight array(s) {:?}",
        ctx.layer.name,
        ctx.layer.class_name,
        ctx.weights.len(),
        keys
    ))
}

/// Checks one weight's shape: "kernel of dense_1 (dense_1_0): expected (256, 128), found (128, 256)".
pub fn expect_shape(ctx: &BuildCtx, w: &Weight, role: &str, expected: &[usize]) -> Result<()> {
    if w.array.shape() == expected {
        return Ok(());
    }
    Err(err!(
        "{role} of {} ({}): expected shape {}, found {}",
        ctx.layer.name,
        w.key,
        fmt_dims(expected),
        fmt_dims(w.array.shape())
    ))
}

/// Reads `use_bias` and checks that the layer lists (kernel, bias), or (kernel) without a bias.
/// A config without `use_bias` (a hand-written JSON) takes it from the weights: one array is a
/// kernel without bias.
pub fn expect_kernel_and_bias(ctx: &BuildCtx) -> Result<bool> {
    let use_bias = ctx.layer.bool_or("use_bias", ctx.weights.len() != 1)?;
    expect_weights(
        ctx,
        if use_bias { &[2] } else { &[1] },
        if use_bias { "2 weights (kernel, bias)" } else { "1 weight (kernel)" },
    )?;
    Ok(use_bias)
}

/// The bias at `weights[index]`, checked to hold `n` values, when the layer uses one.
pub fn optional_bias(ctx: &BuildCtx, use_bias: bool, index: usize, n: usize) -> Result<Option<Vec<f32>>> {
    if !use_bias {
        return Ok(None);
    }
    bias_values(ctx, &ctx.weights[index], "bias", n).map(Some)
}

/// True when an array of `shape` holds the `n` values of a bias along one axis: `(n,)` as Keras
/// saves it, `(1, n)` as hand-written exports often do (NumPy adds it to a `(1, n)` row just the
/// same), or `(n, 1)` (the course template broadcasts that one into an `(n, n)` matrix, which
/// `--grader classic` reports; the engine reads it as the `n` values it holds).
pub fn is_bias_shape(shape: &[usize], n: usize) -> bool {
    shape.iter().product::<usize>() == n && shape.iter().filter(|&&d| d != 1).count() <= 1
}

/// The values of a bias of `n` values, accepting every shape [`is_bias_shape`] accepts.
pub fn bias_values(ctx: &BuildCtx, w: &Weight, role: &str, n: usize) -> Result<Vec<f32>> {
    if !is_bias_shape(w.array.shape(), n) {
        expect_shape(ctx, w, role, &[n])?;
    }
    Ok(w.array.iter().copied().collect())
}

/// A config value the weights determine: the config's own when present, else `from_weights`
/// (hand-written JSON files often leave out `units`, `filters` or `kernel_size`, which the
/// course template never reads).
pub fn usize_or_weights(ctx: &BuildCtx, key: &str, from_weights: Option<usize>) -> Result<usize> {
    match (ctx.layer.get(key), from_weights) {
        (None, Some(v)) => Ok(v),
        _ => ctx.layer.usize(key),
    }
}

/// The single input shape of a layer that takes one input.
pub fn single_input<'a>(ctx: &'a BuildCtx) -> Result<&'a Shape> {
    match ctx.input_shapes {
        [s] => Ok(s),
        _ => Err(err!(
            "layer {} ({}) takes one input, but it is connected to {}",
            ctx.layer.name,
            ctx.layer.class_name,
            ctx.input_shapes.len()
        )),
    }
}

/// Forwards its input unchanged.
struct Identity;

impl Op for Identity {
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        Ok(inputs[0].clone())
    }

    fn is_identity(&self) -> bool {
        true
    }
}

pub fn build_input(ctx: &BuildCtx) -> Result<Built> {
    expect_weights(ctx, &[0], "no weights")?;
    Ok(Built { op: Box::new(Identity), output_shape: single_input(ctx)?.clone() })
}

/// Layers that only act during training (Dropout, GaussianNoise, RandomFlip, ...).
pub fn build_identity(ctx: &BuildCtx) -> Result<Built> {
    // Augmentation layers built by older Keras may carry a random-generator state array; it has
    // no effect at inference.
    Ok(Built { op: Box::new(Identity), output_shape: single_input(ctx)?.clone() })
}

struct Flatten;

impl Op for Flatten {
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        self.forward_owned(inputs[0].as_standard_layout().into_owned())
    }

    /// The values stay where they are: a Flatten first in a model took a copy of every image.
    fn forward_owned(&self, x: Tensor) -> Result<Tensor> {
        let n = x.shape()[0];
        let rest: usize = x.shape()[1..].iter().product();
        super::reshaped(x, &[n, rest]).map_err(|e| e.context("Flatten"))
    }
}

pub fn build_flatten(ctx: &BuildCtx) -> Result<Built> {
    expect_weights(ctx, &[0], "no weights")?;
    ctx.layer.require_channels_last()?;
    let n: usize = single_input(ctx)?.iter().product();
    Ok(Built { op: Box::new(Flatten), output_shape: vec![n] })
}

/// Dense: `activation(x @ kernel + bias)` over the last axis, as Keras applies it to any rank.
pub struct Dense {
    /// The kernel (units_in x units), packed for the product.
    pub kernel: super::packed::PackedB,
    pub bias: Option<Vec<f32>>,
    pub activation: Activation,
    /// Element-wise layers after this one that it applies itself (see [`super::Post`]).
    pub post: Vec<super::Post>,
    /// How many vectors of one image the kernel multiplies: 1 for a flat input, H x W for an
    /// (H, W, C) one (Dense acts on the last axis at every position of the others).
    pub positions: u64,
}

impl Op for Dense {
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let x = inputs[0];
        let (units_in, units) = (self.kernel.rows(), self.kernel.cols());
        let mut out_shape = x.shape().to_vec();
        let rows = x.len() / units_in;
        let x2 = x.as_standard_layout();
        let x2 = x2.as_slice().expect("standard layout");
        let mut y = Array2::<f32>::zeros((rows, units));
        self.kernel.mul(rows, x2, units_in, y.as_slice_mut().expect("new"), units);
        let elementwise = self.activation.is_elementwise();
        if elementwise {
            super::finish_rows(
                y.as_slice_mut().expect("new"),
                units,
                self.bias.as_deref(),
                &self.activation,
                &self.post,
            );
        } else if let Some(b) = &self.bias {
            super::fast::add_bias(y.as_slice_mut().expect("new"), b);
        }
        *out_shape.last_mut().expect("rank >= 2") = units;
        let mut y = y.into_shape_with_order(IxDyn(&out_shape)).map_err(|e| err!("Dense: {e}"))?;
        if !elementwise {
            self.activation.apply(&mut y);
            super::apply_posts(&self.post, &mut y, units);
        }
        Ok(y)
    }

    fn flops_per_sample(&self) -> u64 {
        self.positions.saturating_mul(2 * (self.kernel.rows() * self.kernel.cols()) as u64)
    }

    fn absorb(&mut self, post: &super::Post) -> bool {
        post.absorb_into(&mut self.post, self.kernel.cols())
    }
}

pub fn build_dense(ctx: &BuildCtx) -> Result<Built> {
    let input = single_input(ctx)?;
    let use_bias = expect_kernel_and_bias(ctx)?;
    let units = usize_or_weights(ctx, "units", ctx.weights[0].array.shape().last().copied())?;
    let units_in =
        *input.last().ok_or_else(|| err!("layer {}: Dense needs an input with at least one axis", ctx.layer.name))?;
    expect_shape(ctx, &ctx.weights[0], "kernel", &[units_in, units])?;
    let bias = optional_bias(ctx, use_bias, 1, units)?;
    let kernel = to2(&ctx.weights[0].array)?;
    let kernel =
        super::packed::PackedB::new(units_in, units, kernel.as_slice().expect("to2 gives standard layout"), units);
    let activation = super::activation::layer_activation(&ctx.layer, "activation")?;
    let positions = input[..input.len() - 1].iter().fold(1u64, |p, &d| p.saturating_mul(d as u64));
    let mut out = input.clone();
    *out.last_mut().expect("checked above") = units;
    Ok(Built { op: Box::new(Dense { kernel, bias, activation, post: Vec::new(), positions }), output_shape: out })
}

/// An `Activation` layer.
struct ActivationOp(Activation);

impl Op for ActivationOp {
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        self.forward_owned(inputs[0].clone())
    }

    fn forward_owned(&self, mut x: Tensor) -> Result<Tensor> {
        self.0.apply(&mut x);
        Ok(x)
    }
}

pub fn build_activation(ctx: &BuildCtx) -> Result<Built> {
    expect_weights(ctx, &[0], "no weights")?;
    let act = super::activation::layer_activation(&ctx.layer, "activation")?;
    Ok(Built { op: Box::new(ActivationOp(act)), output_shape: single_input(ctx)?.clone() })
}

/// Converts a weight known to be 2-D into an owned standard-layout matrix.
pub fn to2(a: &ArrayD<f32>) -> Result<Array2<f32>> {
    a.as_standard_layout()
        .into_owned()
        .into_dimensionality::<Ix2>()
        .map_err(|e: ndarray::ShapeError| Error::new(format!("expected a matrix: {e}")))
}

#[cfg(test)]
mod tests {
    use super::{Flatten, Op, Tensor};
    use ndarray::IxDyn;

    /// An owned tensor in standard layout keeps its buffer; a transposed one is copied in the
    /// order NumPy's reshape reads it.
    #[test]
    fn flatten_reshapes_an_owned_tensor_in_place() {
        let x = Tensor::from_shape_fn(IxDyn(&[2, 3, 4]), |i| (i[0] * 100 + i[1] * 10 + i[2]) as f32);
        let owned = x.clone();
        let at = owned.as_ptr();
        let y = Flatten.forward_owned(owned).unwrap();
        assert_eq!(y.shape(), [2, 12]);
        assert_eq!(y.as_ptr(), at, "the buffer moved");
        assert_eq!(y.as_slice().unwrap(), x.as_slice().unwrap());
        let t = x.clone().permuted_axes(IxDyn(&[0, 2, 1]));
        let want: Vec<f32> = t.iter().copied().collect();
        assert_eq!(Flatten.forward_owned(t.clone()).unwrap().as_slice().unwrap(), want);
        assert_eq!(Flatten.forward(&[&t]).unwrap().as_slice().unwrap(), want);
    }
}
