//! Normalization at inference: BatchNormalization (moving statistics), LayerNormalization,
//! Rescaling and Normalization, with TensorFlow's formulas in float32.

use super::core::{expect_shape, expect_weights, single_input};
use super::{BuildCtx, Built, Op, Tensor};
use crate::err;
use crate::error::Result;
use ndarray::Axis;
use serde_json::Value;

/// Resolves a Keras axis (negative from the end, or positive counting the batch axis, as Keras 2
/// writes `[1]`) to an axis of the full batch tensor.
fn resolve_axis(ctx: &BuildCtx, raw: i64, sample_rank: usize) -> Result<usize> {
    let full = sample_rank as i64 + 1;
    let a = if raw < 0 { full + raw } else { raw };
    if a <= 0 || a >= full {
        return Err(err!(
            "layer {} ({}): axis {raw} does not exist for an input of rank {}",
            ctx.layer.name,
            ctx.layer.class_name,
            sample_rank
        ));
    }
    Ok(a as usize)
}

/// The layer's `axis` as a list of full-tensor axes (an int or a list in the config).
fn axes(ctx: &BuildCtx, default: i64) -> Result<Vec<usize>> {
    let rank = single_input(ctx)?.len();
    let raw: Vec<i64> = match ctx.layer.get("axis") {
        None => vec![default],
        Some(Value::Number(n)) => vec![n.as_i64().unwrap_or(i64::MAX)],
        Some(Value::Array(items)) => items.iter().map(|v| v.as_i64().unwrap_or(i64::MAX)).collect(),
        Some(other) => return Err(err!("layer {}: axis {other} is not an integer or a list", ctx.layer.name)),
    };
    let mut out = raw.into_iter().map(|a| resolve_axis(ctx, a, rank)).collect::<Result<Vec<_>>>()?;
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// `y = x * scale[c] + shift[c]` along one axis (the channel axis of BatchNormalization).
struct ChannelAffine {
    axis: usize,
    /// True when `axis` is the input's last axis (the channels of an image, the units of a Dense).
    on_last_axis: bool,
    scale: Vec<f32>,
    shift: Vec<f32>,
}

impl Op for ChannelAffine {
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        self.forward_owned(inputs[0].as_standard_layout().into_owned())
    }

    fn forward_owned(&self, x: Tensor) -> Result<Tensor> {
        let mut y = if x.is_standard_layout() { x } else { x.as_standard_layout().into_owned() };
        let last = y.ndim() - 1;
        if self.axis == last {
            super::fast::affine(y.as_slice_mut().expect("standard layout"), &self.scale, &self.shift);
        } else {
            for (i, mut lane) in y.axis_iter_mut(Axis(self.axis)).enumerate() {
                let (s, b) = (self.scale[i], self.shift[i]);
                lane.mapv_inplace(|v| v * s + b);
            }
        }
        Ok(y)
    }

    fn as_post(&self) -> Option<super::Post> {
        // Only on the last axis: the layer before then writes rows of exactly these channels.
        // The engine checks that the axis is the last of the producer's output.
        self.on_last_axis.then(|| super::Post::Affine { scale: self.scale.clone(), shift: self.shift.clone() })
    }

    fn affine(&self, sample: &[usize]) -> Option<(Vec<f64>, Vec<f64>)> {
        // `axis` counts the batch axis; element f of a sample is in channel (f / inner) % c.
        let c = *sample.get(self.axis.checked_sub(1)?)?;
        let inner: usize = sample[self.axis..].iter().product();
        let n: usize = sample.iter().product();
        let channel = |f: usize| (f / inner) % c;
        Some((
            (0..n).map(|f| self.scale[channel(f)] as f64).collect(),
            (0..n).map(|f| self.shift[channel(f)] as f64).collect(),
        ))
    }
}

pub fn build_batch_norm(ctx: &BuildCtx) -> Result<Built> {
    let input = single_input(ctx)?.clone();
    let ax = axes(ctx, -1)?;
    let [axis] = ax.as_slice() else {
        return Err(err!("layer {}: BatchNormalization over several axes {ax:?} is not supported", ctx.layer.name));
    };
    let c = input[axis - 1];
    let center = ctx.layer.bool_or("center", true)?;
    let scale = ctx.layer.bool_or("scale", true)?;
    let eps = ctx.layer.f32_or("epsilon", 1e-3)?;
    let n = 2 + center as usize + scale as usize;
    let names = match (scale, center) {
        (true, true) => "4 weights (gamma, beta, moving_mean, moving_variance)",
        (true, false) => "3 weights (gamma, moving_mean, moving_variance)",
        (false, true) => "3 weights (beta, moving_mean, moving_variance)",
        (false, false) => "2 weights (moving_mean, moving_variance)",
    };
    expect_weights(ctx, &[n], names)?;
    let mut i = 0;
    let mut take = |role: &str| -> Result<Vec<f32>> {
        let w = &ctx.weights[i];
        i += 1;
        expect_shape(ctx, w, role, &[c])?;
        Ok(w.array.iter().copied().collect())
    };
    let gamma = if scale { Some(take("gamma")?) } else { None };
    let beta = if center { Some(take("beta")?) } else { None };
    let mean = take("moving_mean")?;
    let var = take("moving_variance")?;
    // tf.nn.batch_normalization: inv = rsqrt(var + eps) * gamma; y = x * inv + (beta - mean * inv).
    let mut s = Vec::with_capacity(c);
    let mut b = Vec::with_capacity(c);
    for k in 0..c {
        let mut inv = 1.0 / (var[k] + eps).sqrt();
        if let Some(g) = &gamma {
            inv *= g[k];
        }
        s.push(inv);
        b.push(beta.as_ref().map_or(0.0, |bb| bb[k]) - mean[k] * inv);
    }
    let on_last_axis = *axis == input.len();
    Ok(Built { output_shape: input, op: Box::new(ChannelAffine { axis: *axis, on_last_axis, scale: s, shift: b }) })
}

/// LayerNormalization over the trailing axes.
struct LayerNorm {
    width: usize,
    eps: f32,
    gamma: Option<Vec<f32>>,
    beta: Option<Vec<f32>>,
    rms: bool,
}

impl Op for LayerNorm {
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let mut y = inputs[0].as_standard_layout().into_owned();
        for row in y.as_slice_mut().expect("standard layout").chunks_exact_mut(self.width) {
            let n = self.width as f32;
            if self.rms {
                let ms = row.iter().map(|v| v * v).sum::<f32>() / n;
                let inv = 1.0 / (ms + self.eps).sqrt();
                for (k, v) in row.iter_mut().enumerate() {
                    *v = *v * inv * self.gamma.as_ref().map_or(1.0, |g| g[k]);
                }
                continue;
            }
            let mean = row.iter().sum::<f32>() / n;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
            let inv0 = 1.0 / (var + self.eps).sqrt();
            for (k, v) in row.iter_mut().enumerate() {
                let inv = inv0 * self.gamma.as_ref().map_or(1.0, |g| g[k]);
                let res = -mean * inv + self.beta.as_ref().map_or(0.0, |b| b[k]);
                *v = *v * inv + res;
            }
        }
        Ok(y)
    }
}

pub fn build_layer_norm(ctx: &BuildCtx) -> Result<Built> {
    let input = single_input(ctx)?.clone();
    let ax = axes(ctx, -1)?;
    let full = input.len() + 1;
    // Only trailing axes (the usual -1, or every axis) keep rows contiguous.
    if ax.iter().enumerate().any(|(i, &a)| a != full - ax.len() + i) {
        return Err(err!(
            "layer {}: LayerNormalization over axes {ax:?} is not supported; fmtool normalizes over trailing axes",
            ctx.layer.name
        ));
    }
    let width: usize = ax.iter().map(|a| input[a - 1]).product();
    let norm_shape: Vec<usize> = ax.iter().map(|a| input[a - 1]).collect();
    let center = ctx.layer.bool_or("center", true)?;
    let scale = ctx.layer.bool_or("scale", true)?;
    let rms = ctx.layer.bool_or("rms_scaling", false)?;
    let eps = ctx.layer.f32_or("epsilon", 1e-3)?;
    expect_weights(ctx, &[center as usize + scale as usize], "a weight for each of gamma (scale) and beta (center)")?;
    let mut i = 0;
    let mut take = |role: &str| -> Result<Vec<f32>> {
        let w = &ctx.weights[i];
        i += 1;
        if w.array.len() != width {
            expect_shape(ctx, w, role, &norm_shape)?;
        }
        Ok(w.array.iter().copied().collect())
    };
    let gamma = if scale { Some(take("gamma")?) } else { None };
    let beta = if center { Some(take("beta")?) } else { None };
    Ok(Built { output_shape: input, op: Box::new(LayerNorm { width, eps, gamma, beta, rms }) })
}

/// `x * scale + offset`, with scalars or per-channel lists (Rescaling), or
/// `(x - mean) / max(sqrt(var), 1e-7)` (Normalization) expressed the same way.
struct Elementwise {
    /// Repeats every `period` values along the flattened sample (1 for scalars).
    scale: Vec<f32>,
    shift: Vec<f32>,
    divide: Option<Vec<f32>>,
}

impl Op for Elementwise {
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let mut y = inputs[0].as_standard_layout().into_owned();
        let p = self.scale.len();
        for chunk in y.as_slice_mut().expect("standard layout").chunks_mut(p) {
            match &self.divide {
                // Normalization: (x - mean) / denominator, exactly as Keras divides.
                Some(d) => {
                    for (k, v) in chunk.iter_mut().enumerate() {
                        *v = (*v - self.shift[k]) / d[k];
                    }
                }
                None => {
                    for (k, v) in chunk.iter_mut().enumerate() {
                        *v = *v * self.scale[k] + self.shift[k];
                    }
                }
            }
        }
        Ok(y)
    }

    fn affine(&self, sample: &[usize]) -> Option<(Vec<f64>, Vec<f64>)> {
        // The parameters repeat every `p` elements (per position of the last axis, or per element).
        let p = self.scale.len();
        let n: usize = sample.iter().product();
        let (mut s, mut t) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for f in 0..n {
            let k = f % p;
            match &self.divide {
                // (x - shift) / d = x / d - shift / d
                Some(d) => {
                    s.push(1.0 / d[k] as f64);
                    t.push(-(self.shift[k] as f64) / d[k] as f64);
                }
                None => {
                    s.push(self.scale[k] as f64);
                    t.push(self.shift[k] as f64);
                }
            }
        }
        Some((s, t))
    }
}

fn numbers(v: Option<&Value>, default: f32) -> Option<Vec<f32>> {
    match v {
        None | Some(Value::Null) => Some(vec![default]),
        Some(Value::Number(n)) => n.as_f64().map(|x| vec![x as f32]),
        Some(Value::Array(items)) => {
            let flat: Vec<f64> = items.iter().flat_map(flatten_json).collect();
            Some(flat.into_iter().map(|x| x as f32).collect())
        }
        _ => None,
    }
}

fn flatten_json(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(flatten_json).collect(),
        Value::Number(n) => n.as_f64().into_iter().collect(),
        _ => vec![f64::NAN],
    }
}

/// Stretches a per-channel (or scalar) vector so it repeats with the last axis of `input`.
fn per_position(ctx: &BuildCtx, v: Vec<f32>, input: &[usize], what: &str) -> Result<Vec<f32>> {
    let last = *input.last().unwrap_or(&1);
    let total: usize = input.iter().product();
    if v.len() == 1 || v.len() == last || v.len() == total {
        Ok(v)
    } else {
        Err(err!(
            "layer {} ({}): {what} has {} values, which fit neither the last axis ({last}) nor the whole input ({total})",
            ctx.layer.name,
            ctx.layer.class_name,
            v.len()
        ))
    }
}

/// Makes `a` and `b` the same length (the longer one's), repeating a scalar.
fn same_len(a: Vec<f32>, b: Vec<f32>) -> (Vec<f32>, Vec<f32>) {
    let n = a.len().max(b.len());
    let grow = |v: Vec<f32>| if v.len() == n { v } else { v.iter().copied().cycle().take(n).collect() };
    (grow(a), grow(b))
}

pub fn build_rescaling(ctx: &BuildCtx) -> Result<Built> {
    expect_weights(ctx, &[0], "no weights")?;
    let input = single_input(ctx)?.clone();
    let bad = || err!("layer {}: scale and offset must be numbers or lists of numbers", ctx.layer.name);
    let scale = numbers(ctx.layer.get("scale"), 1.0).ok_or_else(bad)?;
    let offset = numbers(ctx.layer.get("offset"), 0.0).ok_or_else(bad)?;
    let scale = per_position(ctx, scale, &input, "scale")?;
    let offset = per_position(ctx, offset, &input, "offset")?;
    let (scale, shift) = same_len(scale, offset);
    Ok(Built { output_shape: input, op: Box::new(Elementwise { scale, shift, divide: None }) })
}

pub fn build_normalization(ctx: &BuildCtx) -> Result<Built> {
    let input = single_input(ctx)?.clone();
    let (mean, var): (Vec<f32>, Vec<f32>) = match ctx.weights.len() {
        // adapt(): mean, variance and count variables.
        2 | 3 => (ctx.weights[0].array.iter().copied().collect(), ctx.weights[1].array.iter().copied().collect()),
        0 => {
            let bad = || {
                err!("layer {}: Normalization has no weights and no mean/variance in its config", ctx.layer.name)
                    .with_hint("call layer.adapt(data) before saving, or pass mean= and variance=")
            };
            let m = ctx.layer.get("mean").ok_or_else(bad)?;
            let v = ctx.layer.get("variance").ok_or_else(bad)?;
            (numbers(Some(m), 0.0).ok_or_else(bad)?, numbers(Some(v), 1.0).ok_or_else(bad)?)
        }
        _ => return Err(expect_weights(ctx, &[3], "3 weights (mean, variance, count)").unwrap_err()),
    };
    let mean = per_position(ctx, mean, &input, "mean")?;
    let var = per_position(ctx, var, &input, "variance")?;
    let (mean, var) = same_len(mean, var);
    let denom: Vec<f32> = var.iter().map(|v| v.sqrt().max(1e-7)).collect();
    let op = if ctx.layer.bool_or("invert", false)? {
        // invert: mean + x * max(sqrt(var), eps).
        Elementwise { scale: denom, shift: mean, divide: None }
    } else {
        Elementwise { scale: vec![1.0; mean.len()], shift: mean, divide: Some(denom) }
    };
    Ok(Built { output_shape: input, op: Box::new(op) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{LayerConfig, Weight};
    use ndarray::{ArrayD, IxDyn, array};

    fn weight(v: Vec<f32>) -> Weight {
        let n = v.len();
        Weight { key: "w".into(), array: ArrayD::from_shape_vec(IxDyn(&[n]), v).unwrap() }
    }

    #[test]
    fn batch_norm_uses_moving_statistics() {
        let cfg = serde_json::json!({"axis": -1, "epsilon": 0.001});
        let cfg = cfg.as_object().unwrap();
        let shapes = vec![vec![2]];
        let ctx = BuildCtx {
            layer: LayerConfig::new("bn", "BatchNormalization", cfg),
            weights: vec![
                weight(vec![2.0, 1.0]),
                weight(vec![0.5, 0.0]),
                weight(vec![1.0, -1.0]),
                weight(vec![4.0, 0.25]),
            ],
            input_shapes: &shapes,
        };
        let b = build_batch_norm(&ctx).unwrap();
        let y = b.op.forward(&[&array![[3.0f32, 0.0]].into_dyn()]).unwrap();
        let want0 = (3.0 - 1.0) / (4.0f32 + 0.001).sqrt() * 2.0 + 0.5;
        let want1 = (0.0 + 1.0) / (0.25f32 + 0.001).sqrt();
        assert!((y[[0, 0]] - want0).abs() < 1e-6 && (y[[0, 1]] - want1).abs() < 1e-6, "{y}");
    }

    #[test]
    fn keras2_positive_axis_is_the_last_axis() {
        let cfg = serde_json::json!({"axis": [3]});
        let shapes = vec![vec![4, 4, 2]];
        let ctx = BuildCtx {
            layer: LayerConfig::new("bn", "BatchNormalization", cfg.as_object().unwrap()),
            weights: vec![],
            input_shapes: &shapes,
        };
        assert_eq!(axes(&ctx, -1).unwrap(), vec![3]);
        let cfg = serde_json::json!({"axis": 0});
        let ctx = BuildCtx {
            layer: LayerConfig::new("bn", "BatchNormalization", cfg.as_object().unwrap()),
            weights: vec![],
            input_shapes: &shapes,
        };
        assert!(axes(&ctx, -1).is_err());
    }
}
