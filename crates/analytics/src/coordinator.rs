//! The flush protocol, owned by the poll thread: dispatch of records to the workers, the
//! barrier that collects their deltas, the flush in flight and its outcome, rebalances
//! (the consumer context's callbacks), resets after a failed flush, the derived-metric
//! refresh and the journal sweep. See [`crate::pipeline`] for the whole picture.
//!
//! Over the ~400-line mark on purpose: every method here mutates the one `Coordinator` that
//! the poll thread and librdkafka's rebalance callbacks share, and splitting it would spread
//! that state's invariants (one flush in flight, markers advancing in order, nothing paused
//! across assignments) over several files.
//!
//! Rebalances are handled in the callbacks themselves rather than sent as messages to the
//! loop (the pattern of quickwit's Kafka source, whose consumer polls on a thread apart from
//! the actor that owns its state, so the callback sends an event and waits for the reply).
//! Here librdkafka runs the callbacks on the poll thread, inside `poll()`: the loop that owns
//! the coordinator is the very thread that would have to answer the message, so a message
//! adds a channel without removing any waiting. The work cannot be deferred past the
//! callback either: on revoke the partitions are released when it returns (so what is not
//! persisted must be dropped first), and on assign the positions must be sought from the
//! markers before the first fetch. The mutex is therefore never contended; it exists
//! because the callbacks reach the coordinator through the consumer context.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use futures::future::join_all;
use platform::ObservedContext;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};
use store::schema::DocKind;
use store::{Deltas, Store, StoreError};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::cadence::{Cadence, Unsaved};
use crate::checkpoint::{self, Lease};
use crate::derived;
use crate::journal::{self, Advance, Marker};
use crate::metrics::Metrics;
use crate::settings::PipelineConfig;
use crate::totals::Totals;
use crate::worker::{Failure, Record, Work};

/// Consecutive failed flushes for want of dead-letter deliveries before analytics stops
/// with an error (each is replayed from the markers after a growing pause).
const MAX_DEAD_LETTER_FAILURES: u32 = 5;

/// The consumer's context: rebalance callbacks drive the coordinator.
#[allow(missing_debug_implementations)]
pub struct AnalyticsContext {
    observed: ObservedContext,
    coordinator: Arc<Mutex<Coordinator>>,
    metrics: Arc<Metrics>,
}

impl ClientContext for AnalyticsContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, msg: &str) {
        self.observed.log(level, fac, msg);
    }
    fn error(&self, error: KafkaError, reason: &str) {
        self.observed.error(error, reason);
    }
    fn stats(&self, statistics: Statistics) {
        for topic in statistics.topics.values() {
            for (p, part) in &topic.partitions {
                if *p >= 0 && part.consumer_lag >= 0 {
                    self.metrics.set_lag(*p, part.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for AnalyticsContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let mut c = lock(&self.coordinator);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                if let Err(e) = c.on_assign(consumer, tpl) {
                    c.set_fatal(format!("cannot take over partitions: {e:#}"));
                }
                if let Err(e) = consumer.assign(tpl) {
                    tracing::error!(error = %e, "assign failed");
                }
                self.metrics
                    .ready
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                c.on_revoke(consumer);
                if let Err(e) = consumer.unassign() {
                    tracing::error!(error = %e, "unassign failed");
                }
            }
            other => {
                tracing::error!(error = ?other, "rebalance error");
                c.on_revoke(consumer);
                let _ = consumer.unassign();
            }
        }
    }
}

pub fn lock(c: &Mutex<Coordinator>) -> MutexGuard<'_, Coordinator> {
    c.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Debug)]
struct PartitionState {
    marker: Option<Marker>,
    /// Next offset to dispatch: everything below is with the workers or persisted.
    next: i64,
    /// When its sessions were last checkpointed (at assignment: staggered into the past,
    /// see [`crate::cadence::Checkpoints::stagger`]).
    checkpointed: Instant,
    /// Records dispatched since, not yet in their sessions' documents.
    unsaved: u64,
    /// Every record below is in its session's document, which the marker says at the next
    /// flush (checkpoints land after their flush, see [`crate::checkpoint`]).
    sessions_saved: i64,
    /// This instance's lease of the partition: the precondition of its checkpoints.
    lease: Option<Lease>,
}

impl PartitionState {
    /// Resume at `marker`: from its sessions' checkpoint, replaying up to its counted offset.
    fn resume(marker: Option<Marker>, age: Duration) -> Self {
        let now = Instant::now();
        let saved = marker.as_ref().map_or(0, |m| m.sessions_offset);
        PartitionState {
            next: saved,
            marker,
            checkpointed: now.checked_sub(age).unwrap_or(now),
            unsaved: 0,
            sessions_saved: saved,
            lease: None,
        }
    }

    /// The marker written again as it is (a flush writing the shards of this partition's
    /// owner fences them with it, see [`crate::totals`]): its update time moves.
    fn touch(&self, partition: i32) -> Advance {
        Advance {
            partition,
            next_offset: self.counted(),
            sessions_offset: self.saved(),
            marker: self.marker.clone(),
        }
    }

    /// Every record below is counted.
    fn counted(&self) -> i64 {
        self.marker.as_ref().map_or(0, |m| m.next_offset)
    }

    /// Every record below is in its session's document.
    fn saved(&self) -> i64 {
        self.marker.as_ref().map_or(0, |m| m.sessions_offset)
    }

    /// Where consumption resumes: the sessions' checkpoint.
    fn seek(&self) -> Offset {
        match &self.marker {
            Some(m) => Offset::Offset(m.sessions_offset),
            None => Offset::Beginning,
        }
    }

    /// The marker's advance by a flush that counts every record dispatched (`count`) and
    /// says where the sessions are saved; `None` if it would not move.
    fn advance(&self, partition: i32, count: bool) -> Option<Advance> {
        let a = Advance {
            partition,
            // Mid-replay, `next` is below what is counted already.
            next_offset: if count {
                self.next.max(self.counted())
            } else {
                self.counted()
            },
            sessions_offset: self.sessions_saved.max(self.saved()),
            marker: self.marker.clone(),
        };
        (a.next_offset > self.counted() || a.sessions_offset > self.saved()).then_some(a)
    }

    fn unsaved(&self, partition: i32) -> Unsaved {
        Unsaved {
            partition,
            age: self.checkpointed.elapsed(),
            records: self.unsaved,
        }
    }
}

/// The outcome of a background flush: the partitions' new markers, and the totals of the
/// shards it wrote.
type FlushOutcome = Result<(Vec<(i32, Marker)>, journal::FlushStats, Totals), Failure>;

/// A flush being persisted while consumption goes on.
#[derive(Debug)]
struct Inflight {
    task: tokio::task::JoinHandle<FlushOutcome>,
    /// The documents it writes, for the write-rate metric.
    paths: Vec<String>,
    started: Instant,
    /// Kafka timestamps (ms) of its records, for the freshness metric.
    produced_ms: Vec<i64>,
    /// The entity documents (names) it writes, remembered once it lands.
    entities: Vec<(String, store::DocDelta)>,
    /// Its checkpoint, written once its counters have landed.
    checkpoint: Checkpoint,
}

/// The session documents of a flush's checkpointed partitions and the offsets they are
/// saved up to.
#[derive(Debug, Default)]
struct Checkpoint {
    /// By partition.
    sessions: BTreeMap<i32, BTreeMap<String, store::DocDelta>>,
    offsets: Vec<(i32, i64)>,
}

/// A checkpoint being written (see [`crate::checkpoint`]).
#[derive(Debug)]
struct Saving {
    task: tokio::task::JoinHandle<Result<journal::FlushStats, Failure>>,
    offsets: Vec<(i32, i64)>,
}

/// The window over which the per-document write rate is measured (Firestore's limit of about
/// one write per document per second is a sustained rate).
const WRITE_RATE_WINDOW: Duration = Duration::from_secs(10);

/// Owns the flush protocol. Used only from the poll thread (directly or in callbacks).
#[derive(Debug)]
pub struct Coordinator {
    cfg: PipelineConfig,
    store: Store,
    rt: Handle,
    workers: Vec<mpsc::Sender<Work>>,
    metrics: Arc<Metrics>,
    partitions: BTreeMap<i32, PartitionState>,
    pending: u64,
    last_flush: Instant,
    /// When each document was written within the last [`WRITE_RATE_WINDOW`].
    last_write: HashMap<String, std::collections::VecDeque<Instant>>,
    /// Cancelled when retries must stop (drain timeout at shutdown).
    give_up: CancellationToken,
    fatal: Option<String>,
    last_derived: Instant,
    derived_task: Option<tokio::task::JoinHandle<()>>,
    inflight: Option<Inflight>,
    /// The checkpoint of the last flush whose counters landed, while it is written; at most
    /// one at a time, so a session's checkpoints land in order.
    saving: Option<Saving>,
    /// A landed flush's checkpoint waiting for `saving` to finish; no flush starts meanwhile.
    to_save: Option<Checkpoint>,
    /// Names this instance in its leases.
    owner: String,
    /// Kafka timestamps of the records dispatched since the last flush.
    produced_ms: Vec<i64>,
    /// The newest of them.
    newest_ms: Option<i64>,
    /// The last poll found nothing to consume.
    idle: bool,
    /// A revoke took the assignment and the next one has not come yet.
    revoked: bool,
    /// Flushes failed in a row for want of dead-letter deliveries.
    dead_letter_failures: u32,
    /// Shared with the workers: records carry the generation they were dispatched in, and
    /// a reset starts a new one (see [`Record::generation`]).
    generation: Arc<AtomicU64>,
    /// The assignment is paused: `max_records_per_flush` records wait for a flush.
    paused: bool,
    last_sweep: Instant,
    sweep_task: Option<tokio::task::JoinHandle<()>>,
    /// Entity documents (names: `products/{id}`, `countries/{cc}`, ...) as this instance last
    /// wrote them: a flush leaves out those it would write the same again, so names cost a
    /// write once per instance rather than at every flush.
    named: HashMap<String, store::DocDelta>,
    /// The totals of this instance's counter shards, as the last landed flush left them
    /// (the flush in flight holds them meanwhile); dropped at every rebalance and reset and
    /// with a failed flush (see [`crate::totals`]).
    totals: Option<Totals>,
}

/// Entity documents remembered at most; beyond, the memory is cleared (and each is written
/// once more).
const MAX_NAMED: usize = 100_000;

/// How often the journal is swept of what crashed instances left (chunks without a manifest
/// older than [`journal::ORPHAN_AGE`], manifests of crashed flushes), besides at each
/// assignment and at a clean stop.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

impl Coordinator {
    /// Record a fatal error: the poll loop stops on it, health turns 503 meanwhile.
    fn set_fatal(&mut self, message: String) {
        self.metrics.set_fatal(&message);
        self.fatal.get_or_insert(message);
    }

    fn worker_for(&self, key: Option<&[u8]>) -> usize {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        (h.finish() % self.workers.len() as u64) as usize
    }

    fn dispatch(&mut self, m: &BorrowedMessage<'_>) {
        let Some(state) = self.partitions.get_mut(&m.partition()) else {
            tracing::warn!(
                partition = m.partition(),
                "record of an unassigned partition"
            );
            return;
        };
        if m.offset() < state.next {
            return; // already persisted (before a reset's seek took effect)
        }
        state.next = m.offset() + 1;
        state.unsaved += 1;
        let replay = m.offset() < state.counted();
        let record = Record {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().map(<[u8]>::to_vec),
            timestamp_ms: m.timestamp().to_millis(),
            generation: self.generation.load(Ordering::Acquire),
            replay,
        };
        let w = self.worker_for(record.key.as_deref());
        self.metrics
            .queued
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if self.workers[w].blocking_send(Work::Record(record)).is_err() {
            self.set_fatal("a worker stopped".into());
        }
        if replay {
            return; // counted already: nothing to flush but its session, nor to time
        }
        self.pending += 1;
        if let Some(ms) = m.timestamp().to_millis() {
            self.produced_ms.push(ms);
            self.newest_ms = Some(self.newest_ms.map_or(ms, |n| n.max(ms)));
        }
    }

    fn flush_due(&self) -> bool {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let since_start = self.last_flush.elapsed();
        Cadence {
            pending: self.pending,
            since_start,
            newest_age_ms: self.newest_ms.map(|ms| now_ms.saturating_sub(ms)),
            idle: self.idle,
        }
        .due(&self.cfg.cadence)
            || (since_start >= self.cfg.cadence.flush_interval
                && (self.cfg.checkpoints.due(&self.unsaved())
                    || self
                        .partitions
                        .values()
                        .any(|s| s.sessions_saved > s.saved())))
    }

    fn unsaved(&self) -> Vec<Unsaved> {
        self.partitions.iter().map(|(p, s)| s.unsaved(*p)).collect()
    }

    /// With `max_records_per_flush` records waiting, the assignment is paused (backpressure)
    /// until a flush takes them; the poll loop keeps polling, so rebalances are still served.
    /// librdkafka resumes a partition after the last record it handed over.
    pub fn hold_back(&mut self, consumer: &BaseConsumer<AnalyticsContext>) {
        let hold = self.cfg.cadence.holds_back(self.pending);
        if hold != self.paused {
            self.set_paused(consumer, hold);
        }
    }

    fn set_paused(&mut self, consumer: &BaseConsumer<AnalyticsContext>, pause: bool) {
        let result = consumer.assignment().and_then(|tpl| {
            if pause {
                consumer.pause(&tpl)
            } else {
                consumer.resume(&tpl)
            }
        });
        match result {
            Ok(()) => self.paused = pause,
            Err(e) => {
                tracing::warn!(error = %e, pause, "pausing or resuming the assignment failed")
            }
        }
    }

    /// Every partition is being taken away (eager rebalancing): forget what is not persisted
    /// (whoever owns each partition next resumes at its marker) rather than make the whole
    /// group wait for another flush. A flush in flight goes on; the next assignment waits
    /// for it. No partition stays paused across assignments.
    fn on_revoke(&mut self, consumer: &BaseConsumer<AnalyticsContext>) {
        if self.paused {
            self.set_paused(consumer, false);
        }
        self.paused = false;
        tracing::info!(
            partitions = self.partitions.len(),
            records = self.pending,
            "partitions revoked; records not persisted yet are left to their next owner"
        );
        self.revoked = true;
        self.reset_workers();
        self.partitions.clear();
        self.totals = None;
        self.pending = 0;
        self.produced_ms.clear();
        self.newest_ms = None;
    }

    fn on_assign(
        &mut self,
        consumer: &BaseConsumer<AnalyticsContext>,
        tpl: &mut TopicPartitionList,
    ) -> anyhow::Result<()> {
        // A flush from before the revoke lands first: the markers read below include it, and
        // the sessions the workers read back are up to date.
        if let Err(e) = self.finish_inflight(consumer) {
            if self.fatal.is_some() {
                return Err(e);
            }
            tracing::warn!(error = %e, "the flush in flight at the rebalance failed; resuming from the markers");
        }
        self.abandon_checkpoints();
        self.reset_workers();
        self.totals = None;
        let assigned: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        let mut markers = Vec::with_capacity(assigned.len());
        for (topic, p) in assigned {
            markers.push((topic, p, self.read_marker(p)?));
        }
        self.apply_landed_flushes()?;
        let mut leases = self.take_leases(&markers.iter().map(|m| m.1).collect::<Vec<_>>())?;
        let n = markers.len();
        for (i, (topic, p, marker)) in markers.into_iter().enumerate() {
            let mut state = PartitionState::resume(marker, self.cfg.checkpoints.stagger(i, n));
            state.lease = leases.remove(&p);
            tpl.set_partition_offset(&topic, p, state.seek())?;
            tracing::info!(
                partition = p,
                next = state.counted(),
                replay_from = state.next,
                "partition assigned"
            );
            self.partitions.insert(p, state);
        }
        self.pending = 0;
        self.revoked = false;
        Ok(())
    }

    /// Apply every journalled flush whose manifest has landed, after the markers were read:
    /// then every flush the markers include is applied before a worker reads a session back.
    /// The previous owner of a partition may still be applying its last flush (a revoke does
    /// not wait for it); read before the markers, its chunks could be missed while the
    /// markers already skip its records, and a session read back would lack them (an end
    /// whose start is not there yet was dead-lettered as `session_not_started`).
    fn apply_landed_flushes(&self) -> anyhow::Result<()> {
        self.rt
            .block_on(journal::recover(&self.store, &self.give_up))
            .context("journal recovery")?;
        Ok(())
    }

    fn take_leases(&self, partitions: &[i32]) -> anyhow::Result<BTreeMap<i32, Lease>> {
        let (store, give_up) = (&self.store, &self.give_up);
        self.rt
            .block_on(checkpoint::take_leases(
                store,
                (&self.cfg.group, &self.cfg.topic),
                partitions,
                &self.owner,
                give_up,
            ))
            .context("writing the partitions' leases")
    }

    /// Wait for the checkpoint being written and drop the one waiting (a rebalance or a
    /// reset: the partitions resume from their markers, replaying into their sessions).
    fn abandon_checkpoints(&mut self) {
        self.to_save = None;
        if let Some(saving) = self.saving.take() {
            match self.rt.block_on(saving.task) {
                Ok(Ok(stats)) => self.metrics.sessions_saved(&stats),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "a checkpoint failed; its partitions replay from their markers")
                }
                Err(e) => tracing::warn!(error = %e, "a checkpoint task failed"),
            }
        }
    }

    fn read_marker(&self, p: i32) -> anyhow::Result<Option<Marker>> {
        let (store, give_up, group, topic) =
            (&self.store, &self.give_up, &self.cfg.group, &self.cfg.topic);
        self.rt
            .block_on(store::retry::with_retry("read marker", give_up, || {
                journal::read_marker(store, group, topic, p)
            }))
            .with_context(|| format!("reading the offset marker of partition {p}"))
    }

    fn reset_workers(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let acks: Vec<_> = self
            .workers
            .iter()
            .filter_map(|w| {
                let (tx, rx) = oneshot::channel();
                w.blocking_send(Work::Reset(tx)).ok().map(|()| rx)
            })
            .collect();
        self.rt.block_on(join_all(acks));
    }

    /// Forget everything not persisted and resume every partition at its marker.
    fn reset(&mut self, consumer: &BaseConsumer<AnalyticsContext>) -> anyhow::Result<()> {
        self.metrics
            .resets
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.abandon_checkpoints();
        self.reset_workers();
        self.totals = None;
        self.produced_ms.clear();
        self.newest_ms = None;
        // Resumed first: a seek is not to be undone by a later resume.
        if self.paused {
            self.set_paused(consumer, false);
        }
        let partitions: Vec<i32> = self.partitions.keys().copied().collect();
        let n = partitions.len();
        for (i, p) in partitions.into_iter().enumerate() {
            let marker = self.read_marker(p)?;
            let mut state = PartitionState::resume(marker, self.cfg.checkpoints.stagger(i, n));
            state.lease = self.partitions.get(&p).and_then(|s| s.lease.clone());
            consumer
                .seek(&self.cfg.topic, p, state.seek(), Duration::from_secs(10))
                .with_context(|| format!("seeking partition {p}"))?;
            self.partitions.insert(p, state);
        }
        self.apply_landed_flushes()?;
        self.pending = 0;
        Ok(())
    }

    /// Hand everything dispatched so far to a background persistence of its counters, after
    /// the previous one has completed (so at most one flush is in flight, and markers
    /// advance in order). Once they land, its checkpoint's session documents are written
    /// while the next flush fills (see [`crate::checkpoint`]). With `wait`, also wait for
    /// both, then move the markers to the sessions saved: everything dispatched is durable,
    /// its offsets committed and its sessions in their documents.
    fn flush(
        &mut self,
        consumer: &BaseConsumer<AnalyticsContext>,
        reason: &str,
        wait: bool,
    ) -> anyhow::Result<()> {
        if wait {
            self.finish_inflight(consumer)?;
            self.finish_saving(consumer)?;
        } else {
            // The poll loop never waits for a flush: it must keep answering rebalances.
            self.poll_inflight(consumer)?;
            self.poll_saving(consumer)?;
            if self.inflight.is_some() || self.to_save.is_some() || !self.flush_due() {
                return Ok(());
            }
        }
        // At shutdown every partition's sessions are written; otherwise those due.
        let checkpoint: BTreeSet<i32> = if wait {
            self.partitions.keys().copied().collect()
        } else {
            self.cfg
                .checkpoints
                .choose(&self.unsaved(), self.last_flush.elapsed())
        };
        let mut advances: Vec<Advance> = self
            .partitions
            .iter()
            .filter_map(|(p, s)| s.advance(*p, true))
            .collect();
        if advances.is_empty() && checkpoint.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let mut offsets = Vec::with_capacity(checkpoint.len());
        for p in &checkpoint {
            if let Some(s) = self.partitions.get_mut(p) {
                s.checkpointed = started;
                s.unsaved = 0;
                offsets.push((*p, s.next));
            }
        }
        let collected = self
            .rt
            .block_on(collect(&self.workers, Arc::new(checkpoint)));
        let (deltas, sessions, dead_letters) = match collected {
            Ok(x) => x,
            Err(e) => return self.failed(consumer, e),
        };
        // The owner of a partition is its shards' only writer: the lowest one owned.
        let writer = self.partitions.keys().next().copied().unwrap_or_default();
        let mut docs = store::schema::shard_counters(deltas.docs, writer);
        let entities = self.unnamed(&mut docs);
        // A flush writing shards moves the writer's marker, even without records of its own
        // there: no one else's flush writes those shards meanwhile (see `crate::totals`).
        let writes_shards = docs.keys().any(|p| DocKind::of(p) == DocKind::Counter);
        if writes_shards && !advances.iter().any(|a| a.partition == writer) {
            if let Some(s) = self.partitions.get(&writer) {
                advances.push(s.touch(writer));
            }
        }
        let batch = journal::Batch {
            deltas: docs,
            advances,
            writer,
        };
        let checkpoint = Checkpoint {
            sessions: sessions
                .into_iter()
                .map(|(p, d)| (p, d.docs.into_iter().collect()))
                .collect(),
            offsets,
        };
        tracing::debug!(
            reason,
            records = self.pending,
            docs = batch.deltas.len(),
            sessions = checkpoint
                .sessions
                .values()
                .map(BTreeMap::len)
                .sum::<usize>(),
            "flush started"
        );
        self.start(batch, dead_letters, entities, checkpoint, started);
        if wait {
            self.finish_inflight(consumer)?;
            self.finish_saving(consumer)?;
            // The markers say where the sessions are saved now.
            let advances: Vec<Advance> = self
                .partitions
                .iter()
                .filter_map(|(p, s)| s.advance(*p, false))
                .collect();
            if !advances.is_empty() {
                let batch = journal::Batch {
                    deltas: BTreeMap::new(),
                    advances,
                    writer,
                };
                self.start(
                    batch,
                    Vec::new(),
                    Vec::new(),
                    Checkpoint::default(),
                    Instant::now(),
                );
                self.finish_inflight(consumer)?;
            }
        }
        Ok(())
    }

    /// Persist `batch` in the background, once `dead_letters` are delivered; its records are
    /// the ones dispatched since the last flush.
    fn start(
        &mut self,
        batch: journal::Batch,
        dead_letters: Vec<rdkafka::producer::DeliveryFuture>,
        entities: Vec<(String, store::DocDelta)>,
        checkpoint: Checkpoint,
        started: Instant,
    ) {
        let paths: Vec<String> = batch.deltas.keys().cloned().collect();
        let mut totals = self
            .totals
            .take()
            .filter(|t| t.writer() == batch.writer)
            .unwrap_or_else(|| Totals::new(batch.writer));
        let (store, give_up, group, topic) = (
            self.store.clone(),
            self.give_up.clone(),
            self.cfg.group.clone(),
            self.cfg.topic.clone(),
        );
        let task = self.rt.spawn(async move {
            // Dead letters must be durable before their offsets are.
            for d in join_all(dead_letters).await {
                match d {
                    Ok(Ok(_)) => {}
                    Ok(Err((e, _))) => return Err(Failure::DeadLetter(e.to_string())),
                    Err(_) => return Err(Failure::DeadLetter("delivery cancelled".into())),
                }
            }
            let mut batch = batch;
            let prepared = totals
                .prepare(&store, &mut batch.deltas, &give_up)
                .await
                .map_err(Failure::Store)?;
            let (markers, mut stats) = journal::flush(&store, &group, &topic, batch, &give_up)
                .await
                .map_err(Failure::Store)?;
            stats.shards_read = prepared.read as u64;
            stats.shards_whole = prepared.whole as u64;
            Ok((markers, stats, totals))
        });
        let produced_ms = std::mem::take(&mut self.produced_ms);
        self.newest_ms = None;
        self.inflight = Some(Inflight {
            task,
            paths,
            started,
            produced_ms,
            entities,
            checkpoint,
        });
        self.last_flush = started;
        self.pending = 0;
    }

    /// Write the checkpoint waiting, unless one is being written.
    fn start_saving(&mut self) {
        if self.saving.is_some() {
            return;
        }
        let Some(Checkpoint { sessions, offsets }) = self.to_save.take() else {
            return;
        };
        let leases: Option<BTreeMap<i32, Lease>> = offsets
            .iter()
            .map(|(p, _)| Some((*p, self.partitions.get(p)?.lease.clone()?)))
            .collect();
        // A partition revoked since its flush: the checkpoint is dropped, and its next owner
        // replays from the marker (never write without the lease).
        let Some(mut leases) = leases else {
            return;
        };
        let parts: Vec<(Lease, BTreeMap<String, store::DocDelta>)> = sessions
            .into_iter()
            .filter_map(|(p, docs)| Some((leases.remove(&p)?, docs)))
            .collect();
        let (store, give_up) = (self.store.clone(), self.give_up.clone());
        let task = self.rt.spawn(async move {
            if parts.is_empty() {
                return Ok(journal::FlushStats::default());
            }
            checkpoint::save(&store, parts, &give_up)
                .await
                .map_err(Failure::Store)
        });
        self.saving = Some(Saving { task, offsets });
    }

    /// Land the checkpoint being written once it is done (no waiting), and start the next.
    fn poll_saving(&mut self, consumer: &BaseConsumer<AnalyticsContext>) -> anyhow::Result<()> {
        if self.saving.as_ref().is_some_and(|s| s.task.is_finished()) {
            self.land_saving(consumer)?;
        }
        self.start_saving();
        Ok(())
    }

    /// Wait until every checkpoint of a landed flush is written.
    fn finish_saving(&mut self, consumer: &BaseConsumer<AnalyticsContext>) -> anyhow::Result<()> {
        self.start_saving();
        while self.saving.is_some() {
            self.land_saving(consumer)?;
            self.start_saving();
        }
        Ok(())
    }

    /// Wait for the checkpoint being written: its partitions' sessions are saved up to its
    /// offsets.
    fn land_saving(&mut self, consumer: &BaseConsumer<AnalyticsContext>) -> anyhow::Result<()> {
        let Some(saving) = self.saving.take() else {
            return Ok(());
        };
        match self.rt.block_on(saving.task) {
            Ok(Ok(stats)) => {
                for (p, offset) in saving.offsets {
                    if let Some(s) = self.partitions.get_mut(&p) {
                        s.sessions_saved = s.sessions_saved.max(offset);
                    }
                }
                self.metrics.sessions_saved(&stats);
                Ok(())
            }
            Ok(Err(failure)) => self.failed(consumer, failure),
            Err(e) => self.failed(
                consumer,
                Failure::Internal(format!("checkpoint task failed: {e}")),
            ),
        }
    }

    /// Leave out of `docs` the entity documents this instance wrote the same before; returns
    /// the ones left in (remembered once the flush lands).
    fn unnamed(
        &self,
        docs: &mut BTreeMap<String, store::DocDelta>,
    ) -> Vec<(String, store::DocDelta)> {
        let mut left = Vec::new();
        docs.retain(|path, delta| {
            if DocKind::of(path) != DocKind::Entity {
                return true;
            }
            if self.named.get(path) == Some(delta) {
                return false;
            }
            left.push((path.clone(), delta.clone()));
            true
        });
        left
    }

    /// Complete the flush in flight, if any, as soon as it is done (no waiting).
    fn poll_inflight(&mut self, consumer: &BaseConsumer<AnalyticsContext>) -> anyhow::Result<()> {
        if self.inflight.as_ref().is_some_and(|f| f.task.is_finished()) {
            self.finish_inflight(consumer)?;
        }
        Ok(())
    }

    /// Wait for the flush in flight; record its markers and commit its offsets to Kafka.
    fn finish_inflight(&mut self, consumer: &BaseConsumer<AnalyticsContext>) -> anyhow::Result<()> {
        let Some(inflight) = self.inflight.take() else {
            return Ok(());
        };
        let topic = self.cfg.topic.clone();
        match self.rt.block_on(inflight.task) {
            Ok(Ok((markers, stats, totals))) => {
                self.totals = Some(totals);
                // Partitions revoked since the flush started are someone else's now (their
                // offsets too): only the ones still owned take the new markers.
                let mut tpl = TopicPartitionList::new();
                let mut persisted = 0;
                for (p, m) in markers {
                    if let Some(s) = self.partitions.get_mut(&p) {
                        let before = s.marker.as_ref().map_or(0, |old| old.next_offset);
                        persisted += (m.next_offset - before).max(0) as u64;
                        tpl.add_partition_offset(&topic, p, Offset::Offset(m.next_offset))?;
                        s.marker = Some(m);
                    }
                }
                let micros = inflight.started.elapsed().as_micros() as u64;
                self.metrics.flushed(micros, &stats);
                self.metrics
                    .persisted_records
                    .fetch_add(persisted, std::sync::atomic::Ordering::Relaxed);
                self.metrics.progressed();
                self.dead_letter_failures = 0;
                self.metrics
                    .fresh(&inflight.produced_ms, chrono::Utc::now().timestamp_millis());
                self.track_write_rate(inflight.paths);
                if self.named.len() > MAX_NAMED {
                    self.named.clear();
                }
                self.named.extend(inflight.entities);
                self.to_save = Some(inflight.checkpoint);
                self.start_saving();
                if tpl.count() > 0 {
                    if let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
                        tracing::warn!(error = %e, "Kafka offset commit failed; the Firestore markers stay authoritative");
                    }
                }
                Ok(())
            }
            Ok(Err(failure)) => self.failed(consumer, failure),
            Err(e) => self.failed(
                consumer,
                Failure::Internal(format!("flush task failed: {e}")),
            ),
        }
    }

    /// Recompute the derived documents of the buckets that landed flushes marked (by any
    /// instance, see [`derived::refresh_pending`]): in the background, one run at a time,
    /// every derived interval by the owner of partition 0 (one writer of the derived
    /// documents however many instances run), or right now by any instance (`wait`, at
    /// shutdown: the last to stop leaves them current).
    fn refresh_derived(&mut self, wait: bool) {
        if !wait
            && (self.last_derived.elapsed() < self.cfg.derived_interval
                || !self.partitions.contains_key(&0))
        {
            return;
        }
        if self.derived_task.as_ref().is_some_and(|t| !t.is_finished()) {
            if !wait {
                return;
            }
            if let Some(t) = self.derived_task.take() {
                let _ = self.rt.block_on(t);
            }
        }
        let (store, weights, top) = (self.store.clone(), self.cfg.weights, self.cfg.trending_top);
        let task = self.rt.spawn(async move {
            if let Err(e) = derived::refresh_pending(&store, weights, top).await {
                tracing::warn!(error = %e, "derived metrics not refreshed; retried at the next refresh");
            }
        });
        self.last_derived = Instant::now();
        if wait {
            let _ = self.rt.block_on(task);
        } else {
            self.derived_task = Some(task);
        }
    }

    /// Every [`SWEEP_INTERVAL`], in the background: finish what crashed flushes of any
    /// instance left (an instance SIGKILLed after its last rebalance leaves its orphans to
    /// whoever sweeps next, not to the next rebalance).
    fn sweep_journal(&mut self) {
        if self.last_sweep.elapsed() < SWEEP_INTERVAL
            || self.sweep_task.as_ref().is_some_and(|t| !t.is_finished())
        {
            return;
        }
        let (store, give_up) = (self.store.clone(), self.give_up.clone());
        self.sweep_task = Some(self.rt.spawn(async move {
            if let Err(e) = journal::recover(&store, &give_up).await {
                tracing::warn!(error = %e, "journal not swept; retried at the next sweep");
            }
        }));
        self.last_sweep = Instant::now();
    }

    /// Dead letters of the flush were not delivered: replay from the markers after a pause
    /// that grows with each failure in a row; stop with an error after
    /// [`MAX_DEAD_LETTER_FAILURES`].
    fn dead_letter_failed(
        &mut self,
        consumer: &BaseConsumer<AnalyticsContext>,
        e: String,
    ) -> anyhow::Result<()> {
        self.metrics
            .flush_failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.dead_letter_failures += 1;
        if self.dead_letter_failures >= MAX_DEAD_LETTER_FAILURES {
            let message = format!(
                "dead-letter delivery failed {} times in a row: {e}",
                self.dead_letter_failures
            );
            self.set_fatal(message.clone());
            return Err(anyhow!(message));
        }
        let pause = Duration::from_millis(500 << self.dead_letter_failures);
        tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "dead-letter delivery failed; replaying from the markers");
        let _ = self
            .rt
            .block_on(async { tokio::time::timeout(pause, self.give_up.cancelled()).await });
        self.reset(consumer)
    }

    fn failed(
        &mut self,
        consumer: &BaseConsumer<AnalyticsContext>,
        failure: Failure,
    ) -> anyhow::Result<()> {
        let e = match failure {
            Failure::DeadLetter(e) => return self.dead_letter_failed(consumer, e),
            Failure::Internal(e) => {
                let message = format!("analytics cannot go on: {e}");
                self.set_fatal(message.clone());
                return Err(anyhow!(message));
            }
            Failure::Store(e) => e,
        };
        self.metrics
            .flush_failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.metrics
            .firestore_errors
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match e {
            StoreError::Conflict { .. } => {
                tracing::warn!(error = %e, "another consumer advanced a marker first; resuming from the markers");
                self.reset(consumer)
            }
            StoreError::Transient { .. } => {
                Err(anyhow!("gave up persisting after the drain timeout: {e}"))
            }
            StoreError::Permanent { .. } => {
                let message = format!("Firestore refused the writes: {e}");
                self.set_fatal(message.clone());
                Err(anyhow!(message))
            }
        }
    }

    /// Each landed flush wrote its documents now: the highest rate of writes to one document,
    /// sustained over [`WRITE_RATE_WINDOW`], goes to the metric.
    fn track_write_rate(&mut self, paths: Vec<String>) {
        let now = Instant::now();
        let mut most = 0;
        for p in paths {
            let writes = self.last_write.entry(p).or_default();
            writes.push_back(now);
            while writes
                .front()
                .is_some_and(|t| now.duration_since(*t) > WRITE_RATE_WINDOW)
            {
                writes.pop_front();
            }
            most = most.max(writes.len());
        }
        let rate = most as f64 / WRITE_RATE_WINDOW.as_secs_f64();
        self.metrics
            .max_doc_writes_per_second_milli
            .fetch_max((rate * 1000.0) as u64, std::sync::atomic::Ordering::Relaxed);
        if self.last_write.len() > 1_000_000 {
            self.last_write.clear();
        }
    }
}

/// What the workers hand over at a barrier: counters and names, the checkpointed partitions'
/// session documents, dead-letter deliveries.
type Collected = (
    Deltas,
    BTreeMap<i32, Deltas>,
    Vec<rdkafka::producer::DeliveryFuture>,
);

/// Barrier: every worker hands over its batch.
async fn collect(
    workers: &[mpsc::Sender<Work>],
    checkpoint: Arc<BTreeSet<i32>>,
) -> Result<Collected, Failure> {
    let mut replies = Vec::with_capacity(workers.len());
    for w in workers {
        let (tx, rx) = oneshot::channel();
        if w.send(Work::Barrier(tx, checkpoint.clone())).await.is_ok() {
            replies.push(rx);
        }
    }
    let mut deltas = Deltas::default();
    let mut sessions: BTreeMap<i32, Deltas> = BTreeMap::new();
    let mut dead_letters = Vec::new();
    for rx in replies {
        match rx.await {
            Ok(Ok(batch)) => {
                deltas.merge(batch.deltas);
                for (p, d) in batch.sessions {
                    sessions.entry(p).or_default().merge(d);
                }
                dead_letters.extend(batch.dead_letters);
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(Failure::Internal("a worker stopped".into())),
        }
    }
    Ok((deltas, sessions, dead_letters))
}

impl AnalyticsContext {
    pub fn new(coordinator: Arc<Mutex<Coordinator>>, metrics: Arc<Metrics>) -> Self {
        AnalyticsContext {
            observed: ObservedContext::default(),
            coordinator,
            metrics,
        }
    }
}

impl Coordinator {
    pub fn new(
        cfg: PipelineConfig,
        store: Store,
        workers: Vec<mpsc::Sender<Work>>,
        metrics: Arc<Metrics>,
        give_up: CancellationToken,
        generation: Arc<AtomicU64>,
    ) -> Self {
        Coordinator {
            cfg,
            store,
            rt: Handle::current(),
            workers,
            metrics,
            partitions: BTreeMap::new(),
            pending: 0,
            last_flush: Instant::now(),
            last_write: HashMap::new(),
            give_up,
            fatal: None,
            last_derived: Instant::now(),
            derived_task: None,
            inflight: None,
            saving: None,
            to_save: None,
            owner: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4()),
            produced_ms: Vec::new(),
            newest_ms: None,
            idle: false,
            revoked: false,
            dead_letter_failures: 0,
            generation,
            paused: false,
            last_sweep: Instant::now(),
            sweep_task: None,
            named: HashMap::new(),
            totals: None,
        }
    }

    /// One turn of the poll loop after a poll: dispatch what it returned, land or start a
    /// flush, refresh derived documents and sweep the journal when due. An error stops the
    /// loop.
    pub fn step(
        &mut self,
        consumer: &BaseConsumer<AnalyticsContext>,
        message: Option<Result<BorrowedMessage<'_>, KafkaError>>,
    ) -> anyhow::Result<()> {
        if let Some(f) = &self.fatal {
            return Err(anyhow!("{f}"));
        }
        self.idle = message.is_none();
        match message {
            Some(Ok(m)) => self.dispatch(&m),
            Some(Err(KafkaError::MessageConsumptionFatal(code))) => {
                return Err(anyhow!("fatal consumer error: {code}"))
            }
            Some(Err(e)) => tracing::warn!(error = %e, "consumer error"),
            None => {}
        }
        if self.idle && self.pending == 0 && self.inflight.is_none() {
            self.metrics.progressed(); // nothing waiting: not stalled
        }
        if let Err(e) = self.flush(consumer, "interval", false) {
            if self.fatal.is_some() {
                return Err(e);
            }
            tracing::warn!(error = %e, "flush failed");
        }
        self.refresh_derived(false);
        self.sweep_journal();
        let unsaved = self
            .partitions
            .values()
            .map(|s| (s.next - s.sessions_saved.max(s.saved())).max(0) as u64)
            .sum();
        self.metrics
            .unsaved_records
            .store(unsaved, Ordering::Relaxed);
        Ok(())
    }

    /// Not ready for a final flush that leaves every session document complete: a rebalance
    /// took the assignment and has not given the next one yet, or some partition is still
    /// replaying records counted before into its sessions. A revoke drops the sessions not
    /// checkpointed and the next owner replays them; an instance that stopped in between
    /// would leave that replay to no one when it is the last to stop.
    pub fn unsettled(&self) -> bool {
        self.revoked || self.partitions.values().any(|s| s.next < s.counted())
    }

    /// At shutdown: persist everything dispatched (retries stop when `give_up` is
    /// cancelled), remove every journal chunk without a manifest (what crashed instances
    /// left, however young), and bring the derived documents up to date.
    pub fn drain(&mut self, consumer: &BaseConsumer<AnalyticsContext>) -> anyhow::Result<()> {
        let result = self.flush(consumer, "shutdown", true);
        if let Some(t) = self.sweep_task.take() {
            let _ = self.rt.block_on(t);
        }
        let swept = self.rt.block_on(journal::recover_older_than(
            &self.store,
            &self.give_up,
            chrono::TimeDelta::zero(),
        ));
        if let Err(e) = swept {
            tracing::warn!(error = %e, "journal not swept at shutdown; the next recovery does it");
        }
        self.refresh_derived(true);
        result
    }
}
