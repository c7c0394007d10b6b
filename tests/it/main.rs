//! fmtool's one integration-test binary: CLI runs as a user sees them, and comparisons with
//! fixtures written by real Keras and read by real NumPy.

mod browser;
mod budget;
mod check;
mod common;
mod convert;
mod for_template;
mod fuzz_readers;
mod grade;
mod hook;
mod hostile_engine;
mod hostile_readers;
mod integrity;
// bubblewrap, /proc and the students' sandbox are Linux's.
#[cfg(target_os = "linux")]
mod hostile_students;
mod keras_fixtures;
mod lenient;
mod loaders;
mod numpy_crosscheck;
mod paths;
mod predict;
mod score;
mod setup;
mod snapshots;
mod student;
mod tidy;
