//! `fmtool convert`: a Keras .h5 / .keras file into the course's fashion_mnist.json + fashion_mnist.npz.
//! The model is read, translated and built by the engine in memory first, so that nothing is
//! written for a model fmtool cannot run; then both files are written to temporary files in the
//! output directory and renamed into place together, so an error never leaves a half-written or
//! half-replaced model behind.

use crate::atomic::{refuse_existing, write_together};
use crate::cli::ConvertArgs;
use crate::engine::{InputShape, Model};
use crate::error::Result;
use crate::keras::{self, Layout};
use crate::layers::Shape;
use crate::model::{ArchEntry, JSON_NAME, NPZ_NAME};
use crate::{err, layers};
use std::path::Path;

/// One row of the summary, like Keras' `model.summary()`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SummaryRow {
    pub name: String,
    #[serde(rename = "type")]
    pub class_name: String,
    /// Per-sample output shape (without the batch axis).
    pub output_shape: Shape,
    pub params: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ConvertReport {
    /// The Keras file that was converted.
    pub input: String,
    pub layout: Layout,
    pub keras_version: Option<String>,
    /// The files written.
    pub json: String,
    pub npz: String,
    /// The model's per-sample input shape and where it came from.
    pub input_shape: InputShape,
    /// Nested models whose layers were inlined.
    pub inlined: Vec<String>,
    pub layers: Vec<SummaryRow>,
    pub total_params: usize,
}

/// A model converted in memory, with the bytes of both files ready to write.
pub struct Converted {
    /// The file's model (its layers' weights moved into `model`).
    pub keras: keras::KerasModel,
    pub entries: Vec<ArchEntry>,
    /// The built engine model, which proves every layer runs and every shape fits.
    pub model: Model,
    /// fashion_mnist.json: a list in `model.layers` order, keys in file order.
    pub json: String,
    /// fashion_mnist.npz, exactly as `np.savez` lays it out, arrays in entry order.
    pub npz: Vec<u8>,
}

/// Converts in memory: reads the Keras file, refuses layers the engine cannot run (naming all of
/// them), and builds the engine model so that shape problems surface before anything is written.
pub fn convert_model(path: &Path) -> Result<Converted> {
    translate(keras::read_model(path)?, &path.display().to_string())
}

/// Like [`convert_model`], from the file's bytes; `shown` names it in messages.
pub fn convert_bytes(bytes: Vec<u8>, shown: &str) -> Result<Converted> {
    translate(keras::read_model_bytes(bytes, shown)?, shown)
}

fn translate(mut km: keras::KerasModel, shown: &str) -> Result<Converted> {
    let unsupported: Vec<String> = km
        .layers
        .iter()
        .filter(|l| layers::lookup(&l.class_name).is_none())
        .map(|l| format!("{} ({})", l.name, l.class_name))
        .collect();
    if !unsupported.is_empty() {
        return Err(err!("{shown}: fmtool cannot run {} of its layers: {}", unsupported.len(), unsupported.join(", "))
            .with_hint("run `fmtool layers` for the layer types fmtool runs, and replace these layers in the model"));
    }
    // The course model, as `fmtool score` reads it back from the files written here.
    let (entries, arrays) = km.take_course(Path::new(shown));
    let json = serde_json::to_string(&serde_json::Value::Array(entries.iter().map(ArchEntry::to_json).collect()))
        .map_err(|e| err!("cannot serialize the architecture: {e}"))?;
    let bytes: usize =
        arrays.entries.iter().map(|e| e.array.as_ref().map_or(0, |a| a.len() * 4) + 2 * e.key.len() + 256).sum();
    let npz =
        crate::model::npz::write_npz_of(std::io::Cursor::new(Vec::with_capacity(bytes + 1024)), &arrays)?.into_inner();
    let model = Model::build(&entries, &arrays).map_err(|e| e.context(shown))?;
    Ok(Converted { keras: km, entries, model, json, npz })
}

pub fn run(args: &ConvertArgs) -> Result<ConvertReport> {
    let json_path = args.out.join(JSON_NAME);
    let npz_path = args.out.join(NPZ_NAME);
    // Refuse early, before the work; write_together checks again when it renames.
    if !args.force {
        refuse_existing(&[&json_path, &npz_path])?;
    }
    let Converted { keras: km, model, json, npz, .. } = convert_model(&args.input)?;
    write_together(&args.out, &[(NPZ_NAME, npz.as_slice()), (JSON_NAME, json.as_bytes())], args.force)?;
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
        input_shape: model.input.clone(),
        inlined: km.inlined,
        total_params: model.params(),
        layers,
    })
}
