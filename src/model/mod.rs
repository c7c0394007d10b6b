//! A model on disk in the course format: `fashion_mnist.json` (architecture) and
//! `fashion_mnist.npz` (weights) in one directory.

pub mod arch;
pub mod lookup;
pub mod npz;
pub mod pylit;

pub use arch::{ArchEntry, Layout};
pub use lookup::NpzIndex;
pub use npz::{NpyArray, Npz};

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

pub const JSON_NAME: &str = "fashion_mnist.json";
pub const NPZ_NAME: &str = "fashion_mnist.npz";
pub const H5_NAME: &str = "fashion_mnist.h5";

/// The two files of a course-format model.
#[derive(Debug, Clone)]
pub struct ModelPaths {
    pub json: PathBuf,
    pub npz: PathBuf,
}

impl ModelPaths {
    /// Resolves `--model`: a directory holding both files, or the path of the JSON file itself
    /// (then the npz of the same stem beside it).
    pub fn resolve(model: &Path) -> Result<ModelPaths> {
        if model.is_dir() {
            return Ok(ModelPaths { json: model.join(JSON_NAME), npz: model.join(NPZ_NAME) });
        }
        if model.extension().is_some_and(|e| e == "json") {
            return Ok(ModelPaths { json: model.to_path_buf(), npz: model.with_extension("npz") });
        }
        if !model.exists() {
            return Err(Error::new(format!("model directory {} does not exist", model.display()))
                .with_hint("pass --model DIR, the directory that holds fashion_mnist.json and fashion_mnist.npz"));
        }
        Err(Error::new(format!("{} is neither a model directory nor a .json file", model.display()))
            .with_hint("for a Keras .h5 or .keras file, run `fmtool convert` first"))
    }
}

/// A parsed course-format model: its architecture entries and its weight archive.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub paths: ModelPaths,
    pub arch: Vec<ArchEntry>,
    pub npz: Npz,
}

/// Reads both files of a model, failing on the first problem (`check` reports all of them).
pub fn load(model: &Path) -> Result<ModelFiles> {
    read_raw(model)?.parse()
}

/// Both files of a model read and decoded (the JSON's syntax, the npz archive), but the
/// architecture not yet interpreted, so that a caller can tell a model that is not there or not
/// readable (a missing directory, a truncated file) from one the grader reads and then fails on
/// (another JSON layout, an entry without "type").
#[derive(Debug, Clone)]
pub struct RawModel {
    pub paths: ModelPaths,
    pub json: serde_json::Value,
    pub npz: Npz,
}

/// Reads both files; errors for a missing, unreadable or undecodable file.
pub fn read_raw(model: &Path) -> Result<RawModel> {
    let paths = ModelPaths::resolve(model)?;
    let bytes = crate::fsguard::read(&paths.json, crate::fsguard::budget::JSON)?;
    let json = arch::parse_json_bytes(&paths.json, &bytes)?;
    let npz = npz::read_npz(&paths.npz)?;
    Ok(RawModel { paths, json, npz })
}

impl RawModel {
    /// Interprets the architecture, failing on the first problem.
    pub fn parse(self) -> Result<ModelFiles> {
        let arch = arch::parse_arch(&self.json).map_err(|e| e.context(self.paths.json.display()))?;
        Ok(ModelFiles { paths: self.paths, arch, npz: self.npz })
    }
}
