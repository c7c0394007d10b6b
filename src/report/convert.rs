//! The human rendering of `fmtool convert`: what was written, then a summary like Keras'
//! `model.summary()` (layer, type, output shape, parameters, total).

use super::Human;
use crate::commands::convert::ConvertReport;
use crate::layers::fmt_shape;
use std::io::{self, Write};

/// 1234567 -> "1,234,567", as Keras prints parameter counts.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The size of `params` float32 values, as Keras prints it: "397.54 KB".
fn size(params: usize) -> String {
    let bytes = params as f64 * 4.0;
    match bytes {
        b if b < 1024.0 => format!("{b} B"),
        b if b < 1024.0 * 1024.0 => format!("{:.2} KB", b / 1024.0),
        b => format!("{:.2} MB", b / (1024.0 * 1024.0)),
    }
}

impl Human for ConvertReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        let version = self.keras_version.as_deref().map(|v| format!(", written by Keras {v}")).unwrap_or_default();
        writeln!(w, "converted {} ({}{version})", self.input, self.layout.describe())?;
        writeln!(w, "wrote     {}", self.json)?;
        writeln!(w, "wrote     {}", self.npz)?;
        writeln!(w, "input     {} ({})", fmt_shape(&self.input_shape.shape), self.input_shape.source)?;
        if !self.inlined.is_empty() {
            writeln!(w, "inlined   the layers of nested model(s) {}", self.inlined.join(", "))?;
        }
        writeln!(w)?;
        let rows: Vec<[String; 3]> = self
            .layers
            .iter()
            .map(|l| [format!("{} ({})", l.name, l.class_name), fmt_shape(&l.output_shape), thousands(l.params)])
            .collect();
        let head = ["Layer (type)".to_string(), "Output Shape".to_string(), "Param #".to_string()];
        let width = |i: usize| rows.iter().chain([&head]).map(|r| r[i].chars().count()).max().unwrap_or(0);
        let (a, b, c) = (width(0).max(28), width(1).max(20), width(2).max(10));
        let rule = |ch: &str| ch.repeat(a + b + c + 6);
        writeln!(w, "{}", rule("─"))?;
        writeln!(w, " {:<a$}  {:<b$}  {:>c$}", head[0], head[1], head[2])?;
        writeln!(w, "{}", rule("═"))?;
        for r in &rows {
            writeln!(w, " {:<a$}  {:<b$}  {:>c$}", r[0], r[1], r[2])?;
        }
        writeln!(w, "{}", rule("─"))?;
        writeln!(w, " Total params: {} ({})", thousands(self.total_params), size(self.total_params))?;
        if let Some(t) = &self.for_template {
            writeln!(w, "\nrewritten for the course template (Flatten, then Dense with relu/softmax):")?;
            let width = t.steps.iter().map(|s| s.name.chars().count() + s.class_name.len() + 3).max().unwrap_or(0);
            for s in &t.steps {
                let layer = format!("{} ({})", crate::text::clip(&s.name, 60), s.class_name);
                writeln!(w, "  {layer:<width$}  {:<7} {}", s.action, s.detail)?;
            }
            writeln!(
                w,
                "over the {} test images, the rewritten model (float64, as the template computes) differs from the trained one (fmtool's engine) by at most {:.2e}; {}",
                t.images,
                t.max_abs_difference,
                match t.predictions_changed {
                    0 => "no prediction changed".to_string(),
                    1 => "1 prediction changed".to_string(),
                    n => format!("{n} predictions changed"),
                }
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_like_keras() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(101770), "101,770");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(size(101770), "397.54 KB");
        assert_eq!(size(10), "40 B");
    }
}
