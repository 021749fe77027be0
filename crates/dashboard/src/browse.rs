//! The data browser: collections → documents → fields, read-only and paged, the role the
//! Firebase Emulator UI played for the original system's users.

use serde_json::{json, Value};
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
                "fields": doc.as_ref().map(|d| store::schema::readable_fields(path, d)),
                "update_time": doc.as_ref().and_then(|d| d.update_time.as_ref()).map(store::client::rfc3339),
                "collections": collections.documents,
                "next": collections.next,
            })
        }
    })
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
}
