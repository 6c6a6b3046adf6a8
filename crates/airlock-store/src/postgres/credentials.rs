//! The credential vault's rows in PostgreSQL ([`CredentialStore`]): only
//! ciphertext is ever written (the vault encrypts before it gets here).

use super::pool::{db_error, get};
use super::{locks, PgStore};
use crate::backend::CredentialStore;
use crate::records::CredentialRecord;
use crate::StoreError;

const COLUMNS: &str = "name, username, nonce, ciphertext, version, created_at, rotated_at, kind";

fn credential_from_row(row: &tokio_postgres::Row) -> Result<CredentialRecord, StoreError> {
    Ok(CredentialRecord {
        name: get(row, 0)?,
        username: get(row, 1)?,
        nonce: get(row, 2)?,
        ciphertext: get(row, 3)?,
        version: get(row, 4)?,
        created_at: get(row, 5)?,
        rotated_at: get(row, 6)?,
        kind: get(row, 7)?,
    })
}

impl CredentialStore for PgStore {
    /// Creates or replaces a credential in one statement: the version
    /// rises by one even when replicas set it at once.
    fn set_credential(
        &self,
        name: &str,
        username: &str,
        kind: &str,
        nonce: &[u8],
        ciphertext: &[u8],
    ) -> Result<i64, StoreError> {
        let (name, username, kind) = (name.to_string(), username.to_string(), kind.to_string());
        let (nonce, ciphertext) = (nonce.to_vec(), ciphertext.to_vec());
        self.run(move |shared| async move {
            let now = shared.clock.now_unix();
            let client = shared.pool.get().await?;
            let row = client
                .query_one(
                    "INSERT INTO credentials (name, username, nonce, ciphertext, version, created_at, rotated_at, kind)
                     VALUES ($1, $2, $3, $4, 1, $5, NULL, $6)
                     ON CONFLICT (name) DO UPDATE SET username = EXCLUDED.username, kind = EXCLUDED.kind,
                         nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext,
                         version = credentials.version + 1, rotated_at = EXCLUDED.created_at
                     RETURNING version",
                    &[&name, &username, &nonce, &ciphertext, &now, &kind],
                )
                .await
                .map_err(db_error)?;
            get(&row, 0)
        })
    }

    fn rotate_credential(
        &self,
        name: &str,
        nonce: &[u8],
        ciphertext: &[u8],
    ) -> Result<i64, StoreError> {
        let name = name.to_string();
        let (nonce, ciphertext) = (nonce.to_vec(), ciphertext.to_vec());
        self.run(move |shared| async move {
            let now = shared.clock.now_unix();
            let client = shared.pool.get().await?;
            let row = client
                .query_opt(
                    "UPDATE credentials SET nonce = $2, ciphertext = $3, version = version + 1,
                     rotated_at = $4 WHERE name = $1 RETURNING version",
                    &[&name, &nonce, &ciphertext, &now],
                )
                .await
                .map_err(db_error)?;
            match row {
                Some(row) => get(&row, 0),
                None => Err(StoreError::NotFound {
                    what: "credential",
                    name,
                }),
            }
        })
    }

    fn credential(&self, name: &str) -> Result<Option<CredentialRecord>, StoreError> {
        let name = name.to_string();
        self.run(move |shared| async move {
            let client = shared.pool.get().await?;
            let row = client
                .query_opt(
                    &format!("SELECT {COLUMNS} FROM credentials WHERE name = $1"),
                    &[&name],
                )
                .await
                .map_err(db_error)?;
            row.as_ref().map(credential_from_row).transpose()
        })
    }

    fn credentials(&self) -> Result<Vec<CredentialRecord>, StoreError> {
        self.run(move |shared| async move {
            let client = shared.pool.get().await?;
            let rows = client
                .query(
                    &format!("SELECT {COLUMNS} FROM credentials ORDER BY name"),
                    &[],
                )
                .await
                .map_err(db_error)?;
            rows.iter().map(credential_from_row).collect()
        })
    }

    /// Refused while a run-time connection uses the credential: the check
    /// and the delete share one transaction under the lock that adding a
    /// connection takes too, so no replica adds a user in between.
    fn delete_credential(&self, name: &str) -> Result<(), StoreError> {
        let name = name.to_string();
        self.run(move |shared| async move {
            let mut client = shared.pool.get().await?;
            let transaction = client.client_mut().transaction().await.map_err(db_error)?;
            transaction
                .execute("SELECT pg_advisory_xact_lock($1)", &[&locks::CREDENTIAL_USE])
                .await
                .map_err(db_error)?;
            let users: Vec<String> = transaction
                .query(
                    "SELECT name FROM connections WHERE credential = $1 ORDER BY name",
                    &[&name],
                )
                .await
                .map_err(db_error)?
                .iter()
                .map(|row| get(row, 0))
                .collect::<Result<_, _>>()?;
            if !users.is_empty() {
                return Err(StoreError::Conflict(format!(
                    "credential {name:?} is used by connection{} {}: remove {} first (airlock connection remove NAME)",
                    if users.len() == 1 { "" } else { "s" },
                    users.join(", "),
                    if users.len() == 1 { "it" } else { "them" }
                )));
            }
            let deleted = transaction
                .execute("DELETE FROM credentials WHERE name = $1", &[&name])
                .await
                .map_err(db_error)?;
            if deleted == 0 {
                return Err(StoreError::NotFound {
                    what: "credential",
                    name,
                });
            }
            transaction.commit().await.map_err(db_error)
        })
    }
}
