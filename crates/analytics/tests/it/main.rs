//! Analytics tests: exact deltas per event type and batch-split invariance (pure), and the
//! whole pipeline against the real cluster and the Firestore emulator, compared with an
//! independent computation from the events read back from the topic.
mod aggregate;
mod dashboard;
mod helpers;
mod journal;
mod pipeline;
mod totals;
