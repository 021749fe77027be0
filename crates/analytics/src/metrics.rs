//! Prometheus metrics, kept in atomics and rendered as text on `/metrics`. Labels are low
//! cardinality: event type, outcome, dead-letter reason, partition.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use events::EventType;

use crate::journal::FlushStats;

#[derive(Debug, Default)]
pub struct Metrics {
    counted: [AtomicU64; 7],
    duplicates: AtomicU64,
    dead_lettered: Mutex<BTreeMap<&'static str, u64>>,
    sessions_loaded: AtomicU64,
    session_load_micros: AtomicU64,
    /// Where flushes spend their time and what they write (see [`Metrics::flushed`]).
    work: Mutex<FlushWork>,
    pub queued: AtomicI64,
    pub flushes: AtomicU64,
    /// Checkpoints of session documents written.
    pub checkpoints: AtomicU64,
    /// Flushes too large for one commit, which took the journal.
    pub journalled: AtomicU64,
    pub flush_failures: AtomicU64,
    flush_micros_sum: AtomicU64,
    flush_micros_max: AtomicU64,
    pub firestore_writes: AtomicU64,
    pub firestore_commits: AtomicU64,
    pub firestore_errors: AtomicU64,
    pub resets: AtomicU64,
    /// Records below the markers this instance's landed flushes advanced: their aggregates
    /// are applied, not only journalled (a marker is visible from the manifest on).
    pub persisted_records: AtomicU64,
    /// Records dispatched but not yet in their sessions' documents (written by a checkpoint
    /// of their partition, see `cadence::Checkpoints`, landed after its flush).
    pub unsaved_records: AtomicU64,
    /// Highest writes/second to one document seen between two flushes, x1000.
    pub max_doc_writes_per_second_milli: AtomicU64,
    lag: Mutex<BTreeMap<i32, i64>>,
    /// Milliseconds from each record's Kafka timestamp to its flush landing, of every record
    /// since the start.
    freshness_ms: Mutex<Freshness>,
    pub ready: std::sync::atomic::AtomicBool,
    /// Wall-clock ms of the last progress: a flush landed, or nothing was waiting.
    progress_ms: AtomicI64,
    /// Why the service is stopping, once it is.
    fatal: Mutex<Option<String>>,
}

/// Where a flush or a checkpoint spends its wall time: the index of its total in
/// [`FlushWork::phase_micros`], in the order of [`Phase::LABELS`].
#[derive(Debug, Clone, Copy)]
enum Phase {
    Journal,
    Manifest,
    Apply,
    Sessions,
}

impl Phase {
    const LABELS: [&'static str; 4] = ["journal", "manifest", "apply", "sessions"];
}

/// Totals of the flushes' [`FlushStats`]: where the database work goes.
#[derive(Debug, Default)]
struct FlushWork {
    journal_bytes: u64,
    /// Counter shards read to learn their totals, and written whole.
    shards_read: u64,
    shards_whole: u64,
    /// Session documents written whole (see [`crate::checkpoint`]).
    sessions_whole: u64,
    /// Wall time of the journal, the manifest, the applies and the checkpoints.
    phase_micros: [u64; 4],
    applied: BTreeMap<&'static str, u64>,
    apply_commit_micros: BTreeMap<&'static str, u64>,
}

/// What the health endpoints answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Health {
    Ok,
    Unhealthy(String),
}

/// The freshness of every record, in milliseconds, to three significant digits (exact below
/// 2,048 ms, at most 0.1% high above): constant memory and constant time per record and per
/// quantile. (Until 2026-12-07 the first 2 million records were kept and sorted at every
/// scrape: the quantiles froze after some 7 minutes at 5,000 events/s, and each scrape cost
/// tens of milliseconds under the lock a landing flush takes.)
#[derive(Debug)]
struct Freshness(hdrhistogram::Histogram<u64>);

/// Freshness recorded up to a day; beyond, as a day.
const FRESHNESS_MAX_MS: u64 = 24 * 3600 * 1000;

impl Default for Freshness {
    fn default() -> Self {
        Freshness(
            hdrhistogram::Histogram::new_with_bounds(1, FRESHNESS_MAX_MS, 3)
                .expect("valid histogram bounds"),
        )
    }
}

fn idx(t: EventType) -> usize {
    EventType::ALL.iter().position(|x| *x == t).unwrap_or(0)
}

impl Metrics {
    /// Progress now: a flush landed, or the pipeline found nothing waiting.
    pub fn progressed(&self) {
        self.progress_ms
            .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    pub fn set_fatal(&self, message: &str) {
        self.fatal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_or_insert_with(|| message.to_owned());
    }

    /// Healthy unless a fatal error is pending, or `stall` has passed since the last progress
    /// (the pipeline marks its start as progress; before that, nothing can stall).
    pub fn health(&self, now_ms: i64, stall: std::time::Duration) -> Health {
        if let Some(f) = self
            .fatal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
        {
            return Health::Unhealthy(format!("fatal: {f}"));
        }
        let last = self.progress_ms.load(Ordering::Relaxed);
        let idle_ms = now_ms.saturating_sub(last);
        if last > 0 && idle_ms > stall.as_millis() as i64 {
            return Health::Unhealthy(format!(
                "stalled: work is waiting and nothing was persisted for {} s",
                idle_ms / 1000
            ));
        }
        Health::Ok
    }

    pub fn counted(&self, t: EventType) {
        self.counted[idx(t)].fetch_add(1, Ordering::Relaxed);
    }
    pub fn counted_total(&self) -> u64 {
        self.counted.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
    pub fn duplicate(&self) {
        self.duplicates.fetch_add(1, Ordering::Relaxed);
    }
    pub fn duplicates(&self) -> u64 {
        self.duplicates.load(Ordering::Relaxed)
    }
    pub fn dead_lettered(&self, reason: &'static str) {
        *self
            .dead_lettered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(reason)
            .or_default() += 1;
    }
    pub fn dead_lettered_total(&self) -> u64 {
        self.dead_lettered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .sum()
    }
    /// `n` sessions read back from Firestore in one round trip that took `took`.
    pub fn sessions_loaded(&self, n: u64, took: std::time::Duration) {
        self.sessions_loaded.fetch_add(n, Ordering::Relaxed);
        self.session_load_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }
    /// A flush landed after `micros`, with what it wrote and where its time went.
    pub fn flushed(&self, micros: u64, stats: &FlushStats) {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        if stats.chunks > 0 {
            self.journalled.fetch_add(1, Ordering::Relaxed);
        }
        self.flush_micros_sum.fetch_add(micros, Ordering::Relaxed);
        self.flush_micros_max.fetch_max(micros, Ordering::Relaxed);
        self.work(
            stats,
            &[
                (Phase::Journal, stats.journal_time),
                (Phase::Manifest, stats.manifest_time),
                (Phase::Apply, stats.apply_time),
            ],
        );
    }

    /// Record a checkpoint's session documents written (see [`crate::checkpoint`]).
    pub fn sessions_saved(&self, stats: &FlushStats) {
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
        self.work(stats, &[(Phase::Sessions, stats.apply_time)]);
    }

    /// Add what a flush or a checkpoint wrote, and the wall time of its `phases`.
    fn work(&self, stats: &FlushStats, phases: &[(Phase, std::time::Duration)]) {
        self.firestore_writes
            .fetch_add(stats.writes, Ordering::Relaxed);
        self.firestore_commits
            .fetch_add(stats.commits, Ordering::Relaxed);
        let mut w = self
            .work
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        w.journal_bytes += stats.journal_bytes;
        w.shards_read += stats.shards_read;
        w.shards_whole += stats.shards_whole;
        w.sessions_whole += stats.sessions_whole;
        for (phase, t) in phases {
            w.phase_micros[*phase as usize] += t.as_micros() as u64;
        }
        for (k, n) in &stats.applied {
            *w.applied.entry(k.label()).or_default() += n;
        }
        for (k, t) in &stats.apply_commit_time {
            *w.apply_commit_micros.entry(k.label()).or_default() += t.as_micros() as u64;
        }
    }

    /// Record that the records produced at `produced_ms` are durable at `now_ms`.
    pub fn fresh(&self, produced_ms: &[i64], now_ms: i64) {
        let mut f = self
            .freshness_ms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for p in produced_ms {
            f.0.saturating_record(u64::try_from(now_ms - p).unwrap_or(0));
        }
    }

    /// The `q` quantile (0..=1) of freshness in seconds, if any record landed: the freshness
    /// that a fraction `q` of the records had or better.
    pub fn freshness_quantile(&self, q: f64) -> Option<f64> {
        let f = self
            .freshness_ms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (!f.0.is_empty()).then(|| f.0.value_at_quantile(q) as f64 / 1000.0)
    }

    pub fn set_lag(&self, partition: i32, lag: i64) {
        self.lag
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(partition, lag);
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let r = Ordering::Relaxed;
        let _ = writeln!(out, "# TYPE analytics_events_total counter");
        for t in EventType::ALL {
            let _ = writeln!(
                out,
                "analytics_events_total{{type=\"{t}\",outcome=\"counted\"}} {}",
                self.counted[idx(t)].load(r)
            );
        }
        let _ = writeln!(
            out,
            "analytics_events_total{{outcome=\"duplicate\"}} {}",
            self.duplicates.load(r)
        );
        let _ = writeln!(out, "# TYPE analytics_dead_lettered_total counter");
        for (reason, n) in self
            .dead_lettered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "analytics_dead_lettered_total{{reason=\"{reason}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# TYPE analytics_queue_depth gauge\nanalytics_queue_depth {}",
            self.queued.load(r)
        );
        let _ = writeln!(out, "# TYPE analytics_consumer_lag gauge");
        for (p, lag) in self
            .lag
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(out, "analytics_consumer_lag{{partition=\"{p}\"}} {lag}");
        }
        let flushes = self.flushes.load(r);
        let _ = writeln!(
            out,
            "# TYPE analytics_flushes_total counter\nanalytics_flushes_total {flushes}"
        );
        let _ = writeln!(
            out,
            "# TYPE analytics_checkpoints_total counter\nanalytics_checkpoints_total {}",
            self.checkpoints.load(r)
        );
        let _ = writeln!(
            out,
            "# TYPE analytics_journalled_flushes_total counter\nanalytics_journalled_flushes_total {}",
            self.journalled.load(r)
        );
        let _ = writeln!(
            out,
            "analytics_flush_failures_total {}",
            self.flush_failures.load(r)
        );
        let _ = writeln!(out, "# TYPE analytics_flush_seconds summary");
        let _ = writeln!(
            out,
            "analytics_flush_seconds_sum {}",
            self.flush_micros_sum.load(r) as f64 / 1e6
        );
        let _ = writeln!(out, "analytics_flush_seconds_count {flushes}");
        let _ = writeln!(
            out,
            "analytics_flush_seconds_max {}",
            self.flush_micros_max.load(r) as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "# TYPE analytics_firestore_writes_total counter\nanalytics_firestore_writes_total {}",
            self.firestore_writes.load(r)
        );
        let _ = writeln!(
            out,
            "analytics_firestore_commits_total {}",
            self.firestore_commits.load(r)
        );
        let _ = writeln!(
            out,
            "analytics_firestore_errors_total {}",
            self.firestore_errors.load(r)
        );
        let _ = writeln!(
            out,
            "analytics_session_loads_total {}",
            self.sessions_loaded.load(r)
        );
        let _ = writeln!(
            out,
            "# TYPE analytics_session_load_seconds_total counter\nanalytics_session_load_seconds_total {}",
            self.session_load_micros.load(r) as f64 / 1e6
        );
        let w = self
            .work
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = writeln!(
            out,
            "# TYPE analytics_journal_bytes_total counter\nanalytics_journal_bytes_total {}",
            w.journal_bytes
        );
        let _ = writeln!(
            out,
            "# TYPE analytics_shards_read_total counter\nanalytics_shards_read_total {}\n\
             # TYPE analytics_shards_written_whole_total counter\nanalytics_shards_written_whole_total {}\n\
             # TYPE analytics_sessions_written_whole_total counter\nanalytics_sessions_written_whole_total {}",
            w.shards_read, w.shards_whole, w.sessions_whole
        );
        let _ = writeln!(out, "# TYPE analytics_flush_phase_seconds_total counter");
        for (phase, micros) in Phase::LABELS.iter().zip(w.phase_micros) {
            let _ = writeln!(
                out,
                "analytics_flush_phase_seconds_total{{phase=\"{phase}\"}} {}",
                micros as f64 / 1e6
            );
        }
        let _ = writeln!(out, "# TYPE analytics_applied_documents_total counter");
        for (kind, n) in &w.applied {
            let _ = writeln!(
                out,
                "analytics_applied_documents_total{{kind=\"{kind}\"}} {n}"
            );
        }
        let _ = writeln!(out, "# TYPE analytics_apply_commit_seconds_total counter");
        for (kind, micros) in &w.apply_commit_micros {
            let _ = writeln!(
                out,
                "analytics_apply_commit_seconds_total{{kind=\"{kind}\"}} {}",
                *micros as f64 / 1e6
            );
        }
        drop(w);
        let _ = writeln!(out, "analytics_resets_total {}", self.resets.load(r));
        let _ = writeln!(
            out,
            "analytics_persisted_records_total {}",
            self.persisted_records.load(r)
        );
        let _ = writeln!(
            out,
            "analytics_unsaved_records {}",
            self.unsaved_records.load(r)
        );
        let _ = writeln!(out, "# TYPE analytics_freshness_seconds summary");
        for q in [0.5, 0.99] {
            if let Some(v) = self.freshness_quantile(q) {
                let _ = writeln!(out, "analytics_freshness_seconds{{quantile=\"{q}\"}} {v}");
            }
        }
        let _ = writeln!(
            out,
            "# TYPE analytics_doc_writes_per_second_max gauge\nanalytics_doc_writes_per_second_max {}",
            self.max_doc_writes_per_second_milli.load(r) as f64 / 1000.0
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_turns_unhealthy_on_a_stall_or_a_fatal_error() {
        let m = Metrics::default();
        let stall = std::time::Duration::from_secs(60);
        let now = chrono::Utc::now().timestamp_millis();
        assert_eq!(
            m.health(now, stall),
            Health::Ok,
            "before any progress: starting"
        );
        m.progressed();
        assert_eq!(m.health(now + 59_000, stall), Health::Ok);
        assert!(
            matches!(m.health(now + 61_000, stall), Health::Unhealthy(r) if r.starts_with("stalled"))
        );
        m.progressed();
        m.set_fatal("boom");
        assert!(matches!(m.health(now, stall), Health::Unhealthy(r) if r.contains("boom")));
    }

    #[test]
    fn flushes_add_up_where_the_database_work_goes() {
        use std::time::Duration;
        use store::schema::DocKind;
        let m = Metrics::default();
        let stats = FlushStats {
            writes: 7,
            commits: 3,
            journal_bytes: 1000,
            journal_time: Duration::from_millis(100),
            manifest_time: Duration::from_millis(20),
            apply_time: Duration::from_millis(300),
            applied: [(DocKind::Counter, 4), (DocKind::Session, 2)].into(),
            apply_commit_time: [(DocKind::Counter, Duration::from_millis(500))].into(),
            ..FlushStats::default()
        };
        m.flushed(420_000, &stats);
        m.flushed(420_000, &stats);
        m.sessions_loaded(10, Duration::from_millis(250));
        let text = m.render();
        for line in [
            "analytics_firestore_writes_total 14",
            "analytics_journal_bytes_total 2000",
            "analytics_flush_phase_seconds_total{phase=\"journal\"} 0.2",
            "analytics_flush_phase_seconds_total{phase=\"apply\"} 0.6",
            "analytics_applied_documents_total{kind=\"counter\"} 8",
            "analytics_applied_documents_total{kind=\"session\"} 4",
            "analytics_apply_commit_seconds_total{kind=\"counter\"} 1",
            "analytics_session_load_seconds_total 0.25",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }

    #[test]
    fn freshness_quantiles_come_from_record_timestamps() {
        let m = Metrics::default();
        assert_eq!(m.freshness_quantile(0.5), None);
        let produced: Vec<i64> = (0..100).map(|i| 10_000 - i * 10).collect(); // 0..990 ms old
        m.fresh(&produced, 10_000);
        assert_eq!(m.freshness_quantile(0.5), Some(0.49));
        assert_eq!(m.freshness_quantile(0.99), Some(0.98));
        assert!(m
            .render()
            .contains("analytics_freshness_seconds{quantile=\"0.99\"} 0.98"));
    }

    #[test]
    fn freshness_counts_every_record_however_many() {
        let m = Metrics::default();
        // Three million fresh records (100 ms), then a million late ones (5 s): a quarter of
        // all, so the median stays and p99 is theirs.
        let fresh = vec![9_900_i64; 1_000];
        for _ in 0..3_000 {
            m.fresh(&fresh, 10_000);
        }
        let late = vec![5_000_i64; 1_000];
        for _ in 0..1_000 {
            m.fresh(&late, 10_000);
        }
        assert_eq!(m.freshness_quantile(0.5), Some(0.1));
        // Beyond 2,048 ms, the top of its bucket: at most 0.1% above.
        let p99 = m.freshness_quantile(0.99).unwrap_or(0.0);
        assert!((5.0..=5.005).contains(&p99), "{p99}");
        // Older than the histogram holds: counted as its largest.
        m.fresh(&vec![0_i64; 4_000_000], 3 * FRESHNESS_MAX_MS as i64);
        assert!(m.freshness_quantile(0.99).unwrap_or(0.0) >= 86_000.0);
    }
}
