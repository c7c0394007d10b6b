//! Findings about the architecture file itself: JSON that does not parse, a layout other than the
//! course's, entries that break the schema, and layer types fmtool or the grader cannot run.

use super::{Finding, Location, Subject};
use crate::model::ArchEntry;
use crate::model::arch::{self, Layout};
use serde_json::Value;
use std::path::Path;

fn at(file: &Path, pointer: Option<String>) -> Location {
    Location { file: file.display().to_string(), pointer, key: None, layer: None }
}

/// Parses the JSON file: the entries when it is in the course layout, and every finding about it.
pub fn read(path: &Path) -> (Option<Vec<ArchEntry>>, Vec<Finding>) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            let f = Finding::error("unreadable-file", at(path, None), crate::Error::io("read", path, &e).message);
            return (None, vec![f]);
        }
    };
    let value: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            let f = Finding::error("invalid-json", at(path, None), format!("not valid JSON: {e}"))
                .hint("the file may be truncated; export it again, e.g. with `fmtool convert model.h5`");
            return (None, vec![f]);
        }
    };
    let layout = arch::detect_layout(&value);
    if layout != Layout::Course {
        let f = Finding::error(
            "not-course-layout",
            at(path, Some("$".into())),
            format!("the file is {}", layout.describe()),
        )
        .hint(arch::reexport_hint());
        return (None, vec![f]);
    }
    let mut findings: Vec<Finding> = super::schema::validate_architecture(&value)
        .into_iter()
        .map(|(pointer, message)| {
            Finding::error("schema", at(path, Some(pointer)), message)
                .hint("each entry is {\"name\": str, \"type\": str, \"config\": {...}, \"weights\": [npz keys]}")
        })
        .collect();
    match arch::parse_arch(&value) {
        Ok(entries) => (Some(entries), findings),
        Err(e) => {
            if findings.is_empty() {
                findings.push(Finding::error("schema", at(path, None), e.message));
            }
            (None, findings)
        }
    }
}

/// Layer types that fmtool cannot run.
pub fn layer_types(subject: &Subject, arch: &[ArchEntry]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for e in arch {
        if crate::layers::lookup(&e.class_name).is_none() {
            out.push(
                Finding::error(
                    "unsupported-layer",
                    subject.at_entry(e, ".type"),
                    format!("layer {} has type {:?}, which fmtool does not run", e.name, e.class_name),
                )
                .hint("run `fmtool layers` for the supported layer types"),
            );
        }
        if let Some(first) = seen.insert(e.name.clone(), e.index) {
            out.push(Finding::error(
                "duplicate-layer-name",
                subject.at_entry(e, ".name"),
                format!("layer name {:?} is used again (first at $[{first}])", e.name),
            ));
        }
    }
    out
}
