//! The test bed: the native cluster and the Firestore emulator started by `make test`, fresh
//! topics / groups / Firestore projects per test, the analytics binary as a child process,
//! and an independent computation of what Firestore must hold.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use events::Payload;
use platform::KafkaSettings;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::producer::{FutureProducer, FutureRecord};
use store::client::{int_field, str_array};
use store::Store;

#[derive(Clone)]
pub struct Bed {
    pub env: HashMap<String, String>,
    pub emulator: String,
    pub id: String,
}

pub use testkit::topic::Rec;

/// An event built from a golden sample, with its own ids and time.
pub fn event(kind: &str, session: &str, at: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
    let path = testkit::repo_root().join(format!("crates/events/tests/golden/{kind}.json"));
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("golden")).expect("json");
    v["event_id"] = serde_json::Value::from(uuid::Uuid::new_v4().to_string());
    v["session_id"] = serde_json::Value::from(session);
    v["timestamp"] =
        serde_json::Value::from(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    serde_json::to_vec(&v).expect("encode")
}

/// What the simulator reported on exit.
#[derive(Debug, Clone, Default)]
pub struct SimSummary {
    pub sessions: u64,
    pub delivered: u64,
    pub elapsed: Duration,
}

impl SimSummary {
    /// From the summary the simulator prints (`simulator summary: N sessions in ...`,
    /// `  delivered   N (...)`).
    fn parse(text: &str, elapsed: Duration) -> SimSummary {
        let number_after = |label: &str| {
            text.lines()
                .find_map(|l| l.trim_start().strip_prefix(label))
                .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
                .unwrap_or_else(|| panic!("no {label:?} in the simulator's summary:\n{text}"))
        };
        SimSummary {
            sessions: number_after("simulator summary:"),
            delivered: number_after("delivered"),
            elapsed,
        }
    }
}

impl Bed {
    pub fn new(name: &str) -> Bed {
        let env = testkit::Cluster::from_env().env;
        let emulator = testkit::local_env("firestore/env")["FIRESTORE_EMULATOR_HOST"].clone();
        let id = format!("{name}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        Bed { env, emulator, id }
    }

    pub fn topic(&self) -> String {
        format!("it-{}", self.id)
    }
    pub fn dlq(&self) -> String {
        format!("it-{}-dlq", self.id)
    }
    pub fn group(&self) -> String {
        format!("g-{}", self.id)
    }
    pub fn project(&self) -> String {
        format!("p-{}", self.id)
    }

    fn cluster(&self) -> testkit::Cluster {
        testkit::Cluster {
            env: self.env.clone(),
        }
    }

    pub fn password_file(&self, user: &str) -> PathBuf {
        self.cluster().password_file(user)
    }

    pub fn kafka(&self, user: &str) -> KafkaSettings {
        self.cluster().settings(user)
    }

    pub async fn store(&self) -> Store {
        // The firestore crate reads the emulator address from the environment.
        std::env::set_var("FIRESTORE_EMULATOR_HOST", &self.emulator);
        Store::connect(&self.project(), Duration::from_secs(30))
            .await
            .expect("emulator")
    }

    pub async fn create_topics(&self, partitions: i32) {
        let admin: AdminClient<_> = self
            .kafka("admin")
            .client_config("it-admin")
            .create()
            .expect("admin");
        let (t, d) = (self.topic(), self.dlq());
        let topics = [
            NewTopic::new(&t, partitions, TopicReplication::Fixed(3))
                .set("min.insync.replicas", "2"),
            NewTopic::new(&d, 2, TopicReplication::Fixed(3)).set("min.insync.replicas", "2"),
        ];
        for r in admin
            .create_topics(
                &topics,
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
            )
            .await
            .expect("create topics")
        {
            r.expect("topic created");
        }
    }

    /// Publish simulated sessions with the real simulator, run as its own process (as admin:
    /// pipeline tests own their topic). Panics unless every event was delivered.
    pub async fn simulate(&self, args: &[&str]) -> SimSummary {
        self.simulate_until(args, tokio_util::sync::CancellationToken::new())
            .await
    }

    /// [`Bed::simulate`] until `stop` is cancelled (then the simulator gets SIGTERM, ends its
    /// sessions and reports) or its own flags end the run.
    pub async fn simulate_until(
        &self,
        args: &[&str],
        stop: tokio_util::sync::CancellationToken,
    ) -> SimSummary {
        let started = Instant::now();
        let mut child = tokio::process::Command::new(testkit::workspace_bin("simulator"))
            .arg("--topic")
            .arg(self.topic())
            .args(args)
            .env_clear()
            .envs(self.service_env())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("simulator starts");
        let mut stderr = child.stderr.take().expect("stderr");
        let output = tokio::spawn(async move {
            let mut text = String::new();
            let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text).await;
            text
        });
        let status = tokio::select! {
            status = child.wait() => status,
            () = stop.cancelled() => {
                if let Some(pid) = child.id() {
                    let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
                }
                child.wait().await
            }
        }
        .expect("simulator exit status");
        let text = output.await.expect("simulator output");
        assert!(status.success(), "simulator: {status}\n{text}");
        SimSummary::parse(&text, started.elapsed())
    }

    /// Write raw records (key, payload) to the events topic.
    pub async fn inject(&self, records: &[(Option<&str>, Vec<u8>)]) {
        let producer: FutureProducer = self
            .kafka("admin")
            .client_config("it-injector")
            .set("enable.idempotence", "true")
            // Records up to the broker's limit (message.max.bytes, 1 MiB + 12 by default).
            .set("message.max.bytes", "1048576")
            .create()
            .expect("producer");
        let topic = self.topic();
        // All enqueued, then awaited: in order per partition (idempotent producer).
        let mut deliveries = Vec::with_capacity(records.len());
        for (key, payload) in records {
            let mut r = FutureRecord::to(&topic).payload(payload);
            if let Some(k) = key {
                r = r.key(*k);
            }
            deliveries.push(producer.send(r, Duration::from_secs(30)));
        }
        for d in futures::future::join_all(deliveries).await {
            d.expect("injected");
        }
    }

    /// The environment a service of the workspace runs with in these tests: `PATH` and the
    /// cluster as admin (the tests own their topics), nothing inherited.
    fn service_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PATH", std::env::var("PATH").unwrap_or_default()),
            ("KAFKA_BROKERS", self.env["KAFKA_BROKERS"].clone()),
            ("KAFKA_SASL_USERNAME", "admin".to_owned()),
            (
                "KAFKA_SASL_PASSWORD_FILE",
                self.password_file("admin").display().to_string(),
            ),
            (
                "KAFKA_SSL_CA_LOCATION",
                self.env["KAFKA_SSL_CA_LOCATION"].clone(),
            ),
        ]
    }

    /// Where the instance started as `log_name` writes its log.
    pub fn log_path(&self, log_name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{}-{log_name}.log", self.id))
    }

    /// Lines of `log_name`'s log that contain `text`.
    pub fn log_lines(&self, log_name: &str, text: &str) -> usize {
        std::fs::read_to_string(self.log_path(log_name))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(text))
            .count()
    }

    pub fn analytics(&self, log_name: &str, extra_env: &[(&str, &str)]) -> Child {
        let log = std::fs::File::create(self.log_path(log_name)).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_analytics"));
        cmd.env_clear()
            .envs(self.service_env())
            .env("RUST_LOG", "info,librdkafka=warn")
            .env(
                "KAFKA_CLIENT_CONFIG",
                "session.timeout.ms=6000,heartbeat.interval.ms=1000",
            )
            .env("GCLOUD_PROJECT", self.project())
            .env("FIRESTORE_EMULATOR_HOST", &self.emulator)
            .env("EVENTS_TOPIC", self.topic())
            .env("DLQ_TOPIC", self.dlq())
            .env("ANALYTICS_GROUP", self.group())
            .env("ANALYTICS_FLUSH_INTERVAL_MS", "300")
            .env("ANALYTICS_ADMIN_ADDR", "127.0.0.1:0")
            .envs(extra_env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log);
        cmd.spawn().expect("analytics starts")
    }

    /// Every record of `topic`, as an independent consumer reads it back.
    pub fn read(&self, topic: &str) -> Vec<Rec> {
        testkit::topic::read(&self.kafka("admin"), topic, &BTreeMap::new())
    }

    /// The end offset of each partition of `topic`. Retried for a minute while a partition has
    /// no leader (a broker just died).
    pub fn end_offsets(&self, topic: &str) -> BTreeMap<i32, i64> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.try_end_offsets(topic) {
                Ok(ends) => return ends,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("end offsets of {topic}: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) => panic!("end offsets of {topic}: {e}"),
            }
        }
    }

    pub fn try_end_offsets(
        &self,
        topic: &str,
    ) -> Result<BTreeMap<i32, i64>, rdkafka::error::KafkaError> {
        Ok(testkit::topic::watermarks(&self.kafka("admin"), topic)?
            .into_iter()
            .map(|(p, (_, high))| (p, high))
            .collect())
    }

    /// Sum of the partitions' marker offsets: how many records are persisted.
    pub async fn persisted(&self, store: &Store) -> i64 {
        let partitions = self.end_offsets(&self.topic()).into_keys();
        self.markers(store, partitions).await.values().sum()
    }

    /// Records below `ends` (each partition's end offset) not persisted yet.
    pub async fn unpersisted(&self, store: &Store, ends: &BTreeMap<i32, i64>) -> i64 {
        let done: i64 = self
            .markers(store, ends.keys().copied())
            .await
            .values()
            .sum();
        ends.values().sum::<i64>() - done
    }

    /// Each partition's persisted position: its marker's next offset (0 without one).
    pub async fn markers(
        &self,
        store: &Store,
        partitions: impl IntoIterator<Item = i32>,
    ) -> BTreeMap<i32, i64> {
        let mut out = BTreeMap::new();
        for p in partitions {
            let m = analytics::journal::read_marker(store, &self.group(), &self.topic(), p)
                .await
                .expect("marker");
            out.insert(p, m.map_or(0, |m| m.next_offset));
        }
        out
    }

    /// Wait until more than `than` records are persisted.
    pub async fn wait_progress(&self, store: &Store, than: i64, timeout: Duration) -> i64 {
        let deadline = Instant::now() + timeout;
        loop {
            let now = self.persisted(store).await;
            if now > than {
                return now;
            }
            assert!(
                Instant::now() < deadline,
                "no progress beyond {than} after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait until the Firestore markers cover every record of the topic.
    pub async fn wait_caught_up(&self, store: &Store, timeout: Duration) {
        let ends = self.end_offsets(&self.topic());
        let deadline = Instant::now() + timeout;
        loop {
            let now = self.markers(store, ends.keys().copied()).await;
            let behind: Vec<(i32, i64, i64)> = ends
                .iter()
                .filter(|(p, end)| now[*p] < **end)
                .map(|(p, end)| (*p, now[p], *end))
                .collect();
            if behind.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not caught up after {timeout:?}: {behind:?}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

pub fn stop(child: &mut Child, signal: &str) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    let _ = Command::new("kill").args([signal, &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("analytics did not exit after {signal}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub use testkit::Guard;

/// What Firestore must hold, computed directly from the records of the topic: the distinct
/// (by event_id) valid events. Written independently of the service's aggregation code.
#[derive(Debug, Default)]
pub struct Expected {
    pub counters: BTreeMap<(String, String), i64>,
    pub session_events: BTreeMap<String, usize>,
    /// Each session's detail elements (`products_viewed[]`, ...) as the original system
    /// shaped them, by array.
    pub session_details: BTreeMap<String, BTreeMap<&'static str, Vec<serde_json::Value>>>,
    pub poison: usize,
    pub duplicates: usize,
}

/// The element an event adds to its session's detail arrays, as the original system shaped
/// it (money in cents, and each element's event id), spelled here apart from analytics.
fn detail(e: &events::Event) -> Option<(&'static str, serde_json::Value)> {
    use serde_json::json;
    let t = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339();
    let (array, mut element) = match &e.payload {
        Payload::SessionStarted(_) | Payload::SessionEnded(_) => return None,
        Payload::CategoryViewed(p) => (
            "categories_viewed",
            json!({"category": p.category.id.as_str()}),
        ),
        Payload::ProductViewed(p) => ("products_viewed", json!({"product": p.product.id.as_str()})),
        Payload::ProductAddedToCart(p) => (
            "added_to_cart",
            json!({"product": p.product.id.as_str(), "quantity": p.quantity.get()}),
        ),
        Payload::ProductRemovedFromCart(p) => (
            "removed_from_cart",
            json!({"product": p.product.id.as_str(), "quantity": p.quantity.get()}),
        ),
        Payload::Purchase(p) => {
            let a = &p.shipping_address;
            let items: Vec<_> = p
                .items
                .iter()
                .map(|i| json!({"product": i.product.id.as_str(), "quantity": i.quantity.get(), "subtotal_cents": i.subtotal.minor()}))
                .collect();
            (
                "purchase",
                json!({
                    "transaction_id": p.transaction_id.to_string(),
                    "items": items,
                    "total_amount_cents": p.total_amount.minor(),
                    "discount_amount_cents": p.discount_amount.minor(),
                    "shipping_cost_cents": p.shipping_cost.minor(),
                    "payment_method": p.payment_method.id.as_str(),
                    "shipping_address": {
                        "country": a.country.as_str(), "state": a.state.as_str(), "city": a.city.as_str(),
                        "latitude": a.latitude.get(), "longitude": a.longitude.get(),
                    },
                    "estimated_delivery_date": t(p.estimated_delivery_date),
                }),
            )
        }
    };
    element["event_id"] = json!(e.event_id.to_string());
    element["timestamp"] = json!(t(e.timestamp));
    Some((array, element))
}

/// A session's progress through the funnel, as the oracle follows it.
#[derive(Debug, Default)]
struct SessionFunnel {
    viewed: bool,
    carted: bool,
    purchased: bool,
    cart: i64,
    start_ms: Option<i64>,
}

pub fn expected(records: &[Rec]) -> Expected {
    let mut x = Expected::default();
    let mut seen = HashSet::new();
    let mut started = HashSet::new();
    let mut funnels: HashMap<uuid::Uuid, SessionFunnel> = HashMap::new();
    let add = |x: &mut Expected, path: String, field: &str, v: i64| {
        *x.counters.entry((path, field.to_owned())).or_default() += v
    };
    for r in records {
        let Ok(e) = events::decode(r.payload.as_deref().unwrap_or_default()) else {
            x.poison += 1;
            continue;
        };
        if r.key.as_deref() != Some(e.session_id.to_string().as_bytes()) {
            x.poison += 1;
            continue;
        }
        // The default event-time window: 30 days before ingestion to 5 minutes after.
        let ingested = r.timestamp_ms.expect("records carry a timestamp");
        let lag_ms = ingested - e.timestamp.timestamp_millis();
        if !(-300_000..=30 * 86_400_000).contains(&lag_ms) {
            x.poison += 1;
            continue;
        }
        if seen.contains(&e.event_id) {
            x.duplicates += 1;
            continue;
        }
        match e.payload {
            Payload::SessionStarted(_) => {
                started.insert(e.session_id);
            }
            Payload::SessionEnded(_) if !started.contains(&e.session_id) => {
                x.poison += 1; // an end without a counted start
                continue;
            }
            _ => {}
        }
        seen.insert(e.event_id);
        *x.session_events
            .entry(e.session_id.to_string())
            .or_default() += 1;
        if let Some((array, element)) = detail(&e) {
            x.session_details
                .entry(e.session_id.to_string())
                .or_default()
                .entry(array)
                .or_default()
                .push(element);
        }
        let cc = e.location.country.as_str().to_owned();
        let day = e.timestamp.format("%Y-%m-%d").to_string();
        let hour = e.timestamp.format("%Y-%m-%dT%H").to_string();
        // The session funnel, by sessions: each step at the event that first reaches it.
        let f = funnels.entry(e.session_id).or_default();
        let mut funnel: Vec<(&str, i64)> = Vec::new();
        match &e.payload {
            Payload::SessionStarted(_) => f.start_ms = Some(e.timestamp.timestamp_millis()),
            Payload::ProductViewed(_) if !f.viewed => {
                f.viewed = true;
                funnel.push(("sessions_with_product_view_count", 1));
            }
            Payload::ProductAddedToCart(p) => {
                if !f.carted {
                    f.carted = true;
                    funnel.push(("sessions_with_cart_count", 1));
                }
                f.cart += i64::from(p.quantity.get());
            }
            Payload::ProductRemovedFromCart(p) => {
                f.cart = (f.cart - i64::from(p.quantity.get())).max(0)
            }
            Payload::Purchase(_) => {
                if !f.purchased {
                    f.purchased = true;
                    funnel.push(("sessions_with_purchase_count", 1));
                    if let Some(start) = f.start_ms {
                        let waited = (e.timestamp.timestamp_millis() - start).max(0) / 1000;
                        funnel.push(("first_purchase_seconds_total", waited));
                        funnel.push(("first_purchase_timed_count", 1));
                    }
                }
                f.cart = 0;
            }
            Payload::SessionEnded(_) if f.cart > 0 && !f.purchased => {
                funnel.push(("abandoned_carts_count", 1));
            }
            _ => {}
        }
        // The hour bucket holds the headline counters, globally and per country: what this
        // event adds to lifetime's, and to its country's lifetime.
        let fields_of = |x: &Expected, doc: &str| -> HashMap<String, i64> {
            let from = (doc.to_owned(), String::new());
            x.counters
                .range(from..)
                .take_while(|((p, _), _)| p == doc)
                .map(|((_, f), v)| (f.clone(), *v))
                .collect()
        };
        let headline = [
            (
                "statistics/lifetime".to_owned(),
                format!("statistics/{hour}"),
            ),
            (
                format!("countries/{cc}/statistics/lifetime"),
                format!("countries/{cc}/statistics/{hour}"),
            ),
        ];
        let before: Vec<HashMap<String, i64>> =
            headline.iter().map(|(l, _)| fields_of(&x, l)).collect();
        for b in ["lifetime".to_owned(), day.clone()] {
            for doc in [
                format!("statistics/{b}"),
                format!("countries/{cc}/statistics/{b}"),
            ] {
                for (field, v) in &funnel {
                    add(&mut x, doc.clone(), field, *v);
                }
            }
        }
        for b in ["lifetime".to_owned(), day.clone()] {
            let g = [
                format!("statistics/{b}"),
                format!("countries/{cc}/statistics/{b}"),
            ];
            match &e.payload {
                Payload::SessionStarted(_) => g
                    .iter()
                    .for_each(|p| add(&mut x, p.clone(), "started_sessions_count", 1)),
                Payload::SessionEnded(s) => g.iter().for_each(|p| {
                    add(&mut x, p.clone(), "ended_sessions_count", 1);
                    add(
                        &mut x,
                        p.clone(),
                        "total_sessions_duration_seconds",
                        s.seconds_duration.get() as i64,
                    );
                }),
                Payload::CategoryViewed(c) => add(
                    &mut x,
                    format!("categories/{}/statistics/{b}", c.category.id),
                    "views_count",
                    1,
                ),
                Payload::ProductViewed(p) => {
                    add(
                        &mut x,
                        format!("products/{}/statistics/{b}", p.product.id),
                        "views_count",
                        1,
                    );
                    add(
                        &mut x,
                        format!("countries/{cc}/products/{}/statistics/{b}", p.product.id),
                        "views_count",
                        1,
                    );
                    add(
                        &mut x,
                        format!("categories/{}/statistics/{b}", p.product.category.id),
                        "product_related_view_count",
                        1,
                    );
                }
                Payload::ProductAddedToCart(p) => {
                    add(
                        &mut x,
                        format!("products/{}/statistics/{b}", p.product.id),
                        "added_to_cart_quantity",
                        i64::from(p.quantity.get()),
                    );
                    add(
                        &mut x,
                        format!("products/{}/statistics/{b}", p.product.id),
                        "added_to_cart_count",
                        1,
                    );
                }
                Payload::ProductRemovedFromCart(p) => {
                    add(
                        &mut x,
                        format!("products/{}/statistics/{b}", p.product.id),
                        "removed_from_cart_quantity",
                        i64::from(p.quantity.get()),
                    );
                }
                Payload::Purchase(p) => {
                    let (gross, disc, ship) = (
                        p.total_amount.minor() as i64,
                        p.discount_amount.minor() as i64,
                        p.shipping_cost.minor() as i64,
                    );
                    let items: i64 = p.items.iter().map(|i| i64::from(i.quantity.get())).sum();
                    for path in &g {
                        add(&mut x, path.clone(), "purchase_count", 1);
                        add(&mut x, path.clone(), "total_amount_cents", gross);
                        add(&mut x, path.clone(), "total_discount_cents", disc);
                        add(&mut x, path.clone(), "total_shipping_cents", ship);
                        add(
                            &mut x,
                            path.clone(),
                            "total_paid_cents",
                            gross - disc + ship,
                        );
                        add(&mut x, path.clone(), "total_items_purchased", items);
                    }
                    add(
                        &mut x,
                        format!("payments/{}/statistics/{b}", p.payment_method.id),
                        "usage_count",
                        1,
                    );
                    add(
                        &mut x,
                        format!("payments/{}/statistics/{b}", p.payment_method.id),
                        "total_amount_cents",
                        gross,
                    );
                    let sp = format!(
                        "countries/{}/states/{}/shipping/{b}",
                        p.shipping_address.country.as_str(),
                        p.shipping_address.state.as_str()
                    );
                    add(&mut x, sp.clone(), "shipping_count", 1);
                    add(&mut x, sp.clone(), "total_items_delivered", items);
                    add(&mut x, sp, "total_shipping_cost_cents", ship);
                    for i in &p.items {
                        add(
                            &mut x,
                            format!("products/{}/statistics/{b}", i.product.id),
                            "total_items_purchased",
                            i64::from(i.quantity.get()),
                        );
                        add(
                            &mut x,
                            format!("products/{}/statistics/{b}", i.product.id),
                            "total_amount_cents",
                            i.subtotal.minor() as i64,
                        );
                        add(
                            &mut x,
                            format!("products/{}/statistics/{b}", i.product.id),
                            "orders_count",
                            1,
                        );
                    }
                }
            }
        }
        for ((lifetime, hour), before) in headline.iter().zip(before) {
            for (field, now) in fields_of(&x, lifetime) {
                let added = now - before.get(&field).copied().unwrap_or(0);
                if added != 0 {
                    add(&mut x, hour.clone(), &field, added);
                }
            }
        }
    }
    x
}

/// How much a comparison covered.
#[derive(Debug, Default, Clone, Copy)]
pub struct Compared {
    pub documents: usize,
    pub fields: usize,
}

/// Compare every expected counter and every session's event count (ids in the session
/// document and its overflow pages, and its `event_count`) with Firestore; documents are read
/// in batches.
/// The oracle speaks the original system's layout: a document per entity and bucket
/// (`products/{id}/statistics/{b}`, `countries/{cc}/states/{s}/shipping/{b}`). Analytics
/// keeps those counters as map entries of the bucket's statistics documents
/// (`products.{id}.views_count` in `statistics/{b}`; per country and shipping by state in
/// `countries/{cc}/statistics/{b}`). This translates a counter from where analytics keeps
/// it (`doc`, the field's path as segments) to the original layout, independently of the
/// schema module.
pub fn original_layout(doc: &str, field: &[String]) -> Option<(String, String)> {
    let parts: Vec<&str> = doc.split('/').collect();
    let (country, bucket) = match parts.as_slice() {
        ["statistics", b] => (None, *b),
        ["countries", cc, "statistics", b] => (Some(*cc), *b),
        _ => return None,
    };
    match (field, country) {
        ([f], _) => Some((doc.to_owned(), f.clone())),
        ([map, key, f], None) => Some((format!("{map}/{key}/statistics/{bucket}"), f.clone())),
        ([map, key, f], Some(cc)) if map == "shipping" => Some((
            format!("countries/{cc}/states/{key}/shipping/{bucket}"),
            f.clone(),
        )),
        ([map, key, f], Some(cc)) => Some((
            format!("countries/{cc}/{map}/{key}/statistics/{bucket}"),
            f.clone(),
        )),
        _ => None,
    }
}

/// The segments of a field path (`` products.`p-1`.views_count ``).
pub fn field_segments(path: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let (mut quoted, mut escaped) = (false, false);
    for c in path.chars() {
        match c {
            _ if escaped => {
                out.last_mut().expect("segment").push(c);
                escaped = false;
            }
            '\\' if quoted => escaped = true,
            '`' => quoted = !quoted,
            '.' if !quoted => out.push(String::new()),
            _ => out.last_mut().expect("segment").push(c),
        }
    }
    out
}

/// The statistics document the original layout's `path` is kept in (a country's hour: in
/// the hour's, as the entries of its `countries` map).
fn kept_in(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').collect();
    let bucket = parts.last().expect("bucket");
    let hour = bucket.len() == 13 && bucket.as_bytes()[10] == b'T';
    match parts.as_slice() {
        ["countries", cc, ..] if !hour => format!("countries/{cc}/statistics/{bucket}"),
        _ => format!("statistics/{bucket}"),
    }
}

/// Every integer field of `doc` (nested in maps too) as (segments, value).
fn int_leaves(
    fields: &HashMap<String, firestore::gcloud_sdk::google::firestore::v1::Value>,
    prefix: &[String],
    out: &mut Vec<(Vec<String>, i64)>,
) {
    use firestore::gcloud_sdk::google::firestore::v1::value::ValueType;
    for (k, v) in fields {
        let mut at = prefix.to_vec();
        at.push(k.clone());
        match &v.value_type {
            Some(ValueType::IntegerValue(n)) => out.push((at, *n)),
            Some(ValueType::MapValue(m)) => int_leaves(&m.fields, &at, out),
            _ => {}
        }
    }
}

pub async fn assert_matches(store: &Store, x: &Expected) -> Compared {
    let mut paths: Vec<String> = x.counters.keys().map(|(p, _)| kept_in(p)).collect();
    paths.sort();
    paths.dedup();
    // Each statistics document is the sum of its shards (`{path}/shards/*`, one set per
    // writer).
    let mut counters: HashMap<(String, String), i64> = HashMap::new();
    let mut documents = 0;
    for path in &paths {
        let shards = store
            .list_whole(&format!("{path}/shards"))
            .await
            .expect("read counters");
        documents += shards.len();
        for shard in shards {
            let mut leaves = Vec::new();
            int_leaves(&shard.fields, &[], &mut leaves);
            for (field, n) in leaves {
                if let Some(key) = original_layout(path, &field) {
                    *counters.entry(key).or_default() += n;
                }
            }
        }
    }
    let mut mismatches = Vec::new();
    let mut compared = Compared {
        documents,
        fields: 0,
    };
    for (key, want) in &x.counters {
        let (path, field) = key;
        let got = counters.get(key).copied().unwrap_or(0);
        compared.fields += 1;
        if got != *want {
            mismatches.push(format!("{path}.{field}: firestore {got}, expected {want}"));
        }
    }
    let session_paths: Vec<String> = x
        .session_events
        .keys()
        .map(|sid| format!("sessions_history/{sid}"))
        .collect();
    let mut mask = vec!["event_ids", "event_count", "history_truncated_events"];
    mask.extend(store::schema::DETAIL_ARRAYS);
    let sessions = store
        .get_many(&session_paths, &mask)
        .await
        .expect("read sessions");
    compared.documents += session_paths.len();
    for (n, path) in x.session_events.values().zip(&session_paths) {
        let doc = sessions.get(path);
        let count = doc.and_then(|d| int_field(d, "event_count")).unwrap_or(0);
        let mut got = doc.map_or(0, |d| str_array(d, "event_ids").len());
        for p in 0..store::schema::event_id_pages(count as u64) {
            let page = store
                .get(&format!("{path}/event_ids/{p}"))
                .await
                .expect("read");
            compared.documents += 1;
            got += page.as_ref().map_or(0, |d| str_array(d, "ids").len());
        }
        compared.fields += 2;
        if count != *n as i64 {
            mismatches.push(format!("{path}: event_count {count}, expected {n}"));
        }
        if got != *n {
            mismatches.push(format!("{path}: {got} event ids, expected {n}"));
        }
        // Its detail arrays, as readers get them, hold each of its events' elements once (in
        // any order), unless the history was truncated (long sessions): then some of them.
        let sid = path.trim_start_matches("sessions_history/");
        let no_details = BTreeMap::new();
        let want = x.session_details.get(sid).unwrap_or(&no_details);
        let got = doc.map(store::schema::session_details).unwrap_or_default();
        let truncated = doc
            .and_then(|d| int_field(d, "history_truncated_events"))
            .unwrap_or(0);
        let key = |v: &serde_json::Value| v.to_string();
        let (mut kept, mut wanted) = (0, 0);
        for array in store::schema::DETAIL_ARRAYS {
            let mut w: Vec<String> = want.get(array).into_iter().flatten().map(key).collect();
            let mut g: Vec<String> = got.get(array).into_iter().flatten().map(key).collect();
            w.sort();
            g.sort();
            compared.fields += 1;
            kept += g.len();
            wanted += w.len();
            let subset = g.iter().all(|e| w.binary_search(e).is_ok()) && {
                let mut d = g.clone();
                d.dedup();
                d.len() == g.len()
            };
            if (truncated == 0 && g != w) || !subset {
                mismatches.push(format!(
                    "{path}.{array}: {} elements, expected {}; first got {:?}, first expected {:?}",
                    g.len(),
                    w.len(),
                    g.first(),
                    w.first()
                ));
            }
        }
        if kept as i64 + truncated != wanted as i64 {
            mismatches.push(format!(
                "{path}: {kept} detail elements and {truncated} truncated, expected {wanted}"
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} aggregates differ:\n{}",
        mismatches.len(),
        x.counters.len(),
        mismatches
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        x.counters.len() > 100,
        "the comparison covered only {} counters",
        x.counters.len()
    );
    compared
}

/// A clean stop leaves no journal chunk or manifest behind, and derived documents that
/// include every flush (no stale bucket).
pub async fn assert_no_journal(store: &Store) {
    for c in ["_journal", "_flushes"] {
        assert_eq!(
            store.list(c, &[]).await.expect("list").len(),
            0,
            "{c} left behind"
        );
    }
    assert!(
        !store.list("_derived", &[]).await.expect("list").is_empty(),
        "the flushes marked the buckets they changed"
    );
    let stale = analytics::derived::survey(store)
        .await
        .expect("survey")
        .stale;
    assert!(stale.is_empty(), "derived documents left stale: {stale:?}");
}

/// Every product a ranking document (`trending/{b}`, `interest/{b}`) lists has activity in
/// its bucket. Returns how many it lists.
pub async fn assert_ranked_products_active(store: &Store, doc: &str) -> usize {
    use firestore::gcloud_sdk::google::firestore::v1::value::ValueType;
    let d = store
        .get(doc)
        .await
        .expect("read")
        .unwrap_or_else(|| panic!("{doc} materialized"));
    let Some(ValueType::ArrayValue(a)) =
        d.fields.get("products").and_then(|v| v.value_type.as_ref())
    else {
        panic!("{doc} has products");
    };
    for p in &a.values {
        let Some(ValueType::MapValue(m)) = &p.value_type else {
            panic!("{doc}: a product is a map");
        };
        let n = |f: &str| match m.fields.get(f).and_then(|v| v.value_type.as_ref()) {
            Some(ValueType::IntegerValue(n)) => *n,
            _ => 0,
        };
        assert!(
            n("units") + n("views") + n("orders") + n("interest_score").abs() > 0,
            "{doc} lists a product without activity"
        );
    }
    a.values.len()
}

/// The dead-letter topic holds the record of `original_bytes` as a 4 KiB excerpt, with
/// headers saying so.
pub fn assert_excerpt_dead_lettered(dlq: &[Rec], original_bytes: usize) {
    let excerpt = dlq
        .iter()
        .find(|r| r.headers.get(events::dlq::TRUNCATED).map(String::as_str) == Some("true"))
        .expect("the record at the size limit is dead-lettered as an excerpt");
    assert_eq!(
        excerpt.headers.get(events::dlq::ORIGINAL_BYTES),
        Some(&original_bytes.to_string())
    );
    assert_eq!(excerpt.payload.as_ref().map(Vec::len), Some(4096));
}

/// A journal chunk as a flush that died before its manifest leaves it (created just now, so
/// younger than any orphan age): it must never count, and a clean stop must not leave it.
pub async fn seed_orphan_chunk(store: &Store, flush: &str) {
    use store::deltas::{DocDelta, FieldValue};
    let mut delta = DocDelta::default();
    delta.increments.insert("views_count".into(), 1_000_000);
    let chunk = vec![("products/orphan/statistics/lifetime".to_owned(), delta)];
    let write = store.replace_write(
        &format!("_journal/{flush}-0"),
        BTreeMap::from([
            (
                "deltas".into(),
                FieldValue::Str(serde_json::to_string(&chunk).expect("json")),
            ),
            ("flush".into(), flush.into()),
            ("created_at".into(), FieldValue::Time(chrono::Utc::now())),
        ]),
        store::Precondition::Exists(false),
    );
    store
        .commit(vec![write])
        .await
        .expect("orphan chunk seeded");
}
