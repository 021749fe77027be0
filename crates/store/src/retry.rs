//! Retries of Firestore calls: transient errors only, capped exponential backoff, and an end
//! (the caller's cancellation) so no retry loop outlives shutdown.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::client::StoreError;

/// First and longest pause between two attempts.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Retry `op` on transient errors with capped exponential backoff, until it succeeds, fails
/// otherwise, or `stop` is cancelled (then the last transient error is returned).
pub async fn with_retry<T, F, Fut>(
    what: &str,
    stop: &CancellationToken,
    mut op: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut backoff = FIRST_BACKOFF;
    loop {
        match op().await {
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, op = what, retry_in_ms = backoff.as_millis() as u64, "transient Firestore error");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = stop.cancelled() => return Err(e),
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            other => return other,
        }
    }
}
