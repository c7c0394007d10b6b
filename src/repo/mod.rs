//! A student repository as the course's grader sees it: the workflow that awards the points
//! (`.github/workflows/*.yml`), the tests it runs (`model_test.py`), and a static lint of the
//! student's `nn_predict.py`. Pure: it reads files but never runs anything.

pub mod stdlib;
pub mod tests_py;
pub mod workflow;
pub mod yaml;
