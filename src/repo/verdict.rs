//! `check`'s findings in a student repository, judged by the student's own code. The model checks
//! judge the files as the course's loader reads them, and the import lint guesses from the syntax
//! which imports the tests reach; where the student's code was run on the tests' path
//! (`student::trial`), its outcome decides instead. Errors are what makes the workflow's inference
//! step fail:
//! - a model finding the student's own loader reads past (it classified the images) is a note;
//! - an exception on the tests' path is an error at its line (`inference-fails`), or makes the
//!   import finding at that line one;
//! - an import the run never reached is a warning;
//! - without a run, what the student's own loader reads is a warning, never an error, and a
//!   `student-code-not-run` warning says why.

use crate::checks::{Code, Finding, Location, Severity};
use crate::student::PyError;
use crate::student::trial::{Failure, Phase, Trial};

/// Model findings that say how the course's loader reads the model files: the student's own
/// loader may read them otherwise.
const READS_MODEL: [Code; 13] = [
    Code::NotCourseLayout,
    Code::Schema,
    Code::DuplicateLayerName,
    Code::UnsupportedLayer,
    Code::MissingWeight,
    Code::ShapeMismatch,
    Code::UnknownInbound,
    Code::OutputShape,
    Code::InputShape,
    Code::InputReshape,
    Code::TemplateCrash,
    Code::TemplateSkips,
    Code::TemplateIgnoresActivation,
];

/// Whether fmtool ran the student's code, and how it went.
pub enum Run<'a> {
    Ran(&'a Trial),
    NotRun(String),
}

/// Whether only a run of the student's code can judge the repository: its loader is its own (the
/// files alone do not say what it reads, or whether it crashes), or it imports what the runner lacks.
pub fn needs_run(findings: &[Finding], own_loader: bool) -> bool {
    own_loader || findings.iter().any(|f| f.code == Code::GraderMissingImport)
}

/// The student's own file and line an exception was raised at (the innermost frame outside
/// model_test.py).
fn raised_at(e: &PyError) -> Option<(&str, usize)> {
    let f = e.frames.iter().rev().find(|f| f.file != "model_test.py").or(e.frames.last())?;
    Some((f.file.as_str(), f.line))
}

/// Whether a finding's file (shown relative to the current folder) is `file` of the repository.
fn same_file(shown: &str, file: &str) -> bool {
    shown == file || shown.ends_with(&format!("/{file}"))
}

/// Applies the run's verdict to one repository's findings. `own_loader` names the loader functions
/// the student changed (empty: the course's loader); `nn_predict` is how findings name the file,
/// `nn_text` its text (which import lines run at import).
pub fn judge(findings: &mut Vec<Finding>, own_loader: &[&str], run: &Run, nn_predict: &str, nn_text: Option<&str>) {
    let own = !own_loader.is_empty();
    let functions = own_loader.iter().map(|f| format!("{f}()")).collect::<Vec<_>>().join(", ");
    let mut decided_from_files = false;
    for f in findings.iter_mut() {
        if !(own && f.severity == Severity::Error && READS_MODEL.contains(&f.code)) {
            continue;
        }
        match run {
            Run::Ran(t) if t.passed() => {
                f.severity = Severity::Note;
                f.message = format!(
                    "{}; but your nn_predict.py reads the model its own way ({functions}), and it classified the first {} test images from these files, run by fmtool as test_inference runs it",
                    f.message, t.asked
                );
                f.hint = Some(
                    "nothing to do for the grader, which runs your nn_predict.py: `fmtool score` runs it on every test image"
                        .into(),
                );
            }
            Run::Ran(_) => {}
            Run::NotRun(_) => {
                f.severity = Severity::Warning;
                decided_from_files = true;
            }
        }
    }
    match run {
        Run::Ran(t) => judge_imports(findings, t, nn_predict, nn_text),
        Run::NotRun(why) => {
            decided_from_files |= findings.iter().any(|f| f.code == Code::GraderMissingImport);
            if decided_from_files {
                findings.push(
                    Finding::warning(
                        Code::StudentCodeNotRun,
                        Location::file(nn_predict),
                        format!(
                            "fmtool could not run your nn_predict.py ({why}), so the findings about how it reads the model and which imports the tests reach were decided from the files alone"
                        ),
                    )
                    .hint("pass --python PATH (a Python with NumPy: your .venv), or install NumPy into the repository's .venv"),
                );
            }
        }
    }
}

/// The import findings decided by the run, and an `inference-fails` error for an exception on the
/// tests' path that no import finding explains.
fn judge_imports(findings: &mut Vec<Finding>, t: &Trial, nn_predict: &str, nn_text: Option<&str>) {
    let reached: Vec<(&str, usize)> =
        t.exceptions().filter(|e| e.kind == "ModuleNotFoundError").filter_map(raised_at).collect();
    let fail_at = t.failure.as_ref().and_then(|x| x.exception.as_ref()).and_then(raised_at);
    let mut explained = false;
    let failed_at_import = t.failure.as_ref().is_some_and(|f| f.phase == Phase::Import);
    let complete = t.passed() && t.relu.is_none() && t.softmax.is_none();
    for f in findings.iter_mut().filter(|f| f.code == Code::GraderMissingImport) {
        let line = f.location.line.unwrap_or(0);
        let here = |(file, l): &(&str, usize)| *l == line && same_file(&f.location.file, file);
        if reached.iter().any(here) {
            explained |= fail_at.as_ref().is_some_and(here);
            f.severity = Severity::Error;
            f.message = format!("{}; fmtool ran the tests' path through your code and it failed here", f.message);
            continue;
        }
        // Module-level imports all ran when the import of model_test.py succeeded.
        let module_level = nn_text.is_some_and(|text| at_module_level(text, line));
        if f.severity == Severity::Error && (complete || (module_level && !failed_at_import)) {
            f.severity = Severity::Warning;
            f.message = format!(
                "{}; but fmtool ran the tests' path through your code (the import of model_test.py, relu, softmax, nn_inference on {} test images) and it never reached this line: fix it before a test does",
                f.message, t.asked
            );
        }
    }
    // An error already at the failing line (a path the runner lacks) explains it too.
    explained |= fail_at.is_some_and(|(file, line)| {
        findings.iter().any(|f| {
            f.severity == Severity::Error && f.location.line == Some(line) && same_file(&f.location.file, file)
        })
    });
    if let Some(Failure { phase, exception: error, message: why }) = &t.failure
        && !explained
    {
        let place = error.as_ref().and_then(raised_at);
        let location = match place {
            Some((file, line)) => Location::line(file, line),
            None => Location::file(nn_predict),
        };
        let (what, effect) = match phase {
            Phase::Import => ("importing model_test.py (as pytest does) raised", "every test of the workflow fails"),
            Phase::Load => ("loading the model as test_inference does raised", "the workflow's inference step fails"),
            Phase::Inference => ("nn_inference, run as test_inference runs it,", "the workflow's inference step fails"),
            Phase::Outputs => ("test_inference's use of the outputs fails:", "the workflow's inference step fails"),
        };
        let image = error.as_ref().and_then(|e| e.image).map(|k| format!(" on test image {k}")).unwrap_or_default();
        let raised = if *phase == Phase::Inference && error.is_some() { " raised" } else { "" };
        let hint = match error {
            Some(e) if e.kind == "ModuleNotFoundError" => {
                "the grader's runner has only NumPy, the standard library and what the workflow installs: write that part with NumPy"
            }
            _ => "fix it where it was raised, then run `fmtool check` again; `fmtool score` runs every test image",
        };
        findings.push(
            Finding::error(Code::InferenceFails, location, format!("{what}{raised}{image}: {why}, so {effect}"))
                .hint(hint),
        );
    }
}

/// Whether line `line` of the text runs when the module is imported: outside every function and
/// `if __name__ == "__main__":`.
fn at_module_level(text: &str, line: usize) -> bool {
    use super::pysrc::{Block, code_lines, function_of};
    code_lines(text)
        .into_iter()
        .find(|l| l.number == line)
        .is_some_and(|l| function_of(&l.blocks).0.is_none() && !l.blocks.contains(&Block::Main))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::student::Frame;

    /// Line 3 at module level, 20 in nn_inference, 30 in a helper.
    const TEXT: &str = "import numpy as np\n\nimport tensorflow as tf\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\ndef nn_inference(a, w, d):\n    import keras\n    return d\n\n\n\n\n\n\n\ndef helper():\n    import torch\n";

    #[test]
    fn the_test_text_has_its_imports_where_the_tests_say() {
        let lines: Vec<usize> = TEXT
            .lines()
            .enumerate()
            .filter(|(_, l)| l.contains("import ") && !l.contains("numpy"))
            .map(|(i, _)| i + 1)
            .collect();
        assert_eq!(lines, [3, 20, 30]);
        assert!(at_module_level(TEXT, 3) && !at_module_level(TEXT, 20) && !at_module_level(TEXT, 30));
    }

    fn import_finding(line: usize, severity: Severity, message: &str) -> Finding {
        Finding::new(Code::GraderMissingImport, severity, Location::line("nn_predict.py", line), message)
    }

    fn error(kind: &str, line: usize, image: Option<usize>) -> PyError {
        PyError {
            kind: kind.into(),
            message: "m".into(),
            frames: vec![Frame { file: "nn_predict.py".into(), line, function: "f".into(), source: String::new() }],
            layer: None,
            image,
        }
    }

    fn trial(failure: Option<Failure>) -> Trial {
        Trial { asked: 8, classified: 8, failure, relu: None, softmax: None, seconds: 0.1 }
    }

    fn layout() -> Finding {
        Finding::error(Code::NotCourseLayout, Location::json("model/fashion_mnist.json", "$", None), "layout")
    }

    #[test]
    fn what_the_students_loader_reads_is_a_note_once_it_ran() {
        let mut f = vec![layout()];
        judge(&mut f, &["nn_forward_h5"], &Run::Ran(&trial(None)), "nn_predict.py", Some(TEXT));
        assert_eq!(f[0].severity, Severity::Note);
        assert!(f[0].message.contains("nn_forward_h5()") && f[0].message.contains("first 8 test images"));
        // With the course's loader it stays an error.
        let mut f = vec![layout()];
        judge(&mut f, &[], &Run::Ran(&trial(None)), "nn_predict.py", Some(TEXT));
        assert_eq!(f[0].severity, Severity::Error);
        // Not run: a warning, and why.
        let mut f = vec![layout()];
        judge(&mut f, &["nn_inference"], &Run::NotRun("no NumPy".into()), "nn_predict.py", Some(TEXT));
        assert_eq!(
            f.iter().map(|f| (f.code, f.severity)).collect::<Vec<_>>(),
            [(Code::NotCourseLayout, Severity::Warning), (Code::StudentCodeNotRun, Severity::Warning)]
        );
        assert!(f[1].message.contains("no NumPy"));
    }

    #[test]
    fn an_exception_on_the_tests_path_is_an_error_at_its_line() {
        let failure = Failure {
            phase: Phase::Inference,
            exception: Some(error("KeyError", 27, Some(0))),
            message: "KeyError: 'name'".into(),
        };
        let mut f = vec![layout()];
        judge(&mut f, &["nn_forward_h5"], &Run::Ran(&trial(Some(failure))), "nn_predict.py", Some(TEXT));
        assert_eq!(f[0].severity, Severity::Error);
        assert_eq!((f[1].code, f[1].severity, f[1].location.line), (Code::InferenceFails, Severity::Error, Some(27)));
        assert!(
            f[1].message.contains("on test image 0") && f[1].message.contains("inference step fails"),
            "{}",
            f[1].message
        );
    }

    #[test]
    fn imports_are_errors_where_the_run_reached_them() {
        let static_ = || {
            vec![
                import_finding(3, Severity::Error, "`import tensorflow as tf`: ... every test gives 0 points"),
                import_finding(20, Severity::Error, "`import keras`: so nn_inference() fails"),
                import_finding(30, Severity::Warning, "`import torch`: inside helper(), so it fails"),
            ]
        };
        // Nothing reached: the errors become warnings.
        let mut f = static_();
        judge(&mut f, &[], &Run::Ran(&trial(None)), "nn_predict.py", Some(TEXT));
        assert_eq!(f.iter().map(|f| f.severity).collect::<Vec<_>>(), [Severity::Warning; 3]);
        // The helper's import reached on the first image: an error there, explained (no second finding);
        // the module-level import ran (the import of model_test.py succeeded): a warning.
        let failure = Failure {
            phase: Phase::Inference,
            exception: Some(error("ModuleNotFoundError", 30, Some(0))),
            message: "No module".into(),
        };
        let mut f = static_();
        judge(&mut f, &[], &Run::Ran(&trial(Some(failure))), "nn_predict.py", Some(TEXT));
        assert_eq!(
            f.iter().map(|f| f.severity).collect::<Vec<_>>(),
            [Severity::Warning, Severity::Error, Severity::Error]
        );
        assert_eq!(f.len(), 3);
        // Failing at import: the module-level error stands.
        let failure = Failure {
            phase: Phase::Import,
            exception: Some(error("ModuleNotFoundError", 3, None)),
            message: "No module".into(),
        };
        let mut f = static_();
        judge(&mut f, &[], &Run::Ran(&trial(Some(failure))), "nn_predict.py", Some(TEXT));
        assert_eq!(f[0].severity, Severity::Error);
        assert_eq!(f.len(), 3);
    }
}
