//! What a student repository's own workflow awards, step by step, and what the course's credit
//! sheet awards, both computed by running the repo's own `model_test.py` tests on the student's
//! own `nn_predict.py` (through [`crate::student::Runner`]) the way each command-grader step runs
//! them: one pytest process per step, in workflow order, in one checkout, so that the
//! `test_acc.txt` one step writes is what the next step reads.

use crate::grader::ACCURACY_TIERS;
use crate::repo::workflow::{Command, Setup, Step, TestNode, Workflow, interpret, interpret_setup};
use crate::student::{InferenceRun, Inspect, NodeResult, Runner};
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;

/// The course's test file; fmtool runs tests from it only.
pub const TEST_FILE: &str = "model_test.py";

pub use crate::grader::Status;

/// One workflow step and what it awards.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub name: String,
    pub file: String,
    pub line: usize,
    pub setup_command: String,
    pub command: String,
    pub points: u64,
    pub max: u64,
    pub passed: bool,
    pub status: Status,
    /// What happened, as the student should read it.
    pub message: String,
    /// The test functions the step runs.
    pub tests: Vec<String>,
    pub timeout_seconds: f64,
    /// How long the step's tests ran here (for test_inference: the serial estimate).
    pub seconds: f64,
    /// The workflow's own command, run as GitHub runs it, awarded other points than fmtool's
    /// harness (the points are the command's; the message says both).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub differs: bool,
}

/// The points a repo's workflow awards.
#[derive(Debug, Clone, Serialize)]
pub struct WorkflowPoints {
    pub file: String,
    pub steps: Vec<StepResult>,
    pub total: u64,
    pub max: u64,
}

/// One row of the course's credit sheet, run from the repo's own tests.
#[derive(Debug, Clone, Serialize)]
pub struct SheetRow {
    pub item: String,
    pub test: String,
    pub points: u64,
    pub max: u64,
    pub passed: bool,
    pub status: Status,
    pub message: String,
}

/// The credit sheet: what a workflow without the course's defects would award.
#[derive(Debug, Clone, Serialize)]
pub struct CreditSheet {
    pub rows: Vec<SheetRow>,
    pub total: u64,
    pub max: u64,
}

impl CreditSheet {
    /// The sheet as the score report's points table.
    pub fn to_points(&self) -> crate::grader::Points {
        let items: Vec<crate::grader::PointsItem> = self
            .rows
            .iter()
            .map(|r| crate::grader::PointsItem {
                item: r.item.clone(),
                earned: r.points as u32,
                max: r.max as u32,
                passed: r.passed,
                status: r.status,
                note: (!r.passed).then(|| r.message.clone()),
            })
            .collect();
        crate::grader::Points { total: self.total as u32, max: self.max as u32, items }
    }
}

/// The credit sheet's items and the test of model_test.py each one runs.
pub fn sheet_items() -> Vec<(String, String, u64)> {
    let mut items = vec![
        ("relu".to_string(), "test_relu".to_string(), 10),
        ("softmax".to_string(), "test_softmax".to_string(), 10),
        ("valid model that runs inference".to_string(), "test_inference".to_string(), 50),
    ];
    for (t, p) in ACCURACY_TIERS {
        items.push((format!("accuracy >= {t:.2}"), format!("test_acc_{:.0}", t * 100.0), p as u64));
    }
    items
}

/// A credit sheet of rows that were not run, with the reason.
pub fn sheet_not_run(why: &str) -> CreditSheet {
    let rows: Vec<SheetRow> = sheet_items()
        .into_iter()
        .map(|(item, test, max)| SheetRow {
            item,
            test,
            points: 0,
            max,
            passed: false,
            status: Status::NotRun,
            message: why.to_string(),
        })
        .collect();
    let max = rows.iter().map(|r| r.max).sum();
    CreditSheet { rows, total: 0, max }
}

/// Runs tests of one repo, remembering results: the same tests are run again only when the
/// `test_acc.txt` they may read has changed, and `test_inference` (the slow one) once.
pub struct Evaluator<'a> {
    runner: &'a Runner,
    pub inspect: Inspect,
    /// One process's tests and the test_acc.txt it saw, and how it went.
    cache: HashMap<(Vec<String>, Option<String>), Ran>,
    /// The repository's own t10k labels, in file order (what its test_inference compares with).
    pub labels: Option<Vec<u8>>,
    pub inference: Option<InferenceRun>,
    /// Replaces every step's time limit (`--timeout`).
    pub timeout_override: Option<Duration>,
    progress: &'a (dyn Fn(usize) + Sync),
    images: usize,
}

/// The outcome of one group of tests (one step, or one credit-sheet row).
#[derive(Clone)]
struct Ran {
    passed: bool,
    message: String,
    seconds: f64,
}

impl<'a> Evaluator<'a> {
    pub fn new(
        runner: &'a Runner,
        inspect: Inspect,
        images: usize,
        progress: &'a (dyn Fn(usize) + Sync),
    ) -> Evaluator<'a> {
        Evaluator {
            runner,
            inspect,
            cache: HashMap::new(),
            labels: None,
            inference: None,
            timeout_override: None,
            progress,
            images,
        }
    }

    fn test_acc(&self) -> Option<String> {
        self.runner.read_in_copy("test_acc.txt")
    }

    /// Runs `tests` (function names of model_test.py) in order, as one pytest command does.
    fn run(&mut self, tests: &[String], timeout: Duration) -> Ran {
        if !self.inspect.exists {
            return Ran {
                passed: false,
                message: format!("there is no {TEST_FILE}: pytest exits 4 (file or directory not found)"),
                seconds: 0.0,
            };
        }
        let mut seconds = 0.0;
        let mut i = 0;
        while i < tests.len() {
            if tests[i] == "test_inference" && self.inspect.course_inference {
                let run = self.inference(timeout);
                seconds += run.serial_seconds;
                if !run.passed {
                    return Ran { passed: false, message: inference_message(run, timeout), seconds };
                }
                i += 1;
                continue;
            }
            // The tests up to the next parallel test_inference run in one process, which passes
            // them when it exits 0.
            let mut j = i;
            while j < tests.len() && !(tests[j] == "test_inference" && self.inspect.course_inference) {
                j += 1;
            }
            let key = (tests[i..j].to_vec(), self.test_acc());
            let ran = match self.cache.get(&key) {
                Some(r) => r.clone(),
                None => {
                    let run = self.runner.tests(&tests[i..j], timeout);
                    let message = if run.passed {
                        "passed".to_string()
                    } else if let Some(f) = &run.failure {
                        f.clone()
                    } else {
                        match run.results.iter().find(|r| !r.passed) {
                            Some(r) => node_message(r, key.1.as_deref()),
                            None => format!("{} failed", tests[i..j].join(", ")),
                        }
                    };
                    let ran = Ran { passed: run.passed, message, seconds: run.seconds };
                    self.cache.insert(key, ran.clone());
                    ran
                }
            };
            seconds += ran.seconds;
            if !ran.passed {
                return Ran { passed: false, message: ran.message, seconds };
            }
            i = j;
        }
        if seconds > timeout.as_secs_f64() {
            return Ran {
                passed: false,
                message: format!(
                    "the tests took {seconds:.0} s here, longer than the step's timeout of {:.0} s",
                    timeout.as_secs_f64()
                ),
                seconds,
            };
        }
        Ran { passed: true, message: "passed".into(), seconds }
    }

    fn inference(&mut self, timeout: Duration) -> &InferenceRun {
        if self.inference.is_none() {
            let run = self
                .runner
                .parallel_inference(
                    self.images,
                    timeout,
                    self.inspect.output_file.as_deref(),
                    self.labels.as_deref(),
                    self.progress,
                )
                .unwrap_or_else(|e| InferenceRun {
                    passed: false,
                    accuracy: None,
                    error: Some(e.message),
                    exception: None,
                    workers: 0,
                    seconds: 0.0,
                    serial_seconds: 0.0,
                    timed_out: false,
                    outputs: None,
                    predictions: None,
                });
            self.inference = Some(run);
        }
        self.inference.as_ref().expect("set above")
    }

    /// The functions a node id selects.
    fn expand(&self, node: &TestNode) -> std::result::Result<Vec<String>, String> {
        if node.file != TEST_FILE {
            return Err(format!("fmtool runs the tests of {TEST_FILE} only, not {}", node.file));
        }
        match &node.function {
            Some(f) => Ok(vec![f.clone()]),
            None => Ok(self.inspect.tests.clone()),
        }
    }

    /// What every command-grader step of `workflow` awards, in order.
    pub fn workflow(&mut self, workflow: &Workflow) -> WorkflowPoints {
        let mut pytest_installed = false;
        let mut steps = Vec::new();
        for step in &workflow.steps {
            steps.push(self.step(&workflow.file, step, &mut pytest_installed));
        }
        let total = steps.iter().map(|s| s.points).sum();
        WorkflowPoints { file: workflow.file.clone(), steps, total, max: workflow.max_total() }
    }

    fn step(&mut self, file: &str, step: &Step, pytest_installed: &mut bool) -> StepResult {
        let timeout = self.timeout_override.unwrap_or(Duration::from_secs_f64(step.timeout_seconds().max(1.0)));
        let command = step.command.clone().unwrap_or_default();
        let setup = step.setup_command.clone().unwrap_or_default();
        let mut result = StepResult {
            name: step.title(),
            file: file.to_string(),
            line: step.line,
            setup_command: setup.clone(),
            command: command.clone(),
            points: 0,
            max: step.max_score,
            passed: false,
            status: Status::Failed,
            message: String::new(),
            tests: Vec::new(),
            timeout_seconds: timeout.as_secs_f64(),
            seconds: 0.0,
            differs: false,
        };
        let mut setup_note = None;
        match interpret_setup(&setup) {
            Setup::PipInstall { packages, .. } => *pytest_installed |= packages.iter().any(|p| p == "pytest"),
            Setup::Empty => {}
            Setup::Other { reason } => setup_note = Some(format!("fmtool did not run the setup-command ({reason})")),
        }
        match interpret(&command) {
            Command::Empty => result.message = "the step has no command; the action fails it".into(),
            Command::NotFound { program } => {
                result.message = format!("sh: 1: {program}: not found (exit 127): this step gives 0 points to everyone")
            }
            Command::Other { reason } => {
                result.status = Status::NotRun;
                result.message = format!("fmtool cannot evaluate this command: {reason}");
            }
            Command::Pytest { nodes, .. } => {
                if !*pytest_installed {
                    result.message =
                        "sh: 1: pytest: not found (exit 127): no setup-command up to this step installs pytest".into();
                } else {
                    let nodes = if nodes.is_empty() {
                        vec![TestNode { file: TEST_FILE.into(), function: None }]
                    } else {
                        nodes
                    };
                    let mut tests = Vec::new();
                    let mut bad = None;
                    for n in &nodes {
                        match self.expand(n) {
                            Ok(t) => tests.extend(t),
                            Err(e) => bad = Some(e),
                        }
                    }
                    result.tests = tests.clone();
                    if let Some(b) = bad {
                        result.status = Status::NotRun;
                        result.message = b;
                    } else if tests.is_empty() {
                        result.message = format!("{TEST_FILE} has no tests: pytest exits 5 (no tests ran)");
                    } else {
                        let ran = self.run(&tests, timeout);
                        result.passed = ran.passed;
                        result.status = if ran.passed { Status::Passed } else { Status::Failed };
                        result.message = ran.message;
                        result.seconds = ran.seconds;
                    }
                }
            }
        }
        if let Some(n) = setup_note {
            result.message = format!("{}; {n}", result.message);
        }
        if result.passed {
            result.points = step.max_score;
        }
        result
    }

    /// The credit sheet's items, each run from the repo's own tests (test_inference first, so that
    /// the accuracy tests read the accuracy it writes).
    pub fn credit_sheet(&mut self, timeout: Duration) -> CreditSheet {
        let timeout = self.timeout_override.unwrap_or(timeout);
        let items = sheet_items();
        let inference_first: Vec<usize> = std::iter::once(2).chain((0..items.len()).filter(|&i| i != 2)).collect();
        let mut rows: Vec<Option<SheetRow>> = vec![None; items.len()];
        for i in inference_first {
            let (item, test, max) = items[i].clone();
            let available = self.inspect.tests.iter().any(|t| t == &test);
            let ran = if self.inspect.exists && !available {
                Ran {
                    passed: false,
                    message: format!("{TEST_FILE} has no {test}: pytest exits 4 (not found)"),
                    seconds: 0.0,
                }
            } else {
                self.run(std::slice::from_ref(&test), timeout)
            };
            rows[i] = Some(SheetRow {
                item,
                test,
                points: if ran.passed { max } else { 0 },
                max,
                passed: ran.passed,
                status: if ran.passed { Status::Passed } else { Status::Failed },
                message: ran.message,
            });
        }
        let rows: Vec<SheetRow> = rows.into_iter().flatten().collect();
        let total = rows.iter().map(|r| r.points).sum();
        let max = rows.iter().map(|r| r.max).sum();
        CreditSheet { rows, total, max }
    }
}

fn inference_message(run: &InferenceRun, timeout: Duration) -> String {
    if run.timed_out || run.serial_seconds > timeout.as_secs_f64() {
        return format!(
            "test_inference would take about {:.0} s in the grader's one process, longer than the step's timeout of {:.0} s",
            run.serial_seconds,
            timeout.as_secs_f64()
        );
    }
    match (&run.exception, &run.error) {
        (Some(e), _) => {
            let img = e.image.map(|i| format!(" on test image {i}")).unwrap_or_default();
            format!(
                "test_inference prints \"Error! {}\" and fails: {}{img}",
                crate::text::clip(&e.message, 200),
                e.summary()
            )
        }
        (None, Some(m)) => format!("test_inference prints \"Error! {}\" and fails", crate::text::clip(m, 300)),
        (None, None) => "test_inference failed".into(),
    }
}

fn node_message(r: &NodeResult, test_acc: Option<&str>) -> String {
    if r.missing {
        return format!("{TEST_FILE} has no {}: pytest exits 4 (not found)", r.node);
    }
    let Some(e) = &r.error else { return format!("{} failed", r.node) };
    if r.collect {
        return format!("{TEST_FILE} cannot be imported, so every test fails: {}", e.summary());
    }
    if e.kind == "AssertionError" && e.message.trim().is_empty() {
        let src = e.frames.last().map(|f| format!(" ({}:{}: {})", f.file, f.line, f.source)).unwrap_or_default();
        let acc = if r.node.starts_with("test_acc") {
            match test_acc {
                Some(a) => format!(" with test_acc.txt = {}", crate::text::clip(a.trim(), 40)),
                None => " (no test_acc.txt: the accuracy reads as 0)".to_string(),
            }
        } else {
            String::new()
        };
        return format!("{}: assertion failed{acc}{src}", r.node);
    }
    format!("{}: {}", r.node, e.summary())
}

/// One step of the real run.
#[derive(Debug, Clone, Serialize)]
pub struct RealStep {
    pub name: String,
    pub command: String,
    pub points: u64,
    pub max: u64,
    /// The shell's exit status; None when it did not run to its end (time limit, signal).
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub seconds: f64,
    /// The end of what the command printed.
    pub output: String,
}

/// The workflow's commands run as GitHub runs them.
#[derive(Debug, Clone, Serialize)]
pub struct RealRun {
    /// Why it ran: a departure, the audit sample, or `--exact`.
    pub reason: String,
    pub steps: Vec<RealStep>,
    pub total: u64,
    pub max: u64,
    pub seconds: f64,
}

/// What the student's code gets under the course's own files.
#[derive(Debug, Clone, Serialize)]
pub struct CourseFilesPoints {
    pub workflow: WorkflowPoints,
    pub total: u64,
    pub max: u64,
}

/// How fmtool's engine saw the same model, for the comparison with the student's outputs.
pub struct EngineView<'a> {
    /// The engine's outputs, one row per t10k image in file order.
    pub outputs: Option<&'a ndarray::Array2<f32>>,
    /// The course template's predictions (Dense and Flatten only), when it runs the model.
    pub template_predictions: Option<&'a [usize]>,
    /// Layers the template skips that change the result (`name (Type)`).
    pub skipped_layers: Vec<String>,
    pub labels: &'a [u8],
}

/// The student's outputs against fmtool's engine on the same images.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub images: usize,
    /// Images whose predicted class is the same.
    pub same_prediction: usize,
    /// The first image (t10k index) whose predicted class differs.
    pub first_different: Option<usize>,
    /// The largest absolute difference between the two outputs.
    pub max_abs_diff: f64,
    pub engine_accuracy: f64,
}

/// The likely cause a diagnosis names, as its JSON `code` (kebab-case): listed once, here;
/// `schemas/score-report.schema.json` lists the same names (a test keeps them equal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    PythonLacksPackage,
    NnPredictImport,
    ReluRaises,
    ReluTodo,
    ReluWrong,
    SoftmaxAxis,
    SoftmaxRaises,
    SoftmaxTodo,
    SoftmaxNotNormalised,
    SoftmaxRow,
    InferenceException,
    DiffersFromModel,
    /// fmtool stopped the student's code: a limit on the student as a whole, or the total time.
    Stopped,
    /// The student's code left a link for fmtool to follow out of its sandbox.
    PlantedLink,
}

impl Cause {
    pub const ALL: &[Cause] = &[
        Cause::PythonLacksPackage,
        Cause::NnPredictImport,
        Cause::ReluRaises,
        Cause::ReluTodo,
        Cause::ReluWrong,
        Cause::SoftmaxAxis,
        Cause::SoftmaxRaises,
        Cause::SoftmaxTodo,
        Cause::SoftmaxNotNormalised,
        Cause::SoftmaxRow,
        Cause::InferenceException,
        Cause::DiffersFromModel,
        Cause::Stopped,
        Cause::PlantedLink,
    ];
}

/// A likely cause of what went wrong, named for the student.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    pub code: Cause,
    pub message: String,
    pub hint: Option<String>,
}

fn diag(code: Cause, message: String, hint: &str) -> Diagnosis {
    Diagnosis { code, message, hint: (!hint.is_empty()).then(|| hint.to_string()) }
}

/// Compares the student's outputs with the engine's.
pub fn compare(student: &ndarray::Array2<f64>, engine: &ndarray::Array2<f32>, labels: &[u8]) -> Option<Comparison> {
    if student.nrows() != engine.nrows() || student.ncols() != engine.ncols() {
        return None;
    }
    let mut same = 0;
    let mut first = None;
    let mut max_diff = 0.0f64;
    let mut engine_correct = 0;
    for (i, (s, e)) in student.rows().into_iter().zip(engine.rows()).enumerate() {
        let ps = crate::grader::argmax(s.iter().copied());
        let pe = crate::grader::argmax(e.iter().copied());
        if pe == labels.get(i).copied().unwrap_or(255) as usize {
            engine_correct += 1;
        }
        if ps == pe {
            same += 1;
        } else if first.is_none() {
            first = Some(i);
        }
        for (a, b) in s.iter().zip(e) {
            let d = (a - *b as f64).abs();
            if d > max_diff || d.is_nan() {
                max_diff = if d.is_nan() { f64::NAN } else { d };
            }
        }
    }
    Some(Comparison {
        images: student.nrows(),
        same_prediction: same,
        first_different: first,
        max_abs_diff: max_diff,
        engine_accuracy: engine_correct as f64 / student.nrows().max(1) as f64,
    })
}

/// Names the likely causes of the common failures: relu/softmax left as `return x`, softmax over
/// the wrong axis or not normalised, an import the grader lacks, layers the student's loop skips, an
/// exception in nn_inference.
pub fn diagnose(
    probe: Option<&crate::student::Probe>,
    inference: Option<&InferenceRun>,
    comparison: Option<&Comparison>,
    engine: &EngineView,
) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    if let Some(p) = probe {
        if let Some(e) = &p.import {
            let hint = if e.kind == "ModuleNotFoundError" {
                "the grader installs only pytest, pandas and argparse (with NumPy): remove the import from nn_predict.py, or move it into the notebook you train in"
            } else {
                "fix the error at the line shown; every test imports nn_predict.py"
            };
            out.push(diag(Cause::NnPredictImport, format!("importing nn_predict.py fails: {}", e.summary()), hint));
        } else {
            relu_diagnosis(p, &mut out);
            softmax_diagnosis(p, &mut out);
        }
    }
    if let Some(run) = inference
        && let Some(e) = &run.exception
    {
        let img = e.image.map(|i| format!(" (test image {i})")).unwrap_or_default();
        out.push(diag(
            Cause::InferenceException,
            format!("nn_inference raises {}{img}", e.summary()),
            "run `python -c \"import model_test; model_test.test_inference()\"` to see the whole traceback",
        ));
    }
    if let (Some(run), Some(c)) = (inference, comparison)
        && c.same_prediction < c.images
    {
        let first = c.first_different.map(|i| format!("; the first is test image {i}")).unwrap_or_default();
        let mut msg = format!(
            "your nn_inference and fmtool's engine predict different classes for {} of {} images{first} (largest output difference {:.3e}); your pass scores {}, the model itself {:.4}",
            c.images - c.same_prediction,
            c.images,
            c.max_abs_diff,
            run.accuracy.map(|a| format!("{a:.4}")).unwrap_or_else(|| "nothing".into()),
            c.engine_accuracy
        );
        let mut hint = String::from(
            "compare your loop with the model layer by layer: every layer type in fashion_mnist.json must be run as Keras runs it",
        );
        if let (Some(tp), Some(preds)) = (engine.template_predictions, &run.predictions)
            && !engine.skipped_layers.is_empty()
            && tp.len() == preds.len()
        {
            let agree = tp.iter().zip(preds).filter(|(a, b)| a == b).count();
            if agree * 100 >= preds.len() * 99 {
                msg.push_str(&format!(
                    "; your loop predicts what the course template predicts, which skips {}",
                    engine.skipped_layers.join(", ")
                ));
                hint = "implement those layers in nn_inference, or remove them from the model and retrain (fmtool check --grader classic lists them)".into();
            }
        }
        out.push(Diagnosis { code: Cause::DiffersFromModel, message: msg, hint: Some(hint) });
    }
    out
}

fn values(call: Option<&crate::student::Call>) -> Option<Vec<f64>> {
    let v = call?.value.as_ref()?;
    fn flat(v: &serde_json::Value, out: &mut Vec<f64>) {
        match v {
            serde_json::Value::Array(a) => a.iter().for_each(|x| flat(x, out)),
            x => out.push(x.as_f64().unwrap_or(f64::NAN)),
        }
    }
    let mut out = Vec::new();
    flat(v, &mut out);
    Some(out)
}

/// What test_relu checks, as the student's hints state it (model_test.py's test_relu).
const RELU_TEST: &str = "test_relu sums relu(np.array([-2, -1, 0, 1, 2])) and expects 3";

/// What test_softmax checks (model_test.py's test_softmax).
const SOFTMAX_TEST: &str = "test_softmax calls softmax(np.array([2.0, 1.0, 0.1])) and checks that every value is in [0, 1] and that they sum to 1";

/// A number as Python prints a small one: `0`, `3`, `3.1`.
fn shown(x: f64) -> String {
    format!("{x}")
}

fn relu_diagnosis(p: &crate::student::Probe, out: &mut Vec<Diagnosis>) {
    let grader = p.relu.get("grader");
    if let Some(e) = grader.and_then(|c| c.error.as_ref()) {
        out.push(diag(
            Cause::ReluRaises,
            format!("relu(np.array([-2, -1, 0, 1, 2])) raises {}", e.summary()),
            "relu must take a NumPy array of any shape and give one of the same shape, negative values mapped to 0 and the others kept: test_relu calls it on np.array([-2, -1, 0, 1, 2]), nn_inference on each layer's (1, n) output",
        ));
        return;
    }
    let Some(v) = values(grader) else { return };
    let sum = shown(v.iter().sum());
    if v == [-2.0, -1.0, 0.0, 1.0, 2.0] {
        out.push(diag(
            Cause::ReluTodo,
            "relu() returns its input unchanged (the template's `return x` TODO is still there)".into(),
            &format!("relu must map negative inputs to 0 and keep the others; {RELU_TEST}, yours gives {sum}"),
        ));
    } else if v != [0.0, 0.0, 0.0, 1.0, 2.0] {
        out.push(diag(
            Cause::ReluWrong,
            format!("relu(np.array([-2, -1, 0, 1, 2])) gives {v:?}, not [0, 0, 0, 1, 2]"),
            &format!(
                "relu must map each negative value to 0 and keep each other value, element by element; {RELU_TEST}, yours gives {sum}"
            ),
        ));
    }
}

fn softmax_diagnosis(p: &crate::student::Probe, out: &mut Vec<Diagnosis>) {
    let grader = p.softmax.get("grader");
    let row = p.softmax.get("row");
    if let Some(e) = grader.and_then(|c| c.error.as_ref()) {
        let axis = e.kind.contains("AxisError") || e.message.contains("axis 1 is out of bounds");
        let hint = if axis {
            "test_softmax calls softmax on a 1-D array, np.array([2.0, 1.0, 0.1]), which has no axis 1, and nn_inference on (1, 10) rows: softmax must work along the last axis, whatever the array's shape"
        } else {
            "softmax must accept a 1-D array as well as a (1, 10) row: test_softmax calls it on np.array([2.0, 1.0, 0.1]), nn_inference on each image's (1, 10) output"
        };
        let code = if axis { Cause::SoftmaxAxis } else { Cause::SoftmaxRaises };
        out.push(diag(code, format!("softmax(np.array([2.0, 1.0, 0.1])) raises {}", e.summary()), hint));
        return;
    }
    let Some(v) = values(grader) else { return };
    let sum: f64 = v.iter().sum();
    if v == [2.0, 1.0, 0.1] {
        out.push(diag(
            Cause::SoftmaxTodo,
            "softmax() returns its input unchanged (the template's `return x` TODO is still there)".into(),
            &format!(
                "softmax must turn scores into probabilities, each in [0, 1] and summing to 1 along the last axis, a larger score giving a larger one; {SOFTMAX_TEST}: yours gives the scores back, which sum to {}",
                shown(sum)
            ),
        ));
        return;
    }
    if (sum - 1.0).abs() > 1e-6 {
        out.push(diag(
            Cause::SoftmaxNotNormalised,
            format!("softmax(np.array([2.0, 1.0, 0.1])) sums to {sum:.6}, not 1"),
            &format!(
                "softmax's values are probabilities, so they must sum to 1 along the last axis; {SOFTMAX_TEST}: yours sum to {sum:.6}"
            ),
        ));
        return;
    }
    if let Some(r) = values(row)
        && r.len() == 3
        && ((r.iter().sum::<f64>() - 1.0).abs() > 1e-6)
    {
        out.push(diag(
            Cause::SoftmaxRow,
            format!(
                "softmax on a (1, 3) row sums to {:.6}, not 1: nn_inference passes (1, 10) rows",
                r.iter().sum::<f64>()
            ),
            "each (1, 10) row nn_inference passes must sum to 1 on its own: normalise along the last axis, not over the whole array or along axis 0",
        ));
    }
}

/// The softmax that works on a 1-D array and on (1, 10) rows, for `--solutions`.
const SOFTMAX_CODE: &str =
    "e = np.exp(x - np.max(x, axis=-1, keepdims=True)); return e / np.sum(e, axis=-1, keepdims=True)";

impl Cause {
    /// The code that fixes this cause, shown only with `--solutions` (teaching staff). relu() and
    /// softmax() are the assignment's graded tasks, so a student's hint says which property fails
    /// on which input of the course's tests, never the code. None for the other causes.
    pub fn solution(self) -> Option<String> {
        let relu = "return np.maximum(0, x)";
        Some(match self {
            Cause::ReluRaises => format!("relu must accept any NumPy array: {relu}"),
            Cause::ReluTodo => format!("implement it in nn_predict.py: {relu}"),
            Cause::ReluWrong => relu.into(),
            Cause::SoftmaxAxis => "test_softmax passes a 1-D array, so axis=1 does not exist; use axis=-1 (the last axis) in np.max and np.sum, with keepdims=True".into(),
            Cause::SoftmaxRaises => format!("this works on a 1-D array and on (1, 10) rows: {SOFTMAX_CODE}"),
            Cause::SoftmaxTodo => format!("implement it in nn_predict.py: {SOFTMAX_CODE}"),
            Cause::SoftmaxNotNormalised => "divide np.exp(...) by its sum over the last axis".into(),
            Cause::SoftmaxRow => "sum over the last axis (axis=-1, keepdims=True), not over the whole array or axis 0".into(),
            _ => return None,
        })
    }
}

/// `--solutions`: every relu/softmax hint replaced by the code that fixes it (see
/// [`Cause::solution`]); the other hints stay.
pub fn show_solutions(diagnosis: &mut [Diagnosis]) {
    for d in diagnosis {
        if let Some(s) = d.code.solution() {
            d.hint = Some(s);
        }
    }
}

/// Everything `fmtool score` found out by running a repo's own code.
#[derive(Debug, Clone, Serialize)]
pub struct RepoGrade {
    /// The repository's folder.
    pub root: String,
    pub python: Option<crate::student::Python>,
    /// Why the student's code was not run (no Python with NumPy); every row then says "not run".
    pub not_run: Option<String>,
    /// What the repo's workflow awards, when it has command-grader steps.
    pub workflow: Option<WorkflowPoints>,
    pub credit_sheet: CreditSheet,
    /// The workflow's total when the repo has one, else the credit sheet's.
    pub points: u64,
    pub max: u64,
    /// The accuracy `test_inference` computes with the student's own code.
    pub student_accuracy: Option<f64>,
    pub inference: Option<InferenceRun>,
    pub probe: Option<crate::student::Probe>,
    pub comparison: Option<Comparison>,
    pub diagnosis: Vec<Diagnosis>,
    /// `bubblewrap` when the student's code ran in its sandbox, `none` when it ran without one.
    pub isolation: String,
    /// Why fmtool stopped the student's code, when it did (a limit on the student as a whole, a
    /// step's time limit, the repository's total time, the sandbox killed by the student's code).
    pub stopped: Option<String>,
    /// Links the student's code planted for fmtool to follow out of the sandbox.
    pub planted_links: Vec<crate::student::Planted>,
    /// What the reader of these points should know (a `--timeout` that is not the workflow's).
    pub notes: Vec<String>,
    /// Every departure from the course's rules: course files changed, added or removed, gaming
    /// routes, and a workflow that behaves differently under fmtool.
    pub integrity: Vec<crate::repo::integrity::Departure>,
    /// The workflow's commands run as GitHub runs them (for a repository with a departure, the
    /// audit sample, `--exact`): `points` are then this run's.
    pub real_run: Option<RealRun>,
    /// fmtool's harness's total for the workflow, when the real run replaced it.
    pub harness_points: Option<u64>,
    /// What the student's code gets under the course's own files, when a course file was edited.
    pub course_files: Option<CourseFilesPoints>,
    pub seconds: f64,
}

/// The course's setup-command installs these; a repo without a workflow is graded as if it had
/// the course's.
pub const COURSE_PACKAGES: &[&str] = &["pytest", "pandas", "argparse"];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_report_schema_lists_every_cause() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../schemas/score-report.schema.json")).expect("the schema is JSON");
        let listed = &schema["properties"]["grade"]["properties"]["diagnosis"]["items"]["properties"]["code"]["enum"];
        let ours: Vec<serde_json::Value> = Cause::ALL.iter().map(|c| serde_json::to_value(c).unwrap()).collect();
        assert_eq!(listed.as_array().expect("an enum of codes"), &ours);
    }

    /// The diagnosis of a probe where relu() and softmax() returned `relu` and `softmax` on the
    /// course's inputs (and `row` on a (1, 3) row), or raised `error`.
    fn diagnosed(relu: serde_json::Value, softmax: serde_json::Value, row: serde_json::Value) -> Vec<Diagnosis> {
        let probe: crate::student::Probe = serde_json::from_value(json!({
            "import": null,
            "relu": {"grader": relu},
            "softmax": {"grader": softmax, "row": row},
        }))
        .expect("a probe");
        let engine = EngineView { outputs: None, template_predictions: None, skipped_layers: vec![], labels: &[] };
        diagnose(Some(&probe), None, None, &engine)
    }

    fn returned(v: serde_json::Value) -> serde_json::Value {
        json!({"value": v, "shape": null, "error": null})
    }

    fn raised(kind: &str, message: &str) -> serde_json::Value {
        json!({"value": null, "shape": null, "error": {"type": kind, "message": message}})
    }

    /// Code a hint must not hand a student: relu() and softmax() are what the course grades.
    const SOLUTION_CODE: &[&str] = &["np.maximum", "np.exp", "return", "keepdims", "axis="];

    fn assert_teaches(d: &Diagnosis, says: &[&str]) {
        let hint = d.hint.as_deref().expect("a hint");
        for code in SOLUTION_CODE {
            assert!(!hint.contains(code), "{:?}'s hint hands out `{code}`: {hint}", d.code);
        }
        for s in says {
            assert!(hint.contains(s), "{:?}'s hint does not say {s:?}: {hint}", d.code);
        }
    }

    #[test]
    fn the_todo_gets_the_property_and_the_tests_input_not_the_code() {
        let d = diagnosed(
            returned(json!([-2, -1, 0, 1, 2])),
            returned(json!([2.0, 1.0, 0.1])),
            returned(json!([[2.0, 1.0, 0.1]])),
        );
        let codes: Vec<Cause> = d.iter().map(|d| d.code).collect();
        assert_eq!(codes, [Cause::ReluTodo, Cause::SoftmaxTodo]);
        assert_teaches(
            &d[0],
            &["negative inputs to 0", "relu(np.array([-2, -1, 0, 1, 2]))", "expects 3, yours gives 0"],
        );
        assert_teaches(&d[1], &["[0, 1]", "sum to 1", "softmax(np.array([2.0, 1.0, 0.1]))", "which sum to 3.1"]);
    }

    #[test]
    fn wrong_relu_and_softmax_get_the_property_and_the_tests_input_not_the_code() {
        let d = diagnosed(
            raised("TypeError", "only integer scalar arrays can be converted to a scalar index"),
            raised("AxisError", "axis 1 is out of bounds for array of dimension 1"),
            returned(json!([[0.6590011, 0.242433, 0.0985659]])),
        );
        let codes: Vec<Cause> = d.iter().map(|d| d.code).collect();
        assert_eq!(codes, [Cause::ReluRaises, Cause::SoftmaxAxis]);
        assert_teaches(&d[0], &["negative values mapped to 0", "np.array([-2, -1, 0, 1, 2])"]);
        assert_teaches(&d[1], &["1-D array", "no axis 1", "(1, 10) rows", "last axis"]);

        let d = diagnosed(returned(json!([0, 0, 0, 0, 0])), returned(json!([7.0, 3.0, 1.2])), returned(json!(null)));
        assert_eq!(d.iter().map(|d| d.code).collect::<Vec<_>>(), [Cause::ReluWrong, Cause::SoftmaxNotNormalised]);
        assert_teaches(&d[0], &["expects 3, yours gives 0"]);
        assert_teaches(&d[1], &["softmax(np.array([2.0, 1.0, 0.1]))", "yours sum to 11.200000"]);

        let d = diagnosed(
            returned(json!([0, 0, 0, 1, 2])),
            returned(json!([0.659, 0.242, 0.099])),
            returned(json!([[0.2, 0.2, 0.2]])),
        );
        assert_eq!(d.iter().map(|d| d.code).collect::<Vec<_>>(), [Cause::SoftmaxRow]);
        assert_teaches(&d[0], &["(1, 10) row", "last axis"]);
    }

    #[test]
    fn solutions_show_the_code_for_relu_and_softmax_only() {
        for &c in Cause::ALL {
            let name = serde_json::to_value(c).unwrap().as_str().unwrap().to_string();
            let graded = name.starts_with("relu-") || name.starts_with("softmax-");
            assert_eq!(c.solution().is_some(), graded, "{name}");
        }
        let mut d =
            diagnosed(returned(json!([-2, -1, 0, 1, 2])), returned(json!([2.0, 1.0, 0.1])), returned(json!(null)));
        d.push(diag(Cause::Stopped, "stopped".into(), "run it again"));
        show_solutions(&mut d);
        let hints: Vec<&str> = d.iter().map(|d| d.hint.as_deref().unwrap()).collect();
        assert!(hints[0].contains("return np.maximum(0, x)"), "{hints:?}");
        assert!(hints[1].contains("np.exp(x - np.max(x, axis=-1, keepdims=True))"), "{hints:?}");
        assert_eq!(hints[2], "run it again", "other hints stay");
    }
}
