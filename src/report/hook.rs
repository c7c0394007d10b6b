//! `fmtool hook install`'s report.

use super::Human;
use crate::commands::hook::HookReport;
use std::io::{self, Write};

impl Human for HookReport {
    fn human(&self, w: &mut dyn Write) -> io::Result<()> {
        let verb = if self.replaced { "replaced" } else { "installed" };
        writeln!(w, "{verb} {}", self.path)?;
        writeln!(
            w,
            "every commit that stages fashion_mnist.json/.npz/.h5 or a .keras file runs `fmtool check` on the staged files"
        )?;
        if let Some(x) = self.min_accuracy {
            writeln!(w, "and `fmtool score --min-accuracy {x}` on their model directory")?;
        }
        if !self.on_path {
            let fb = self.fallback.as_deref().unwrap_or("nothing");
            writeln!(
                w,
                "note: fmtool is not on PATH; the hook will use {fb}. Install fmtool (cargo install --path <fmtool checkout>) so the hook keeps working if that file moves"
            )?;
        }
        Ok(())
    }
}
