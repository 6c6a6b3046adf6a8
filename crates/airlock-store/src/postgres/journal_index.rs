//! The journal index in PostgreSQL ([`JournalIndex`]): how far each
//! replica's write-ahead journal is copied into the shared event log,
//! written in the same transaction as the copied events. Journal names are
//! unique per process (they carry its start time and id), so replicas keep
//! apart rows in one table.

use super::events::append_chained;
use super::pool::{db_error, get};
use super::PgStore;
use crate::backend::JournalIndex;
use crate::events::NewEvent;
use crate::StoreError;

impl JournalIndex for PgStore {
    fn append_journaled(
        &self,
        events: &[(i64, NewEvent)],
        journal: &str,
        through: u64,
    ) -> Result<Vec<i64>, StoreError> {
        let events = events
            .iter()
            .map(|(ts, event)| (Some(*ts), event.clone()))
            .collect();
        let progress = Some((journal.to_string(), through));
        self.run(move |shared| async move { append_chained(&shared, events, progress).await })
    }

    /// A commit with the server's `synchronous_commit` (on by default):
    /// once it is flushed, every earlier asynchronous commit is too.
    fn journal_barrier(&self, journal: &str) -> Result<(), StoreError> {
        let journal = journal.to_string();
        self.run(move |shared| async move {
            let client = shared.pool.get().await?;
            client
                .execute(
                    "UPDATE journal_progress SET indexed_through = indexed_through WHERE journal = $1",
                    &[&journal],
                )
                .await
                .map_err(db_error)?;
            Ok(())
        })
    }

    fn journal_progress(&self, journal: &str) -> Result<u64, StoreError> {
        let journal = journal.to_string();
        self.run(move |shared| async move {
            let client = shared.pool.get().await?;
            let row = client
                .query_opt(
                    "SELECT indexed_through FROM journal_progress WHERE journal = $1",
                    &[&journal],
                )
                .await
                .map_err(db_error)?;
            let through: Option<i64> = row.as_ref().map(|row| get(row, 0)).transpose()?;
            Ok(through.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
        })
    }

    fn forget_journal(&self, journal: &str) -> Result<(), StoreError> {
        let journal = journal.to_string();
        self.run(move |shared| async move {
            let client = shared.pool.get().await?;
            client
                .execute(
                    "DELETE FROM journal_progress WHERE journal = $1",
                    &[&journal],
                )
                .await
                .map_err(db_error)?;
            Ok(())
        })
    }
}
