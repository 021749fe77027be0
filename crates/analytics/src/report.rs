//! `analytics report`: a readable summary read back from Firestore — sessions, the funnel,
//! revenue by country, top products and payment methods, for one day and lifetime.

use std::fmt::Write;

use firestore::gcloud_sdk::google::firestore::v1::Document;

use crate::aggregate::LIFETIME;
use crate::figures::ratio;
use crate::store::{int_field, str_field, Store, StoreError, ENTITY_FIELDS};

fn n(doc: &Option<Document>, field: &str) -> i64 {
    doc.as_ref().and_then(|d| int_field(d, field)).unwrap_or(0)
}

fn money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, (cents % 100).abs())
}

fn pct(part: i64, whole: i64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

/// Ids of the documents of a top-level collection.
async fn ids(
    store: &Store,
    collection: &str,
    mask: &[&str],
) -> Result<Vec<(String, Document)>, StoreError> {
    Ok(store
        .list(collection, mask)
        .await?
        .into_iter()
        .map(|d| {
            (
                store
                    .relative(&d.name)
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
                d,
            )
        })
        .collect())
}

/// The busiest day: the `statistics/{day}` document with the most started sessions.
pub async fn busiest_day(store: &Store) -> Result<Option<String>, StoreError> {
    Ok(ids(store, "statistics", &["started_sessions_count"])
        .await?
        .into_iter()
        .filter(|(id, _)| id != LIFETIME)
        .max_by_key(|(id, d)| {
            (
                int_field(d, "started_sessions_count").unwrap_or(0),
                id.clone(),
            )
        })
        .map(|(id, _)| id))
}

pub async fn report(store: &Store, day: Option<String>, top: usize) -> Result<String, StoreError> {
    let day = match day {
        Some(d) => d,
        None => busiest_day(store)
            .await?
            .unwrap_or_else(|| chrono::Utc::now().format("%Y-%m-%d").to_string()),
    };
    let mut out = String::new();
    for bucket in [day.as_str(), LIFETIME] {
        let s = store.get(&format!("statistics/{bucket}")).await?;
        let (started, ended) = (
            n(&s, "started_sessions_count"),
            n(&s, "ended_sessions_count"),
        );
        let orders = n(&s, "purchase_count");
        let _ = writeln!(out, "== {bucket} ==");
        // The formulas of the materialized `metrics/{bucket}` (crate::figures).
        let average = ratio(n(&s, "total_sessions_duration_seconds"), ended);
        // Active sessions only make sense for lifetime: a day's sessions may end the next day.
        let active = if bucket == LIFETIME {
            format!(", {} active", started - ended)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "sessions: {started} started, {ended} ended{active}, average {average:.1}s"
        );
        let _ = writeln!(
            out,
            "revenue: gross {} - discounts {} = net {}, + shipping {} = paid {}; {orders} orders, average order {}",
            money(n(&s, "total_amount_cents")),
            money(n(&s, "total_discount_cents")),
            money(n(&s, "net_revenue_cents")),
            money(n(&s, "total_shipping_cents")),
            money(n(&s, "total_paid_cents")),
            money(ratio(n(&s, "total_paid_cents"), orders).round() as i64),
        );

        let mut products = Vec::new();
        let (mut views, mut adds, mut units) = (0, 0, 0);
        for (id, entity) in ids(store, "products", ENTITY_FIELDS).await? {
            let st = store
                .get(&format!("products/{id}/statistics/{bucket}"))
                .await?;
            views += n(&st, "views_count");
            adds += n(&st, "added_to_cart_count");
            units += n(&st, "total_items_purchased");
            let name = str_field(&entity, "name").unwrap_or(&id).to_owned();
            products.push((
                n(&st, "total_items_purchased"),
                n(&st, "orders_count"),
                n(&st, "views_count"),
                n(&st, "total_amount_cents"),
                name,
            ));
        }
        let _ = writeln!(
            out,
            "funnel: {started} sessions -> {views} product views -> {adds} add-to-cart -> {orders} orders ({} of sessions), {units} units",
            pct(orders, started)
        );
        products.sort_by(|a, b| b.0.cmp(&a.0).then(b.3.cmp(&a.3)));
        let _ = writeln!(
            out,
            "top products (units, orders, conversion = orders/views, revenue):"
        );
        for (u, o, v, rev, name) in products.iter().take(top) {
            let _ = writeln!(
                out,
                "  {u:>6}  {o:>5}  {:>6}  {:>12}  {name}",
                pct(*o, *v),
                money(*rev)
            );
        }

        let mut countries = Vec::new();
        for (cc, _) in ids(store, "countries", ENTITY_FIELDS).await? {
            let st = store
                .get(&format!("countries/{cc}/statistics/{bucket}"))
                .await?;
            countries.push((n(&st, "total_paid_cents"), n(&st, "purchase_count"), cc));
        }
        countries.sort_by(|a, b| b.cmp(a));
        let _ = writeln!(out, "revenue by country (paid, orders):");
        for (paid, o, cc) in countries.iter().filter(|c| c.1 > 0) {
            let _ = writeln!(out, "  {cc}  {:>12}  {o}", money(*paid));
        }

        let mut payments = Vec::new();
        for (id, entity) in ids(store, "payments", ENTITY_FIELDS).await? {
            let st = store
                .get(&format!("payments/{id}/statistics/{bucket}"))
                .await?;
            payments.push((
                n(&st, "usage_count"),
                str_field(&entity, "name").unwrap_or(&id).to_owned(),
            ));
        }
        payments.sort_by(|a, b| b.cmp(a));
        let _ = writeln!(
            out,
            "payment methods: {}",
            payments
                .iter()
                .map(|(c, name)| format!("{name} {c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(out);
    }
    Ok(out)
}
