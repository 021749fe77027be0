//! Effectively-once persistence. A flush applies a batch of [`Deltas`] covering, for each
//! partition, every event up to an offset. Increments are not idempotent, so a flush is made
//! replay-safe in two atomic steps:
//!
//! 1. the batch is written as journal chunks (`_journal/{flush}-{i}`, inert on their own, in
//!    as many commits as their size needs), then one commit creates the flush's manifest
//!    (`_flushes/{flush}`) **and** advances the partitions' offset markers
//!    (`_offsets/{group}~{topic}~{p}`), each marker guarded by its last known update time,
//!    so a second owner of a partition (a zombie after a rebalance) fails instead of
//!    counting twice. The manifest is what makes the chunks count;
//! 2. each chunk is applied in its own commit together with its deletion (precondition: it
//!    still exists), so a chunk is applied exactly once, by whoever gets there first: this
//!    flush, or [`recover`] after a crash. Chunks without a manifest belong to a flush that
//!    never committed; recovery deletes them once they are older than [`ORPHAN_AGE`].
//!
//! A flush small enough to be one commit with its markers skips both steps: its deltas and
//! the markers' advance are committed together (see [`flush`]).
//!
//! Events below a partition's marker are never applied again: consumption resumes from the
//! marker. Every commit stays within [`MAX_WRITES_PER_COMMIT`].
//!
//! Over the ~400-line mark on purpose: recovery is step 2 replayed by someone else, so the
//! flush and its recovery share the chunk format, the apply-with-deletion commit and the
//! orphan rule, and are read together when either changes.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use firestore::gcloud_sdk::google::firestore::v1 as pb;
use firestore::gcloud_sdk::prost_types::Timestamp;
use futures::stream::{self, StreamExt, TryStreamExt};
use tokio_util::sync::CancellationToken;

use store::client::{int_field, str_field, MAX_WRITES_PER_COMMIT};
use store::deltas::MAX_TRANSFORMS_PER_WRITE;
use store::retry::with_retry;
use store::schema::{field, path, DocKind};
use store::{DocDelta, FieldValue, Precondition, Store, StoreError};

/// Writes counted per document delta in a commit budget. Its transforms travel in the same
/// write (`update_transforms`), which Firestore counts as one operation (they counted as a
/// second one only as a separate `transform` write).
const WRITES_PER_DELTA: usize = 1;
/// Deltas per journal chunk: one chunk is applied in one commit, with its own deletion.
pub const DELTAS_PER_CHUNK: usize = (MAX_WRITES_PER_COMMIT - 2) / WRITES_PER_DELTA;
/// Serialized size cap of one chunk (Firestore documents hold at most 1 MiB).
pub const MAX_CHUNK_BYTES: usize = 700 * 1024;
/// Bytes of journal chunks written per commit (the gRPC request limit is 4 MiB on the
/// emulator, 10 MiB in production).
pub const MAX_COMMIT_BYTES: usize = 3 * 1024 * 1024;
/// Age after which a chunk without a manifest is taken for abandoned and deleted (a flush
/// journals and commits its manifest within seconds). Safe even when wrong: a manifest
/// commits only while all its chunks exist, so a live flush whose chunk was discarded fails
/// and is replayed from the markers.
pub const ORPHAN_AGE: chrono::TimeDelta = chrono::TimeDelta::seconds(30);
/// Commits of one flush in flight at a time: their round trips overlap (the journal chunks,
/// then the applies, which touch disjoint documents).
const CONCURRENT_COMMITS: usize = 8;

/// A partition's persisted position: every event below `next_offset` is counted, and every
/// event below `sessions_offset` (≤ `next_offset`) is in its session's document as well.
/// Session documents are checkpointed less often than counters (see
/// [`crate::cadence::Checkpoints`]): a new owner replays `sessions_offset..next_offset` into
/// its sessions without counting anything again.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub next_offset: i64,
    pub sessions_offset: i64,
    /// The marker document's update time, the precondition of the next advance.
    pub update_time: Option<Timestamp>,
}

/// A partition's marker as a flush moves it.
#[derive(Debug, Clone, PartialEq)]
pub struct Advance {
    pub partition: i32,
    pub next_offset: i64,
    pub sessions_offset: i64,
    /// The marker as last read or written: the guard of this advance.
    pub marker: Option<Marker>,
}

pub async fn read_marker(
    store: &Store,
    group: &str,
    topic: &str,
    partition: i32,
) -> Result<Option<Marker>, StoreError> {
    Ok(store
        .get(&path::offsets(group, topic, partition))
        .await?
        .and_then(|doc| {
            int_field(&doc, field::NEXT_OFFSET).map(|next_offset| Marker {
                next_offset,
                // Markers written before session checkpoints existed had them in step.
                sessions_offset: int_field(&doc, field::SESSIONS_NEXT_OFFSET)
                    .unwrap_or(next_offset)
                    .min(next_offset),
                update_time: doc.update_time,
            })
        }))
}

/// What one flush persists.
#[derive(Debug, Default)]
pub struct Batch {
    pub deltas: BTreeMap<String, DocDelta>,
    /// The partitions' markers moved by this flush.
    pub advances: Vec<Advance>,
    /// The writer of its counter shards and derived markers (see
    /// [`store::schema::shard_counters`]).
    pub writer: i32,
}

/// How many Firestore writes a flush did and where its time went, for metrics.
#[derive(Debug, Clone, Default)]
pub struct FlushStats {
    pub writes: u64,
    pub commits: u64,
    pub chunks: u64,
    pub journal_bytes: u64,
    /// Wall time of step 1a (journal chunks), 1b (manifest and markers), 2 (applies).
    pub journal_time: Duration,
    pub manifest_time: Duration,
    pub apply_time: Duration,
    /// Documents applied, by kind.
    pub applied: BTreeMap<DocKind, u64>,
    /// Summed commit time of the apply commits, each charged to the kind most of its
    /// documents are (commits run concurrently, so this exceeds `apply_time`).
    pub apply_commit_time: BTreeMap<DocKind, Duration>,
    /// Counter shards read to learn their totals, and written whole (see [`crate::totals`]).
    pub shards_read: u64,
    pub shards_whole: u64,
    /// Session documents written whole (see [`crate::checkpoint`]).
    pub sessions_whole: u64,
}

impl FlushStats {
    /// Count the documents one apply commit wrote, by kind, and charge its time to the kind
    /// most of them are.
    pub(crate) fn account(&mut self, commit: &[(String, DocDelta)], took: Duration) {
        let mut kinds: BTreeMap<DocKind, u64> = BTreeMap::new();
        for (p, _) in commit {
            *kinds.entry(DocKind::of(p)).or_default() += 1;
        }
        if let Some((major, _)) = kinds.iter().max_by_key(|(_, n)| **n) {
            *self.apply_commit_time.entry(*major).or_default() += took;
        }
        for (k, n) in kinds {
            *self.applied.entry(k).or_default() += n;
        }
    }
}

/// `deltas` in chunks of at most `per_chunk` deltas and [`MAX_CHUNK_BYTES`], each to be
/// written in one commit; no chunk holds two pieces of one document.
pub(crate) fn chunks(
    deltas: BTreeMap<String, DocDelta>,
    per_chunk: usize,
) -> Vec<Vec<(String, DocDelta)>> {
    chunks_of(deltas, per_chunk, MAX_CHUNK_BYTES)
}

/// [`chunks`] of at most `max_bytes` each (a journal chunk is stored as a document, a
/// direct commit's writes are not: they may fill a commit).
pub(crate) fn chunks_of(
    deltas: BTreeMap<String, DocDelta>,
    per_chunk: usize,
    max_bytes: usize,
) -> Vec<Vec<(String, DocDelta)>> {
    let mut out: Vec<Vec<(String, DocDelta)>> = Vec::new();
    let mut bytes = 0;
    let pieces = deltas
        .into_iter()
        .filter(|(_, d)| !d.is_empty())
        .flat_map(|(path, delta)| {
            // One document's delta with more counters than a commit may transform (a bucket's
            // statistics), or larger than a chunk (a long session's history), is split; each
            // piece is serialized once here to size it.
            let budget = max_bytes.saturating_sub(path.len() + 16);
            let pieces: Vec<(DocDelta, usize)> = delta
                .split_transforms(MAX_TRANSFORMS_PER_WRITE)
                .into_iter()
                .flat_map(|d| {
                    let bytes = d.journal_bytes();
                    if bytes <= budget {
                        vec![(d, bytes)]
                    } else {
                        d.split(budget)
                            .into_iter()
                            .map(|d| {
                                let bytes = d.journal_bytes();
                                (d, bytes)
                            })
                            .collect()
                    }
                })
                .collect();
            pieces
                .into_iter()
                .map(move |(d, bytes)| (path.clone(), d, bytes))
        });
    for (path, delta, delta_bytes) in pieces {
        let size = path.len() + delta_bytes;
        // A chunk is one commit: two pieces of a document go to different ones.
        let full = out.last().is_none_or(|c| {
            c.len() >= per_chunk
                || bytes + size > max_bytes
                || c.last().is_some_and(|(p, _)| *p == path)
        });
        if full {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        if let Some(c) = out.last_mut() {
            c.push((path, delta));
        }
    }
    out
}

/// `deltas` as the writes of one commit with `bookkeeping` more, if they fit: at most
/// [`MAX_WRITES_PER_COMMIT`] writes, no document with more than
/// [`MAX_TRANSFORMS_PER_WRITE`] transforms, at most [`MAX_COMMIT_BYTES`] in all. (Journal
/// chunks are smaller, [`MAX_CHUNK_BYTES`], because each is stored as a document; a flush
/// that commits directly stores none.) Otherwise `deltas` back, for the journal.
fn one_commit(
    deltas: BTreeMap<String, DocDelta>,
    bookkeeping: usize,
) -> Result<Vec<(String, DocDelta)>, BTreeMap<String, DocDelta>> {
    let live = || deltas.iter().filter(|(_, d)| !d.is_empty());
    let mut bytes = 0;
    let fits = live().count() + bookkeeping <= MAX_WRITES_PER_COMMIT
        && live().all(|(p, d)| {
            bytes += p.len() + d.journal_bytes();
            d.transforms() <= MAX_TRANSFORMS_PER_WRITE && bytes <= MAX_COMMIT_BYTES
        });
    if !fits {
        return Err(deltas);
    }
    Ok(deltas.into_iter().filter(|(_, d)| !d.is_empty()).collect())
}

/// The writes that advance `batch`'s offset markers (each guarded by its last known update
/// time), then those marking the buckets whose derived documents it makes stale (see
/// `derived`).
fn marker_writes(
    store: &Store,
    (group, topic): (&str, &str),
    batch: &Batch,
    flush_id: uuid::Uuid,
    buckets: &std::collections::BTreeSet<String>,
    now: chrono::DateTime<Utc>,
) -> Vec<pb::Write> {
    let mut writes = Vec::with_capacity(batch.advances.len() + buckets.len());
    for Advance {
        partition,
        next_offset,
        sessions_offset,
        marker,
    } in &batch.advances
    {
        let fields = BTreeMap::from([
            (field::NEXT_OFFSET.to_owned(), FieldValue::Int(*next_offset)),
            (
                field::SESSIONS_NEXT_OFFSET.to_owned(),
                FieldValue::Int(*sessions_offset),
            ),
            (field::GROUP.to_owned(), FieldValue::from(group)),
            (field::TOPIC.to_owned(), FieldValue::from(topic)),
            (
                field::PARTITION.to_owned(),
                FieldValue::Int(i64::from(*partition)),
            ),
            (field::UPDATED_AT.to_owned(), FieldValue::Time(now)),
        ]);
        let guard = match marker.as_ref().and_then(|m| m.update_time) {
            Some(t) => Precondition::UpdateTime(t),
            None => Precondition::Exists(false),
        };
        writes.push(store.replace_write(&path::offsets(group, topic, *partition), fields, guard));
    }
    writes.extend(buckets.iter().map(|b| {
        store.replace_write(
            &path::derived_marker(b, batch.writer),
            BTreeMap::from([
                (
                    field::FLUSH.to_owned(),
                    FieldValue::Str(flush_id.to_string()),
                ),
                (field::MARKED_AT.to_owned(), FieldValue::Time(now)),
            ]),
            Precondition::None,
        )
    }));
    writes
}

/// The markers `advances` leave, from the results of their writes.
fn new_markers(advances: &[Advance], results: &[pb::WriteResult]) -> Vec<(i32, Marker)> {
    advances
        .iter()
        .zip(results)
        .map(|(a, r)| {
            (
                a.partition,
                Marker {
                    next_offset: a.next_offset,
                    sessions_offset: a.sessions_offset,
                    update_time: r.update_time,
                },
            )
        })
        .collect()
}

/// Persist `batch` (see the module doc). Returns the partitions' new markers.
///
/// A batch that fits in one commit with its markers (the usual live flush: tens of
/// statistics shards; session documents are written apart, see [`crate::checkpoint`])
/// skips the journal:
/// its deltas and the markers' advance are one atomic commit, which a replay can never
/// apply twice (the markers move with it) and a zombie cannot make (their guards).
pub async fn flush(
    store: &Store,
    group: &str,
    topic: &str,
    mut batch: Batch,
    stop: &CancellationToken,
) -> Result<(Vec<(i32, Marker)>, FlushStats), StoreError> {
    let buckets: std::collections::BTreeSet<String> = batch
        .deltas
        .keys()
        .filter_map(|p| path::bucket_of(p))
        .map(str::to_owned)
        .collect();
    let deltas = std::mem::take(&mut batch.deltas);
    let flush_id = uuid::Uuid::new_v4();
    let mut stats = FlushStats::default();
    let now = Utc::now();
    let t0 = std::time::Instant::now();

    let bookkeeping = batch.advances.len() + buckets.len();
    // The markers' advance and the buckets' derived-metric marks: committed with the deltas,
    // or with the manifest once the journal holds them.
    let markers = marker_writes(store, (group, topic), &batch, flush_id, &buckets, now);
    let deltas = match one_commit(deltas, bookkeeping) {
        Ok(chunk) if chunk.is_empty() && bookkeeping == 0 => return Ok((Vec::new(), stats)),
        // The failpoint sends every flush with deltas through the journal.
        Ok(chunk) if !chunk.is_empty() && failpoint_set() => chunk.into_iter().collect(),
        Ok(chunk) => {
            // Built for each attempt, not built once and copied for each.
            let writes = || -> Vec<pb::Write> {
                chunk
                    .iter()
                    .map(|(p, d)| store.delta_write(p, d, Precondition::None))
                    .chain(markers.iter().cloned())
                    .collect()
            };
            let markers_at = chunk.len();
            let results = with_retry("flush", stop, || store.commit(writes())).await?;
            stats.writes = (markers_at + markers.len()) as u64;
            stats.commits = 1;
            stats.apply_time = t0.elapsed();
            stats.account(&chunk, stats.apply_time);
            return Ok((new_markers(&batch.advances, &results[markers_at..]), stats));
        }
        Err(deltas) => deltas,
    };

    let chunks = chunks(deltas, DELTAS_PER_CHUNK);
    // Step 1a: the chunks, inert until the manifest exists; several commits at a time.
    let mut chunk_paths = Vec::with_capacity(chunks.len());
    let mut commits: Vec<Vec<pb::Write>> = Vec::new();
    let mut pending_bytes = 0;
    let mut journal_bytes = 0;
    for (i, chunk) in chunks.iter().enumerate() {
        let path = path::journal_chunk(flush_id, i);
        let json = serde_json::to_string(chunk).map_err(|e| StoreError::Permanent {
            code: firestore::gcloud_sdk::tonic::Code::Internal,
            message: format!("cannot serialize a journal chunk: {e}"),
        })?;
        let full = commits.last().is_none_or(|c| {
            pending_bytes + json.len() > MAX_COMMIT_BYTES || c.len() >= MAX_WRITES_PER_COMMIT
        });
        if full {
            commits.push(Vec::new());
            pending_bytes = 0;
        }
        pending_bytes += json.len();
        journal_bytes += json.len();
        let fields = BTreeMap::from([
            (field::DELTAS.to_owned(), FieldValue::Str(json)),
            (
                field::FLUSH.to_owned(),
                FieldValue::Str(flush_id.to_string()),
            ),
            (field::CREATED_AT.to_owned(), FieldValue::Time(now)),
        ]);
        if let Some(c) = commits.last_mut() {
            c.push(store.replace_write(&path, fields, Precondition::Exists(false)));
        }
        chunk_paths.push(path);
    }
    stats.writes += commits.iter().map(Vec::len).sum::<usize>() as u64;
    stats.commits += commits.len() as u64;
    let mut journal = Vec::with_capacity(commits.len());
    for writes in &commits {
        journal.push(with_retry("journal", stop, move || {
            store.commit(writes.clone())
        }));
    }
    if let Err(e) = concurrently(journal).await {
        // Some chunks may have landed: inert without a manifest, but never left behind.
        discard(store, &chunk_paths).await;
        return Err(e);
    }

    let journaled = t0.elapsed();
    stats.journal_bytes = journal_bytes as u64;
    // Step 1b: the manifest and the markers, atomically.
    let manifest = path::flush_manifest(flush_id);
    let mut writes = Vec::with_capacity(1 + batch.advances.len());
    writes.push(store.replace_write(
        &manifest,
        BTreeMap::from([
            (
                field::CHUNKS.to_owned(),
                FieldValue::Int(chunk_paths.len() as i64),
            ),
            (field::GROUP.to_owned(), FieldValue::from(group)),
            (field::CREATED_AT.to_owned(), FieldValue::Time(now)),
        ]),
        Precondition::Exists(false),
    ));
    let markers_at = writes.len();
    writes.extend(markers);
    // The chunks must still exist when the manifest lands: recovery may discard chunks it
    // takes for abandoned, and then this flush fails (and is replayed) instead of counting
    // less than it journalled.
    writes.extend(
        chunk_paths
            .iter()
            .map(|p| store.verify_write(p, Precondition::Exists(true))),
    );
    if writes.len() > MAX_WRITES_PER_COMMIT {
        discard(store, &chunk_paths).await;
        return Err(StoreError::Permanent {
            code: firestore::gcloud_sdk::tonic::Code::InvalidArgument,
            message: format!(
                "{} partitions and {} journal chunks exceed one commit; lower ANALYTICS_MAX_RECORDS_PER_FLUSH",
                batch.advances.len(),
                chunk_paths.len()
            ),
        });
    }
    stats.writes += writes.len() as u64;
    let results = match with_retry("manifest", stop, || store.commit(writes.clone())).await {
        Ok(r) => r,
        Err(e) => {
            discard(store, &chunk_paths).await;
            return Err(e);
        }
    };
    stats.commits += 1;
    let markers = new_markers(&batch.advances, &results[markers_at..]);

    if crash_after_manifest(journal_bytes) {
        tracing::error!("failpoint: aborting between the manifest and the applies");
        std::process::abort();
    }
    let manifested = t0.elapsed();
    // Step 2: apply each chunk with its deletion. Chunks touch disjoint documents, so they
    // may land in any order.
    let mut applies = Vec::with_capacity(chunks.len());
    for (chunk, path) in chunks.iter().zip(&chunk_paths) {
        applies.push(apply_chunk(store, chunk, path, stop));
    }
    let applied = concurrently(applies).await?;
    for (chunk, (writes, took)) in chunks.iter().zip(&applied) {
        stats.writes += *writes as u64;
        stats.account(chunk, *took);
    }
    stats.commits += applied.len() as u64;
    stats.chunks += applied.len() as u64;
    stats.writes += 1;
    stats.commits += 1;
    let delete = store.delete_write(&manifest, Precondition::None);
    if let Err(e) = with_retry("manifest cleanup", stop, || {
        store.commit(vec![delete.clone()])
    })
    .await
    {
        tracing::warn!(error = %e, "manifest left behind; recovery removes it");
    }
    stats.journal_time = journaled;
    stats.manifest_time = manifested - journaled;
    stats.apply_time = t0.elapsed() - manifested;
    tracing::debug!(
        deltas = chunks.iter().map(Vec::len).sum::<usize>(),
        chunks = chunks.len(),
        journal_ms = journaled.as_millis() as u64,
        manifest_ms = (manifested - journaled).as_millis() as u64,
        apply_ms = (t0.elapsed() - manifested).as_millis() as u64,
        "flush persisted"
    );
    Ok((markers, stats))
}

/// Fault injection for the chaos suite: with `ANALYTICS_FAILPOINT=abort-after-manifest:BYTES`
/// every flush takes the journal, and the process aborts right after committing the
/// manifest of the first flush that journals at least BYTES, before applying any chunk: the
/// crash recovery must then finish it. Unset (always, outside tests), it does nothing.
fn failpoint() -> Option<usize> {
    static AT: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    *AT.get_or_init(|| {
        std::env::var("ANALYTICS_FAILPOINT")
            .ok()?
            .strip_prefix("abort-after-manifest:")?
            .parse()
            .ok()
    })
}

fn failpoint_set() -> bool {
    failpoint().is_some()
}

fn crash_after_manifest(journal_bytes: usize) -> bool {
    failpoint().is_some_and(|at| journal_bytes >= at)
}

/// Run `calls`, [`CONCURRENT_COMMITS`] at a time; the first error wins.
pub(crate) async fn concurrently<T, F>(calls: Vec<F>) -> Result<Vec<T>, StoreError>
where
    F: std::future::Future<Output = Result<T, StoreError>>,
{
    at_most(CONCURRENT_COMMITS, calls).await
}

/// Run `calls`, `n` at a time; the first error wins.
pub(crate) async fn at_most<T, F>(n: usize, calls: Vec<F>) -> Result<Vec<T>, StoreError>
where
    F: std::future::Future<Output = Result<T, StoreError>>,
{
    stream::iter(calls).buffer_unordered(n).try_collect().await
}

/// Apply one journal chunk and delete it in one commit. A chunk already applied (deleted)
/// by someone else is skipped. Returns the number of writes.
async fn apply_chunk(
    store: &Store,
    chunk: &[(String, DocDelta)],
    journal_path: &str,
    stop: &CancellationToken,
) -> Result<(usize, Duration), StoreError> {
    let t0 = std::time::Instant::now();
    let writes = || -> Vec<_> {
        chunk
            .iter()
            .map(|(p, d)| store.delta_write(p, d, Precondition::None))
            .chain([store.delete_write(journal_path, Precondition::Exists(true))])
            .collect()
    };
    let n = chunk.len() + 1;
    match with_retry("apply", stop, || store.commit(writes())).await {
        Ok(_) => Ok((n, t0.elapsed())),
        Err(StoreError::Conflict { .. }) => {
            tracing::info!(journal = journal_path, "journal chunk already applied");
            Ok((0, t0.elapsed()))
        }
        Err(e) => Err(e),
    }
}

/// Delete `paths` (journal chunks of a flush that will never count), a few attempts each,
/// without waiting on a stop: a clean stop leaves no journal behind.
async fn discard(store: &Store, paths: &[String]) {
    for part in paths.chunks(MAX_WRITES_PER_COMMIT) {
        let writes: Vec<_> = part
            .iter()
            .map(|p| store.delete_write(p, Precondition::None))
            .collect();
        let mut attempt = 0;
        loop {
            match store.commit(writes.clone()).await {
                Ok(_) => break,
                Err(e) if e.is_transient() && attempt < 3 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, chunks = part.len(), "journal chunks not discarded; recovery removes them");
                    break;
                }
            }
        }
    }
}

/// Delete a chunk whose flush never committed, atomically with a check that its manifest
/// still does not exist (a delete of the manifest's path that requires it to be absent).
async fn discard_orphan(store: &Store, chunk: &str, flush: &str) -> Result<(), StoreError> {
    let writes = vec![
        store.delete_write(chunk, Precondition::None),
        store.delete_write(&path::flush_manifest(flush), Precondition::Exists(false)),
    ];
    match store.commit(writes).await {
        Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Read a committed chunk and apply it; false if someone else applied it first (or it cannot
/// be read, which is logged and left for inspection).
async fn recover_chunk(
    store: &Store,
    path: &str,
    stop: &CancellationToken,
) -> Result<bool, StoreError> {
    let Some(full) = with_retry("read journal chunk", stop, || store.get(path)).await? else {
        return Ok(false);
    };
    let Some(json) = str_field(&full, field::DELTAS) else {
        tracing::error!(journal = %path, "journal chunk without deltas; leaving it for inspection");
        return Ok(false);
    };
    let chunk: Vec<(String, DocDelta)> = match serde_json::from_str(json) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(journal = %path, error = %e, "unreadable journal chunk; leaving it for inspection");
            return Ok(false);
        }
    };
    Ok(apply_chunk(store, &chunk, path, stop).await?.0 > 0)
}

/// Finish flushes interrupted between their steps (a crash): apply every chunk whose flush
/// has a manifest, delete abandoned chunks and finished manifests. Safe to run concurrently
/// from several instances and with live flushes. Listings carry only the small fields (a
/// page is one response, at most 4 MiB); each chunk is then read on its own, so memory and
/// responses stay bounded whatever the journal holds. Returns the chunks applied.
pub async fn recover(store: &Store, stop: &CancellationToken) -> Result<usize, StoreError> {
    recover_older_than(store, stop, ORPHAN_AGE).await
}

/// [`recover`], deleting chunks without a manifest once older than `orphan_age`. At a clean
/// stop every orphan goes (age zero): what earlier crashes left is not left behind, and a
/// live flush of another instance whose chunk is discarded fails its manifest and is replayed.
pub async fn recover_older_than(
    store: &Store,
    stop: &CancellationToken,
    orphan_age: chrono::TimeDelta,
) -> Result<usize, StoreError> {
    let listed = with_retry("list journal", stop, || {
        store.list(path::JOURNAL, &[field::FLUSH])
    })
    .await?;
    let flushes: std::collections::BTreeSet<String> = listed
        .iter()
        .filter_map(|d| str_field(d, field::FLUSH).map(str::to_owned))
        .collect();
    let manifest_paths: Vec<String> = flushes.iter().map(path::flush_manifest).collect();
    let manifests = with_retry("read manifests", stop, || {
        store.get_many(&manifest_paths, &[field::CHUNKS])
    })
    .await?;
    let mut discarded = 0;
    let mut committed = Vec::new();
    for doc in listed {
        let path = store.relative(&doc.name).to_owned();
        let flush = str_field(&doc, field::FLUSH).unwrap_or_default().to_owned();
        if manifests.contains_key(&path::flush_manifest(&flush)) {
            committed.push(path);
            continue;
        }
        let created = doc
            .create_time
            .map(|t| chrono::DateTime::from_timestamp(t.seconds, 0).unwrap_or_default());
        if created.is_none_or(|t| Utc::now() - t >= orphan_age) {
            with_retry("discard orphan", stop, || {
                discard_orphan(store, &path, &flush)
            })
            .await?;
            discarded += 1;
        }
    }
    // Committed chunks, a few at a time: each is read on its own (up to 1 MiB) and applied.
    let applies = committed
        .iter()
        .map(|path| recover_chunk(store, path, stop));
    let applied = concurrently(applies.collect())
        .await?
        .into_iter()
        .filter(|applied| *applied)
        .count();
    // Manifests whose chunks are all applied are done.
    let remaining: std::collections::BTreeSet<String> = with_retry("list journal", stop, || {
        store.list(path::JOURNAL, &[field::FLUSH])
    })
    .await?
    .iter()
    .filter_map(|d| str_field(d, field::FLUSH).map(str::to_owned))
    .collect();
    let done: Vec<String> = with_retry("list manifests", stop, || store.list(path::FLUSHES, &[]))
        .await?
        .iter()
        .map(|m| store.relative(&m.name).to_owned())
        .filter(|path| !remaining.contains(path.rsplit('/').next().unwrap_or_default()))
        .collect();
    discard(store, &done).await;
    if applied > 0 || discarded > 0 {
        tracing::warn!(
            applied,
            discarded,
            "recovered the journal of interrupted flushes"
        );
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use store::schema::LIFETIME;

    use super::*;

    #[test]
    fn chunks_respect_the_commit_budget_and_size() {
        let mut deltas = BTreeMap::new();
        for i in 0..1000 {
            let mut d = DocDelta::default();
            d.increments.insert(field::VIEWS.into(), 1);
            d.unions.insert(
                "x".into(),
                vec![FieldValue::Str("y".repeat(if i % 100 == 0 {
                    200_000
                } else {
                    10
                }))],
            );
            deltas.insert(path::statistics(&format!("2026-01-{i}")), d);
        }
        let cs = chunks(deltas, DELTAS_PER_CHUNK);
        assert_eq!(cs.iter().map(Vec::len).sum::<usize>(), 1000);
        for c in &cs {
            assert!(c.len() <= DELTAS_PER_CHUNK);
            assert!(c.len() * WRITES_PER_DELTA < MAX_WRITES_PER_COMMIT);
            let bytes: usize = c
                .iter()
                .map(|(p, d)| p.len() + serde_json::to_string(d).map_or(0, |s| s.len()))
                .sum();
            assert!(bytes <= MAX_CHUNK_BYTES || c.len() == 1, "{bytes}");
        }
    }

    #[test]
    fn a_document_with_more_counters_than_a_commit_transforms_is_spread_over_chunks() {
        let mut d = DocDelta::default();
        for i in 0..1200 {
            d.increments
                .insert(field::nested("products", &format!("p{i}"), field::VIEWS), 1);
        }
        let mut deltas = BTreeMap::from([(path::statistics(LIFETIME), d)]);
        deltas.insert(path::statistics("2026-01-01"), DocDelta::default());
        let cs = chunks(deltas, DELTAS_PER_CHUNK);
        assert_eq!(cs.len(), 3, "one piece per commit");
        for c in &cs {
            assert_eq!(c.len(), 1);
            assert!(c[0].1.transforms() <= MAX_TRANSFORMS_PER_WRITE);
        }
        let total: usize = cs.iter().map(|c| c[0].1.increments.len()).sum();
        assert_eq!(total, 1200);
    }

    #[test]
    fn empty_deltas_are_not_written() {
        let mut deltas = BTreeMap::new();
        deltas.insert("a/b".to_owned(), DocDelta::default());
        assert!(chunks(deltas, DELTAS_PER_CHUNK).is_empty());
    }
}
