//! Layers that move values without arithmetic (or with interpolation only): Reshape, Permute,
//! ZeroPadding2D, Cropping2D and UpSampling2D (nearest, and bilinear with TensorFlow's half-pixel
//! centers).

use super::core::{expect_weights, single_input};
use super::geometry::image_input;
use super::{BuildCtx, Built, Op, Shape, Tensor, fmt_shape};
use crate::err;
use crate::error::Result;
use ndarray::{ArrayD, IxDyn, s};
use serde_json::Value;

struct Reshape(Shape);

impl Op for Reshape {
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        self.forward_owned(inputs[0].as_standard_layout().into_owned())
    }

    fn forward_owned(&self, x: Tensor) -> Result<Tensor> {
        let mut shape = vec![x.shape()[0]];
        shape.extend(&self.0);
        super::reshaped(x, &shape).map_err(|e| e.context("Reshape"))
    }
}

pub fn build_reshape(ctx: &BuildCtx) -> Result<Built> {
    expect_weights(ctx, &[0], "no weights")?;
    let input = single_input(ctx)?;
    let total: usize = input.iter().product();
    let target: Vec<i64> = match ctx.layer.get("target_shape") {
        Some(Value::Array(items)) => items.iter().map(|v| v.as_i64().unwrap_or(0)).collect(),
        _ => return Err(err!("layer {}: Reshape needs a target_shape list", ctx.layer.name)),
    };
    // Checked: a crafted target_shape of huge dims must not wrap to the input's size.
    let known: i64 = target.iter().filter(|&&d| d != -1).try_fold(1i64, |a, &d| a.checked_mul(d)).unwrap_or(-1);
    let unknown = target.iter().filter(|&&d| d == -1).count();
    let bad =
        || err!("layer {}: cannot reshape {} ({total} values) into {:?}", ctx.layer.name, fmt_shape(input), target);
    if target.iter().any(|&d| d == 0 || d < -1) || unknown > 1 || known <= 0 {
        return Err(bad());
    }
    let shape: Shape = if unknown == 1 {
        if total as i64 % known != 0 {
            return Err(bad());
        }
        target.iter().map(|&d| if d == -1 { (total as i64 / known) as usize } else { d as usize }).collect()
    } else {
        if known as usize != total {
            return Err(bad());
        }
        target.iter().map(|&d| d as usize).collect()
    };
    Ok(Built { output_shape: shape.clone(), op: Box::new(Reshape(shape)) })
}

struct Permute(Vec<usize>);

impl Op for Permute {
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let mut axes = vec![0];
        axes.extend(&self.0);
        Ok(inputs[0].clone().permuted_axes(IxDyn(&axes)).as_standard_layout().into_owned())
    }
}

pub fn build_permute(ctx: &BuildCtx) -> Result<Built> {
    expect_weights(ctx, &[0], "no weights")?;
    let input = single_input(ctx)?;
    let dims = ctx.layer.usizes("dims", input.len())?;
    let mut seen = dims.clone();
    seen.sort_unstable();
    if seen != (1..=input.len()).collect::<Vec<_>>() {
        return Err(err!("layer {}: dims {dims:?} is not a permutation of 1..={}", ctx.layer.name, input.len()));
    }
    let output_shape = dims.iter().map(|&d| input[d - 1]).collect();
    Ok(Built { output_shape, op: Box::new(Permute(dims)) })
}

/// Reads ZeroPadding2D's / Cropping2D's amount: an int, a pair (symmetric per axis) or a pair of
/// pairs ((top, bottom), (left, right)).
fn four_sides(ctx: &BuildCtx, key: &str) -> Result<[usize; 4]> {
    let bad = || err!("layer {}: {key} must be an int, (a, b) or ((top, bottom), (left, right))", ctx.layer.name);
    let v = ctx.layer.get(key).ok_or_else(bad)?;
    let sides = if let Some(n) = v.as_u64() {
        [n, n, n, n]
    } else {
        let items = v.as_array().filter(|a| a.len() == 2).ok_or_else(bad)?;
        let pair = |x: &Value| -> Option<(u64, u64)> {
            if let Some(n) = x.as_u64() {
                return Some((n, n));
            }
            let p = x.as_array().filter(|a| a.len() == 2)?;
            Some((p[0].as_u64()?, p[1].as_u64()?))
        };
        let (t, b) = pair(&items[0]).ok_or_else(bad)?;
        let (l, r) = pair(&items[1]).ok_or_else(bad)?;
        [t, b, l, r]
    };
    // Bounded, so the sums below cannot wrap (2^63 + 2^63 is 0 in a release build).
    let mut out = [0usize; 4];
    for (o, v) in out.iter_mut().zip(sides) {
        *o = ctx.layer.bounded(key, v)?;
    }
    Ok(out)
}

struct Pad2d([usize; 4]);

impl Op for Pad2d {
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let x = inputs[0];
        let [t, b, l, r] = self.0;
        let (n, h, w, c) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
        let mut y = ArrayD::<f32>::zeros(IxDyn(&[n, h + t + b, w + l + r, c]));
        y.slice_mut(s![.., t..t + h, l..l + w, ..]).assign(x);
        Ok(y)
    }
}

pub fn build_zero_padding(ctx: &BuildCtx) -> Result<Built> {
    expect_weights(ctx, &[0], "no weights")?;
    ctx.layer.require_channels_last()?;
    let (h, w, c) = image_input(ctx)?;
    let p = four_sides(ctx, "padding")?;
    Ok(Built { output_shape: vec![h + p[0] + p[1], w + p[2] + p[3], c], op: Box::new(Pad2d(p)) })
}

struct Crop2d([usize; 4]);

impl Op for Crop2d {
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let x = inputs[0];
        let [t, b, l, r] = self.0;
        let (h, w) = (x.shape()[1], x.shape()[2]);
        Ok(x.slice(s![.., t..h - b, l..w - r, ..]).to_owned().into_dyn())
    }
}

pub fn build_cropping(ctx: &BuildCtx) -> Result<Built> {
    expect_weights(ctx, &[0], "no weights")?;
    ctx.layer.require_channels_last()?;
    let (h, w, c) = image_input(ctx)?;
    let p = four_sides(ctx, "cropping")?;
    if p[0] + p[1] >= h || p[2] + p[3] >= w {
        return Err(err!("layer {}: cropping {p:?} removes the whole {h}x{w} input", ctx.layer.name));
    }
    Ok(Built { output_shape: vec![h - p[0] - p[1], w - p[2] - p[3], c], op: Box::new(Crop2d(p)) })
}

struct UpSample {
    sy: usize,
    sx: usize,
    bilinear: bool,
}

/// TensorFlow's bilinear source coordinate with half-pixel centers: (lower, upper, lerp).
fn bilinear_taps(out: usize, scale: usize, input: usize) -> Vec<(usize, usize, f32)> {
    (0..out * scale)
        .map(|o| {
            let src = (o as f32 + 0.5) / scale as f32 - 0.5;
            let f = src.floor();
            let lower = (f.max(0.0) as usize).min(input - 1);
            let upper = (src.ceil().max(0.0) as usize).min(input - 1);
            (lower, upper, src - f)
        })
        .collect()
}

impl Op for UpSample {
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let x = inputs[0].as_standard_layout();
        let (n, h, w, c) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
        let (oh, ow) = (h * self.sy, w * self.sx);
        let mut y = ArrayD::<f32>::zeros(IxDyn(&[n, oh, ow, c]));
        if !self.bilinear {
            for oy in 0..oh {
                for ox in 0..ow {
                    let src = x.slice(s![.., oy / self.sy, ox / self.sx, ..]);
                    y.slice_mut(s![.., oy, ox, ..]).assign(&src);
                }
            }
            return Ok(y);
        }
        let ty = bilinear_taps(h, self.sy, h);
        let tx = bilinear_taps(w, self.sx, w);
        for (oy, &(y0, y1, ly)) in ty.iter().enumerate() {
            for (ox, &(x0, x1, lx)) in tx.iter().enumerate() {
                for b in 0..n {
                    for ch in 0..c {
                        let tl = x[[b, y0, x0, ch]];
                        let tr = x[[b, y0, x1, ch]];
                        let bl = x[[b, y1, x0, ch]];
                        let br = x[[b, y1, x1, ch]];
                        let top = tl + (tr - tl) * lx;
                        let bottom = bl + (br - bl) * lx;
                        y[[b, oy, ox, ch]] = top + (bottom - top) * ly;
                    }
                }
            }
        }
        Ok(y)
    }
}

pub fn build_upsampling(ctx: &BuildCtx) -> Result<Built> {
    expect_weights(ctx, &[0], "no weights")?;
    ctx.layer.require_channels_last()?;
    let (h, w, c) = image_input(ctx)?;
    let size = ctx.layer.usizes_or("size", 2, 2)?;
    if size.contains(&0) {
        return Err(err!("layer {}: size must be at least 1", ctx.layer.name));
    }
    let bilinear = match ctx.layer.str_or("interpolation", "nearest")? {
        "nearest" => false,
        "bilinear" => true,
        other => {
            return Err(err!(
                "layer {}: interpolation {other:?} is not supported; use \"nearest\" or \"bilinear\"",
                ctx.layer.name
            ));
        }
    };
    let op = UpSample { sy: size[0], sx: size[1], bilinear };
    Ok(Built { output_shape: vec![h * size[0], w * size[1], c], op: Box::new(op) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_taps_use_half_pixel_centers() {
        // Doubling 2 pixels: outputs sit at -0.25, 0.25, 0.75, 1.25 in input coordinates.
        let t = bilinear_taps(2, 2, 2);
        assert_eq!(t[0], (0, 0, 0.75));
        assert_eq!((t[1].0, t[1].1), (0, 1));
        assert!((t[1].2 - 0.25).abs() < 1e-7);
        assert_eq!((t[3].0, t[3].1), (1, 1));
    }
}
