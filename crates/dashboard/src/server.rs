//! The routes: the page and its embedded assets, the JSON endpoints the page reads, and
//! `/api/stream`, which pushes the overview as soon as a flush's figures are read (see
//! [`crate::live`]) and the pipeline every push interval, as server-sent events (no reload).
//! Read-only: every route is a GET.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use serde_json::{json, Value};
use store::Store;
use tokio_util::sync::CancellationToken;

use crate::live::{Feeds, Reading, Source};
use crate::overview::{self, View};
use crate::pipeline::Scraper;
use crate::{assets, browse};

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
    /// The longest an open page waits for fresh figures (and how often the pipeline is
    /// pushed).
    pub push: Duration,
    /// One reader per overview pages watch: many open pages cost the database one read per
    /// view, not one each.
    feeds: Feeds<View>,
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
            feeds: Feeds::default(),
        }
    }

    async fn pipeline(&self) -> Value {
        json!({
            "instances": self.scraper.all(&self.instances).await,
            "read_at": chrono::Utc::now().to_rfc3339(),
        })
    }
}

impl Source<View> for App {
    async fn read(&self, view: &View) -> Reading {
        let read = overview::read(&self.store, view, self.top, &self.currency)
            .await
            .map_err(|e| format!("Firestore is unreachable or refused the read: {e}"))?;
        Ok(Arc::new(
            serde_json::to_value(read).map_err(|e| e.to_string())?,
        ))
    }

    async fn landed(&self) -> Option<f64> {
        self.scraper.persisted(&self.instances).await
    }
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
struct ViewQuery {
    #[serde(default)]
    day: String,
    #[serde(default)]
    country: String,
}

async fn overview_json(State(app): State<App>, Query(q): Query<ViewQuery>) -> Response {
    let view = match View::parse(&q.day, &q.country) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match app.read(&view).await {
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

/// An `overview` event whenever fresh figures are read (or an `unavailable` one saying why),
/// and a `pipeline` event every push interval.
async fn stream(State(app): State<App>, Query(q): Query<ViewQuery>) -> Response {
    let view = match View::parse(&q.day, &q.country) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    Sse::new(events(app, view))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn events(app: App, view: View) -> impl Stream<Item = Result<Event, Infallible>> {
    let feed = app.feeds.watch(&app, &view, app.push);
    let overviews = futures::stream::unfold(feed, |mut feed| async move {
        // A feed stops only once no page watches it, and this page does.
        feed.changed().await.ok()?;
        let reading = feed.borrow_and_update().clone();
        Some((reading, feed))
    })
    .filter_map(|reading| async move {
        Some(Ok(match reading? {
            Ok(v) => Event::default().event("overview").data(v.to_string()),
            Err(e) => Event::default()
                .event("unavailable")
                .data(json!({ "error": e }).to_string()),
        }))
    });
    let ticks = tokio::time::interval(app.push);
    let pipelines = futures::stream::unfold((app, ticks), |(app, mut ticks)| async move {
        ticks.tick().await;
        let event = Event::default()
            .event("pipeline")
            .data(app.pipeline().await.to_string());
        Some((Ok(event), (app, ticks)))
    });
    futures::stream::select(overviews, pipelines)
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
