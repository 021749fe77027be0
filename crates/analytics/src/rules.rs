//! What analytics counts beyond the wire contract (which [`events::decode_with_limit`]
//! enforces): the record's key is its session, money is in the deployment's currency, the
//! event's time is near its ingestion. Pure; a record that fails is dead-lettered with the
//! rule's reason.

use events::{Currency, Event, Payload};

use crate::deadletter::Rejection;
use crate::worker::Record;

/// Which event times are counted, relative to the record's ingestion time (its Kafka
/// timestamp): from `max_age` before it to `max_lead` after it (clock skew). Events outside
/// are dead-lettered (`event_time_out_of_window`): a year-2999 or pre-1970 stamp would
/// otherwise create buckets nobody reads. Deterministic for a record, so a replay decides
/// the same.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventWindow {
    pub max_age: chrono::TimeDelta,
    pub max_lead: chrono::TimeDelta,
}

impl EventWindow {
    pub fn check(
        &self,
        event_time: chrono::DateTime<chrono::Utc>,
        ingested_ms: i64,
    ) -> Result<(), String> {
        let ingested = chrono::DateTime::from_timestamp_millis(ingested_ms).unwrap_or_default();
        if event_time < ingested - self.max_age {
            Err(format!(
                "event time {event_time} is more than {} days before its ingestion at {ingested}",
                self.max_age.num_days()
            ))
        } else if event_time > ingested + self.max_lead {
            Err(format!(
                "event time {event_time} is more than {} s after its ingestion at {ingested}",
                self.max_lead.num_seconds()
            ))
        } else {
            Ok(())
        }
    }
}

/// Rules beyond the wire contract.
pub fn check(
    currency: Currency,
    window: &EventWindow,
    event: &Event,
    record: &Record,
) -> Result<(), Rejection> {
    if record.key.as_deref() != Some(event.key().as_bytes()) {
        return Err(Rejection {
            reason: "wrong_key",
            detail: "the record key is not the event's session_id".into(),
        });
    }
    if let Payload::Purchase(p) = &event.payload {
        if p.currency() != currency {
            return Err(Rejection {
                reason: "unsupported_currency",
                detail: format!(
                    "purchase in {} but this deployment counts {}",
                    p.currency().as_str(),
                    currency.as_str()
                ),
            });
        }
    }
    let product = match &event.payload {
        Payload::ProductViewed(p) => Some(&p.product),
        Payload::ProductAddedToCart(p) | Payload::ProductRemovedFromCart(p) => Some(&p.product),
        _ => None,
    };
    if product.is_some_and(|p| p.currency != currency) {
        return Err(Rejection {
            reason: "unsupported_currency",
            detail: format!(
                "product priced in another currency than {}",
                currency.as_str()
            ),
        });
    }
    let ingested = record
        .timestamp_ms
        .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
    if let Err(detail) = window.check(event.timestamp, ingested) {
        return Err(Rejection {
            reason: "event_time_out_of_window",
            detail,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use shop::catalog::Catalog;
    use shop::session::{play, Behavior};

    use super::*;

    fn purchase_session() -> Vec<Event> {
        let catalog = Catalog::generate(3, 50);
        let behavior = Behavior {
            purchase_probability: 1.0,
            add_to_cart_probability: 1.0,
            ..Behavior::default()
        };
        play(
            &mut rand::rngs::StdRng::seed_from_u64(3),
            &catalog,
            &catalog.user(3),
            chrono::Utc::now(),
            &behavior,
        )
    }

    fn record_of(event: &Event, key: &str) -> Record {
        Record {
            partition: 0,
            offset: 0,
            key: Some(key.as_bytes().to_vec()),
            payload: None,
            timestamp_ms: Some(event.timestamp.timestamp_millis()),
            generation: 0,
            replay: false,
        }
    }

    #[test]
    fn a_session_keyed_by_its_id_in_the_shop_currency_passes_and_a_wrong_key_or_currency_does_not()
    {
        let window = EventWindow {
            max_age: chrono::TimeDelta::days(30),
            max_lead: chrono::TimeDelta::minutes(5),
        };
        let events = purchase_session();
        assert!(events
            .iter()
            .any(|e| matches!(e.payload, Payload::Purchase(_))));
        for e in &events {
            let key = e.key().to_string();
            assert!(check(Currency::USD, &window, e, &record_of(e, &key)).is_ok());
            let wrong = check(Currency::USD, &window, e, &record_of(e, "another-session"));
            assert_eq!(wrong.map_err(|r| r.reason), Err("wrong_key"));
        }
        let euro = Currency::try_from("EUR".to_owned()).expect("supported");
        let purchase = events
            .iter()
            .find(|e| matches!(e.payload, Payload::Purchase(_)))
            .expect("a purchase");
        let key = purchase.key().to_string();
        let refused = check(euro, &window, purchase, &record_of(purchase, &key));
        assert_eq!(refused.map_err(|r| r.reason), Err("unsupported_currency"));
    }

    #[test]
    fn the_event_window_is_relative_to_ingestion() {
        let w = EventWindow {
            max_age: chrono::TimeDelta::days(30),
            max_lead: chrono::TimeDelta::minutes(5),
        };
        let at = chrono::DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z")
            .expect("time")
            .to_utc();
        let ms = at.timestamp_millis();
        assert!(w.check(at, ms).is_ok());
        assert!(w.check(at - chrono::TimeDelta::days(29), ms).is_ok());
        assert!(w.check(at + chrono::TimeDelta::minutes(4), ms).is_ok());
        assert!(w.check(at - chrono::TimeDelta::days(31), ms).is_err());
        assert!(w.check(at + chrono::TimeDelta::minutes(6), ms).is_err());
        let y2999 = chrono::DateTime::parse_from_rfc3339("2999-01-01T00:00:00Z")
            .expect("time")
            .to_utc();
        assert!(w.check(y2999, ms).is_err());
        assert!(w.check(chrono::DateTime::UNIX_EPOCH, ms).is_err());
    }
}
