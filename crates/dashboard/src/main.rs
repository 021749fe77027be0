//! `dashboard`: serve the live web dashboard until SIGINT/SIGTERM. Exit 2 if it cannot
//! start.
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

/// A live web dashboard of the shop's analytics (from Firestore) and of the pipeline (from
/// the analytics instances' metrics). Read-only.
#[derive(Debug, Parser)]
#[command(name = "dashboard", version)]
struct Cli {
    #[command(flatten)]
    firestore: store::FirestoreArgs,
    /// Where to listen. Loopback only unless --public.
    #[arg(long, env = "DASHBOARD_ADDR", default_value = "127.0.0.1:4000")]
    addr: SocketAddr,
    /// Allow a non-loopback --addr (in a container behind its own network policy).
    #[arg(long, env = "DASHBOARD_PUBLIC", default_value_t = false)]
    public: bool,
    /// Admin addresses (host:port) of the analytics instances, comma-separated.
    #[arg(
        long,
        env = "DASHBOARD_ANALYTICS_ADMIN",
        value_delimiter = ',',
        default_value = "127.0.0.1:9464"
    )]
    analytics_admin: Vec<String>,
    /// Seconds between pushes of fresh figures to open pages.
    #[arg(long, env = "DASHBOARD_PUSH_SECONDS", default_value_t = 2)]
    push_seconds: u64,
    /// Products in the trending table.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// The shop's currency, the unit of every money figure.
    #[arg(long, env = "ANALYTICS_CURRENCY", default_value = "USD")]
    currency: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    platform::telemetry::init();
    platform::exit::exit_code(start(Cli::parse()).await)
}

async fn start(cli: Cli) -> anyhow::Result<ExitCode> {
    let addr = dashboard::server::check_bind(cli.addr, cli.public).map_err(anyhow::Error::msg)?;
    let store = cli.firestore.connect().await?;
    let shutdown = platform::shutdown::on_signal().context("cannot install signal handlers")?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    let app = dashboard::server::App::new(
        store,
        cli.analytics_admin,
        cli.top,
        cli.currency,
        Duration::from_secs(cli.push_seconds.max(1)),
    );
    // The one line scripts and tests read to find the page.
    println!("dashboard: http://{bound}/");
    tracing::info!(%bound, "dashboard serving");
    dashboard::server::serve(listener, app, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}
