//! `attacker all` against the live cluster with analytics running as its own principal:
//! every attack rejected, every control passed, analytics alive and clean afterwards.
use std::process::{Command, Stdio};
use std::time::Duration;

use testkit::{local_env, passwords, workspace_bin, Guard};

#[test]
fn every_attack_is_rejected_and_analytics_survives_the_poison() {
    let kafka = local_env("kafka/client.env");
    let firestore = local_env("firestore/env");
    let work = tempfile::tempdir().expect("temp dir");
    let project = format!("attack-it-{}", std::process::id());
    let analytics_log = work.path().join("analytics.log");
    let log_file = std::fs::File::create(&analytics_log).expect("log file");

    // Analytics exactly as deployed: the `analytics` principal, the real topic and group,
    // with librdkafka's security debugging on to give a leaked password every chance.
    let mut analytics = Guard::spawn(
        Command::new(workspace_bin("analytics"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("GCLOUD_PROJECT", &project)
            .env(
                "FIRESTORE_EMULATOR_HOST",
                &firestore["FIRESTORE_EMULATOR_HOST"],
            )
            .env("KAFKA_BROKERS", &kafka["KAFKA_BROKERS"])
            .env("KAFKA_SSL_CA_LOCATION", &kafka["KAFKA_SSL_CA_LOCATION"])
            .env("KAFKA_SASL_USERNAME", "analytics")
            .env(
                "KAFKA_SASL_PASSWORD_FILE",
                format!("{}/analytics.password", kafka["KAFKA_SECRETS_DIR"]),
            )
            .env("KAFKA_CLIENT_CONFIG", "debug=security")
            .env("EVENTS_TOPIC", &kafka["KAFKA_EVENTS_TOPIC"])
            .env("DLQ_TOPIC", &kafka["KAFKA_DLQ_TOPIC"])
            .env("ANALYTICS_GROUP", &kafka["KAFKA_ANALYTICS_GROUP"])
            .env("ANALYTICS_ADMIN_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info,librdkafka=debug")
            .stdout(Stdio::from(log_file.try_clone().expect("log file")))
            .stderr(Stdio::from(log_file)),
    );

    let output = Command::new(env!("CARGO_BIN_EXE_attacker"))
        .arg("all")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KAFKA_BROKERS", &kafka["KAFKA_BROKERS"])
        .env("KAFKA_SSL_CA_LOCATION", &kafka["KAFKA_SSL_CA_LOCATION"])
        .env("ATTACK_IMPOSTOR_CA", &kafka["KAFKA_IMPOSTOR_CA_LOCATION"])
        .env("ATTACK_SECRETS_DIR", &kafka["KAFKA_SECRETS_DIR"])
        .env("EVENTS_TOPIC", &kafka["KAFKA_EVENTS_TOPIC"])
        .env("DLQ_TOPIC", &kafka["KAFKA_DLQ_TOPIC"])
        .env("ANALYTICS_GROUP", &kafka["KAFKA_ANALYTICS_GROUP"])
        .env("INJECTOR_GROUP", &kafka["KAFKA_INJECTOR_GROUP"])
        .env("GCLOUD_PROJECT", &project)
        .env(
            "FIRESTORE_EMULATOR_HOST",
            &firestore["FIRESTORE_EMULATOR_HOST"],
        )
        .env("RUST_LOG", "warn")
        .output()
        .expect("run the attacker");
    let table = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    println!("{table}");

    assert!(
        output.status.success(),
        "the suite failed ({:?}):\n{table}\n{stderr}",
        output.status
    );
    for bad in ["BREACHED", "INCONCLUSIVE", "CONTROL-FAILED"] {
        assert!(!table.contains(bad), "{bad} in:\n{table}");
    }
    for scenario in [
        "controls/",
        "impostor-ca/",
        "system-trust/",
        "hostname/",
        "wrong-password/",
        "unknown-user/",
        "plaintext/",
        "tls-without-sasl/",
        "sasl-plain/",
        "other-scram/",
        "acl/",
        "poison/",
        "read-back/",
    ] {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(scenario)
                    && (l.contains(" REJECTED ") || l.contains(" PASSED "))),
            "no verdict for {scenario} in:\n{table}"
        );
    }
    let rejected = table.lines().filter(|l| l.contains(" REJECTED ")).count();
    assert!(rejected >= 40, "only {rejected} attacks ran:\n{table}");

    assert!(analytics.alive(), "analytics died during the attacks");
    let status = analytics
        .signal("-TERM", Duration::from_secs(60))
        .expect("analytics stops on SIGTERM");
    let log = std::fs::read_to_string(&analytics_log).expect("analytics log");
    assert!(status.success(), "analytics exited {status:?}:\n{log}");
    assert!(
        log.contains("SASL"),
        "the security debug log is empty; the scan below would prove nothing"
    );
    for password in passwords(&kafka["KAFKA_SECRETS_DIR"]) {
        assert!(
            !log.contains(&password),
            "a password appears in analytics' log"
        );
        assert!(
            !table.contains(&password) && !stderr.contains(&password),
            "a password appears in the attacker's output"
        );
    }
}
