//! Findings about the repo's workflow: steps whose command cannot run, that run pytest before it
//! is installed, that run a test `model_test.py` lacks, whose name promises another accuracy
//! threshold than their test asserts, or whose timeout is shorter than the measured run.

use super::tests_py::{Cmp, ModelTest};
use super::workflow::{Command, Setup, Step, TestNode, Workflow, interpret, interpret_setup};
use crate::checks::Code;
use crate::checks::{Finding, Location};
use std::collections::BTreeSet;
use std::path::Path;

/// The test file of the course.
pub const MODEL_TEST: &str = "model_test.py";

fn at(step: &Step) -> Location {
    Location::line(&step.file, step.line)
}

fn points(n: u64) -> String {
    if n == 1 { "1 point".into() } else { format!("{n} points") }
}

/// The accuracy threshold a step's title promises (`Accuracy >= 90` → (>=, 0.90)), when the title
/// mentions accuracy and a number.
pub fn named_threshold(title: &str) -> Option<(Option<Cmp>, f64)> {
    if !title.to_ascii_lowercase().contains("acc") {
        return None;
    }
    let b = title.as_bytes();
    let start = b.iter().position(|c| c.is_ascii_digit())?;
    let mut end = start;
    while end < b.len() && (b[end].is_ascii_digit() || b[end] == b'.') {
        end += 1;
    }
    let mut value: f64 = title[start..end].trim_end_matches('.').parse().ok()?;
    if value > 1.0 {
        value /= 100.0;
    }
    let before = title[..start].trim_end();
    let cmp = if before.ends_with(">=") || before.ends_with('≥') {
        Some(Cmp::Ge)
    } else if before.ends_with('>') {
        Some(Cmp::Gt)
    } else {
        None
    };
    Some((cmp, value))
}

/// Every workflow finding fmtool can make without running anything. `model_test` is the parsed
/// `model_test.py` when the repo has one (test names are checked only then).
pub fn workflow_findings(repo_root: &Path, workflows: &[Workflow], model_test: Option<&ModelTest>) -> Vec<Finding> {
    let mut out = Vec::new();
    for wf in workflows {
        for (line, note) in &wf.notes {
            out.push(Finding::warning(Code::WorkflowValue, Location::line(&wf.file, *line), note.clone()).hint(
                "write `timeout:` as minutes and `max-score:` as a whole number, e.g. `timeout: 10`, `max-score: 3`",
            ));
        }
        // Steps of one job share a runner: what a setup-command installs is there for later steps.
        let mut job = "";
        let mut installed: BTreeSet<String> = BTreeSet::new();
        let mut setup_unknown = false;
        for step in &wf.steps {
            if step.job != job {
                job = &step.job;
                installed.clear();
                setup_unknown = false;
            }
            let title = step.title();
            match step.setup_command.as_deref().map(interpret_setup).unwrap_or(Setup::Empty) {
                Setup::PipInstall { packages, .. } => installed.extend(packages),
                Setup::Empty => {}
                Setup::Other { reason } => {
                    setup_unknown = true;
                    out.push(Finding::warning(Code::WorkflowUnsupportedCommand,
                        at(step),
                        format!(
                            "step \"{title}\": fmtool cannot evaluate the setup-command `{}`: {reason}; it assumes the command succeeds",
                            step.setup_command.as_deref().unwrap_or("")
                        ),
                    ));
                }
            }
            step_command_findings(repo_root, step, &title, &installed, setup_unknown, model_test, &mut out);
        }
    }
    out
}

fn step_command_findings(
    repo_root: &Path,
    step: &Step,
    title: &str,
    installed: &BTreeSet<String>,
    setup_unknown: bool,
    model_test: Option<&ModelTest>,
    out: &mut Vec<Finding>,
) {
    let pts = points(step.max_score);
    let command = step.command.as_deref().unwrap_or("");
    match interpret(command) {
        Command::Empty => out.push(
            Finding::error(
                Code::WorkflowEmptyCommand,
                at(step),
                format!("step \"{title}\" has no command; the action fails it, so its {pts} go to no one"),
            )
            .hint("give the step a `command:`, e.g. `command: pytest model_test.py::test_relu`"),
        ),
        Command::NotFound { program } if installed.contains(&program.to_ascii_lowercase()) || setup_unknown => {
            out.push(Finding::warning(Code::WorkflowUnsupportedCommand,
                at(step),
                format!("step \"{title}\" ({pts}): fmtool cannot evaluate this command: it runs `{program}`, which a setup-command installs"),
            ));
        }
        // A warning, not an error: the course's own workflow has such a step, and it fails for
        // everyone, so it must not block every student's commit in the pre-commit hook.
        Command::NotFound { program } => {
            let looks_like_test = program.contains("::") || program.ends_with(".py");
            let hint = if looks_like_test {
                format!("write `command: pytest {command}`", command = command.trim())
            } else {
                format!("check the spelling of `{program}`; the tests run with `pytest model_test.py::TEST`")
            };
            out.push(
                Finding::warning(Code::WorkflowCommandNotFound,
                    at(step),
                    format!(
                        "step \"{title}\" runs `{}`: sh: 1: {program}: not found (exit 127); this step gives 0 points to everyone ({pts} lost)",
                        command.trim()
                    ),
                )
                .hint(hint),
            );
        }
        Command::Other { reason } => out.push(Finding::warning(
            Code::WorkflowUnsupportedCommand,
            at(step),
            format!("step \"{title}\" ({pts}): fmtool cannot evaluate this command (`{}`): {reason}", command.trim()),
        )),
        Command::Pytest { nodes, .. } => {
            if !installed.contains("pytest") && !setup_unknown {
                out.push(
                    Finding::error(Code::WorkflowNoPytest,
                        at(step),
                        format!(
                            "step \"{title}\" runs pytest, but no setup-command of this or an earlier step installs it: the runner has no pytest, so the step fails and its {pts} go to no one"
                        ),
                    )
                    .hint("install it in the first step: `setup-command: pip3 install pytest pandas argparse`"),
                );
            }
            pytest_findings(repo_root, step, title, &nodes, model_test, out);
        }
    }
}

fn pytest_findings(
    repo_root: &Path,
    step: &Step,
    title: &str,
    nodes: &[TestNode],
    model_test: Option<&ModelTest>,
    out: &mut Vec<Finding>,
) {
    let pts = points(step.max_score);
    // No node id: pytest collects test_*.py / *_test.py from the root, which is model_test.py.
    let all = [TestNode { file: MODEL_TEST.into(), function: None }];
    let nodes = if nodes.is_empty() { &all[..] } else { nodes };
    let mut missing_files = BTreeSet::new();
    for n in nodes {
        if !repo_root.join(&n.file).is_file() {
            if missing_files.insert(n.file.clone()) {
                out.push(
                    Finding::error(Code::WorkflowMissingTestFile,
                        at(step),
                        format!(
                            "step \"{title}\" runs tests from {}, which the repo does not have: pytest exits 4 (file not found) and the step's {pts} go to no one",
                            n.file
                        ),
                    )
                    .hint(format!("restore {} from the assignment's template", n.file)),
                );
            }
            continue;
        }
        let (Some(mt), Some(func)) = (model_test.filter(|_| n.file == MODEL_TEST), &n.function) else { continue };
        if mt.test(func).is_none() {
            let have: Vec<&str> = mt.tests.iter().map(|t| t.name.as_str()).collect();
            out.push(
                Finding::error(Code::WorkflowUnknownTest,
                    at(step),
                    format!(
                        "step \"{title}\" runs {n}, but {MODEL_TEST} defines no test {func}: pytest exits 4 (not found) and the step's {pts} go to no one"
                    ),
                )
                .hint(if have.is_empty() {
                    format!("{MODEL_TEST} has no test functions; restore it from the assignment's template")
                } else {
                    format!("{MODEL_TEST} defines {}", have.join(", "))
                }),
            );
        }
    }
    threshold_finding(step, title, nodes, model_test, out);
}

/// A step named for one threshold that runs tests asserting another.
fn threshold_finding(
    step: &Step,
    title: &str,
    nodes: &[TestNode],
    model_test: Option<&ModelTest>,
    out: &mut Vec<Finding>,
) {
    let Some(mt) = model_test else { return };
    let Some((named_cmp, named)) =
        step.test_name.as_deref().and_then(named_threshold).or_else(|| step.name.as_deref().and_then(named_threshold))
    else {
        return;
    };
    // The step passes only when every test passes: the strictest threshold decides.
    let tests: Vec<_> = nodes
        .iter()
        .filter(|n| n.file == MODEL_TEST)
        .filter_map(|n| mt.test(n.function.as_deref()?))
        .filter_map(|t| Some((t, t.threshold.as_ref()?)))
        .collect();
    let Some((test, th)) = tests.iter().max_by(|a, b| a.1.value.total_cmp(&b.1.value)) else { return };
    let differs = (th.value - named).abs() > 1e-9 || named_cmp.is_some_and(|c| c != th.cmp);
    if !differs {
        return;
    }
    let named_cmp = named_cmp.unwrap_or(Cmp::Ge);
    let pts = points(step.max_score);
    let effect = if th.value < named {
        format!("it awards its {pts} from an accuracy of {:.2}, not {named:.2}", th.value)
    } else if th.value > named {
        format!("it awards its {pts} only from an accuracy {} {:.2}, not {named:.2}", th.cmp.as_str(), th.value)
    } else {
        format!(
            "it awards its {pts} when acc {} {:.2}, not acc {} {named:.2}",
            th.cmp.as_str(),
            th.value,
            named_cmp.as_str()
        )
    };
    let fix = match mt.test_with_threshold(named_cmp, named) {
        Some(t) => {
            format!("command: pytest {MODEL_TEST}::{} (which asserts acc {} {named})", t.name, named_cmp.as_str())
        }
        None => format!(
            "run a test that asserts acc {} {named}, or rename the step after what it tests",
            named_cmp.as_str()
        ),
    };
    out.push(
        Finding::warning(
            Code::WorkflowThresholdMismatch,
            at(step),
            format!("step \"{title}\" runs {}, which asserts {th} ({MODEL_TEST}:{}): {effect}", test.name, th.line),
        )
        .hint(fix),
    );
}

/// "The timeout is shorter than the measured run": the action kills the step after
/// `timeout` minutes and gives 0 points. `measured_seconds` is how long the step's tests took here.
pub fn timeout_finding(step: &Step, measured_seconds: f64) -> Option<Finding> {
    let limit = step.timeout_seconds();
    // NaN measures nothing.
    if measured_seconds.is_nan() || measured_seconds <= limit {
        return None;
    }
    Some(
        Finding::error(Code::WorkflowTimeout,
            at(step),
            format!(
                "step \"{}\" has timeout: {} (minutes), {limit:.0} s, but its run took {measured_seconds:.1} s here: the action stops it and gives 0 of its {}",
                step.title(),
                step.timeout_minutes,
                points(step.max_score)
            ),
        )
        .hint("make nn_inference faster (one matrix product per layer, no Python loops over pixels), or raise the step's `timeout:`"),
    )
}

#[cfg(test)]
mod tests {
    use super::super::tests_py::{read_model_test, tests::COURSE_MODEL_TEST};
    use super::super::workflow::parse_workflow;
    use super::*;

    const AS_DISTRIBUTED: &str = include_str!("../../tests/fixtures/student/workflows/classroom.yml");
    const FIXED: &str = include_str!("../../tests/fixtures/student/workflows/classroom_fixed.yml");
    const FILE: &str = ".github/workflows/classroom.yml";

    /// A repo folder with model_test.py (the course's) in it.
    fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MODEL_TEST), COURSE_MODEL_TEST).unwrap();
        dir
    }

    fn summary(f: &[Finding]) -> Vec<(&'static str, usize)> {
        f.iter().map(|f| (f.code.as_str(), f.location.line.unwrap())).collect()
    }

    #[test]
    fn the_course_workflow_as_distributed_has_its_two_defects() {
        let dir = repo();
        let wf = parse_workflow(FILE, AS_DISTRIBUTED).unwrap();
        let mt = read_model_test(COURSE_MODEL_TEST);
        let f = workflow_findings(dir.path(), &[wf], Some(&mt));
        assert_eq!(summary(&f), [("workflow-command-not-found", 32), ("workflow-threshold-mismatch", 86)], "{f:#?}");
        let nf = &f[0];
        assert_eq!(nf.location.file, FILE);
        assert!(
            nf.message.contains("sh: 1: model_test.py::test_softmax: not found")
                && nf.message.contains("gives 0 points to everyone"),
            "{}",
            nf.message
        );
        assert_eq!(nf.hint.as_deref(), Some("write `command: pytest model_test.py::test_softmax`"));
        let th = &f[1];
        assert!(
            th.message.contains("step \"Accuracy >= 90\" runs test_acc_80, which asserts acc >= 0.8"),
            "{}",
            th.message
        );
        assert!(th.message.contains("awards its 3 points from an accuracy of 0.80, not 0.90"), "{}", th.message);
        assert_eq!(th.hint.as_deref(), Some("command: pytest model_test.py::test_acc_90 (which asserts acc >= 0.9)"));
    }

    #[test]
    fn the_corrected_workflow_is_clean() {
        let dir = repo();
        let wf = parse_workflow(FILE, FIXED).unwrap();
        let mt = read_model_test(COURSE_MODEL_TEST);
        assert_eq!(workflow_findings(dir.path(), &[wf], Some(&mt)), vec![]);
    }

    #[test]
    fn missing_tests_missing_file_and_missing_pytest() {
        let text = "jobs:\n  grade:\n    steps:\n      - name: relu\n        uses: classroom-resources/autograding-command-grader@v1\n        with: {command: pytest model_test.py::test_relu, max-score: 10}\n      - name: gone\n        uses: classroom-resources/autograding-command-grader@v1\n        with: {setup-command: pip install pytest, command: pytest model_test.py::test_gelu, max-score: 5}\n      - name: all\n        uses: classroom-resources/autograding-command-grader@v1\n        with: {command: python -m pytest -q}\n      - name: chained\n        uses: classroom-resources/autograding-command-grader@v1\n        with: {command: pytest model_test.py && echo ok, max-score: 1}\n      - name: nothing\n        uses: classroom-resources/autograding-command-grader@v1\n";
        let dir = repo();
        let wf = parse_workflow("w.yml", text).unwrap();
        let mt = read_model_test(COURSE_MODEL_TEST);
        let f = workflow_findings(dir.path(), std::slice::from_ref(&wf), Some(&mt));
        assert_eq!(
            summary(&f),
            [
                ("workflow-no-pytest", 4),
                ("workflow-unknown-test", 7),
                ("workflow-unsupported-command", 13),
                ("workflow-empty-command", 16)
            ],
            "{f:#?}"
        );
        assert!(
            f[1].message.contains("defines no test test_gelu") && f[1].message.contains("5 points"),
            "{}",
            f[1].message
        );
        assert!(f[1].hint.as_deref().unwrap().contains("test_relu"));
        assert!(f[2].message.contains("fmtool cannot evaluate this command"), "{}", f[2].message);

        // Without model_test.py every pytest step is a missing file, once per step.
        let empty = tempfile::tempdir().unwrap();
        let f = workflow_findings(empty.path(), &[wf], None);
        let codes: Vec<&str> = f.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(
            codes,
            [
                "workflow-no-pytest",
                "workflow-missing-test-file",
                "workflow-missing-test-file",
                "workflow-missing-test-file",
                "workflow-unsupported-command",
                "workflow-empty-command"
            ]
        );
    }

    #[test]
    fn thresholds_in_step_names() {
        assert_eq!(named_threshold("Accuracy >= 90"), Some((Some(Cmp::Ge), 0.9)));
        assert_eq!(named_threshold("accuracy > 0.85"), Some((Some(Cmp::Gt), 0.85)));
        assert_eq!(named_threshold("Acc 92%"), Some((None, 0.92)));
        assert_eq!(named_threshold("relu()"), None);
        assert_eq!(named_threshold("Model Inference"), None);
    }

    #[test]
    fn timeouts() {
        let wf = parse_workflow(FILE, AS_DISTRIBUTED).unwrap();
        let step = &wf.steps[0];
        assert_eq!(timeout_finding(step, 599.0), None);
        assert_eq!(timeout_finding(step, f64::NAN), None);
        let f = timeout_finding(step, 742.5).unwrap();
        assert_eq!((f.code.as_str(), f.location.line), ("workflow-timeout", Some(14)));
        assert!(
            f.message.contains("timeout: 10 (minutes), 600 s")
                && f.message.contains("742.5 s")
                && f.message.contains("50 points"),
            "{}",
            f.message
        );
    }
}
