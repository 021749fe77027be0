//! The security suite: attacks on the secure cluster and the analytics pipeline, each with
//! an asserted verdict, plus positive controls so a suite that passes because nothing works
//! is impossible.
//!
//! # Layout
//! - [`settings`]: the target cluster, the identities used, the scenario subcommands.
//! - [`probe`]: one client doing one thing, watched until it gets through or is refused.
//! - [`scenarios`]: transport, authentication and authorization attacks; controls.
//! - [`raw_admin`]: ACL and config changes through librdkafka directly.
//! - [`poison`]: malformed and hostile events against the running analytics service,
//!   checked in Firestore through `store::schema`.
//! - [`forward`]: the loopback relay for the host name attack.
//! - [`kafka_io`]: the suite's own reads (partition ends, read-back of what landed).
//! - [`outcome`]: verdicts and the table.
//!
//! Every attack that tries to write marks its record with a per-run key; after all
//! scenarios the suite reads both topics back from where they ended at the start and
//! turns any attack whose record landed into a breach, whatever its client reported.

pub mod forward;
pub mod kafka_io;
pub mod outcome;
pub mod poison;
pub mod probe;
pub mod raw_admin;
pub mod scenarios;
pub mod settings;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::future::join_all;
use outcome::{Expect, Outcome, Verdict};
use settings::{Scenario, Target};

/// A record an attack tried to write.
#[derive(Debug, Clone)]
struct Attempt {
    check: String,
    topic: String,
    key: String,
}

/// One run of the suite against one target.
#[derive(Debug)]
pub struct Suite {
    pub target: Target,
    /// Marks this run's records and names (8 hex digits).
    pub run: String,
    attempts: Mutex<Vec<Attempt>>,
    partitions: HashMap<String, i32>,
    events_start: Result<kafka_io::Ends, String>,
    dlq_start: Result<kafka_io::Ends, String>,
}

impl Suite {
    /// Note where both topics end (as their legitimate readers) before any attack.
    pub async fn prepare(target: Target) -> Suite {
        let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        let analytics = target.analytics.client_config("attacker-readback");
        let injector = target.injector.client_config("attacker-readback");
        let (events, dlq) = futures::join!(
            kafka_io::ends(
                &analytics,
                &target.analytics_group,
                &target.events_topic,
                target.timeout
            ),
            kafka_io::ends(
                &injector,
                &target.injector_group,
                &target.dlq_topic,
                target.timeout
            ),
        );
        let mut partitions = HashMap::new();
        for (topic, ends) in [(&target.events_topic, &events), (&target.dlq_topic, &dlq)] {
            if let Ok(e) = ends {
                partitions.insert(topic.clone(), i32::try_from(e.len()).unwrap_or(1));
            }
        }
        Suite {
            run,
            attempts: Mutex::new(Vec::new()),
            partitions,
            events_start: events.map_err(|e| format!("{e:#}")),
            dlq_start: dlq.map_err(|e| format!("{e:#}")),
            target,
        }
    }

    /// Run `scenarios` concurrently, then the read-back; the outcomes in a stable order.
    pub async fn run(&self, scenarios: &[Scenario]) -> Vec<Outcome> {
        let each: Vec<Scenario> = scenarios.iter().flat_map(|s| s.expand()).collect();
        let mut outcomes: Vec<Outcome> = join_all(each.iter().map(|s| self.scenario(*s)))
            .await
            .into_iter()
            .flatten()
            .collect();
        if !self.attempts().is_empty() {
            let read_backs = self.read_back(&mut outcomes).await;
            outcomes.extend(read_backs);
        }
        outcomes
    }

    async fn scenario(&self, s: Scenario) -> Vec<Outcome> {
        match s {
            Scenario::Controls => self.controls().await,
            Scenario::ImpostorCa => self.impostor_ca().await,
            Scenario::Hostname => self.hostname().await,
            Scenario::WrongPassword => self.wrong_password().await,
            Scenario::UnknownUser => self.unknown_user().await,
            Scenario::NoSasl => self.no_sasl().await,
            Scenario::Mechanism => self.mechanism().await,
            Scenario::Acl => self.acl().await,
            Scenario::Poison => self.poison().await,
            // `run` expands it into the others.
            Scenario::All => Vec::new(),
        }
    }

    fn marker(&self, check: &str) -> String {
        format!("atk-{}-{}", self.run, check.replace('/', "-"))
    }

    fn attempted(&self, check: &str, topic: &str, key: &str) {
        self.attempts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Attempt {
                check: check.to_owned(),
                topic: topic.to_owned(),
                key: key.to_owned(),
            });
    }

    fn attempts(&self) -> Vec<Attempt> {
        self.attempts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn partitions(&self, topic: &str) -> i32 {
        self.partitions.get(topic).copied().unwrap_or(1)
    }

    /// Read both topics back and turn every attack whose record landed into a breach. The
    /// read-backs are controls themselves: if they cannot read, nothing is proven.
    async fn read_back(&self, outcomes: &mut [Outcome]) -> Vec<Outcome> {
        let t = &self.target;
        let attempts = self.attempts();
        let mut controls = Vec::new();
        for (topic, settings, group, start) in [
            (
                &t.events_topic,
                &t.analytics,
                &t.analytics_group,
                &self.events_start,
            ),
            (
                &t.dlq_topic,
                &t.injector,
                &t.injector_group,
                &self.dlq_start,
            ),
        ] {
            let mine: Vec<&Attempt> = attempts.iter().filter(|a| &a.topic == topic).collect();
            if mine.is_empty() {
                continue;
            }
            let name = format!("read-back/{topic}");
            let started = Instant::now();
            let records = match start {
                Ok(start) => {
                    let config = settings.client_config("attacker-readback");
                    kafka_io::read_since(&config, group, topic, start, t.timeout * 3).await
                }
                Err(e) => Err(anyhow::anyhow!("no start offsets: {e}")),
            };
            let records = match records {
                Ok(r) => r,
                Err(e) => {
                    controls.push(Outcome::error(name, Expect::Accept, &e));
                    continue;
                }
            };
            let mut landed = 0;
            for a in &mine {
                if let Some(r) = records
                    .iter()
                    .find(|r| r.key.as_deref() == Some(a.key.as_bytes()))
                {
                    landed += 1;
                    if let Some(o) = outcomes.iter_mut().find(|o| o.name == a.check) {
                        o.verdict = Verdict::Breached;
                        o.observed = format!(
                            "its record landed in {topic}/{}/{} (client saw: {})",
                            r.partition, r.offset, o.observed
                        );
                    }
                }
            }
            controls.push(Outcome::new(
                name,
                settings.username.clone(),
                Expect::Accept,
                Verdict::Passed,
                started.elapsed(),
                format!(
                    "read {} record(s) written during the run; {landed} of the {} attack record(s) present",
                    records.len(),
                    mine.len()
                ),
            ));
        }
        controls
    }
}

/// How long a whole run may take at most (all scenarios run concurrently).
pub fn run_bound(target: &Target) -> Duration {
    target.poison_timeout + target.timeout * 6
}
