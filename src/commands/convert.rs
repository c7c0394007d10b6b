//! `fmtool convert`: a Keras .h5 / .keras file into the course's fashion_mnist.json + fashion_mnist.npz.
//! Both files are written to temporary files in the output directory and renamed into place only
//! when everything succeeded, so an error never leaves a half-written model behind.

use crate::cli::ConvertArgs;
use crate::engine::Model;
use crate::error::{Error, Result};
use crate::keras::{self, Layout};
use crate::layers::{Shape, Weight};
use crate::model::{ArchEntry, JSON_NAME, NPZ_NAME};
use crate::{err, layers};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One row of the summary, like Keras' `model.summary()`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SummaryRow {
    pub name: String,
    #[serde(rename = "type")]
    pub class_name: String,
    pub output_shape: Shape,
    pub params: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ConvertReport {
    pub input: String,
    pub layout: Layout,
    pub keras_version: Option<String>,
    pub json: String,
    pub npz: String,
    pub layers: Vec<SummaryRow>,
    pub total_params: usize,
}

/// A model converted in memory.
pub struct Converted {
    pub keras: keras::KerasModel,
    pub entries: Vec<ArchEntry>,
    /// The arrays in npz order, under their course keys.
    pub arrays: Vec<(String, ndarray::ArrayD<f32>)>,
    /// The built engine model, which proves every layer runs and every shape fits.
    pub model: Model,
}

/// Converts in memory: the course entries, the arrays in npz order, and the built engine model.
pub fn convert_model(path: &Path) -> Result<Converted> {
    let km = keras::read_model(path)?;
    let unsupported: Vec<String> = km
        .layers
        .iter()
        .filter(|l| layers::lookup(&l.class_name).is_none())
        .map(|l| format!("{} ({})", l.name, l.class_name))
        .collect();
    if !unsupported.is_empty() {
        return Err(err!(
            "{}: fmtool cannot run {} layer(s): {}",
            path.display(),
            unsupported.len(),
            unsupported.join(", ")
        )
        .with_hint("run `fmtool layers` for the supported layer types, and replace these layers in the model"));
    }
    let (entries, weights) = km.to_course();
    let arrays: Vec<(String, ndarray::ArrayD<f32>)> =
        weights.iter().flatten().map(|Weight { key, array }| (key.clone(), array.clone())).collect();
    let model = Model::build_with_weights(&entries, weights).map_err(|e| e.context(path.display()))?;
    Ok(Converted { keras: km, entries, arrays, model })
}

pub fn run(args: &ConvertArgs) -> Result<ConvertReport> {
    let Converted { keras: km, entries, arrays, model } = convert_model(&args.input)?;
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io("create the directory", &args.out, &e))?;
    let json_path = args.out.join(JSON_NAME);
    let npz_path = args.out.join(NPZ_NAME);
    if !args.force {
        let existing: Vec<String> =
            [&json_path, &npz_path].iter().filter(|p| p.exists()).map(|p| p.display().to_string()).collect();
        if !existing.is_empty() {
            return Err(err!("{} already exist(s); fmtool does not overwrite it", existing.join(" and "))
                .with_hint("pass --force to replace it, or --out DIR to write elsewhere"));
        }
    }
    let json = serde_json::to_string(&serde_json::Value::Array(entries.iter().map(ArchEntry::to_json).collect()))
        .map_err(|e| err!("cannot serialize the architecture: {e}"))?;
    let mut tmp_json = temp_in(&args.out)?;
    tmp_json.write_all(json.as_bytes()).map_err(|e| Error::io("write", tmp_json.path(), &e))?;
    let tmp_npz = temp_in(&args.out)?;
    let (file, tmp_npz_path) = tmp_npz.into_parts();
    let file = crate::model::npz::write_npz(file, &arrays).map_err(|e| e.context(npz_path.display()))?;
    file.sync_all().map_err(|e| Error::io("write", &tmp_npz_path, &e))?;
    tmp_npz_path.persist(&npz_path).map_err(|e| Error::io("write", &npz_path, &e.error))?;
    tmp_json.persist(&json_path).map_err(|e| Error::io("write", &json_path, &e.error))?;
    let layers = model
        .nodes
        .iter()
        .map(|n| SummaryRow {
            name: n.name.clone(),
            class_name: n.class_name.clone(),
            output_shape: n.output_shape.clone(),
            params: n.params,
        })
        .collect();
    Ok(ConvertReport {
        input: args.input.display().to_string(),
        layout: km.layout,
        keras_version: km.keras_version,
        json: json_path.display().to_string(),
        npz: npz_path.display().to_string(),
        layers,
        total_params: model.params(),
    })
}

fn temp_in(dir: &Path) -> Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(".fmtool-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io("write a temporary file in", &PathBuf::from(dir), &e))
}
