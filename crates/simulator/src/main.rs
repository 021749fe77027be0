//! `simulator`: parse settings, start telemetry, run until done or signalled, print the
//! summary; exit 1 if any event was not delivered, 2 if it cannot start.
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use clap::Parser;
use simulator::settings::Cli;
use simulator::sink::{Sink, Stats};

/// Rendering and encoding allocate per event, from many threads: mimalloc's thread-local
/// heaps serve that better than the system allocator (see `make bench-simulator`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    platform::telemetry::init();
    platform::exit::exit_code(start(Cli::parse()).await)
}

/// Start-up errors (settings, credentials, producer, signals) are returned; the run's own
/// outcome is the exit code.
async fn start(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = cli
        .settings(chrono::Utc::now(), rand::random())
        .map_err(|errors| anyhow!("invalid settings:\n  - {}", errors.join("\n  - ")))?;
    let stats = Arc::new(Stats::default());
    let sink = if cli.dry_run {
        Sink::stdout()
    } else {
        let kafka = cli.kafka.clone().require().map_err(anyhow::Error::msg)?;
        Sink::kafka(&kafka, &settings.topic, stats.clone())
            .context("cannot create the Kafka producer")?
    };
    let shutdown = platform::shutdown::on_signal().context("cannot install signal handlers")?;
    tracing::info!(users = settings.users, rate = ?settings.rate, sessions = ?settings.sessions, clock = ?settings.clock, seed = settings.seed, "simulator starting");
    let summary = simulator::run::run(settings, Arc::new(sink), stats, shutdown).await;
    eprintln!("{summary}");
    Ok(if summary.all_delivered() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
