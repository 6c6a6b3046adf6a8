//! Policy versions in SQLite ([`PolicyStore`]): every applied text with
//! its SHA-256, source and comment; the newest is live.

use rusqlite::{params, OptionalExtension};
use sha2::{Digest, Sha256};

use super::Store;
use crate::backend::PolicyStore;
use crate::records::PolicyVersionRecord;
use crate::StoreError;

impl PolicyStore for Store {
    /// Stores `text` as the next policy version (the live one from now on)
    /// and returns its number.
    fn insert_policy_version(
        &self,
        text: &str,
        source: &str,
        comment: Option<&str>,
    ) -> Result<i64, StoreError> {
        let mut inner = self.lock()?;
        // IMMEDIATE: the write lock before reading the highest version, so
        // processes sharing the file take turns instead of one failing with
        // `database is locked` when its read upgrades to a write.
        let transaction = inner
            .connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
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
                self.clock.now_unix()
            ],
        )?;
        transaction.commit()?;
        Ok(version)
    }

    /// The newest (live) policy version, with its text.
    fn live_policy(&self) -> Result<Option<PolicyVersionRecord>, StoreError> {
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
    fn live_policy_version(&self) -> Result<Option<i64>, StoreError> {
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
    fn policy_version(&self, version: i64) -> Result<Option<PolicyVersionRecord>, StoreError> {
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
    fn policy_versions(&self) -> Result<Vec<PolicyVersionRecord>, StoreError> {
        let inner = self.lock()?;
        let mut statement = inner.connection.prepare(
            "SELECT version, NULL, sha256, source, comment, created_at FROM policy_versions ORDER BY version",
        )?;
        let rows = statement.query_map([], policy_from_row)?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::from)
    }
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

#[cfg(test)]
mod tests {
    use super::super::test_support::{clocked_store, store, CLOCK_START_UNIX};
    use super::*;

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
    fn policy_version_times_come_from_the_store_clock() {
        let (_dir, store, clock) = clocked_store();
        store.insert_policy_version("a", "config", None).unwrap();
        clock.advance_secs(90);
        store.insert_policy_version("b", "apply", None).unwrap();
        let times: Vec<i64> = store
            .policy_versions()
            .unwrap()
            .iter()
            .map(|version| version.created_at)
            .collect();
        assert_eq!(times, [CLOCK_START_UNIX, CLOCK_START_UNIX + 90]);
        assert_eq!(
            store.live_policy().unwrap().unwrap().created_at,
            CLOCK_START_UNIX + 90
        );
    }
}
