//! [`Store`]: the embedded SQLite backend, one module per domain.
//!
//! One writing connection behind a mutex (SQLite serialises writers anyway,
//! and every call here is short) and one read-only connection for long
//! reads. Callers on an async runtime run the calls that may wait on disk
//! (event appends, token issue) on a blocking thread.
//!
//! This module owns opening (migrations, pragmas, owner-only files), the
//! handle's settings and the clock; the domains implement the traits of
//! [`crate::backend`]: [`credentials`], [`tokens`], [`connections`],
//! [`policies`], [`events`] (append, query, verify, prune),
//! [`journal_index`] and [`reviews`] (reviews, grants, MFA secrets).

mod connections;
mod credentials;
mod events;
mod journal_index;
mod lockouts;
pub(crate) mod migrations;
mod policies;
mod reviews;
mod tokens;
mod tool_pins;

use rusqlite::Connection;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::backend::StoreBackend;
use crate::clock::{Clock, SystemClock};
use crate::StoreError;
use migrations::migrate;

/// The file name of the embedded store inside the data directory.
pub const STORE_FILE: &str = "airlock.db";

struct Inner {
    connection: Connection,
    /// Key of the event chain's HMAC, when set.
    chain_key: Option<ring::hmac::Key>,
    /// `synchronous=FULL` (the default) rather than `NORMAL`.
    full_sync: bool,
}

/// The embedded SQLite store: implements every trait of [`crate::backend`]
/// (bring them into scope with `use airlock_store::prelude::*;`).
pub struct Store {
    inner: Mutex<Inner>,
    /// A second, read-only connection for long reads (event pages, chain
    /// verification): in WAL mode they see a consistent snapshot without
    /// holding up the writers, the audit index above all.
    reader: Mutex<Connection>,
    /// Where every time the store writes or compares against comes from.
    clock: Arc<dyn Clock>,
}

impl Store {
    /// Opens (creating and migrating) the store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_file(&data_dir.join(STORE_FILE))
    }

    /// Opens (creating and migrating) the store at `path`.
    pub fn open_file(path: &Path) -> Result<Self, StoreError> {
        Self::open_file_with_clock(path, Arc::new(SystemClock))
    }

    /// Opens (creating and migrating) the store in `data_dir`, reading time
    /// from `clock`.
    pub fn open_with_clock(data_dir: &Path, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        Self::open_file_with_clock(&data_dir.join(STORE_FILE), clock)
    }

    /// Opens (creating and migrating) the store at `path`, reading time
    /// from `clock`: every creation, expiry, revocation and event time it
    /// writes, and every "now" it compares against.
    pub fn open_file_with_clock(path: &Path, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        // Owner-only before SQLite creates anything beside it.
        crate::private::restrict_database(path).map_err(StoreError::Permissions)?;
        let mut connection = Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a committed event survives power loss, as audit-before-forward
        // requires.
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut connection)?;
        let reader = Connection::open(path)?;
        reader.busy_timeout(std::time::Duration::from_secs(5))?;
        reader.pragma_update(None, "query_only", "ON")?;
        Ok(Self {
            inner: Mutex::new(Inner {
                connection,
                chain_key: None,
                full_sync: true,
            }),
            reader: Mutex::new(reader),
            clock,
        })
    }

    /// The clock this store reads.
    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.clock)
    }

    fn read(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.reader.lock().map_err(|_| StoreError::Poisoned)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>, StoreError> {
        self.inner.lock().map_err(|_| StoreError::Poisoned)
    }

    /// Sets how durable a commit is: `true` flushes every commit to disk
    /// (SQLite `synchronous=FULL`, the default), `false` hands it to the
    /// operating system (`NORMAL` in WAL mode: safe against a crash of the
    /// process, not against a power loss).
    pub fn set_full_sync(&self, full: bool) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        inner.full_sync = full;
        inner.connection.pragma_update(
            None,
            "synchronous",
            if full { "FULL" } else { "NORMAL" },
        )?;
        Ok(())
    }

    /// Keys the event chain with HMAC-SHA-256 under `key`. Set it before the
    /// first append; every process sharing the store must use the same key.
    pub fn set_chain_key(&self, key: [u8; 32]) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        inner.chain_key = Some(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key));
        Ok(())
    }

    /// Runs `work` with the writing connection (for the domain modules).
    fn with_connection<T>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let inner = self.lock()?;
        work(&inner.connection)
    }

    /// Runs `work` in one transaction, committed when it returns `Ok`.
    /// IMMEDIATE: the write lock is taken before the first read, so another
    /// process on the same file waits (busy timeout) rather than failing
    /// when a read would upgrade to a write.
    fn with_transaction<T>(
        &self,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut inner = self.lock()?;
        let transaction = inner
            .connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let value = work(&transaction)?;
        transaction.commit()?;
        Ok(value)
    }
}

impl StoreBackend for Store {
    fn ping(&self) -> Result<(), StoreError> {
        let inner = self.lock()?;
        inner.connection.query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }

    fn set_chain_key(&self, key: [u8; 32]) -> Result<(), StoreError> {
        Store::set_chain_key(self, key)
    }

    fn claim_key_check(&self, check: &str) -> Result<bool, StoreError> {
        let inner = self.lock()?;
        inner.connection.execute(
            "INSERT INTO meta (key, value) VALUES ('master_key_check', ?1) ON CONFLICT (key) DO NOTHING",
            [check],
        )?;
        let recorded: String = inner.connection.query_row(
            "SELECT value FROM meta WHERE key = 'master_key_check'",
            [],
            |row| row.get(0),
        )?;
        Ok(recorded == check)
    }
}

/// Stores on temporary files for the domains' tests.
#[cfg(test)]
mod test_support {
    use super::{Store, STORE_FILE};
    use crate::clock::ManualClock;
    use std::sync::Arc;

    /// 2100-01-01T00:00:00Z: a time the system clock has not reached, so a
    /// time that comes out of a store on this clock came from the clock.
    pub(super) const CLOCK_START_UNIX: i64 = 4_102_444_800;

    /// A store on the system clock.
    pub(super) fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    /// A store on a manual clock standing at [`CLOCK_START_UNIX`].
    pub(super) fn clocked_store() -> (tempfile::TempDir, Store, Arc<ManualClock>) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::at_unix(CLOCK_START_UNIX));
        let store = Store::open_with_clock(dir.path(), clock.clone()).unwrap();
        (dir, store, clock)
    }

    /// A second connection to the store's file, to read what the API does
    /// not show or to tamper with it.
    pub(super) fn raw(dir: &tempfile::TempDir) -> rusqlite::Connection {
        rusqlite::Connection::open(dir.path().join(STORE_FILE)).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::clocked_store;
    use super::*;
    use crate::backend::JournalIndex;
    use crate::events::NewEvent;
    use crate::journal::{recover_into, JournalFile};
    use serde_json::json;

    /// The traits are object safe: a gateway can hold the store as an
    /// `Arc<dyn StoreBackend>` and reach every domain through it, recovery
    /// of journals included.
    #[test]
    fn the_store_serves_as_a_dyn_backend() {
        let (dir, store, _clock) = clocked_store();
        let backend: Arc<dyn StoreBackend> = Arc::new(store);
        backend.ping().unwrap();
        assert_eq!(
            backend
                .set_credential("pg", "app", "password", b"n", b"c")
                .unwrap(),
            1
        );
        assert!(!backend.has_admin_token().unwrap());
        assert!(backend.connections().unwrap().is_empty());
        assert_eq!(backend.live_policy_version().unwrap(), None);
        assert!(backend.reviews(None, 10).unwrap().is_empty());
        assert!(backend.grants(false).unwrap().is_empty());
        assert!(backend.mfa_secret("alice").unwrap().is_none());
        let event = NewEvent {
            kind: "command".into(),
            session_id: Some("s".into()),
            identity: None,
            data: json!({"n": 1}).into(),
        };
        assert_eq!(backend.append_event(event.clone()).unwrap(), 1);

        let journals = dir.path().join("journal");
        std::fs::create_dir(&journals).unwrap();
        let name = {
            let mut journal = JournalFile::create(&journals, 0).unwrap();
            let mut line = Vec::new();
            crate::journal::encode(&mut line, 42, &event);
            journal.append(&line).unwrap();
            journal.name().to_string()
        };
        let index: &dyn JournalIndex = &*backend;
        let report = recover_into(&journals, index).unwrap();
        assert_eq!((report.journals, report.events), (1, 1));
        assert_eq!(backend.journal_progress(&name).unwrap(), 0, "forgotten");
        let events = backend.events_after(0, 10).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].ts_micros, 42);
        assert!(backend.verify_chain().unwrap().ok);
    }
}
