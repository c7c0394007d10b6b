//! Findings from shape inference: building the model layer by layer from the grader's (1, 784)
//! input, where it breaks, whether it ends in 10 class scores, and whether those are softmax
//! probabilities.

use super::{Finding, Location, Subject};
use crate::cli::Grader;
use crate::engine::{IMAGE_VALUES, Model};
use crate::layers::fmt_shape;
use crate::model::{ArchEntry, Npz};

pub fn flow(subject: &Subject, arch: &[ArchEntry], npz: &Npz) -> Vec<Finding> {
    let mut out = Vec::new();
    let model = match Model::build(arch, npz) {
        Ok(m) => m,
        Err(e) => {
            // Builder messages start with the entry's pointer: "$[3] (layer dense_1, ...): ...".
            let index =
                e.message.strip_prefix("$[").and_then(|r| r.split(']').next()).and_then(|i| i.parse::<usize>().ok());
            let location = match index.and_then(|i| arch.get(i)) {
                Some(entry) => subject.at_entry(entry, ""),
                None => Location { file: subject.json_file(), ..Default::default() },
            };
            let mut f = Finding::error("shape", location, e.message);
            if let Some(h) = e.hint {
                f = f.hint(h);
            }
            out.push(f);
            return out;
        }
    };
    let input: usize = model.input.shape.iter().product();
    let first = &arch[0];
    if input != IMAGE_VALUES {
        out.push(
            Finding::error(
                "input-shape",
                subject.at_entry(first, ""),
                format!(
                    "the model's input {} holds {input} values, but the grader feeds 784 per image",
                    fmt_shape(&model.input.shape)
                ),
            )
            .hint("train on 28x28 grey images: keras.Input((28, 28, 1)) or keras.Input((784,))"),
        );
    } else if model.input.shape.len() > 1
        && arch
            .iter()
            .find(|e| e.class_name != "InputLayer")
            .is_some_and(|e| e.class_name != "Flatten" && e.class_name != "Reshape")
    {
        let f = Finding {
            code: "input-reshape",
            severity: if subject.grader == Grader::Classic { super::Severity::Error } else { super::Severity::Warning },
            location: subject.at_entry(first, ""),
            message: format!(
                "the model expects input {} but the grader feeds flat (1, 784) rows; fmtool reshapes them, the course template does not",
                fmt_shape(&model.input.shape)
            ),
            hint: Some(
                "make keras.layers.Reshape((28, 28, 1)) the model's first layer after keras.Input((784,))".into(),
            ),
        };
        out.push(f);
    }
    let last = arch.last().expect("a model has layers");
    if model.output_shape() != &[10] {
        out.push(
            Finding::error(
                "output-shape",
                subject.at_entry(last, ""),
                format!(
                    "the model ends with {} per image; the grader needs 10 class scores",
                    fmt_shape(model.output_shape())
                ),
            )
            .hint("end the model with Dense(10, activation=\"softmax\")"),
        );
    }
    let softmax_at_end = match last.class_name.as_str() {
        "Softmax" => true,
        "Dense" | "Activation" | "Conv2D" => last.config.get("activation").and_then(|a| a.as_str()) == Some("softmax"),
        _ => false,
    };
    if !softmax_at_end {
        out.push(
            Finding::warning(
                "no-softmax",
                subject.at_entry(last, ".config.activation"),
                format!("the last layer {} does not end with softmax; the outputs are not probabilities", last.name),
            )
            .hint("accuracy (argmax) is unchanged, but the course expects softmax outputs: use activation=\"softmax\""),
        );
    }
    out
}
