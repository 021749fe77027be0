//! The Firestore client: one atomic `Commit` per call (the `firestore` crate's batch
//! writers use the non-atomic BatchWrite RPC, so commits are built here from the raw API),
//! conversion of [`Deltas`] into writes (masked upsert + increment / array-union
//! transforms), single and batched document reads, and journal listing for crash recovery.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use firestore::gcloud_sdk::google::firestore::v1 as pb;
use firestore::gcloud_sdk::prost_types::Timestamp;
use firestore::gcloud_sdk::tonic::{Code, Status};
use firestore::{FirestoreDb, FirestoreDbOptions};
use pb::document_transform::field_transform::TransformType;
use pb::document_transform::FieldTransform;
use pb::precondition::ConditionType;
use pb::value::ValueType;

use crate::deltas::{DocDelta, FieldValue};

/// Most writes in one Firestore commit (production limit; the emulator does not enforce it).
pub const MAX_WRITES_PER_COMMIT: usize = 500;
/// Documents asked for in one BatchGetDocuments call. Its response is a stream of one message
/// per document, so no message outgrows the client's 4 MiB limit (a document is ≤ 1 MiB).
pub const DOCS_PER_BATCH_GET: usize = 300;
/// Documents per ListDocuments page: the page is one message, so only masked (small) fields
/// are ever listed.
const LIST_PAGE_SIZE: i32 = 300;

/// How a Firestore call failed, which decides what the caller does next.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Retry with backoff: the service is unavailable, overloaded or timed out.
    #[error("transient Firestore error ({code:?}): {message}")]
    Transient { code: Code, message: String },
    /// A precondition failed: someone else wrote first (a replayed or fenced-off write).
    #[error("Firestore precondition failed ({code:?}): {message}")]
    Conflict { code: Code, message: String },
    /// Retrying cannot help (permissions, invalid request, ...): stop cleanly.
    #[error("permanent Firestore error ({code:?}): {message}")]
    Permanent { code: Code, message: String },
}

impl StoreError {
    fn from_status(s: &Status) -> StoreError {
        let (code, message) = (s.code(), s.message().to_owned());
        match code {
            // A request over the gRPC size limit fails the same way every time.
            Code::ResourceExhausted if message.contains("maximum size") => {
                StoreError::Permanent { code, message }
            }
            Code::FailedPrecondition | Code::AlreadyExists | Code::NotFound => {
                StoreError::Conflict { code, message }
            }
            Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::ResourceExhausted
            | Code::Internal
            | Code::Unknown
            | Code::Cancelled => StoreError::Transient { code, message },
            _ => StoreError::Permanent { code, message },
        }
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Transient { .. })
    }
}

/// A Firestore database (real, or the emulator when `FIRESTORE_EMULATOR_HOST` is set).
#[derive(Clone)]
pub struct Store {
    db: FirestoreDb,
    /// `projects/{p}/databases/(default)/documents`
    root: String,
    timeout: Duration,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("root", &self.root).finish()
    }
}

/// Every item of a paged listing: `page(token)` from the empty token until a page has no
/// next one.
async fn every_page<T, F, Fut>(mut page: F) -> Result<Vec<T>, StoreError>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, StoreError>>,
{
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let p = page(token).await?;
        out.extend(p.documents);
        match p.next {
            None => return Ok(out),
            Some(next) => token = next,
        }
    }
}

/// One page of a listing, and the token of the next one (`None`: the last page).
#[derive(Debug, Clone, Default)]
pub struct Page<T> {
    pub documents: Vec<T>,
    pub next: Option<String>,
}

/// A precondition on a write.
#[derive(Debug, Clone, PartialEq)]
pub enum Precondition {
    None,
    Exists(bool),
    UpdateTime(Timestamp),
}

impl Store {
    pub async fn connect(
        project_id: &str,
        timeout: Duration,
    ) -> Result<Store, firestore::errors::FirestoreError> {
        let db = FirestoreDb::with_options(FirestoreDbOptions::new(project_id.to_owned())).await?;
        let root = db.get_documents_path().clone();
        Ok(Store { db, root, timeout })
    }

    pub fn name(&self, path: &str) -> String {
        format!("{}/{}", self.root, path)
    }

    /// The path relative to the documents root of a full document name.
    pub fn relative<'a>(&self, name: &'a str) -> &'a str {
        name.strip_prefix(&self.root)
            .map_or(name, |p| p.trim_start_matches('/'))
    }

    /// One atomic commit. Returns each write's result (update times) in order.
    pub async fn commit(&self, writes: Vec<pb::Write>) -> Result<Vec<pb::WriteResult>, StoreError> {
        debug_assert!(writes.len() <= MAX_WRITES_PER_COMMIT);
        let request = pb::CommitRequest {
            database: self.db.get_database_path().clone(),
            writes,
            transaction: vec![],
            request_options: None,
        };
        let mut client = self.db.client().get();
        Ok(self
            .answer(client.commit(request), "commit")
            .await?
            .write_results)
    }

    /// Read one document; `None` if it does not exist.
    pub async fn get(&self, path: &str) -> Result<Option<pb::Document>, StoreError> {
        let request = pb::GetDocumentRequest {
            name: self.name(path),
            mask: None,
            consistency_selector: None,
            request_options: None,
        };
        let mut client = self.db.client().get();
        match tokio::time::timeout(self.timeout, client.get_document(request)).await {
            Ok(Ok(doc)) => Ok(Some(doc.into_inner())),
            Ok(Err(status)) if status.code() == Code::NotFound => Ok(None),
            Ok(Err(status)) => Err(StoreError::from_status(&status)),
            Err(_) => Err(StoreError::Transient {
                code: Code::DeadlineExceeded,
                message: "get timed out".into(),
            }),
        }
    }

    /// Read many documents, only the fields in `mask` (all if empty), in one round trip per
    /// [`DOCS_PER_BATCH_GET`]. Returns the documents that exist, by path relative to the root.
    pub async fn get_many(
        &self,
        paths: &[String],
        mask: &[&str],
    ) -> Result<HashMap<String, pb::Document>, StoreError> {
        let mut found = HashMap::with_capacity(paths.len());
        for chunk in paths.chunks(DOCS_PER_BATCH_GET) {
            self.batch_get(chunk, mask, &mut found).await?;
        }
        Ok(found)
    }

    /// One BatchGetDocuments round trip; adds what exists to `found`.
    async fn batch_get(
        &self,
        paths: &[String],
        mask: &[&str],
        found: &mut HashMap<String, pb::Document>,
    ) -> Result<(), StoreError> {
        let request = pb::BatchGetDocumentsRequest {
            database: self.db.get_database_path().clone(),
            documents: paths.iter().map(|p| self.name(p)).collect(),
            mask: (!mask.is_empty()).then(|| pb::DocumentMask {
                field_paths: mask.iter().map(|f| (*f).to_owned()).collect(),
            }),
            request_options: None,
            consistency_selector: None,
        };
        let read = async {
            let mut client = self.db.client().get();
            let mut stream = client.batch_get_documents(request).await?.into_inner();
            while let Some(response) = stream.message().await? {
                if let Some(pb::batch_get_documents_response::Result::Found(doc)) = response.result
                {
                    found.insert(self.relative(&doc.name).to_owned(), doc);
                }
            }
            Ok::<_, Status>(())
        };
        match tokio::time::timeout(self.timeout, read).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(status)) => Err(StoreError::from_status(&status)),
            Err(_) => Err(StoreError::Transient {
                code: Code::DeadlineExceeded,
                message: "batch get timed out".into(),
            }),
        }
    }

    /// Every document of a collection (paged; `a/b/c` is the collection `c` of document
    /// `a/b`), with only the fields in `mask`. A listing page is one gRPC response (at most
    /// 4 MiB on the client), so callers name the small fields they need and read large
    /// documents one by one with [`Store::get`] (one document is at most 1 MiB); an empty
    /// mask returns no field at all, only names and times.
    pub async fn list(
        &self,
        collection: &str,
        mask: &[&str],
    ) -> Result<Vec<pb::Document>, StoreError> {
        let mask = pb::DocumentMask {
            field_paths: mask.iter().map(|f| (*f).to_owned()).collect(),
        };
        self.list_masked(collection, Some(mask)).await
    }

    /// Every document of a collection with all its fields: for collections of small
    /// documents (a statistics document's shards).
    pub async fn list_whole(&self, collection: &str) -> Result<Vec<pb::Document>, StoreError> {
        self.list_masked(collection, None).await
    }

    async fn list_masked(
        &self,
        collection: &str,
        mask: Option<pb::DocumentMask>,
    ) -> Result<Vec<pb::Document>, StoreError> {
        every_page(|token| {
            let mask = mask.clone();
            async move {
                self.list_page(collection, mask, LIST_PAGE_SIZE, &token, false)
                    .await
            }
        })
        .await
    }

    /// One page of a collection's documents (`mask` `None`: every field), from `page_token`
    /// (empty: the first page), in name order. With `show_missing`, also the documents that
    /// do not exist but have collections under them (`statistics/{b}` holds only its shards).
    pub async fn list_page(
        &self,
        collection: &str,
        mask: Option<pb::DocumentMask>,
        page_size: i32,
        page_token: &str,
        show_missing: bool,
    ) -> Result<Page<pb::Document>, StoreError> {
        let (parent, collection_id) = match collection.rsplit_once('/') {
            Some((doc, id)) => (self.name(doc), id),
            None => (self.root.clone(), collection),
        };
        let request = pb::ListDocumentsRequest {
            parent,
            collection_id: collection_id.to_owned(),
            page_size,
            page_token: page_token.to_owned(),
            order_by: String::new(),
            mask,
            show_missing,
            consistency_selector: None,
            request_options: None,
        };
        let mut client = self.db.client().get();
        let r = self.answer(client.list_documents(request), "list").await?;
        Ok(Page {
            documents: r.documents,
            next: Some(r.next_page_token).filter(|t| !t.is_empty()),
        })
    }

    /// The paths of a collection's documents, in name order, with the documents that do not
    /// exist but have collections under them (`statistics/{b}` holds only its shards); no
    /// field is read.
    pub async fn list_paths(&self, collection: &str) -> Result<Vec<String>, StoreError> {
        every_page(|token| async move {
            self.list_paths_page(collection, LIST_PAGE_SIZE, &token)
                .await
        })
        .await
    }

    /// One page of [`Store::list_paths`], from `page_token` (empty: the first page).
    pub async fn list_paths_page(
        &self,
        collection: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<String>, StoreError> {
        let nothing = pb::DocumentMask {
            field_paths: Vec::new(),
        };
        let page = self
            .list_page(collection, Some(nothing), page_size, page_token, true)
            .await?;
        Ok(Page {
            documents: page
                .documents
                .iter()
                .map(|d| self.relative(&d.name).to_owned())
                .collect(),
            next: page.next,
        })
    }

    /// One page of the ids of the collections under `document` (`""`: the top-level ones).
    pub async fn collection_ids(
        &self,
        document: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<String>, StoreError> {
        let parent = if document.is_empty() {
            self.root.clone()
        } else {
            self.name(document)
        };
        let request = pb::ListCollectionIdsRequest {
            parent,
            page_size,
            page_token: page_token.to_owned(),
            request_options: None,
            consistency_selector: None,
        };
        let mut client = self.db.client().get();
        let r = self
            .answer(client.list_collection_ids(request), "list collections")
            .await?;
        Ok(Page {
            documents: r.collection_ids,
            next: Some(r.next_page_token).filter(|t| !t.is_empty()),
        })
    }

    /// A call's answer within the timeout, its failure classified.
    async fn answer<T>(
        &self,
        call: impl std::future::Future<
            Output = Result<firestore::gcloud_sdk::tonic::Response<T>, Status>,
        >,
        what: &str,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(status)) => Err(StoreError::from_status(&status)),
            Err(_) => Err(StoreError::Transient {
                code: Code::DeadlineExceeded,
                message: format!("{what}: no answer within {:?}", self.timeout),
            }),
        }
    }

    /// The write applying `delta` to `path`: an upsert of the set fields (other fields
    /// untouched) with increment and array-union transforms, all in one write; or, for a
    /// `whole` delta, the document replaced by its fields.
    pub fn delta_write(
        &self,
        path: &str,
        delta: &DocDelta,
        precondition: Precondition,
    ) -> pb::Write {
        if delta.whole {
            return self.whole_write(path, delta, precondition);
        }
        self.update_write(path, delta, precondition)
    }

    /// The write replacing the document at `path` with the whole document `delta` is (see
    /// [`DocDelta::document`]), made from the delta without copying it first.
    pub fn whole_write(
        &self,
        path: &str,
        delta: &DocDelta,
        precondition: Precondition,
    ) -> pb::Write {
        self.document_write(path, whole_fields(delta), precondition)
    }

    /// The write adding `delta` to the document at `path`, whether or not the delta is
    /// `whole`: an upsert of the set fields (other fields untouched) with increment and
    /// array-union transforms.
    pub fn update_write(
        &self,
        path: &str,
        delta: &DocDelta,
        precondition: Precondition,
    ) -> pb::Write {
        let fields = delta
            .sets
            .iter()
            .map(|(k, v)| (k.clone(), value(v)))
            .collect();
        let mut transforms: Vec<FieldTransform> = delta
            .increments
            .iter()
            .filter(|(_, v)| **v != 0)
            .map(|(k, v)| FieldTransform {
                field_path: k.clone(),
                transform_type: Some(TransformType::Increment(int(*v))),
            })
            .collect();
        transforms.extend(delta.unions.iter().map(|(k, vs)| FieldTransform {
            field_path: k.clone(),
            transform_type: Some(TransformType::AppendMissingElements(array(vs))),
        }));
        pb::Write {
            update_mask: Some(pb::DocumentMask {
                field_paths: delta.sets.keys().cloned().collect(),
            }),
            update_transforms: transforms,
            current_document: precondition.into_pb(),
            operation: Some(pb::write::Operation::Update(pb::Document {
                name: self.name(path),
                fields,
                create_time: None,
                update_time: None,
            })),
        }
    }

    /// A write replacing the whole document at `path` with `fields`.
    pub fn replace_write(
        &self,
        path: &str,
        fields: BTreeMap<String, FieldValue>,
        precondition: Precondition,
    ) -> pb::Write {
        let fields = fields.iter().map(|(k, v)| (k.clone(), value(v))).collect();
        self.document_write(path, fields, precondition)
    }

    fn document_write(
        &self,
        path: &str,
        fields: HashMap<String, pb::Value>,
        precondition: Precondition,
    ) -> pb::Write {
        pb::Write {
            update_mask: None,
            update_transforms: vec![],
            current_document: precondition.into_pb(),
            operation: Some(pb::write::Operation::Update(pb::Document {
                name: self.name(path),
                fields,
                create_time: None,
                update_time: None,
            })),
        }
    }

    /// A write that changes nothing and only checks `precondition` (an update with an empty
    /// mask), so a commit lands only if the document is as expected.
    pub fn verify_write(&self, path: &str, precondition: Precondition) -> pb::Write {
        pb::Write {
            update_mask: Some(pb::DocumentMask {
                field_paths: vec![],
            }),
            update_transforms: vec![],
            current_document: precondition.into_pb(),
            operation: Some(pb::write::Operation::Update(pb::Document {
                name: self.name(path),
                fields: HashMap::new(),
                create_time: None,
                update_time: None,
            })),
        }
    }

    pub fn delete_write(&self, path: &str, precondition: Precondition) -> pb::Write {
        pb::Write {
            update_mask: None,
            update_transforms: vec![],
            current_document: precondition.into_pb(),
            operation: Some(pb::write::Operation::Delete(self.name(path))),
        }
    }
}

impl Precondition {
    fn into_pb(self) -> Option<pb::Precondition> {
        match self {
            Precondition::None => None,
            Precondition::Exists(e) => Some(pb::Precondition {
                condition_type: Some(ConditionType::Exists(e)),
            }),
            Precondition::UpdateTime(t) => Some(pb::Precondition {
                condition_type: Some(ConditionType::UpdateTime(t)),
            }),
        }
    }
}

fn int(v: i64) -> pb::Value {
    pb::Value {
        value_type: Some(ValueType::IntegerValue(v)),
    }
}

fn timestamp(t: &DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// The fields of the whole document `delta` is, as [`DocDelta::document`] has them.
fn whole_fields(delta: &DocDelta) -> HashMap<String, pb::Value> {
    // In `DocDelta::document`'s order: a later field of the same name wins.
    delta
        .sets
        .iter()
        .map(|(k, v)| (k.clone(), value(v)))
        .chain(delta.unions.iter().map(|(k, vs)| {
            let array = ValueType::ArrayValue(array(vs));
            (
                k.clone(),
                pb::Value {
                    value_type: Some(array),
                },
            )
        }))
        .chain(delta.increments.iter().map(|(k, v)| (k.clone(), int(*v))))
        .collect()
}

/// Our array as a Firestore array.
fn array(values: &[FieldValue]) -> pb::ArrayValue {
    pb::ArrayValue {
        values: values.iter().map(value).collect(),
    }
}

/// Our value as a Firestore value.
pub fn value(v: &FieldValue) -> pb::Value {
    let vt = match v {
        FieldValue::Int(n) => ValueType::IntegerValue(*n),
        FieldValue::Double(d) => ValueType::DoubleValue(*d),
        FieldValue::Str(s) => ValueType::StringValue(s.clone()),
        FieldValue::Time(t) => ValueType::TimestampValue(timestamp(t)),
        FieldValue::Map(m) => ValueType::MapValue(pb::MapValue {
            fields: m.iter().map(|(k, v)| (k.clone(), value(v))).collect(),
        }),
        FieldValue::Array(a) => ValueType::ArrayValue(array(a)),
    };
    pb::Value {
        value_type: Some(vt),
    }
}

/// Read helpers for documents.
pub fn int_field(doc: &pb::Document, field: &str) -> Option<i64> {
    match doc.fields.get(field).and_then(|v| v.value_type.as_ref()) {
        Some(ValueType::IntegerValue(n)) => Some(*n),
        _ => None,
    }
}

pub fn str_field<'a>(doc: &'a pb::Document, field: &str) -> Option<&'a str> {
    match doc.fields.get(field).and_then(|v| v.value_type.as_ref()) {
        Some(ValueType::StringValue(s)) => Some(s),
        _ => None,
    }
}

/// The string elements of an array field.
pub fn str_array(doc: &pb::Document, field: &str) -> Vec<String> {
    match doc.fields.get(field).and_then(|v| v.value_type.as_ref()) {
        Some(ValueType::ArrayValue(a)) => a
            .values
            .iter()
            .filter_map(|v| match &v.value_type {
                Some(ValueType::StringValue(s)) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Integers beyond what a JavaScript number holds exactly.
const JS_SAFE: i64 = (1 << 53) - 1;

/// A Firestore value as JSON, for people and browsers: integers beyond JavaScript's exact
/// range as strings, timestamps as RFC 3339, bytes by their length, maps with sorted keys.
pub fn json_of(v: &pb::Value) -> serde_json::Value {
    use serde_json::{json, Value};
    match &v.value_type {
        None | Some(ValueType::NullValue(_)) => Value::Null,
        Some(ValueType::BooleanValue(b)) => json!(b),
        Some(ValueType::IntegerValue(i)) if i.abs() <= JS_SAFE => json!(i),
        Some(ValueType::IntegerValue(i)) => json!(i.to_string()),
        Some(ValueType::DoubleValue(d)) => json!(d),
        Some(ValueType::TimestampValue(t)) => json!(rfc3339(t)),
        Some(ValueType::StringValue(s)) => json!(s),
        Some(ValueType::BytesValue(b)) => json!(format!("<{} bytes>", b.len())),
        Some(ValueType::ReferenceValue(r)) => json!(r),
        Some(ValueType::GeoPointValue(g)) => {
            json!({"latitude": g.latitude, "longitude": g.longitude})
        }
        Some(ValueType::ArrayValue(a)) => Value::Array(a.values.iter().map(json_of).collect()),
        Some(ValueType::MapValue(m)) => json_of_fields(&m.fields),
        Some(other) => json!(format!("{other:?}")),
    }
}

/// A document's (or a map's) fields as a JSON object, keys sorted.
pub fn json_of_fields(map: &HashMap<String, pb::Value>) -> serde_json::Value {
    let mut sorted: Vec<_> = map.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    serde_json::Value::Object(
        sorted
            .into_iter()
            .map(|(k, v)| (k.clone(), json_of(v)))
            .collect(),
    )
}

/// A Firestore timestamp as RFC 3339 (UTC, `+00:00`).
pub fn rfc3339(t: &Timestamp) -> String {
    DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32)
        .map_or_else(|| format!("{}s", t.seconds), |d| d.to_rfc3339())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_whole_write_holds_the_document_its_delta_is() {
        let mut d = DocDelta {
            whole: true,
            ..DocDelta::default()
        };
        d.inc("n", 4);
        d.inc("both", 1);
        d.sets.insert("s".into(), FieldValue::from("x"));
        d.sets.insert("both".into(), FieldValue::from("set"));
        d.sets.insert(
            "m".into(),
            FieldValue::map([
                ("a", FieldValue::Int(1)),
                ("t", FieldValue::Time(Utc::now())),
            ]),
        );
        d.unions.insert(
            "a".into(),
            vec![FieldValue::from("y"), FieldValue::Double(0.5)],
        );
        d.unions.insert("s".into(), vec![FieldValue::Int(9)]);
        let document: HashMap<String, pb::Value> = d
            .document()
            .iter()
            .map(|(k, v)| (k.clone(), value(v)))
            .collect();
        assert_eq!(whole_fields(&d), document);
        assert_eq!(document.len(), 5);
    }

    #[test]
    fn values_become_json_without_losing_precision() {
        let v = |t| pb::Value {
            value_type: Some(t),
        };
        assert_eq!(json_of(&v(ValueType::IntegerValue(42))), json!(42));
        assert_eq!(
            json_of(&v(ValueType::IntegerValue(i64::MAX))),
            json!(i64::MAX.to_string())
        );
        assert_eq!(
            json_of(&v(ValueType::StringValue("<b>".into()))),
            json!("<b>")
        );
        let map = pb::MapValue {
            fields: [("b".to_owned(), v(ValueType::BooleanValue(true)))]
                .into_iter()
                .collect(),
        };
        assert_eq!(json_of(&v(ValueType::MapValue(map))), json!({"b": true}));
        let t = firestore::gcloud_sdk::prost_types::Timestamp {
            seconds: 0,
            nanos: 0,
        };
        assert_eq!(
            json_of(&v(ValueType::TimestampValue(t))),
            json!("1970-01-01T00:00:00+00:00")
        );
    }
}
