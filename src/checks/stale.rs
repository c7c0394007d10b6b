//! The `stale-export` finding: a Keras model file (`fashion_mnist.h5` / `.keras`) beside the
//! course files whose layers or weights differ from them, because the model was trained again and
//! saved but not exported again. Reading the Keras file is `keras::read_model`'s job; this module
//! only compares what it returns with the JSON and the npz.

use super::{Finding, Location, ModelView};
use crate::checks::Code;
use crate::layers::fmt_dims;
use crate::model::{ArchEntry, Npz};
use crate::text::file_name;

/// What the Keras file holds, as the course model it converts to (`KerasModel::take_course`).
pub struct KerasSide<'a> {
    /// The file as shown in findings.
    pub file: &'a str,
    pub entries: &'a [ArchEntry],
    pub npz: &'a Npz,
    /// True when the Keras file was modified after the npz (None when unknown).
    pub newer: Option<bool>,
}

/// Compares the Keras file with the export; `convert` is the command that re-exports.
pub fn check(view: &ModelView, keras: &KerasSide, convert: &str) -> Vec<Finding> {
    let Some(_) = view.npz else { return Vec::new() };
    let hint = format!("export again from the saved model: `{convert}`");
    let when = match keras.newer {
        Some(true) => format!(" ({} was saved after the export)", file_name(keras.file)),
        Some(false) => format!(" ({} is newer than {})", view.npz_name(), file_name(keras.file)),
        None => String::new(),
    };
    // Layers with weights, by name and class, in order: InputLayer entries and other weightless
    // layers are left out because exports differ in whether they keep them.
    let weighted = |es: &[ArchEntry]| -> Vec<(String, String, usize)> {
        es.iter()
            .filter(|e| !e.weights.is_empty())
            .map(|e| (e.name.clone(), e.class_name.clone(), e.weights.len()))
            .collect()
    };
    let (ours, theirs) = (weighted(view.arch), weighted(keras.entries));
    if view.arch_complete && ours != theirs {
        let list = |v: &[(String, String, usize)]| {
            let names: Vec<String> = v.iter().take(6).map(|(n, c, _)| format!("{n} ({c})")).collect();
            format!("{}{}", names.join(", "), if v.len() > 6 { ", ..." } else { "" })
        };
        return vec![
            Finding::error(
                Code::StaleExport,
                Location::file(keras.file),
                format!(
                    "{} and {} describe different models{when}: the Keras file has layers with weights {}, the JSON {}",
                    file_name(keras.file),
                    file_name(view.json_file),
                    list(&theirs),
                    list(&ours)
                ),
            )
            .hint(hint),
        ];
    }
    let mut differ: Vec<String> = Vec::new();
    let mut compared = 0usize;
    for ke in keras.entries {
        let Some(e) = view.arch.iter().find(|e| e.name == ke.name) else { continue };
        let kws = ke.weights.iter().filter_map(|k| keras.npz.get(k).and_then(|x| x.array.as_ref().ok()));
        for (j, w) in kws.enumerate() {
            // The JSON's own key for this weight: the export may name arrays in any scheme.
            let Some(a) = e.weights.get(j).and_then(|k| view.array(k)) else { continue };
            compared += 1;
            let key = &e.weights[j];
            if a.shape != w.shape {
                differ.push(format!("{key}: shape {} vs {}", fmt_dims(&a.shape), fmt_dims(&w.shape)));
                continue;
            }
            // Exact comparison in float32: an export of the same model is bit-identical.
            let mut max = 0f64;
            for (x, y) in a.values().zip(w.values()) {
                if (x as f32).to_bits() != (y as f32).to_bits() {
                    max = max.max((x - y).abs());
                    if max.is_nan() {
                        break;
                    }
                }
            }
            if max > 0.0 || max.is_nan() {
                differ.push(format!("{key}: max difference {max:.3e}"));
            }
        }
    }
    if differ.is_empty() {
        return Vec::new();
    }
    let shown: Vec<&str> = differ.iter().take(3).map(String::as_str).collect();
    vec![
        Finding::error(
            Code::StaleExport,
            Location::file(keras.file),
            format!(
                "{} holds different weights than {}{when}: {} of {compared} arrays {} ({}{})",
                file_name(keras.file),
                view.npz_name(),
                differ.len(),
                if differ.len() == 1 { "differs" } else { "differ" },
                shown.join("; "),
                if differ.len() > 3 { "; ..." } else { "" }
            ),
        )
        .hint(hint),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use crate::grader::Grader;

    /// The Keras side: the same arrays, times `scale`, as float32.
    fn keras_weights(npz: &Npz, _arch: &[ArchEntry], scale: f32) -> Npz {
        let entries = npz
            .entries
            .iter()
            .map(|e| crate::model::npz::NpzEntry {
                key: e.key.clone(),
                array: Ok(crate::model::npz::NpyArray::from_f32_owned(
                    e.array.as_ref().unwrap().to_f32().mapv(|v| v * scale),
                )),
            })
            .collect();
        Npz { entries, ..npz.clone() }
    }

    const CONVERT: &str = "fmtool convert model/fashion_mnist.h5 --force";

    #[test]
    fn identical_weights_are_not_stale() {
        let (a, n) = mlp();
        let w = keras_weights(&n, &a, 1.0);
        let k = KerasSide { file: "model/fashion_mnist.h5", entries: &a, npz: &w, newer: None };
        assert_eq!(check(&view(&a, &n, Grader::Full), &k, CONVERT), vec![]);
    }

    #[test]
    fn retrained_weights_are_stale_with_the_reexport_command() {
        let (a, n) = mlp();
        let w = keras_weights(&n, &a, 2.0);
        let k = KerasSide { file: "model/fashion_mnist.h5", entries: &a, npz: &w, newer: Some(true) };
        let f = check(&view(&a, &n, Grader::Full), &k, CONVERT);
        assert_eq!(codes(&f), ["stale-export"]);
        assert!(f[0].message.contains("4 of 4 arrays differ"), "{}", f[0].message);
        assert!(f[0].message.contains("saved after the export"), "{}", f[0].message);
        assert_eq!(
            f[0].hint.as_deref(),
            Some("export again from the saved model: `fmtool convert model/fashion_mnist.h5 --force`")
        );
    }

    #[test]
    fn other_layer_names_are_another_model() {
        let (a, n) = mlp();
        let mut other = a.clone();
        other[2].name = "dense_7".into();
        let w = keras_weights(&n, &a, 1.0);
        let k = KerasSide { file: "model/fashion_mnist.h5", entries: &other, npz: &w, newer: None };
        let f = check(&view(&a, &n, Grader::Full), &k, CONVERT);
        assert_eq!(codes(&f), ["stale-export"]);
        assert!(f[0].message.contains("different models"), "{}", f[0].message);
        assert!(f[0].message.contains("dense_7 (Dense)"), "{}", f[0].message);
    }
}
