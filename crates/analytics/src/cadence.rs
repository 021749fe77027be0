//! When to flush, when to hold consumption back and which partitions' sessions a flush
//! checkpoints: pure decisions over counts and clocks, so the policy is tested without Kafka
//! or Firestore.

use std::collections::BTreeSet;
use std::time::Duration;

/// The flush policy of the pipeline.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Deltas are coalesced in memory this long, so no document is written more often.
    pub flush_interval: Duration,
    /// Behind, flushes wait for half the lag, at most this long (or for
    /// `max_records_per_flush` records).
    pub catch_up_interval: Duration,
    /// At most this many records wait for a flush; beyond, consumption is paused until a
    /// flush takes them (bounds memory and commit size without flushing more often).
    pub max_records_per_flush: u64,
}

impl Policy {
    /// With this many records waiting for a flush, consumption is held back.
    pub fn holds_back(&self, pending: u64) -> bool {
        pending >= self.max_records_per_flush
    }
}

/// What decides whether a flush is due.
#[derive(Debug, Clone, Copy)]
pub struct Cadence {
    /// Records dispatched since the last flush.
    pub pending: u64,
    /// Time since the last flush started.
    pub since_start: Duration,
    /// Age of the newest of those records (from its Kafka timestamp).
    pub newest_age_ms: Option<i64>,
    /// The last poll found nothing to consume.
    pub idle: bool,
}

impl Cadence {
    /// A flush is due once the interval has passed since the last one started (and that one
    /// has landed: one is in flight at a time). A flush writes a document at most once, so no
    /// document is written more than once per interval sustained, whatever the input rate;
    /// and each shared document has one writer (see `store::schema::shard_counters`).
    ///
    /// Counting from the last landing instead would space two writes of a document by the
    /// whole interval, but every flush would then also wait out the previous one's duration:
    /// at 5,000 events/s on this machine flushes grew from 0.6 s to 1.4 s and freshness p99
    /// from 2.3 s to 5 s (bench-analytics, 2026-12-06).
    ///
    /// Behind (the newest record waiting is older than the flush interval, and more keep
    /// coming), the aggregates are late anyway: a flush then waits in proportion, for half
    /// the newest record's age, at most `catch_up_interval`, or for `max_records_per_flush`
    /// records. Larger flushes write fewer documents per event, so analytics keeps up with
    /// more, and the delay grows with the overload instead of jumping from one interval to
    /// the other (before 2026-12-06: 1 s flushes until 10 s behind, then 10 s ones).
    pub fn due(self, policy: &Policy) -> bool {
        if self.pending == 0 || self.since_start < policy.flush_interval {
            return false;
        }
        if self.idle || policy.holds_back(self.pending) {
            return true;
        }
        let wait = self.newest_age_ms.map_or(policy.flush_interval, |age| {
            Duration::from_millis(u64::try_from(age / 2).unwrap_or(0))
                .clamp(policy.flush_interval, policy.catch_up_interval)
        });
        self.since_start >= wait
    }
}

/// How often a partition's sessions are written to their `sessions_history` documents.
///
/// Counters are written at every flush; a session's document changes with each of its
/// events, so writing it at every flush costs about one write per event at a live rate (a
/// session's events arrive seconds apart) and those writes cost several counter writes each
/// (their arrays grow). Between checkpoints a partition's session deltas stay in memory; its
/// marker says up to where its sessions are written (`sessions_offset`), and a new owner
/// replays the records in between into its sessions without counting them again.
#[derive(Debug, Clone, Copy)]
pub struct Checkpoints {
    /// A partition's sessions are written at least this often while it has records.
    pub interval: Duration,
    /// Records not yet in their sessions' documents, over every partition: beyond, the
    /// partitions holding most are checkpointed at the next flush. Bounds the memory the
    /// session deltas take and the replay after a crash.
    pub max_unsaved: u64,
}

/// A partition as the checkpoint choice sees it.
#[derive(Debug, Clone, Copy)]
pub struct Unsaved {
    pub partition: i32,
    /// Since its last checkpoint (or its staggered assignment, see [`Checkpoints::stagger`]).
    pub age: Duration,
    /// Records dispatched since then.
    pub records: u64,
}

impl Checkpoints {
    /// The age a partition starts with when assigned, `i` of `n`: spread over the interval,
    /// so the partitions of one assignment come due one after another, not all in one flush.
    pub fn stagger(&self, i: usize, n: usize) -> Duration {
        self.interval.mul_f64(i as f64 / n.max(1) as f64)
    }

    /// Some partition's checkpoint is due: a flush is worth doing even without new records
    /// to count (a replay after an assignment is checkpointed while the topic is quiet).
    pub fn due(&self, parts: &[Unsaved]) -> bool {
        parts
            .iter()
            .any(|u| u.records > 0 && u.age >= self.interval)
    }

    /// The partitions a flush checkpoints, `since_flush` after the previous one: those due
    /// (oldest first, at most their share of the interval, so checkpoints spread over the
    /// flushes), then, over `max_unsaved`, those holding most until half of it remains.
    pub fn choose(&self, parts: &[Unsaved], since_flush: Duration) -> BTreeSet<i32> {
        let mut due: Vec<&Unsaved> = parts
            .iter()
            .filter(|u| u.records > 0 && u.age >= self.interval)
            .collect();
        due.sort_by_key(|u| std::cmp::Reverse(u.age));
        let share = (parts.len() as f64 * since_flush.as_secs_f64()
            / self.interval.as_secs_f64().max(1e-3))
        .ceil()
        .max(1.0) as usize;
        let mut chosen: BTreeSet<i32> = due.iter().take(share).map(|u| u.partition).collect();
        let mut left: u64 = parts
            .iter()
            .filter(|u| !chosen.contains(&u.partition))
            .map(|u| u.records)
            .sum();
        if left > self.max_unsaved {
            let mut rest: Vec<&Unsaved> = parts
                .iter()
                .filter(|u| !chosen.contains(&u.partition))
                .collect();
            rest.sort_by_key(|u| std::cmp::Reverse(u.records));
            for u in rest {
                if left <= self.max_unsaved / 2 {
                    break;
                }
                chosen.insert(u.partition);
                left -= u.records;
            }
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoints() -> Checkpoints {
        Checkpoints {
            interval: Duration::from_secs(12),
            max_unsaved: 1000,
        }
    }

    fn part(partition: i32, age_s: u64, records: u64) -> Unsaved {
        Unsaved {
            partition,
            age: Duration::from_secs(age_s),
            records,
        }
    }

    #[test]
    fn checkpoints_spread_over_the_flushes_oldest_first() {
        let c = checkpoints();
        // 12 partitions assigned together start staggered: one comes due per second.
        let ages: Vec<Duration> = (0..12).map(|i| c.stagger(i, 12)).collect();
        assert_eq!(ages[1], Duration::from_secs(1));
        assert_eq!(ages[11], Duration::from_secs(11));
        let parts: Vec<Unsaved> = (0..12).map(|p| part(p, 5 + p as u64, 10)).collect();
        assert!(!c.due(&parts[..7]), "none is 12 s old");
        assert!(c.due(&parts));
        assert_eq!(
            c.choose(&parts, Duration::from_secs(1)),
            BTreeSet::from([11]),
            "a 1 s flush takes its share: 12 partitions / 12 s"
        );
        // All due after a long pause: a 3 s flush takes three, the oldest.
        let parts: Vec<Unsaved> = (0..12).map(|p| part(p, 20 + p as u64, 10)).collect();
        assert_eq!(
            c.choose(&parts, Duration::from_secs(3)),
            BTreeSet::from([9, 10, 11])
        );
        // Nothing to write, nothing due.
        let idle = [part(0, 100, 0)];
        assert!(!c.due(&idle));
        assert!(c.choose(&idle, Duration::from_secs(1)).is_empty());
    }

    #[test]
    fn too_many_unsaved_records_checkpoint_the_largest_partitions() {
        let c = checkpoints();
        let parts = [part(0, 1, 700), part(1, 1, 200), part(2, 1, 300)];
        // 1,200 > 1,000 unsaved: the largest go until at most 500 are left.
        assert_eq!(
            c.choose(&parts, Duration::from_secs(1)),
            BTreeSet::from([0])
        );
        let parts = [part(0, 1, 400), part(1, 1, 400), part(2, 1, 400)];
        assert_eq!(c.choose(&parts, Duration::from_secs(1)).len(), 2);
    }

    fn policy() -> Policy {
        Policy {
            flush_interval: Duration::from_secs(1),
            catch_up_interval: Duration::from_secs(10),
            max_records_per_flush: 1000,
        }
    }

    fn live(since_ms: u64) -> Cadence {
        Cadence {
            pending: 10,
            since_start: Duration::from_millis(since_ms),
            newest_age_ms: Some(50),
            idle: false,
        }
    }

    #[test]
    fn live_traffic_flushes_every_interval_never_sooner() {
        let cfg = policy();
        assert!(!live(999).due(&cfg));
        assert!(live(1000).due(&cfg));
        assert!(
            !Cadence {
                pending: 0,
                ..live(5000)
            }
            .due(&cfg),
            "nothing to flush"
        );
    }

    #[test]
    fn a_backlog_is_flushed_in_large_batches_until_caught_up() {
        let cfg = policy();
        let behind = Cadence {
            newest_age_ms: Some(60_000),
            ..live(2000)
        };
        assert!(!behind.due(&cfg), "behind: wait for more records");
        assert!(
            Cadence {
                pending: 1000,
                ..behind
            }
            .due(&cfg),
            "a full batch"
        );
        assert!(
            Cadence {
                since_start: Duration::from_secs(10),
                ..behind
            }
            .due(&cfg),
            "the catch-up interval"
        );
        assert!(
            Cadence {
                idle: true,
                ..behind
            }
            .due(&cfg),
            "nothing more to read"
        );
        assert!(
            !Cadence {
                idle: true,
                ..live(500)
            }
            .due(&cfg),
            "never sooner than the interval"
        );
    }

    #[test]
    fn behind_a_flush_waits_in_proportion_to_the_lag_up_to_the_catch_up_interval() {
        let cfg = policy();
        let at = |age_ms: i64, since_ms: u64| {
            Cadence {
                newest_age_ms: Some(age_ms),
                ..live(since_ms)
            }
            .due(&cfg)
        };
        // Up to 2 s behind: every interval.
        assert!(at(2_000, 1_000));
        // 4 s behind: every 2 s; 8 s behind: every 4 s.
        assert!(!at(4_000, 1_999) && at(4_000, 2_000));
        assert!(!at(8_000, 3_999) && at(8_000, 4_000));
        // Far behind: the catch-up interval at most.
        assert!(!at(600_000, 9_999) && at(600_000, 10_000));
    }

    #[test]
    fn consumption_is_held_back_with_a_full_batch_waiting() {
        let cfg = policy();
        assert!(!cfg.holds_back(999));
        assert!(cfg.holds_back(1000));
    }
}
