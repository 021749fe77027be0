//! The overview's figures: a bucket (a day or lifetime), the bucket before it for the tiles'
//! changes, lifetime (active sessions), the day-by-day series and the hour-by-hour series
//! (of every country or of one), all read from Firestore.

use analytics::report::{self, BucketReport};
use chrono::NaiveDate;
use store::client::int_field;
use store::schema::{self, field as f, is_hour_bucket, path, read_counters, Totals, LIFETIME};
use store::{Store, StoreError};

/// What the overview shows, as the page receives it (money in cents).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Overview {
    /// The bucket shown: `lifetime` or a day (YYYY-MM-DD, UTC).
    pub bucket: String,
    /// The country of the hourly series (ISO code), if one was picked.
    pub country: Option<String>,
    pub current: BucketReport,
    /// The day before the one shown (none for lifetime): its headline figures only.
    pub previous: Option<BucketReport>,
    /// Lifetime's headline figures (active sessions); all of them when it is the bucket
    /// shown.
    pub lifetime: BucketReport,
    /// Every day with derived metrics, oldest first.
    pub days: Vec<DayPoint>,
    /// The last [`HOURS`] hours with events (by event time), oldest first, from the hour
    /// buckets' headline counters: every country's, or the picked country's.
    pub hours: Vec<DayPoint>,
    /// When these figures were read (RFC 3339).
    pub read_at: String,
}

/// Hours in the hourly series.
pub const HOURS: usize = 48;

/// One day (or hour, `YYYY-MM-DDTHH`) of a series.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DayPoint {
    pub day: String,
    pub sessions: i64,
    pub orders: i64,
    pub paid_cents: i64,
}

/// A bucket the page may ask for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Bucket {
    Lifetime,
    Day(NaiveDate),
}

impl Bucket {
    /// `lifetime`, empty (lifetime) or a day as YYYY-MM-DD; anything else is refused with
    /// what was expected.
    pub fn parse(s: &str) -> Result<Bucket, String> {
        match s {
            "" | LIFETIME => Ok(Bucket::Lifetime),
            day => NaiveDate::parse_from_str(day, "%Y-%m-%d")
                .map(Bucket::Day)
                .map_err(|_| format!("not a day (YYYY-MM-DD) nor `lifetime`: {day:?}")),
        }
    }

    fn id(&self) -> String {
        match self {
            Bucket::Lifetime => LIFETIME.to_owned(),
            Bucket::Day(d) => d.format("%Y-%m-%d").to_string(),
        }
    }

    /// The bucket the tiles compare with: the day before (lifetime has none).
    fn previous(&self) -> Option<Bucket> {
        match self {
            Bucket::Lifetime => None,
            Bucket::Day(d) => d.pred_opt().map(Bucket::Day),
        }
    }
}

/// What a page shows: a bucket, and the country of its hourly series (all if none).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct View {
    pub bucket: Bucket,
    pub country: Option<String>,
}

impl View {
    /// A bucket ([`Bucket::parse`]) and a country: empty (every country) or an ISO 3166
    /// alpha-2 code; anything else is refused with what was expected.
    pub fn parse(day: &str, country: &str) -> Result<View, String> {
        let country = match country {
            "" => None,
            cc if cc.len() == 2 && cc.bytes().all(|b| b.is_ascii_uppercase()) => {
                Some(cc.to_owned())
            }
            cc => return Err(format!("not a country code (two capital letters): {cc:?}")),
        };
        Ok(View {
            bucket: Bucket::parse(day)?,
            country,
        })
    }
}

pub async fn read(
    store: &Store,
    view: &View,
    top: usize,
    currency: &str,
) -> Result<Overview, StoreError> {
    let bucket = &view.bucket;
    // The bucket shown is read whole; lifetime (when a day is shown) and the day before only
    // for their headline figures. Every read at once: the page waits for the slowest, not
    // for their sum.
    let id = bucket.id();
    let whole = report::bucket(store, &id, "the bucket picked", top, currency);
    let headline = |b: Option<Bucket>, why: &'static str| async move {
        match b {
            Some(b) => report::headline(store, &b.id(), why, currency)
                .await
                .map(Some),
            None => Ok(None),
        }
    };
    let other_lifetime = (*bucket != Bucket::Lifetime).then_some(Bucket::Lifetime);
    let (current, lifetime, previous, days, hours) = futures::try_join!(
        whole,
        headline(other_lifetime, "every day"),
        headline(bucket.previous(), "the day before"),
        report::days(store),
        hours(store, view.country.as_deref()),
    )?;
    let lifetime = lifetime.unwrap_or_else(|| current.clone());
    let days = days
        .into_iter()
        .map(|(day, doc)| DayPoint {
            day,
            sessions: int_field(&doc, f::SESSIONS_STARTED).unwrap_or(0),
            orders: int_field(&doc, f::ORDERS_FIGURE).unwrap_or(0),
            paid_cents: int_field(&doc, f::METRIC_PAID_CENTS).unwrap_or(0),
        })
        .collect();
    Ok(Overview {
        bucket: bucket.id(),
        country: view.country.clone(),
        current,
        previous,
        lifetime,
        days,
        hours,
        read_at: chrono::Utc::now().to_rfc3339(),
    })
}

/// The last [`HOURS`] hour buckets (their statistics documents hold only shards, so they are
/// listed with the missing parents), each with its headline counters: every country's, or
/// `country`'s.
async fn hours(store: &Store, country: Option<&str>) -> Result<Vec<DayPoint>, StoreError> {
    let mut ids: Vec<String> = store
        .list_paths(path::STATISTICS)
        .await?
        .iter()
        .map(|p| path::id_of(p))
        .filter(|b| is_hour_bucket(b))
        .map(str::to_owned)
        .collect();
    ids.sort();
    let recent = &ids[ids.len().saturating_sub(HOURS)..];
    let paths: Vec<String> = recent.iter().map(|h| path::statistics(h)).collect();
    let counters =
        futures::future::try_join_all(paths.iter().map(|p| read_counters(store, p))).await?;
    Ok(recent
        .iter()
        .zip(counters)
        .map(|(hour, doc)| {
            let t = match country {
                None => Totals::read(doc.as_ref()),
                Some(cc) => Totals::read(schema::in_country(doc.as_ref(), cc).as_ref()),
            };
            DayPoint {
                day: hour.clone(),
                sessions: t.sessions_started,
                orders: t.orders,
                paid_cents: t.paid_cents,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_lifetime_or_a_day_and_anything_else_is_refused() {
        assert_eq!(Bucket::parse(""), Ok(Bucket::Lifetime));
        assert_eq!(Bucket::parse("lifetime"), Ok(Bucket::Lifetime));
        let day = Bucket::parse("2026-03-01").expect("a day");
        assert_eq!(day.id(), "2026-03-01");
        assert_eq!(day.previous().map(|b| b.id()), Some("2026-02-28".into()));
        assert_eq!(Bucket::Lifetime.previous(), None);
        for bad in ["2026-13-01", "yesterday", "../metrics", "2026-1-1x"] {
            let e = Bucket::parse(bad).expect_err(bad);
            assert!(e.contains("YYYY-MM-DD"), "{e}");
        }
    }

    #[test]
    fn a_view_is_a_bucket_and_a_country_code_or_every_country() {
        let v = View::parse("2026-03-01", "DE").expect("a view");
        assert_eq!(v.country.as_deref(), Some("DE"));
        assert_eq!(View::parse("", "").expect("lifetime").country, None);
        for bad in ["de", "DEU", "D", "../", "<b>"] {
            let e = View::parse("", bad).expect_err(bad);
            assert!(e.contains("two capital letters"), "{e}");
        }
        assert!(View::parse("yesterday", "DE").is_err());
    }
}
