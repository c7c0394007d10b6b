//! `fmtool score` as a user runs it.
