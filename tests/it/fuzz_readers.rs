//! Property tests of every reader on stable Rust: small valid files (npz, npy headers, course JSON,
//! `.keras`, HDF5, IDX, PNG and JPEG) mutated at random (cut short, bytes flipped in headers, sizes
//! and counts replaced by huge ones, header text rewritten) must give Ok or an error, never a
//! panic, and each within a time bound. The suite runs each reader for a fraction of a second;
//! `cargo xtask fuzz --minutes N` runs the same generators for N minutes
//! (`FMTOOL_FUZZ_SECONDS`). A crash found becomes a named test in `hostile_readers.rs`.

use crate::common::*;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// xorshift64*: reproducible without a dependency; the seed is printed on failure.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One random mutation of `seed`, biased towards the first bytes, where headers are.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        if b.is_empty() {
            break;
        }
        let at = if rng.below(3) == 0 { rng.below(b.len()) } else { rng.below(b.len().min(512)) };
        match rng.below(8) {
            0 => b.truncate(at),
            1 => b[at] ^= 1 << rng.below(8),
            2 => b[at] = rng.next() as u8,
            3 => {
                // A size or count field made huge.
                let n = 4.min(b.len() - at);
                b[at..at + n].fill(0xff);
            }
            4 => {
                let n = 8.min(b.len() - at);
                b[at..at + n].copy_from_slice(&0x7fff_ffff_ffff_fff0u64.to_le_bytes()[..n]);
            }
            5 => {
                let digits: &[u8] = b"99999999999";
                let n = digits.len().min(b.len() - at);
                b[at..at + n].copy_from_slice(&digits[..n]);
            }
            6 => b.insert(at, rng.next() as u8),
            _ => {
                let n = rng.below(16).min(b.len() - at);
                b.drain(at..at + n);
            }
        }
    }
    b
}

/// Runs `read` on mutations of every seed until the time budget is spent: each call must return
/// (a panic fails the test through the harness) within `per_case`.
fn fuzz(name: &str, seeds: &[Vec<u8>], per_case: Duration, read: impl Fn(&[u8])) {
    let secs: f64 = std::env::var("FMTOOL_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(0.3);
    let seed = std::env::var("FMTOOL_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_0011u64);
    let mut rng = Rng(seed ^ name.bytes().fold(0u64, |a, c| a.wrapping_mul(31).wrapping_add(c as u64)) | 1);
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut cases = 0;
    for s in seeds {
        read(s);
    }
    while Instant::now() < end || cases < 20 {
        let pick = rng.below(seeds.len());
        let input = mutate(&mut rng, &seeds[pick]);
        let t = Instant::now();
        read(&input);
        let took = t.elapsed();
        assert!(
            took < per_case,
            "{name}: one input took {took:?} (seed {seed}, case {cases}); bytes: {:?}",
            &input[..input.len().min(64)]
        );
        cases += 1;
    }
    eprintln!("{name}: {cases} mutated inputs");
}

fn npz_seed(deflate: bool) -> Vec<u8> {
    let a = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[3, 2]), vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    let b = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[2]), vec![0.5f32, -0.5]).unwrap();
    let cur = fmtool::model::npz::write_npz(std::io::Cursor::new(Vec::new()), &[("w_0".into(), a), ("w_1".into(), b)])
        .unwrap();
    let bytes = cur.into_inner();
    if !deflate {
        return bytes;
    }
    // The same members deflated, as np.savez_compressed writes them.
    let mut src = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).unwrap();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for i in 0..src.len() {
        let mut m = src.by_index(i).unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut m, &mut data).unwrap();
        out.start_file(m.name().unwrap(), zip::write::SimpleFileOptions::default()).unwrap();
        out.write_all(&data).unwrap();
    }
    out.finish().unwrap().into_inner()
}

#[test]
fn fuzz_npz_and_npy_headers() {
    let header_variants = [
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }",
        "{\"descr\": \"<f4\", \"fortran_order\": True, \"shape\": (3,2)}",
        "{'descr': '>f8', 'fortran_order': False, 'shape': (6,), 'shape': (3, 2)}",
    ];
    let mut seeds = vec![npz_seed(false), npz_seed(true)];
    for h in header_variants {
        let mut m = b"\x93NUMPY\x01\x00".to_vec();
        m.extend_from_slice(&(h.len() as u16 + 1).to_le_bytes());
        m.extend_from_slice(h.as_bytes());
        m.push(b'\n');
        m.extend_from_slice(&[0u8; 48]);
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        z.start_file("a.npy", zip::write::SimpleFileOptions::default()).unwrap();
        z.write_all(&m).unwrap();
        seeds.push(z.finish().unwrap().into_inner());
    }
    fuzz("npz", &seeds, Duration::from_secs(2), |b| {
        if let Ok(n) = fmtool::model::npz::read_npz_bytes(Path::new("f.npz"), b) {
            for k in n.keys().map(str::to_string).collect::<Vec<_>>() {
                if let Ok(a) = n.array(&k) {
                    assert_eq!(a.len(), a.shape.iter().product::<usize>());
                }
            }
        }
    });
}

#[test]
fn fuzz_npy_header_text() {
    // The literal parser alone, on header text with random edits (quotes, brackets, digits).
    let base = b"{'descr': '<f4', 'fortran_order': False, 'shape': (784, 128), }  \n".to_vec();
    let alphabet = b"'\"(){}[],:#\\\n \t0123456789LTFxbu_-+.";
    let secs: f64 = std::env::var("FMTOOL_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(0.3);
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut n = 0;
    while Instant::now() < end || n < 200 {
        let mut t = base.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(t.len());
            let c = alphabet[rng.below(alphabet.len())];
            match rng.below(3) {
                0 => t[at] = c,
                1 => t.insert(at, c),
                _ => {
                    t.remove(at);
                }
            }
        }
        let text: String = t.iter().map(|&b| b as char).collect();
        let _ = fmtool::model::pylit::literal_eval(&text, rng.below(2) == 0);
        n += 1;
    }
}

#[test]
fn fuzz_course_json() {
    let seeds = vec![
        std::fs::read(fixture("check/good/fashion_mnist.json")).unwrap(),
        std::fs::read(fixture("keras3/identities/fashion_mnist.json")).unwrap(),
    ];
    fuzz("json", &seeds, Duration::from_secs(2), |b| {
        if let Ok(v) = fmtool::model::arch::parse_json_bytes(Path::new("f.json"), b) {
            let _ = fmtool::model::arch::parse_arch(&v);
        }
    });
}

#[test]
fn fuzz_keras_h5_and_zip() {
    let seeds = vec![
        std::fs::read(fixture("keras3/identities/model.h5")).unwrap(),
        std::fs::read(fixture("keras3/identities/model.keras")).unwrap(),
    ];
    // The HDF5 reader runs under fmtool's guard (a panic becomes an error, a loop a timeout).
    fuzz("keras", &seeds, Duration::from_secs(8), |b| {
        let _ = fmtool::keras::read_model_bytes(b.to_vec(), "f.h5");
    });
}

#[test]
fn fuzz_idx() {
    let mut raw = vec![0, 0, 8, 3];
    for d in [2u32, 28, 28] {
        raw.extend_from_slice(&d.to_be_bytes());
    }
    raw.extend((0..2 * 784).map(|i| i as u8));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    let seeds = vec![raw.clone(), gz.finish().unwrap()];
    fuzz("idx", &seeds, Duration::from_secs(2), |b| {
        if let Ok(dims) = fmtool::dataset::idx_dims(b, "f", 3) {
            assert_eq!(dims.len(), 3);
        }
    });
}

#[test]
fn fuzz_pictures() {
    let pixels: Vec<u8> = (0..784).map(|i| (i * 7 % 256) as u8).collect();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut jpeg).encode(&pixels, 28, 28, image::ExtendedColorType::L8).unwrap();
    let mut png = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png, 28, 28);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header().unwrap().write_image_data(&pixels).unwrap();
    }
    fuzz("picture", &[jpeg, png], Duration::from_secs(2), |b| {
        if let Ok(p) = fmtool::picture::from_bytes(Path::new("f.png"), b) {
            assert_eq!(p.pixels.len(), 784);
        }
    });
}
