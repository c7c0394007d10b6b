//! Winograd F(2x2, 3x3) convolution, Conv2D's fast path for 3x3 kernels with stride 1, no
//! dilation and one group: each 2x2 block of outputs comes from a 4x4 input tile with 16
//! products per channel pair instead of 36, as 16 matrix products (tiles x cin) * (cin x cout).
//! Results differ from the direct sum only by float32 rounding (tested against the definition),
//! and a tile's result never depends on the other tiles in its block, so an image's outputs are
//! the same bits whatever batch it is scored in.

use super::geometry::AxisGeom;

/// Tiles transformed and multiplied per block (the block's two matrices stay near the L2 cache).
const TILE_BLOCK: usize = 256;

/// A Conv2D kernel in the Winograd domain.
pub struct Winograd {
    cin: usize,
    cout: usize,
    /// `G g Gᵀ` of every (input, output) channel pair: 16 matrices `cin x cout`, matrix `4r + c`
    /// holding element (r, c) of the 4x4 transformed kernels, packed for the product.
    u: Vec<super::packed::PackedB>,
}

/// True when [`Winograd`] computes this convolution: 3x3 kernels, stride 1, no dilation, one
/// group, and enough channels that 16 small products beat one im2col product (the first layer of
/// a model, with one input channel, stays on im2col).
pub fn applies(gy: &AxisGeom, gx: &AxisGeom, groups: usize, cin: usize, cout: usize) -> bool {
    let three = |g: &AxisGeom| g.kernel == 3 && g.stride == 1 && g.dilation == 1;
    three(gy) && three(gx) && groups == 1 && cin >= 8 && cout >= 8
}

impl Winograd {
    /// Transforms a Keras kernel `(3, 3, cin, cout)` in C order (computed in float64, rounded once).
    pub fn new(kernel: &[f32], cin: usize, cout: usize) -> Winograd {
        assert_eq!(kernel.len(), 9 * cin * cout, "a 3x3 kernel");
        let mut u = vec![0f32; 16 * cin * cout];
        // G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]], applied to rows, then columns.
        let g4 = |a: f64, b: f64, c: f64| [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
        for ci in 0..cin {
            for o in 0..cout {
                let g = |ky: usize, kx: usize| kernel[((ky * 3 + kx) * cin + ci) * cout + o] as f64;
                let cols: Vec<[f64; 4]> = (0..3).map(|kx| g4(g(0, kx), g(1, kx), g(2, kx))).collect();
                for r in 0..4 {
                    let row = g4(cols[0][r], cols[1][r], cols[2][r]);
                    for (c, v) in row.iter().enumerate() {
                        u[((r * 4 + c) * cin + ci) * cout + o] = *v as f32;
                    }
                }
            }
        }
        let u = (0..16).map(|xi| super::packed::PackedB::new(cin, cout, &u[xi * cin * cout..], cout)).collect();
        Winograd { cin, cout, u }
    }

    /// Computes `n` images (`x` holds them one after another, each `gy.input x gx.input x cin`)
    /// into `out` (`n x gy.output x gx.output x cout`), with `scratch` as working memory, and
    /// hands each image's outputs to `finish` as soon as its last tile is written, while they are
    /// still in the cache (the caller's bias, activation and absorbed layers: as separate passes
    /// over a chunk's outputs they took a sixth of a small CNN's time). Compiled for AVX-512 too
    /// (see [`super::fast`]): the transforms are additions, the same bits at any width; on the
    /// baseline build they took a fifth of the same CNN's time.
    pub fn run(
        &self,
        x: &[f32],
        n: usize,
        g: (AxisGeom, AxisGeom),
        out: &mut [f32],
        scratch: &mut Vec<f32>,
        finish: &mut dyn FnMut(&mut [f32]),
    ) {
        let w = self;
        super::fast::dispatch!(run_body(
            w: &Winograd,
            x: &[f32],
            n: usize,
            g: (AxisGeom, AxisGeom),
            out: &mut [f32],
            scratch: &mut Vec<f32>,
            finish: &mut dyn FnMut(&mut [f32])
        ))
    }
}

/// [`Winograd::run`]'s body.
#[inline(always)]
fn run_body(
    w: &Winograd,
    x: &[f32],
    n: usize,
    (gy, gx): (AxisGeom, AxisGeom),
    out: &mut [f32],
    scratch: &mut Vec<f32>,
    finish: &mut dyn FnMut(&mut [f32]),
) {
    let (cin, cout) = (w.cin, w.cout);
    let (th, tw) = (gy.output.div_ceil(2), gx.output.div_ceil(2));
    let per_image = th * tw;
    let tiles = n * per_image;
    // Tile i: its image, and the top-left output pixel of its 2x2 block.
    let origin = |i: usize| (i / per_image, 2 * (i % per_image / tw), 2 * (i % per_image % tw));
    let in_len = gy.input * gx.input * cin;
    let out_len = gy.output * gx.output * cout;
    let zeros = vec![0f32; cin];
    // v: per tile, its 16 transformed input vectors [16][cin]; m: its 16 products [16][cout];
    // t: one tile's half-transformed values.
    let (vlen, mlen) = (TILE_BLOCK * 16 * cin, TILE_BLOCK * 16 * cout);
    scratch.resize(vlen + mlen + 16 * cin.max(cout), 0.0);
    let (v, rest) = scratch.split_at_mut(vlen);
    let (m, t) = rest.split_at_mut(mlen);
    let (mut t0, mut finished) = (0, 0);
    while t0 < tiles {
        let nb = (tiles - t0).min(TILE_BLOCK);
        for bi in 0..nb {
            let (img, y0, x0) = origin(t0 + bi);
            let image = &x[img * in_len..(img + 1) * in_len];
            let px = |r: usize, c: usize| -> &[f32] {
                let iy = (y0 + r).wrapping_sub(gy.pad_before);
                let ix = (x0 + c).wrapping_sub(gx.pad_before);
                if iy < gy.input && ix < gx.input { &image[(iy * gx.input + ix) * cin..][..cin] } else { &zeros }
            };
            // Bᵀ d B: Bᵀ down each column c (into t[c][r]), then across each row r.
            for c in 0..4 {
                input_1d(px(0, c), px(1, c), px(2, c), px(3, c), &mut t[c * 4 * cin..(c + 1) * 4 * cin]);
            }
            let vt = &mut v[bi * 16 * cin..(bi + 1) * 16 * cin];
            for r in 0..4 {
                let at = |c: usize| &t[(c * 4 + r) * cin..][..cin];
                input_1d(at(0), at(1), at(2), at(3), &mut vt[r * 4 * cin..(r + 1) * 4 * cin]);
            }
        }
        for (xi, u) in w.u.iter().enumerate() {
            // A row's result does not depend on how many rows the product has (PackedB), so
            // a tile's result cannot depend on `nb`.
            u.mul(nb, &v[xi * cin..], 16 * cin, &mut m[xi * cout..], 16 * cout);
        }
        for bi in 0..nb {
            let (img, y0, x0) = origin(t0 + bi);
            let mt = &m[bi * 16 * cout..(bi + 1) * 16 * cout];
            let at = |r: usize, c: usize| &mt[(r * 4 + c) * cout..][..cout];
            // Aᵀ M A: Aᵀ down each column (into t[c][0..2]), then across the two rows.
            for c in 0..4 {
                output_1d(at(0, c), at(1, c), at(2, c), at(3, c), &mut t[c * 2 * cout..(c + 1) * 2 * cout]);
            }
            let image = &mut out[img * out_len..(img + 1) * out_len];
            for a in 0..2 {
                if y0 + a >= gy.output {
                    continue;
                }
                let s = |c: usize| &t[(c * 2 + a) * cout..][..cout];
                let row = &mut image[((y0 + a) * gx.output + x0) * cout..];
                if x0 + 1 < gx.output {
                    output_1d(s(0), s(1), s(2), s(3), &mut row[..2 * cout]);
                } else {
                    let (first, _) = row.split_at_mut(cout);
                    for (i, o) in first.iter_mut().enumerate() {
                        *o = s(0)[i] + s(1)[i] + s(2)[i];
                    }
                }
            }
        }
        t0 += nb;
        // Tiles run image by image, so every image before the next tile's is complete.
        let complete = if t0 == tiles { n } else { t0 / per_image };
        for image in out.chunks_exact_mut(out_len).take(complete).skip(finished) {
            finish(image);
        }
        finished = complete;
    }
}

/// Bᵀ on one line of a tile, a channel vector at a time: (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
/// into the four consecutive vectors of `out`.
#[inline]
fn input_1d(d0: &[f32], d1: &[f32], d2: &[f32], d3: &[f32], out: &mut [f32]) {
    let n = d0.len();
    let (d1, d2, d3) = (&d1[..n], &d2[..n], &d3[..n]);
    let (o0, rest) = out.split_at_mut(n);
    let (o1, rest) = rest.split_at_mut(n);
    let (o2, o3) = rest.split_at_mut(n);
    let o3 = &mut o3[..n];
    for i in 0..n {
        o0[i] = d0[i] - d2[i];
        o1[i] = d1[i] + d2[i];
        o2[i] = d2[i] - d1[i];
        o3[i] = d1[i] - d3[i];
    }
}

/// Aᵀ on one line: (m0 + m1 + m2, m1 - m2 - m3) into the two consecutive vectors of `out`.
#[inline]
fn output_1d(m0: &[f32], m1: &[f32], m2: &[f32], m3: &[f32], out: &mut [f32]) {
    let n = m0.len();
    let (m1, m2, m3) = (&m1[..n], &m2[..n], &m3[..n]);
    let (o0, o1) = out.split_at_mut(n);
    let o1 = &mut o1[..n];
    for i in 0..n {
        o0[i] = m0[i] + m1[i] + m2[i];
        o1[i] = m1[i] - m2[i] - m3[i];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The convolution from its definition, in float64: `x` one image (h, w, cin), `k` (3, 3, cin, cout).
    fn definition(x: &[f32], k: &[f32], cin: usize, cout: usize, gy: AxisGeom, gx: AxisGeom) -> Vec<f64> {
        let mut out = vec![0f64; gy.output * gx.output * cout];
        for oy in 0..gy.output {
            for ox in 0..gx.output {
                for ky in 0..3 {
                    for kx in 0..3 {
                        let (Some(iy), Some(ix)) = (gy.source(oy, ky), gx.source(ox, kx)) else { continue };
                        for c in 0..cin {
                            let xv = x[(iy * gx.input + ix) * cin + c] as f64;
                            for o in 0..cout {
                                out[(oy * gx.output + ox) * cout + o] +=
                                    xv * k[((ky * 3 + kx) * cin + c) * cout + o] as f64;
                            }
                        }
                    }
                }
            }
        }
        out
    }

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len).map(|i| (((i + seed) * 7919) % 2003) as f32 / 2003.0 - 0.5).collect()
    }

    /// Even and odd sizes (a last tile that hangs over the edge), same and valid padding, and
    /// enough images that blocks of TILE_BLOCK tiles end inside an image; the scratch buffer
    /// starts full of NaN, so a value read before it is written shows up.
    #[test]
    fn winograd_equals_the_definition() {
        for (h, w, cin, cout, same) in
            [(14, 14, 16, 8, true), (7, 7, 8, 24, true), (9, 6, 8, 8, false), (5, 8, 12, 16, true)]
        {
            let gy = AxisGeom::new(h, 3, 1, 1, same).unwrap();
            let gx = AxisGeom::new(w, 3, 1, 1, same).unwrap();
            assert!(applies(&gy, &gx, 1, cin, cout));
            let n = 2 * TILE_BLOCK / (gy.output.div_ceil(2) * gx.output.div_ceil(2)) + 3;
            let x = values(n * h * w * cin, 1);
            let k = values(9 * cin * cout, 2);
            let out_len = gy.output * gx.output * cout;
            let mut out = vec![f32::NAN; n * out_len];
            let mut scratch = vec![f32::NAN; 1000];
            Winograd::new(&k, cin, cout).run(&x, n, (gy, gx), &mut out, &mut scratch, &mut |_| {});
            for i in 0..n {
                let want = definition(&x[i * h * w * cin..(i + 1) * h * w * cin], &k, cin, cout, gy, gx);
                for (j, (a, b)) in out[i * out_len..(i + 1) * out_len].iter().zip(&want).enumerate() {
                    let tol = 1e-5 * (1.0 + b.abs());
                    assert!(((*a as f64) - b).abs() <= tol, "{h}x{w} same {same}, image {i}, value {j}: {a} vs {b}");
                }
            }
        }
    }

    /// `finish` gets every image once, in order, after its last tile: what it sees is the
    /// image's final output, and what it writes stays (blocks of TILE_BLOCK tiles end inside
    /// images here).
    #[test]
    fn each_image_is_finished_once_when_complete() {
        let (h, cin, cout) = (7, 8, 16);
        let g = AxisGeom::new(h, 3, 1, 1, true).unwrap();
        let conv = Winograd::new(&values(9 * cin * cout, 5), cin, cout);
        let n = 2 * TILE_BLOCK / 16 + 5;
        let x = values(n * h * h * cin, 6);
        let out_len = h * h * cout;
        let mut plain = vec![0f32; n * out_len];
        conv.run(&x, n, (g, g), &mut plain, &mut Vec::new(), &mut |_| {});
        let mut seen = Vec::new();
        let mut out = vec![0f32; n * out_len];
        conv.run(&x, n, (g, g), &mut out, &mut Vec::new(), &mut |image| {
            seen.push(image.to_vec());
            image.iter_mut().for_each(|v| *v += 1.0);
        });
        assert_eq!(seen.len(), n, "one call per image");
        for (i, s) in seen.iter().enumerate() {
            let want = &plain[i * out_len..(i + 1) * out_len];
            assert!(s.iter().zip(want).all(|(a, b)| a.to_bits() == b.to_bits()), "image {i} was not complete");
            let kept = out[i * out_len..(i + 1) * out_len].iter().zip(want).all(|(a, b)| *a == b + 1.0);
            assert!(kept, "image {i}: what finish wrote was overwritten");
        }
    }

    /// An image's outputs are the same bits alone and at any place in a batch (here the batch
    /// spans three blocks and the image sits across a block boundary), which keeps `fmtool
    /// predict IMAGE` equal to `fmtool score`.
    #[test]
    fn an_image_gets_the_same_bits_in_any_batch() {
        // The shipped CNN's layers (14x14 and 7x7), and a 2x2 image: one tile alone in its call.
        for (h, cin, cout, n) in [(14, 32, 64, 16), (7, 64, 128, 40), (2, 16, 16, 300)] {
            let g = AxisGeom::new(h, 3, 1, 1, true).unwrap();
            let conv = Winograd::new(&values(9 * cin * cout, 3), cin, cout);
            let x = values(n * h * h * cin, 4);
            let (in_len, out_len) = (h * h * cin, h * h * cout);
            let mut batch = vec![0f32; n * out_len];
            conv.run(&x, n, (g, g), &mut batch, &mut Vec::new(), &mut |_| {});
            for i in [0, n / 3, n - 1] {
                let mut alone = vec![0f32; out_len];
                conv.run(&x[i * in_len..(i + 1) * in_len], 1, (g, g), &mut alone, &mut Vec::new(), &mut |_| {});
                let same = alone.iter().zip(&batch[i * out_len..]).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{h}x{h}: image {i} differs between a batch of {n} and a batch of 1");
            }
        }
    }
}
