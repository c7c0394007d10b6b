//! `fmtool check`'s findings: each submodule looks for one kind of problem and returns findings
//! as data (code, severity, location, message, hint), all of them, never stopping at the first.

pub mod grader;
pub mod layout;
pub mod schema;
pub mod shapes;
pub mod stale;
pub mod weights;

use crate::cli::Grader;
use crate::model::{ArchEntry, Npz};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// Where a finding is: a file, and inside it a JSON pointer (`$[3].weights[0]`) or an npz key,
/// and the layer it concerns.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Location {
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Finding {
    pub code: &'static str,
    pub severity: Severity,
    pub location: Location,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Finding {
    pub fn error(code: &'static str, location: Location, message: impl Into<String>) -> Finding {
        Finding { code, severity: Severity::Error, location, message: message.into(), hint: None }
    }

    pub fn warning(code: &'static str, location: Location, message: impl Into<String>) -> Finding {
        Finding { code, severity: Severity::Warning, location, message: message.into(), hint: None }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Finding {
        self.hint = Some(hint.into());
        self
    }
}

/// What the checks look at: the files found, and what could be parsed of them.
pub struct Subject {
    pub json_path: PathBuf,
    pub npz_path: PathBuf,
    pub h5_path: Option<PathBuf>,
    /// The architecture entries, when the JSON is in the course layout.
    pub arch: Option<Vec<ArchEntry>>,
    /// The weights, when the npz could be opened.
    pub npz: Option<Npz>,
    pub grader: Grader,
}

impl Subject {
    pub fn json_file(&self) -> String {
        self.json_path.display().to_string()
    }

    pub fn npz_file(&self) -> String {
        self.npz_path.display().to_string()
    }

    /// A location in the JSON file at an entry, optionally deeper (`.weights[0]`).
    pub fn at_entry(&self, e: &ArchEntry, deeper: &str) -> Location {
        Location {
            file: self.json_file(),
            pointer: Some(format!("{}{deeper}", e.pointer())),
            key: None,
            layer: Some(e.name.clone()),
        }
    }

    /// A location in the npz file at a key.
    pub fn at_key(&self, key: &str, layer: Option<&str>) -> Location {
        Location { file: self.npz_file(), pointer: None, key: Some(key.to_string()), layer: layer.map(str::to_string) }
    }
}

/// Runs every check that the parsed files allow, in a stable order.
pub fn run_all(subject: &Subject) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(npz) = &subject.npz {
        out.extend(weights::arrays(subject, npz));
    }
    if let Some(arch) = &subject.arch {
        out.extend(layout::layer_types(subject, arch));
        if let Some(npz) = &subject.npz {
            out.extend(weights::references(subject, arch, npz));
            // Shape inference needs every layer and array; NaN values or float64 do not stop it.
            const BLOCKING: &[&str] = &["unreadable-array", "missing-weight", "unsupported-layer"];
            let shapes_ok_to_check = !out.iter().any(|f| BLOCKING.contains(&f.code));
            if shapes_ok_to_check {
                out.extend(shapes::flow(subject, arch, npz));
            }
            out.extend(grader::template(subject, arch, npz));
            out.extend(stale::h5_matches(subject, npz));
        }
    }
    out
}
