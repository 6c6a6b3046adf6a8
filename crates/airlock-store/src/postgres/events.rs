//! The hash-chained event log in PostgreSQL ([`EventStore`]).
//!
//! Appending: one transaction per batch that first locks the chain head
//! (`SELECT … FROM chain_head FOR UPDATE`), so appends from every replica
//! take turns on one chain instead of forking it; the batch's ids follow
//! the head's, its rows go in with one `INSERT … SELECT FROM unnest(…)`,
//! and the head moves on in the same transaction. Hashes are those of the
//! SQLite store ([`crate::events::ChainHasher`]), so verification and the
//! chain key mean the same on both.
//!
//! Reading: by id, time (an index on `ts_micros`), kind and session. The
//! chain is verified page by page inside one repeatable-read snapshot.

use super::pool::{db_error, get};
use super::{PgStore, Shared};
use crate::backend::EventStore;
use crate::events::{
    BrokenLink, ChainHasher, ChainLink, EventFilter, EventRecord, NewEvent, PruneReport,
    VerifyReport, GENESIS_HASH,
};
use crate::StoreError;

/// Events read per page while verifying.
const VERIFY_PAGE: i64 = 10_000;

const EVENT_COLUMNS: &str = "id, ts_micros, kind, session_id, identity, data, prev_hash, hash";

fn event_from_row(row: &tokio_postgres::Row) -> Result<EventRecord, StoreError> {
    let data: String = get(row, 5)?;
    Ok(EventRecord {
        id: get(row, 0)?,
        ts_micros: get(row, 1)?,
        kind: get(row, 2)?,
        session_id: get(row, 3)?,
        identity: get(row, 4)?,
        data: serde_json::from_str(&data).unwrap_or(serde_json::Value::String(data)),
        prev_hash: get(row, 6)?,
        hash: get(row, 7)?,
    })
}

impl EventStore for PgStore {
    fn append_events(&self, events: &[NewEvent]) -> Result<Vec<i64>, StoreError> {
        let events = events.iter().map(|event| (None, event.clone())).collect();
        self.run(move |shared| async move { append_chained(&shared, events, None).await })
    }

    fn events(&self, filter: &EventFilter) -> Result<Vec<EventRecord>, StoreError> {
        let filter = filter.clone();
        self.run(move |shared| async move {
            let client = shared.pool.get().await?;
            // Absent filters are NULL parameters: the unnamed statement is
            // planned with the values, so each absent term folds away.
            let rows = client
                .query(
                    &format!(
                        "SELECT {EVENT_COLUMNS} FROM events WHERE id > $1
                         AND ($2::TEXT IS NULL OR session_id = $2)
                         AND ($3::BIGINT IS NULL OR ts_micros >= $3)
                         AND ($4::TEXT IS NULL OR identity = $4)
                         AND (cardinality($5::TEXT[]) = 0 OR kind = ANY($5))
                         ORDER BY id LIMIT $6"
                    ),
                    &[
                        &filter.after_id,
                        &filter.session_id,
                        &filter.since_micros,
                        &filter.identity,
                        &filter.kinds,
                        &filter.limit.max(0),
                    ],
                )
                .await
                .map_err(db_error)?;
            rows.iter().map(event_from_row).collect()
        })
    }

    fn verify_chain(&self) -> Result<VerifyReport, StoreError> {
        self.run(move |shared| async move { verify(&shared).await })
    }

    /// Deletes the oldest events up to the first one at or after
    /// `before_micros` (a prefix of the chain, so what is left still
    /// links), under the chain head's lock, and records the checkpoint.
    fn prune_events(&self, before_micros: i64) -> Result<PruneReport, StoreError> {
        self.run(move |shared| async move {
            let now = shared.clock.now_unix();
            let mut client = shared.pool.get().await?;
            let transaction = client.client_mut().transaction().await.map_err(db_error)?;
            transaction
                .execute("SELECT 1 FROM chain_head FOR UPDATE", &[])
                .await
                .map_err(db_error)?;
            let last = transaction
                .query_opt(
                    "SELECT id, hash FROM events WHERE id < COALESCE(
                         (SELECT MIN(id) FROM events WHERE ts_micros >= $1),
                         (SELECT last_id + 1 FROM chain_head))
                     ORDER BY id DESC LIMIT 1",
                    &[&before_micros],
                )
                .await
                .map_err(db_error)?;
            let Some(last) = last else {
                return Ok(PruneReport {
                    pruned_events: 0,
                    through_id: None,
                });
            };
            let through_id: i64 = get(&last, 0)?;
            let through_hash: String = get(&last, 1)?;
            let pruned = transaction
                .execute("DELETE FROM events WHERE id <= $1", &[&through_id])
                .await
                .map_err(db_error)?;
            let pruned_count = i64::try_from(pruned).unwrap_or(i64::MAX);
            transaction
                .execute(
                    "INSERT INTO chain_checkpoints (through_id, through_hash, pruned_events, created_at)
                     VALUES ($1, $2, $3, $4)",
                    &[&through_id, &through_hash, &pruned_count, &now],
                )
                .await
                .map_err(db_error)?;
            transaction.commit().await.map_err(db_error)?;
            Ok(PruneReport {
                pruned_events: pruned,
                through_id: Some(through_id),
            })
        })
    }
}

/// Appends `events` (each with its journaled time, or none for now) in one
/// transaction holding the chain head's row lock, with `progress` (a
/// journal and the byte it is copied through) recorded in the same
/// transaction when given; a batch whose journal position is stored
/// already (a retry after a lost answer) is skipped. The commit waits for
/// the store's own durability (its `synchronous_commit`) even though the
/// events are in the journal already: the store can crash on its own, and
/// a replica that keeps running never copies its journal again, so a
/// commit the store lost would be an event lost (SQLite may relax this:
/// its file can only lose a commit together with the gateway's host,
/// whose next start recovers the journal). The index waits, not the
/// commands: batches keep the cost to one store flush per batch.
pub(super) async fn append_chained(
    shared: &Shared,
    events: Vec<(Option<i64>, NewEvent)>,
    progress: Option<(String, u64)>,
) -> Result<Vec<i64>, StoreError> {
    let key = shared.chain_key()?;
    let mut client = shared.pool.get().await?;
    let transaction = client.client_mut().transaction().await.map_err(db_error)?;
    let head = transaction
        .query_one("SELECT last_id, last_hash FROM chain_head FOR UPDATE", &[])
        .await
        .map_err(db_error)?;
    if let Some((journal, through)) = &progress {
        // Idempotent per journal position: when a commit went through but
        // its answer was lost (the connection broke), the index retries the
        // batch; the progress row says it is stored already, so it is not
        // stored twice.
        let through = i64::try_from(*through).unwrap_or(i64::MAX);
        let advanced = transaction
            .query_opt(
                "INSERT INTO journal_progress (journal, indexed_through) VALUES ($1, $2)
                 ON CONFLICT (journal) DO UPDATE SET indexed_through = EXCLUDED.indexed_through
                 WHERE journal_progress.indexed_through < EXCLUDED.indexed_through
                 RETURNING 1",
                &[journal, &through],
            )
            .await
            .map_err(db_error)?;
        if advanced.is_none() {
            return Ok(Vec::new());
        }
    }
    let head_id: i64 = get(&head, 0)?;
    let mut prev: String = get(&head, 1)?;
    let mut columns = Columns::default();
    let mut hasher = ChainHasher::default();
    for (next_id, (ts, event)) in (head_id + 1..).zip(&events) {
        // Stamped under the lock, so ids follow time across replicas.
        let ts = ts.unwrap_or_else(|| shared.clock.now_micros());
        let hash = hasher.hash(
            key.as_ref(),
            &ChainLink {
                prev_hash: &prev,
                id: next_id,
                ts_micros: ts,
                kind: &event.kind,
                session_id: event.session_id.as_deref(),
                identity: event.identity.as_deref(),
                data: event.data.as_str(),
            },
        );
        columns.push(
            next_id,
            ts,
            event,
            std::mem::replace(&mut prev, hash.clone()),
            hash,
        );
    }
    if !columns.ids.is_empty() {
        transaction
            .execute(
                &format!(
                    "INSERT INTO events ({EVENT_COLUMNS}) SELECT * FROM unnest(
                     $1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::TEXT[],
                     $6::TEXT[], $7::TEXT[], $8::TEXT[])"
                ),
                &[
                    &columns.ids,
                    &columns.times,
                    &columns.kinds,
                    &columns.sessions,
                    &columns.identities,
                    &columns.data,
                    &columns.prev_hashes,
                    &columns.hashes,
                ],
            )
            .await
            .map_err(db_error)?;
        let last_id = head_id + i64::try_from(columns.ids.len()).unwrap_or(i64::MAX);
        transaction
            .execute(
                "UPDATE chain_head SET last_id = $1, last_hash = $2",
                &[&last_id, &prev],
            )
            .await
            .map_err(db_error)?;
    }
    transaction.commit().await.map_err(db_error)?;
    Ok(columns.ids)
}

/// A batch of chained events, column by column (bound as arrays).
#[derive(Default)]
struct Columns {
    ids: Vec<i64>,
    times: Vec<i64>,
    kinds: Vec<String>,
    sessions: Vec<Option<String>>,
    identities: Vec<Option<String>>,
    data: Vec<String>,
    prev_hashes: Vec<String>,
    hashes: Vec<String>,
}

impl Columns {
    fn push(&mut self, id: i64, ts: i64, event: &NewEvent, prev_hash: String, hash: String) {
        self.ids.push(id);
        self.times.push(ts);
        self.kinds.push(event.kind.clone());
        self.sessions.push(event.session_id.clone());
        self.identities.push(event.identity.clone());
        self.data.push(event.data.as_str().to_string());
        self.prev_hashes.push(prev_hash);
        self.hashes.push(hash);
    }
}

/// Walks the chain from the latest checkpoint in one snapshot.
async fn verify(shared: &Shared) -> Result<VerifyReport, StoreError> {
    let key = shared.chain_key()?;
    let mut client = shared.pool.get().await?;
    let transaction = client
        .client_mut()
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(db_error)?;
    let checkpoint = transaction
        .query_opt(
            "SELECT through_id, through_hash FROM chain_checkpoints ORDER BY id DESC LIMIT 1",
            &[],
        )
        .await
        .map_err(db_error)?;
    let checkpoint: Option<(i64, String)> = match checkpoint {
        Some(row) => Some((get(&row, 0)?, get(&row, 1)?)),
        None => None,
    };
    let (mut expected_prev, mut expected_id) = match &checkpoint {
        Some((through_id, hash)) => (hash.clone(), through_id + 1),
        None => (GENESIS_HASH.to_string(), 1),
    };
    let mut report = VerifyReport {
        ok: true,
        events_checked: 0,
        first_broken: None,
        checkpoint_through_id: checkpoint.as_ref().map(|(id, _)| *id),
        last_id: None,
    };
    let mut hasher = ChainHasher::default();
    let mut after = i64::MIN;
    loop {
        let rows = transaction
            .query(
                &format!("SELECT {EVENT_COLUMNS} FROM events WHERE id > $1 ORDER BY id LIMIT $2"),
                &[&after, &VERIFY_PAGE],
            )
            .await
            .map_err(db_error)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let id: i64 = get(row, 0)?;
            let prev: String = get(row, 6)?;
            let hash: String = get(row, 7)?;
            let data: String = get(row, 5)?;
            let session: Option<String> = get(row, 3)?;
            let identity: Option<String> = get(row, 4)?;
            let kind: String = get(row, 2)?;
            let recomputed = hasher.hash(
                key.as_ref(),
                &ChainLink {
                    prev_hash: &prev,
                    id,
                    ts_micros: get(row, 1)?,
                    kind: &kind,
                    session_id: session.as_deref(),
                    identity: identity.as_deref(),
                    data: &data,
                },
            );
            report.events_checked += 1;
            report.last_id = Some(id);
            after = id;
            let problem = if id != expected_id {
                Some(format!(
                    "expected event {expected_id} next, found {id}: events were removed or reordered"
                ))
            } else if prev != expected_prev {
                Some(
                    "its previous-hash link does not match the event before it: \
                     events were removed, inserted or reordered"
                        .to_string(),
                )
            } else if recomputed != hash {
                Some("its content does not match its hash: the event was modified".to_string())
            } else {
                None
            };
            if let Some(problem) = problem {
                report.ok = false;
                report.first_broken = Some(BrokenLink {
                    event_id: id,
                    problem,
                });
                return Ok(report);
            }
            expected_prev = hash;
            expected_id = id + 1;
        }
    }
    Ok(report)
}
