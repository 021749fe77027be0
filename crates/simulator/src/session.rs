//! One shopping session as a pure function of a random source, the catalog, the user and a
//! start time: start → categories → products (view, maybe add) → maybe remove → maybe buy →
//! end. No clock, no I/O: the caller decides whether the timeline is slept through (real
//! time) or emitted at once (synthetic time).

use std::ops::RangeInclusive;

use chrono::{DateTime, Duration, Utc};
use events::values::DurationSeconds;
use events::{
    CartParameters, CategoryParameters, EndSessionParameters, Event, Money, Payload, Product,
    ProductParameters, PurchaseItem, PurchaseParameters, Quantity, StartSessionParameters,
};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::RngExt;
use uuid::Uuid;

use crate::catalog::{Catalog, User};

/// Probabilities and ranges of a session; defaults are the original simulator's.
#[derive(Debug, Clone, PartialEq)]
pub struct Behavior {
    pub categories_per_session: RangeInclusive<usize>,
    pub products_per_category: RangeInclusive<usize>,
    pub add_to_cart_probability: f64,
    /// Per cart line, after browsing.
    pub remove_from_cart_probability: f64,
    pub purchase_probability: f64,
    pub discount_probability: f64,
    pub cart_quantity: RangeInclusive<u32>,
    /// Shipping cost in cents.
    pub shipping_cost_cents: RangeInclusive<u64>,
    pub delivery_days: RangeInclusive<i64>,
    /// Time between two events of a session, in milliseconds.
    pub step_ms: RangeInclusive<i64>,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            categories_per_session: 1..=5,
            products_per_category: 1..=5,
            add_to_cart_probability: 0.5,
            remove_from_cart_probability: 0.25,
            purchase_probability: 0.75,
            discount_probability: 0.25,
            cart_quantity: 1..=5,
            shipping_cost_cents: 0..=1_500,
            delivery_days: 2..=14,
            step_ms: 60_000..=300_000,
        }
    }
}

/// A version-4 UUID drawn from `rng`, so seeded runs reproduce their ids.
pub fn random_uuid(rng: &mut StdRng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}

fn quantity(q: u32) -> Quantity {
    Quantity::try_from(i64::from(q)).unwrap_or_else(|e| panic!("cart quantity {q}: {e}"))
}

/// Builds a session's events with strictly increasing timestamps.
struct Timeline<'a> {
    rng: &'a mut StdRng,
    user: &'a User,
    session_id: Uuid,
    now: DateTime<Utc>,
    step_ms: RangeInclusive<i64>,
    events: Vec<Event>,
}

impl Timeline<'_> {
    fn push(&mut self, payload: Payload) {
        let event_id = random_uuid(self.rng);
        self.events.push(Event {
            event_id,
            session_id: self.session_id,
            user_id: self.user.id,
            timestamp: self.now,
            location: self.user.location.clone(),
            payload,
        });
        let step = self.rng.random_range(self.step_ms.clone()).max(1);
        self.now += Duration::milliseconds(step);
    }
}

/// Play one session. The result always starts with `session_started` and ends with
/// `session_ended`; removals only take what the cart holds; a purchase only happens with a
/// non-empty cart and its amounts are consistent.
pub fn play(
    rng: &mut StdRng,
    catalog: &Catalog,
    user: &User,
    start: DateTime<Utc>,
    behavior: &Behavior,
) -> Vec<Event> {
    let session_id = random_uuid(rng);
    let mut t = Timeline {
        rng,
        user,
        session_id,
        now: start,
        step_ms: behavior.step_ms.clone(),
        events: Vec::with_capacity(24),
    };

    let user_agent = catalog
        .user_agents
        .choose(t.rng)
        .cloned()
        .unwrap_or_else(|| unreachable!("catalog has user agents"));
    t.push(Payload::SessionStarted(StartSessionParameters {
        user_agent,
    }));

    let mut cart: Vec<(Product, u32)> = Vec::new();
    let n_categories = t
        .rng
        .random_range(behavior.categories_per_session.clone())
        .min(catalog.categories.len());
    let category_indexes = rand::seq::index::sample(t.rng, catalog.categories.len(), n_categories);
    for c in category_indexes {
        t.push(Payload::CategoryViewed(CategoryParameters {
            category: catalog.categories[c].clone(),
        }));
        let products = &catalog.products[c];
        let n_products = t
            .rng
            .random_range(behavior.products_per_category.clone())
            .min(products.len());
        for p in rand::seq::index::sample(t.rng, products.len(), n_products) {
            let product = &products[p];
            t.push(Payload::ProductViewed(ProductParameters {
                product: product.clone(),
            }));
            if t.rng.random_bool(behavior.add_to_cart_probability) {
                let q = t.rng.random_range(behavior.cart_quantity.clone());
                t.push(Payload::ProductAddedToCart(CartParameters {
                    product: product.clone(),
                    quantity: quantity(q),
                }));
                cart.push((product.clone(), q));
            }
        }
    }

    for line in &mut cart {
        if t.rng.random_bool(behavior.remove_from_cart_probability) {
            let r = t.rng.random_range(1..=line.1);
            t.push(Payload::ProductRemovedFromCart(CartParameters {
                product: line.0.clone(),
                quantity: quantity(r),
            }));
            line.1 -= r;
        }
    }
    cart.retain(|(_, q)| *q > 0);

    if !cart.is_empty() && t.rng.random_bool(behavior.purchase_probability) {
        let items: Vec<PurchaseItem> =
            cart.iter()
                .map(|(product, q)| PurchaseItem {
                    product: product.clone(),
                    quantity: quantity(*q),
                    subtotal: product.price.checked_mul(*q).unwrap_or_else(|| {
                        unreachable!("catalog prices x cart quantities are small")
                    }),
                })
                .collect();
        let total = Money::from_minor(items.iter().map(|i| i.subtotal.minor()).sum())
            .unwrap_or_else(|e| unreachable!("{e}"));
        let discount = if t.rng.random_bool(behavior.discount_probability) {
            t.rng.random_range(0..=total.minor() / 2)
        } else {
            0
        };
        let shipping = t.rng.random_range(behavior.shipping_cost_cents.clone());
        let eta = t.now + Duration::days(t.rng.random_range(behavior.delivery_days.clone()));
        let payment_method = catalog.random_payment_method(t.rng).clone();
        let transaction_id = random_uuid(t.rng);
        t.push(Payload::Purchase(PurchaseParameters {
            transaction_id,
            items,
            total_amount: total,
            discount_amount: Money::from_minor(discount).unwrap_or_else(|e| unreachable!("{e}")),
            shipping_address: user.location.clone(),
            shipping_cost: Money::from_minor(shipping).unwrap_or_else(|e| unreachable!("{e}")),
            payment_method,
            estimated_delivery_date: eta,
        }));
    }

    let duration = ended_payload(start, t.now);
    t.push(duration);
    t.events
}

/// `session_ended` for a session that started at `start` and ends at `end`.
pub fn ended_payload(start: DateTime<Utc>, end: DateTime<Utc>) -> Payload {
    let secs = (end - start).num_seconds().clamp(
        0,
        i64::try_from(events::values::MAX_SESSION_SECONDS).unwrap_or(i64::MAX),
    );
    Payload::SessionEnded(EndSessionParameters {
        seconds_duration: DurationSeconds::try_from(secs).unwrap_or_else(|e| unreachable!("{e}")),
    })
}
