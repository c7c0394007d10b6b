//! `fmtool check`: every finding that would make the grader fail or mis-score a model, at once.

use crate::checks::{self, Finding, Location, Severity, Subject};
use crate::cli::CheckArgs;
use crate::error::Result;
use crate::model::{H5_NAME, JSON_NAME, NPZ_NAME};
use crate::{ExitStatus, err};
use std::path::{Path, PathBuf};

/// The result of `fmtool check`; its JSON form is `schemas/check-report.schema.json`.
#[derive(Debug, serde::Serialize)]
pub struct CheckReport {
    pub files: Vec<String>,
    pub errors: usize,
    pub warnings: usize,
    pub findings: Vec<Finding>,
}

impl CheckReport {
    pub fn status(&self) -> ExitStatus {
        if self.errors > 0 { ExitStatus::Failure } else { ExitStatus::Success }
    }
}

/// Works out the json, npz and (optional) h5 paths from the command line.
fn resolve(paths: &[PathBuf]) -> Result<(PathBuf, PathBuf, Option<PathBuf>)> {
    let default = [PathBuf::from("model")];
    let paths = if paths.is_empty() { &default[..] } else { paths };
    let (mut json, mut npz, mut h5) = (None, None, None);
    for p in paths {
        if p.is_dir() {
            json = Some(p.join(JSON_NAME));
            npz = Some(p.join(NPZ_NAME));
            if p.join(H5_NAME).is_file() {
                h5 = Some(p.join(H5_NAME));
            }
            continue;
        }
        match p.extension().and_then(|e| e.to_str()) {
            Some("json") => json = Some(p.clone()),
            Some("npz") => npz = Some(p.clone()),
            Some("h5") | Some("keras") => h5 = Some(p.clone()),
            _ if !p.exists() => {
                return Err(err!("{} does not exist", p.display()).with_hint(
                    "pass the model directory (holding fashion_mnist.json and fashion_mnist.npz) or its files",
                ));
            }
            _ => return Err(err!("{}: fmtool checks .json, .npz, .h5 and .keras files", p.display())),
        }
    }
    let sibling = |known: &Option<PathBuf>, name: &str| known.as_ref().and_then(|k| k.parent()).map(|d| d.join(name));
    let json = json.or_else(|| sibling(&npz, JSON_NAME)).or_else(|| sibling(&h5, JSON_NAME));
    let npz = npz.or_else(|| sibling(&json, NPZ_NAME));
    match (json, npz) {
        (Some(j), Some(n)) if j.exists() || n.exists() => Ok((j, n, h5)),
        (Some(j), _) => Err(err!("{} does not exist", j.parent().unwrap_or(Path::new(".")).join(JSON_NAME).display())
            .with_hint("pass the model directory, or convert a Keras file first: fmtool convert model.h5")),
        _ => Err(err!("nothing to check").with_hint("pass the model directory or its files")),
    }
}

pub fn run(args: &CheckArgs) -> Result<CheckReport> {
    let (json_path, npz_path, h5_path) = resolve(&args.paths)?;
    let mut findings = Vec::new();
    let (arch, json_findings) = if json_path.exists() {
        checks::layout::read(&json_path)
    } else {
        let f = Finding::error(
            "missing-file",
            Location { file: json_path.display().to_string(), ..Default::default() },
            "the architecture file is missing",
        )
        .hint("export it with `fmtool convert model.h5`");
        (None, vec![f])
    };
    findings.extend(json_findings);
    let npz = if npz_path.exists() {
        match crate::model::npz::read_npz(&npz_path) {
            Ok(n) => Some(n),
            Err(e) => {
                let mut f = Finding::error(
                    "unreadable-npz",
                    Location { file: npz_path.display().to_string(), ..Default::default() },
                    e.message,
                );
                f.hint = e.hint;
                findings.push(f);
                None
            }
        }
    } else {
        findings.push(
            Finding::error(
                "missing-file",
                Location { file: npz_path.display().to_string(), ..Default::default() },
                "the weights file is missing",
            )
            .hint("export it with `fmtool convert model.h5`"),
        );
        None
    };
    let subject = Subject {
        json_path: json_path.clone(),
        npz_path: npz_path.clone(),
        h5_path: h5_path.clone(),
        arch,
        npz,
        grader: args.grader,
    };
    findings.extend(checks::run_all(&subject));
    findings.sort_by_key(|f| f.severity);
    let errors = findings.iter().filter(|f| f.severity == Severity::Error).count();
    let mut files = vec![json_path.display().to_string(), npz_path.display().to_string()];
    files.extend(h5_path.map(|p| p.display().to_string()));
    Ok(CheckReport { files, errors, warnings: findings.len() - errors, findings })
}
