//! The progress bar of long passes (`fmtool score`): drawn on stderr when stderr is a terminal,
//! nothing otherwise, so that logs and pipes never see carriage returns. Also the lines of other
//! long work (always on stderr) and the yes/no questions asked at a terminal.

use crate::commands::Progress;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A one-line bar, `[#####     ] 5000/10000 images`, redrawn in place.
pub struct Bar {
    total: AtomicUsize,
    tty: bool,
}

impl Bar {
    pub fn on_stderr() -> Bar {
        Bar { total: AtomicUsize::new(0), tty: std::io::stderr().is_terminal() }
    }
}

impl Progress for Bar {
    fn start(&self, total: usize) {
        self.total.store(total, Ordering::Relaxed);
    }

    fn update(&self, done: usize) {
        if self.tty {
            let total = self.total.load(Ordering::Relaxed);
            let width = 30;
            let filled = (done * width / total.max(1)).min(width);
            eprint!("\r[{}{}] {done}/{total} images", "#".repeat(filled), " ".repeat(width - filled));
        }
    }

    fn finish(&self) {
        if self.tty {
            eprint!("\r{}\r", " ".repeat(60));
        }
    }

    fn say(&self, line: &str) {
        eprintln!("{line}");
    }

    fn ask(&self, question: &str) -> bool {
        if !(self.tty && std::io::stdin().is_terminal()) || std::env::var_os("CI").is_some() {
            return false;
        }
        eprint!("{question} [y/N] ");
        let mut answer = String::new();
        if std::io::stdin().read_line(&mut answer).is_err() {
            return false;
        }
        matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
    }
}
