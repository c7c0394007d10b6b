//! Whether a student's `nn_predict.py` still reads the model as the course's template does. The
//! template's loader (`flatten`, `dense`, `nn_forward_h5`, `nn_inference`) reads only the course's
//! JSON layout and runs only Flatten and Dense; fmtool models it exactly, so `check` can judge the
//! model files alone. A student who changed it (to read `model.to_json()`, run Conv2D, ...) is
//! graded by their own code, which `check` must then run to judge (see `commands::check`).
//!
//! Compared function by function on code alone: comments, docstrings, blank lines and spacing are
//! no change; `relu` and `softmax` are the student's to write and are not compared.

use super::pysrc::{code_lines, function_of};

/// The course's template `nn_predict.py`, as distributed (relu and softmax as `return x` TODOs).
pub const COURSE_NN_PREDICT: &str = include_str!("../student/course/nn_predict.py");

/// The template's functions that read and run the model.
pub const LOADER_FUNCTIONS: [&str; 4] = ["flatten", "dense", "nn_forward_h5", "nn_inference"];

/// Each top-level function's code lines, spacing removed, by the outermost function around them.
fn function_code(text: &str, name: &str) -> Option<Vec<String>> {
    let mut lines = Vec::new();
    let mut found = false;
    for line in code_lines(text) {
        let outer = match line.blocks.first() {
            Some(_) => function_of(&line.blocks[..1]).0,
            None => match &line.opens {
                Some(super::pysrc::Block::Def(n)) => Some(n.as_str()),
                _ => None,
            },
        };
        if outer == Some(name) {
            found = true;
            lines.push(line.code.split_whitespace().collect::<String>());
        }
    }
    found.then_some(lines)
}

/// The loader functions of `text` that differ from the template's (missing ones included), in the
/// template's order; empty when the file reads the model exactly as the template does.
pub fn changed_loader_functions(text: &str) -> Vec<&'static str> {
    LOADER_FUNCTIONS
        .into_iter()
        .filter(|name| function_code(text, name).is_none_or(|own| Some(own) != function_code(COURSE_NN_PREDICT, name)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_and_its_reformatting_are_the_course_loader() {
        assert_eq!(changed_loader_functions(COURSE_NN_PREDICT), Vec::<&str>::new());
        // relu and softmax written, comments and spacing changed, a helper added: still the loader.
        let edited = COURSE_NN_PREDICT
            .replace("Unit\n    return x\n", "Unit\n    return np.maximum(0, x)  # done\n")
            .replace("x @ W + b", "x@W  +  b")
            .replace("# === Flatten ===", "\"\"\"Flatten.\"\"\"")
            + "\n\ndef plot(x):\n    return x\n";
        assert_eq!(changed_loader_functions(&edited), Vec::<&str>::new());
    }

    #[test]
    fn a_changed_or_missing_loader_function_is_named() {
        let layouts = COURSE_NN_PREDICT.replace(
            "    x = data\n    for layer in model_arch:",
            "    x = data\n    if isinstance(model_arch, dict):\n        model_arch = model_arch['layers']\n    for layer in model_arch:",
        );
        assert_eq!(changed_loader_functions(&layouts), ["nn_forward_h5"]);
        let conv = COURSE_NN_PREDICT.replace(
            "        elif ltype == \"Dense\":",
            "        elif ltype == \"Conv2D\":\n            x = conv(x)\n        elif ltype == \"Dense\":",
        );
        assert_eq!(changed_loader_functions(&conv), ["nn_forward_h5"]);
        let own = "import numpy as np\ndef relu(x):\n    return x\ndef nn_inference(model_arch, weights, data):\n    return data\n";
        assert_eq!(changed_loader_functions(own), LOADER_FUNCTIONS);
        // A nested helper belongs to its function.
        let nested = COURSE_NN_PREDICT.replace(
            "def nn_inference(model_arch, weights, data):\n",
            "def nn_inference(model_arch, weights, data):\n    def inner():\n        pass\n",
        );
        assert_eq!(changed_loader_functions(&nested), ["nn_inference"]);
    }
}
