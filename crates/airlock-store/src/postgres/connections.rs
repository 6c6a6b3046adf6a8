//! Run-time connections in PostgreSQL ([`ConnectionStore`]).

use super::pool::{db_error, get, is_unique_violation};
use super::{locks, PgStore};
use crate::backend::ConnectionStore;
use crate::records::ConnectionRecord;
use crate::StoreError;

impl ConnectionStore for PgStore {
    /// Adds a connection under the lock that deleting a credential takes,
    /// so a credential is never deleted while a connection starts using it.
    fn add_connection(&self, record: &ConnectionRecord) -> Result<(), StoreError> {
        let record = record.clone();
        let tags = serde_json::to_string(&record.tags)
            .map_err(|error| StoreError::Corrupt(error.to_string()))?;
        self.run(move |shared| async move {
            let now = shared.clock.now_unix();
            let mut client = shared.pool.get().await?;
            let transaction = client.client_mut().transaction().await.map_err(db_error)?;
            transaction
                .execute("SELECT pg_advisory_xact_lock($1)", &[&locks::CREDENTIAL_USE])
                .await
                .map_err(db_error)?;
            let inserted = transaction
                .execute(
                    "INSERT INTO connections (name, protocol, address, database, credential, tags, tls, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    &[
                        &record.name,
                        &record.protocol,
                        &record.address,
                        &record.database,
                        &record.credential,
                        &tags,
                        &record.tls,
                        &now,
                    ],
                )
                .await;
            match inserted {
                Ok(_) => transaction.commit().await.map_err(db_error),
                Err(error) if is_unique_violation(&error) => Err(StoreError::AlreadyExists {
                    what: "connection",
                    name: record.name,
                }),
                Err(error) => Err(db_error(error)),
            }
        })
    }

    fn remove_connection(&self, name: &str) -> Result<(), StoreError> {
        let name = name.to_string();
        self.run(move |shared| async move {
            let client = shared.pool.get().await?;
            let removed = client
                .execute("DELETE FROM connections WHERE name = $1", &[&name])
                .await
                .map_err(db_error)?;
            if removed == 0 {
                return Err(StoreError::NotFound {
                    what: "connection",
                    name,
                });
            }
            Ok(())
        })
    }

    fn connections(&self) -> Result<Vec<ConnectionRecord>, StoreError> {
        self.run(move |shared| async move {
            let client = shared.pool.get().await?;
            let rows = client
                .query(
                    "SELECT name, protocol, address, database, credential, tags, tls, created_at
                     FROM connections ORDER BY name",
                    &[],
                )
                .await
                .map_err(db_error)?;
            rows.iter()
                .map(|row| {
                    let tags: String = get(row, 5)?;
                    Ok(ConnectionRecord {
                        name: get(row, 0)?,
                        protocol: get(row, 1)?,
                        address: get(row, 2)?,
                        database: get(row, 3)?,
                        credential: get(row, 4)?,
                        tags: serde_json::from_str(&tags).unwrap_or_default(),
                        tls: get(row, 6)?,
                        created_at: get(row, 7)?,
                    })
                })
                .collect()
        })
    }
}
