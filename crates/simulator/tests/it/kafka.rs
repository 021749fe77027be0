//! A bounded run against the real cluster as the `simulator` principal, read back by an
//! independent consumer: exactly the delivered count, every event valid, each session in one
//! partition and in order.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use simulator::run::run;
use simulator::sink::{Sink, Stats};
use testkit::Cluster;
use tokio_util::sync::CancellationToken;

use crate::helpers::settings;

fn reader(cluster: &Cluster) -> BaseConsumer {
    cluster
        .settings("admin")
        .client_config("simulator-it-reader")
        .set("group.id", "simulator-it-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader")
}

#[tokio::test]
async fn a_bounded_run_lands_exactly_once_in_order_per_session() {
    let cluster = Cluster::from_env();
    let topic = cluster.var("KAFKA_EVENTS_TOPIC").to_owned();
    let reader = reader(&cluster);
    let md = reader
        .fetch_metadata(Some(&topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions: Vec<i32> = md.topics()[0].partitions().iter().map(|p| p.id()).collect();
    let before: HashMap<i32, i64> = partitions
        .iter()
        .map(|p| {
            (
                *p,
                reader
                    .fetch_watermarks(&topic, *p, Duration::from_secs(10))
                    .expect("watermarks")
                    .1,
            )
        })
        .collect();

    let stats = Arc::new(Stats::default());
    let sink = Arc::new(
        Sink::kafka(&cluster.settings("simulator"), &topic, stats.clone()).expect("producer"),
    );
    let s = settings(&[
        "--topic",
        &topic,
        "--users",
        "40",
        "--sessions",
        "300",
        "--rate",
        "0",
    ]);
    let summary = run(s, sink, stats, CancellationToken::new()).await;
    assert!(summary.all_delivered(), "{summary}");
    assert_eq!(summary.sessions, 300);

    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition_offset(&topic, *p, Offset::Offset(before[p]))
            .expect("offset");
    }
    reader.assign(&tpl).expect("assign");
    let mut read = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (read.len() as u64) < summary.delivered && Instant::now() < deadline {
        if let Some(m) = reader.poll(Duration::from_millis(200)) {
            let m = m.expect("read");
            read.push((
                m.partition(),
                m.offset(),
                m.key().map(<[u8]>::to_vec),
                m.payload().map(<[u8]>::to_vec),
            ));
        }
    }
    // Nothing beyond what was delivered: the high watermarks moved by exactly that much.
    let after: i64 = partitions
        .iter()
        .map(|p| {
            reader
                .fetch_watermarks(&topic, *p, Duration::from_secs(10))
                .expect("watermarks")
                .1
                - before[p]
        })
        .sum();
    assert_eq!(
        after as u64, summary.delivered,
        "records in the topic vs delivered"
    );
    assert_eq!(
        read.len() as u64,
        summary.delivered,
        "records read back vs delivered"
    );

    let mut sessions: HashMap<uuid::Uuid, (i32, Vec<events::Event>)> = HashMap::new();
    read.sort_by_key(|(p, o, _, _)| (*p, *o));
    for (partition, _, key, payload) in read {
        let event = events::decode(&payload.expect("payload")).expect("every event is valid");
        assert_eq!(
            key.as_deref(),
            Some(event.key().as_bytes()),
            "key = session id"
        );
        let entry = sessions
            .entry(event.session_id)
            .or_insert((partition, Vec::new()));
        assert_eq!(entry.0, partition, "a session spans partitions");
        entry.1.push(event);
    }
    assert_eq!(sessions.len(), 300);
    for (_, evs) in sessions.values() {
        assert!(matches!(
            evs.first().map(|e| &e.payload),
            Some(events::Payload::SessionStarted(_))
        ));
        assert!(matches!(
            evs.last().map(|e| &e.payload),
            Some(events::Payload::SessionEnded(_))
        ));
        assert!(
            evs.windows(2).all(|w| w[0].timestamp < w[1].timestamp),
            "session out of order"
        );
    }
}
