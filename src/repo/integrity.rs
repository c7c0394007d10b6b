//! A departure from the course's rules, as data: a course file changed, added or removed
//! (`course.rs`), or a way a student can make the grader award what the code does not earn
//! (`gaming.rs`). Each names its file and line and says whether it changes the grade or is only
//! suspicious; `rules.rs` gathers them.

use crate::checks::{Code, Finding, Location, Severity};
use serde::Serialize;

/// What a departure does to the grade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Effect {
    /// It changes the points GitHub awards: by its nature (a pytest option that skips the tests),
    /// or measured (the course's files give other points).
    ChangesTheGrade,
    /// It departs from the rules, but changes nothing fmtool could measure.
    Suspicious,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::ChangesTheGrade => "changes the grade",
            Effect::Suspicious => "suspicious",
        }
    }
}

/// One departure from the course's rules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Departure {
    pub code: Code,
    pub effect: Effect,
    /// The file, from the repository's root.
    pub file: String,
    /// 1-based, when one line says it.
    pub line: Option<usize>,
    pub message: String,
    /// What changed, one item a line (`test_acc_88: ... became ...`).
    pub details: Vec<String>,
    pub hint: Option<String>,
}

impl Departure {
    pub fn new(code: Code, effect: Effect, file: &str, line: Option<usize>, message: String) -> Departure {
        Departure { code, effect, file: file.to_string(), line, message, details: Vec::new(), hint: None }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Departure {
        self.hint = Some(hint.into());
        self
    }

    /// `model_test.py:12` or `model_test.py`.
    pub fn place(&self) -> String {
        match self.line {
            Some(l) => format!("{}:{l}", self.file),
            None => self.file.clone(),
        }
    }

    /// As a finding of `check`, with `severity`: the message carries the details and the effect.
    pub fn to_finding(&self, severity: Severity) -> Finding {
        let location = match self.line {
            Some(l) => Location::line(&self.file, l),
            None => Location::file(&self.file),
        };
        let mut message = format!("{} [{}]", self.message, self.effect.as_str());
        if !self.details.is_empty() {
            message.push_str(": ");
            message.push_str(&self.details.join("; "));
        }
        Finding::new(self.code, severity, location, message).maybe_hint(self.hint.clone())
    }
}
