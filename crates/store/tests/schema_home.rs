//! The schema has one home: no source outside `src/schema.rs` spells a document path or a
//! field name of it. Scans the crates that talk to Firestore and the scripts; tests are left
//! out on purpose, since they check the documents with a spelling of their own, independent
//! of the code under test.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const SCHEMA: &str = include_str!("../src/schema.rs");
/// Crates that read or write Firestore (the others never name a document).
const CRATES: &[&str] = &["analytics", "attacker", "platform", "store"];
/// Field names that are also the wire contract's JSON names (`crates/events`): a literal of
/// these is an event's field, which the attacker forges.
const WIRE_NAMES: &[&str] = &["event_id", "user_id"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// String literals of a Rust or shell source, without the test modules of Rust files.
fn literals(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut out = Vec::new();
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let mut lit = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        c => lit.push(c),
                    }
                }
                out.push(lit);
            }
            // Line comments are prose (and may name a document).
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            // A char literal such as '"'.
            '\'' => {
                let ahead: String = chars.clone().take(3).collect();
                if ahead.starts_with("\"'") || ahead.starts_with("\\\"'") {
                    chars.nth(ahead.find('\'').unwrap_or(0));
                }
            }
            _ => {}
        }
    }
    out
}

/// The field names of the schema that are its own (with an underscore: `views_count`, not
/// `name`), and the path segments of its collections.
fn vocabulary() -> (BTreeSet<String>, BTreeSet<String>) {
    let fields_part = &SCHEMA[SCHEMA.find("pub mod field").expect("field module")..];
    let fields = literals(fields_part)
        .into_iter()
        .filter(|f| f.contains('_') && !WIRE_NAMES.contains(&f.as_str()))
        .collect();
    let path_part = &SCHEMA[..SCHEMA.find("pub mod field").expect("field module")];
    let segments = literals(path_part)
        .iter()
        .flat_map(|l| l.split('/').map(str::to_owned).collect::<Vec<_>>())
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .collect();
    (fields, segments)
}

fn sources(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            sources(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

/// Where a literal spells the schema: a field of its own, or a path through a collection.
fn offences(literal: &str, fields: &BTreeSet<String>, segments: &BTreeSet<String>) -> bool {
    fields.contains(literal)
        || segments
            .iter()
            .any(|s| literal.starts_with(&format!("{s}/")) || literal.contains(&format!("/{s}/")))
}

#[test]
fn the_vocabulary_is_read_from_the_schema() {
    let (fields, segments) = vocabulary();
    for f in [
        "views_count",
        "total_paid_cents",
        "event_ids",
        "next_offset",
    ] {
        assert!(fields.contains(f), "{f} missing from {fields:?}");
    }
    for s in [
        "statistics",
        "products",
        "sessions_history",
        "_journal",
        "metrics",
    ] {
        assert!(segments.contains(s), "{s} missing from {segments:?}");
    }
}

#[test]
fn the_check_catches_a_spelled_path_or_field() {
    let (fields, segments) = vocabulary();
    let text = r#"let p = format!("products/{id}/statistics/{b}"); get(&d, "views_count"); let x = "name"; // "statistics/lifetime""#;
    let caught: Vec<String> = literals(text)
        .into_iter()
        .filter(|l| offences(l, &fields, &segments))
        .collect();
    assert_eq!(caught, ["products/{id}/statistics/{b}", "views_count"]);
}

#[test]
fn no_source_but_the_schema_spells_a_path_or_a_field() {
    let (fields, segments) = vocabulary();
    let root = root();
    let mut files = Vec::new();
    for c in CRATES {
        sources(&root.join("crates").join(c).join("src"), "rs", &mut files);
    }
    sources(&root.join("scripts"), "sh", &mut files);
    let schema = root
        .join("crates/store/src/schema.rs")
        .canonicalize()
        .expect("schema");
    let mut found = Vec::new();
    for file in files {
        if file.canonicalize().expect("source") == schema {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("source text");
        // Scripts read figures through `analytics report --json`, whose names are the
        // report's own (`sessions_started`): only paths count there.
        let no_fields = BTreeSet::new();
        let fields = if file.extension().is_some_and(|e| e == "sh") {
            &no_fields
        } else {
            &fields
        };
        for l in literals(&text) {
            if offences(&l, fields, &segments) {
                found.push(format!("{}: {l:?}", file.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "spell these through store::schema:\n{}",
        found.join("\n")
    );
}
