//! Decode errors. Each variant names what is wrong and where; [`DecodeError::reason`] is a
//! short stable code (`snake_case`) for dead-letter headers and metric labels.

use std::fmt;

/// Why a payload was rejected. Never constructed for a valid event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("payload of {size} bytes exceeds the {limit}-byte limit")]
    Oversized { size: usize, limit: usize },
    #[error("payload is not valid UTF-8 (first bad byte at {at})")]
    NotUtf8 { at: usize },
    #[error("invalid JSON at line {line} column {column}: {message}")]
    InvalidJson {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("unknown event_type {0:?}")]
    UnknownEventType(String),
    #[error("unsupported schema_version {found} (this build reads version {supported})")]
    UnsupportedSchemaVersion { found: u64, supported: u16 },
    #[error("parameters of a {event_type} event have the shape of {looks_like} parameters")]
    ParametersMismatch {
        event_type: &'static str,
        looks_like: &'static str,
    },
    #[error("{path}: {kind}: {detail}")]
    Field {
        path: String,
        kind: FieldErrorKind,
        detail: String,
    },
}

/// What is wrong with one field of an otherwise well-formed JSON document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// A required field is absent.
    Missing,
    /// A field the schema does not define (the schema is closed).
    Unknown,
    /// The JSON type is wrong, e.g. the string `"12"` where an integer is expected.
    WrongType,
    /// A number outside its allowed range (negative money, zero quantity, latitude 91, ...).
    OutOfRange,
    /// An identifier or path segment that is unsafe as a Firestore document id.
    UnsafeId,
    /// A malformed value (not a UUID, not an ISO code, not RFC 3339, ...).
    Invalid,
    /// Fields that contradict each other (subtotal != price x quantity, ...).
    Inconsistent,
}

impl FieldErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing_field",
            Self::Unknown => "unknown_field",
            Self::WrongType => "wrong_type",
            Self::OutOfRange => "out_of_range",
            Self::UnsafeId => "unsafe_id",
            Self::Invalid => "invalid_value",
            Self::Inconsistent => "inconsistent",
        }
    }

    /// Inverse of [`as_str`](Self::as_str), used to recover the kind of a value error that
    /// travelled through serde as a message (see [`ValueError`]).
    fn from_code(code: &str) -> Option<Self> {
        [
            Self::Missing,
            Self::Unknown,
            Self::WrongType,
            Self::OutOfRange,
            Self::UnsafeId,
            Self::Invalid,
            Self::Inconsistent,
        ]
        .into_iter()
        .find(|k| k.as_str() == code)
    }
}

impl fmt::Display for FieldErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl DecodeError {
    /// A stable, low-cardinality code for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Oversized { .. } => "oversized",
            Self::NotUtf8 { .. } => "not_utf8",
            Self::InvalidJson { .. } => "invalid_json",
            Self::UnknownEventType(_) => "unknown_event_type",
            Self::UnsupportedSchemaVersion { .. } => "unsupported_schema_version",
            Self::ParametersMismatch { .. } => "parameters_mismatch",
            Self::Field { kind, .. } => kind.as_str(),
        }
    }

    pub(crate) fn field(
        path: impl Into<String>,
        kind: FieldErrorKind,
        detail: impl Into<String>,
    ) -> Self {
        Self::Field {
            path: path.into(),
            kind,
            detail: detail.into(),
        }
    }

    /// Map a serde_json error met at `path` (relative to `prefix`) to a typed error.
    pub(crate) fn from_serde(prefix: &str, path: &str, err: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        let message = strip_position(&err.to_string());
        match err.classify() {
            Category::Io | Category::Syntax | Category::Eof => Self::InvalidJson {
                line: err.line(),
                column: err.column(),
                message,
            },
            Category::Data => {
                let full_path = join_path(prefix, path);
                if let Some(field) = between_backticks(&message, "missing field `") {
                    return Self::field(
                        join_path(&full_path, field),
                        FieldErrorKind::Missing,
                        "required field is absent",
                    );
                }
                if let Some(field) = between_backticks(&message, "unknown field `") {
                    return Self::field(
                        join_path(&full_path, field),
                        FieldErrorKind::Unknown,
                        message.clone(),
                    );
                }
                if message.starts_with("invalid type") || message.starts_with("invalid length") {
                    return Self::field(full_path, FieldErrorKind::WrongType, message);
                }
                if let Some((code, detail)) = message.split_once(": ") {
                    if let Some(kind) = FieldErrorKind::from_code(code) {
                        return Self::field(full_path, kind, detail);
                    }
                }
                Self::field(full_path, FieldErrorKind::Invalid, message)
            }
        }
    }
}

/// The error of a value type's validation while serde deserializes it. Its `Display` is
/// `"<kind code>: <detail>"`, which [`DecodeError::from_serde`] parses back into a kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError {
    pub kind: FieldErrorKind,
    pub detail: String,
}

impl ValueError {
    pub(crate) fn new(kind: FieldErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

impl std::error::Error for ValueError {}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains(" column ") => message[..i].to_owned(),
        _ => message.to_owned(),
    }
}

fn between_backticks<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split('`').next()
}

pub(crate) fn join_path(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty() || path == ".") {
        (true, true) => ".".to_owned(),
        (true, false) => path.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) if path.starts_with('[') => format!("{prefix}{path}"),
        (false, false) => format!("{prefix}.{path}"),
    }
}
