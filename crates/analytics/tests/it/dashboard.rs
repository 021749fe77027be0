//! The dashboard in a real browser (Debian's chromium driven by playwright-core, see
//! `crates/dashboard/e2e/dashboard.mjs`) against a live pipeline: simulator → Kafka →
//! analytics → Firestore emulator → dashboard. The KPI tiles equal the figures computed
//! independently from the topic's events, before and after a new batch arrives (pushed,
//! without a reload); the charts draw, the hourly one also for a country picked; a product named like markup is shown as text and
//! never runs; the pipeline page shows the instance healthy; the data browser reaches a
//! shard's fields. Screenshots go to `crates/dashboard/e2e/screenshots/` (git-ignored).
use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{event, expected, stop, Bed, Expected, Guard};

/// The tiles the figures of `x` (lifetime) must show.
fn tiles(x: &Expected) -> Value {
    let c = |field: &str| {
        x.counters
            .get(&("statistics/lifetime".to_owned(), field.to_owned()))
            .copied()
            .unwrap_or(0)
    };
    let (started, ended, orders, paid) = (
        c("started_sessions_count"),
        c("ended_sessions_count"),
        c("purchase_count"),
        c("total_paid_cents"),
    );
    let ratio = |a: i64, b: i64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let carted = c("sessions_with_cart_count");
    json!({
        "funnel_0": started,
        "funnel_1": c("sessions_with_product_view_count"),
        "funnel_2": carted,
        "funnel_3": c("sessions_with_purchase_count"),
        "abandonment": ratio(c("abandoned_carts_count"), carted),
        "first_purchase": ratio(c("first_purchase_seconds_total"), c("first_purchase_timed_count")),
        "active_sessions": started - ended,
        "sessions": started,
        "orders": orders,
        "conversion": ratio(orders, started),
        "gross": c("total_amount_cents"),
        // Net revenue is gross minus discounts.
        "net": c("total_amount_cents") - c("total_discount_cents"),
        "paid": paid,
        "aov": ratio(paid, orders),
    })
}

/// The country with the most orders, and the hourly chart it must show: for every hour
/// bucket with events, that country's orders and paid revenue (0 where it had none).
fn country_hours(x: &Expected) -> (String, Value) {
    let c = |doc: &str, field: &str| {
        x.counters
            .get(&(doc.to_owned(), field.to_owned()))
            .copied()
            .unwrap_or(0)
    };
    let cc = x
        .counters
        .keys()
        .filter_map(|(doc, _)| doc.strip_prefix("countries/"))
        .filter_map(|rest| rest.strip_suffix("/statistics/lifetime"))
        .max_by_key(|cc| {
            (
                c(
                    &format!("countries/{cc}/statistics/lifetime"),
                    "purchase_count",
                ),
                *cc,
            )
        })
        .expect("a country")
        .to_owned();
    let hours: serde_json::Map<String, Value> = x
        .counters
        .keys()
        .filter_map(|(doc, _)| doc.strip_prefix("statistics/"))
        .filter(|b| b.len() == 13 && b.as_bytes()[10] == b'T')
        .map(|hour| {
            let doc = format!("countries/{cc}/statistics/{hour}");
            (
                hour.to_owned(),
                json!([c(&doc, "purchase_count"), c(&doc, "total_paid_cents")]),
            )
        })
        .collect();
    (cc, Value::Object(hours))
}

struct Browser {
    child: Guard,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Browser {
    /// The next line the script prints; its `FAIL` fails the test.
    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read the script");
        assert!(
            !line.is_empty(),
            "the browser script ended without a verdict"
        );
        assert!(!line.starts_with("FAIL"), "browser: {line}");
        line.trim_end().to_owned()
    }

    fn send(&mut self, line: &str) -> String {
        writeln!(self.stdin, "{line}").expect("write to the script");
        self.line()
    }
}

/// A free loopback port for an admin server.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_live_figures_in_a_browser() {
    let bed = Bed::new("dash");
    bed.create_topics(3).await;
    bed.simulate(&[
        "--users",
        "20",
        "--sessions",
        "60",
        "--rate",
        "0",
        "--seed",
        "71",
    ])
    .await;
    // The escaping probe: a product named like markup.
    let session = uuid::Uuid::new_v4().to_string();
    let now = chrono::Utc::now();
    let mut viewed: Value =
        serde_json::from_slice(&event("product_viewed", &session, now)).expect("json");
    viewed["parameters"]["product"]["id"] = json!("probe");
    viewed["parameters"]["product"]["name"] = json!("<img src=x onerror=window.__xss=1>");
    bed.inject(&[
        (
            Some(session.as_str()),
            event("session_started", &session, now),
        ),
        (
            Some(session.as_str()),
            serde_json::to_vec(&viewed).expect("encode"),
        ),
    ])
    .await;

    let store = bed.store().await;
    let admin = format!("127.0.0.1:{}", free_port());
    let mut analytics = Guard(Some(bed.analytics(
        "dash",
        &[
            ("ANALYTICS_ADMIN_ADDR", admin.as_str()),
            ("ANALYTICS_DERIVED_INTERVAL_SECONDS", "1"),
        ],
    )));
    bed.wait_caught_up(&store, Duration::from_secs(120)).await;
    // The day series needs a day's derived metrics.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while store.list("metrics", &[]).await.expect("list").len() < 2 {
        assert!(std::time::Instant::now() < deadline, "no derived metrics");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let mut dashboard = Command::new(testkit::workspace_bin("dashboard"));
    dashboard
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("FIRESTORE_EMULATOR_HOST", &bed.emulator)
        .env("GCLOUD_PROJECT", bed.project())
        .env("DASHBOARD_ADDR", "127.0.0.1:0")
        .env("DASHBOARD_ANALYTICS_ADMIN", &admin)
        .env("DASHBOARD_PUSH_SECONDS", "1")
        .args(["--top", "1000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut dashboard = Guard::spawn(&mut dashboard);
    let mut out = BufReader::new(dashboard.child().stdout.take().expect("stdout"));
    let mut first = String::new();
    out.read_line(&mut first).expect("the dashboard's address");
    let url = first
        .trim()
        .strip_prefix("dashboard: ")
        .unwrap_or_else(|| panic!("the dashboard printed {first:?}"))
        .to_owned();

    let root = testkit::repo_root().join("crates/dashboard");
    let mut node = Command::new("node");
    node.arg(root.join("e2e/dashboard.mjs"))
        .arg(&url)
        .arg(root.join("e2e/screenshots"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = Guard::spawn(&mut node);
    let stdin = child.child().stdin.take().expect("stdin");
    let stdout = BufReader::new(child.child().stdout.take().expect("stdout"));
    let mut browser = Browser {
        child,
        stdin,
        stdout,
    };
    assert_eq!(browser.line(), "READY");

    let x = expected(&bed.read(&bed.topic()));
    let first = tiles(&x);
    let matched = browser.send(&format!("EXPECT {first}"));
    assert!(matched.starts_with("MATCHED"), "{matched}");

    // A new batch: the open page follows without a reload.
    bed.simulate(&[
        "--users",
        "10",
        "--sessions",
        "30",
        "--rate",
        "0",
        "--seed",
        "72",
    ])
    .await;
    bed.wait_caught_up(&store, Duration::from_secs(120)).await;
    let x = expected(&bed.read(&bed.topic()));
    let second = tiles(&x);
    assert_ne!(
        first["sessions"], second["sessions"],
        "the batch adds sessions"
    );
    let matched = browser.send(&format!("EXPECT {second}"));
    assert!(matched.starts_with("MATCHED"), "{matched}");

    // The hourly chart of one country: its own hour figures.
    let (country, hours) = country_hours(&x);
    assert!(
        hours
            .as_object()
            .is_some_and(|h| h.values().any(|v| v[0] != 0)),
        "{country} has orders by the hour: {hours}"
    );
    let matched = browser.send(&format!(
        "HOURS {}",
        json!({ "country": country, "hours": hours })
    ));
    assert!(matched.starts_with("MATCHED"), "{matched}");

    assert_eq!(browser.send("FINISH"), "DONE");
    let _ = browser.child.signal("-TERM", Duration::from_secs(10));
    assert!(
        dashboard
            .signal("-TERM", Duration::from_secs(10))
            .is_some_and(|s| s.success()),
        "the dashboard stops on SIGTERM with 0"
    );
    assert!(stop(analytics.0.as_mut().expect("analytics"), "-TERM").success());
}
