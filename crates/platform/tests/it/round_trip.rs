use std::time::Duration;

use events::{decode, encode};
use rdkafka::admin::{AdminOptions, ResourceSpecifier};
use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

use crate::helpers::{poll_until, Cluster};

fn an_event() -> events::Event {
    let json = format!(
        r#"{{"event_id":"{}","event_type":"session_started","session_id":"{}","timestamp":"2025-09-20T10:03:00Z","user_id":"{}","location":{{"country":"DE","state":"Berlin","city":"Berlin","latitude":52.52,"longitude":13.405}},"parameters":{{"user_agent":"it/1.0"}},"schema_version":1}}"#,
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4()
    );
    decode(json.as_bytes()).expect("valid event")
}

#[tokio::test]
async fn simulator_produces_and_analytics_reads_it_back_over_sasl_ssl() {
    let cluster = Cluster::from_env();
    let topic = cluster.events_topic();
    let event = an_event();
    let payload = encode(&event);

    let (producer, context) =
        cluster.producer(&cluster.settings("simulator"), Duration::from_secs(30));
    let key = event.key();
    let delivered = producer
        .send(
            FutureRecord::to(topic).key(&key).payload(&payload),
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|(e, _)| {
            panic!(
                "simulator could not produce: {e}; client errors {:?}",
                context.errors.snapshot()
            )
        });

    let (consumer, _) = cluster.consumer(&cluster.settings("analytics"), &[]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, delivered.partition, Offset::Offset(delivered.offset))
        .expect("valid offset");
    consumer.assign(&tpl).expect("assign");
    let (messages, errors) = poll_until(&consumer, Duration::from_secs(20), |m| !m.is_empty());
    assert!(errors.is_empty(), "analytics consumer errors: {errors:?}");
    let first = messages.first().expect("analytics read the record back");
    assert_eq!(decode(first).expect("round-tripped event decodes"), event);
}

#[tokio::test]
async fn events_topic_is_replicated_three_times_with_min_isr_two() {
    let cluster = Cluster::from_env();
    let topic = cluster.events_topic();
    let admin = cluster.admin();
    let configs = admin
        .describe_configs(
            [&ResourceSpecifier::Topic(topic)],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("describe configs");
    let resource = configs
        .into_iter()
        .next()
        .expect("one resource")
        .expect("described");
    let min_isr = resource
        .get("min.insync.replicas")
        .and_then(|e| e.value.clone());
    assert_eq!(min_isr.as_deref(), Some("2"));

    let (consumer, _) = cluster.consumer(&cluster.settings("admin"), &[]);
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let t = &metadata.topics()[0];
    let expected: usize = cluster
        .var("KAFKA_EVENTS_TOPIC_PARTITIONS")
        .parse()
        .expect("number");
    assert_eq!(t.partitions().len(), expected);
    for p in t.partitions() {
        assert_eq!(p.replicas().len(), 3, "partition {} replicas", p.id());
    }
}
