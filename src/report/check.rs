//! The human rendering of `fmtool check`, in the style of compilers and check-jsonschema:
//! `model/fashion_mnist.json::$[3].weights[0]: error[missing-weight]: ...` and a hint line.

use super::Human;
use crate::checks::Severity;
use crate::commands::check::CheckReport;
use std::io::{self, Write};

impl Human for CheckReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        for f in &self.findings {
            let mut place = f.location.file.clone();
            if let Some(p) = &f.location.pointer {
                place.push_str(&format!("::{p}"));
            }
            if let Some(k) = &f.location.key {
                place.push_str(&format!("::{k}"));
            }
            let sev = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            let layer = f.location.layer.as_deref().map(|l| format!(" (layer {l})")).unwrap_or_default();
            writeln!(w, "{place}: {sev}[{}]: {}{layer}", f.code, f.message)?;
            if let Some(h) = &f.hint {
                writeln!(w, "    hint: {h}")?;
            }
        }
        let plural = |n: usize, s: &str| if n == 1 { format!("1 {s}") } else { format!("{n} {s}s") };
        if self.findings.is_empty() {
            writeln!(w, "{}: no problems found", self.files.join(", "))
        } else {
            writeln!(w, "{}, {}", plural(self.errors, "error"), plural(self.warnings, "warning"))
        }
    }
}
