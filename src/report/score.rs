//! The human rendering of `fmtool score`.

use super::Human;
use crate::cli::Grader;
use crate::commands::score::ScoreReport;
use std::io::{self, Write};

impl Human for ScoreReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        let grader = match self.grader {
            Grader::Full => "full (fmtool engine, float32, every layer)",
            Grader::Classic => "classic (the course template: float64, Flatten and Dense only)",
        };
        writeln!(w, "model:    {}", self.model)?;
        writeln!(w, "data:     {} ({} images)", self.data, self.images)?;
        writeln!(w, "grader:   {grader}")?;
        if let Some(input) = &self.input {
            writeln!(w, "input:    {}, {}", crate::layers::fmt_shape(&input.shape), input.source)?;
        }
        if let Some(p) = self.parameters {
            writeln!(w, "params:   {p}")?;
        }
        writeln!(w)?;
        if let Some(f) = &self.failure {
            writeln!(w, "THE MODEL DOES NOT RUN: {f}")?;
        }
        writeln!(w, "accuracy: {:.4} ({} / {} correct)", self.accuracy, self.correct, self.images)?;
        writeln!(w, "\nper class:")?;
        for c in &self.per_class {
            writeln!(w, "  {} {:<12} {:.3}  ({}/{})", c.label, c.name, c.accuracy, c.correct, c.total)?;
        }
        writeln!(w, "\nconfusion matrix (rows: true class, columns: predicted):")?;
        write!(w, "      ")?;
        for c in 0..10 {
            write!(w, "{c:>5}")?;
        }
        writeln!(w)?;
        for (t, row) in self.confusion.iter().enumerate() {
            write!(w, "  {t:>2}  ")?;
            for v in row {
                write!(w, "{v:>5}")?;
            }
            writeln!(w)?;
        }
        if !self.template_steps.is_empty() {
            writeln!(w, "\ncourse template, layer by layer:")?;
            for s in &self.template_steps {
                let mark = if s.action == "skipped" && s.changes_result {
                    "SKIPPED (changes the result)"
                } else if s.action == "skipped" {
                    "skipped (harmless)"
                } else if s.changes_result {
                    "ran, but not as trained"
                } else {
                    "ran"
                };
                writeln!(w, "  {:<24} {:<20} {:<28} {}", s.name, s.class_name, mark, s.detail)?;
            }
        }
        writeln!(w, "\npoints (autograder):")?;
        for i in &self.points_table.items {
            let mark = if i.passed { "ok " } else { "-- " };
            writeln!(w, "  {mark} {:<34} {:>3} / {:<3}", i.item, i.earned, i.max)?;
        }
        writeln!(w, "  total{:>36} / {}", self.points, self.points_table.max)?;
        for n in &self.notes {
            writeln!(w, "\nnote: {n}")?;
        }
        for p in &self.plots {
            writeln!(w, "wrote {p}")?;
        }
        if let Some(min) = self.min_accuracy
            && self.accuracy < min
        {
            writeln!(w, "\nFAILED: accuracy {:.4} is below --min-accuracy {min}", self.accuracy)?;
        }
        writeln!(w, "\nscored in {:.3} s", self.seconds)?;
        Ok(())
    }
}
