//! When to flush and when to hold consumption back: pure decisions over counts and clocks,
//! so the policy is tested without Kafka or Firestore.

use std::time::Duration;

/// The flush policy of the pipeline.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Deltas are coalesced in memory this long, so no document is written more often.
    pub flush_interval: Duration,
    /// Behind by more than this, flushes wait this long (or for `max_records_per_flush`).
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
    /// document is written more than once per interval sustained, whatever the input rate.
    ///
    /// Catching up (even the newest record waiting is older than `catch_up_interval`, and
    /// more keep coming), the aggregates are late anyway: flushes then wait for
    /// `max_records_per_flush` records or `catch_up_interval`, and fewer, larger flushes
    /// write far fewer documents per event.
    pub fn due(self, policy: &Policy) -> bool {
        if self.pending == 0 || self.since_start < policy.flush_interval {
            return false;
        }
        let behind = self
            .newest_age_ms
            .is_some_and(|age| age > policy.catch_up_interval.as_millis() as i64);
        !behind
            || self.idle
            || policy.holds_back(self.pending)
            || self.since_start >= policy.catch_up_interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn consumption_is_held_back_with_a_full_batch_waiting() {
        let cfg = policy();
        assert!(!cfg.holds_back(999));
        assert!(cfg.holds_back(1000));
    }
}
