//! Run-time connections in SQLite ([`ConnectionStore`]).

use rusqlite::params;

use super::Store;
use crate::backend::ConnectionStore;
use crate::records::ConnectionRecord;
use crate::StoreError;

impl ConnectionStore for Store {
    /// Adds a run-time connection.
    fn add_connection(&self, record: &ConnectionRecord) -> Result<(), StoreError> {
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
                self.clock.now_unix()
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
    fn remove_connection(&self, name: &str) -> Result<(), StoreError> {
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
    fn connections(&self) -> Result<Vec<ConnectionRecord>, StoreError> {
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
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{clocked_store, CLOCK_START_UNIX};
    use super::*;

    #[test]
    fn connections_are_added_once_removed_once_and_stamped_by_the_store_clock() {
        let (_dir, store, clock) = clocked_store();
        let record = ConnectionRecord {
            name: "pg".into(),
            protocol: "postgres".into(),
            address: "127.0.0.1:5432".into(),
            database: "app".into(),
            credential: "app".into(),
            tags: [("env".to_string(), "dev".to_string())].into(),
            tls: "require".into(),
            created_at: 0,
        };
        clock.advance_secs(7);
        store.add_connection(&record).unwrap();
        assert!(matches!(
            store.add_connection(&record),
            Err(StoreError::AlreadyExists { .. })
        ));
        let listed = store.connections().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].tags, record.tags);
        assert_eq!(listed[0].created_at, CLOCK_START_UNIX + 7);
        store.remove_connection("pg").unwrap();
        assert!(matches!(
            store.remove_connection("pg"),
            Err(StoreError::NotFound { .. })
        ));
        assert!(store.connections().unwrap().is_empty());
    }
}
