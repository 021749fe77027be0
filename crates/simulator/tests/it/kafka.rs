//! A bounded run against the real cluster as the `simulator` principal, read back by an
//! independent consumer: exactly the delivered count, every event valid, each session in one
//! partition and in order.
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use simulator::run::run;
use simulator::sink::{Sink, Stats};
use testkit::{topic, Cluster};
use tokio_util::sync::CancellationToken;

use crate::helpers::settings;

#[tokio::test]
async fn a_bounded_run_lands_exactly_once_in_order_per_session() {
    let cluster = Cluster::from_env();
    let topic = cluster.var("KAFKA_EVENTS_TOPIC").to_owned();
    let admin = cluster.settings("admin");
    let before: BTreeMap<i32, i64> = topic::watermarks(&admin, &topic)
        .expect("watermarks")
        .into_iter()
        .map(|(p, (_, high))| (p, high))
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

    // Nothing beyond what was delivered: the high watermarks moved by exactly that much.
    let after: i64 = topic::watermarks(&admin, &topic)
        .expect("watermarks")
        .iter()
        .map(|(p, (_, high))| high - before[p])
        .sum();
    assert_eq!(
        after as u64, summary.delivered,
        "records in the topic vs delivered"
    );
    let read = topic::read(&admin, &topic, &before);
    assert_eq!(
        read.len() as u64,
        summary.delivered,
        "records read back vs delivered"
    );

    let mut sessions: HashMap<uuid::Uuid, (i32, Vec<events::Event>)> = HashMap::new();
    for r in read {
        let event = events::decode(&r.payload.expect("payload")).expect("every event is valid");
        let partition = r.partition;
        assert_eq!(
            r.key.as_deref(),
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
