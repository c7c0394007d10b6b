//! Activation layers with their own options: ReLU (max_value, negative_slope, threshold),
//! LeakyReLU, PReLU, ELU and Softmax.

use super::core::{expect_weights, single_input};
use super::{BuildCtx, Built, Op, Tensor};
use crate::err;
use crate::error::Result;
use ndarray::{ArrayD, Axis, IxDyn};

/// Keras' ReLU layer.
#[derive(Debug, Clone, Copy)]
pub struct Relu {
    max_value: Option<f32>,
    negative_slope: f32,
    threshold: f32,
}

impl Relu {
    /// Keras' defaults, for tests that build a layer's steps by hand.
    #[cfg(test)]
    pub fn plain() -> Relu {
        Relu { max_value: None, negative_slope: 0.0, threshold: 0.0 }
    }

    /// True with Keras' defaults (no max_value, slope 0, threshold 0): [`super::fast::relu_layer`].
    pub fn is_plain(&self) -> bool {
        self.max_value.is_none() && self.negative_slope == 0.0 && self.threshold == 0.0
    }

    /// Keras: x >= max_value -> max_value; threshold <= x < max_value -> x;
    /// otherwise negative_slope * (x - threshold).
    #[inline]
    fn one(&self, x: f32) -> f32 {
        let y = if x >= self.threshold { x } else { self.negative_slope * (x - self.threshold) };
        match self.max_value {
            Some(m) if y >= m => m,
            _ => y,
        }
    }

    /// [`Relu::one`] of every value, through [`super::fast::relu_layer`] with Keras' defaults.
    pub fn apply(&self, xs: &mut [f32]) {
        if self.is_plain() {
            super::fast::relu_layer(xs);
        } else {
            for v in xs {
                *v = self.one(*v);
            }
        }
    }
}

impl Op for Relu {
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        self.forward_owned(inputs[0].as_standard_layout().into_owned())
    }

    fn forward_owned(&self, x: Tensor) -> Result<Tensor> {
        let mut x = if x.is_standard_layout() { x } else { x.as_standard_layout().into_owned() };
        self.apply(x.as_slice_mut().expect("standard layout"));
        Ok(x)
    }

    fn as_post(&self) -> Option<super::Post> {
        Some(super::Post::Relu(*self))
    }
}

pub fn build_relu(ctx: &BuildCtx) -> Result<Built> {
    expect_weights(ctx, &[0], "no weights")?;
    let op = Relu {
        max_value: ctx.layer.opt_f32("max_value")?,
        negative_slope: ctx.layer.f32_or("negative_slope", 0.0)?,
        threshold: ctx.layer.f32_or("threshold", 0.0)?,
    };
    Ok(Built { output_shape: single_input(ctx)?.clone(), op: Box::new(op) })
}

struct Leaky(f32);

impl Op for Leaky {
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let a = self.0;
        Ok(inputs[0].mapv(|x| if x >= 0.0 { x } else { a * x }))
    }
}

pub fn build_leaky_relu(ctx: &BuildCtx) -> Result<Built> {
    expect_weights(ctx, &[0], "no weights")?;
    // Keras 3 calls the slope negative_slope, Keras 2 alpha; both default to 0.3.
    let slope = match ctx.layer.opt_f32("negative_slope")? {
        Some(s) => s,
        None => ctx.layer.f32_or("alpha", 0.3)?,
    };
    Ok(Built { output_shape: single_input(ctx)?.clone(), op: Box::new(Leaky(slope)) })
}

struct Prelu {
    /// alpha broadcast to the full per-sample shape.
    alpha: Vec<f32>,
}

impl Op for Prelu {
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let mut y = inputs[0].as_standard_layout().into_owned();
        for chunk in y.as_slice_mut().expect("standard layout").chunks_exact_mut(self.alpha.len()) {
            for (v, a) in chunk.iter_mut().zip(&self.alpha) {
                if *v < 0.0 {
                    *v *= a;
                }
            }
        }
        Ok(y)
    }
}

pub fn build_prelu(ctx: &BuildCtx) -> Result<Built> {
    expect_weights(ctx, &[1], "1 weight (alpha)")?;
    let input = single_input(ctx)?.clone();
    let alpha = &ctx.weights[0].array;
    // alpha has the input's shape with 1 on shared axes: broadcast it to the whole sample.
    let full = alpha.broadcast(IxDyn(&input)).ok_or_else(|| {
        err!(
            "alpha of {} ({}): shape {} does not broadcast to the input {}",
            ctx.layer.name,
            ctx.weights[0].key,
            super::fmt_dims(alpha.shape()),
            super::fmt_shape(&input)
        )
    })?;
    let alpha = full.iter().copied().collect();
    Ok(Built { output_shape: input, op: Box::new(Prelu { alpha }) })
}

struct Elu(f32);

impl Op for Elu {
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let a = self.0;
        Ok(inputs[0].mapv(|x| if x > 0.0 { x } else { a * x.exp_m1() }))
    }
}

pub fn build_elu(ctx: &BuildCtx) -> Result<Built> {
    expect_weights(ctx, &[0], "no weights")?;
    let alpha = ctx.layer.f32_or("alpha", 1.0)?;
    Ok(Built { output_shape: single_input(ctx)?.clone(), op: Box::new(Elu(alpha)) })
}

struct SoftmaxAxis(usize);

impl Op for SoftmaxAxis {
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let mut y: ArrayD<f32> = inputs[0].as_standard_layout().into_owned();
        for mut lane in y.lanes_mut(Axis(self.0)) {
            let max = lane.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            lane.mapv_inplace(|v| (v - max).exp());
            let sum = lane.sum();
            lane.mapv_inplace(|v| v / sum);
        }
        Ok(y)
    }
}

pub fn build_softmax(ctx: &BuildCtx) -> Result<Built> {
    expect_weights(ctx, &[0], "no weights")?;
    let input = single_input(ctx)?.clone();
    let full = input.len() as i64 + 1;
    let raw = match ctx.layer.get("axis") {
        None => -1,
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_array().filter(|a| a.len() == 1).and_then(|a| a[0].as_i64()))
            .ok_or_else(|| err!("layer {}: Softmax over axis {v} is not supported", ctx.layer.name))?,
    };
    let axis = if raw < 0 { full + raw } else { raw };
    if axis <= 0 || axis >= full {
        return Err(err!("layer {}: axis {raw} does not exist for input {}", ctx.layer.name, super::fmt_shape(&input)));
    }
    Ok(Built { output_shape: input, op: Box::new(SoftmaxAxis(axis as usize)) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn relu_options_follow_keras() {
        let r = Relu { max_value: Some(1.5), negative_slope: 0.1, threshold: 0.05 };
        let y = r.forward(&[&array![-1.0f32, 0.0, 0.05, 1.0, 2.0].into_dyn()]).unwrap();
        let want = [0.1 * (-1.05), 0.1 * -0.05, 0.05, 1.0, 1.5];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-7, "{a} vs {b}");
        }
    }
}
