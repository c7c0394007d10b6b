//! fmtool's engine against Keras' own outputs: every fixture written by real Keras must predict
//! what Keras predicted, within 1e-5, and together the fixtures must cover every registered layer
//! and activation.

use crate::common::*;
use std::collections::BTreeSet;

/// Layers and activations no fixture can hold, and why.
const NOT_EXPRESSIBLE: &[(&str, &str)] =
    &[("RandomBrightness", "Keras 3.15 cannot save it to .h5 (\"cannot pickle 'module' object\")")];

fn all_fixture_models() -> Vec<std::path::PathBuf> {
    ["keras3", "keras2", "special"].iter().flat_map(|g| fixture_models(g)).collect()
}

#[test]
fn every_fixture_predicts_what_keras_predicted() {
    let models = all_fixture_models();
    assert!(models.len() >= 30, "expected the keras3 and keras2 fixture sets, found {}", models.len());
    let mut report = Vec::new();
    for dir in &models {
        let files = fmtool::model::load(dir).unwrap_or_else(|e| panic!("{}: {}", dir.display(), e));
        let model = fmtool::engine::Model::build(&files.arch, &files.npz)
            .unwrap_or_else(|e| panic!("{}: {} {:?}", dir.display(), e, e.hint));
        let (xs, x) = npz_f32(&dir.join("io.npz"), "x");
        let (_, y) = npz_f32(&dir.join("io.npz"), "y");
        let x = ndarray::Array2::from_shape_vec((xs[0], xs[1]), x).unwrap();
        let out = model.predict(x.view(), &|_| {}).unwrap();
        assert_eq!(out.len(), y.len(), "{}", dir.display());
        let max = out.iter().zip(&y).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        report.push(format!("{}: max |fmtool - keras| = {max:.2e}", dir.display()));
        assert!(max <= 1e-5, "{}: fmtool differs from Keras by {max}", dir.display());
    }
    println!("{}", report.join("\n"));
}

#[test]
fn fixtures_cover_every_layer_and_activation() {
    let mut types = BTreeSet::new();
    let mut activations = BTreeSet::new();
    for dir in all_fixture_models() {
        let files = fmtool::model::load(&dir).unwrap();
        for e in &files.arch {
            types.insert(e.class_name.clone());
            if e.config.contains_key("activation") {
                let a = fmtool::layers::activation::layer_activation(&e.layer(), "activation").unwrap();
                activations.insert(a.name().to_string());
            }
        }
    }
    let exempt: Vec<&str> = NOT_EXPRESSIBLE.iter().map(|(n, _)| *n).collect();
    let missing_layers: Vec<&str> = fmtool::layers::registry()
        .iter()
        .map(|s| s.class_name)
        .filter(|n| !types.contains(*n) && !exempt.contains(n))
        .collect();
    assert!(missing_layers.is_empty(), "no fixture uses {missing_layers:?}");
    let missing_acts: Vec<&str> = fmtool::layers::activation::activations()
        .iter()
        .map(|a| a.name)
        .filter(|n| !activations.contains(*n) && !exempt.contains(n))
        .collect();
    assert!(missing_acts.is_empty(), "no fixture uses the activations {missing_acts:?}");
}
