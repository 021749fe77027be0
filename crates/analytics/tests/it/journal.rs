//! The flush protocol against the emulator, step by step: a crash between the manifest and
//! the application of its chunks is recovered exactly once; chunks without a manifest never
//! count; a stale marker precondition is refused.
use std::collections::BTreeMap;

use analytics::journal::{self, Advance, Batch, Marker};
use store::client::int_field;
use store::deltas::{DocDelta, FieldValue};
use store::{Precondition, StoreError};
use tokio_util::sync::CancellationToken;

use crate::helpers::Bed;

/// `views_count` of the document at `path`, which must exist.
async fn views(store: &store::Store, path: &str) -> Option<i64> {
    let doc = store
        .get(path)
        .await
        .expect("read")
        .expect("document exists");
    int_field(&doc, "views_count")
}

/// Partition 0 counted up to `next`, its sessions checkpointed 5 records earlier.
fn advance(next: i64, marker: Option<Marker>) -> Vec<Advance> {
    vec![Advance {
        partition: 0,
        next_offset: next,
        sessions_offset: next - 5,
        marker,
    }]
}

fn delta(n: i64) -> DocDelta {
    let mut d = DocDelta::default();
    d.increments.insert("views_count".into(), n);
    d
}

#[tokio::test]
async fn an_interrupted_flush_is_recovered_exactly_once_and_orphans_never_count() {
    let bed = Bed::new("journal");
    let store = bed.store().await;
    let stop = CancellationToken::new();
    let chunk = vec![("products/p1/statistics/lifetime".to_owned(), delta(5))];
    let json = serde_json::to_string(&chunk).expect("json");
    let now = FieldValue::Time(chrono::Utc::now());
    // A flush that crashed after its manifest: chunk + manifest exist, nothing applied.
    let committed = vec![
        store.replace_write(
            "_journal/f1-0",
            BTreeMap::from([
                ("deltas".into(), FieldValue::Str(json.clone())),
                ("flush".into(), "f1".into()),
                ("created_at".into(), now.clone()),
            ]),
            Precondition::Exists(false),
        ),
        store.replace_write(
            "_flushes/f1",
            BTreeMap::from([("chunks".into(), FieldValue::Int(1))]),
            Precondition::Exists(false),
        ),
        // A flush that crashed before its manifest: its chunk must never count.
        store.replace_write(
            "_journal/f2-0",
            BTreeMap::from([
                ("deltas".into(), FieldValue::Str(json)),
                ("flush".into(), "f2".into()),
                ("created_at".into(), now),
            ]),
            Precondition::Exists(false),
        ),
    ];
    store.commit(committed).await.expect("seeded");

    assert_eq!(journal::recover(&store, &stop).await.expect("recover"), 1);
    assert_eq!(
        journal::recover(&store, &stop)
            .await
            .expect("recover again"),
        0,
        "a second recovery applies nothing"
    );
    assert_eq!(
        views(&store, "products/p1/statistics/lifetime").await,
        Some(5)
    );
    assert!(
        store.get("_journal/f1-0").await.expect("read").is_none(),
        "applied chunk deleted"
    );
    assert!(
        store.get("_flushes/f1").await.expect("read").is_none(),
        "finished manifest deleted"
    );
    assert!(
        store.get("_journal/f2-0").await.expect("read").is_some(),
        "a recent orphan is left alone (its flush may be running)"
    );
    // A clean stop sweeps every orphan, however young, and never applies it.
    journal::recover_older_than(&store, &stop, chrono::TimeDelta::zero())
        .await
        .expect("sweep");
    assert!(
        store.get("_journal/f2-0").await.expect("read").is_none(),
        "the orphan is gone"
    );
    assert_eq!(
        views(&store, "products/p1/statistics/lifetime").await,
        Some(5),
        "the orphan never counted"
    );
}

#[tokio::test]
async fn a_flush_with_a_stale_marker_is_refused_whole() {
    let bed = Bed::new("fence");
    let store = bed.store().await;
    let stop = CancellationToken::new();
    let (group, topic) = ("g", "t");
    let first = Batch {
        deltas: BTreeMap::from([("statistics/lifetime".to_owned(), delta(1))]),
        writer: 0,
        advances: advance(10, None),
    };
    let (markers, _) = journal::flush(&store, group, topic, first, &stop)
        .await
        .expect("first flush");
    // A zombie that still believes the partition is unclaimed (no marker) is fenced off...
    let zombie = Batch {
        deltas: BTreeMap::from([("statistics/lifetime".to_owned(), delta(100))]),
        writer: 0,
        advances: advance(20, None),
    };
    let err = journal::flush(&store, group, topic, zombie, &stop)
        .await
        .expect_err("fenced");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    // ...and so is one holding an outdated marker.
    let stale = markers[0].1.clone();
    let second = Batch {
        deltas: BTreeMap::from([("statistics/lifetime".to_owned(), delta(1))]),
        writer: 0,
        advances: advance(20, Some(stale.clone())),
    };
    journal::flush(&store, group, topic, second, &stop)
        .await
        .expect("owner advances");
    let late = Batch {
        deltas: BTreeMap::from([("statistics/lifetime".to_owned(), delta(100))]),
        writer: 0,
        advances: advance(30, Some(stale)),
    };
    assert!(journal::flush(&store, group, topic, late, &stop)
        .await
        .is_err());

    assert_eq!(
        views(&store, "statistics/lifetime").await,
        Some(2),
        "only the owner's flushes counted"
    );
    let m = journal::read_marker(&store, group, topic, 0)
        .await
        .expect("marker")
        .expect("exists");
    assert_eq!(m.next_offset, 20);
    assert_eq!(
        m.sessions_offset, 15,
        "the session checkpoint travels with the marker"
    );
    // The refused flushes left chunks without manifests; they never count.
    assert_eq!(journal::recover(&store, &stop).await.expect("recover"), 0);
    assert_eq!(views(&store, "statistics/lifetime").await, Some(2));
}

/// A flush refused at its manifest (a fenced zombie) leaves no journal behind.
#[tokio::test]
async fn a_refused_flush_leaves_no_journal_chunk() {
    let bed = Bed::new("refused");
    let store = bed.store().await;
    let stop = CancellationToken::new();
    let first = Batch {
        deltas: BTreeMap::from([("statistics/lifetime".to_owned(), delta(1))]),
        writer: 0,
        advances: advance(10, None),
    };
    journal::flush(&store, "g", "t", first, &stop)
        .await
        .expect("first flush");
    let zombie = Batch {
        deltas: BTreeMap::from([("statistics/lifetime".to_owned(), delta(100))]),
        writer: 0,
        advances: advance(20, None),
    };
    journal::flush(&store, "g", "t", zombie, &stop)
        .await
        .expect_err("fenced");
    assert_eq!(store.list("_journal", &[]).await.expect("list").len(), 0);
    assert_eq!(store.list("_flushes", &[]).await.expect("list").len(), 0);
}

/// A crash after the manifest of a large flush (tens of megabytes of chunks, more than one
/// listing response may carry) is recovered: listings carry only small fields.
#[tokio::test]
async fn a_multi_megabyte_journal_is_recovered() {
    let bed = Bed::new("bigjournal");
    let store = bed.store().await;
    let stop = CancellationToken::new();
    let now = FieldValue::Time(chrono::Utc::now());
    let chunks = 14;
    for i in 0..chunks {
        let mut d = delta(1);
        d.unions.insert(
            "tags".into(),
            (0..6000)
                .map(|j| FieldValue::Str(format!("{i}-{j:0>90}")))
                .collect(),
        );
        let json = serde_json::to_string(&vec![(format!("products/p{i}/statistics/lifetime"), d)])
            .expect("json");
        assert!(json.len() > 600_000, "{}", json.len());
        store
            .commit(vec![store.replace_write(
                &format!("_journal/big-{i}"),
                BTreeMap::from([
                    ("deltas".into(), FieldValue::Str(json)),
                    ("flush".into(), "big".into()),
                    ("created_at".into(), now.clone()),
                ]),
                Precondition::Exists(false),
            )])
            .await
            .expect("chunk");
    }
    store
        .commit(vec![store.replace_write(
            "_flushes/big",
            BTreeMap::from([("chunks".into(), FieldValue::Int(chunks))]),
            Precondition::Exists(false),
        )])
        .await
        .expect("manifest");

    assert_eq!(
        journal::recover(&store, &stop).await.expect("recover"),
        chunks as usize
    );
    for i in 0..chunks {
        assert_eq!(
            views(&store, &format!("products/p{i}/statistics/lifetime")).await,
            Some(1)
        );
    }
    assert_eq!(store.list("_journal", &[]).await.expect("list").len(), 0);
    assert_eq!(store.list("_flushes", &[]).await.expect("list").len(), 0);
}

/// A derived-metric refresh that a flush overtakes (the flush marks the bucket again between
/// the refresh's reading of the markers and its commit) still writes the derived documents,
/// from counters read after the markers, and the new mark makes the bucket stale for the next
/// round; once covered, a refresh writes nothing, and a marker is never deleted while in use
/// (a writer's marker is written once per flush and by nobody else).
#[tokio::test]
async fn a_refresh_overtaken_by_a_flush_still_writes_and_the_new_mark_brings_it_back() {
    let bed = Bed::new("overtaken");
    let store = bed.store().await;
    let stop = CancellationToken::new();
    let flush = |next: i64, marker: Option<Marker>| {
        let mut started = DocDelta::default();
        started
            .increments
            .insert("started_sessions_count".into(), 1);
        let deltas = store::schema::shard_counters(
            BTreeMap::from([("statistics/lifetime".to_owned(), started)]),
            0,
        );
        journal::flush(
            &store,
            "g",
            "t",
            Batch {
                deltas,
                advances: advance(next, marker),
                writer: 0,
            },
            &stop,
        )
    };
    let weights = analytics::figures::Weights::default();
    let stale = || async {
        analytics::derived::survey(&store)
            .await
            .expect("survey")
            .stale
            .into_iter()
            .map(|s| (s.bucket, s.cover))
            .collect::<Vec<_>>()
    };
    let (markers, _) = flush(10, None).await.expect("first flush");
    let mark = "_derived/lifetime~0";
    let first = stale().await;
    assert_eq!(first.len(), 1, "the flush made lifetime stale: {first:?}");
    assert_eq!(first[0].0, "lifetime");
    // The refresh has read the markers; a flush lands and marks the bucket again.
    flush(20, Some(markers[0].1.clone()))
        .await
        .expect("second flush");
    analytics::derived::materialize(&store, "lifetime", weights, 10, &first[0].1)
        .await
        .expect("the overtaken refresh writes");
    let metrics = || async {
        store
            .get("metrics/lifetime")
            .await
            .expect("read")
            .expect("metrics")
    };
    assert_eq!(
        int_field(&metrics().await, "sessions_started"),
        Some(2),
        "counters read after the markers: both flushes"
    );
    let second = stale().await;
    assert_eq!(
        second.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(),
        ["lifetime"],
        "the second flush's mark is not covered yet"
    );
    assert_ne!(first[0].1, second[0].1, "it names another flush");
    assert_eq!(
        analytics::derived::refresh_pending(&store, weights, 10)
            .await
            .expect("next round"),
        1
    );
    assert!(stale().await.is_empty(), "covered now");
    let written = metrics().await.update_time;
    assert_eq!(
        analytics::derived::refresh_pending(&store, weights, 10)
            .await
            .expect("a round with nothing new"),
        0
    );
    assert_eq!(
        metrics().await.update_time,
        written,
        "a covered bucket costs no write"
    );
    assert!(
        store.get(mark).await.expect("read").is_some(),
        "a marker in use stays (its only writer is its flushes)"
    );
    assert_eq!(int_field(&metrics().await, "sessions_started"), Some(2));
}

#[tokio::test]
async fn a_checkpoint_writes_the_same_documents_however_often_and_never_without_its_lease() {
    use analytics::checkpoint;
    use store::schema::path;
    let bed = Bed::new("checkpoint");
    let store = bed.store().await;
    let stop = CancellationToken::new();
    let leases = checkpoint::take_leases(&store, ("g", "t"), &[0, 1], "first", &stop)
        .await
        .expect("leases");
    // 1,200 sessions, 600 of each partition: more than one commit holds.
    let sessions: BTreeMap<String, DocDelta> = (0..1_200)
        .map(|i| {
            let mut d = DocDelta::default();
            d.unions.insert(
                "event_ids".into(),
                vec![
                    FieldValue::from(format!("a{i}")),
                    FieldValue::from(format!("b{i}")),
                ],
            );
            d.sets.insert("event_count".into(), FieldValue::Int(2));
            (path::session(uuid::Uuid::from_u128(i)), d)
        })
        .collect();
    let by_partition = |sessions: &BTreeMap<String, DocDelta>| {
        let (a, b): (Vec<_>, Vec<_>) = sessions
            .clone()
            .into_iter()
            .enumerate()
            .partition(|(i, _)| i % 2 == 0);
        let docs = |v: Vec<(usize, (String, DocDelta))>| v.into_iter().map(|(_, d)| d).collect();
        vec![(leases[&0].clone(), docs(a)), (leases[&1].clone(), docs(b))]
    };
    let first = checkpoint::save(&store, by_partition(&sessions), &stop)
        .await
        .expect("saved");
    // 600 of partition 0 in six commits (`checkpoint::SESSIONS_PER_COMMIT`), 600 of
    // partition 1 in six more.
    assert_eq!(first.commits, 12, "{first:?}");
    // Written again (a retry, or a replay after a crash): the same documents.
    checkpoint::save(&store, by_partition(&sessions), &stop)
        .await
        .expect("saved again");
    let paths: Vec<String> = sessions.keys().cloned().collect();
    let docs = store
        .get_many(&paths, &["event_ids", "event_count"])
        .await
        .expect("read");
    assert_eq!(docs.len(), 1_200);
    for doc in docs.values() {
        assert_eq!(int_field(doc, "event_count"), Some(2));
        assert_eq!(store::client::str_array(doc, "event_ids").len(), 2);
    }
    // Another instance takes partition 1: the former owner's checkpoints are refused whole.
    checkpoint::take_leases(&store, ("g", "t"), &[1], "second", &stop)
        .await
        .expect("lease taken over");
    let mut later = DocDelta::default();
    later.sets.insert("event_count".into(), FieldValue::Int(1));
    let stale = BTreeMap::from([(paths[1].clone(), later.clone())]);
    match checkpoint::save(&store, vec![(leases[&1].clone(), stale)], &stop).await {
        Err(StoreError::Conflict { .. }) => {}
        other => panic!("a checkpoint without its lease must be refused: {other:?}"),
    }
    let doc = store.get(&paths[1]).await.expect("read").expect("exists");
    assert_eq!(int_field(&doc, "event_count"), Some(2));
    // Partition 0's lease is still this instance's: its checkpoints go on.
    let own = BTreeMap::from([(paths[0].clone(), later)]);
    checkpoint::save(&store, vec![(leases[&0].clone(), own)], &stop)
        .await
        .expect("a lease kept");
    let doc = store.get(&paths[0]).await.expect("read").expect("exists");
    assert_eq!(int_field(&doc, "event_count"), Some(1));
}

#[tokio::test]
async fn a_session_written_whole_only_ever_creates_its_document() {
    use analytics::checkpoint;
    use store::client::str_array;
    use store::schema::path;
    let bed = Bed::new("checkpoint-whole");
    let store = bed.store().await;
    let stop = CancellationToken::new();
    let leases = checkpoint::take_leases(&store, ("g", "t"), &[0, 1], "first", &stop)
        .await
        .expect("leases");
    let session = |ids: &[&str], whole: bool| {
        let mut d = DocDelta::default();
        d.unions.insert(
            "event_ids".into(),
            ids.iter().map(|i| FieldValue::from(*i)).collect(),
        );
        d.sets
            .insert("event_count".into(), FieldValue::Int(ids.len() as i64));
        d.sets.insert(
            "location".into(),
            FieldValue::map([("country", FieldValue::from("DE"))]),
        );
        d.whole = whole;
        d
    };
    let (new, shared) = (
        path::session(uuid::Uuid::from_u128(1)),
        path::session(uuid::Uuid::from_u128(2)),
    );
    let ids = |doc: &firestore::gcloud_sdk::google::firestore::v1::Document| {
        let mut v = str_array(doc, "event_ids");
        v.sort();
        v
    };
    // A new session: created whole, with every field (arrays as values, maps nested).
    let first = BTreeMap::from([(new.clone(), session(&["a1", "a2"], true))]);
    let stats = checkpoint::save(&store, vec![(leases[&0].clone(), first.clone())], &stop)
        .await
        .expect("saved");
    assert_eq!(stats.sessions_whole, 1);
    let doc = store.get(&new).await.expect("read").expect("created");
    assert_eq!(ids(&doc), ["a1", "a2"]);
    assert_eq!(int_field(&doc, "event_count"), Some(2));
    assert!(doc.fields.contains_key("location"));
    // The same commit again (a retry of one that had landed): it exists, so the commit is
    // made again adding to it, and nothing changes.
    let again = checkpoint::save(&store, vec![(leases[&0].clone(), first)], &stop)
        .await
        .expect("saved again");
    assert_eq!(again.sessions_whole, 0);
    assert_eq!(
        ids(&store.get(&new).await.expect("read").expect("kept")),
        ["a1", "a2"]
    );
    // A session another partition wrote meanwhile (its events came with another key) is
    // added to, not replaced; a new session in the same commit is still created.
    let other = BTreeMap::from([(shared.clone(), session(&["p1"], false))]);
    checkpoint::save(&store, vec![(leases[&1].clone(), other)], &stop)
        .await
        .expect("other partition");
    let third = BTreeMap::from([
        (shared.clone(), session(&["s1"], true)),
        (
            path::session(uuid::Uuid::from_u128(3)),
            session(&["n1"], true),
        ),
    ]);
    checkpoint::save(&store, vec![(leases[&0].clone(), third)], &stop)
        .await
        .expect("saved by adding");
    let doc = store.get(&shared).await.expect("read").expect("exists");
    assert_eq!(ids(&doc), ["p1", "s1"]);
    let created = path::session(uuid::Uuid::from_u128(3));
    let doc = store.get(&created).await.expect("read").expect("created");
    assert_eq!(ids(&doc), ["n1"]);
    // Without its lease, a whole write is refused like any other and creates nothing.
    checkpoint::take_leases(&store, ("g", "t"), &[0], "second", &stop)
        .await
        .expect("lease taken over");
    let zombie = path::session(uuid::Uuid::from_u128(4));
    let late = BTreeMap::from([(zombie.clone(), session(&["z1"], true))]);
    match checkpoint::save(&store, vec![(leases[&0].clone(), late)], &stop).await {
        Err(StoreError::Conflict { .. }) => {}
        other => panic!("a checkpoint without its lease must be refused: {other:?}"),
    }
    assert!(store.get(&zombie).await.expect("read").is_none());
}
