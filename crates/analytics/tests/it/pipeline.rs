//! The pipeline end to end: simulator → Kafka (SASL_SSL) → analytics → Firestore emulator,
//! compared with the independent computation of [`expected`].
use std::time::Duration;

use rand::{RngExt, SeedableRng};

use firestore::gcloud_sdk::google::firestore::v1::value::ValueType;
use store::client::int_field;

use crate::helpers::{
    assert_excerpt_dead_lettered, assert_matches, assert_no_journal, assert_ranked_products_active,
    event, expected, seed_orphan_chunk, stop, Bed, Expected, Guard,
};

/// The derived documents agree with the counters: sessions, orders, and the top trending
/// product; no product without activity is listed.
async fn assert_derived(store: &store::Store, x: &Expected) {
    let want = |path: &str, field: &str| {
        x.counters
            .get(&(path.to_owned(), field.to_owned()))
            .copied()
            .unwrap_or(0)
    };
    let metrics = store
        .get("metrics/lifetime")
        .await
        .expect("read")
        .expect("metrics/lifetime materialized");
    assert_eq!(
        int_field(&metrics, "orders"),
        Some(want("statistics/lifetime", "purchase_count"))
    );
    assert_eq!(
        int_field(&metrics, "sessions_started"),
        Some(want("statistics/lifetime", "started_sessions_count"))
    );
    assert_eq!(
        int_field(&metrics, "sessions_ended"),
        Some(want("statistics/lifetime", "ended_sessions_count"))
    );
    assert_eq!(
        int_field(&metrics, "active_sessions"),
        Some(
            want("statistics/lifetime", "started_sessions_count")
                - want("statistics/lifetime", "ended_sessions_count")
        )
    );
    let top_units = x
        .counters
        .iter()
        .filter(|((p, f), _)| {
            p.starts_with("products/")
                && p.ends_with("/statistics/lifetime")
                && f == "total_items_purchased"
        })
        .map(|(_, v)| *v)
        .max()
        .unwrap_or(0);
    let trending = store
        .get("trending/lifetime")
        .await
        .expect("read")
        .expect("trending/lifetime materialized");
    let first_units = match trending
        .fields
        .get("products")
        .and_then(|v| v.value_type.as_ref())
    {
        Some(ValueType::ArrayValue(a)) => {
            match a.values.first().and_then(|v| v.value_type.as_ref()) {
                Some(ValueType::MapValue(m)) => {
                    match m.fields.get("units").and_then(|v| v.value_type.as_ref()) {
                        Some(ValueType::IntegerValue(n)) => *n,
                        _ => -1,
                    }
                }
                _ => -1,
            }
        }
        _ => -1,
    };
    assert_eq!(
        first_units, top_units,
        "the top trending product has the most units"
    );
    for doc in ["trending/lifetime", "interest/lifetime"] {
        assert_ranked_products_active(store, doc).await;
    }
}

fn poison() -> Vec<(Option<&'static str>, Vec<u8>)> {
    let valid = br#"{"event_id":"9a0e6c1e-8f1b-4f63-9a55-0c8d2f1e7b10","event_type":"session_started","session_id":"1b3c5d7e-0000-4000-8000-000000000001","timestamp":"2026-01-01T00:00:00Z","user_id":"2c4e6a8b-0000-4000-8000-000000000002","location":{"country":"US","state":"Texas","city":"Houston","latitude":29.76,"longitude":-95.36},"parameters":{"user_agent":"x"},"schema_version":1}"#.to_vec();
    vec![
        (Some("k"), b"{not json".to_vec()),
        (Some("k"), br#"{"event_type":"page_viewed"}"#.to_vec()),
        (Some("k"), vec![0xff, 0xfe, 0x00]),
        (Some("k"), vec![b' '; 70 * 1024]),
        (
            Some("k"),
            String::from_utf8_lossy(&valid)
                .replace("Texas", "../../statistics")
                .into_bytes(),
        ),
        (
            Some("k"),
            String::from_utf8_lossy(&valid)
                .replace("session_started", "page_viewed")
                .into_bytes(),
        ),
        (Some("wrong-key"), valid.clone()),
        (None, b"[]".to_vec()),
        // At the broker's size limit: more than the dead-letter topic holds with headers.
        (Some("k"), vec![b'{'; 1_040_000]),
        // Outside the event-time window (30 days before to 5 minutes after ingestion).
        (
            Some("1b3c5d7e-0000-4000-8000-000000000001"),
            String::from_utf8_lossy(&valid)
                .replace("2026-01-01T00:00:00Z", "2999-01-01T00:00:00Z")
                .into_bytes(),
        ),
        (
            Some("1b3c5d7e-0000-4000-8000-000000000001"),
            String::from_utf8_lossy(&valid)
                .replace("2026-01-01T00:00:00Z", "1969-12-31T00:00:00Z")
                .into_bytes(),
        ),
        // The end of a session that never started.
        (
            Some("1b3c5d7e-0000-4000-8000-000000000001"),
            String::from_utf8_lossy(&valid)
                .replace("2026-01-01T00:00:00Z", &chrono::Utc::now().to_rfc3339())
                .replace("session_started", "session_ended")
                .replace(r#"{"user_agent":"x"}"#, r#"{"seconds_duration":5}"#)
                .into_bytes(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_aggregate_is_exact_with_duplicates_late_events_and_poison() {
    let bed = Bed::new("exact");
    bed.create_topics(6).await;
    bed.simulate(&[
        "--users",
        "30",
        "--sessions",
        "150",
        "--rate",
        "0",
        "--duplicate-fraction",
        "0.05",
        "--late-fraction",
        "0.05",
        "--seed",
        "21",
    ])
    .await;
    let poison = poison();
    bed.inject(&poison).await;
    bed.simulate(&[
        "--users",
        "10",
        "--sessions",
        "50",
        "--rate",
        "0",
        "--seed",
        "22",
    ])
    .await;

    let store = bed.store().await;
    let mut analytics = Guard(Some(bed.analytics("a", &[])));
    bed.wait_caught_up(&store, Duration::from_secs(120)).await;
    let status = stop(analytics.0.as_mut().expect("child"), "-TERM");
    assert!(status.success(), "analytics exit status {status}");

    let records = bed.read(&bed.topic());
    let x = expected(&records);
    assert!(x.duplicates > 0, "the test needs injected duplicates");
    assert_eq!(x.poison, poison.len());
    assert_matches(&store, &x).await;

    // Every poison record is in the dead-letter topic, once per source record, with a reason.
    let dlq = bed.read(&bed.dlq());
    let sources: std::collections::BTreeSet<_> = dlq
        .iter()
        .map(|r| {
            r.headers
                .get(events::dlq::SOURCE)
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(sources.len(), poison.len(), "{dlq:?}");
    let reasons: std::collections::BTreeSet<_> = dlq
        .iter()
        .filter_map(|r| r.headers.get(events::dlq::REASON).cloned())
        .collect();
    for reason in [
        "invalid_json",
        "missing_field",
        "unknown_event_type",
        "not_utf8",
        "oversized",
        "unsafe_id",
        "wrong_key",
        "wrong_type",
        "event_time_out_of_window",
        "session_not_started",
    ] {
        assert!(reasons.contains(reason), "no {reason} in {reasons:?}");
    }
    assert_excerpt_dead_lettered(&dlq, 1_040_000);
    assert_derived(&store, &x).await;
    assert_no_journal(&store).await;

    // `analytics report` (and its --json) reads the same figures back.
    let want = |field: &str| {
        x.counters
            .get(&("statistics/lifetime".to_owned(), field.to_owned()))
            .copied()
            .unwrap_or(0)
    };
    let report = analytics::report::collect(&store, None, 3, "USD")
        .await
        .expect("report");
    let lifetime = report.last().expect("lifetime");
    assert_eq!(lifetime.bucket, "lifetime");
    assert_eq!(
        lifetime.totals.sessions_started,
        want("started_sessions_count")
    );
    assert_eq!(lifetime.totals.orders, want("purchase_count"));
    assert_eq!(lifetime.totals.paid_cents, want("total_paid_cents"));
    assert_eq!(
        lifetime.rates.active_sessions,
        Some(want("started_sessions_count") - want("ended_sessions_count"))
    );
    assert_eq!(lifetime.top_products.len(), 3);
    // Interest scores as analytics materialized them in trending/ and interest/.
    let ranked = |doc: &str, array: &str| {
        let store = store.clone();
        let (doc, array) = (doc.to_owned(), array.to_owned());
        async move {
            let d = store.get(&doc).await.expect("read").expect("materialized");
            let Some(ValueType::ArrayValue(a)) =
                d.fields.get(&array).and_then(|v| v.value_type.as_ref())
            else {
                panic!("{doc} has {array}");
            };
            a.values
                .iter()
                .map(|v| {
                    let Some(ValueType::MapValue(m)) = &v.value_type else {
                        panic!("{doc}: an entry is a map");
                    };
                    let name = match m.fields.get("name").and_then(|v| v.value_type.as_ref()) {
                        Some(ValueType::StringValue(s)) => s.clone(),
                        _ => String::new(),
                    };
                    let score = match m
                        .fields
                        .get("interest_score")
                        .and_then(|v| v.value_type.as_ref())
                    {
                        Some(ValueType::IntegerValue(n)) => *n,
                        _ => i64::MIN,
                    };
                    (name, score)
                })
                .collect::<Vec<_>>()
        }
    };
    let trending = ranked("trending/lifetime", "products").await;
    let shown: Vec<(String, i64)> = lifetime
        .top_products
        .iter()
        .map(|p| (p.name.clone(), p.interest_score))
        .collect();
    assert_eq!(shown, trending[..3].to_vec());
    let categories: Vec<(String, i64)> = lifetime
        .categories
        .iter()
        .map(|c| (c.name.clone(), c.interest_score))
        .collect();
    assert!(!categories.is_empty());
    assert_eq!(categories, ranked("interest/lifetime", "categories").await);
    let text = analytics::report::render(&report);
    assert!(
        text.contains(&format!("{} orders", want("purchase_count"))),
        "{text}"
    );

    // Nothing derived from the poison was written: its session has no history.
    assert!(store
        .get("sessions_history/1b3c5d7e-0000-4000-8000-000000000001")
        .await
        .expect("read")
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_arbitrary_moments_loses_and_doubles_nothing() {
    let bed = Bed::new("kill");
    bed.create_topics(6).await;
    bed.simulate(&[
        "--users",
        "40",
        "--sessions",
        "3000",
        "--rate",
        "0",
        "--duplicate-fraction",
        "0.03",
        "--seed",
        "31",
    ])
    .await;
    let total: i64 = bed.end_offsets(&bed.topic()).values().sum();
    let store = bed.store().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut persisted = 0;
    for round in 0..3 {
        // Each instance is killed after it has persisted something, at a random moment:
        // mid-batch, mid-flush or between flushes.
        let mut child = Guard(Some(bed.analytics(
            &format!("kill{round}"),
            &[("ANALYTICS_MAX_RECORDS_PER_FLUSH", "1500")],
        )));
        bed.wait_progress(&store, persisted, Duration::from_secs(90))
            .await;
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..400))).await;
        stop(child.0.as_mut().expect("child"), "-KILL");
        persisted = bed.persisted(&store).await;
        assert!(
            persisted < total,
            "round {round} finished the topic before being killed; make the workload larger"
        );
    }
    let mut last = Guard(Some(bed.analytics("final", &[])));
    bed.wait_caught_up(&store, Duration::from_secs(180)).await;
    // What an instance SIGKILLed moments ago leaves: a chunk younger than the orphan age.
    seed_orphan_chunk(&store, "killed-just-now").await;
    assert!(stop(last.0.as_mut().expect("child"), "-TERM").success());
    let x = expected(&bed.read(&bed.topic()));
    assert_matches(&store, &x).await;
    assert_derived(&store, &x).await;
    assert_no_journal(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_joining_and_leaving_share_the_work_exactly() {
    let bed = Bed::new("rebalance");
    bed.create_topics(6).await;
    let store = bed.store().await;
    let mut a = Guard(Some(bed.analytics("a", &[])));
    let producer = {
        let bed_env = Bed {
            env: bed.env.clone(),
            emulator: bed.emulator.clone(),
            id: bed.id.clone(),
        };
        tokio::spawn(async move {
            bed_env
                .simulate(&[
                    "--users",
                    "40",
                    "--sessions",
                    "1500",
                    "--rate",
                    "2500",
                    "--duplicate-fraction",
                    "0.02",
                    "--seed",
                    "41",
                ])
                .await
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut b = Guard(Some(bed.analytics("b", &[])));
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(
        stop(b.0.as_mut().expect("child"), "-TERM").success(),
        "b left cleanly"
    );
    producer.await.expect("simulation");
    bed.wait_caught_up(&store, Duration::from_secs(180)).await;
    assert!(stop(a.0.as_mut().expect("child"), "-TERM").success());
    let x = expected(&bed.read(&bed.topic()));
    assert_matches(&store, &x).await;
    assert_derived(&store, &x).await;
    assert_no_journal(&store).await;
}

/// Session documents are written less often than counters: a crash between two checkpoints
/// leaves counted events whose sessions are not written. The next owner replays them into
/// its sessions without counting them again, so a duplicate of one is still recognised and
/// the end of a session started before the crash is counted (not dead-lettered as a
/// session that never started).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_session_checkpoints_replays_the_sessions_and_counts_nothing_twice() {
    let bed = Bed::new("replay");
    bed.create_topics(3).await;
    bed.simulate(&[
        "--users",
        "20",
        "--sessions",
        "200",
        "--rate",
        "0",
        "--duplicate-fraction",
        "0.05",
        "--seed",
        "51",
    ])
    .await;
    // Sessions still open at the crash.
    let open: Vec<String> = (0..20).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let t0 = chrono::Utc::now() - chrono::TimeDelta::minutes(10);
    let second = chrono::TimeDelta::seconds(1);
    let starts: Vec<(Option<&str>, Vec<u8>)> = open
        .iter()
        .flat_map(|s| {
            [
                (Some(s.as_str()), event("session_started", s, t0)),
                (Some(s.as_str()), event("product_viewed", s, t0 + second)),
            ]
        })
        .collect();
    bed.inject(&starts).await;

    let store = bed.store().await;
    let mut before = Guard(Some(bed.analytics(
        "before",
        &[("ANALYTICS_SESSION_CHECKPOINT_SECONDS", "3600")],
    )));
    bed.wait_caught_up(&store, Duration::from_secs(120)).await;
    for p in 0..3 {
        let m = analytics::journal::read_marker(&store, &bed.group(), &bed.topic(), p)
            .await
            .expect("read")
            .expect("marker");
        assert!(m.next_offset > 0, "partition {p} counted nothing");
        assert_eq!(m.sessions_offset, 0, "partition {p}: no checkpoint yet");
    }
    assert!(store
        .get(&format!("sessions_history/{}", open[0]))
        .await
        .expect("read")
        .is_none());
    stop(before.0.as_mut().expect("child"), "-KILL");

    // After the crash: duplicates of counted events, and the ends of the open sessions.
    let counted = bed.read(&bed.topic());
    let mut after: Vec<(Option<&str>, Vec<u8>)> = counted
        .iter()
        .step_by(7)
        .map(|r| {
            let key = r.key.as_deref().and_then(|k| std::str::from_utf8(k).ok());
            (key, r.payload.clone().unwrap_or_default())
        })
        .collect();
    after.extend(
        open.iter()
            .map(|s| (Some(s.as_str()), event("session_ended", s, t0 + second * 2))),
    );
    bed.inject(&after).await;
    let mut next = Guard(Some(bed.analytics("after", &[])));
    bed.wait_caught_up(&store, Duration::from_secs(120)).await;
    assert!(stop(next.0.as_mut().expect("child"), "-TERM").success());

    let x = expected(&bed.read(&bed.topic()));
    assert!(x.duplicates >= counted.len() / 7, "{}", x.duplicates);
    assert_matches(&store, &x).await;
    let dlq = bed.read(&bed.dlq());
    assert!(dlq.is_empty(), "nothing is rejected: {dlq:?}");
    assert_no_journal(&store).await;
}

/// Derived documents keep up while events keep coming: flushes mark the buckets again
/// several times a second, and the refresh still writes `metrics/lifetime`, which follows
/// the counters during the run. (A refresh used to be refused whenever a flush re-marked its
/// bucket meanwhile; the deterministic case is `a_refresh_overtaken_by_a_flush_...`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn derived_documents_follow_a_steady_load() {
    let bed = Bed::new("derived");
    bed.create_topics(3).await;
    let store = bed.store().await;
    let mut analytics = Guard(Some(bed.analytics(
        "a",
        &[
            ("ANALYTICS_FLUSH_INTERVAL_MS", "100"),
            ("ANALYTICS_DERIVED_INTERVAL_SECONDS", "1"),
        ],
    )));
    let stop_producing = tokio_util::sync::CancellationToken::new();
    let producer = {
        let (bed, stop) = (bed.clone(), stop_producing.clone());
        tokio::spawn(async move {
            bed.simulate_until(
                &[
                    "--users",
                    "100",
                    "--rate",
                    "400",
                    "--duration",
                    "40s",
                    "--seed",
                    "57",
                ],
                stop,
            )
            .await
        })
    };
    // While the events flow, the materialized session count grows.
    let mut seen = std::collections::BTreeSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < 3 && std::time::Instant::now() < deadline {
        if let Some(doc) = store.get("metrics/lifetime").await.expect("read") {
            seen.insert(int_field(&doc, "sessions_started").unwrap_or(0));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop_producing.cancel();
    producer.await.expect("simulation");
    assert!(
        seen.len() >= 3,
        "metrics/lifetime took {} values while events flowed: {seen:?}",
        seen.len()
    );
    bed.wait_caught_up(&store, Duration::from_secs(120)).await;
    assert!(stop(analytics.0.as_mut().expect("child"), "-TERM").success());
    let x = expected(&bed.read(&bed.topic()));
    assert_derived(&store, &x).await;
}

/// Instances stopped one after another, each while a rebalance is under way: every session
/// document is complete once the last one has stopped. A revoke drops the sessions not
/// checkpointed (their next owner replays them), so an instance must not drain between a
/// revoke and its next assignment. A member that stops polling (a plain consumer of the
/// group) holds the rebalance open while the last instance is asked to stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_stopping_during_rebalances_leave_every_session_complete() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let bed = Bed::new("settle");
    bed.create_topics(4).await;
    bed.simulate(&[
        "--users",
        "20",
        "--sessions",
        "200",
        "--rate",
        "0",
        "--seed",
        "53",
    ])
    .await;
    let store = bed.store().await;
    // Sessions are checkpointed only at a clean stop.
    let env = [
        ("ANALYTICS_SESSION_CHECKPOINT_SECONDS", "3600"),
        ("ANALYTICS_DRAIN_TIMEOUT_SECONDS", "90"),
    ];
    let mut a = Guard(Some(bed.analytics("a", &env)));
    let mut b = Guard(Some(bed.analytics("b", &env)));
    bed.wait_caught_up(&store, Duration::from_secs(120)).await;

    let stalling: BaseConsumer = bed
        .kafka("admin")
        .client_config("it-stalling")
        .set("group.id", bed.group())
        .set("enable.auto.commit", "false")
        .set("partition.assignment.strategy", "range,roundrobin")
        .set("session.timeout.ms", "6000")
        .set("max.poll.interval.ms", "25000")
        .create()
        .expect("consumer");
    stalling.subscribe(&[&bed.topic()]).expect("subscribe");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while stalling.assignment().expect("assignment").count() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the stalling member joined"
        );
        let _ = stalling.poll(Duration::from_millis(100));
    }
    // From here it polls no more: the next rebalance waits for it until its poll interval
    // runs out, and it owns a partition whose sessions the revoke dropped.
    let revokes = bed.log_lines("b", "partitions revoked");
    assert!(
        stop(a.0.as_mut().expect("a"), "-TERM").success(),
        "a drains"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while bed.log_lines("b", "partitions revoked") == revokes {
        assert!(std::time::Instant::now() < deadline, "b saw the rebalance");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        stop(b.0.as_mut().expect("b"), "-TERM").success(),
        "b drains and exits 0"
    );
    drop(stalling);

    let x = expected(&bed.read(&bed.topic()));
    assert_matches(&store, &x).await;
    let ends = bed.end_offsets(&bed.topic());
    for (p, end) in ends {
        let m = analytics::journal::read_marker(&store, &bed.group(), &bed.topic(), p)
            .await
            .expect("read")
            .expect("marker");
        assert_eq!(
            (m.next_offset, m.sessions_offset),
            (end, end),
            "partition {p}: counted and checkpointed to the end"
        );
    }
}

/// Three instances on twelve partitions, one joining late and one SIGKILLed and restarted,
/// behind the test kit's recording proxy: no document is written more than about once a
/// second, whatever the number of instances, and every aggregate is exact. A writer's
/// flushes start at least the shipped 1.1 s apart and write a document once each; their
/// writes land a variable time after the start (`make bench-scale` measured at most 10 in
/// any 10 s; the bound leaves one flush of margin for a slow test machine: 11).
/// Derived-metric markers included: only their writer's flushes write them, and only the
/// owner of partition 0 writes derived documents.
/// Instances sharing a document would write it about three times as often.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_write_no_document_more_than_once_a_second() {
    let bed = Bed::new("scale");
    bed.create_topics(12).await;
    let recorder =
        testkit::recorder::Recorder::start("127.0.0.1:0".parse().expect("address"), &bed.emulator)
            .await
            .expect("recorder");
    let proxied = Bed {
        emulator: recorder.addr.to_string(),
        ..bed.clone()
    };
    // The shipped interval (the test bed's default is shorter).
    let one_second = [("ANALYTICS_FLUSH_INTERVAL_MS", "1100")];
    let mut a = Guard(Some(proxied.analytics("a", &one_second)));
    let mut c = Guard(Some(proxied.analytics("c", &one_second)));
    let producer = {
        let bed = bed.clone();
        tokio::spawn(async move {
            bed.simulate(&[
                "--users",
                "200",
                // Low enough that a debug build's flushes take well under a second, so
                // instances sharing a document would write it several times a second.
                "--rate",
                "500",
                "--duration",
                "24s",
                "--duplicate-fraction",
                "0.02",
                "--seed",
                "61",
            ])
            .await
        })
    };
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut b = Guard(Some(proxied.analytics("b-late", &one_second)));
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop(c.0.as_mut().expect("c"), "-KILL");
    tokio::time::sleep(Duration::from_secs(2)).await;
    c = Guard(Some(proxied.analytics("c-again", &one_second)));
    producer.await.expect("simulation");
    let store = bed.store().await;
    bed.wait_caught_up(&store, Duration::from_secs(180)).await;
    for (name, child) in [("a", &mut a), ("b", &mut b), ("c", &mut c)] {
        assert!(
            stop(child.0.as_mut().expect("child"), "-TERM").success(),
            "{name} drains and exits 0"
        );
    }

    let x = expected(&bed.read(&bed.topic()));
    assert_matches(&store, &x).await;
    let writes = recorder.writes.lock().expect("writes");
    let window = Duration::from_secs(10);
    let project = format!("projects/{}/", bed.project());
    let mine = |d: &str| d.contains(&project);
    let hottest = writes.max_in_window(window, 5, |d| mine(d));
    eprintln!("hottest documents over 10 s: {hottest:#?}");
    // The bound below means something only if one instance writes its busiest documents
    // often: at 4 writes in 10 s, three instances sharing one would write it 12 times. (A
    // debug build's flushes on a loaded 2-core machine can take ~2 s: once fewer than 5.)
    assert!(
        hottest.first().is_some_and(|h| h.writes >= 4),
        "the busiest documents were written a few times: {hottest:?}"
    );
    // Derived markers too: written by their writer's flushes only, never deleted while in
    // use (they were deleted by every instance's refresh: 14 writes in 10 s with three).
    assert!(
        hottest.iter().all(|h| h.writes <= 11),
        "about one write a second per document: {hottest:?}"
    );
}
