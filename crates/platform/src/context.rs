//! An rdkafka client context that routes librdkafka's logs and client-level errors to
//! `tracing`, and remembers the most recent errors. Transport failures (TLS, SASL) reach an
//! application only this way, not as call results, so the security tests assert on them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// How many client errors are kept; older ones are dropped (the count keeps growing).
pub const KEPT_ERRORS: usize = 64;

/// One client-level error: librdkafka's code and its reason text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    pub code: Option<RDKafkaErrorCode>,
    pub reason: String,
}

/// The errors a client has seen, shared with whoever holds a clone.
#[derive(Debug, Clone, Default)]
pub struct ClientErrors(Arc<Mutex<(u64, VecDeque<ClientError>)>>);

impl ClientErrors {
    fn push(&self, e: ClientError) {
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.0 += 1;
        if guard.1.len() == KEPT_ERRORS {
            guard.1.pop_front();
        }
        guard.1.push_back(e);
    }

    /// The kept errors, oldest first.
    pub fn snapshot(&self) -> Vec<ClientError> {
        let guard = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.1.iter().cloned().collect()
    }

    /// Errors seen since the client was created, including dropped ones.
    pub fn total(&self) -> u64 {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
    }

    /// The first kept error with `code`.
    pub fn find(&self, code: RDKafkaErrorCode) -> Option<ClientError> {
        self.snapshot().into_iter().find(|e| e.code == Some(code))
    }
}

/// Client context for every producer and consumer of the project.
#[derive(Debug, Clone, Default)]
pub struct ObservedContext {
    pub errors: ClientErrors,
}

impl ClientContext for ObservedContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        // A broker connection that failed. librdkafka logs every one under this facility but
        // reports only some through the error callback (a connection closed by the peer
        // right after it came up is not), so it is kept as a transport error too.
        if fac == "FAIL" {
            self.errors.push(ClientError {
                code: Some(RDKafkaErrorCode::BrokerTransportFailure),
                reason: log_message.to_owned(),
            });
        }
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", facility = fac, "{log_message}");
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", facility = fac, "{log_message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", facility = fac, "{log_message}")
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(target: "librdkafka", facility = fac, "{log_message}")
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(target: "librdkafka", error = %error, "client error: {reason}");
        self.errors.push(ClientError {
            code: error.rdkafka_error_code(),
            reason: reason.to_owned(),
        });
    }
}

impl ConsumerContext for ObservedContext {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_broker_connections_are_kept_as_transport_errors() {
        let ctx = ObservedContext::default();
        ctx.log(
            RDKafkaLogLevel::Info,
            "CONNECT",
            "ssl://127.0.0.1:19092/bootstrap: Connecting",
        );
        assert_eq!(ctx.errors.total(), 0, "other facilities are only logged");
        ctx.log(
            RDKafkaLogLevel::Info,
            "FAIL",
            "ssl://127.0.0.1:19092/bootstrap: Disconnected: SSL connection closed by peer",
        );
        let kept = ctx
            .errors
            .find(RDKafkaErrorCode::BrokerTransportFailure)
            .expect("kept");
        assert!(kept.reason.contains("closed by peer"));
    }
}
