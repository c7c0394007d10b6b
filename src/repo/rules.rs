//! Every departure of a repository from the course's rules: its course files against the course's
//! (`course.rs`), then the gaming routes (`gaming.rs`). In `check` (the pre-commit hook) they are
//! warnings: the workflow still awards what it awards; in `grade` and with `--strict` they count.

use super::integrity::Departure;
use crate::checks::{Finding, Severity};
use std::path::Path;

/// Every departure of the repository at `root` from `course`: its files, then the gaming routes.
pub fn departures(root: &Path, course: &super::course::Course) -> Vec<Departure> {
    let mut out = course.departures(root);
    for d in &mut out {
        if d.hint.is_none() {
            d.hint = Some(format!(
                "the course's README counts editing its files as cheating: restore {} as the course distributed it",
                d.file
            ));
        }
    }
    out.extend(super::gaming::gaming(root));
    out
}

/// The departures as `check` findings: warnings, or errors under `--strict`.
pub fn findings(departures: &[Departure], strict: bool) -> Vec<Finding> {
    let severity = if strict { Severity::Error } else { Severity::Warning };
    departures.iter().map(|d| d.to_finding(severity)).collect()
}
