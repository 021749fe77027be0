//! Property tests of the codec: every valid event round-trips exactly, and no byte string
//! makes decode panic.
use events::{
    decode, decode_field_by_field, decode_with_limit, encode, DecodeError, EventType, Money,
    MAX_EVENT_BYTES,
};
use proptest::prelude::*;

use crate::helpers::event_strategy;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn valid_events_round_trip(event in event_strategy()) {
        let bytes = encode(&event);
        let decoded = decode(&bytes).map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&bytes))))?;
        prop_assert_eq!(&decoded, &event);
        prop_assert_eq!(encode(&decoded), bytes);
    }

    #[test]
    fn money_round_trips_through_json_exactly(minor in 0u64..=events::values::MAX_MINOR_UNITS) {
        let m = Money::from_minor(minor).expect("in range");
        let json = serde_json::to_string(&m).expect("serializes");
        let back: Money = serde_json::from_str(&json).expect("deserializes");
        prop_assert_eq!(back.minor(), minor, "json was {}", json);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn mutated_valid_events_never_panic(event in event_strategy(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = encode(&event);
        let i = at.index(bytes.len());
        bytes[i] = byte;
        let _ = decode(&bytes);
    }

    #[test]
    fn truncated_valid_events_are_rejected_as_invalid_json(event in event_strategy(), at in any::<prop::sample::Index>()) {
        let bytes = encode(&event);
        let cut = at.index(bytes.len());
        let err = decode(&bytes[..cut]).expect_err("a strict prefix is never a complete object");
        prop_assert!(matches!(err, DecodeError::InvalidJson { .. }), "{:?}", err);
    }

    /// The one-pass fast path accepts exactly what the field-by-field decoder accepts, with
    /// the same event, and leaves every rejection to it: valid events, their fields
    /// reordered (parameters ahead of their type), duplicated or removed, another event
    /// type named, a byte changed.
    #[test]
    fn decoding_in_one_pass_is_decoding_field_by_field(
        event in event_strategy(),
        edit in 0..6usize,
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let canonical = encode(&event);
        let serde_json::Value::Object(fields) = serde_json::from_slice(&canonical).expect("json")
        else {
            panic!("an event is an object");
        };
        let mut fields: Vec<(String, serde_json::Value)> = fields.into_iter().collect();
        let i = at.index(fields.len());
        match edit {
            1 => fields.rotate_left(i),
            2 => fields.insert(i, fields[at.index(i + 1)].clone()),
            3 => {
                fields.remove(i);
            }
            4 => {
                let other = EventType::ALL[at.index(EventType::ALL.len())].as_str();
                if let Some((_, v)) = fields.iter_mut().find(|(k, _)| k == "event_type") {
                    *v = other.into();
                }
            }
            _ => {}
        }
        let text: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}:{v}", serde_json::Value::from(k.as_str())))
            .collect();
        let mut bytes = format!("{{{}}}", text.join(",")).into_bytes();
        if edit == 5 {
            let j = at.index(bytes.len());
            bytes[j] = byte;
        }
        let reference = decode_field_by_field(&bytes, MAX_EVENT_BYTES);
        if edit == 0 {
            prop_assert_eq!(reference.as_ref().ok(), Some(&event));
        }
        prop_assert_eq!(decode(&bytes), reference, "{}", String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn size_limit_is_exact(event in event_strategy()) {
        let bytes = encode(&event);
        prop_assert!(decode_with_limit(&bytes, bytes.len()).is_ok());
        let over = decode_with_limit(&bytes, bytes.len() - 1);
        prop_assert!(matches!(over, Err(DecodeError::Oversized { .. })), "{:?}", over);
    }
}
