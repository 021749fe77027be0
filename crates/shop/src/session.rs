//! One shopping session as a pure function of a random source, the catalog, the user and a
//! start time: start → categories → products (view, maybe add) → maybe remove → maybe buy →
//! end. No clock, no I/O: the caller decides whether the timeline is slept through (real
//! time) or emitted at once (synthetic time).

use std::ops::RangeInclusive;

use chrono::{DateTime, Duration, Utc};
use events::values::DurationSeconds;
use events::{
    CartParameters, CategoryParameters, EndSessionParameters, Event, Money, Payload,
    ProductParameters, PurchaseItem, PurchaseParameters, Quantity, StartSessionParameters,
};
use rand::rngs::StdRng;
use rand::RngExt;
use uuid::Uuid;

use crate::catalog::{Catalog, User};
use crate::ids::random_uuid;

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

fn quantity(q: u32) -> Quantity {
    Quantity::try_from(i64::from(q)).unwrap_or_else(|e| panic!("cart quantity {q}: {e}"))
}

/// What happens at one step of a session, as catalog indices and numbers: a few dozen bytes,
/// so a user task holds its whole session plan cheaply and builds each [`Event`] only when
/// it is sent (100k concurrent users stay within memory).
#[derive(Debug, Clone)]
pub enum Step {
    Start {
        user_agent: u16,
    },
    Category {
        category: u16,
    },
    Product {
        category: u16,
        product: u16,
    },
    Add {
        category: u16,
        product: u16,
        quantity: u32,
    },
    Remove {
        category: u16,
        product: u16,
        quantity: u32,
    },
    Purchase(Box<PurchasePlan>),
    End,
}

/// A purchase: the cart lines and the drawn amounts.
#[derive(Debug, Clone)]
pub struct PurchasePlan {
    lines: Vec<(u16, u16, u32)>,
    discount_cents: u64,
    shipping_cents: u64,
    delivery_days: i64,
    payment_method: u16,
    transaction_id: Uuid,
}

/// One planned event.
#[derive(Debug, Clone)]
pub struct Planned {
    pub event_id: Uuid,
    pub at: DateTime<Utc>,
    pub step: Step,
}

/// A whole session, planned.
#[derive(Debug, Clone)]
pub struct Plan {
    pub session_id: Uuid,
    pub start: DateTime<Utc>,
    pub steps: Vec<Planned>,
}

impl Plan {
    /// Shift the whole session so it ends no later than `limit` (order and spacing kept).
    pub fn end_by(&mut self, limit: DateTime<Utc>) {
        let Some(end) = self.steps.last().map(|s| s.at) else {
            return;
        };
        if end <= limit {
            return;
        }
        let by = end - limit;
        self.start -= by;
        for s in &mut self.steps {
            s.at -= by;
        }
    }
}

fn ix(i: usize) -> u16 {
    u16::try_from(i).unwrap_or_else(|_| unreachable!("catalog indices fit in u16"))
}

/// Plan one session. It always starts with `Start` and ends with `End`; removals only take
/// what the cart holds; a purchase only happens with a non-empty cart.
pub fn plan(
    rng: &mut StdRng,
    catalog: &Catalog,
    start: DateTime<Utc>,
    behavior: &Behavior,
) -> Plan {
    let session_id = random_uuid(rng);
    let mut steps = Vec::with_capacity(24);
    let mut now = start;
    let mut push = |rng: &mut StdRng, step: Step| {
        steps.push(Planned {
            event_id: random_uuid(rng),
            at: now,
            step,
        });
        now += Duration::milliseconds(rng.random_range(behavior.step_ms.clone()).max(1));
    };
    let user_agent = ix(rng.random_range(0..catalog.user_agents.len()));
    push(rng, Step::Start { user_agent });

    let mut cart: Vec<(u16, u16, u32)> = Vec::new();
    let n_categories = rng
        .random_range(behavior.categories_per_session.clone())
        .min(catalog.categories.len());
    for c in rand::seq::index::sample(rng, catalog.categories.len(), n_categories) {
        push(rng, Step::Category { category: ix(c) });
        let products = &catalog.products[c];
        let n_products = rng
            .random_range(behavior.products_per_category.clone())
            .min(products.len());
        for p in rand::seq::index::sample(rng, products.len(), n_products) {
            push(
                rng,
                Step::Product {
                    category: ix(c),
                    product: ix(p),
                },
            );
            if rng.random_bool(behavior.add_to_cart_probability) {
                let q = rng.random_range(behavior.cart_quantity.clone());
                push(
                    rng,
                    Step::Add {
                        category: ix(c),
                        product: ix(p),
                        quantity: q,
                    },
                );
                cart.push((ix(c), ix(p), q));
            }
        }
    }

    for line in &mut cart {
        if rng.random_bool(behavior.remove_from_cart_probability) {
            let r = rng.random_range(1..=line.2);
            push(
                rng,
                Step::Remove {
                    category: line.0,
                    product: line.1,
                    quantity: r,
                },
            );
            line.2 -= r;
        }
    }
    cart.retain(|l| l.2 > 0);

    if !cart.is_empty() && rng.random_bool(behavior.purchase_probability) {
        let total: u64 = cart
            .iter()
            .map(|(c, p, q)| {
                catalog.products[usize::from(*c)][usize::from(*p)]
                    .price
                    .minor()
                    * u64::from(*q)
            })
            .sum();
        let discount_cents = if rng.random_bool(behavior.discount_probability) {
            rng.random_range(0..=total / 2)
        } else {
            0
        };
        let shipping_cents = rng.random_range(behavior.shipping_cost_cents.clone());
        let delivery_days = rng.random_range(behavior.delivery_days.clone());
        let payment_method = ix(catalog.random_payment_index(rng));
        let transaction_id = random_uuid(rng);
        push(
            rng,
            Step::Purchase(Box::new(PurchasePlan {
                lines: cart,
                discount_cents,
                shipping_cents,
                delivery_days,
                payment_method,
                transaction_id,
            })),
        );
    }
    push(rng, Step::End);
    Plan {
        session_id,
        start,
        steps,
    }
}

fn money(cents: u64) -> Money {
    Money::from_minor(cents).unwrap_or_else(|e| unreachable!("{e}"))
}

impl Plan {
    /// The event of one planned step, for `user`.
    pub fn render(&self, planned: &Planned, catalog: &Catalog, user: &User) -> Event {
        let product = |c: u16, p: u16| catalog.products[usize::from(c)][usize::from(p)].clone();
        let payload = match &planned.step {
            Step::Start { user_agent } => Payload::SessionStarted(StartSessionParameters {
                user_agent: catalog.user_agents[usize::from(*user_agent)].clone(),
            }),
            Step::Category { category } => Payload::CategoryViewed(CategoryParameters {
                category: catalog.categories[usize::from(*category)].clone(),
            }),
            Step::Product {
                category,
                product: p,
            } => Payload::ProductViewed(ProductParameters {
                product: product(*category, *p),
            }),
            Step::Add {
                category,
                product: p,
                quantity: q,
            } => Payload::ProductAddedToCart(CartParameters {
                product: product(*category, *p),
                quantity: quantity(*q),
            }),
            Step::Remove {
                category,
                product: p,
                quantity: q,
            } => Payload::ProductRemovedFromCart(CartParameters {
                product: product(*category, *p),
                quantity: quantity(*q),
            }),
            Step::Purchase(plan) => {
                let items: Vec<PurchaseItem> = plan
                    .lines
                    .iter()
                    .map(|(c, p, q)| {
                        let product = product(*c, *p);
                        let subtotal = product.price.checked_mul(*q).unwrap_or_else(|| {
                            unreachable!("catalog prices x cart quantities are small")
                        });
                        PurchaseItem {
                            product,
                            quantity: quantity(*q),
                            subtotal,
                        }
                    })
                    .collect();
                let total = items.iter().map(|i| i.subtotal.minor()).sum();
                Payload::Purchase(PurchaseParameters {
                    transaction_id: plan.transaction_id,
                    items,
                    total_amount: money(total),
                    discount_amount: money(plan.discount_cents),
                    shipping_address: user.location.clone(),
                    shipping_cost: money(plan.shipping_cents),
                    payment_method: catalog.payment_methods[usize::from(plan.payment_method)]
                        .clone(),
                    estimated_delivery_date: planned.at + Duration::days(plan.delivery_days),
                })
            }
            Step::End => ended_payload(self.start, planned.at),
        };
        Event {
            event_id: planned.event_id,
            session_id: self.session_id,
            user_id: user.id,
            timestamp: planned.at,
            location: user.location.clone(),
            payload,
        }
    }
}

/// Play one session: its plan, rendered. See [`plan`].
pub fn play(
    rng: &mut StdRng,
    catalog: &Catalog,
    user: &User,
    start: DateTime<Utc>,
    behavior: &Behavior,
) -> Vec<Event> {
    let plan = plan(rng, catalog, start, behavior);
    plan.steps
        .iter()
        .map(|s| plan.render(s, catalog, user))
        .collect()
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
