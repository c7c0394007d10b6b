//! `fmtool grade`'s outputs: the class table for the terminal, and the CSV file (one row per
//! repository, one column per workflow step).

use super::Human;
use crate::commands::grade::{GradeReport, GradeRow};
use crate::grader::Status;
use std::io::{self, Write};

/// The CSV's first line starts with this, so that a later run knows the file is its own.
pub const CSV_FIRST: &str = "repo,commit,points,max,credit_sheet,";

/// An accuracy to four places, or `missing`.
pub(super) fn acc(a: Option<f64>, missing: &str) -> String {
    a.map(|a| format!("{a:.4}")).unwrap_or_else(|| missing.into())
}

fn mark(s: Option<Status>) -> &'static str {
    match s {
        Some(Status::Passed) => "ok",
        Some(Status::Failed) => "--",
        Some(Status::NotRun) | None => "??",
    }
}

/// What the staff should read first: why it could not be graded, else the likely cause in the
/// student's code, else `fmtool check`'s first error, else its first warning.
fn first_problem(r: &GradeRow) -> &str {
    r.error.as_deref().or(r.stopped.as_deref()).or(r.cause.as_deref()).or(r.first_finding.as_deref()).unwrap_or("")
}

/// The departures from the course's rules in one cell: how many, how many change the grade, and
/// the first of those (else the first): `2 (1 changes the grade): conftest.py:4: ...`.
pub(super) fn integrity_summary(r: &GradeRow) -> String {
    let changes = r.integrity.iter().filter(|d| d.changes_the_grade()).count();
    let Some(first) = r.integrity.iter().find(|d| d.changes_the_grade()).or(r.integrity.first()) else {
        return String::new();
    };
    format!("{} ({changes} changes the grade): {}: {}", r.integrity.len(), first.place, first.message)
}

/// The rules column of the table: `-`, `2!` (departures, one changing the grade) or `1?`.
fn rules(r: &GradeRow) -> String {
    match (r.integrity.len(), r.integrity.iter().any(|d| d.changes_the_grade())) {
        (0, _) => "-".into(),
        (n, true) => format!("{n}!"),
        (n, false) => format!("{n}?"),
    }
}

/// `79/100`, or the points alone without a maximum, or `missing`.
pub(super) fn points(r: &GradeRow, missing: &str) -> String {
    match (r.points, r.max) {
        (Some(p), Some(m)) => format!("{p}/{m}"),
        (Some(p), None) => p.to_string(),
        _ => missing.into(),
    }
}

impl Human for GradeReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        let width = self.repos.iter().map(|r| r.repo.chars().count()).max().unwrap_or(4).clamp(4, 40);
        writeln!(
            w,
            "{:<width$}  {:>7}  {:>5}  {:>8}  {:>8}  {:<13}  relu softmax  check  rules  first problem",
            "repo", "points", "sheet", "student", "model", "source"
        )?;
        for r in &self.repos {
            let problem = first_problem(r);
            writeln!(
                w,
                "{:<width$}  {:>7}  {:>5}  {:>8}  {:>8}  {:<13}  {:<4} {:<7}  {:>2}/{:<2}  {:<5}  {}{}",
                crate::text::clip(&r.repo, 40),
                points(r, "-"),
                r.credit_sheet.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                acc(r.student_accuracy, "-"),
                acc(r.model_accuracy, "-"),
                r.source.as_str(),
                mark(r.relu),
                mark(r.softmax),
                r.check_errors,
                r.check_warnings,
                rules(r),
                crate::text::clip(problem, 100),
                if r.cached { " (cached)" } else { "" }
            )?;
        }
        if !self.course_wide.is_empty() {
            writeln!(
                w,
                "\ncourse-wide (findings in the course's workflow that the class shares: the course's to fix, so in no row's first problem):"
            )?;
        }
        for c in &self.course_wide {
            let n = c.repos.len();
            writeln!(
                w,
                "  {}: {}[{}] in {n} repositories: {}",
                c.place,
                c.kind,
                c.code,
                crate::text::clip(&c.message, 300)
            )?;
            if let Some(h) = &c.hint {
                writeln!(w, "    hint: {}", crate::text::clip(h, 300))?;
            }
        }
        let graded: Vec<u64> = self.repos.iter().filter_map(|r| r.points).collect();
        let mean = if graded.is_empty() { 0.0 } else { graded.iter().sum::<u64>() as f64 / graded.len() as f64 };
        let departing = self.repos.iter().filter(|r| r.integrity.iter().any(|d| d.changes_the_grade())).count();
        if departing > 0 {
            writeln!(
                w,
                "\nrules: {departing} repositories depart from the course's rules in a way that changes the grade (N! in the rules column; `fmtool score` in a repository lists them)"
            )?;
        }
        writeln!(
            w,
            "\n{} repositories ({} from the cache), mean {:.1} points; {} could not be graded; {:.1} s",
            self.repos.len(),
            self.cached,
            mean,
            self.repos.iter().filter(|r| r.points.is_none()).count(),
            self.seconds
        )
    }
}

/// One CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180). A field a
/// spreadsheet could run as a formula gets a leading apostrophe (OWASP's CSV injection advice):
/// one that starts with `=`, `+`, `-` or `@` (but a plain number), with a TAB or a CR, or with a
/// run of TABs, CRs and LFs before a formula character, which some spreadsheets skip.
fn field(s: &str) -> String {
    let formula = ['=', '+', '-', '@'];
    let after_blanks = s.trim_start_matches(['\t', '\r', '\n']);
    let defuse = s.starts_with(['\t', '\r']) || (after_blanks.starts_with(formula) && s.parse::<f64>().is_err());
    let s = if defuse { format!("'{s}") } else { s.into() };
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

/// The CSV file: a header, then one row per repository.
pub fn csv(report: &GradeReport) -> String {
    let mut out = String::from(CSV_FIRST);
    out.push_str("source,student_accuracy,model_accuracy,relu,softmax,check_errors,check_warnings");
    for s in &report.step_names {
        out.push(',');
        out.push_str(&field(&format!("step: {s}")));
    }
    out.push_str(
        ",first_problem,isolation,stopped,integrity,real_run,harness_points,course_files_points,seconds,cached\n",
    );
    let status = |s: Option<Status>| match s {
        Some(Status::Passed) => "passed",
        Some(Status::Failed) => "failed",
        Some(Status::NotRun) => "not_run",
        None => "",
    };
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    let fopt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for r in &report.repos {
        let mut cells = vec![
            field(&r.repo),
            field(r.commit.as_deref().unwrap_or("")),
            opt(r.points),
            opt(r.max),
            opt(r.credit_sheet),
            r.source.as_str().into(),
            fopt(r.student_accuracy),
            fopt(r.model_accuracy),
            status(r.relu).into(),
            status(r.softmax).into(),
            r.check_errors.to_string(),
            r.check_warnings.to_string(),
        ];
        for name in &report.step_names {
            cells.push(r.steps.iter().find(|s| &s.name == name).map(|s| s.points.to_string()).unwrap_or_default());
        }
        cells.push(field(first_problem(r)));
        cells.push(field(r.isolation.as_deref().unwrap_or("")));
        cells.push(field(r.stopped.as_deref().unwrap_or("")));
        cells.push(field(&integrity_summary(r)));
        cells.push(field(r.real_run.as_deref().unwrap_or("")));
        cells.push(opt(r.harness_points));
        cells.push(opt(r.course_files_points));
        cells.push(format!("{:.3}", r.seconds));
        cells.push(r.cached.to_string());
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::grade::{Source, empty_row};

    #[test]
    fn fields_are_quoted_and_formulas_defused() {
        assert_eq!(field("alice"), "alice");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("-0.5"), "-0.5");
    }

    /// OWASP: a TAB or CR first, or TABs, CRs and LFs before a formula character.
    #[test]
    fn formulas_behind_blanks_are_defused() {
        assert_eq!(field("\t=1+1"), "'\t=1+1");
        assert_eq!(field("\tplain"), "'\tplain");
        assert_eq!(field("\rx"), "\"'\rx\"");
        assert_eq!(field("\n@SUM(A1)"), "\"'\n@SUM(A1)\"");
        assert_eq!(field("\n\n\t-2+3"), "\"'\n\n\t-2+3\"");
        assert_eq!(field("\r\n+cmd"), "\"'\r\n+cmd\"");
        assert_eq!(field("\nplain"), "\"\nplain\"", "a line break before plain text is only quoted");
        assert_eq!(field("a\t=1"), "a\t=1", "a formula character after text is no formula");
    }

    /// A row collected from a student's report says so in its own column; a row fmtool graded
    /// says "graded".
    #[test]
    fn the_csv_and_the_table_say_who_produced_each_row() {
        let row = |repo: &str, source: Source| GradeRow {
            source,
            points: Some(79),
            max: Some(100),
            credit_sheet: Some(86),
            ..empty_row(repo, None)
        };
        let report = GradeReport {
            fmtool_version: "0",
            step_names: vec![],
            repos: vec![row("alice", Source::Graded), row("bob.json", Source::SelfReported)],
            course_wide: vec![],
            cached: 0,
            seconds: 0.0,
        };
        let text = csv(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with(&format!("{CSV_FIRST}source,")), "{}", lines[0]);
        assert!(lines[1].starts_with("alice,,79,100,86,graded,"), "{}", lines[1]);
        assert!(lines[2].starts_with("bob.json,,79,100,86,self-reported,"), "{}", lines[2]);
        let mut table = Vec::new();
        report.human(&mut table).unwrap();
        let table = String::from_utf8(table).unwrap();
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].contains(" source "), "{table}");
        assert!(lines[1].starts_with("alice") && lines[1].contains(" graded "), "{table}");
        assert!(lines[2].starts_with("bob.json") && lines[2].contains(" self-reported "), "{table}");
    }
}
