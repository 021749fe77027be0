//! A table of bad inputs, each with the error it must produce: the reason code and the
//! path (or a fragment of the message) that tells the sender what to fix.
use events::{decode, EventType};
use serde_json::{json, Value};

use crate::helpers::sample_json;

enum Input {
    Bytes(Vec<u8>),
    Json(Value),
}

fn mutate(t: EventType, f: impl FnOnce(&mut Value)) -> Input {
    let mut v = sample_json(t);
    f(&mut v);
    Input::Json(v)
}

fn cases() -> Vec<(&'static str, Input, &'static str, &'static str)> {
    use EventType::*;
    vec![
        // (name, input, expected reason, expected fragment of the error's Display)
        ("empty payload", Input::Bytes(vec![]), "invalid_json", "EOF"),
        (
            "not JSON",
            Input::Bytes(b"hello".to_vec()),
            "invalid_json",
            "line 1",
        ),
        (
            "truncated JSON",
            Input::Bytes(br#"{"event_id":"#.to_vec()),
            "invalid_json",
            "EOF",
        ),
        (
            "JSON array",
            Input::Json(json!([1, 2])),
            "wrong_type",
            "an event object",
        ),
        (
            "JSON string",
            Input::Json(json!("purchase")),
            "wrong_type",
            "an event object",
        ),
        (
            "not UTF-8",
            Input::Bytes(vec![b'{', 0xff, 0xfe, b'}']),
            "not_utf8",
            "at 1",
        ),
        (
            "oversized",
            Input::Bytes(vec![b' '; events::MAX_EVENT_BYTES + 1]),
            "oversized",
            "65537 bytes",
        ),
        (
            "unknown event type",
            mutate(SessionStarted, |v| v["event_type"] = json!("page_viewed")),
            "unknown_event_type",
            "page_viewed",
        ),
        (
            "event type not a string",
            mutate(SessionStarted, |v| v["event_type"] = json!(7)),
            "wrong_type",
            "event_type",
        ),
        (
            "missing event_id",
            mutate(ProductViewed, |v| {
                v.as_object_mut().map(|o| o.remove("event_id"));
            }),
            "missing_field",
            "event_id",
        ),
        (
            "missing parameters",
            mutate(ProductViewed, |v| {
                v.as_object_mut().map(|o| o.remove("parameters"));
            }),
            "missing_field",
            "parameters",
        ),
        (
            "missing schema_version",
            mutate(ProductViewed, |v| {
                v.as_object_mut().map(|o| o.remove("schema_version"));
            }),
            "missing_field",
            "schema_version",
        ),
        (
            "future schema_version",
            mutate(ProductViewed, |v| v["schema_version"] = json!(2)),
            "unsupported_schema_version",
            "schema_version 2",
        ),
        (
            "extra envelope field",
            mutate(ProductViewed, |v| v["referrer"] = json!("ads")),
            "unknown_field",
            "referrer",
        ),
        (
            "extra parameter field",
            mutate(SessionEnded, |v| v["parameters"]["coupon"] = json!("X")),
            "unknown_field",
            "parameters.coupon",
        ),
        (
            "missing nested field",
            mutate(ProductViewed, |v| {
                v["parameters"]["product"]
                    .as_object_mut()
                    .map(|o| o.remove("price"));
            }),
            "missing_field",
            "parameters.product.price",
        ),
        (
            "duplicate key",
            Input::Bytes(br#"{"event_type":"purchase","event_type":"session_ended"}"#.to_vec()),
            "invalid_value",
            "duplicate field `event_type`",
        ),
        (
            "cart parameters on a product view",
            mutate(ProductViewed, |v| v["parameters"]["quantity"] = json!(1)),
            "parameters_mismatch",
            "product_added_to_cart",
        ),
        (
            "product parameters on a cart add",
            mutate(ProductAddedToCart, |v| {
                v["parameters"]
                    .as_object_mut()
                    .map(|o| o.remove("quantity"));
            }),
            "parameters_mismatch",
            "product_viewed",
        ),
        (
            "end parameters on a start",
            Input::Json({
                let mut v = sample_json(SessionStarted);
                v["parameters"] = sample_json(SessionEnded)["parameters"].clone();
                v
            }),
            "parameters_mismatch",
            "session_ended",
        ),
        (
            "quantity as string",
            mutate(ProductAddedToCart, |v| {
                v["parameters"]["quantity"] = json!("12")
            }),
            "wrong_type",
            "parameters.quantity",
        ),
        (
            "quantity fractional",
            mutate(ProductAddedToCart, |v| {
                v["parameters"]["quantity"] = json!(1.5)
            }),
            "wrong_type",
            "parameters.quantity",
        ),
        (
            "quantity zero",
            mutate(ProductAddedToCart, |v| {
                v["parameters"]["quantity"] = json!(0)
            }),
            "out_of_range",
            "parameters.quantity",
        ),
        (
            "quantity negative",
            mutate(ProductRemovedFromCart, |v| {
                v["parameters"]["quantity"] = json!(-3)
            }),
            "out_of_range",
            "parameters.quantity",
        ),
        (
            "price negative",
            mutate(ProductViewed, |v| {
                v["parameters"]["product"]["price"] = json!(-1.0)
            }),
            "out_of_range",
            "parameters.product.price",
        ),
        (
            "price with three decimals",
            mutate(ProductViewed, |v| {
                v["parameters"]["product"]["price"] = json!(1.005)
            }),
            "invalid_value",
            "two decimal",
        ),
        (
            "price absurd",
            mutate(ProductViewed, |v| {
                v["parameters"]["product"]["price"] = json!(1e12)
            }),
            "out_of_range",
            "parameters.product.price",
        ),
        (
            "currency lower-case",
            mutate(ProductViewed, |v| {
                v["parameters"]["product"]["currency"] = json!("usd")
            }),
            "invalid_value",
            "currency",
        ),
        (
            "currency unknown",
            mutate(ProductViewed, |v| {
                v["parameters"]["product"]["currency"] = json!("XXX")
            }),
            "invalid_value",
            "currency",
        ),
        (
            "latitude out of range",
            mutate(SessionStarted, |v| v["location"]["latitude"] = json!(91.0)),
            "out_of_range",
            "location.latitude",
        ),
        (
            "longitude out of range",
            mutate(SessionStarted, |v| {
                v["location"]["longitude"] = json!(-180.5)
            }),
            "out_of_range",
            "location.longitude",
        ),
        (
            "country not ISO",
            mutate(SessionStarted, |v| {
                v["location"]["country"] = json!("Italy")
            }),
            "invalid_value",
            "location.country",
        ),
        (
            "naive timestamp",
            mutate(SessionStarted, |v| {
                v["timestamp"] = json!("2025-09-20T10:03:00")
            }),
            "invalid_value",
            "timestamp",
        ),
        (
            "timestamp garbage",
            mutate(SessionStarted, |v| v["timestamp"] = json!("yesterday")),
            "invalid_value",
            "timestamp",
        ),
        (
            "event_id not a uuid",
            mutate(SessionStarted, |v| v["event_id"] = json!("42")),
            "invalid_value",
            "event_id",
        ),
        (
            "session_id path traversal",
            mutate(SessionStarted, |v| {
                v["session_id"] = json!("../../statistics")
            }),
            "invalid_value",
            "session_id",
        ),
        (
            "product id with slash",
            mutate(ProductViewed, |v| {
                v["parameters"]["product"]["id"] = json!("a/b")
            }),
            "unsafe_id",
            "parameters.product.id",
        ),
        (
            "product id reserved",
            mutate(ProductViewed, |v| {
                v["parameters"]["product"]["id"] = json!("__name__")
            }),
            "unsafe_id",
            "reserved",
        ),
        (
            "category id empty",
            mutate(CategoryViewed, |v| {
                v["parameters"]["category"]["id"] = json!("")
            }),
            "unsafe_id",
            "parameters.category.id",
        ),
        (
            "category id too long",
            mutate(CategoryViewed, |v| {
                v["parameters"]["category"]["id"] = json!("x".repeat(200))
            }),
            "unsafe_id",
            "longer than 128",
        ),
        (
            "payment id with dots",
            mutate(Purchase, |v| {
                v["parameters"]["payment_method"]["id"] = json!("..")
            }),
            "unsafe_id",
            "parameters.payment_method.id",
        ),
        (
            "state dot-dot",
            mutate(SessionStarted, |v| v["location"]["state"] = json!("..")),
            "unsafe_id",
            "location.state",
        ),
        (
            "state with slash",
            mutate(Purchase, |v| {
                v["parameters"]["shipping_address"]["state"] = json!("Ohio/x")
            }),
            "unsafe_id",
            "parameters.shipping_address.state",
        ),
        (
            "name with control char",
            mutate(CategoryViewed, |v| {
                v["parameters"]["category"]["name"] = json!("Shoes\u{0007}")
            }),
            "invalid_value",
            "control",
        ),
        (
            "duration negative",
            mutate(SessionEnded, |v| {
                v["parameters"]["seconds_duration"] = json!(-1)
            }),
            "out_of_range",
            "parameters.seconds_duration",
        ),
        (
            "purchase without items",
            mutate(Purchase, |v| v["parameters"]["items"] = json!([])),
            "inconsistent",
            "parameters.items",
        ),
        (
            "subtotal wrong",
            mutate(Purchase, |v| {
                v["parameters"]["items"][0]["subtotal"] = json!(1.0)
            }),
            "inconsistent",
            "parameters.items[0].subtotal",
        ),
        (
            "total wrong",
            mutate(Purchase, |v| v["parameters"]["total_amount"] = json!(1.0)),
            "inconsistent",
            "parameters.total_amount",
        ),
        (
            "discount above total",
            mutate(Purchase, |v| {
                v["parameters"]["discount_amount"] = json!(1000.0)
            }),
            "inconsistent",
            "parameters.discount_amount",
        ),
        (
            "delivery before purchase",
            mutate(Purchase, |v| {
                v["parameters"]["estimated_delivery_date"] = json!("2020-01-01T00:00:00Z")
            }),
            "inconsistent",
            "estimated_delivery_date",
        ),
        (
            "transaction id missing",
            mutate(Purchase, |v| {
                v["parameters"]
                    .as_object_mut()
                    .map(|o| o.remove("transaction_id"));
            }),
            "missing_field",
            "parameters.transaction_id",
        ),
        (
            "item quantity in a list",
            mutate(Purchase, |v| {
                v["parameters"]["items"][0]["quantity"] = json!(0)
            }),
            "out_of_range",
            "parameters.items[0].quantity",
        ),
    ]
}

#[test]
fn every_bad_input_gets_its_error() {
    let mut failures = Vec::new();
    for (name, input, reason, fragment) in cases() {
        let bytes = match input {
            Input::Bytes(b) => b,
            Input::Json(v) => serde_json::to_vec(&v).expect("serializes"),
        };
        match decode(&bytes) {
            Ok(_) => failures.push(format!("{name}: accepted")),
            Err(e) => {
                let shown = e.to_string();
                if e.reason() != reason || !shown.contains(fragment) {
                    failures.push(format!(
                        "{name}: got {} / {shown:?}, want {reason} containing {fragment:?}",
                        e.reason()
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} bad inputs mis-handled:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
