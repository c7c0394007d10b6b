//! Pooling: MaxPooling2D and AveragePooling2D (valid/same; TensorFlow's same-padded average counts
//! only the real pixels), GlobalAveragePooling2D and GlobalMaxPooling2D (keepdims).

use super::core::expect_weights;
use super::geometry::{AxisGeom, image_input, padding_is_same};
use super::{BuildCtx, Built, Op, Tensor};
use crate::err;
use crate::error::Result;
use ndarray::{ArrayD, Axis, IxDyn};

struct Pool2d {
    gy: AxisGeom,
    gx: AxisGeom,
    c: usize,
    max: bool,
}

impl Op for Pool2d {
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let x = inputs[0].as_standard_layout();
        let xs = x.as_slice().expect("standard layout");
        let n = x.shape()[0];
        let (gy, gx, c) = (self.gy, self.gx, self.c);
        let in_len = gy.input * gx.input * c;
        let out_len = gy.output * gx.output * c;
        let mut out = vec![0f32; n * out_len];
        let inside = |g: &AxisGeom| g.pad_before == 0 && (g.output - 1) * g.stride + g.kernel <= g.input;
        if self.max && gy.output > 0 && gx.output > 0 && inside(&gy) && inside(&gx) {
            // No window reaches the padding (valid pooling, the common case): each output pixel
            // is the running maximum of its taps, written in place (the same values as below:
            // starting from -inf, a NaN tap is passed over by f32::max either way).
            for i in 0..n {
                super::fast::max_pool(
                    &xs[i * in_len..(i + 1) * in_len],
                    gx.input,
                    c,
                    &mut out[i * out_len..(i + 1) * out_len],
                    gx.output,
                    (gy.kernel, gx.kernel),
                    (gy.stride, gx.stride),
                );
            }
            return Ok(ArrayD::from_shape_vec(IxDyn(&[n, gy.output, gx.output, c]), out).expect("sizes computed above"));
        }
        let mut acc = vec![0f32; c];
        for i in 0..n {
            let img = &xs[i * in_len..(i + 1) * in_len];
            for oy in 0..gy.output {
                for ox in 0..gx.output {
                    acc.fill(if self.max { f32::NEG_INFINITY } else { 0.0 });
                    let mut count = 0usize;
                    for ky in gy.taps(oy) {
                        let Some(iy) = gy.source(oy, ky) else { continue };
                        for kx in gx.taps(ox) {
                            let Some(ix) = gx.source(ox, kx) else { continue };
                            count += 1;
                            let px = &img[(iy * gx.input + ix) * c..][..c];
                            if self.max {
                                for (a, v) in acc.iter_mut().zip(px) {
                                    *a = a.max(*v);
                                }
                            } else {
                                for (a, v) in acc.iter_mut().zip(px) {
                                    *a += v;
                                }
                            }
                        }
                    }
                    let o = &mut out[i * out_len + (oy * gx.output + ox) * c..][..c];
                    if self.max {
                        o.copy_from_slice(&acc);
                    } else {
                        let inv = count as f32;
                        for (ov, a) in o.iter_mut().zip(&acc) {
                            *ov = a / inv;
                        }
                    }
                }
            }
        }
        Ok(ArrayD::from_shape_vec(IxDyn(&[n, gy.output, gx.output, c]), out).expect("sizes computed above"))
    }
}

fn build_pool(ctx: &BuildCtx, max: bool) -> Result<Built> {
    expect_weights(ctx, &[0], "no weights")?;
    ctx.layer.require_channels_last()?;
    let (h, w, c) = image_input(ctx)?;
    let pool = ctx.layer.usizes_or("pool_size", 2, 2)?;
    // Keras: strides default to pool_size.
    let strides = if ctx.layer.get("strides").is_some() { ctx.layer.usizes("strides", 2)? } else { pool.clone() };
    let same = padding_is_same(ctx)?;
    let (Some(gy), Some(gx)) =
        (AxisGeom::new(h, pool[0], strides[0], 1, same), AxisGeom::new(w, pool[1], strides[1], 1, same))
    else {
        return Err(err!(
            "layer {} ({}): pool_size {:?} with strides {:?} does not fit the {h}x{w} input",
            ctx.layer.name,
            ctx.layer.class_name,
            pool,
            strides
        ));
    };
    Ok(Built { output_shape: vec![gy.output, gx.output, c], op: Box::new(Pool2d { gy, gx, c, max }) })
}

pub fn build_max_pool(ctx: &BuildCtx) -> Result<Built> {
    build_pool(ctx, true)
}

pub fn build_avg_pool(ctx: &BuildCtx) -> Result<Built> {
    build_pool(ctx, false)
}

struct GlobalPool {
    max: bool,
    keepdims: bool,
}

impl Op for GlobalPool {
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let x = inputs[0];
        let (n, h, w, c) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
        let flat = x
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order((n, h * w, c))
            .map_err(|e| err!("global pooling: {e}"))?;
        let r = if self.max {
            flat.fold_axis(Axis(1), f32::NEG_INFINITY, |a, b| a.max(*b))
        } else {
            flat.sum_axis(Axis(1)) / (h * w) as f32
        };
        let shape: Vec<usize> = if self.keepdims { vec![n, 1, 1, c] } else { vec![n, c] };
        r.into_shape_with_order(IxDyn(&shape)).map_err(|e| err!("global pooling: {e}"))
    }
}

fn build_global(ctx: &BuildCtx, max: bool) -> Result<Built> {
    expect_weights(ctx, &[0], "no weights")?;
    ctx.layer.require_channels_last()?;
    let (_, _, c) = image_input(ctx)?;
    let keepdims = ctx.layer.bool_or("keepdims", false)?;
    let output_shape = if keepdims { vec![1, 1, c] } else { vec![c] };
    Ok(Built { output_shape, op: Box::new(GlobalPool { max, keepdims }) })
}

pub fn build_global_avg(ctx: &BuildCtx) -> Result<Built> {
    build_global(ctx, false)
}

pub fn build_global_max(ctx: &BuildCtx) -> Result<Built> {
    build_global(ctx, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;

    #[test]
    fn same_average_counts_only_real_pixels() {
        // A 3x3 image of ones, 2x2 average with stride 2, same padding: every window averages to 1
        // (TensorFlow divides by the pixels inside the image, not by 4).
        let x = Array4::<f32>::ones((1, 3, 3, 1)).into_dyn();
        let gy = AxisGeom::new(3, 2, 2, 1, true).unwrap();
        let p = Pool2d { gy, gx: gy, c: 1, max: false };
        let y = p.forward(&[&x]).unwrap();
        assert_eq!(y.shape(), &[1, 2, 2, 1]);
        assert!(y.iter().all(|&v| (v - 1.0).abs() < 1e-7));
    }

    #[test]
    fn taps_are_exactly_those_inside_the_input() {
        for (input, kernel, stride, dilation, same) in [
            (3, 2, 2, 1, true),
            (28, 5, 1, 1, true),
            (7, 3, 2, 2, true),
            (28, 1000, 1000, 1, true),
            (9, 3, 1, 2, false),
        ] {
            let g = AxisGeom::new(input, kernel, stride, dilation, same).unwrap();
            for o in 0..g.output {
                let inside: Vec<usize> = (0..g.kernel).filter(|&k| g.source(o, k).is_some()).collect();
                assert_eq!(g.taps(o).collect::<Vec<_>>(), inside, "{input} {kernel} {stride} {dilation} o={o}");
            }
        }
    }

    #[test]
    fn same_pooling_with_a_huge_pool_answers_at_once() {
        // pool_size 100000 on a 28x28 image: one output, the mean of the whole image.
        let x = Array4::from_shape_fn((2, 28, 28, 1), |(_, y, x, _)| (y * 28 + x) as f32).into_dyn();
        let g = AxisGeom::new(28, 100_000, 100_000, 1, true).unwrap();
        let t = std::time::Instant::now();
        let y = Pool2d { gy: g, gx: g, c: 1, max: false }.forward(&[&x]).unwrap();
        assert!(t.elapsed().as_millis() < 500, "{:?}", t.elapsed());
        assert_eq!(y.shape(), &[2, 1, 1, 1]);
        assert!((y[[0, 0, 0, 0]] - 391.5).abs() < 1e-3, "{}", y[[0, 0, 0, 0]]);
    }

    #[test]
    fn max_pool_picks_the_maximum() {
        let x = Array4::from_shape_vec((1, 2, 2, 1), vec![1.0f32, -3.0, 7.0, 2.0]).unwrap().into_dyn();
        let g = AxisGeom::new(2, 2, 2, 1, false).unwrap();
        let y = Pool2d { gy: g, gx: g, c: 1, max: true }.forward(&[&x]).unwrap();
        assert_eq!(y.iter().copied().collect::<Vec<_>>(), vec![7.0]);
    }
}
