//! The one error type of fmtool: a message a student can act on, and an optional hint.
//!
//! There is deliberately no blanket `From<std::io::Error>`: every I/O failure must say which file
//! it was about, so callers build the message with [`Error::io`] or [`Error::new`].

use std::fmt;
use std::path::Path;

/// An error that stops a command. `Display` prints the message only; the hint is printed by the
/// front end on its own line.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub message: String,
    pub hint: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(message: impl Into<String>) -> Self {
        Error { message: message.into(), hint: None }
    }

    /// An I/O failure on `path`, worded for a person ("cannot read model/x.npz: No such file").
    pub fn io(action: &str, path: &Path, err: &std::io::Error) -> Self {
        let reason = match err.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => err.to_string(),
        };
        Error::new(format!("cannot {action} {}: {reason}", path.display()))
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The message and its hint on one line, as a report's row shows an error.
    pub fn one_line(&self) -> String {
        match &self.hint {
            Some(h) => format!("{} (hint: {h})", self.message),
            None => self.message.clone(),
        }
    }

    /// Prefixes the message with where it happened: `"fashion_mnist.npz: " + message`.
    pub fn context(mut self, prefix: impl fmt::Display) -> Self {
        self.message = format!("{prefix}: {}", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Shorthand for `Error::new(format!(...))`.
#[macro_export]
macro_rules! err {
    ($($arg:tt)*) => {
        $crate::error::Error::new(format!($($arg)*))
    };
}
