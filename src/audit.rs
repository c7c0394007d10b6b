//! The course's rules, checked on one repository, beside the points its workflow awards: every
//! departure from the course's files and every gaming route found by reading (`repo::integrity`);
//! the workflow's commands run as GitHub runs them (`/bin/sh -c` in the sandbox, pytest collecting
//! as the repository configures it), whose points are the ones GitHub shows, tricks included;
//! and, when a course file was edited, the points the student's code gets under the course's own
//! files. fmtool's parallel harness stays the fast path: the real run is for the repositories with
//! a departure and for an audit sample of the rest, and any difference is itself a finding.

use crate::autograde::{
    Cause, CourseFilesPoints, Diagnosis, EngineView, Evaluator, RealRun, RealStep, RepoGrade, StepResult,
    WorkflowPoints, compare, diagnose, sheet_not_run,
};
use crate::checks::Code;
use crate::grader::Status;
use crate::repo::course::Course;
use crate::repo::integrity::{Departure, Effect};
use crate::repo::workflow::{Command, Setup, Workflow, interpret, interpret_setup};
use crate::student::InferenceRun;
use crate::student::{Isolation, Python, Runner};
use std::path::Path;
use std::time::Duration;

/// When the workflow is run as GitHub runs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RealRunPolicy {
    /// For repositories with a departure.
    Departures,
    /// Also for this one, picked for the audit sample.
    Sampled,
    /// For every repository (`--exact`).
    Always,
}

/// Runs each command-grader step's command in a fresh sandboxed copy, in order, as the runner
/// does (the setup-commands' `pip install` is not run: the interpreter has what it has, and a
/// `pytest` no setup-command installed is not found, exit 127, as on the runner).
pub fn real_run(
    root: &Path,
    workflow: &Workflow,
    python: &Python,
    allowed: &[String],
    isolation: &Isolation,
    timeout: Option<Duration>,
    reason: String,
) -> crate::error::Result<RealRun> {
    let start = std::time::Instant::now();
    let mut runner = Runner::new(root, python.clone(), Some(allowed), isolation.clone())?;
    runner.cap = timeout;
    runner.set_total_time(total_time(Some(workflow), timeout));
    let mut pytest = false;
    let mut steps = Vec::new();
    for step in &workflow.steps {
        if let Some(Setup::PipInstall { packages, .. }) = step.setup_command.as_deref().map(interpret_setup) {
            pytest |= packages.iter().any(|p| p == "pytest");
        }
        let command = step.command.clone().unwrap_or_default();
        let limit = timeout.unwrap_or(Duration::from_secs_f64(step.timeout_seconds().max(1.0)));
        let ran = match interpret(&command) {
            Command::Empty => None,
            _ => Some(runner.shell(&command, pytest, limit)),
        };
        let passed = ran.as_ref().is_some_and(|r| r.code == Some(0) && !r.timed_out && r.stopped.is_none());
        steps.push(RealStep {
            name: step.title(),
            command,
            points: if passed { step.max_score } else { 0 },
            max: step.max_score,
            exit_code: ran.as_ref().and_then(|r| r.code),
            timed_out: ran.as_ref().is_some_and(|r| r.timed_out),
            seconds: ran.as_ref().map_or(0.0, |r| r.seconds),
            output: ran
                .map(|r| r.stopped.map_or(r.output.clone(), |s| format!("{}\nstopped: {s}", r.output)))
                .unwrap_or_default(),
        });
    }
    let total = steps.iter().map(|s| s.points).sum();
    Ok(RealRun { reason, steps, total, max: workflow.max_total(), seconds: start.elapsed().as_secs_f64() })
}

/// The workflow as fmtool's harness graded it, brought in line with the real run: each step's
/// points become the real run's, and a step where the two differ says so. Returns the departure
/// naming every difference, if there is one.
pub fn reconcile(wf: &mut WorkflowPoints, real: &RealRun) -> Option<Departure> {
    let harness_total = wf.total;
    let mut details = Vec::new();
    for (s, r) in wf.steps.iter_mut().zip(&real.steps) {
        if s.points == r.points {
            continue;
        }
        let exit = match (r.exit_code, r.timed_out) {
            (_, true) => "runs past its timeout".to_string(),
            (Some(c), _) => format!("exits {c}"),
            (None, _) => "is killed".to_string(),
        };
        details.push(format!(
            "step \"{}\": fmtool's harness {} points, the workflow's own command {} points (`{}` {exit})",
            s.name,
            s.points,
            r.points,
            crate::text::clip(&r.command, 80)
        ));
        apply(s, r, &exit);
    }
    wf.total = wf.steps.iter().map(|s| s.points).sum();
    if details.is_empty() {
        return None;
    }
    let mut d = Departure::new(
        Code::BehavesDifferently,
        Effect::ChangesTheGrade,
        &wf.file,
        None,
        format!(
            "the repository behaves differently under fmtool: its workflow's commands, run as GitHub runs them, award {} points where fmtool's harness awards {harness_total}",
            real.total
        ),
    );
    d.details = details;
    Some(d.hint("the points are what GitHub awards; look for what makes the commands pass or fail other than the course's tests (the other findings name the likely causes)"))
}

fn apply(s: &mut StepResult, r: &RealStep, exit: &str) {
    let harness = std::mem::take(&mut s.message);
    s.points = r.points;
    s.differs = true;
    s.passed = r.exit_code == Some(0) && !r.timed_out;
    s.status = if s.passed { crate::grader::Status::Passed } else { crate::grader::Status::Failed };
    s.message = format!("the workflow's own command {exit} (fmtool's harness: {harness})");
}

/// The points under the course's own files: a fresh copy with the course's `model_test.py`,
/// `utils/` and test set put back, graded through the course's workflow by fmtool's harness.
pub fn course_files_points(
    root: &Path,
    course: &Course,
    python: &Python,
    allowed: &[String],
    isolation: &Isolation,
    opts: (Option<Duration>, usize),
    restore_data: bool,
) -> crate::error::Result<Option<CourseFilesPoints>> {
    let Some(workflow) = course.workflows().into_iter().find(|w| !w.steps.is_empty()) else { return Ok(None) };
    let (timeout, images) = opts;
    let mut runner = Runner::new(root, python.clone(), Some(allowed), isolation.clone())?;
    runner.cap = timeout;
    runner.set_total_time(total_time(Some(&workflow), timeout));
    for (path, text) in course.text_files().filter(|(p, _)| p.ends_with(".py")) {
        runner.write_in_copy(path, text.as_bytes())?;
    }
    if restore_data {
        for (path, bytes) in course.test_set_files()? {
            runner.write_in_copy(&path, &bytes)?;
        }
    }
    let inspect = runner.inspect()?;
    let mut ev = Evaluator::new(&runner, inspect, images, &|_| {});
    ev.timeout_override = timeout;
    ev.labels = course.labels();
    let wf = ev.workflow(&workflow);
    Ok(Some(CourseFilesPoints { total: wf.total, max: wf.max, workflow: wf }))
}

/// Whether a departure is about the course's files (a third total is then worth computing).
pub fn is_course_file(d: &Departure) -> bool {
    matches!(d.code, Code::CourseFileChanged | Code::CourseFileAdded | Code::CourseFileRemoved)
}

/// How to run a repo's code.
pub struct RepoOptions<'a> {
    pub python: Option<&'a std::path::Path>,
    /// Replaces every step's time limit.
    pub timeout: Option<Duration>,
    pub images: usize,
    /// Worker processes for test_inference (default: one per core).
    pub workers: Option<usize>,
    /// In the sandbox, or (said once) without one.
    pub isolation: crate::student::Isolation,
    /// The course's files, the reference for the departures.
    pub course: &'a crate::repo::course::Course,
    /// When the workflow's commands run as GitHub runs them.
    pub real_run: crate::audit::RealRunPolicy,
}

/// No repository's student code runs longer than this in all, whatever its steps' timeouts add
/// up to: a class of a hundred must finish.
const MAX_TOTAL: Duration = Duration::from_secs(30 * 60);

/// The longest one repository's code may run in all: its steps' time limits summed, plus three
/// more of the longest for the probe, the end of test_inference and the credit sheet's own
/// tests, capped at [`MAX_TOTAL`].
fn total_time(workflow: Option<&Workflow>, timeout: Option<Duration>) -> Duration {
    let steps: Vec<Duration> = match workflow {
        Some(w) => {
            w.steps.iter().map(|s| timeout.unwrap_or(Duration::from_secs_f64(s.timeout_seconds().max(1.0)))).collect()
        }
        None => vec![timeout.unwrap_or(Duration::from_secs(600)); 3],
    };
    let longest = steps.iter().max().copied().unwrap_or(Duration::from_secs(60));
    (steps.iter().sum::<Duration>() + longest * 3).min(MAX_TOTAL)
}

/// Grades the repository at `root` as its workflow would, and by the credit sheet.
pub fn grade_repo(
    root: &std::path::Path,
    opts: &RepoOptions,
    engine: &EngineView,
    progress: &(dyn Fn(usize) + Sync),
) -> crate::error::Result<RepoGrade> {
    let start = std::time::Instant::now();
    let workflows = crate::repo::workflow::find_workflows(root)?;
    let workflow = workflows.into_iter().find(|w| !w.steps.is_empty());
    let mut integrity = crate::repo::rules::departures(root, opts.course);
    let python = match crate::student::find_python(opts.python) {
        Ok(p) => p,
        Err(why) => {
            let why = format!("not run: {why}");
            let credit_sheet = sheet_not_run(&why);
            let wf = workflow.as_ref().map(|w| not_run_workflow(w, &why));
            return Ok(RepoGrade {
                root: root.display().to_string(),
                python: None,
                not_run: Some(why),
                max: wf.as_ref().map(|w| w.max).unwrap_or(credit_sheet.max),
                workflow: wf,
                credit_sheet,
                points: 0,
                student_accuracy: None,
                inference: None,
                probe: None,
                comparison: None,
                diagnosis: Vec::new(),
                isolation: opts.isolation.name().into(),
                stopped: None,
                planted_links: Vec::new(),
                notes: Vec::new(),
                integrity,
                real_run: None,
                harness_points: None,
                course_files: None,
                seconds: start.elapsed().as_secs_f64(),
            });
        }
    };
    let allowed = allowed_modules(root, workflow.as_ref());
    let mut runner = Runner::new(root, python.clone(), Some(&allowed), opts.isolation.clone())?;
    if let Some(w) = opts.workers {
        runner.workers = w.clamp(1, 16);
    }
    runner.cap = opts.timeout;
    runner.set_total_time(total_time(workflow.as_ref(), opts.timeout));
    let mut notes = Vec::new();
    if let (Some(t), Some(w)) = (opts.timeout, &workflow)
        && w.steps.iter().any(|s| (s.timeout_seconds() - t.as_secs_f64()).abs() > 0.5)
    {
        notes.push(format!(
            "graded with --timeout {:.0} s instead of the workflow's own step timeouts: a step that takes longer here fails, where GitHub could pass it (and the other way round)",
            t.as_secs_f64()
        ));
    }
    let inspect = runner.inspect()?;
    let probe = runner.probe(Duration::from_secs(60)).ok();
    let mut ev = Evaluator::new(&runner, inspect, opts.images, progress);
    ev.timeout_override = opts.timeout;
    // The labels the repository's own test_inference compares with, read by fmtool.
    ev.labels = crate::dataset::load_dir(&root.join("data/fashion"), "t10k").ok().map(|d| d.labels);
    let mut wf = workflow.as_ref().map(|w| ev.workflow(w));
    let credit_sheet = ev.credit_sheet(Duration::from_secs(600));
    let inference = ev.inference.take();
    let subject = Subject { root, opts, python: &python, allowed: &allowed };
    let (real_run, harness_points) =
        run_as_github(&subject, workflow.as_ref(), wf.as_mut(), &mut integrity, &mut notes);
    let course_files = under_course_files(&subject, wf.as_ref(), &mut integrity, &mut notes);
    // An edited test_inference ran as written, in one process: its accuracy is what it wrote.
    let written_accuracy = runner.accuracy_in_copy("test_acc.txt");
    let comparison = match (&inference, engine.outputs) {
        (Some(InferenceRun { outputs: Some(s), .. }), Some(e)) => compare(s, e, engine.labels),
        _ => None,
    };
    let mut diagnosis = diagnose(probe.as_ref(), inference.as_ref(), comparison.as_ref(), engine);
    // An import the grader's runner would satisfy but this Python cannot: the rows that need it
    // are not what the grader gives.
    let mut messages: Vec<&str> = credit_sheet.rows.iter().map(|r| r.message.as_str()).collect();
    if let Some(w) = &wf {
        messages.extend(w.steps.iter().map(|s| s.message.as_str()));
    }
    let import_error = probe.as_ref().and_then(|p| p.import.as_ref()).map(|e| e.message.clone());
    messages.extend(import_error.as_deref());
    if let Some(module) = missing_here(&messages, &allowed) {
        diagnosis.insert(
            0,
            Diagnosis {
                code: Cause::PythonLacksPackage,
                message: format!(
                    "{} cannot import {module}, which the grader's workflow installs: the rows that import it fail here but not on the grader",
                    python.path.display()
                ),
                hint: Some(format!(
                    "install it for that Python ({} -m pip install {module}) or pass --python with one that has it, and run fmtool again",
                    python.path.display()
                )),
            },
        );
    }
    let stopped = runner.stopped();
    if let Some(why) = &stopped {
        diagnosis.insert(
            0,
            Diagnosis {
                code: Cause::Stopped,
                message: format!("fmtool stopped your code: {why}"),
                hint: Some("the steps that ran then, and those after them, failed; run `fmtool score` in your repository to see which".into()),
            },
        );
    }
    let planted_links = runner.planted_links();
    for p in &planted_links {
        diagnosis.push(Diagnosis {
            code: Cause::PlantedLink,
            message: format!(
                "your code left {} as a link to {}: a link out of the repository is how code reaches a grader's files; fmtool never follows one",
                crate::text::clip(&p.name, 200),
                crate::text::clip(&p.target, 200)
            ),
            hint: Some("write a regular file instead (test_inference writes test_acc.txt itself)".into()),
        });
    }
    let (points, max) = match &wf {
        Some(w) => (w.total, w.max),
        None => (credit_sheet.total, credit_sheet.max),
    };
    Ok(RepoGrade {
        root: root.display().to_string(),
        python: Some(python),
        not_run: None,
        workflow: wf,
        credit_sheet,
        points,
        max,
        student_accuracy: match &inference {
            Some(i) => i.accuracy,
            None => written_accuracy,
        },
        inference,
        probe,
        comparison,
        diagnosis,
        isolation: runner.isolation().name().into(),
        stopped,
        planted_links,
        notes,
        integrity,
        real_run,
        harness_points,
        course_files,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The repository being graded, for the runs beside the fast path.
struct Subject<'a> {
    root: &'a Path,
    opts: &'a RepoOptions<'a>,
    python: &'a Python,
    allowed: &'a [String],
}

/// The workflow's commands run as GitHub runs them, when the policy asks for it: the real run,
/// and the harness's total it replaced. A difference becomes a departure.
fn run_as_github(
    subject: &Subject,
    workflow: Option<&Workflow>,
    wf: Option<&mut WorkflowPoints>,
    integrity: &mut Vec<Departure>,
    notes: &mut Vec<String>,
) -> (Option<RealRun>, Option<u64>) {
    let Subject { root, opts, python, allowed } = *subject;
    let reason = match opts.real_run {
        RealRunPolicy::Always => "--exact",
        RealRunPolicy::Sampled => "picked for the audit sample",
        RealRunPolicy::Departures if !integrity.is_empty() => "the repository departs from the course's rules",
        RealRunPolicy::Departures => return (None, None),
    };
    let (Some(workflow), Some(wf)) = (workflow, wf) else { return (None, None) };
    if !python.pytest {
        notes.push(format!(
            "the workflow's commands were not run as GitHub runs them ({reason}): {} cannot import pytest; install it ({} -m pip install pytest) or pass --python with one that has it",
            python.path.display(),
            python.path.display()
        ));
        return (None, None);
    }
    match real_run(root, workflow, python, allowed, &opts.isolation, opts.timeout, reason.into()) {
        Ok(real) => {
            let harness = wf.total;
            integrity.extend(reconcile(wf, &real));
            (Some(real), Some(harness))
        }
        Err(e) => {
            notes.push(format!("the workflow's commands could not be run as GitHub runs them: {}", e.message));
            (None, None)
        }
    }
}

/// The points under the course's own files, when a course file departs; each such departure then
/// says whether it changes the grade, measured.
fn under_course_files(
    subject: &Subject,
    wf: Option<&WorkflowPoints>,
    integrity: &mut [Departure],
    notes: &mut Vec<String>,
) -> Option<CourseFilesPoints> {
    let Subject { root, opts, python, allowed } = *subject;
    use crate::repo::integrity::Effect;
    if !integrity.iter().any(is_course_file) {
        return None;
    }
    let data = integrity.iter().any(|d| is_course_file(d) && d.file.starts_with("data/"));
    let run =
        course_files_points(root, opts.course, python, allowed, &opts.isolation, (opts.timeout, opts.images), data);
    let course = match run {
        Ok(c) => c?,
        Err(e) => {
            notes.push(format!("the points under the course's own files could not be computed: {}", e.message));
            return None;
        }
    };
    let theirs = wf.map(|w| w.total)?;
    for d in integrity.iter_mut().filter(|d| is_course_file(d)) {
        d.effect = if course.total != theirs { Effect::ChangesTheGrade } else { Effect::Suspicious };
        d.details.push(format!(
            "with the course's files the workflow awards {} points, with the repository's {theirs}",
            course.total
        ));
    }
    Some(course)
}

/// The first module named in a "No module named 'X'" message that the grader's runner has.
fn missing_here(messages: &[&str], allowed: &[String]) -> Option<String> {
    messages.iter().find_map(|m| {
        let rest = m.split("No module named '").nth(1)?;
        let name = rest.split('\'').next()?.split('.').next()?;
        allowed.iter().any(|a| a == name).then(|| name.to_string())
    })
}

fn not_run_workflow(w: &Workflow, why: &str) -> WorkflowPoints {
    let steps: Vec<StepResult> = w
        .steps
        .iter()
        .map(|s| StepResult {
            name: s.title(),
            file: w.file.clone(),
            line: s.line,
            setup_command: s.setup_command.clone().unwrap_or_default(),
            command: s.command.clone().unwrap_or_default(),
            points: 0,
            max: s.max_score,
            passed: false,
            status: Status::NotRun,
            message: why.to_string(),
            tests: Vec::new(),
            timeout_seconds: s.timeout_seconds(),
            seconds: 0.0,
            differs: false,
        })
        .collect();
    WorkflowPoints { file: w.file.clone(), steps, total: 0, max: w.max_total() }
}

/// Third-party modules the grader's runner can import: what the workflow's setup-commands install,
/// with their dependencies (the course's when the repo has no workflow), and the repo's own.
pub fn allowed_modules(root: &std::path::Path, workflow: Option<&Workflow>) -> Vec<String> {
    use crate::repo::lint::{Available, own_modules};
    let available = match workflow {
        Some(w) => Available::from_repo(root, std::slice::from_ref(w)),
        None => Available::new(
            &crate::autograde::COURSE_PACKAGES.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            &own_modules(root),
        ),
    };
    available.modules().map(str::to_string).collect()
}
