//! Derived metrics, materialized from the counters so a dashboard reads one document:
//! `metrics/{bucket}` (active sessions, average duration, orders, average order value,
//! conversion, revenue, most-used payment method), `trending/{bucket}` (top products by units
//! with conversion = orders / views) and `interest/{bucket}` (weighted interest scores of
//! categories and products). Recomputed from scratch each time, so running it twice, or
//! from two instances, gives the same documents; the owner of partition 0 refreshes them
//! (every instance once more at shutdown), so they have one writer.

use std::collections::{BTreeMap, BTreeSet};

use firestore::gcloud_sdk::google::firestore::v1::Document;

use firestore::gcloud_sdk::prost_types::Timestamp;
use store::client::str_field;
use store::schema::{
    field as f, path, payment_uses, read_counters, Entity, EntityNames, ProductStats, Totals,
    LIFETIME,
};
use store::{FieldValue, Precondition, Store, StoreError};

use crate::figures::{self, PaymentUse, ProductCounters, ProductFigure};

pub use crate::figures::Weights;

/// How long a marker whose flush the derived documents include stays before a refresh
/// deletes it (a writer gone, a day over): one deletion per marker once idle, never one per
/// refresh.
pub const MARKER_IDLE: std::time::Duration = std::time::Duration::from_secs(300);

/// A bucket whose derived documents miss a landed flush.
#[derive(Debug)]
pub struct Stale {
    pub bucket: String,
    /// `metrics/{bucket}.covered` once refreshed: writer → the flush of its marker.
    pub cover: BTreeMap<String, String>,
}

/// What the markers say: the stale buckets, and the idle markers (path, update time) a
/// refresh deletes.
#[derive(Debug, Default)]
pub struct Survey {
    pub stale: Vec<Stale>,
    pub idle: Vec<(String, Timestamp)>,
}

/// Recompute every stale bucket (see [`survey`]); returns how many were recomputed.
///
/// A flush marks the buckets whose counters it changes: `_derived/{bucket}~{writer}` (one
/// marker per writer, see [`store::schema::shard_counters`]) names the flush, written
/// atomically with its counters (or its manifest). A marker is *ready* once that flush has
/// landed (no manifest of it left). Recomputing a bucket reads its derived documents'
/// versions, then the counters (which include every flush whose ready marker was read), and
/// writes the derived documents with `covered` = the ready markers' flushes, on condition that
/// their versions are unchanged: of two refreshes at once, the one that read older counters
/// cannot overwrite the newer one's. A marker written again by a later flush names another
/// flush, so the bucket is stale again until a refresh reads it. Markers are overwritten,
/// never deleted while in use: a marker's only writer is its flushes (at most one write per
/// flush), and a bucket whose markers are all covered costs no write.
pub async fn refresh_pending(
    store: &Store,
    weights: Weights,
    top: usize,
) -> Result<usize, StoreError> {
    let found = survey(store).await?;
    let mut done = 0;
    for s in &found.stale {
        match materialize(store, &s.bucket, weights, top, &s.cover).await {
            Ok(()) => done += 1,
            // Recomputed by another instance meanwhile: the next round.
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    for (marker, t) in &found.idle {
        // Marked again meanwhile: it stays.
        match store
            .commit(vec![
                store.delete_write(marker, Precondition::UpdateTime(*t))
            ])
            .await
        {
            Ok(_) | Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Read the markers and the derived documents' `covered`: which buckets miss a landed flush,
/// and which covered markers have been idle for [`MARKER_IDLE`].
pub async fn survey(store: &Store) -> Result<Survey, StoreError> {
    let markers = store.list(path::DERIVED, &[f::FLUSH]).await?;
    let manifests: Vec<String> = markers
        .iter()
        .filter_map(|m| str_field(m, f::FLUSH))
        .map(path::flush_manifest)
        .collect();
    let running = store.get_many(&manifests, &[f::CHUNKS]).await?;
    let buckets: BTreeSet<&str> = markers
        .iter()
        .map(|m| path::bucket_of_marker(&m.name))
        .collect();
    let derived = store
        .get_many(
            &buckets.iter().map(|b| path::metrics(b)).collect::<Vec<_>>(),
            &[f::COVERED],
        )
        .await?;
    let covered: BTreeMap<&str, BTreeMap<String, String>> = buckets
        .iter()
        .map(|b| (*b, covered(derived.get(&path::metrics(b)))))
        .collect();
    let idle_before = chrono::Utc::now().timestamp() - MARKER_IDLE.as_secs() as i64;
    let mut stale: BTreeMap<&str, Stale> = BTreeMap::new();
    let mut idle = Vec::new();
    for marker in &markers {
        let flush = str_field(marker, f::FLUSH).unwrap_or_default();
        if running.contains_key(&path::flush_manifest(flush)) {
            continue; // its flush is still being applied
        }
        let bucket = path::bucket_of_marker(&marker.name);
        let writer = path::writer_of_marker(&marker.name);
        let covered = &covered[bucket];
        if covered.get(writer).is_some_and(|c| c == flush) {
            if let Some(t) = marker.update_time.filter(|t| t.seconds < idle_before) {
                idle.push((store.relative(&marker.name).to_owned(), t));
            }
            continue;
        }
        stale
            .entry(bucket)
            .or_insert_with(|| Stale {
                bucket: bucket.to_owned(),
                cover: covered.clone(),
            })
            .cover
            .insert(writer.to_owned(), flush.to_owned());
    }
    Ok(Survey {
        stale: stale.into_values().collect(),
        idle,
    })
}

/// `covered` of a `metrics/{b}` document: writer → flush.
fn covered(doc: Option<&Document>) -> BTreeMap<String, String> {
    use firestore::gcloud_sdk::google::firestore::v1::value::ValueType;
    match doc
        .and_then(|d| d.fields.get(f::COVERED))
        .and_then(|v| v.value_type.as_ref())
    {
        Some(ValueType::MapValue(m)) => m
            .fields
            .iter()
            .filter_map(|(w, v)| match &v.value_type {
                Some(ValueType::StringValue(flush)) => Some((w.clone(), flush.clone())),
                _ => None,
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// Recompute the derived documents of `bucket` (`lifetime` or a day), recording `cover` as
/// the flushes they include, unless another refresh wrote them meanwhile (a conflict; see
/// [`refresh_pending`]).
pub async fn materialize(
    store: &Store,
    bucket: &str,
    weights: Weights,
    top: usize,
    cover: &BTreeMap<String, String>,
) -> Result<(), StoreError> {
    // The derived documents' versions, read before the counters.
    let targets = [
        path::metrics(bucket),
        path::trending(bucket),
        path::interest(bucket),
    ];
    let current = store.get_many(&targets, &[f::UPDATED_AT]).await?;
    let unchanged = |p: &String| match current.get(p).and_then(|d| d.update_time) {
        Some(t) => Precondition::UpdateTime(t),
        None => Precondition::Exists(false),
    };
    // Each entity with its names, and every counter of the bucket (in its statistics
    // document).
    let payment_entities = store.list(Entity::Payment.collection(), f::ENTITY).await?;
    let product_entities = store.list(Entity::Product.collection(), f::ENTITY).await?;
    let stats = read_counters(store, &path::statistics(bucket)).await?;
    let stats = stats.as_ref();
    let (products, payments) = counters_of(stats, &product_entities, &payment_entities);
    let f = figures::compute(
        Totals::read(stats),
        bucket == LIFETIME,
        &products,
        &payments,
        weights,
        top,
    );
    let now = FieldValue::Time(chrono::Utc::now());
    let mut metrics_fields = metrics_doc(&f, &now);
    metrics_fields.insert(
        f::COVERED.to_owned(),
        FieldValue::Map(
            cover
                .iter()
                .map(|(w, flush)| (w.clone(), FieldValue::Str(flush.clone())))
                .collect(),
        ),
    );
    let [metrics, trending, interest] = &targets;
    store
        .commit(vec![
            store.replace_write(metrics, metrics_fields, unchanged(metrics)),
            store.replace_write(trending, trending_doc(&f, &now), unchanged(trending)),
            store.replace_write(
                interest,
                interest_doc(&f, weights, &now),
                unchanged(interest),
            ),
        ])
        .await?;
    Ok(())
}

/// The products' and payment methods' counters in a bucket's statistics document `stats`,
/// named after their entity documents (`products/{id}`, `payments/{id}`).
pub fn counters_of(
    stats: Option<&Document>,
    products: &[Document],
    payments: &[Document],
) -> (Vec<ProductCounters>, Vec<PaymentUse>) {
    let named = |e: &Document| (path::id_of(&e.name).to_owned(), EntityNames::read(e));
    let payments = payments
        .iter()
        .map(named)
        .map(|(id, names)| PaymentUse {
            uses: payment_uses(stats, &id),
            name: names.name.unwrap_or_else(|| id.clone()),
            id,
        })
        .collect();
    let products = products
        .iter()
        .map(named)
        .map(|(id, names)| {
            let st = ProductStats::read(stats, &id);
            ProductCounters {
                name: names.name.unwrap_or_else(|| id.clone()),
                category_id: names.category_id.unwrap_or_default(),
                category_name: names.category_name.unwrap_or_default(),
                views: st.views,
                adds: st.adds,
                removes: st.removes,
                units: st.units,
                orders: st.orders,
                revenue_cents: st.revenue_cents,
                id,
            }
        })
        .collect();
    (products, payments)
}

type Fields = BTreeMap<String, FieldValue>;

fn fields<'a>(entries: impl IntoIterator<Item = (&'a str, FieldValue)>) -> Fields {
    entries
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

/// `metrics/{bucket}`.
fn metrics_doc(fig: &figures::Figures, now: &FieldValue) -> Fields {
    let (t, r) = (&fig.totals, &fig.rates);
    let mut doc = fields([
        (f::SESSIONS_STARTED, t.sessions_started.into()),
        (f::SESSIONS_ENDED, t.sessions_ended.into()),
        (
            f::AVERAGE_SESSION_DURATION_SECONDS,
            FieldValue::Double(r.average_session_duration_seconds),
        ),
        (f::ORDERS_FIGURE, t.orders.into()),
        (f::CONVERSION_RATE, FieldValue::Double(r.conversion_rate)),
        (f::GROSS_REVENUE_CENTS, t.gross_cents.into()),
        (f::DISCOUNTS_CENTS, t.discounts_cents.into()),
        (f::NET_REVENUE_CENTS, t.net_revenue_cents.into()),
        (f::METRIC_SHIPPING_CENTS, t.shipping_cents.into()),
        (f::METRIC_PAID_CENTS, t.paid_cents.into()),
        (
            f::AVERAGE_ORDER_VALUE_CENTS,
            FieldValue::Double(r.average_order_value_cents),
        ),
        (f::UPDATED_AT, now.clone()),
    ]);
    if let Some(active) = r.active_sessions {
        doc.insert(f::ACTIVE_SESSIONS.to_owned(), active.into());
    }
    if let Some(p) = &fig.most_used_payment {
        doc.insert(
            f::MOST_USED_PAYMENT_METHOD.to_owned(),
            FieldValue::map([
                (f::ID, p.id.clone().into()),
                (f::NAME, p.name.clone().into()),
                (f::USAGE, p.uses.into()),
            ]),
        );
    }
    doc
}

fn product_value(p: &ProductFigure) -> FieldValue {
    FieldValue::map([
        (f::ID, p.id.clone().into()),
        (f::NAME, p.name.clone().into()),
        (f::UNITS, p.units.into()),
        (f::ORDERS_FIGURE, p.orders.into()),
        (f::RANK_VIEWS, p.views.into()),
        (f::CONVERSION, FieldValue::Double(p.conversion)),
        (f::REVENUE_CENTS, p.revenue_cents.into()),
        (f::INTEREST_SCORE, p.interest_score.into()),
    ])
}

/// `trending/{bucket}`.
fn trending_doc(fig: &figures::Figures, now: &FieldValue) -> Fields {
    fields([
        (
            f::PRODUCTS,
            FieldValue::Array(fig.trending.iter().map(product_value).collect()),
        ),
        (f::UPDATED_AT, now.clone()),
    ])
}

/// `interest/{bucket}`.
fn interest_doc(fig: &figures::Figures, weights: Weights, now: &FieldValue) -> Fields {
    let categories = fig
        .interest_categories
        .iter()
        .map(|c| {
            FieldValue::map([
                (f::ID, c.id.clone().into()),
                (f::NAME, c.name.clone().into()),
                (f::INTEREST_SCORE, c.interest_score.into()),
            ])
        })
        .collect();
    fields([
        (
            f::PRODUCTS,
            FieldValue::Array(fig.interest_products.iter().map(product_value).collect()),
        ),
        (f::CATEGORIES, FieldValue::Array(categories)),
        (
            f::WEIGHTS,
            FieldValue::map([
                (f::WEIGHT_VIEW, weights.view.into()),
                (f::WEIGHT_ADD, weights.add_to_cart.into()),
                (f::WEIGHT_REMOVE, weights.remove_from_cart.into()),
                (f::WEIGHT_PURCHASE, weights.purchase.into()),
            ]),
        ),
        (f::UPDATED_AT, now.clone()),
    ])
}
