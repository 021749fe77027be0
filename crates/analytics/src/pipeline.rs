//! The consumer side: one poll loop (on a blocking thread) owns the Kafka consumer, routes
//! each record to a worker by its key (so a session's events keep their order), and every
//! flush interval collects the workers' deltas with a barrier and persists them with their
//! offsets ([`journal`]) in the background while consumption goes on; one flush at a time is
//! in flight, the next barrier waits for it. Kafka offsets are committed only after that;
//! they are a hint, the Firestore markers are the truth, and a partition is always resumed
//! from its marker.
//!
//! Backpressure: worker queues are bounded; when one is full the poll loop blocks, stops
//! polling, and librdkafka's own bounded prefetch fills and stops fetching. With
//! `max_records_per_flush` records waiting for a flush, the assignment is paused and the loop
//! keeps polling, so rebalances are served while a slow flush lands.
//! Rebalances: the poll loop never waits for a flush in flight, so it answers a rebalance at
//! once; the revoke callback discards what is not persisted yet (whoever owns a partition
//! next resumes at its marker) instead of persisting it while the whole group waits. The
//! assign callback first lets the flush in flight land, applies any journal a crashed flush
//! left, then starts each partition at its marker.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use events::Currency;
use futures::future::join_all;
use platform::{KafkaSettings, ObservedContext};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::FutureProducer;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::deltas::Deltas;
use crate::derived;
use crate::journal::{self, Marker};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};
use crate::worker::{self, Failure, Record, Work, WorkerContext};

/// Settings of the consumer pipeline.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub topic: String,
    pub group: String,
    pub dlq_topic: String,
    pub workers: usize,
    /// Capacity of each worker's queue. When full, the poll loop waits (backpressure).
    pub queue_capacity: usize,
    /// Deltas are coalesced in memory this long, so no document is written more often.
    pub flush_interval: Duration,
    /// Behind by more than this, flushes wait this long (or for `max_records_per_flush`).
    pub catch_up_interval: Duration,
    /// At most this many records wait for a flush; beyond, consumption pauses until the
    /// flush is due (bounds memory and commit size without flushing more often).
    pub max_records_per_flush: u64,
    pub currency: Currency,
    pub max_event_bytes: usize,
    pub session_capacity: usize,
    /// How long a shutdown may spend draining and persisting before giving up (offsets are
    /// then not committed, and the events are processed again on restart).
    pub drain_timeout: Duration,
    /// How often the derived documents of the buckets touched since are recomputed.
    pub derived_interval: Duration,
    pub weights: derived::Weights,
    pub trending_top: usize,
    pub window: worker::EventWindow,
    pub dlq_max_bytes: usize,
}

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

fn lock(c: &Mutex<Coordinator>) -> MutexGuard<'_, Coordinator> {
    c.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Debug)]
struct PartitionState {
    marker: Option<Marker>,
    /// Next offset to dispatch: everything below is with the workers or persisted.
    next: i64,
}

/// The outcome of a background flush: the partitions' new markers.
type FlushOutcome = Result<(Vec<(i32, Marker)>, journal::FlushStats), Failure>;

/// A flush being persisted while consumption goes on.
struct Inflight {
    task: tokio::task::JoinHandle<FlushOutcome>,
    /// The documents it writes, for the write-rate metric.
    paths: Vec<String>,
    started: Instant,
    /// Kafka timestamps (ms) of its records, for the freshness metric.
    produced_ms: Vec<i64>,
}

/// The window over which the per-document write rate is measured (Firestore's limit of about
/// one write per document per second is a sustained rate).
const WRITE_RATE_WINDOW: Duration = Duration::from_secs(10);

/// What decides whether a flush is due.
#[derive(Debug, Clone, Copy)]
struct Cadence {
    /// Records dispatched since the last flush.
    pending: u64,
    /// Time since the last flush started.
    since_start: Duration,
    /// Age of the newest of those records (from its Kafka timestamp).
    newest_age_ms: Option<i64>,
    /// The last poll found nothing to consume.
    idle: bool,
}

impl Cadence {
    /// A flush is due once the interval has passed since the last one started (and that one
    /// has landed: one is in flight at a time). A flush writes a document at most once, so no
    /// document is written more than once per interval sustained, whatever the input rate.
    ///
    /// Catching up (even the newest record waiting is older than `catch_up_interval`, and
    /// more keep coming), the aggregates are late anyway: flushes then wait for
    /// `max_records_per_flush` records or `catch_up_interval`, and fewer, larger flushes
    /// write far fewer documents per event.
    fn due(self, cfg: &PipelineConfig) -> bool {
        if self.pending == 0 || self.since_start < cfg.flush_interval {
            return false;
        }
        let behind = self
            .newest_age_ms
            .is_some_and(|age| age > cfg.catch_up_interval.as_millis() as i64);
        !behind
            || self.idle
            || self.pending >= cfg.max_records_per_flush
            || self.since_start >= cfg.catch_up_interval
    }
}

/// Owns the flush protocol. Used only from the poll thread (directly or in callbacks).
struct Coordinator {
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
    /// Kafka timestamps of the records dispatched since the last flush.
    produced_ms: Vec<i64>,
    /// The newest of them.
    newest_ms: Option<i64>,
    /// The last poll found nothing to consume.
    idle: bool,
    /// Flushes failed in a row for want of dead-letter deliveries.
    dead_letter_failures: u32,
    /// The assignment is paused: `max_records_per_flush` records wait for a flush.
    paused: bool,
    last_sweep: Instant,
    sweep_task: Option<tokio::task::JoinHandle<()>>,
}

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
        let record = Record {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().map(<[u8]>::to_vec),
            timestamp_ms: m.timestamp().to_millis(),
        };
        let w = self.worker_for(record.key.as_deref());
        self.metrics
            .queued
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if self.workers[w].blocking_send(Work::Record(record)).is_err() {
            self.set_fatal("a worker stopped".into());
        }
        self.pending += 1;
        if let Some(ms) = m.timestamp().to_millis() {
            self.produced_ms.push(ms);
            self.newest_ms = Some(self.newest_ms.map_or(ms, |n| n.max(ms)));
        }
    }

    fn flush_due(&self) -> bool {
        let now_ms = chrono::Utc::now().timestamp_millis();
        Cadence {
            pending: self.pending,
            since_start: self.last_flush.elapsed(),
            newest_age_ms: self.newest_ms.map(|ms| now_ms.saturating_sub(ms)),
            idle: self.idle,
        }
        .due(&self.cfg)
    }

    /// With `max_records_per_flush` records waiting, the assignment is paused (backpressure)
    /// until a flush takes them; the poll loop keeps polling, so rebalances are still served.
    /// librdkafka resumes a partition after the last record it handed over.
    fn hold_back(&mut self, consumer: &BaseConsumer<AnalyticsContext>) {
        let hold = self.pending >= self.cfg.max_records_per_flush;
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
        if self.pending > 0 {
            tracing::info!(
                records = self.pending,
                "partitions revoked; records not persisted yet are left to their next owner"
            );
        }
        self.reset_workers();
        self.partitions.clear();
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
        let (store, give_up) = (self.store.clone(), self.give_up.clone());
        self.rt
            .block_on(journal::recover(&store, &give_up))
            .context("journal recovery")?;
        self.reset_workers();
        let assigned: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        for (topic, p) in assigned {
            let marker = self.read_marker(p)?;
            let offset = marker
                .as_ref()
                .map_or(Offset::Beginning, |m| Offset::Offset(m.next_offset));
            tpl.set_partition_offset(&topic, p, offset)?;
            let next = marker.as_ref().map_or(0, |m| m.next_offset);
            tracing::info!(partition = p, next, "partition assigned");
            self.partitions.insert(p, PartitionState { marker, next });
        }
        self.pending = 0;
        Ok(())
    }

    fn read_marker(&self, p: i32) -> anyhow::Result<Option<Marker>> {
        let (store, give_up, group, topic) =
            (&self.store, &self.give_up, &self.cfg.group, &self.cfg.topic);
        self.rt
            .block_on(journal::with_retry("read marker", give_up, || {
                journal::read_marker(store, group, topic, p)
            }))
            .with_context(|| format!("reading the offset marker of partition {p}"))
    }

    fn reset_workers(&self) {
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
        self.reset_workers();
        self.produced_ms.clear();
        self.newest_ms = None;
        // Resumed first: a seek is not to be undone by a later resume.
        if self.paused {
            self.set_paused(consumer, false);
        }
        let partitions: Vec<i32> = self.partitions.keys().copied().collect();
        for p in partitions {
            let marker = self.read_marker(p)?;
            let next = marker.as_ref().map_or(0, |m| m.next_offset);
            let offset = marker
                .as_ref()
                .map_or(Offset::Beginning, |_| Offset::Offset(next));
            consumer
                .seek(&self.cfg.topic, p, offset, Duration::from_secs(10))
                .with_context(|| format!("seeking partition {p}"))?;
            self.partitions.insert(p, PartitionState { marker, next });
        }
        self.pending = 0;
        Ok(())
    }

    /// Hand everything dispatched so far to a background persistence, after the previous one
    /// has completed (so at most one flush is in flight, and markers advance in order).
    /// With `wait`, also wait for this one: then everything dispatched is durable and its
    /// offsets committed.
    fn flush(
        &mut self,
        consumer: &BaseConsumer<AnalyticsContext>,
        reason: &str,
        wait: bool,
    ) -> anyhow::Result<()> {
        if wait {
            self.finish_inflight(consumer)?;
        } else {
            // The poll loop never waits for a flush: it must keep answering rebalances.
            self.poll_inflight(consumer)?;
            if self.inflight.is_some() || !self.flush_due() {
                return Ok(());
            }
        }
        let advances: Vec<(i32, i64, Option<Marker>)> = self
            .partitions
            .iter()
            .filter(|(_, s)| {
                s.marker
                    .as_ref()
                    .map_or(s.next > 0, |m| s.next > m.next_offset)
            })
            .map(|(p, s)| (*p, s.next, s.marker.clone()))
            .collect();
        if advances.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let (deltas, dead_letters) = match self.rt.block_on(collect(&self.workers)) {
            Ok(x) => x,
            Err(e) => return self.failed(consumer, e),
        };
        let paths: Vec<String> = deltas.docs.keys().cloned().collect();
        let batch = journal::Batch {
            deltas: deltas.docs,
            advances,
        };
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
            journal::flush(&store, &group, &topic, batch, &give_up)
                .await
                .map_err(Failure::Store)
        });
        tracing::debug!(
            reason,
            records = self.pending,
            docs = paths.len(),
            "flush started"
        );
        let produced_ms = std::mem::take(&mut self.produced_ms);
        self.newest_ms = None;
        self.inflight = Some(Inflight {
            task,
            paths,
            started,
            produced_ms,
        });
        self.last_flush = started;
        self.pending = 0;
        if wait {
            self.finish_inflight(consumer)?;
        }
        Ok(())
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
            Ok(Ok((markers, stats))) => {
                // Partitions revoked since the flush started are someone else's now (their
                // offsets too): only the ones still owned take the new markers.
                let mut tpl = TopicPartitionList::new();
                for (p, m) in markers {
                    if let Some(s) = self.partitions.get_mut(&p) {
                        tpl.add_partition_offset(&topic, p, Offset::Offset(m.next_offset))?;
                        s.marker = Some(m);
                    }
                }
                let micros = inflight.started.elapsed().as_micros() as u64;
                self.metrics.flushed(micros, stats.writes, stats.commits);
                self.metrics.progressed();
                self.dead_letter_failures = 0;
                self.metrics
                    .fresh(&inflight.produced_ms, chrono::Utc::now().timestamp_millis());
                self.track_write_rate(inflight.paths);
                if tpl.count() > 0 {
                    if let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
                        tracing::warn!(error = %e, "Kafka offset commit failed; the Firestore markers stay authoritative");
                    }
                }
                Ok(())
            }
            Ok(Err(Failure::DeadLetter(e))) => self.dead_letter_failed(consumer, e),
            Ok(Err(Failure::Store(e))) => self.failed(consumer, Failure::Store(e)),
            Err(e) => self.failed(
                consumer,
                Failure::Store(StoreError::Permanent {
                    code: firestore::gcloud_sdk::tonic::Code::Internal,
                    message: format!("flush task failed: {e}"),
                }),
            ),
        }
    }

    /// Recompute the derived documents of the buckets that landed flushes marked (by any
    /// instance, see [`derived::refresh_pending`]): in the background, one run at a time,
    /// every derived interval, or right now (`wait`, at shutdown).
    fn refresh_derived(&mut self, wait: bool) {
        if !wait && self.last_derived.elapsed() < self.cfg.derived_interval {
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

/// Barrier: every worker hands over its batch.
async fn collect(
    workers: &[mpsc::Sender<Work>],
) -> Result<(Deltas, Vec<rdkafka::producer::DeliveryFuture>), Failure> {
    let mut replies = Vec::with_capacity(workers.len());
    for w in workers {
        let (tx, rx) = oneshot::channel();
        if w.send(Work::Barrier(tx)).await.is_ok() {
            replies.push(rx);
        }
    }
    let mut deltas = Deltas::default();
    let mut dead_letters = Vec::new();
    for rx in replies {
        match rx.await {
            Ok(Ok(batch)) => {
                deltas.merge(batch.deltas);
                dead_letters.extend(batch.dead_letters);
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(Failure::Store(StoreError::Permanent {
                    code: firestore::gcloud_sdk::tonic::Code::Internal,
                    message: "a worker stopped".into(),
                }))
            }
        }
    }
    Ok((deltas, dead_letters))
}

/// Run the pipeline until `shutdown`, then drain, persist, commit and leave the group.
pub async fn run(
    cfg: PipelineConfig,
    kafka: KafkaSettings,
    store: Store,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let give_up = CancellationToken::new();
    let dlq: FutureProducer<ObservedContext> = kafka
        .client_config("analytics-dlq")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "60000")
        .create_with_context(ObservedContext::default())
        .context("creating the dead-letter producer")?;
    let mut senders = Vec::with_capacity(cfg.workers);
    let mut handles = Vec::with_capacity(cfg.workers);
    let worker_ctx = WorkerContext {
        store: store.clone(),
        dlq,
        dlq_topic: cfg.dlq_topic.clone(),
        source_topic: cfg.topic.clone(),
        currency: cfg.currency,
        max_event_bytes: cfg.max_event_bytes,
        window: cfg.window,
        dlq_max_bytes: cfg.dlq_max_bytes,
        session_capacity: cfg.session_capacity,
        metrics: metrics.clone(),
        stop: give_up.clone(),
    };
    for _ in 0..cfg.workers.max(1) {
        let (tx, rx) = mpsc::channel(cfg.queue_capacity.max(1));
        senders.push(tx);
        handles.push(tokio::spawn(worker::run(worker_ctx.clone(), rx)));
    }
    let coordinator = Arc::new(Mutex::new(Coordinator {
        cfg: cfg.clone(),
        store,
        rt: Handle::current(),
        workers: senders,
        metrics: metrics.clone(),
        partitions: BTreeMap::new(),
        pending: 0,
        last_flush: Instant::now(),
        last_write: HashMap::new(),
        give_up: give_up.clone(),
        fatal: None,
        last_derived: Instant::now(),
        derived_task: None,
        inflight: None,
        produced_ms: Vec::new(),
        newest_ms: None,
        idle: false,
        dead_letter_failures: 0,
        paused: false,
        last_sweep: Instant::now(),
        sweep_task: None,
    }));
    let context = AnalyticsContext {
        observed: ObservedContext::default(),
        coordinator: coordinator.clone(),
        metrics: metrics.clone(),
    };
    let mut config = kafka.client_config("analytics");
    // Failover: a killed instance's partitions move after the session timeout. The broker's
    // minimum (group.min.session.timeout.ms) is 6 s by default; heartbeats every 1.5 s keep a
    // live member well inside it. KAFKA_CLIENT_CONFIG may override both.
    for (key, value) in [
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "1500"),
    ] {
        if config.get(key).is_none() {
            config.set(key, value);
        }
    }
    let consumer: BaseConsumer<AnalyticsContext> = config
        .set("group.id", &cfg.group)
        // Offsets are committed by the flush, after Firestore has the data.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // A group with no marker starts at the beginning: no backlog is skipped.
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        // Eager rebalancing: every revoke is total and preceded by a full flush, which the
        // reset at assignment relies on. Cooperative (incremental) protocols are not allowed.
        .set("group.protocol", "classic")
        .set("partition.assignment.strategy", "range,roundrobin")
        .set("statistics.interval.ms", "5000")
        // Bounded prefetch: with the workers full, fetching stops.
        .set("queued.max.messages.kbytes", "16384")
        .create_with_context(context)
        .context("creating the consumer")?;
    consumer.subscribe(&[&cfg.topic]).context("subscribing")?;
    // The stall clock starts now: a start-up that never persists anything (recovery retrying
    // an unreachable Firestore, say) turns unhealthy too.
    metrics.progressed();
    tracing::info!(topic = %cfg.topic, group = %cfg.group, workers = cfg.workers, "analytics consuming");

    let drain_timeout = cfg.drain_timeout;
    let poll = tokio::task::spawn_blocking(move || {
        poll_loop(consumer, coordinator, shutdown, give_up, drain_timeout)
    });
    let result = poll.await.context("poll loop panicked")?;
    for h in handles {
        h.abort();
    }
    result
}

fn poll_loop(
    consumer: BaseConsumer<AnalyticsContext>,
    coordinator: Arc<Mutex<Coordinator>>,
    shutdown: CancellationToken,
    give_up: CancellationToken,
    drain_timeout: Duration,
) -> anyhow::Result<()> {
    while !shutdown.is_cancelled() {
        lock(&coordinator).hold_back(&consumer);
        let message = consumer.poll(Duration::from_millis(100));
        let mut c = lock(&coordinator);
        if let Some(f) = &c.fatal {
            return Err(anyhow!("{f}"));
        }
        c.idle = message.is_none();
        match message {
            Some(Ok(m)) => c.dispatch(&m),
            Some(Err(KafkaError::MessageConsumptionFatal(code))) => {
                return Err(anyhow!("fatal consumer error: {code}"))
            }
            Some(Err(e)) => tracing::warn!(error = %e, "consumer error"),
            None => {}
        }
        if c.idle && c.pending == 0 && c.inflight.is_none() {
            c.metrics.progressed(); // nothing waiting: not stalled
        }
        if let Err(e) = c.flush(&consumer, "interval", false) {
            if c.fatal.is_some() {
                return Err(e);
            }
            tracing::warn!(error = %e, "flush failed");
        }
        c.refresh_derived(false);
        c.sweep_journal();
    }
    tracing::info!("draining");
    let rt = lock(&coordinator).rt.clone();
    rt.spawn(async move {
        tokio::time::sleep(drain_timeout).await;
        give_up.cancel();
    });
    let result = lock(&coordinator).flush(&consumer, "shutdown", true);
    {
        // Journal chunks that crashed instances left behind go too.
        let mut c = lock(&coordinator);
        if let Some(t) = c.sweep_task.take() {
            let _ = c.rt.block_on(t);
        }
        let swept = c.rt.block_on(journal::recover_older_than(
            &c.store,
            &c.give_up,
            chrono::TimeDelta::zero(),
        ));
        if let Err(e) = swept {
            tracing::warn!(error = %e, "journal not swept at shutdown; the next recovery does it");
        }
    }
    lock(&coordinator).refresh_derived(true);
    consumer.unsubscribe();
    drop(consumer); // leaves the group
    result.map(|()| tracing::info!("drained, offsets committed, left the group"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PipelineConfig {
        PipelineConfig {
            topic: "t".into(),
            group: "g".into(),
            dlq_topic: "d".into(),
            workers: 1,
            queue_capacity: 1,
            flush_interval: Duration::from_secs(1),
            catch_up_interval: Duration::from_secs(10),
            max_records_per_flush: 1000,
            currency: Currency::try_from("USD".to_owned()).expect("currency"),
            max_event_bytes: 1024,
            session_capacity: 1,
            drain_timeout: Duration::from_secs(1),
            derived_interval: Duration::from_secs(1),
            weights: derived::Weights::parse("view=1,add=3,remove=-2,purchase=5").expect("weights"),
            trending_top: 1,
            window: worker::EventWindow {
                max_age: chrono::TimeDelta::days(30),
                max_lead: chrono::TimeDelta::minutes(5),
            },
            dlq_max_bytes: 900_000,
        }
    }

    fn live(since_ms: u64) -> Cadence {
        Cadence {
            pending: 10,
            since_start: Duration::from_millis(since_ms),
            newest_age_ms: Some(50),
            idle: false,
        }
    }

    #[test]
    fn live_traffic_flushes_every_interval_never_sooner() {
        let cfg = config();
        assert!(!live(999).due(&cfg));
        assert!(live(1000).due(&cfg));
        assert!(
            !Cadence {
                pending: 0,
                ..live(5000)
            }
            .due(&cfg),
            "nothing to flush"
        );
    }

    #[test]
    fn a_backlog_is_flushed_in_large_batches_until_caught_up() {
        let cfg = config();
        let behind = Cadence {
            newest_age_ms: Some(60_000),
            ..live(2000)
        };
        assert!(!behind.due(&cfg), "behind: wait for more records");
        assert!(
            Cadence {
                pending: 1000,
                ..behind
            }
            .due(&cfg),
            "a full batch"
        );
        assert!(
            Cadence {
                since_start: Duration::from_secs(10),
                ..behind
            }
            .due(&cfg),
            "the catch-up interval"
        );
        assert!(
            Cadence {
                idle: true,
                ..behind
            }
            .due(&cfg),
            "nothing more to read"
        );
        assert!(
            !Cadence {
                idle: true,
                ..live(500)
            }
            .due(&cfg),
            "never sooner than the interval"
        );
    }
}
