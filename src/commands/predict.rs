//! `fmtool predict`: the model's outputs for every test image as a .npy file, or the class of one picture.

use crate::cli::PredictArgs;
use crate::err;
use crate::error::Result;
use crate::report::Human;
use std::io::{self, Write};

#[derive(Debug, serde::Serialize)]
pub struct PredictReport {}

pub fn run(_args: &PredictArgs) -> Result<PredictReport> {
    Err(err!("predict is not implemented yet"))
}

impl Human for PredictReport {
    fn human(&self, _w: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
}
