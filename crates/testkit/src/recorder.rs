//! A recording proxy for the Firestore emulator: the independent witness of how often each
//! document is written, whatever the number of analytics instances writing it.
//!
//! It listens on a loopback port, forwards every gRPC call (HTTP/2 without TLS, as the
//! emulator speaks) to the emulator unchanged, and for each `Commit` decodes the request and
//! records, per document, when it was written. Firestore's documented limit is about one
//! sustained write per second per document; [`Writes::max_in_window`] is that rate as the
//! writers produced it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use firestore::gcloud_sdk::google::firestore::v1::{write::Operation, CommitRequest};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;
use tokio::net::TcpListener;

const COMMIT: &str = "/google.firestore.v1.Firestore/Commit";
const WINDOW: u32 = 16 * 1024 * 1024;
const MAX_FRAME: u32 = 1024 * 1024;

/// When each document was written, as seen passing through.
#[derive(Debug, Default)]
pub struct Writes {
    /// Document name (`projects/{p}/databases/{d}/documents/{path}`) -> commit times.
    by_doc: HashMap<String, Vec<Instant>>,
    pub commits: u64,
}

/// The most-written document over some window.
#[derive(Debug, Clone, PartialEq)]
pub struct Hottest {
    pub document: String,
    pub writes: usize,
    pub window: Duration,
}

impl Writes {
    fn record(&mut self, at: Instant, request: &CommitRequest) {
        self.commits += 1;
        for w in &request.writes {
            let name = match &w.operation {
                Some(Operation::Update(d)) => d.name.as_str(),
                Some(Operation::Delete(n)) => n.as_str(),
                Some(Operation::Transform(t)) => t.document.as_str(),
                None => continue,
            };
            self.by_doc.entry(name.to_owned()).or_default().push(at);
        }
    }

    /// Writes of every document.
    pub fn total(&self) -> usize {
        self.by_doc.values().map(Vec::len).sum()
    }

    /// The documents written most often within any `window`, most first, with `filter`
    /// deciding which documents count.
    pub fn max_in_window(
        &self,
        window: Duration,
        top: usize,
        filter: impl Fn(&str) -> bool,
    ) -> Vec<Hottest> {
        let mut out: Vec<Hottest> = self
            .by_doc
            .iter()
            .filter(|(d, _)| filter(d))
            .map(|(d, times)| {
                let mut times = times.clone();
                times.sort();
                let mut best = 0;
                let mut start = 0;
                for end in 0..times.len() {
                    while times[end].duration_since(times[start]) >= window {
                        start += 1;
                    }
                    best = best.max(end - start + 1);
                }
                Hottest {
                    document: d.clone(),
                    writes: best,
                    window,
                }
            })
            .collect();
        out.sort_by(|a, b| b.writes.cmp(&a.writes).then(a.document.cmp(&b.document)));
        out.truncate(top);
        out
    }
}

/// A running proxy.
#[derive(Debug, Clone)]
pub struct Recorder {
    pub addr: SocketAddr,
    pub writes: Arc<Mutex<Writes>>,
}

impl Recorder {
    /// Listen on `listen` (port 0: any free one) and forward to the emulator at `upstream`
    /// (`host:port`). Runs until the runtime stops.
    pub async fn start(listen: SocketAddr, upstream: &str) -> std::io::Result<Recorder> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let writes = Arc::new(Mutex::new(Writes::default()));
        // Flow-control windows sized for multi-megabyte commits (the defaults, 64 KiB, would
        // make every journal chunk wait for dozens of window updates).
        // And no Nagle delay: gRPC sends many small frames.
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .http2_initial_stream_window_size(WINDOW)
            .http2_initial_connection_window_size(WINDOW)
            .http2_max_frame_size(MAX_FRAME)
            .build(connector);
        let upstream = Arc::new(upstream.to_owned());
        let recorded = writes.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let (client, upstream, recorded) =
                    (client.clone(), upstream.clone(), recorded.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        forward(client.clone(), upstream.clone(), recorded.clone(), req)
                    });
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .initial_stream_window_size(WINDOW)
                        .initial_connection_window_size(WINDOW)
                        .max_frame_size(MAX_FRAME)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Recorder { addr, writes })
    }
}

async fn forward(
    client: Client<HttpConnector, Full<Bytes>>,
    upstream: Arc<String>,
    recorded: Arc<Mutex<Writes>>,
    req: Request<Incoming>,
) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
    let (mut parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if parts.uri.path() == COMMIT {
        // One gRPC message: a compression flag, a 4-byte length, the protobuf.
        if body.len() > 5 && body[0] == 0 {
            if let Ok(request) = CommitRequest::decode(&body[5..]) {
                if let Ok(mut w) = recorded.lock() {
                    w.record(Instant::now(), &request);
                }
            }
        }
    }
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    parts.uri = format!("http://{upstream}{path}")
        .parse()
        .unwrap_or(parts.uri);
    client
        .request(Request::from_parts(parts, Full::new(body)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busiest_window_of_each_document_is_found() {
        let mut w = Writes::default();
        let t0 = Instant::now();
        let s = Duration::from_secs;
        for (doc, at) in [("a", 0), ("a", 1), ("a", 2), ("a", 12), ("b", 0), ("b", 30)] {
            w.by_doc.entry(doc.into()).or_default().push(t0 + s(at));
        }
        let hot = w.max_in_window(s(10), 5, |_| true);
        assert_eq!(hot[0].document, "a");
        assert_eq!(hot[0].writes, 3, "0, 1 and 2 s; 12 s is outside");
        assert_eq!(hot[1].writes, 1);
        assert_eq!(w.total(), 6);
        assert!(w.max_in_window(s(10), 5, |d| d == "b")[0].writes == 1);
    }
}
