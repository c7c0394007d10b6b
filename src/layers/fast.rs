//! The engine's element-wise loops, each compiled twice: for the baseline x86-64 that the binary
//! targets (SSE2, so it runs on any student's laptop) and for AVX-512, chosen at run time. The
//! body is one `#[inline(always)]` function, so both versions compute the same float32
//! operations in the same order (the same bits); the AVX-512 one only does 16 at a time. Measured
//! on a small CNN: ReLU, BatchNormalization and pooling passes took a third of its time in SSE.
//! The fused [`epilogue`] is the exception: AVX-512 intrinsics only, the passes elsewhere.

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
            if $crate::layers::fast::wide_cpu() {
                // SAFETY: the CPU has every feature `wide` is compiled for (wide_cpu checks them).
                return unsafe { wide($($a),*) };
            }
        }
        $body($($a),*)
    }};
}
pub(crate) use dispatch;

#[cfg(target_arch = "x86_64")]
pub(crate) fn wide_cpu() -> bool {
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
    if bias.len().is_multiple_of(LANES) {
        for row in xs.chunks_exact_mut(bias.len()) {
            for (v, b) in lanes(row).zip(bias.chunks_exact(LANES)) {
                for (v, b) in v.iter_mut().zip(b) {
                    *v += b;
                }
            }
        }
        return;
    }
    for row in xs.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    }
}

/// Values per AVX-512 register. The loops over rows of channels take rows whose length is a
/// multiple of it 16 at a time through fixed-size arrays, so each step is one vector operation:
/// with the row length known only at run time, a 16- or 32-channel row went through the
/// vectorizer's set-up and remainder code every time (about 9 cycles per 16 values in perf).
const LANES: usize = 16;

/// `xs` (a multiple of [`LANES`] long) as fixed-size runs of [`LANES`] values.
#[inline(always)]
fn lanes(xs: &mut [f32]) -> impl Iterator<Item = &mut [f32; LANES]> {
    xs.chunks_exact_mut(LANES).map(|c| c.try_into().expect("chunks_exact_mut gives LANES values"))
}

/// `v * scale[c] + shift[c]` of every row of `scale.len()` values (two roundings, as
/// BatchNormalization computes it).
pub fn affine(xs: &mut [f32], scale: &[f32], shift: &[f32]) {
    dispatch!(affine_body(xs: &mut [f32], scale: &[f32], shift: &[f32]))
}

#[inline(always)]
fn affine_body(xs: &mut [f32], scale: &[f32], shift: &[f32]) {
    if scale.len().is_multiple_of(LANES) {
        for row in xs.chunks_exact_mut(scale.len()) {
            for ((v, s), b) in lanes(row).zip(scale.chunks_exact(LANES)).zip(shift.chunks_exact(LANES)) {
                for ((v, s), b) in v.iter_mut().zip(s).zip(b) {
                    *v = *v * s + b;
                }
            }
        }
        return;
    }
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

/// A layer's element-wise steps on rows of channels, in this order, each optional: its bias
/// (`v + bias[c]`, [`add_bias`]), the relu activation (`max(v, 0)`, [`relu`]), an absorbed
/// BatchNormalization (`v * scale[c] + shift[c]`, [`affine`]) and an absorbed ReLU layer with
/// Keras' defaults ([`relu_layer`]). The sequence a convolution or Dense followed by
/// BatchNormalization and ReLU needs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Epilogue<'a> {
    pub bias: Option<&'a [f32]>,
    pub relu: bool,
    pub affine: Option<(&'a [f32], &'a [f32])>,
    pub relu_layer: bool,
}

/// Applies `e` to every row of `c` values of `xs` in one pass: each run of 16 values goes through
/// every step in a register and is stored once. The same operations in the same order as the
/// separate passes, so the same bits (`the_epilogue_gives_the_passes_bits` checks, NaN, -0.0 and
/// infinities included). Measured on a small CNN: the bias, BatchNormalization and ReLU as three
/// passes took a seventh of its time, about 4 cycles per 16 values each with the values in the
/// cache. Written with AVX-512 intrinsics: the same loop over fixed-size arrays came out of the
/// compiler as scalar shuffles, slower than the passes. False, doing nothing, when the CPU lacks
/// AVX-512, `c` is not a multiple of 16 or a parameter does not have `c` values (the caller then
/// makes the passes).
pub fn epilogue(xs: &mut [f32], c: usize, e: &Epilogue) -> bool {
    let fits = |v: &[f32]| v.len() == c;
    let ok =
        c > 0 && c.is_multiple_of(LANES) && e.bias.is_none_or(fits) && e.affine.is_none_or(|(a, b)| fits(a) && fits(b));
    #[cfg(target_arch = "x86_64")]
    if ok && wide_cpu() {
        // SAFETY: the CPU has AVX-512F (wide_cpu), and every parameter holds `c` values (checked).
        unsafe { epilogue_avx512(xs, c, e) };
        return true;
    }
    false
}

/// [`epilogue`] on an AVX-512 CPU.
///
/// # Safety
/// The CPU has AVX-512F; `c` is a multiple of 16 and every parameter of `e` holds `c` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn epilogue_avx512(xs: &mut [f32], c: usize, e: &Epilogue) {
    use std::arch::x86_64::*;
    let zero = _mm512_setzero_ps();
    // Holding a 16- or 32-channel row's parameters in registers instead of loading them for each
    // run was tried: the same time (50 ns for a 28-pixel row of 16 channels, 1M repetitions).
    for row in xs.chunks_exact_mut(c) {
        for j in (0..c).step_by(LANES) {
            // SAFETY: j + 16 <= c: inside `row` and inside every parameter.
            unsafe {
                let load = |v: &[f32]| _mm512_loadu_ps(v.as_ptr().add(j));
                let p = row.as_mut_ptr().add(j);
                let mut x = _mm512_loadu_ps(p);
                if let Some(b) = e.bias {
                    x = _mm512_add_ps(x, load(b));
                }
                if e.relu {
                    // max(x, 0): 0 for a NaN and for -0.0, as `relu` gives.
                    x = _mm512_max_ps(x, zero);
                }
                if let Some((a, b)) = e.affine {
                    x = _mm512_add_ps(_mm512_mul_ps(x, load(a)), load(b));
                }
                if e.relu_layer {
                    // x where x >= 0, else 0 * x (a NaN stays NaN), as `relu_layer` gives.
                    let keep = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(x, zero);
                    x = _mm512_mask_mul_ps(x, !keep, x, zero);
                }
                _mm512_storeu_ps(p, x);
            }
        }
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
    if c.is_multiple_of(LANES) {
        for (oy, out_row) in out.chunks_exact_mut(ow * c).enumerate() {
            for (ox, o) in out_row.chunks_exact_mut(c).enumerate() {
                for (l, o) in lanes(o).enumerate() {
                    o.fill(f32::NEG_INFINITY);
                    for ky in 0..k.0 {
                        let row = (oy * s.0 + ky) * w + ox * s.1;
                        for kx in 0..k.1 {
                            let v: &[f32; LANES] =
                                img[(row + kx) * c + l * LANES..][..LANES].try_into().expect("LANES values");
                            for (a, v) in o.iter_mut().zip(v) {
                                *a = a.max(*v);
                            }
                        }
                    }
                }
            }
        }
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

    /// Values that tell the steps apart: NaN, both zeros, infinities, and numbers of both signs.
    fn awkward(len: usize) -> Vec<f32> {
        let special = [f32::NAN, -0.0, 0.0, f32::INFINITY, f32::NEG_INFINITY, -1e-30, 3.5];
        (0..len).map(|i| if i % 5 == 0 { special[i / 5 % special.len()] } else { (i as f32 - 40.0) * 0.37 }).collect()
    }

    fn same_bits(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
    }

    /// Rows of 16, 32 and 48 channels, every combination of steps: the fused pass gives the bits
    /// of the passes one by one.
    #[test]
    fn the_epilogue_gives_the_passes_bits() {
        for c in [16, 32, 48] {
            let xs = awkward(3 * c);
            let bias: Vec<f32> = awkward(c + 3)[3..].to_vec();
            let scale: Vec<f32> = (0..c).map(|i| if i == 7 { -0.0 } else { (i as f32 - 5.0) * 0.3 }).collect();
            let shift: Vec<f32> = (0..c).map(|i| if i == 9 { f32::NAN } else { 1.0 - i as f32 * 0.1 }).collect();
            for mask in 0..16 {
                let e = super::Epilogue {
                    bias: (mask & 1 != 0).then_some(&bias[..]),
                    relu: mask & 2 != 0,
                    affine: (mask & 4 != 0).then_some((&scale[..], &shift[..])),
                    relu_layer: mask & 8 != 0,
                };
                let mut want = xs.clone();
                if let Some(b) = e.bias {
                    super::add_bias(&mut want, b);
                }
                if e.relu {
                    super::relu(&mut want);
                }
                if let Some((a, b)) = e.affine {
                    super::affine(&mut want, a, b);
                }
                if e.relu_layer {
                    super::relu_layer(&mut want);
                }
                let mut got = xs.clone();
                if !super::epilogue(&mut got, c, &e) {
                    assert!(!super::wide_cpu(), "an AVX-512 CPU takes the fused pass");
                    continue;
                }
                assert!(same_bits(&got, &want), "{c} channels, steps {mask:04b}:\n{got:?}\n{want:?}");
            }
        }
    }

    #[test]
    fn the_epilogue_refuses_rows_it_does_not_fit() {
        let mut xs = vec![1.0f32; 48];
        let (b8, b16) = (vec![0.5f32; 8], vec![0.5f32; 16]);
        let e = |b| super::Epilogue { bias: Some(b), ..Default::default() };
        assert!(!super::epilogue(&mut xs, 8, &e(&b8)), "8 channels are not a run of 16");
        assert!(!super::epilogue(&mut xs, 24, &e(&b16)), "a bias of 16 values on rows of 24");
        assert!(xs.iter().all(|v| *v == 1.0), "a refused epilogue writes nothing");
    }

    /// The loops' 16-at-a-time paths (rows of 16 and 32 channels) against the same formulas.
    #[test]
    fn loops_on_rows_of_16_channels_compute_their_formulas() {
        for c in [16, 32] {
            let xs = awkward(4 * c);
            let scale: Vec<f32> = (0..c).map(|i| (i as f32 - 5.0) * 0.3).collect();
            let shift: Vec<f32> = (0..c).map(|i| 1.0 - i as f32 * 0.1).collect();
            let mut a = xs.clone();
            super::affine(&mut a, &scale, &shift);
            let want: Vec<f32> = xs.iter().enumerate().map(|(i, x)| x * scale[i % c] + shift[i % c]).collect();
            assert!(same_bits(&a, &want), "affine, {c} channels");
            let mut b = xs.clone();
            super::add_bias(&mut b, &shift);
            let want: Vec<f32> = xs.iter().enumerate().map(|(i, x)| x + shift[i % c]).collect();
            assert!(same_bits(&b, &want), "add_bias, {c} channels");
            // A 3x3 image pooled by 2x2 windows with stride 1: NaN taps are passed over.
            let img = awkward(9 * c);
            let mut out = vec![0f32; 4 * c];
            super::max_pool(&img, 3, c, &mut out, 2, (2, 2), (1, 1));
            for (o, got) in out.iter().enumerate() {
                let (oy, ox, ch) = (o / c / 2, o / c % 2, o % c);
                let want = (0..2)
                    .flat_map(|ky| (0..2).map(move |kx| ((oy + ky) * 3 + ox + kx) * c + ch))
                    .map(|i| img[i])
                    .fold(f32::NEG_INFINITY, f32::max);
                assert!(same_bits(&[*got], &[want]), "max_pool, {c} channels, output {o}: {got} vs {want}");
            }
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
