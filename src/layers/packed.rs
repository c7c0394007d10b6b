//! A matrix product `c = a * b` whose `b` is a layer's weights, packed once when the layer is
//! built: column panels of 16 (one AVX-512 register) laid out row after row, so the kernel reads
//! them in order. On a CPU with AVX-512F the kernel holds a block of up to 12 rows x 32 columns
//! of `c` in 24 registers and streams `a` and the panels from the cache: the course MLP's Dense
//! layers run at about twice `matrixmultiply`'s speed (its x86 kernels stop at AVX2). Elsewhere
//! the product falls back to [`super::matmul::sgemm`] on the unpacked weights.
//!
//! Every element of `c` is one chain of fused multiply-adds over `k` in order, from zero, in
//! whichever block its row and column fall: a row's result is the same bits whatever the number
//! of rows in the call (`batch_size_does_not_change_a_row` below), as the engine requires. The
//! bits differ from the fallback's in the last places; a machine uses one of them throughout.

/// Columns per panel: one 512-bit register of f32.
const LANES: usize = 16;
/// Rows of `c` per kernel call.
const MR: usize = 12;

/// The weights `b` (`k x n`, row-major) for [`PackedB::mul`].
#[derive(Debug, Clone)]
pub struct PackedB {
    k: usize,
    n: usize,
    /// `b` as it came, for the fallback.
    plain: Vec<f32>,
    /// Panel `j` holds columns `16 j ..16 j + 16` of every row (zeros past `n`), row after row.
    panels: Vec<f32>,
}

impl PackedB {
    /// Packs `b`, `k x n` with row stride `ldb`.
    ///
    /// # Panics
    /// If `b` is too short for its matrix (a bug in the caller, which builds it from the layer).
    pub fn new(k: usize, n: usize, b: &[f32], ldb: usize) -> PackedB {
        assert!(ldb >= n && (k == 0 || n == 0 || b.len() >= (k - 1) * ldb + n), "PackedB: b is too short");
        let mut plain = Vec::with_capacity(k * n);
        for p in 0..k {
            plain.extend_from_slice(&b[p * ldb..p * ldb + n]);
        }
        let panels_n = n.div_ceil(LANES);
        let mut panels = vec![0f32; panels_n * k * LANES];
        for j in 0..panels_n {
            let cols = LANES.min(n - j * LANES);
            for p in 0..k {
                let dst = (j * k + p) * LANES;
                panels[dst..dst + cols].copy_from_slice(&plain[p * n + j * LANES..p * n + j * LANES + cols]);
            }
        }
        PackedB { k, n, plain, panels }
    }

    pub fn rows(&self) -> usize {
        self.k
    }

    pub fn cols(&self) -> usize {
        self.n
    }

    /// `c = a * b`: `a` is `m x k` with row stride `lda`, `c` is `m x n` with row stride `ldc`.
    ///
    /// # Panics
    /// If a slice is too short for its matrix (a bug in the caller).
    pub fn mul(&self, m: usize, a: &[f32], lda: usize, c: &mut [f32], ldc: usize) {
        let (k, n) = (self.k, self.n);
        if m == 0 || n == 0 {
            return;
        }
        assert!(lda >= k && ldc >= n, "PackedB::mul: a row stride is shorter than its row");
        assert!(a.len() >= (m - 1) * lda + k && c.len() >= (m - 1) * ldc + n, "PackedB::mul: a slice is too short");
        #[cfg(target_arch = "x86_64")]
        if k > 0 && avx512() {
            // SAFETY: the CPU has AVX-512F (checked above); the asserts keep every row that the
            // kernel reads or writes inside `a` and `c`, and the panels hold k rows each.
            unsafe { x86::mul(self, m, x86::Rows { a: a.as_ptr(), lda }, c, ldc) };
            return;
        }
        super::matmul::sgemm(m, k, n, a, lda, &self.plain, n, c, ldc);
    }

    /// `c = a * b` where `a` is not stored: its row `r`, value `p` is `src[r * stride + taps[p]]`,
    /// a convolution's im2col row read straight from a zero-padded image. The same multiply-add
    /// chains as [`PackedB::mul`] on those rows written out, so the same bits. Returns false, having
    /// done nothing, on a CPU without AVX-512F: the caller writes the rows out and calls `mul`.
    ///
    /// # Panics
    /// If `taps` does not hold `k` offsets, or a row reaches past `src` or `c` (a bug in the caller).
    pub fn mul_taps(&self, m: usize, src: &[f32], stride: usize, taps: &[usize], c: &mut [f32], ldc: usize) -> bool {
        #[cfg(target_arch = "x86_64")]
        if avx512() {
            assert!(taps.len() == self.k && ldc >= self.n, "PackedB::mul_taps: taps or ldc do not fit b");
            if m == 0 || self.n == 0 {
                return true;
            }
            let reach = taps.iter().max().map_or(0, |t| (m - 1) * stride + t + 1);
            assert!(reach <= src.len() && c.len() >= (m - 1) * ldc + self.n, "PackedB::mul_taps: a slice is too short");
            let a = x86::Taps { src: src.as_ptr(), stride, taps: taps.as_ptr() };
            // SAFETY: the CPU has AVX-512F; every value a row reads, src[r * stride + taps[p]] with
            // r < m, is inside `src` (checked above), and rows of `c` as in `mul`.
            unsafe { x86::mul(self, m, a, c, ldc) };
            return true;
        }
        let _ = (m, src, stride, taps, c, ldc);
        false
    }
}

#[cfg(target_arch = "x86_64")]
fn avx512() -> bool {
    std::is_x86_feature_detected!("avx512f")
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{LANES, MR, PackedB};
    use std::arch::x86_64::*;

    /// Where the kernel reads the values of `a`: stored rows, or a convolution's taps.
    pub trait Lhs: Copy {
        /// The same values with rows 0..i left out (row i becomes row 0).
        fn skip_rows(self, i: usize) -> Self;
        /// Row `r`, value `p`.
        ///
        /// # Safety
        /// The value must be inside the slice the reader was made from.
        unsafe fn get(self, r: usize, p: usize) -> f32;
    }

    /// `a` stored row after row, `lda` apart.
    #[derive(Clone, Copy)]
    pub struct Rows {
        pub a: *const f32,
        pub lda: usize,
    }

    impl Lhs for Rows {
        #[inline(always)]
        fn skip_rows(self, i: usize) -> Self {
            Rows { a: self.a.wrapping_add(i * self.lda), ..self }
        }
        #[inline(always)]
        unsafe fn get(self, r: usize, p: usize) -> f32 {
            // SAFETY: the caller keeps (r, p) inside `a`.
            unsafe { *self.a.add(r * self.lda + p) }
        }
    }

    /// Row `r`, value `p` is `src[r * stride + taps[p]]`.
    #[derive(Clone, Copy)]
    pub struct Taps {
        pub src: *const f32,
        pub stride: usize,
        pub taps: *const usize,
    }

    impl Lhs for Taps {
        #[inline(always)]
        fn skip_rows(self, i: usize) -> Self {
            Taps { src: self.src.wrapping_add(i * self.stride), ..self }
        }
        #[inline(always)]
        unsafe fn get(self, r: usize, p: usize) -> f32 {
            // SAFETY: the caller keeps p < k (the length of `taps`) and the value inside `src`.
            unsafe { *self.src.add(r * self.stride + *self.taps.add(p)) }
        }
    }

    /// # Safety
    /// The CPU must have AVX-512F; `a` and `c` must hold `m` rows as [`PackedB::mul`] checks.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn mul<L: Lhs>(b: &PackedB, m: usize, a: L, c: &mut [f32], ldc: usize) {
        let panels = b.n.div_ceil(LANES);
        let mut j = 0;
        while j < panels {
            let two = j + 1 < panels;
            let mut i = 0;
            while i < m {
                let rows = MR.min(m - i);
                // SAFETY: rows i..i + rows of `a` and `c` exist; panels j (and j + 1) exist.
                unsafe {
                    match (two, rows) {
                        (true, MR) => block::<MR, 2, L>(b, j, i, a, c, ldc),
                        (false, MR) => block::<MR, 1, L>(b, j, i, a, c, ldc),
                        (true, r) => tail::<2, L>(b, j, i, r, a, c, ldc),
                        (false, r) => tail::<1, L>(b, j, i, r, a, c, ldc),
                    }
                }
                i += rows;
            }
            j += if two { 2 } else { 1 };
        }
    }

    /// The last rows (fewer than [`MR`]), one monomorphised block per count.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tail<const NV: usize, L: Lhs>(
        b: &PackedB,
        j: usize,
        i: usize,
        rows: usize,
        a: L,
        c: &mut [f32],
        ldc: usize,
    ) {
        // SAFETY: as in `mul`; each arm runs exactly `rows` rows.
        unsafe {
            match rows {
                1 => block::<1, NV, L>(b, j, i, a, c, ldc),
                2 => block::<2, NV, L>(b, j, i, a, c, ldc),
                3 => block::<3, NV, L>(b, j, i, a, c, ldc),
                4 => block::<4, NV, L>(b, j, i, a, c, ldc),
                5 => block::<5, NV, L>(b, j, i, a, c, ldc),
                6 => block::<6, NV, L>(b, j, i, a, c, ldc),
                7 => block::<7, NV, L>(b, j, i, a, c, ldc),
                8 => block::<8, NV, L>(b, j, i, a, c, ldc),
                9 => block::<9, NV, L>(b, j, i, a, c, ldc),
                10 => block::<10, NV, L>(b, j, i, a, c, ldc),
                _ => block::<11, NV, L>(b, j, i, a, c, ldc),
            }
        }
    }

    /// Rows `i..i + R` of `c`, columns of panels `j..j + NV`: `R x NV` accumulators in registers,
    /// one multiply-add chain over `k` each.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn block<const R: usize, const NV: usize, L: Lhs>(
        b: &PackedB,
        j: usize,
        i: usize,
        a: L,
        c: &mut [f32],
        ldc: usize,
    ) {
        let k = b.k;
        let mut acc = [[_mm512_setzero_ps(); NV]; R];
        let a0 = a.skip_rows(i);
        let p0 = b.panels.as_ptr().wrapping_add(j * k * LANES);
        for p in 0..k {
            // SAFETY: panel j + v row p is inside `panels` (j + v < panels count); value p of
            // row i + r is inside what `a` reads (r < R, p < k, checked by the caller).
            unsafe {
                let mut bv = [_mm512_setzero_ps(); NV];
                for (v, bv) in bv.iter_mut().enumerate() {
                    *bv = _mm512_loadu_ps(p0.add((v * k + p) * LANES));
                }
                for (r, acc) in acc.iter_mut().enumerate() {
                    let x = _mm512_set1_ps(a0.get(r, p));
                    for v in 0..NV {
                        acc[v] = _mm512_fmadd_ps(x, bv[v], acc[v]);
                    }
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (v, acc) in acc.iter().enumerate() {
                let col = (j + v) * LANES;
                let cols = LANES.min(b.n - col);
                let mask: __mmask16 = if cols == LANES { 0xffff } else { (1u16 << cols) - 1 };
                // SAFETY: row i + r of `c` holds n columns; the mask keeps the store to col..col + cols.
                unsafe { _mm512_mask_storeu_ps(c.as_mut_ptr().add((i + r) * ldc + col), mask, *acc) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PackedB;

    fn matrix(len: usize, seed: usize) -> Vec<f32> {
        (0..len).map(|i| ((i * seed % 1009) as f32 - 504.0) / 311.0).collect()
    }

    /// Against a float64 triple loop, on shapes that leave partial panels and partial row blocks
    /// and on strided views.
    #[test]
    fn matches_a_naive_product() {
        for &(m, k, n, lda, ldb, ldc) in
            &[(1, 784, 10, 784, 10, 10), (13, 5, 17, 9, 20, 18), (64, 784, 128, 784, 128, 128), (25, 9, 48, 9, 48, 50)]
        {
            let (a, b) = (matrix(m * lda, 37), matrix(k * ldb, 53));
            let packed = PackedB::new(k, n, &b, ldb);
            let mut c = vec![f32::NAN; m * ldc];
            packed.mul(m, &a, lda, &mut c, ldc);
            crate::layers::matmul::tests::assert_naive_product((m, k, n), (&a, lda), (&b, ldb), (&c, ldc));
            for i in 0..m {
                // Columns past n in a strided c are left alone.
                assert!(c[i * ldc + n..(i + 1) * ldc].iter().all(|v| v.is_nan()), "row {i} wrote past column {n}");
            }
        }
    }

    /// A row's outputs are the same bits alone, in a block of 12 or among 1,000 rows.
    #[test]
    fn batch_size_does_not_change_a_row() {
        for &(k, n) in &[(784, 1024), (1024, 512), (512, 10), (9, 16), (144, 32), (1152, 256)] {
            let (a, b) = (matrix(1000 * k, 7919), matrix(k * n, 104729));
            let packed = PackedB::new(k, n, &b, n);
            let mut full = vec![0f32; 1000 * n];
            packed.mul(1000, &a, k, &mut full, n);
            for m in [1, 5, 12, 13, 64] {
                let mut part = vec![0f32; m * n];
                packed.mul(m, &a[..m * k], k, &mut part, n);
                assert!(part == full[..m * n], "k={k} n={n}: {m} rows differ from the same rows among 1000");
            }
        }
    }

    #[test]
    fn an_empty_inner_dimension_gives_zeros() {
        let packed = PackedB::new(0, 3, &[], 3);
        let mut c = vec![f32::NAN; 6];
        packed.mul(2, &[], 0, &mut c, 3);
        assert_eq!(c, vec![0.0; 6]);
    }
}
