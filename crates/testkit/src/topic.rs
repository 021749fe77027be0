//! Reading a topic back, as an independent consumer (no group, offsets assigned by hand).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use platform::KafkaSettings;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};

const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a read-back may take before it gives up and says what is missing.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// A record as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Rec {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: BTreeMap<String, String>,
    pub timestamp_ms: Option<i64>,
}

fn consumer(kafka: &KafkaSettings, name: &str) -> Result<BaseConsumer, KafkaError> {
    kafka
        .client_config(name)
        .set("group.id", name)
        .set("enable.auto.commit", "false")
        .create()
}

/// Each partition's (low, high) watermarks.
pub fn watermarks(
    kafka: &KafkaSettings,
    topic: &str,
) -> Result<BTreeMap<i32, (i64, i64)>, KafkaError> {
    let consumer = consumer(kafka, "testkit-watermarks")?;
    let md = consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT)?;
    let mut out = BTreeMap::new();
    for p in md.topics().iter().flat_map(|t| t.partitions()) {
        out.insert(
            p.id(),
            consumer.fetch_watermarks(topic, p.id(), METADATA_TIMEOUT)?,
        );
    }
    Ok(out)
}

/// Every record of `topic` from `from` (per partition; the low watermark where absent) up to
/// the high watermarks as they are when called, in partition and offset order. Panics if
/// they do not all arrive within a minute.
pub fn read(kafka: &KafkaSettings, topic: &str, from: &BTreeMap<i32, i64>) -> Vec<Rec> {
    let consumer = consumer(kafka, "testkit-reader").expect("reader");
    let mut tpl = TopicPartitionList::new();
    let mut remaining = 0;
    for (p, (low, high)) in watermarks(kafka, topic).expect("watermarks") {
        let start = from.get(&p).copied().unwrap_or(low).max(low);
        remaining += (high - start).max(0);
        tpl.add_partition_offset(topic, p, Offset::Offset(start))
            .expect("offset");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + READ_TIMEOUT;
    while (out.len() as i64) < remaining && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.expect("read");
            out.push(Rec {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                payload: m.payload().map(<[u8]>::to_vec),
                headers: platform::kafka::text_headers(&m),
                timestamp_ms: m.timestamp().to_millis(),
            });
        }
    }
    assert_eq!(out.len() as i64, remaining, "read back all of {topic}");
    out.sort_by_key(|r| (r.partition, r.offset));
    out
}
