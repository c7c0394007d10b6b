//! The course's distributed files that a student must not change, and every way a repository
//! departs from them. The course's README calls editing `model_test.py` cheating, yet the grade is
//! what the repository's own files award; the staff decide, and need to be told. The files are the
//! ones the grader runs or reads: `model_test.py`, `utils/*.py`, the test set in `data/fashion/`
//! and `.github/workflows/*.yml`. Built into fmtool as distributed; `--course DIR` (a checkout of
//! the assignment's template repository) replaces them for another year or course.
//!
//! Compared so that formatting is no departure: Python files line by line without trailing spaces
//! or `\r`, workflows by their command-grader steps, the test set by its images and labels (a
//! re-compressed copy of the same data is the same data). `nn_predict.py` is the student's to edit.

use super::integrity::{Departure, Effect};
use super::workflow::{Step, Workflow, parse_workflow};
use crate::checks::Code;
use crate::error::Result;
use std::path::Path;

pub const MODEL_TEST: &str = "model_test.py";
const UTILS: &str = "utils";
const WORKFLOWS: &str = ".github/workflows";
const DATA: &str = "data/fashion";
/// The test set's files, which `mnist_reader.load_mnist('data/fashion', kind='t10k')` opens.
const TEST_SET: [&str; 2] = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"];

const EMBEDDED_WORKFLOW: &str = include_str!("../student/course/classroom.yml");
const EMBEDDED_READER: &str = include_str!("../student/course/mnist_reader.py");

/// The course's test set: the one built into fmtool, or a `--course` folder's.
enum TestSet {
    Embedded,
    Folder(std::path::PathBuf),
}

/// The reference: the course's files as distributed.
pub struct Course {
    /// How reports name it.
    pub source: String,
    /// `model_test.py` and `utils/*.py`, by path from the repository root.
    python: Vec<(String, String)>,
    /// `.github/workflows/*.yml`, by path.
    workflows: Vec<(String, String)>,
    test_set: TestSet,
}

impl Course {
    /// The course's files as fmtool knows them (the assignment as distributed).
    pub fn embedded() -> Course {
        Course {
            source: "the course's files built into fmtool".into(),
            python: vec![
                (MODEL_TEST.into(), crate::student::COURSE_MODEL_TEST.into()),
                (format!("{UTILS}/mnist_reader.py"), EMBEDDED_READER.into()),
            ],
            workflows: vec![(format!("{WORKFLOWS}/classroom.yml"), EMBEDDED_WORKFLOW.into())],
            test_set: TestSet::Embedded,
        }
    }

    /// `--course DIR`: the assignment's template repository, checked out.
    pub fn from_dir(dir: &Path) -> Result<Course> {
        if !dir.join(MODEL_TEST).is_file() {
            return Err(crate::err!("--course {}: there is no {MODEL_TEST} in it", dir.display()).with_hint(
                "pass a checkout of the assignment's template repository (the folder holding model_test.py)",
            ));
        }
        let python = std::iter::once(MODEL_TEST.to_string())
            .chain(files_in(dir, UTILS, &[".py"])?)
            .map(|rel| Ok((rel.clone(), read_text(&dir.join(&rel))?)))
            .collect::<Result<Vec<_>>>()?;
        let workflows = files_in(dir, WORKFLOWS, &[".yml", ".yaml"])?
            .into_iter()
            .map(|rel| Ok((rel.clone(), read_text(&dir.join(&rel))?)))
            .collect::<Result<Vec<_>>>()?;
        let data = dir.join(DATA);
        let test_set = if data.is_dir() { TestSet::Folder(data) } else { TestSet::Embedded };
        Ok(Course { source: format!("the course's files in {}", dir.display()), python, workflows, test_set })
    }

    /// The course's files to put in place of a repository's edits (path, bytes): its Python files
    /// and workflows. The test set is restored separately (see [`Course::test_set_files`]).
    pub fn text_files(&self) -> impl Iterator<Item = (&str, &str)> {
        self.python.iter().chain(&self.workflows).map(|(p, t)| (p.as_str(), t.as_str()))
    }

    /// The course's workflows, parsed.
    pub fn workflows(&self) -> Vec<Workflow> {
        self.workflows.iter().filter_map(|(p, t)| parse_workflow(p, t).ok()).collect()
    }

    /// The test set's labels, as the course's `test_inference` reads them.
    pub fn labels(&self) -> Option<Vec<u8>> {
        self.data().map(|d| d.labels)
    }

    /// The course's test set files (path from the repository root, gzip bytes), to put back.
    pub fn test_set_files(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let mut out = Vec::new();
        for (i, name) in TEST_SET.into_iter().enumerate() {
            let bytes = match &self.test_set {
                TestSet::Folder(d) => crate::fsguard::read(&d.join(name), crate::fsguard::budget::IDX)?,
                TestSet::Embedded => {
                    use std::io::Write;
                    let (images, labels) = crate::dataset::embedded_idx();
                    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    gz.write_all(if i == 0 { images } else { labels })
                        .map_err(|e| crate::err!("compressing the test set: {e}"))?;
                    gz.finish().map_err(|e| crate::err!("compressing the test set: {e}"))?
                }
            };
            out.push((format!("{DATA}/{name}"), bytes));
        }
        Ok(out)
    }

    fn data(&self) -> Option<crate::dataset::Dataset> {
        match &self.test_set {
            TestSet::Embedded => Some(crate::dataset::embedded_test_set()),
            TestSet::Folder(d) => crate::dataset::load_dir(d, "t10k").ok(),
        }
    }

    /// Every way the repository at `root` departs from the course's files. Whether a departure
    /// changes the grade is measured by running both (autograde); until then it is `Suspicious`.
    pub fn departures(&self, root: &Path) -> Vec<Departure> {
        let mut out = Vec::new();
        for (rel, course) in &self.python {
            match read_text(&root.join(rel)) {
                Err(_) if !root.join(rel).exists() => out.push(removed(rel)),
                Err(e) => out.push(changed(rel, None, vec![e.message])),
                Ok(theirs) if same_python(course, &theirs) => {}
                Ok(theirs) => {
                    let details = python_changes(course, &theirs);
                    let line = first_changed_line(course, &theirs);
                    out.push(changed(rel, line, details));
                }
            }
        }
        for rel in files_in(root, UTILS, &[".py"]).unwrap_or_default() {
            let known = self.python.iter().any(|(p, _)| *p == rel);
            // An empty `__init__.py` makes `utils` a package; it changes nothing.
            let empty = read_text(&root.join(&rel)).is_ok_and(|t| t.trim().is_empty());
            if !known && !empty {
                out.push(added(&rel, "a Python file beside the course's mnist_reader.py"));
            }
        }
        self.workflow_departures(root, &mut out);
        self.data_departures(root, &mut out);
        out
    }

    fn workflow_departures(&self, root: &Path, out: &mut Vec<Departure>) {
        let theirs = files_in(root, WORKFLOWS, &[".yml", ".yaml"]).unwrap_or_default();
        for (rel, course) in &self.workflows {
            if !theirs.contains(rel) {
                out.push(removed(rel));
                continue;
            }
            let Ok(text) = read_text(&root.join(rel)) else { continue };
            let (Ok(c), Ok(t)) = (parse_workflow(rel, course), parse_workflow(rel, &text)) else {
                if course != &text {
                    out.push(changed(rel, None, vec!["the file no longer reads as a workflow".into()]));
                }
                continue;
            };
            let details = step_changes(&c, &t);
            if !details.is_empty() {
                let line = first_changed_step(&c, &t);
                out.push(changed(rel, line, details));
            }
        }
        for rel in theirs.iter().filter(|r| !self.workflows.iter().any(|(p, _)| p == *r)) {
            let steps =
                read_text(&root.join(rel)).ok().and_then(|t| parse_workflow(rel, &t).ok()).map_or(0, |w| w.steps.len());
            if steps > 0 {
                out.push(added(rel, &format!("a workflow with {steps} command-grader step(s) of its own")));
            }
        }
    }

    fn data_departures(&self, root: &Path, out: &mut Vec<Departure>) {
        let dir = root.join(DATA);
        for name in TEST_SET {
            if !dir.join(name).exists() && !dir.join(name.trim_end_matches(".gz")).exists() {
                out.push(removed(&format!("{DATA}/{name}")));
            }
        }
        if TEST_SET.iter().any(|n| !dir.join(n).exists()) {
            return;
        }
        let (Some(course), theirs) = (self.data(), crate::dataset::load_dir(&dir, "t10k")) else { return };
        let theirs = match theirs {
            Ok(t) => t,
            Err(e) => {
                out.push(changed(&format!("{DATA}/{}", TEST_SET[0]), None, vec![e.one_line()]));
                return;
            }
        };
        if theirs.labels.len() != course.labels.len() {
            out.push(changed(
                &format!("{DATA}/{}", TEST_SET[1]),
                None,
                vec![format!("{} test images instead of the course's {}", theirs.labels.len(), course.labels.len())],
            ));
            return;
        }
        let labels = theirs.labels.iter().zip(&course.labels).filter(|(a, b)| a != b).count();
        if labels > 0 {
            out.push(changed(
                &format!("{DATA}/{}", TEST_SET[1]),
                None,
                vec![format!("{labels} of {} labels differ from the course's", course.labels.len())],
            ));
        }
        let per = course.image_values();
        let images = theirs.pixels.chunks(per).zip(course.pixels.chunks(per)).filter(|(a, b)| a != b).count();
        if images > 0 {
            out.push(changed(
                &format!("{DATA}/{}", TEST_SET[0]),
                None,
                vec![format!("{images} of {} images differ from the course's", course.labels.len())],
            ));
        }
    }
}

fn removed(rel: &str) -> Departure {
    Departure::new(
        Code::CourseFileRemoved,
        Effect::Suspicious,
        rel,
        None,
        format!("{rel}, a file of the course's, is missing"),
    )
}

fn changed(rel: &str, line: Option<usize>, details: Vec<String>) -> Departure {
    let mut d = Departure::new(
        Code::CourseFileChanged,
        Effect::Suspicious,
        rel,
        line,
        format!("{rel} differs from the course's"),
    );
    d.details = details;
    d
}

fn added(rel: &str, what: &str) -> Departure {
    Departure::new(Code::CourseFileAdded, Effect::Suspicious, rel, None, format!("{rel} is added: {what}"))
}

/// Files under `root/sub` whose names end with one of `exts`, as paths from `root`, sorted.
fn files_in(root: &Path, sub: &str, exts: &[&str]) -> Result<Vec<String>> {
    let Some(entries) = crate::fsguard::list_dir(&root.join(sub))? else { return Ok(Vec::new()) };
    let mut out: Vec<String> = entries
        .into_iter()
        .filter(|e| e.is_file)
        .filter_map(|e| e.name.to_str().map(str::to_string))
        .filter(|n| exts.iter().any(|x| n.ends_with(x)))
        .map(|n| format!("{sub}/{n}"))
        .collect();
    out.sort();
    Ok(out)
}

fn read_text(path: &Path) -> Result<String> {
    let bytes = crate::fsguard::read(path, crate::fsguard::budget::SOURCE)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The lines as Python reads them, for comparing: no `\r`, no trailing spaces, no blank lines at
/// the end.
fn lines(text: &str) -> Vec<&str> {
    let mut v: Vec<&str> = text.lines().map(|l| l.trim_end()).collect();
    while v.last().is_some_and(|l| l.is_empty()) {
        v.pop();
    }
    v
}

fn same_python(a: &str, b: &str) -> bool {
    lines(a) == lines(b)
}

/// Lines over this many (course x student) are not diffed line by line (a huge file is its own
/// finding).
const MAX_DIFF_CELLS: usize = 4_000_000;

/// One run of the line diff: lines of the course's file replaced by lines of the student's.
#[derive(Debug, PartialEq)]
struct Hunk {
    /// 0-based line of the course's file where it starts, and how many lines it removes.
    at: usize,
    removed: Vec<usize>,
    /// 0-based lines of the student's file it adds.
    added: Vec<usize>,
}

/// The longest-common-subsequence diff of two line lists, as hunks; None when too large.
fn diff(a: &[&str], b: &[&str]) -> Option<Vec<Hunk>> {
    let (n, m) = (a.len(), b.len());
    if n.saturating_mul(m) > MAX_DIFF_CELLS {
        return None;
    }
    // lcs[i][j]: the common lines of a[i..] and b[j..].
    let mut lcs = vec![0u32; (n + 1) * (m + 1)];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i * (m + 1) + j] = if a[i] == b[j] {
                lcs[(i + 1) * (m + 1) + j + 1] + 1
            } else {
                lcs[(i + 1) * (m + 1) + j].max(lcs[i * (m + 1) + j + 1])
            };
        }
    }
    let mut hunks: Vec<Hunk> = Vec::new();
    let (mut i, mut j) = (0, 0);
    let mut open: Option<Hunk> = None;
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            hunks.extend(open.take());
            i += 1;
            j += 1;
            continue;
        }
        let h = open.get_or_insert_with(|| Hunk { at: i, removed: Vec::new(), added: Vec::new() });
        if j < m && (i == n || lcs[i * (m + 1) + j + 1] >= lcs[(i + 1) * (m + 1) + j]) {
            h.added.push(j);
            j += 1;
        } else {
            h.removed.push(i);
            i += 1;
        }
    }
    hunks.extend(open);
    Some(hunks)
}

/// The top-level `def` enclosing each line (by indentation), or None at module level.
fn enclosing_defs(lines: &[&str]) -> Vec<Option<String>> {
    let mut current = None;
    lines
        .iter()
        .map(|l| {
            if !l.starts_with([' ', '\t']) && !l.is_empty() {
                current = l
                    .strip_prefix("def ")
                    .or_else(|| l.strip_prefix("async def "))
                    .map(|r| r.split(|c: char| !(c.is_alphanumeric() || c == '_')).next().unwrap_or("").to_string());
            }
            current.clone()
        })
        .collect()
}

fn code(line: &str) -> String {
    format!("`{}`", crate::text::clip(line.trim(), 80))
}

/// What changed in a Python file, for the staff: functions added or removed by name, and for each
/// changed place, where (the function or "module level") and a short diff.
fn python_changes(course: &str, theirs: &str) -> Vec<String> {
    let (a, b) = (lines(course), lines(theirs));
    let (da, db) = (enclosing_defs(&a), enclosing_defs(&b));
    let defs = |d: &[Option<String>]| -> Vec<String> {
        let mut v: Vec<String> = d.iter().flatten().cloned().collect();
        v.dedup();
        v
    };
    let (fa, fb) = (defs(&da), defs(&db));
    let mut out = Vec::new();
    for f in fa.iter().filter(|f| !fb.contains(f)) {
        out.push(format!("{f} removed"));
    }
    for f in fb.iter().filter(|f| !fa.contains(f)) {
        out.push(format!("{f} added"));
    }
    let Some(hunks) = diff(&a, &b) else {
        out.push(format!("{} lines instead of the course's {}", b.len(), a.len()));
        return out;
    };
    for h in hunks {
        let place =
            h.removed.first().and_then(|&i| da[i].clone()).or_else(|| h.added.first().and_then(|&j| db[j].clone()));
        // Inside a function that was added or removed as a whole, the name says it all.
        if place.as_ref().is_some_and(|p| !fa.contains(p) || !fb.contains(p)) {
            continue;
        }
        let place = place.unwrap_or_else(|| "module level".into());
        let old: Vec<&str> = h.removed.iter().map(|&i| a[i]).filter(|l| !l.trim().is_empty()).collect();
        let new: Vec<&str> = h.added.iter().map(|&j| b[j]).filter(|l| !l.trim().is_empty()).collect();
        let more = |v: &[&str]| if v.len() > 1 { format!(" (+{} more lines)", v.len() - 1) } else { String::new() };
        let what = match (old.first(), new.first()) {
            (Some(o), Some(n)) => format!("{} became {}{}", code(o), code(n), more(&new)),
            (Some(o), None) => format!("{} removed{}", code(o), more(&old)),
            (None, Some(n)) => format!("{} added{}", code(n), more(&new)),
            (None, None) => "blank lines changed".into(),
        };
        out.push(format!("{place}: {what}"));
        if out.len() >= 12 {
            out.push("...".into());
            break;
        }
    }
    out
}

/// The 1-based line of the student's file where the first change is.
fn first_changed_line(course: &str, theirs: &str) -> Option<usize> {
    let (a, b) = (lines(course), lines(theirs));
    let first = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
    Some(first.min(b.len().saturating_sub(1)) + 1)
}

fn step_summary(s: &Step) -> String {
    format!(
        "`{}`, {} points, {} min",
        crate::text::clip(s.command.as_deref().unwrap_or(""), 80),
        s.max_score,
        s.timeout_minutes
    )
}

/// What changed in one step the course's workflow and the student's share by title: command,
/// points, timeout, setup-command (empty when nothing did).
fn step_differences(c: &Step, t: &Step) -> Vec<String> {
    let text = |s: &Option<String>| s.as_deref().unwrap_or("").trim().to_string();
    let mut what = Vec::new();
    if text(&c.command) != text(&t.command) {
        what.push(format!("command {} became {}", code(&text(&c.command)), code(&text(&t.command))));
    }
    if c.max_score != t.max_score {
        what.push(format!("max-score {} became {}", c.max_score, t.max_score));
    }
    if (c.timeout_minutes - t.timeout_minutes).abs() > 1e-9 {
        what.push(format!("timeout {} became {} min", c.timeout_minutes, t.timeout_minutes));
    }
    if text(&c.setup_command) != text(&t.setup_command) {
        what.push(format!("setup-command {} became {}", code(&text(&c.setup_command)), code(&text(&t.setup_command))));
    }
    what
}

/// The course workflow's command-grader steps against the student's, by step title: removed,
/// added, or changed.
fn step_changes(course: &Workflow, theirs: &Workflow) -> Vec<String> {
    let mut out = Vec::new();
    for c in &course.steps {
        match theirs.steps.iter().find(|t| t.title() == c.title()) {
            None => out.push(format!("step \"{}\" ({}) removed", c.title(), step_summary(c))),
            Some(t) => {
                let what = step_differences(c, t);
                if !what.is_empty() {
                    out.push(format!("step \"{}\": {}", c.title(), what.join(", ")));
                }
            }
        }
    }
    for t in theirs.steps.iter().filter(|t| !course.steps.iter().any(|c| c.title() == t.title())) {
        out.push(format!("step \"{}\" ({}) added", t.title(), step_summary(t)));
    }
    out
}

/// The line of the student's first step that is added or changed.
fn first_changed_step(course: &Workflow, theirs: &Workflow) -> Option<usize> {
    theirs
        .steps
        .iter()
        .find(|t| {
            course.steps.iter().find(|c| c.title() == t.title()).is_none_or(|c| !step_differences(c, t).is_empty())
        })
        .map(|t| t.line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let course = Course::embedded();
        for (p, t) in course.text_files() {
            let path = dir.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, t).unwrap();
        }
        let data = dir.path().join(DATA);
        std::fs::create_dir_all(&data).unwrap();
        let project = Path::new(env!("CARGO_MANIFEST_DIR")).join(DATA);
        for n in TEST_SET {
            std::fs::copy(project.join(n), data.join(n)).unwrap();
        }
        for (p, t) in files {
            let path = dir.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, t).unwrap();
        }
        dir
    }

    fn summary(d: &[Departure]) -> Vec<String> {
        d.iter().map(|d| format!("{} {}: {}", d.code.as_str(), d.file, d.details.join("; "))).collect()
    }

    #[test]
    fn the_embedded_course_files_are_the_fixtures_course() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/student");
        assert_eq!(EMBEDDED_READER, std::fs::read_to_string(fixtures.join("course/utils/mnist_reader.py")).unwrap());
        assert_eq!(EMBEDDED_WORKFLOW, std::fs::read_to_string(fixtures.join("workflows/classroom.yml")).unwrap());
        assert_eq!(
            super::super::loader::COURSE_NN_PREDICT,
            std::fs::read_to_string(fixtures.join("course/nn_predict_template.py")).unwrap()
        );
    }

    #[test]
    fn the_course_itself_departs_from_nothing() {
        let repo = repo_with(&[]);
        assert_eq!(summary(&Course::embedded().departures(repo.path())), Vec::<String>::new());
    }

    #[test]
    fn formatting_is_no_departure() {
        let crlf = crate::student::COURSE_MODEL_TEST.replace('\n', "  \r\n") + "\n\n";
        // The workflow as yaml.dump writes it: quoted keys, flow lists as block lists.
        let dumped =
            EMBEDDED_WORKFLOW.replace("on: [push, repository_dispatch]", "'on':\n- push\n- repository_dispatch");
        let repo =
            repo_with(&[(MODEL_TEST, &crlf), (".github/workflows/classroom.yml", &dumped), ("utils/__init__.py", "")]);
        assert_eq!(summary(&Course::embedded().departures(repo.path())), Vec::<String>::new());
    }

    #[test]
    fn an_edited_test_is_named_with_a_short_diff() {
        let edited = crate::student::COURSE_MODEL_TEST.replace("assert acc >= 0.88", "assert acc >= 0.8");
        let repo = repo_with(&[(MODEL_TEST, &edited)]);
        let d = Course::embedded().departures(repo.path());
        assert_eq!(
            summary(&d),
            ["course-file-changed model_test.py: test_acc_88: `assert acc >= 0.88` became `assert acc >= 0.8`"]
        );
        let at = crate::student::COURSE_MODEL_TEST.lines().position(|l| l.contains("assert acc >= 0.88")).unwrap();
        assert_eq!(d[0].line, Some(at + 1));
    }

    #[test]
    fn functions_added_and_removed_are_named_once() {
        let mut edited = crate::student::COURSE_MODEL_TEST.replace("def test_relu():", "def test_relu_gone():");
        edited.push_str("\ndef test_extra():\n    assert True\n");
        let repo = repo_with(&[(MODEL_TEST, &edited)]);
        let d = Course::embedded().departures(repo.path());
        assert_eq!(
            summary(&d),
            ["course-file-changed model_test.py: test_relu removed; test_relu_gone added; test_extra added"]
        );
    }

    #[test]
    fn workflow_steps_are_compared_by_name() {
        let edited = EMBEDDED_WORKFLOW
            .replacen("command: model_test.py::test_softmax", "command: pytest model_test.py::test_softmax", 1)
            .replacen("max-score: 4", "max-score: 40", 1);
        let repo = repo_with(&[
            (".github/workflows/classroom.yml", &edited),
            (".github/workflows/mine.yml", &EMBEDDED_WORKFLOW.replace("Autograding", "Mine")),
        ]);
        let s = summary(&Course::embedded().departures(repo.path()));
        assert_eq!(s.len(), 2, "{s:?}");
        assert!(
            s[0].contains(
                "step \"softmax()\": command `model_test.py::test_softmax` became `pytest model_test.py::test_softmax`"
            ),
            "{s:?}"
        );
        assert!(s[0].contains("step \"Accuracy >= 91\": max-score 4 became 40"), "{s:?}");
        assert!(s[1].starts_with("course-file-added .github/workflows/mine.yml"), "{s:?}");
    }

    #[test]
    fn changed_labels_are_counted_and_recompressed_data_is_the_same() {
        let repo = repo_with(&[]);
        let path = repo.path().join(DATA).join(TEST_SET[1]);
        let raw = crate::dataset::embedded_test_set().labels;
        let mut idx = vec![0, 0, 8, 1, 0, 0, 0x27, 0x10];
        idx.extend(&raw);
        // The same labels, compressed at another level: the same data.
        let write = |bytes: &[u8]| {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(bytes).unwrap();
            std::fs::write(&path, e.finish().unwrap()).unwrap();
        };
        write(&idx);
        assert_eq!(summary(&Course::embedded().departures(repo.path())), Vec::<String>::new());
        idx[8] = (idx[8] + 1) % 10;
        idx[9] = (idx[9] + 1) % 10;
        write(&idx);
        assert_eq!(
            summary(&Course::embedded().departures(repo.path())),
            ["course-file-changed data/fashion/t10k-labels-idx1-ubyte.gz: 2 of 10000 labels differ from the course's"]
        );
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            summary(&Course::embedded().departures(repo.path())),
            ["course-file-removed data/fashion/t10k-labels-idx1-ubyte.gz: "]
        );
    }

    #[test]
    fn a_course_folder_replaces_the_embedded_files() {
        let course_dir = repo_with(&[(MODEL_TEST, "def test_one():\n    assert True\n")]);
        let course = Course::from_dir(course_dir.path()).unwrap();
        let model_test = course.text_files().find(|(p, _)| *p == MODEL_TEST).map(|(_, t)| t);
        assert_eq!(model_test, Some("def test_one():\n    assert True\n"));
        let repo = repo_with(&[]);
        let s = summary(&course.departures(repo.path()));
        assert_eq!(s.len(), 1, "{s:?}");
        assert!(s[0].contains("test_one removed"), "{s:?}");
        assert!(Course::from_dir(tempfile::tempdir().unwrap().path()).is_err());
    }

    #[test]
    fn the_diff_is_minimal() {
        let h = diff(&["a", "b", "c", "d"], &["a", "x", "c", "d", "e"]).unwrap();
        assert_eq!(
            h,
            [Hunk { at: 1, removed: vec![1], added: vec![1] }, Hunk { at: 4, removed: vec![], added: vec![4] }]
        );
        assert!(diff(&vec!["a"; 3000], &vec!["b"; 3000]).is_none());
    }
}
