//! The credential vault's rows in SQLite ([`CredentialStore`]): name, user
//! name, nonce and ciphertext, a version raised by every rotation. Only
//! ciphertext is ever written (the vault encrypts before it gets here).

use rusqlite::{params, OptionalExtension};

use super::Store;
use crate::backend::CredentialStore;
use crate::records::CredentialRecord;
use crate::StoreError;

impl CredentialStore for Store {
    /// Creates or replaces a credential (version 1, or the next version).
    fn set_credential(
        &self,
        name: &str,
        username: &str,
        kind: &str,
        nonce: &[u8],
        ciphertext: &[u8],
    ) -> Result<i64, StoreError> {
        let inner = self.lock()?;
        let now = self.clock.now_unix();
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
            "INSERT INTO credentials (name, username, nonce, ciphertext, version, created_at, rotated_at, kind)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7)
             ON CONFLICT(name) DO UPDATE SET username = ?2, nonce = ?3, ciphertext = ?4,
                 version = ?5, rotated_at = ?6, kind = ?7",
            params![name, username, nonce, ciphertext, version, now, kind],
        )?;
        Ok(version)
    }

    /// Replaces the secret of an existing credential.
    fn rotate_credential(
        &self,
        name: &str,
        nonce: &[u8],
        ciphertext: &[u8],
    ) -> Result<i64, StoreError> {
        let inner = self.lock()?;
        let changed = inner.connection.execute(
            "UPDATE credentials SET nonce = ?2, ciphertext = ?3, version = version + 1, rotated_at = ?4
             WHERE name = ?1",
            params![name, nonce, ciphertext, self.clock.now_unix()],
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
    fn credential(&self, name: &str) -> Result<Option<CredentialRecord>, StoreError> {
        let inner = self.lock()?;
        let record = inner
            .connection
            .query_row(
                "SELECT name, username, nonce, ciphertext, version, created_at, rotated_at, kind
                 FROM credentials WHERE name = ?1",
                [name],
                credential_from_row,
            )
            .optional()?;
        Ok(record)
    }

    /// Lists credentials (still encrypted; callers show only metadata).
    fn credentials(&self) -> Result<Vec<CredentialRecord>, StoreError> {
        let inner = self.lock()?;
        let mut statement = inner.connection.prepare(
            "SELECT name, username, nonce, ciphertext, version, created_at, rotated_at, kind
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
    fn delete_credential(&self, name: &str) -> Result<(), StoreError> {
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
        kind: row.get(7)?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{clocked_store, store, CLOCK_START_UNIX};
    use super::*;

    #[test]
    fn credentials_version_on_rotation() {
        let (_dir, store) = store();
        assert_eq!(
            store
                .set_credential("pg", "app", "password", b"n", b"c")
                .unwrap(),
            1
        );
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
    fn credential_times_come_from_the_store_clock() {
        let (_dir, store, clock) = clocked_store();
        store
            .set_credential("pg", "app", "password", b"n", b"c")
            .unwrap();
        let created = store.credential("pg").unwrap().unwrap();
        assert_eq!(
            (created.created_at, created.rotated_at),
            (CLOCK_START_UNIX, None)
        );
        clock.advance_secs(60);
        store.rotate_credential("pg", b"n2", b"c2").unwrap();
        let rotated = store.credential("pg").unwrap().unwrap();
        assert_eq!(
            (rotated.created_at, rotated.rotated_at),
            (CLOCK_START_UNIX, Some(CLOCK_START_UNIX + 60))
        );
        clock.advance_secs(60);
        // Setting an existing credential again is a rotation too.
        store
            .set_credential("pg", "app", "password", b"n3", b"c3")
            .unwrap();
        let replaced = store.credential("pg").unwrap().unwrap();
        assert_eq!(
            (replaced.created_at, replaced.rotated_at),
            (CLOCK_START_UNIX, Some(CLOCK_START_UNIX + 120))
        );
    }

    /// A store written before the `kind` column (schema 9): its rows get
    /// a kind, client certificates told by the reserved user name.
    #[test]
    fn the_kind_migration_marks_old_client_certificates() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut connection = super::super::test_support::raw(&dir);
            let transaction = connection.transaction().unwrap();
            for sql in crate::sqlite::migrations::MIGRATIONS.iter().take(9) {
                transaction.execute_batch(sql).unwrap();
            }
            transaction.pragma_update(None, "user_version", 9).unwrap();
            for (name, username) in [("db", "app"), ("k8s-cert", "client-certificate")] {
                transaction
                    .execute(
                        "INSERT INTO credentials (name, username, nonce, ciphertext, version, created_at, rotated_at)
                         VALUES (?1, ?2, x'00', x'00', 1, 1, NULL)",
                        params![name, username],
                    )
                    .unwrap();
            }
            transaction.commit().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let kinds: Vec<(String, String)> = store
            .credentials()
            .unwrap()
            .into_iter()
            .map(|record| (record.name, record.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("db".to_string(), "password".to_string()),
                ("k8s-cert".to_string(), "client_certificate".to_string())
            ]
        );
    }
}
