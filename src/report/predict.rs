//! The human rendering of `fmtool predict`: where the outputs went, or a picture's class with its
//! probabilities as text bars and a preview of what the model was shown.

use super::Human;
use crate::commands::predict::{ImageReport, OutputsReport, PredictReport};
use std::io::{self, Write};

impl Human for PredictReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        match self {
            PredictReport::Outputs(r) => r.human(w),
            PredictReport::Image(r) => r.human(w),
        }
    }
}

impl Human for OutputsReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        writeln!(w, "wrote {}: shape ({}, {}), {}", self.path, self.shape[0], self.shape[1], self.dtype)?;
        writeln!(w, "model:    {}", self.model)?;
        writeln!(w, "data:     {} ({} images)", self.data, self.images)?;
        writeln!(
            w,
            "accuracy: {:.4} ({} / {} correct, argmax of each row against the labels)",
            self.accuracy, self.correct, self.images
        )?;
        for n in &self.notes {
            writeln!(w, "note: {n}")?;
        }
        writeln!(w, "read it with: numpy.load({:?})", self.path)?;
        writeln!(w, "predicted in {:.3} s", self.seconds)
    }
}

/// Width of the longest probability bar.
const BAR: usize = 30;

impl Human for ImageReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        let p = &self.picture;
        writeln!(w, "picture:  {} ({}, {}x{}, {})", self.image, p.format, p.width, p.height, p.colour)?;
        for s in &p.steps {
            writeln!(w, "          {s}")?;
        }
        writeln!(w, "model:    {}", self.model)?;
        writeln!(w, "\nwhat the model sees (28x28, two rows per line):")?;
        for line in preview(&self.input) {
            writeln!(w, "  |{line}|")?;
        }
        writeln!(w, "\nclass:    {} {} (probability {:.4})\n", self.class, self.class_name, self.probability)?;
        for c in &self.probabilities {
            let n = (c.probability * BAR as f64).round() as usize;
            writeln!(w, "  {} {:<12} {:.4} {}", c.label, c.name, c.probability, "#".repeat(n.min(BAR)))?;
        }
        for n in &self.notes {
            writeln!(w, "\nnote: {n}")?;
        }
        Ok(())
    }
}

/// The 28x28 input as 14 lines of 28 characters, each character the mean of two pixels stacked
/// (terminal cells are about twice as tall as wide), darkest to lightest.
fn preview(pixels: &[u8]) -> Vec<String> {
    const RAMP: &[u8] = b" .:-=+*#%@";
    let side = crate::picture::SIDE;
    (0..side / 2)
        .map(|r| {
            (0..side)
                .map(|x| {
                    let v = (pixels[2 * r * side + x] as usize + pixels[(2 * r + 1) * side + x] as usize) / 2;
                    RAMP[v * RAMP.len() / 256] as char
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_maps_black_to_space_and_white_to_at() {
        let mut px = vec![0u8; 784];
        px[..28].fill(255);
        px[28..56].fill(255);
        let lines = preview(&px);
        assert_eq!(lines.len(), 14);
        assert_eq!(lines[0], "@".repeat(28));
        assert_eq!(lines[1], " ".repeat(28));
    }
}
