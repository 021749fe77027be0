//! Simulator tests: session invariants (property tests), reproducibility, and a bounded run
//! against the real cluster read back by an independent consumer.
mod cli;
mod helpers;
mod invariants;
mod kafka;
mod reproducible;
