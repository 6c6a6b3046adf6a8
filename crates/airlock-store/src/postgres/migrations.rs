//! PostgreSQL schema migrations, applied in order on open and tracked in
//! `airlock_schema`; replicas starting at once take turns under an
//! advisory lock. Append new steps; never edit a released one.
//!
//! The schema follows the SQLite one (same tables and columns, `BIGINT` for
//! integers, `BYTEA` for blobs; event data stays `TEXT` since the chain
//! hashes its exact bytes) with two differences: a session's events are
//! found through an index on `session_id` (PostgreSQL keeps it cheaply),
//! and the chain head is one row, `chain_head`, that appenders lock.

use super::locks;
use super::pool::{db_error, Pool};
use crate::events::GENESIS_HASH;
use crate::StoreError;

const MIGRATIONS: &[&str] = &[
    // 1: every domain, as SQLite has it at its version 7.
    r#"
    CREATE TABLE admin_tokens (
        id TEXT PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE credentials (
        name TEXT PRIMARY KEY,
        username TEXT NOT NULL,
        nonce BYTEA NOT NULL,
        ciphertext BYTEA NOT NULL,
        version BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        rotated_at BIGINT
    );
    CREATE TABLE connections (
        name TEXT PRIMARY KEY,
        protocol TEXT NOT NULL,
        address TEXT NOT NULL,
        database TEXT NOT NULL,
        credential TEXT NOT NULL,
        tags TEXT NOT NULL,
        tls TEXT NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        identity TEXT NOT NULL,
        kind TEXT NOT NULL,
        groups TEXT NOT NULL,
        connections TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        revoked_at BIGINT
    );
    CREATE TABLE events (
        id BIGINT PRIMARY KEY,
        ts_micros BIGINT NOT NULL,
        kind TEXT NOT NULL,
        session_id TEXT,
        identity TEXT,
        data TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX events_session ON events (session_id, id) WHERE session_id IS NOT NULL;
    CREATE INDEX events_kind_ts ON events (kind, ts_micros)
        WHERE kind NOT IN ('command', 'command.result');
    CREATE INDEX events_ts ON events (ts_micros);
    CREATE TABLE chain_head (
        singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
        last_id BIGINT NOT NULL,
        last_hash TEXT NOT NULL
    );
    CREATE TABLE chain_checkpoints (
        id BIGSERIAL PRIMARY KEY,
        through_id BIGINT NOT NULL,
        through_hash TEXT NOT NULL,
        pruned_events BIGINT NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE journal_progress (
        journal TEXT PRIMARY KEY,
        indexed_through BIGINT NOT NULL
    );
    CREATE TABLE policy_versions (
        version BIGINT PRIMARY KEY,
        text TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        source TEXT NOT NULL,
        comment TEXT,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE reviews (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        identity TEXT NOT NULL,
        connection TEXT NOT NULL,
        statement TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        classification TEXT NOT NULL,
        rule TEXT NOT NULL,
        policy_version BIGINT NOT NULL,
        approvers TEXT NOT NULL,
        min_approvals BIGINT NOT NULL,
        require_mfa BOOLEAN NOT NULL,
        session_id TEXT,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        decided_at BIGINT,
        valid_until BIGINT,
        uses_left BIGINT NOT NULL,
        reason TEXT,
        kind TEXT NOT NULL DEFAULT 'command',
        duration_seconds BIGINT
    );
    CREATE INDEX reviews_lookup ON reviews (identity, connection, fingerprint, status);
    CREATE TABLE review_decisions (
        review_id TEXT NOT NULL,
        approver TEXT NOT NULL,
        decision TEXT NOT NULL,
        comment TEXT,
        mfa BOOLEAN NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (review_id, approver)
    );
    CREATE TABLE mfa_secrets (
        identity TEXT PRIMARY KEY,
        nonce BYTEA NOT NULL,
        ciphertext BYTEA NOT NULL,
        last_step BIGINT,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE grants (
        id TEXT PRIMARY KEY,
        identity TEXT NOT NULL,
        connection TEXT NOT NULL,
        review_id TEXT,
        rule TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        revoked_at BIGINT
    );
    CREATE INDEX grants_lookup ON grants (identity, connection, expires_at);
    "#,
    // 2: settings every replica must agree on (the master key's check).
    r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    "#,
    // 3: pinned MCP tool definitions (SQLite's version 8).
    r#"
    CREATE TABLE mcp_tool_pins (
        connection TEXT NOT NULL,
        tool TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        definition TEXT NOT NULL,
        pinned_at BIGINT NOT NULL,
        approved_by TEXT,
        pending_fingerprint TEXT,
        pending_definition TEXT,
        pending_since BIGINT,
        PRIMARY KEY (connection, tool)
    );
    "#,
    // 4: failed logins and lockouts, counted once for every process
    // sharing the store (SQLite's version 9).
    r#"
    CREATE TABLE login_failures (
        realm TEXT NOT NULL,
        source TEXT NOT NULL,
        identity TEXT NOT NULL,
        at_micros BIGINT NOT NULL
    );
    CREATE INDEX login_failures_source ON login_failures (realm, source, at_micros);
    CREATE INDEX login_failures_at ON login_failures (at_micros);
    CREATE TABLE login_lockouts (
        realm TEXT NOT NULL,
        source TEXT NOT NULL,
        scope TEXT NOT NULL,
        identity TEXT NOT NULL,
        until_micros BIGINT NOT NULL,
        PRIMARY KEY (realm, source, scope, identity)
    );
    "#,
    // 5: what a credential is (SQLite's version 10); before it, a client
    // certificate was told by the reserved user name.
    r#"
    ALTER TABLE credentials ADD COLUMN kind TEXT NOT NULL DEFAULT 'password';
    UPDATE credentials SET kind = 'client_certificate' WHERE username = 'client-certificate';
    "#,
];

/// Brings the schema up to date, one transaction per step.
pub(super) async fn migrate(pool: &Pool) -> Result<(), StoreError> {
    let mut client = pool.get().await?;
    let transaction = client.client_mut().transaction().await.map_err(db_error)?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&locks::MIGRATIONS])
        .await
        .map_err(db_error)?;
    transaction
        .batch_execute("CREATE TABLE IF NOT EXISTS airlock_schema (version BIGINT PRIMARY KEY)")
        .await
        .map_err(db_error)?;
    let current: i64 = transaction
        .query_one("SELECT COALESCE(MAX(version), 0) FROM airlock_schema", &[])
        .await
        .map_err(db_error)?
        .get(0);
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let version = i64::try_from(index + 1).unwrap_or(i64::MAX);
        if version <= current {
            continue;
        }
        transaction.batch_execute(sql).await.map_err(db_error)?;
        if version == 1 {
            transaction
                .execute(
                    "INSERT INTO chain_head (last_id, last_hash) VALUES (0, $1)",
                    &[&GENESIS_HASH],
                )
                .await
                .map_err(db_error)?;
        }
        transaction
            .execute(
                "INSERT INTO airlock_schema (version) VALUES ($1)",
                &[&version],
            )
            .await
            .map_err(db_error)?;
    }
    transaction.commit().await.map_err(db_error)
}
