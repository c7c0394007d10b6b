//! Developer tasks for fmtool: `cargo xtask test | fixtures | check-fixtures | student-fixtures | train | bench | measure`. Python work runs in a venv that
//! these tasks create themselves (`.venv/` at the repo root, ignored by git), with pinned versions.

mod measure;
mod python;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("fixtures") => python::run_script("xtask/py/make_fixtures.py", &args[1..]),
        Some("check-fixtures") => python::run_script("xtask/py/make_check_fixtures.py", &args[1..]),
        Some("student-fixtures") => python::run_script("xtask/py/make_student_repos.py", &args[1..]),
        Some("train") => python::run_script("xtask/py/train.py", &args[1..]),
        Some("bench") => python::run_script("xtask/py/bench.py", &args[1..]),
        Some("bench-student") => python::run_script("xtask/py/bench_student.py", &args[1..]),
        Some("test") => python::test(&args[1..]),
        Some("measure") => measure::run(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask <test|fixtures|train|bench> [args...]");
            eprintln!(
                "  test [cargo test args]  run the whole test suite (installs NumPy and pre-commit in .venv-test)"
            );
            eprintln!("  fixtures            regenerate tests/fixtures with real Keras (TensorFlow CPU in .venv)");
            eprintln!(
                "  check-fixtures      regenerate tests/fixtures/check (fmtool check's NumPy/Keras-written files)"
            );
            eprintln!(
                "  student-fixtures    regenerate tests/fixtures/student (student repos: course files, cases, measured points)"
            );
            eprintln!(
                "  train [--arch ensemble|cnn|mlp] [--towers R:S,...] [--epochs N] [--seed S]   train and export a shipped model (default: model/'s ensemble)"
            );
            eprintln!("  bench               measure fmtool score against NumPy and Keras, write BENCHMARKS.md");
            eprintln!(
                "  bench-student       the student's own pass: fmtool's parallel test_inference vs the grader's pytest step"
            );
            eprintln!("  measure --report FILE -- CMD...   wall time and peak memory of one command (used by bench)");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
