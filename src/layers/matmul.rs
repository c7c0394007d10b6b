//! The general single-precision matrix product, the only code that calls a GEMM crate: grouped
//! convolutions, SeparableConv2D's pointwise step, and [`super::packed::PackedB`]'s fallback on a
//! CPU without AVX-512. [`sgemm`] is a checked, row-major front to `matrixmultiply`, chosen because
//! its result for a row does not depend on how many rows the call has. An image's outputs are then
//! the same bits whether it is scored in a chunk of 64, in the last chunk of 16 or alone by
//! `fmtool predict IMAGE`; `batch_size_does_not_change_a_row` guards this. (The `gemm` crate picks
//! its blocking from the matrix sizes, so its rows may differ between batch sizes.)

/// `c = a * b` for row-major matrices: `a` is `m x k` with row stride `lda`, `b` is `k x n` with
/// row stride `ldb`, `c` is `m x n` with row stride `ldc`. Single-threaded: the engine already
/// runs one chunk of images per core.
///
/// # Panics
/// If a slice is too short for its matrix, or a row stride is shorter than its row; callers build
/// these from the layer's own sizes, so a panic here is a bug in fmtool, never bad input.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(m: usize, k: usize, n: usize, a: &[f32], lda: usize, b: &[f32], ldb: usize, c: &mut [f32], ldc: usize) {
    if m == 0 || n == 0 {
        return;
    }
    check_views(m, k, n, a, lda, b, ldb, c, ldc);
    if k == 0 {
        for row in 0..m {
            c[row * ldc..row * ldc + n].fill(0.0);
        }
        return;
    }
    // SAFETY: check_views keeps every element that the three (rows, stride, cols) views reach
    // inside its slice; `c` is borrowed mutably, so it cannot alias `a` or `b`.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            lda as isize,
            1,
            b.as_ptr(),
            ldb as isize,
            1,
            0.0,
            c.as_mut_ptr(),
            ldc as isize,
            1,
        );
    }
}

/// Panics unless the row-major views `a` (m x k), `b` (k x n) and `c` (m x n) with their row
/// strides lie inside their slices.
#[allow(clippy::too_many_arguments)]
fn check_views(m: usize, k: usize, n: usize, a: &[f32], lda: usize, b: &[f32], ldb: usize, c: &[f32], ldc: usize) {
    let span =
        |rows: usize, stride: usize, cols: usize| if rows == 0 || cols == 0 { 0 } else { (rows - 1) * stride + cols };
    assert!(lda >= k && ldb >= n && ldc >= n, "sgemm: a row stride is shorter than its row");
    assert!(c.len() >= span(m, ldc, n), "sgemm: c is too short");
    assert!(a.len() >= span(m, lda, k) && b.len() >= span(k, ldb, n), "sgemm: an input is too short");
}

#[cfg(test)]
pub mod tests {
    use super::sgemm;

    /// The product against a plain triple loop in float64, on shapes the engine uses (a 7x7
    /// layer's rows, a 1x1 convolution, a Dense layer) and on strided views.
    #[test]
    fn matches_a_naive_product() {
        for &(m, k, n, lda, ldb, ldc) in &[
            (49, 576, 128, 576, 128, 128),
            (3, 5, 7, 9, 8, 10),
            (64, 1152, 256, 1152, 256, 256),
            (1, 784, 10, 784, 10, 10),
        ] {
            let a: Vec<f32> = (0..m * lda).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
            let b: Vec<f32> = (0..k * ldb).map(|i| ((i * 53 % 97) as f32 - 48.0) / 48.0).collect();
            let mut c = vec![f32::NAN; m * ldc];
            sgemm(m, k, n, &a, lda, &b, ldb, &mut c, ldc);
            assert_naive_product((m, k, n), (&a, lda), (&b, ldb), (&c, ldc));
        }
    }

    /// Panics unless `c` (m x n, row stride ldc) is `a * b` within 1e-4 relative, against a
    /// float64 triple loop; shared with `packed.rs`'s tests.
    pub fn assert_naive_product(
        (m, k, n): (usize, usize, usize),
        (a, lda): (&[f32], usize),
        (b, ldb): (&[f32], usize),
        (c, ldc): (&[f32], usize),
    ) {
        for i in 0..m {
            for j in 0..n {
                let want: f64 = (0..k).map(|p| a[i * lda + p] as f64 * b[p * ldb + j] as f64).sum();
                let got = c[i * ldc + j] as f64;
                assert!((got - want).abs() <= 1e-4 * (1.0 + want.abs()), "({m},{k},{n}) [{i},{j}]: {got} vs {want}");
            }
        }
    }

    /// The first rows of a 1,024-row product are bit for bit those of the same rows multiplied
    /// alone or in smaller groups, on the shipped CNN's convolution and Dense shapes and the
    /// course MLP's. `fmtool predict IMAGE` and `fmtool score` agree to the last bit only if so.
    #[test]
    fn batch_size_does_not_change_a_row() {
        for &(k, n) in &[(576, 64), (576, 128), (1152, 256), (784, 1024), (1024, 512), (9, 32)] {
            let a: Vec<f32> = (0..1024 * k).map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 333.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 104729 % 997) as f32 - 498.0) / 777.0).collect();
            let mut full = vec![0f32; 1024 * n];
            sgemm(1024, k, n, &a, k, &b, n, &mut full, n);
            for m in [1, 7, 16, 49, 64, 196, 784] {
                let mut part = vec![0f32; m * n];
                sgemm(m, k, n, &a[..m * k], k, &b, n, &mut part, n);
                assert!(part == full[..m * n], "k={k} n={n}: {m} rows differ from the same rows among 1024");
            }
        }
    }

    #[test]
    fn empty_inner_dimension_gives_zeros() {
        let mut c = vec![f32::NAN; 6];
        sgemm(2, 0, 3, &[], 0, &[], 3, &mut c, 3);
        assert_eq!(c, vec![0.0; 6]);
    }
}
