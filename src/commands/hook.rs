//! `fmtool hook install`: writes a git pre-commit hook that runs `fmtool check`.

use crate::cli::HookInstallArgs;
use crate::err;
use crate::error::Result;
use crate::report::Human;
use std::io::{self, Write};

#[derive(Debug, serde::Serialize)]
pub struct HookReport {}

pub fn install(_args: &HookInstallArgs) -> Result<HookReport> {
    Err(err!("hook install is not implemented yet"))
}

impl Human for HookReport {
    fn human(&self, _w: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
}
