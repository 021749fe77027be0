//! The analytics service: the event stream in, marketing statistics in Firestore out,
//! effectively once.
//!
//! # Layout
//! - [`pipeline`]: the Kafka consumer, key-affine dispatch to the worker pool, flushes,
//!   rebalances, shutdown.
//! - [`coordinator`]: the flush protocol the poll loop and the rebalance callbacks drive.
//! - [`cadence`]: when a flush is due and when consumption is held back (pure).
//! - [`settings`]: flags and environment, and the pipeline's configuration.
//! - [`worker`]: decode, validate ([`rules`], pure), deduplicate, aggregate; [`deadletter`]:
//!   what cannot be counted goes to the dead-letter topic, with its reason.
//! - [`aggregate`]: per event type, the exact [`store::deltas`] (pure, no I/O); [`tally`]:
//!   a batch's counters, keyed by what they count until the batch is handed over.
//! - [`journal`]: the two-step atomic flush that makes replays no-ops, and crash recovery;
//!   [`totals`]: the totals of this instance's counter shards, to write them whole.
//! - [`figures`]: derived figures (averages, conversion, trending, interest) from a bucket's
//!   counters (pure); [`derived`] reads the counters and materializes them.
//!
//! Firestore itself (client, schema, deltas, retries) is the `store` crate's.
//! - [`metrics`]: Prometheus counters and gauges.

pub mod admin;
pub mod aggregate;
pub mod cadence;
pub mod checkpoint;
pub mod coordinator;
pub mod deadletter;
pub mod derived;
pub mod figures;
pub mod journal;
pub mod metrics;
pub mod pipeline;
pub mod report;
pub mod rules;
pub mod settings;
pub mod tally;
pub mod totals;
pub mod worker;
