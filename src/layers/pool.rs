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
        if !self.max && uses_table(&gy, &gx) {
            let mut table = Vec::new();
            for i in 0..n {
                let img = &xs[i * in_len..(i + 1) * in_len];
                let o = &mut out[i * out_len..(i + 1) * out_len];
                // Infinities would turn every window's difference of sums into NaN: such an
                // image is averaged tap by tap, as any other.
                if img.iter().all(|v| v.is_finite()) {
                    average_by_table(img, &gy, &gx, c, &mut table, o);
                } else {
                    self.by_taps(img, o);
                }
            }
        } else {
            for i in 0..n {
                self.by_taps(&xs[i * in_len..(i + 1) * in_len], &mut out[i * out_len..(i + 1) * out_len]);
            }
        }
        Ok(ArrayD::from_shape_vec(IxDyn(&[n, gy.output, gx.output, c]), out).expect("sizes computed above"))
    }

    /// The taps it visits: each output reads its window's pixels inside the image (windows are
    /// clipped to it), or through the summed-area table four sums per output and two per pixel to
    /// build it. Counted, so that the per-layer limit refuses a 2800-pixel window over a
    /// 2800x2800 tensor (3e13 taps per image) before it runs for days.
    fn flops_per_sample(&self) -> u64 {
        let (gy, gx, c) = (self.gy, self.gx, self.c as u64);
        if !self.max && uses_table(&gy, &gx) {
            let build = (gy.input as u64).saturating_mul(gx.input as u64).saturating_mul(2);
            let read = (gy.output as u64).saturating_mul(gx.output as u64).saturating_mul(4);
            return build.saturating_add(read).saturating_mul(c);
        }
        let taps = |g: &AxisGeom| (0..g.output).fold(0u64, |sum, o| sum.saturating_add(g.taps(o).len() as u64));
        taps(&gy).saturating_mul(taps(&gx)).saturating_mul(c)
    }
}

/// Average pooling windows of more taps than this are summed through a summed-area table: each
/// output then costs four reads whatever its window's size, where summing its taps costs the
/// window's area (AveragePooling2D(1000, strides=1, padding="same") on a 28x28 image: 784 taps
/// for each of 784 outputs). Smaller windows keep the tap-by-tap sum, and with it the bits every
/// existing model computes.
const TABLE_TAPS: usize = 64;

/// Whether average pooling over `gy` x `gx` goes through a summed-area table: contiguous windows
/// (no dilation) of more than [`TABLE_TAPS`] taps.
fn uses_table(gy: &AxisGeom, gx: &AxisGeom) -> bool {
    gy.dilation == 1 && gx.dilation == 1 && gy.kernel.saturating_mul(gx.kernel) > TABLE_TAPS
}

/// The input rows (or columns) output `o` averages: the taps inside the input, contiguous.
fn window(g: &AxisGeom, o: usize) -> (usize, usize) {
    let taps = g.taps(o);
    let base = o * g.stride;
    ((base + taps.start).saturating_sub(g.pad_before), (base + taps.end).saturating_sub(g.pad_before))
}

/// Average pooling of one image through a summed-area table in float64: `table[y][x][ch]` is the
/// sum of the pixels above and left of (y, x), and a window's sum is four reads. Float64 keeps
/// the differences of large sums exact to well below float32's precision.
fn average_by_table(img: &[f32], gy: &AxisGeom, gx: &AxisGeom, c: usize, table: &mut Vec<f64>, out: &mut [f32]) {
    let w = gx.input + 1;
    table.clear();
    table.resize((gy.input + 1) * w * c, 0.0);
    let mut row = vec![0f64; c];
    for y in 0..gy.input {
        row.fill(0.0);
        for x in 0..gx.input {
            let px = &img[(y * gx.input + x) * c..][..c];
            let (above, here) = table.split_at_mut(((y + 1) * w + x + 1) * c);
            let above = &above[(y * w + x + 1) * c..][..c];
            for ch in 0..c {
                row[ch] += f64::from(px[ch]);
                here[ch] = above[ch] + row[ch];
            }
        }
    }
    for oy in 0..gy.output {
        let (y0, y1) = window(gy, oy);
        for ox in 0..gx.output {
            let (x0, x1) = window(gx, ox);
            let count = ((y1 - y0) * (x1 - x0)) as f64;
            let at = |y: usize, x: usize| &table[(y * w + x) * c..][..c];
            let (a, b, d, e) = (at(y1, x1), at(y0, x1), at(y1, x0), at(y0, x0));
            let o = &mut out[(oy * gx.output + ox) * c..][..c];
            for ch in 0..c {
                o[ch] = ((a[ch] - b[ch] - d[ch] + e[ch]) / count) as f32;
            }
        }
    }
}

impl Pool2d {
    /// One image pooled tap by tap: the maximum, or the float32 sum divided by the taps inside.
    fn by_taps(&self, img: &[f32], out: &mut [f32]) {
        let (gy, gx, c) = (self.gy, self.gx, self.c);
        let mut acc = vec![0f32; c];
        {
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
                    let o = &mut out[(oy * gx.output + ox) * c..][..c];
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

    /// Windows past [`TABLE_TAPS`] go through the summed-area table: the same averages as the
    /// tap-by-tap sum (to float32 rounding), valid and same, any stride, odd shapes, several
    /// channels, and a window past the image's edge; smaller windows keep the tap-by-tap path.
    #[test]
    fn huge_average_windows_go_through_the_table_with_the_same_averages() {
        let mut seed = 12345u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 33) as f32 / (1u64 << 31) as f32) * 4.0 - 2.0
        };
        for (h, w, k, stride, same, c) in [
            (28, 28, 1000, 1, true, 1),
            (28, 28, 9, 1, true, 3),
            (13, 17, 12, 5, false, 2),
            (13, 17, 11, 2, true, 4),
            (28, 28, 30, 3, true, 1),
        ] {
            let gy = AxisGeom::new(h, k, stride, 1, same).unwrap();
            let gx = AxisGeom::new(w, k, stride, 1, same).unwrap();
            assert!(uses_table(&gy, &gx), "{k}x{k} windows go through the table");
            let img: Vec<f32> = (0..h * w * c).map(|_| next()).collect();
            let p = Pool2d { gy, gx, c, max: false };
            let mut taps = vec![0f32; gy.output * gx.output * c];
            p.by_taps(&img, &mut taps);
            let mut table = Vec::new();
            let mut tabled = vec![0f32; taps.len()];
            average_by_table(&img, &gy, &gx, c, &mut table, &mut tabled);
            for (a, b) in taps.iter().zip(&tabled) {
                assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{h}x{w} k={k} s={stride}: {a} vs {b}");
            }
        }
        let small = AxisGeom::new(28, 3, 1, 1, true).unwrap();
        assert!(!uses_table(&small, &small), "3x3 windows keep their bits");
        let dilated = AxisGeom::new(28, 10, 1, 2, true).unwrap();
        assert!(!uses_table(&dilated, &dilated), "dilated windows are not contiguous");
    }

    /// An infinity in the image leaves the windows without it finite (the image is averaged tap
    /// by tap, since a table's differences would be inf - inf).
    #[test]
    fn an_infinite_pixel_spoils_only_its_windows() {
        let mut x = Array4::<f32>::ones((1, 28, 28, 1));
        x[[0, 0, 0, 0]] = f32::INFINITY;
        let g = AxisGeom::new(28, 10, 10, 1, false).unwrap();
        let y = Pool2d { gy: g, gx: g, c: 1, max: false }.forward(&[&x.into_dyn()]).unwrap();
        assert_eq!(y[[0, 0, 0, 0]], f32::INFINITY);
        assert_eq!(y[[0, 1, 1, 0]], 1.0);
    }

    #[test]
    fn max_pool_picks_the_maximum() {
        let x = Array4::from_shape_vec((1, 2, 2, 1), vec![1.0f32, -3.0, 7.0, 2.0]).unwrap().into_dyn();
        let g = AxisGeom::new(2, 2, 2, 1, false).unwrap();
        let y = Pool2d { gy: g, gx: g, c: 1, max: true }.forward(&[&x]).unwrap();
        assert_eq!(y.iter().copied().collect::<Vec<_>>(), vec![7.0]);
    }
}
