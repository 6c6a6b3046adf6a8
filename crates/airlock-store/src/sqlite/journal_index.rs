//! The journal index in SQLite ([`JournalIndex`]): how far each process's
//! write-ahead journal is copied into the event table (`journal_progress`,
//! written in the same transaction as the copied events).

use rusqlite::OptionalExtension;

use super::Store;
use crate::backend::JournalIndex;
use crate::events::NewEvent;
use crate::StoreError;

impl JournalIndex for Store {
    /// Appends events taken from a write-ahead journal, each with the time
    /// it was journaled, and records in the same transaction that `journal`
    /// is copied through byte `through`: after a crash, replay resumes
    /// exactly there, so no event is lost or stored twice.
    fn append_journaled(
        &self,
        events: &[(i64, NewEvent)],
        journal: &str,
        through: u64,
    ) -> Result<Vec<i64>, StoreError> {
        self.append_chained(
            events.iter().map(|(ts, event)| (Some(*ts), event)),
            Some((journal, through)),
        )
    }

    /// Makes every event copied from `journal` durable (a commit under the
    /// configured `synchronous` level, which syncs the write-ahead log with
    /// all commits before it), so the journal may be deleted.
    fn journal_barrier(&self, journal: &str) -> Result<(), StoreError> {
        let inner = self.lock()?;
        inner.connection.execute(
            "UPDATE journal_progress SET indexed_through = indexed_through WHERE journal = ?1",
            [journal],
        )?;
        Ok(())
    }

    /// How far `journal` has been copied into the event table, in bytes.
    fn journal_progress(&self, journal: &str) -> Result<u64, StoreError> {
        let inner = self.lock()?;
        let through: Option<i64> = inner
            .connection
            .query_row(
                "SELECT indexed_through FROM journal_progress WHERE journal = ?1",
                [journal],
                |row| row.get(0),
            )
            .optional()?;
        Ok(through.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
    }

    /// Forgets a journal that was copied in full and deleted.
    fn forget_journal(&self, journal: &str) -> Result<(), StoreError> {
        let inner = self.lock()?;
        inner
            .connection
            .execute("DELETE FROM journal_progress WHERE journal = ?1", [journal])?;
        Ok(())
    }
}
