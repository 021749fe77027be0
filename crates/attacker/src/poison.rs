//! Poison events: the injector writes malformed and hostile records between valid ones
//! while analytics runs. Each poison must reach the dead-letter topic with a reason, leave
//! no trace in Firestore, and the valid events around them must still be counted, the last
//! one written only after every poison was dead-lettered (so analytics survived them).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use store::schema::{self, path, Entity, ProductStats, SessionState, LIFETIME};
use uuid::Uuid;

use crate::kafka_io::{self, Record};
use crate::outcome::{Expect, Outcome, Verdict};
use crate::probe;
use crate::Suite;

/// A record ready to write: its key and bytes.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub key: String,
    pub bytes: Vec<u8>,
}

fn product_id(run: &str, tag: &str) -> String {
    format!("atk-{run}-{tag}")
}

/// A valid `product_viewed` JSON value of `session` for product `atk-{run}-{tag}`.
fn viewed(run: &str, tag: &str, session: Uuid) -> Value {
    json!({
        "event_id": Uuid::new_v4(),
        "event_type": "product_viewed",
        "session_id": session,
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "user_id": Uuid::new_v4(),
        "location": {"country": "IT", "state": "Lombardia", "city": "Milano",
                     "latitude": 45.4642, "longitude": 9.19},
        "parameters": {"product": {
            "id": product_id(run, tag), "name": "Attack Probe",
            "category": {"id": "attack-probes", "name": "Attack probes"},
            "price": 10.5, "currency": "USD"}},
        "schema_version": events::SCHEMA_VERSION,
    })
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// `v` with its product id rewritten by `f`.
fn with_product_id(v: &mut Value, f: impl Fn(&str) -> String) -> &Value {
    let id = f(v["parameters"]["product"]["id"]
        .as_str()
        .unwrap_or_default());
    v["parameters"]["product"]["id"] = json!(id);
    v
}

/// A valid event, keyed by its session as the simulator keys it.
pub fn valid_event(run: &str, tag: &str, session: Uuid) -> Prepared {
    Prepared {
        key: session.to_string(),
        bytes: bytes(&viewed(run, tag, session)),
    }
}

/// One poison record and what analytics must say of it.
#[derive(Debug, Clone)]
pub struct Poison {
    pub name: &'static str,
    pub record: Prepared,
    /// The session whose statistics must stay absent (when the bytes name one).
    pub session: Uuid,
    /// The product whose statistics must stay absent (when its id is a safe one).
    pub product: Option<String>,
    /// The dead-letter reasons that are right for it.
    pub reasons: &'static [&'static str],
}

/// The poison catalog of a run: every record keyed by a unique marker (except where the key
/// itself is the fault), so its dead letter can be found.
pub fn catalog(run: &str) -> Vec<Poison> {
    let mut out = Vec::new();
    let mut add = |name: &'static str,
                   reasons: &'static [&'static str],
                   safe_product: bool,
                   build: &dyn Fn(&mut Value) -> Vec<u8>| {
        let session = Uuid::new_v4();
        let tag = format!("poison-{name}");
        let mut v = viewed(run, &tag, session);
        let bytes = build(&mut v);
        out.push(Poison {
            name,
            record: Prepared {
                key: format!("atk-{run}-{tag}"),
                bytes,
            },
            session,
            product: safe_product.then(|| product_id(run, &tag)),
            reasons,
        });
    };
    add("malformed-json", &["invalid_json"], true, &|v| {
        let text = v.to_string();
        text.as_bytes()[..text.len() / 2].to_vec()
    });
    add("empty-payload", &["invalid_json"], false, &|_| Vec::new());
    add("wrong-type", &["wrong_type"], true, &|v| {
        v["parameters"]["product"]["price"] = json!("10.50");
        bytes(v)
    });
    add("unknown-event-type", &["unknown_event_type"], true, &|v| {
        v["event_type"] = json!("coupon_applied");
        bytes(v)
    });
    add(
        "mismatched-parameters",
        &["parameters_mismatch"],
        true,
        &|v| {
            v["parameters"] = json!({"category": {"id": "attack-probes", "name": "Attack probes"}});
            bytes(v)
        },
    );
    add("oversized", &["oversized"], true, &|v| {
        v["parameters"]["product"]["name"] = json!("x".repeat(events::MAX_EVENT_BYTES + 1));
        bytes(v)
    });
    add("id-path-separator", &["unsafe_id"], false, &|v| {
        bytes(with_product_id(v, |id| {
            format!("{id}/../../{}", path::statistics(LIFETIME))
        }))
    });
    add("id-reserved", &["unsafe_id"], false, &|v| {
        bytes(with_product_id(v, |id| format!("__{id}__")))
    });
    add("id-too-long", &["unsafe_id"], false, &|v| {
        bytes(with_product_id(v, |id| {
            format!("{id}-{}", "x".repeat(2000))
        }))
    });
    add("id-not-utf8", &["not_utf8"], false, &|v| {
        let marker = "NOT-UTF8";
        let text = bytes(with_product_id(v, |id| format!("{id}-{marker}")));
        let at = text
            .windows(marker.len())
            .position(|w| w == marker.as_bytes())
            .unwrap_or(0);
        let mut out = text[..at].to_vec();
        out.extend_from_slice(&[0xff, 0xfe, 0xc3]);
        out.extend_from_slice(&text[at + marker.len()..]);
        out
    });
    // A well-formed event under another session's key would split a session across
    // workers and defeat its de-duplication.
    add("wrong-key", &["wrong_key"], true, &|v| bytes(v));
    out
}

impl Suite {
    pub(crate) async fn poison(&self) -> Vec<Outcome> {
        match self.poison_inner().await {
            Ok(out) => out,
            Err(e) => vec![Outcome::error("poison/run", Expect::Reject, &e)],
        }
    }

    async fn poison_inner(&self) -> anyhow::Result<Vec<Outcome>> {
        let t = &self.target;
        let store = t.firestore.connect().await?;
        let dlq_start = self.dlq_start.clone().map_err(anyhow::Error::msg)?;
        let injector = t.injector.client_config("attacker-poison");
        let session = Uuid::new_v4();
        let before = valid_event(&self.run, "valid", session);
        let poisons = catalog(&self.run);
        let started = Instant::now();

        self.inject(&injector, &before).await?;
        for p in &poisons {
            self.inject(&injector, &p.record).await?;
        }
        // Every poison dead-lettered (or the time is up), then the last valid event.
        let deadline = started + t.poison_timeout;
        let mut found: Vec<Option<(Duration, Record)>> = vec![None; poisons.len()];
        while found.iter().any(Option::is_none) && Instant::now() < deadline {
            let records = kafka_io::read_since(
                &injector,
                &t.injector_group,
                &t.dlq_topic,
                &dlq_start,
                t.timeout,
            )
            .await?;
            for (slot, p) in found.iter_mut().zip(&poisons) {
                if slot.is_none() {
                    if let Some(r) = records
                        .iter()
                        .find(|r| r.key.as_deref() == Some(p.record.key.as_bytes()))
                    {
                        *slot = Some((started.elapsed(), r.clone()));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let after = valid_event(&self.run, "valid", session);
        self.inject(&injector, &after).await?;

        // The valid events: both counted, exactly once.
        let valid_product = product_id(&self.run, "valid");
        let product_doc = path::statistics(LIFETIME);
        let session_doc = path::session(session);
        let want_ids = [event_id(&before), event_id(&after)];
        let mut counted = None;
        while Instant::now() < deadline {
            let views = schema::read_counters(&store, &product_doc)
                .await?
                .map(|d| ProductStats::read(Some(&d), &valid_product).views)
                .filter(|v| *v > 0);
            let mut ids = store
                .get(&session_doc)
                .await?
                .map(|d| SessionState::read(&d).event_ids)
                .unwrap_or_default();
            ids.sort();
            let mut want: Vec<String> = want_ids.to_vec();
            want.sort();
            if views == Some(2) && ids == want {
                counted = Some(started.elapsed());
                break;
            }
            if views.is_some_and(|v| v > 2) || ids.len() > 2 {
                anyhow::bail!(
                    "the valid events were over-counted: views {views:?}, session events {ids:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let mut out = vec![match counted {
            Some(at) => Outcome::new("poison/valid-events-still-counted", &t.injector.username, Expect::Accept, Verdict::Passed, at, "2 valid events around the poison counted once each; the second written after every poison was dead-lettered"),
            None => Outcome::new("poison/valid-events-still-counted", &t.injector.username, Expect::Accept, Verdict::ControlFailed, started.elapsed(), format!("{product_doc} and {session_doc} did not show the 2 valid events within {:?}", t.poison_timeout)),
        }];

        // Each poison: dead-lettered with a right reason, nothing derived from it.
        for (p, seen) in poisons.iter().zip(found) {
            let mut derived = Vec::new();
            let session = path::session(p.session);
            if store.get(&session).await?.is_some() {
                derived.push(session);
            }
            if let Some(product) = &p.product {
                let stats = schema::read_counters(&store, &path::statistics(LIFETIME)).await?;
                if schema::keys(stats.as_ref(), Entity::Product.collection()).contains(product) {
                    derived.push(format!("{} ({product})", path::statistics(LIFETIME)));
                }
            }
            let name = format!("poison/{}", p.name);
            let who = t.injector.username.as_str();
            out.push(match (derived.is_empty(), seen) {
                (false, _) => Outcome::new(
                    name,
                    who,
                    Expect::Reject,
                    Verdict::Breached,
                    started.elapsed(),
                    format!("counted in Firestore: {}", derived.join(", ")),
                ),
                (true, None) => Outcome::new(
                    name,
                    who,
                    Expect::Reject,
                    Verdict::Inconclusive,
                    started.elapsed(),
                    format!("not dead-lettered within {:?}", t.poison_timeout),
                ),
                (true, Some((at, r))) => {
                    let reason = r.header(events::dlq::REASON).unwrap_or("");
                    let detail = r.header(events::dlq::DETAIL).unwrap_or("");
                    let intact =
                        r.payload.as_deref().unwrap_or_default() == p.record.bytes.as_slice();
                    let verdict = if p.reasons.contains(&reason) && intact {
                        Verdict::Rejected
                    } else {
                        Verdict::Inconclusive
                    };
                    let note = if intact {
                        ""
                    } else {
                        " (dead letter does not carry the original bytes)"
                    };
                    Outcome::new(
                        name,
                        who,
                        Expect::Reject,
                        verdict,
                        at,
                        format!("dead-lettered as {reason}: {detail}{note}"),
                    )
                }
            });
        }
        Ok(out)
    }

    async fn inject(
        &self,
        config: &rdkafka::ClientConfig,
        record: &Prepared,
    ) -> anyhow::Result<()> {
        let t = &self.target;
        let obs = probe::produce(
            config,
            &t.events_topic,
            &record.key,
            &record.bytes,
            t.timeout,
            &[],
        )
        .await;
        if obs.got_through.is_none() {
            anyhow::bail!(
                "the injector could not write to {}: {:?}",
                t.events_topic,
                obs.other
            );
        }
        Ok(())
    }
}

fn event_id(p: &Prepared) -> String {
    serde_json::from_slice::<Value>(&p.bytes)
        .ok()
        .and_then(|v| v["event_id"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_events_decode_and_every_poison_is_refused_by_the_decoder_or_the_key_check() {
        let run = "t1";
        let good = valid_event(run, "valid", Uuid::new_v4());
        let e = events::decode(&good.bytes).expect("the valid event decodes");
        assert_eq!(good.key, e.session_id.to_string());
        for p in catalog(run) {
            match events::decode(&p.record.bytes) {
                Err(err) => assert!(
                    p.reasons.contains(&err.reason()),
                    "{}: decoder says {} ({err}), expected {:?}",
                    p.name,
                    err.reason(),
                    p.reasons
                ),
                Ok(e) => {
                    assert_eq!(p.reasons, &["wrong_key"], "{} decoded", p.name);
                    assert_ne!(p.record.key, e.session_id.to_string());
                }
            }
        }
    }

    #[test]
    fn poison_keys_are_unique_markers_of_the_run() {
        let c = catalog("r1");
        let mut keys: Vec<&str> = c.iter().map(|p| p.record.key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), c.len());
        assert!(keys.iter().all(|k| k.starts_with("atk-r1-")));
    }
}
