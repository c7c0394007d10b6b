//! fmtool: convert, check and score Fashion-MNIST Keras models for the course's DNN-inference
//! assignment. `run` dispatches a parsed command line; commands compute values, `report` prints them.

pub mod atomic;
pub mod audit;
pub mod autograde;
pub mod checks;
pub mod cli;
pub mod commands;
pub mod cost;
pub mod dataset;
pub mod engine;
pub mod error;
pub mod fold;
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
pub mod venv;

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

/// `fmtool grade --csv/--json/--report`: a file that is there is replaced when an earlier `fmtool grade`
/// wrote it, else only with `--overwrite`; checked before any grading, for both files.
fn check_grade_files(args: &cli::GradeArgs) -> Result<()> {
    let ours = |p: &std::path::Path, csv: bool| {
        let Ok(bytes) = fsguard::read(p, 256 << 20) else { return false };
        if csv {
            bytes.starts_with(report::grade::CSV_FIRST.as_bytes())
        } else {
            serde_json::from_slice::<serde_json::Value>(&bytes).is_ok_and(|v| v.get("step_names").is_some())
        }
    };
    for (path, is_csv) in [(&args.csv, true), (&args.json, false)] {
        let Some(path) = path else { continue };
        if path.symlink_metadata().is_ok() && !args.overwrite && !ours(path, is_csv) {
            return Err(err!(
                "{} already exists and is not a file fmtool grade wrote; nothing was graded",
                path.display()
            )
            .with_hint("pass --overwrite to replace it, or choose another file"));
        }
        atomic::check_target(path, true)?;
    }
    if let Some(dir) = &args.report {
        let page = dir.join("index.html");
        let ours = fsguard::read(&page, 1 << 30).is_ok_and(|b| {
            b.windows(report::grade_html::GENERATOR.len()).any(|w| w == report::grade_html::GENERATOR.as_bytes())
        });
        if page.symlink_metadata().is_ok() && !args.overwrite && !ours {
            return Err(err!(
                "{} already exists and is not a page fmtool grade wrote; nothing was graded",
                page.display()
            )
            .with_hint("pass --overwrite to replace it, or choose another --report folder"));
        }
        if dir.exists() && !dir.is_dir() {
            return Err(err!("--report {}: not a folder", dir.display()));
        }
    }
    Ok(())
}

/// Writes `fmtool grade`'s --csv and --json files and --report page, each whole (through `atomic`).
fn write_grade_files(args: &cli::GradeArgs, r: &commands::grade::GradeReport) -> Result<()> {
    if let Some(path) = &args.csv {
        atomic::write_atomic(path, report::grade::csv(r).as_bytes(), true)?;
    }
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(r).map_err(|e| err!("cannot serialize the report: {e}"))?;
        atomic::write_atomic(path, &json, true)?;
    }
    if let Some(dir) = &args.report {
        atomic::write_together(dir, &[("index.html", report::grade_html::html(r).as_bytes())], true)?;
    }
    Ok(())
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
        Command::Grade(args) => check_grade_files(&args)
            .and_then(|()| commands::grade::run(&args, &report::progress::Bar::on_stderr()))
            .and_then(|r| write_grade_files(&args, &r).map(|()| r))
            .map(|r| {
                // 1 when fmtool stopped a student's code (a limit, the total time): the reports
                // are written, but those rows need a look.
                let status = if r.repos.iter().any(|row| row.stopped.is_some()) {
                    ExitStatus::Failure
                } else {
                    ExitStatus::Success
                };
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
