//! Session documents, written apart from the counters and without the journal.
//!
//! A session's document holds only what stays the same however often it is written: array
//! unions (event ids, detail elements) and fields set to the session's state at the
//! checkpoint (see [`crate::aggregate::History`]). So a checkpoint is written after the
//! counters of its flush have landed (its documents then name no event that is not
//! counted), in as many commits as its size needs, each retried as often as needed; a
//! partition's marker says its sessions are saved up to the checkpoint's offset only once
//! every commit has landed (the next flush writes that). A crash in between leaves documents
//! ahead of the marker: the next owner replays from the marker, and deduplication by event
//! id skips what they hold already.
//!
//! Every commit verifies the leases of the partitions checkpointed: a new owner writes its
//! lease when it is assigned a partition, so a former owner that lost it (a zombie) cannot
//! overwrite what the new owner has written since.

use std::collections::BTreeMap;

use chrono::Utc;
use firestore::gcloud_sdk::prost_types::Timestamp;
use tokio_util::sync::CancellationToken;

use store::client::MAX_WRITES_PER_COMMIT;
use store::retry::with_retry;
use store::schema::{field, path};
use store::{DocDelta, FieldValue, Precondition, Store, StoreError};

use crate::journal::{chunks, concurrently, FlushStats};

/// A partition's lease as its owner wrote it: the precondition of its checkpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    pub path: String,
    pub update_time: Timestamp,
}

/// Write the leases of the `partitions` just assigned to this instance (`owner` names it in
/// the documents, for people reading them).
pub async fn take_leases(
    store: &Store,
    (group, topic): (&str, &str),
    partitions: &[i32],
    owner: &str,
    stop: &CancellationToken,
) -> Result<BTreeMap<i32, Lease>, StoreError> {
    let now = Utc::now();
    let mut out = BTreeMap::new();
    for part in partitions.chunks(MAX_WRITES_PER_COMMIT) {
        let paths: Vec<String> = part.iter().map(|p| path::lease(group, topic, *p)).collect();
        let writes: Vec<_> = paths
            .iter()
            .map(|p| {
                let fields = BTreeMap::from([
                    (field::OWNER.to_owned(), FieldValue::from(owner)),
                    (field::UPDATED_AT.to_owned(), FieldValue::Time(now)),
                ]);
                store.replace_write(p, fields, Precondition::None)
            })
            .collect();
        let results = with_retry("leases", stop, || store.commit(writes.clone())).await?;
        for ((p, path), r) in part.iter().zip(paths).zip(results) {
            let update_time = r.update_time.ok_or_else(|| StoreError::Permanent {
                code: firestore::gcloud_sdk::tonic::Code::Internal,
                message: format!("no update time for the lease {path}"),
            })?;
            out.insert(*p, Lease { path, update_time });
        }
    }
    Ok(out)
}

/// Write the session documents of a checkpoint, each commit verifying `leases`. A lease
/// taken by someone else fails it with [`StoreError::Conflict`].
pub async fn save(
    store: &Store,
    sessions: BTreeMap<String, DocDelta>,
    leases: &[Lease],
    stop: &CancellationToken,
) -> Result<FlushStats, StoreError> {
    let t0 = std::time::Instant::now();
    let per_commit = MAX_WRITES_PER_COMMIT.saturating_sub(leases.len()).max(1);
    let commits = chunks(sessions, per_commit);
    let verify: Vec<_> = leases
        .iter()
        .map(|l| store.verify_write(&l.path, Precondition::UpdateTime(l.update_time)))
        .collect();
    let mut calls = Vec::with_capacity(commits.len());
    for (i, chunk) in commits.iter().enumerate() {
        let mut writes: Vec<_> = chunk
            .iter()
            .map(|(p, d)| store.delta_write(p, d, Precondition::None))
            .collect();
        writes.extend(verify.iter().cloned());
        calls.push(async move {
            let t = std::time::Instant::now();
            let n = writes.len();
            with_retry("sessions", stop, || store.commit(writes.clone())).await?;
            Ok::<_, StoreError>((i, n, t.elapsed()))
        });
    }
    let done = concurrently(calls).await?;
    let mut stats = FlushStats::default();
    // They land in any order.
    for (i, writes, took) in done {
        stats.writes += writes as u64;
        stats.commits += 1;
        stats.account(&commits[i], took);
    }
    stats.apply_time = t0.elapsed();
    Ok(stats)
}
