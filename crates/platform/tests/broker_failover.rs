//! Durability under broker failure, on the real cluster (RF 3, min ISR 2, acks=all): with
//! one broker down every record is still acknowledged; with two down none is. Runs as its
//! own test binary so no other test sees the cluster degraded; the nodes are restarted and
//! the topic fully re-replicated even when an assertion fails.
#[path = "it/helpers.rs"]
mod helpers;

use std::time::Duration;

use futures::future::join_all;
use rdkafka::producer::FutureRecord;

use helpers::Cluster;

/// Restarts the stopped nodes when dropped, then waits for full replication.
struct Restart<'a> {
    cluster: &'a Cluster,
    nodes: Vec<u32>,
}

impl Drop for Restart<'_> {
    fn drop(&mut self) {
        for n in &self.nodes {
            self.cluster.node("start", *n);
        }
        self.cluster
            .wait_fully_replicated(self.cluster.events_topic(), Duration::from_secs(180));
    }
}

#[tokio::test]
async fn acks_all_survives_one_broker_down_and_refuses_with_two_down() {
    let cluster = Cluster::from_env();
    let topic = cluster.events_topic().to_owned();
    cluster.wait_fully_replicated(&topic, Duration::from_secs(60));
    let mut guard = Restart {
        cluster: &cluster,
        nodes: Vec::new(),
    };

    cluster.node("stop", 3);
    guard.nodes.push(3);
    let (producer, context) =
        cluster.producer(&cluster.settings("simulator"), Duration::from_secs(60));
    let sends = (0..30).map(|i| {
        let key = format!("failover-{i}");
        let producer = &producer;
        let topic = &topic;
        async move {
            producer
                .send(
                    FutureRecord::to(topic).key(&key).payload("one broker down"),
                    Duration::from_secs(5),
                )
                .await
        }
    });
    let results = join_all(sends).await;
    let failed: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|(e, _)| e.to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "with one broker down {} of 30 sends failed: {failed:?}; client errors {:?}",
        failed.len(),
        context.errors.snapshot()
    );
    drop(producer);

    cluster.node("kill", 2);
    guard.nodes.push(2);
    let (producer, _) = cluster.producer(&cluster.settings("simulator"), Duration::from_secs(15));
    let sends = (0..6).map(|i| {
        let key = format!("two-down-{i}");
        let producer = &producer;
        let topic = &topic;
        async move {
            producer
                .send(
                    FutureRecord::to(topic)
                        .key(&key)
                        .payload("two brokers down"),
                    Duration::from_secs(5),
                )
                .await
        }
    });
    let results = join_all(sends).await;
    let delivered: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert!(
        delivered.is_empty(),
        "with two brokers down {} records were reported delivered: {delivered:?}",
        delivered.len()
    );
}
