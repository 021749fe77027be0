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
//! A session that had no document when it was loaded, and whose deltas since are all in one
//! partition's checkpoint, is written whole (its arrays as values, no update mask, no
//! transform) on condition that its document still does not exist: the emulator charges a
//! field path (an update mask entry, an array union) several times what it charges a field
//! of a whole document. Should it exist after all (its events came with another key too, or
//! a retried commit had landed), the commit is made again adding to every document instead:
//! a whole write only ever creates a document.
//!
//! Every commit holds one partition's sessions and verifies that partition's lease: a new
//! owner writes its lease when it is assigned a partition, so a former owner that lost it (a
//! zombie) cannot overwrite what the new owner has written since.

use std::collections::BTreeMap;

use chrono::Utc;
use firestore::gcloud_sdk::prost_types::Timestamp;
use tokio_util::sync::CancellationToken;

use store::client::MAX_WRITES_PER_COMMIT;
use store::retry::with_retry;
use store::schema::{field, path};
use store::{DocDelta, FieldValue, Precondition, Store, StoreError};

use crate::journal::{at_most, chunks_of, FlushStats, MAX_COMMIT_BYTES};

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

/// Session documents in one commit, at most (and [`MAX_COMMIT_BYTES`]).
///
/// A checkpoint's commits share the emulator with the next flush's counters, whose landing
/// is what freshness waits for: a counter commit that arrives while eight commits of 499
/// sessions are being applied gets a ninth of the emulator's CPU until they are done. So a
/// checkpoint is written in small commits, [`SESSION_COMMITS_IN_FLIGHT`] at a time: a
/// counter commit then waits behind a few hundred documents at most. See the README's
/// "Session 19".
pub const SESSIONS_PER_COMMIT: usize = 100;
/// Commits of a checkpoint in flight at a time.
pub const SESSION_COMMITS_IN_FLIGHT: usize = 2;

/// The commits of a checkpoint: each partition's session documents in commits of their own,
/// as few as fit (at most [`SESSIONS_PER_COMMIT`] and the lease, and [`MAX_COMMIT_BYTES`]),
/// each verifying that partition's lease only. A lease is a document too: verified by every
/// commit of every partition, it was written several times a second.
pub fn commits(
    parts: Vec<(Lease, BTreeMap<String, DocDelta>)>,
) -> Vec<(Lease, Vec<(String, DocDelta)>)> {
    parts
        .into_iter()
        .flat_map(|(lease, sessions)| {
            chunks_of(sessions, SESSIONS_PER_COMMIT, MAX_COMMIT_BYTES)
                .into_iter()
                .map(move |chunk| (lease.clone(), chunk))
        })
        .collect()
}

/// Write the session documents of a checkpoint, by partition, each commit verifying the
/// partition's lease (see [`commits`]). A lease taken by someone else fails it with
/// [`StoreError::Conflict`].
pub async fn save(
    store: &Store,
    parts: Vec<(Lease, BTreeMap<String, DocDelta>)>,
    stop: &CancellationToken,
) -> Result<FlushStats, StoreError> {
    let t0 = std::time::Instant::now();
    let commits = commits(parts);
    let mut calls = Vec::with_capacity(commits.len());
    for (i, (lease, chunk)) in commits.iter().enumerate() {
        let whole = chunk.iter().filter(|(_, d)| d.whole).count();
        calls.push(async move {
            let t = std::time::Instant::now();
            let (n, whole) = match commit(store, lease, chunk, true, stop).await {
                // A document written whole exists after all (another partition's events of
                // the same session, or this commit landed before a retry): added to instead.
                Err(StoreError::Conflict { .. }) if whole > 0 => {
                    (commit(store, lease, chunk, false, stop).await?, 0)
                }
                done => (done?, whole),
            };
            Ok::<_, StoreError>((i, n, whole, t.elapsed()))
        });
    }
    let done = at_most(SESSION_COMMITS_IN_FLIGHT, calls).await?;
    let mut stats = FlushStats::default();
    // They land in any order.
    for (i, writes, whole, took) in done {
        stats.writes += writes as u64;
        stats.sessions_whole += whole as u64;
        stats.commits += 1;
        stats.account(&commits[i].1, took);
    }
    stats.apply_time = t0.elapsed();
    Ok(stats)
}

/// One commit of a partition's sessions with the verification of its lease; returns the
/// writes it made. With `whole`, the sessions whose deltas are their whole document
/// ([`DocDelta::whole`]) are written as such, on condition that they do not exist yet;
/// otherwise every delta is added to its document.
async fn commit(
    store: &Store,
    lease: &Lease,
    chunk: &[(String, DocDelta)],
    whole: bool,
    stop: &CancellationToken,
) -> Result<usize, StoreError> {
    // Built for each attempt, not built once and copied for each.
    let writes = || -> Vec<_> {
        chunk
            .iter()
            .map(|(p, d)| {
                if whole && d.whole {
                    store.whole_write(p, d, Precondition::Exists(false))
                } else {
                    store.update_write(p, d, Precondition::None)
                }
            })
            .chain([store.verify_write(&lease.path, Precondition::UpdateTime(lease.update_time))])
            .collect()
    };
    with_retry("sessions", stop, || store.commit(writes())).await?;
    Ok(chunk.len() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(p: i32) -> Lease {
        Lease {
            path: path::lease("g", "t", p),
            update_time: Timestamp::default(),
        }
    }

    fn sessions(p: i32, n: usize, bytes: usize) -> BTreeMap<String, DocDelta> {
        (0..n)
            .map(|i| {
                let mut d = DocDelta::default();
                d.sets
                    .insert(field::USER_ID.into(), FieldValue::Str("x".repeat(bytes)));
                (format!("sessions_history/{p}-{i}"), d)
            })
            .collect()
    }

    #[test]
    fn each_commit_verifies_its_own_partitions_lease_and_holds_a_hundred_sessions_at_most() {
        let plan = commits(vec![
            (lease(0), sessions(0, 1200, 1500)),
            (lease(1), sessions(1, 10, 1500)),
            (lease(2), BTreeMap::new()),
        ]);
        // 1,200 sessions of ~1.5 KB: 12 commits of 100 (by bytes, 3 would do).
        let of = |p: i32| {
            plan.iter()
                .filter(|(l, _)| *l == lease(p))
                .collect::<Vec<_>>()
        };
        assert_eq!(of(0).len(), 12);
        assert_eq!(of(1).len(), 1);
        assert!(of(2).is_empty(), "no sessions, no commit, no lease write");
        for (l, chunk) in &plan {
            let own = format!(
                "sessions_history/{}-",
                l.path.rsplit('~').next().unwrap_or("")
            );
            assert!(chunk.iter().all(|(p, _)| p.starts_with(&own)), "{own}");
            assert!(chunk.len() <= SESSIONS_PER_COMMIT);
        }
        // Larger sessions: a commit holds up to MAX_COMMIT_BYTES.
        let big = commits(vec![(lease(0), sessions(0, 90, 100_000))]);
        assert_eq!(big.len(), 3, "9 MB in commits of ≤ 3 MiB");
    }
}
