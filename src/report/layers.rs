//! `fmtool layers`: the table of supported layers and activations.

use super::Human;
use crate::commands::layers::LayersReport;
use crate::layers::{Classic, Family};
use std::io::{self, Write};

impl Human for LayersReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        writeln!(
            w,
            "Layers fmtool runs ({}). Course template: runs = the template computes it; skips = it is silently skipped",
            self.layers.len()
        )?;
        writeln!(w, "(harmless: same result; CHANGES RESULT: the graded model differs from the trained one).")?;
        let mut families: Vec<Family> = Vec::new();
        for l in &self.layers {
            if !families.contains(&l.family) {
                families.push(l.family);
            }
        }
        for f in families {
            writeln!(w, "\n{}:", f.title())?;
            for l in self.layers.iter().filter(|l| l.family == f) {
                let t = match l.course_template {
                    Classic::Runs => "runs",
                    Classic::SkipsHarmlessly => "skips (harmless)",
                    Classic::SkipsChangingResult => "skips (CHANGES RESULT)",
                };
                let weights = if l.weights.is_empty() { String::new() } else { format!("weights: {}", l.weights) };
                writeln!(w, "  {:<26} {:<24} {}", l.class_name, t, weights)?;
            }
        }
        writeln!(w, "\nActivations ({}):", self.activations.len())?;
        for a in &self.activations {
            let alias = if a.aliases.is_empty() { String::new() } else { format!(" (also {})", a.aliases.join(", ")) };
            let t = if a.course_template { "course template: runs" } else { "course template: ignored" };
            writeln!(w, "  {:<26} {}{}", a.name, t, alias)?;
        }
        Ok(())
    }
}
