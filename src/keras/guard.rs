//! Runs a parser over untrusted bytes so that it can neither crash nor hang fmtool: on its own
//! thread, a panic turned into an error (and kept off stderr), and a time limit after which the
//! caller gets an error while the stuck thread is abandoned. `hdf5-reader` is third-party code
//! fed with whatever students upload; this is the last line of defence behind its own checks.

use crate::err;
use crate::error::Result;
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;
use std::sync::mpsc;
use std::time::Duration;

thread_local! {
    /// Set on guarded threads: their panics are reported as errors, not printed.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Installs, once, a panic hook that stays silent on guarded threads and defers to the previous
/// hook everywhere else (so other threads' panics still print).
fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info)
            }
        }));
    });
}

/// Runs `f` on a guarded thread. `what` names the input in messages; `limit` is the time after
/// which the caller gets an error.
pub fn run<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    install_hook();
    let (tx, rx) = mpsc::channel();
    let spawned =
        std::thread::Builder::new().name("fmtool-keras-reader".into()).stack_size(16 << 20).spawn(move || {
            QUIET.with(|q| q.set(true));
            let _ = tx.send(panic::catch_unwind(AssertUnwindSafe(f)));
        });
    if let Err(e) = spawned {
        return Err(err!("cannot start a thread to read {what}: {e}"));
    }
    match rx.recv_timeout(limit) {
        Ok(Ok(result)) => result,
        Ok(Err(_)) | Err(mpsc::RecvTimeoutError::Disconnected) => Err(corrupt(what)),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(err!(
            "{what} could not be read within {} s; its structure is probably corrupt (it loops)",
            limit.as_secs()
        )
        .with_hint("save the model again with model.save(\"fashion_mnist.h5\")")),
    }
}

fn corrupt(what: &str) -> crate::error::Error {
    err!("{what} is corrupt: its HDF5 structure could not be decoded")
        .with_hint("save the model again with model.save(\"fashion_mnist.h5\")")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_errors() {
        let e = run("x.h5", Duration::from_secs(10), || -> Result<()> { panic!("index out of bounds") }).unwrap_err();
        assert!(e.message.contains("x.h5 is corrupt"), "{}", e.message);
    }

    #[test]
    fn results_pass_through() {
        assert_eq!(run("x.h5", Duration::from_secs(10), || Ok(7)).unwrap(), 7);
        let e = run("x.h5", Duration::from_secs(10), || -> Result<()> { Err(err!("bad")) }).unwrap_err();
        assert_eq!(e.message, "bad");
    }

    #[test]
    fn a_reader_that_never_finishes_is_abandoned() {
        let e = run("x.h5", Duration::from_millis(50), || -> Result<()> {
            std::thread::sleep(Duration::from_secs(3));
            Ok(())
        })
        .unwrap_err();
        assert!(e.message.contains("could not be read within"), "{}", e.message);
    }
}
