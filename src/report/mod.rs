//! Renders command results for people (`--format human`) or as one JSON object (`--format json`).
//! Every result type is `Serialize` (its JSON form) and [`Human`] (its text form).

use crate::Format;
use std::io::{self, Write};

/// The text rendering of a result.
pub trait Human {
    fn human(&self, w: &mut dyn Write) -> io::Result<()>;
}

/// Prints a result in the chosen format.
pub fn print<T: serde::Serialize + Human>(value: &T, format: Format, w: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Human => value.human(&mut crate::text::Escaping(w)),
        Format::Json => {
            serde_json::to_writer_pretty(&mut *w, value).map_err(io::Error::other)?;
            writeln!(w)
        }
    }
}

mod check;
mod convert;
pub mod grade;
pub mod grade_html;
mod hook;
mod layers;
mod predict;
pub mod progress;
mod score;
