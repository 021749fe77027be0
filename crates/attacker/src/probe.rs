//! Probes: one client doing one thing (produce a record, read a topic, join a group, run an
//! admin operation, fetch metadata), watched until it either gets through or is refused
//! the expected way, within a bound. A probe's [`Observation`] is judged into a verdict by
//! what the check expected.

use std::time::{Duration, Instant};

use platform::ObservedContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic};
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::outcome::{Expect, Outcome, Verdict};

/// Error codes that count as the expected refusal of an attack.
pub type Refusal = &'static [RDKafkaErrorCode];

pub const TLS: Refusal = &[RDKafkaErrorCode::SSL];
pub const AUTHENTICATION: Refusal = &[
    RDKafkaErrorCode::Authentication,
    RDKafkaErrorCode::SaslAuthenticationFailed,
];
/// A client that does not speak TLS + SASL first is cut off by the broker.
pub const TRANSPORT: Refusal = &[
    RDKafkaErrorCode::BrokerTransportFailure,
    RDKafkaErrorCode::AllBrokersDown,
];
pub const MECHANISM: Refusal = &[
    RDKafkaErrorCode::Authentication,
    RDKafkaErrorCode::UnsupportedSASLMechanism,
];
pub const TOPIC_DENIED: Refusal = &[RDKafkaErrorCode::TopicAuthorizationFailed];
pub const GROUP_DENIED: Refusal = &[
    RDKafkaErrorCode::GroupAuthorizationFailed,
    RDKafkaErrorCode::TopicAuthorizationFailed,
];
pub const ADMIN_DENIED: Refusal = &[
    RDKafkaErrorCode::TopicAuthorizationFailed,
    RDKafkaErrorCode::ClusterAuthorizationFailed,
];

/// How long a consumer keeps polling after its refusal, to catch one that is refused and
/// still reads.
const CONSUMER_GRACE: Duration = Duration::from_secs(2);

/// What one probe saw.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    /// Set when the action succeeded: what got through.
    pub got_through: Option<String>,
    /// The first expected refusal, and when it came.
    pub refusal: Option<(Duration, String)>,
    /// Other errors seen (for the verdict line when neither of the above happened).
    pub other: Vec<String>,
    pub elapsed: Duration,
}

impl Observation {
    /// The verdict for a check that expects `expect`.
    pub fn judge(self, name: &str, principal: &str, expect: Expect) -> Outcome {
        let (verdict, elapsed, observed) = match (expect, self.got_through, self.refusal) {
            (Expect::Reject, Some(what), _) => (Verdict::Breached, self.elapsed, what),
            (Expect::Reject, None, Some((at, why))) => (Verdict::Rejected, at, why),
            (Expect::Reject, None, None) => (
                Verdict::Inconclusive,
                self.elapsed,
                format!(
                    "nothing got through, but no expected refusal within {:.0?}: {}",
                    self.elapsed,
                    describe_other(&self.other)
                ),
            ),
            (Expect::Accept, Some(what), _) => (Verdict::Passed, self.elapsed, what),
            (Expect::Accept, None, refusal) => (
                Verdict::ControlFailed,
                self.elapsed,
                refusal
                    .map(|(_, why)| why)
                    .unwrap_or_else(|| describe_other(&self.other)),
            ),
        };
        Outcome::new(name, principal, expect, verdict, elapsed, observed)
    }
}

fn describe_other(other: &[String]) -> String {
    let mut distinct: Vec<&str> = Vec::new();
    for o in other {
        if !distinct.contains(&o.as_str()) {
            distinct.push(o);
        }
    }
    if distinct.is_empty() {
        "no error at all".into()
    } else {
        distinct.join(" | ")
    }
}

fn describe(code: Option<RDKafkaErrorCode>, reason: &str) -> String {
    match code {
        Some(c) => format!("{c:?}: {reason}"),
        None => reason.to_owned(),
    }
}

/// Watches a client's own errors for the expected refusal.
pub(crate) struct Watch {
    context: ObservedContext,
    refusal: Refusal,
    started: Instant,
    /// Context errors already folded in.
    swept: u64,
    obs: Observation,
}

impl Watch {
    pub(crate) fn new(refusal: Refusal) -> Watch {
        Watch {
            context: ObservedContext::default(),
            refusal,
            started: Instant::now(),
            swept: 0,
            obs: Observation::default(),
        }
    }

    /// Record an error from a call result.
    fn error(&mut self, e: &KafkaError) {
        self.note(e.rdkafka_error_code(), &e.to_string());
    }

    pub(crate) fn note(&mut self, code: Option<RDKafkaErrorCode>, reason: &str) {
        let text = describe(code, reason);
        if code.is_some_and(|c| self.refusal.contains(&c)) {
            match &mut self.obs.refusal {
                None => self.obs.refusal = Some((self.started.elapsed(), text)),
                // Keep the first time, but the most telling text (librdkafka's own
                // reason names the broker and the cause; call results are terse).
                Some((_, first)) if first.len() < text.len() => *first = text,
                Some(_) => {}
            }
        } else if self.obs.other.len() < 8 {
            self.obs.other.push(text);
        }
    }

    /// Fold in the errors librdkafka reported through the client context so far.
    fn sweep(&mut self) {
        let total = self.context.errors.total();
        let fresh = usize::try_from(total - self.swept).unwrap_or(usize::MAX);
        self.swept = total;
        let kept = self.context.errors.snapshot();
        for e in kept.iter().skip(kept.len().saturating_sub(fresh)) {
            self.note(e.code, &e.reason);
        }
    }

    fn refused(&self) -> bool {
        self.obs.refusal.is_some()
    }

    pub(crate) fn got_through(&mut self, what: String) {
        self.obs.got_through = Some(what);
    }

    /// A client of this watch's context; `None` (the error noted) if the config is refused.
    pub(crate) fn client<T>(&mut self, config: &ClientConfig) -> Option<T>
    where
        T: FromClientConfigAndContext<ObservedContext>,
    {
        // librdkafka logs every failed broker connection (facility FAIL) at info level and the
        // context keeps those as transport errors: they must be emitted whatever RUST_LOG
        // lets through to the output.
        let mut config = config.clone();
        config.set_log_level(rdkafka::config::RDKafkaLogLevel::Info);
        match config.create_with_context(self.context.clone()) {
            Ok(c) => Some(c),
            Err(e) => {
                self.error(&e);
                None
            }
        }
    }

    pub(crate) fn finish(mut self) -> Observation {
        self.sweep();
        self.obs.elapsed = self.started.elapsed();
        self.obs
    }
}

/// Produce one record; breached if the cluster acknowledges it.
pub async fn produce(
    config: &ClientConfig,
    topic: &str,
    key: &str,
    payload: &[u8],
    timeout: Duration,
    refusal: Refusal,
) -> Observation {
    let mut watch = Watch::new(refusal);
    let mut config = config.clone();
    config
        .set("acks", "all")
        .set("message.timeout.ms", timeout.as_millis().to_string());
    let Some(producer) = watch.client::<FutureProducer<ObservedContext>>(&config) else {
        return watch.finish();
    };
    let record = FutureRecord::to(topic).key(key).payload(payload);
    let mut delivery = match producer.send_result(record) {
        Ok(d) => d,
        Err((e, _)) => {
            watch.error(&e);
            return watch.finish();
        }
    };
    let deadline = tokio::time::Instant::now() + timeout + Duration::from_secs(1);
    loop {
        tokio::select! {
            result = &mut delivery => {
                match result {
                    Ok(Ok(d)) => {
                        watch.obs.got_through = Some(format!(
                            "record delivered to {topic}/{}/{}",
                            d.partition, d.offset
                        ));
                    }
                    Ok(Err((e, _))) => watch.error(&e),
                    Err(_) => watch.note(None, "delivery report lost"),
                }
                break;
            }
            _ = tokio::time::sleep(Duration::from_millis(50)) => {
                watch.sweep();
                if watch.refused() || tokio::time::Instant::now() >= deadline {
                    // Nothing was acknowledged; the end-of-run read-back proves nothing
                    // landed either.
                    producer.purge(rdkafka::producer::PurgeConfig::default().queue().inflight());
                    break;
                }
            }
        }
    }
    watch.finish()
}

/// How a consumer probe reads.
#[derive(Debug, Clone)]
pub enum Read {
    /// Manual assignment of every partition from the beginning (no group membership).
    Assign { topic: String, partitions: i32 },
    /// Subscription in the configured `group.id`: a group join.
    Subscribe { topic: String },
}

/// Read; breached if any record arrives.
pub async fn consume(
    config: &ClientConfig,
    read: Read,
    timeout: Duration,
    refusal: Refusal,
) -> Observation {
    let config = config.clone();
    blocking(move || consume_blocking(config, read, timeout, refusal)).await
}

/// Run a probe that blocks (librdkafka's synchronous calls) off the async runtime.
pub(crate) async fn blocking(probe: impl FnOnce() -> Observation + Send + 'static) -> Observation {
    tokio::task::spawn_blocking(probe)
        .await
        .unwrap_or_else(|e| Observation {
            other: vec![format!("probe task failed: {e}")],
            ..Observation::default()
        })
}

fn consume_blocking(
    mut config: ClientConfig,
    read: Read,
    timeout: Duration,
    refusal: Refusal,
) -> Observation {
    let mut watch = Watch::new(refusal);
    config
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false");
    let Some(consumer) = watch.client::<BaseConsumer<ObservedContext>>(&config) else {
        return watch.finish();
    };
    let started = match &read {
        Read::Assign { topic, partitions } => {
            let mut tpl = TopicPartitionList::new();
            for p in 0..*partitions {
                if let Err(e) = tpl.add_partition_offset(topic, p, Offset::Beginning) {
                    watch.error(&e);
                }
            }
            consumer.assign(&tpl)
        }
        Read::Subscribe { topic } => consumer.subscribe(&[topic]),
    };
    if let Err(e) = started {
        watch.error(&e);
        return watch.finish();
    }
    let deadline = Instant::now() + timeout;
    let mut metadata_checked = false;
    let mut read_count = 0usize;
    let mut first = None;
    let mut stop_at = deadline;
    while Instant::now() < stop_at {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                read_count += 1;
                first.get_or_insert_with(|| {
                    format!("{}/{}/{}", m.topic(), m.partition(), m.offset())
                });
                // One record decides it: a breach, or a control's success.
                break;
            }
            Some(Err(e)) => watch.error(&e),
            None => {}
        }
        watch.sweep();
        if let Read::Assign { topic, .. } = &read {
            if !watch.refused()
                && !metadata_checked
                && watch.started.elapsed() > Duration::from_secs(1)
            {
                // A principal without Describe on the topic learns so from the metadata and
                // never gets as far as a fetch, which librdkafka does not report.
                metadata_checked = true;
                check_topic_metadata(&consumer, topic, &mut watch);
            }
        }
        if watch.refused() && stop_at == deadline {
            stop_at = (Instant::now() + CONSUMER_GRACE).min(deadline);
        }
    }
    if let Some(first) = first {
        watch.obs.got_through = Some(format!("read {read_count} record(s), first at {first}"));
    }
    watch.finish()
}

fn check_topic_metadata(consumer: &BaseConsumer<ObservedContext>, topic: &str, watch: &mut Watch) {
    if let Ok(md) = consumer.fetch_metadata(Some(topic), Duration::from_secs(2)) {
        for t in md.topics().iter().filter(|t| t.name() == topic) {
            if let Some(e) = t.error() {
                let code = RDKafkaErrorCode::from(e);
                watch.note(Some(code), &format!("metadata of {topic}: {code}"));
            }
        }
    }
}

/// An administrative operation the rdkafka crate wraps faithfully (for the others see
/// [`crate::raw_admin`]).
#[derive(Debug, Clone)]
pub enum AdminOp {
    CreateTopic(String),
    DeleteTopic(String),
}

pub async fn admin(
    config: &ClientConfig,
    op: AdminOp,
    timeout: Duration,
    refusal: Refusal,
) -> Observation {
    let mut watch = Watch::new(refusal);
    let Some(client) = watch.client::<AdminClient<ObservedContext>>(config) else {
        return watch.finish();
    };
    let options = AdminOptions::new().request_timeout(Some(timeout));
    let run = async {
        let results = match &op {
            AdminOp::CreateTopic(name) => {
                let topic = NewTopic::new(name, 1, rdkafka::admin::TopicReplication::Fixed(1));
                client.create_topics(&[topic], &options).await
            }
            AdminOp::DeleteTopic(name) => client.delete_topics(&[name], &options).await,
        };
        results.map(|r| {
            r.into_iter()
                .map(|x| x.map(|_| ()).map_err(|(_, c)| c))
                .collect()
        })
    };
    let results: Result<Vec<Result<(), RDKafkaErrorCode>>, KafkaError> =
        match tokio::time::timeout(timeout + Duration::from_secs(1), run).await {
            Ok(r) => r,
            Err(_) => {
                watch.note(None, "admin request timed out");
                return watch.finish();
            }
        };
    match results {
        Ok(results) => {
            for r in results {
                match r {
                    Ok(()) => watch.got_through(format!("{op:?} succeeded")),
                    Err(code) => watch.note(Some(code), &format!("{op:?} refused")),
                }
            }
        }
        Err(e) => watch.error(&e),
    }
    watch.finish()
}

/// Fetch the cluster metadata; "got through" means the brokers answered.
pub async fn metadata(config: &ClientConfig, timeout: Duration, refusal: Refusal) -> Observation {
    let config = config.clone();
    blocking(move || {
        let mut watch = Watch::new(refusal);
        let Some(consumer) = watch.client::<BaseConsumer<ObservedContext>>(&config) else {
            return watch.finish();
        };
        match consumer.fetch_metadata(None, timeout) {
            Ok(md) => watch.got_through(format!("metadata: {} brokers", md.brokers().len())),
            Err(e) => watch.error(&e),
        }
        watch.finish()
    })
    .await
}
