//! `simulator`: parse settings, start telemetry, run until done or signalled, print the
//! summary; exit 1 if any event was not delivered, 2 on bad configuration.
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use simulator::settings::Cli;
use simulator::sink::{Sink, Stats};

#[tokio::main]
async fn main() -> ExitCode {
    platform::telemetry::init();
    let cli = Cli::parse();
    let settings = match cli.settings(chrono::Utc::now(), rand::random()) {
        Ok(s) => s,
        Err(errors) => {
            eprintln!("invalid settings:\n  - {}", errors.join("\n  - "));
            return ExitCode::from(2);
        }
    };
    let stats = Arc::new(Stats::default());
    let sink = if cli.dry_run {
        Sink::stdout()
    } else {
        let kafka = match cli.kafka.clone().require() {
            Ok(k) => k,
            Err(message) => {
                eprintln!("{message}");
                return ExitCode::from(2);
            }
        };
        match Sink::kafka(&kafka, &settings.topic, stats.clone()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("cannot create the Kafka producer: {e}");
                return ExitCode::from(2);
            }
        }
    };
    let shutdown = match platform::shutdown::on_signal() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot install signal handlers: {e}");
            return ExitCode::from(2);
        }
    };
    tracing::info!(users = settings.users, rate = ?settings.rate, sessions = ?settings.sessions, clock = ?settings.clock, seed = settings.seed, "simulator starting");
    let summary = simulator::run::run(settings, Arc::new(sink), stats, shutdown).await;
    eprintln!("{summary}");
    if summary.all_delivered() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
