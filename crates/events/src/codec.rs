//! JSON codec. [`encode`] writes the canonical wire form; [`decode`] is strict: closed
//! schema, explicit types, value ranges, cross-field consistency, and a size limit. It
//! returns a typed [`DecodeError`] for any input and never panics.

use std::fmt;

use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::error::{join_path, DecodeError, FieldErrorKind};
use crate::model::{
    rfc3339, CartParameters, CategoryParameters, EndSessionParameters, Event, EventType, Location,
    Payload, ProductParameters, PurchaseParameters, StartSessionParameters, MAX_PURCHASE_ITEMS,
};

/// The envelope version this build writes and reads.
pub const SCHEMA_VERSION: u16 = 1;

/// Default payload limit. The largest legitimate event (a 100-line purchase) is ~60 KB;
/// typical events are ~600 bytes.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

const ENVELOPE_FIELDS: [&str; 8] = [
    "event_id",
    "event_type",
    "session_id",
    "timestamp",
    "user_id",
    "location",
    "parameters",
    "schema_version",
];

#[derive(Serialize)]
struct WireEvent<'a> {
    event_id: &'a Uuid,
    event_type: EventType,
    session_id: &'a Uuid,
    #[serde(with = "rfc3339")]
    timestamp: &'a chrono::DateTime<chrono::Utc>,
    user_id: &'a Uuid,
    location: &'a Location,
    parameters: &'a Payload,
    schema_version: u16,
}

mod rfc3339_ref {}

/// The canonical JSON of an event (compact, fields in the original's order).
pub fn encode(event: &Event) -> Vec<u8> {
    let wire = WireEvent {
        event_id: &event.event_id,
        event_type: event.event_type(),
        session_id: &event.session_id,
        timestamp: &event.timestamp,
        user_id: &event.user_id,
        location: &event.location,
        parameters: &event.payload,
        schema_version: SCHEMA_VERSION,
    };
    // Serializing these types cannot fail: no maps with non-string keys, no non-finite floats
    // (every float is a validated value type).
    serde_json::to_vec(&wire).unwrap_or_default()
}

/// Decode and validate one event with the default [`MAX_EVENT_BYTES`] limit.
pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    decode_with_limit(bytes, MAX_EVENT_BYTES)
}

/// Decode and validate one event, rejecting payloads larger than `limit` bytes.
pub fn decode_with_limit(bytes: &[u8], limit: usize) -> Result<Event, DecodeError> {
    decode_with(bytes, limit, true)
}

/// [`decode_with_limit`] without its fast path ([`one_pass`]): every field parsed on its own.
/// The reference the fast path is tested against (same result for any input).
#[doc(hidden)]
pub fn decode_field_by_field(bytes: &[u8], limit: usize) -> Result<Event, DecodeError> {
    decode_with(bytes, limit, false)
}

fn decode_with(bytes: &[u8], limit: usize, fast: bool) -> Result<Event, DecodeError> {
    if bytes.len() > limit {
        return Err(DecodeError::Oversized {
            size: bytes.len(),
            limit,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| DecodeError::NotUtf8 {
        at: e.valid_up_to(),
    })?;
    if let Some(event) = fast.then(|| one_pass(text)).flatten() {
        return Ok(event);
    }
    let fields: Fields<'_> =
        serde_json::from_str(text).map_err(|e| DecodeError::from_serde("", "", &e))?;
    let envelope = fields.into_envelope()?;

    let version: u64 = field(envelope.schema_version, "schema_version")?;
    if version != u64::from(SCHEMA_VERSION) {
        return Err(DecodeError::UnsupportedSchemaVersion {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    let type_name: String = field(envelope.event_type, "event_type")?;
    let event_type =
        EventType::parse(&type_name).ok_or(DecodeError::UnknownEventType(type_name))?;

    let event = Event {
        event_id: field(envelope.event_id, "event_id")?,
        session_id: field(envelope.session_id, "session_id")?,
        user_id: field(envelope.user_id, "user_id")?,
        timestamp: {
            let raw: String = field(envelope.timestamp, "timestamp")?;
            rfc3339::parse(&raw).map_err(|e| DecodeError::field("timestamp", e.kind, e.detail))?
        },
        location: field(envelope.location, "location")?,
        payload: payload(event_type, envelope.parameters)?,
    };
    validate(&event)?;
    Ok(event)
}

/// A well-formed event in one pass over its text: each field parsed straight into its type,
/// the parameters into its type's once `event_type` has been read (it comes first in the
/// canonical form). `None` for anything else: an error, or parameters ahead of their type.
/// [`decode_with_limit`] then parses the fields one by one and names what is wrong, or
/// accepts the same event, so this is only faster, never more or less lenient: the same
/// types, the same checks after ([`rfc3339::parse`], [`validate`]).
fn one_pass(text: &str) -> Option<Event> {
    let OnePass {
        event_id,
        event_type: _,
        session_id,
        timestamp,
        user_id,
        location,
        payload,
        schema_version,
    } = serde_json::from_str(text).ok()?;
    if schema_version? != u64::from(SCHEMA_VERSION) {
        return None;
    }
    let event = Event {
        event_id: event_id?,
        session_id: session_id?,
        user_id: user_id?,
        timestamp: rfc3339::parse(&timestamp?).ok()?,
        location: location?,
        payload: payload?,
    };
    validate(&event).ok()?;
    Some(event)
}

/// The envelope's fields, as [`one_pass`] reads them.
#[derive(Default)]
struct OnePass {
    event_id: Option<Uuid>,
    event_type: Option<EventType>,
    session_id: Option<Uuid>,
    timestamp: Option<String>,
    user_id: Option<Uuid>,
    location: Option<Location>,
    payload: Option<Payload>,
    schema_version: Option<u64>,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Key {
    EventId,
    EventType,
    SessionId,
    Timestamp,
    UserId,
    Location,
    Parameters,
    SchemaVersion,
}

impl<'de> Deserialize<'de> for OnePass {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OnePass;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<OnePass, M::Error> {
                use serde::de::Error;
                fn once<T, E: Error>(slot: &mut Option<T>, value: T) -> Result<(), E> {
                    match slot.replace(value) {
                        None => Ok(()),
                        Some(_) => Err(E::custom("duplicate field")),
                    }
                }
                let mut out = OnePass::default();
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::EventId => once(&mut out.event_id, map.next_value()?)?,
                        Key::SessionId => once(&mut out.session_id, map.next_value()?)?,
                        Key::UserId => once(&mut out.user_id, map.next_value()?)?,
                        Key::Timestamp => once(&mut out.timestamp, map.next_value()?)?,
                        Key::Location => once(&mut out.location, map.next_value()?)?,
                        Key::SchemaVersion => once(&mut out.schema_version, map.next_value()?)?,
                        Key::EventType => {
                            let name: std::borrow::Cow<'de, str> = map.next_value()?;
                            let t = EventType::parse(&name)
                                .ok_or_else(|| M::Error::custom("unknown event type"))?;
                            once(&mut out.event_type, t)?;
                        }
                        Key::Parameters => {
                            let t = out
                                .event_type
                                .ok_or_else(|| M::Error::custom("parameters before event_type"))?;
                            once(&mut out.payload, map.next_value_seed(PayloadOf(t))?)?;
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

/// Deserializes the parameters of one event type.
struct PayloadOf(EventType);

impl<'de> serde::de::DeserializeSeed<'de> for PayloadOf {
    type Value = Payload;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Payload, D::Error> {
        Ok(match self.0 {
            EventType::SessionStarted => Payload::SessionStarted(Deserialize::deserialize(d)?),
            EventType::CategoryViewed => Payload::CategoryViewed(Deserialize::deserialize(d)?),
            EventType::ProductViewed => Payload::ProductViewed(Deserialize::deserialize(d)?),
            EventType::ProductAddedToCart => {
                Payload::ProductAddedToCart(Deserialize::deserialize(d)?)
            }
            EventType::ProductRemovedFromCart => {
                Payload::ProductRemovedFromCart(Deserialize::deserialize(d)?)
            }
            EventType::Purchase => Payload::Purchase(Deserialize::deserialize(d)?),
            EventType::SessionEnded => Payload::SessionEnded(Deserialize::deserialize(d)?),
        })
    }
}

/// A valid field is parsed once, untracked; only a failing one is parsed again, tracking the
/// path its error names (tracking cost a fifth of the decoding of every event).
fn field<T: DeserializeOwned>(raw: &RawValue, name: &str) -> Result<T, DecodeError> {
    serde_json::from_str(raw.get()).or_else(|_| {
        let mut de = serde_json::Deserializer::from_str(raw.get());
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            DecodeError::from_serde(name, &path, e.inner())
        })
    })
}

fn payload(event_type: EventType, raw: &RawValue) -> Result<Payload, DecodeError> {
    let parsed = parse_payload(event_type, raw);
    match parsed {
        Ok(p) => Ok(p),
        Err(
            err @ DecodeError::Field {
                kind: FieldErrorKind::Missing | FieldErrorKind::Unknown,
                ..
            },
        ) => {
            // A closed-schema failure: if the object fits another type's parameters exactly,
            // say so, since that is the likelier mistake than a stray field.
            let looks_like = EventType::ALL
                .into_iter()
                .filter(|t| !same_shape(*t, event_type))
                .find(|t| parse_payload(*t, raw).is_ok());
            match looks_like {
                Some(t) => Err(DecodeError::ParametersMismatch {
                    event_type: event_type.as_str(),
                    looks_like: t.as_str(),
                }),
                None => Err(err),
            }
        }
        Err(err) => Err(err),
    }
}

/// Added-to-cart and removed-from-cart share one parameter shape.
fn same_shape(a: EventType, b: EventType) -> bool {
    use EventType::{ProductAddedToCart as Add, ProductRemovedFromCart as Remove};
    a == b || matches!((a, b), (Add, Remove) | (Remove, Add))
}

fn parse_payload(event_type: EventType, raw: &RawValue) -> Result<Payload, DecodeError> {
    const P: &str = "parameters";
    Ok(match event_type {
        EventType::SessionStarted => {
            Payload::SessionStarted(field::<StartSessionParameters>(raw, P)?)
        }
        EventType::CategoryViewed => Payload::CategoryViewed(field::<CategoryParameters>(raw, P)?),
        EventType::ProductViewed => Payload::ProductViewed(field::<ProductParameters>(raw, P)?),
        EventType::ProductAddedToCart => {
            Payload::ProductAddedToCart(field::<CartParameters>(raw, P)?)
        }
        EventType::ProductRemovedFromCart => {
            Payload::ProductRemovedFromCart(field::<CartParameters>(raw, P)?)
        }
        EventType::Purchase => Payload::Purchase(field::<PurchaseParameters>(raw, P)?),
        EventType::SessionEnded => Payload::SessionEnded(field::<EndSessionParameters>(raw, P)?),
    })
}

/// Cross-field rules that no single value type can check.
fn validate(event: &Event) -> Result<(), DecodeError> {
    let Payload::Purchase(p) = &event.payload else {
        return Ok(());
    };
    let bad = |path: &str, detail: String| {
        Err(DecodeError::field(
            path,
            FieldErrorKind::Inconsistent,
            detail,
        ))
    };
    if p.items.is_empty() {
        return bad(
            "parameters.items",
            "a purchase needs at least one item".into(),
        );
    }
    if p.items.len() > MAX_PURCHASE_ITEMS {
        return Err(DecodeError::field(
            "parameters.items",
            FieldErrorKind::OutOfRange,
            format!("{} items exceeds {MAX_PURCHASE_ITEMS}", p.items.len()),
        ));
    }
    let currency = p.currency();
    let mut total = crate::Money::ZERO;
    for (i, item) in p.items.iter().enumerate() {
        if item.product.currency != currency {
            return bad(
                &format!("parameters.items[{i}].product.currency"),
                format!(
                    "{} differs from the order's {}",
                    item.product.currency.as_str(),
                    currency.as_str()
                ),
            );
        }
        match item.product.price.checked_mul(item.quantity.get()) {
            Some(expected) if expected == item.subtotal => {}
            _ => {
                return bad(
                    &format!("parameters.items[{i}].subtotal"),
                    format!(
                        "{} is not price {} x quantity {}",
                        item.subtotal,
                        item.product.price,
                        item.quantity.get()
                    ),
                )
            }
        }
        total = match total.checked_add(item.subtotal) {
            Some(t) => t,
            None => {
                return Err(DecodeError::field(
                    "parameters.total_amount",
                    FieldErrorKind::OutOfRange,
                    "sum of subtotals overflows",
                ))
            }
        };
    }
    if total != p.total_amount {
        return bad(
            "parameters.total_amount",
            format!("{} is not the sum of the subtotals {total}", p.total_amount),
        );
    }
    if p.discount_amount > p.total_amount {
        return bad(
            "parameters.discount_amount",
            format!(
                "{} exceeds total_amount {}",
                p.discount_amount, p.total_amount
            ),
        );
    }
    if p.estimated_delivery_date < event.timestamp {
        return bad(
            "parameters.estimated_delivery_date",
            "is before the purchase timestamp".into(),
        );
    }
    Ok(())
}

/// The top-level object as raw fields: duplicate keys are an error, order is kept.
struct Fields<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Fields<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Fields<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Fields<'a>, M::Error> {
                let mut out: Vec<(String, &'a RawValue)> =
                    Vec::with_capacity(ENVELOPE_FIELDS.len());
                while let Some(key) = map.next_key::<String>()? {
                    if out.iter().any(|(k, _)| *k == key) {
                        return Err(serde::de::Error::custom(format!(
                            "invalid_value: duplicate field `{key}`"
                        )));
                    }
                    let value: &'a RawValue = map.next_value()?;
                    out.push((key, value));
                }
                Ok(Fields(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

struct Envelope<'a> {
    event_id: &'a RawValue,
    event_type: &'a RawValue,
    session_id: &'a RawValue,
    timestamp: &'a RawValue,
    user_id: &'a RawValue,
    location: &'a RawValue,
    parameters: &'a RawValue,
    schema_version: &'a RawValue,
}

impl<'a> Fields<'a> {
    fn into_envelope(self) -> Result<Envelope<'a>, DecodeError> {
        if let Some((unknown, _)) = self
            .0
            .iter()
            .find(|(k, _)| !ENVELOPE_FIELDS.contains(&k.as_str()))
        {
            return Err(DecodeError::field(
                join_path("", unknown),
                FieldErrorKind::Unknown,
                format!(
                    "unknown field `{unknown}`, expected one of {}",
                    ENVELOPE_FIELDS.join(", ")
                ),
            ));
        }
        let get = |name: &str| {
            self.0
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| *v)
                .ok_or_else(|| {
                    DecodeError::field(name, FieldErrorKind::Missing, "required field is absent")
                })
        };
        Ok(Envelope {
            schema_version: get("schema_version")?,
            event_type: get("event_type")?,
            event_id: get("event_id")?,
            session_id: get("session_id")?,
            timestamp: get("timestamp")?,
            user_id: get("user_id")?,
            location: get("location")?,
            parameters: get("parameters")?,
        })
    }
}
