//! A worker of the pool: decodes, validates and deduplicates the events of the sessions
//! routed to it (all events of a session go to one worker, in partition order), turns them
//! into [`Deltas`], and dead-letters what cannot be counted. The coordinator collects a
//! worker's batch with a barrier message at each flush.
//!
//! Deduplication is by `event_id` per session. A session's seen ids live in memory; a
//! session not in memory (first seen after a restart or rebalance, or evicted) gets them
//! from its `sessions_history` document. Counters go to every flush; a session's own
//! document deltas are kept per partition until the coordinator asks for that partition's
//! checkpoint (see [`crate::cadence::Checkpoints`]), and its marker then says so. Records
//! between a partition's checkpoint and its counted offset come back marked
//! [`Record::replay`] after a restart: they rebuild the sessions (seen ids, documents) and
//! count nothing, dead-letter nothing. Only sessions whose events are all flushed and
//! checkpointed are ever evicted, so a session read back is never behind its events.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use events::{decode_with_limit, Currency, EventType, Payload};
use rdkafka::producer::{DeliveryFuture, FutureProducer};
use store::retry::with_retry;
use store::schema::{self, event_id_pages, path, SessionState};
use store::{Deltas, Store, StoreError};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::aggregate;
use crate::deadletter::{self, Rejection};
use crate::metrics::Metrics;
use crate::rules::{self, EventWindow};
use crate::tally::Tally;

/// A message from the coordinator.
#[allow(missing_debug_implementations)]
pub enum Work {
    Record(Record),
    /// Hand over everything processed since the last barrier, with the session deltas of
    /// the partitions to checkpoint.
    Barrier(
        oneshot::Sender<Result<WorkerBatch, Failure>>,
        Arc<BTreeSet<i32>>,
    ),
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
    /// The record's Kafka timestamp (ms): its ingestion time for the event-time window.
    pub timestamp_ms: Option<i64>,
    /// The [`WorkerContext::generation`] it was dispatched in: a reset starts a new one, and
    /// records of an older one are dropped unprocessed (their partitions resume at the
    /// markers).
    pub generation: u64,
    /// Below its partition's counted offset: counted already, only replayed into the
    /// sessions (whose documents were checkpointed before it).
    pub replay: bool,
}

/// Why a worker cannot go on; the next barrier reports it.
#[derive(Debug, Clone)]
pub enum Failure {
    Store(StoreError),
    /// The dead-letter topic did not take a record within the bounded retries.
    DeadLetter(String),
    /// The pipeline itself broke (a worker or a flush task stopped): not Firestore's doing,
    /// and fatal.
    Internal(String),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Store(e) => write!(f, "{e}"),
            Failure::DeadLetter(e) => write!(f, "dead-letter delivery failed: {e}"),
            Failure::Internal(e) => write!(f, "internal failure: {e}"),
        }
    }
}

/// What a worker produced since the last barrier.
#[derive(Default)]
pub struct WorkerBatch {
    /// Counters and names, written at every flush.
    pub deltas: Deltas,
    /// The session documents of the partitions checkpointed, by partition (see
    /// [`crate::checkpoint`]).
    pub sessions: BTreeMap<i32, Deltas>,
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
    pub window: EventWindow,
    /// Largest dead-letter record (payload, key and headers); a larger poison record is
    /// dead-lettered as an excerpt with headers saying so.
    pub dlq_max_bytes: usize,
    /// Sessions kept in memory per worker after a flush; beyond, flushed ones are dropped.
    pub session_capacity: usize,
    pub metrics: Arc<Metrics>,
    pub stop: CancellationToken,
    /// The current generation of dispatched records (see [`Record::generation`]).
    pub generation: Arc<std::sync::atomic::AtomicU64>,
}

impl WorkerContext {
    /// A record dispatched before the last reset: dropped, not processed.
    fn stale(&self, record: &Record) -> bool {
        record.generation != self.generation.load(std::sync::atomic::Ordering::Acquire)
    }
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
    /// Its `session_started` is counted.
    started: bool,
    /// What its document holds (see [`aggregate::apply_with`]).
    history: aggregate::History,
    ended: bool,
    /// The batch (numbered by barriers, from 1) that last counted an event of the session
    /// or took its deltas to a checkpoint.
    last_batch: u64,
    /// The partitions holding deltas of its document not checkpointed yet (one, unless its
    /// events came with different keys).
    unsaved: Vec<i32>,
    /// Its progress through the funnel.
    funnel: aggregate::Funnel,
    /// It had no document when it was loaded and no checkpoint has taken its deltas since:
    /// its deltas are its whole document (see [`hand_over`]).
    absent: bool,
}

/// A partition's session deltas since its last checkpoint.
#[derive(Debug, Default)]
struct Unsaved {
    deltas: Deltas,
    sessions: HashSet<Uuid>,
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
/// How long a worker waits for more records before it reads sessions it has not in memory.
/// A read costs a round trip whatever its size: at a live rate the queue holds a few
/// records at a time, and reading for each few cost more than 600 us of session reads per
/// event at 5,000 events/s (bench-analytics), so the workers fell behind.
pub const READ_GATHER: Duration = Duration::from_millis(50);

/// The key of a record as a session id, if it is one.
fn session_of(work: &Work) -> Option<Uuid> {
    match work {
        Work::Record(r) => std::str::from_utf8(r.key.as_deref()?).ok()?.parse().ok(),
        _ => None,
    }
}

/// Before reading sessions not in memory, take in what arrives within `wait` (up to
/// [`READ_AHEAD`] works), so one read covers them all. Nothing is held back when no read is
/// needed, and a barrier or a reset ends the wait (their replies are not delayed).
async fn gather(
    inbox: &mut mpsc::Receiver<Work>,
    works: &mut Vec<Work>,
    in_memory: impl Fn(&Uuid) -> bool,
    wait: Duration,
) {
    let control = |w: &Work| !matches!(w, Work::Record(_));
    let needs_read = works
        .iter()
        .filter_map(session_of)
        .any(|id| !in_memory(&id));
    if !needs_read || works.iter().any(control) {
        return;
    }
    let deadline = tokio::time::Instant::now() + wait;
    while works.len() < READ_AHEAD {
        let before = works.len();
        let room = READ_AHEAD - before;
        match tokio::time::timeout_at(deadline, inbox.recv_many(works, room)).await {
            Ok(0) | Err(_) => return, // closed, or the time is up
            Ok(_) if works[before..].iter().any(control) => return,
            Ok(_) => {}
        }
    }
}

pub async fn run(ctx: WorkerContext, mut inbox: mpsc::Receiver<Work>) {
    let mut sessions: HashMap<Uuid, Session> = HashMap::new();
    let mut unsaved: HashMap<i32, Unsaved> = HashMap::new();
    let mut batch = WorkerBatch::default();
    // The batch's counters, spelled into its deltas when it is handed over.
    let mut counters = Tally::default();
    let mut failure: Option<Failure> = None;
    // The batch being filled. The coordinator persists the counters of batch n-1 and the
    // session documents of batch n-2 before it collects batch n.
    let mut open: u64 = 1;
    let mut works = Vec::with_capacity(READ_AHEAD);
    while inbox.recv_many(&mut works, READ_AHEAD).await > 0 {
        if failure.is_none() {
            gather(
                &mut inbox,
                &mut works,
                |id| sessions.contains_key(id),
                READ_GATHER,
            )
            .await;
        }
        // Records queued before a reset are dropped at once, so a reset (a rebalance) waits
        // for no Firestore read on their behalf.
        let queued = works.len();
        works.retain(|w| !matches!(w, Work::Record(r) if ctx.stale(r)));
        ctx.metrics.queued.fetch_sub(
            (queued - works.len()) as i64,
            std::sync::atomic::Ordering::Relaxed,
        );
        // Sessions not in memory have no events in flight (only durable sessions are
        // evicted), so their documents are stable and may be read ahead of their records.
        let mut preloaded = if failure.is_none() {
            match preload(&ctx, &sessions, &works).await {
                Ok(p) => p,
                Err(e) => {
                    failure = Some(e.into());
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
                    if ctx.stale(&record) {
                        continue; // a reset is on its way: dropped like the ones before it
                    }
                    let counting = Counting {
                        sessions: &mut sessions,
                        preloaded: &mut preloaded,
                        batch: &mut batch,
                        counters: &mut counters,
                        unsaved: &mut unsaved,
                        open,
                    };
                    if let Err(e) = process(&ctx, counting, record).await {
                        failure = Some(e);
                    }
                }
                Work::Barrier(reply, checkpoint) => {
                    let result = match failure.take() {
                        Some(e) => Err(e),
                        None => {
                            let mut out = std::mem::take(&mut batch);
                            std::mem::take(&mut counters).spell_into(&mut out.deltas);
                            for p in checkpoint.iter() {
                                let to = out.sessions.entry(*p).or_default();
                                hand_over(&mut unsaved, &mut sessions, *p, open, to);
                            }
                            Ok(out)
                        }
                    };
                    trim(&mut sessions, ctx.session_capacity, open);
                    open += 1;
                    let _ = reply.send(result);
                }
                Work::Reset(reply) => {
                    sessions.clear();
                    unsaved.clear();
                    preloaded.clear();
                    batch = WorkerBatch::default();
                    counters = Tally::default();
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
) -> Result<HashMap<Uuid, Session>, StoreError> {
    let mut wanted: Vec<Uuid> = works
        .iter()
        .filter_map(session_of)
        .filter(|id| !sessions.contains_key(id))
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    load_sessions(ctx, &wanted).await
}

/// The persisted state of `ids`' sessions: seen event ids (with their overflow pages),
/// whether started, history size. Sessions without a document are new.
async fn load_sessions(
    ctx: &WorkerContext,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Session>, StoreError> {
    let paths: Vec<String> = ids.iter().map(|id| path::session(*id)).collect();
    let t0 = std::time::Instant::now();
    let docs = with_retry("load sessions", &ctx.stop, || {
        ctx.store.get_many(&paths, SessionState::MASK)
    })
    .await?;
    ctx.metrics.sessions_loaded(ids.len() as u64, t0.elapsed());
    let mut out = HashMap::with_capacity(ids.len());
    let mut pages = Vec::new();
    for (id, path) in ids.iter().zip(&paths) {
        let Some(doc) = docs.get(path) else {
            let absent = Session {
                absent: true,
                ..Session::default()
            };
            out.insert(*id, absent);
            continue;
        };
        let state = SessionState::read(doc);
        pages.extend(
            (0..event_id_pages(state.event_count)).map(|p| (*id, path::session_ids_page(*id, p))),
        );
        out.insert(
            *id,
            Session {
                seen: uuids(&state.event_ids),
                started: state.started,
                history: aggregate::History::of(&state),
                funnel: aggregate::Funnel::of(&state),
                ..Session::default()
            },
        );
    }
    if !pages.is_empty() {
        let paths: Vec<String> = pages.iter().map(|(_, p)| p.clone()).collect();
        let docs = with_retry("load event id pages", &ctx.stop, || {
            ctx.store.get_many(&paths, schema::PAGE_MASK)
        })
        .await?;
        for (id, path) in &pages {
            if let (Some(s), Some(doc)) = (out.get_mut(id), docs.get(path)) {
                s.seen.extend(uuids(&schema::page_ids(doc)));
            }
        }
    }
    Ok(out)
}

fn uuids(ids: &[String]) -> HashSet<Uuid> {
    ids.iter().filter_map(|s| Uuid::parse_str(s).ok()).collect()
}

/// The state a record is counted into.
struct Counting<'a> {
    sessions: &'a mut HashMap<Uuid, Session>,
    preloaded: &'a mut HashMap<Uuid, Session>,
    batch: &'a mut WorkerBatch,
    counters: &'a mut Tally,
    unsaved: &'a mut HashMap<i32, Unsaved>,
    open: u64,
}

/// Move partition `p`'s session deltas into the batch `open` (a checkpoint).
fn hand_over(
    unsaved: &mut HashMap<i32, Unsaved>,
    sessions: &mut HashMap<Uuid, Session>,
    p: i32,
    open: u64,
    out: &mut Deltas,
) {
    let Some(u) = unsaved.remove(&p) else {
        return;
    };
    out.merge(u.deltas);
    for id in u.sessions {
        if let Some(s) = sessions.get_mut(&id) {
            let alone = s.unsaved == [p];
            s.unsaved.retain(|q| *q != p);
            s.last_batch = open;
            // Its state now, whatever order its partitions are checkpointed in (every
            // session here counted an event since it was loaded, so `history.events` is
            // its ids' count, see `process`).
            let doc = path::session(id);
            s.history.write(&doc, out);
            // A session without a document whose deltas are all in this partition's: they
            // are its whole document, written without a field path or an array transform
            // (on condition that it still does not exist, see `crate::checkpoint`). Its
            // next checkpoint adds to what this one writes.
            if std::mem::take(&mut s.absent) && alone {
                out.doc(&doc).whole = true;
            }
        }
    }
}

/// A session's state is durable: its events counted and its document checkpointed by a
/// batch at least two before `handing_over`. A batch's counters have landed once the next
/// is collected, its session documents once the one after is (they are written after its
/// counters, while the next batch fills: see [`crate::checkpoint`]).
fn durable(s: &Session, handing_over: u64) -> bool {
    s.unsaved.is_empty() && s.last_batch + 1 < handing_over
}

/// Keep at most `capacity` sessions. Only durable sessions may go: ended ones first, then
/// any.
fn trim(sessions: &mut HashMap<Uuid, Session>, capacity: usize, handing_over: u64) {
    if sessions.len() <= capacity {
        return;
    }
    sessions.retain(|_, s| !s.ended || !durable(s, handing_over));
    if sessions.len() > capacity {
        let excess = sessions.len() - capacity;
        let victims: Vec<Uuid> = sessions
            .iter()
            .filter(|(_, s)| durable(s, handing_over))
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
) -> Result<(), Failure> {
    let Counting {
        sessions,
        preloaded,
        batch,
        counters,
        unsaved,
        open,
    } = counting;
    let payload = record.payload.as_deref().unwrap_or_default();
    let event = match decode_with_limit(payload, ctx.max_event_bytes) {
        Ok(e) => e,
        Err(_) if record.replay => return Ok(()), // dead-lettered when it was counted
        Err(e) => {
            let rejection = Rejection {
                reason: e.reason(),
                detail: e.to_string(),
            };
            return dead_letter(ctx, batch, &record, rejection).await;
        }
    };
    if let Err(rejection) = rules::check(ctx.currency, &ctx.window, &event, &record) {
        if record.replay {
            return Ok(());
        }
        return dead_letter(ctx, batch, &record, rejection).await;
    }
    let session = match sessions.entry(event.session_id) {
        std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
        std::collections::hash_map::Entry::Vacant(v) => {
            let loaded = match preloaded.remove(&event.session_id) {
                Some(s) => s,
                None => load_sessions(ctx, &[event.session_id])
                    .await?
                    .remove(&event.session_id)
                    .unwrap_or_default(),
            };
            v.insert(loaded)
        }
    };
    if session.seen.contains(&event.event_id) {
        if !record.replay {
            batch.duplicates += 1;
            ctx.metrics.duplicate();
        }
        return Ok(());
    }
    let starts = matches!(event.payload, Payload::SessionStarted(_));
    if matches!(event.payload, Payload::SessionEnded(_)) && !session.started {
        // Its start is never counted before it (a session's events are in order in its
        // partition): an end without a start would make an ended session that never began.
        if record.replay {
            return Ok(());
        }
        let rejection = Rejection {
            reason: "session_not_started",
            detail: "session_ended for a session whose session_started was never counted".into(),
        };
        return dead_letter(ctx, batch, &record, rejection).await;
    }
    let index = session.seen.len() as u64;
    session.seen.insert(event.event_id);
    session.started |= starts;
    session.last_batch = open;
    session.ended |= matches!(event.payload, Payload::SessionEnded(_));
    let own = unsaved.entry(record.partition).or_default();
    if own.sessions.insert(event.session_id) && !session.unsaved.contains(&record.partition) {
        session.unsaved.push(record.partition);
    }
    let (mut replayed, mut replayed_counters) = (Deltas::default(), Tally::default());
    // A replayed event's counters are persisted already: only its session is rebuilt.
    let (shared, counters) = if record.replay {
        (&mut replayed, &mut replayed_counters)
    } else {
        (&mut batch.deltas, counters)
    };
    let sink = aggregate::Sink {
        shared: &mut *shared,
        counters: &mut *counters,
        session: &mut own.deltas,
    };
    session.history.events = index;
    aggregate::apply_with(&event, sink, &mut session.history);
    let sink = aggregate::Sink {
        shared,
        counters,
        session: &mut own.deltas,
    };
    session.funnel.step(&event, sink);
    if !record.replay {
        *batch.counted.entry(event.event_type()).or_default() += 1;
        ctx.metrics.counted(event.event_type());
    }
    Ok(())
}

/// Send the record to the dead-letter topic ([`deadletter::send`]) and count it; then the
/// flush waits for its delivery.
async fn dead_letter(
    ctx: &WorkerContext,
    batch: &mut WorkerBatch,
    record: &Record,
    rejection: Rejection,
) -> Result<(), Failure> {
    let source = format!(
        "{}/{}/{}",
        ctx.source_topic, record.partition, record.offset
    );
    let to = deadletter::Destination {
        producer: &ctx.dlq,
        topic: &ctx.dlq_topic,
        max_bytes: ctx.dlq_max_bytes,
    };
    let delivery = deadletter::send(&to, record, &rejection, &source, &ctx.stop)
        .await
        .map_err(Failure::DeadLetter)?;
    batch.dead_letters.push(delivery);
    let reason = rejection.reason;
    *batch.dead_lettered.entry(reason).or_default() += 1;
    ctx.metrics.dead_lettered(reason);
    tracing::debug!(reason, %source, "dead-lettered");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::schema::field as f;

    fn work(session: Uuid) -> Work {
        Work::Record(Record {
            partition: 0,
            offset: 0,
            key: Some(session.to_string().into_bytes()),
            payload: None,
            timestamp_ms: None,
            generation: 0,
            replay: false,
        })
    }

    #[test]
    fn only_a_session_without_a_document_and_deltas_in_one_partition_is_written_whole() {
        let (alone, split, existing) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let session = |absent, unsaved: Vec<i32>| Session {
            absent,
            unsaved,
            ..Session::default()
        };
        let mut sessions = HashMap::from([
            (alone, session(true, vec![0])),
            (split, session(true, vec![0, 1])),
            (existing, session(false, vec![0])),
        ]);
        let mut unsaved: HashMap<i32, Unsaved> = HashMap::new();
        let add = |unsaved: &mut HashMap<i32, Unsaved>, p: i32, id: Uuid, event: &str| {
            let u = unsaved.entry(p).or_default();
            u.sessions.insert(id);
            let value = store::FieldValue::from(event);
            u.deltas.union(&path::session(id), f::EVENT_IDS, value);
        };
        add(&mut unsaved, 0, alone, "a1");
        add(&mut unsaved, 0, split, "s1");
        add(&mut unsaved, 1, split, "s2");
        add(&mut unsaved, 0, existing, "e1");
        let (mut first, mut second) = (Deltas::default(), Deltas::default());
        hand_over(&mut unsaved, &mut sessions, 0, 1, &mut first);
        hand_over(&mut unsaved, &mut sessions, 1, 1, &mut second);
        let whole = |out: &Deltas, id: Uuid| out.docs[&path::session(id)].whole;
        assert!(whole(&first, alone));
        assert!(
            !whole(&first, split) && !whole(&second, split),
            "two partitions' deltas"
        );
        assert!(!whole(&first, existing));
        // Whole, its document holds every field its deltas name.
        let doc = first.docs[&path::session(alone)].document();
        assert_eq!(
            doc.get(f::EVENT_IDS),
            Some(&store::FieldValue::Array(vec!["a1".into()]))
        );
        assert!(doc.contains_key(f::EVENT_COUNT));
        // Its next checkpoint adds to what the first one writes.
        add(&mut unsaved, 0, alone, "a2");
        if let Some(s) = sessions.get_mut(&alone) {
            s.unsaved.push(0);
        }
        let mut third = Deltas::default();
        hand_over(&mut unsaved, &mut sessions, 0, 2, &mut third);
        assert!(!whole(&third, alone));
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_waits_for_more_records_but_not_past_a_barrier_or_when_none_is_needed() {
        let (tx, mut rx) = mpsc::channel(64);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        // A session not in memory: what arrives within the wait joins the same read.
        let sender = tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = sender.send(work(b)).await;
        });
        let mut works = vec![work(a)];
        let t0 = tokio::time::Instant::now();
        gather(&mut rx, &mut works, |_| false, READ_GATHER).await;
        assert_eq!(works.len(), 2);
        assert_eq!(t0.elapsed(), READ_GATHER, "waits out the window");

        // Every session in memory: no read, no wait.
        tx.send(work(b)).await.expect("send");
        let mut works = vec![work(a)];
        let t0 = tokio::time::Instant::now();
        gather(&mut rx, &mut works, |_| true, READ_GATHER).await;
        assert_eq!((works.len(), t0.elapsed()), (1, Duration::ZERO));
        let _ = rx.recv().await;

        // A barrier ends the wait at once.
        let (reply, _) = oneshot::channel();
        let sender = tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let _ = sender.send(Work::Barrier(reply, Arc::default())).await;
        });
        let mut works = vec![work(a)];
        let t0 = tokio::time::Instant::now();
        gather(&mut rx, &mut works, |_| false, READ_GATHER).await;
        assert_eq!(works.len(), 2);
        assert_eq!(t0.elapsed(), Duration::from_millis(5));
    }
}
