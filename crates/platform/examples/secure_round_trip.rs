//! Publish a few events as the `simulator` principal and read them back as `analytics`, over
//! SASL_SSL with hostname verification, then show that the ACLs deny the reverse. With the
//! native cluster up (`make local-up`):
//!   cargo run -p platform --example secure_round_trip
use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use platform::ObservedContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use testkit::Cluster;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::telemetry::init();
    let cluster = Cluster::from_env();
    let topic = cluster.var("KAFKA_EVENTS_TOPIC");

    let producer: FutureProducer<ObservedContext> = cluster
        .settings("simulator")
        .client_config("demo-simulator")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create_with_context(ObservedContext::default())?;
    let consumer: BaseConsumer<ObservedContext> = cluster
        .settings("analytics")
        .client_config("demo-analytics")
        // Manual assignment, no commits: the group is named only because librdkafka looks
        // up its coordinator, which the ACLs allow for analytics' own group alone.
        .set("group.id", cluster.var("KAFKA_ANALYTICS_GROUP"))
        .set("enable.auto.commit", "false")
        .create_with_context(ObservedContext::default())?;

    let started = Instant::now();
    let mut first_offsets: HashMap<i32, i64> = HashMap::new();
    let mut sent = Vec::new();
    for i in 0..5 {
        let key = uuid::Uuid::new_v4().to_string();
        let payload = format!("demo record {i}");
        let d = producer
            .send(
                FutureRecord::to(topic).key(&key).payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .context("simulator could not produce")?;
        println!(
            "simulator -> {topic} partition {} offset {}: {payload}",
            d.partition, d.offset
        );
        first_offsets.entry(d.partition).or_insert(d.offset);
        sent.push(payload);
    }
    let mut tpl = TopicPartitionList::new();
    for (partition, offset) in &first_offsets {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
    }
    consumer.assign(&tpl)?;
    let mut received = Vec::new();
    while received.len() < sent.len() && started.elapsed() < Duration::from_secs(30) {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m?;
            let text = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            if sent.contains(&text) && !received.contains(&text) {
                println!(
                    "analytics <- partition {} offset {}: {text}",
                    m.partition(),
                    m.offset()
                );
                received.push(text);
            }
        }
    }
    if received.len() != sent.len() {
        bail!("read back {} of {} records", received.len(), sent.len());
    }
    let denied = cluster
        .settings("analytics")
        .client_config("demo-analytics-writer")
        .set("message.timeout.ms", "10000")
        .create_with_context::<_, FutureProducer<ObservedContext>>(ObservedContext::default())?
        .send(
            FutureRecord::to(topic).key("k").payload("must be denied"),
            Duration::from_secs(5),
        )
        .await;
    match denied {
        Err((e, _)) => println!("analytics -> {topic}: denied as expected ({e})"),
        Ok(_) => bail!("analytics was allowed to write the events topic"),
    }
    println!(
        "secure round trip OK in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
