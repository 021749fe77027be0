//! The binary as a user runs it.
use std::process::Command;

fn simulator() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_simulator"));
    // A clean environment: nothing inherited may satisfy the credential checks.
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    c
}

#[test]
fn refuses_to_start_without_credentials_and_ca() {
    let out = simulator()
        .args(["--sessions", "1"])
        .env("KAFKA_BROKERS", "127.0.0.1:19092")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no SASL user") && err.contains("no CA") && err.contains("no SASL password"),
        "{err}"
    );
}

#[test]
fn refuses_a_plaintext_override() {
    let out = simulator()
        .args([
            "--sessions",
            "1",
            "--kafka-config",
            "security.protocol=PLAINTEXT",
        ])
        .envs([
            ("KAFKA_BROKERS", "127.0.0.1:19092"),
            ("KAFKA_SASL_USERNAME", "simulator"),
            ("KAFKA_SASL_PASSWORD", "x"),
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("security.protocol"));
}

#[test]
fn rejects_invalid_probabilities_listing_each() {
    let out = simulator()
        .args([
            "--dry-run",
            "--purchase-probability",
            "1.5",
            "--max-cart-quantity",
            "0",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("PURCHASE_PROBABILITY") && err.contains("cart quantity"),
        "{err}"
    );
}

#[test]
fn dry_run_prints_valid_json_lines_and_a_summary() {
    let out = simulator()
        .args([
            "--dry-run",
            "--sessions",
            "5",
            "--users",
            "2",
            "--rate",
            "0",
            "--seed",
            "1",
        ])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.len() >= 15, "{} lines", lines.len());
    for line in &lines {
        events::decode(line.as_bytes()).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("simulator summary: 5 sessions"), "{err}");
    assert!(
        err.contains(&format!("delivered                  {}", lines.len())),
        "{err}"
    );
}

#[test]
fn realtime_mode_stamps_events_with_the_wall_clock() {
    let before = chrono::Utc::now();
    let out = simulator()
        .args([
            "--dry-run",
            "--clock",
            "realtime",
            "--sessions",
            "3",
            "--users",
            "3",
            "--rate",
            "0",
        ])
        .args([
            "--min-event-interval",
            "0.001",
            "--max-event-interval",
            "0.02",
        ])
        .output()
        .expect("runs");
    let after = chrono::Utc::now();
    assert!(out.status.success());
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let e = events::decode(line.as_bytes()).expect("valid");
        assert!(
            e.timestamp >= before - chrono::Duration::seconds(1)
                && e.timestamp <= after + chrono::Duration::seconds(1),
            "{}",
            e.timestamp
        );
    }
}

#[test]
fn sigterm_stops_an_unbounded_run_with_a_summary() {
    let mut child = testkit::Guard::spawn(
        simulator()
            .args(["--dry-run", "--users", "500", "--rate", "0"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped()),
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let status = child
        .signal("-TERM", std::time::Duration::from_secs(20))
        .expect("simulator stops within 20 s of SIGTERM");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.child().stderr.take().expect("stderr"), &mut err)
        .expect("read");
    assert!(status.success(), "{err}");
    assert!(err.contains("simulator summary"), "{err}");
}
