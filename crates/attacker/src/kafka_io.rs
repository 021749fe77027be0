//! Legitimate reads the suite needs for its own verdicts: where each partition ends, and
//! every record written to a topic since a point.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use platform::ObservedContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// Each partition's end (high watermark) of a topic.
pub type Ends = Vec<(i32, i64)>;

/// A record read back.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: HashMap<String, String>,
}

impl Record {
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers.get(key).map(String::as_str)
    }
}

/// A consumer for manual assignment only: it never joins `group` nor commits.
fn reader(config: &ClientConfig, group: &str) -> anyhow::Result<BaseConsumer<ObservedContext>> {
    config
        .clone()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .create_with_context(ObservedContext::default())
        .context("cannot create a reader")
}

/// The partitions of `topic` and where each ends now.
pub async fn ends(
    config: &ClientConfig,
    group: &str,
    topic: &str,
    timeout: Duration,
) -> anyhow::Result<Ends> {
    let consumer = reader(config, group)?;
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let md = consumer
            .fetch_metadata(Some(&topic), timeout)
            .with_context(|| format!("metadata of {topic}"))?;
        let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
            bail!("{topic} missing from the metadata");
        };
        if let Some(e) = t.error() {
            bail!("{topic}: {}", rdkafka::types::RDKafkaErrorCode::from(e));
        }
        let mut out = Vec::new();
        for p in t.partitions() {
            let (_, high) = consumer
                .fetch_watermarks(&topic, p.id(), timeout)
                .with_context(|| format!("end of {topic}/{}", p.id()))?;
            out.push((p.id(), high));
        }
        if out.is_empty() {
            bail!("{topic} has no partitions");
        }
        out.sort_unstable();
        Ok(out)
    })
    .await
    .context("reader task")?
}

/// Every record of `topic` from `from` up to where the partitions end now.
pub async fn read_since(
    config: &ClientConfig,
    group: &str,
    topic: &str,
    from: &Ends,
    timeout: Duration,
) -> anyhow::Result<Vec<Record>> {
    let until = ends(config, group, topic, timeout).await?;
    let consumer = reader(config, group)?;
    let topic = topic.to_owned();
    let from = from.clone();
    tokio::task::spawn_blocking(move || {
        let start: HashMap<i32, i64> = from.into_iter().collect();
        let mut tpl = TopicPartitionList::new();
        let mut pending: HashMap<i32, i64> = HashMap::new();
        for (p, end) in until {
            let begin = start.get(&p).copied().unwrap_or(0);
            if end > begin {
                tpl.add_partition_offset(&topic, p, Offset::Offset(begin))?;
                pending.insert(p, end);
            }
        }
        let mut records = Vec::new();
        if pending.is_empty() {
            return Ok(records);
        }
        consumer.assign(&tpl)?;
        let deadline = Instant::now() + timeout;
        while !pending.is_empty() {
            if Instant::now() >= deadline {
                bail!("reading {topic} back timed out; partitions left: {pending:?}");
            }
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    let headers = platform::kafka::text_headers(&m);
                    if pending
                        .get(&m.partition())
                        .is_some_and(|end| m.offset() + 1 >= *end)
                    {
                        pending.remove(&m.partition());
                    }
                    records.push(Record {
                        partition: m.partition(),
                        offset: m.offset(),
                        key: m.key().map(<[u8]>::to_vec),
                        payload: m.payload().map(<[u8]>::to_vec),
                        headers,
                    });
                }
                Some(Err(e)) => bail!("reading {topic} back: {e}"),
                None => {}
            }
        }
        Ok(records)
    })
    .await
    .context("reader task")?
}
