//! The statistics: for each event type, the exact deltas it contributes. Pure: the event in,
//! [`Deltas`] out. Documents and fields follow the original system (see
//! `docs/firestore-schema.md`, spelled by [`store::schema`]); money fields are integer
//! minor units with a `_cents` suffix.
//! Every counter exists as `lifetime` and per UTC day of the event's own timestamp.

use std::collections::BTreeSet;

use events::{Event, Location, Payload, Product};

use store::schema::{event_id_page, field as f, path, Element, Entity, Val};
use store::{Deltas, DocDelta, FieldValue};

use crate::tally::{Bucket, Doc, DocId, Field, Tally};

/// Budget of a session's detail arrays (`products_viewed`, ..., `purchase`), in bytes of
/// their elements' text ([`Element::text`]). Events beyond it are counted
/// everywhere but listed only in `history_truncated_events`.
pub const HISTORY_DETAIL_BYTES: u64 = 400 * 1024;

/// The element an event adds to its session's detail arrays (the original system's map, as
/// the schema stores it: [`Element`]), and the array's name.
fn history_detail(event: &Event) -> Option<(&'static str, String)> {
    let (array, element) = match &event.payload {
        Payload::SessionStarted(_) | Payload::SessionEnded(_) => return None,
        Payload::CategoryViewed(p) => (
            f::CATEGORIES_VIEWED,
            Element::default().with(f::CATEGORY, Val::Str(p.category.id.as_str())),
        ),
        Payload::ProductViewed(p) => (
            f::PRODUCTS_VIEWED,
            Element::default().with(f::PRODUCT, Val::Str(p.product.id.as_str())),
        ),
        Payload::ProductAddedToCart(p) | Payload::ProductRemovedFromCart(p) => {
            let array = if matches!(event.payload, Payload::ProductAddedToCart(_)) {
                f::ADDED_TO_CART
            } else {
                f::REMOVED_FROM_CART
            };
            let element = Element::default()
                .with(f::PRODUCT, Val::Str(p.product.id.as_str()))
                .with(f::QUANTITY, Val::Int(i64::from(p.quantity.get())));
            (array, element)
        }
        Payload::Purchase(p) => {
            let items = p
                .items
                .iter()
                .map(|i| {
                    Element::default()
                        .with(f::PRODUCT, Val::Str(i.product.id.as_str()))
                        .with(f::QUANTITY, Val::Int(i64::from(i.quantity.get())))
                        .with(f::SUBTOTAL_CENTS, Val::Int(cents(i.subtotal)))
                })
                .collect();
            let a = &p.shipping_address;
            let address = Element::default()
                .with(f::COUNTRY, Val::Str(a.country.as_str()))
                .with(f::STATE, Val::Str(a.state.as_str()))
                .with(f::CITY, Val::Str(a.city.as_str()))
                .with(f::LATITUDE, Val::Double(a.latitude.get()))
                .with(f::LONGITUDE, Val::Double(a.longitude.get()));
            let element = Element::default()
                .with(f::TRANSACTION_ID, Val::Shown(&p.transaction_id))
                .with(f::ITEMS, Val::List(items))
                .with(f::AMOUNT_CENTS, Val::Int(cents(p.total_amount)))
                .with(f::DISCOUNT_AMOUNT_CENTS, Val::Int(cents(p.discount_amount)))
                .with(
                    f::SHIPPING_COST_AMOUNT_CENTS,
                    Val::Int(cents(p.shipping_cost)),
                )
                .with(f::PAYMENT_METHOD, Val::Str(p.payment_method.id.as_str()))
                .with(f::SHIPPING_ADDRESS, Val::Map(address))
                .with(
                    f::ESTIMATED_DELIVERY_DATE,
                    Val::Time(p.estimated_delivery_date),
                );
            (f::PURCHASE, element)
        }
    };
    let element = element
        .with(f::EVENT_ID, Val::Shown(&event.event_id))
        .with(f::TIMESTAMP, Val::Time(event.timestamp));
    Some((array, element.text()))
}

/// The statistics documents an event's counters go to, numbered in the batch's tally.
struct Targets<'a> {
    /// `statistics/{bucket}` and `countries/{cc}/statistics/{bucket}` of both buckets: every
    /// counter of an event is in these four documents (entities' counters as map entries),
    /// so a flush writes a handful of documents per bucket, not one per entity.
    global: [DocId; 4],
    /// `statistics/{hour}`.
    hour: DocId,
    /// The user's country.
    cc: &'a str,
}

impl<'a> Targets<'a> {
    fn of(event: &'a Event, tally: &mut Tally) -> Self {
        let cc = event.location.country;
        let t = event.timestamp;
        let mut doc = |bucket, country| tally.doc(Doc { bucket, country });
        Targets {
            global: [
                doc(Bucket::Lifetime, None),
                doc(Bucket::Lifetime, Some(cc)),
                doc(Bucket::day(t), None),
                doc(Bucket::day(t), Some(cc)),
            ],
            hour: doc(Bucket::hour(t), None),
            cc: event.location.country.as_str(),
        }
    }
}

/// Add the headline counters (sessions, orders, revenue, the funnel): in the global
/// documents, and in the event's hour bucket `statistics/{hour}`, globally and as the
/// entries of its country (`` countries.`{cc}`.… ``), so an hour costs no document per
/// country.
fn inc_headline(out: &mut Tally, to: &Targets<'_>, fields: &[(&'static str, i64)]) {
    for (field, v) in fields {
        let top = out.field(Field::Top(field));
        for d in to.global {
            out.add(d, top, *v);
        }
        out.add(to.hour, top, *v);
        let nested = out.field(Field::Nested {
            map: f::BY_COUNTRY,
            key: to.cc,
            field,
        });
        out.add(to.hour, nested, *v);
    }
}

/// The counters of `kind/{id}` (`products.{id}.…`), globally and in the user's country.
fn inc_entity(
    out: &mut Tally,
    to: &Targets<'_>,
    kind: Entity,
    id: &str,
    fields: &[(&'static str, i64)],
) {
    for (field, v) in fields {
        let nested = out.field(Field::Nested {
            map: kind.collection(),
            key: id,
            field,
        });
        for d in to.global {
            out.add(d, nested, *v);
        }
    }
}

fn cents(m: events::Money) -> i64 {
    i64::try_from(m.minor()).unwrap_or(i64::MAX)
}

fn location_value(l: &Location) -> FieldValue {
    FieldValue::map([
        (f::COUNTRY, l.country.as_str().into()),
        (f::STATE, l.state.as_str().into()),
        (f::CITY, l.city.as_str().into()),
        (f::LATITUDE, FieldValue::Double(l.latitude.get())),
        (f::LONGITUDE, FieldValue::Double(l.longitude.get())),
    ])
}

/// Parent documents carry names, so entities can be listed and read by a person.
fn name_entities(out: &mut Deltas, event: &Event, product: Option<&Product>) {
    let cc = event.location.country.as_str();
    out.set(&path::country(cc), f::CODE, cc);
    if let Some(p) = product {
        let product = path::entity(Entity::Product, p.id.as_str());
        // Names are the same whichever event writes them: once per batch is enough.
        if out.docs.contains_key(&product) {
            return;
        }
        out.set(&product, f::NAME, p.name.as_str());
        out.set(&product, f::CATEGORY_ID, p.category.id.as_str());
        out.set(&product, f::CATEGORY_NAME, p.category.name.as_str());
        out.set(&product, f::PRICE_CENTS, cents(p.price));
        out.set(&product, f::CURRENCY, p.currency.as_str());
        out.set(
            &path::entity(Entity::Category, p.category.id.as_str()),
            f::NAME,
            p.category.name.as_str(),
        );
    }
}

/// Add the deltas of one (valid, deduplicated) event to `out`, as the first event of a
/// session (see [`apply_with`]).
pub fn apply(event: &Event, out: &mut Deltas) {
    let (mut counters, mut session) = (Tally::default(), Deltas::default());
    apply_with(
        event,
        Sink {
            shared: out,
            counters: &mut counters,
            session: &mut session,
        },
        &mut History::default(),
    );
    counters.spell_into(out);
    out.merge(session);
}

/// Funnel steps, the bits of [`Funnel::steps`].
pub const VIEWED: i64 = 1;
pub const CARTED: i64 = 2;
pub const PURCHASED: i64 = 4;

/// A session's progress through the funnel, kept in its document (`funnel_steps`,
/// `cart_units`, `start_time`) so that a session read back after a restart goes on where it
/// was. Counted by sessions, not events: each step once, at the event that first reaches it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Funnel {
    /// [`VIEWED`] | [`CARTED`] | [`PURCHASED`] reached so far.
    pub steps: i64,
    /// Units in the cart: added minus removed (never below 0); a purchase empties it.
    pub cart_units: i64,
    /// When its `session_started` happened (ms since the epoch), if counted.
    pub start_ms: Option<i64>,
}

impl Funnel {
    pub fn of(state: &store::schema::SessionState) -> Funnel {
        Funnel {
            steps: state.funnel_steps,
            cart_units: state.cart_units,
            start_ms: state.start_ms,
        }
    }

    /// Advance with one (valid, deduplicated) event of the session, in session order: the
    /// funnel counters of the steps it reaches first go to `sink.shared` (in the event's
    /// buckets, globally and in its country), the session's new state to `sink.session`.
    pub fn step(&mut self, event: &Event, sink: Sink<'_>) {
        let before = *self;
        let reached = |steps: &mut i64, step: i64, counter: &'static str| {
            let first = *steps & step == 0;
            *steps |= step;
            first.then_some((counter, 1))
        };
        let mut counters: Vec<(&'static str, i64)> = Vec::new();
        match &event.payload {
            Payload::SessionStarted(_) => self.start_ms = Some(event.timestamp.timestamp_millis()),
            Payload::ProductViewed(_) => {
                counters.extend(reached(&mut self.steps, VIEWED, f::VIEWED_SESSIONS));
            }
            Payload::ProductAddedToCart(p) => {
                counters.extend(reached(&mut self.steps, CARTED, f::CARTED_SESSIONS));
                self.cart_units = self.cart_units.saturating_add(i64::from(p.quantity.get()));
            }
            Payload::ProductRemovedFromCart(p) => {
                self.cart_units = (self.cart_units - i64::from(p.quantity.get())).max(0);
            }
            Payload::Purchase(_) => {
                if let Some(first) = reached(&mut self.steps, PURCHASED, f::PURCHASED_SESSIONS) {
                    counters.push(first);
                    if let Some(start) = self.start_ms {
                        let seconds = (event.timestamp.timestamp_millis() - start).max(0) / 1000;
                        counters.push((f::FIRST_PURCHASE_SECONDS, seconds));
                        counters.push((f::FIRST_PURCHASES_TIMED, 1));
                    }
                }
                self.cart_units = 0;
            }
            Payload::SessionEnded(_) => {
                if self.cart_units > 0 && self.steps & PURCHASED == 0 {
                    counters.push((f::ABANDONED_CARTS, 1));
                }
            }
            Payload::CategoryViewed(_) => {}
        }
        if !counters.is_empty() {
            let to = Targets::of(event, sink.counters);
            inc_headline(sink.counters, &to, &counters);
        }
        if *self != before {
            let doc = sink.session.doc(&path::session(event.session_id));
            if self.steps != before.steps {
                doc.set(f::FUNNEL_STEPS, self.steps);
            }
            if self.cart_units != before.cart_units {
                doc.set(f::CART_UNITS, self.cart_units);
            }
        }
    }
}

/// Where an event's deltas go: what every session shares (counters, and the names of
/// entities), written at every flush, and its own session's documents, checkpointed less
/// often.
#[derive(Debug)]
pub struct Sink<'a> {
    /// Names: fields set on the documents of entities.
    pub shared: &'a mut Deltas,
    /// Counters.
    pub counters: &'a mut Tally,
    pub session: &'a mut Deltas,
}

/// What a session's document holds so far: its distinct events, the bytes of its detail
/// arrays and the events left out of them. The document gets these as absolute values, not
/// increments, so writing it again (a checkpoint retried, or replayed after a crash) changes
/// nothing: session documents need no journal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct History {
    pub events: u64,
    pub bytes: u64,
    pub truncated: u64,
}

impl History {
    pub fn of(state: &store::schema::SessionState) -> History {
        History {
            events: state.event_count,
            bytes: state.history_bytes,
            truncated: state.truncated_events,
        }
    }

    /// Its fields in the session's document, set to what it holds now.
    pub fn write(&self, session: &str, out: &mut Deltas) {
        self.write_to(out.doc(session));
    }

    fn write_to(&self, doc: &mut DocDelta) {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        doc.set(f::EVENT_COUNT, n(self.events));
        doc.set(f::HISTORY_BYTES, n(self.bytes));
        if self.truncated > 0 {
            doc.set(f::HISTORY_TRUNCATED_EVENTS, n(self.truncated));
        }
    }
}

/// Add the deltas of one (valid, deduplicated) event to `out`, the next distinct event of a
/// session whose document holds `history` (updated here).
/// The session's history keeps the event id in its document or, past
/// [`store::schema::EVENT_IDS_PER_DOC`], in an overflow page, and its detail element while
/// the arrays stay within [`HISTORY_DETAIL_BYTES`]: deterministic, so the same events in the
/// same order are placed the same way.
pub fn apply_with(event: &Event, sink: Sink<'_>, history: &mut History) {
    let Sink {
        shared: out,
        counters,
        session: own,
    } = sink;
    let id = FieldValue::from(event.event_id.to_string());
    let page = event_id_page(history.events);
    if let Some(page) = page {
        let ids = path::session_ids_page(event.session_id, page);
        own.union(&ids, f::PAGE_IDS, id.clone());
    }
    // The session's document, looked up once.
    let session = own.doc(&path::session(event.session_id));
    if page.is_none() {
        session.union(f::EVENT_IDS, id);
    }
    history.events += 1;
    if let Some((array, element)) = history_detail(event) {
        let size = element.len() as u64;
        if history.bytes + size <= HISTORY_DETAIL_BYTES {
            history.bytes += size;
            session.union(array, FieldValue::Str(element));
        } else {
            history.truncated += 1;
        }
    }
    history.write_to(session);
    let to = Targets::of(event, counters);
    match &event.payload {
        Payload::SessionStarted(p) => {
            name_entities(out, event, None);
            inc_headline(counters, &to, &[(f::STARTED_SESSIONS, 1)]);
            session.set(f::START_TIME, event.timestamp);
            session.set(f::USER_ID, event.user_id.to_string());
            session.set(f::LOCATION, location_value(&event.location));
            session.set(f::AGENT, p.user_agent.as_str());
        }
        Payload::CategoryViewed(p) => {
            name_entities(out, event, None);
            out.set(
                &path::entity(Entity::Category, p.category.id.as_str()),
                f::NAME,
                p.category.name.as_str(),
            );
            inc_entity(
                counters,
                &to,
                Entity::Category,
                p.category.id.as_str(),
                &[(f::VIEWS, 1)],
            );
        }
        Payload::ProductViewed(p) => {
            name_entities(out, event, Some(&p.product));
            inc_entity(
                counters,
                &to,
                Entity::Product,
                p.product.id.as_str(),
                &[(f::VIEWS, 1)],
            );
            inc_entity(
                counters,
                &to,
                Entity::Category,
                p.product.category.id.as_str(),
                &[(f::PRODUCT_RELATED_VIEWS, 1)],
            );
        }
        Payload::ProductAddedToCart(p) | Payload::ProductRemovedFromCart(p) => {
            let added = matches!(event.payload, Payload::ProductAddedToCart(_));
            let (qty_field, count_field) = if added {
                (f::ADDED_QUANTITY, f::ADDED_COUNT)
            } else {
                (f::REMOVED_QUANTITY, f::REMOVED_COUNT)
            };
            name_entities(out, event, Some(&p.product));
            let q = i64::from(p.quantity.get());
            let fields = [(qty_field, q), (count_field, 1)];
            inc_entity(
                counters,
                &to,
                Entity::Product,
                p.product.id.as_str(),
                &fields,
            );
            let category = p.product.category.id.as_str();
            inc_entity(counters, &to, Entity::Category, category, &fields);
        }
        Payload::Purchase(p) => {
            name_entities(out, event, None);
            let items = i64::try_from(p.item_count()).unwrap_or(i64::MAX);
            let (gross, discount, shipping) = (
                cents(p.total_amount),
                cents(p.discount_amount),
                cents(p.shipping_cost),
            );
            inc_headline(
                counters,
                &to,
                &[
                    (f::PURCHASES, 1),
                    (f::AMOUNT_CENTS, gross),
                    (f::DISCOUNT_CENTS, discount),
                    (f::SHIPPING_CENTS, shipping),
                    (f::NET_REVENUE_CENTS, gross - discount),
                    (f::PAID_CENTS, gross - discount + shipping),
                    (f::ITEMS_PURCHASED, items),
                ],
            );
            let pm = &p.payment_method;
            out.set(
                &path::entity(Entity::Payment, pm.id.as_str()),
                f::NAME,
                pm.name.as_str(),
            );
            inc_entity(
                counters,
                &to,
                Entity::Payment,
                pm.id.as_str(),
                &[(f::USAGE, 1), (f::AMOUNT_CENTS, gross)],
            );

            let ship = &p.shipping_address;
            let (sc, ss) = (ship.country.as_str(), ship.state.as_str());
            out.set(&path::country(sc), f::CODE, sc);
            out.set(&path::state(sc, ss), f::NAME, ss);
            let hours = (p.estimated_delivery_date - event.timestamp)
                .num_minutes()
                .saturating_add(30)
                / 60;
            // Deliveries count in the country shipped to, by state.
            let docs = [Bucket::Lifetime, Bucket::day(event.timestamp)].map(|bucket| {
                counters.doc(Doc {
                    bucket,
                    country: Some(ship.country),
                })
            });
            for (field, v) in [
                (f::SHIPPING_COUNT, 1),
                (f::ITEMS_DELIVERED, items),
                (f::SHIPPING_COST_CENTS, shipping),
                (f::DELIVERY_HOURS_WAITING, hours),
            ] {
                let nested = counters.field(Field::Nested {
                    map: f::SHIPPING,
                    key: ss,
                    field,
                });
                for d in docs {
                    counters.add(d, nested, v);
                }
            }

            let mut categories = BTreeSet::new();
            for item in &p.items {
                name_entities(out, event, Some(&item.product));
                let q = i64::from(item.quantity.get());
                let sub = cents(item.subtotal);
                inc_entity(
                    counters,
                    &to,
                    Entity::Product,
                    item.product.id.as_str(),
                    &[
                        (f::AMOUNT_CENTS, sub),
                        (f::ITEMS_PURCHASED, q),
                        (f::ORDERS, 1),
                    ],
                );
                inc_entity(
                    counters,
                    &to,
                    Entity::Category,
                    item.product.category.id.as_str(),
                    &[(f::AMOUNT_CENTS, sub), (f::ITEMS_PURCHASED, q)],
                );
                categories.insert(item.product.category.id.as_str());
            }
            for c in categories {
                inc_entity(counters, &to, Entity::Category, c, &[(f::ORDERS, 1)]);
            }
        }
        Payload::SessionEnded(p) => {
            name_entities(out, event, None);
            let d = i64::try_from(p.seconds_duration.get()).unwrap_or(i64::MAX);
            inc_headline(
                counters,
                &to,
                &[(f::ENDED_SESSIONS, 1), (f::SESSIONS_DURATION_SECONDS, d)],
            );
            session.set(f::END_TIME, event.timestamp);
            session.set(f::SESSION_DURATION_SECONDS, d);
        }
    }
}
