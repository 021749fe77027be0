//! `analytics report`: a readable summary read back from Firestore — sessions, the funnel,
//! revenue by country, top products and payment methods, for one day and lifetime.

use std::fmt::Write;

use firestore::gcloud_sdk::google::firestore::v1::Document;
use store::client::int_field;
use store::schema::{
    day_bucket, field as f, path, read_counters, Entity, Funnel, Totals, LIFETIME,
};
use store::{Store, StoreError};

use crate::derived;
use crate::figures::{self, Rates, Weights};

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
    /// By units, then revenue (the products with any activity in the bucket).
    pub top_products: Vec<ProductLine>,
    /// Every category with an active product, by interest score.
    pub categories: Vec<CategoryLine>,
    /// The interest score's weights (those `interest/{bucket}` was computed with).
    pub weights: Weights,
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
    pub interest_score: i64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CategoryLine {
    pub name: String,
    pub interest_score: i64,
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
    // entities' collections; the interest weights analytics used in `interest/{bucket}`.
    // All read at once, then the countries' counters at once.
    let (statistics, interest) = (path::statistics(bucket), path::interest(bucket));
    let (stats, products, countries, payments, interest) = futures::try_join!(
        read_counters(store, &statistics),
        store.list(Entity::Product.collection(), f::ENTITY),
        ids(store, path::COUNTRIES, f::ENTITY),
        store.list(Entity::Payment.collection(), f::ENTITY),
        store.get(&interest),
    )?;
    let stats = stats.as_ref();
    let mut r = headline_of(stats, bucket, chosen, currency);
    let (products, payments) = derived::counters_of(stats, &products, &payments);
    for p in &products {
        r.product_views += p.views;
        r.add_to_cart += p.adds;
        r.units += p.units;
    }
    // The figures analytics materializes, computed the same way from the same counters.
    let weights = Weights::read(interest.as_ref());
    let fig = figures::compute(
        r.totals,
        bucket == LIFETIME,
        &products,
        &payments,
        weights,
        top,
    );
    r.top_products = fig
        .trending
        .iter()
        .map(|p| ProductLine {
            name: p.name.clone(),
            units: p.units,
            orders: p.orders,
            views: p.views,
            revenue_cents: p.revenue_cents,
            interest_score: p.interest_score,
        })
        .collect();
    r.categories = fig
        .interest_categories
        .iter()
        .map(|c| CategoryLine {
            name: c.name.clone(),
            interest_score: c.interest_score,
        })
        .collect();
    r.weights = weights;
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
    r.payment_methods = payments
        .into_iter()
        .map(|p| PaymentLine {
            uses: p.uses,
            name: p.name,
        })
        .collect();
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
            "top products (conversion = orders / views):\n  {:>6}  {:>5}  {:>6}  {:>12}  {:>8}  product",
            "units",
            "orders",
            "conv.",
            format!("revenue {}", r.currency),
            "interest"
        );
        for p in &r.top_products {
            let _ = writeln!(
                out,
                "  {:>6}  {:>5}  {:>6}  {:>12}  {:>8}  {}",
                p.units,
                p.orders,
                pct(p.orders, p.views),
                self::money(p.revenue_cents),
                p.interest_score,
                p.name
            );
        }
        let w = &r.weights;
        let _ = writeln!(
            out,
            "category interest (score = {} x views + {} x adds {:+} x removes + {} x units): {}",
            w.view,
            w.add_to_cart,
            w.remove_from_cart,
            w.purchase,
            r.categories
                .iter()
                .map(|c| format!("{} {}", c.name, c.interest_score))
                .collect::<Vec<_>>()
                .join(", ")
        );
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
                interest_score: 14,
            }],
            categories: vec![CategoryLine {
                name: "Kitchen".into(),
                interest_score: 14,
            }],
            weights: Weights::default(),
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
            text.contains("units  orders   conv.   revenue USD  interest  product"),
            "{text}"
        );
        assert!(text.contains("-> 1 orders (25.0% of sessions)"));
        let mug = text
            .lines()
            .find(|l| l.ends_with("Mug"))
            .expect("product line");
        assert_eq!(
            mug.split_whitespace().collect::<Vec<_>>(),
            ["2", "1", "25.0%", "19.99", "14", "Mug"],
            "units, orders, conversion, revenue, interest, name"
        );
        assert!(
            text.contains("category interest (score = 1 x views + 3 x adds -2 x removes + 5 x units): Kitchen 14"),
            "{text}"
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
