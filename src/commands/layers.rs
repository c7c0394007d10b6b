//! `fmtool layers`: the supported layers and activations, read from the registries.

use crate::layers::{Classic, Family, activation, registry};

#[derive(Debug, serde::Serialize)]
pub struct LayerRow {
    pub class_name: &'static str,
    pub family: Family,
    /// The weight slots, `kernel, bias`, in `get_weights()` order.
    pub weights: String,
    /// What the course template does with it.
    pub course_template: Classic,
}

#[derive(Debug, serde::Serialize)]
pub struct ActivationRow {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub course_template: bool,
}

#[derive(Debug, serde::Serialize)]
pub struct LayersReport {
    pub layers: Vec<LayerRow>,
    pub activations: Vec<ActivationRow>,
}

pub fn run() -> LayersReport {
    LayersReport {
        layers: registry()
            .iter()
            .map(|s| LayerRow {
                class_name: s.class_name,
                family: s.family,
                weights: s.weights.join(", "),
                course_template: s.classic,
            })
            .collect(),
        activations: activation::activations()
            .iter()
            .map(|a| ActivationRow { name: a.name, aliases: a.aliases, course_template: a.classic })
            .collect(),
    }
}
