//! Where events go: Kafka (idempotent, `acks=all`, key = session id) or stdout for
//! `--dry-run`, or memory for tests. Delivery outcomes are counted in [`Stats`].

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use events::EventType;
use platform::{KafkaSettings, ObservedContext};
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::Semaphore;

/// Records handed to the producer and not yet reported delivered or failed, at most. Users
/// beyond it wait their turn (FIFO) instead of polling a full producer queue.
pub const MAX_IN_FLIGHT: usize = 100_000;

/// Counters of a run, shared by the user tasks, the delivery callback and the reporter.
#[derive(Debug, Default)]
pub struct Stats {
    by_type: [AtomicU64; 7],
    pub enqueued: AtomicU64,
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub duplicates: AtomicU64,
    pub late: AtomicU64,
    pub sessions: AtomicU64,
    pub bytes: AtomicU64,
    failures: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    pub fn count_event(&self, t: EventType) {
        let i = EventType::ALL.iter().position(|x| *x == t).unwrap_or(0);
        self.by_type[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn by_type(&self) -> Vec<(EventType, u64)> {
        EventType::ALL
            .iter()
            .zip(&self.by_type)
            .map(|(t, n)| (*t, n.load(Ordering::Relaxed)))
            .collect()
    }

    fn failure(&self, cause: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut f = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *f.entry(cause).or_default() += 1;
    }

    pub fn failures(&self) -> BTreeMap<String, u64> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Producer context: counts each delivery report (failures by cause) and returns its
/// in-flight permit.
#[derive(Debug)]
pub struct DeliveryCounter {
    stats: Arc<Stats>,
    in_flight: Arc<Semaphore>,
    observed: ObservedContext,
}

impl ClientContext for DeliveryCounter {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, msg: &str) {
        self.observed.log(level, fac, msg);
    }
    fn error(&self, error: KafkaError, reason: &str) {
        self.observed.error(error, reason);
    }
}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        self.in_flight.add_permits(1);
        match result {
            Ok(_) => {
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                tracing::warn!(error = %e, "delivery failed");
                self.stats.failure(e.to_string());
            }
        }
    }
}

pub enum Sink {
    Kafka {
        producer: ThreadedProducer<DeliveryCounter>,
        topic: String,
        /// [`MAX_IN_FLIGHT`] permits: one taken per record sent, returned by its delivery
        /// report.
        in_flight: Arc<Semaphore>,
    },
    Stdout(Mutex<std::io::BufWriter<std::io::Stdout>>),
    Memory(Mutex<Vec<(String, Vec<u8>)>>),
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sink::Kafka { .. } => "Sink::Kafka",
            Sink::Stdout(_) => "Sink::Stdout",
            Sink::Memory(_) => "Sink::Memory",
        })
    }
}

/// The producer's batching, which `KAFKA_CLIENT_CONFIG` may override (its guarantees it may
/// not: see [`producer_config`]).
///
/// A record waits up to `linger.ms` for others to the same partition. At 5,000 events/s on
/// six partitions, 20 ms made batches of some 15 records: the three brokers used 32–36 s of
/// CPU in 37 s, the simulator 14 s, and analytics' freshness p99 was 5–9 s on this 2-core
/// machine; 250 ms brought them to 8–20 s, 5 s and 1.8–2.6 s (each record's Kafka timestamp
/// is taken when it is produced, so the wait is inside that figure). See the README's
/// "Session 19".
const TUNING: &[(&str, &str)] = &[
    ("compression.type", "zstd"),
    ("linger.ms", "250"),
    ("batch.size", "1000000"),
];

/// The simulator's producer: the batching of [`TUNING`] where `config` (the pass-through)
/// does not set it, then what nothing overrides: idempotence (no duplicates or reordering
/// on retry) with `acks=all`, `message.timeout.ms` bounding how long an undeliverable record
/// is retried, and a queue that holds [`MAX_IN_FLIGHT`] records with room to spare.
fn producer_config(mut config: ClientConfig) -> ClientConfig {
    platform::kafka::set_defaults(&mut config, TUNING);
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "120000")
        .set(
            "queue.buffering.max.messages",
            (2 * MAX_IN_FLIGHT).to_string(),
        );
    config
}

impl Sink {
    /// An idempotent producer tuned for throughput (see `producer_config`).
    pub fn kafka(
        settings: &KafkaSettings,
        topic: &str,
        stats: Arc<Stats>,
    ) -> Result<Sink, KafkaError> {
        let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let producer = producer_config(settings.client_config("simulator")).create_with_context(
            DeliveryCounter {
                stats,
                in_flight: in_flight.clone(),
                observed: ObservedContext::default(),
            },
        )?;
        Ok(Sink::Kafka {
            producer,
            topic: topic.to_owned(),
            in_flight,
        })
    }

    pub fn stdout() -> Sink {
        Sink::Stdout(Mutex::new(std::io::BufWriter::new(std::io::stdout())))
    }

    pub fn memory() -> Sink {
        Sink::Memory(Mutex::new(Vec::new()))
    }

    /// Hand one record over. Backpressure: wait for an in-flight permit (and, should the
    /// producer's queue still be full, retry).
    pub async fn send(&self, key: &str, payload: &[u8], stats: &Stats) {
        stats
            .bytes
            .fetch_add(payload.len() as u64, Ordering::Relaxed);
        match self {
            Sink::Kafka {
                producer,
                topic,
                in_flight,
            } => {
                // Never closed; the permit comes back with the delivery report.
                if let Ok(permit) = in_flight.acquire().await {
                    permit.forget();
                }
                let mut record = BaseRecord::to(topic).key(key).payload(payload);
                loop {
                    match producer.send(record) {
                        Ok(()) => {
                            stats.enqueued.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                            record = r;
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        Err((e, _)) => {
                            // No delivery report will come for it.
                            in_flight.add_permits(1);
                            stats.enqueued.fetch_add(1, Ordering::Relaxed);
                            stats.failure(e.to_string());
                            return;
                        }
                    }
                }
            }
            Sink::Stdout(out) => {
                let mut out = out
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let ok = out
                    .write_all(payload)
                    .and_then(|()| out.write_all(b"\n"))
                    .is_ok();
                stats.enqueued.fetch_add(1, Ordering::Relaxed);
                if ok {
                    stats.delivered.fetch_add(1, Ordering::Relaxed);
                } else {
                    stats.failure("stdout write failed".into());
                }
            }
            Sink::Memory(v) => {
                v.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((key.to_owned(), payload.to_vec()));
                stats.enqueued.fetch_add(1, Ordering::Relaxed);
                stats.delivered.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Wait up to `timeout` for outstanding deliveries.
    pub fn flush(&self, timeout: Duration) {
        match self {
            Sink::Kafka { producer, .. } => {
                if let Err(e) = producer.flush(timeout) {
                    tracing::warn!(error = %e, "flush did not complete");
                }
            }
            Sink::Stdout(out) => {
                let _ = out
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .flush();
            }
            Sink::Memory(_) => {}
        }
    }

    /// Records written to a memory sink.
    pub fn records(&self) -> Vec<(String, Vec<u8>)> {
        match self {
            Sink::Memory(v) => v
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pass_through_may_tune_batching_but_not_the_guarantees() {
        let config = producer_config(
            ClientConfig::new()
                .set("linger.ms", "5")
                .set("acks", "1")
                .set("enable.idempotence", "false")
                .clone(),
        );
        assert_eq!(config.get("linger.ms"), Some("5"));
        assert_eq!(config.get("acks"), Some("all"));
        assert_eq!(config.get("enable.idempotence"), Some("true"));
        let defaults = producer_config(ClientConfig::new());
        for (key, value) in TUNING {
            assert_eq!(defaults.get(key), Some(*value), "{key}");
        }
    }
}
