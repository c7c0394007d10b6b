//! One module per subcommand. Each computes and returns a value; none of them prints.

pub mod check;
pub mod convert;
pub mod hook;
pub mod layers;
pub mod predict;
pub mod score;
