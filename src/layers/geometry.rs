//! The geometry of images and sliding windows that convolutions, pooling and image reshapes
//! share: one axis's output size and padding as TensorFlow computes them, the `padding` config,
//! and the (height, width, channels) of an image input.

use super::BuildCtx;
use super::core::single_input;
use crate::err;
use crate::error::Result;

/// Output size and padding of one spatial axis, as TensorFlow computes them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AxisGeom {
    pub input: usize,
    pub output: usize,
    pub kernel: usize,
    pub stride: usize,
    pub dilation: usize,
    /// Zero rows added before the input (TF puts the odd extra one after).
    pub pad_before: usize,
}

impl AxisGeom {
    /// `same` padding: output = ceil(input / stride); `valid`: no padding.
    pub fn new(input: usize, kernel: usize, stride: usize, dilation: usize, same: bool) -> Option<AxisGeom> {
        if kernel == 0 || stride == 0 || dilation == 0 {
            return None;
        }
        // Checked: kernel sizes come from the student's config or weights, and a wrapped span
        // would give a plausible-looking output size in a release build.
        let span = (kernel - 1).checked_mul(dilation)?.checked_add(1)?;
        if same {
            let output = input.div_ceil(stride);
            let needed = ((output.max(1) - 1).checked_mul(stride)?.checked_add(span)?).saturating_sub(input);
            (output > 0).then_some(AxisGeom { input, output, kernel, stride, dilation, pad_before: needed / 2 })
        } else {
            (input >= span).then(|| AxisGeom {
                input,
                output: (input - span) / stride + 1,
                kernel,
                stride,
                dilation,
                pad_before: 0,
            })
        }
    }

    /// The kernel taps of output `o` that fall inside the input (the others read padding): a
    /// "same" pooling with a pool_size of 100000 visits only the input's pixels, as Keras does.
    #[inline]
    pub fn taps(&self, o: usize) -> std::ops::Range<usize> {
        let start = o * self.stride;
        let first = self.pad_before.saturating_sub(start).div_ceil(self.dilation);
        let end = (self.input + self.pad_before).saturating_sub(start).div_ceil(self.dilation);
        first.min(self.kernel)..end.min(self.kernel)
    }

    /// The input index read by output `o` and kernel tap `k`, or `None` inside the padding.
    #[inline]
    pub fn source(&self, o: usize, k: usize) -> Option<usize> {
        let i = (o * self.stride + k * self.dilation) as isize - self.pad_before as isize;
        (i >= 0 && (i as usize) < self.input).then_some(i as usize)
    }
}

/// Reads `padding` ("same" or "valid").
pub fn padding_is_same(ctx: &BuildCtx) -> Result<bool> {
    match ctx.layer.str_or("padding", "valid")? {
        "same" => Ok(true),
        "valid" => Ok(false),
        other => Err(err!(
            "layer {} ({}): padding {other:?} is not supported; use \"same\" or \"valid\"",
            ctx.layer.name,
            ctx.layer.class_name
        )),
    }
}

/// The (height, width, channels) of an image input.
pub fn image_input(ctx: &BuildCtx) -> Result<(usize, usize, usize)> {
    match single_input(ctx)?.as_slice() {
        [h, w, c] => Ok((*h, *w, *c)),
        other => Err(err!(
            "layer {} ({}) needs an image input (height, width, channels), but receives {}",
            ctx.layer.name,
            ctx.layer.class_name,
            super::fmt_shape(other)
        )
        .with_hint("add a Reshape((28, 28, 1)) before it, or give the model keras.Input((28, 28, 1))")),
    }
}
