//! The Fashion-MNIST data: IDX files (gzip or raw) with their magic numbers, dimensions and lengths
//! checked, and the test set embedded in the binary so `fmtool score` works in any directory.

use crate::err;
use crate::error::{Error, Result};
use flate2::read::GzDecoder;
use ndarray::Array2;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The class names, in label order.
pub const CLASS_NAMES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

// Raw IDX bytes, inflated from data/fashion/*.gz by build.rs: decoding them is a copy, not an
// inflate (which took a third of a small model's `fmtool score`).
const EMBEDDED_IMAGES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/t10k-images-idx3-ubyte"));
const EMBEDDED_LABELS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/t10k-labels-idx1-ubyte"));

/// Images as raw bytes (one row of 784 per image) and their labels.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Where the data came from, for the report: a directory or `"embedded t10k"`.
    pub source: String,
    pub rows: usize,
    pub cols: usize,
    /// Borrowed from the binary for the embedded test set (no copy at start-up), owned otherwise.
    pub pixels: std::borrow::Cow<'static, [u8]>,
    pub labels: Vec<u8>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn image_values(&self) -> usize {
        self.rows * self.cols
    }

    /// Pixels divided by 255 as float64, one row per image: what the course's `model_test.py`
    /// feeds the template.
    pub fn images_f64(&self) -> Array2<f64> {
        let v: Vec<f64> = self.pixels.iter().map(|&p| p as f64 / 255.0).collect();
        Array2::from_shape_vec((self.len(), self.image_values()), v).expect("length checked at load")
    }

    /// The raw pixels, one row per image (for [`crate::engine::Model::predict_pixels`]).
    pub fn pixel_rows(&self) -> ndarray::ArrayView2<'_, u8> {
        ndarray::ArrayView2::from_shape((self.len(), self.image_values()), &self.pixels)
            .expect("length checked at load")
    }

    /// Pixels divided by 255 as float32, one row per image (what the engine runs).
    pub fn images_f32(&self) -> Array2<f32> {
        let v: Vec<f32> = self.pixels.iter().map(|&p| p as f32 / 255.0).collect();
        Array2::from_shape_vec((self.len(), self.image_values()), v).expect("length checked at load")
    }
}

/// The embedded test set's IDX files as distributed (images, labels), uncompressed.
pub fn embedded_idx() -> (&'static [u8], &'static [u8]) {
    (EMBEDDED_IMAGES, EMBEDDED_LABELS)
}

/// The course's test set (10,000 images), from the copy embedded in the binary.
pub fn embedded_test_set() -> Dataset {
    let images = decode_idx(EMBEDDED_IMAGES, "embedded t10k-images-idx3-ubyte", 3).expect("embedded data is valid");
    let labels = decode_idx(EMBEDDED_LABELS, "embedded t10k-labels-idx1-ubyte", 1).expect("embedded data is valid");
    // One read per page maps the images in now, as reading a file would, rather than during the
    // engine's pass (where `--timings` would count it as the engine's).
    std::hint::black_box(images.data.iter().step_by(4096).fold(0u8, |a, &b| a ^ b));
    assemble("embedded Fashion-MNIST test set (t10k)".into(), images, labels.into_owned())
        .expect("embedded data is valid")
}

/// Loads `t10k` (or, with `split = "train"`, `train`) images and labels from a directory, accepting
/// `.gz` and uncompressed files. `dir` may also be a course repository root holding `data/fashion/`.
pub fn load_dir(dir: &Path, split: &str) -> Result<Dataset> {
    let dir = if dir.join("data/fashion").is_dir() && find(dir, split, "images-idx3-ubyte").is_none() {
        dir.join("data/fashion")
    } else {
        dir.to_path_buf()
    };
    let img_path = find(&dir, split, "images-idx3-ubyte").ok_or_else(|| missing(&dir, split, "images-idx3-ubyte"))?;
    let lbl_path = find(&dir, split, "labels-idx1-ubyte").ok_or_else(|| missing(&dir, split, "labels-idx1-ubyte"))?;
    let images = read_idx(&img_path, 3)?;
    let labels = read_idx(&lbl_path, 1)?;
    let set = assemble(dir.display().to_string(), images, labels)?;
    // An accuracy over no images is NaN, which compares false with any --min-accuracy.
    if set.is_empty() {
        return Err(err!("{} and {} hold 0 images; there is nothing to score", img_path.display(), lbl_path.display())
            .with_hint("pass --data DIR with the Fashion-MNIST IDX files (t10k-images-idx3-ubyte.gz, ...)"));
    }
    Ok(set)
}

fn find(dir: &Path, split: &str, stem: &str) -> Option<PathBuf> {
    [format!("{split}-{stem}.gz"), format!("{split}-{stem}"), format!("{split}-{}.gz", stem.replace("-idx", ".idx"))]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

fn missing(dir: &Path, split: &str, stem: &str) -> Error {
    err!("{} has no {split}-{stem}.gz (nor an uncompressed {split}-{stem})", dir.display())
        .with_hint("pass --data DIR, the directory holding the Fashion-MNIST IDX files")
}

/// An IDX file's dimensions and payload (borrowed from raw input, owned when inflated).
#[derive(Debug)]
struct Idx<'a> {
    dims: Vec<usize>,
    data: std::borrow::Cow<'a, [u8]>,
}

impl Idx<'_> {
    fn into_owned(self) -> Idx<'static> {
        Idx { dims: self.dims, data: std::borrow::Cow::Owned(self.data.into_owned()) }
    }
}

fn read_idx(path: &Path, rank: usize) -> Result<Idx<'static>> {
    let bytes = crate::fsguard::read(path, crate::fsguard::budget::IDX)?;
    decode_idx(&bytes, &path.display().to_string(), rank).map(Idx::into_owned)
}

/// Decodes an IDX file's bytes (gzip or raw) of `rank` dimensions and returns its dimensions; the
/// fuzz tests drive the decoder through this.
pub fn idx_dims(bytes: &[u8], name: &str, rank: usize) -> Result<Vec<usize>> {
    decode_idx(bytes, name, rank).map(|i| i.dims)
}

/// At most this many bytes of IDX data (Fashion-MNIST's 60,000 training images are 47 MB).
pub const MAX_IDX_BYTES: usize = 100 << 20;

/// Decodes an IDX file of unsigned bytes (type 0x08) with `rank` dimensions, gzip or raw. The
/// header's counts are checked against the budget before a gzip stream is inflated past them.
fn decode_idx<'a>(bytes: &'a [u8], name: &str, rank: usize) -> Result<Idx<'a>> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let damaged = |e: std::io::Error| err!("{name}: the gzip stream is damaged or truncated ({e})");
        let mut gz = GzDecoder::new(bytes);
        let mut out = vec![0u8; 4];
        gz.read_exact(&mut out).map_err(damaged)?;
        let header = 4 + 4 * out[3] as usize;
        out.resize(header, 0);
        gz.read_exact(&mut out[4..]).map_err(damaged)?;
        // Only the declared data (and one byte more, to see a longer stream) is ever inflated.
        let declared = idx_payload(&out, name, rank)?;
        gz.take(declared as u64 + 1).read_to_end(&mut out).map_err(damaged)?;
        return decode_raw(&out, name, rank).map(Idx::into_owned);
    }
    decode_raw(bytes, name, rank)
}

/// Decodes an uncompressed IDX file (see [`decode_idx`]); the payload is borrowed.
fn decode_raw<'a>(bytes: &'a [u8], name: &str, rank: usize) -> Result<Idx<'a>> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(err!("{name} is not an IDX file (bad magic number)"));
    }
    if bytes[2] != 0x08 {
        return Err(err!("{name}: IDX element type 0x{:02x} is not unsigned bytes (0x08)", bytes[2]));
    }
    if bytes[3] as usize != rank {
        return Err(err!("{name}: expected {rank} dimension(s), the header says {}", bytes[3]));
    }
    let header = 4 + 4 * rank;
    if bytes.len() < header {
        return Err(err!("{name}: the IDX header is truncated"));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize)
        .collect();
    let expected =
        dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| err!("{name}: dimensions overflow"))?;
    if expected > MAX_IDX_BYTES {
        return Err(err!(
            "{name}: the header declares {dims:?} ({expected} bytes), more than the {MAX_IDX_BYTES} bytes of any Fashion-MNIST file"
        ));
    }
    let have = bytes.len() - header;
    if have != expected {
        return Err(err!("{name}: the header promises {expected} bytes of data ({dims:?}), the file holds {have}"));
    }
    Ok(Idx { dims, data: std::borrow::Cow::Borrowed(&bytes[header..]) })
}

/// The payload size an IDX header declares, checked against the budget (the header only).
fn idx_payload(header: &[u8], name: &str, rank: usize) -> Result<usize> {
    if header[0] != 0 || header[1] != 0 || header[2] != 0x08 || header[3] as usize != rank {
        return Ok(0); // decode_idx names the problem
    }
    let expected = (0..rank)
        .map(|i| u32::from_be_bytes(header[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize)
        .try_fold(1usize, |a, d| a.checked_mul(d))
        .unwrap_or(usize::MAX);
    if expected > MAX_IDX_BYTES {
        return Err(err!(
            "{name}: the header declares {expected} bytes of data, more than the {MAX_IDX_BYTES} bytes of any Fashion-MNIST file"
        ));
    }
    Ok(expected)
}

fn assemble(source: String, images: Idx<'static>, labels: Idx<'static>) -> Result<Dataset> {
    let (n, rows, cols) = (images.dims[0], images.dims[1], images.dims[2]);
    if labels.dims[0] != n {
        return Err(err!("{source}: {n} images but {} labels", labels.dims[0]));
    }
    if let Some(bad) = labels.data.iter().find(|&&l| l > 9) {
        return Err(err!("{source}: label {bad} is not a Fashion-MNIST class (0-9)"));
    }
    Ok(Dataset { source, rows, cols, pixels: images.data, labels: labels.data.into_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_test_set_is_fashion_mnist() {
        let d = embedded_test_set();
        assert_eq!((d.len(), d.rows, d.cols), (10_000, 28, 28));
        // Every class has 1,000 test images.
        let mut counts = [0; 10];
        for &l in &d.labels {
            counts[l as usize] += 1;
        }
        assert_eq!(counts, [1000; 10]);
        assert_eq!(d.labels[0], 9, "the first test image is an ankle boot");
    }

    #[test]
    fn bad_idx_files_are_refused() {
        assert!(
            decode_idx(b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02", "l", 1).unwrap_err().message.contains("promises 5")
        );
        assert!(decode_idx(b"PK\x03\x04", "l", 1).unwrap_err().message.contains("bad magic"));
        assert!(decode_idx(b"\x00\x00\x08\x03", "i", 1).unwrap_err().message.contains("expected 1 dimension"));
        assert!(decode_idx(&[0x1f, 0x8b, 8, 0, 0], "g", 1).unwrap_err().message.contains("gzip"));
    }
}
