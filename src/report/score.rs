//! The human rendering of `fmtool score`.

use super::Human;
use crate::commands::score::ScoreReport;
use crate::grader::{Action, Grader};
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
                let mark = match (s.action, s.changes_result) {
                    (Action::Crashed, _) => "CRASHED",
                    (Action::Skipped, true) => "SKIPPED (changes the result)",
                    (Action::Skipped, false) => "skipped (harmless)",
                    (Action::Ran, true) => "ran, but not as trained",
                    (Action::Ran, false) => "ran",
                };
                writeln!(w, "  {:<24} {:<20} {:<28} {}", s.name, s.class_name, mark, s.detail)?;
            }
        }
        match &self.grade {
            Some(g) => grade_human(g, self.environment.as_ref(), w)?,
            None => {
                writeln!(w, "\npoints (credit sheet; fmtool's pass stands in for your nn_inference):")?;
                for i in &self.points_table.items {
                    write!(w, "  {} {:<34} {:>3} / {:<3}", mark(i.status), i.item, i.earned, i.max)?;
                    match (&i.status, &i.note) {
                        (crate::autograde::Status::NotRun, Some(n)) => writeln!(w, " {}", crate::text::clip(n, 200))?,
                        _ => writeln!(w)?,
                    }
                }
                writeln!(w, "  total{:>36} / {}", self.points, self.points_table.max)?;
            }
        }
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
        if self.show_timings {
            let t = &self.timings;
            writeln!(
                w,
                "timings: read model {:.4} s, read data {:.4} s, build {:.4} s, engine {:.4} s ({} images), the rest {:.4} s",
                t.read_model,
                t.read_data,
                t.build,
                t.engine,
                self.images,
                (self.seconds - t.read_model - t.read_data - t.build - t.engine).max(0.0)
            )?;
        }
        Ok(())
    }
}

fn mark(status: crate::autograde::Status) -> &'static str {
    match status {
        crate::autograde::Status::Passed => "ok ",
        crate::autograde::Status::Failed => "-- ",
        crate::autograde::Status::NotRun => "?? ",
    }
}

/// "What the grader will give you": the student's own code, step by step.
fn grade_human(
    g: &crate::autograde::RepoGrade,
    env: Option<&crate::venv::Environment>,
    w: &mut dyn Write,
) -> io::Result<()> {
    use crate::text::clip;
    writeln!(w, "\nwhat the grader will give you (your nn_predict.py and model_test.py in {}):", clip(&g.root, 200))?;
    match (&g.python, &g.not_run) {
        (Some(p), _) => {
            let place = if g.isolation == "bubblewrap" { "in a sandbox" } else { "without a sandbox" };
            writeln!(w, "  run {place} with Python {} and NumPy {} ({})", p.version, p.numpy, p.path.display())?
        }
        (None, Some(why)) => writeln!(w, "  {why}")?,
        (None, None) => {}
    }
    if let Some(env) = env {
        let how = if env.created {
            format!("made now with {} in {:.1} s", env.installer, env.seconds)
        } else {
            "made by an earlier --setup".to_string()
        };
        writeln!(
            w,
            "  in the Python environment fmtool keeps for your workflow ({how}; {}): Python {}, {}",
            env.dir.display(),
            env.python_version,
            env.versions()
        )?;
        for s in &env.skipped {
            writeln!(w, "    not installed from your workflow: {}", clip(s, 200))?;
        }
    }
    if let Some(run) = &g.inference {
        match run.accuracy {
            Some(a) => writeln!(
                w,
                "  your nn_inference: accuracy {a:.4}, in {:.1} s on {} worker(s) (one process, as the grader runs it: about {:.1} s)",
                run.seconds, run.workers, run.serial_seconds
            )?,
            None => writeln!(
                w,
                "  your nn_inference: no accuracy ({})",
                clip(run.error.as_deref().unwrap_or("failed"), 300)
            )?,
        }
    }
    if let Some(c) = &g.comparison {
        writeln!(
            w,
            "  compared with fmtool's engine: same class for {} / {} images, largest output difference {:.2e}{}",
            c.same_prediction,
            c.images,
            c.max_abs_diff,
            c.first_different.map(|i| format!(", first different: test image {i}")).unwrap_or_default()
        )?;
    }
    if let Some(wf) = &g.workflow {
        writeln!(w, "\n  points from {} (what the workflow awards):", clip(&wf.file, 200))?;
        for s in &wf.steps {
            writeln!(
                w,
                "    {} {:<28} {:>3} / {:<3} {}",
                mark(s.status),
                clip(&s.name, 28),
                s.points,
                s.max,
                clip(&s.command, 60)
            )?;
            if !s.passed || s.differs {
                writeln!(w, "         {}", clip(&s.message, 400))?;
            }
        }
        writeln!(w, "    total{:>31} / {}", wf.total, wf.max)?;
        if let Some(r) = &g.real_run {
            let harness = g.harness_points.filter(|h| *h != wf.total);
            writeln!(
                w,
                "    (each step's command run as GitHub runs it, sh -c with pytest, in {:.0} s: {}{})",
                r.seconds,
                r.reason,
                harness.map(|h| format!("; fmtool's harness alone gave {h}")).unwrap_or_default()
            )?;
        }
    }
    writeln!(w, "\n  points by the course's credit sheet (the repo's own tests, run as intended):")?;
    for r in &g.credit_sheet.rows {
        writeln!(w, "    {} {:<34} {:>3} / {:<3}", mark(r.status), r.item, r.points, r.max)?;
        if !r.passed && g.workflow.is_none() {
            writeln!(w, "         {}", clip(&r.message, 400))?;
        }
    }
    writeln!(w, "    total{:>37} / {}", g.credit_sheet.total, g.credit_sheet.max)?;
    if let Some(wf) = &g.workflow
        && wf.total != g.credit_sheet.total
    {
        writeln!(
            w,
            "  the workflow awards {} points, the credit sheet {}: see the steps marked -- above",
            wf.total, g.credit_sheet.total
        )?;
    }
    if let Some(c) = &g.course_files {
        writeln!(
            w,
            "  under the course's own files (model_test.py, utils/, the test set, the workflow as distributed): {} / {}",
            c.total, c.max
        )?;
    }
    if !g.integrity.is_empty() {
        writeln!(w, "\n  departures from the course's rules ({}):", g.integrity.len())?;
        for d in &g.integrity {
            writeln!(w, "    [{}] {}: {}", d.effect.as_str(), clip(&d.place(), 200), clip(&d.message, 400))?;
            for line in &d.details {
                writeln!(w, "        {}", clip(line, 300))?;
            }
            if let Some(h) = &d.hint {
                writeln!(w, "      fix: {}", clip(h, 300))?;
            }
        }
    }
    for d in &g.diagnosis {
        writeln!(w, "\n  likely cause: {}", clip(&d.message, 600))?;
        if let Some(h) = &d.hint {
            writeln!(w, "  fix: {}", clip(h, 400))?;
        }
    }
    Ok(())
}
