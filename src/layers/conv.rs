//! Convolutions on channels-last images: Conv2D (strides, same/valid padding, dilation, groups),
//! DepthwiseConv2D and SeparableConv2D. Conv2D is im2col into a reused buffer plus an sgemm, so a
//! chunk of images costs one allocation per layer, not one per image; 3x3 kernels with stride 1
//! take the Winograd path (`winograd.rs`) instead.

use super::core::{bias_values, expect_kernel_and_bias, expect_shape, expect_weights, optional_bias, usize_or_weights};
use super::geometry::{AxisGeom, image_input, padding_is_same};
use super::winograd::{self, Winograd};
use super::{Activation, BuildCtx, Built, Op, Shape, Tensor};
use crate::err;
use crate::error::Result;
use ndarray::{ArrayD, IxDyn};

/// The axes of the 4-D kernel at `weights[index]`, when there is one: (kh, kw, cin, cout).
fn kernel_dims(ctx: &BuildCtx, index: usize) -> Option<[usize; 4]> {
    match ctx.weights.get(index)?.array.shape() {
        [a, b, c, d] => Some([*a, *b, *c, *d]),
        _ => None,
    }
}

/// The geometry of a convolution. `kernel_size` comes from the config, or from the kernel at
/// `weights[kernel_index]` when the config leaves it out.
fn geometry(ctx: &BuildCtx, h: usize, w: usize, kernel_index: usize) -> Result<(AxisGeom, AxisGeom, [usize; 2])> {
    ctx.layer.require_channels_last()?;
    let k = match (ctx.layer.get("kernel_size"), kernel_dims(ctx, kernel_index)) {
        (None, Some([kh, kw, _, _])) => vec![kh, kw],
        _ => ctx.layer.usizes("kernel_size", 2)?,
    };
    let s = ctx.layer.usizes_or("strides", 2, 1)?;
    let d = ctx.layer.usizes_or("dilation_rate", 2, 1)?;
    if s.iter().any(|&v| v > 1) && d.iter().any(|&v| v > 1) {
        return Err(err!(
            "layer {}: strides > 1 together with dilation_rate > 1 is not supported by Keras",
            ctx.layer.name
        ));
    }
    let same = padding_is_same(ctx)?;
    let gy = AxisGeom::new(h, k[0], s[0], d[0], same);
    let gx = AxisGeom::new(w, k[1], s[1], d[1], same);
    match (gy, gx) {
        (Some(gy), Some(gx)) => Ok((gy, gx, [k[0], k[1]])),
        _ => Err(err!(
            "layer {} ({}): kernel {:?} with strides {:?} and dilation {:?} does not fit the {h}x{w} input",
            ctx.layer.name,
            ctx.layer.class_name,
            k,
            s,
            d
        )),
    }
}

/// Conv2D.
pub struct Conv2d {
    gy: AxisGeom,
    gx: AxisGeom,
    cin: usize,
    cout: usize,
    groups: usize,
    /// The Keras kernel (kh, kw, cin / groups, cout) in C order.
    kernel: Vec<f32>,
    /// The kernel in the Winograd domain, where [`super::winograd::applies`].
    winograd: Option<Winograd>,
    /// The kernel as the im2col product's packed (kh * kw * cin) x cout matrix, for an ungrouped
    /// convolution that does not take the Winograd path.
    packed: Option<super::packed::PackedB>,
    bias: Option<Vec<f32>>,
    activation: Activation,
    /// Element-wise layers after this one that it applies itself (see [`super::Post`]).
    post: Vec<super::Post>,
    /// The padded image and taps of the direct path, for a convolution that has `packed`.
    taps: Option<Taps>,
}

/// A convolution computed without writing its im2col rows out: each image is copied once into
/// a zero-padded buffer, and the packed product reads every row's values from it through fixed
/// offsets ([`super::packed::PackedB::mul_taps`]), one output row of pixels per call. Then the
/// bias, the activation and the layers it absorbed are applied to the image's output while it is
/// in the cache. The values and their order are those of the im2col rows, so the outputs are the same
/// bits. Measured on a small CNN's first layer (one input channel, k = 9): writing the rows out
/// and the passes over the whole output took three quarters of the layer's time.
#[derive(Debug, Clone)]
struct Taps {
    /// Height and width of the padded image.
    ph: usize,
    pw: usize,
    /// Offset of value p of an im2col row, (ky, kx, ci) in that order, from the row's first pixel.
    offsets: Vec<usize>,
}

impl Taps {
    /// The taps of an ungrouped convolution, unless padding would make the buffer much larger
    /// than the image (a huge dilated kernel on a `same` input), where im2col is left to it.
    fn new(gy: &AxisGeom, gx: &AxisGeom, cin: usize) -> Option<Taps> {
        let padded =
            |g: &AxisGeom| (g.pad_before + g.input).max((g.output - 1) * g.stride + (g.kernel - 1) * g.dilation + 1);
        let (ph, pw) = (padded(gy), padded(gx));
        if ph * pw > 2 * gy.input * gx.input + 4096 {
            return None;
        }
        let mut offsets = Vec::with_capacity(gy.kernel * gx.kernel * cin);
        for ky in 0..gy.kernel {
            for kx in 0..gx.kernel {
                offsets.extend((0..cin).map(|ci| (ky * gy.dilation * pw + kx * gx.dilation) * cin + ci));
            }
        }
        Some(Taps { ph, pw, offsets })
    }
}

/// Rows of the im2col matrix filled per sgemm call: keeps the buffer near the L2 cache.
const ROW_BLOCK: usize = 1024;

impl Conv2d {
    fn out_len(&self) -> usize {
        self.gy.output * self.gx.output * self.cout
    }

    /// Computes the outputs of `n` images (`x` holds them one after another) into `out`
    /// (n * oh * ow * cout), using `col` as scratch. The im2col rows of all images form one
    /// matrix, cut into blocks of [`ROW_BLOCK`] rows, so a 7x7 layer makes one sgemm call per 20
    /// images. (Measured against one call per image: no difference in CPU time on the shipped
    /// CNN; matrixmultiply's rows do not depend on the block, so the results are the same bits.)
    /// Returns true when the activation and the absorbed layers have been applied too (the
    /// direct and Winograd paths, with an element-wise activation); false when the caller still
    /// has to apply them (im2col, whose separate passes the direct path's test takes as its
    /// reference, and a softmax activation).
    fn run_rows(&self, x: &[f32], n: usize, out: &mut [f32], col: &mut Vec<f32>) -> bool {
        let elementwise = self.activation.is_elementwise();
        if elementwise && self.run_direct(x, n, out, col) {
            return true;
        }
        match &self.winograd {
            Some(w) if elementwise => {
                w.run(x, n, (self.gy, self.gx), out, col, &mut |image| self.finish(image));
                return true;
            }
            Some(w) => w.run(x, n, (self.gy, self.gx), out, col, &mut |_| {}),
            None => self.run_im2col(x, n, out, col),
        }
        if let Some(b) = &self.bias {
            super::fast::add_bias(out, b);
        }
        false
    }

    /// The direct path (see [`Taps`]); false, having written nothing, when the convolution or the
    /// CPU does not take it.
    fn run_direct(&self, x: &[f32], n: usize, out: &mut [f32], pad: &mut Vec<f32>) -> bool {
        let (Some(t), Some(packed)) = (&self.taps, &self.packed) else { return false };
        let (gy, gx, cin) = (self.gy, self.gx, self.cin);
        let in_row = gx.input * cin;
        let out_row = gx.output * self.cout;
        // The borders stay zero: only the image's own pixels are copied in, the same places each time.
        pad.clear();
        pad.resize(t.ph * t.pw * cin, 0.0);
        for (img, image) in x.chunks_exact(gy.input * in_row).take(n).enumerate() {
            for (iy, row) in image.chunks_exact(in_row).enumerate() {
                let at = ((iy + gy.pad_before) * t.pw + gx.pad_before) * cin;
                pad[at..at + in_row].copy_from_slice(row);
            }
            let image_out = &mut out[img * gy.output * out_row..][..gy.output * out_row];
            for (oy, c) in image_out.chunks_exact_mut(out_row).enumerate() {
                let src = &pad[oy * gy.stride * t.pw * cin..];
                if !packed.mul_taps(gx.output, src, gx.stride * cin, &t.offsets, c, self.cout) {
                    return false;
                }
                self.finish(c);
            }
        }
        true
    }

    /// The bias, an element-wise activation and the absorbed layers on whole rows of pixels of
    /// the output (one output row on the direct path, one image on the Winograd path), in that
    /// order ([`super::finish_rows`]: the order of the separate passes, so the same bits).
    fn finish(&self, rows: &mut [f32]) {
        super::finish_rows(rows, self.cout, self.bias.as_deref(), &self.activation, &self.post);
    }

    fn run_im2col(&self, x: &[f32], n: usize, out: &mut [f32], col: &mut Vec<f32>) {
        let (gy, gx) = (self.gy, self.gx);
        let cin_g = self.cin / self.groups;
        let cout_g = self.cout / self.groups;
        let k = gy.kernel * gx.kernel * cin_g;
        let per_image = gy.output * gx.output;
        let in_len = gy.input * gx.input * self.cin;
        let rows = n * per_image;
        let pointwise = gy.kernel == 1 && gx.kernel == 1 && gy.stride == 1 && gx.stride == 1 && self.groups == 1;
        // A kernel with a very long im2col row (a huge kernel on a "same" input) gets fewer rows
        // per block, so the scratch buffer stays near 16 MB whatever the kernel.
        let block = ROW_BLOCK.min((1 << 22) / k.max(1)).max(1);
        for g in 0..self.groups {
            let mut r0 = 0;
            while r0 < rows {
                let r1 = (r0 + block).min(rows);
                let m = r1 - r0;
                let a: &[f32] = if pointwise {
                    &x[r0 * self.cin..r1 * self.cin]
                } else {
                    // Every element of the block is written below (taps in the padding get
                    // zeros), so the buffer is only grown, never cleared.
                    col.resize(m * k, 0.0);
                    let span = gx.kernel * cin_g;
                    // Row r is output pixel (oy, ox) of image img; counted on, not divided out
                    // for every row (the divisions took a third of a small first layer's time).
                    let (mut img, p) = (r0 / per_image, r0 % per_image);
                    let (mut oy, mut ox) = (p / gx.output, p % gx.output);
                    for ri in 0..m {
                        if ri > 0 {
                            ox += 1;
                            if ox == gx.output {
                                ox = 0;
                                oy += 1;
                                if oy == gy.output {
                                    oy = 0;
                                    img += 1;
                                }
                            }
                        }
                        let image = &x[img * in_len..(img + 1) * in_len];
                        let row = &mut col[ri * k..(ri + 1) * k];
                        // With one group and no dilation, a kernel row's taps are one contiguous
                        // run of the input whenever none of them falls in the padding.
                        let first = (ox * gx.stride) as isize - gx.pad_before as isize;
                        let contiguous = self.groups == 1
                            && gx.dilation == 1
                            && first >= 0
                            && first as usize + gx.kernel <= gx.input;
                        for ky in 0..gy.kernel {
                            let dst = &mut row[ky * span..(ky + 1) * span];
                            let Some(iy) = gy.source(oy, ky) else {
                                dst.fill(0.0);
                                continue;
                            };
                            if contiguous {
                                let src = (iy * gx.input + first as usize) * self.cin;
                                dst.copy_from_slice(&image[src..src + span]);
                                continue;
                            }
                            for kx in 0..gx.kernel {
                                let d = &mut dst[kx * cin_g..(kx + 1) * cin_g];
                                match gx.source(ox, kx) {
                                    Some(ix) => {
                                        let src = (iy * gx.input + ix) * self.cin + g * cin_g;
                                        d.copy_from_slice(&image[src..src + cin_g]);
                                    }
                                    None => d.fill(0.0),
                                }
                            }
                        }
                    }
                    col
                };
                let c = &mut out[r0 * self.cout + g * cout_g..];
                match &self.packed {
                    Some(p) => p.mul(m, a, k, c, self.cout),
                    None => {
                        super::matmul::sgemm(m, k, cout_g, a, k, &self.kernel[g * cout_g..], self.cout, c, self.cout)
                    }
                }
                r0 = r1;
            }
        }
    }
}

impl Op for Conv2d {
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let x = inputs[0].as_standard_layout();
        let x = x.as_slice().expect("standard layout");
        let n = inputs[0].shape()[0];
        let mut out = vec![0f32; n * self.out_len()];
        let mut col = Vec::new();
        let applied = self.run_rows(x, n, &mut out, &mut col);
        let mut y = ArrayD::from_shape_vec(IxDyn(&[n, self.gy.output, self.gx.output, self.cout]), out)
            .expect("sizes computed above");
        if !applied {
            self.activation.apply(&mut y);
            super::apply_posts(&self.post, &mut y, self.cout);
        }
        Ok(y)
    }

    fn flops_per_sample(&self) -> u64 {
        (2 * self.gy.output * self.gx.output * self.kernel.len()) as u64
    }

    fn absorb(&mut self, post: &super::Post) -> bool {
        post.absorb_into(&mut self.post, self.cout)
    }
}

pub fn build_conv2d(ctx: &BuildCtx) -> Result<Built> {
    let (h, w, cin) = image_input(ctx)?;
    let (gy, gx, k) = geometry(ctx, h, w, 0)?;
    let dims = kernel_dims(ctx, 0);
    let cout = usize_or_weights(ctx, "filters", dims.map(|d| d[3]))?;
    // A kernel with fewer input channels than the input is a grouped convolution.
    let groups = usize_or_weights(ctx, "groups", dims.filter(|d| d[2] > 0 && cin % d[2] == 0).map(|d| cin / d[2]))?;
    if groups == 0 || cin % groups != 0 || cout % groups != 0 || cout == 0 {
        return Err(err!(
            "layer {}: groups={groups} must divide both the {cin} input channels and the {cout} filters",
            ctx.layer.name
        ));
    }
    let use_bias = expect_kernel_and_bias(ctx)?;
    expect_shape(ctx, &ctx.weights[0], "kernel", &[k[0], k[1], cin / groups, cout])?;
    let bias = optional_bias(ctx, use_bias, 1, cout)?;
    let activation = super::activation::layer_activation(&ctx.layer, "activation")?;
    let kernel: Vec<f32> = ctx.weights[0].array.as_standard_layout().iter().copied().collect();
    let winograd = winograd::applies(&gy, &gx, groups, cin, cout).then(|| Winograd::new(&kernel, cin, cout));
    let packed = (groups == 1 && winograd.is_none())
        .then(|| super::packed::PackedB::new(k[0] * k[1] * cin, cout, &kernel, cout));
    // A 1x1 stride-1 kernel reads its rows in place already.
    let pointwise = k == [1, 1] && gy.stride == 1 && gx.stride == 1;
    let taps = if packed.is_some() && !pointwise { Taps::new(&gy, &gx, cin) } else { None };
    let op = Conv2d { gy, gx, cin, cout, groups, kernel, winograd, packed, bias, activation, post: Vec::new(), taps };
    Ok(Built { output_shape: vec![gy.output, gx.output, cout], op: Box::new(op) })
}

/// DepthwiseConv2D: each input channel convolved with its own `depth_multiplier` filters; output
/// channel `c * depth_multiplier + m`.
pub struct Depthwise {
    gy: AxisGeom,
    gx: AxisGeom,
    cin: usize,
    mult: usize,
    /// (kh, kw, cin, mult) in C order.
    kernel: Vec<f32>,
    bias: Option<Vec<f32>>,
    activation: Activation,
}

impl Depthwise {
    fn cout(&self) -> usize {
        self.cin * self.mult
    }

    fn run_image(&self, x: &[f32], out: &mut [f32]) {
        let (gy, gx) = (self.gy, self.gx);
        let cout = self.cout();
        for oy in 0..gy.output {
            for ox in 0..gx.output {
                let o = &mut out[(oy * gx.output + ox) * cout..][..cout];
                match &self.bias {
                    Some(b) => o.copy_from_slice(b),
                    None => o.fill(0.0),
                }
                for ky in 0..gy.kernel {
                    let Some(iy) = gy.source(oy, ky) else { continue };
                    for kx in 0..gx.kernel {
                        let Some(ix) = gx.source(ox, kx) else { continue };
                        let px = &x[(iy * gx.input + ix) * self.cin..][..self.cin];
                        let kk = &self.kernel[(ky * gx.kernel + kx) * cout..][..cout];
                        if self.mult == 1 {
                            for ((ov, xv), kv) in o.iter_mut().zip(px).zip(kk) {
                                *ov += xv * kv;
                            }
                        } else {
                            for (c, xv) in px.iter().enumerate() {
                                for m in 0..self.mult {
                                    o[c * self.mult + m] += xv * kk[c * self.mult + m];
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    fn forward_raw(&self, x: &Tensor) -> Tensor {
        let x = x.as_standard_layout();
        let xs = x.as_slice().expect("standard layout");
        let n = x.shape()[0];
        let in_len = self.gy.input * self.gx.input * self.cin;
        let out_len = self.gy.output * self.gx.output * self.cout();
        let mut out = vec![0f32; n * out_len];
        for i in 0..n {
            self.run_image(&xs[i * in_len..(i + 1) * in_len], &mut out[i * out_len..(i + 1) * out_len]);
        }
        ArrayD::from_shape_vec(IxDyn(&[n, self.gy.output, self.gx.output, self.cout()]), out)
            .expect("sizes computed above")
    }
}

impl Op for Depthwise {
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let mut y = self.forward_raw(inputs[0]);
        self.activation.apply(&mut y);
        Ok(y)
    }

    fn flops_per_sample(&self) -> u64 {
        (2 * self.gy.output * self.gx.output * self.kernel.len()) as u64
    }
}

fn depthwise_part(ctx: &BuildCtx, kernel_index: usize, bias: Option<Vec<f32>>) -> Result<Depthwise> {
    let (h, w, cin) = image_input(ctx)?;
    let (gy, gx, k) = geometry(ctx, h, w, kernel_index)?;
    let mult = depth_multiplier(ctx, kernel_index)?;
    if mult == 0 {
        return Err(err!("layer {}: depth_multiplier must be at least 1", ctx.layer.name));
    }
    let role = if ctx.layer.class_name == "SeparableConv2D" { "depthwise kernel" } else { "kernel" };
    expect_shape(ctx, &ctx.weights[kernel_index], role, &[k[0], k[1], cin, mult])?;
    let kernel = ctx.weights[kernel_index].array.as_standard_layout().iter().copied().collect();
    Ok(Depthwise { gy, gx, cin, mult, kernel, bias, activation: Activation::linear() })
}

/// `depth_multiplier`: the config's, else the kernel's last axis, else Keras' default of 1.
fn depth_multiplier(ctx: &BuildCtx, kernel_index: usize) -> Result<usize> {
    match kernel_dims(ctx, kernel_index) {
        Some(d) => usize_or_weights(ctx, "depth_multiplier", Some(d[3])),
        None => ctx.layer.usize_or("depth_multiplier", 1),
    }
}

pub fn build_depthwise(ctx: &BuildCtx) -> Result<Built> {
    let use_bias = expect_kernel_and_bias(ctx)?;
    let (_, _, cin) = image_input(ctx)?;
    let mult = depth_multiplier(ctx, 0)?;
    let bias = optional_bias(ctx, use_bias, 1, cin * mult)?;
    let mut op = depthwise_part(ctx, 0, bias)?;
    op.activation = super::activation::layer_activation(&ctx.layer, "activation")?;
    Ok(Built { output_shape: vec![op.gy.output, op.gx.output, op.cout()], op: Box::new(op) })
}

/// SeparableConv2D: a depthwise convolution, then a 1x1 convolution with the bias.
struct Separable {
    depthwise: Depthwise,
    pointwise: Vec<f32>,
    cout: usize,
    bias: Option<Vec<f32>>,
    activation: Activation,
}

impl Op for Separable {
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let d = self.depthwise.forward_raw(inputs[0]);
        let (n, oh, ow, c) = (d.shape()[0], d.shape()[1], d.shape()[2], d.shape()[3]);
        let rows = n * oh * ow;
        let ds = d.as_slice().expect("built in standard layout");
        let mut out = vec![0f32; rows * self.cout];
        super::matmul::sgemm(rows, c, self.cout, ds, c, &self.pointwise, self.cout, &mut out, self.cout);
        if let Some(b) = &self.bias {
            super::fast::add_bias(&mut out, b);
        }
        let mut y = ArrayD::from_shape_vec(IxDyn(&[n, oh, ow, self.cout]), out).expect("sizes computed above");
        self.activation.apply(&mut y);
        Ok(y)
    }

    fn flops_per_sample(&self) -> u64 {
        self.depthwise.flops_per_sample()
            + (2 * self.depthwise.gy.output * self.depthwise.gx.output * self.pointwise.len()) as u64
    }
}

pub fn build_separable(ctx: &BuildCtx) -> Result<Built> {
    let use_bias = ctx.layer.bool_or("use_bias", ctx.weights.len() != 2)?;
    expect_weights(
        ctx,
        if use_bias { &[3] } else { &[2] },
        if use_bias {
            "3 weights (depthwise kernel, pointwise kernel, bias)"
        } else {
            "2 weights (depthwise kernel, pointwise kernel)"
        },
    )?;
    let depthwise = depthwise_part(ctx, 0, None)?;
    let cout = usize_or_weights(ctx, "filters", kernel_dims(ctx, 1).map(|d| d[3]))?;
    expect_shape(ctx, &ctx.weights[1], "pointwise kernel", &[1, 1, depthwise.cout(), cout])?;
    let bias = if use_bias { Some(bias_values(ctx, &ctx.weights[2], "bias", cout)?) } else { None };
    let pointwise = ctx.weights[1].array.as_standard_layout().iter().copied().collect();
    let activation = super::activation::layer_activation(&ctx.layer, "activation")?;
    let shape: Shape = vec![depthwise.gy.output, depthwise.gx.output, cout];
    Ok(Built { output_shape: shape, op: Box::new(Separable { depthwise, pointwise, cout, bias, activation }) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_matches_tensorflow() {
        // 28 with kernel 3 stride 2: output 14, total padding 1, all of it after.
        let g = AxisGeom::new(28, 3, 2, 1, true).unwrap();
        assert_eq!((g.output, g.pad_before), (14, 0));
        let g = AxisGeom::new(28, 5, 1, 1, true).unwrap();
        assert_eq!((g.output, g.pad_before), (28, 2));
        let g = AxisGeom::new(7, 3, 1, 2, false).unwrap();
        assert_eq!(g.output, 3);
        assert!(AxisGeom::new(2, 3, 1, 1, false).is_none());
        assert!(AxisGeom::new(2, 0, 1, 1, false).is_none());
    }

    /// A naive convolution, written from the definition, to compare the im2col path with.
    #[allow(clippy::too_many_arguments)]
    fn naive(
        x: &[f32],
        h: usize,
        w: usize,
        cin: usize,
        k: &[f32],
        kh: usize,
        kw: usize,
        cout: usize,
        gy: AxisGeom,
        gx: AxisGeom,
    ) -> Vec<f32> {
        let mut out = vec![0f32; gy.output * gx.output * cout];
        for oy in 0..gy.output {
            for ox in 0..gx.output {
                for o in 0..cout {
                    let mut s = 0f32;
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let (Some(iy), Some(ix)) = (gy.source(oy, ky), gx.source(ox, kx)) else { continue };
                            for c in 0..cin {
                                s += x[(iy * w + ix) * cin + c] * k[((ky * kw + kx) * cin + c) * cout + o];
                            }
                        }
                    }
                    out[(oy * gx.output + ox) * cout + o] = s;
                }
            }
        }
        let _ = h;
        out
    }

    /// An ungrouped convolution on the im2col path, without bias, activation or absorbed layers.
    fn im2col_conv(gy: AxisGeom, gx: AxisGeom, cin: usize, cout: usize, k: &[f32]) -> Conv2d {
        let (kh, kw) = (gy.kernel, gx.kernel);
        Conv2d {
            gy,
            gx,
            cin,
            cout,
            groups: 1,
            kernel: k.to_vec(),
            winograd: None,
            packed: Some(crate::layers::packed::PackedB::new(kh * kw * cin, cout, k, cout)),
            bias: None,
            activation: Activation::linear(),
            post: Vec::new(),
            taps: None,
        }
    }

    /// Many images in one call (1,200 im2col rows, so a block of [`ROW_BLOCK`] rows ends inside
    /// an image), with a scratch buffer full of NaN left from an earlier call: every output
    /// must equal the definition, which fails if a padded tap is not zeroed or an image's rows
    /// are mixed up with its neighbour's.
    #[test]
    fn im2col_conv_equals_the_definition() {
        let (h, w, cin, cout, kh, kw) = (5, 6, 3, 4, 3, 2);
        let n = 40;
        let x: Vec<f32> = (0..n * h * w * cin).map(|i| ((i * 7919) % 13) as f32 / 13.0 - 0.5).collect();
        let k: Vec<f32> = (0..kh * kw * cin * cout).map(|i| ((i * 104729) % 17) as f32 / 17.0 - 0.5).collect();
        for (stride, same, dil) in [(1, true, 1), (2, true, 1), (1, false, 1), (2, false, 1), (1, true, 2)] {
            let gy = AxisGeom::new(h, kh, stride, dil, same).unwrap();
            let gx = AxisGeom::new(w, kw, stride, dil, same).unwrap();
            let conv = im2col_conv(gy, gx, cin, cout, &k);
            let mut out = vec![f32::NAN; n * conv.out_len()];
            let mut col = vec![f32::NAN; 50_000];
            assert!(!conv.run_rows(&x, n, &mut out, &mut col), "im2col leaves the activation to forward");
            let in_len = h * w * cin;
            for i in 0..n {
                let want = naive(&x[i * in_len..(i + 1) * in_len], h, w, cin, &k, kh, kw, cout, gy, gx);
                let got = &out[i * conv.out_len()..(i + 1) * conv.out_len()];
                for (a, b) in got.iter().zip(&want) {
                    assert!((a - b).abs() < 1e-5, "image {i}, stride {stride} same {same} dilation {dil}: {a} vs {b}");
                }
            }
        }
    }

    /// The direct path gives the im2col path's bits, bias, activation and absorbed layers
    /// included, on every padding, stride and dilation, with a scratch buffer full of NaN left
    /// from an earlier call (a border that is not zeroed shows as NaN). On a CPU without AVX-512F
    /// it declines, and the test checks that instead.
    #[test]
    fn the_direct_path_gives_the_im2col_bits() {
        let (h, w, n) = (7, 9, 5);
        for &(cin, cout, kh, kw) in &[(1, 16, 3, 3), (3, 20, 3, 2), (2, 40, 5, 5), (1, 8, 1, 28)] {
            let x: Vec<f32> = (0..n * h * w * cin).map(|i| ((i * 7919) % 13) as f32 / 13.0 - 0.5).collect();
            let k: Vec<f32> = (0..kh * kw * cin * cout).map(|i| ((i * 104729) % 17) as f32 / 17.0 - 0.5).collect();
            let bias: Vec<f32> = (0..cout).map(|i| i as f32 / 7.0 - 1.0).collect();
            let post = vec![
                crate::layers::Post::Affine {
                    scale: (0..cout).map(|i| 1.5 - i as f32 / 9.0).collect(),
                    shift: (0..cout).map(|i| i as f32 / 11.0 - 0.3).collect(),
                },
                crate::layers::Post::Relu(crate::layers::act_layers::Relu::plain()),
            ];
            for (stride, same, dil) in
                [(1, true, 1), (2, true, 1), (1, false, 1), (2, false, 1), (1, true, 2), (3, true, 1)]
            {
                let (Some(gy), Some(gx)) =
                    (AxisGeom::new(h, kh, stride, dil, same), AxisGeom::new(w, kw, stride, dil, same))
                else {
                    continue;
                };
                for activation in ["linear", "relu", "tanh"] {
                    let mut conv = Conv2d {
                        bias: Some(bias.clone()),
                        activation: Activation::by_name(activation).unwrap(),
                        post: post.clone(),
                        ..im2col_conv(gy, gx, cin, cout, &k)
                    };
                    let input = ArrayD::from_shape_vec(IxDyn(&[n, h, w, cin]), x.clone()).unwrap();
                    let im2col = conv.forward(&[&input]).unwrap();
                    conv.taps = Taps::new(&gy, &gx, cin);
                    assert!(conv.taps.is_some());
                    let mut out = vec![f32::NAN; n * conv.out_len()];
                    let mut col = vec![f32::NAN; 50_000];
                    let case =
                        format!("{cin}->{cout} {kh}x{kw}, stride {stride} same {same} dilation {dil}, {activation}");
                    if !conv.run_rows(&x, n, &mut out, &mut col) {
                        assert!(!std::is_x86_feature_detected!("avx512f"), "{case}: the direct path declined");
                        continue;
                    }
                    let direct = conv.forward(&[&input]).unwrap();
                    assert!(
                        direct.iter().zip(&im2col).all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{case}: the direct path's bits differ from im2col's"
                    );
                    assert!(
                        out.iter().zip(direct.iter()).all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{case}: run_rows and forward differ"
                    );
                }
            }
        }
    }
}
