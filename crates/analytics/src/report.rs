//! `analytics report`: a readable summary read back from Firestore — sessions, the funnel,
//! revenue by country, top products and payment methods, for one day and lifetime.

use std::fmt::Write;

use firestore::gcloud_sdk::google::firestore::v1::Document;
use store::client::int_field;
use store::schema::{
    day_bucket, field as f, path, payment_uses, read_counters, Entity, EntityNames, Funnel,
    ProductStats, Totals, LIFETIME,
};
use store::{Store, StoreError};

use crate::figures::Rates;

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
        .map(|d| (path::id_of(&d.name).to_owned(), d))
        .collect())
}

/// The busiest day: the day with the most started sessions, from the derived `metrics/{day}`
/// documents (one per bucket, unlike the counters' shards).
pub async fn busiest_day(store: &Store) -> Result<Option<String>, StoreError> {
    Ok(ids(store, path::METRICS, &[f::SESSIONS_STARTED])
        .await?
        .into_iter()
        .filter(|(id, _)| id != LIFETIME)
        .max_by_key(|(id, d)| (int_field(d, f::SESSIONS_STARTED).unwrap_or(0), id.clone()))
        .map(|(id, _)| id))
}

/// One bucket (`lifetime` or a day) as the report shows it; money in cents.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct BucketReport {
    pub bucket: String,
    /// Why this bucket is shown (the day asked for, the busiest day, today).
    pub chosen: String,
    /// ISO code of the money figures (the shop's currency, `ANALYTICS_CURRENCY`).
    pub currency: String,
    #[serde(flatten)]
    pub totals: Totals,
    /// The formulas of the materialized `metrics/{bucket}`.
    #[serde(flatten)]
    pub rates: Rates,
    /// The session funnel (by sessions), carts abandoned, time to first purchase.
    pub funnel: Funnel,
    pub product_views: i64,
    pub add_to_cart: i64,
    pub units: i64,
    /// By units, then revenue.
    pub top_products: Vec<ProductLine>,
    /// Countries with orders, by paid amount.
    pub countries: Vec<CountryLine>,
    /// By uses.
    pub payment_methods: Vec<PaymentLine>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ProductLine {
    pub name: String,
    pub units: i64,
    pub orders: i64,
    pub views: i64,
    pub revenue_cents: i64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CountryLine {
    pub country: String,
    pub paid_cents: i64,
    pub orders: i64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PaymentLine {
    pub name: String,
    pub uses: i64,
}

/// The report's figures for `day` (default: the busiest day) and lifetime, read back from
/// Firestore: what `analytics report --json` prints for scripts.
pub async fn collect(
    store: &Store,
    day: Option<String>,
    top: usize,
    currency: &str,
) -> Result<Vec<BucketReport>, StoreError> {
    let (day, chosen) = match day {
        Some(d) => (d, "the day asked for"),
        None => match busiest_day(store).await? {
            Some(d) => (
                d,
                "the day with the most sessions started; --day picks another",
            ),
            None => (
                day_bucket(chrono::Utc::now()),
                "today: no day has sessions yet",
            ),
        },
    };
    Ok(vec![
        bucket(store, &day, chosen, top, currency).await?,
        bucket(store, LIFETIME, "every day", top, currency).await?,
    ])
}

/// The days with derived metrics (`metrics/{day}`), oldest first, with their documents.
pub async fn days(store: &Store) -> Result<Vec<(String, Document)>, StoreError> {
    let mut days: Vec<_> = store
        .list_whole(path::METRICS)
        .await?
        .into_iter()
        .map(|d| (path::id_of(&d.name).to_owned(), d))
        .filter(|(id, _)| id != LIFETIME)
        .collect();
    days.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(days)
}

/// A bucket's headline figures (totals, rates, the funnel) from its statistics document,
/// without its products, countries and payment methods.
fn headline_of(
    stats: Option<&Document>,
    bucket: &str,
    chosen: &str,
    currency: &str,
) -> BucketReport {
    let totals = Totals::read(stats);
    BucketReport {
        bucket: bucket.to_owned(),
        chosen: chosen.to_owned(),
        currency: currency.to_owned(),
        totals,
        rates: Rates::of(&totals, bucket == LIFETIME),
        funnel: Funnel::read(stats),
        ..BucketReport::default()
    }
}

/// One bucket's headline figures only (see [`bucket`] for all of them): one listing of its
/// statistics document's shards.
pub async fn headline(
    store: &Store,
    bucket: &str,
    chosen: &str,
    currency: &str,
) -> Result<BucketReport, StoreError> {
    let stats = read_counters(store, &path::statistics(bucket)).await?;
    Ok(headline_of(stats.as_ref(), bucket, chosen, currency))
}

/// One bucket's figures (`lifetime` or a day), read back from Firestore; `chosen` says why
/// it is shown.
pub async fn bucket(
    store: &Store,
    bucket: &str,
    chosen: &str,
    top: usize,
    currency: &str,
) -> Result<BucketReport, StoreError> {
    // Every counter of the bucket is in its statistics document; the names are in the
    // entities' collections. All read at once, then the countries' counters at once.
    let statistics = path::statistics(bucket);
    let (stats, products, countries, payments) = futures::try_join!(
        read_counters(store, &statistics),
        ids(store, Entity::Product.collection(), f::ENTITY),
        ids(store, path::COUNTRIES, f::ENTITY),
        ids(store, Entity::Payment.collection(), f::ENTITY),
    )?;
    let stats = stats.as_ref();
    let mut r = headline_of(stats, bucket, chosen, currency);
    for (id, entity) in products {
        let st = ProductStats::read(stats, &id);
        r.product_views += st.views;
        r.add_to_cart += st.adds;
        r.units += st.units;
        r.top_products.push(ProductLine {
            name: EntityNames::read(&entity).name.unwrap_or(id),
            units: st.units,
            orders: st.orders,
            views: st.views,
            revenue_cents: st.revenue_cents,
        });
    }
    r.top_products.sort_by(|a, b| {
        b.units
            .cmp(&a.units)
            .then(b.revenue_cents.cmp(&a.revenue_cents))
    });
    r.top_products.truncate(top);
    let paths: Vec<String> = countries
        .iter()
        .map(|(cc, _)| path::country_statistics(cc, bucket))
        .collect();
    let stats_of = paths.iter().map(|p| read_counters(store, p));
    for ((cc, _), doc) in countries
        .iter()
        .zip(futures::future::try_join_all(stats_of).await?)
    {
        let t = Totals::read(doc.as_ref());
        r.countries.push(CountryLine {
            country: cc.clone(),
            paid_cents: t.paid_cents,
            orders: t.orders,
        });
    }
    r.countries.retain(|c| c.orders > 0);
    r.countries.sort_by(|a, b| {
        (b.paid_cents, b.orders, &b.country).cmp(&(a.paid_cents, a.orders, &a.country))
    });
    for (id, entity) in payments {
        r.payment_methods.push(PaymentLine {
            uses: payment_uses(stats, &id),
            name: EntityNames::read(&entity).name.unwrap_or(id),
        });
    }
    r.payment_methods
        .sort_by(|a, b| (b.uses, &b.name).cmp(&(a.uses, &a.name)));
    Ok(r)
}

/// The readable report of [`collect`]'s figures.
pub fn render(buckets: &[BucketReport]) -> String {
    let mut out = String::new();
    for r in buckets {
        let _ = writeln!(out, "== {} ({}) ==", r.bucket, r.chosen);
        let money = |cents: i64| format!("{} {}", money(cents), r.currency);
        let (t, rates) = (&r.totals, &r.rates);
        let active = rates
            .active_sessions
            .map_or(String::new(), |a| format!(", {a} active"));
        let _ = writeln!(
            out,
            "sessions: {} started, {} ended{active}, average {:.1}s",
            t.sessions_started, t.sessions_ended, rates.average_session_duration_seconds
        );
        let _ = writeln!(
            out,
            "revenue: gross {} - discounts {} = net {}, + shipping {} = paid {}; {} orders, average order {}",
            money(t.gross_cents),
            money(t.discounts_cents),
            money(t.net_revenue_cents),
            money(t.shipping_cents),
            money(t.paid_cents),
            t.orders,
            money(rates.average_order_value_cents.round() as i64),
        );
        let _ = writeln!(
            out,
            "events: {} sessions -> {} product views -> {} add-to-cart -> {} orders ({} of sessions), {} units",
            t.sessions_started,
            r.product_views,
            r.add_to_cart,
            t.orders,
            pct(t.orders, t.sessions_started),
            r.units
        );
        let fu = &r.funnel;
        let _ = writeln!(
            out,
            "session funnel: {} sessions -> {} viewed a product ({}) -> {} added to cart ({}) -> {} purchased ({}); {} carts abandoned ({} of carts); first purchase {} after the start on average",
            t.sessions_started,
            fu.sessions_viewed_product,
            pct(fu.sessions_viewed_product, t.sessions_started),
            fu.sessions_added_to_cart,
            pct(fu.sessions_added_to_cart, t.sessions_started),
            fu.sessions_purchased,
            pct(fu.sessions_purchased, t.sessions_started),
            fu.abandoned_carts,
            pct(fu.abandoned_carts, fu.sessions_added_to_cart),
            if fu.first_purchases_timed == 0 {
                "-".to_owned()
            } else {
                format!("{:.0}s", fu.first_purchase_seconds_total as f64 / fu.first_purchases_timed as f64)
            },
        );
        let _ = writeln!(
            out,
            "top products (conversion = orders / views):\n  {:>6}  {:>5}  {:>6}  {:>12}  product",
            "units",
            "orders",
            "conv.",
            format!("revenue {}", r.currency)
        );
        for p in &r.top_products {
            let _ = writeln!(
                out,
                "  {:>6}  {:>5}  {:>6}  {:>12}  {}",
                p.units,
                p.orders,
                pct(p.orders, p.views),
                self::money(p.revenue_cents),
                p.name
            );
        }
        let _ = writeln!(out, "revenue by country (paid {}, orders):", r.currency);
        for c in &r.countries {
            let _ = writeln!(
                out,
                "  {}  {:>12}  {}",
                c.country,
                self::money(c.paid_cents),
                c.orders
            );
        }
        let _ = writeln!(
            out,
            "payment methods: {}",
            r.payment_methods
                .iter()
                .map(|p| format!("{} {}", p.name, p.uses))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(out);
    }
    out
}

/// [`collect`] and [`render`].
pub async fn report(
    store: &Store,
    day: Option<String>,
    top: usize,
    currency: &str,
) -> Result<String, StoreError> {
    Ok(render(&collect(store, day, top, currency).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_shows_each_figure_and_active_sessions_only_for_lifetime() {
        let totals = Totals {
            sessions_started: 4,
            sessions_ended: 4,
            sessions_duration_seconds: 49,
            orders: 1,
            paid_cents: 1999,
            ..Totals::default()
        };
        let day = BucketReport {
            bucket: "2026-12-05".into(),
            chosen: "the day asked for".into(),
            currency: "USD".into(),
            totals,
            rates: Rates::of(&totals, false),
            product_views: 10,
            funnel: Funnel {
                sessions_viewed_product: 3,
                sessions_added_to_cart: 2,
                sessions_purchased: 1,
                abandoned_carts: 1,
                first_purchase_seconds_total: 90,
                first_purchases_timed: 1,
            },
            top_products: vec![ProductLine {
                name: "Mug".into(),
                units: 2,
                orders: 1,
                views: 4,
                revenue_cents: 1999,
            }],
            payment_methods: vec![PaymentLine {
                name: "Card".into(),
                uses: 1,
            }],
            ..BucketReport::default()
        };
        let lifetime = BucketReport {
            bucket: "lifetime".into(),
            chosen: "every day".into(),
            rates: Rates::of(&totals, true),
            ..day.clone()
        };
        let text = render(&[day, lifetime]);
        assert!(text.contains(
            "== 2026-12-05 (the day asked for) ==\nsessions: 4 started, 4 ended, average 12.2s"
        ));
        assert!(text.contains("== lifetime (every day) ==\nsessions: 4 started, 4 ended, 0 active"));
        assert!(text.contains("1 orders, average order 19.99 USD"));
        assert!(
            text.contains("units  orders   conv.   revenue USD  product"),
            "{text}"
        );
        assert!(text.contains("-> 1 orders (25.0% of sessions)"));
        let mug = text
            .lines()
            .find(|l| l.ends_with("Mug"))
            .expect("product line");
        assert_eq!(
            mug.split_whitespace().collect::<Vec<_>>(),
            ["2", "1", "25.0%", "19.99", "Mug"],
            "units, orders, conversion, revenue, name"
        );
        assert!(text.contains("payment methods: Card 1"));
        assert!(
            text.contains("session funnel: 4 sessions -> 3 viewed a product (75.0%) -> 2 added to cart (50.0%) -> 1 purchased (25.0%); 1 carts abandoned (50.0% of carts); first purchase 90s after the start on average"),
            "{text}"
        );
        let empty = render(&[BucketReport::default()]);
        assert!(
            empty.contains("(- of sessions)"),
            "no sessions: no percentage"
        );
    }
}
