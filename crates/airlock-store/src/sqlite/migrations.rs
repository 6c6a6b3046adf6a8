//! Schema migrations, applied in order on open and tracked with SQLite's
//! `user_version`. Append new steps; never edit a released one.

use rusqlite::Connection;

use crate::StoreError;

pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the gateway core.
    r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE admin_tokens (
        id TEXT PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE credentials (
        name TEXT PRIMARY KEY,
        username TEXT NOT NULL,
        nonce BLOB NOT NULL,
        ciphertext BLOB NOT NULL,
        version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        rotated_at INTEGER
    );
    CREATE TABLE connections (
        name TEXT PRIMARY KEY,
        protocol TEXT NOT NULL,
        address TEXT NOT NULL,
        database TEXT NOT NULL,
        credential TEXT NOT NULL,
        tags TEXT NOT NULL,
        tls TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        identity TEXT NOT NULL,
        kind TEXT NOT NULL,
        groups TEXT NOT NULL,
        connections TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        revoked_at INTEGER
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts_micros INTEGER NOT NULL,
        kind TEXT NOT NULL,
        session_id TEXT,
        identity TEXT,
        data TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX events_session ON events(session_id);
    "#,
    // 2: recording: chain checkpoints left by pruning, event lookups by kind.
    r#"
    CREATE TABLE chain_checkpoints (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        through_id INTEGER NOT NULL,
        through_hash TEXT NOT NULL,
        pruned_events INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX events_kind_ts ON events(kind, ts_micros);
    CREATE INDEX events_ts ON events(ts_micros);
    "#,
    // 3: versioned policies. The live policy is the newest version.
    r#"
    CREATE TABLE policy_versions (
        version INTEGER PRIMARY KEY,
        text TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        source TEXT NOT NULL,
        comment TEXT,
        created_at INTEGER NOT NULL
    );
    "#,
    // 4: human review of commands, and MFA secrets for approvers.
    r#"
    CREATE TABLE reviews (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        identity TEXT NOT NULL,
        connection TEXT NOT NULL,
        statement TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        classification TEXT NOT NULL,
        rule TEXT NOT NULL,
        policy_version INTEGER NOT NULL,
        approvers TEXT NOT NULL,
        min_approvals INTEGER NOT NULL,
        require_mfa INTEGER NOT NULL,
        session_id TEXT,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        decided_at INTEGER,
        valid_until INTEGER,
        uses_left INTEGER NOT NULL,
        reason TEXT
    );
    CREATE INDEX reviews_lookup ON reviews(identity, connection, fingerprint, status);
    CREATE TABLE review_decisions (
        review_id TEXT NOT NULL,
        approver TEXT NOT NULL,
        decision TEXT NOT NULL,
        comment TEXT,
        mfa INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (review_id, approver)
    );
    CREATE TABLE mfa_secrets (
        identity TEXT PRIMARY KEY,
        nonce BLOB NOT NULL,
        ciphertext BLOB NOT NULL,
        last_step INTEGER,
        created_at INTEGER NOT NULL
    );
    "#,
    // 5: just-in-time access: access requests are reviews of kind `access`;
    // approving one creates a grant.
    r#"
    ALTER TABLE reviews ADD COLUMN kind TEXT NOT NULL DEFAULT 'command';
    ALTER TABLE reviews ADD COLUMN duration_seconds INTEGER;
    CREATE TABLE grants (
        id TEXT PRIMARY KEY,
        identity TEXT NOT NULL,
        connection TEXT NOT NULL,
        review_id TEXT,
        rule TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        revoked_at INTEGER
    );
    CREATE INDEX grants_lookup ON grants(identity, connection, expires_at);
    "#,
    // 6: a leaner event table for the recording hot path. Ids are assigned
    // by the appender (never reused: see FIRST_FREE_EVENT_ID), so no
    // AUTOINCREMENT bookkeeping row is rewritten on every commit; the kind
    // index leaves out the high-volume command kinds (nothing looks them up
    // by kind), and time lookups bisect the id order instead of keeping a
    // time index. Journal progress records how far each write-ahead journal
    // has been copied into this table.
    r#"
    CREATE TABLE events_v6 (
        id INTEGER PRIMARY KEY,
        ts_micros INTEGER NOT NULL,
        kind TEXT NOT NULL,
        session_id TEXT,
        identity TEXT,
        data TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    INSERT INTO events_v6 SELECT id, ts_micros, kind, session_id, identity, data, prev_hash, hash FROM events;
    DROP TABLE events;
    ALTER TABLE events_v6 RENAME TO events;
    CREATE INDEX events_session ON events(session_id);
    CREATE INDEX events_kind_ts ON events(kind, ts_micros)
        WHERE kind NOT IN ('command', 'command.result');
    CREATE TABLE journal_progress (
        journal TEXT PRIMARY KEY,
        indexed_through INTEGER NOT NULL
    );
    "#,
    // 7: a session's events are found through spans, one row per session
    // per appended batch (the id range its events took in that batch),
    // instead of an index entry per event: with sessions interleaved, an
    // index on `session_id` cost as much per event as the event row itself.
    r#"
    CREATE TABLE session_spans (
        session_id TEXT NOT NULL,
        first_id INTEGER NOT NULL,
        last_id INTEGER NOT NULL,
        PRIMARY KEY (session_id, first_id)
    ) WITHOUT ROWID;
    INSERT INTO session_spans
        SELECT session_id, MIN(id), MAX(id) FROM events
        WHERE session_id IS NOT NULL GROUP BY session_id;
    DROP INDEX events_session;
    "#,
    // 8: MCP tool definitions pinned per connection (rug-pull defence):
    // the pinned one, and a later different one pending approval.
    r#"
    CREATE TABLE mcp_tool_pins (
        connection TEXT NOT NULL,
        tool TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        definition TEXT NOT NULL,
        pinned_at INTEGER NOT NULL,
        approved_by TEXT,
        pending_fingerprint TEXT,
        pending_definition TEXT,
        pending_since INTEGER,
        PRIMARY KEY (connection, tool)
    ) WITHOUT ROWID;
    "#,
    // 9: failed logins and lockouts, counted once for every process
    // sharing the store.
    r#"
    CREATE TABLE login_failures (
        realm TEXT NOT NULL,
        source TEXT NOT NULL,
        identity TEXT NOT NULL,
        at_micros INTEGER NOT NULL
    );
    CREATE INDEX login_failures_source ON login_failures (realm, source, at_micros);
    CREATE INDEX login_failures_at ON login_failures (at_micros);
    CREATE TABLE login_lockouts (
        realm TEXT NOT NULL,
        source TEXT NOT NULL,
        scope TEXT NOT NULL,
        identity TEXT NOT NULL,
        until_micros INTEGER NOT NULL,
        PRIMARY KEY (realm, source, scope, identity)
    ) WITHOUT ROWID;
    "#,
    // 10: what a credential is (PostgreSQL's version 5); before it, a
    // client certificate was told by the reserved user name.
    r#"
    ALTER TABLE credentials ADD COLUMN kind TEXT NOT NULL DEFAULT 'password';
    UPDATE credentials SET kind = 'client_certificate' WHERE username = 'client-certificate';
    "#,
];

/// Brings the schema up to date.
pub(crate) fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let version = i64::try_from(index + 1).unwrap_or(i64::MAX);
        if version <= current {
            continue;
        }
        let transaction = connection.transaction()?;
        transaction.execute_batch(sql)?;
        transaction.pragma_update(None, "user_version", version)?;
        transaction.commit()?;
    }
    Ok(())
}
