//! One module per subcommand. Each computes and returns a value; none of them prints.

pub mod check;
pub mod convert;
pub mod grade;
pub mod hook;
pub mod layers;
pub mod predict;
pub mod score;

/// Where a long-running command says how far it has got, in images done of a total. Commands
/// only call it; `report::progress` draws it (on a terminal), and tests pass [`Silent`].
pub trait Progress: Sync {
    /// A new pass over `total` images starts.
    fn start(&self, total: usize);
    /// `done` images of the pass are done (called from worker threads, in any order).
    fn update(&self, done: usize);
    /// The pass is over.
    fn finish(&self);
    /// One line of what fmtool does besides a pass (making a Python environment), as it does it.
    fn say(&self, _line: &str) {}
    /// Asks the person at the terminal a yes/no question; `false` when there is nobody to ask
    /// (stdin or stderr is not a terminal, or under CI).
    fn ask(&self, _question: &str) -> bool {
        false
    }
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: usize) {}
    fn update(&self, _: usize) {}
    fn finish(&self) {}
}
