//! Findings about the weight arrays: members that are not plain numeric arrays (pickles, object
//! arrays), non-float or float64 dtypes, NaN and Inf, weight names missing from the npz, keys
//! shared by several layers, and arrays nobody references.

use super::{Finding, Subject};
use crate::model::npz::Dtype;
use crate::model::{ArchEntry, Npz};
use std::collections::BTreeMap;

/// Findings about each array on its own.
pub fn arrays(subject: &Subject, npz: &Npz) -> Vec<Finding> {
    let mut out = Vec::new();
    for e in &npz.entries {
        let at = subject.at_key(&e.key, None);
        let a = match &e.array {
            Err(msg) => {
                out.push(Finding::error("unreadable-array", at, msg.clone()).hint(
                    "save every weight as a plain float32 array: np.savez(path, **{name: np.asarray(w, np.float32)})",
                ));
                continue;
            }
            Ok(a) => a,
        };
        match a.dtype {
            Dtype::F32 => {}
            Dtype::F64 | Dtype::F16 => out.push(
                Finding::warning(
                    "float64-weights",
                    at.clone(),
                    format!("{} is {} ({}); Keras weights are float32", e.key, a.dtype.numpy_name(), a.descr),
                )
                .hint("the grader still works; save with np.asarray(w, np.float32) to halve the file"),
            ),
            Dtype::Int | Dtype::Bool => out.push(
                Finding::error(
                    "non-float-weights",
                    at.clone(),
                    format!("{} holds {} values ({}), not floats", e.key, a.dtype.numpy_name(), a.descr),
                )
                .hint("weights must be float arrays; export layer.get_weights() without converting them"),
            ),
        }
        let (nan, inf) = a.non_finite();
        if nan + inf > 0 {
            let first = a.data.iter().position(|v| !v.is_finite()).unwrap_or(0);
            out.push(
                Finding::error(
                    "non-finite",
                    at,
                    format!("{} has {nan} NaN and {inf} infinite value(s) (first at flat index {first})", e.key),
                )
                .hint("training diverged: lower the learning rate, retrain and export again"),
            );
        }
    }
    out
}

/// Keys similar to a missing one, for the hint: keys mentioning the layer, else near spellings.
fn suggestions(npz: &Npz, e: &ArchEntry, missing: &str) -> String {
    let keys: Vec<&str> = npz.keys().collect();
    let mentioning: Vec<&str> = keys.iter().copied().filter(|k| k.contains(e.name.as_str())).collect();
    if !mentioning.is_empty() {
        return format!(
            "the npz has {} for this layer; name the arrays <layer>_<i> (e.g. {}_0) as the course export does, or list these keys in \"weights\"",
            mentioning.iter().take(4).map(|k| format!("{k:?}")).collect::<Vec<_>>().join(", "),
            e.name
        );
    }
    let mut near: Vec<(usize, &str)> =
        keys.iter().map(|k| (edit_distance(k, missing), *k)).filter(|(d, _)| *d <= 3).collect();
    near.sort();
    if let Some((_, k)) = near.first() {
        return format!("did you mean {k:?}?");
    }
    match keys.len() {
        0 => "the npz holds no arrays".into(),
        n => format!("the npz holds {n} arrays: {}", keys.iter().take(6).copied().collect::<Vec<_>>().join(", ")),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + (ca != *cb) as usize).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Findings about how the architecture refers to the arrays.
pub fn references(subject: &Subject, arch: &[ArchEntry], npz: &Npz) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut users: BTreeMap<&str, Vec<&ArchEntry>> = BTreeMap::new();
    for e in arch {
        for (j, key) in e.weights.iter().enumerate() {
            users.entry(key.as_str()).or_default().push(e);
            if npz.get(key).is_none() {
                out.push(
                    Finding::error(
                        "missing-weight",
                        subject.at_entry(e, &format!(".weights[{j}]")),
                        format!("{key} is not in {}", file_name(&subject.npz_path)),
                    )
                    .hint(suggestions(npz, e, key)),
                );
            }
        }
    }
    for (key, es) in &users {
        if es.len() > 1 {
            let names: Vec<&str> = es.iter().map(|e| e.name.as_str()).collect();
            out.push(
                Finding::error(
                    "shared-weight",
                    subject.at_key(key, Some(names[0])),
                    format!("{key} is used by {} layers: {}", es.len(), names.join(", ")),
                )
                .hint("each layer needs its own arrays: export them under <layer name>_<i>"),
            );
        }
    }
    for key in npz.keys() {
        if !users.contains_key(key) {
            out.push(
                Finding::warning("unused-array", subject.at_key(key, None), format!("{key} is not used by any layer"))
                    .hint("a layer may be missing from fashion_mnist.json, or the npz is from another export"),
            );
        }
    }
    out
}

fn file_name(p: &std::path::Path) -> String {
    p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| p.display().to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(super::edit_distance("dense_1_0", "dense_1_0"), 0);
        assert_eq!(super::edit_distance("dense_1_0", "dense1_0"), 1);
        assert_eq!(super::edit_distance("abc", "xyz"), 3);
    }
}
