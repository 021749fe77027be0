//! `analytics`: parse settings, start telemetry and the admin server, run the pipeline
//! until SIGINT/SIGTERM (exit 0 after draining), or print a report. Exit 2 if it cannot
//! start, 1 if it stops on an error.
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use analytics::settings::{Cli, Command, RunArgs};
use anyhow::{anyhow, Context};
use clap::Parser;
use store::Store;

/// Decoding and aggregating allocate per event, on several threads (see the simulator).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    platform::telemetry::init();
    platform::exit::exit_code(start(Cli::parse()).await)
}

/// Start-up errors are returned; what happens after start is the exit code.
async fn start(cli: Cli) -> anyhow::Result<ExitCode> {
    let store = cli.firestore.connect().await?;
    match cli.command.unwrap_or(Command::Run) {
        Command::Report {
            day,
            top,
            json,
            currency,
        } => Ok(
            match analytics::report::collect(&store, day, top, &currency).await {
                Ok(figures) if json => {
                    println!("{}", serde_json::to_string_pretty(&figures)?);
                    ExitCode::SUCCESS
                }
                Ok(figures) => {
                    print!("{}", analytics::report::render(&figures));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("report failed: {e}");
                    ExitCode::FAILURE
                }
            },
        ),
        Command::Run => run(cli.run, store).await,
    }
}

async fn run(args: RunArgs, store: Store) -> anyhow::Result<ExitCode> {
    let config = args
        .pipeline_config()
        .map_err(|errors| anyhow!("invalid settings:\n  - {}", errors.join("\n  - ")))?;
    let kafka = args.kafka.clone().require().map_err(anyhow::Error::msg)?;
    let shutdown = platform::shutdown::on_signal().context("cannot install signal handlers")?;
    let metrics = Arc::new(analytics::metrics::Metrics::default());
    let admin = tokio::spawn(analytics::admin::serve(
        args.admin_addr,
        metrics.clone(),
        Duration::from_secs(args.stall_seconds),
        shutdown.clone(),
    ));
    // SIGINT/SIGTERM is honoured within the drain timeout plus a margin, whatever the
    // pipeline is waiting on.
    let bound = config.drain_timeout + Duration::from_secs(15);
    let pipeline =
        analytics::pipeline::run(config, kafka, store, metrics.clone(), shutdown.clone());
    let result = tokio::select! {
        r = pipeline => r,
        () = async { shutdown.cancelled().await; tokio::time::sleep(bound).await } => {
            eprintln!("analytics: did not stop within {bound:?} of the signal; exiting without a clean drain (replayed from the markers on restart)");
            std::process::exit(1);
        }
    };
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
    Ok(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("analytics stopped: {e:#}");
            ExitCode::FAILURE
        }
    })
}
