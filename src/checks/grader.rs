//! Findings about the course template: layers it silently skips although they change the result,
//! activations it ignores, and entries that make it crash. Warnings, or errors under
//! `--grader classic`.

use super::{Finding, Severity, Subject};
use crate::cli::Grader;
use crate::model::{ArchEntry, Npz};

pub fn template(subject: &Subject, arch: &[ArchEntry], npz: &Npz) -> Vec<Finding> {
    let severity = if subject.grader == Grader::Classic { Severity::Error } else { Severity::Warning };
    let mut out = Vec::new();
    match crate::grader::plan_template(arch, npz) {
        Err(e) => out.push(Finding {
            code: "template-crash",
            severity,
            location: super::Location { file: subject.json_file(), ..Default::default() },
            message: format!("the unmodified course template would crash: {}", e.message),
            hint: Some("the template runs only Flatten and Dense (with bias); run `fmtool score --grader classic` to see what it gives".into()),
        }),
        Ok(plan) => {
            for (step, e) in plan.steps.iter().zip(arch) {
                if !step.changes_result {
                    continue;
                }
                let (code, message, hint) = if step.action == "skipped" {
                    (
                        "template-skips",
                        format!("the course template skips layer {} ({}), which changes the result", e.name, e.class_name),
                        "fmtool runs it; the unmodified template grades a different model (`fmtool score --grader classic` shows the difference)",
                    )
                } else {
                    (
                        "template-ignores-activation",
                        format!("the course template runs {} without its activation ({})", e.name, step.detail),
                        "the template applies only relu and softmax; use one of those, or extend the template",
                    )
                };
                out.push(Finding { code, severity, location: subject.at_entry(e, ".type"), message, hint: Some(hint.into()) });
            }
        }
    }
    out
}
