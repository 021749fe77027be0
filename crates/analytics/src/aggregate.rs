//! The statistics: for each event type, the exact deltas it contributes. Pure: the event in,
//! [`Deltas`] out. Documents and fields follow the original system (see
//! `docs/firestore-schema.md`); money fields are integer minor units with a `_cents` suffix.
//! Every counter exists as `lifetime` and per UTC day of the event's own timestamp.

use std::collections::BTreeSet;

use events::{Event, Location, Payload, Product};

use crate::deltas::{Deltas, FieldValue};

pub const LIFETIME: &str = "lifetime";
/// Event ids kept in a session's document; further ids go to overflow pages
/// `sessions_history/{id}/event_ids/{page}` of as many each, so no document outgrows
/// Firestore's 1 MiB whatever the session's length.
pub const EVENT_IDS_PER_DOC: u64 = 5_000;
/// Budget of a session's detail arrays (`products_viewed`, ..., `purchase`), in journal bytes
/// ([`detail_bytes`]). Events beyond it are counted everywhere but listed only in
/// `history_truncated_events`.
pub const HISTORY_DETAIL_BYTES: u64 = 400 * 1024;

/// Overflow pages holding the ids of a session of `event_count` distinct events.
pub fn event_id_pages(event_count: u64) -> u64 {
    event_count
        .saturating_sub(EVENT_IDS_PER_DOC)
        .div_ceil(EVENT_IDS_PER_DOC)
}

pub fn session_path(session: uuid::Uuid) -> String {
    format!("sessions_history/{session}")
}

/// An overflow page of a session's event ids.
pub fn event_ids_page_path(session: uuid::Uuid, page: u64) -> String {
    format!("sessions_history/{session}/event_ids/{page}")
}

/// The size a detail element counts against [`HISTORY_DETAIL_BYTES`].
fn detail_bytes(element: &FieldValue) -> u64 {
    serde_json::to_string(element).map_or(0, |s| s.len() as u64)
}

/// The element an event adds to its session's detail arrays, and the array's name.
fn history_detail(event: &Event) -> Option<(&'static str, FieldValue)> {
    let ts = FieldValue::Time(event.timestamp);
    let id = FieldValue::from(event.event_id.to_string());
    let element = |array: &'static str, mut entries: Vec<(&str, FieldValue)>| {
        entries.push(("event_id", id.clone()));
        entries.push(("timestamp", ts.clone()));
        Some((array, map(entries)))
    };
    match &event.payload {
        Payload::SessionStarted(_) | Payload::SessionEnded(_) => None,
        Payload::CategoryViewed(p) => element(
            "categories_viewed",
            vec![("category", p.category.id.as_str().into())],
        ),
        Payload::ProductViewed(p) => element(
            "products_viewed",
            vec![("product", p.product.id.as_str().into())],
        ),
        Payload::ProductAddedToCart(p) | Payload::ProductRemovedFromCart(p) => {
            let array = if matches!(event.payload, Payload::ProductAddedToCart(_)) {
                "added_to_cart"
            } else {
                "removed_from_cart"
            };
            element(
                array,
                vec![
                    ("product", p.product.id.as_str().into()),
                    ("quantity", i64::from(p.quantity.get()).into()),
                ],
            )
        }
        Payload::Purchase(p) => {
            let items = FieldValue::Array(
                p.items
                    .iter()
                    .map(|i| {
                        map(vec![
                            ("product", i.product.id.as_str().into()),
                            ("quantity", i64::from(i.quantity.get()).into()),
                            ("subtotal_cents", cents(i.subtotal).into()),
                        ])
                    })
                    .collect(),
            );
            element(
                "purchase",
                vec![
                    ("transaction_id", p.transaction_id.to_string().into()),
                    ("items", items),
                    ("total_amount_cents", cents(p.total_amount).into()),
                    ("discount_amount_cents", cents(p.discount_amount).into()),
                    ("shipping_cost_cents", cents(p.shipping_cost).into()),
                    ("payment_method", p.payment_method.id.as_str().into()),
                    ("shipping_address", location_value(&p.shipping_address)),
                    ("estimated_delivery_date", p.estimated_delivery_date.into()),
                ],
            )
        }
    }
}

/// The two buckets an event counts in: lifetime and its day (`YYYY-MM-DD`, UTC).
pub fn buckets(event: &Event) -> [String; 2] {
    [
        LIFETIME.to_owned(),
        event.timestamp.format("%Y-%m-%d").to_string(),
    ]
}

/// `statistics/{bucket}` and `countries/{cc}/statistics/{bucket}`.
fn global_docs(event: &Event) -> Vec<String> {
    let cc = event.location.country.as_str();
    buckets(event)
        .iter()
        .flat_map(|b| {
            [
                format!("statistics/{b}"),
                format!("countries/{cc}/statistics/{b}"),
            ]
        })
        .collect()
}

/// The statistics documents of `kind/{id}`, global and in the user's country.
fn entity_docs(event: &Event, kind: &str, id: &str) -> Vec<String> {
    let cc = event.location.country.as_str();
    buckets(event)
        .iter()
        .flat_map(|b| {
            [
                format!("{kind}/{id}/statistics/{b}"),
                format!("countries/{cc}/{kind}/{id}/statistics/{b}"),
            ]
        })
        .collect()
}

fn inc_all(out: &mut Deltas, docs: &[String], fields: &[(&str, i64)]) {
    for d in docs {
        for (f, v) in fields {
            out.inc(d, f, *v);
        }
    }
}

fn cents(m: events::Money) -> i64 {
    i64::try_from(m.minor()).unwrap_or(i64::MAX)
}

fn location_value(l: &Location) -> FieldValue {
    FieldValue::Map(
        [
            ("country".to_owned(), FieldValue::from(l.country.as_str())),
            ("state".to_owned(), FieldValue::from(l.state.as_str())),
            ("city".to_owned(), FieldValue::from(l.city.as_str())),
            ("latitude".to_owned(), FieldValue::Double(l.latitude.get())),
            (
                "longitude".to_owned(),
                FieldValue::Double(l.longitude.get()),
            ),
        ]
        .into(),
    )
}

/// A map value from `(key, value)` pairs.
pub(crate) fn map(entries: Vec<(&str, FieldValue)>) -> FieldValue {
    FieldValue::Map(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

/// Parent documents carry names, so entities can be listed and read by a person.
fn name_entities(out: &mut Deltas, event: &Event, product: Option<&Product>) {
    let cc = event.location.country.as_str();
    out.set(&format!("countries/{cc}"), "code", cc);
    if let Some(p) = product {
        let path = format!("products/{}", p.id);
        out.set(&path, "name", p.name.as_str());
        out.set(&path, "category_id", p.category.id.as_str());
        out.set(&path, "category_name", p.category.name.as_str());
        out.set(&path, "price_cents", cents(p.price));
        out.set(&path, "currency", p.currency.as_str());
        out.set(
            &format!("categories/{}", p.category.id),
            "name",
            p.category.name.as_str(),
        );
    }
}

/// Add the deltas of one (valid, deduplicated) event to `out`, as the first event of a
/// session (see [`apply_with`]).
pub fn apply(event: &Event, out: &mut Deltas) {
    apply_with(event, out, 0, &mut 0);
}

/// Add the deltas of one (valid, deduplicated) event to `out`, the `index`-th distinct event
/// of its session (from 0) whose detail arrays hold `history_bytes`, which this updates.
/// The session's history keeps the event id in its document or, from the
/// [`EVENT_IDS_PER_DOC`]-th on, in an overflow page, and its detail element while the
/// arrays stay within [`HISTORY_DETAIL_BYTES`]: deterministic, so the same events in the
/// same order are placed the same way.
pub fn apply_with(event: &Event, out: &mut Deltas, index: u64, history_bytes: &mut u64) {
    let session = session_path(event.session_id);
    let id = FieldValue::from(event.event_id.to_string());
    if index < EVENT_IDS_PER_DOC {
        out.union(&session, "event_ids", id);
    } else {
        let page = (index - EVENT_IDS_PER_DOC) / EVENT_IDS_PER_DOC;
        out.union(&event_ids_page_path(event.session_id, page), "ids", id);
    }
    out.inc(&session, "event_count", 1);
    if let Some((array, element)) = history_detail(event) {
        let size = detail_bytes(&element);
        if *history_bytes + size <= HISTORY_DETAIL_BYTES {
            *history_bytes += size;
            out.inc(&session, "history_bytes", size as i64);
            out.union(&session, array, element);
        } else {
            out.inc(&session, "history_truncated_events", 1);
        }
    }
    match &event.payload {
        Payload::SessionStarted(p) => {
            name_entities(out, event, None);
            inc_all(out, &global_docs(event), &[("started_sessions_count", 1)]);
            out.set(&session, "start_time", event.timestamp);
            out.set(&session, "user_id", event.user_id.to_string());
            out.set(&session, "location", location_value(&event.location));
            out.set(&session, "agent", p.user_agent.as_str());
        }
        Payload::CategoryViewed(p) => {
            name_entities(out, event, None);
            out.set(
                &format!("categories/{}", p.category.id),
                "name",
                p.category.name.as_str(),
            );
            inc_all(
                out,
                &entity_docs(event, "categories", p.category.id.as_str()),
                &[("views_count", 1)],
            );
        }
        Payload::ProductViewed(p) => {
            name_entities(out, event, Some(&p.product));
            inc_all(
                out,
                &entity_docs(event, "products", p.product.id.as_str()),
                &[("views_count", 1)],
            );
            inc_all(
                out,
                &entity_docs(event, "categories", p.product.category.id.as_str()),
                &[("product_related_view_count", 1)],
            );
        }
        Payload::ProductAddedToCart(p) | Payload::ProductRemovedFromCart(p) => {
            let added = matches!(event.payload, Payload::ProductAddedToCart(_));
            let (qty_field, count_field) = if added {
                ("added_to_cart_quantity", "added_to_cart_count")
            } else {
                ("removed_from_cart_quantity", "removed_from_cart_count")
            };
            name_entities(out, event, Some(&p.product));
            let q = i64::from(p.quantity.get());
            let mut docs = entity_docs(event, "products", p.product.id.as_str());
            docs.extend(entity_docs(
                event,
                "categories",
                p.product.category.id.as_str(),
            ));
            inc_all(out, &docs, &[(qty_field, q), (count_field, 1)]);
        }
        Payload::Purchase(p) => {
            name_entities(out, event, None);
            let items = i64::try_from(p.item_count()).unwrap_or(i64::MAX);
            let (gross, discount, shipping) = (
                cents(p.total_amount),
                cents(p.discount_amount),
                cents(p.shipping_cost),
            );
            inc_all(
                out,
                &global_docs(event),
                &[
                    ("purchase_count", 1),
                    ("total_amount_cents", gross),
                    ("total_discount_cents", discount),
                    ("total_shipping_cents", shipping),
                    ("net_revenue_cents", gross - discount),
                    ("total_paid_cents", gross - discount + shipping),
                    ("total_items_purchased", items),
                ],
            );
            let pm = &p.payment_method;
            out.set(&format!("payments/{}", pm.id), "name", pm.name.as_str());
            inc_all(
                out,
                &entity_docs(event, "payments", pm.id.as_str()),
                &[("usage_count", 1), ("total_amount_cents", gross)],
            );

            let ship = &p.shipping_address;
            let (sc, ss) = (ship.country.as_str(), ship.state.as_str());
            out.set(&format!("countries/{sc}"), "code", sc);
            out.set(&format!("countries/{sc}/states/{ss}"), "name", ss);
            let hours = (p.estimated_delivery_date - event.timestamp)
                .num_minutes()
                .saturating_add(30)
                / 60;
            let ship_docs: Vec<String> = buckets(event)
                .iter()
                .map(|b| format!("countries/{sc}/states/{ss}/shipping/{b}"))
                .collect();
            inc_all(
                out,
                &ship_docs,
                &[
                    ("shipping_count", 1),
                    ("total_items_delivered", items),
                    ("total_shipping_cost_cents", shipping),
                    ("estimated_delivery_hours_waiting", hours),
                ],
            );

            let mut categories = BTreeSet::new();
            for item in &p.items {
                name_entities(out, event, Some(&item.product));
                let q = i64::from(item.quantity.get());
                let sub = cents(item.subtotal);
                inc_all(
                    out,
                    &entity_docs(event, "products", item.product.id.as_str()),
                    &[
                        ("total_amount_cents", sub),
                        ("total_items_purchased", q),
                        ("orders_count", 1),
                    ],
                );
                inc_all(
                    out,
                    &entity_docs(event, "categories", item.product.category.id.as_str()),
                    &[("total_amount_cents", sub), ("total_items_purchased", q)],
                );
                categories.insert(item.product.category.id.as_str());
            }
            for c in categories {
                inc_all(
                    out,
                    &entity_docs(event, "categories", c),
                    &[("orders_count", 1)],
                );
            }
        }
        Payload::SessionEnded(p) => {
            name_entities(out, event, None);
            let d = i64::try_from(p.seconds_duration.get()).unwrap_or(i64::MAX);
            inc_all(
                out,
                &global_docs(event),
                &[
                    ("ended_sessions_count", 1),
                    ("total_sessions_duration_seconds", d),
                ],
            );
            out.set(&session, "end_time", event.timestamp);
            out.set(&session, "session_duration_seconds", d);
        }
    }
}
