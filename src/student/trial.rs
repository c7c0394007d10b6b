//! `fmtool check`'s short run of the student's own code: the path the workflow's tests take
//! through it, on a few images instead of ten thousand. A student who extended `nn_predict.py` (to
//! read `model.to_json()`, to run Conv2D) is graded by that code, not by the course's loader that
//! check models; and whether an import the runner lacks is reached is known only by running it.
//!
//! One request to the harness (`trial`): model_test.py imported as pytest imports it, relu() and
//! softmax() called on test_relu's and test_softmax's inputs, the model loaded as test_inference
//! loads it, and nn_inference on the first images. Success is the process's exit status and the
//! outputs fmtool reads back, never what the process prints; the printed exception only says why.

use super::{PyError, Runner, parse_result};
use crate::error::Result;
use serde::Deserialize;
use std::time::Duration;

/// The part of the tests' path that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Importing model_test.py (and through it nn_predict.py and utils/).
    Import,
    /// Reading the test set, the npz or the JSON as test_inference does.
    Load,
    /// nn_inference on an image.
    Inference,
    /// The outputs together, as test_inference stacks and squeezes them.
    Outputs,
}

/// The first failure on the tests' path.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Failure {
    pub phase: Phase,
    /// The student's exception, when one was raised (what the process said: for the message only).
    pub exception: Option<PyError>,
    /// One line for people.
    pub message: String,
}

/// How the run went.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Trial {
    /// Images asked for, and classified without an exception.
    pub asked: usize,
    pub classified: usize,
    /// The first failure on the tests' path, with the student's exception when one was raised.
    pub failure: Option<Failure>,
    /// test_relu's and test_softmax's calls, when they raised.
    pub relu: Option<PyError>,
    pub softmax: Option<PyError>,
    pub seconds: f64,
}

impl Trial {
    /// Every image classified, and outputs test_inference can stack, squeeze and argmax.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }

    /// The exceptions raised on the tests' path, the failure's first.
    pub fn exceptions(&self) -> impl Iterator<Item = &PyError> {
        self.failure.iter().filter_map(|f| f.exception.as_ref()).chain(self.relu.iter()).chain(self.softmax.iter())
    }
}

/// What the harness's `trial` mode prints (messages only).
#[derive(Deserialize)]
struct Said {
    phase: Option<Phase>,
    error: Option<PyError>,
    relu: Option<PyError>,
    softmax: Option<PyError>,
}

const OUTPUTS: &str = "trial.npz";

impl Runner {
    /// The tests' path through the student's code on the first `images` test images.
    pub fn trial(&self, images: usize, timeout: Duration) -> Result<Trial> {
        let args = vec!["trial".to_string(), images.to_string(), self.sandbox.output_path(OUTPUTS)];
        let out = self.harness(&args, timeout, &|_| {})?;
        let said = parse_result::<Said>(&out, "nn_predict.py").ok();
        let (relu, softmax) = said.as_ref().map(|s| (s.relu.clone(), s.softmax.clone())).unwrap_or_default();
        let mut trial = Trial { asked: images, classified: 0, failure: None, relu, softmax, seconds: out.seconds };
        if out.code != Some(0) || out.timed_out || out.stopped.is_some() {
            let why = super::exit_message(&out, "your code");
            trial.failure = Some(match said {
                Some(Said { phase: Some(p), error, .. }) if out.stopped.is_none() && !out.timed_out => {
                    let why = error.as_ref().map(PyError::summary).unwrap_or(why);
                    Failure { phase: p, exception: error, message: why }
                }
                _ => Failure { phase: Phase::Inference, exception: None, message: why },
            });
            return Ok(trial);
        }
        // The outputs as fmtool reads them: test_inference's `outputs.squeeze(axis=1)` needs (n, 1, ...).
        let shape = self
            .sandbox
            .read_output(OUTPUTS, crate::fsguard::budget::NPZ)
            .and_then(|b| crate::model::npz::read_npz_bytes(std::path::Path::new(OUTPUTS), &b).ok())
            .and_then(|n| n.array("outputs").ok().map(|a| a.shape.clone()));
        match shape {
            Some(s) if s.len() >= 2 && s[0] == images && s[1] == 1 => trial.classified = images,
            Some(s) => {
                let one: Vec<String> = s.iter().skip(1).map(usize::to_string).collect();
                trial.classified = images;
                trial.failure = Some(Failure {
                    phase: Phase::Outputs,
                    exception: None,
                    message: format!(
                        "nn_inference returns an array of shape ({}) for one image; test_inference's `outputs.squeeze(axis=1)` needs (1, 10) and raises ValueError",
                        one.join(", ")
                    ),
                });
            }
            None => {
                trial.failure = Some(Failure {
                    phase: Phase::Outputs,
                    exception: None,
                    message: "nn_inference's outputs could not be read back".into(),
                })
            }
        }
        Ok(trial)
    }
}
