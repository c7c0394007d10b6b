//! fmtool: convert, check and score Fashion-MNIST Keras models for the course's DNN-inference
//! assignment. `run` dispatches a parsed command line; commands compute values, `report` prints them.

pub mod atomic;
pub mod autograde;
pub mod checks;
pub mod cli;
pub mod commands;
pub mod dataset;
pub mod engine;
pub mod error;
pub mod fsguard;
pub mod grader;
pub mod keras;
pub mod layers;
pub mod model;
pub mod picture;
pub mod plot;
pub mod repo;
pub mod report;
pub mod student;
pub mod text;

pub use error::{Error, Result};

use cli::{Cli, Command, HookCommand};
use std::io::Write;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    /// Text for people.
    #[default]
    Human,
    /// One JSON object on stdout (see schemas/).
    Json,
}

/// The outcome of a command, mapped to the process exit code by `main`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: it ran and found nothing wrong.
    Success,
    /// 1: it ran and found problems (check errors, accuracy below --min-accuracy).
    Failure,
    /// 2: it could not run (missing file, unreadable model, bad arguments).
    Error,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Error => 2,
        }
    }
}

/// Runs one command, printing results to `out` and errors to `err`.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> ExitStatus {
    let printed = match cli.command {
        Command::Score(args) => commands::score::run(&args, &report::progress::Bar::on_stderr()).map(|r| {
            let status = r.status();
            (report::print(&r, args.format, out), status)
        }),
        Command::Predict(args) => {
            commands::predict::run(&args).map(|r| (report::print(&r, args.format, out), ExitStatus::Success))
        }
        Command::Convert(args) => {
            // Before any thread starts: an interrupted convert removes its temporary files and
            // new folders (convert starts no child process, which would inherit the signal mask).
            atomic::clean_up_on_signals();
            commands::convert::run(&args).map(|r| (report::print(&r, args.format, out), ExitStatus::Success))
        }
        Command::Check(args) => commands::check::run(&args).map(|r| {
            let status = r.status();
            (report::print(&r, args.format, out), status)
        }),
        Command::Layers(args) => Ok((report::print(&commands::layers::run(), args.format, out), ExitStatus::Success)),
        Command::Hook(HookCommand::Install(args)) => {
            commands::hook::install(&args).map(|r| (report::print(&r, Format::Human, out), ExitStatus::Success))
        }
    };
    match printed {
        Ok((Ok(()), status)) => status,
        // A closed pipe (`fmtool check m | head -1`) is not an error of its own, and it does not
        // hide the command's outcome: a check that found errors still exits 1.
        Ok((Err(e), status)) if e.kind() == std::io::ErrorKind::BrokenPipe => status,
        Ok((Err(e), _)) => {
            let _ = writeln!(err, "error: cannot write the output: {e}");
            ExitStatus::Error
        }
        Err(e) => {
            // Messages quote layer names and keys from the student's files: control characters
            // (terminal escapes) are escaped and the length bounded here, once for every command.
            let _ = writeln!(err, "error: {}", text::clip(&e.message, 4000));
            if let Some(h) = &e.hint {
                let _ = writeln!(err, "hint: {}", text::clip(h, 4000));
            }
            ExitStatus::Error
        }
    }
}
