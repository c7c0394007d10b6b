//! The human rendering of `fmtool convert`: a summary like Keras' `model.summary()`.

use super::Human;
use crate::commands::convert::ConvertReport;
use crate::layers::fmt_shape;
use std::io::{self, Write};

impl Human for ConvertReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        let layout = match self.layout {
            crate::keras::Layout::H5Keras2 => "Keras 2 .h5",
            crate::keras::Layout::H5Keras3 => "Keras 3 .h5",
            crate::keras::Layout::KerasZip => "Keras 3 .keras",
        };
        let version = self.keras_version.as_deref().map(|v| format!(", Keras {v}")).unwrap_or_default();
        writeln!(w, "converted {} ({layout}{version})", self.input)?;
        writeln!(w, "wrote {}", self.json)?;
        writeln!(w, "wrote {}\n", self.npz)?;
        writeln!(w, "{:<32} {:<22} {:<20} {:>10}", "Layer", "Type", "Output shape", "Params")?;
        writeln!(w, "{}", "-".repeat(87))?;
        for l in &self.layers {
            writeln!(w, "{:<32} {:<22} {:<20} {:>10}", l.name, l.class_name, fmt_shape(&l.output_shape), l.params)?;
        }
        writeln!(w, "{}", "-".repeat(87))?;
        writeln!(w, "Total params: {}", self.total_params)
    }
}
