//! The stale-export finding: a Keras .h5 beside the json/npz whose weights differ from the npz,
//! because the model was retrained and saved but not exported again.

use super::{Finding, Subject};
use crate::model::Npz;

pub fn h5_matches(subject: &Subject, npz: &Npz) -> Vec<Finding> {
    let Some(h5) = &subject.h5_path else { return Vec::new() };
    let at = super::Location { file: h5.display().to_string(), ..Default::default() };
    let reexport = format!(
        "re-export it: fmtool convert {} --out {} --force",
        h5.display(),
        subject.npz_path.parent().map(|p| p.display().to_string()).unwrap_or_else(|| ".".into())
    );
    let converted = match crate::keras::read_model(h5) {
        Ok(m) => m,
        Err(e) => {
            return vec![Finding::warning("unreadable-h5", at, format!("cannot compare with the npz: {}", e.message))];
        }
    };
    let (entries, weights) = converted.to_course();
    let mut differing = Vec::new();
    let mut missing = Vec::new();
    for (e, ws) in entries.iter().zip(&weights) {
        for w in ws {
            match npz.get(&w.key).and_then(|x| x.array.as_ref().ok()) {
                None => missing.push(w.key.clone()),
                Some(a) => {
                    let same = a.shape == w.array.shape()
                        && a.data.iter().zip(w.array.iter()).all(|(x, y)| (*x as f32).to_bits() == y.to_bits());
                    if !same {
                        differing.push(format!("{} ({})", w.key, e.name));
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    if !differing.is_empty() {
        out.push(
            Finding::error(
                "stale-export",
                at.clone(),
                format!(
                    "the weights in {} differ from {} for {} array(s): {}{}",
                    h5.display(),
                    subject.npz_file(),
                    differing.len(),
                    differing.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
                    if differing.len() > 3 { ", ..." } else { "" }
                ),
            )
            .hint(format!("the model was saved after the last export; {reexport}")),
        );
    } else if !missing.is_empty() && missing.len() == weights.iter().map(Vec::len).sum::<usize>() {
        out.push(
            Finding::warning(
                "h5-not-compared",
                at,
                format!("{} names its arrays differently from the npz; not compared", h5.display()),
            )
            .hint(reexport),
        );
    }
    out
}
