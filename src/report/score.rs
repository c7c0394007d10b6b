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
        match (&self.failure, self.accuracy) {
            (Some(_), _) | (None, None) => {
                writeln!(w, "THE MODEL DOES NOT RUN: {}", self.failure.as_deref().unwrap_or("no outputs"))?;
                writeln!(w, "accuracy: none (the grader computes no accuracy)")?;
                if let Some(acc) = self.model_accuracy {
                    writeln!(w, "the model itself (fmtool's engine): accuracy {acc:.4}, for information only")?;
                }
            }
            (None, Some(acc)) => {
                writeln!(w, "accuracy: {acc:.4} ({} / {} correct)", self.correct, self.images)?;
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
            }
        }
        if !self.template_steps.is_empty() {
            writeln!(w, "\ncourse template, layer by layer:")?;
            for s in &self.template_steps {
                let mark = if s.action == "crashed" {
                    "CRASHED"
                } else if s.action == "skipped" && s.changes_result {
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
        match (self.min_accuracy, self.accuracy) {
            (Some(min), Some(acc)) if acc < min => {
                writeln!(w, "\nFAILED: accuracy {acc:.4} is below --min-accuracy {min}")?;
            }
            (Some(min), None) => {
                writeln!(w, "\nFAILED: the model does not run, so no accuracy reaches --min-accuracy {min}")?
            }
            _ => {}
        }
        writeln!(w, "\nscored in {:.3} s", self.seconds)?;
        Ok(())
    }
}
