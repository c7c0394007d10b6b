//! Inflates the embedded Fashion-MNIST test set (data/fashion/t10k-*.gz) into OUT_DIR, so that
//! the binary carries the raw IDX bytes: `fmtool score` then starts without inflating 7.8 MB of
//! images on every run (a third of a small model's whole-process time). The .gz files stay the
//! repository's copy of the data.

use std::io::Read;
use std::path::Path;

fn main() {
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    for name in ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
        let src = Path::new("data/fashion").join(format!("{name}.gz"));
        println!("cargo:rerun-if-changed={}", src.display());
        let gz = std::fs::read(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut raw)
            .unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        std::fs::write(Path::new(&out).join(name), raw).unwrap_or_else(|e| panic!("{out}/{name}: {e}"));
    }
}
