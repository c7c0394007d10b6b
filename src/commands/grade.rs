//! `fmtool grade REPO...`: a whole class for the teaching staff. Each student repository is graded
//! exactly as `fmtool score` grades it when run in that repository (its workflow's points, the
//! credit sheet's, the student's own accuracy, the model's accuracy in fmtool's engine), plus what
//! `fmtool check` finds there. A repository that cannot be graded is a row with its error, never
//! a failed run. Rows are cached by a SHA-256 of everything graded, so a re-run grades only the
//! repositories that changed.

use super::Progress;
use crate::cli::{CheckArgs, GradeArgs, ScoreArgs};
use crate::error::{Error, Result};
use crate::grader::{Grader, Status};
use crate::student::Isolation;
use crate::{Format, err};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// One workflow step's points in one repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepCell {
    pub name: String,
    pub points: u64,
    pub max: u64,
    pub passed: bool,
    /// What happened in a step that failed, as the student reads it.
    #[serde(default)]
    pub message: Option<String>,
}

/// One thing fmtool tells the student: a finding of `fmtool check`, or a likely cause in the
/// student's code found by running it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Advice {
    /// `error` or `warning` (`fmtool check`), or `cause` (what running the code showed).
    pub kind: String,
    pub code: String,
    /// The file, and in it the JSON pointer, npz key or line.
    pub place: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl Advice {
    /// The message and hint clipped, as every row keeps them.
    fn new(kind: &str, code: &str, place: Option<String>, message: &str, hint: Option<&str>) -> Advice {
        Advice {
            kind: kind.into(),
            code: crate::text::clip(code, 100),
            place: place.map(|p| crate::text::clip(&p, 300)),
            message: crate::text::clip(message, 600),
            hint: hint.map(|h| crate::text::clip(h, 600)),
        }
    }
}

/// At most this many pieces of advice are kept per repository (the first ones: errors first).
const MAX_ADVICE: usize = 40;

/// Who produced a row's figures. A report collected from a repository's own CI run was written by
/// code the student controls, and anyone can edit a JSON file: such a row is only what the
/// student says. Signing reports (a later issue) will add a kind of row here whose report is
/// known to come from fmtool unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// fmtool graded the repository itself (in this run, or an earlier one: the cache).
    #[default]
    Graded,
    /// Read from a `fmtool score --format json` report given on the command line.
    SelfReported,
}

impl Source {
    /// The name the CSV, the table and the page show: the JSON's.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Graded => "graded",
            Source::SelfReported => "self-reported",
        }
    }
}

/// One student repository's grade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradeRow {
    /// The repository's folder, as given (or found under a class folder).
    pub repo: String,
    /// Graded by fmtool, or self-reported (a collected report, which the student could forge).
    #[serde(default)]
    pub source: Source,
    /// The checked-out commit, when the repository is a git checkout.
    pub commit: Option<String>,
    /// What the repository's workflow awards (the credit sheet's total when it has no workflow);
    /// None when it could not be graded at all (see `error`).
    pub points: Option<u64>,
    pub max: Option<u64>,
    /// What the course's credit sheet awards from the same tests.
    pub credit_sheet: Option<u64>,
    /// The workflow's steps, in the workflow's order.
    pub steps: Vec<StepCell>,
    /// The accuracy `test_inference` computes with the student's own code.
    pub student_accuracy: Option<f64>,
    /// The model's accuracy in fmtool's engine.
    pub model_accuracy: Option<f64>,
    /// The relu and softmax rows of the credit sheet: passed, failed or not_run.
    pub relu: Option<Status>,
    pub softmax: Option<Status>,
    /// `fmtool check`'s counts (the course-wide findings included) and its first error (or
    /// warning) for the repository that is not one of the report's course-wide findings.
    pub check_errors: usize,
    pub check_warnings: usize,
    pub first_finding: Option<String>,
    /// The likely causes fmtool names for what went wrong in the student's code (codes), and
    /// the first one as the student reads it.
    pub diagnosis: Vec<crate::autograde::Cause>,
    pub cause: Option<String>,
    /// Everything fmtool tells this student, in the order `fmtool score` and `fmtool check`
    /// print it: likely causes first, then check's errors, then its warnings; the report's
    /// course-wide findings are stated there, once, and not here.
    #[serde(default)]
    pub advice: Vec<Advice>,
    /// Why the repository could not be graded.
    pub error: Option<String>,
    /// The Python and NumPy that ran the student's code.
    pub python: Option<String>,
    pub numpy: Option<String>,
    /// `bubblewrap` when the student's code ran in its sandbox, `none` without one.
    #[serde(default)]
    pub isolation: Option<String>,
    /// Why fmtool stopped the student's code ("stopped: ..."): a limit on the student as a
    /// whole, a step's time limit, the repository's total time, or its sandbox killed by its own
    /// code. The run's exit status is 1 when a row has one.
    #[serde(default)]
    pub stopped: Option<String>,
    /// What the reader of this row should know (a `--timeout` that is not the workflow's).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Every departure from the course's rules, as `fmtool score` lists them.
    #[serde(default)]
    pub integrity: Vec<IntegrityCell>,
    /// Why the workflow's commands also ran as GitHub runs them (a departure, the audit sample,
    /// `--exact`); `points` are then that run's. None when they did not run.
    #[serde(default)]
    pub real_run: Option<String>,
    /// fmtool's harness's points, when the real run awarded others.
    #[serde(default)]
    pub harness_points: Option<u64>,
    /// What the student's code gets under the course's own files, when a course file was edited.
    #[serde(default)]
    pub course_files_points: Option<u64>,
    pub seconds: f64,
    /// Taken from the cache (graded by an earlier run on the very same files).
    #[serde(default)]
    pub cached: bool,
}

/// One departure from the course's rules, for the class table (see `repo::integrity::Departure`).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct IntegrityCell {
    pub code: String,
    /// `changes the grade` or `suspicious`.
    pub effect: String,
    /// `file:line` or `file`.
    pub place: String,
    pub message: String,
    #[serde(default)]
    pub details: Vec<String>,
}

impl IntegrityCell {
    pub fn changes_the_grade(&self) -> bool {
        self.effect == crate::repo::integrity::Effect::ChangesTheGrade.as_str()
    }
}

/// The result of `fmtool grade`. Its JSON form is described by `schemas/grade-report.schema.json`.
#[derive(Debug, Clone, Serialize)]
pub struct GradeReport {
    pub fmtool_version: &'static str,
    /// Every step name of every workflow, in first-seen order (the CSV's step columns).
    pub step_names: Vec<String>,
    /// One row per repository, sorted by repository.
    pub repos: Vec<GradeRow>,
    /// The course's own findings that the class shares, stated once: the rows' advice and first
    /// findings leave them out (see [`course_wide`]).
    pub course_wide: Vec<CourseFinding>,
    /// How many rows came from the cache.
    pub cached: usize,
    pub seconds: f64,
}

/// A finding of `fmtool check` in the course's workflow that the class shares (see
/// [`course_wide`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CourseFinding {
    /// `error` or `warning`.
    pub kind: String,
    pub code: String,
    /// The file and line within each repository (`.github/workflows/classroom.yml:34`).
    pub place: String,
    pub message: String,
    pub hint: Option<String>,
    /// The repositories that have it.
    pub repos: Vec<String>,
}

impl CourseFinding {
    /// Whether `a` (a row's advice) is this finding.
    fn covers(&self, a: &Advice) -> bool {
        a.code == self.code
            && a.message == self.message
            && a.place.as_deref().and_then(in_workflow) == Some(&self.place)
    }
}

/// The part of an advice's place from the repository's workflow folder on
/// (`.github/workflows/classroom.yml:34`), when the advice is about a workflow file. `fmtool check`
/// shows places under the repository's folder as given, which differs from one repository to
/// the next.
fn in_workflow(place: &str) -> Option<&str> {
    let dir = format!("{}/", crate::repo::workflow::WORKFLOW_DIR);
    let i = place.rfind(&dir)?;
    (i == 0 || place[..i].ends_with('/')).then(|| &place[i..])
}

/// The course's findings, stated once for the class. The course distributes the workflow and
/// GitHub Classroom runs it as it is, so a defect in it (a step whose command is not found, a
/// step that tests another threshold than its name) fails every student alike: it belongs to the
/// course, not to each student. The rule: a finding of `fmtool check` in a workflow file is
/// course-wide when it is identical (code, file and line within the repository, message) in at
/// least two of the repositories graded here, and in every one of them whose copy of that file
/// is byte-identical to the copy of a repository that has it. So a single repository's findings
/// stay its own; a student who changed the workflow has a file of their own, which neither
/// counts nor vetoes; and a finding that also depends on the student's files (a threshold that
/// their edited model_test.py asserts) is absent from some identical copies, so it stays with
/// the students who have it. Findings in the students' own files (nn_predict.py, the model) and
/// the causes found by running their code never are course-wide, however many share them.
/// `rows[i]` is the repository `repos[i]`.
fn course_wide(repos: &[PathBuf], rows: &[GradeRow]) -> Vec<CourseFinding> {
    let mut found: Vec<CourseFinding> = Vec::new();
    let mut who: Vec<Vec<usize>> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        for a in row.advice.iter().filter(|a| a.kind != "cause") {
            let Some(place) = a.place.as_deref().and_then(in_workflow) else { continue };
            let k = match found.iter().position(|c| c.covers(a)) {
                Some(k) => k,
                None => {
                    found.push(CourseFinding {
                        kind: a.kind.clone(),
                        code: a.code.clone(),
                        place: place.to_string(),
                        message: a.message.clone(),
                        hint: a.hint.clone(),
                        repos: Vec::new(),
                    });
                    who.push(Vec::new());
                    found.len() - 1
                }
            };
            if who[k].last() != Some(&i) {
                who[k].push(i);
            }
        }
    }
    let mut digests: std::collections::HashMap<(usize, String), Option<Vec<u8>>> = Default::default();
    let mut digest = |i: usize, file: &str| -> Option<Vec<u8>> {
        let read = || crate::fsguard::read(&repos[i].join(file), crate::repo::workflow::MAX_WORKFLOW_BYTES).ok();
        digests.entry((i, file.to_string())).or_insert_with(|| read().map(|b| Sha256::digest(b).to_vec())).clone()
    };
    let mut out = Vec::new();
    for (mut c, have) in found.into_iter().zip(who) {
        let file = match c.place.rsplit_once(':') {
            Some((f, line)) if line.parse::<usize>().is_ok() => f.to_string(),
            _ => c.place.clone(),
        };
        let copies: Option<Vec<Vec<u8>>> = have.iter().map(|&i| digest(i, &file)).collect();
        let Some(copies) = copies else { continue };
        let vetoed =
            (0..rows.len()).any(|j| !have.contains(&j) && digest(j, &file).is_some_and(|d| copies.contains(&d)));
        if have.len() >= 2 && !vetoed {
            c.repos = have.iter().map(|&i| rows[i].repo.clone()).collect();
            c.repos.sort();
            out.push(c);
        }
    }
    out.sort_by(|a, b| b.repos.len().cmp(&a.repos.len()).then_with(|| a.place.cmp(&b.place)));
    out
}

/// Takes the course's findings out of each row: out of its advice, and out of its first finding,
/// which becomes the row's first own finding (an error first, as `fmtool check` ranks them).
fn hoist(rows: &mut [GradeRow], course: &[CourseFinding]) {
    let text = |code: &str, message: &str| crate::text::clip(&format!("{code}: {message}"), 300);
    for row in rows {
        let first_is_course =
            row.first_finding.as_deref().is_some_and(|f| course.iter().any(|c| f == text(&c.code, &c.message)));
        row.advice.retain(|a| !course.iter().any(|c| c.covers(a)));
        if first_is_course {
            let own = |kind: &str| row.advice.iter().find(|a| a.kind == kind);
            row.first_finding = own("error").or_else(|| own("warning")).map(|a| text(&a.code, &a.message));
        }
    }
}

/// The student repositories among `paths`: a folder holding `nn_predict.py`, `model/` or
/// `.github/` is one; any other folder is a class, whose sub-folders that are repositories are
/// taken, in name order.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let is_repo = |p: &Path| ["nn_predict.py", "model", ".github", "model_test.py"].iter().any(|f| p.join(f).exists());
    let mut out = Vec::new();
    for p in paths {
        if !p.is_dir() {
            return Err(err!("{}: not a folder", p.display())
                .with_hint("pass student repositories, or a folder whose sub-folders are student repositories"));
        }
        if is_repo(p) {
            out.push(p.clone());
            continue;
        }
        let Some(entries) = crate::fsguard::list_dir(p)? else { continue };
        let repos: Vec<PathBuf> =
            entries.iter().filter(|e| e.is_dir).map(|e| p.join(&e.name)).filter(|d| is_repo(d)).collect();
        if repos.is_empty() {
            return Err(err!(
                "{}: no student repository in it (none of its folders holds nn_predict.py, model/ or .github/)",
                p.display()
            ));
        }
        out.extend(repos);
    }
    Ok(out)
}

pub fn run(args: &GradeArgs, progress: &dyn Progress) -> Result<GradeReport> {
    let start = Instant::now();
    if !(0.0..=1.0).contains(&args.audit) {
        return Err(err!("--audit {}: give the share of repositories to audit, from 0 to 1", args.audit)
            .with_hint("--audit 0.1 runs one repository in ten as GitHub runs it; --exact runs all"));
    }
    // Reports collected from the repositories' own CI (`fmtool score --format json`) are rows as
    // they are; folders are graded here.
    let (collected, folders): (Vec<PathBuf>, Vec<PathBuf>) =
        args.repos.iter().cloned().partition(|p| p.extension().is_some_and(|x| x == "json") && p.is_file());
    let repos = if folders.is_empty() { Vec::new() } else { discover(&folders)? };
    // The students' code runs in a sandbox, or, only when asked, without one.
    let isolation = if args.no_isolation {
        Isolation::Off("--no-isolation".into())
    } else if repos.is_empty() {
        Isolation::Off("nothing to run".into())
    } else {
        Isolation::best().map_err(|why| {
            err!("not grading: the students' code would run without a sandbox, with your files within its reach: {why}")
                .with_hint("install bubblewrap (Linux), or grade in a Linux VM or container; --no-isolation runs it unsandboxed, only for code you trust")
        })?
    };
    let key = match &args.cache {
        Some(c) => {
            std::fs::create_dir_all(c).map_err(|e| Error::io("create the cache folder", c, &e))?;
            Some(cache_mac_key(c)?)
        }
        None => None,
    };
    // A Ctrl-C kills the student's processes and removes their temporary copies.
    crate::atomic::clean_up_on_signals();
    let python = crate::student::find_python(args.python.as_deref()).ok();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let jobs = args.jobs.map(usize::from).unwrap_or(cores).clamp(1, repos.len().max(1));
    // The cores are shared: `jobs` repositories at once, each running its images on its share,
    // so that a step's measured time is what it would be on a runner of its own.
    let workers = (cores / jobs).max(1);
    progress.start(repos.len());
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<GradeRow>>> = repos.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(repo) = repos.get(i) else { break };
                    // A panic in fmtool on one repository is that row's error, not the class's end.
                    let row = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        grade_or_cached(repo, args, python.as_ref(), workers, &isolation, key.as_deref())
                    }))
                    .unwrap_or_else(|_| {
                        let mut row = empty_row(&repo.display().to_string(), None);
                        row.error = Some("fmtool failed on this repository (an internal error)".into());
                        row
                    });
                    *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(row);
                    progress.update(done.fetch_add(1, Ordering::Relaxed) + 1);
                }
            });
        }
    });
    let mut rows = Vec::with_capacity(repos.len());
    for slot in slots {
        match slot.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(row) => rows.push(row),
            None => return Err(err!("a grading thread stopped before its repository was graded")),
        }
    }
    progress.finish();
    let course_wide = course_wide(&repos, &rows);
    hoist(&mut rows, &course_wide);
    rows.extend(collected.iter().map(|p| row_from_score_json(p)));
    rows.sort_by(|a, b| a.repo.cmp(&b.repo));
    let mut step_names: Vec<String> = Vec::new();
    for s in rows.iter().flat_map(|r| &r.steps) {
        if !step_names.contains(&s.name) {
            step_names.push(s.name.clone());
        }
    }
    let cached = rows.iter().filter(|r| r.cached).count();
    Ok(GradeReport {
        fmtool_version: env!("CARGO_PKG_VERSION"),
        step_names,
        repos: rows,
        course_wide,
        cached,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// One repository's row: from the cache when it holds the very same files (graded the same way,
/// with an entry whose MAC checks), else graded (and then cached). Never fails: a row that cannot
/// be cached is still a row.
fn grade_or_cached(
    repo: &Path,
    args: &GradeArgs,
    python: Option<&crate::student::Python>,
    workers: usize,
    isolation: &Isolation,
    mac_key: Option<&[u8]>,
) -> GradeRow {
    let key = cache_key(repo, python, args, isolation);
    let cached = match (&args.cache, &key, args.force, mac_key) {
        (Some(dir), Ok(k), false, Some(m)) => read_cached(&dir.join(format!("{k}.json")), m),
        _ => None,
    };
    match cached {
        // The key is the content, not the folder: two identical submissions share a grade, and
        // the row takes this repository's own name and commit.
        Some(mut row) => {
            row.cached = true;
            row.repo = repo.display().to_string();
            row.commit = git_commit(repo);
            row
        }
        None => {
            let mut row = grade_one(repo, args, workers);
            // A stopped row is not cached: the next run tries it again.
            if let (Some(dir), Ok(k), Some(m), None) = (&args.cache, &key, mac_key, &row.stopped)
                && let Err(e) = write_cached(&dir.join(format!("{k}.json")), &row, m)
            {
                row.notes.push(format!("not cached: {}", e.one_line()));
            }
            row
        }
    }
}

/// The cache's MAC key: 32 random bytes made once in `<cache>/.fmtool-key` (mode 0600). The
/// cache folder is never inside a sandbox; the key makes an entry that was edited (by anyone)
/// count as absent, so that row is graded again.
fn cache_mac_key(dir: &Path) -> Result<Vec<u8>> {
    let path = dir.join(".fmtool-key");
    if let Ok(bytes) = crate::fsguard::read(&path, 64)
        && bytes.len() == 32
    {
        return Ok(bytes);
    }
    let key = random_key()?;
    crate::atomic::write_atomic_mode(&path, &key, true, Some(0o600))?;
    Ok(key)
}

/// 32 bytes from the OS's random source: /dev/urandom, or where there is none (Windows) the
/// standard library's randomly seeded hasher keys, stretched by SHA-256.
fn random_key() -> Result<Vec<u8>> {
    let mut key = vec![0u8; 32];
    if let Ok(mut urandom) = std::fs::File::open("/dev/urandom") {
        std::io::Read::read_exact(&mut urandom, &mut key)
            .map_err(|e| Error::io("read", Path::new("/dev/urandom"), &e))?;
        return Ok(key);
    }
    use std::hash::{BuildHasher, Hasher};
    let mut h = Sha256::new();
    for i in 0..4u64 {
        let mut s = std::collections::hash_map::RandomState::new().build_hasher();
        s.write_u64(i);
        h.update(s.finish().to_le_bytes());
    }
    Ok(h.finalize().to_vec())
}

/// HMAC-SHA256 (RFC 2104) of `data` under `key`.
fn mac(key: &[u8], data: &[u8]) -> String {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(data).finalize();
    let outer = Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_cached(path: &Path, row: &GradeRow, key: &[u8]) -> Result<()> {
    let text = serde_json::to_string(row).map_err(|e| err!("cannot cache a row: {e}"))?;
    let entry = serde_json::json!({"mac": mac(key, text.as_bytes()), "row": text});
    let bytes = serde_json::to_vec_pretty(&entry).map_err(|e| err!("cannot cache a row: {e}"))?;
    crate::atomic::write_atomic(path, &bytes, true)
}

/// A row from a report `fmtool score --format json` wrote in a student repository (on its CI
/// runner, say): the same fields a local grade fills, but `fmtool check`'s, which the report does
/// not carry. A file that is not such a report is a row with that error.
fn row_from_score_json(path: &Path) -> GradeRow {
    let mut row = empty_row(&path.display().to_string(), None);
    row.source = Source::SelfReported;
    let v: serde_json::Value = match crate::fsguard::read(path, crate::fsguard::budget::JSON)
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| err!("{}: not JSON: {e}", path.display())))
    {
        Ok(v) => v,
        Err(e) => {
            row.error = Some(e.one_line());
            return row;
        }
    };
    let (Some(points), Some(table)) = (v["points"].as_u64(), v.get("points_table")) else {
        row.error = Some(format!("{}: not a report of `fmtool score --format json`", path.display()));
        return row;
    };
    let g = &v["grade"];
    if let Some(root) = g["root"].as_str() {
        row.repo = format!("{} ({})", crate::text::clip(root, 200), path.display());
    }
    row.points = Some(points);
    row.max = g["max"].as_u64().or(table["max"].as_u64());
    row.credit_sheet = g["credit_sheet"]["total"].as_u64();
    row.model_accuracy = v["accuracy"].as_f64();
    row.student_accuracy = g["student_accuracy"].as_f64();
    if let Some(steps) = g["workflow"]["steps"].as_array() {
        row.steps = steps
            .iter()
            .map(|s| StepCell {
                name: s["name"].as_str().unwrap_or("").to_string(),
                points: s["points"].as_u64().unwrap_or(0),
                max: s["max"].as_u64().unwrap_or(0),
                passed: s["passed"].as_bool().unwrap_or(false),
                message: s["message"].as_str().filter(|_| s["passed"] != true).map(|m| crate::text::clip(m, 600)),
            })
            .collect();
    }
    let status = |item: &str| {
        let rows = g["credit_sheet"]["rows"].as_array()?;
        let r = rows.iter().find(|r| r["item"] == item)?;
        serde_json::from_value(r["status"].clone()).ok()
    };
    row.relu = status("relu");
    row.softmax = status("softmax");
    if let Some(d) = g["diagnosis"].as_array() {
        row.diagnosis = d.iter().filter_map(|d| serde_json::from_value(d["code"].clone()).ok()).collect();
        row.cause = d.first().and_then(|d| d["message"].as_str()).map(|m| crate::text::clip(m, 300));
        row.advice = d
            .iter()
            .take(MAX_ADVICE)
            .map(|d| {
                let text = |k: &str| d[k].as_str().unwrap_or("");
                Advice::new("cause", text("code"), None, text("message"), d["hint"].as_str())
            })
            .collect();
    }
    row.python = g["python"]["version"].as_str().map(str::to_string);
    row.numpy = g["python"]["numpy"].as_str().map(str::to_string);
    row.error = g["not_run"].as_str().map(str::to_string);
    row.seconds = v["seconds"].as_f64().unwrap_or(0.0);
    row
}

/// A row with nothing graded yet.
pub(crate) fn empty_row(repo: &str, commit: Option<String>) -> GradeRow {
    GradeRow {
        repo: repo.to_string(),
        source: Source::Graded,
        commit,
        points: None,
        max: None,
        credit_sheet: None,
        steps: Vec::new(),
        student_accuracy: None,
        model_accuracy: None,
        relu: None,
        softmax: None,
        check_errors: 0,
        check_warnings: 0,
        first_finding: None,
        diagnosis: Vec::new(),
        cause: None,
        advice: Vec::new(),
        error: None,
        python: None,
        numpy: None,
        isolation: None,
        stopped: None,
        notes: Vec::new(),
        integrity: Vec::new(),
        real_run: None,
        harness_points: None,
        course_files_points: None,
        seconds: 0.0,
        cached: false,
    }
}

/// Grades one repository as `fmtool score` and `fmtool check` do in it; never fails: what goes
/// wrong is the row's `error`.
fn grade_one(repo: &Path, args: &GradeArgs, workers: usize) -> GradeRow {
    let start = Instant::now();
    let mut row = empty_row(&repo.display().to_string(), git_commit(repo));
    let score = ScoreArgs {
        model: repo.to_path_buf(),
        data: None,
        split: "t10k".into(),
        format: Format::Human,
        grader: Grader::Full,
        plot: None,
        timings: false,
        force: false,
        min_accuracy: None,
        nn_predict: None,
        no_student_code: false,
        python: args.python.clone(),
        setup: false,
        timeout: args.timeout,
        no_isolation: args.no_isolation,
        solutions: args.solutions,
        workers: Some(workers),
        course: args.course.clone(),
        exact: args.exact,
        audit_sampled: audit_sampled(repo, args.audit),
        class_grading: true,
        no_budget: false,
    };
    match super::score::run(&score, &super::Silent) {
        Ok(r) => {
            row.model_accuracy = r.accuracy;
            row.points = Some(r.points as u64);
            match &r.grade {
                Some(g) => {
                    row.max = Some(g.max);
                    row.credit_sheet = Some(g.credit_sheet.total);
                    row.student_accuracy = g.student_accuracy;
                    if let Some(w) = &g.workflow {
                        row.steps = w
                            .steps
                            .iter()
                            .map(|s| StepCell {
                                name: s.name.clone(),
                                points: s.points,
                                max: s.max,
                                passed: s.passed,
                                message: (!s.passed).then(|| crate::text::clip(&s.message, 600)),
                            })
                            .collect();
                    }
                    let status = |item: &str| g.credit_sheet.rows.iter().find(|r| r.item == item).map(|r| r.status);
                    row.relu = status("relu");
                    row.softmax = status("softmax");
                    row.diagnosis = g.diagnosis.iter().map(|d| d.code).collect();
                    row.cause = g.diagnosis.first().map(|d| crate::text::clip(&d.message, 300));
                    row.advice.extend(g.diagnosis.iter().map(|d| {
                        let code = serde_json::to_value(d.code).ok();
                        let code = code.as_ref().and_then(|v| v.as_str()).unwrap_or_default();
                        Advice::new("cause", code, None, &d.message, d.hint.as_deref())
                    }));
                    row.python = g.python.as_ref().map(|p| p.version.clone());
                    row.numpy = g.python.as_ref().map(|p| p.numpy.clone());
                    row.isolation = Some(g.isolation.clone());
                    row.stopped = g.stopped.as_ref().map(|s| crate::text::clip(&format!("stopped: {s}"), 400));
                    row.notes.extend(g.notes.iter().map(|n| crate::text::clip(n, 400)));
                    row.integrity = g
                        .integrity
                        .iter()
                        .map(|d| IntegrityCell {
                            code: d.code.as_str().into(),
                            effect: d.effect.as_str().into(),
                            place: crate::text::clip(&d.place(), 200),
                            message: crate::text::clip(&d.message, 400),
                            details: d.details.iter().take(12).map(|x| crate::text::clip(x, 300)).collect(),
                        })
                        .collect();
                    row.real_run = g.real_run.as_ref().map(|r| r.reason.clone());
                    row.harness_points = g.harness_points.filter(|h| Some(*h) != row.points);
                    row.course_files_points = g.course_files.as_ref().map(|c| c.total);
                    if let Some(why) = &g.not_run {
                        row.error = Some(why.clone());
                    }
                }
                None => {
                    row.max = Some(r.points_table.max as u64);
                    row.error = Some("no nn_predict.py: the student's code was not run".into());
                }
            }
        }
        Err(e) => row.error = Some(e.one_line()),
    }
    // The departures come from score, measured; check's would repeat them.
    let check = CheckArgs {
        paths: vec![repo.join("model")],
        format: Format::Human,
        grader: Grader::Full,
        strict: false,
        course: None,
        no_integrity: true,
        python: None,
        // Score ran the student's code on every image; check judges the files.
        no_student_code: true,
        no_budget: false,
    };
    match super::check::run(&check) {
        Ok(c) => {
            row.check_errors = c.errors;
            row.check_warnings = c.warnings;
            let first = c.findings.iter().find(|f| f.severity == crate::checks::Severity::Error).or(c.findings.first());
            row.first_finding = first.map(|f| crate::text::clip(&format!("{}: {}", f.code, f.message), 300));
            let mut findings: Vec<&crate::checks::Finding> = c.findings.iter().collect();
            findings.sort_by_key(|f| f.severity);
            row.advice.extend(findings.into_iter().map(|f| {
                let place = Some(f.location.describe());
                Advice::new(f.severity.as_str(), f.code.as_str(), place, &f.message, f.hint.as_deref())
            }));
        }
        Err(e) => {
            row.check_errors = 1;
            row.first_finding = Some(crate::text::clip(&e.one_line(), 300));
            row.advice.push(Advice::new("error", "unreadable", None, &e.message, e.hint.as_deref()));
        }
    }
    row.advice.truncate(MAX_ADVICE);
    row.seconds = start.elapsed().as_secs_f64();
    row
}

/// Whether a repository is in the audit sample: its workflow then also runs as GitHub runs it. A
/// fresh random draw each run (the hasher's keys are random per process), so that no student can
/// tell in advance.
fn audit_sampled(repo: &Path, fraction: f64) -> bool {
    use std::hash::BuildHasher;
    if fraction <= 0.0 {
        return false;
    }
    (std::collections::hash_map::RandomState::new().hash_one(repo) as f64) < fraction * u64::MAX as f64
}

/// The cache key: SHA-256 over fmtool's version, the Python that runs the code, the time limit,
/// the isolation and the limits on each student, whether the hints show solutions, and every
/// regular file of the repository but `.git` (relative path and bytes, in path order), as the
/// sandbox copies it: the same inputs give the same grade, and a row with solutions is never
/// served to a run without `--solutions`.
fn cache_key(
    repo: &Path,
    python: Option<&crate::student::Python>,
    args: &GradeArgs,
    isolation: &Isolation,
) -> Result<String> {
    let timeout = args.timeout;
    let mut h = Sha256::new();
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update([0]);
    if let Some(p) = python {
        h.update(format!("{}\0{}\0{}", p.path.display(), p.version, p.numpy).as_bytes());
    }
    h.update(format!("\0{timeout:?}\0{}\0{:?}\0", isolation.name(), crate::student::watchdog::DEFAULT).as_bytes());
    // The reference for the departures, and whether every workflow runs as GitHub runs it.
    h.update(format!("{:?}\0{}\0{}\0", args.course, args.exact, python.is_some_and(|p| p.pytest)).as_bytes());
    h.update([u8::from(args.solutions)]);
    let mut files = Vec::new();
    list_files(repo, repo, &mut files, 0)?;
    files.sort();
    for rel in files {
        let bytes = crate::fsguard::read(&repo.join(&rel), crate::fsguard::budget::NPZ)?;
        h.update(rel.as_bytes());
        h.update([0]);
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn list_files(root: &Path, dir: &Path, out: &mut Vec<String>, depth: usize) -> Result<()> {
    if depth > 32 || out.len() > 10_000 {
        return Err(err!("{}: too many files or folders to grade", root.display()));
    }
    let Some(entries) = crate::fsguard::list_dir(dir)? else { return Ok(()) };
    for e in entries {
        if e.name == ".git" {
            continue;
        }
        let p = dir.join(&e.name);
        if e.is_dir {
            list_files(root, &p, out, depth + 1)?;
        } else if e.is_file {
            out.push(p.strip_prefix(root).unwrap_or(&p).to_string_lossy().into_owned());
        }
    }
    Ok(())
}

/// A cached row, when its MAC is the one `key` gives its text.
fn read_cached(path: &Path, key: &[u8]) -> Option<GradeRow> {
    let bytes = crate::fsguard::read(path, 1 << 20).ok()?;
    let entry: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let text = entry["row"].as_str()?;
    let given = entry["mac"].as_str()?;
    let expected = mac(key, text.as_bytes());
    // Compared in full whatever the first difference, so the time says nothing of the MAC.
    let same =
        given.len() == expected.len() && given.bytes().zip(expected.bytes()).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0;
    if !same {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// The commit checked out in `repo` (`.git/HEAD`, following one ref, loose or packed).
fn git_commit(repo: &Path) -> Option<String> {
    let git = repo.join(".git");
    let read = |p: &Path| crate::fsguard::read(p, 1 << 20).ok().and_then(|b| String::from_utf8(b).ok());
    let head = read(&git.join("HEAD"))?;
    let head = head.trim();
    let is_sha = |s: &str| s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if is_sha(head) {
        return Some(head.to_string());
    }
    let name = head.strip_prefix("ref: ")?;
    if name.split('/').any(|c| c == ".." || c.is_empty()) {
        return None;
    }
    if let Some(s) = read(&git.join(name)) {
        return is_sha(s.trim()).then(|| s.trim().to_string());
    }
    let packed = read(&git.join("packed-refs"))?;
    packed.lines().find_map(|l| {
        let (sha, r) = l.split_once(' ')?;
        (r == name && is_sha(sha)).then(|| sha.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A finding in a test class: code, place within the repository, message.
    type Said<'a> = (&'a str, &'a str, &'a str);

    /// A class in a temporary folder: each repository's workflow file holds the given bytes (none:
    /// no workflow), and its row the given advice, places under the repository as `fmtool check`
    /// shows them.
    fn class(repos: &[(&str, Option<&str>, &[Said])]) -> (tempfile::TempDir, Vec<PathBuf>, Vec<GradeRow>) {
        let dir = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        let mut rows = Vec::new();
        for (name, workflow, advice) in repos {
            let repo = dir.path().join(name);
            let wf = repo.join(crate::repo::workflow::WORKFLOW_DIR);
            std::fs::create_dir_all(&wf).unwrap();
            if let Some(text) = workflow {
                std::fs::write(wf.join("classroom.yml"), text).unwrap();
            }
            let mut row = empty_row(&repo.display().to_string(), None);
            row.advice = advice
                .iter()
                .map(|(code, place, message)| {
                    let kind = if code.starts_with("cause") { "cause" } else { "warning" };
                    let place = (!place.is_empty()).then(|| format!("{}/{place}", repo.display()));
                    Advice::new(kind, code, place, message, Some("fix it"))
                })
                .collect();
            row.first_finding =
                row.advice.iter().find(|a| a.kind != "cause").map(|a| format!("{}: {}", a.code, a.message));
            paths.push(repo);
            rows.push(row);
        }
        (dir, paths, rows)
    }

    const SOFTMAX_STEP: Said = (
        "workflow-command-not-found",
        ".github/workflows/classroom.yml:34",
        "step \"softmax()\" runs `model_test.py::test_softmax`",
    );

    fn codes_and_counts(c: &[CourseFinding]) -> Vec<(&str, usize)> {
        c.iter().map(|c| (c.code.as_str(), c.repos.len())).collect()
    }

    #[test]
    fn a_single_repositorys_findings_are_its_own() {
        let (_dir, repos, rows) = class(&[("alice", Some("course"), &[SOFTMAX_STEP])]);
        assert_eq!(course_wide(&repos, &rows), vec![]);
    }

    #[test]
    fn a_finding_of_every_copy_of_the_course_workflow_is_the_courses() {
        let own = ("workflow-threshold-mismatch", ".github/workflows/classroom.yml:79", "step \"Accuracy >= 88\"");
        let (_dir, repos, rows) = class(&[
            ("alice", Some("course"), &[SOFTMAX_STEP]),
            ("bob", Some("course"), &[SOFTMAX_STEP, own]),
            // Changed the workflow: a file of their own, which neither counts nor vetoes.
            ("carol", Some("fixed"), &[]),
            ("dave", None, &[]),
        ]);
        let course = course_wide(&repos, &rows);
        assert_eq!(codes_and_counts(&course), [("workflow-command-not-found", 2)]);
        assert_eq!(course[0].place, ".github/workflows/classroom.yml:34");
        assert_eq!(course[0].repos, [rows[0].repo.clone(), rows[1].repo.clone()]);
    }

    #[test]
    fn a_copy_of_the_same_file_without_the_finding_vetoes_it() {
        let (_dir, repos, rows) = class(&[
            ("alice", Some("course"), &[SOFTMAX_STEP]),
            ("bob", Some("course"), &[SOFTMAX_STEP]),
            ("carol", Some("course"), &[]),
        ]);
        assert_eq!(course_wide(&repos, &rows), vec![]);
    }

    #[test]
    fn the_students_own_files_and_code_are_never_the_courses() {
        let import = ("ungraded-import", "nn_predict.py:3", "nn_predict.py imports tensorflow");
        let cause = ("cause-relu-todo", "", "relu() returns its input unchanged");
        let (_dir, repos, rows) =
            class(&[("alice", Some("course"), &[import, cause]), ("bob", Some("course"), &[import, cause])]);
        assert_eq!(course_wide(&repos, &rows), vec![]);
    }

    /// The course's finding leaves each row's advice, and the row's first finding becomes its
    /// first own one.
    #[test]
    fn hoisting_leaves_each_student_their_own_findings() {
        let own = ("workflow-threshold-mismatch", ".github/workflows/classroom.yml:79", "step \"Accuracy >= 88\"");
        let (_dir, repos, mut rows) =
            class(&[("alice", Some("course"), &[SOFTMAX_STEP]), ("bob", Some("course"), &[SOFTMAX_STEP, own])]);
        let course = course_wide(&repos, &rows);
        hoist(&mut rows, &course);
        assert_eq!((rows[0].advice.len(), rows[0].first_finding.as_deref()), (0, None));
        assert_eq!(rows[1].advice.iter().map(|a| a.code.as_str()).collect::<Vec<_>>(), ["workflow-threshold-mismatch"]);
        assert_eq!(rows[1].first_finding.as_deref(), Some("workflow-threshold-mismatch: step \"Accuracy >= 88\""));
    }

    /// A row whose hints show solutions is never served to a run without `--solutions`.
    #[test]
    fn solutions_course_and_exact_are_part_of_the_cache_key() {
        let repo = tempfile::tempdir().unwrap();
        std::fs::write(repo.path().join("nn_predict.py"), "def relu(x):\n    return x\n").unwrap();
        let off = Isolation::Off("test".into());
        #[derive(clap::Parser)]
        struct Grade {
            #[command(flatten)]
            args: GradeArgs,
        }
        let key = |extra: &[&str]| {
            let args = <Grade as clap::Parser>::parse_from([&["fmtool", "class"], extra].concat()).args;
            cache_key(repo.path(), None, &args, &off).unwrap()
        };
        assert_ne!(key(&["--solutions"]), key(&[]));
        assert_eq!(key(&[]), key(&[]));
        // So are the course's files and --exact, which change the departures and the points.
        assert_ne!(key(&["--exact"]), key(&[]));
        assert_ne!(key(&["--course", "elsewhere"]), key(&[]));
    }

    #[test]
    fn a_source_is_shown_by_its_json_name() {
        for s in [Source::Graded, Source::SelfReported] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }

    /// RFC 4231's test cases 1, 2 and 6 (a key longer than the block).
    #[test]
    fn the_cache_mac_is_hmac_sha256() {
        assert_eq!(mac(&[0x0b; 20], b"Hi There"), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
        assert_eq!(
            mac(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            mac(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }
}
