//! The overview's figures: a bucket (a day or lifetime), the bucket before it for the tiles'
//! changes, lifetime (active sessions), and the day-by-day series, all read from Firestore.

use analytics::report::{self, BucketReport};
use chrono::NaiveDate;
use store::client::int_field;
use store::schema::{field as f, is_hour_bucket, path, read_counters, Totals, LIFETIME};
use store::{Store, StoreError};

/// What the overview shows, as the page receives it (money in cents).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Overview {
    /// The bucket shown: `lifetime` or a day (YYYY-MM-DD, UTC).
    pub bucket: String,
    pub current: BucketReport,
    /// The day before the one shown (none for lifetime).
    pub previous: Option<BucketReport>,
    pub lifetime: BucketReport,
    /// Every day with derived metrics, oldest first.
    pub days: Vec<DayPoint>,
    /// The last [`HOURS`] hours with events (by event time), oldest first, from the hour
    /// buckets' headline counters.
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
#[derive(Debug, Clone, PartialEq, Eq)]
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

pub async fn read(
    store: &Store,
    bucket: &Bucket,
    top: usize,
    currency: &str,
) -> Result<Overview, StoreError> {
    // Every read at once: the page waits for the slowest, not for their sum.
    let day = |b: Bucket, why: &'static str| async move {
        match b {
            Bucket::Lifetime => Ok(None),
            d => report::bucket(store, &d.id(), why, top, currency)
                .await
                .map(Some),
        }
    };
    let (lifetime, current, previous, days, hours) = futures::try_join!(
        report::bucket(store, LIFETIME, "every day", top, currency),
        day(bucket.clone(), "the day picked"),
        day(
            bucket.previous().unwrap_or(Bucket::Lifetime),
            "the day before"
        ),
        report::days(store),
        hours(store),
    )?;
    let current = current.unwrap_or_else(|| lifetime.clone());
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
        current,
        previous,
        lifetime,
        days,
        hours,
        read_at: chrono::Utc::now().to_rfc3339(),
    })
}

/// The last [`HOURS`] hour buckets (their statistics documents hold only shards, so they are
/// listed with the missing parents), each with its headline counters.
async fn hours(store: &Store) -> Result<Vec<DayPoint>, StoreError> {
    let empty = || firestore::gcloud_sdk::google::firestore::v1::DocumentMask {
        field_paths: Vec::new(),
    };
    let mut ids = Vec::new();
    let mut token = String::new();
    loop {
        let page = store
            .list_page(path::STATISTICS, Some(empty()), 1000, &token, true)
            .await?;
        ids.extend(
            page.documents
                .iter()
                .map(|d| path::id_of(&d.name).to_owned())
                .filter(|b| is_hour_bucket(b)),
        );
        match page.next {
            Some(next) => token = next,
            None => break,
        }
    }
    ids.sort();
    let recent = &ids[ids.len().saturating_sub(HOURS)..];
    let paths: Vec<String> = recent.iter().map(|h| path::statistics(h)).collect();
    let counters =
        futures::future::try_join_all(paths.iter().map(|p| read_counters(store, p))).await?;
    Ok(recent
        .iter()
        .zip(counters)
        .map(|(hour, doc)| {
            let t = Totals::read(doc.as_ref());
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
}
