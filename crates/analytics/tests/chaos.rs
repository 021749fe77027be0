//! The chaos suite: the full pipeline at a sustained rate with injected duplicates and late
//! events while a scripted fault plan runs (analytics SIGKILLed, once between a flush's
//! manifest and its applies with a multi-megabyte journal; a broker SIGKILLed and restarted;
//! the Firestore emulator paused; records at the broker's size limit, a very long session
//! and other poison), then every aggregate compared with an independent computation from the
//! topic's distinct events. Prints a table of what happened.
//!
//! Short by default (it runs in `make test`, debug build); `make chaos` runs it at full length
//! on release builds: `CHAOS_SECONDS` (90), `CHAOS_RATE` events/s (1000), `CHAOS_SEED` (1),
//! `CHAOS_LONG_SESSION` events (6000), `CHAOS_FAILPOINT_BYTES` (1000000).
#[path = "it/helpers.rs"]
mod helpers;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use helpers::{
    assert_excerpt_dead_lettered, assert_matches, assert_no_journal, assert_ranked_products_active,
    event, expected, stop, Bed, Guard,
};
use store::client::int_field;
use store::Store;
use testkit::repo_root as root;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One row of the fault table.
struct Fault {
    what: String,
    /// From the end of the fault until every partition with new records persisted again.
    recovered: Duration,
}

/// Poison of every kind the suite injects: (key, payload, expected dead-letter reason).
fn poison() -> Vec<(String, Vec<u8>, &'static str)> {
    let now = chrono::Utc::now();
    let s = || uuid::Uuid::new_v4().to_string();
    let y2999 = chrono::DateTime::parse_from_rfc3339("2999-01-01T00:00:00Z")
        .expect("time")
        .to_utc();
    let y1969 = chrono::DateTime::parse_from_rfc3339("1969-12-31T00:00:00Z")
        .expect("time")
        .to_utc();
    let (a, b, c) = (s(), s(), s());
    vec![
        // At the broker's size limit: dead-lettered as an excerpt.
        (s(), vec![b'{'; 1_040_000], "oversized"),
        (
            a.clone(),
            event("session_started", &a, y2999),
            "event_time_out_of_window",
        ),
        (
            b.clone(),
            event("session_started", &b, y1969),
            "event_time_out_of_window",
        ),
        (
            c.clone(),
            event("session_ended", &c, now),
            "session_not_started",
        ),
        (s(), b"{not json".to_vec(), "invalid_json"),
        (s(), vec![0xff, 0xfe], "not_utf8"),
    ]
}

/// A valid session of `n` product views.
fn long_session(n: usize) -> Vec<(String, Vec<u8>)> {
    let sid = uuid::Uuid::new_v4().to_string();
    let t0 = chrono::Utc::now() - chrono::TimeDelta::hours(1);
    let at = |i: usize| t0 + chrono::TimeDelta::milliseconds(i as i64 * 10);
    let mut out = vec![(sid.clone(), event("session_started", &sid, at(0)))];
    out.extend((1..=n).map(|i| (sid.clone(), event("product_viewed", &sid, at(i)))));
    out.push((sid.clone(), event("session_ended", &sid, at(n + 1))));
    out
}

/// Wait until every partition that has records beyond its marker of `before` has persisted
/// past it; returns how long that took.
async fn all_partitions_advance(bed: &Bed, store: &Store, timeout: Duration) -> Duration {
    let t0 = Instant::now();
    let before = bed
        .markers(store, bed.end_offsets(&bed.topic()).into_keys())
        .await;
    loop {
        let ends = bed.end_offsets(&bed.topic());
        let now = bed.markers(store, ends.keys().copied()).await;
        let waiting: Vec<i32> = before
            .iter()
            .filter(|(p, m)| ends.get(p).is_some_and(|e| e > m) && now.get(p) <= Some(m))
            .map(|(p, _)| *p)
            .collect();
        if waiting.is_empty() {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < timeout,
            "partitions {waiting:?} made no progress within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Wait until the group is stable with a single member (the killed one is gone and its
/// partitions are assigned to the survivor); returns how long that took.
async fn survivor_alone(bed: &Bed, timeout: Duration) -> Duration {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let t0 = Instant::now();
    let consumer: BaseConsumer = bed
        .kafka("admin")
        .client_config("it-group-watch")
        .create()
        .expect("consumer");
    loop {
        let alone = consumer
            .fetch_group_list(Some(&bed.group()), Duration::from_secs(5))
            .ok()
            .and_then(|l| {
                l.groups()
                    .first()
                    .map(|g| g.state() == "Stable" && g.members().len() == 1)
            })
            .unwrap_or(false);
        if alone {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < timeout,
            "the group did not settle within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn script(args: &[&str]) {
    let status = Command::new(root().join(args[0]))
        .args(&args[1..])
        .current_dir(root())
        .status()
        .expect("script");
    assert!(status.success(), "{args:?}: {status}");
}

fn emulator_signal(sig: &str) {
    // The pid file holds "PID MARKER".
    let line = std::fs::read_to_string(root().join(".local/firestore/pid")).expect("emulator pid");
    let pid = line.split_whitespace().next().expect("pid");
    let status = Command::new("kill")
        .args([sig, pid])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Undoes a fault when dropped, so a failing run leaves the shared cluster and emulator
/// running for the tests after it.
struct Undo(Option<&'static [&'static str]>);

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(args) = self.0.take() {
            let _ = Command::new(root().join(args[0]))
                .args(&args[1..])
                .current_dir(root())
                .status();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

/// The status code of an admin endpoint.
async fn http_status(port: u16, path: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    String::from_utf8_lossy(&buf)
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Documents left in a bookkeeping collection.
async fn leftovers(store: &Store, collection: &str) -> usize {
    store.list(collection, &[]).await.expect("list").len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_against_ground_truth() {
    let seconds: u64 = env_or("CHAOS_SECONDS", 90);
    let rate: u64 = env_or("CHAOS_RATE", 1000);
    let seed: u64 = env_or("CHAOS_SEED", 1);
    let long: usize = env_or("CHAOS_LONG_SESSION", 6000);
    let failpoint: usize = env_or("CHAOS_FAILPOINT_BYTES", 1_000_000);
    let started = Instant::now();

    let bed = Bed::new(&format!("chaos{seed}"));
    bed.create_topics(6).await;
    let store = bed.store().await;
    let mut faults: Vec<Fault> = Vec::new();
    let say = |what: &str| eprintln!("[chaos {:>6.1}s] {what}", started.elapsed().as_secs_f64());
    let b_port = free_port();
    let b_admin = format!("127.0.0.1:{b_port}");
    let log = ("RUST_LOG", "info,analytics=debug,librdkafka=warn");
    let common = [("ANALYTICS_FLUSH_INTERVAL_MS", "1000"), log];
    let with_b = [
        ("ANALYTICS_FLUSH_INTERVAL_MS", "1000"),
        log,
        ("ANALYTICS_ADMIN_ADDR", b_admin.as_str()),
        ("ANALYTICS_STALL_SECONDS", "4"),
    ];
    let mut b = Guard(Some(bed.analytics("b0", &with_b)));
    let mut a = Guard(Some(bed.analytics("a0", &common)));

    // Max lag (records in the topic not yet persisted), sampled each second.
    let max_lag = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let sampler = {
        let (bed, store, max_lag) = (bed.clone(), store.clone(), max_lag.clone());
        tokio::spawn(async move {
            let stop_at = Instant::now() + Duration::from_secs(seconds * 6 + 300);
            while Instant::now() < stop_at {
                // A broker may be down: a failed sample is skipped.
                if let Ok(ends) = bed.try_end_offsets(&bed.topic()) {
                    let behind = bed.unpersisted(&store, &ends).await;
                    max_lag.fetch_max(behind, std::sync::atomic::Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    // The traffic runs until the fault plan is done and at least `seconds` have passed (at
    // most ten minutes: the run stops by itself).
    let traffic = tokio_util::sync::CancellationToken::new();
    let producer = {
        let (bed, stop) = (bed.clone(), traffic.clone());
        let (rate, seed) = (rate.to_string(), seed.to_string());
        tokio::spawn(async move {
            bed.simulate_until(
                &[
                    "--users",
                    "400",
                    "--rate",
                    &rate,
                    "--duration",
                    "600s",
                    "--duplicate-fraction",
                    "0.03",
                    "--late-fraction",
                    "0.03",
                    "--seed",
                    &seed,
                ],
                stop,
            )
            .await
        })
    };
    let step = Duration::from_secs((seconds / 10).max(5));
    // A cold cluster and emulator (fresh JVMs) first warm up: faults start once analytics
    // keeps up (less than five seconds of traffic behind), or after a minute regardless.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let ends = bed.end_offsets(&bed.topic());
        let written: i64 = ends.values().sum();
        if written > 0 && bed.unpersisted(&store, &ends).await < (rate as i64) * 5 {
            break;
        }
    }
    say("warmed up");
    let traffic_flows = |what: &str| {
        assert!(!producer.is_finished(), "the traffic stopped before {what}");
    };

    // Poison and a very long session, while the traffic runs.
    let poison = poison();
    let records: Vec<(Option<&str>, Vec<u8>)> = poison
        .iter()
        .map(|(k, p, _)| (Some(k.as_str()), p.clone()))
        .collect();
    bed.inject(&records).await;
    let session = long_session(long);
    let records: Vec<(Option<&str>, Vec<u8>)> = session
        .iter()
        .map(|(k, p)| (Some(k.as_str()), p.clone()))
        .collect();
    bed.inject(&records).await;

    say("injected poison and a long session");
    // 1. SIGKILL an instance: the survivor takes its partitions over.
    traffic_flows("the first SIGKILL");
    stop(a.0.as_mut().expect("a"), "-KILL");
    let killed = Instant::now();
    let rebalanced = survivor_alone(&bed, Duration::from_secs(90)).await;
    faults.push(Fault {
        what: "analytics SIGKILL: survivor owns every partition".into(),
        recovered: rebalanced,
    });
    all_partitions_advance(&bed, &store, Duration::from_secs(90)).await;
    let failover = killed.elapsed();
    faults.push(Fault {
        what: "analytics SIGKILL: every partition persisted again".into(),
        recovered: failover,
    });
    a = Guard(Some(bed.analytics("a1", &common)));

    say("failover measured");
    // 2. A broker SIGKILLed, restarted after a while.
    tokio::time::sleep(step).await;
    let mut undo = Undo(Some(&["scripts/kafka-node.sh", "start", "2"]));
    script(&["scripts/kafka-node.sh", "kill", "2"]);
    tokio::time::sleep(step).await;
    script(&["scripts/kafka-node.sh", "start", "2"]);
    undo.0 = None;
    faults.push(Fault {
        what: format!("broker 2 SIGKILL for {}s", step.as_secs()),
        recovered: all_partitions_advance(&bed, &store, Duration::from_secs(120)).await,
    });

    say("broker fault done");
    // 3. The emulator paused: health must turn 503 while work waits, 200 after.
    tokio::time::sleep(step / 2).await;
    traffic_flows("the emulator pause");
    let mut undo = Undo(Some(&["scripts/chaos.sh", "--resume-emulator"]));
    emulator_signal("-STOP");
    let mut saw_unhealthy = false;
    let pause_until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < pause_until {
        saw_unhealthy |= http_status(b_port, "/healthz").await == Some(503);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    emulator_signal("-CONT");
    undo.0 = None;
    faults.push(Fault {
        what: "Firestore emulator SIGSTOP for 8s".into(),
        recovered: all_partitions_advance(&bed, &store, Duration::from_secs(120)).await,
    });
    assert!(
        saw_unhealthy,
        "/healthz stayed 200 while nothing could be persisted"
    );

    say("emulator fault done");
    // 4. Both instances down while a backlog builds; one restarts with a failpoint that
    //    aborts it right after the manifest of its first large (catch-up) flush.
    traffic_flows("the backlog");
    assert!(stop(b.0.as_mut().expect("b"), "-TERM").success());
    stop(a.0.as_mut().expect("a"), "-KILL");
    tokio::time::sleep(step).await;
    let fp = format!("abort-after-manifest:{failpoint}");
    let mut crashing = Guard(Some(bed.analytics(
        "a2-failpoint",
        &[
            ("ANALYTICS_FLUSH_INTERVAL_MS", "1000"),
            ("ANALYTICS_FAILPOINT", &fp),
            // Every partition's sessions at every flush: the abort also lands while a
            // checkpoint of every partition is being written (sessions are not journalled;
            // the catch-up flush's counters journal megabytes on their own).
            ("ANALYTICS_SESSION_CHECKPOINT_SECONDS", "0"),
        ],
    )));
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = crashing
            .0
            .as_mut()
            .expect("child")
            .try_wait()
            .expect("wait")
        {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the failpoint never fired: no flush journalled {failpoint} bytes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    crashing.0 = None;
    assert!(!status.success(), "aborted at the failpoint: {status}");
    let journal_left = leftovers(&store, "_journal").await;
    assert!(journal_left > 0, "the crash left no journal to recover");
    a = Guard(Some(bed.analytics("a3", &common)));
    b = Guard(Some(bed.analytics("b1", &with_b)));
    faults.push(Fault {
        what: format!(
            "analytics abort between manifest and applies ({journal_left} chunks pending)"
        ),
        recovered: all_partitions_advance(&bed, &store, Duration::from_secs(180)).await,
    });

    say("failpoint crash recovered");
    let rest = Duration::from_secs(seconds).saturating_sub(started.elapsed());
    tokio::time::sleep(rest).await;
    traffic.cancel();
    let summary = producer.await.expect("producer");
    bed.wait_caught_up(&store, Duration::from_secs(300)).await;
    assert_eq!(
        http_status(b_port, "/healthz").await,
        Some(200),
        "healthy when caught up"
    );
    assert!(
        stop(a.0.as_mut().expect("a"), "-TERM").success(),
        "a drains and exits 0"
    );
    assert!(
        stop(b.0.as_mut().expect("b"), "-TERM").success(),
        "b drains and exits 0"
    );
    sampler.abort();

    // Ground truth from the topic.
    let records = bed.read(&bed.topic());
    let x = expected(&records);
    let compared = assert_matches(&store, &x).await;
    let ends = bed.end_offsets(&bed.topic());
    assert_eq!(
        bed.markers(&store, ends.keys().copied()).await,
        ends,
        "markers at the end of every partition"
    );
    assert_no_journal(&store).await;

    // Derived documents agree with the counters of every bucket.
    let want = |path: &str, field: &str| {
        x.counters
            .get(&(path.to_owned(), field.to_owned()))
            .copied()
            .unwrap_or(0)
    };
    // Lifetime and the days have derived documents; the hours (`YYYY-MM-DDTHH`) do not.
    let buckets: std::collections::BTreeSet<String> = x
        .counters
        .keys()
        .filter_map(|(p, _)| p.strip_prefix("statistics/").map(str::to_owned))
        .filter(|b| !b.contains('T'))
        .collect();
    let mut derived_fields = 0;
    for bucket in &buckets {
        let m = store
            .get(&format!("metrics/{bucket}"))
            .await
            .expect("read")
            .unwrap_or_else(|| panic!("metrics/{bucket} materialized"));
        for (field, counter) in [
            ("sessions_started", "started_sessions_count"),
            ("sessions_ended", "ended_sessions_count"),
            ("orders", "purchase_count"),
        ] {
            assert_eq!(
                int_field(&m, field).unwrap_or(0),
                want(&format!("statistics/{bucket}"), counter),
                "metrics/{bucket}.{field}"
            );
            derived_fields += 1;
        }
        derived_fields +=
            assert_ranked_products_active(&store, &format!("trending/{bucket}")).await;
    }

    // Every poison record dead-lettered with its reason; the large one as an excerpt.
    let dlq = bed.read(&bed.dlq());
    let reasons: BTreeMap<String, String> = dlq
        .iter()
        .filter_map(|r| {
            Some((
                r.key
                    .clone()
                    .map(|k| String::from_utf8_lossy(&k).into_owned())?,
                r.headers.get(events::dlq::REASON)?.clone(),
            ))
        })
        .collect();
    for (key, _, reason) in &poison {
        assert_eq!(
            reasons.get(key).map(String::as_str),
            Some(*reason),
            "dead letter of {key}"
        );
    }
    assert_excerpt_dead_lettered(&dlq, 1_040_000);
    // Dead letters are at least once (work discarded at a rebalance is dead-lettered again
    // by the next owner): copies share `dlq.source`, and only poison is there.
    let sources: std::collections::BTreeSet<&String> = dlq
        .iter()
        .filter_map(|r| r.headers.get(events::dlq::SOURCE))
        .collect();
    assert_eq!(
        sources.len(),
        poison.len(),
        "distinct dead letters (by dlq.source) = poison records"
    );

    let distinct: usize = x.session_events.values().sum();
    println!(
        "\nchaos suite, seed {seed}: {:.0}s of traffic at {rate} events/s, long session of {long} events",
        summary.elapsed.as_secs_f64()
    );
    println!("{:<70} {:>12}", "fault", "recovered in");
    for f in &faults {
        println!("{:<70} {:>11.1}s", f.what, f.recovered.as_secs_f64());
    }
    println!(
        "{:<40} {:>12}",
        "events delivered (simulator)", summary.delivered
    );
    println!("{:<40} {:>12}", "records in the topic", records.len());
    println!("{:<40} {:>12}", "distinct valid events", distinct);
    println!("{:<40} {:>12}", "duplicates", x.duplicates);
    println!("{:<40} {:>12}", "dead letters", dlq.len());
    println!(
        "{:<40} {:>12}",
        "documents compared",
        compared.documents + 2 * buckets.len()
    );
    println!(
        "{:<40} {:>12}",
        "fields compared",
        compared.fields + derived_fields
    );
    println!("{:<40} {:>12}", "mismatches", 0);
    println!(
        "{:<40} {:>12}",
        "max lag (records)",
        max_lag.load(std::sync::atomic::Ordering::Relaxed)
    );
    println!(
        "{:<40} {:>11.0}s",
        "total time",
        started.elapsed().as_secs_f64()
    );
}
