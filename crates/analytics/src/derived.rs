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
use crate::figures::{self, PaymentUse, ProductCounters, ProductFigure, Totals};
use crate::store::{int_field, str_field, Precondition, Store, StoreError, ENTITY_FIELDS};

pub use crate::figures::Weights;

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

/// The totals of a `statistics/{bucket}` document (zeros where it or a field is missing).
pub fn totals(doc: Option<&Document>) -> Totals {
    let get = |f: &str| doc.and_then(|d| int_field(d, f)).unwrap_or(0);
    Totals {
        sessions_started: get("started_sessions_count"),
        sessions_ended: get("ended_sessions_count"),
        sessions_duration_seconds: get("total_sessions_duration_seconds"),
        orders: get("purchase_count"),
        gross_cents: get("total_amount_cents"),
        discounts_cents: get("total_discount_cents"),
        net_revenue_cents: get("net_revenue_cents"),
        shipping_cents: get("total_shipping_cents"),
        paid_cents: get("total_paid_cents"),
    }
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
    let totals = totals(docs.get(&summary_path));
    let name = |entity: &Document, field: &str, default: &str| {
        str_field(entity, field).unwrap_or(default).to_owned()
    };
    let payments: Vec<PaymentUse> = payment_entities
        .iter()
        .map(|(id, entity)| PaymentUse {
            id: id.clone(),
            name: name(entity, "name", id),
            uses: get(docs.get(&payment_path(id)), "usage_count"),
        })
        .collect();
    let products: Vec<ProductCounters> = product_entities
        .iter()
        .map(|(id, entity)| {
            let st = docs.get(&product_path(id));
            ProductCounters {
                id: id.clone(),
                name: name(entity, "name", id),
                category_id: name(entity, "category_id", ""),
                category_name: name(entity, "category_name", ""),
                views: get(st, "views_count"),
                adds: get(st, "added_to_cart_count"),
                removes: get(st, "removed_from_cart_count"),
                units: get(st, "total_items_purchased"),
                orders: get(st, "orders_count"),
                revenue_cents: get(st, "total_amount_cents"),
            }
        })
        .collect();
    let f = figures::compute(
        totals,
        bucket == LIFETIME,
        &products,
        &payments,
        weights,
        top,
    );

    let product_value = |p: &ProductFigure| {
        map(vec![
            ("id", p.id.clone().into()),
            ("name", p.name.clone().into()),
            ("units", p.units.into()),
            ("orders", p.orders.into()),
            ("views", p.views.into()),
            ("conversion", FieldValue::Double(p.conversion)),
            ("revenue_cents", p.revenue_cents.into()),
            ("interest_score", p.interest_score.into()),
        ])
    };
    let t = f.totals;
    let mut metrics = BTreeMap::from([
        (
            "sessions_started".to_owned(),
            FieldValue::Int(t.sessions_started),
        ),
        (
            "sessions_ended".to_owned(),
            FieldValue::Int(t.sessions_ended),
        ),
        (
            "average_session_duration_seconds".to_owned(),
            FieldValue::Double(f.rates.average_session_duration_seconds),
        ),
        ("orders".to_owned(), FieldValue::Int(t.orders)),
        (
            "conversion_rate".to_owned(),
            FieldValue::Double(f.rates.conversion_rate),
        ),
        (
            "gross_revenue_cents".to_owned(),
            FieldValue::Int(t.gross_cents),
        ),
        (
            "discounts_cents".to_owned(),
            FieldValue::Int(t.discounts_cents),
        ),
        (
            "net_revenue_cents".to_owned(),
            FieldValue::Int(t.net_revenue_cents),
        ),
        (
            "shipping_cents".to_owned(),
            FieldValue::Int(t.shipping_cents),
        ),
        ("paid_cents".to_owned(), FieldValue::Int(t.paid_cents)),
        (
            "average_order_value_cents".to_owned(),
            FieldValue::Double(f.rates.average_order_value_cents),
        ),
    ]);
    if let Some(active) = f.rates.active_sessions {
        metrics.insert("active_sessions".to_owned(), FieldValue::Int(active));
    }
    if let Some(p) = &f.most_used_payment {
        metrics.insert(
            "most_used_payment_method".to_owned(),
            map(vec![
                ("id", p.id.clone().into()),
                ("name", p.name.clone().into()),
                ("usage_count", p.uses.into()),
            ]),
        );
    }
    let now = FieldValue::Time(chrono::Utc::now());
    metrics.insert("updated_at".to_owned(), now.clone());
    let trending = BTreeMap::from([
        (
            "products".to_owned(),
            FieldValue::Array(f.trending.iter().map(product_value).collect()),
        ),
        ("updated_at".to_owned(), now.clone()),
    ]);
    let interest = BTreeMap::from([
        (
            "products".to_owned(),
            FieldValue::Array(f.interest_products.iter().map(product_value).collect()),
        ),
        (
            "categories".to_owned(),
            FieldValue::Array(
                f.interest_categories
                    .iter()
                    .map(|c| {
                        map(vec![
                            ("id", c.id.clone().into()),
                            ("name", c.name.clone().into()),
                            ("interest_score", c.interest_score.into()),
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
}
