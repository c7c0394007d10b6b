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
use crate::model::{ArchEntry, JSON_NAME, NPZ_NAME, Npz};
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
    /// With --for-template: what became of each layer, and how close the rewrite is.
    pub for_template: Option<ForTemplate>,
}

/// `convert --for-template`'s account of the rewrite.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ForTemplate {
    /// Each layer of the trained model, in order.
    pub steps: Vec<crate::fold::FoldStep>,
    /// Over the test images: the largest difference between the trained model's outputs
    /// (fmtool's engine, float32) and the rewritten model's, computed as the course template
    /// computes them (float64, one Flatten and the Dense layers).
    pub images: usize,
    pub max_abs_difference: f64,
    /// Images whose predicted class differs between the two.
    pub predictions_changed: usize,
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
    /// The arrays of `npz`.
    pub arrays: Npz,
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
    Ok(Converted { keras: km, entries, model, json, npz, arrays })
}

pub fn run(args: &ConvertArgs) -> Result<ConvertReport> {
    let json_path = args.out.join(JSON_NAME);
    let npz_path = args.out.join(NPZ_NAME);
    // Refuse early, before the work; write_together checks again when it renames.
    if !args.force {
        refuse_existing(&[&json_path, &npz_path])?;
    }
    if args.for_template {
        return for_template(args, &json_path, &npz_path);
    }
    let Converted { keras: km, model, json, npz, .. } = convert_model(&args.input)?;
    write_together(&args.out, &[(NPZ_NAME, npz.as_slice()), (JSON_NAME, json.as_bytes())], args.force)?;
    Ok(ConvertReport {
        input: args.input.display().to_string(),
        layout: km.layout,
        keras_version: km.keras_version,
        json: json_path.display().to_string(),
        npz: npz_path.display().to_string(),
        input_shape: model.input.clone(),
        inlined: km.inlined,
        total_params: model.params(),
        layers: summary(&model),
        for_template: None,
    })
}

fn summary(model: &Model) -> Vec<SummaryRow> {
    model
        .nodes
        .iter()
        .map(|n| SummaryRow {
            name: n.name.clone(),
            class_name: n.class_name.clone(),
            output_shape: n.output_shape.clone(),
            params: n.params,
        })
        .collect()
}

/// `--for-template`: the trained model (a Keras file, or a course export in a folder) rewritten
/// by `fold`, checked on the test images against the trained model, then written.
fn for_template(args: &ConvertArgs, json_path: &Path, npz_path: &Path) -> Result<ConvertReport> {
    let shown = args.input.display().to_string();
    let (entries, arrays, model, layout, keras_version, inlined) = if args.input.is_dir() {
        let files = crate::model::load(&args.input)?;
        let model = Model::build(&files.arch, &files.npz).map_err(|e| e.context(&shown))?;
        (files.arch, files.npz, model, Layout::CourseExport, None, Vec::new())
    } else {
        let c = convert_model(&args.input)?;
        (c.entries, c.arrays, c.model, c.keras.layout, c.keras.keras_version, c.keras.inlined)
    };
    let folded = crate::fold::fold(&entries, &arrays, &model).map_err(|e| e.context(&shown))?;
    let rewritten = Model::build(&folded.entries, &folded.npz).map_err(|e| e.context("the rewritten model"))?;
    // The trained model in the engine against the rewritten one as the template computes it.
    let data = crate::dataset::embedded_test_set();
    let trained = model.predict_pixels(data.pixel_rows(), &|_| {})?;
    let plan = crate::grader::plan_template(&folded.entries, &folded.npz)?;
    let template = plan.run(data.images_f64().view())?;
    if template.dim() != trained.dim() {
        return Err(err!(
            "the rewritten model's outputs have shape {:?}, the trained model's {:?}; nothing was written",
            template.dim(),
            trained.dim()
        ));
    }
    let mut max_abs_difference = 0.0f64;
    let mut predictions_changed = 0;
    for (t, m) in template.rows().into_iter().zip(trained.rows()) {
        for (a, &b) in t.iter().zip(&m) {
            max_abs_difference = max_abs_difference.max((a - f64::from(b)).abs());
        }
        let (a, b) = (crate::grader::argmax(t.iter().copied()), crate::grader::argmax(m.iter().copied()));
        predictions_changed += usize::from(a != b);
    }
    let json =
        serde_json::to_string(&serde_json::Value::Array(folded.entries.iter().map(ArchEntry::to_json).collect()))
            .map_err(|e| err!("cannot serialize the architecture: {e}"))?;
    let npz = crate::model::npz::write_npz_of(std::io::Cursor::new(Vec::new()), &folded.npz)?.into_inner();
    write_together(&args.out, &[(NPZ_NAME, npz.as_slice()), (JSON_NAME, json.as_bytes())], args.force)?;
    Ok(ConvertReport {
        input: shown,
        layout,
        keras_version,
        json: json_path.display().to_string(),
        npz: npz_path.display().to_string(),
        input_shape: rewritten.input.clone(),
        inlined,
        total_params: rewritten.params(),
        layers: summary(&rewritten),
        for_template: Some(ForTemplate {
            steps: folded.steps,
            images: data.len(),
            max_abs_difference,
            predictions_changed,
        }),
    })
}
