//! Dead-lettering: a record analytics cannot count goes to the dead-letter topic with the
//! reason in its headers (`events::dlq`), whole if the topic can hold it, else as an excerpt
//! that says so. Sending is bounded: a full producer queue is waited out for a minute at
//! most, a refused record is retried once as an excerpt, then the caller fails.

use std::time::Duration;

use platform::ObservedContext;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

use crate::worker::Record;

/// Why an event is dead-lettered.
#[derive(Debug)]
pub struct Rejection {
    /// A stable reason code (the `dlq.reason` header and the metric's label).
    pub reason: &'static str,
    pub detail: String,
}

/// Where dead letters go.
pub struct Destination<'a> {
    pub producer: &'a FutureProducer<ObservedContext>,
    pub topic: &'a str,
    /// The largest record the topic takes.
    pub max_bytes: usize,
}

impl std::fmt::Debug for Destination<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination")
            .field("topic", &self.topic)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

/// Bytes of a dead-letter excerpt of a record too large for the dead-letter topic.
pub const DLQ_EXCERPT_BYTES: usize = 4096;
/// How long a dead-letter record may wait for room in the producer's queue.
const DLQ_ENQUEUE_TIMEOUT: Duration = Duration::from_secs(60);

/// The dead-letter record of `record`: its original bytes with the reason in headers, or, if
/// it would not fit the dead-letter topic, an excerpt with headers saying so.
pub fn dead_letter_record(
    record: &Record,
    rejection: &Rejection,
    source: &str,
    max_bytes: usize,
) -> (Vec<u8>, Vec<(&'static str, String)>) {
    let payload = record.payload.as_deref().unwrap_or_default();
    let mut headers = vec![
        (events::dlq::REASON, rejection.reason.to_owned()),
        (
            events::dlq::DETAIL,
            rejection.detail.chars().take(1024).collect(),
        ),
        (events::dlq::SOURCE, source.to_owned()),
    ];
    let overhead = 512
        + record.key.as_ref().map_or(0, Vec::len)
        + headers
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>();
    if payload.len() + overhead <= max_bytes {
        return (payload.to_vec(), headers);
    }
    let excerpt = payload[..payload.len().min(DLQ_EXCERPT_BYTES)].to_vec();
    headers.push((events::dlq::TRUNCATED, "true".to_owned()));
    headers.push((events::dlq::ORIGINAL_BYTES, payload.len().to_string()));
    (excerpt, headers)
}

/// Enqueue the dead letter of `record` (see [`dead_letter_record`]); `source` is where it was
/// read (`topic/partition/offset`). Returns its delivery, or why it could not be sent.
pub async fn send(
    to: &Destination<'_>,
    record: &Record,
    rejection: &Rejection,
    source: &str,
    stop: &CancellationToken,
) -> Result<DeliveryFuture, String> {
    let mut max_bytes = to.max_bytes;
    let deadline = tokio::time::Instant::now() + DLQ_ENQUEUE_TIMEOUT;
    let mut backoff = Duration::from_millis(5);
    loop {
        let (payload, headers) = dead_letter_record(record, rejection, source, max_bytes);
        let mut owned = OwnedHeaders::new();
        for (k, v) in &headers {
            owned = owned.insert(Header {
                key: k,
                value: Some(v.as_str()),
            });
        }
        let mut future = FutureRecord::to(to.topic).payload(&payload).headers(owned);
        if let Some(k) = record.key.as_deref() {
            future = future.key(k);
        }
        match to.producer.send_result(future) {
            Ok(delivery) => return Ok(delivery),
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                _,
            )) if tokio::time::Instant::now() < deadline && !stop.is_cancelled() => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
            }
            Err((e, _)) if max_bytes > DLQ_EXCERPT_BYTES * 2 => {
                tracing::warn!(error = %e, %source, "dead-letter record refused; sending an excerpt");
                max_bytes = DLQ_EXCERPT_BYTES * 2;
            }
            Err((e, _)) => {
                return Err(format!(
                    "the dead-letter topic {} did not take the record of {source}: {e}",
                    to.topic
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(bytes: usize) -> Record {
        Record {
            partition: 1,
            offset: 2,
            key: Some(b"k".to_vec()),
            payload: Some(vec![b'x'; bytes]),
            timestamp_ms: None,
            generation: 0,
            replay: false,
        }
    }

    fn rejection() -> Rejection {
        Rejection {
            reason: "oversized",
            detail: "too big".into(),
        }
    }

    #[test]
    fn a_record_the_dead_letter_topic_can_hold_keeps_its_bytes() {
        let (payload, headers) =
            dead_letter_record(&record(10_000), &rejection(), "t/1/2", 900_000);
        assert_eq!(payload.len(), 10_000);
        assert!(!headers.iter().any(|(k, _)| *k == events::dlq::TRUNCATED));
    }

    #[test]
    fn a_record_at_the_broker_limit_is_dead_lettered_as_an_excerpt() {
        let (payload, headers) =
            dead_letter_record(&record(1_048_576), &rejection(), "t/1/2", 900_000);
        assert_eq!(payload.len(), DLQ_EXCERPT_BYTES);
        assert!(headers.contains(&(events::dlq::TRUNCATED, "true".to_owned())));
        assert!(headers.contains(&(events::dlq::ORIGINAL_BYTES, "1048576".to_owned())));
        assert!(headers.contains(&(events::dlq::REASON, "oversized".to_owned())));
    }
}
