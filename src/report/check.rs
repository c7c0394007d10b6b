//! The human rendering of `fmtool check`, in the style of compilers and check-jsonschema:
//! `model/fashion_mnist.json::$[3].weights[0]: error[missing-weight]: ...`, an indented `hint:`
//! line, and a summary line (`2 errors, 1 warning`).

use super::Human;
use crate::checks::Finding;
use crate::commands::check::{CheckReport, StudentCode};
use crate::layers::fmt_shape;
use std::io::{self, Write};

/// `file::$[3].weights[0]`, `file::npz_key`, `file:line`, or `file`.
fn place(f: &Finding) -> String {
    f.location.describe()
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

/// `101,770`.
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Human for CheckReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        for f in &self.findings {
            writeln!(w, "{}: {}[{}]: {}", place(f), f.severity.as_str(), f.code, f.message)?;
            if let Some(h) = &f.hint {
                writeln!(w, "    hint: {h}")?;
            }
        }
        if !self.findings.is_empty() {
            writeln!(w)?;
        }
        for m in &self.models {
            let mut parts = Vec::new();
            if m.layers > 0 {
                parts.push(plural(m.layers, "layer"));
            }
            if let (Some(i), Some(o)) = (&m.input, &m.output_shape) {
                parts.push(format!("{} → {}", fmt_shape(&i.shape), fmt_shape(o)));
            }
            if let Some(p) = m.parameters {
                parts.push(format!("{} parameters", thousands(p)));
            }
            if let (Some(f), Some(b)) = (m.flops, m.live_bytes) {
                parts.push(format!("{} and {} of outputs per image", crate::cost::gflop(f), crate::cost::mib(b)));
            }
            let files = if m.json == m.npz { m.json.clone() } else { format!("{} + {}", m.json, m.npz) };
            let keras = match &m.keras {
                Some(k) if *k != m.json => format!(" (compared with {k})"),
                _ => String::new(),
            };
            let parts = if parts.is_empty() { String::new() } else { format!(": {}", parts.join(", ")) };
            writeln!(w, "checked {files}{keras}{parts}")?;
        }
        for run in &self.student_code {
            writeln!(w, "{}", student_code_line(run))?;
        }
        if self.findings.is_empty() {
            writeln!(w, "no problems found")
        } else if self.notes > 0 {
            writeln!(
                w,
                "{}, {}, {}",
                plural(self.errors, "error"),
                plural(self.warnings, "warning"),
                plural(self.notes, "note")
            )
        } else {
            writeln!(w, "{}, {}", plural(self.errors, "error"), plural(self.warnings, "warning"))
        }
    }
}

/// `ran your nn_predict.py as the tests do (...): 8 test images classified in 0.4 s`, or why not.
fn student_code_line(run: &StudentCode) -> String {
    let repo = if run.repo == "." { String::new() } else { format!(" in {}", run.repo) };
    let Some(t) = &run.trial else {
        return format!("did not run your nn_predict.py{repo}: {}", run.note.as_deref().unwrap_or("unknown reason"));
    };
    let with = match (&run.python, &run.numpy, &run.isolation) {
        (Some(p), Some(n), Some(i)) => {
            let sandbox = if i == "bubblewrap" { "in the sandbox" } else { "without a sandbox" };
            format!(" ({p}, NumPy {n}, {sandbox})")
        }
        _ => String::new(),
    };
    let how = if t.passed() {
        format!("{} test images classified in {:.1} s", t.classified, t.seconds)
    } else {
        let why = t.failure.as_ref().map(|f| f.message.as_str()).unwrap_or("");
        format!("it failed: {}", crate::text::clip(why, 200))
    };
    let mut line = format!("ran your nn_predict.py{repo} as the tests do{with}: {how}");
    if let Some(note) = &run.note {
        line.push_str(&format!("\n    note: {note}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::{Code, Location};

    #[test]
    fn places_name_the_line_of_text_files() {
        let f =
            Finding::error(Code::WorkflowCommandNotFound, Location::line(".github/workflows/classroom.yml", 32), "m");
        assert_eq!(place(&f), ".github/workflows/classroom.yml:32");
        let f = Finding::error(Code::MissingFile, Location::file("model/fashion_mnist.json"), "m");
        assert_eq!(place(&f), "model/fashion_mnist.json");
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(7), "7");
        assert_eq!(thousands(101_770), "101,770");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
