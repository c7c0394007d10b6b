//! The findings of `fmtool check`: what can be wrong with a course-format model, as data. Each
//! submodule owns one kind of finding and returns every instance of it; nothing here stops at the
//! first problem. `commands::check` decides which files to look at and `report::check` prints.

pub mod arrays;
pub mod layout;
pub mod schema;
pub mod shapes;
pub mod softmax;
pub mod stale;
pub mod template;
pub mod types;
pub mod weights;

use crate::grader::Grader;
use crate::model::{ArchEntry, Npz, NpzIndex};

/// How bad a finding is: errors make `fmtool check` exit 1, warnings do not; a note is a finding
/// that the student's own code, run by fmtool, showed to be harmless (a layout the course's loader
/// would refuse, read by the student's extended `nn_predict.py`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Note,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

/// Where a finding is: a file, and inside it a JSON path (`$[3].weights[0]`) or an npz key, and
/// the layer concerned.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Location {
    pub file: String,
    /// A JSON-path-style pointer into the architecture file, as check-jsonschema prints them.
    pub pointer: Option<String>,
    /// An npz member key.
    pub key: Option<String>,
    /// The name of the layer concerned.
    pub layer: Option<String>,
    /// A 1-based line in a text file (a workflow, a Python file); absent from JSON when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

impl Location {
    /// `file::$[3].weights[0]`, `file::dense_0`, `file:32` or `file`: how reports name the place.
    pub fn describe(&self) -> String {
        match (&self.pointer, &self.key, self.line) {
            (Some(p), _, _) => format!("{}::{p}", self.file),
            (None, Some(k), _) => format!("{}::{k}", self.file),
            (None, None, Some(n)) => format!("{}:{n}", self.file),
            (None, None, None) => self.file.clone(),
        }
    }

    pub fn file(file: &str) -> Location {
        Location { file: file.to_string(), ..Location::default() }
    }

    /// A place in the architecture file: `$[i]` or deeper, in layer `layer`.
    pub fn json(file: &str, pointer: impl Into<String>, layer: Option<&str>) -> Location {
        Location {
            file: file.to_string(),
            pointer: Some(pointer.into()),
            layer: layer.map(str::to_string),
            ..Location::default()
        }
    }

    /// An entry of the architecture file.
    pub fn entry(file: &str, e: &ArchEntry) -> Location {
        Location::json(file, e.pointer(), Some(&e.name))
    }

    /// One of an entry's weight names: `$[i].weights[j]`, which names `key`.
    pub fn weight(file: &str, e: &ArchEntry, j: usize) -> Location {
        let mut l = Location::json(file, format!("{}.weights[{j}]", e.pointer()), Some(&e.name));
        l.key = e.weights.get(j).cloned();
        l
    }

    /// A member of the npz.
    pub fn npz_key(file: &str, key: &str) -> Location {
        Location { file: file.to_string(), key: Some(key.to_string()), ..Location::default() }
    }

    /// A line of a text file: `.github/workflows/classroom.yml:32`.
    pub fn line(file: &str, line: usize) -> Location {
        Location { file: file.to_string(), line: Some(line), ..Location::default() }
    }
}

/// One thing wrong with a model.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// What kind of problem it is.
    pub code: Code,
    pub severity: Severity,
    pub location: Location,
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Finding {
    pub fn error(code: Code, location: Location, message: impl Into<String>) -> Finding {
        Finding::new(code, Severity::Error, location, message)
    }

    pub fn warning(code: Code, location: Location, message: impl Into<String>) -> Finding {
        Finding::new(code, Severity::Warning, location, message)
    }

    pub fn new(code: Code, severity: Severity, location: Location, message: impl Into<String>) -> Finding {
        Finding { code, severity, location, message: message.into(), hint: None }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Finding {
        self.hint = Some(hint.into());
        self
    }

    pub fn maybe_hint(mut self, hint: Option<String>) -> Finding {
        self.hint = hint;
        self
    }
}

/// Defines [`Code`]: each finding code once, with its kebab-case name (what the JSON report and
/// the text output show) and what it means (the report schema's documentation of it).
macro_rules! codes {
    ($($(#[doc = $doc:literal])* $variant:ident => $name:literal,)*) => {
        /// What kind of problem a finding is, in the manner of a linter's rules: a stable
        /// kebab-case name and a meaning, both listed once, here.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Code {
            /// Every code, in the order of the documentation.
            pub const ALL: &[Code] = &[$(Code::$variant,)*];

            /// The kebab-case name: `missing-file`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $name,)*
                }
            }

            /// What the code means.
            pub fn meaning(self) -> &'static str {
                match self {
                    $(Code::$variant => concat!($($doc),*).trim_ascii(),)*
                }
            }
        }
    };
}

codes! {
    /// fashion_mnist.json or fashion_mnist.npz is not there
    MissingFile => "missing-file",
    /// the architecture file is not valid JSON
    InvalidJson => "invalid-json",
    /// the JSON is another layout (model.to_json(), get_config() list, {"layers": ...})
    NotCourseLayout => "not-course-layout",
    /// the architecture file violates schemas/model-architecture.schema.json
    Schema => "schema",
    /// two entries have the same name
    DuplicateLayerName => "duplicate-layer-name",
    /// a layer type fmtool cannot run
    UnsupportedLayer => "unsupported-layer",
    /// a weight name of the JSON is not a key of the npz
    MissingWeight => "missing-weight",
    /// one npz key is used by several layers
    SharedWeight => "shared-weight",
    /// an npz array that no layer uses
    UnusedArray => "unused-array",
    /// the npz is not a readable archive
    UnreadableNpz => "unreadable-npz",
    /// an object array or a pickle in the npz
    PickledArray => "pickled-array",
    /// an npz member that is not a .npy array
    NotNpyMember => "not-npy-member",
    /// an npz member that cannot be decoded
    UnreadableArray => "unreadable-array",
    /// an integer or boolean weight array
    NonFloatWeights => "non-float-weights",
    /// NaN or infinite weights
    NonFinite => "non-finite",
    /// float64 weights (the course exports float32)
    Float64Weights => "float64-weights",
    /// float16 weights (precision lost)
    Float16Weights => "float16-weights",
    /// a weight or config does not fit the shape flowing into the layer
    ShapeMismatch => "shape-mismatch",
    /// an inbound name that is not an earlier layer
    UnknownInbound => "unknown-inbound",
    /// the model does not end with 10 class scores
    OutputShape => "output-shape",
    /// the model's input does not hold the 784 values of one image
    InputShape => "input-shape",
    /// the model needs its (1, 784) rows reshaped, which the course template does not do
    InputReshape => "input-reshape",
    /// the last layer does not apply softmax
    NoSoftmax => "no-softmax",
    /// the course template skips a layer, so it grades a different model
    TemplateSkips => "template-skips",
    /// the course template ignores a Dense activation other than relu/softmax
    TemplateIgnoresActivation => "template-ignores-activation",
    /// the course template would crash on the model
    TemplateCrash => "template-crash",
    /// the Keras model beside the export holds different weights
    StaleExport => "stale-export",
    /// the Keras model file cannot be read
    UnreadableKeras => "unreadable-keras",
    /// a workflow step's command is no program on the runner (sh exits 127), so the step gives 0 points
    WorkflowCommandNotFound => "workflow-command-not-found",
    /// a workflow file that cannot be read or parsed
    WorkflowUnreadable => "workflow-unreadable",
    /// a workflow step runs pytest before any setup-command installs it
    WorkflowNoPytest => "workflow-no-pytest",
    /// a command-grader step without a command
    WorkflowEmptyCommand => "workflow-empty-command",
    /// a workflow step runs a test that model_test.py does not define
    WorkflowUnknownTest => "workflow-unknown-test",
    /// a workflow step runs tests from a file the repo does not have
    WorkflowMissingTestFile => "workflow-missing-test-file",
    /// a workflow step's name says one accuracy threshold but its test asserts another
    WorkflowThresholdMismatch => "workflow-threshold-mismatch",
    /// a workflow command or setup-command fmtool cannot evaluate
    WorkflowUnsupportedCommand => "workflow-unsupported-command",
    /// a workflow step's timeout or max-score the action reads differently than it looks
    WorkflowValue => "workflow-value",
    /// a workflow step's timeout is shorter than the measured run
    WorkflowTimeout => "workflow-timeout",
    /// nn_predict.py imports a module the grader's runner does not have
    GraderMissingImport => "grader-missing-import",
    /// model_test.py or nn_predict.py names a path on the student's computer (a Windows drive, a home folder, Colab's /content) that the grader's runner does not have
    RunnerMissingPath => "runner-missing-path",
    /// a file the course distributes (model_test.py, utils/, the test set, the workflow) was changed
    CourseFileChanged => "course-file-changed",
    /// a file was added where the course's files are (utils/, .github/workflows/)
    CourseFileAdded => "course-file-added",
    /// a file the course distributes is missing
    CourseFileRemoved => "course-file-removed",
    /// a pytest configuration file (pytest.ini, tox.ini, setup.cfg, pyproject.toml) sets options for the grader's pytest
    PytestConfig => "pytest-config",
    /// a conftest.py that pytest loads before the tests
    Conftest => "conftest",
    /// sitecustomize.py, usercustomize.py or a .pth file: code Python may run at start-up
    StartupHook => "startup-hook",
    /// a module of the repository's that shadows NumPy, pytest or the standard library
    ShadowModule => "shadow-module",
    /// code that ends the test process (os._exit, sys.exit, os.kill) outside `if __name__ == "__main__"`
    EndsProcess => "ends-process",
    /// code that replaces parts of NumPy, pytest or the builtins
    PatchesLibrary => "patches-library",
    /// code that reads the test set (its labels or images), which the grader's accuracy is computed on
    ReadsTestSet => "reads-test-set",
    /// code that reads or writes test_acc.txt, where test_inference writes the accuracy
    TestAccFile => "test-acc-file",
    /// a test_acc.txt committed to the repository
    CommittedTestAcc => "committed-test-acc",
    /// the workflow's commands, run as GitHub runs them, award other points than fmtool's harness
    BehavesDifferently => "behaves-differently",
    /// the student's nn_inference, run by fmtool as test_inference calls it, fails on a test image, so the inference step fails
    InferenceFails => "inference-fails",
    /// fmtool could not run the student's own code, so a finding about the model was decided from the files alone
    StudentCodeNotRun => "student-code-not-run",
    /// one image costs more than fmtool's budget (0.5 GFLOP, 256 MiB of layer outputs alive at once): score and predict refuse to run the model
    OverBudget => "over-budget",
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The parts of one model that the checks look at. `arch` holds the entries that parsed; when
/// `arch_complete` is false some entries were invalid (already reported), so whole-model checks
/// (shape flow, the template's pass) are skipped rather than reported on a partial model.
pub struct ModelView<'a> {
    /// The architecture file as shown in findings (`model/fashion_mnist.json`).
    pub json_file: &'a str,
    pub npz_file: &'a str,
    pub arch: &'a [ArchEntry],
    pub arch_complete: bool,
    pub npz: Option<&'a Npz>,
    pub grader: Grader,
    /// The npz's keys hashed once, for the checks' lookups (see [`ModelView::new`]).
    pub keys: Option<NpzIndex<'a>>,
}

impl<'a> ModelView<'a> {
    pub fn new(
        json_file: &'a str,
        npz_file: &'a str,
        arch: &'a [ArchEntry],
        arch_complete: bool,
        npz: Option<&'a Npz>,
        grader: Grader,
    ) -> ModelView<'a> {
        ModelView { json_file, npz_file, arch, arch_complete, npz, grader, keys: npz.map(NpzIndex::new) }
    }

    /// The npz entry under `key`, as `Npz::get` finds it, in constant time.
    pub fn entry(&self, key: &str) -> Option<&'a crate::model::npz::NpzEntry> {
        self.keys.as_ref().and_then(|k| k.get(key))
    }

    /// The readable array under `key`.
    pub fn array(&self, key: &str) -> Option<&'a crate::model::NpyArray> {
        self.entry(key).and_then(|e| e.array.as_ref().ok())
    }
    /// The npz file name without its directory, for messages ("is not in fashion_mnist.npz").
    pub fn npz_name(&self) -> &str {
        std::path::Path::new(self.npz_file).file_name().and_then(|n| n.to_str()).unwrap_or(self.npz_file)
    }

    /// True when every weight of the entry is present and readable, i.e. problems with the entry
    /// are not already reported as missing or broken arrays.
    pub fn weights_readable(&self, e: &ArchEntry) -> bool {
        self.npz.is_some() && e.weights.iter().all(|k| self.array(k).is_some())
    }

    /// Findings about what the course template does are warnings for the full grader and errors
    /// for `--grader classic`.
    pub fn template_severity(&self) -> Severity {
        match self.grader {
            Grader::Full => Severity::Warning,
            Grader::Classic => Severity::Error,
        }
    }
}

/// Runs every check that needs a parsed architecture and npz, in a fixed order.
pub fn check_model(view: &ModelView) -> (Vec<Finding>, Option<shapes::ShapeSummary>) {
    let mut out = Vec::new();
    out.extend(types::check(view));
    if let Some(npz) = view.npz {
        out.extend(weights::check(view, npz));
        out.extend(arrays::check(view, npz));
    }
    let (shape_findings, summary) = shapes::check(view);
    out.extend(shape_findings);
    out.extend(softmax::check(view));
    // The template tripping over a weight the full flow already refused says nothing new.
    let refused: Vec<Option<String>> =
        out.iter().filter(|f| f.code == "shape-mismatch").map(|f| f.location.pointer.clone()).collect();
    out.extend(
        template::check(view)
            .into_iter()
            .filter(|f| !(f.code == "template-crash" && refused.contains(&f.location.pointer))),
    );
    (out, summary)
}

/// A JSON pointer (`/3/weights/0`) written as the JSON path check-jsonschema prints (`$[3].weights[0]`).
pub fn json_path(pointer: &str) -> String {
    let mut out = String::from("$");
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else if !seg.is_empty() && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            out.push('.');
            out.push_str(&seg);
        } else {
            out.push_str(&format!("[{}]", serde_json::Value::from(seg)));
        }
    }
    out
}

/// The `[i, j, ...]` index of element `flat` of a C-order array of `shape`.
pub fn unravel(flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    let mut rest = flat;
    for (i, d) in shape.iter().enumerate().rev() {
        if *d > 0 {
            idx[i] = rest % d;
            rest /= d;
        }
    }
    idx
}

#[cfg(test)]
pub(crate) mod test_util {
    //! Builders of minimal in-memory models for the checks' unit tests.
    use super::*;
    use crate::model::npz::read_npz_bytes;
    use ndarray::ArrayD;
    use serde_json::Value;

    pub fn arch(v: Value) -> Vec<ArchEntry> {
        crate::model::arch::parse_arch(&v).expect("test architecture parses")
    }

    pub fn npz(arrays: &[(&str, &[usize])]) -> Npz {
        let arrays: Vec<(String, ArrayD<f32>)> = arrays
            .iter()
            .map(|(k, s)| {
                let n: usize = s.iter().product();
                let data: Vec<f32> = (0..n).map(|i| ((i % 7) as f32 - 3.0) * 0.01).collect();
                (k.to_string(), ArrayD::from_shape_vec(ndarray::IxDyn(s), data).unwrap())
            })
            .collect();
        npz_of(&arrays)
    }

    pub fn npz_of(arrays: &[(String, ArrayD<f32>)]) -> Npz {
        let cur = crate::model::npz::write_npz(std::io::Cursor::new(Vec::new()), arrays).unwrap();
        read_npz_bytes(std::path::Path::new("model/fashion_mnist.npz"), cur.get_ref()).unwrap()
    }

    pub fn view<'a>(arch: &'a [ArchEntry], npz: &'a Npz, grader: Grader) -> ModelView<'a> {
        ModelView::new("model/fashion_mnist.json", "model/fashion_mnist.npz", arch, true, Some(npz), grader)
    }

    /// A Dense entry in the course format.
    pub fn dense(name: &str, units: usize, activation: &str) -> Value {
        serde_json::json!({"name": name, "type": "Dense",
            "config": {"name": name, "units": units, "activation": activation, "use_bias": true},
            "weights": [format!("{name}_0"), format!("{name}_1")]})
    }

    /// The classic MLP: Flatten, Dense(128, relu), Dense(10, softmax) on (28, 28) input.
    pub fn mlp() -> (Vec<ArchEntry>, Npz) {
        let a = arch(serde_json::json!([
            {"name": "flatten", "type": "Flatten", "config": {"batch_input_shape": [null, 28, 28]}, "weights": []},
            dense("dense", 128, "relu"),
            dense("dense_1", 10, "softmax"),
        ]));
        let n = npz(&[("dense_0", &[784, 128]), ("dense_1", &[128]), ("dense_1_0", &[128, 10]), ("dense_1_1", &[10])]);
        (a, n)
    }

    pub fn codes(f: &[Finding]) -> Vec<&'static str> {
        f.iter().map(|f| f.code.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_pointers_become_json_paths() {
        assert_eq!(json_path(""), "$");
        assert_eq!(json_path("/3/weights/0"), "$[3].weights[0]");
        assert_eq!(json_path("/0/config/a b"), "$[0].config[\"a b\"]");
        assert_eq!(json_path("/0/x~1y"), "$[0][\"x/y\"]");
    }

    #[test]
    fn unravel_is_c_order() {
        assert_eq!(unravel(0, &[3, 4]), [0, 0]);
        assert_eq!(unravel(5, &[3, 4]), [1, 1]);
        assert_eq!(unravel(11, &[3, 4]), [2, 3]);
        assert_eq!(unravel(7, &[10]), [7]);
    }

    #[test]
    fn a_clean_mlp_has_no_findings() {
        let (a, n) = test_util::mlp();
        for grader in [Grader::Full, Grader::Classic] {
            let (f, summary) = check_model(&test_util::view(&a, &n, grader));
            assert_eq!(f, Vec::<Finding>::new());
            assert_eq!(summary.unwrap().output_shape, Some(vec![10]));
        }
    }

    #[test]
    fn codes_are_unique_kebab_case() {
        for (i, code) in Code::ALL.iter().enumerate() {
            let c = code.as_str();
            assert!(c.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-'), "{c}");
            assert!(!Code::ALL[..i].iter().any(|d| d.as_str() == c), "{c} twice");
            assert!(!code.meaning().is_empty() && !code.meaning().starts_with(' '), "{c}");
        }
    }
}
