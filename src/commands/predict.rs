//! `fmtool predict`: the model's outputs for every test image as a .npy file, or the class of one picture.

use crate::cli::PredictArgs;
use crate::dataset::CLASS_NAMES;
use crate::engine::Model;
use crate::error::Result;
use crate::picture::{self, Picture};
use crate::{atomic, err, grader, model};
use ndarray::Array2;
use std::path::Path;
use std::time::Instant;

/// The result of `fmtool predict`: which of the two things it did.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum PredictReport {
    /// `--out FILE.npy`: the outputs for every image were written.
    Outputs(OutputsReport),
    /// `IMAGE`: one picture was classified.
    Image(ImageReport),
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct OutputsReport {
    /// The .npy file written.
    pub path: String,
    /// Its shape: (images, 10).
    pub shape: [usize; 2],
    pub dtype: &'static str,
    pub model: String,
    pub data: String,
    pub images: usize,
    /// Images whose argmax is their label.
    pub correct: usize,
    pub accuracy: f64,
    /// Output values that are NaN or infinite (written as they are).
    pub non_finite: usize,
    pub notes: Vec<String>,
    pub seconds: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ClassProbability {
    pub label: usize,
    pub name: &'static str,
    pub probability: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageReport {
    /// The picture's path, as given.
    pub image: String,
    /// How it was read and made into a 28x28 input.
    pub picture: Picture,
    pub model: String,
    /// The predicted class (argmax of the model's outputs).
    pub class: usize,
    pub class_name: &'static str,
    pub probability: f64,
    /// All ten classes, most probable first.
    pub probabilities: Vec<ClassProbability>,
    /// The model's raw outputs in label order.
    pub outputs: Vec<f32>,
    /// False when the outputs do not sum to 1 (no softmax at the end); `probabilities` are then
    /// the softmax of the outputs.
    pub outputs_are_probabilities: bool,
    pub notes: Vec<String>,
    /// The 28x28 input the model saw, 0..=255 (for the text preview).
    #[serde(skip)]
    pub input: Vec<u8>,
}

pub fn run(args: &PredictArgs) -> Result<PredictReport> {
    match (&args.image, &args.out) {
        (Some(_), Some(_)) => Err(err!("give either a picture to classify or --out FILE.npy, not both")),
        (Some(image), None) => {
            if args.data.is_some() {
                return Err(err!("--data is for --out (the outputs for every image of a data set), not for a picture"));
            }
            if args.force {
                return Err(err!("--force replaces the file given by --out; a picture is only read"));
            }
            classify(args, image).map(PredictReport::Image)
        }
        (None, Some(out)) => outputs(args, out).map(PredictReport::Outputs),
        (None, None) => Err(err!("nothing to predict: give --out FILE.npy or a picture to classify").with_hint(
            "`fmtool predict --out predictions.npy` writes the outputs for every test image; \
             `fmtool predict shirt.png` classifies one picture",
        )),
    }
}

/// Builds the model and checks it gives 10 class scores per image.
fn build(model_dir: &Path, no_budget: bool) -> Result<(Model, String, Vec<String>)> {
    let files = model::load(model_dir)?;
    let mut m = Model::build(&files.arch, &files.npz)?;
    if !no_budget {
        m.within(&crate::cost::Budget::PER_IMAGE)?;
        m.time_limit = Some(crate::cost::TIME_LIMIT);
    }
    let mut notes = Vec::new();
    if m.input.inferred {
        notes.push(format!(
            "the export carries no input shape; fmtool used {} ({})",
            crate::layers::fmt_shape(&m.input.shape),
            m.input.source
        ));
    }
    if m.output_shape() != &[10] {
        return Err(err!(
            "the model's output is {} per image; the grader needs 10 class scores",
            crate::layers::fmt_shape(m.output_shape())
        )
        .with_hint("end the model with Dense(10, activation=\"softmax\")"));
    }
    let shown = files.paths.json.parent().map(|p| p.display().to_string()).unwrap_or_default();
    Ok((m, shown, notes))
}

fn outputs(args: &PredictArgs, out: &Path) -> Result<OutputsReport> {
    let start = Instant::now();
    // Refuse before the run rather than after it; `write_atomic` checks again at the rename.
    atomic::check_target(out, args.force)?;
    crate::engine::start_workers();
    let (m, model_shown, mut notes) = build(&args.model, args.no_budget)?;
    let data = super::score::load_data(args.data.as_deref(), &args.split)?;
    let y = m.predict_pixels(data.pixel_rows(), &|_| {})?;
    let non_finite = y.iter().filter(|v| !v.is_finite()).count();
    if non_finite > 0 {
        notes.push(format!(
            "{non_finite} output values are NaN or infinite; they are written as they are (run `fmtool check`)"
        ));
    }
    let correct = y
        .rows()
        .into_iter()
        .zip(&data.labels)
        .filter(|(r, l)| grader::argmax(r.iter().copied()) == **l as usize)
        .count();
    if out.extension().is_none_or(|e| e != "npy") {
        notes.push(format!(
            "{} does not end in .npy; np.load reads it all the same, but np.save would have added .npy",
            out.display()
        ));
    }
    let shape = [y.nrows(), y.ncols()];
    atomic::write_atomic(out, &crate::model::npz::npy_file_bytes(&y.into_dyn()), args.force)?;
    Ok(OutputsReport {
        path: out.display().to_string(),
        shape,
        dtype: "float32",
        model: model_shown,
        data: data.source.clone(),
        images: data.len(),
        correct,
        accuracy: correct as f64 / data.len().max(1) as f64,
        non_finite,
        notes,
        seconds: start.elapsed().as_secs_f64(),
    })
}

fn classify(args: &PredictArgs, image: &Path) -> Result<ImageReport> {
    let picture = picture::load(image)?;
    let (m, model_shown, mut notes) = build(&args.model, args.no_budget)?;
    let row =
        Array2::from_shape_vec((1, picture::SIDE * picture::SIDE), picture.input_row()).expect("a picture is 28x28");
    let y = m.predict(row.view(), &|_| {})?;
    let outputs: Vec<f32> = y.row(0).to_vec();
    if let Some(v) = outputs.iter().find(|v| !v.is_finite()) {
        return Err(err!("the model's output for {} is {v}; it needs finite class scores", image.display())
            .with_hint("run `fmtool check` to look for NaN or infinite weights"));
    }
    let class = grader::argmax(outputs.iter().copied());
    let sum: f64 = outputs.iter().map(|&v| v as f64).sum();
    let are_probabilities = outputs.iter().all(|&v| (0.0..=1.0).contains(&v)) && (sum - 1.0).abs() < 1e-3;
    let probs: Vec<f64> = if are_probabilities {
        outputs.iter().map(|&v| v as f64).collect()
    } else {
        notes.push(format!(
            "the model's outputs are not probabilities (they sum to {sum:.4}); shown after a softmax. \
             The course grader expects a softmax at the end"
        ));
        let mut p: Vec<f64> = outputs.iter().map(|&v| v as f64).collect();
        crate::grader::softmax64(&mut p);
        p
    };
    let mut probabilities: Vec<ClassProbability> = probs
        .iter()
        .enumerate()
        .map(|(label, &probability)| ClassProbability { label, name: CLASS_NAMES[label], probability })
        .collect();
    // Most probable first; the order of labels breaks ties so the output is stable.
    probabilities.sort_by(|a, b| b.probability.total_cmp(&a.probability).then(a.label.cmp(&b.label)));
    Ok(ImageReport {
        image: image.display().to_string(),
        input: picture.pixels.clone(),
        picture,
        model: model_shown,
        class,
        class_name: CLASS_NAMES[class],
        probability: probs[class],
        probabilities,
        outputs,
        outputs_are_probabilities: are_probabilities,
        notes,
    })
}
