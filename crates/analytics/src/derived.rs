//! Derived metrics, materialized from the counters so a dashboard reads one document:
//! `metrics/{bucket}` (active sessions, average duration, orders, average order value,
//! conversion, revenue, most-used payment method), `trending/{bucket}` (top products by units
//! with conversion = orders / views) and `interest/{bucket}` (weighted interest scores of
//! categories and products). Recomputed from scratch each time, so running it twice, or
//! from two instances, gives the same documents.

use std::collections::BTreeMap;

use firestore::gcloud_sdk::google::firestore::v1::Document;

use crate::aggregate::{map, LIFETIME};
use crate::deltas::FieldValue;
use crate::store::{int_field, str_field, Precondition, Store, StoreError, ENTITY_FIELDS};

/// Weights of the interest score: Σ weight × counter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub view: i64,
    pub add_to_cart: i64,
    pub remove_from_cart: i64,
    pub purchase: i64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            view: 1,
            add_to_cart: 3,
            remove_from_cart: -2,
            purchase: 5,
        }
    }
}

impl Weights {
    /// Parse `view=1,add=3,remove=-2,purchase=5`.
    pub fn parse(s: &str) -> Result<Weights, String> {
        let mut w = Weights::default();
        for kv in s.split(',').filter(|x| !x.trim().is_empty()) {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("{kv:?} is not name=weight"))?;
            let v: i64 = v
                .trim()
                .parse()
                .map_err(|_| format!("{kv:?}: weight must be an integer"))?;
            match k.trim() {
                "view" => w.view = v,
                "add" => w.add_to_cart = v,
                "remove" => w.remove_from_cart = v,
                "purchase" => w.purchase = v,
                other => {
                    return Err(format!(
                        "unknown interest weight {other:?} (view, add, remove, purchase)"
                    ))
                }
            }
        }
        Ok(w)
    }

    fn score(&self, views: i64, adds: i64, removes: i64, units: i64) -> i64 {
        self.view * views
            + self.add_to_cart * adds
            + self.remove_from_cart * removes
            + self.purchase * units
    }
}

/// Where a flush marks the buckets whose counters it changes: `_derived/{bucket}`, written
/// atomically with its manifest (`flush` = its id). A marker is *ready* once that flush has
/// landed (its manifest is gone); recomputing the bucket then deletes the marker in the
/// same commit as the derived documents, on condition that it was not marked again
/// meanwhile. So whichever instance recomputes, and whatever crashes in between, the last
/// write of a bucket's derived documents reads every landed flush.
pub const PENDING: &str = "_derived";

/// The bucket (`lifetime` or a day) whose derived documents depend on `path` (any
/// statistics document).
pub fn bucket_of(path: &str) -> Option<&str> {
    path.rsplit_once("statistics/")
        .map(|(_, b)| b)
        .filter(|b| !b.contains('/'))
}

/// Recompute every bucket with a ready marker. Returns how many were recomputed.
pub async fn refresh_pending(
    store: &Store,
    weights: Weights,
    top: usize,
) -> Result<usize, StoreError> {
    let markers = store.list(PENDING, &["flush"]).await?;
    let manifests: Vec<String> = markers
        .iter()
        .filter_map(|m| str_field(m, "flush"))
        .map(crate::journal::manifest_path)
        .collect();
    let running = store.get_many(&manifests, &["chunks"]).await?;
    let mut done = 0;
    for marker in markers {
        let flush = str_field(&marker, "flush").unwrap_or_default();
        if running.contains_key(&crate::journal::manifest_path(flush)) {
            continue; // its flush is still being applied
        }
        let bucket = doc_id(store, &marker.name);
        let Some(marked) = marker.update_time else {
            continue;
        };
        match materialize(store, &bucket, weights, top, Some(marked)).await {
            Ok(()) => done += 1,
            // Marked again meanwhile, or recomputed by another instance: the next round.
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

fn doc_id(store: &Store, name: &str) -> String {
    store
        .relative(name)
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn ratio(part: i64, whole: i64) -> FieldValue {
    FieldValue::Double(if whole > 0 {
        part as f64 / whole as f64
    } else {
        0.0
    })
}

/// Recompute the derived documents of `bucket` (`lifetime` or a day); with `marked`, only if
/// its pending marker still has that update time (and delete it in the same commit).
pub async fn materialize(
    store: &Store,
    bucket: &str,
    weights: Weights,
    top: usize,
    marked: Option<firestore::gcloud_sdk::prost_types::Timestamp>,
) -> Result<(), StoreError> {
    let get = |doc: Option<&Document>, f: &str| doc.and_then(|d| int_field(d, f)).unwrap_or(0);
    // Each entity with its id, and every counter document needed, read in batches.
    let with_ids = |docs: Vec<Document>| -> Vec<(String, Document)> {
        docs.into_iter()
            .map(|e| (doc_id(store, &e.name), e))
            .collect()
    };
    let payment_entities = with_ids(store.list("payments", ENTITY_FIELDS).await?);
    let product_entities = with_ids(store.list("products", ENTITY_FIELDS).await?);
    let summary_path = format!("statistics/{bucket}");
    let payment_path = |id: &str| format!("payments/{id}/statistics/{bucket}");
    let product_path = |id: &str| format!("products/{id}/statistics/{bucket}");
    let mut paths = vec![summary_path.clone()];
    paths.extend(payment_entities.iter().map(|(id, _)| payment_path(id)));
    paths.extend(product_entities.iter().map(|(id, _)| product_path(id)));
    let docs = store.get_many(&paths, &[]).await?;
    let s = docs.get(&summary_path);
    let (started, ended, orders) = (
        get(s, "started_sessions_count"),
        get(s, "ended_sessions_count"),
        get(s, "purchase_count"),
    );

    let mut payments = Vec::new();
    for (id, entity) in &payment_entities {
        let st = docs.get(&payment_path(id));
        payments.push((
            get(st, "usage_count"),
            id.clone(),
            str_field(entity, "name").unwrap_or(id).to_owned(),
        ));
    }
    payments.sort_by(|a, b| b.cmp(a));

    let mut products = Vec::new();
    let mut categories: BTreeMap<String, (String, i64)> = BTreeMap::new();
    for (id, entity) in &product_entities {
        let st = docs.get(&product_path(id));
        let (views, adds, removes, units) = (
            get(st, "views_count"),
            get(st, "added_to_cart_count"),
            get(st, "removed_from_cart_count"),
            get(st, "total_items_purchased"),
        );
        if views == 0 && adds == 0 && removes == 0 && units == 0 {
            continue; // no activity in this bucket: listed in neither ranking
        }
        let score = weights.score(views, adds, removes, units);
        let category = str_field(entity, "category_id")
            .unwrap_or_default()
            .to_owned();
        let category_name = str_field(entity, "category_name")
            .unwrap_or_default()
            .to_owned();
        let entry = categories.entry(category).or_insert((category_name, 0));
        entry.1 += score;
        products.push((
            units,
            get(st, "orders_count"),
            views,
            get(st, "total_amount_cents"),
            score,
            id.clone(),
            str_field(entity, "name").unwrap_or(id).to_owned(),
        ));
    }
    let product_value = |p: &(i64, i64, i64, i64, i64, String, String)| {
        map(vec![
            ("id", p.5.clone().into()),
            ("name", p.6.clone().into()),
            ("units", p.0.into()),
            ("orders", p.1.into()),
            ("views", p.2.into()),
            ("conversion", ratio(p.1, p.2)),
            ("revenue_cents", p.3.into()),
            ("interest_score", p.4.into()),
        ])
    };
    let mut by_units = products.clone();
    by_units.sort_by(|a, b| b.0.cmp(&a.0).then(b.3.cmp(&a.3)).then(a.5.cmp(&b.5)));
    let mut by_interest = products;
    by_interest.sort_by(|a, b| b.4.cmp(&a.4).then(a.5.cmp(&b.5)));
    let mut cats: Vec<_> = categories.into_iter().collect();
    cats.sort_by(|a, b| b.1 .1.cmp(&a.1 .1).then(a.0.cmp(&b.0)));

    let mut metrics = BTreeMap::from([
        ("sessions_started".to_owned(), FieldValue::Int(started)),
        ("sessions_ended".to_owned(), FieldValue::Int(ended)),
        (
            "average_session_duration_seconds".to_owned(),
            ratio(get(s, "total_sessions_duration_seconds"), ended),
        ),
        ("orders".to_owned(), FieldValue::Int(orders)),
        ("conversion_rate".to_owned(), ratio(orders, started)),
        (
            "gross_revenue_cents".to_owned(),
            FieldValue::Int(get(s, "total_amount_cents")),
        ),
        (
            "discounts_cents".to_owned(),
            FieldValue::Int(get(s, "total_discount_cents")),
        ),
        (
            "net_revenue_cents".to_owned(),
            FieldValue::Int(get(s, "net_revenue_cents")),
        ),
        (
            "shipping_cents".to_owned(),
            FieldValue::Int(get(s, "total_shipping_cents")),
        ),
        (
            "paid_cents".to_owned(),
            FieldValue::Int(get(s, "total_paid_cents")),
        ),
        (
            "average_order_value_cents".to_owned(),
            ratio(get(s, "total_paid_cents"), orders),
        ),
    ]);
    if bucket == LIFETIME {
        metrics.insert(
            "active_sessions".to_owned(),
            FieldValue::Int(started - ended),
        );
    }
    if let Some((uses, id, name)) = payments.first().filter(|p| p.0 > 0) {
        metrics.insert(
            "most_used_payment_method".to_owned(),
            map(vec![
                ("id", id.clone().into()),
                ("name", name.clone().into()),
                ("usage_count", (*uses).into()),
            ]),
        );
    }
    let now = FieldValue::Time(chrono::Utc::now());
    metrics.insert("updated_at".to_owned(), now.clone());
    let trending = BTreeMap::from([
        (
            "products".to_owned(),
            FieldValue::Array(by_units.iter().take(top).map(product_value).collect()),
        ),
        ("updated_at".to_owned(), now.clone()),
    ]);
    let interest = BTreeMap::from([
        (
            "products".to_owned(),
            FieldValue::Array(by_interest.iter().take(top).map(product_value).collect()),
        ),
        (
            "categories".to_owned(),
            FieldValue::Array(
                cats.iter()
                    .map(|(id, (name, score))| {
                        map(vec![
                            ("id", id.clone().into()),
                            ("name", name.clone().into()),
                            ("interest_score", (*score).into()),
                        ])
                    })
                    .collect(),
            ),
        ),
        (
            "weights".to_owned(),
            map(vec![
                ("view", weights.view.into()),
                ("add", weights.add_to_cart.into()),
                ("remove", weights.remove_from_cart.into()),
                ("purchase", weights.purchase.into()),
            ]),
        ),
        ("updated_at".to_owned(), now),
    ]);
    let mut writes = vec![
        store.replace_write(&format!("metrics/{bucket}"), metrics, Precondition::None),
        store.replace_write(&format!("trending/{bucket}"), trending, Precondition::None),
        store.replace_write(&format!("interest/{bucket}"), interest, Precondition::None),
    ];
    if let Some(t) = marked {
        writes
            .push(store.delete_write(&format!("{PENDING}/{bucket}"), Precondition::UpdateTime(t)));
    }
    store.commit(writes).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statistics_document_marks_its_bucket() {
        assert_eq!(bucket_of("statistics/lifetime"), Some("lifetime"));
        assert_eq!(
            bucket_of("products/p1/statistics/2026-01-02"),
            Some("2026-01-02")
        );
        assert_eq!(
            bucket_of("payments/x/statistics/lifetime"),
            Some("lifetime")
        );
        assert_eq!(bucket_of("sessions_history/s"), None);
        assert_eq!(bucket_of("countries/US/states/TX/shipping/lifetime"), None);
    }

    #[test]
    fn weights_parse_and_reject_unknown_names() {
        assert_eq!(
            Weights::parse("view=2,purchase=10").expect("valid"),
            Weights {
                view: 2,
                purchase: 10,
                ..Weights::default()
            }
        );
        assert!(Weights::parse("clicks=1").is_err());
        assert!(Weights::parse("view=x").is_err());
        assert_eq!(Weights::default().score(10, 2, 1, 3), 10 + 6 - 2 + 15);
    }
}
