//! The totals of this instance's counter shards, so that a flush can replace a shard whole
//! instead of incrementing its fields one transform at a time.
//!
//! The emulator spends three to four times as much on each field a write names (every
//! increment is a field path it parses) as on each field of a document written whole (`make
//! probe-emulator`; README, "Session 15"). A shard has one writer, the owner of the partition
//! it is named after (see [`store::schema::shard_counters`]), so that writer can know its
//! totals: it reads a shard once, when it first writes it, and adds each flush's increments.
//! A shard whose flush changes at least a third of its fields is then written whole; the
//! others keep their increments. Both give the same document.
//!
//! Why the totals are exact, which whole writes need (an increment is right whatever the
//! document holds, a replace only if the totals are):
//! - Every flush that writes shards of writer `w` also writes the offset marker of partition
//!   `w`, guarded by its update time ([`crate::coordinator`]), as every marker a flush
//!   advances is. Whoever writes `w`'s shards therefore owns partition `w` when its commit
//!   lands: a former owner's commit fails once the new owner has written the marker, and the
//!   new owner's first commit fails if the former owner's landed after the new owner read
//!   the marker.
//! - A new owner reads the marker, then applies every journalled flush whose manifest has
//!   landed (`apply_landed_flushes`), and only then reads the shards (here, at its first
//!   flush): everything the former owner wrote under the marker it read is in them.
//! - The totals are dropped with any failed flush, at every rebalance and at every reset,
//!   and built again from the shards. The flush that updates them owns them until it lands.

use std::collections::{BTreeMap, HashMap};

use tokio_util::sync::CancellationToken;

use store::retry::with_retry;
use store::schema::{self, path};
use store::{DocDelta, Store, StoreError};

/// A shard is written whole once a flush changes at least 1/`WHOLE_AT` of its counters: a
/// field written whole costs the emulator about a third of an increment, whose field path it
/// parses with a regular expression (`make probe-emulator`, warm rounds: 3.1-3.7 against
/// 10.3-12.2 µs per top-level counter, 4.2-5.2 against 16-19 µs per counter of a map entry).
/// At 5,000 events/s those paths took a third of the emulator's CPU with the threshold at a
/// half.
const WHOLE_AT: usize = 3;
/// Totals of a shard not written for this many flushes are forgotten (an hour's, a day's
/// once it is over); writing it again reads it again.
const FORGET_AFTER_FLUSHES: u64 = 600;

/// Whether a shard of `total` counters, `changed` of them by this flush, costs the emulator
/// less written whole than incremented.
fn whole_is_cheaper(changed: usize, total: usize) -> bool {
    changed > 0 && changed * WHOLE_AT >= total
}

/// The totals of the shards of one writer.
#[derive(Debug)]
pub struct Totals {
    writer: i32,
    flushes: u64,
    shards: HashMap<String, Held>,
}

#[derive(Debug)]
struct Held {
    /// `None`: the shard holds more than counters, so it is only ever incremented.
    counters: Option<BTreeMap<String, i64>>,
    /// The flush that last wrote it.
    used: u64,
}

/// What [`Totals::prepare`] did to a flush, for metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Prepared {
    /// Shards read to learn their totals.
    pub read: usize,
    /// Shard deltas turned into whole writes.
    pub whole: usize,
}

impl Totals {
    pub fn new(writer: i32) -> Self {
        Totals {
            writer,
            flushes: 0,
            shards: HashMap::new(),
        }
    }

    pub fn writer(&self) -> i32 {
        self.writer
    }

    fn is_mine(&self, shard: &str) -> bool {
        path::writer_of_shard(shard) == Some(self.writer)
    }

    /// Add the increments of this writer's shards in `deltas` to the totals (reading the
    /// shards not held yet), and turn those cheaper written whole ([`whole_is_cheaper`]) into
    /// whole writes. The caller drops `self` if the flush does not land.
    pub async fn prepare(
        &mut self,
        store: &Store,
        deltas: &mut BTreeMap<String, DocDelta>,
        stop: &CancellationToken,
    ) -> Result<Prepared, StoreError> {
        self.flushes += 1;
        let mine: Vec<String> = deltas
            .iter()
            .filter(|(p, d)| {
                self.is_mine(p) && !d.whole && d.sets.is_empty() && d.unions.is_empty()
            })
            .map(|(p, _)| p.clone())
            .collect();
        let missing: Vec<String> = mine
            .iter()
            .filter(|p| !self.shards.contains_key(*p))
            .cloned()
            .collect();
        let mut done = Prepared {
            read: missing.len(),
            whole: 0,
        };
        if !missing.is_empty() {
            let found = with_retry("read shards", stop, || store.get_many(&missing, &[])).await?;
            for p in missing {
                let counters = match found.get(&p) {
                    Some(doc) => schema::counters_of(&doc.fields),
                    None => Some(BTreeMap::new()),
                };
                self.shards.insert(p, Held { counters, used: 0 });
            }
        }
        for p in mine {
            let (Some(held), Some(delta)) = (self.shards.get_mut(&p), deltas.get_mut(&p)) else {
                continue;
            };
            held.used = self.flushes;
            let Some(counters) = held.counters.as_mut() else {
                continue;
            };
            let mut changed = 0;
            for (field, by) in delta.increments.iter().filter(|(_, by)| **by != 0) {
                *counters.entry(field.clone()).or_default() += by;
                changed += 1;
            }
            if !whole_is_cheaper(changed, counters.len()) {
                continue;
            }
            match schema::counter_fields(counters) {
                Some(fields) => {
                    *delta = DocDelta {
                        sets: fields,
                        whole: true,
                        ..DocDelta::default()
                    };
                    done.whole += 1;
                }
                // A field path of another form (never written by this service): increments
                // only, from now on.
                None => held.counters = None,
            }
        }
        let now = self.flushes;
        self.shards
            .retain(|_, h| now.saturating_sub(h.used) <= FORGET_AFTER_FLUSHES);
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_is_written_whole_from_a_third_of_its_counters_changed() {
        assert!(!whole_is_cheaper(0, 0), "nothing changed, nothing to write");
        assert!(!whole_is_cheaper(0, 10));
        assert!(whole_is_cheaper(1, 1));
        assert!(whole_is_cheaper(1, 3));
        assert!(!whole_is_cheaper(1, 4));
        assert!(whole_is_cheaper(100, 300));
        assert!(!whole_is_cheaper(99, 300));
    }

    #[test]
    fn only_the_shards_of_its_writer_are_its_own() {
        let t = Totals::new(3);
        let s = path::statistics("lifetime");
        assert!(t.is_mine(&path::counter_shard(&s, 3, 0)));
        assert!(t.is_mine(&path::counter_shard(&s, 3, 2)));
        assert!(!t.is_mine(&path::counter_shard(&s, 13, 0)));
        assert!(!t.is_mine(&path::counter_shard(&s, 0, 3)));
        assert!(!t.is_mine(&s));
        assert!(!t.is_mine("sessions_history/3-0"));
    }
}
