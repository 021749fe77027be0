//! What a batch of events changes in Firestore, before any I/O: per document, counters to
//! increment, fields to set and array elements to add. Deltas merge associatively, so a
//! batch can be split or combined freely. A later set wins: sets carry either values that
//! are the same whichever event writes them (names, a session's start) or a session's state
//! after its events (merged in their order).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Field transforms Firestore applies to one document in one commit, at most.
pub const MAX_TRANSFORMS_PER_WRITE: usize = 500;

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

impl FieldValue {
    /// A map value from `(key, value)` pairs.
    pub fn map<'a>(entries: impl IntoIterator<Item = (&'a str, FieldValue)>) -> FieldValue {
        FieldValue::Map(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        )
    }
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

/// A map looked up for every counter of every event: hashed keys (paths and field paths are
/// long, with long shared prefixes, which an ordered map compares again and again).
pub type HashMap<V> = hashbrown::HashMap<String, V>;

/// Changes to one document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DocDelta {
    /// Counter increments (integer; money in minor units).
    pub increments: HashMap<i64>,
    /// Fields set to a value (upsert; other fields untouched).
    pub sets: BTreeMap<String, FieldValue>,
    /// Elements added to array fields unless already present.
    pub unions: BTreeMap<String, Vec<FieldValue>>,
    /// The delta is the whole document: it is replaced, not updated, and names no field path
    /// (see `Store::delta_write`). `sets` are top-level fields (maps nested), `unions` are
    /// written as the arrays they hold and `increments` as their values.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub whole: bool,
}

impl DocDelta {
    /// Add `other`'s changes, made after these. A `whole` delta replaces what it is merged
    /// into; nothing is merged into a `whole` one (it is made last, for one write).
    pub fn merge(&mut self, other: DocDelta) {
        debug_assert!(!self.whole || other.whole, "merged into a whole document");
        if other.whole {
            *self = other;
            return;
        }
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

    /// The fields of the whole document this delta is (see [`DocDelta::whole`]).
    pub fn document(&self) -> BTreeMap<String, FieldValue> {
        let mut fields = self.sets.clone();
        fields.extend(
            self.unions
                .iter()
                .map(|(k, vs)| (k.clone(), FieldValue::Array(vs.clone()))),
        );
        fields.extend(
            self.increments
                .iter()
                .map(|(k, v)| (k.clone(), FieldValue::Int(*v))),
        );
        fields
    }

    pub fn is_empty(&self) -> bool {
        !self.whole
            && self.increments.values().all(|v| *v == 0)
            && self.sets.is_empty()
            && self.unions.is_empty()
    }

    /// Field transforms it takes to write: one per counter and per array field (Firestore
    /// takes at most [`MAX_TRANSFORMS_PER_WRITE`] per document in a commit); none for a
    /// whole document.
    pub fn transforms(&self) -> usize {
        if self.whole {
            return 0;
        }
        self.increments.values().filter(|v| **v != 0).count() + self.unions.len()
    }

    /// Split into deltas of at most `max` transforms each, to be written in separate
    /// commits: the increments are spread, sets and array fields go with the first.
    pub fn split_transforms(self, max: usize) -> Vec<DocDelta> {
        let max = max.max(1);
        if self.transforms() <= max {
            return vec![self];
        }
        let DocDelta {
            increments,
            sets,
            unions,
            whole,
        } = self;
        let mut out = vec![DocDelta {
            increments: HashMap::default(),
            sets,
            unions,
            whole,
        }];
        for (field, by) in increments.into_iter().filter(|(_, v)| *v != 0) {
            if out.last().is_none_or(|d| d.transforms() >= max) {
                out.push(DocDelta::default());
            }
            if let Some(d) = out.last_mut() {
                d.increments.insert(field, by);
            }
        }
        out
    }

    /// Serialized size in the journal (JSON), an upper bound of its size in Firestore.
    pub fn journal_bytes(&self) -> usize {
        json_bytes(self)
    }

    /// Add `by` to the counter `field`.
    pub fn inc(&mut self, field: &str, by: i64) {
        *self.increments.entry_ref(field).or_default() += by;
    }

    /// Set `field` to `value` (a later set wins).
    pub fn set(&mut self, field: &str, value: impl Into<FieldValue>) {
        let value = value.into();
        match self.sets.get_mut(field) {
            Some(v) => *v = value,
            None => {
                self.sets.insert(field.to_owned(), value);
            }
        }
    }

    /// Add `value` to the array `field`, a union in Firestore. The caller adds an element
    /// once: a session's elements carry their event's id, and events are deduplicated
    /// before they are counted (a check here made a session of n events cost n² compares).
    /// [`DocDelta::merge`] keeps the union of two deltas.
    pub fn union(&mut self, field: &str, value: FieldValue) {
        match self.unions.get_mut(field) {
            Some(v) => v.push(value),
            None => {
                self.unions.insert(field.to_owned(), vec![value]);
            }
        }
    }

    /// Split into deltas of at most about `max_bytes` each (journalled) that applied in any
    /// order have the same effect: increments and sets go with the first, the array
    /// elements are spread over as many as needed. A single element larger than
    /// `max_bytes` gets a delta of its own.
    /// A whole document is never split.
    pub fn split(self, max_bytes: usize) -> Vec<DocDelta> {
        if self.whole || self.journal_bytes() <= max_bytes {
            return vec![self];
        }
        let DocDelta {
            increments,
            sets,
            unions,
            whole,
        } = self;
        let mut first = DocDelta {
            increments,
            sets,
            unions: BTreeMap::new(),
            whole,
        };
        let mut out = Vec::new();
        let mut size = first.journal_bytes();
        for (field, values) in unions {
            for v in values {
                let add = json_bytes(&v) + field.len() + 8;
                if size + add > max_bytes && !first.is_empty() {
                    out.push(std::mem::take(&mut first));
                    size = 2;
                }
                size += add;
                first.unions.entry(field.clone()).or_default().push(v);
            }
        }
        if !first.is_empty() {
            out.push(first);
        }
        out
    }
}

/// The length of `value` serialized as JSON, counted without building the text (sizes are
/// taken of every delta a flush writes and of every detail element of a session).
pub fn json_bytes(value: &impl Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, value).map_or(0, |()| count.0)
}

/// Changes to many documents, keyed by document path (`collection/id/...`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Deltas {
    pub docs: HashMap<DocDelta>,
}

impl Deltas {
    /// The delta of `path` (its key allocated only when new).
    pub fn doc(&mut self, path: &str) -> &mut DocDelta {
        self.docs.entry_ref(path).or_default()
    }

    pub fn inc(&mut self, path: &str, field: &str, by: i64) {
        self.doc(path).inc(field, by);
    }

    pub fn set(&mut self, path: &str, field: &str, value: impl Into<FieldValue>) {
        self.doc(path).set(field, value);
    }

    /// See [`DocDelta::union`].
    pub fn union(&mut self, path: &str, field: &str, value: FieldValue) {
        self.doc(path).union(field, value);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_delta_splits_into_bounded_parts_with_the_same_content() {
        let mut d = DocDelta::default();
        d.increments.insert("n".into(), 3);
        d.sets.insert("s".into(), FieldValue::from("x"));
        for i in 0..5000 {
            d.unions
                .entry(format!("a{}", i % 3))
                .or_default()
                .push(FieldValue::Str(format!("{i:0>60}")));
        }
        let whole = d.clone();
        let parts = d.split(20_000);
        assert!(parts.len() > 10, "{}", parts.len());
        for p in &parts {
            assert!(p.journal_bytes() <= 20_000, "{}", p.journal_bytes());
        }
        let mut merged = DocDelta::default();
        for p in parts {
            merged.merge(p);
        }
        assert_eq!(merged, whole);
    }

    #[test]
    fn a_delta_with_many_counters_splits_into_writes_within_the_transform_limit() {
        let mut d = DocDelta::default();
        d.sets.insert("s".into(), FieldValue::from("x"));
        d.unions.insert("a".into(), vec![FieldValue::from("y")]);
        for i in 0..1200 {
            d.increments.insert(format!("m.`k{i}`.n"), i + 1);
        }
        d.increments.insert("zero".into(), 0);
        let whole = d.clone();
        let parts = d.split_transforms(MAX_TRANSFORMS_PER_WRITE);
        assert_eq!(parts.len(), 3);
        assert!(parts
            .iter()
            .all(|p| p.transforms() <= MAX_TRANSFORMS_PER_WRITE));
        let mut merged = DocDelta::default();
        for p in parts {
            merged.merge(p);
        }
        let mut want = whole;
        want.increments.remove("zero");
        merged.increments.retain(|_, v| *v != 0);
        assert_eq!(merged, want);
    }

    #[test]
    fn json_bytes_is_the_length_of_the_json_text() {
        let mut d = DocDelta::default();
        d.inc("n", 3);
        d.sets
            .insert("s".into(), FieldValue::from("a \"quoted\" \u{e9}\n"));
        d.unions.insert(
            "a".into(),
            vec![FieldValue::Double(0.1), FieldValue::Int(-7)],
        );
        let text = serde_json::to_string(&d).expect("a delta serializes");
        assert_eq!(d.journal_bytes(), text.len());
        assert_eq!(json_bytes(&FieldValue::from("x")), r#"{"Str":"x"}"#.len());
    }

    #[test]
    fn a_small_delta_is_not_split() {
        let mut d = DocDelta::default();
        d.increments.insert("n".into(), 1);
        assert_eq!(d.clone().split(1000), vec![d]);
    }
}
