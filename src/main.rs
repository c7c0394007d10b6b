//! The fmtool binary: parse the command line, run the library, map the outcome to an exit code.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = fmtool::cli::Cli::parse();
    let status = fmtool::run(cli, &mut std::io::stdout().lock(), &mut std::io::stderr().lock());
    ExitCode::from(status.code())
}
