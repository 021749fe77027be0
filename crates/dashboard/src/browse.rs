//! The data browser: collections → documents → fields, read-only and paged, the role the
//! Firebase Emulator UI played for the original system's users.

use firestore::gcloud_sdk::google::firestore::v1 as pb;
use pb::value::ValueType;
use serde_json::{json, Map, Value};
use store::{Store, StoreError};

/// Documents or collections per page.
pub const PAGE_SIZE: i32 = 50;

/// What a browser path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Root,
    Collection(String),
    Document(String),
}

impl Target {
    /// `""` is the root; an odd number of segments a collection, an even one a document.
    /// Empty segments are refused.
    pub fn parse(path: &str) -> Result<Target, String> {
        let path = path.trim_matches('/');
        if path.is_empty() {
            return Ok(Target::Root);
        }
        let segments: Vec<&str> = path.split('/').collect();
        if segments
            .iter()
            .any(|s| s.is_empty() || *s == "." || *s == "..")
        {
            return Err(format!("not a Firestore path: {path:?}"));
        }
        Ok(if segments.len() % 2 == 1 {
            Target::Collection(path.to_owned())
        } else {
            Target::Document(path.to_owned())
        })
    }
}

/// A page of the browser as JSON.
pub async fn page(store: &Store, target: &Target, page_token: &str) -> Result<Value, StoreError> {
    Ok(match target {
        Target::Root => {
            let page = store.collection_ids("", PAGE_SIZE, page_token).await?;
            json!({"kind": "root", "path": "", "collections": page.documents, "next": page.next})
        }
        Target::Collection(path) => {
            let page = store.list_paths_page(path, PAGE_SIZE, page_token).await?;
            json!({"kind": "collection", "path": path, "documents": page.documents, "next": page.next})
        }
        Target::Document(path) => {
            let doc = store.get(path).await?;
            let collections = store.collection_ids(path, PAGE_SIZE, page_token).await?;
            json!({
                "kind": "document",
                "path": path,
                "exists": doc.is_some(),
                "fields": doc.as_ref().map(|d| fields(&d.fields)),
                "update_time": doc.as_ref().and_then(|d| d.update_time.as_ref()).map(timestamp),
                "collections": collections.documents,
                "next": collections.next,
            })
        }
    })
}

fn fields(map: &std::collections::HashMap<String, pb::Value>) -> Value {
    let mut sorted: Vec<_> = map.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    Value::Object(
        sorted
            .into_iter()
            .map(|(k, v)| (k.clone(), value(v)))
            .collect::<Map<_, _>>(),
    )
}

/// Integers beyond what a JavaScript number holds exactly.
const JS_SAFE: i64 = (1 << 53) - 1;

/// A Firestore value as JSON: integers beyond JavaScript's exact range as strings,
/// timestamps as RFC 3339, bytes by their length.
pub fn value(v: &pb::Value) -> Value {
    match &v.value_type {
        None | Some(ValueType::NullValue(_)) => Value::Null,
        Some(ValueType::BooleanValue(b)) => json!(b),
        Some(ValueType::IntegerValue(i)) if i.abs() <= JS_SAFE => json!(i),
        Some(ValueType::IntegerValue(i)) => json!(i.to_string()),
        Some(ValueType::DoubleValue(d)) => json!(d),
        Some(ValueType::TimestampValue(t)) => json!(timestamp(t)),
        Some(ValueType::StringValue(s)) => json!(s),
        Some(ValueType::BytesValue(b)) => json!(format!("<{} bytes>", b.len())),
        Some(ValueType::ReferenceValue(r)) => json!(r),
        Some(ValueType::GeoPointValue(g)) => {
            json!({"latitude": g.latitude, "longitude": g.longitude})
        }
        Some(ValueType::ArrayValue(a)) => Value::Array(a.values.iter().map(value).collect()),
        Some(ValueType::MapValue(m)) => fields(&m.fields),
        Some(other) => json!(format!("{other:?}")),
    }
}

fn timestamp(t: &firestore::gcloud_sdk::prost_types::Timestamp) -> String {
    chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32)
        .map_or_else(|| format!("{}s", t.seconds), |d| d.to_rfc3339())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_the_root_a_collection_or_a_document() {
        assert_eq!(Target::parse(""), Ok(Target::Root));
        assert_eq!(Target::parse("/"), Ok(Target::Root));
        assert_eq!(
            Target::parse("statistics"),
            Ok(Target::Collection("statistics".into()))
        );
        assert_eq!(
            Target::parse("statistics/lifetime/"),
            Ok(Target::Document("statistics/lifetime".into()))
        );
        assert_eq!(
            Target::parse("countries/DE/statistics"),
            Ok(Target::Collection("countries/DE/statistics".into()))
        );
        for bad in ["a//b", "a/../b", "a/./b"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_become_json_without_losing_precision() {
        let v = |t| pb::Value {
            value_type: Some(t),
        };
        assert_eq!(value(&v(ValueType::IntegerValue(42))), json!(42));
        assert_eq!(
            value(&v(ValueType::IntegerValue(i64::MAX))),
            json!(i64::MAX.to_string())
        );
        assert_eq!(
            value(&v(ValueType::StringValue("<b>".into()))),
            json!("<b>")
        );
        let map = pb::MapValue {
            fields: [("b".to_owned(), v(ValueType::BooleanValue(true)))]
                .into_iter()
                .collect(),
        };
        assert_eq!(value(&v(ValueType::MapValue(map))), json!({"b": true}));
        let t = firestore::gcloud_sdk::prost_types::Timestamp {
            seconds: 0,
            nanos: 0,
        };
        assert_eq!(
            value(&v(ValueType::TimestampValue(t))),
            json!("1970-01-01T00:00:00+00:00")
        );
    }
}
