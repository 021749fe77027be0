//! The run: one tokio task per user plays sessions back to back until the session budget,
//! the duration or a shutdown ends the run; a global rate limiter paces all users. On stop,
//! sessions in progress end at once (a `session_ended` is always sent), the producer is
//! flushed, and a [`Summary`] tells what was delivered.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::settings::{ClockMode, Settings};
use crate::sink::{Sink, Stats};
use shop::catalog::{Catalog, User};
use shop::session;

/// What a run did. `undelivered` counts records handed to the producer whose delivery was
/// neither confirmed nor reported failed before the flush timeout.
#[derive(Debug, Clone)]
pub struct Summary {
    pub by_type: Vec<(events::EventType, u64)>,
    pub sessions: u64,
    pub enqueued: u64,
    pub delivered: u64,
    pub failed: u64,
    pub undelivered: u64,
    pub duplicates: u64,
    pub late: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    pub failures: Vec<(String, u64)>,
}

impl Summary {
    /// True when every record was delivered.
    pub fn all_delivered(&self) -> bool {
        self.failed == 0 && self.undelivered == 0
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        writeln!(
            f,
            "simulator summary: {} sessions in {:.1}s",
            self.sessions, secs
        )?;
        for (t, n) in &self.by_type {
            writeln!(f, "  {:<27} {n}", t.as_str())?;
        }
        writeln!(
            f,
            "  records sent               {} ({} injected duplicates, {} late)",
            self.enqueued, self.duplicates, self.late
        )?;
        writeln!(
            f,
            "  delivered                  {} ({:.0} records/s, {:.2} MB/s)",
            self.delivered,
            self.delivered as f64 / secs,
            self.bytes as f64 / secs / 1e6
        )?;
        writeln!(f, "  failed                     {}", self.failed)?;
        for (cause, n) in &self.failures {
            writeln!(f, "    {n} x {cause}")?;
        }
        write!(f, "  undelivered at exit        {}", self.undelivered)
    }
}

#[allow(missing_debug_implementations)]
struct Shared {
    settings: Settings,
    catalog: Catalog,
    sink: Arc<Sink>,
    stats: Arc<Stats>,
    /// The global events/s budget (see [`pace`]); `None` when unlimited.
    permits: Option<Arc<Semaphore>>,
    /// Sessions still allowed to start (u64::MAX when unbounded).
    budget: AtomicU64,
    /// Cancelled when no new session may start and running ones must end now.
    stop: CancellationToken,
}

/// splitmix64: decorrelates the per-user seeds derived from one run seed.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Run until the budget, the duration or `shutdown` ends it; then flush and summarize.
/// `stats` must be the one the sink reports deliveries to.
pub async fn run(
    settings: Settings,
    sink: Arc<Sink>,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
) -> Summary {
    let started = Instant::now();
    let stop = shutdown.child_token();
    if let Some(d) = settings.duration {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(d) => stop.cancel(),
                () = stop.cancelled() => {}
            }
        });
    }
    let permits = settings.rate.map(|rate| pace(rate, stop.clone()));
    let shared = Arc::new(Shared {
        catalog: Catalog::generate(settings.catalog_seed, settings.products),
        budget: AtomicU64::new(settings.sessions.unwrap_or(u64::MAX)),
        settings,
        sink: sink.clone(),
        stats: stats.clone(),
        permits,
        stop: stop.clone(),
    });

    let reporter = tokio::spawn(report_progress(shared.clone()));
    let mut users = JoinSet::new();
    for i in 0..shared.settings.users {
        users.spawn(user_task(shared.clone(), i));
    }
    while let Some(result) = users.join_next().await {
        if let Err(e) = result {
            tracing::error!(error = %e, "a user task failed");
        }
    }
    stop.cancel();
    reporter.abort();

    let flush_timeout = shared.settings.flush_timeout;
    let sink_for_flush = sink.clone();
    let _ = tokio::task::spawn_blocking(move || sink_for_flush.flush(flush_timeout)).await;
    let enqueued = stats.enqueued.load(Ordering::Relaxed);
    let delivered = stats.delivered.load(Ordering::Relaxed);
    let failed = stats.failed.load(Ordering::Relaxed);
    Summary {
        by_type: stats.by_type(),
        sessions: stats.sessions.load(Ordering::Relaxed),
        enqueued,
        delivered,
        failed,
        undelivered: enqueued.saturating_sub(delivered + failed),
        duplicates: stats.duplicates.load(Ordering::Relaxed),
        late: stats.late.load(Ordering::Relaxed),
        bytes: stats.bytes.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        failures: stats.failures().into_iter().collect(),
    }
}

/// Tick of the pacer that hands out send permits.
const PACE_TICK: Duration = Duration::from_millis(5);

/// A token bucket of `rate` events/s shared by every user: one task adds the permits due
/// every [`PACE_TICK`] to a FIFO semaphore (at most a tenth of a second's worth waiting), so
/// each permit wakes exactly one waiting user. (A limiter that every user polls on its own
/// wakes all of them at each permit: with thousands of users that burns a core.) The
/// semaphore is closed when `stop` is cancelled.
fn pace(rate: f64, stop: CancellationToken) -> Arc<Semaphore> {
    let permits = Arc::new(Semaphore::new(0));
    let burst = (rate / 10.0).clamp(1.0, 100_000.0) as usize;
    let bucket = permits.clone();
    tokio::spawn(async move {
        let started = Instant::now();
        let mut issued: u64 = 0;
        let mut tick = tokio::time::interval(PACE_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop.cancelled() => break,
            }
            let due = (started.elapsed().as_secs_f64() * rate) as u64;
            let room = burst.saturating_sub(bucket.available_permits());
            bucket.add_permits((due - issued).min(room as u64) as usize);
            issued = due;
        }
        bucket.close();
    });
    permits
}

fn take_session(budget: &AtomicU64) -> bool {
    budget
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| b.checked_sub(1))
        .is_ok()
}

async fn user_task(shared: Arc<Shared>, index: u64) {
    let s = &shared.settings;
    let user = shared
        .catalog
        .user(s.instance.wrapping_mul(s.users).wrapping_add(index));
    let mut rng = StdRng::seed_from_u64(mix(s.seed ^ mix(s.instance) ^ mix(index.wrapping_add(1))));
    // Users arrive spread over the first simulated hour.
    let mut clock: DateTime<Utc> =
        s.start_time + chrono::Duration::seconds(rng.random_range(0..3600));
    while !shared.stop.is_cancelled() && take_session(&shared.budget) {
        let start = match s.clock {
            ClockMode::Realtime => Utc::now(),
            ClockMode::Synthetic => clock,
        };
        let mut plan = session::plan(&mut rng, &shared.catalog, start, &s.behavior);
        if s.clock == ClockMode::Synthetic {
            // The synthetic clock runs faster than the wall clock but never ahead of it: a
            // session that would end in the future ends now instead (downstream, future
            // events are outside the event-time window).
            plan.end_by(Utc::now());
        }
        shared.stats.sessions.fetch_add(1, Ordering::Relaxed);
        let last = emit_session(&shared, &mut rng, &user, &plan).await;
        // A pause between two sessions of the same user.
        clock = last + chrono::Duration::seconds(rng.random_range(60..=3600));
        if s.clock == ClockMode::Realtime {
            let pause =
                Duration::from_millis(rng.random_range(s.behavior.step_ms.clone()).max(0) as u64);
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = shared.stop.cancelled() => {}
            }
        }
    }
}

/// Send a session's events, each built from its plan only now; returns the timestamp of the
/// last one. If the run stops midway the session ends at once with a `session_ended`.
async fn emit_session(
    shared: &Shared,
    rng: &mut StdRng,
    user: &User,
    plan: &session::Plan,
) -> DateTime<Utc> {
    let s = &shared.settings;
    let mut last = plan.start;
    let n = plan.steps.len();
    for (i, planned) in plan.steps.iter().enumerate() {
        let is_last = i + 1 == n;
        if shared.stop.is_cancelled() && !is_last && i > 0 {
            // Abandon the rest: the user leaves now.
            let end = match s.clock {
                ClockMode::Realtime => Utc::now().max(last + chrono::Duration::milliseconds(1)),
                ClockMode::Synthetic => last + chrono::Duration::seconds(1),
            };
            let mut ended = plan.steps[n - 1].clone();
            ended.at = end;
            send(shared, rng, plan.render(&ended, &shared.catalog, user)).await;
            return end;
        }
        if s.clock == ClockMode::Realtime {
            let wait = (planned.at - Utc::now()).to_std().unwrap_or_default();
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shared.stop.cancelled() => {}
            }
        }
        last = planned.at;
        send(shared, rng, plan.render(planned, &shared.catalog, user)).await;
    }
    last
}

async fn send(shared: &Shared, rng: &mut StdRng, mut event: events::Event) {
    if let Some(permits) = &shared.permits {
        // Closed once the run stops: the last events of the sessions then go unpaced.
        if let Ok(permit) = permits.acquire().await {
            permit.forget();
        }
    }
    // Without a rate limit a send may never suspend; spend the task's cooperative budget so
    // timers (the run duration) and signal handling still get their turn.
    tokio::task::consume_budget().await;
    let s = &shared.settings;
    if s.late_fraction > 0.0 && rng.random_bool(s.late_fraction) {
        // Late: stamped on an earlier day than the one the event belongs to.
        let day_start = event
            .timestamp
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .map_or(event.timestamp, |t| t.and_utc());
        event.timestamp = day_start - chrono::Duration::minutes(rng.random_range(1..=24 * 60));
        shared.stats.late.fetch_add(1, Ordering::Relaxed);
    }
    let payload = events::encode(&event);
    let key = event.key();
    shared.sink.send(&key, &payload, &shared.stats).await;
    shared.stats.count_event(event.event_type());
    if s.duplicate_fraction > 0.0 && rng.random_bool(s.duplicate_fraction) {
        shared.sink.send(&key, &payload, &shared.stats).await;
        shared.stats.duplicates.fetch_add(1, Ordering::Relaxed);
    }
}

async fn report_progress(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.settings.progress_every);
    tick.tick().await;
    let mut previous = (Instant::now(), 0u64);
    loop {
        tick.tick().await;
        let enqueued = shared.stats.enqueued.load(Ordering::Relaxed);
        let now = Instant::now();
        let rate =
            (enqueued - previous.1) as f64 / now.duration_since(previous.0).as_secs_f64().max(1e-9);
        previous = (now, enqueued);
        tracing::info!(
            events_per_second = rate.round(),
            sent = enqueued,
            delivered = shared.stats.delivered.load(Ordering::Relaxed),
            failed = shared.stats.failed.load(Ordering::Relaxed),
            sessions = shared.stats.sessions.load(Ordering::Relaxed),
            "progress"
        );
    }
}
