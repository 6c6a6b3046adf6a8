//! The hash-chained event log in SQLite ([`EventStore`]): appending (one
//! IMMEDIATE transaction per batch, so processes sharing the file extend
//! one chain), reading (by id, by time through bisection of the ids, by
//! kind through a partial index that leaves out command events, by session
//! through `session_spans`), verifying and pruning behind a checkpoint.

use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;
use std::sync::LazyLock;

use super::{Inner, Store};
use crate::backend::EventStore;
use crate::clock::Clock;
use crate::events::{
    BrokenLink, ChainHasher, ChainLink, EventFilter, EventRecord, NewEvent, PruneReport,
    VerifyReport, GENESIS_HASH,
};
use crate::StoreError;

/// The next event id: past every event stored and every event ever pruned
/// (ids are never reused, so a checkpoint's `through_id` stays unique).
const FIRST_FREE_EVENT_ID: &str = "SELECT MAX(
        COALESCE((SELECT MAX(id) FROM events), 0),
        COALESCE((SELECT MAX(through_id) FROM chain_checkpoints), 0)
    ) + 1";

impl EventStore for Store {
    /// Appends events in one transaction (one durable write for the batch),
    /// extending the hash chain. Returns their ids. Nothing is appended when
    /// any write fails.
    fn append_events(&self, events: &[NewEvent]) -> Result<Vec<i64>, StoreError> {
        self.append_chained(events.iter().map(|event| (None, event)), None)
    }

    /// Reads events matching `filter`, oldest first.
    fn events(&self, filter: &EventFilter) -> Result<Vec<EventRecord>, StoreError> {
        let mut reader = self.read()?;
        // One read transaction: the bisection and the page see one snapshot.
        let snapshot = reader.transaction()?;
        let mut sql = String::from(
            "SELECT events.id, ts_micros, kind, events.session_id, identity, data, prev_hash, hash FROM ",
        );
        let mut values: Vec<rusqlite::types::Value> = vec![filter.after_id.into()];
        if let Some(session) = &filter.session_id {
            // The session's spans first (its primary key), then the events
            // in each span by id.
            values.push(session.clone().into());
            sql.push_str(&format!(
                "session_spans CROSS JOIN events ON events.id BETWEEN session_spans.first_id \
                 AND session_spans.last_id WHERE session_spans.session_id = ?{n} \
                 AND session_spans.last_id > ?1 AND events.session_id = ?{n} AND",
                n = values.len()
            ));
        } else {
            sql.push_str("events WHERE");
        }
        sql.push_str(" events.id > ?1");
        if let Some(since) = filter.since_micros {
            // Ids follow time: start the scan at the first event at or after
            // `since` (found by bisection), then filter exactly.
            let from = first_id_at_or_after(&snapshot, since)?;
            values.push((from - 1).into());
            sql.push_str(&format!(" AND events.id > ?{}", values.len()));
            values.push(since.into());
            sql.push_str(&format!(" AND ts_micros >= ?{}", values.len()));
        }
        if let Some(identity) = &filter.identity {
            values.push(identity.clone().into());
            sql.push_str(&format!(" AND identity = ?{}", values.len()));
        }
        if !filter.kinds.is_empty() {
            let mut placeholders = Vec::new();
            for kind in &filter.kinds {
                values.push(kind.clone().into());
                placeholders.push(format!("?{}", values.len()));
            }
            sql.push_str(&format!(" AND kind IN ({})", placeholders.join(", ")));
            if filter
                .kinds
                .iter()
                .all(|kind| kind != "command" && kind != "command.result")
            {
                // The exact term of the partial kind index, so SQLite uses it.
                sql.push_str(" AND kind NOT IN ('command', 'command.result')");
            }
        }
        values.push(filter.limit.max(0).into());
        // A session's spans never overlap, so in span order its events come
        // in id order without a sort (a page of a long session reads only
        // that page).
        let order = if filter.session_id.is_some() {
            "session_spans.first_id, events.id"
        } else {
            "events.id"
        };
        sql.push_str(&format!(" ORDER BY {order} LIMIT ?{}", values.len()));
        let mut statement = snapshot.prepare(&sql)?;
        let rows = statement.query_map(rusqlite::params_from_iter(values), event_from_row)?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::from)
    }

    /// Walks the chain from the latest pruning checkpoint (or the genesis)
    /// and reports the first broken link: an edited event (its hash does not
    /// match its content), a removed, inserted or reordered one (its
    /// `prev_hash` or id does not follow the one before).
    fn verify_chain(&self) -> Result<VerifyReport, StoreError> {
        let key = self.lock()?.chain_key.clone();
        let mut reader = self.read()?;
        // One snapshot for the checkpoint and the walk, read beside the
        // writers instead of stopping them.
        let snapshot = reader.transaction()?;
        let checkpoint: Option<(i64, String)> = snapshot
            .query_row(
                "SELECT through_id, through_hash FROM chain_checkpoints ORDER BY id DESC LIMIT 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let (mut expected_prev, mut expected_id) = match &checkpoint {
            Some((through_id, hash)) => (hash.clone(), through_id + 1),
            None => (GENESIS_HASH.to_string(), 1),
        };
        let mut statement = snapshot.prepare(
            "SELECT id, ts_micros, kind, session_id, identity, data, prev_hash, hash FROM events ORDER BY id",
        )?;
        let mut rows = statement.query([])?;
        let mut hasher = ChainHasher::default();
        let mut report = VerifyReport {
            ok: true,
            events_checked: 0,
            first_broken: None,
            checkpoint_through_id: checkpoint.as_ref().map(|(id, _)| *id),
            last_id: None,
        };
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let ts: i64 = row.get(1)?;
            let kind: String = row.get(2)?;
            let session: Option<String> = row.get(3)?;
            let identity: Option<String> = row.get(4)?;
            let data: String = row.get(5)?;
            let prev: String = row.get(6)?;
            let hash: String = row.get(7)?;
            report.events_checked += 1;
            report.last_id = Some(id);
            let recomputed = hasher.hash(
                key.as_ref(),
                &ChainLink {
                    prev_hash: &prev,
                    id,
                    ts_micros: ts,
                    kind: &kind,
                    session_id: session.as_deref(),
                    identity: identity.as_deref(),
                    data: &data,
                },
            );
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
                break;
            }
            expected_prev = hash;
            expected_id = id + 1;
        }
        Ok(report)
    }

    /// Deletes events older than `before_micros`, keeping the chain
    /// verifiable: the hash of the newest pruned event is recorded as a
    /// checkpoint that verification starts from.
    fn prune_events(&self, before_micros: i64) -> Result<PruneReport, StoreError> {
        let mut inner = self.lock()?;
        let transaction = inner.connection.transaction()?;
        let first_kept = first_id_at_or_after(&transaction, before_micros)?;
        let last: Option<(i64, String)> = transaction
            .query_row(
                "SELECT id, hash FROM events WHERE id < ?1 ORDER BY id DESC LIMIT 1",
                [first_kept],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let Some((through_id, through_hash)) = last else {
            return Ok(PruneReport {
                pruned_events: 0,
                through_id: None,
            });
        };
        let pruned = transaction.execute("DELETE FROM events WHERE id <= ?1", [through_id])?;
        transaction.execute(
            "DELETE FROM session_spans WHERE last_id <= ?1",
            [through_id],
        )?;
        let pruned = i64::try_from(pruned).unwrap_or(i64::MAX);
        transaction.execute(
            "INSERT INTO chain_checkpoints (through_id, through_hash, pruned_events, created_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![through_id, through_hash, pruned, self.clock.now_unix()],
        )?;
        transaction.commit()?;
        Ok(PruneReport {
            pruned_events: u64::try_from(pruned).unwrap_or(0),
            through_id: Some(through_id),
        })
    }
}

impl Store {
    /// Appends `events` (each with its journaled time, or none for now)
    /// in one transaction, with `progress` (a journal and the byte it is
    /// copied through) recorded in the same transaction when given.
    pub(super) fn append_chained<'a>(
        &self,
        events: impl Iterator<Item = (Option<i64>, &'a NewEvent)>,
        progress: Option<(&str, u64)>,
    ) -> Result<Vec<i64>, StoreError> {
        let mut inner = self.lock()?;
        let key = inner.chain_key.clone();
        let mut ids = Vec::new();
        // Events copied from a journal are durable there already: their
        // commit need not wait for the disk (the journal is deleted only
        // after a synced commit, see `journal_barrier`).
        let relaxed = progress.is_some() && inner.full_sync;
        if relaxed {
            inner
                .connection
                .pragma_update(None, "synchronous", "NORMAL")?;
        }
        let result = Self::append_in_transaction(
            &mut inner,
            key.as_ref(),
            self.clock.as_ref(),
            events,
            progress,
            &mut ids,
        );
        if relaxed {
            inner
                .connection
                .pragma_update(None, "synchronous", "FULL")?;
        }
        result?;
        Ok(ids)
    }

    fn append_in_transaction<'a>(
        inner: &mut Inner,
        key: Option<&ring::hmac::Key>,
        clock: &dyn Clock,
        events: impl Iterator<Item = (Option<i64>, &'a NewEvent)>,
        progress: Option<(&str, u64)>,
        ids: &mut Vec<i64>,
    ) -> Result<(), StoreError> {
        // IMMEDIATE takes the write lock before reading the head, so several
        // processes sharing the file extend one chain instead of forking it.
        let transaction = inner
            .connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Statements prepared once per connection: this runs for every batch.
        let head: String = transaction
            .prepare_cached("SELECT hash FROM events ORDER BY id DESC LIMIT 1")?
            .query_row([], |row| row.get(0))
            .optional()?
            .unwrap_or_else(|| {
                // Empty log: the chain starts at the latest pruning checkpoint.
                transaction
                    .query_row(
                        "SELECT through_hash FROM chain_checkpoints ORDER BY id DESC LIMIT 1",
                        [],
                        |row| row.get(0),
                    )
                    .unwrap_or_else(|_| GENESIS_HASH.to_string())
            });
        {
            let first_id: i64 = transaction
                .prepare_cached(FIRST_FREE_EVENT_ID)?
                .query_row([], |row| row.get(0))?;
            let mut hasher = ChainHasher::default();
            // The id range each session's events take in this batch.
            let mut spans: Vec<(&str, i64, i64)> = Vec::new();
            let mut span_of: HashMap<&str, usize> = HashMap::new();
            let mut rows: Vec<ChainedRow<'_>> = Vec::new();
            for (next_id, (ts, event)) in (first_id..).zip(events) {
                if let Some(session) = event.session_id.as_deref() {
                    match span_of.get(session).and_then(|&index| spans.get_mut(index)) {
                        Some((_, _, last)) => *last = next_id,
                        None => {
                            span_of.insert(session, spans.len());
                            spans.push((session, next_id, next_id));
                        }
                    }
                }
                let ts = ts.unwrap_or_else(|| clock.now_micros());
                let prev = rows.last().map_or(head.as_str(), |row| row.hash.as_str());
                let hash = hasher.hash(
                    key,
                    &ChainLink {
                        prev_hash: prev,
                        id: next_id,
                        ts_micros: ts,
                        kind: &event.kind,
                        session_id: event.session_id.as_deref(),
                        identity: event.identity.as_deref(),
                        data: event.data.as_str(),
                    },
                );
                rows.push(ChainedRow {
                    id: next_id,
                    ts,
                    event,
                    data: event.data.as_str(),
                    hash,
                });
                ids.push(next_id);
            }
            insert_rows(&transaction, &head, &rows)?;
            let mut span = transaction.prepare_cached(
                "INSERT INTO session_spans (session_id, first_id, last_id) VALUES (?1, ?2, ?3)",
            )?;
            for (session, first, last) in spans {
                span.execute(params![session, first, last])?;
            }
        }
        if let Some((journal, through)) = progress {
            transaction
                .prepare_cached(
                    "INSERT INTO journal_progress (journal, indexed_through) VALUES (?1, ?2)
                     ON CONFLICT (journal) DO UPDATE SET indexed_through = excluded.indexed_through",
                )?
                .execute(params![journal, i64::try_from(through).unwrap_or(i64::MAX)])?;
        }
        transaction.commit()?;
        Ok(())
    }
}

/// An event about to be stored, with its id, time and chained hash.
struct ChainedRow<'a> {
    id: i64,
    ts: i64,
    event: &'a NewEvent,
    data: &'a str,
    hash: String,
}

/// Rows stored per `INSERT` statement: one statement of many rows costs
/// SQLite far less per row (one reset, one program run) than one per row.
const ROWS_PER_INSERT: usize = 16;

/// `INSERT INTO events … VALUES (…), (…)` with `rows` rows of parameters.
fn insert_events_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO events (id, ts_micros, kind, session_id, identity, data, prev_hash, hash) VALUES ",
    );
    for row in 0..rows {
        let first = row * 8 + 1;
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{})",
            first,
            first + 1,
            first + 2,
            first + 3,
            first + 4,
            first + 5,
            first + 6,
            first + 7
        ));
    }
    sql
}

/// Stores `rows`, chained after `head`: [`ROWS_PER_INSERT`] per statement,
/// the rest one by one.
// `&String`, not `&str`: bound as a `&dyn ToSql`, which an unsized `str`
// cannot be.
#[allow(clippy::ptr_arg)]
fn insert_rows(
    transaction: &rusqlite::Transaction<'_>,
    head: &String,
    rows: &[ChainedRow<'_>],
) -> Result<(), StoreError> {
    let mut prev = head;
    static INSERT_MANY: LazyLock<String> = LazyLock::new(|| insert_events_sql(ROWS_PER_INSERT));
    static INSERT_ONE: LazyLock<String> = LazyLock::new(|| insert_events_sql(1));
    let mut chunks = rows.chunks_exact(ROWS_PER_INSERT);
    if rows.len() >= ROWS_PER_INSERT {
        let mut many = transaction.prepare_cached(&INSERT_MANY)?;
        for chunk in chunks.by_ref() {
            let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(ROWS_PER_INSERT * 8);
            for row in chunk {
                values.extend_from_slice(&row_values(row, prev));
                prev = &row.hash;
            }
            many.execute(values.as_slice())?;
        }
    }
    let mut one = transaction.prepare_cached(&INSERT_ONE)?;
    for row in chunks.remainder() {
        one.execute(row_values(row, prev))?;
        prev = &row.hash;
    }
    Ok(())
}

/// The parameters of one row, in the column order of [`insert_events_sql`].
#[allow(clippy::ptr_arg)] // see `insert_rows`
fn row_values<'a>(row: &'a ChainedRow<'_>, prev: &'a String) -> [&'a dyn rusqlite::ToSql; 8] {
    [
        &row.id,
        &row.ts,
        &row.event.kind,
        &row.event.session_id,
        &row.event.identity,
        &row.data,
        prev,
        &row.hash,
    ]
}

// The id of the first event stored at or after `ts_micros` (one past the
/// newest event when there is none), by bisecting the id range: events are
/// appended in time order, so their times rise with their ids. Costs a few
/// dozen primary-key lookups instead of a time index updated on every
/// append.
fn first_id_at_or_after(connection: &Connection, ts_micros: i64) -> Result<i64, StoreError> {
    let (low, high): (Option<i64>, Option<i64>) =
        connection.query_row("SELECT MIN(id), MAX(id) FROM events", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    let (Some(mut low), Some(high)) = (low, high) else {
        return Ok(i64::MAX);
    };
    // Invariant: every event before `low` is older than `ts_micros`; the
    // answer lies in low..=high+1.
    let mut high = high + 1;
    let mut probe = connection
        .prepare_cached("SELECT id, ts_micros FROM events WHERE id >= ?1 ORDER BY id LIMIT 1")?;
    while low < high {
        let middle = low + (high - low) / 2;
        let found: Option<(i64, i64)> = probe
            .query_row([middle], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        match found {
            Some((id, ts)) if ts < ts_micros => low = (id + 1).min(high),
            Some((id, _)) if id < high => high = id.max(low),
            _ => high = middle,
        }
    }
    Ok(low)
}

fn event_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<EventRecord> {
    let data: String = row.get(5)?;
    Ok(EventRecord {
        id: row.get(0)?,
        ts_micros: row.get(1)?,
        kind: row.get(2)?,
        session_id: row.get(3)?,
        identity: row.get(4)?,
        data: serde_json::from_str(&data).unwrap_or(serde_json::Value::String(data)),
        prev_hash: row.get(6)?,
        hash: row.get(7)?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{clocked_store, raw, store, CLOCK_START_UNIX};
    use super::*;
    use crate::backend::JournalIndex;
    use crate::clock::Clock;
    use crate::events::{event_hash, ChainLink};
    use crate::{now_micros, Store};
    use serde_json::json;

    fn event(n: i64) -> NewEvent {
        NewEvent {
            kind: "command".into(),
            session_id: Some("s".into()),
            identity: Some("agent-7".into()),
            data: json!({"n": n}).into(),
        }
    }

    fn keyed_store_with(events: i64) -> (tempfile::TempDir, Store) {
        let (dir, store) = store();
        store.set_chain_key([7; 32]).unwrap();
        for n in 0..events {
            store.append_event(event(n)).unwrap();
        }
        (dir, store)
    }

    #[test]
    fn verify_detects_edits_deletions_and_reordering() {
        let (_dir, store) = keyed_store_with(10);
        assert!(store.verify_chain().unwrap().ok);
        assert_eq!(store.verify_chain().unwrap().events_checked, 10);

        let (dir, store) = keyed_store_with(10);
        raw(&dir)
            .execute("UPDATE events SET data = '{\"n\":999}' WHERE id = 4", [])
            .unwrap();
        let report = store.verify_chain().unwrap();
        assert!(!report.ok);
        assert_eq!(report.first_broken.unwrap().event_id, 4);

        let (dir, store) = keyed_store_with(10);
        raw(&dir)
            .execute("DELETE FROM events WHERE id = 6", [])
            .unwrap();
        assert_eq!(
            store.verify_chain().unwrap().first_broken.unwrap().event_id,
            7
        );

        let (dir, store) = keyed_store_with(10);
        let connection = raw(&dir);
        connection
            .execute("UPDATE events SET id = -3 WHERE id = 3", [])
            .unwrap();
        connection
            .execute("UPDATE events SET id = 3 WHERE id = 5", [])
            .unwrap();
        connection
            .execute("UPDATE events SET id = 5 WHERE id = -3", [])
            .unwrap();
        assert_eq!(
            store.verify_chain().unwrap().first_broken.unwrap().event_id,
            3
        );

        // Recomputing the chain without the key does not help the forger.
        let (dir, store) = keyed_store_with(3);
        let connection = raw(&dir);
        let events = store.events_after(0, 10).unwrap();
        let forged = event_hash(
            None,
            &ChainLink {
                prev_hash: GENESIS_HASH,
                id: 1,
                ts_micros: events[0].ts_micros,
                kind: "command",
                session_id: Some("s"),
                identity: Some("agent-7"),
                data: "{\"n\":5}",
            },
        );
        connection
            .execute(
                "UPDATE events SET data = '{\"n\":5}', hash = ?1 WHERE id = 1",
                [forged],
            )
            .unwrap();
        assert_eq!(
            store.verify_chain().unwrap().first_broken.unwrap().event_id,
            1
        );
    }

    /// A batch is stored many rows per statement: every event lands once,
    /// in order, with the very hash (and link) it gets appended alone.
    #[test]
    fn a_large_batch_chains_exactly_as_single_appends_do() {
        for count in [1, 15, 16, 17, 40, 48] {
            let timed: Vec<(i64, NewEvent)> =
                (0..count + 3).map(|n| (1_000 + n, event(n))).collect();
            // Three events first, so the batch chains onto a stored head.
            let (_batch_dir, batched) = keyed_store_with(0);
            let (first, rest) = timed.split_at(3);
            batched.append_journaled(first, "j", 1).unwrap();
            batched.append_journaled(rest, "j", 2).unwrap();
            let (_single_dir, single) = keyed_store_with(0);
            for one in &timed {
                single
                    .append_journaled(std::slice::from_ref(one), "j", 1)
                    .unwrap();
            }
            let stored = batched.events_after(0, 1_000).unwrap();
            let expected = single.events_after(0, 1_000).unwrap();
            assert_eq!(stored.len(), timed.len());
            for (got, want) in stored.iter().zip(&expected) {
                assert_eq!(
                    (got.id, got.ts_micros, &got.data, &got.prev_hash, &got.hash),
                    (
                        want.id,
                        want.ts_micros,
                        &want.data,
                        &want.prev_hash,
                        &want.hash
                    )
                );
            }
            let report = batched.verify_chain().unwrap();
            assert!(report.ok, "{count}: {report:?}");
        }
    }

    #[test]
    fn two_handles_on_one_file_extend_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open(dir.path()).unwrap();
        let second = Store::open(dir.path()).unwrap();
        for store in [&first, &second] {
            store.set_chain_key([9; 32]).unwrap();
        }
        for n in 0..6 {
            let store = if n % 2 == 0 { &first } else { &second };
            store.append_event(event(n)).unwrap();
        }
        let report = first.verify_chain().unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(report.events_checked, 6);
    }

    #[test]
    fn pruning_keeps_the_chain_verifiable() {
        let (_dir, store) = keyed_store_with(5);
        let cutoff = now_micros() + 1;
        for n in 5..8 {
            std::thread::sleep(std::time::Duration::from_millis(2));
            store.append_event(event(n)).unwrap();
        }
        let report = store.prune_events(cutoff).unwrap();
        assert_eq!(report.pruned_events, 5);
        assert_eq!(report.through_id, Some(5));
        let verified = store.verify_chain().unwrap();
        assert!(verified.ok, "{verified:?}");
        assert_eq!(verified.events_checked, 3);
        assert_eq!(verified.checkpoint_through_id, Some(5));
        assert_eq!(store.prune_events(0).unwrap().pruned_events, 0);
    }

    #[test]
    fn time_lookups_bisect_the_id_order_and_ids_are_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let timed: Vec<(i64, NewEvent)> = (1..=10).map(|n| (n * 10, event(n))).collect();
        store.append_journaled(&timed, "j", 1).unwrap();
        let since = |ts| {
            store
                .events(&EventFilter {
                    since_micros: Some(ts),
                    limit: 100,
                    ..EventFilter::default()
                })
                .unwrap()
                .iter()
                .map(|event| event.ts_micros)
                .collect::<Vec<_>>()
        };
        assert_eq!(since(35), vec![40, 50, 60, 70, 80, 90, 100]);
        assert_eq!(since(40), vec![40, 50, 60, 70, 80, 90, 100]);
        assert_eq!(since(0).len(), 10);
        assert_eq!(since(101), Vec::<i64>::new());
        assert_eq!(store.journal_progress("j").unwrap(), 1);

        let report = store.prune_events(55).unwrap();
        assert_eq!((report.pruned_events, report.through_id), (5, Some(5)));
        assert_eq!(since(0), vec![60, 70, 80, 90, 100]);
        let report = store.prune_events(1_000).unwrap();
        assert_eq!(report.through_id, Some(10));
        // An empty table still continues the ids and the chain.
        let id = store.append_event(event(11)).unwrap();
        assert_eq!(id, 11);
        assert!(store.verify_chain().unwrap().ok);
    }

    /// A session's events are found through its spans: exactly its own, in
    /// order, across batches where sessions interleave, page by page, and
    /// still after pruning.
    #[test]
    fn session_lookups_find_exactly_the_sessions_events() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let in_session = |n: i64, session: &str| NewEvent {
            kind: if n % 2 == 0 {
                "command"
            } else {
                "command.result"
            }
            .into(),
            session_id: Some(session.into()),
            identity: Some("agent-7".into()),
            data: json!({"n": n}).into(),
        };
        let mut n = 0;
        for batch in 0..6 {
            let mut events = Vec::new();
            for _ in 0..10 {
                n += 1;
                let session = ["s-a", "s-b", "s-c"][usize::try_from(n % 3).unwrap()];
                events.push((n * 10, in_session(n, session)));
            }
            // Events without a session between them.
            events.push((
                n * 10 + 1,
                NewEvent {
                    kind: "admin.action".into(),
                    session_id: None,
                    identity: None,
                    data: json!({"batch": batch}).into(),
                },
            ));
            store.append_journaled(&events, "j", 1).unwrap();
        }
        store.append_event(in_session(1_000, "s-b")).unwrap();
        let numbers = |session: &str, after_id: i64, limit: i64| -> Vec<i64> {
            store
                .events(&EventFilter {
                    session_id: Some(session.into()),
                    after_id,
                    limit,
                    ..EventFilter::default()
                })
                .unwrap()
                .iter()
                .map(|event| {
                    assert_eq!(event.session_id.as_deref(), Some(session));
                    event.data["n"].as_i64().unwrap()
                })
                .collect()
        };
        let expected_b: Vec<i64> = (1..=60).filter(|n| n % 3 == 1).chain([1_000]).collect();
        assert_eq!(numbers("s-b", 0, 1_000), expected_b);
        assert_eq!(numbers("s-a", 0, 1_000).len(), 20);
        assert!(numbers("s-none", 0, 1_000).is_empty());
        // Paging by id, as `session show` does.
        let first_page = store
            .events(&EventFilter {
                session_id: Some("s-b".into()),
                limit: 7,
                ..EventFilter::default()
            })
            .unwrap();
        assert_eq!(first_page.len(), 7);
        let after = first_page.last().unwrap().id;
        let rest = numbers("s-b", after, 1_000);
        assert_eq!(
            first_page
                .iter()
                .map(|event| event.data["n"].as_i64().unwrap())
                .chain(rest)
                .collect::<Vec<_>>(),
            expected_b
        );
        // With other filters too.
        let results = store
            .events(&EventFilter {
                session_id: Some("s-c".into()),
                kinds: vec!["command.result".into()],
                since_micros: Some(305),
                limit: 100,
                ..EventFilter::default()
            })
            .unwrap();
        assert!(!results.is_empty());
        assert!(results
            .iter()
            .all(|event| event.kind == "command.result" && event.ts_micros >= 305));
        // Pruning the older half keeps the newer events findable and drops
        // the spans that only covered pruned events.
        store.prune_events(305).unwrap();
        assert_eq!(
            numbers("s-b", 0, 1_000),
            expected_b
                .iter()
                .copied()
                .filter(|n| *n > 30)
                .collect::<Vec<_>>()
        );
        let spans: i64 = raw(&dir)
            .query_row(
                "SELECT COUNT(*) FROM session_spans WHERE last_id <= 33",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(spans, 0);
        assert!(store.verify_chain().unwrap().ok);
    }

    /// A store written at schema 6 (per-event session index) gets spans
    /// covering its existing sessions when it is opened.
    #[test]
    fn the_migration_to_spans_keeps_existing_sessions_findable() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut connection = raw(&dir);
            let transaction = connection.transaction().unwrap();
            for sql in crate::sqlite::migrations::MIGRATIONS.iter().take(6) {
                transaction.execute_batch(sql).unwrap();
            }
            transaction.pragma_update(None, "user_version", 6).unwrap();
            for (id, session) in [(1, "s-a"), (2, "s-b"), (3, "s-a"), (4, "s-b"), (5, "s-a")] {
                transaction
                    .execute(
                        "INSERT INTO events (id, ts_micros, kind, session_id, identity, data, prev_hash, hash)
                         VALUES (?1, ?1, 'command', ?2, 'agent', '{}', '', '')",
                        params![id, session],
                    )
                    .unwrap();
            }
            transaction.commit().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let ids = |session: &str| -> Vec<i64> {
            store
                .events(&EventFilter {
                    session_id: Some(session.into()),
                    limit: 100,
                    ..EventFilter::default()
                })
                .unwrap()
                .iter()
                .map(|event| event.id)
                .collect()
        };
        assert_eq!(ids("s-a"), vec![1, 3, 5]);
        assert_eq!(ids("s-b"), vec![2, 4]);
    }

    #[test]
    fn events_chain_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store
                .append_event(NewEvent {
                    kind: "a".into(),
                    session_id: None,
                    identity: None,
                    data: json!({"n": 1}).into(),
                })
                .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        store
            .append_event(NewEvent {
                kind: "b".into(),
                session_id: Some("s".into()),
                identity: Some("i".into()),
                data: json!({"n": 2}).into(),
            })
            .unwrap();
        let events = store.events_after(0, 10).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].prev_hash, GENESIS_HASH);
        assert_eq!(events[1].prev_hash, events[0].hash);
        let data = events[1].data.to_string();
        let recomputed = event_hash(
            None,
            &ChainLink {
                prev_hash: &events[1].prev_hash,
                id: events[1].id,
                ts_micros: events[1].ts_micros,
                kind: "b",
                session_id: Some("s"),
                identity: Some("i"),
                data: &data,
            },
        );
        assert_eq!(recomputed, events[1].hash);
    }

    /// Event times, the default time of an append, and the checkpoint a
    /// pruning writes come from the store's clock; a journaled event keeps
    /// the time it was journaled; the pruning cut-off is compared with
    /// those times, not with the system's.
    #[test]
    fn event_and_pruning_times_come_from_the_store_clock() {
        let (dir, store, clock) = clocked_store();
        let start = CLOCK_START_UNIX * 1_000_000;
        for n in 0..3 {
            store.append_event(event(n)).unwrap();
            clock.advance_micros(1_000);
        }
        let ids = store.append_events(&[event(3), event(4)]).unwrap();
        assert_eq!(ids, [4, 5]);
        store
            .append_journaled(&[(start - 5, event(5))], "j", 1)
            .unwrap();
        let times: Vec<i64> = store
            .events_after(0, 100)
            .unwrap()
            .iter()
            .map(|event| event.ts_micros)
            .collect();
        assert_eq!(
            times,
            [
                start,
                start + 1_000,
                start + 2_000,
                start + 3_000,
                start + 3_000,
                start - 5
            ]
        );
        assert!(store.verify_chain().unwrap().ok);

        // Retention of one millisecond on this clock: the first two events
        // (and only they) are old, though all are in the system's future.
        clock.advance_micros(1_000);
        let report = store.prune_events(clock.now_micros() - 2_500).unwrap();
        assert_eq!((report.pruned_events, report.through_id), (2, Some(2)));
        let created: i64 = raw(&dir)
            .query_row("SELECT created_at FROM chain_checkpoints", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(created, CLOCK_START_UNIX);
        let since: Vec<i64> = store
            .events(&EventFilter {
                since_micros: Some(start + 2_000),
                limit: 100,
                ..EventFilter::default()
            })
            .unwrap()
            .iter()
            .map(|event| event.id)
            .collect();
        assert_eq!(since, [3, 4, 5]);
        assert!(store.verify_chain().unwrap().ok);
    }
}
