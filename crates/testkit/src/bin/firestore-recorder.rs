//! `firestore-recorder`: the test kit's recording proxy as a process, for benchmarks that run
//! services as processes (`make bench-scale`). Forwards to the emulator, and on SIGTERM or
//! SIGINT prints what it saw: commits, writes, and the documents written most often within
//! any window, counting only documents whose path contains `--only` when given.
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use testkit::recorder::Recorder;

#[derive(Debug, Parser)]
struct Args {
    /// Where to listen (loopback).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The emulator, host:port.
    #[arg(long, env = "FIRESTORE_EMULATOR_HOST")]
    upstream: String,
    /// The window of the write rate, seconds.
    #[arg(long, default_value_t = 10)]
    window: u64,
    /// How many of the hottest documents to print.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Count only documents whose path contains this (for example a project's name).
    #[arg(long, default_value = "")]
    only: String,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let recorder = Recorder::start(args.listen, &args.upstream).await?;
    println!("listening {}", recorder.addr);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    let window = Duration::from_secs(args.window.max(1));
    let writes = recorder
        .writes
        .lock()
        .map_err(|_| std::io::Error::other("recorder poisoned"))?;
    println!("commits {}", writes.commits);
    println!("writes {}", writes.total());
    for h in writes.max_in_window(window, args.top, |d| d.contains(&args.only)) {
        println!(
            "hottest {} {} {:.2}",
            h.document,
            h.writes,
            h.writes as f64 / window.as_secs_f64()
        );
    }
    Ok(())
}
