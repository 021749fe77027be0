//! A worker of the pool: decodes, validates and deduplicates the events of the sessions
//! routed to it (all events of a session go to one worker, in partition order), turns them
//! into [`Deltas`], and dead-letters what cannot be counted. The coordinator collects a
//! worker's batch with a barrier message at each flush.
//!
//! Deduplication is by `event_id` per session. A session's seen ids live in memory; a
//! session not in memory (first seen after a restart or rebalance, or evicted) gets them
//! from its `sessions_history` document, which every flush updates atomically with the
//! counters. Only sessions whose events are all flushed are ever evicted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use events::{decode_with_limit, Currency, Event, EventType, Payload};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::aggregate;
use crate::deltas::Deltas;
use crate::journal::with_retry;
use crate::metrics::Metrics;
use crate::store::{str_array, Store, StoreError};

/// A message from the coordinator.
#[allow(missing_debug_implementations)]
pub enum Work {
    Record(Record),
    /// Hand over everything processed since the last barrier.
    Barrier(oneshot::Sender<Result<WorkerBatch, StoreError>>),
    /// Forget all state (after a failed flush or a rebalance); acknowledged when done.
    Reset(oneshot::Sender<()>),
}

/// A Kafka record, owned.
#[derive(Debug)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
}

/// What a worker produced since the last barrier.
#[derive(Default)]
pub struct WorkerBatch {
    pub deltas: Deltas,
    /// Dead-letter deliveries; a flush waits for all of them before advancing offsets.
    pub dead_letters: Vec<DeliveryFuture>,
    pub counted: BTreeMap<EventType, u64>,
    pub duplicates: u64,
    pub dead_lettered: BTreeMap<&'static str, u64>,
}

/// What the workers share.
#[derive(Clone)]
pub struct WorkerContext {
    pub store: Store,
    pub dlq: FutureProducer<platform::ObservedContext>,
    pub dlq_topic: String,
    pub source_topic: String,
    pub currency: Currency,
    pub max_event_bytes: usize,
    /// Sessions kept in memory per worker after a flush; beyond, flushed ones are dropped.
    pub session_capacity: usize,
    pub metrics: Arc<Metrics>,
    pub stop: CancellationToken,
}

impl std::fmt::Debug for WorkerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerContext")
            .field("dlq_topic", &self.dlq_topic)
            .finish()
    }
}

#[derive(Debug, Default)]
struct Session {
    seen: HashSet<Uuid>,
    ended: bool,
    /// The batch (numbered by barriers, from 1) that last counted an event of the session.
    last_batch: u64,
}

/// Why an event is dead-lettered.
struct Rejection {
    reason: &'static str,
    detail: String,
}

impl std::fmt::Debug for WorkerBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerBatch")
            .field("docs", &self.deltas.len())
            .field("dead_letters", &self.dead_letters.len())
            .finish()
    }
}

/// Records taken from the queue at a time; the sessions among them that are not in memory
/// are loaded with one batched read instead of one read each.
const READ_AHEAD: usize = 512;

pub async fn run(ctx: WorkerContext, mut inbox: mpsc::Receiver<Work>) {
    let mut sessions: HashMap<Uuid, Session> = HashMap::new();
    let mut batch = WorkerBatch::default();
    let mut failure: Option<StoreError> = None;
    // The batch being filled. The coordinator persists batch n-1 before it collects batch n,
    // so at the barrier of batch n every earlier batch is durable.
    let mut open: u64 = 1;
    let mut works = Vec::with_capacity(READ_AHEAD);
    while inbox.recv_many(&mut works, READ_AHEAD).await > 0 {
        // Sessions not in memory have no events in flight (only durable sessions are
        // evicted), so their documents are stable and may be read ahead of their records.
        let mut preloaded = if failure.is_none() {
            match preload(&ctx, &sessions, &works).await {
                Ok(p) => p,
                Err(e) => {
                    failure = Some(e);
                    HashMap::new()
                }
            }
        } else {
            HashMap::new()
        };
        for work in works.drain(..) {
            match work {
                Work::Record(record) => {
                    ctx.metrics
                        .queued
                        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    if failure.is_some() {
                        continue; // the next barrier reports the failure; nothing more is counted
                    }
                    let counting = Counting {
                        sessions: &mut sessions,
                        preloaded: &mut preloaded,
                        batch: &mut batch,
                        open,
                    };
                    if let Err(e) = process(&ctx, counting, record).await {
                        failure = Some(e);
                    }
                }
                Work::Barrier(reply) => {
                    let result = match failure.take() {
                        Some(e) => Err(e),
                        None => Ok(std::mem::take(&mut batch)),
                    };
                    trim(&mut sessions, ctx.session_capacity, open);
                    open += 1;
                    let _ = reply.send(result);
                }
                Work::Reset(reply) => {
                    sessions.clear();
                    preloaded.clear();
                    batch = WorkerBatch::default();
                    failure = None;
                    let _ = reply.send(());
                }
            }
        }
    }
}

/// The seen event ids of the sessions among `works` that are not in memory, read in
/// batched calls. Keys that are not session ids are left to [`process`] (which
/// dead-letters them).
async fn preload(
    ctx: &WorkerContext,
    sessions: &HashMap<Uuid, Session>,
    works: &[Work],
) -> Result<HashMap<Uuid, HashSet<Uuid>>, StoreError> {
    let mut wanted: Vec<Uuid> = works
        .iter()
        .filter_map(|w| match w {
            Work::Record(r) => r.key.as_deref(),
            _ => None,
        })
        .filter_map(|k| std::str::from_utf8(k).ok()?.parse::<Uuid>().ok())
        .filter(|id| !sessions.contains_key(id))
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let paths: Vec<String> = wanted.iter().map(|id| session_path(*id)).collect();
    let docs = with_retry("load sessions", &ctx.stop, || {
        ctx.store.get_many(&paths, &["event_ids"])
    })
    .await?;
    ctx.metrics.sessions_loaded(wanted.len() as u64);
    Ok(wanted
        .into_iter()
        .zip(&paths)
        .map(|(id, path)| (id, docs.get(path).map(seen_ids).unwrap_or_default()))
        .collect())
}

fn session_path(session: Uuid) -> String {
    format!("sessions_history/{session}")
}

fn seen_ids(doc: &firestore::gcloud_sdk::google::firestore::v1::Document) -> HashSet<Uuid> {
    str_array(doc, "event_ids")
        .iter()
        .filter_map(|s| Uuid::parse_str(s).ok())
        .collect()
}

/// The state a record is counted into.
struct Counting<'a> {
    sessions: &'a mut HashMap<Uuid, Session>,
    preloaded: &'a mut HashMap<Uuid, HashSet<Uuid>>,
    batch: &'a mut WorkerBatch,
    open: u64,
}

/// Keep at most `capacity` sessions. Only sessions whose events are all durable (counted
/// before the batch `handing_over`) may go: ended ones first, then any.
fn trim(sessions: &mut HashMap<Uuid, Session>, capacity: usize, handing_over: u64) {
    if sessions.len() <= capacity {
        return;
    }
    sessions.retain(|_, s| !s.ended || s.last_batch >= handing_over);
    if sessions.len() > capacity {
        let excess = sessions.len() - capacity;
        let victims: Vec<Uuid> = sessions
            .iter()
            .filter(|(_, s)| s.last_batch < handing_over)
            .map(|(k, _)| *k)
            .take(excess)
            .collect();
        for k in victims {
            sessions.remove(&k);
        }
    }
}

async fn process(
    ctx: &WorkerContext,
    counting: Counting<'_>,
    record: Record,
) -> Result<(), StoreError> {
    let Counting {
        sessions,
        preloaded,
        batch,
        open,
    } = counting;
    let payload = record.payload.as_deref().unwrap_or_default();
    let event = match decode_with_limit(payload, ctx.max_event_bytes) {
        Ok(e) => e,
        Err(e) => {
            dead_letter(
                ctx,
                batch,
                &record,
                Rejection {
                    reason: e.reason(),
                    detail: e.to_string(),
                },
            )
            .await;
            return Ok(());
        }
    };
    if let Err(rejection) = check(ctx, &event, &record) {
        dead_letter(ctx, batch, &record, rejection).await;
        return Ok(());
    }
    let session = match sessions.get_mut(&event.session_id) {
        Some(s) => s,
        None => {
            let seen = match preloaded.remove(&event.session_id) {
                Some(seen) => seen,
                None => load_seen(ctx, event.session_id).await?,
            };
            sessions.entry(event.session_id).or_insert(Session {
                seen,
                ..Session::default()
            })
        }
    };
    if !session.seen.insert(event.event_id) {
        batch.duplicates += 1;
        ctx.metrics.duplicate();
        return Ok(());
    }
    session.last_batch = open;
    session.ended |= matches!(event.payload, Payload::SessionEnded(_));
    aggregate::apply(&event, &mut batch.deltas);
    *batch.counted.entry(event.event_type()).or_default() += 1;
    ctx.metrics.counted(event.event_type());
    Ok(())
}

/// Rules beyond the wire contract.
fn check(ctx: &WorkerContext, event: &Event, record: &Record) -> Result<(), Rejection> {
    if record.key.as_deref() != Some(event.key().as_bytes()) {
        return Err(Rejection {
            reason: "wrong_key",
            detail: "the record key is not the event's session_id".into(),
        });
    }
    if let Payload::Purchase(p) = &event.payload {
        if p.currency() != ctx.currency {
            return Err(Rejection {
                reason: "unsupported_currency",
                detail: format!(
                    "purchase in {} but this deployment counts {}",
                    p.currency().as_str(),
                    ctx.currency.as_str()
                ),
            });
        }
    }
    let product = match &event.payload {
        Payload::ProductViewed(p) => Some(&p.product),
        Payload::ProductAddedToCart(p) | Payload::ProductRemovedFromCart(p) => Some(&p.product),
        _ => None,
    };
    if product.is_some_and(|p| p.currency != ctx.currency) {
        return Err(Rejection {
            reason: "unsupported_currency",
            detail: format!(
                "product priced in another currency than {}",
                ctx.currency.as_str()
            ),
        });
    }
    Ok(())
}

async fn load_seen(ctx: &WorkerContext, session: Uuid) -> Result<HashSet<Uuid>, StoreError> {
    let path = session_path(session);
    let doc = with_retry("load session", &ctx.stop, || ctx.store.get(&path)).await?;
    ctx.metrics.sessions_loaded(1);
    Ok(doc.as_ref().map(seen_ids).unwrap_or_default())
}

/// Send the original bytes to the dead-letter topic with the reason in headers.
async fn dead_letter(
    ctx: &WorkerContext,
    batch: &mut WorkerBatch,
    record: &Record,
    rejection: Rejection,
) {
    let Rejection { reason, detail } = rejection;
    let source = format!(
        "{}/{}/{}",
        ctx.source_topic, record.partition, record.offset
    );
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "dlq.reason",
            value: Some(reason),
        })
        .insert(Header {
            key: "dlq.detail",
            value: Some(detail.as_str()),
        })
        .insert(Header {
            key: "dlq.source",
            value: Some(source.as_str()),
        });
    let payload = record.payload.as_deref().unwrap_or_default();
    let mut future = FutureRecord::to(&ctx.dlq_topic)
        .payload(payload)
        .headers(headers);
    if let Some(k) = record.key.as_deref() {
        future = future.key(k);
    }
    loop {
        match ctx.dlq.send_result(future) {
            Ok(delivery) => {
                batch.dead_letters.push(delivery);
                break;
            }
            Err((e, f)) => {
                // Queue full: backpressure. Anything else is retried too; the flush waits.
                tracing::debug!(error = %e, "dead-letter enqueue retry");
                future = f;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    *batch.dead_lettered.entry(reason).or_default() += 1;
    ctx.metrics.dead_lettered(reason);
    tracing::debug!(reason, %source, "dead-lettered");
}
