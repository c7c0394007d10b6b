//! The command line, declared with clap's derive API. Doc comments are the `--help` text; there is
//! no logic here.

use crate::Format;
use crate::grader::Grader;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// fmtool: convert, check and score Fashion-MNIST Keras models for the course's DNN-inference
/// assignment, exactly as the autograder would.
#[derive(Debug, Parser)]
#[command(name = "fmtool", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Score a model on the 10,000 test images: accuracy, per-class accuracy, confusion matrix and
    /// the points the autograder gives.
    Score(ScoreArgs),
    /// Write the model's outputs for every test image to a .npy file, or classify one picture.
    Predict(PredictArgs),
    /// Convert a Keras .h5 or .keras file into the course's fashion_mnist.json + fashion_mnist.npz.
    Convert(ConvertArgs),
    /// Check a model for everything that would make the grader fail or mis-score it.
    Check(CheckArgs),
    /// List the layer types and activations fmtool runs, and which the course template runs.
    Layers(LayersArgs),
    /// Grade a whole class: every student repository as `fmtool score` grades it there, plus
    /// `fmtool check`'s findings, in one table (and CSV / JSON files). Each repository's code runs
    /// in a bubblewrap sandbox of its own. Exit status: 0 when every repository was graded, 1 when
    /// fmtool stopped some student's code (a limit, a time limit: those rows say `stopped`), 2 when
    /// it could not run.
    Grade(GradeArgs),
    /// Manage the git pre-commit hook that runs `fmtool check` on every commit.
    #[command(subcommand)]
    Hook(HookCommand),
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Directory holding fashion_mnist.json and fashion_mnist.npz (or the .json file itself).
    #[arg(long, default_value = "model")]
    pub model: PathBuf,
    /// Directory with t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz; the test set built
    /// into fmtool is used when omitted.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Which data split to read from --data: t10k (test) or train.
    #[arg(long, default_value = "t10k", requires = "data")]
    pub split: String,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    #[arg(long, value_enum, default_value_t)]
    pub grader: Grader,
    /// Also print where the time went: reading the model and the data, building the layers, and
    /// the engine's forward pass over all images (the JSON report always has these).
    #[arg(long)]
    pub timings: bool,
    /// Write confusion-matrix.png and misclassified.png into this directory.
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
    /// Replace files named like the --plot pictures that fmtool did not draw (its own earlier
    /// pictures are always replaced).
    #[arg(long, requires = "plot")]
    pub force: bool,
    /// Exit with status 1 when the accuracy is below this value (0 to 1).
    #[arg(long, value_name = "X")]
    pub min_accuracy: Option<f64>,
    /// The student's nn_predict.py. By default the one beside the model folder is used (a student
    /// repository): its relu, softmax and nn_inference are run as the grader runs them.
    #[arg(long, value_name = "FILE")]
    pub nn_predict: Option<PathBuf>,
    /// Do not run the student's code, even in a student repository.
    #[arg(long, conflicts_with = "nn_predict")]
    pub no_student_code: bool,
    /// The Python (with NumPy) that runs the student's code; default: python3 on PATH, or the
    /// environment `--setup` made.
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// When python3 lacks what your workflow's setup-commands install (NumPy, pytest, pandas...):
    /// install those packages into a Python environment fmtool keeps for you (in
    /// ~/.cache/fmtool/envs; with uv when it is on PATH, else python3 -m venv and pip) and run your
    /// code in it. Later runs use it without --setup. On a terminal fmtool asks first instead.
    #[arg(long, conflicts_with = "python")]
    pub setup: bool,
    /// Time limit in seconds for each workflow step's tests (default: each step's own timeout).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Run your code without the sandbox (bubblewrap) even where it can be made. Where it cannot
    /// (not Linux, no user namespaces), score runs without it anyway and says so.
    #[arg(long)]
    pub no_isolation: bool,
    /// For teaching staff: show the code that fixes relu() and softmax() in the hints. Without
    /// it a hint says which property fails and on which input the course's tests call them: those
    /// two functions are the assignment students are graded on.
    #[arg(long)]
    pub solutions: bool,
    /// Worker processes for the student's test_inference (default: one per core); `fmtool grade`
    /// shares the cores among the repositories it grades at once.
    #[arg(skip)]
    pub workers: Option<usize>,
    /// A checkout of the assignment's template repository: its model_test.py, utils/, test set
    /// and workflow are the course's files that a student must not change (default: the course's
    /// files built into fmtool).
    #[arg(long, value_name = "DIR")]
    pub course: Option<PathBuf>,
    /// Also run the workflow's commands as GitHub runs them (`sh -c` in the sandbox, with pytest),
    /// whose points then count. fmtool does so anyway where the repository departs from the
    /// course's rules.
    #[arg(long)]
    pub exact: bool,
    /// Picked by `fmtool grade --audit` for the real run.
    #[arg(skip)]
    pub audit_sampled: bool,
    /// Set by `fmtool grade`: the staff's Python grades the class, so no environment is made or
    /// used from a student's workflow.
    #[arg(skip)]
    pub class_grading: bool,
    /// Run the model even when one image costs more than fmtool's budget (0.5 GFLOP, 256 MiB of
    /// layer outputs alive at once): it may then take hours or all the memory.
    #[arg(long)]
    pub no_budget: bool,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// A picture to classify (PNG). Without it, every test image is run and --out is required.
    pub image: Option<PathBuf>,
    #[arg(long, default_value = "model")]
    pub model: PathBuf,
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Which data split to read from --data: t10k (test) or train (e.g. a teacher's outputs on the
    /// training images, for distillation).
    #[arg(long, default_value = "t10k", requires = "data")]
    pub split: String,
    /// Where to write the (N, 10) float32 outputs as a .npy file.
    #[arg(long, value_name = "FILE.npy")]
    pub out: Option<PathBuf>,
    /// Replace --out if it exists.
    #[arg(long)]
    pub force: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Run the model even when one image costs more than fmtool's budget (0.5 GFLOP, 256 MiB of
    /// layer outputs alive at once).
    #[arg(long)]
    pub no_budget: bool,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The Keras model: a .h5 file (Keras 2 or Keras 3) or a .keras archive; with
    /// --for-template also a model folder (fashion_mnist.json + fashion_mnist.npz).
    pub input: PathBuf,
    /// Directory to write fashion_mnist.json and fashion_mnist.npz into.
    #[arg(long, default_value = "model")]
    pub out: PathBuf,
    /// Replace existing fashion_mnist.json / fashion_mnist.npz.
    #[arg(long)]
    pub force: bool,
    /// Rewrite the model into what the course template runs (Flatten, Dense with relu/softmax):
    /// BatchNormalization, Rescaling and Normalization folded into a Dense, Activation layers
    /// merged, Dropout and other inference-time identities removed; anything else refused.
    #[arg(long)]
    pub for_template: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A model directory, or the model's files (.json, .npz, .h5). Defaults to model/.
    pub paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// `classic` turns layers the course template would skip from warnings into errors.
    #[arg(long, value_enum, default_value_t)]
    pub grader: Grader,
    /// In a student repository: departures from the course's rules (edited course files, pytest
    /// configuration, tricks) are errors, not warnings.
    #[arg(long)]
    pub strict: bool,
    /// A checkout of the assignment's template repository, whose files are the course's (default:
    /// the course's files built into fmtool).
    #[arg(long, value_name = "DIR")]
    pub course: Option<PathBuf>,
    /// Leave the departures from the course's rules out (`fmtool grade` has them from score).
    #[arg(skip)]
    pub no_integrity: bool,
    /// In a student repository: the Python (with NumPy) that runs your own nn_predict.py when it
    /// reads the model its own way or imports what the grader lacks. Default: the repository's
    /// .venv or venv, $VIRTUAL_ENV, $CONDA_PREFIX, then python3 on PATH (a pre-commit hook's own
    /// environment without NumPy is passed over).
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// Never run the student's own code: judge the files alone.
    #[arg(long)]
    pub no_student_code: bool,
    /// A model over fmtool's budget per image (0.5 GFLOP, 256 MiB of layer outputs alive at once)
    /// is a warning instead of an error.
    #[arg(long)]
    pub no_budget: bool,
}

#[derive(Debug, Args)]
pub struct GradeArgs {
    /// Student repositories, folders whose sub-folders are student repositories, or reports of
    /// `fmtool score --format json` collected from the repositories' own CI runs (`.json` files).
    #[arg(required = true)]
    pub repos: Vec<PathBuf>,
    /// Write one row per repository (one column per workflow step, totals, accuracies, first
    /// error, seconds) to this CSV file.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write the whole report as JSON (schemas/grade-report.schema.json) to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Replace --csv / --json / --report files that exist (files fmtool grade wrote are replaced
    /// anyway).
    #[arg(long)]
    pub overwrite: bool,
    /// Keep each repository's grade here, keyed by a SHA-256 of everything graded, so that a
    /// re-run grades only the repositories that changed.
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Grade every repository again, even those the cache holds.
    #[arg(long)]
    pub force: bool,
    /// The Python (with NumPy) that runs the students' code; default: python3 on PATH.
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// Time limit in seconds for each workflow step's tests (default: each step's own timeout).
    /// Every phase obeys it, and a repository's whole run is bounded by its steps' limits summed.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Run the students' code without a sandbox. Without this flag, grade refuses to run on a
    /// machine where bubblewrap cannot make one: only for code you trust.
    #[arg(long)]
    pub no_isolation: bool,
    /// Repositories graded at once (default: one per core); the cores are shared among them.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: Option<u16>,
    /// For teaching staff: show the code that fixes relu() and softmax() in the hints, as `fmtool
    /// score --solutions` does. Without it a hint says which property fails and on which input,
    /// so that a report handed to students does not hand them the assignment.
    #[arg(long)]
    pub solutions: bool,
    /// Write one self-contained HTML page (index.html: the points histogram, each step's pass
    /// rate, the most common findings, one section per student) into this folder.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// A checkout of the assignment's template repository, whose files are the course's (default:
    /// the course's files built into fmtool).
    #[arg(long, value_name = "DIR")]
    pub course: Option<PathBuf>,
    /// The share of repositories without a departure whose workflow is also run as GitHub runs it
    /// (0 to 1; repositories with a departure always are). A difference is flagged.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.1)]
    pub audit: f64,
    /// Run every repository's workflow as GitHub runs it (as --audit 1).
    #[arg(long)]
    pub exact: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct LayersArgs {
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// Write .git/hooks/pre-commit so that every commit runs `fmtool check`.
    Install(HookInstallArgs),
}

#[derive(Debug, Args)]
pub struct HookInstallArgs {
    /// Replace an existing pre-commit hook.
    #[arg(long)]
    pub force: bool,
    /// Also run `fmtool score --min-accuracy X` in the hook.
    #[arg(long, value_name = "X")]
    pub min_accuracy: Option<f64>,
    /// The git repository (default: the one containing the current directory).
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
}
