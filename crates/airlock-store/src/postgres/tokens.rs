//! Issued tokens and the admin token in PostgreSQL ([`TokenStore`]):
//! hashes only. Every lookup reads the shared row, so a revocation through
//! one replica is seen by the next lookup on every other.

use super::pool::{db_error, get};
use super::{listen, PgStore};
use crate::backend::TokenStore;
use crate::changes::StoreChange;
use crate::records::TokenRecord;
use crate::StoreError;

const COLUMNS: &str =
    "id, hash, identity, kind, groups, connections, created_at, expires_at, revoked_at";

fn token_from_row(row: &tokio_postgres::Row) -> Result<TokenRecord, StoreError> {
    let groups: String = get(row, 4)?;
    let connections: String = get(row, 5)?;
    Ok(TokenRecord {
        id: get(row, 0)?,
        hash: get(row, 1)?,
        identity: get(row, 2)?,
        kind: get(row, 3)?,
        groups: serde_json::from_str(&groups).unwrap_or_default(),
        connections: serde_json::from_str(&connections).unwrap_or_default(),
        created_at: get(row, 6)?,
        expires_at: get(row, 7)?,
        revoked_at: get(row, 8)?,
    })
}

impl PgStore {
    fn token_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let value = value.to_string();
        self.run(move |shared| async move {
            let client = shared.pool.get().await?;
            let row = client
                .query_opt(
                    &format!("SELECT {COLUMNS} FROM tokens WHERE {column} = $1"),
                    &[&value],
                )
                .await
                .map_err(db_error)?;
            row.as_ref().map(token_from_row).transpose()
        })
    }
}

impl TokenStore for PgStore {
    fn has_admin_token(&self) -> Result<bool, StoreError> {
        self.run(move |shared| async move {
            let client = shared.pool.get().await?;
            let row = client
                .query_one("SELECT EXISTS (SELECT 1 FROM admin_tokens)", &[])
                .await
                .map_err(db_error)?;
            get(&row, 0)
        })
    }

    fn insert_admin_token(&self, id: &str, hash: &str) -> Result<(), StoreError> {
        let (id, hash) = (id.to_string(), hash.to_string());
        self.run(move |shared| async move {
            let now = shared.clock.now_unix();
            let client = shared.pool.get().await?;
            client
                .execute(
                    "INSERT INTO admin_tokens (id, hash, created_at) VALUES ($1, $2, $3)",
                    &[&id, &hash, &now],
                )
                .await
                .map_err(db_error)?;
            Ok(())
        })
    }

    /// One transaction: no replica sees neither the old nor the new token.
    fn replace_admin_tokens(&self, id: &str, hash: &str) -> Result<(), StoreError> {
        let (id, hash) = (id.to_string(), hash.to_string());
        self.run(move |shared| async move {
            let now = shared.clock.now_unix();
            let mut client = shared.pool.get().await?;
            let transaction = client.client_mut().transaction().await.map_err(db_error)?;
            transaction
                .execute("DELETE FROM admin_tokens", &[])
                .await
                .map_err(db_error)?;
            transaction
                .execute(
                    "INSERT INTO admin_tokens (id, hash, created_at) VALUES ($1, $2, $3)",
                    &[&id, &hash, &now],
                )
                .await
                .map_err(db_error)?;
            transaction.commit().await.map_err(db_error)
        })
    }

    fn admin_token_valid(&self, hash: &str) -> Result<bool, StoreError> {
        let hash = hash.to_string();
        self.run(move |shared| async move {
            let client = shared.pool.get().await?;
            let row = client
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM admin_tokens WHERE hash = $1)",
                    &[&hash],
                )
                .await
                .map_err(db_error)?;
            get(&row, 0)
        })
    }

    fn insert_token(&self, record: &TokenRecord) -> Result<(), StoreError> {
        let record = record.clone();
        let groups = serde_json::to_string(&record.groups)
            .map_err(|error| StoreError::Corrupt(error.to_string()))?;
        let connections = serde_json::to_string(&record.connections)
            .map_err(|error| StoreError::Corrupt(error.to_string()))?;
        self.run(move |shared| async move {
            let client = shared.pool.get().await?;
            client
                .execute(
                    &format!("INSERT INTO tokens ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)"),
                    &[
                        &record.id,
                        &record.hash,
                        &record.identity,
                        &record.kind,
                        &groups,
                        &connections,
                        &record.created_at,
                        &record.expires_at,
                    ],
                )
                .await
                .map_err(db_error)?;
            Ok(())
        })
    }

    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.token_where("hash", hash)
    }

    fn token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.token_where("id", id)
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.run(move |shared| async move {
            let client = shared.pool.get().await?;
            let rows = client
                .query(
                    &format!("SELECT {COLUMNS} FROM tokens ORDER BY created_at DESC, id"),
                    &[],
                )
                .await
                .map_err(db_error)?;
            rows.iter().map(token_from_row).collect()
        })
    }

    /// One conditional update: of two replicas revoking at once, one
    /// revokes and the other learns it already was.
    fn revoked_among(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = ids.to_vec();
        self.run(move |shared| async move {
            let client = shared.pool.get().await?;
            let rows = client
                .query(
                    "SELECT id FROM tokens WHERE id = ANY($1) AND revoked_at IS NOT NULL",
                    &[&ids],
                )
                .await
                .map_err(db_error)?;
            rows.iter().map(|row| get(row, 0)).collect()
        })
    }

    fn revoke_token(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.run(move |shared| async move {
            let now = shared.clock.now_unix();
            let client = shared.pool.get().await?;
            let revoked = client
                .execute(
                    "UPDATE tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                    &[&id, &now],
                )
                .await
                .map_err(db_error)?;
            if revoked == 1 {
                listen::notify(&*client, &StoreChange::TokenRevoked(id)).await?;
                return Ok(true);
            }
            let exists = client
                .query_opt("SELECT 1 FROM tokens WHERE id = $1", &[&id])
                .await
                .map_err(db_error)?;
            match exists {
                Some(_) => Ok(false),
                None => Err(StoreError::NotFound {
                    what: "token",
                    name: id,
                }),
            }
        })
    }
}
