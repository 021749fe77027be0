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
    let cli = Cli::parse();
    let target = match cli
        .target
        .into_target()
        .context("cannot start the attack suite")
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e:#}");
            return ExitCode::from(2);
        }
    };
    let bound = attacker::run_bound(&target);
    let suite = Suite::prepare(target).await;
    let scenarios = cli.scenario.expand();
    let outcomes = match tokio::time::timeout(bound, suite.run(&scenarios)).await {
        Ok(o) => o,
        Err(_) => {
            eprintln!("the attack suite did not finish within {bound:?}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", outcome::table(&outcomes));
    if outcome::all_ok(&outcomes) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
