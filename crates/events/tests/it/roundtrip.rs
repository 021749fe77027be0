//! Property tests of the codec: every valid event round-trips exactly, and no byte string
//! makes decode panic.
use events::{decode, decode_with_limit, encode, DecodeError, Money};
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

    #[test]
    fn size_limit_is_exact(event in event_strategy()) {
        let bytes = encode(&event);
        prop_assert!(decode_with_limit(&bytes, bytes.len()).is_ok());
        let over = decode_with_limit(&bytes, bytes.len() - 1);
        prop_assert!(matches!(over, Err(DecodeError::Oversized { .. })), "{:?}", over);
    }
}
