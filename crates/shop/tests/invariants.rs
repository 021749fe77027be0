//! Every generated session satisfies the model's invariants, for any seed and behavior.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use events::{decode, encode, Payload};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use shop::catalog::Catalog;
use shop::session::{play, Behavior};

fn epoch() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
        .expect("valid")
        .with_timezone(&Utc)
}

fn behavior() -> impl Strategy<Value = Behavior> {
    (
        0.0..=1.0f64,
        0.0..=1.0f64,
        0.0..=1.0f64,
        0.0..=1.0f64,
        1u32..=3,
        0u32..=5,
        1usize..=8,
        1usize..=6,
        1i64..=600_000,
    )
        .prop_map(
            |(add, remove, purchase, discount, qmin, qspan, cats, prods, step)| Behavior {
                categories_per_session: 1..=cats,
                products_per_category: 1..=prods,
                add_to_cart_probability: add,
                remove_from_cart_probability: remove,
                purchase_probability: purchase,
                discount_probability: discount,
                cart_quantity: qmin..=qmin + qspan,
                shipping_cost_cents: 0..=1_500,
                delivery_days: 2..=14,
                step_ms: 1..=step,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn sessions_are_well_formed(seed in any::<u64>(), user in 0u64..10_000, behavior in behavior()) {
        let catalog = Catalog::generate(42, 100);
        let user = catalog.user(user);
        let events = play(&mut StdRng::seed_from_u64(seed), &catalog, &user, epoch(), &behavior);

        prop_assert!(matches!(events.first().map(|e| &e.payload), Some(Payload::SessionStarted(_))));
        prop_assert!(matches!(events.last().map(|e| &e.payload), Some(Payload::SessionEnded(_))));
        let session = events[0].session_id;
        let mut cart: HashMap<String, u32> = HashMap::new();
        let mut purchases = 0;
        for (i, e) in events.iter().enumerate() {
            // One session, one user, the user's location; valid on the wire.
            prop_assert_eq!(e.session_id, session);
            prop_assert_eq!(e.user_id, user.id);
            prop_assert_eq!(&e.location, &user.location);
            let decoded = decode(&encode(e));
            prop_assert!(decoded.is_ok(), "event {} does not decode: {:?}", i, decoded);
            if i > 0 {
                prop_assert!(e.timestamp > events[i - 1].timestamp, "timestamps must strictly increase");
            }
            if i > 0 && i + 1 < events.len() {
                prop_assert!(!matches!(e.payload, Payload::SessionStarted(_) | Payload::SessionEnded(_)));
            }
            match &e.payload {
                Payload::ProductAddedToCart(p) => *cart.entry(p.product.id.to_string()).or_default() += p.quantity.get(),
                Payload::ProductRemovedFromCart(p) => {
                    let held = cart.entry(p.product.id.to_string()).or_default();
                    prop_assert!(p.quantity.get() <= *held, "removed {} of {}", p.quantity.get(), held);
                    *held -= p.quantity.get();
                }
                Payload::Purchase(p) => {
                    purchases += 1;
                    prop_assert_eq!(i + 2, events.len(), "a purchase is the last step before the end");
                    cart.retain(|_, q| *q > 0);
                    prop_assert!(!cart.is_empty());
                    let bought: HashMap<String, u32> = p.items.iter().map(|it| (it.product.id.to_string(), it.quantity.get())).collect();
                    prop_assert_eq!(&bought, &cart, "the order is exactly the cart");
                    prop_assert!(p.discount_amount.minor() * 2 <= p.total_amount.minor());
                    prop_assert_eq!(&p.shipping_address, &user.location);
                }
                Payload::SessionEnded(p) => {
                    let expected = (e.timestamp - events[0].timestamp).num_seconds();
                    prop_assert_eq!(p.seconds_duration.get() as i64, expected);
                }
                _ => {}
            }
        }
        prop_assert!(purchases <= 1);
    }
}

#[test]
fn default_behavior_matches_the_original_mix() {
    // The original measured 20.3 events per session, 0.70 purchases per session.
    let catalog = Catalog::generate(42, 100);
    let mut rng = StdRng::seed_from_u64(9);
    let (mut events, mut purchases, mut abandoned) = (0usize, 0usize, 0usize);
    let n = 3000;
    for i in 0..n {
        let s = play(
            &mut rng,
            &catalog,
            &catalog.user(i),
            epoch(),
            &Behavior::default(),
        );
        events += s.len();
        let bought = s.iter().any(|e| matches!(e.payload, Payload::Purchase(_)));
        let added = s
            .iter()
            .any(|e| matches!(e.payload, Payload::ProductAddedToCart(_)));
        purchases += usize::from(bought);
        abandoned += usize::from(added && !bought);
    }
    let per_session = events as f64 / n as f64;
    let purchase_rate = purchases as f64 / n as f64;
    assert!(
        (18.0..23.0).contains(&per_session),
        "{per_session} events per session"
    );
    assert!(
        (0.6..0.8).contains(&purchase_rate),
        "{purchase_rate} purchases per session"
    );
    assert!(abandoned > 0, "no abandoned cart in {n} sessions");
}
