//! How a binary ends.

use std::process::ExitCode;

/// Exit code of a binary whose start-up can fail (settings, credentials, connections).
pub const START_FAILED: u8 = 2;

/// The run's own exit code once it started; a start-up error is printed to stderr with its
/// causes (`{:#}`) and exits with [`START_FAILED`].
pub fn exit_code<E: std::fmt::Display>(started: Result<ExitCode, E>) -> ExitCode {
    started.unwrap_or_else(|e| {
        eprintln!("{e:#}");
        ExitCode::from(START_FAILED)
    })
}
