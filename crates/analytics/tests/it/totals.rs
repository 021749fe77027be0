//! Counter shards written whole from their writer's totals (`analytics::totals`), against the
//! emulator: the documents are those increments would leave, and a former owner's whole
//! write can never erase what the new owner counted.
use std::collections::BTreeMap;

use analytics::journal::{self, Advance, Batch, Marker};
use analytics::totals::{Prepared, Totals};
use store::deltas::DocDelta;
use store::schema::{self, field, path};
use store::{Store, StoreError};
use tokio_util::sync::CancellationToken;

use crate::helpers::Bed;

const GROUP: &str = "g";
const TOPIC: &str = "t";

/// Writer 0's first shard of the lifetime statistics.
fn shard() -> String {
    path::counter_shard(&path::statistics(schema::LIFETIME), 0, 0)
}

fn increments(fields: &[(&str, i64)]) -> BTreeMap<String, DocDelta> {
    let mut d = DocDelta::default();
    for (f, n) in fields {
        d.increments.insert((*f).to_owned(), *n);
    }
    BTreeMap::from([(shard(), d)])
}

fn advance(next: i64, marker: Option<Marker>) -> Vec<Advance> {
    vec![Advance {
        partition: 0,
        next_offset: next,
        sessions_offset: next,
        marker,
    }]
}

/// One flush of writer 0 as the coordinator does it: the totals turn what they can into
/// whole writes, then the journal persists it with the marker's advance.
async fn flush(
    store: &Store,
    totals: &mut Totals,
    mut deltas: BTreeMap<String, DocDelta>,
    advances: Vec<Advance>,
) -> Result<(Marker, Prepared), StoreError> {
    let stop = CancellationToken::new();
    let prepared = totals.prepare(store, &mut deltas, &stop).await?;
    let batch = Batch {
        deltas,
        advances,
        writer: 0,
    };
    let (markers, _) = journal::flush(store, GROUP, TOPIC, batch, &stop).await?;
    Ok((markers[0].1.clone(), prepared))
}

async fn counters(store: &Store) -> BTreeMap<String, i64> {
    let doc = store
        .get(&shard())
        .await
        .expect("read")
        .expect("the shard exists");
    schema::counters_of(&doc.fields).expect("counters only")
}

fn expect(fields: &[(&str, i64)]) -> BTreeMap<String, i64> {
    fields.iter().map(|(f, n)| ((*f).to_owned(), *n)).collect()
}

#[tokio::test]
async fn a_shard_written_whole_holds_what_increments_would() {
    let bed = Bed::new("totals");
    let store = bed.store().await;
    let p1 = field::nested("products", "p-1", field::VIEWS);
    let p2 = field::nested("products", "p-2", field::VIEWS);
    // Counted before these totals existed (an earlier build, or another owner), by increments.
    let (marker, _) = flush(
        &store,
        &mut Totals::new(7),
        increments(&[("a", 1), (&p1, 2)]),
        advance(10, None),
    )
    .await
    .expect("plain increments");

    let mut totals = Totals::new(0);
    let (marker, done) = flush(
        &store,
        &mut totals,
        increments(&[("a", 5), (&p1, 1), ("c", 1)]),
        advance(20, Some(marker)),
    )
    .await
    .expect("whole");
    assert_eq!(
        done,
        Prepared { read: 1, whole: 1 },
        "read once, then written whole"
    );
    assert_eq!(
        counters(&store).await,
        expect(&[("a", 6), ("c", 1), (&p1, 3)])
    );

    // One field of four changes: cheaper as an increment (a whole write pays for every
    // field, about a third of what an increment costs), and the totals follow it.
    let (marker, done) = flush(
        &store,
        &mut totals,
        increments(&[("b", 1)]),
        advance(30, Some(marker)),
    )
    .await
    .expect("increment");
    assert_eq!(done, Prepared { read: 0, whole: 0 });
    assert_eq!(
        counters(&store).await,
        expect(&[("a", 6), ("b", 1), ("c", 1), (&p1, 3)])
    );

    // Two of five: whole again.
    let (_, done) = flush(
        &store,
        &mut totals,
        increments(&[("b", 1), (&p2, 4)]),
        advance(40, Some(marker)),
    )
    .await
    .expect("whole again");
    assert_eq!(done, Prepared { read: 0, whole: 1 });
    assert_eq!(
        counters(&store).await,
        expect(&[("a", 6), ("b", 2), ("c", 1), (&p1, 3), (&p2, 4)])
    );
}

#[tokio::test]
async fn a_former_owners_whole_write_never_erases_the_new_owners_counts() {
    let bed = Bed::new("totals-fence");
    let store = bed.store().await;
    let stop = CancellationToken::new();
    let mut old = Totals::new(0);
    let (old_marker, _) = flush(&store, &mut old, increments(&[("a", 1)]), advance(10, None))
        .await
        .expect("the first owner");

    // Partition 0 changes hands: the new owner reads the marker, applies what was journalled
    // under it, and reads the shard at its first flush...
    let seen = journal::read_marker(&store, GROUP, TOPIC, 0)
        .await
        .expect("marker");
    journal::recover(&store, &stop).await.expect("recover");
    let mut new = Totals::new(0);
    let mut first = increments(&[("a", 10)]);
    let done = new.prepare(&store, &mut first, &stop).await.expect("read");
    assert_eq!(done, Prepared { read: 1, whole: 1 });
    // ...while the former owner, not told yet, lands one more flush, written whole from its
    // own totals.
    let (old_marker, done) = flush(
        &store,
        &mut old,
        increments(&[("a", 100)]),
        advance(15, Some(old_marker)),
    )
    .await
    .expect("the former owner still holds the marker");
    assert_eq!(done.whole, 1);
    assert_eq!(counters(&store).await, expect(&[("a", 101)]));

    // The new owner's whole write, from totals read before that flush, is refused...
    let batch = Batch {
        deltas: first,
        advances: advance(20, seen),
        writer: 0,
    };
    let err = journal::flush(&store, GROUP, TOPIC, batch, &stop)
        .await
        .expect_err("fenced by the marker");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(
        counters(&store).await,
        expect(&[("a", 101)]),
        "nothing erased"
    );

    // ...so it resets: the marker again, new totals, the same records again.
    let seen = journal::read_marker(&store, GROUP, TOPIC, 0)
        .await
        .expect("marker");
    let mut new = Totals::new(0);
    flush(
        &store,
        &mut new,
        increments(&[("a", 10)]),
        advance(20, seen),
    )
    .await
    .expect("the new owner");
    assert_eq!(counters(&store).await, expect(&[("a", 111)]));

    // From now on the former owner is fenced off, whole writes or not.
    let err = flush(
        &store,
        &mut old,
        increments(&[("a", 1000)]),
        advance(30, Some(old_marker)),
    )
    .await
    .expect_err("fenced");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(counters(&store).await, expect(&[("a", 111)]));
}
