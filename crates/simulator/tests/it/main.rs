//! Simulator tests: reproducibility, and a bounded run
//! against the real cluster read back by an independent consumer.
mod cli;
mod helpers;
mod kafka;
mod reproducible;
