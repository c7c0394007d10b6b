//! The engine's element-wise loops, each compiled twice: for the baseline x86-64 that the binary
//! targets (SSE2, so it runs on any student's laptop) and for AVX-512, chosen at run time. The
//! body is one `#[inline(always)]` function, so both versions compute the same float32
//! operations in the same order (the same bits); the AVX-512 one only does 16 at a time. Measured
//! on a small CNN: ReLU, BatchNormalization and pooling passes took a third of its time in SSE.

/// Calls `$body` (an `#[inline(always)]` function) through a copy compiled for AVX-512 when the
/// CPU has it, else directly (the baseline build).
macro_rules! dispatch {
    ($body:ident($($a:ident: $t:ty),*)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
            unsafe fn wide($($a: $t),*) {
                $body($($a),*)
            }
            if wide_cpu() {
                // SAFETY: the CPU has every feature `wide` is compiled for (wide_cpu checks them).
                return unsafe { wide($($a),*) };
            }
        }
        $body($($a),*)
    }};
}

#[cfg(target_arch = "x86_64")]
fn wide_cpu() -> bool {
    std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512vl")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512dq")
        && std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("fma")
}

/// `max(x, 0)` of every value (the `relu` activation).
pub fn relu(xs: &mut [f32]) {
    dispatch!(relu_body(xs: &mut [f32]))
}

#[inline(always)]
fn relu_body(xs: &mut [f32]) {
    for v in xs {
        *v = v.max(0.0);
    }
}

/// Adds `bias` to every row of `bias.len()` values.
pub fn add_bias(xs: &mut [f32], bias: &[f32]) {
    dispatch!(add_bias_body(xs: &mut [f32], bias: &[f32]))
}

#[inline(always)]
fn add_bias_body(xs: &mut [f32], bias: &[f32]) {
    for row in xs.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    }
}

/// `v * scale[c] + shift[c]` of every row of `scale.len()` values (two roundings, as
/// BatchNormalization computes it).
pub fn affine(xs: &mut [f32], scale: &[f32], shift: &[f32]) {
    dispatch!(affine_body(xs: &mut [f32], scale: &[f32], shift: &[f32]))
}

#[inline(always)]
fn affine_body(xs: &mut [f32], scale: &[f32], shift: &[f32]) {
    for row in xs.chunks_exact_mut(scale.len()) {
        for ((v, s), b) in row.iter_mut().zip(scale).zip(shift) {
            *v = *v * s + b;
        }
    }
}

/// Keras' ReLU layer with its defaults: `x` when `x >= 0`, else `0 * x` (which keeps a NaN a NaN,
/// unlike `max`).
pub fn relu_layer(xs: &mut [f32]) {
    dispatch!(relu_layer_body(xs: &mut [f32]))
}

#[inline(always)]
fn relu_layer_body(xs: &mut [f32]) {
    for v in xs {
        *v = if *v >= 0.0 { *v } else { 0.0 * *v };
    }
}

/// `p / 255` of every pixel, in float32 (the grader's scaling), into a new vector (not zeroed
/// first). Divided four at a time (the baseline build), the pixels took 7.4% of a small MLP's
/// forward pass in perf; divided sixteen at a time, 5.5%; so AVX-512 CPUs take [`pixels_fma`].
pub fn pixels(src: &[u8]) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    if wide_cpu() {
        // SAFETY: the CPU has every feature `pixels_fma` is compiled for.
        return unsafe { pixels_fma(src) };
    }
    pixels_body(src)
}

fn pixels_body(src: &[u8]) -> Vec<f32> {
    src.iter().map(|p| *p as f32 / 255.0).collect()
}

/// `p / 255` without a division: `q = p * (1/255)`, then one correction step with fused
/// multiply-adds, `q + (p - 255 q) * (1/255)`. For every one of the 256 pixel values this is the
/// correctly rounded quotient, the same bits as the division (`pixels_are_divided_by_255` checks
/// all of them); it is not a general division.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
fn pixels_fma(src: &[u8]) -> Vec<f32> {
    const INV: f32 = 1.0 / 255.0;
    src.iter()
        .map(|p| {
            let p = *p as f32;
            let q = p * INV;
            (-q).mul_add(255.0, p).mul_add(INV, q)
        })
        .collect()
}

/// Max pooling without padding: `out[oy][ox][c]` is the largest of its `ky x kx` window of `img`
/// (`h x w x c`; every window inside it), starting from -inf (so NaN taps are passed over).
#[allow(clippy::too_many_arguments)]
pub fn max_pool(
    img: &[f32],
    w: usize,
    c: usize,
    out: &mut [f32],
    ow: usize,
    k: (usize, usize),
    stride: (usize, usize),
) {
    dispatch!(max_pool_body(img: &[f32], w: usize, c: usize, out: &mut [f32], ow: usize, k: (usize, usize), stride: (usize, usize)))
}

#[inline(always)]
fn max_pool_body(img: &[f32], w: usize, c: usize, out: &mut [f32], ow: usize, k: (usize, usize), s: (usize, usize)) {
    // Row by row, not (oy, ox) divided out of each pixel's index: the division took most of a
    // small CNN's pooling time.
    if ow * c == 0 {
        return;
    }
    for (oy, out_row) in out.chunks_exact_mut(ow * c).enumerate() {
        for (ox, o) in out_row.chunks_exact_mut(c).enumerate() {
            o.fill(f32::NEG_INFINITY);
            for ky in 0..k.0 {
                let row = (oy * s.0 + ky) * w + ox * s.1;
                for kx in 0..k.1 {
                    for (a, v) in o.iter_mut().zip(&img[(row + kx) * c..][..c]) {
                        *a = a.max(*v);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// Each loop against its plain formula, on lengths that leave partial vectors, with NaN, -0.0
    /// and infinities among the values.
    #[test]
    fn loops_compute_their_formulas() {
        let xs: Vec<f32> = (0..67).map(|i| (i as f32 - 33.0) * 0.37).chain([f32::NAN, -0.0, f32::INFINITY]).collect();
        let mut r = xs.clone();
        super::relu(&mut r);
        assert!(r.iter().zip(&xs).all(|(a, x)| a.to_bits() == x.max(0.0).to_bits()));
        let mut l = xs.clone();
        super::relu_layer(&mut l);
        for (a, x) in l.iter().zip(&xs) {
            let want = if *x >= 0.0 { *x } else { 0.0 * x };
            assert!(a.to_bits() == want.to_bits() || (a.is_nan() && want.is_nan()), "{x}: {a} vs {want}");
        }
        let (scale, shift) = ([0.5, -2.0, 3.0, 1.0, 0.25], [1.0, 0.0, -1.0, 2.0, 0.5]);
        let mut a = xs[..65].to_vec();
        super::affine(&mut a, &scale, &shift);
        for (i, (got, x)) in a.iter().zip(&xs).enumerate() {
            assert_eq!(got.to_bits(), (x * scale[i % 5] + shift[i % 5]).to_bits());
        }
        let mut b = xs[..65].to_vec();
        super::add_bias(&mut b, &shift);
        for (i, (got, x)) in b.iter().zip(&xs).enumerate() {
            assert_eq!(got.to_bits(), (x + shift[i % 5]).to_bits());
        }
    }

    #[test]
    fn pixels_are_divided_by_255() {
        // Every pixel value, then some again (a length that leaves a partial vector).
        let src: Vec<u8> = (0..=255).chain(0..=40).collect();
        for (path, dst) in [("pixels", super::pixels(&src)), ("pixels_body", super::pixels_body(&src))] {
            assert_eq!(dst.len(), src.len());
            for (d, p) in dst.iter().zip(&src) {
                assert_eq!(d.to_bits(), (*p as f32 / 255.0).to_bits(), "{path}: pixel {p}");
            }
        }
    }

    #[test]
    fn max_pool_takes_the_largest_of_each_window() {
        // A 5x5 image of 3 channels, 2x2 windows with stride 2: a 2x2 output (the last row and
        // column of the input are not covered, as in valid pooling).
        let img: Vec<f32> = (0..75).map(|i| ((i * 37) % 41) as f32).collect();
        let mut out = vec![0f32; 12];
        super::max_pool(&img, 5, 3, &mut out, 2, (2, 2), (2, 2));
        for oy in 0..2 {
            for ox in 0..2 {
                for ch in 0..3 {
                    let want = (0..2)
                        .flat_map(|ky| (0..2).map(move |kx| ((2 * oy + ky) * 5 + 2 * ox + kx) * 3 + ch))
                        .map(|i| img[i])
                        .fold(f32::NEG_INFINITY, f32::max);
                    assert_eq!(out[(oy * 2 + ox) * 3 + ch], want);
                }
            }
        }
    }
}
