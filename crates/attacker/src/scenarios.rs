//! The transport, authentication and authorization attacks, and the positive controls.
//! Every attack is a legitimate client's configuration with exactly one thing wrong, so a
//! rejection can only come from that one thing.

use rdkafka::ClientConfig;

use crate::forward::Relay;
use crate::outcome::{Expect, Outcome};
use crate::probe::{self, AdminOp, Read, Refusal};
use crate::raw_admin::{self, Change};
use crate::Suite;

/// The legitimate configuration of `settings`' principal.
fn legit(settings: &platform::KafkaSettings, check: &str) -> ClientConfig {
    settings.client_config(&format!("attacker-{check}"))
}

fn strip_sasl(config: &mut ClientConfig) {
    for key in ["sasl.mechanism", "sasl.username", "sasl.password"] {
        config.remove(key);
    }
}

impl Suite {
    /// Attempt to produce a marked record; the read-back at the end of the run checks that
    /// it did not land.
    async fn try_produce(
        &self,
        check: String,
        principal: &str,
        config: ClientConfig,
        topic: &str,
        refusal: Refusal,
    ) -> Outcome {
        let key = self.marker(&check);
        self.attempted(&check, topic, &key);
        let payload = format!("attack record of check {check}");
        probe::produce(
            &config,
            topic,
            &key,
            payload.as_bytes(),
            self.target.timeout,
            refusal,
        )
        .await
        .judge(&check, principal, Expect::Reject)
    }

    async fn try_read(
        &self,
        check: String,
        principal: &str,
        config: ClientConfig,
        read: Read,
        refusal: Refusal,
    ) -> Outcome {
        probe::consume(&config, read, self.target.timeout, refusal)
            .await
            .judge(&check, principal, Expect::Reject)
    }

    fn assign(&self, topic: &str) -> Read {
        Read::Assign {
            topic: topic.to_owned(),
            partitions: self.partitions(topic),
        }
    }

    /// A producer (as the simulator) and a consumer (as analytics) whose configurations
    /// differ from the legitimate ones by `change`.
    async fn pair(
        &self,
        scenario: &str,
        refusal: Refusal,
        change: impl Fn(&mut ClientConfig),
    ) -> Vec<Outcome> {
        let t = &self.target;
        let mut producer = legit(&t.simulator, scenario);
        change(&mut producer);
        let mut consumer = legit(&t.analytics, scenario);
        consumer.set("group.id", &t.analytics_group);
        change(&mut consumer);
        let producer_user = producer.get("sasl.username").unwrap_or("-").to_owned();
        let consumer_user = consumer.get("sasl.username").unwrap_or("-").to_owned();
        let (p, c) = futures::join!(
            self.try_produce(
                format!("{scenario}/producer"),
                &producer_user,
                producer,
                &t.events_topic,
                refusal
            ),
            self.try_read(
                format!("{scenario}/consumer"),
                &consumer_user,
                consumer,
                self.assign(&t.events_topic),
                refusal
            ),
        );
        vec![p, c]
    }

    pub(crate) async fn impostor_ca(&self) -> Vec<Outcome> {
        let mut out = match &self.target.impostor_ca {
            Some(ca) => {
                let ca = ca.to_string_lossy().into_owned();
                self.pair("impostor-ca", probe::TLS, |c| {
                    c.set("ssl.ca.location", &ca);
                })
                .await
            }
            None => vec![Outcome::error(
                "impostor-ca/producer",
                Expect::Reject,
                &anyhow::anyhow!("no impostor CA: set ATTACK_IMPOSTOR_CA (make certs creates one)"),
            )],
        };
        // Mis-configured trust: the system's CA store, which does not hold the cluster's CA.
        out.extend(
            self.pair("system-trust", probe::TLS, |c| {
                c.set("ssl.ca.location", "probe");
            })
            .await,
        );
        out
    }

    pub(crate) async fn hostname(&self) -> Vec<Outcome> {
        let t = &self.target;
        let first = t
            .simulator
            .brokers
            .split(',')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let relay = match Relay::start(first).await {
            Ok(r) => r,
            Err(e) => {
                return vec![Outcome::error(
                    "hostname/relay",
                    Expect::Reject,
                    &anyhow::Error::new(e).context("cannot start the loopback relay"),
                )]
            }
        };
        let via = relay.addr.to_string();
        let mut out = self
            .pair("hostname", probe::TLS, |c| {
                c.set("bootstrap.servers", &via);
            })
            .await;
        // Control: the same route with the name check off reaches the broker, so the
        // refusal above is the host name verification and not a broken relay.
        let mut control = legit(&t.simulator, "hostname-control");
        control
            .set("bootstrap.servers", &via)
            .set("ssl.endpoint.identification.algorithm", "none");
        out.push(probe::metadata(&control, t.timeout, &[]).await.judge(
            "hostname/control-without-name-check",
            &t.simulator.username,
            Expect::Accept,
        ));
        drop(relay);
        out
    }

    pub(crate) async fn wrong_password(&self) -> Vec<Outcome> {
        let wrong = random_password();
        self.pair("wrong-password", probe::AUTHENTICATION, |c| {
            c.set("sasl.password", &wrong);
        })
        .await
    }

    pub(crate) async fn unknown_user(&self) -> Vec<Outcome> {
        let user = format!("mallory-{}", self.run);
        let password = random_password();
        self.pair("unknown-user", probe::AUTHENTICATION, |c| {
            c.set("sasl.username", &user)
                .set("sasl.password", &password);
        })
        .await
    }

    pub(crate) async fn no_sasl(&self) -> Vec<Outcome> {
        let (mut plain, mut tls) = futures::join!(
            self.pair("plaintext", probe::TRANSPORT, |c| {
                strip_sasl(c);
                c.remove("ssl.ca.location");
                c.remove("ssl.endpoint.identification.algorithm");
                c.remove("enable.ssl.certificate.verification");
                c.set("security.protocol", "plaintext");
            }),
            self.pair("tls-without-sasl", probe::TRANSPORT, |c| {
                strip_sasl(c);
                c.set("security.protocol", "ssl");
            })
        );
        plain.append(&mut tls);
        plain
    }

    pub(crate) async fn mechanism(&self) -> Vec<Outcome> {
        let other = match self.target.simulator.mechanism {
            platform::ScramMechanism::ScramSha256 => "SCRAM-SHA-512",
            platform::ScramMechanism::ScramSha512 => "SCRAM-SHA-256",
        };
        // The real password over PLAIN would be sent in the clear inside TLS: the listener
        // must refuse the mechanism before any credential is checked.
        let (mut plain, mut scram) = futures::join!(
            self.pair("sasl-plain", probe::MECHANISM, |c| {
                c.set("sasl.mechanism", "PLAIN");
            }),
            self.pair("other-scram", probe::MECHANISM, |c| {
                c.set("sasl.mechanism", other);
            })
        );
        plain.append(&mut scram);
        plain
    }

    pub(crate) async fn acl(&self) -> Vec<Outcome> {
        let t = &self.target;
        let sim = &t.simulator.username;
        let ana = &t.analytics.username;
        let simulator = legit(&t.simulator, "acl");
        let analytics = legit(&t.analytics, "acl");
        let in_group = |base: &ClientConfig, group: &str| {
            let mut c = base.clone();
            c.set("group.id", group);
            c
        };
        let subscribe = |topic: &str| Read::Subscribe {
            topic: topic.to_owned(),
        };
        let rogue_group = format!("analytics-rogue-{}", self.run);
        let new_topic = format!("atk-{}-topic", self.run);
        let admin = |check: &'static str, who: &str, config: &ClientConfig, op: AdminOp| {
            let config = config.clone();
            let who = who.to_owned();
            async move {
                probe::admin(&config, op, t.timeout, probe::ADMIN_DENIED)
                    .await
                    .judge(check, &who, Expect::Reject)
            }
        };
        let reads = futures::join!(
            self.try_read(
                "acl/simulator-reads-events".into(),
                sim,
                in_group(&simulator, &t.analytics_group),
                self.assign(&t.events_topic),
                probe::TOPIC_DENIED
            ),
            self.try_read(
                "acl/simulator-joins-analytics-group".into(),
                sim,
                in_group(&simulator, &t.analytics_group),
                subscribe(&t.events_topic),
                probe::GROUP_DENIED
            ),
            self.try_read(
                "acl/analytics-uses-another-group".into(),
                ana,
                in_group(&analytics, &rogue_group),
                subscribe(&t.events_topic),
                probe::GROUP_DENIED
            ),
            self.try_read(
                "acl/simulator-reads-dlq".into(),
                sim,
                in_group(&simulator, &t.analytics_group),
                self.assign(&t.dlq_topic),
                probe::TOPIC_DENIED
            ),
            self.try_read(
                "acl/analytics-reads-dlq".into(),
                ana,
                in_group(&analytics, &t.analytics_group),
                self.assign(&t.dlq_topic),
                probe::TOPIC_DENIED
            ),
        );
        let writes = futures::join!(
            self.try_produce(
                "acl/analytics-writes-events".into(),
                ana,
                analytics.clone(),
                &t.events_topic,
                probe::TOPIC_DENIED
            ),
            self.try_produce(
                "acl/simulator-writes-dlq".into(),
                sim,
                simulator.clone(),
                &t.dlq_topic,
                probe::TOPIC_DENIED
            ),
        );
        let admins = futures::join!(
            admin(
                "acl/simulator-creates-topic",
                sim,
                &simulator,
                AdminOp::CreateTopic(new_topic.clone())
            ),
            admin(
                "acl/analytics-creates-topic",
                ana,
                &analytics,
                AdminOp::CreateTopic(new_topic)
            ),
            admin(
                "acl/simulator-deletes-events",
                sim,
                &simulator,
                AdminOp::DeleteTopic(t.events_topic.clone())
            ),
            admin(
                "acl/analytics-deletes-dlq",
                ana,
                &analytics,
                AdminOp::DeleteTopic(t.dlq_topic.clone())
            ),
        );
        let mut out = vec![
            reads.0, reads.1, reads.2, reads.3, reads.4, writes.0, writes.1,
        ];
        out.extend([admins.0, admins.1, admins.2, admins.3]);
        out.extend(self.raw_changes().await);
        out
    }

    /// Both service principals try to alter a topic config, to grant an ACL and to delete
    /// ACLs (requests the rdkafka crate does not wrap faithfully; see [`raw_admin`]).
    async fn raw_changes(&self) -> Vec<Outcome> {
        let t = &self.target;
        let ghost = format!("User:atk-{}", self.run);
        let changes = [
            (
                "alters-config",
                Change::AlterTopicConfig {
                    topic: t.events_topic.clone(),
                    key: "cleanup.policy".into(),
                    value: "delete".into(),
                },
            ),
            (
                "creates-acl",
                Change::CreateAcl {
                    principal: ghost.clone(),
                    topic: format!("atk-{}-acl", self.run),
                },
            ),
            ("deletes-acls", Change::DeleteAcls { principal: ghost }),
        ];
        let mut checks = Vec::new();
        for settings in [&t.simulator, &t.analytics] {
            for (what, change) in &changes {
                let name = format!("acl/{}-{what}", settings.username);
                let config = legit(settings, "acl");
                let change = change.clone();
                checks.push(async move {
                    raw_admin::attempt(&config, change, t.timeout, probe::ADMIN_DENIED)
                        .await
                        .judge(&name, &settings.username, Expect::Reject)
                });
            }
        }
        futures::future::join_all(checks).await
    }

    /// The legitimate principals do their jobs: without this, a suite in which nothing
    /// works at all would report every attack as rejected.
    pub(crate) async fn controls(&self) -> Vec<Outcome> {
        let t = &self.target;
        let event = crate::poison::valid_event(&self.run, "control", uuid::Uuid::new_v4());
        let produced = probe::produce(
            &legit(&t.simulator, "control"),
            &t.events_topic,
            &event.key,
            &event.bytes,
            t.timeout,
            &[],
        )
        .await
        .judge(
            "controls/simulator-produces-events",
            &t.simulator.username,
            Expect::Accept,
        );
        let mut reader = legit(&t.analytics, "control");
        reader.set("group.id", &t.analytics_group);
        // The consumer probe reports a record read as "got through": here, the success.
        let read = probe::consume(&reader, self.assign(&t.events_topic), t.timeout, &[])
            .await
            .judge(
                "controls/analytics-reads-events",
                &t.analytics.username,
                Expect::Accept,
            );
        vec![produced, read]
    }
}

fn random_password() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}
