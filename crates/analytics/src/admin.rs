//! The admin HTTP server: `/healthz` (no fatal error pending, and not stalled: work waiting
//! with nothing persisted for the stall timeout), `/readyz` (healthy and partitions
//! assigned), `/metrics` (Prometheus text). Unhealthy answers are 503 with the reason.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::metrics::{Health, Metrics};

#[derive(Clone)]
struct Admin {
    metrics: Arc<Metrics>,
    stall: Duration,
}

fn health(a: &Admin) -> Result<(), (StatusCode, String)> {
    match a
        .metrics
        .health(chrono::Utc::now().timestamp_millis(), a.stall)
    {
        Health::Ok => Ok(()),
        Health::Unhealthy(why) => Err((StatusCode::SERVICE_UNAVAILABLE, why)),
    }
}

pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    stall: Duration,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new()
        .route(
            "/healthz",
            get(|State(a): State<Admin>| async move {
                health(&a).map(|()| (StatusCode::OK, "ok".to_owned()))
            }),
        )
        .route(
            "/readyz",
            get(|State(a): State<Admin>| async move {
                health(&a)?;
                if a.metrics.ready.load(Ordering::Relaxed) {
                    Ok((StatusCode::OK, "ready".to_owned()))
                } else {
                    Err((StatusCode::SERVICE_UNAVAILABLE, "not ready".to_owned()))
                }
            }),
        )
        .route(
            "/metrics",
            get(|State(a): State<Admin>| async move { a.metrics.render() }),
        )
        .with_state(Admin { metrics, stall });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "admin server listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
