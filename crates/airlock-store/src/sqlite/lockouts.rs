//! Failed logins and lockouts in SQLite ([`LockoutStore`]): one
//! IMMEDIATE transaction per failure, so processes sharing the file count
//! every failure once and cannot both miss a threshold.

use rusqlite::{params, OptionalExtension, Transaction};

use super::Store;
use crate::backend::LockoutStore;
use crate::records::{LoginFailure, LoginTally, StoredLockout};
use crate::StoreError;

impl LockoutStore for Store {
    fn record_login_failure(&self, failure: &LoginFailure) -> Result<LoginTally, StoreError> {
        let now = self.clock.now_micros();
        self.with_transaction(|db| record(db, failure, now))
    }

    fn login_lockout(
        &self,
        realm: &str,
        source: &str,
        identity: &str,
    ) -> Result<Option<StoredLockout>, StoreError> {
        let now = self.clock.now_micros();
        self.with_connection(|db| {
            Ok(db
                .query_row(
                    "SELECT scope, until_micros FROM login_lockouts \
                     WHERE realm = ?1 AND source = ?2 AND until_micros > ?4 \
                     AND (scope = 'source' OR (scope = 'identity' AND identity = ?3)) \
                     ORDER BY scope = 'source' DESC, until_micros DESC LIMIT 1",
                    params![realm, source, identity, now],
                    |row| {
                        Ok(StoredLockout {
                            scope: row.get(0)?,
                            until_micros: row.get(1)?,
                        })
                    },
                )
                .optional()?)
        })
    }

    fn unlock_logins(
        &self,
        source: Option<&str>,
        identity: Option<&str>,
    ) -> Result<usize, StoreError> {
        let now = self.clock.now_micros();
        self.with_transaction(|db| {
            // Identity only: pair locks of that identity, never whole sources.
            let filter = "(?1 IS NULL OR source = ?1) AND (?2 IS NULL OR identity = ?2)";
            let scope = if identity.is_some() {
                " AND scope = 'identity'"
            } else {
                ""
            };
            let ended: i64 = db.query_row(
                &format!(
                    "SELECT count(*) FROM login_lockouts WHERE {filter}{scope} AND until_micros > ?3"
                ),
                params![source, identity, now],
                |row| row.get(0),
            )?;
            db.execute(
                &format!("DELETE FROM login_lockouts WHERE {filter}{scope}"),
                params![source, identity],
            )?;
            db.execute(
                &format!("DELETE FROM login_failures WHERE {filter}"),
                params![source, identity],
            )?;
            Ok(usize::try_from(ended).unwrap_or(0))
        })
    }

    fn active_login_lockouts(&self) -> Result<usize, StoreError> {
        let now = self.clock.now_micros();
        self.with_connection(|db| {
            let active: i64 = db.query_row(
                "SELECT count(*) FROM login_lockouts WHERE until_micros > ?1",
                [now],
                |row| row.get(0),
            )?;
            Ok(usize::try_from(active).unwrap_or(0))
        })
    }
}

fn record(
    db: &Transaction<'_>,
    failure: &LoginFailure,
    now: i64,
) -> Result<LoginTally, StoreError> {
    let since = now - failure.window_micros;
    let (realm, source, identity) = (&failure.realm, &failure.source, &failure.identity);
    db.execute("DELETE FROM login_failures WHERE at_micros <= ?1", [since])?;
    db.execute("DELETE FROM login_lockouts WHERE until_micros <= ?1", [now])?;
    db.execute(
        "INSERT INTO login_failures (realm, source, identity, at_micros) VALUES (?1, ?2, ?3, ?4)",
        params![realm, source, identity, now],
    )?;
    let count = |sql: &str, values: &[&dyn rusqlite::ToSql]| -> Result<i64, StoreError> {
        Ok(db.query_row(sql, values, |row| row.get(0))?)
    };
    let source_failures = count(
        "SELECT count(*) FROM login_failures WHERE realm = ?1 AND source = ?2",
        &[realm, source],
    )?;
    let pair_failures = count(
        "SELECT count(*) FROM login_failures WHERE realm = ?1 AND source = ?2 AND identity = ?3",
        &[realm, source, identity],
    )?;
    let identity_failures = count(
        "SELECT count(*) FROM login_failures WHERE realm = ?1 AND identity = ?2",
        &[realm, identity],
    )?;
    let locked = |scope: &str, who: &str| -> Result<bool, StoreError> {
        Ok(count(
            "SELECT count(*) FROM login_lockouts WHERE realm = ?1 AND source = ?2 \
             AND scope = ?3 AND identity = ?4",
            &[realm, source, &scope, &who],
        )? > 0)
    };
    let until = now + failure.lockout_micros;
    let mut locked_now = None;
    if source_failures >= failure.source_threshold && !locked("source", "")? {
        db.execute(
            "INSERT INTO login_lockouts (realm, source, scope, identity, until_micros) \
             VALUES (?1, ?2, 'source', '', ?3)",
            params![realm, source, until],
        )?;
        db.execute(
            "DELETE FROM login_failures WHERE realm = ?1 AND source = ?2",
            params![realm, source],
        )?;
        locked_now = Some("source".to_string());
    } else if pair_failures >= failure.threshold && !locked("identity", identity)? {
        db.execute(
            "INSERT INTO login_lockouts (realm, source, scope, identity, until_micros) \
             VALUES (?1, ?2, 'identity', ?3, ?4)",
            params![realm, source, identity, until],
        )?;
        db.execute(
            "DELETE FROM login_failures WHERE realm = ?1 AND source = ?2 AND identity = ?3",
            params![realm, source, identity],
        )?;
        locked_now = Some("identity".to_string());
    }
    Ok(LoginTally {
        source_failures,
        identity_failures,
        locked_now,
    })
}
