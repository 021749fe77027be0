//! `attacker <scenario>|all`: run the attacks, print the verdict table, exit 0 only if every
//! attack was rejected and every control passed (1 otherwise, 2 if it cannot start).
use std::process::ExitCode;

use anyhow::Context;
use attacker::settings::Cli;
use attacker::{outcome, Suite};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    platform::telemetry::init();
    platform::exit::exit_code(start(Cli::parse()).await)
}

/// A target that cannot be reached or described is a start-up error; the verdicts are the
/// exit code.
async fn start(cli: Cli) -> anyhow::Result<ExitCode> {
    let target = cli
        .target
        .into_target()
        .context("cannot start the attack suite")?;
    let bound = attacker::run_bound(&target);
    let suite = Suite::prepare(target).await;
    let scenarios = cli.scenario.expand();
    let Ok(outcomes) = tokio::time::timeout(bound, suite.run(&scenarios)).await else {
        eprintln!("the attack suite did not finish within {bound:?}");
        return Ok(ExitCode::FAILURE);
    };
    print!("{}", outcome::table(&outcomes));
    Ok(if outcome::all_ok(&outcomes) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
