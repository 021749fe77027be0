//! Service plumbing shared by every binary of the workspace.
//!
//! # Layout
//! - [`kafka`]: typed Kafka client settings (brokers, SCRAM user, CA, raw librdkafka
//!   pass-through) that always produce a `SASL_SSL` configuration with hostname
//!   verification, and refuse to build one without credentials or a CA.
//! - [`context`]: an rdkafka client context that forwards librdkafka's logs and errors to
//!   `tracing` and keeps the last errors for callers that must assert on them.
//! - [`telemetry`]: `tracing` subscriber set-up (text or JSON).
//! - [`shutdown`]: the one shutdown path: SIGINT or SIGTERM cancel a root token.
//! - [`exit`]: how a binary ends (start-up errors exit 2).

pub mod context;
pub mod exit;
pub mod kafka;
pub mod shutdown;
pub mod telemetry;

pub use context::{ClientErrors, ObservedContext};
pub use kafka::{KafkaArgs, KafkaConfigError, KafkaSettings, ScramMechanism};
