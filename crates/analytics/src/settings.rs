//! Analytics settings from flags and environment variables.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use events::Currency;
use platform::KafkaArgs;
use store::FirestoreArgs;

/// Settings of the consumer pipeline.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub topic: String,
    pub group: String,
    pub dlq_topic: String,
    pub workers: usize,
    /// Capacity of each worker's queue. When full, the poll loop waits (backpressure).
    pub queue_capacity: usize,
    /// When flushes start and when consumption is held back.
    pub cadence: crate::cadence::Policy,
    pub currency: Currency,
    pub max_event_bytes: usize,
    pub session_capacity: usize,
    /// How long a shutdown may spend draining and persisting before giving up (offsets are
    /// then not committed, and the events are processed again on restart).
    pub drain_timeout: Duration,
    /// How often the derived documents of the buckets touched since are recomputed.
    pub derived_interval: Duration,
    /// When each partition's sessions are written to their documents.
    pub checkpoints: crate::cadence::Checkpoints,
    pub weights: crate::derived::Weights,
    pub trending_top: usize,
    pub window: crate::rules::EventWindow,
    pub dlq_max_bytes: usize,
}

/// Consume the event stream and keep marketing statistics in Firestore.
#[derive(Debug, Parser)]
#[command(name = "analytics", version)]
pub struct Cli {
    #[command(flatten)]
    pub firestore: FirestoreArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Consume and aggregate (the default).
    Run,
    /// Print a readable summary of the statistics for a day and lifetime.
    Report {
        /// Day (YYYY-MM-DD, UTC); default: the day with the most sessions.
        #[arg(long)]
        day: Option<String>,
        /// How many top products to list.
        #[arg(long, default_value_t = 5)]
        top: usize,
        /// Print the figures as JSON (for scripts) instead of text.
        #[arg(long)]
        json: bool,
        /// The shop's currency, the unit of every money figure.
        #[arg(long, env = "ANALYTICS_CURRENCY", default_value = "USD")]
        currency: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[arg(long, env = "EVENTS_TOPIC", default_value = "e-commerce-events")]
    pub topic: String,
    #[arg(long, env = "DLQ_TOPIC", default_value = "e-commerce-events-dlq")]
    pub dlq_topic: String,
    #[arg(long, env = "ANALYTICS_GROUP", default_value = "analytics")]
    pub group: String,
    /// Worker tasks; a session's events always go to the same one.
    #[arg(long, env = "ANALYTICS_WORKERS", default_value_t = 4)]
    pub workers: usize,
    /// Records queued per worker before the poll loop waits.
    #[arg(long, env = "ANALYTICS_QUEUE_CAPACITY", default_value_t = 2048)]
    pub queue_capacity: usize,
    /// Milliseconds deltas are coalesced before a flush (no document is written more often).
    /// 1.1 s, not 1: flushes start at least this far apart, but their commits land a few
    /// hundred ms later or sooner, and at 1 s apart some 10 s windows saw 11 writes of a
    /// marker (make bench-scale, 2026-12-07); Firestore's limit is 1 per second sustained.
    #[arg(long, env = "ANALYTICS_FLUSH_INTERVAL_MS", default_value_t = 1100)]
    pub flush_interval_ms: u64,
    /// The longest a flush waits when analytics is behind: a flush then waits for half the
    /// age of the newest record waiting (at least the flush interval, at most this) or for
    /// ANALYTICS_MAX_RECORDS_PER_FLUSH records, so a backlog is drained with fewer, larger
    /// flushes and the delay grows in proportion to the overload.
    #[arg(
        long,
        env = "ANALYTICS_CATCH_UP_FLUSH_INTERVAL_MS",
        default_value_t = 10_000
    )]
    pub catch_up_flush_interval_ms: u64,
    /// Records held in memory at most; beyond, consumption pauses until the next flush.
    #[arg(
        long,
        env = "ANALYTICS_MAX_RECORDS_PER_FLUSH",
        default_value_t = 200_000
    )]
    pub max_records_per_flush: u64,
    /// Seconds between writes of a partition's sessions to their sessions_history documents
    /// (counters are written at every flush). A crash replays at most this much of each
    /// partition into its sessions, counting nothing twice.
    #[arg(
        long,
        env = "ANALYTICS_SESSION_CHECKPOINT_SECONDS",
        default_value_t = 10
    )]
    pub session_checkpoint_seconds: u64,
    /// Records not yet written to their sessions' documents, over all partitions; beyond,
    /// the partitions holding most are checkpointed at the next flush.
    #[arg(long, env = "ANALYTICS_MAX_UNSAVED_RECORDS", default_value_t = 100_000)]
    pub max_unsaved_records: u64,
    /// The shop's currency; purchases in another are dead-lettered.
    #[arg(long, env = "ANALYTICS_CURRENCY", default_value = "USD")]
    pub currency: String,
    #[arg(long, env = "ANALYTICS_MAX_EVENT_BYTES", default_value_t = events::MAX_EVENT_BYTES)]
    pub max_event_bytes: usize,
    /// Sessions kept in memory per worker for deduplication.
    #[arg(long, env = "ANALYTICS_SESSION_CAPACITY", default_value_t = 100_000)]
    pub session_capacity: usize,
    /// Seconds a shutdown may spend persisting before giving up.
    #[arg(long, env = "ANALYTICS_DRAIN_TIMEOUT_SECONDS", default_value_t = 30)]
    pub drain_timeout_seconds: u64,
    /// Seconds between recomputations of the derived documents (metrics/, trending/, interest/).
    #[arg(long, env = "ANALYTICS_DERIVED_INTERVAL_SECONDS", default_value_t = 10)]
    pub derived_interval_seconds: u64,
    /// Interest score weights: Σ weight × counter.
    #[arg(
        long,
        env = "ANALYTICS_INTEREST_WEIGHTS",
        default_value = "view=1,add=3,remove=-2,purchase=5"
    )]
    pub interest_weights: String,
    /// Products listed in trending/ and interest/.
    #[arg(long, env = "ANALYTICS_TRENDING_TOP", default_value_t = 10)]
    pub trending_top: usize,
    /// Events stamped more than this many days before their ingestion (the record's Kafka
    /// timestamp) are dead-lettered (event_time_out_of_window).
    #[arg(long, env = "ANALYTICS_MAX_EVENT_AGE_DAYS", default_value_t = 30)]
    pub max_event_age_days: u32,
    /// Events stamped more than this many seconds after their ingestion (clock skew) are
    /// dead-lettered (event_time_out_of_window).
    #[arg(long, env = "ANALYTICS_MAX_EVENT_LEAD_SECONDS", default_value_t = 300)]
    pub max_event_lead_seconds: u32,
    /// Largest dead-letter record; a larger poison record is dead-lettered as a 4 KiB
    /// excerpt with dlq.truncated and dlq.original_bytes headers. Keep it under the
    /// dead-letter topic's max.message.bytes.
    #[arg(
        long,
        env = "ANALYTICS_DLQ_MAX_RECORD_BYTES",
        default_value_t = 900_000
    )]
    pub dlq_max_record_bytes: usize,
    /// /healthz and /readyz answer 503 when work has waited this long with nothing persisted.
    #[arg(long, env = "ANALYTICS_STALL_SECONDS", default_value_t = 60)]
    pub stall_seconds: u64,
    /// Address of the admin HTTP server (/healthz, /readyz, /metrics).
    #[arg(long, env = "ANALYTICS_ADMIN_ADDR", default_value = "127.0.0.1:9464")]
    pub admin_addr: SocketAddr,
}

impl RunArgs {
    pub fn pipeline_config(&self) -> Result<PipelineConfig, Vec<String>> {
        let mut errors = Vec::new();
        let currency = Currency::try_from(self.currency.clone())
            .map_err(|e| errors.push(format!("ANALYTICS_CURRENCY: {e}")))
            .ok();
        if self.workers == 0 {
            errors.push("ANALYTICS_WORKERS must be at least 1".into());
        }
        if self.flush_interval_ms == 0 {
            errors.push("ANALYTICS_FLUSH_INTERVAL_MS must be at least 1".into());
        }
        for (name, v) in [
            ("EVENTS_TOPIC", &self.topic),
            ("DLQ_TOPIC", &self.dlq_topic),
            ("ANALYTICS_GROUP", &self.group),
        ] {
            if v.trim().is_empty() || v.contains('/') || v.contains('~') {
                errors.push(format!("{name} must be non-empty without '/' or '~'"));
            }
        }
        let weights = crate::derived::Weights::parse(&self.interest_weights)
            .map_err(|e| errors.push(format!("ANALYTICS_INTEREST_WEIGHTS: {e}")))
            .ok();
        match (currency, weights) {
            (Some(currency), Some(weights)) if errors.is_empty() => Ok(PipelineConfig {
                topic: self.topic.clone(),
                group: self.group.clone(),
                dlq_topic: self.dlq_topic.clone(),
                workers: self.workers,
                queue_capacity: self.queue_capacity,
                cadence: crate::cadence::Policy {
                    flush_interval: Duration::from_millis(self.flush_interval_ms),
                    catch_up_interval: Duration::from_millis(
                        self.catch_up_flush_interval_ms.max(self.flush_interval_ms),
                    ),
                    max_records_per_flush: self.max_records_per_flush.max(1),
                },
                currency,
                max_event_bytes: self.max_event_bytes,
                session_capacity: self.session_capacity,
                drain_timeout: Duration::from_secs(self.drain_timeout_seconds),
                derived_interval: Duration::from_secs(self.derived_interval_seconds),
                checkpoints: crate::cadence::Checkpoints {
                    interval: Duration::from_secs(self.session_checkpoint_seconds),
                    max_unsaved: self.max_unsaved_records.max(1),
                },
                weights,
                trending_top: self.trending_top,
                window: crate::rules::EventWindow {
                    max_age: chrono::TimeDelta::days(i64::from(self.max_event_age_days)),
                    max_lead: chrono::TimeDelta::seconds(i64::from(self.max_event_lead_seconds)),
                },
                dlq_max_bytes: self
                    .dlq_max_record_bytes
                    .max(crate::deadletter::DLQ_EXCERPT_BYTES * 2),
            }),
            _ => Err(errors),
        }
    }
}
