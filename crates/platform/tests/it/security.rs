//! Smoke checks of authorization and authentication; the full attack suite lives in the
//! attacker crate. Each check bounds its wait and asserts that nothing was delivered or read.
use std::time::{Duration, Instant};

use platform::KafkaSettings;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use secrecy::SecretString;

use crate::helpers::{poll_until, Cluster};

fn has_code(errors: &[KafkaError], code: RDKafkaErrorCode) -> bool {
    errors.iter().any(|e| e.rdkafka_error_code() == Some(code))
}

#[tokio::test]
async fn simulator_is_denied_reading_the_events_topic() {
    let cluster = Cluster::from_env();
    let (consumer, _) = cluster.consumer(&cluster.settings("simulator"), &[]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(cluster.events_topic(), 0, Offset::Beginning)
        .expect("valid");
    consumer.assign(&tpl).expect("assign");
    let (messages, errors) = poll_until(&consumer, Duration::from_secs(15), |_| false);
    assert!(
        messages.is_empty(),
        "simulator read {} records",
        messages.len()
    );
    assert!(
        has_code(&errors, RDKafkaErrorCode::TopicAuthorizationFailed),
        "errors: {errors:?}"
    );
}

#[tokio::test]
async fn simulator_cannot_join_the_analytics_group() {
    let cluster = Cluster::from_env();
    let group = cluster.var("KAFKA_ANALYTICS_GROUP").to_owned();
    let (consumer, _) = cluster.consumer(&cluster.settings("simulator"), &[("group.id", &group)]);
    consumer
        .subscribe(&[cluster.events_topic()])
        .expect("subscribe");
    let started = Instant::now();
    let (messages, errors) = poll_until(&consumer, Duration::from_secs(15), |_| false);
    assert!(messages.is_empty());
    assert!(
        has_code(&errors, RDKafkaErrorCode::GroupAuthorizationFailed)
            || has_code(&errors, RDKafkaErrorCode::TopicAuthorizationFailed),
        "errors after {:?}: {errors:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn analytics_is_denied_writing_the_events_topic() {
    let cluster = Cluster::from_env();
    let (producer, _) = cluster.producer(&cluster.settings("analytics"), Duration::from_secs(15));
    let started = Instant::now();
    let result = producer
        .send(
            FutureRecord::to(cluster.events_topic())
                .key("k")
                .payload("must not land"),
            Duration::from_secs(5),
        )
        .await;
    match result {
        Err((KafkaError::MessageProduction(code), _)) => {
            assert_eq!(
                code,
                RDKafkaErrorCode::TopicAuthorizationFailed,
                "after {:?}",
                started.elapsed()
            )
        }
        other => panic!("analytics write was not denied: {other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_password_is_rejected_and_nothing_is_delivered() {
    let cluster = Cluster::from_env();
    let settings = cluster.settings_with_password(
        "simulator",
        SecretString::from("not-the-password".to_owned()),
    );
    let (producer, context) = cluster.producer(&settings, Duration::from_secs(8));
    let result = producer
        .send(
            FutureRecord::to(cluster.events_topic())
                .key("k")
                .payload("x"),
            Duration::from_secs(1),
        )
        .await;
    assert!(
        result.is_err(),
        "a record was delivered with a wrong password: {result:?}"
    );
    let auth = context.errors.find(RDKafkaErrorCode::Authentication);
    let auth = auth.unwrap_or_else(|| {
        panic!(
            "no authentication error reported: {:?}",
            context.errors.snapshot()
        )
    });
    assert!(
        auth.reason.contains("SASL authentication error"),
        "{}",
        auth.reason
    );
    assert!(!auth.reason.contains("not-the-password"));
}

#[tokio::test]
async fn an_unknown_user_is_rejected_when_consuming() {
    let cluster = Cluster::from_env();
    let settings =
        cluster.settings_with_password("mallory", SecretString::from("whatever".to_owned()));
    let (consumer, context) = cluster.consumer(&settings, &[]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(cluster.events_topic(), 0, Offset::Beginning)
        .expect("valid");
    consumer.assign(&tpl).expect("assign");
    let (messages, errors) = poll_until(&consumer, Duration::from_secs(15), |_| {
        context
            .errors
            .find(RDKafkaErrorCode::Authentication)
            .is_some()
    });
    assert!(messages.is_empty());
    assert!(
        context
            .errors
            .find(RDKafkaErrorCode::Authentication)
            .is_some()
            || has_code(&errors, RDKafkaErrorCode::Authentication),
        "no authentication error: {errors:?} {:?}",
        context.errors.snapshot()
    );
}

/// The replication listener (client port + 1) takes only the brokers' certificates: a SCRAM
/// login there, even the admin's, gets no further than the TLS handshake.
#[tokio::test]
async fn service_principals_are_refused_on_the_replication_listener() {
    let cluster = Cluster::from_env();
    let internal: Vec<String> = cluster
        .var("KAFKA_BROKERS")
        .split(',')
        .map(|b| {
            let (host, port) = b.rsplit_once(':').expect("host:port");
            format!("{host}:{}", port.parse::<u16>().expect("port") + 1)
        })
        .collect();
    for user in ["simulator", "analytics", "admin"] {
        let settings = KafkaSettings::new(
            internal.join(","),
            user,
            cluster.password(user),
            cluster.var("KAFKA_SSL_CA_LOCATION"),
        )
        .expect("settings");
        let (producer, context) = cluster.producer(&settings, Duration::from_secs(8));
        let result = producer
            .send(
                FutureRecord::to(cluster.events_topic())
                    .key("k")
                    .payload("must not land"),
                Duration::from_secs(1),
            )
            .await;
        assert!(
            result.is_err(),
            "{user} delivered a record through the replication listener"
        );
        let errors = context.errors.snapshot();
        // The broker demands a client certificate: a "bad certificate" alert, or the
        // handshake cut.
        assert!(
            errors.iter().any(|e| e.reason.contains("bad certificate")
                || e.reason.contains("SSL handshake failed")),
            "{user}: not refused at the handshake: {errors:?}"
        );
    }
}
