use analytics::aggregate::{apply, apply_with, History, Sink};
use analytics::tally::Tally;
use chrono::{TimeZone, Utc};
use events::Payload;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use shop::catalog::Catalog;
use shop::session::{play, Behavior};
use store::deltas::{Deltas, FieldValue};

use crate::helpers::{field_segments, original_layout};

fn session(seed: u64) -> Vec<events::Event> {
    let catalog = Catalog::generate(1, 100);
    let start = Utc
        .with_ymd_and_hms(2026, 3, 1, 23, 30, 0)
        .single()
        .expect("valid");
    let behavior = Behavior {
        purchase_probability: 1.0,
        add_to_cart_probability: 0.9,
        ..Behavior::default()
    };
    play(
        &mut StdRng::seed_from_u64(seed),
        &catalog,
        &catalog.user(seed),
        start,
        &behavior,
    )
}

/// The increment of `field` of `path`, in the original system's layout (see
/// [`original_layout`]).
fn inc(d: &Deltas, path: &str, field: &str) -> i64 {
    d.docs
        .iter()
        .flat_map(|(doc, delta)| {
            delta
                .increments
                .iter()
                .map(move |(f, n)| (original_layout(doc, &field_segments(f)), *n))
        })
        .filter(|(key, _)| {
            key.as_ref()
                .is_some_and(|(p, f)| p.as_str() == path && f.as_str() == field)
        })
        .map(|(_, n)| n)
        .sum()
}

#[test]
fn each_event_type_produces_its_exact_deltas() {
    let events = session(3);
    let purchase = events
        .iter()
        .find(|e| matches!(e.payload, Payload::Purchase(_)))
        .expect("a purchase");
    for e in &events {
        let mut d = Deltas::default();
        apply(e, &mut d);
        let cc = e.location.country.as_str();
        let day = e.timestamp.format("%Y-%m-%d").to_string();
        let sid = format!("sessions_history/{}", e.session_id);
        assert_eq!(
            d.docs[&sid].unions["event_ids"],
            vec![FieldValue::Str(e.event_id.to_string())]
        );
        match &e.payload {
            Payload::SessionStarted(_) => {
                let hour = e.timestamp.format("%Y-%m-%dT%H");
                for p in [
                    "statistics/lifetime".to_owned(),
                    format!("statistics/{day}"),
                    format!("statistics/{hour}"),
                    format!("countries/{cc}/statistics/lifetime"),
                    format!("countries/{cc}/statistics/{day}"),
                ] {
                    assert_eq!(inc(&d, &p, "started_sessions_count"), 1, "{p}");
                }
                assert_eq!(
                    d.docs[&sid].sets["start_time"],
                    FieldValue::Time(e.timestamp)
                );
                // Each country's hour figures (entries of the hour's document).
                assert_eq!(
                    inc(
                        &d,
                        &format!("countries/{cc}/statistics/{hour}"),
                        "started_sessions_count"
                    ),
                    1
                );
                // 5 counter docs (the hour's holds its countries'), the session, the country
                // entity.
                assert_eq!(d.len(), 7, "{:?}", d.docs.keys().collect::<Vec<_>>());
            }
            Payload::ProductViewed(p) => {
                let (pid, cid) = (p.product.id.as_str(), p.product.category.id.as_str());
                assert_eq!(
                    inc(
                        &d,
                        &format!("products/{pid}/statistics/{day}"),
                        "views_count"
                    ),
                    1
                );
                assert_eq!(
                    inc(
                        &d,
                        &format!("countries/{cc}/products/{pid}/statistics/lifetime"),
                        "views_count"
                    ),
                    1
                );
                assert_eq!(
                    inc(
                        &d,
                        &format!("categories/{cid}/statistics/lifetime"),
                        "product_related_view_count"
                    ),
                    1
                );
                assert_eq!(
                    d.docs[&format!("products/{pid}")].sets["name"],
                    FieldValue::Str(p.product.name.as_str().into())
                );
            }
            Payload::ProductAddedToCart(p) => {
                let pid = p.product.id.as_str();
                assert_eq!(
                    inc(
                        &d,
                        &format!("products/{pid}/statistics/lifetime"),
                        "added_to_cart_quantity"
                    ),
                    i64::from(p.quantity.get())
                );
                assert_eq!(
                    inc(
                        &d,
                        &format!("products/{pid}/statistics/lifetime"),
                        "added_to_cart_count"
                    ),
                    1
                );
            }
            Payload::Purchase(p) => {
                let paid = (p.total_amount.minor() - p.discount_amount.minor()
                    + p.shipping_cost.minor()) as i64;
                assert_eq!(inc(&d, "statistics/lifetime", "purchase_count"), 1);
                assert_eq!(
                    inc(&d, "statistics/lifetime", "total_amount_cents"),
                    p.total_amount.minor() as i64
                );
                assert_eq!(inc(&d, "statistics/lifetime", "total_paid_cents"), paid);
                assert_eq!(
                    inc(
                        &d,
                        &format!("countries/{cc}/statistics/{day}"),
                        "net_revenue_cents"
                    ),
                    (p.total_amount.minor() - p.discount_amount.minor()) as i64
                );
                assert_eq!(
                    inc(
                        &d,
                        &format!("payments/{}/statistics/lifetime", p.payment_method.id),
                        "usage_count"
                    ),
                    1
                );
                let ship = &p.shipping_address;
                let sp = format!(
                    "countries/{}/states/{}/shipping/{day}",
                    ship.country.as_str(),
                    ship.state.as_str()
                );
                assert_eq!(inc(&d, &sp, "shipping_count"), 1);
                assert_eq!(inc(&d, &sp, "total_items_delivered"), p.item_count() as i64);
                for item in &p.items {
                    let pp = format!("products/{}/statistics/lifetime", item.product.id);
                    assert_eq!(
                        inc(&d, &pp, "total_items_purchased"),
                        i64::from(item.quantity.get())
                    );
                    assert_eq!(
                        inc(&d, &pp, "total_amount_cents"),
                        item.subtotal.minor() as i64
                    );
                    assert_eq!(inc(&d, &pp, "orders_count"), 1);
                }
            }
            Payload::SessionEnded(p) => {
                assert_eq!(inc(&d, "statistics/lifetime", "ended_sessions_count"), 1);
                assert_eq!(
                    inc(
                        &d,
                        &format!("statistics/{day}"),
                        "total_sessions_duration_seconds"
                    ),
                    p.seconds_duration.get() as i64
                );
            }
            _ => {}
        }
    }
    // The session starts at 23:30: events after midnight count on the next day.
    let mut d = Deltas::default();
    let last = events.last().expect("events");
    apply(last, &mut d);
    let day = last.timestamp.format("%Y-%m-%d").to_string();
    assert_eq!(
        inc(&d, &format!("statistics/{day}"), "ended_sessions_count"),
        1
    );
    assert_eq!(
        inc(&d, "statistics/2026-03-01", "ended_sessions_count"),
        i64::from(day == "2026-03-01")
    );
    assert!(matches!(purchase.payload, Payload::Purchase(_)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_batch_split_and_session_order_gives_the_same_totals(seeds in prop::collection::vec(any::<u64>(), 1..6), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..5), reverse in any::<bool>()) {
        let mut sessions: Vec<Vec<events::Event>> = seeds.iter().map(|s| session(*s)).collect();
        let mut whole = Deltas::default();
        for e in sessions.iter().flatten() {
            apply(e, &mut whole);
        }
        if reverse {
            sessions.reverse();
        }
        let all: Vec<&events::Event> = sessions.iter().flatten().collect();
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(all.len() + 1)).collect();
        points.push(0);
        points.push(all.len());
        points.sort_unstable();
        let mut merged = Deltas::default();
        for w in points.windows(2) {
            let mut part = Deltas::default();
            for e in &all[w[0]..w[1]] {
                apply(e, &mut part);
            }
            merged.merge(part);
        }
        // Counters and sets are equal; union lists equal as sets.
        prop_assert_eq!(merged.docs.len(), whole.docs.len());
        for (path, d) in &whole.docs {
            let m = &merged.docs[path];
            prop_assert_eq!(&m.increments, &d.increments, "{}", path);
            prop_assert_eq!(&m.sets, &d.sets, "{}", path);
            for (field, values) in &d.unions {
                prop_assert_eq!(m.unions[field].len(), values.len(), "{}.{}", path, field);
                prop_assert!(values.iter().all(|v| m.unions[field].contains(v)));
            }
        }
    }
}

#[test]
fn distinct_events_with_identical_content_are_both_in_the_history() {
    let view = session(5)
        .into_iter()
        .find(|e| matches!(e.payload, Payload::ProductViewed(_)))
        .expect("a view");
    let mut twin = view.clone();
    twin.event_id = uuid::Uuid::new_v4();
    let (mut d, mut history) = (Deltas::default(), History::default());
    for e in [&view, &twin] {
        let (mut counters, mut own) = (Tally::default(), Deltas::default());
        let sink = Sink {
            shared: &mut d,
            counters: &mut counters,
            session: &mut own,
        };
        apply_with(e, sink, &mut history);
        counters.spell_into(&mut d);
        d.merge(own);
    }
    let sid = format!("sessions_history/{}", view.session_id);
    assert_eq!(d.docs[&sid].unions["products_viewed"].len(), 2);
    assert_eq!(d.docs[&sid].unions["event_ids"].len(), 2);
    // The session's figures are set to what it holds, never incremented: writing the
    // document again changes nothing.
    assert!(d.docs[&sid].increments.is_empty());
    assert_eq!(d.docs[&sid].sets["event_count"], FieldValue::Int(2));
    assert_eq!(history.events, 2);
}

#[test]
fn a_long_session_keeps_bounded_documents_and_counts_every_event() {
    use analytics::aggregate::HISTORY_DETAIL_BYTES;
    use store::schema::EVENT_IDS_PER_DOC;
    let view = session(6)
        .into_iter()
        .find(|e| matches!(e.payload, Payload::ProductViewed(_)))
        .expect("a view");
    let (mut d, mut own, mut history) = (Deltas::default(), Deltas::default(), History::default());
    let mut counters = Tally::default();
    let n = 20_000u64;
    for i in 0..n {
        let mut e = view.clone();
        e.event_id = uuid::Uuid::new_v4();
        let sink = Sink {
            shared: &mut d,
            counters: &mut counters,
            session: &mut own,
        };
        apply_with(&e, sink, &mut history);
        assert_eq!(history.events, i + 1);
    }
    counters.spell_into(&mut d);
    let sid = format!("sessions_history/{}", view.session_id);
    // The session's own documents (checkpointed apart from the counters) and only they.
    assert!(
        own.docs.keys().all(|p| p.starts_with(&sid)),
        "{:?}",
        own.docs.keys()
    );
    assert!(d.docs.keys().all(|p| !p.starts_with("sessions_history/")));
    d.merge(own);
    let doc = &d.docs[&sid];
    let int = |f: &str| match &doc.sets[f] {
        FieldValue::Int(v) => *v,
        other => panic!("{f}: {other:?}"),
    };
    assert_eq!(int("event_count"), n as i64);
    assert_eq!(doc.unions["event_ids"].len() as u64, EVENT_IDS_PER_DOC);
    assert!(int("history_bytes") as u64 <= HISTORY_DETAIL_BYTES);
    let kept = doc.unions["products_viewed"].len() as i64;
    assert_eq!(kept + int("history_truncated_events"), n as i64);
    // Every document stays far below Firestore's 1 MiB, and every event is counted.
    let mut ids = 0;
    for (path, delta) in &d.docs {
        assert!(
            delta.journal_bytes() < 800 * 1024,
            "{path}: {}",
            delta.journal_bytes()
        );
        if path.starts_with(&format!("{sid}/event_ids/")) {
            ids += delta.unions["ids"].len();
        }
    }
    assert_eq!(ids as u64 + EVENT_IDS_PER_DOC, n);
    let pid = match &view.payload {
        Payload::ProductViewed(p) => p.product.id.as_str().to_owned(),
        _ => unreachable!(),
    };
    assert_eq!(
        inc(
            &d,
            &format!("products/{pid}/statistics/lifetime"),
            "views_count"
        ),
        n as i64
    );
}

/// The funnel counters of a whole session, stepped through with the state resumed from
/// what the session's document would hold after `split` events (its `funnel_steps`,
/// `cart_units` and `start_time` sets), as after a restart.
fn funnel_counters(events: &[events::Event], split: usize) -> Deltas {
    use analytics::aggregate::{Funnel, Sink};
    let mut shared = Deltas::default();
    let mut counters = Tally::default();
    let mut own = Deltas::default();
    let mut f = Funnel::default();
    for (i, e) in events.iter().enumerate() {
        if i == split {
            // What a reader of the document gets back.
            let doc = own.docs.values().next().cloned().unwrap_or_default();
            let int = |name: &str| match doc.sets.get(name) {
                Some(FieldValue::Int(n)) => *n,
                _ => 0,
            };
            f = Funnel {
                steps: int("funnel_steps"),
                cart_units: int("cart_units"),
                start_ms: f.start_ms, // `start_time`, which every session document keeps
            };
        }
        f.step(
            e,
            Sink {
                shared: &mut shared,
                counters: &mut counters,
                session: &mut own,
            },
        );
    }
    counters.spell_into(&mut shared);
    shared
}

#[test]
fn the_funnel_counts_each_step_once_per_session_and_resumes_from_the_document() {
    for seed in 0..40 {
        let events = session(seed);
        let whole = funnel_counters(&events, usize::MAX);
        let g = |field: &str| inc(&whole, "statistics/lifetime", field);
        let purchase = events
            .iter()
            .find(|e| matches!(e.payload, Payload::Purchase(_)));
        let carted = events
            .iter()
            .any(|e| matches!(e.payload, Payload::ProductAddedToCart(_)));
        let viewed = events
            .iter()
            .any(|e| matches!(e.payload, Payload::ProductViewed(_)));
        assert_eq!(g("sessions_with_product_view_count"), i64::from(viewed));
        assert_eq!(g("sessions_with_cart_count"), i64::from(carted));
        assert_eq!(
            g("sessions_with_purchase_count"),
            i64::from(purchase.is_some())
        );
        if let Some(p) = purchase {
            let waited = (p.timestamp - events[0].timestamp).num_seconds();
            assert_eq!(g("first_purchase_seconds_total"), waited, "seed {seed}");
            assert_eq!(g("abandoned_carts_count"), 0);
        }
        for split in 0..events.len() {
            assert_eq!(
                funnel_counters(&events, split).docs,
                whole.docs,
                "seed {seed}: resumed after {split} events"
            );
        }
    }
}

#[test]
fn a_session_that_ends_with_items_and_no_purchase_abandons_its_cart() {
    let catalog = Catalog::generate(1, 100);
    let behavior = Behavior {
        purchase_probability: 0.0,
        add_to_cart_probability: 1.0,
        remove_from_cart_probability: 0.0,
        ..Behavior::default()
    };
    let events = play(
        &mut StdRng::seed_from_u64(7),
        &catalog,
        &catalog.user(7),
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
            .single()
            .expect("valid"),
        &behavior,
    );
    assert!(events
        .iter()
        .any(|e| matches!(e.payload, Payload::ProductAddedToCart(_))));
    let d = funnel_counters(&events, usize::MAX);
    assert_eq!(inc(&d, "statistics/lifetime", "abandoned_carts_count"), 1);
    assert_eq!(
        inc(&d, "statistics/lifetime", "sessions_with_purchase_count"),
        0
    );
    let cc = events[0].location.country.as_str();
    assert_eq!(
        inc(
            &d,
            &format!("countries/{cc}/statistics/lifetime"),
            "abandoned_carts_count"
        ),
        1,
        "per country too"
    );
}
