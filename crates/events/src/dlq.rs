//! The dead-letter topic's contract: every record analytics refuses goes there with its
//! original key and bytes (or a bounded excerpt) and these headers. Dead letters are at least
//! once; [`SOURCE`] identifies copies.

/// Why the record was refused: a stable code ([`crate::DecodeError::reason`] or one of
/// analytics' own, e.g. `event_time_out_of_window`).
pub const REASON: &str = "dlq.reason";
/// A readable explanation, at most 1,024 characters.
pub const DETAIL: &str = "dlq.detail";
/// Where the record was read: `topic/partition/offset`.
pub const SOURCE: &str = "dlq.source";
/// `true` when the payload is an excerpt (the original did not fit the dead-letter topic).
pub const TRUNCATED: &str = "dlq.truncated";
/// With [`TRUNCATED`]: the original payload's size in bytes.
pub const ORIGINAL_BYTES: &str = "dlq.original_bytes";
