//! Firestore at the edge, shared by every service and tool that reads or writes it.
//!
//! # Layout
//! - [`schema`]: the one place document paths and field names are spelled, with typed
//!   readers of the documents (`docs/firestore-schema.md`).
//! - [`client`]: [`Store`], one atomic commit per call, batched reads, listings, value
//!   conversion; [`StoreError`] says transient, conflict or permanent.
//! - [`deltas`]: what a batch of events changes, per document, before any I/O.
//! - [`retry`]: bounded retries of transient errors.
//! - [`args`]: the `--project` / timeout flags and [`FirestoreArgs::connect`].

pub mod args;
pub mod client;
pub mod deltas;
pub mod retry;
pub mod schema;

pub use args::FirestoreArgs;
pub use client::{Page, Precondition, Store, StoreError};
pub use deltas::{Deltas, DocDelta, FieldValue};
