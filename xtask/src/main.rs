//! Developer tasks for fmtool: `cargo xtask test | lint-py | wheel | wheel-check | sweep | fixtures | check-fixtures | student-fixtures | hostile-fixtures | integrity-fixtures | path-fixtures | loader-fixtures | train | bench | measure`. Python work runs in a venv that
//! these tasks create themselves (`.venv/` at the repo root, ignored by git), with pinned versions.

mod bubblewrap;
mod chromium;
mod measure;
mod python;
mod wheel;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("fixtures") => python::run_script("xtask/py/make_fixtures.py", &args[1..]),
        Some("check-fixtures") => python::run_script("xtask/py/make_check_fixtures.py", &args[1..]),
        Some("template-fixtures") => python::run_script("xtask/py/make_template_fixtures.py", &args[1..]),
        Some("student-fixtures") => python::run_script("xtask/py/make_student_repos.py", &args[1..]),
        // Standard library only: .venv-test's small Python, not the TensorFlow venv.
        Some("hostile-fixtures") => python::run_test_script("xtask/py/make_hostile_repos.py", &args[1..]),
        // NumPy only: .venv-test's Python.
        Some("integrity-fixtures") => python::run_test_script("xtask/py/make_integrity_repos.py", &args[1..]),
        // Standard library only: .venv-test's Python.
        Some("path-fixtures") => python::run_test_script("xtask/py/make_path_repos.py", &args[1..]),
        Some("loader-fixtures") => python::run_script("xtask/py/make_loader_repos.py", &args[1..]),
        Some("train") => python::run_script("xtask/py/train.py", &args[1..]),
        Some("bench") => python::run_script("xtask/py/bench.py", &args[1..]),
        Some("bench-student") => python::run_script("xtask/py/bench_student.py", &args[1..]),
        Some("bench-check") => python::run_script("xtask/py/bench_check.py", &args[1..]),
        Some("bench-grade") => python::run_script("xtask/py/bench_grade.py", &args[1..]),
        Some("test") => python::test(&args[1..]),
        Some("wheel") => wheel::build().map(|_| ()),
        Some("wheel-check") => python::run_test_script("xtask/py/wheel_check.py", &args[1..]),
        Some("lint-py") => python::lint_py(),
        Some("measure") => measure::run(&args[1..]),
        Some("fuzz") => fuzz(&args[1..]),
        Some("sweep") => python::test(&[
            "--test".into(),
            "it".into(),
            "--".into(),
            "--ignored".into(),
            "--exact".into(),
            "convert::corrupt_files_never_crash_or_hang".into(),
            "--nocapture".into(),
        ]),
        _ => {
            eprintln!("usage: cargo xtask <test|lint-py|fixtures|train|bench> [args...]");
            eprintln!(
                "  test [cargo test args]  run the whole test suite (installs NumPy and pre-commit in .venv-test)"
            );
            eprintln!(
                "  lint-py             ruff check and ruff format --check over the repo's Python (ruff in .venv-test)"
            );
            eprintln!("  fixtures            regenerate tests/fixtures with real Keras (TensorFlow CPU in .venv)");
            eprintln!(
                "  check-fixtures      regenerate tests/fixtures/check (fmtool check's NumPy/Keras-written files)"
            );
            eprintln!(
                "  template-fixtures   regenerate tests/fixtures/for_template (convert --for-template's models, real Keras)"
            );
            eprintln!(
                "  student-fixtures    regenerate tests/fixtures/student (student repos: course files, cases, measured points)"
            );
            eprintln!(
                "  hostile-fixtures    regenerate tests/fixtures/hostile (adversarial student repos: attack code on the correct case)"
            );
            eprintln!(
                "  integrity-fixtures  regenerate tests/fixtures/integrity (repos that depart from the course's rules or game the grader)"
            );
            eprintln!(
                "  path-fixtures       regenerate tests/fixtures/paths (repos whose model_test.py or nn_predict.py opens a path of the student's computer)"
            );
            eprintln!(
                "  loader-fixtures     regenerate tests/fixtures/loaders (repos whose nn_predict.py reads other JSON layouts, or imports TensorFlow; needs .venv's Keras)"
            );
            eprintln!(
                "  train [--arch distilled|ensemble|cnn|mlp] [--views K] [--towers R:S,...] [--epochs N] [--seed S]   train and export a shipped model (default: model/'s distilled CNN, taught by model/ensemble/)"
            );
            eprintln!(
                "  bench               measure fmtool score against ONNX Runtime, NumPy and Keras, write BENCHMARKS.md"
            );
            eprintln!(
                "  bench-student       the student's own pass: fmtool's parallel test_inference vs the grader's pytest step"
            );
            eprintln!(
                "  bench-check         fmtool check on crafted large models (20,000 layers; 3,000 missing weights)"
            );
            eprintln!(
                "  sweep               the exhaustive corruption sweep: every fixture model truncated, bit-flipped and zero-filled at 40 positions"
            );
            eprintln!(
                "  bench-grade         a class of 30 student repos: fmtool grade vs every workflow run one repo after another"
            );
            eprintln!("  wheel               build the fmtool wheel (maturin + zig, manylinux2014) into target/wheels");
            eprintln!(
                "  wheel-check [--bench] install the wheel into a fresh venv and run it there (version, score, the notebook commands)"
            );
            eprintln!("  measure --report FILE -- CMD...   wall time and peak memory of one command (used by bench)");
            eprintln!(
                "  fuzz --minutes N    run the readers' property tests (tests/it/fuzz_readers.rs) for N minutes each"
            );
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

/// `fuzz --minutes N [--seed S]`: the suite's reader property tests, each given N minutes
/// instead of a fraction of a second, in release mode.
fn fuzz(args: &[String]) -> Result<(), String> {
    let mut minutes = 1.0f64;
    let mut seed = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--minutes" => minutes = it.next().and_then(|m| m.parse().ok()).ok_or("--minutes takes a number")?,
            "--seed" => seed = Some(it.next().ok_or("--seed takes a number")?.clone()),
            other => return Err(format!("unknown fuzz argument {other:?}")),
        }
    }
    let mut cmd = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(["test", "--release", "--test", "it", "fuzz_readers::", "--", "--nocapture", "--test-threads=1"]);
    cmd.env("FMTOOL_FUZZ_SECONDS", (minutes * 60.0).to_string());
    if let Some(s) = seed {
        cmd.env("FMTOOL_FUZZ_SEED", s);
    }
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err("a reader failed under fuzzing (see the test output for the seed)".into())
    }
}
