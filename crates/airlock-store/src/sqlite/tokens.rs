//! Issued tokens and the admin token in SQLite ([`TokenStore`]): hashes
//! only, never a token's value.

use rusqlite::{params, OptionalExtension};

use super::Store;
use crate::backend::TokenStore;
use crate::records::TokenRecord;
use crate::StoreError;

impl TokenStore for Store {
    /// True once an admin token exists.
    fn has_admin_token(&self) -> Result<bool, StoreError> {
        let inner = self.lock()?;
        let count: i64 =
            inner
                .connection
                .query_row("SELECT count(*) FROM admin_tokens", [], |row| row.get(0))?;
        Ok(count > 0)
    }

    /// Stores the hash of an admin token.
    fn insert_admin_token(&self, id: &str, hash: &str) -> Result<(), StoreError> {
        let inner = self.lock()?;
        inner.connection.execute(
            "INSERT INTO admin_tokens (id, hash, created_at) VALUES (?1, ?2, ?3)",
            params![id, hash, self.clock.now_unix()],
        )?;
        Ok(())
    }

    /// Replaces every stored admin token with one (rotation): the old ones
    /// stop working at once, in every process sharing the store.
    fn replace_admin_tokens(&self, id: &str, hash: &str) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        let transaction = inner.connection.transaction()?;
        transaction.execute("DELETE FROM admin_tokens", [])?;
        transaction.execute(
            "INSERT INTO admin_tokens (id, hash, created_at) VALUES (?1, ?2, ?3)",
            params![id, hash, self.clock.now_unix()],
        )?;
        transaction.commit()?;
        Ok(())
    }

    /// True when `hash` is the hash of a stored admin token.
    fn admin_token_valid(&self, hash: &str) -> Result<bool, StoreError> {
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

    /// Stores an issued token (its hash only).
    fn insert_token(&self, record: &TokenRecord) -> Result<(), StoreError> {
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
    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
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
    fn token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
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
    fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
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
    fn revoke_token(&self, id: &str) -> Result<bool, StoreError> {
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
                    params![id, self.clock.now_unix()],
                )?;
                Ok(true)
            }
        }
    }
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
    use super::super::test_support::{clocked_store, raw, store, CLOCK_START_UNIX};
    use super::*;
    use crate::hash_token;

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

    #[test]
    fn token_times_come_from_the_caller_and_the_store_clock() {
        let (dir, store, clock) = clocked_store();
        // Issue and expiry times are the caller's (it applies the TTL).
        let record = TokenRecord {
            id: "tok_1".into(),
            hash: hash_token("secret-token"),
            identity: "agent-7".into(),
            kind: "agent".into(),
            groups: vec![],
            connections: vec!["pg".into()],
            created_at: 11,
            expires_at: 22,
            revoked_at: None,
        };
        store.insert_token(&record).unwrap();
        clock.advance_secs(5);
        assert!(store.revoke_token("tok_1").unwrap());
        let revoked = store.token("tok_1").unwrap().unwrap();
        assert_eq!(
            (revoked.created_at, revoked.expires_at, revoked.revoked_at),
            (11, 22, Some(CLOCK_START_UNIX + 5))
        );

        store.insert_admin_token("adm_1", &hash_token("a")).unwrap();
        clock.advance_secs(5);
        store
            .replace_admin_tokens("adm_2", &hash_token("b"))
            .unwrap();
        let admin_created: Vec<(String, i64)> = raw(&dir)
            .prepare("SELECT id, created_at FROM admin_tokens ORDER BY id")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            admin_created,
            [("adm_2".to_string(), CLOCK_START_UNIX + 10)]
        );
    }
}
