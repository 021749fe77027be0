//! `analytics`: parse settings, start telemetry and the admin server, run the pipeline
//! until SIGINT/SIGTERM (exit 0 after draining), or print a report.
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use analytics::settings::{Cli, Command};
use analytics::store::Store;
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    platform::telemetry::init();
    let cli = Cli::parse();
    let Some(project) = cli.firestore.project.clone() else {
        eprintln!("no Firestore project: set GCLOUD_PROJECT (and FIRESTORE_EMULATOR_HOST for the emulator)");
        return ExitCode::from(2);
    };
    let store =
        match Store::connect(&project, Duration::from_secs(cli.firestore.timeout_seconds)).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("cannot connect to Firestore: {e}");
                return ExitCode::from(2);
            }
        };
    match cli.command.unwrap_or(Command::Run) {
        Command::Report { day, top } => match analytics::report::report(&store, day, top).await {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("report failed: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Run => run(cli.run, store).await,
    }
}

async fn run(args: analytics::settings::RunArgs, store: Store) -> ExitCode {
    let config = match args.pipeline_config() {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("invalid settings:\n  - {}", errors.join("\n  - "));
            return ExitCode::from(2);
        }
    };
    let kafka = match args.kafka.clone().require() {
        Ok(k) => k,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let shutdown = match platform::shutdown::on_signal() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot install signal handlers: {e}");
            return ExitCode::from(2);
        }
    };
    let metrics = Arc::new(analytics::metrics::Metrics::default());
    let admin = tokio::spawn(analytics::admin::serve(
        args.admin_addr,
        metrics.clone(),
        shutdown.clone(),
    ));
    let result =
        analytics::pipeline::run(config, kafka, store, metrics.clone(), shutdown.clone()).await;
    shutdown.cancel();
    let _ = admin.await;
    eprintln!(
        "analytics: {} events counted, {} duplicates skipped, {} dead-lettered, {} flushes, {} Firestore writes",
        metrics.counted_total(),
        metrics.duplicates(),
        metrics.dead_lettered_total(),
        metrics.flushes.load(std::sync::atomic::Ordering::Relaxed),
        metrics.firestore_writes.load(std::sync::atomic::Ordering::Relaxed)
    );
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("analytics stopped: {e:#}");
            ExitCode::FAILURE
        }
    }
}
