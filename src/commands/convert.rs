//! `fmtool convert`: a Keras .h5 / .keras file into the course's fashion_mnist.json + fashion_mnist.npz.

use crate::cli::ConvertArgs;
use crate::err;
use crate::error::Result;
use crate::report::Human;
use std::io::{self, Write};

#[derive(Debug, serde::Serialize)]
pub struct ConvertReport {}

pub fn run(_args: &ConvertArgs) -> Result<ConvertReport> {
    Err(err!("convert is not implemented yet"))
}

impl Human for ConvertReport {
    fn human(&self, _w: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
}
