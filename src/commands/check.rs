//! `fmtool check`: every finding that would make the grader fail or mis-score a model, at once.
//! This module decides which files make up each model (a directory, or files given one by one as
//! a pre-commit hook passes them), reads them, and hands them to `checks`.

use crate::checks::Code;
use crate::checks::layout::{self, convert_command};
use crate::checks::shapes::ShapeSummary;
use crate::checks::stale::{self, KerasSide};
use crate::checks::{self, Finding, Location, ModelView, Severity};
use crate::cli::CheckArgs;
use crate::engine::InputShape;
use crate::error::Result;
use crate::grader::Grader;
use crate::layers::Shape;
use crate::model::{JSON_NAME, NPZ_NAME, Npz};
use crate::text::file_name;
use crate::{ExitStatus, err};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What was checked of one model.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelSummary {
    pub json: String,
    pub npz: String,
    /// The Keras file beside the export (compared with it), or the Keras file checked on its own.
    pub keras: Option<String>,
    pub layers: usize,
    pub input: Option<InputShape>,
    pub output_shape: Option<Shape>,
    pub parameters: Option<usize>,
    /// What one image costs: floating-point operations, and the most bytes of layer outputs alive
    /// at once (`crate::cost`); absent when the shapes do not flow to the end.
    pub flops: Option<u64>,
    pub live_bytes: Option<u64>,
}

/// The result of `fmtool check`; its JSON form is `schemas/check-report.schema.json`.
#[derive(Debug, serde::Serialize)]
pub struct CheckReport {
    pub grader: Grader,
    /// The files that were read.
    pub checked: Vec<String>,
    pub models: Vec<ModelSummary>,
    pub errors: usize,
    pub warnings: usize,
    /// Findings the student's own code, run by fmtool, showed to be harmless.
    pub notes: usize,
    pub findings: Vec<Finding>,
    /// fmtool's runs of the student's own code (one per student repository it ran in).
    pub student_code: Vec<StudentCode>,
    pub seconds: f64,
}

impl CheckReport {
    pub fn status(&self) -> ExitStatus {
        if self.errors > 0 { ExitStatus::Failure } else { ExitStatus::Success }
    }
}

/// The files of one model. `json`/`npz` are `None` when a Keras file is checked on its own.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    pub json: Option<PathBuf>,
    pub npz: Option<PathBuf>,
    pub keras: Option<PathBuf>,
}

const KERAS_EXTS: [&str; 2] = ["h5", "keras"];

/// A Keras file with the same stem as `p` beside it (`fashion_mnist.h5` for `fashion_mnist.json`).
fn keras_beside(p: &Path) -> Option<PathBuf> {
    KERAS_EXTS.iter().map(|e| p.with_extension(e)).find(|k| k.is_file())
}

/// What `fmtool check` looks at: models, and student repositories without a model yet (named by
/// one of their files, as the pre-commit hook passes them), whose own files are still checked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Targets {
    pub units: Vec<Unit>,
    pub repos: Vec<PathBuf>,
}

/// The model in a directory, if one of its files is there.
fn dir_unit(p: &Path) -> Option<Unit> {
    let (json, npz) = (p.join(JSON_NAME), p.join(NPZ_NAME));
    let keras = keras_beside(&json);
    (json.exists() || npz.exists() || keras.is_some()).then_some(Unit { json: Some(json), npz: Some(npz), keras })
}

/// The student repository a file belongs to, when it is one of the files there that decide the
/// grade besides the model: `nn_predict.py`, `model_test.py`, `utils/*.py`, or a workflow
/// (`.github/workflows/*.yml`). A commit that changes only one of them is checked too.
fn repo_of_file(p: &Path) -> Option<PathBuf> {
    let name = p.file_name()?.to_str()?;
    let parent = p.parent()?;
    let root = if name == "nn_predict.py" || name == crate::repo::findings::MODEL_TEST {
        parent
    } else if name.ends_with(".py") && parent.file_name().is_some_and(|d| d == "utils") {
        parent.parent()?
    } else if (name.ends_with(".yml") || name.ends_with(".yaml"))
        && parent.ends_with(crate::repo::workflow::WORKFLOW_DIR)
    {
        parent.parent()?.parent()?
    } else {
        return None;
    };
    Some(root.to_path_buf())
}

/// Works out what to check from the command line: directories, model files (`.json`, `.npz`,
/// `.h5`, `.keras`) whose siblings complete the model, and a student repository's own files,
/// which stand for the repository's model (`model/`) and the repository itself. Fails (exit 2) on
/// paths that do not exist.
pub fn resolve(paths: &[PathBuf]) -> Result<Targets> {
    let default = [PathBuf::from("model")];
    let paths = if paths.is_empty() { &default[..] } else { paths };
    let mut targets = Targets::default();
    for p in paths {
        let unit = if p.is_dir() {
            dir_unit(p).ok_or_else(|| {
                err!("{} holds no model: neither {JSON_NAME} nor {NPZ_NAME} is there", p.display())
                    .with_hint("pass the directory the course notebook exported into, or convert a Keras file first: fmtool convert model.h5")
            })?
        } else if !p.exists() {
            let what = if p.extension().is_some() { "file" } else { "model directory" };
            return Err(err!("{what} {} does not exist", p.display()).with_hint(
                "pass the model directory (holding fashion_mnist.json and fashion_mnist.npz) or its files",
            ));
        } else {
            match p.extension().and_then(|e| e.to_str()) {
                Some("json") => {
                    Unit { json: Some(p.clone()), npz: Some(p.with_extension("npz")), keras: keras_beside(p) }
                }
                Some("npz") => {
                    Unit { json: Some(p.with_extension("json")), npz: Some(p.clone()), keras: keras_beside(p) }
                }
                Some(e) if KERAS_EXTS.contains(&e) => {
                    let (json, npz) = (p.with_extension("json"), p.with_extension("npz"));
                    if json.exists() || npz.exists() {
                        Unit { json: Some(json), npz: Some(npz), keras: Some(p.clone()) }
                    } else {
                        // A Keras file on its own: check what `fmtool convert` would write.
                        Unit { json: None, npz: None, keras: Some(p.clone()) }
                    }
                }
                _ => match repo_of_file(p) {
                    Some(root) => match dir_unit(&root.join("model")) {
                        Some(unit) => unit,
                        None => {
                            if !targets.repos.contains(&root) {
                                targets.repos.push(root);
                            }
                            continue;
                        }
                    },
                    None => {
                        return Err(err!(
                            "{}: fmtool checks .json, .npz, .h5 and .keras files, model directories, and a student repository's nn_predict.py, model_test.py, utils/*.py and .github/workflows files",
                            p.display()
                        ));
                    }
                },
            }
        };
        // One model given by several of its files (as pre-commit passes them) is checked once.
        match targets.units.iter_mut().find(|u| same_model(u, &unit)) {
            Some(u) => {
                if u.keras.is_none() {
                    u.keras = unit.keras;
                }
            }
            None => targets.units.push(unit),
        }
    }
    Ok(targets)
}

fn same_model(a: &Unit, b: &Unit) -> bool {
    let canon = |p: &Option<PathBuf>| p.as_ref().map(|p| normalize(p));
    match (&a.json, &b.json) {
        (Some(_), Some(_)) => canon(&a.json) == canon(&b.json),
        _ => canon(&a.keras) == canon(&b.keras) && a.json.is_none() && b.json.is_none(),
    }
}

/// `./model/x` and `model/x` are the same file (without touching the disk).
fn normalize(p: &Path) -> PathBuf {
    p.components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect()
}

pub fn run(args: &CheckArgs) -> Result<CheckReport> {
    let start = Instant::now();
    let Targets { units, repos } = resolve(&args.paths)?;
    let mut report = CheckReport {
        grader: args.grader,
        checked: Vec::new(),
        models: Vec::new(),
        errors: 0,
        warnings: 0,
        notes: 0,
        findings: Vec::new(),
        student_code: Vec::new(),
        seconds: 0.0,
    };
    // Each model's findings, with the student repository it belongs to (judged with it below).
    let mut by_repo: Vec<(Option<PathBuf>, Vec<Finding>)> = Vec::new();
    for unit in &units {
        let (findings, summary, checked) = check_unit(unit, args.grader, args.no_budget);
        by_repo.push((unit.json.as_deref().and_then(student_repo_root), findings));
        report.models.extend(summary);
        report.checked.extend(checked);
    }
    let course = match &args.course {
        Some(dir) => crate::repo::course::Course::from_dir(dir)?,
        None => crate::repo::course::Course::embedded(),
    };
    let mut roots: Vec<PathBuf> = by_repo.iter().filter_map(|(r, _)| r.clone()).collect();
    roots.extend(repos.iter().filter_map(|r| std::fs::canonicalize(shown_dir(r)).ok()));
    let mut seen: Vec<PathBuf> = Vec::new();
    for root in roots {
        if seen.contains(&root) {
            continue;
        }
        let mut findings: Vec<Finding> = Vec::new();
        for (r, f) in by_repo.iter_mut() {
            if r.as_ref() == Some(&root) {
                findings.append(f);
            }
        }
        findings.extend(repo_findings(&root));
        if !args.no_student_code {
            report.student_code.extend(judge_by_running(&root, &mut findings, args));
        }
        if !args.no_integrity {
            let departures = crate::repo::rules::departures(&root, &course);
            findings.extend(shown_in(&root, crate::repo::rules::findings(&departures, args.strict)));
        }
        report.findings.extend(findings);
        seen.push(root);
    }
    // Models outside a student repository.
    for (_, f) in by_repo {
        report.findings.extend(f);
    }
    for f in &mut report.findings {
        bound(f);
    }
    let count = |s: Severity| report.findings.iter().filter(|f| f.severity == s).count();
    (report.errors, report.warnings, report.notes) =
        (count(Severity::Error), count(Severity::Warning), count(Severity::Note));
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// fmtool's run of a student's own code for `check`.
#[derive(Debug, serde::Serialize)]
pub struct StudentCode {
    /// The repository, as findings name it (`.` for the current folder).
    pub repo: String,
    /// The loader functions of nn_predict.py that are not the course's (empty: the course's loader).
    pub own_loader: Vec<String>,
    /// The interpreter that ran it, and where: `bubblewrap` or `none` (said in `note`).
    pub python: Option<String>,
    pub numpy: Option<String>,
    pub isolation: Option<String>,
    /// Why it did not run, or the sandbox's absence.
    pub note: Option<String>,
    /// How the run went; absent when it did not run.
    pub trial: Option<crate::student::trial::Trial>,
}

/// Images of the test set that `check` runs the student's code on: enough to pass through every
/// layer and branch a model has, few enough for a commit hook (a typical MLP repository takes well
/// under a second).
pub const TRIAL_IMAGES: usize = 8;
/// The longest the run may take before check gives up on it (a warning, never an error).
const TRIAL_TIME: std::time::Duration = std::time::Duration::from_secs(20);

/// Runs the student's code on the tests' path when the findings hold something only the code can
/// decide (see `repo::verdict`), and judges the findings by it. At most two starts of Python: one
/// that says its versions, and the harness that forks the run.
fn judge_by_running(root: &Path, findings: &mut Vec<Finding>, args: &CheckArgs) -> Option<StudentCode> {
    use crate::repo::verdict::{Run, judge, needs_run};
    let text = std::fs::read_to_string(root.join("nn_predict.py")).ok()?;
    let own_loader = crate::repo::loader::changed_loader_functions(&text);
    if !needs_run(findings, !own_loader.is_empty()) {
        return None;
    }
    let shown = shown_root(root);
    let mut record = StudentCode {
        repo: shown_dir(&shown).display().to_string(),
        own_loader: own_loader.iter().map(|s| s.to_string()).collect(),
        python: None,
        numpy: None,
        isolation: None,
        note: None,
        trial: None,
    };
    let ran = run_trial(root, args, &mut record);
    let before = findings.len();
    match &ran {
        Ok(trial) => judge(findings, &own_loader, &Run::Ran(trial), "nn_predict.py", Some(&text)),
        Err(why) => judge(findings, &own_loader, &Run::NotRun(why.clone()), "nn_predict.py", Some(&text)),
    }
    // The findings the verdict added name files of the repository: shown like the others.
    let added = findings.split_off(before);
    findings.extend(shown_in(root, added));
    match ran {
        Ok(trial) => record.trial = Some(trial),
        Err(why) => record.note = Some(why),
    }
    Some(record)
}

/// The run itself: the student's Python, the sandbox (or, in one's own repository, none, said
/// once), the grader's modules, and the harness's `trial`.
fn run_trial(
    root: &Path,
    args: &CheckArgs,
    record: &mut StudentCode,
) -> std::result::Result<crate::student::trial::Trial, String> {
    use crate::student::{Isolation, Runner};
    if !root.join(crate::repo::findings::MODEL_TEST).is_file() {
        return Err("the repository has no model_test.py, whose import path the tests take".into());
    }
    let python = crate::student::discover::student_python(root, args.python.as_deref())?;
    record.python = Some(format!("{} (Python {})", python.path.display(), python.version));
    record.numpy = Some(python.numpy.clone());
    let isolation = Isolation::best().unwrap_or_else(|why| {
        record.note = Some(format!(
            "your code ran without a sandbox ({why}), in a temporary copy of your repository, but could read and write your other files"
        ));
        Isolation::Off(why)
    });
    record.isolation = Some(isolation.name().to_string());
    let workflows = crate::repo::workflow::find_workflows(root).unwrap_or_default();
    let allowed = crate::audit::allowed_modules(root, workflows.iter().find(|w| !w.steps.is_empty()));
    let runner = Runner::new(root, python, Some(&allowed), isolation).map_err(|e| e.message)?;
    runner.trial(TRIAL_IMAGES, TRIAL_TIME).map_err(|e| e.message)
}

/// `.` for the empty path of a file's folder (`nn_predict.py`'s parent).
fn shown_dir(dir: &Path) -> &Path {
    if dir.as_os_str().is_empty() { Path::new(".") } else { dir }
}

/// The student repository a model belongs to: the folder above the model's folder, when it holds
/// `nn_predict.py`, `model_test.py` or a `.github/workflows` folder.
fn student_repo_root(json: &Path) -> Option<PathBuf> {
    let root = std::fs::canonicalize(shown_dir(json.parent()?)).ok()?.parent()?.to_path_buf();
    let is_repo = root.join("nn_predict.py").is_file()
        || root.join("model_test.py").is_file()
        || root.join(crate::repo::workflow::WORKFLOW_DIR).is_dir();
    is_repo.then_some(root)
}

/// The findings about a student repository itself: its workflow (steps that cannot run, thresholds
/// that differ from their names, tests model_test.py lacks), the imports of nn_predict.py that
/// the grader does not have, and the paths on the student's computer that model_test.py and
/// nn_predict.py name. File names are shown relative to the current folder.
fn repo_findings(root: &Path) -> Vec<Finding> {
    use crate::repo::paths::{self, Role};
    use crate::repo::{findings, lint, tests_py, workflow};
    let mut out = Vec::new();
    let workflows = match workflow::find_workflows(root) {
        Ok(w) => w,
        Err(e) => {
            out.push(
                Finding::error(Code::WorkflowUnreadable, Location::file(workflow::WORKFLOW_DIR), e.message)
                    .maybe_hint(e.hint),
            );
            Vec::new()
        }
    };
    let model_test_text = std::fs::read_to_string(root.join("model_test.py")).ok();
    let model_test = model_test_text.as_deref().map(tests_py::read_model_test);
    out.extend(findings::workflow_findings(root, &workflows, model_test.as_ref()));
    let nn_predict_text = std::fs::read_to_string(root.join("nn_predict.py")).ok();
    if let Some(text) = &nn_predict_text {
        let available = if workflows.iter().any(|w| !w.steps.is_empty()) {
            lint::Available::from_repo(root, &workflows)
        } else {
            let course: Vec<String> = crate::autograde::COURSE_PACKAGES.iter().map(|s| s.to_string()).collect();
            lint::Available::new(&course, &lint::own_modules(root))
        };
        out.extend(lint::lint_nn_predict("nn_predict.py", text, &available));
    }
    // Only a relative path is looked up in the repository (for the hint's path).
    let in_repo = |rel: &str| Path::new(rel).is_relative() && root.join(rel).exists();
    for (file, role, text) in
        [("model_test.py", Role::ModelTest, &model_test_text), ("nn_predict.py", Role::NnPredict, &nn_predict_text)]
    {
        if let Some(text) = text {
            out.extend(paths::runner_missing_paths(file, role, text, &in_repo));
        }
    }
    shown_in(root, out)
}

/// The repository as findings name it: relative to the current folder (empty for the folder itself).
fn shown_root(root: &Path) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| root.strip_prefix(&cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| root.to_path_buf())
}

/// Findings with their files named relative to the current folder.
fn shown_in(root: &Path, mut out: Vec<Finding>) -> Vec<Finding> {
    let shown_root = shown_root(root);
    if shown_root.as_os_str().is_empty() {
        return out;
    }
    for f in &mut out {
        f.location.file = shown_root.join(&f.location.file).display().to_string();
    }
    out
}

fn shown(p: &Path) -> String {
    p.display().to_string()
}

/// Checks one model; returns its findings in file and position order, its summary and the files read.
pub fn check_unit(unit: &Unit, grader: Grader, no_budget: bool) -> (Vec<Finding>, Option<ModelSummary>, Vec<String>) {
    let (Some(json), Some(npz_path)) = (&unit.json, &unit.npz) else {
        let keras = unit.keras.as_ref().expect("a unit has a json or a Keras file");
        return check_keras_alone(keras, grader, no_budget);
    };
    let json_s = shown(json);
    let npz_s = shown(npz_path);
    let keras_s = unit.keras.as_deref().map(shown);
    let out_dir = json.parent().map(shown).filter(|d| !d.is_empty());
    let convert = match &keras_s {
        Some(k) => convert_command(Some(k), out_dir.as_deref()),
        None => convert_command(None, out_dir.as_deref()),
    };
    let mut checked = Vec::new();
    let mut findings = Vec::new();
    // A FIFO, device or oversized file is refused by fsguard, never read.
    let (parsed, f) = if std::fs::symlink_metadata(json).is_err() {
        (None, vec![layout::missing(&json_s, &convert)])
    } else {
        match crate::fsguard::read(json, crate::fsguard::budget::JSON) {
            Ok(bytes) => layout::check_bytes(&bytes, &json_s, &convert),
            Err(e) => {
                let hint = e.hint.unwrap_or_else(|| "check the file's permissions".into());
                (None, vec![Finding::error(Code::MissingFile, Location::file(&json_s), e.message).hint(hint)])
            }
        }
    };
    findings.extend(f);
    if json.exists() {
        checked.push(json_s.clone());
    }
    let npz = if !npz_path.exists() {
        findings.push(
            Finding::error(Code::MissingFile, Location::file(&npz_s), format!("{} is missing", file_name(&npz_s)))
                .hint(format!("export the weights with the course notebook, or run `{convert}`")),
        );
        None
    } else {
        checked.push(npz_s.clone());
        match crate::model::npz::read_npz(npz_path) {
            Ok(n) => Some(n),
            Err(e) => {
                findings
                    .push(Finding::error(Code::UnreadableNpz, Location::file(&npz_s), e.message).maybe_hint(e.hint));
                None
            }
        }
    };
    let empty = Vec::new();
    let (arch, complete) = match &parsed {
        Some(p) => (&p.entries, p.complete),
        None => (&empty, false),
    };
    let view = ModelView::new(&json_s, &npz_s, arch, complete, npz.as_ref(), grader);
    let mut summary = None;
    if parsed.is_some() {
        let (f, s) = checks::check_model(&view);
        findings.extend(f);
        findings.extend(budget_finding(&json_s, arch, s.as_ref(), no_budget));
        summary = s;
    } else if let Some(n) = &npz {
        // The JSON is unusable, but the arrays can still be checked on their own.
        findings.extend(checks::arrays::check(&view, n));
    }
    if let (Some(k), Some(ks)) = (&unit.keras, &keras_s) {
        checked.push(ks.clone());
        if parsed.is_some() && npz.is_some() {
            match crate::keras::read_model(k) {
                Ok(mut m) => {
                    let (entries, knpz) = m.take_course(k);
                    let newer = modified(k).zip(modified(npz_path)).and_then(|(a, b)| (a != b).then_some(a > b));
                    let side = KerasSide { file: ks, entries: &entries, npz: &knpz, newer };
                    findings.extend(stale::check(&view, &side, &convert));
                }
                Err(e) => findings.push(
                    Finding::warning(
                        Code::UnreadableKeras,
                        Location::file(ks),
                        format!("cannot compare {} with the export: {}", file_name(ks), e.message),
                    )
                    .maybe_hint(e.hint),
                ),
            }
        }
    }
    sort_by_place(&mut findings, &[&json_s, &npz_s, keras_s.as_deref().unwrap_or("")], npz.as_ref());
    let model = ModelSummary {
        json: json_s,
        npz: npz_s,
        keras: keras_s,
        layers: arch.len(),
        input: summary.as_ref().and_then(|s: &ShapeSummary| s.input.clone()),
        output_shape: summary.as_ref().and_then(|s| s.output_shape.clone()),
        parameters: summary.as_ref().and_then(|s| s.parameters),
        flops: summary.as_ref().and_then(|s| s.cost.as_ref()).map(|c| c.flops),
        live_bytes: summary.as_ref().and_then(|s| s.cost.as_ref()).map(|c| c.live_bytes),
    };
    (findings, Some(model), checked)
}

/// A Keras file given on its own: the checks run on what `fmtool convert` would write from it, and
/// findings point into that (`model.h5::$[3]`).
fn check_keras_alone(
    keras: &Path,
    grader: Grader,
    no_budget: bool,
) -> (Vec<Finding>, Option<ModelSummary>, Vec<String>) {
    let ks = shown(keras);
    let mut m = match crate::keras::read_model(keras) {
        Ok(m) => m,
        Err(e) => {
            let f = Finding::error(Code::UnreadableKeras, Location::file(&ks), e.message).maybe_hint(e.hint);
            return (vec![f], None, vec![ks]);
        }
    };
    let (entries, npz) = m.take_course(keras);
    let view = ModelView::new(&ks, &ks, &entries, true, Some(&npz), grader);
    let (mut findings, s) = checks::check_model(&view);
    findings.extend(budget_finding(&ks, &entries, s.as_ref(), no_budget));
    sort_by_place(&mut findings, &[&ks], Some(&npz));
    let model = ModelSummary {
        json: ks.clone(),
        npz: ks.clone(),
        keras: Some(ks.clone()),
        layers: entries.len(),
        input: s.as_ref().and_then(|s| s.input.clone()),
        output_shape: s.as_ref().and_then(|s| s.output_shape.clone()),
        parameters: s.as_ref().and_then(|s| s.parameters),
        flops: s.as_ref().and_then(|s| s.cost.as_ref()).map(|c| c.flops),
        live_bytes: s.as_ref().and_then(|s| s.cost.as_ref()).map(|c| c.live_bytes),
    };
    (findings, Some(model), vec![ks])
}

/// A model whose image costs more than the budget: an error at the layer where its operations pass
/// the budget (the one at the live bytes' peak when only those are over), with the figures; a
/// warning under `--no-budget`.
fn budget_finding(
    json: &str,
    arch: &[crate::model::ArchEntry],
    s: Option<&ShapeSummary>,
    no_budget: bool,
) -> Option<Finding> {
    use crate::cost::Budget;
    let cost = s?.cost.as_ref()?;
    let why = cost.over(&Budget::PER_IMAGE)?;
    let layer = cost.culprit(&Budget::PER_IMAGE);
    let location = match arch.iter().find(|e| Some(e.name.as_str()) == layer) {
        Some(e) => Location::entry(json, e),
        None => Location::file(json),
    };
    let severity = if no_budget { Severity::Warning } else { Severity::Error };
    let then = if no_budget {
        "with --no-budget fmtool runs it, for hours or all the memory"
    } else {
        "fmtool score and predict refuse to run it"
    };
    Some(
        Finding::new(
            Code::OverBudget,
            severity,
            location,
            format!("the model is {}: {why}; {then}", crate::cost::TOO_EXPENSIVE),
        )
        .hint(crate::cost::HINT),
    )
}

fn modified(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Bounds what one finding can print: messages and hints quote names, keys and headers from the
/// student's files, so each is clipped (2000 npz members with 1 MiB headers once printed 2 GB) and
/// its control characters escaped (a layer name may hold terminal escapes), in both formats.
fn bound(f: &mut Finding) {
    use crate::text::clip;
    f.message = clip(&f.message, 1000);
    f.hint = f.hint.as_deref().map(|h| clip(h, 1000));
    let l = &mut f.location;
    l.file = clip(&l.file, 300);
    for s in [&mut l.pointer, &mut l.key, &mut l.layer].into_iter().flatten() {
        *s = clip(s, 200);
    }
}

/// Orders findings as a compiler does: by file, then by position in it (whole-file findings first,
/// then JSON entries in list order, npz members in archive order); ties keep check order.
fn sort_by_place(findings: &mut [Finding], files: &[&str], npz: Option<&Npz>) {
    // Member positions hashed once: a linear search per comparison was quadratic in the members.
    let mut member: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, e) in npz.map(|n| n.entries.as_slice()).unwrap_or(&[]).iter().enumerate() {
        member.entry(e.key.as_str()).or_insert(i);
    }
    let rank = |f: &Finding| -> (usize, i64) {
        let file = files.iter().position(|x| *x == f.location.file).unwrap_or(files.len());
        let pos = if let Some(p) = &f.location.pointer {
            p.strip_prefix("$[").and_then(|r| r.split(']').next()).and_then(|i| i.parse::<i64>().ok()).unwrap_or(-1)
        } else if let Some(k) = &f.location.key {
            member.get(k.as_str()).map(|&i| i as i64).unwrap_or(-1)
        } else {
            -1
        };
        (file, pos)
    };
    findings.sort_by_cached_key(rank);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_of_one_model_are_one_unit() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in ["fashion_mnist.json", "fashion_mnist.npz", "fashion_mnist.h5", "other.keras"] {
            std::fs::write(d.join(f), b"x").unwrap();
        }
        let units = resolve(&[d.join("fashion_mnist.npz"), d.join("fashion_mnist.json"), d.join("fashion_mnist.h5")])
            .unwrap()
            .units;
        assert_eq!(units.len(), 1);
        assert_eq!(units[0].json.as_deref(), Some(d.join("fashion_mnist.json").as_path()));
        assert_eq!(units[0].keras.as_deref(), Some(d.join("fashion_mnist.h5").as_path()));
        // A directory finds the same files.
        assert_eq!(resolve(&[d.to_path_buf()]).unwrap().units, units);
        // A Keras file without an export beside it is checked on its own.
        let alone = resolve(&[d.join("other.keras")]).unwrap().units;
        assert_eq!(alone, vec![Unit { json: None, npz: None, keras: Some(d.join("other.keras")) }]);
    }

    /// The pre-commit hooks pass a student repository's own files too: each stands for the
    /// repository's model, or, without one, for the repository alone.
    #[test]
    fn repository_files_stand_for_their_model_and_repository() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in
            ["nn_predict.py", "model_test.py", "utils/mnist_reader.py", ".github/workflows/classroom.yml", "README.md"]
        {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        let files: Vec<PathBuf> =
            ["nn_predict.py", "model_test.py", "utils/mnist_reader.py", ".github/workflows/classroom.yml"]
                .iter()
                .map(|f| root.join(f))
                .collect();
        assert_eq!(resolve(&files).unwrap(), Targets { units: vec![], repos: vec![root.to_path_buf()] });
        std::fs::create_dir(root.join("model")).unwrap();
        std::fs::write(root.join("model/fashion_mnist.json"), "[]").unwrap();
        let model = resolve(&[root.join("model")]).unwrap();
        assert_eq!(resolve(&files).unwrap(), model);
        // One model, however many of its repository's files are given.
        let mut both = files.clone();
        both.push(root.join("model/fashion_mnist.json"));
        assert_eq!(resolve(&both).unwrap().units.len(), 1);
        // Other files of the repository are no target.
        let e = resolve(&[root.join("README.md")]).unwrap_err();
        assert!(e.message.contains("nn_predict.py, model_test.py, utils/*.py"), "{}", e.message);
        assert_eq!(repo_of_file(Path::new("nn_predict.py")), Some(PathBuf::new()));
        assert_eq!(repo_of_file(Path::new("hw/utils/x.py")), Some(PathBuf::from("hw")));
        assert_eq!(repo_of_file(Path::new("workflows/x.yml")), None);
        assert_eq!(repo_of_file(Path::new("lib/x.py")), None);
    }

    #[test]
    fn paths_that_do_not_exist_cannot_be_checked() {
        let e = resolve(&[PathBuf::from("no/such/dir")]).unwrap_err();
        assert!(e.message.contains("no/such/dir"));
        let dir = tempfile::tempdir().unwrap();
        let e = resolve(&[dir.path().to_path_buf()]).unwrap_err();
        assert!(e.message.contains("holds no model"), "{}", e.message);
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        assert!(resolve(&[dir.path().join("notes.txt")]).is_err());
    }

    #[test]
    fn findings_sort_by_file_and_position() {
        let f = |file: &str, pointer: Option<&str>| {
            let loc = Location { file: file.into(), pointer: pointer.map(String::from), ..Location::default() };
            Finding::warning(Code::NoSoftmax, loc, "m")
        };
        let mut v =
            vec![f("b.npz", None), f("a.json", Some("$[10]")), f("a.json", Some("$[2].weights[0]")), f("a.json", None)];
        sort_by_place(&mut v, &["a.json", "b.npz"], None);
        let order: Vec<(String, Option<String>)> =
            v.iter().map(|f| (f.location.file.clone(), f.location.pointer.clone())).collect();
        assert_eq!(
            order,
            [
                ("a.json".to_string(), None),
                ("a.json".to_string(), Some("$[2].weights[0]".to_string())),
                ("a.json".to_string(), Some("$[10]".to_string())),
                ("b.npz".to_string(), None)
            ]
        );
    }
}
