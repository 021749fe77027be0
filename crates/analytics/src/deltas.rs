//! What a batch of events changes in Firestore, before any I/O: per document, counters to
//! increment, fields to set and array elements to add. Deltas merge associatively, so a
//! batch can be split or combined freely; sets carry values that are the same whichever
//! event writes them (names, a session's start), so their order does not matter.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A Firestore field value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FieldValue {
    Int(i64),
    Double(f64),
    Str(String),
    Time(DateTime<Utc>),
    Map(BTreeMap<String, FieldValue>),
    Array(Vec<FieldValue>),
}

impl From<&str> for FieldValue {
    fn from(s: &str) -> Self {
        FieldValue::Str(s.to_owned())
    }
}

impl From<String> for FieldValue {
    fn from(s: String) -> Self {
        FieldValue::Str(s)
    }
}

impl From<i64> for FieldValue {
    fn from(n: i64) -> Self {
        FieldValue::Int(n)
    }
}

impl From<DateTime<Utc>> for FieldValue {
    fn from(t: DateTime<Utc>) -> Self {
        FieldValue::Time(t)
    }
}

/// Changes to one document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DocDelta {
    /// Counter increments (integer; money in minor units).
    pub increments: BTreeMap<String, i64>,
    /// Fields set to a value (upsert; other fields untouched).
    pub sets: BTreeMap<String, FieldValue>,
    /// Elements added to array fields unless already present.
    pub unions: BTreeMap<String, Vec<FieldValue>>,
}

impl DocDelta {
    pub fn merge(&mut self, other: DocDelta) {
        for (k, v) in other.increments {
            *self.increments.entry(k).or_default() += v;
        }
        self.sets.extend(other.sets);
        for (k, vs) in other.unions {
            let mine = self.unions.entry(k).or_default();
            for v in vs {
                if !mine.contains(&v) {
                    mine.push(v);
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.increments.values().all(|v| *v == 0) && self.sets.is_empty() && self.unions.is_empty()
    }
}

/// Changes to many documents, keyed by document path (`collection/id/...`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Deltas {
    pub docs: BTreeMap<String, DocDelta>,
}

impl Deltas {
    pub fn doc(&mut self, path: impl Into<String>) -> &mut DocDelta {
        self.docs.entry(path.into()).or_default()
    }

    pub fn inc(&mut self, path: &str, field: &str, by: i64) {
        *self
            .doc(path)
            .increments
            .entry(field.to_owned())
            .or_default() += by;
    }

    pub fn set(&mut self, path: &str, field: &str, value: impl Into<FieldValue>) {
        self.doc(path).sets.insert(field.to_owned(), value.into());
    }

    pub fn union(&mut self, path: &str, field: &str, value: FieldValue) {
        let v = self.doc(path).unions.entry(field.to_owned()).or_default();
        if !v.contains(&value) {
            v.push(value);
        }
    }

    pub fn merge(&mut self, other: Deltas) {
        for (path, delta) in other.docs {
            match self.docs.get_mut(&path) {
                Some(mine) => mine.merge(delta),
                None => {
                    self.docs.insert(path, delta);
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }
}
