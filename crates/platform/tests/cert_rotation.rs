//! Certificates that renew: a broker serving a short-lived certificate is reported as
//! expiring (status line, metric, warning), and `scripts/certs-rotate.sh` reissues it and
//! rolls the node with every record kept. Runs as its own test binary (it restarts a node);
//! node 1 is left serving a long-lived certificate even when an assertion fails.
#[path = "it/helpers.rs"]
mod helpers;

use std::process::Command;
use std::time::Duration;

use futures::future::join_all;
use rdkafka::producer::FutureRecord;

use helpers::{poll_until, Cluster};
use testkit::repo_root as root;

/// Run a script of scripts/ with extra environment; returns its stdout and stderr.
fn script(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new(root().join("scripts").join(args[0]))
        .args(&args[1..])
        .envs(env.iter().copied())
        .current_dir(root())
        .output()
        .expect("script runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{args:?} failed:\n{text}");
    text
}

/// Days left on the certificate node 1 serves, as a client sees it.
fn served_days_left(cluster: &Cluster) -> i64 {
    let broker = cluster
        .var("KAFKA_BROKERS")
        .split(',')
        .next()
        .expect("broker");
    let s_client = Command::new("openssl")
        .args(["s_client", "-connect", broker, "-servername", "localhost"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl s_client");
    let mut x509 = Command::new("openssl")
        .args(["x509", "-noout", "-enddate"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl x509");
    use std::io::Write;
    x509.stdin
        .take()
        .expect("stdin")
        .write_all(&s_client.stdout)
        .expect("pipe");
    let out = x509.wait_with_output().expect("x509");
    let end = String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_start_matches("notAfter=")
        .to_owned();
    let end =
        chrono::NaiveDateTime::parse_from_str(end.trim_end_matches(" GMT"), "%b %e %H:%M:%S %Y")
            .unwrap_or_else(|e| panic!("served certificate end date {end:?}: {e}"));
    (end.and_utc() - chrono::Utc::now()).num_days()
}

/// Leaves node 1 with a long-lived certificate, whatever happened.
struct Renew;

impl Drop for Renew {
    fn drop(&mut self) {
        let _ = Command::new(root().join("scripts/certs-rotate.sh"))
            .current_dir(root())
            .status();
    }
}

#[tokio::test]
async fn a_short_lived_certificate_is_reported_and_rotated_without_losing_data() {
    let cluster = Cluster::from_env();
    let topic = format!("it-rotation-{}", uuid::Uuid::new_v4().simple());
    let created =
        cluster
            .admin()
            .create_topics(
                &[rdkafka::admin::NewTopic::new(
                    &topic,
                    3,
                    rdkafka::admin::TopicReplication::Fixed(3),
                )
                .set("min.insync.replicas", "2")],
                &rdkafka::admin::AdminOptions::new(),
            )
            .await
            .expect("create topic");
    for r in created {
        r.expect("topic created");
    }
    cluster.wait_fully_replicated(&topic, Duration::from_secs(60));
    let _renew = Renew;

    // Node 1 serves a certificate that expires in two days.
    script(&["certs.sh", "--renew", "1"], &[("CERT_DAYS", "2")]);
    script(&["certs-rotate.sh"], &[("CERT_RENEW_DAYS", "0")]);
    assert!(
        served_days_left(&cluster) <= 2,
        "node 1 serves the short-lived certificate"
    );
    let status = script(&["certs.sh", "--status"], &[]);
    assert!(
        status.contains("warning: kafka-1 expires in"),
        "no warning for the expiring certificate:\n{status}"
    );
    let metrics = std::fs::read_to_string(root().join(".local/kafka/certs.prom")).expect("metrics");
    let kafka1: i64 = metrics
        .lines()
        .find(|l| l.starts_with("kafka_certificate_days_left{certificate=\"kafka-1\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .expect("kafka-1's metric");
    assert!(kafka1 <= 2, "{metrics}");

    // Records written before the rotation...
    let (producer, _) = cluster.producer(&cluster.settings("admin"), Duration::from_secs(30));
    let marker = format!("rotation-{}", uuid::Uuid::new_v4());
    let sends = (0..50).map(|i| {
        let (key, payload) = (format!("{marker}-{i}"), marker.clone());
        let producer = producer.clone();
        let topic = topic.clone();
        async move {
            producer
                .send(
                    FutureRecord::to(&topic).key(&key).payload(&payload),
                    Duration::from_secs(30),
                )
                .await
                .map(|_| ())
        }
    });
    for r in join_all(sends).await {
        r.expect("delivered before the rotation");
    }

    // ...the rotation reissues the expiring certificate and rolls node 1...
    let out = script(&["certs-rotate.sh"], &[]);
    assert!(out.contains("node 1: restarting"), "{out}");
    assert!(
        served_days_left(&cluster) > 300,
        "node 1 serves its renewed certificate"
    );
    cluster.wait_fully_replicated(&topic, Duration::from_secs(180));

    // ...and every record is still there.
    let (consumer, _) =
        cluster.consumer(&cluster.settings("admin"), &[("group.id", "it-rotation")]);
    use rdkafka::consumer::Consumer;
    let md = consumer
        .fetch_metadata(Some(&topic), Duration::from_secs(10))
        .expect("metadata");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in md.topics()[0].partitions() {
        tpl.add_partition_offset(&topic, p.id(), rdkafka::Offset::Beginning)
            .expect("offset");
    }
    consumer.assign(&tpl).expect("assign");
    let (messages, _) = poll_until(&consumer, Duration::from_secs(60), |m| {
        m.iter()
            .filter(|p| p.as_slice() == marker.as_bytes())
            .count()
            >= 50
    });
    let kept = messages
        .iter()
        .filter(|p| p.as_slice() == marker.as_bytes())
        .count();
    assert_eq!(kept, 50, "records written before the rotation are all kept");
}
