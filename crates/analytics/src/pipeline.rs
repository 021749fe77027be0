//! The consumer side: one poll loop (on a blocking thread) owns the Kafka consumer, routes
//! each record to a worker by its key (so a session's events keep their order), and every
//! flush interval collects the workers' deltas with a barrier and persists them with their
//! offsets ([`crate::journal`]) in the background while consumption goes on (the flush
//! protocol is [`crate::coordinator`]'s); one flush at a time is in flight. Kafka offsets are
//! committed only after that; they are a hint, the Firestore markers are the truth, and a
//! partition is always resumed from its marker.
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

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use platform::{KafkaSettings, ObservedContext};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureProducer;
use store::Store;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::coordinator::{lock, AnalyticsContext, Coordinator};
use crate::metrics::Metrics;
pub use crate::settings::PipelineConfig;
use crate::worker::{self, WorkerContext};

/// Run the pipeline until `shutdown`, then drain, persist, commit and leave the group.
pub async fn run(
    cfg: PipelineConfig,
    kafka: KafkaSettings,
    store: Store,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let give_up = CancellationToken::new();
    let generation = Arc::new(std::sync::atomic::AtomicU64::new(0));
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
        generation: generation.clone(),
    };
    for _ in 0..cfg.workers.max(1) {
        let (tx, rx) = mpsc::channel(cfg.queue_capacity.max(1));
        senders.push(tx);
        handles.push(tokio::spawn(worker::run(worker_ctx.clone(), rx)));
    }
    let coordinator = Arc::new(Mutex::new(Coordinator::new(
        cfg.clone(),
        store,
        senders,
        metrics.clone(),
        give_up.clone(),
        generation,
    )));
    let context = AnalyticsContext::new(coordinator.clone(), metrics.clone());
    let mut config = kafka.client_config("analytics");
    // Failover: a killed instance's partitions move after the session timeout. The broker's
    // minimum (group.min.session.timeout.ms) is 6 s by default; heartbeats every 1.5 s keep a
    // live member well inside it. KAFKA_CLIENT_CONFIG may override both.
    platform::kafka::set_defaults(
        &mut config,
        &[
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "1500"),
        ],
    );
    let consumer: BaseConsumer<AnalyticsContext> = config
        .set("group.id", &cfg.group)
        // Offsets are committed by the flush, after Firestore has the data.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // A group with no marker starts at the beginning: no backlog is skipped.
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        // Eager rebalancing: every revoke is total (what is not persisted is dropped and
        // replayed from the markers), which the reset at assignment relies on. Cooperative
        // (incremental) protocols are not allowed.
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
        lock(&coordinator).step(&consumer, message)?;
    }
    tracing::info!("draining");
    // The final flush writes every session: first take the assignment of a rebalance under
    // way and finish replaying what the last checkpoints left out (bounded), so a clean stop
    // leaves every session document complete, even when the instances stop one after another
    // and each rebalance drops the sessions not checkpointed.
    let deadline = std::time::Instant::now() + drain_timeout / 2;
    while lock(&coordinator).unsettled() && std::time::Instant::now() < deadline {
        let message = consumer.poll(Duration::from_millis(100));
        lock(&coordinator).step(&consumer, message)?;
    }
    tokio::runtime::Handle::current().spawn(async move {
        tokio::time::sleep(drain_timeout).await;
        give_up.cancel();
    });
    let result = lock(&coordinator).drain(&consumer);
    consumer.unsubscribe();
    drop(consumer); // leaves the group
    result.map(|()| tracing::info!("drained, offsets committed, left the group"))
}
