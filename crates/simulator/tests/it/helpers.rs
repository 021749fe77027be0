//! Settings for test runs.
use chrono::{DateTime, Utc};
use clap::Parser;
use simulator::settings::{Cli, Settings};

pub fn epoch() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
        .expect("valid")
        .with_timezone(&Utc)
}

/// Settings as the binary would parse them from `args` (no Kafka flags needed).
pub fn settings(args: &[&str]) -> Settings {
    let mut argv = vec!["simulator"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv)
        .expect("valid flags")
        .settings(epoch(), 1234)
        .expect("valid settings")
}
