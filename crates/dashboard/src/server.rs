//! The routes: the page and its embedded assets, the JSON endpoints the page reads, and
//! `/api/stream`, which pushes the overview and the pipeline every few seconds as
//! server-sent events (no reload). Read-only: every route is a GET.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::Stream;
use serde_json::{json, Value};
use store::Store;
use tokio_util::sync::CancellationToken;

use crate::overview::{self, Bucket};
use crate::pipeline::Scraper;
use crate::{assets, browse};

/// An overview and when it was read.
type Cached = (Instant, Arc<Value>);

/// What the routes share.
#[derive(Debug, Clone)]
pub struct App {
    pub store: Store,
    pub scraper: Scraper,
    /// Admin addresses (host:port) of the analytics instances.
    pub instances: Arc<Vec<String>>,
    /// Products listed in the trending table.
    pub top: usize,
    pub currency: String,
    /// How often the stream pushes.
    pub push: Duration,
    /// Overviews read within the last half push interval, by bucket: many open pages cost
    /// the database one read per bucket, not one each.
    cache: Arc<Mutex<HashMap<String, Cached>>>,
}

impl App {
    pub fn new(
        store: Store,
        instances: Vec<String>,
        top: usize,
        currency: String,
        push: Duration,
    ) -> App {
        App {
            store,
            scraper: Scraper::new(Duration::from_secs(2)),
            instances: Arc::new(instances),
            top,
            currency,
            push,
            cache: Arc::default(),
        }
    }

    async fn overview(&self, bucket: &Bucket) -> Result<Arc<Value>, String> {
        let key = format!("{bucket:?}");
        let fresh = self.push / 2;
        if let Some((at, v)) = lock(&self.cache).get(&key) {
            if at.elapsed() < fresh {
                return Ok(v.clone());
            }
        }
        let read = overview::read(&self.store, bucket, self.top, &self.currency)
            .await
            .map_err(|e| format!("Firestore is unreachable or refused the read: {e}"))?;
        let v = Arc::new(serde_json::to_value(read).map_err(|e| e.to_string())?);
        let mut cache = lock(&self.cache);
        cache.retain(|_, (at, _)| at.elapsed() < fresh);
        cache.insert(key, (Instant::now(), v.clone()));
        Ok(v)
    }

    async fn pipeline(&self) -> Value {
        json!({
            "instances": self.scraper.all(&self.instances).await,
            "read_at": chrono::Utc::now().to_rfc3339(),
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Scripts and styles only from this server; nothing inline, nothing framed.
const CSP: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

pub fn router(app: App) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/assets/{name}", get(asset))
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/overview", get(overview_json))
        .route("/api/pipeline", get(pipeline_json))
        .route("/api/browse", get(browse_json))
        .route("/api/stream", get(stream))
        .layer(axum::middleware::map_response(secure))
        .with_state(app)
}

async fn secure(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

async fn index() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        assets::INDEX,
    )
}

async fn asset(Path(name): Path<String>) -> Response {
    match assets::find(&name) {
        Some(a) => ([(header::CONTENT_TYPE, a.content_type)], a.body).into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

#[derive(Debug, serde::Deserialize)]
struct BucketQuery {
    #[serde(default)]
    day: String,
}

async fn overview_json(State(app): State<App>, Query(q): Query<BucketQuery>) -> Response {
    let bucket = match Bucket::parse(&q.day) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match app.overview(&bucket).await {
        Ok(v) => Json(v.as_ref().clone()).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

async fn pipeline_json(State(app): State<App>) -> Response {
    Json(app.pipeline().await).into_response()
}

#[derive(Debug, serde::Deserialize)]
struct BrowseQuery {
    #[serde(default)]
    path: String,
    #[serde(default)]
    page_token: String,
}

async fn browse_json(State(app): State<App>, Query(q): Query<BrowseQuery>) -> Response {
    let target = match browse::Target::parse(&q.path) {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match browse::page(&app.store, &target, &q.page_token).await {
        Ok(v) => Json(v).into_response(),
        Err(e) if !e.is_transient() => error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Firestore is unreachable: {e}"),
        ),
    }
}

/// Every push interval: an `overview` event (or an `unavailable` one saying why) and a
/// `pipeline` event.
async fn stream(State(app): State<App>, Query(q): Query<BucketQuery>) -> Response {
    let bucket = match Bucket::parse(&q.day) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    Sse::new(events(app, bucket))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn events(app: App, bucket: Bucket) -> impl Stream<Item = Result<Event, Infallible>> {
    let ticks = tokio::time::interval(app.push);
    futures::stream::unfold(
        (app, bucket, ticks, 0u8),
        |(app, bucket, mut ticks, n)| async move {
            // Each tick sends the overview, then the pipeline.
            let event = if n == 0 {
                ticks.tick().await;
                match app.overview(&bucket).await {
                    Ok(v) => Event::default().event("overview").data(v.to_string()),
                    Err(e) => Event::default()
                        .event("unavailable")
                        .data(json!({ "error": e }).to_string()),
                }
            } else {
                Event::default()
                    .event("pipeline")
                    .data(app.pipeline().await.to_string())
            };
            Some((Ok(event), (app, bucket, ticks, (n + 1) % 2)))
        },
    )
}

/// Serve until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(app))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// The address it will listen on, refusing anything but loopback unless `public`.
pub fn check_bind(addr: SocketAddr, public: bool) -> Result<SocketAddr, String> {
    if addr.ip().is_loopback() || public {
        Ok(addr)
    } else {
        Err(format!(
            "{addr} is not a loopback address: the dashboard shows the shop's figures to anyone who reaches it; pass --public to bind it anyway"
        ))
    }
}
