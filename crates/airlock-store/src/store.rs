//! [`Store`]: the embedded SQLite store.
//!
//! One connection behind a mutex: SQLite serialises writers anyway, and every
//! call here is short. Callers on an async runtime run the calls that may
//! wait on disk (event appends, token issue) on a blocking thread.

use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::events::{
    chain_hash, BrokenLink, EventRecord, NewEvent, PruneReport, VerifyReport, GENESIS_HASH,
};
use crate::migrations::migrate;
use crate::records::{ConnectionRecord, CredentialRecord, PolicyVersionRecord, TokenRecord};
use crate::StoreError;

/// The file name of the embedded store inside the data directory.
pub const STORE_FILE: &str = "airlock.db";

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|duration| i64::try_from(duration.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Microseconds since the Unix epoch.
pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|duration| i64::try_from(duration.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The SHA-256 of a token, hex-encoded: what the store keeps instead of it.
/// Tokens carry 256 bits of entropy, so a fast hash is enough (no password
/// stretching needed) and lookups stay O(1).
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

struct Inner {
    connection: Connection,
    /// Key of the event chain's HMAC, when set.
    chain_key: Option<ring::hmac::Key>,
    /// `synchronous=FULL` (the default) rather than `NORMAL`.
    full_sync: bool,
}

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only events with a larger id.
    pub after_id: i64,
    /// Only events at or after this time (Unix microseconds).
    pub since_micros: Option<i64>,
    /// Only events of this session.
    pub session_id: Option<String>,
    /// Only events of these kinds.
    pub kinds: Vec<String>,
    /// Only events of this identity.
    pub identity: Option<String>,
    /// At most this many (oldest first).
    pub limit: i64,
}

/// The next event id: past every event stored and every event ever pruned
/// (ids are never reused, so a checkpoint's `through_id` stays unique).
const FIRST_FREE_EVENT_ID: &str = "SELECT MAX(
        COALESCE((SELECT MAX(id) FROM events), 0),
        COALESCE((SELECT MAX(through_id) FROM chain_checkpoints), 0)
    ) + 1";

/// The embedded store.
pub struct Store {
    inner: Mutex<Inner>,
    /// A second, read-only connection for long reads (event pages, chain
    /// verification): in WAL mode they see a consistent snapshot without
    /// holding up the writers, the audit index above all.
    reader: Mutex<Connection>,
}

impl Store {
    /// Opens (creating and migrating) the store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_file(&data_dir.join(STORE_FILE))
    }

    /// Opens (creating and migrating) the store at `path`.
    pub fn open_file(path: &Path) -> Result<Self, StoreError> {
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
        })
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

    /// Runs `work` with the connection (for modules of this crate).
    pub(crate) fn with_connection<T>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let inner = self.lock()?;
        work(&inner.connection)
    }

    /// Runs `work` in one transaction, committed when it returns `Ok`.
    pub(crate) fn with_transaction<T>(
        &self,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut inner = self.lock()?;
        let transaction = inner.connection.transaction()?;
        let value = work(&transaction)?;
        transaction.commit()?;
        Ok(value)
    }

    /// True when the store answers a trivial query.
    pub fn ping(&self) -> Result<(), StoreError> {
        let inner = self.lock()?;
        inner.connection.query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }

    // ---- admin tokens ----

    /// True once an admin token exists.
    pub fn has_admin_token(&self) -> Result<bool, StoreError> {
        let inner = self.lock()?;
        let count: i64 =
            inner
                .connection
                .query_row("SELECT count(*) FROM admin_tokens", [], |row| row.get(0))?;
        Ok(count > 0)
    }

    /// Stores the hash of an admin token.
    pub fn insert_admin_token(&self, id: &str, hash: &str) -> Result<(), StoreError> {
        let inner = self.lock()?;
        inner.connection.execute(
            "INSERT INTO admin_tokens (id, hash, created_at) VALUES (?1, ?2, ?3)",
            params![id, hash, now_unix()],
        )?;
        Ok(())
    }

    /// Replaces every stored admin token with one (rotation): the old ones
    /// stop working at once, in every process sharing the store.
    pub fn replace_admin_tokens(&self, id: &str, hash: &str) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        let transaction = inner.connection.transaction()?;
        transaction.execute("DELETE FROM admin_tokens", [])?;
        transaction.execute(
            "INSERT INTO admin_tokens (id, hash, created_at) VALUES (?1, ?2, ?3)",
            params![id, hash, now_unix()],
        )?;
        transaction.commit()?;
        Ok(())
    }

    /// True when `hash` is the hash of a stored admin token.
    pub fn admin_token_valid(&self, hash: &str) -> Result<bool, StoreError> {
        let inner = self.lock()?;
        let found: Option<String> = inner
            .connection
            .query_row(
                "SELECT id FROM admin_tokens WHERE hash = ?1",
                [hash],
                |row| row.get(0),
            )
            .optional()?;
        Ok(found.is_some())
    }

    // ---- credentials ----

    /// Creates or replaces a credential (version 1, or the next version).
    pub fn set_credential(
        &self,
        name: &str,
        username: &str,
        nonce: &[u8],
        ciphertext: &[u8],
    ) -> Result<i64, StoreError> {
        let inner = self.lock()?;
        let now = now_unix();
        let previous: Option<i64> = inner
            .connection
            .query_row(
                "SELECT version FROM credentials WHERE name = ?1",
                [name],
                |row| row.get(0),
            )
            .optional()?;
        let version = previous.map_or(1, |version| version + 1);
        inner.connection.execute(
            "INSERT INTO credentials (name, username, nonce, ciphertext, version, created_at, rotated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)
             ON CONFLICT(name) DO UPDATE SET username = ?2, nonce = ?3, ciphertext = ?4,
                 version = ?5, rotated_at = ?6",
            params![name, username, nonce, ciphertext, version, now],
        )?;
        Ok(version)
    }

    /// Replaces the secret of an existing credential.
    pub fn rotate_credential(
        &self,
        name: &str,
        nonce: &[u8],
        ciphertext: &[u8],
    ) -> Result<i64, StoreError> {
        let inner = self.lock()?;
        let changed = inner.connection.execute(
            "UPDATE credentials SET nonce = ?2, ciphertext = ?3, version = version + 1, rotated_at = ?4
             WHERE name = ?1",
            params![name, nonce, ciphertext, now_unix()],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound {
                what: "credential",
                name: name.to_string(),
            });
        }
        let version = inner.connection.query_row(
            "SELECT version FROM credentials WHERE name = ?1",
            [name],
            |row| row.get(0),
        )?;
        Ok(version)
    }

    /// Reads one credential (still encrypted).
    pub fn credential(&self, name: &str) -> Result<Option<CredentialRecord>, StoreError> {
        let inner = self.lock()?;
        let record = inner
            .connection
            .query_row(
                "SELECT name, username, nonce, ciphertext, version, created_at, rotated_at
                 FROM credentials WHERE name = ?1",
                [name],
                credential_from_row,
            )
            .optional()?;
        Ok(record)
    }

    /// Lists credentials (still encrypted; callers show only metadata).
    pub fn credentials(&self) -> Result<Vec<CredentialRecord>, StoreError> {
        let inner = self.lock()?;
        let mut statement = inner.connection.prepare(
            "SELECT name, username, nonce, ciphertext, version, created_at, rotated_at
             FROM credentials ORDER BY name",
        )?;
        let rows = statement.query_map([], credential_from_row)?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::from)
    }

    /// Deletes a credential, unless a run-time connection uses it (refused
    /// with [`StoreError::Conflict`] naming them, checked in the same
    /// locked step as the delete so no connection can start using it in
    /// between).
    pub fn delete_credential(&self, name: &str) -> Result<(), StoreError> {
        let inner = self.lock()?;
        let mut statement = inner
            .connection
            .prepare("SELECT name FROM connections WHERE credential = ?1 ORDER BY name")?;
        let users = statement
            .query_map([name], |row| row.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        drop(statement);
        if !users.is_empty() {
            return Err(StoreError::Conflict(format!(
                "credential {name:?} is used by connection{} {}: remove {} first (airlock connection remove NAME)",
                if users.len() == 1 { "" } else { "s" },
                users.join(", "),
                if users.len() == 1 { "it" } else { "them" }
            )));
        }
        let changed = inner
            .connection
            .execute("DELETE FROM credentials WHERE name = ?1", [name])?;
        if changed == 0 {
            return Err(StoreError::NotFound {
                what: "credential",
                name: name.to_string(),
            });
        }
        Ok(())
    }

    // ---- connections ----

    /// Adds a run-time connection.
    pub fn add_connection(&self, record: &ConnectionRecord) -> Result<(), StoreError> {
        let inner = self.lock()?;
        let tags = serde_json::to_string(&record.tags)
            .map_err(|error| StoreError::Corrupt(error.to_string()))?;
        let result = inner.connection.execute(
            "INSERT INTO connections (name, protocol, address, database, credential, tags, tls, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                record.name,
                record.protocol,
                record.address,
                record.database,
                record.credential,
                tags,
                record.tls,
                now_unix()
            ],
        );
        match result {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(error, _))
                if error.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(StoreError::AlreadyExists {
                    what: "connection",
                    name: record.name.clone(),
                })
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Removes a run-time connection.
    pub fn remove_connection(&self, name: &str) -> Result<(), StoreError> {
        let inner = self.lock()?;
        let changed = inner
            .connection
            .execute("DELETE FROM connections WHERE name = ?1", [name])?;
        if changed == 0 {
            return Err(StoreError::NotFound {
                what: "connection",
                name: name.to_string(),
            });
        }
        Ok(())
    }

    /// Lists run-time connections.
    pub fn connections(&self) -> Result<Vec<ConnectionRecord>, StoreError> {
        let inner = self.lock()?;
        let mut statement = inner.connection.prepare(
            "SELECT name, protocol, address, database, credential, tags, tls, created_at
             FROM connections ORDER BY name",
        )?;
        let rows = statement.query_map([], |row| {
            let tags: String = row.get(5)?;
            Ok(ConnectionRecord {
                name: row.get(0)?,
                protocol: row.get(1)?,
                address: row.get(2)?,
                database: row.get(3)?,
                credential: row.get(4)?,
                tags: serde_json::from_str(&tags).unwrap_or_default(),
                tls: row.get(6)?,
                created_at: row.get(7)?,
            })
        })?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::from)
    }

    // ---- tokens ----

    /// Stores an issued token (its hash only).
    pub fn insert_token(&self, record: &TokenRecord) -> Result<(), StoreError> {
        let inner = self.lock()?;
        let groups = serde_json::to_string(&record.groups)
            .map_err(|error| StoreError::Corrupt(error.to_string()))?;
        let connections = serde_json::to_string(&record.connections)
            .map_err(|error| StoreError::Corrupt(error.to_string()))?;
        inner.connection.execute(
            "INSERT INTO tokens (id, hash, identity, kind, groups, connections, created_at, expires_at, revoked_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL)",
            params![
                record.id,
                record.hash,
                record.identity,
                record.kind,
                groups,
                connections,
                record.created_at,
                record.expires_at
            ],
        )?;
        Ok(())
    }

    /// Finds a token by the hash of its value.
    pub fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let inner = self.lock()?;
        let record = inner
            .connection
            .query_row(
                "SELECT id, hash, identity, kind, groups, connections, created_at, expires_at, revoked_at
                 FROM tokens WHERE hash = ?1",
                [hash],
                token_from_row,
            )
            .optional()?;
        Ok(record)
    }

    /// Finds a token by id.
    pub fn token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        let inner = self.lock()?;
        let record = inner
            .connection
            .query_row(
                "SELECT id, hash, identity, kind, groups, connections, created_at, expires_at, revoked_at
                 FROM tokens WHERE id = ?1",
                [id],
                token_from_row,
            )
            .optional()?;
        Ok(record)
    }

    /// Lists tokens, newest first.
    pub fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let inner = self.lock()?;
        let mut statement = inner.connection.prepare(
            "SELECT id, hash, identity, kind, groups, connections, created_at, expires_at, revoked_at
             FROM tokens ORDER BY created_at DESC, id",
        )?;
        let rows = statement.query_map([], token_from_row)?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::from)
    }

    /// Marks a token revoked. Returns false when it was already revoked.
    pub fn revoke_token(&self, id: &str) -> Result<bool, StoreError> {
        let inner = self.lock()?;
        let exists: Option<Option<i64>> = inner
            .connection
            .query_row("SELECT revoked_at FROM tokens WHERE id = ?1", [id], |row| {
                row.get(0)
            })
            .optional()?;
        match exists {
            None => Err(StoreError::NotFound {
                what: "token",
                name: id.to_string(),
            }),
            Some(Some(_)) => Ok(false),
            Some(None) => {
                inner.connection.execute(
                    "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1",
                    params![id, now_unix()],
                )?;
                Ok(true)
            }
        }
    }

    // ---- policy versions ----

    /// Stores `text` as the next policy version (the live one from now on)
    /// and returns its number.
    pub fn insert_policy_version(
        &self,
        text: &str,
        source: &str,
        comment: Option<&str>,
    ) -> Result<i64, StoreError> {
        let mut inner = self.lock()?;
        let transaction = inner.connection.transaction()?;
        let version: i64 = transaction.query_row(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM policy_versions",
            [],
            |row| row.get(0),
        )?;
        transaction.execute(
            "INSERT INTO policy_versions (version, text, sha256, source, comment, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                version,
                text,
                hex::encode(Sha256::digest(text.as_bytes())),
                source,
                comment,
                now_unix()
            ],
        )?;
        transaction.commit()?;
        Ok(version)
    }

    /// The newest (live) policy version, with its text.
    pub fn live_policy(&self) -> Result<Option<PolicyVersionRecord>, StoreError> {
        let inner = self.lock()?;
        let record = inner
            .connection
            .query_row(
                "SELECT version, text, sha256, source, comment, created_at FROM policy_versions
                 ORDER BY version DESC LIMIT 1",
                [],
                policy_from_row,
            )
            .optional()?;
        Ok(record)
    }

    /// The number of the newest policy version (cheap; polled by replicas).
    pub fn live_policy_version(&self) -> Result<Option<i64>, StoreError> {
        let inner = self.lock()?;
        let version: Option<i64> =
            inner
                .connection
                .query_row("SELECT MAX(version) FROM policy_versions", [], |row| {
                    row.get(0)
                })?;
        Ok(version)
    }

    /// One policy version, with its text.
    pub fn policy_version(&self, version: i64) -> Result<Option<PolicyVersionRecord>, StoreError> {
        let inner = self.lock()?;
        let record = inner
            .connection
            .query_row(
                "SELECT version, text, sha256, source, comment, created_at FROM policy_versions WHERE version = ?1",
                [version],
                policy_from_row,
            )
            .optional()?;
        Ok(record)
    }

    /// Every policy version, oldest first, without texts.
    pub fn policy_versions(&self) -> Result<Vec<PolicyVersionRecord>, StoreError> {
        let inner = self.lock()?;
        let mut statement = inner.connection.prepare(
            "SELECT version, NULL, sha256, source, comment, created_at FROM policy_versions ORDER BY version",
        )?;
        let rows = statement.query_map([], policy_from_row)?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::from)
    }

    // ---- events ----

    /// Appends events in one transaction (one durable write for the batch),
    /// extending the hash chain. Returns their ids. Nothing is appended when
    /// any write fails.
    pub fn append_events(&self, events: &[NewEvent]) -> Result<Vec<i64>, StoreError> {
        self.append_chained(events.iter().map(|event| (None, event)), None)
    }

    /// Appends events taken from a write-ahead journal, each with the time
    /// it was journaled, and records in the same transaction that `journal`
    /// is copied through byte `through`: after a crash, replay resumes
    /// exactly there, so no event is lost or stored twice.
    pub fn append_journaled(
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

    fn append_chained<'a>(
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
        let result =
            Self::append_in_transaction(&mut inner, key.as_ref(), events, progress, &mut ids);
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
        let mut head: String = transaction
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
            let mut insert = transaction.prepare_cached(
                "INSERT INTO events (id, ts_micros, kind, session_id, identity, data, prev_hash, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            // The id range each session's events take in this batch.
            let mut spans: Vec<(&str, i64, i64)> = Vec::new();
            let mut span_of: HashMap<&str, usize> = HashMap::new();
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
                let ts = ts.unwrap_or_else(now_micros);
                let data = event.data.as_str();
                let hash = chain_hash(
                    key,
                    &head,
                    next_id,
                    ts,
                    &event.kind,
                    event.session_id.as_deref(),
                    event.identity.as_deref(),
                    data,
                );
                insert.execute(params![
                    next_id,
                    ts,
                    event.kind,
                    event.session_id,
                    event.identity,
                    data,
                    head,
                    hash
                ])?;
                ids.push(next_id);
                head = hash;
            }
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

    /// Makes every event copied from `journal` durable (a commit under the
    /// configured `synchronous` level, which syncs the write-ahead log with
    /// all commits before it), so the journal may be deleted.
    pub fn journal_barrier(&self, journal: &str) -> Result<(), StoreError> {
        let inner = self.lock()?;
        inner.connection.execute(
            "UPDATE journal_progress SET indexed_through = indexed_through WHERE journal = ?1",
            [journal],
        )?;
        Ok(())
    }

    /// How far `journal` has been copied into the event table, in bytes.
    pub fn journal_progress(&self, journal: &str) -> Result<u64, StoreError> {
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
    pub fn forget_journal(&self, journal: &str) -> Result<(), StoreError> {
        let inner = self.lock()?;
        inner
            .connection
            .execute("DELETE FROM journal_progress WHERE journal = ?1", [journal])?;
        Ok(())
    }

    /// Appends one event.
    pub fn append_event(&self, event: NewEvent) -> Result<i64, StoreError> {
        let ids = self.append_events(std::slice::from_ref(&event))?;
        ids.first()
            .copied()
            .ok_or_else(|| StoreError::Corrupt("no event id".into()))
    }

    /// Reads events with `id > after`, oldest first, at most `limit`.
    pub fn events_after(&self, after: i64, limit: i64) -> Result<Vec<EventRecord>, StoreError> {
        self.events(&EventFilter {
            after_id: after,
            limit,
            ..EventFilter::default()
        })
    }

    /// Reads events matching `filter`, oldest first.
    pub fn events(&self, filter: &EventFilter) -> Result<Vec<EventRecord>, StoreError> {
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
    pub fn verify_chain(&self) -> Result<VerifyReport, StoreError> {
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
            let recomputed = chain_hash(
                key.as_ref(),
                &prev,
                id,
                ts,
                &kind,
                session.as_deref(),
                identity.as_deref(),
                &data,
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
    pub fn prune_events(&self, before_micros: i64) -> Result<PruneReport, StoreError> {
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
            params![through_id, through_hash, pruned, now_unix()],
        )?;
        transaction.commit()?;
        Ok(PruneReport {
            pruned_events: u64::try_from(pruned).unwrap_or(0),
            through_id: Some(through_id),
        })
    }
}

/// The id of the first event stored at or after `ts_micros` (one past the
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

fn policy_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<PolicyVersionRecord> {
    Ok(PolicyVersionRecord {
        version: row.get(0)?,
        text: row.get(1)?,
        sha256: row.get(2)?,
        source: row.get(3)?,
        comment: row.get(4)?,
        created_at: row.get(5)?,
    })
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

fn credential_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<CredentialRecord> {
    Ok(CredentialRecord {
        name: row.get(0)?,
        username: row.get(1)?,
        nonce: row.get(2)?,
        ciphertext: row.get(3)?,
        version: row.get(4)?,
        created_at: row.get(5)?,
        rotated_at: row.get(6)?,
    })
}

fn token_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRecord> {
    let groups: String = row.get(4)?;
    let connections: String = row.get(5)?;
    Ok(TokenRecord {
        id: row.get(0)?,
        hash: row.get(1)?,
        identity: row.get(2)?,
        kind: row.get(3)?,
        groups: serde_json::from_str(&groups).unwrap_or_default(),
        connections: serde_json::from_str(&connections).unwrap_or_default(),
        created_at: row.get(6)?,
        expires_at: row.get(7)?,
        revoked_at: row.get(8)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::event_hash;
    use serde_json::json;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn policy_versions_grow_and_the_newest_is_live() {
        let (_dir, store) = store();
        assert!(store.live_policy().unwrap().is_none());
        assert_eq!(store.insert_policy_version("a", "config", None).unwrap(), 1);
        assert_eq!(
            store
                .insert_policy_version("b", "apply", Some("tighten"))
                .unwrap(),
            2
        );
        let live = store.live_policy().unwrap().unwrap();
        assert_eq!((live.version, live.text.as_deref()), (2, Some("b")));
        assert_eq!(store.live_policy_version().unwrap(), Some(2));
        assert_eq!(
            store.policy_version(1).unwrap().unwrap().text.as_deref(),
            Some("a")
        );
        let history = store.policy_versions().unwrap();
        assert_eq!(history.len(), 2);
        assert!(history[0].text.is_none());
        assert_eq!(history[1].comment.as_deref(), Some("tighten"));
    }

    #[test]
    fn credentials_version_on_rotation() {
        let (_dir, store) = store();
        assert_eq!(store.set_credential("pg", "app", b"n", b"c").unwrap(), 1);
        assert_eq!(store.rotate_credential("pg", b"n2", b"c2").unwrap(), 2);
        let record = store.credential("pg").unwrap().unwrap();
        assert_eq!(record.ciphertext, b"c2");
        assert!(record.rotated_at.is_some());
        assert!(matches!(
            store.rotate_credential("missing", b"n", b"c"),
            Err(StoreError::NotFound { .. })
        ));
    }

    #[test]
    fn tokens_are_found_by_hash_and_revoked_once() {
        let (_dir, store) = store();
        let record = TokenRecord {
            id: "tok_1".into(),
            hash: hash_token("secret-token"),
            identity: "agent-7".into(),
            kind: "agent".into(),
            groups: vec!["agents".into()],
            connections: vec!["pg".into()],
            created_at: 1,
            expires_at: 2,
            revoked_at: None,
        };
        store.insert_token(&record).unwrap();
        let found = store
            .token_by_hash(&hash_token("secret-token"))
            .unwrap()
            .unwrap();
        assert_eq!(found.groups, vec!["agents".to_string()]);
        assert!(store.token_by_hash(&hash_token("other")).unwrap().is_none());
        assert!(store.revoke_token("tok_1").unwrap());
        assert!(!store.revoke_token("tok_1").unwrap());
    }

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

    fn raw(dir: &tempfile::TempDir) -> Connection {
        Connection::open(dir.path().join(STORE_FILE)).unwrap()
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
            GENESIS_HASH,
            1,
            events[0].ts_micros,
            "command",
            Some("s"),
            Some("agent-7"),
            "{\"n\":5}",
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
            for sql in crate::migrations::MIGRATIONS.iter().take(6) {
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
        let recomputed = event_hash(
            None,
            &events[1].prev_hash,
            events[1].id,
            events[1].ts_micros,
            "b",
            Some("s"),
            Some("i"),
            &events[1].data.to_string(),
        );
        assert_eq!(recomputed, events[1].hash);
    }
}
