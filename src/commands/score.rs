//! `fmtool score`: runs a model on the test set and computes what the autograder gives.

use crate::cli::ScoreArgs;
use crate::commands::Progress;
use crate::dataset::{self, CLASS_NAMES, Dataset};
use crate::engine::{InputShape, Model};
use crate::error::{Error, Result};
use crate::grader::Grader;
use crate::grader::{self, Points, TemplateStep};
use crate::model::ModelFiles;
use crate::{ExitStatus, err, model};
use ndarray::Array2;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, Clone, serde::Serialize)]
pub struct ClassScore {
    pub label: usize,
    pub name: &'static str,
    pub correct: usize,
    pub total: usize,
    pub accuracy: f64,
}

/// The result of `fmtool score`. Its JSON form is described by `schemas/score-report.schema.json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScoreReport {
    /// `None` when the model did not run (see `failure`): the autograder computes no accuracy.
    pub accuracy: Option<f64>,
    /// The autograder's total, out of 100.
    pub points: u32,
    pub points_table: Points,
    pub model: String,
    pub data: String,
    pub grader: Grader,
    pub images: usize,
    pub correct: usize,
    /// The model's input shape and where it came from (full grader only).
    pub input: Option<InputShape>,
    pub parameters: Option<usize>,
    /// Empty when the model did not run.
    pub per_class: Vec<ClassScore>,
    /// `confusion[true][predicted]`; empty when the model did not run.
    pub confusion: Vec<Vec<usize>>,
    /// The course template's step for each layer (classic grader only).
    pub template_steps: Vec<TemplateStep>,
    /// Why the model did not run: the exception the course template raises (classic grader), or
    /// why fmtool's engine cannot build or run it (full grader). The autograder then gives no
    /// points for the model and no accuracy points.
    pub failure: Option<String>,
    /// When the course template crashes but fmtool's engine runs the model: the accuracy the model
    /// itself has, for information (it earns no points until the template runs it).
    pub model_accuracy: Option<f64>,
    pub notes: Vec<String>,
    pub seconds: f64,
    /// Where the seconds went (the JSON always has them; the human report with `--timings`).
    pub timings: Timings,
    #[serde(skip)]
    pub show_timings: bool,
    pub min_accuracy: Option<f64>,
    /// Paths written by `--plot`.
    pub plots: Vec<String>,
    /// What the student's own code and the repo's own workflow give (in a student repository).
    pub grade: Option<crate::autograde::RepoGrade>,
    /// The Python environment fmtool made for the student's workflow (`--setup`), when the
    /// student's code ran in it.
    pub environment: Option<crate::venv::Environment>,
    /// The predicted class of every image, in data order (for the plots).
    #[serde(skip)]
    pub predictions: Vec<usize>,
}

/// Seconds spent in each phase of `fmtool score`, measured inside the process (so without the
/// process's own start-up). `engine` is the forward pass of every image on the engine's threads
/// (pixels to float32 included), the work ONNX Runtime's `InferenceSession.run` does in `cargo
/// xtask bench`. Phases that did not run are 0.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Timings {
    /// Reading and parsing fashion_mnist.json and fashion_mnist.npz.
    pub read_model: f64,
    /// Decoding the IDX images and labels (the embedded copy or --data).
    pub read_data: f64,
    /// Building the engine's layers from the weights (and planning what the course template makes
    /// of them).
    pub build: f64,
    /// The engine's forward pass over all images.
    pub engine: f64,
}

impl ScoreReport {
    pub fn status(&self) -> ExitStatus {
        match (self.min_accuracy, self.accuracy) {
            (Some(min), Some(acc)) if acc < min => ExitStatus::Failure,
            (Some(_), None) => ExitStatus::Failure,
            _ => ExitStatus::Success,
        }
    }
}

/// Loads the data the command should score on.
pub fn load_data(data: Option<&std::path::Path>, split: &str) -> Result<Dataset> {
    let d = match data {
        None => dataset::embedded_test_set(),
        Some(dir) => dataset::load_dir(dir, split)?,
    };
    if d.image_values() != crate::engine::IMAGE_VALUES {
        return Err(err!("{}: images are {}x{}, not the 28x28 of Fashion-MNIST", d.source, d.rows, d.cols));
    }
    Ok(d)
}

/// What one grader made of the model: predictions, or why there are none.
#[derive(Default)]
struct Graded {
    predictions: Option<Vec<usize>>,
    failure: Option<String>,
    input: Option<InputShape>,
    parameters: Option<usize>,
    template_steps: Vec<TemplateStep>,
    /// The engine's outputs, one row per image (full grader only).
    outputs: Option<Array2<f32>>,
}

pub fn run(args: &ScoreArgs, progress: &dyn Progress) -> Result<ScoreReport> {
    let start = Instant::now();
    if let Some(m) = args.min_accuracy
        && !(0.0..=1.0).contains(&m)
    {
        return Err(err!("--min-accuracy {m} is not between 0 and 1"));
    }
    // A model that is not there is an error (exit 2), except in a student repository, where the
    // grader still runs relu and softmax; one that is there but does not parse or run is graded:
    // the autograder gives it no model points.
    let (model_path, root) = student_repo(args)?;
    if root.is_some() {
        // Before any thread starts: a Ctrl-C then kills the student's processes and removes the
        // temporary copy they run in.
        crate::atomic::clean_up_on_signals();
    }
    let mut timings = Timings::default();
    let phase = Instant::now();
    let (paths, files) = match model::read_raw(&model_path) {
        Ok(raw) => (raw.paths.clone(), raw.parse()),
        Err(e) if root.is_some() => {
            let paths = if model_path.extension().is_some_and(|x| x == "json") {
                model::ModelPaths { json: model_path.clone(), npz: model_path.with_extension("npz") }
            } else {
                model::ModelPaths { json: model_path.join(model::JSON_NAME), npz: model_path.join(model::NPZ_NAME) }
            };
            (paths, Err(e))
        }
        Err(e) => return Err(e),
    };
    timings.read_model = phase.elapsed().as_secs_f64();
    let phase = Instant::now();
    let data = load_data(args.data.as_deref(), &args.split)?;
    timings.read_data = phase.elapsed().as_secs_f64();
    let mut notes = Vec::new();
    let model_dir = paths.json.parent().map(|p| p.display().to_string()).unwrap_or_default();
    let mut model_accuracy = None;
    let budget = (!args.no_budget).then_some(&crate::cost::Budget::PER_IMAGE);
    let graded = match args.grader {
        Grader::Full => match &files {
            Err(e) => Graded { failure: Some(e.one_line()), ..Graded::default() },
            // In a student repository the engine's verdict is information: the student's own code
            // decides the points, so nothing the engine finds stops the grading.
            Ok(files) => match grade_full(files, budget, &data, &mut notes, true, progress, &mut timings) {
                Ok(g) => g,
                Err(e) if root.is_some() => Graded { failure: Some(e.one_line()), ..Graded::default() },
                Err(e) => return Err(e),
            },
        },
        Grader::Classic => {
            let graded = grade_classic(files.as_ref(), &data, &mut notes);
            if graded.failure.is_some()
                && let Ok(files) = &files
            {
                // The template crashes; say what the model itself would score once it runs.
                let mut ignored = Vec::new();
                if let Ok(Graded { predictions: Some(preds), .. }) =
                    grade_full(files, budget, &data, &mut ignored, false, progress, &mut Timings::default())
                {
                    let acc = accuracy_of(&preds, &data.labels);
                    model_accuracy = Some(acc);
                    notes.push(format!(
                        "the course template crashes on this model, but fmtool's engine runs it: accuracy {acc:.4} (`fmtool score` without --grader classic). It earns points only once the template runs it: re-export with `fmtool convert model.h5` (Keras' own weight shapes, every Dense with a bias), or change nn_predict.py to handle it"
                    ));
                }
            }
            graded
        }
    };
    let predictions = graded.predictions.unwrap_or_default();
    let engine_outputs = graded.outputs;
    let ran = graded.failure.is_none();
    let (accuracy, correct, per_class, confusion) = if ran {
        let mut confusion = vec![vec![0usize; 10]; 10];
        for (&p, &l) in predictions.iter().zip(&data.labels) {
            confusion[l as usize][p] += 1;
        }
        let correct: usize = (0..10).map(|c| confusion[c][c]).sum();
        let per_class = (0..10)
            .map(|c| {
                let total: usize = confusion[c].iter().sum();
                ClassScore {
                    label: c,
                    name: CLASS_NAMES[c],
                    correct: confusion[c][c],
                    total,
                    accuracy: if total == 0 { 0.0 } else { confusion[c][c] as f64 / total as f64 },
                }
            })
            .collect();
        (Some(correct as f64 / data.len() as f64), correct, per_class, confusion)
    } else {
        (None, 0, Vec::new(), Vec::new())
    };
    // Outside a student repository there is no relu()/softmax() to run: those rows claim nothing.
    let not_run = grader::Outcome::NotRun(
        "not run: no nn_predict.py beside the model folder (run fmtool in your repository, or pass --nn-predict)"
            .into(),
    );
    let table = grader::points(&not_run, &not_run, ran, accuracy);
    let mut report = ScoreReport {
        accuracy,
        points: table.total,
        points_table: table,
        model: model_dir,
        data: data.source.clone(),
        grader: args.grader,
        images: data.len(),
        correct,
        input: graded.input,
        parameters: graded.parameters,
        per_class,
        confusion,
        template_steps: graded.template_steps,
        failure: graded.failure,
        model_accuracy,
        notes,
        seconds: 0.0,
        timings,
        show_timings: args.timings,
        min_accuracy: args.min_accuracy,
        plots: Vec::new(),
        predictions,
        grade: None,
        environment: None,
    };
    if let Some(root) = root {
        let files = files.as_ref().ok();
        let plan = files.map(|f| grader::plan_template(&f.arch, &f.npz));
        let skipped_layers: Vec<String> = match &plan {
            Some(Ok(plan)) => plan
                .steps
                .iter()
                .filter(|s| s.changes_result)
                .map(|s| format!("{} ({})", s.name, s.class_name))
                .collect(),
            _ => Vec::new(),
        };
        let template_predictions = match &plan {
            Some(Ok(plan)) if !skipped_layers.is_empty() => plan
                .run(data.images_f64().view())
                .ok()
                .map(|out| out.rows().into_iter().map(|r| grader::argmax(r.iter().copied())).collect::<Vec<_>>()),
            _ => None,
        };
        let view = crate::autograde::EngineView {
            outputs: engine_outputs.as_ref(),
            template_predictions: template_predictions.as_deref(),
            skipped_layers,
            labels: &data.labels,
        };
        // In one's own repository the code may run without the sandbox where none can be made,
        // and the report says so; `fmtool grade` refuses instead (see commands/grade.rs).
        let isolation = if args.no_isolation {
            crate::student::Isolation::Off("--no-isolation".into())
        } else {
            match crate::student::Isolation::best() {
                Ok(i) => i,
                Err(why) => {
                    report.notes.push(format!(
                        "your code ran without a sandbox: {why}. It ran in a temporary copy of your repository, but could read and write your other files"
                    ));
                    crate::student::Isolation::Off(why)
                }
            }
        };
        let course = match &args.course {
            Some(dir) => crate::repo::course::Course::from_dir(dir)?,
            None => crate::repo::course::Course::embedded(),
        };
        let real_run = match (args.exact, args.audit_sampled) {
            (true, _) => crate::audit::RealRunPolicy::Always,
            (false, true) => crate::audit::RealRunPolicy::Sampled,
            (false, false) => crate::audit::RealRunPolicy::Departures,
        };
        // Without --python, a student's python3 that lacks what the workflow installs is given
        // the environment --setup makes (never in `fmtool grade`: the staff's Python grades).
        let (environment, fix) = if args.python.is_none() && !args.class_grading {
            student_environment(&root, args, progress, &mut report.notes)?
        } else {
            (None, None)
        };
        let env_python = environment.as_ref().map(|e| e.python.clone());
        let opts = crate::audit::RepoOptions {
            python: env_python.as_deref().or(args.python.as_deref()),
            timeout: args.timeout.map(std::time::Duration::from_secs_f64),
            images: data.len(),
            workers: args.workers,
            isolation,
            course: &course,
            real_run,
        };
        progress.start(data.len());
        let grade = crate::audit::grade_repo(&root, &opts, &view, &|n| progress.update(n));
        progress.finish();
        let mut grade = grade?;
        if let (Some(why), Some(fix)) = (&grade.not_run, fix) {
            grade.not_run = Some(format!("{why}; or {fix}"));
        }
        report.environment = environment;
        if args.solutions {
            crate::autograde::show_solutions(&mut grade.diagnosis);
        }
        report.points = grade.points as u32;
        report.points_table = grade.credit_sheet.to_points();
        report.grade = Some(grade);
    }
    if let Some(dir) = &args.plot {
        if ran {
            report.plots = write_plots(dir, &report, &data, args.force)?;
        } else {
            report.notes.push("no plots: the model did not run".into());
        }
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// Without `--python`: when `python3` lacks what the repository's workflow installs, the
/// environment fmtool made for that workflow: found in the cache, or made now with `--setup` (or
/// when the student says yes at a terminal). Otherwise none, and a note that says what python3
/// lacks and how to fix it; a short fix is returned too, for the "not run" line.
fn student_environment(
    root: &Path,
    args: &ScoreArgs,
    progress: &dyn Progress,
    notes: &mut Vec<String>,
) -> Result<(Option<crate::venv::Environment>, Option<String>)> {
    use crate::venv;
    let workflows = crate::repo::workflow::find_workflows(root).unwrap_or_default();
    let requirements = venv::Requirements::of(workflows.iter().find(|w| !w.steps.is_empty()));
    let base = match venv::probe_base(&requirements.names()) {
        Ok(base) => base,
        // No python3 at all: the "not run" rows say so.
        Err(_) if !args.setup => return Ok((None, None)),
        Err(why) => {
            return Err(err!("--setup needs a Python 3 to make the environment from: {why}")
                .with_hint("install Python 3 (with its venv module), or pass --python with one that has NumPy"));
        }
    };
    if base.missing.is_empty() {
        if args.setup {
            notes.push(format!(
                "--setup: {} already has what your workflow installs ({}); nothing was installed",
                base.path.display(),
                requirements.names().join(", ")
            ));
        }
        return Ok((None, None));
    }
    let envs = match venv::envs_dir() {
        Ok(envs) => envs,
        // No cache folder (no HOME): only --setup needs one.
        Err(_) if !args.setup => return Ok((None, None)),
        Err(e) => return Err(e),
    };
    let dir = envs.join(venv::cache_key(&base.version, &base.executable, &requirements.install));
    let broken = match venv::cached(&dir, &requirements) {
        Some(Ok(env)) => return Ok((Some(env), None)),
        Some(Err(why)) => Some(format!(" (the one fmtool made in {} no longer works: {why})", dir.display())),
        None => None,
    };
    let lacks = format!("{} lacks {}, which your workflow installs", base.path.display(), base.missing.join(", "));
    let install = requirements.install.join(" ");
    let question =
        format!("fmtool: {lacks}{}. Install {install} into {}?", broken.as_deref().unwrap_or(""), dir.display());
    if args.setup || progress.ask(&question) {
        let installer = venv::Installer::find();
        let recipe = venv::Recipe { base: &base, requirements: &requirements, dir: &dir, installer: &installer };
        let env = venv::create(&recipe, &|l| progress.say(l))?;
        return Ok((Some(env), None));
    }
    let fix = format!(
        "run `fmtool score --setup` to install {install} into a Python environment fmtool keeps for you ({}; made once, later runs use it), or pass --python with a Python that has them",
        dir.display()
    );
    let short = "run `fmtool score --setup` to install what your workflow installs into a Python environment fmtool keeps for you";
    let consequence = if base.missing.iter().any(|p| p == "numpy") {
        "your code was not run"
    } else {
        "code that imports them fails here but not on the grader"
    };
    notes.push(format!("{lacks}{}: {consequence}. To fix it, {fix}", broken.as_deref().unwrap_or("")));
    Ok((None, Some(short.to_string())))
}

/// The model to score and the student repository to grade with the student's own code: the folder
/// of `--nn-predict`; `--model REPO` when REPO holds nn_predict.py (its model/ is scored); else the
/// folder above the model's when it holds an `nn_predict.py`.
fn student_repo(args: &ScoreArgs) -> Result<(PathBuf, Option<PathBuf>)> {
    let model = args.model.clone();
    if args.no_student_code {
        return Ok((model, None));
    }
    if let Some(file) = &args.nn_predict {
        if !file.is_file() {
            return Err(err!("--nn-predict {}: no such file", file.display()));
        }
        let dir = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        return Ok((model, Some(dir.to_path_buf())));
    }
    if model.join("nn_predict.py").is_file() {
        return Ok((model.join("model"), Some(model)));
    }
    let model_dir = if model.extension().is_some_and(|x| x == "json") {
        model.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf()
    } else {
        model.clone()
    };
    // The folder above the model's, even when the model folder itself is missing.
    let abs = std::path::absolute(&model_dir).map_err(|e| crate::Error::io("read", &model_dir, &e))?;
    let root = abs.parent().filter(|r| r.join("nn_predict.py").is_file()).map(Path::to_path_buf);
    Ok((model, root))
}

/// The fraction of `predictions` equal to `labels`.
fn accuracy_of(predictions: &[usize], labels: &[u8]) -> f64 {
    let correct = predictions.iter().zip(labels).filter(|(p, l)| **p == **l as usize).count();
    correct as f64 / labels.len().max(1) as f64
}

/// The full grader: fmtool's engine. `template_note` adds what the unmodified template does. A
/// model that cannot be built is graded as one that does not run; non-finite outputs are an
/// error (the weights are broken, whatever the grader makes of them).
fn grade_full(
    files: &ModelFiles,
    budget: Option<&crate::cost::Budget>,
    data: &Dataset,
    notes: &mut Vec<String>,
    template_note: bool,
    progress: &dyn Progress,
    timings: &mut Timings,
) -> Result<Graded> {
    let phase = Instant::now();
    let m = match Model::build(&files.arch, &files.npz) {
        Ok(m) => m,
        // A layer over its own cap is refused as a model over the budget is.
        Err(e) if crate::cost::is_too_expensive(&e) => return Err(e),
        Err(e) => return Ok(Graded { failure: Some(e.one_line()), ..Graded::default() }),
    };
    // Over the budget: refused before it runs (exit 2; in a student repository the engine's pass
    // is skipped and the workflow's steps still run).
    let mut m = m;
    if let Some(b) = budget {
        m.within(b)?;
        m.time_limit = Some(crate::cost::TIME_LIMIT);
    }
    if m.input.inferred {
        notes.push(format!(
            "the export carries no input shape; fmtool used {} ({})",
            crate::layers::fmt_shape(&m.input.shape),
            m.input.source
        ));
    }
    if template_note {
        match grader::plan_template(&files.arch, &files.npz) {
            Ok(plan) => {
                let changed: Vec<String> = plan
                    .steps
                    .iter()
                    .filter(|s| s.changes_result)
                    .map(|s| format!("{} ({}, {})", s.name, s.class_name, s.action))
                    .collect();
                if !changed.is_empty() {
                    notes.push(format!(
                        "the unmodified course template does not run these layers as trained: {}; it grades a different model. `fmtool score --grader classic` shows what it gives; {}",
                        changed.join(", "),
                        crate::fold::HINT
                    ));
                }
            }
            Err(e) => notes.push(format!("the unmodified course template would fail on this model: {}", e.message)),
        }
    }
    let input = Some(m.input.clone());
    let parameters = Some(m.params());
    let failed =
        |e: Error| Graded { failure: Some(e.one_line()), input: input.clone(), parameters, ..Graded::default() };
    let out_shape = m.output_shape().clone();
    if out_shape != [10] {
        return Ok(failed(
            err!(
                "the model's output is {} per image; the grader needs 10 class scores",
                crate::layers::fmt_shape(&out_shape)
            )
            .with_hint("end the model with Dense(10, activation=\"softmax\")"),
        ));
    }
    timings.build = phase.elapsed().as_secs_f64();
    progress.start(data.len());
    let phase = Instant::now();
    let out = m.predict_pixels(data.pixel_rows(), &|n| progress.update(n));
    timings.engine = phase.elapsed().as_secs_f64();
    progress.finish();
    let out = match out {
        Ok(out) => out,
        Err(e) => return Ok(failed(e)),
    };
    check_finite(out.iter().map(|&v| v as f64), &out)?;
    let preds = out.rows().into_iter().map(|r| grader::argmax(r.iter().copied())).collect::<Vec<_>>();
    Ok(Graded { predictions: Some(preds), input, parameters, outputs: Some(out), ..Graded::default() })
}

/// The classic grader: the course template's own pass, float64, one image as one (1, 784) row.
fn grade_classic(files: std::result::Result<&ModelFiles, &Error>, data: &Dataset, notes: &mut Vec<String>) -> Graded {
    let files = match files {
        Ok(f) => f,
        Err(e) => {
            return Graded {
                failure: Some(format!("the course template cannot read the model: {}", e.one_line())),
                ..Graded::default()
            };
        }
    };
    let plan = grader::plan_template_pass(&files.arch, &files.npz);
    let outcome = plan.run(data.images_f64().view()).and_then(|out| {
        if out.ncols() != 10 {
            return Err(err!(
                "the course template's forward pass ends with {} values per image, not 10 class scores",
                out.ncols()
            )
            .with_hint("layers the template skips may have changed the shapes; run `fmtool check --grader classic`"));
        }
        check_finite(out.iter().copied(), &out)?;
        Ok(out.rows().into_iter().map(|r| grader::argmax(r.iter().copied())).collect::<Vec<_>>())
    });
    let skipped_changing =
        plan.steps.iter().filter(|s| s.changes_result && s.action != crate::grader::Action::Crashed).count();
    if skipped_changing > 0 {
        notes.push(format!(
            "the course template does not run {skipped_changing} layer(s) as trained; the trained model would score differently. {}",
            crate::fold::HINT
        ));
    }
    match outcome {
        Ok(preds) => Graded { predictions: Some(preds), template_steps: plan.steps, ..Graded::default() },
        Err(e) => Graded { failure: Some(e.one_line()), template_steps: plan.steps, ..Graded::default() },
    }
}

fn check_finite<T>(values: impl Iterator<Item = f64>, out: &Array2<T>) -> Result<()> {
    let bad = values.enumerate().find(|(_, v)| !v.is_finite());
    if let Some((i, v)) = bad {
        let row = i / out.ncols();
        return Err(err!("the model's output for test image {row} is {v}; the grader needs finite class scores")
            .with_hint("run `fmtool check` to look for NaN or infinite weights"));
    }
    Ok(())
}

/// `--plot DIR`: draws the plots and writes them into `dir` (created if missing). A file by a
/// plot's name is replaced when fmtool drew it, else only with `--force`; both are checked
/// before either is written.
fn write_plots(dir: &Path, report: &ScoreReport, data: &Dataset, force: bool) -> Result<Vec<String>> {
    if report.predictions.len() != data.len() {
        return Err(err!(
            "--plot: {} predictions for {} images; nothing was drawn",
            report.predictions.len(),
            data.len()
        ));
    }
    if dir.exists() && !dir.is_dir() {
        return Err(err!("--plot {}: it is a file, not a directory", dir.display()));
    }
    let misclassified: Vec<(usize, usize)> = (0..data.len())
        .filter(|&i| report.predictions[i] != data.labels[i] as usize)
        .map(|i| (i, report.predictions[i]))
        .collect();
    let grader = match report.grader {
        Grader::Full => "full",
        Grader::Classic => "classic",
    };
    let scored = crate::plot::Scored {
        confusion: &report.confusion,
        accuracy: report.accuracy.unwrap_or(0.0),
        correct: report.correct,
        images: report.images,
        model: &report.model,
        data,
        grader,
        misclassified: &misclassified,
    };
    let pictures = crate::plot::render(&scored)?;
    // fmtool's own earlier pictures are replaced; anything else by that name only with --force.
    let theirs = |path: &Path| {
        std::fs::symlink_metadata(path).is_ok()
            && !crate::fsguard::read(path, crate::fsguard::budget::PICTURE)
                .is_ok_and(|b| crate::plot::written_by_fmtool(&b))
    };
    if !force && let Some((name, _)) = pictures.iter().find(|(name, _)| theirs(&dir.join(name))) {
        return Err(err!(
            "--plot: {} already exists and is not a picture fmtool drew; nothing was written",
            dir.join(name).display()
        )
        .with_hint("pass --force to replace it, or choose another --plot directory"));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create the directory", dir, &e))?;
    let mut written = Vec::new();
    for (name, png) in pictures {
        let path = dir.join(name);
        crate::atomic::write_atomic(&path, &png, true)?;
        written.push(path.display().to_string());
    }
    Ok(written)
}
