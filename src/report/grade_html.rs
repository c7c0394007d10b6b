//! `fmtool grade --report DIR`: the class on one self-contained HTML page for the staff. It loads
//! nothing (a Content-Security-Policy forbids every fetch and every script; styles are inline and
//! the histogram is inline SVG), so it opens the same from a laptop, a shared drive or an email.
//! Every figure is also an attribute (`data-count`, `data-passed`, `data-points`, ...), so a test
//! reads the numbers a browser rendered and compares them with the JSON report.
//! Everything from a student's repository (folder names, messages quoting their code) is escaped.

use super::grade::{acc, points};
use crate::commands::grade::{GradeReport, GradeRow, Source};
use crate::grader::Status;
use std::collections::BTreeMap;
use std::fmt::Write;

/// The page names its writer, so that a later run knows the file is its own.
pub const GENERATOR: &str = r#"<meta name="generator" content="fmtool grade">"#;

/// How many of the most common findings the page lists.
const TOP_FINDINGS: usize = 15;

/// Text for HTML content and double-quoted attributes.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// What the page shows for a missing number.
const NONE: &str = "–";

fn status(s: Option<Status>) -> (&'static str, &'static str) {
    match s {
        Some(Status::Passed) => ("passed", "ok"),
        Some(Status::Failed) => ("failed", "failed"),
        Some(Status::NotRun) | None => ("not_run", "not run"),
    }
}

/// The histogram's bins: ten of equal width up to the largest maximum, and one for full marks.
/// Returns (width, counts).
pub fn histogram(r: &GradeReport) -> (u64, Vec<usize>) {
    let top = r.repos.iter().filter_map(|r| r.max.or(r.points)).max().unwrap_or(100).max(1);
    let width = top.div_ceil(10).max(1);
    let mut counts = vec![0; (top / width) as usize + 1];
    for p in r.repos.iter().filter_map(|r| r.points) {
        let i = ((p / width) as usize).min(counts.len() - 1);
        counts[i] += 1;
    }
    (width, counts)
}

/// Each workflow step: (name, max, repositories that ran it, repositories it passed in).
pub fn step_rates(r: &GradeReport) -> Vec<(String, u64, usize, usize)> {
    r.step_names
        .iter()
        .map(|name| {
            let cells: Vec<_> = r.repos.iter().filter_map(|row| row.steps.iter().find(|s| &s.name == name)).collect();
            let max = cells.iter().map(|c| c.max).max().unwrap_or(0);
            (name.clone(), max, cells.len(), cells.iter().filter(|c| c.passed).count())
        })
        .collect()
}

/// One kind of finding across the class: the first repository's wording of it, and who has it.
struct Common {
    code: String,
    kind: String,
    message: String,
    hint: Option<String>,
    /// Indexes into the report's rows.
    repos: Vec<usize>,
}

/// The findings by code, most repositories first.
fn common_findings(r: &GradeReport) -> Vec<Common> {
    let mut by_code: BTreeMap<&str, Common> = BTreeMap::new();
    for (i, row) in r.repos.iter().enumerate() {
        for a in &row.advice {
            let e = by_code.entry(&a.code).or_insert_with(|| Common {
                code: a.code.clone(),
                kind: a.kind.clone(),
                message: a.message.clone(),
                hint: a.hint.clone(),
                repos: vec![],
            });
            if e.repos.last() != Some(&i) {
                e.repos.push(i);
            }
        }
    }
    let mut v: Vec<Common> = by_code.into_values().collect();
    v.sort_by(|a, b| b.repos.len().cmp(&a.repos.len()).then_with(|| a.code.cmp(&b.code)));
    v.truncate(TOP_FINDINGS);
    v
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#1b1b1b}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc}h3{margin-bottom:.3em}
table{border-collapse:collapse}td,th{padding:.2em .6em;text-align:left;vertical-align:top;border-bottom:1px solid #eee}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.bar{display:inline-block;height:.8em;background:#3b7dd8}.barbg{display:inline-block;width:10em;background:#e4e4e4}
.passed{color:#17702f}.failed{color:#b3261e}.not_run{color:#7a5c00}
li.cause,li.error{border-left:4px solid #b3261e;padding-left:.5em}li.warning{border-left:4px solid #c98a00;padding-left:.5em}
ul.advice{list-style:none;padding-left:0}ul.advice li{margin:.4em 0}.hint{color:#444}.hint:before{content:'hint: ';font-weight:600}
code{font-size:.92em;background:#f3f3f3;padding:0 .2em}.err{color:#b3261e;font-weight:600}
.self-reported{color:#7a5c00;font-weight:600}
section.student{border-top:1px solid #ddd;padding-top:.3em}";

/// The whole page.
pub fn html(r: &GradeReport) -> String {
    let mut h = String::with_capacity(8192 + r.repos.len() * 2048);
    let graded: Vec<u64> = r.repos.iter().filter_map(|x| x.points).collect();
    let mean = if graded.is_empty() { 0.0 } else { graded.iter().sum::<u64>() as f64 / graded.len() as f64 };
    let self_reported = r.repos.iter().filter(|x| x.source == Source::SelfReported).count();
    let versions: Vec<String> = {
        let mut v: Vec<String> = r
            .repos
            .iter()
            .filter_map(|x| Some(format!("Python {} with NumPy {}", x.python.as_deref()?, x.numpy.as_deref()?)))
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n{GENERATOR}\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>fmtool grade: {} repositories</title>\n<style>{STYLE}</style></head>\n<body>\n\
         <h1>Class report</h1>\n<p id=\"summary\"><span id=\"repos\" data-value=\"{}\">{}</span> repositories, \
         mean <span id=\"mean\" data-value=\"{mean:.2}\">{mean:.1}</span> points; \
         <span id=\"ungraded\" data-value=\"{}\">{}</span> could not be graded; \
         <span id=\"cached\" data-value=\"{}\">{}</span> from the cache; \
         <span id=\"self-reported\" data-value=\"{self_reported}\">{self_reported}</span> self-reported{}. \
         Graded by fmtool {}{}.</p>\n",
        r.repos.len(),
        r.repos.len(),
        r.repos.len(),
        r.repos.len() - graded.len(),
        r.repos.len() - graded.len(),
        r.cached,
        r.cached,
        if self_reported > 0 {
            " (<span class=\"self-reported\">reports the students' own CI wrote, which a student can edit</span>)"
        } else {
            ""
        },
        esc(r.fmtool_version),
        if versions.is_empty() {
            String::new()
        } else {
            format!(", running the students' code in {}", esc(&versions.join("; ")))
        },
    );
    histogram_svg(&mut h, r);
    steps_table(&mut h, r);
    course_table(&mut h, r);
    findings_table(&mut h, r);
    class_table(&mut h, r);
    h.push_str("<h2>Students</h2>\n");
    for (i, row) in r.repos.iter().enumerate() {
        student(&mut h, i, row);
    }
    h.push_str("</body></html>\n");
    h
}

fn histogram_svg(h: &mut String, r: &GradeReport) {
    let (width, counts) = histogram(r);
    let most = counts.iter().copied().max().unwrap_or(0).max(1);
    let (bar, gap, tall) = (52, 8, 160);
    let w = counts.len() * (bar + gap) + gap;
    let _ = write!(
        h,
        "<h2>Points</h2>\n<svg id=\"histogram\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{}\" \
         role=\"img\" aria-label=\"how many repositories got how many points\" font-family=\"sans-serif\" font-size=\"12\">\n",
        tall + 44
    );
    for (i, &n) in counts.iter().enumerate() {
        let low = i as u64 * width;
        let high = if i + 1 == counts.len() { low } else { low + width - 1 };
        let label = if low == high { low.to_string() } else { format!("{low}–{high}") };
        let bh = n * tall / most;
        let x = gap + i * (bar + gap);
        let _ = writeln!(
            h,
            "<g class=\"bin\" data-low=\"{low}\" data-high=\"{high}\" data-count=\"{n}\">\
             <rect x=\"{x}\" y=\"{}\" width=\"{bar}\" height=\"{bh}\" fill=\"#3b7dd8\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{n}</text>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{label}</text></g>",
            tall + 16 - bh,
            x + bar / 2,
            tall + 12 - bh,
            x + bar / 2,
            tall + 34,
        );
    }
    h.push_str("</svg>\n");
}

fn steps_table(h: &mut String, r: &GradeReport) {
    h.push_str("<h2>Workflow steps</h2>\n");
    let rates = step_rates(r);
    if rates.is_empty() {
        h.push_str("<p>No repository had a workflow step.</p>\n");
        return;
    }
    h.push_str(
        "<table id=\"steps\"><tr><th>step</th><th class=\"n\">points</th><th class=\"n\">passed</th><th>pass rate</th></tr>\n",
    );
    for (name, max, ran, passed) in rates {
        let pct = if ran == 0 { 0.0 } else { 100.0 * passed as f64 / ran as f64 };
        let _ = writeln!(
            h,
            "<tr class=\"step\" data-step=\"{}\" data-ran=\"{ran}\" data-passed=\"{passed}\"><td>{}</td><td class=\"n\">{max}</td>\
             <td class=\"n\">{passed} of {ran}</td><td><span class=\"barbg\"><span class=\"bar\" style=\"width:{pct:.0}%\"></span></span> {pct:.0}%</td></tr>",
            esc(&name),
            esc(&name),
        );
    }
    h.push_str("</table>\n");
}

/// The course's own findings, once for the class (`GradeReport::course_wide`).
fn course_table(h: &mut String, r: &GradeReport) {
    h.push_str("<h2>Course-wide findings</h2>\n");
    if r.course_wide.is_empty() {
        h.push_str("<p>No finding in the course's workflow is shared by the class.</p>\n");
        return;
    }
    h.push_str(
        "<p>The course's workflow as these repositories have it, unchanged: its defects are the course's to fix, \
         so the students' sections leave them out.</p>\n<table id=\"course-wide\"><tr><th>finding</th><th>where</th>\
         <th class=\"n\">repositories</th><th>what</th></tr>\n",
    );
    for c in &r.course_wide {
        let _ = writeln!(
            h,
            "<tr class=\"course-wide\" data-code=\"{}\" data-place=\"{}\" data-repos=\"{}\"><td><code class=\"{}\">{}</code></td>\
             <td>{}</td><td class=\"n\">{}</td><td>{}{}</td></tr>",
            esc(&c.code),
            esc(&c.place),
            c.repos.len(),
            esc(&c.kind),
            esc(&c.code),
            esc(&c.place),
            c.repos.len(),
            esc(&c.message),
            c.hint.as_deref().map(|t| format!("<div class=\"hint\">{}</div>", esc(t))).unwrap_or_default(),
        );
    }
    h.push_str("</table>\n");
}

fn findings_table(h: &mut String, r: &GradeReport) {
    h.push_str("<h2>Most common findings</h2>\n");
    let common = common_findings(r);
    if common.is_empty() {
        h.push_str("<p>fmtool found nothing to tell any student.</p>\n");
        return;
    }
    h.push_str("<table id=\"findings\"><tr><th>finding</th><th class=\"n\">repositories</th><th>for example</th><th>who</th></tr>\n");
    for Common { code, kind, message, hint, repos } in common {
        let who: Vec<String> =
            repos.iter().map(|&i| format!("<a href=\"#r{i}\">{}</a>", esc(&r.repos[i].repo))).collect();
        let _ = writeln!(
            h,
            "<tr class=\"finding\" data-code=\"{}\" data-repos=\"{}\"><td><code class=\"{}\">{}</code></td><td class=\"n\">{}</td>\
             <td>{}{}</td><td>{}</td></tr>",
            esc(&code),
            repos.len(),
            esc(&kind),
            esc(&code),
            repos.len(),
            esc(&message),
            hint.map(|t| format!("<div class=\"hint\">{}</div>", esc(&t))).unwrap_or_default(),
            who.join(", ")
        );
    }
    h.push_str("</table>\n");
}

fn class_table(h: &mut String, r: &GradeReport) {
    h.push_str(
        "<h2>Class</h2>\n<table id=\"class\"><tr><th>repository</th><th class=\"n\">points</th><th class=\"n\">credit sheet</th>\
         <th class=\"n\">student accuracy</th><th class=\"n\">model accuracy</th><th>relu</th><th>softmax</th><th class=\"n\">check</th>\
         <th>source</th></tr>\n",
    );
    for (i, row) in r.repos.iter().enumerate() {
        let (rc, rt) = status(row.relu);
        let (sc, st) = status(row.softmax);
        let _ = writeln!(
            h,
            "<tr><td><a href=\"#r{i}\">{}</a></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"{rc}\">{rt}</td><td class=\"{sc}\">{st}</td><td class=\"n\">{} errors, {} warnings</td>\
             <td class=\"{source}\" data-source=\"{source}\">{source}</td></tr>",
            esc(&row.repo),
            points(row, NONE),
            row.credit_sheet.map(|p| p.to_string()).unwrap_or_else(|| NONE.into()),
            acc(row.student_accuracy, NONE),
            acc(row.model_accuracy, NONE),
            row.check_errors,
            row.check_warnings,
            source = row.source.as_str(),
        );
    }
    h.push_str("</table>\n");
}

fn student(h: &mut String, i: usize, row: &GradeRow) {
    let (rc, rt) = status(row.relu);
    let (sc, st) = status(row.softmax);
    let _ = write!(
        h,
        "<section class=\"student\" id=\"r{i}\" data-repo=\"{}\" data-source=\"{}\" data-points=\"{}\" data-max=\"{}\" data-credit-sheet=\"{}\">\n\
         <h3>{}</h3>\n<p><b>{}</b> points{}; credit sheet {}; the student's accuracy {}, the model's in fmtool {}; \
         relu <span class=\"{rc}\">{rt}</span>, softmax <span class=\"{sc}\">{st}</span>{}{}.</p>\n",
        esc(&row.repo),
        row.source.as_str(),
        row.points.map(|p| p.to_string()).unwrap_or_default(),
        row.max.map(|p| p.to_string()).unwrap_or_default(),
        row.credit_sheet.map(|p| p.to_string()).unwrap_or_default(),
        esc(&row.repo),
        points(row, NONE),
        if row.max.is_some() && !row.steps.is_empty() { " from its workflow" } else { "" },
        row.credit_sheet.map(|p| p.to_string()).unwrap_or_else(|| NONE.into()),
        acc(row.student_accuracy, NONE),
        acc(row.model_accuracy, NONE),
        row.commit
            .as_deref()
            .map(|c| format!("; commit <code>{}</code>", esc(&c.chars().take(12).collect::<String>())))
            .unwrap_or_default(),
        if row.cached { "; from the cache" } else { "" },
    );
    if row.source == Source::SelfReported {
        h.push_str(
            "<p class=\"self-reported\">Self-reported: these figures come from a report the student's own CI wrote \
             (<code>fmtool score --format json</code>), which the student could have edited; fmtool did not grade \
             this repository. Grade the repository itself before relying on them.</p>\n",
        );
    }
    if let Some(e) = &row.error {
        let _ = writeln!(h, "<p class=\"err\">Not graded in full: {}</p>", esc(e));
    }
    if !row.steps.is_empty() {
        h.push_str("<table class=\"steps\">");
        for s in &row.steps {
            let (c, t) = if s.passed { ("passed", "passed") } else { ("failed", "failed") };
            let _ = write!(
                h,
                "<tr data-step=\"{}\" data-passed=\"{}\"><td>{}</td><td class=\"{c}\">{t}</td><td class=\"n\">{}/{}</td><td>{}</td></tr>",
                esc(&s.name),
                s.passed,
                esc(&s.name),
                s.points,
                s.max,
                s.message.as_deref().map(esc).unwrap_or_default(),
            );
        }
        h.push_str("</table>\n");
    }
    integrity(h, row);
    if row.advice.is_empty() {
        h.push_str("<p>fmtool has nothing to tell this student.</p>\n");
    } else {
        h.push_str("<ul class=\"advice\">\n");
        for a in &row.advice {
            let _ = writeln!(
                h,
                "<li class=\"{}\" data-code=\"{}\"><code>{}</code> {}{}{}</li>",
                esc(&a.kind),
                esc(&a.code),
                esc(&a.code),
                a.place.as_deref().map(|p| format!("<i>{}</i>: ", esc(p))).unwrap_or_default(),
                esc(&a.message),
                a.hint.as_deref().map(|t| format!("<div class=\"hint\">{}</div>", esc(t))).unwrap_or_default(),
            );
        }
        h.push_str("</ul>\n");
    }
    h.push_str("</section>\n");
}

/// The student's departures from the course's rules, and the runs that measured them.
fn integrity(h: &mut String, row: &GradeRow) {
    if row.integrity.is_empty() && row.real_run.is_none() {
        return;
    }
    let _ = writeln!(
        h,
        "<div class=\"integrity\" data-departures=\"{}\" data-real-run=\"{}\" data-harness-points=\"{}\" data-course-files-points=\"{}\">",
        row.integrity.len(),
        esc(row.real_run.as_deref().unwrap_or("")),
        row.harness_points.map(|p| p.to_string()).unwrap_or_default(),
        row.course_files_points.map(|p| p.to_string()).unwrap_or_default(),
    );
    if let Some(why) = &row.real_run {
        let _ = writeln!(
            h,
            "<p>The workflow's commands ran as GitHub runs them ({}); the points are that run's{}.</p>",
            esc(why),
            row.harness_points.map(|p| format!(" (fmtool's harness alone gave {p})")).unwrap_or_default()
        );
    }
    if let Some(p) = row.course_files_points {
        let _ = writeln!(h, "<p>Under the course's own files the workflow awards <b>{p}</b> points.</p>");
    }
    if !row.integrity.is_empty() {
        h.push_str("<h4>Departures from the course's rules</h4>\n<ul class=\"advice\">\n");
        for d in &row.integrity {
            let details: String = d.details.iter().map(|x| format!("<div>{}</div>", esc(x))).collect();
            let _ = writeln!(
                h,
                "<li class=\"{}\" data-code=\"{}\" data-effect=\"{}\"><code>{}</code> <b>{}</b> <i>{}</i>: {}{details}</li>",
                if d.changes_the_grade() { "error" } else { "warning" },
                esc(&d.code),
                esc(&d.effect),
                esc(&d.code),
                esc(&d.effect),
                esc(&d.place),
                esc(&d.message),
            );
        }
        h.push_str("</ul>\n");
    }
    h.push_str("</div>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::grade::{Advice, StepCell};

    fn row(repo: &str, points: Option<u64>) -> GradeRow {
        let mut r: GradeRow = serde_json::from_value(serde_json::json!({
            "repo": repo, "commit": null, "points": points, "max": 100, "credit_sheet": points,
            "steps": [], "student_accuracy": null, "model_accuracy": null, "relu": null, "softmax": null,
            "check_errors": 0, "check_warnings": 0, "first_finding": null, "diagnosis": [], "cause": null,
            "error": null, "python": null, "numpy": null, "seconds": 0.0
        }))
        .unwrap();
        r.steps = vec![StepCell {
            name: "relu".into(),
            points: 10,
            max: 10,
            passed: points.is_some_and(|p| p >= 10),
            message: None,
        }];
        r
    }

    fn report(rows: Vec<GradeRow>) -> GradeReport {
        GradeReport {
            fmtool_version: "0",
            step_names: vec!["relu".into()],
            repos: rows,
            course_wide: vec![],
            cached: 0,
            seconds: 0.0,
        }
    }

    #[test]
    fn the_histogram_has_ten_bins_and_one_for_full_marks() {
        let r =
            report(vec![row("a", Some(0)), row("b", Some(9)), row("c", Some(95)), row("d", Some(100)), row("e", None)]);
        let (width, counts) = histogram(&r);
        assert_eq!(width, 10);
        assert_eq!(counts, vec![2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
    }

    #[test]
    fn step_rates_count_the_repositories_that_ran_each_step() {
        let r = report(vec![row("a", Some(0)), row("b", Some(50)), row("c", Some(100))]);
        assert_eq!(step_rates(&r), vec![("relu".to_string(), 10, 3, 2)]);
    }

    #[test]
    fn what_a_student_wrote_is_escaped() {
        let mut evil = row("<script>alert(1)</script>", Some(10));
        evil.advice.push(Advice {
            kind: "error".into(),
            code: "x\"onmouseover=\"y".into(),
            place: Some("model/<b>".into()),
            message: "name '</section><img src=x>'".into(),
            hint: Some("&".into()),
        });
        let page = html(&report(vec![evil]));
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains("<img"));
        assert!(!page.contains("\"onmouseover"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("default-src 'none'"));
    }

    /// A row read from a student's own report is marked on the page, in the class table and in
    /// its section; a row fmtool graded says "graded".
    #[test]
    fn a_self_reported_row_is_marked() {
        let mut bob = row("bob.json", Some(100));
        bob.source = Source::SelfReported;
        let page = html(&report(vec![row("alice", Some(50)), bob]));
        assert!(page.contains("<td class=\"graded\" data-source=\"graded\">graded</td>"), "{page}");
        assert!(page.contains("<td class=\"self-reported\" data-source=\"self-reported\">self-reported</td>"));
        assert!(page.contains("id=\"r1\" data-repo=\"bob.json\" data-source=\"self-reported\""));
        assert!(page.contains("id=\"r0\" data-repo=\"alice\" data-source=\"graded\""));
        assert_eq!(page.matches("<p class=\"self-reported\">Self-reported").count(), 1);
        assert!(page.contains("<span id=\"self-reported\" data-value=\"1\">"));
    }

    /// The course's findings are one table of their own, each with how many repositories it
    /// affects.
    #[test]
    fn course_wide_findings_are_stated_once() {
        let mut r = report(vec![row("a", Some(79)), row("b", Some(79))]);
        let page = html(&r);
        assert!(page.contains("No finding in the course's workflow is shared by the class."));
        r.course_wide.push(crate::commands::grade::CourseFinding {
            kind: "warning".into(),
            code: "workflow-command-not-found".into(),
            place: ".github/workflows/classroom.yml:34".into(),
            message: "step \"softmax()\" runs `model_test.py::test_softmax`".into(),
            hint: Some("write `command: pytest model_test.py::test_softmax`".into()),
            repos: vec!["a".into(), "b".into()],
        });
        let page = html(&r);
        assert_eq!(page.matches("<tr class=\"course-wide\"").count(), 1, "{page}");
        assert!(page.contains(
            "<tr class=\"course-wide\" data-code=\"workflow-command-not-found\" data-place=\".github/workflows/classroom.yml:34\" data-repos=\"2\">"
        ));
    }

    #[test]
    fn departures_show_their_effect_and_the_runs_that_measured_them() {
        let mut r = row("alice", Some(90));
        r.integrity.push(crate::commands::grade::IntegrityCell {
            code: "pytest-config".into(),
            effect: "changes the grade".into(),
            place: "pytest.ini:2".into(),
            message: "pytest adds `--co <i>` to every command".into(),
            details: vec!["step \"relu()\": 0 became 10".into()],
        });
        r.real_run = Some("the repository departs from the course's rules".into());
        r.harness_points = Some(79);
        let page = html(&report(vec![r, row("bob", Some(79))]));
        assert!(page.contains("data-departures=\"1\""), "{page}");
        assert!(page.contains("data-harness-points=\"79\""), "{page}");
        assert!(page.contains("data-effect=\"changes the grade\""), "{page}");
        assert!(page.contains("--co &lt;i&gt;"), "{page}");
        assert!(page.contains("fmtool's harness alone gave 79"), "{page}");
        // A repository without departures or a real run has no such part.
        assert_eq!(page.matches("class=\"integrity\"").count(), 1, "{page}");
    }

    #[test]
    fn common_findings_count_each_repository_once_most_first() {
        let a = |code: &str| Advice {
            kind: "error".into(),
            code: code.into(),
            place: None,
            message: "m".into(),
            hint: None,
        };
        let mut x = row("x", Some(1));
        x.advice = vec![a("one"), a("two"), a("two")];
        let mut y = row("y", Some(1));
        y.advice = vec![a("two")];
        let c = common_findings(&report(vec![x, y]));
        let got: Vec<(&str, usize)> = c.iter().map(|f| (f.code.as_str(), f.repos.len())).collect();
        assert_eq!(got, vec![("two", 2), ("one", 1)]);
    }
}
