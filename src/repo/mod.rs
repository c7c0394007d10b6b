//! A student repository as the course's grader sees it: the workflow that awards the points
//! (`.github/workflows/*.yml`), the tests it runs (`model_test.py`), and static lints of the
//! student's `nn_predict.py` (imports) and of both files (paths the runner lacks). Pure: it reads
//! files but never runs anything.

pub mod course;
pub mod findings;
pub mod gaming;
pub mod integrity;
pub mod lint;
pub mod loader;
pub mod paths;
pub mod pysrc;
pub mod rules;
pub mod stdlib;
pub mod tests_py;
pub mod verdict;
pub mod workflow;
pub mod yaml;

pub use findings::{timeout_finding, workflow_findings};
pub use lint::{Available, lint_nn_predict};
pub use tests_py::{ModelTest, read_model_test};
pub use workflow::{
    Command, Setup, Step, TestNode, Workflow, find_workflows, interpret, interpret_setup, parse_workflow,
};
