//! Access to the running native cluster for integration tests: its client settings
//! (`.local/kafka/client.env`, written by `scripts/local-up.sh`), per-principal clients, and
//! node control for failure tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;
use std::time::{Duration, Instant};

use platform::{KafkaSettings, ObservedContext};
use rdkafka::admin::AdminClient;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;

/// The native cluster (its client settings come from the test kit) with the clients and
/// node control the platform's tests need.
pub struct Cluster(testkit::Cluster);

impl std::ops::Deref for Cluster {
    type Target = testkit::Cluster;
    fn deref(&self) -> &testkit::Cluster {
        &self.0
    }
}

impl Cluster {
    /// The cluster started by `make local-up` (or `make test`). Panics with the fix if absent.
    pub fn from_env() -> Cluster {
        Cluster(testkit::Cluster::from_env())
    }

    pub fn events_topic(&self) -> &str {
        self.var("KAFKA_EVENTS_TOPIC")
    }

    /// An idempotent `acks=all` producer, as the simulator configures it.
    pub fn producer(
        &self,
        settings: &KafkaSettings,
        message_timeout: Duration,
    ) -> (FutureProducer<ObservedContext>, ObservedContext) {
        let context = ObservedContext::default();
        let producer = settings
            .client_config("it-producer")
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set(
                "message.timeout.ms",
                message_timeout.as_millis().to_string(),
            )
            .create_with_context(context.clone())
            .expect("producer config is valid");
        (producer, context)
    }

    /// A consumer for manual assignment at explicit offsets, without commits. librdkafka
    /// wants a `group.id` even then and looks up its coordinator, so it is analytics' own
    /// group, the only one the ACLs let a principal describe.
    pub fn consumer(
        &self,
        settings: &KafkaSettings,
        extra: &[(&str, &str)],
    ) -> (BaseConsumer<ObservedContext>, ObservedContext) {
        let context = ObservedContext::default();
        let mut config: ClientConfig = settings.client_config("it-consumer");
        config
            .set("group.id", self.var("KAFKA_ANALYTICS_GROUP"))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false");
        for (k, v) in extra {
            config.set(*k, *v);
        }
        let consumer = config
            .create_with_context(context.clone())
            .expect("consumer config is valid");
        (consumer, context)
    }

    pub fn admin(&self) -> AdminClient<ObservedContext> {
        self.settings("admin")
            .client_config("it-admin")
            .create_with_context(ObservedContext::default())
            .expect("admin config is valid")
    }

    /// Run `scripts/kafka-node.sh <cmd> <node>`.
    pub fn node(&self, cmd: &str, node: u32) {
        let script = Path::new(self.var("KAFKA_SCRIPTS_DIR")).join("kafka-node.sh");
        let status = std::process::Command::new(&script)
            .args([cmd, &node.to_string()])
            .status()
            .expect("run kafka-node.sh");
        assert!(status.success(), "kafka-node.sh {cmd} {node} failed");
    }

    /// Wait until every partition of `topic` has its full replica set in sync.
    pub fn wait_fully_replicated(&self, topic: &str, timeout: Duration) {
        let (consumer, _) = self.consumer(&self.settings("admin"), &[]);
        let deadline = Instant::now() + timeout;
        loop {
            let ok = consumer
                .fetch_metadata(Some(topic), Duration::from_secs(5))
                .ok()
                .is_some_and(|md| {
                    md.topics().iter().all(|t| {
                        !t.partitions().is_empty()
                            && t.partitions()
                                .iter()
                                .all(|p| p.leader() >= 0 && p.isr().len() == p.replicas().len())
                    })
                });
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{topic} not fully replicated after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// Poll `consumer` until `deadline`, returning the first client/consumption error seen,
/// and every message received.
pub fn poll_until<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
    deadline: Duration,
    mut stop: impl FnMut(&[Vec<u8>]) -> bool,
) -> (Vec<Vec<u8>>, Vec<rdkafka::error::KafkaError>) {
    use rdkafka::Message;
    let end = Instant::now() + deadline;
    let mut messages = Vec::new();
    let mut errors = Vec::new();
    while Instant::now() < end && !stop(&messages) {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => messages.push(m.payload().unwrap_or_default().to_vec()),
            Some(Err(e)) => errors.push(e),
            None => {}
        }
    }
    (messages, errors)
}
