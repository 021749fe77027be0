//! Simulator settings from flags and environment variables. Every probability and range of
//! the session model is configurable; all problems are reported together at start-up.

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Parser, ValueEnum};
use platform::KafkaArgs;

use shop::session::Behavior;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClockMode {
    /// Events are emitted when they happen, with think times between them, like a live site.
    Realtime,
    /// As fast as the rate limit allows; timestamps advance on a simulated clock.
    Synthetic,
}

/// Play realistic shopper sessions and publish them to Kafka (or stdout with --dry-run).
#[derive(Debug, Clone, Parser)]
#[command(name = "simulator", version)]
pub struct Cli {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Topic the events are published to.
    #[arg(long, env = "EVENTS_TOPIC", default_value = "e-commerce-events")]
    pub topic: String,
    /// Print events as JSON lines to stdout instead of publishing (no Kafka needed).
    #[arg(long, env = "SIMULATOR_DRY_RUN")]
    pub dry_run: bool,
    /// Concurrent users, one task each.
    #[arg(long, env = "SIMULATOR_USERS", default_value_t = 25)]
    pub users: u64,
    /// Target events per second across all users (0 = unlimited).
    #[arg(long, env = "SIMULATOR_RATE", default_value_t = 100.0)]
    pub rate: f64,
    /// Stop after this many sessions in total (default: run until stopped).
    #[arg(long, env = "SIMULATOR_SESSIONS")]
    pub sessions: Option<u64>,
    /// Stop after this long, e.g. 30s, 5m (default: run until stopped).
    #[arg(long, env = "SIMULATOR_DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    #[arg(long, env = "SIMULATOR_CLOCK", value_enum, default_value = "synthetic")]
    pub clock: ClockMode,
    /// Seed of the event stream: the same seed and settings give the same events. Random
    /// when unset.
    #[arg(long, env = "SIMULATOR_SEED")]
    pub seed: Option<u64>,
    /// Replica number, mixed into the seed so that seeded replicas never collide.
    #[arg(long, env = "SIMULATOR_INSTANCE", default_value_t = 0)]
    pub instance: u64,
    /// Simulators sharing --rate, --users and --sessions (replicas): each runs its 1/N
    /// share, so the totals stay as configured. Seeded replicas also need distinct
    /// --instance numbers (below N); unseeded ones draw random seeds and never collide.
    #[arg(long, env = "SIMULATOR_INSTANCES", default_value_t = 1)]
    pub instances: u64,
    /// Start of the synthetic clock (RFC 3339). Default: a day ago, or midnight UTC of the
    /// day before when --seed is given (seeded runs are reproducible within a day). The
    /// synthetic clock never runs ahead of the wall clock.
    #[arg(long, env = "SIMULATOR_START_TIME")]
    pub start_time: Option<DateTime<Utc>>,
    /// Seed of the catalog (products, users). Keep it fixed so ids stay stable.
    #[arg(long, env = "SIMULATOR_CATALOG_SEED", default_value_t = 20_250_917)]
    pub catalog_seed: u64,
    #[arg(long, env = "SIMULATOR_PRODUCTS", default_value_t = 100)]
    pub products: usize,
    #[arg(long, env = "ADD_TO_CART_PROBABILITY", default_value_t = 0.5)]
    pub add_to_cart_probability: f64,
    #[arg(long, env = "REMOVE_FROM_CART_PROBABILITY", default_value_t = 0.25)]
    pub remove_from_cart_probability: f64,
    #[arg(long, env = "PURCHASE_PROBABILITY", default_value_t = 0.75)]
    pub purchase_probability: f64,
    #[arg(long, env = "DISCOUNT_PROBABILITY", default_value_t = 0.25)]
    pub discount_probability: f64,
    #[arg(long, env = "MIN_CART_QUANTITY", default_value_t = 1)]
    pub min_cart_quantity: u32,
    #[arg(long, env = "MAX_CART_QUANTITY", default_value_t = 5)]
    pub max_cart_quantity: u32,
    #[arg(long, env = "MIN_SHIPPING_COST", default_value_t = 0.0)]
    pub min_shipping_cost: f64,
    #[arg(long, env = "MAX_SHIPPING_COST", default_value_t = 15.0)]
    pub max_shipping_cost: f64,
    #[arg(long, env = "MIN_DELIVERY_DAYS", default_value_t = 2)]
    pub min_delivery_days: i64,
    #[arg(long, env = "MAX_DELIVERY_DAYS", default_value_t = 14)]
    pub max_delivery_days: i64,
    #[arg(long, env = "MIN_CATEGORIES", default_value_t = 1)]
    pub min_categories: usize,
    #[arg(long, env = "MAX_CATEGORIES", default_value_t = 5)]
    pub max_categories: usize,
    #[arg(long, env = "MIN_PRODUCTS_PER_CATEGORY", default_value_t = 1)]
    pub min_products_per_category: usize,
    #[arg(long, env = "MAX_PRODUCTS_PER_CATEGORY", default_value_t = 5)]
    pub max_products_per_category: usize,
    /// Think time between events in realtime mode (seconds).
    #[arg(long, env = "MIN_EVENT_INTERVAL_SECONDS", default_value_t = 1.0)]
    pub min_event_interval: f64,
    #[arg(long, env = "MAX_EVENT_INTERVAL_SECONDS", default_value_t = 10.0)]
    pub max_event_interval: f64,
    /// Simulated time between events in synthetic mode (minutes).
    #[arg(long, env = "MIN_STEP_MINUTES", default_value_t = 1.0)]
    pub min_step_minutes: f64,
    #[arg(long, env = "MAX_STEP_MINUTES", default_value_t = 5.0)]
    pub max_step_minutes: f64,
    /// Fraction of events sent twice with the same event_id (tests dedup downstream).
    #[arg(long, env = "SIMULATOR_DUPLICATE_FRACTION", default_value_t = 0.0)]
    pub duplicate_fraction: f64,
    /// Fraction of events whose timestamp is moved before the current day (late events).
    #[arg(long, env = "SIMULATOR_LATE_FRACTION", default_value_t = 0.0)]
    pub late_fraction: f64,
    /// Seconds between progress log lines.
    #[arg(long, env = "SIMULATOR_PROGRESS_SECONDS", default_value_t = 10)]
    pub progress_seconds: u64,
    /// Seconds to wait for in-flight deliveries at the end.
    #[arg(long, env = "SIMULATOR_FLUSH_SECONDS", default_value_t = 30)]
    pub flush_seconds: u64,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.trim().split_at(
        s.trim()
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.trim().len()),
    );
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected e.g. 30s, 5m, 1h"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: unit must be ms, s, m or h")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

/// Validated simulator settings (Kafka settings are validated separately by `platform`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub topic: String,
    pub users: u64,
    pub rate: Option<f64>,
    pub sessions: Option<u64>,
    pub duration: Option<Duration>,
    pub clock: ClockMode,
    pub seed: u64,
    pub instance: u64,
    pub start_time: DateTime<Utc>,
    pub catalog_seed: u64,
    pub products: usize,
    pub behavior: Behavior,
    pub duplicate_fraction: f64,
    pub late_fraction: f64,
    pub progress_every: Duration,
    pub flush_timeout: Duration,
}

impl Cli {
    /// Check every value; `now` and `random_seed` are passed in so this stays pure.
    pub fn settings(&self, now: DateTime<Utc>, random_seed: u64) -> Result<Settings, Vec<String>> {
        let mut errors = Vec::new();
        let mut prob = |name: &str, p: f64| {
            if !(0.0..=1.0).contains(&p) {
                errors.push(format!("{name} must be within [0, 1], got {p}"));
            }
        };
        prob("ADD_TO_CART_PROBABILITY", self.add_to_cart_probability);
        prob(
            "REMOVE_FROM_CART_PROBABILITY",
            self.remove_from_cart_probability,
        );
        prob("PURCHASE_PROBABILITY", self.purchase_probability);
        prob("DISCOUNT_PROBABILITY", self.discount_probability);
        prob("SIMULATOR_DUPLICATE_FRACTION", self.duplicate_fraction);
        prob("SIMULATOR_LATE_FRACTION", self.late_fraction);
        let range = |errors: &mut Vec<String>, name: &str, lo: f64, hi: f64, min: f64| {
            if !(lo >= min && lo <= hi && hi.is_finite()) {
                errors.push(format!("{name}: need {min} <= min <= max, got {lo}..{hi}"));
            }
        };
        range(
            &mut errors,
            "cart quantity",
            f64::from(self.min_cart_quantity),
            f64::from(self.max_cart_quantity),
            1.0,
        );
        if self.max_cart_quantity > events::values::MAX_QUANTITY {
            errors.push(format!(
                "MAX_CART_QUANTITY must be <= {}",
                events::values::MAX_QUANTITY
            ));
        }
        range(
            &mut errors,
            "shipping cost",
            self.min_shipping_cost,
            self.max_shipping_cost,
            0.0,
        );
        range(
            &mut errors,
            "delivery days",
            self.min_delivery_days as f64,
            self.max_delivery_days as f64,
            0.0,
        );
        range(
            &mut errors,
            "categories per session",
            self.min_categories as f64,
            self.max_categories as f64,
            1.0,
        );
        range(
            &mut errors,
            "products per category",
            self.min_products_per_category as f64,
            self.max_products_per_category as f64,
            1.0,
        );
        range(
            &mut errors,
            "event interval seconds",
            self.min_event_interval,
            self.max_event_interval,
            0.0,
        );
        range(
            &mut errors,
            "step minutes",
            self.min_step_minutes,
            self.max_step_minutes,
            0.0,
        );
        if self.instances == 0 {
            errors.push("SIMULATOR_INSTANCES must be at least 1".into());
        } else if self.instances > 1 && self.instance >= self.instances {
            errors.push(format!(
                "SIMULATOR_INSTANCE must be below SIMULATOR_INSTANCES ({}), got {}",
                self.instances, self.instance
            ));
        }
        if self.users == 0 {
            errors.push("SIMULATOR_USERS must be at least 1".into());
        }
        if !(self.rate >= 0.0 && self.rate.is_finite()) {
            errors.push(format!("SIMULATOR_RATE must be >= 0, got {}", self.rate));
        }
        if self.products < 8 {
            errors.push("SIMULATOR_PRODUCTS must be at least 8 (one per category)".into());
        }
        if self.topic.trim().is_empty() {
            errors.push("EVENTS_TOPIC is empty".into());
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let cents = |v: f64| (v * 100.0).round() as u64;
        let step_ms = match self.clock {
            ClockMode::Realtime => {
                (self.min_event_interval * 1000.0) as i64
                    ..=(self.max_event_interval * 1000.0) as i64
            }
            ClockMode::Synthetic => {
                (self.min_step_minutes * 60_000.0) as i64
                    ..=(self.max_step_minutes * 60_000.0) as i64
            }
        };
        // Seeded runs start at midnight UTC of the day before: the same seed gives the same
        // events all day (pass --start-time for a fixed start), and they stay within the
        // event-time window downstream, which rejects events far from their ingestion.
        let fixed_epoch = (now.date_naive() - chrono::Days::new(1))
            .and_hms_opt(0, 0, 0)
            .map_or(now, |t| t.and_utc());
        // This replica's share of the totals (the first ones take the remainder).
        let n = self.instances.max(1);
        let share = |total: u64| total / n + u64::from(self.instance % n < total % n);
        Ok(Settings {
            topic: self.topic.clone(),
            users: share(self.users).max(1),
            rate: (self.rate > 0.0).then_some(self.rate / n as f64),
            sessions: self.sessions.map(share),
            duration: self.duration,
            clock: self.clock,
            seed: self.seed.unwrap_or(random_seed),
            instance: self.instance,
            start_time: match (self.clock, self.start_time, self.seed) {
                (ClockMode::Realtime, _, _) => now,
                (_, Some(t), _) => t,
                (_, None, Some(_)) => fixed_epoch,
                (_, None, None) => now - chrono::Duration::days(1),
            },
            catalog_seed: self.catalog_seed,
            products: self.products,
            behavior: Behavior {
                categories_per_session: self.min_categories..=self.max_categories,
                products_per_category: self.min_products_per_category
                    ..=self.max_products_per_category,
                add_to_cart_probability: self.add_to_cart_probability,
                remove_from_cart_probability: self.remove_from_cart_probability,
                purchase_probability: self.purchase_probability,
                discount_probability: self.discount_probability,
                cart_quantity: self.min_cart_quantity..=self.max_cart_quantity,
                shipping_cost_cents: cents(self.min_shipping_cost)..=cents(self.max_shipping_cost),
                delivery_days: self.min_delivery_days..=self.max_delivery_days,
                step_ms,
            },
            duplicate_fraction: self.duplicate_fraction,
            late_fraction: self.late_fraction,
            progress_every: Duration::from_secs(self.progress_seconds.max(1)),
            flush_timeout: Duration::from_secs(self.flush_seconds),
        })
    }
}
