//! The same seed and settings give byte-identical events.
use std::sync::Arc;

use clap::Parser;
use simulator::run::run;
use simulator::settings::Cli;
use simulator::sink::{Sink, Stats};
use tokio_util::sync::CancellationToken;

use crate::helpers::{self, settings};

async fn records(args: &[&str]) -> Vec<(String, Vec<u8>)> {
    let sink = Arc::new(Sink::memory());
    let summary = run(
        settings(args),
        sink.clone(),
        Arc::new(Stats::default()),
        CancellationToken::new(),
    )
    .await;
    assert!(summary.all_delivered());
    sink.records()
}

#[tokio::test]
async fn one_user_seeded_runs_are_byte_identical_in_order() {
    let args = [
        "--seed",
        "7",
        "--users",
        "1",
        "--sessions",
        "40",
        "--rate",
        "0",
    ];
    let a = records(&args).await;
    let b = records(&args).await;
    assert!(a.len() > 400, "{} records", a.len());
    assert_eq!(a, b);
    let c = records(&[
        "--seed",
        "8",
        "--users",
        "1",
        "--sessions",
        "40",
        "--rate",
        "0",
    ])
    .await;
    assert_ne!(a, c, "a different seed must give different events");
}

#[tokio::test]
async fn many_users_seeded_runs_give_the_same_events_per_session() {
    // Sessions interleave differently across runs, but each user's stream is identical.
    let args = [
        "--seed",
        "11",
        "--users",
        "8",
        "--sessions",
        "64",
        "--rate",
        "0",
    ];
    let mut a = records(&args).await;
    let mut b = records(&args).await;
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

#[tokio::test]
async fn replicas_with_the_same_seed_do_not_collide() {
    let a = records(&[
        "--seed",
        "7",
        "--users",
        "4",
        "--sessions",
        "20",
        "--rate",
        "0",
        "--instance",
        "0",
    ])
    .await;
    let b = records(&[
        "--seed",
        "7",
        "--users",
        "4",
        "--sessions",
        "20",
        "--rate",
        "0",
        "--instance",
        "1",
    ])
    .await;
    let keys_a: std::collections::HashSet<_> = a.iter().map(|(k, _)| k.clone()).collect();
    assert!(
        b.iter().all(|(k, _)| !keys_a.contains(k)),
        "session ids collide across instances"
    );
}

#[tokio::test]
async fn injection_adds_duplicates_and_late_events_only_when_asked() {
    let plain = records(&[
        "--seed",
        "3",
        "--users",
        "2",
        "--sessions",
        "50",
        "--rate",
        "0",
    ])
    .await;
    let ids = |r: &[(String, Vec<u8>)]| {
        r.iter()
            .map(|(_, p)| events::decode(p).expect("valid").event_id)
            .collect::<Vec<_>>()
    };
    let plain_ids = ids(&plain);
    let unique: std::collections::HashSet<_> = plain_ids.iter().collect();
    assert_eq!(unique.len(), plain_ids.len(), "no duplicates by default");

    let injected = records(&[
        "--seed",
        "3",
        "--users",
        "2",
        "--sessions",
        "50",
        "--rate",
        "0",
        "--duplicate-fraction",
        "0.1",
        "--late-fraction",
        "0.1",
    ])
    .await;
    let injected_ids = ids(&injected);
    let unique: std::collections::HashSet<_> = injected_ids.iter().collect();
    assert!(
        injected_ids.len() > unique.len(),
        "duplicates were injected"
    );
    // A duplicate is the same bytes again.
    let mut seen = std::collections::HashMap::new();
    for (_, p) in &injected {
        let id = events::decode(p).expect("valid").event_id;
        if let Some(prev) = seen.insert(id, p.clone()) {
            assert_eq!(&prev, p);
        }
    }
}

#[tokio::test]
async fn a_stop_ends_running_sessions_with_session_ended() {
    let sink = Arc::new(Sink::memory());
    let stop = CancellationToken::new();
    let s = settings(&["--seed", "5", "--users", "50", "--rate", "2000"]);
    let handle = tokio::spawn(run(
        s,
        sink.clone(),
        Arc::new(Stats::default()),
        stop.clone(),
    ));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.cancel();
    let summary = handle.await.expect("run completes");
    let records = sink.records();
    assert!(!records.is_empty());
    let mut open: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
    for (key, p) in &records {
        let e = events::decode(p).expect("valid");
        match e.payload {
            events::Payload::SessionStarted(_) => assert!(open.insert(key.clone(), true).is_none()),
            events::Payload::SessionEnded(_) => {
                assert_eq!(open.insert(key.clone(), false), Some(true))
            }
            _ => assert_eq!(open.get(key), Some(&true), "event outside a session"),
        }
    }
    assert!(
        open.values().all(|o| !o),
        "sessions left open: {}",
        open.values().filter(|o| **o).count()
    );
    assert_eq!(summary.sessions as usize, open.len());
}

#[test]
fn an_unlimited_rate_run_still_stops_at_its_duration() {
    // Regression: with no rate limit, user tasks never suspended and starved the timer. The
    // run happens on its own thread so a hang fails the test instead of blocking it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let sink = Arc::new(Sink::memory());
        let s = settings(&["--users", "200", "--rate", "0", "--duration", "1s"]);
        let summary = rt.block_on(run(
            s,
            sink,
            Arc::new(Stats::default()),
            CancellationToken::new(),
        ));
        let _ = tx.send(summary.sessions);
    });
    let sessions = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the run stopped by itself within 30 s");
    assert!(sessions > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_is_a_ceiling_shared_by_all_users() {
    let (rate, users) = (2_000.0, 500.0);
    let sink = Arc::new(Sink::memory());
    let s = settings(&["--users", "500", "--rate", "2000", "--duration", "1500ms"]);
    let summary = run(
        s,
        sink,
        Arc::new(Stats::default()),
        CancellationToken::new(),
    )
    .await;
    let secs = summary.elapsed.as_secs_f64();
    // Paced: at most the rate over the run plus the bucket (a tenth of a second); at the stop
    // every user may send the event it was waiting for and its session_ended unpaced.
    let ceiling = rate * secs + rate / 10.0 + 2.0 * users;
    let sent = summary.enqueued as f64;
    assert!(
        sent <= ceiling,
        "{sent} events in {secs:.2}s exceeds {ceiling:.0}"
    );
    // Not starved either (a generous floor: the machine may be busy).
    assert!(
        sent >= 0.3 * rate * secs,
        "only {sent} events in {secs:.2}s"
    );
}

#[test]
fn replicas_split_the_configured_totals() {
    let args = |i: &str| {
        settings(&[
            "--rate",
            "1000",
            "--users",
            "9",
            "--sessions",
            "7",
            "--instances",
            "2",
            "--instance",
            i,
        ])
    };
    let (a, b) = (args("0"), args("1"));
    assert_eq!((a.rate, b.rate), (Some(500.0), Some(500.0)));
    assert_eq!((a.users, b.users), (5, 4));
    assert_eq!((a.sessions, b.sessions), (Some(4), Some(3)));
    let err = Cli::try_parse_from(["simulator", "--instances", "2", "--instance", "2"])
        .expect("flags parse")
        .settings(helpers::epoch(), 1)
        .expect_err("an instance beyond the replicas");
    assert!(
        err.iter().any(|e| e.contains("SIMULATOR_INSTANCE")),
        "{err:?}"
    );
}

#[tokio::test]
async fn replicas_together_play_the_configured_sessions_with_unique_ids() {
    let args = |i: &'static str| {
        [
            "--seed",
            "9",
            "--users",
            "6",
            "--sessions",
            "30",
            "--rate",
            "0",
            "--instances",
            "2",
            "--instance",
            i,
        ]
    };
    let (a, b) = (records(&args("0")).await, records(&args("1")).await);
    let sessions: std::collections::HashSet<&String> = a.iter().chain(&b).map(|(k, _)| k).collect();
    assert_eq!(
        sessions.len(),
        30,
        "the configured sessions, split between the replicas"
    );
    let ids: Vec<String> = a
        .iter()
        .chain(&b)
        .map(|(_, v)| {
            serde_json::from_slice::<serde_json::Value>(v).expect("json")["event_id"]
                .as_str()
                .expect("id")
                .to_owned()
        })
        .collect();
    let unique: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "event ids are unique across replicas"
    );
}
