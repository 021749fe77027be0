//! A batch's counters keyed by what they count (bucket, country, entity, field), not by
//! their document and field paths. An event adds to a dozen or more counters: with paths as
//! keys each one was a path formatted, allocated, hashed whole and compared whole (a third
//! of analytics' CPU while draining). Here documents and fields are numbered by short keys
//! borrowed from the event, a counter is a pair of numbers, and each path is spelled once
//! per batch, by [`Tally::spell_into`].

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Timelike, Utc};
use hashbrown::{Equivalent, HashMap};

use events::CountryCode;
use store::schema::{day_bucket, field as f, hour_bucket, path, LIFETIME};
use store::Deltas;

/// The bucket of a statistics document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    Lifetime,
    Day(NaiveDate),
    Hour(NaiveDate, u32),
}

impl Bucket {
    pub fn day(t: DateTime<Utc>) -> Bucket {
        Bucket::Day(t.date_naive())
    }

    pub fn hour(t: DateTime<Utc>) -> Bucket {
        Bucket::Hour(t.date_naive(), t.hour())
    }

    /// Its name in document paths: [`LIFETIME`], [`day_bucket`] or [`hour_bucket`].
    pub fn name(self) -> String {
        let at = |d: NaiveDate, h: u32| {
            (d.and_time(NaiveTime::MIN) + TimeDelta::hours(h.into())).and_utc()
        };
        match self {
            Bucket::Lifetime => LIFETIME.to_owned(),
            Bucket::Day(d) => day_bucket(at(d, 0)),
            Bucket::Hour(d, h) => hour_bucket(at(d, h)),
        }
    }
}

/// A statistics document: `statistics/{bucket}`, or `countries/{cc}/statistics/{bucket}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Doc {
    pub bucket: Bucket,
    pub country: Option<CountryCode>,
}

impl Doc {
    pub fn path(self) -> String {
        let bucket = self.bucket.name();
        match self.country {
            None => path::statistics(&bucket),
            Some(cc) => path::country_statistics(cc.as_str(), &bucket),
        }
    }
}

/// A counter of a document, borrowing its map key from the event that adds to it.
#[derive(Debug, Clone, Copy, Hash)]
pub enum Field<'a> {
    /// A top-level counter.
    Top(&'static str),
    /// `` {map}.`{key}`.{field} `` ([`f::nested`]).
    Nested {
        map: &'static str,
        key: &'a str,
        field: &'static str,
    },
}

/// [`Field`], owned: the key a field is numbered under. Hashes as its [`Field`] does (same
/// variants, same fields in the same order; a `Box<str>` hashes as its `str`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum OwnedField {
    Top(&'static str),
    Nested {
        map: &'static str,
        key: Box<str>,
        field: &'static str,
    },
}

impl OwnedField {
    fn path(&self) -> String {
        match self {
            OwnedField::Top(name) => (*name).to_owned(),
            OwnedField::Nested { map, key, field } => f::nested(map, key, field),
        }
    }
}

/// [`Field`] borrowed; hashes as [`OwnedField`] does.
impl Equivalent<OwnedField> for Field<'_> {
    fn equivalent(&self, owned: &OwnedField) -> bool {
        match (*self, owned) {
            (Field::Top(a), OwnedField::Top(b)) => a == *b,
            (
                Field::Nested { map, key, field },
                OwnedField::Nested {
                    map: m,
                    key: k,
                    field: f,
                },
            ) => map == *m && field == *f && key == &**k,
            _ => false,
        }
    }
}

/// A document of the batch, by number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocId(u32);

/// A counter's field, by number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldId(u32);

/// Counter increments of a batch (see the module's documentation). Documents and fields are
/// numbered as they come, so a counter is a pair of numbers: an event looks up its few
/// documents and fields once each, then adds to counters in a table of 16-byte entries
/// (a batch has some 10^5 counters: with their paths as keys, every lookup missed the cache).
#[derive(Debug, Default)]
pub struct Tally {
    docs: HashMap<Doc, u32>,
    fields: HashMap<OwnedField, u32>,
    counters: HashMap<u64, i64>,
}

impl Tally {
    /// The number of `doc`.
    pub fn doc(&mut self, doc: Doc) -> DocId {
        let next = self.docs.len() as u32;
        DocId(*self.docs.entry(doc).or_insert(next))
    }

    /// The number of `field`; its key is allocated only when new.
    pub fn field(&mut self, field: Field<'_>) -> FieldId {
        if let Some(n) = self.fields.get(&field) {
            return FieldId(*n);
        }
        let n = self.fields.len() as u32;
        let owned = match field {
            Field::Top(name) => OwnedField::Top(name),
            Field::Nested { map, key, field } => OwnedField::Nested {
                map,
                key: key.into(),
                field,
            },
        };
        self.fields.insert(owned, n);
        FieldId(n)
    }

    /// Add `by` to the counter `field` of `doc`.
    pub fn add(&mut self, doc: DocId, field: FieldId, by: i64) {
        *self
            .counters
            .entry(u64::from(doc.0) << 32 | u64::from(field.0))
            .or_default() += by;
    }

    /// Add every counter to `out`, under its document and field paths (each document's and
    /// each field's path spelled once).
    pub fn spell_into(self, out: &mut Deltas) {
        let mut docs: Vec<Option<Doc>> = vec![None; self.docs.len()];
        for (doc, n) in self.docs {
            docs[n as usize] = Some(doc);
        }
        let mut fields: Vec<String> = vec![String::new(); self.fields.len()];
        for (field, n) in &self.fields {
            fields[*n as usize] = field.path();
        }
        let mut by_doc: Vec<Vec<(u32, i64)>> = vec![Vec::new(); docs.len()];
        for (key, by) in self.counters {
            by_doc[(key >> 32) as usize].push((key as u32, by));
        }
        for (doc, counters) in docs.into_iter().zip(by_doc) {
            let (Some(doc), false) = (doc, counters.is_empty()) else {
                continue;
            };
            let delta = out.doc(&doc.path());
            for (field, by) in counters {
                delta.inc(&fields[field as usize], by);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::schema::field as f;

    fn inc(tally: &mut Tally, doc: Doc, field: Field<'_>, by: i64) {
        let (doc, field) = (tally.doc(doc), tally.field(field));
        tally.add(doc, field, by);
    }

    fn cc(s: &str) -> CountryCode {
        CountryCode::try_from(s.to_owned()).expect("a country code")
    }

    #[test]
    fn counters_add_up_under_the_paths_they_are_spelled_with() {
        let t: DateTime<Utc> = "2026-03-09T23:59:59Z".parse().expect("a time");
        let mut tally = Tally::default();
        let hour = Doc {
            bucket: Bucket::hour(t),
            country: None,
        };
        let day_de = Doc {
            bucket: Bucket::day(t),
            country: Some(cc("DE")),
        };
        let id = String::from("p`1");
        for _ in 0..3 {
            inc(&mut tally, hour, Field::Top(f::PURCHASES), 2);
            inc(
                &mut tally,
                day_de,
                Field::Nested {
                    map: f::PRODUCTS,
                    key: &id,
                    field: f::VIEWS,
                },
                1,
            );
        }
        inc(
            &mut tally,
            Doc {
                bucket: Bucket::Lifetime,
                country: None,
            },
            Field::Top(f::PURCHASES),
            5,
        );
        assert_eq!(tally.counters.len(), 3, "one key per counter");
        assert_eq!((tally.docs.len(), tally.fields.len()), (3, 2));

        let mut want = Deltas::default();
        want.inc(&path::statistics(&hour_bucket(t)), f::PURCHASES, 6);
        want.inc(
            &path::country_statistics("DE", &day_bucket(t)),
            &f::nested(f::PRODUCTS, "p`1", f::VIEWS),
            3,
        );
        want.inc(&path::statistics(LIFETIME), f::PURCHASES, 5);
        let mut got = Deltas::default();
        tally.spell_into(&mut got);
        assert_eq!(got, want);
    }

    #[test]
    fn buckets_are_named_as_the_schema_names_them() {
        for t in [
            "2026-03-09T00:00:00Z",
            "2026-12-31T23:30:00Z",
            "1999-01-01T07:05:00Z",
        ] {
            let t: DateTime<Utc> = t.parse().expect("a time");
            assert_eq!(Bucket::day(t).name(), day_bucket(t));
            assert_eq!(Bucket::hour(t).name(), hour_bucket(t));
            assert_eq!(Bucket::Lifetime.name(), LIFETIME);
        }
    }
}
