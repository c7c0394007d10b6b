//! The fmtool binary: parse the command line, run the library, map the outcome to an exit code.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = fmtool::cli::Cli::parse();
    // Process-wide allocator policy, set once here rather than by a library function that tests
    // call from many threads.
    fmtool::engine::keep_freed_memory();
    let status = fmtool::run(cli, &mut std::io::stdout().lock(), &mut std::io::stderr().lock());
    ExitCode::from(status.code())
}
