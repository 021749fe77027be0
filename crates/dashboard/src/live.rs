//! Keeping the overviews fresh: one reader per overview asked for (a bucket, a country),
//! however many pages show it. It reads the overview, hands it to every page watching, then
//! reads again as soon as a flush has landed (what the analytics instances have persisted
//! grows) or, at the latest, one push interval after its last read. A page so sees a flush's
//! figures one read after it lands instead of waiting for a timer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

/// An overview as pages receive it, or why it could not be read.
pub type Reading = Result<Arc<Value>, String>;

/// How often the instances are asked whether a flush has landed.
pub const LANDING_POLL: Duration = Duration::from_millis(250);

/// Reads one overview; the [`Feeds`] decide when.
pub trait Source<K>: Clone + Send + Sync + 'static {
    /// The overview `key` stands for.
    fn read(&self, key: &K) -> impl std::future::Future<Output = Reading> + Send;
    /// What the analytics instances have persisted so far (any figure that grows when a
    /// flush lands); `None` when no instance answers, and the feeds fall back on the timer.
    fn landed(&self) -> impl std::future::Future<Output = Option<f64>> + Send;
}

/// The feeds of the overviews pages are watching, by key.
#[derive(Debug, Clone)]
pub struct Feeds<K> {
    by_key: Arc<Mutex<HashMap<K, watch::Receiver<Option<Reading>>>>>,
}

impl<K> Default for Feeds<K> {
    fn default() -> Self {
        Feeds {
            by_key: Arc::default(),
        }
    }
}

/// What a feed is keyed by.
pub trait Key: Clone + Eq + std::hash::Hash + Send + Sync + 'static {}
impl<K: Clone + Eq + std::hash::Hash + Send + Sync + 'static> Key for K {}

impl<K: Key> Feeds<K> {
    /// A receiver of the overview `key`, starting its reader if none runs. The reader stops
    /// once no page watches any more.
    pub fn watch<S: Source<K>>(
        &self,
        source: &S,
        key: &K,
        push: Duration,
    ) -> watch::Receiver<Option<Reading>> {
        let mut feeds = lock(&self.by_key);
        if let Some(rx) = feeds.get(key) {
            return rx.clone();
        }
        let (tx, rx) = watch::channel(None);
        feeds.insert(key.clone(), rx.clone());
        tokio::spawn(feed(self.clone(), source.clone(), key.clone(), tx, push));
        rx
    }

    /// Readers running (for tests).
    pub fn running(&self) -> usize {
        lock(&self.by_key).len()
    }

    /// Whether the reader of `key` should go on: some page besides the map's own receiver
    /// watches. Checked and removed under the lock that [`Feeds::watch`] clones under, so a
    /// page never receives a receiver of a stopped reader.
    fn keep(&self, key: &K, tx: &watch::Sender<Option<Reading>>) -> bool {
        let mut feeds = lock(&self.by_key);
        if tx.receiver_count() > 1 {
            return true;
        }
        feeds.remove(key);
        false
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn feed<K: Key, S: Source<K>>(
    feeds: Feeds<K>,
    source: S,
    key: K,
    tx: watch::Sender<Option<Reading>>,
    push: Duration,
) {
    let mut landed = tokio::time::timeout(LANDING_POLL, source.landed())
        .await
        .unwrap_or(None);
    loop {
        let started = Instant::now();
        let reading = source.read(&key).await;
        tx.send_replace(Some(reading));
        // Until the next read: a flush landing, or the push interval since this read began.
        loop {
            if !feeds.keep(&key, &tx) {
                return;
            }
            let due = started + push;
            if Instant::now() >= due {
                break;
            }
            tokio::time::sleep_until(due.min(Instant::now() + LANDING_POLL)).await;
            // An instance slow to answer never holds the next read past its due time.
            let now = tokio::time::timeout_at(due, source.landed())
                .await
                .unwrap_or(None);
            if now.is_some() && now != landed {
                landed = now;
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[derive(Clone, Default)]
    struct Fake {
        reads: Arc<AtomicU64>,
        persisted: Arc<AtomicU64>,
        instances: bool,
        /// How long asking the instances takes.
        slow: Duration,
    }

    impl Source<&'static str> for Fake {
        async fn read(&self, key: &&'static str) -> Reading {
            let n = self.reads.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(Arc::new(serde_json::json!({ "key": key, "read": n })))
        }
        async fn landed(&self) -> Option<f64> {
            tokio::time::sleep(self.slow).await;
            self.instances
                .then(|| self.persisted.load(Ordering::SeqCst) as f64)
        }
    }

    async fn next(rx: &mut watch::Receiver<Option<Reading>>) -> Value {
        rx.changed().await.expect("the reader runs");
        let v = rx
            .borrow_and_update()
            .clone()
            .expect("a reading")
            .expect("read");
        v.as_ref().clone()
    }

    #[tokio::test(start_paused = true)]
    async fn pages_of_one_overview_share_one_reader_that_stops_when_the_last_page_goes() {
        let (feeds, fake) = (Feeds::<&str>::default(), Fake::default());
        let push = Duration::from_secs(2);
        let mut a = feeds.watch(&fake, &"lifetime", push);
        let mut b = feeds.watch(&fake, &"lifetime", push);
        let _c = feeds.watch(&fake, &"2026-03-01", push);
        assert_eq!(feeds.running(), 2);
        let (first_a, first_b) = (next(&mut a).await, next(&mut b).await);
        assert_eq!(first_a["key"], "lifetime");
        assert_eq!(first_a, first_b, "one reading for both pages");
        drop((a, b));
        tokio::time::sleep(push * 2).await;
        assert_eq!(
            feeds.running(),
            1,
            "the lifetime reader stopped, the day's runs"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn without_instances_it_reads_once_per_push_interval() {
        let (feeds, fake) = (Feeds::<&str>::default(), Fake::default());
        let mut rx = feeds.watch(&fake, &"lifetime", Duration::from_secs(2));
        next(&mut rx).await;
        let t0 = Instant::now();
        next(&mut rx).await;
        assert_eq!(t0.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn instances_slow_to_answer_never_delay_a_read_past_the_push_interval() {
        let feeds = Feeds::<&str>::default();
        let fake = Fake {
            instances: true,
            slow: Duration::from_secs(5),
            ..Fake::default()
        };
        let mut rx = feeds.watch(&fake, &"lifetime", Duration::from_secs(2));
        next(&mut rx).await;
        let t0 = Instant::now();
        next(&mut rx).await;
        assert!(t0.elapsed() <= Duration::from_secs(2), "{:?}", t0.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_landed_flush_is_read_within_a_poll_not_a_push_interval() {
        let feeds = Feeds::<&str>::default();
        let fake = Fake {
            instances: true,
            ..Fake::default()
        };
        let mut rx = feeds.watch(&fake, &"lifetime", Duration::from_secs(10));
        next(&mut rx).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        // Nothing landed: no read.
        assert_eq!(fake.reads.load(Ordering::SeqCst), 1);
        let t0 = Instant::now();
        fake.persisted.fetch_add(500, Ordering::SeqCst);
        assert_eq!(next(&mut rx).await["read"], 2);
        assert!(t0.elapsed() <= LANDING_POLL, "{:?}", t0.elapsed());
    }
}
