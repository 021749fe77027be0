//! One checked-in JSON sample per event type pins the wire format: it decodes to the
//! expected event, and encoding that event gives the file back byte for byte.
//! `BLESS=1 cargo test -p events golden` rewrites the files from the samples.
use std::path::PathBuf;

use events::{decode, encode, EventType};

use crate::helpers::sample;

fn golden_path(t: EventType) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{}.json", t.as_str()))
}

#[test]
fn every_event_type_matches_its_golden_sample() {
    for t in EventType::ALL {
        let expected = sample(t);
        let path = golden_path(t);
        if std::env::var_os("BLESS").is_some() {
            let mut bytes = encode(&expected);
            bytes.push(b'\n');
            std::fs::write(&path, bytes).expect("write golden");
        }
        let golden = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let golden = golden.strip_suffix(b"\n").unwrap_or(&golden);
        let decoded = decode(golden).unwrap_or_else(|e| panic!("{t}: golden does not decode: {e}"));
        assert_eq!(
            decoded, expected,
            "{t}: golden decodes to a different event"
        );
        assert_eq!(
            String::from_utf8_lossy(&encode(&decoded)),
            String::from_utf8_lossy(golden),
            "{t}: encoding is not canonical"
        );
    }
}

#[test]
fn golden_purchase_keeps_the_original_field_names_and_money_format() {
    let text = std::fs::read_to_string(golden_path(EventType::Purchase)).expect("golden exists");
    for needle in [
        r#""event_type":"purchase""#,
        r#""timestamp":"2025-09-20T10:18:00Z""#,
        r#""price":144.92"#,
        r#""subtotal":289.84"#,
        r#""total_amount":289.84"#,
        r#""discount_amount":15.0"#,
        r#""shipping_cost":7.31"#,
        r#""currency":"USD""#,
        r#""schema_version":1"#,
        r#""transaction_id":"#,
    ] {
        assert!(
            text.contains(needle),
            "purchase golden lacks {needle}: {text}"
        );
    }
}
