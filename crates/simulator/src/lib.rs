//! The event simulator: realistic shopper sessions published to Kafka.
//!
//! # Layout
//! - [`settings`]: flags and environment variables, validated into [`settings::Settings`].
//! - [`geo`], [`catalog`]: the stable synthetic shop (categories, products, payment methods,
//!   users with coherent geography), derived from a seed.
//! - [`session`]: one session as a pure function of randomness, catalog, user and start time.
//! - [`run`]: per-user tasks, rate limiting, clock modes, injection, stop and summary.
//! - [`sink`]: Kafka producer (or stdout / memory) and delivery accounting.

pub mod catalog;
pub mod geo;
pub mod run;
pub mod session;
pub mod settings;
pub mod sink;
