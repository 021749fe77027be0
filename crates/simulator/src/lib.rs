//! The event simulator: realistic shopper sessions published to Kafka.
//!
//! # Layout
//! - [`settings`]: flags and environment variables, validated into [`settings::Settings`].
//! - The shop it plays (catalog, geography, the session state machine) is the pure `shop`
//!   crate's.
//! - [`run`]: per-user tasks, rate limiting, clock modes, injection, stop and summary.
//! - [`sink`]: Kafka producer (or stdout / memory) and delivery accounting.

pub mod run;
pub mod settings;
pub mod sink;
