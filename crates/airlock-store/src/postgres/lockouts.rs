//! Failed logins and lockouts in the shared store ([`LockoutStore`]): a
//! failure, its counts and the lockout it starts share one transaction
//! under an advisory lock per (realm, source), so replicas count every
//! failure once and cannot both miss a threshold. A new lockout is hinted
//! to the other replicas ([`StoreChange::Lockouts`]); they read lockouts
//! at every login anyway.

use tokio_postgres::GenericClient;

use super::pool::{db_error, get};
use super::{listen, locks, PgStore};
use crate::backend::LockoutStore;
use crate::changes::StoreChange;
use crate::records::{LoginFailure, LoginTally, StoredLockout};
use crate::StoreError;

impl LockoutStore for PgStore {
    fn record_login_failure(&self, failure: &LoginFailure) -> Result<LoginTally, StoreError> {
        let failure = failure.clone();
        self.run(move |shared| async move {
            let now = shared.clock.now_micros();
            let mut client = shared.pool.get().await?;
            let db = client.client_mut().transaction().await.map_err(db_error)?;
            db.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2 || '/' || $3))",
                &[&locks::LOGINS, &failure.realm, &failure.source],
            )
            .await
            .map_err(db_error)?;
            let tally = record(&db, &failure, now).await?;
            if tally.locked_now.is_some() {
                listen::notify(&db, &StoreChange::Lockouts).await?;
            }
            db.commit().await.map_err(db_error)?;
            Ok(tally)
        })
    }

    fn login_lockout(
        &self,
        realm: &str,
        source: &str,
        identity: &str,
    ) -> Result<Option<StoredLockout>, StoreError> {
        let (realm, source, identity) =
            (realm.to_string(), source.to_string(), identity.to_string());
        self.run(move |shared| async move {
            let now = shared.clock.now_micros();
            let client = shared.pool.get().await?;
            let row = client
                .query_opt(
                    "SELECT scope, until_micros FROM login_lockouts \
                     WHERE realm = $1 AND source = $2 AND until_micros > $4 \
                     AND (scope = 'source' OR (scope = 'identity' AND identity = $3)) \
                     ORDER BY scope = 'source' DESC, until_micros DESC LIMIT 1",
                    &[&realm, &source, &identity, &now],
                )
                .await
                .map_err(db_error)?;
            row.map(|row| {
                Ok(StoredLockout {
                    scope: get(&row, 0)?,
                    until_micros: get(&row, 1)?,
                })
            })
            .transpose()
        })
    }

    fn unlock_logins(
        &self,
        source: Option<&str>,
        identity: Option<&str>,
    ) -> Result<usize, StoreError> {
        let (source, identity) = (source.map(str::to_string), identity.map(str::to_string));
        self.run(move |shared| async move {
            let now = shared.clock.now_micros();
            let mut client = shared.pool.get().await?;
            let db = client.client_mut().transaction().await.map_err(db_error)?;
            // Identity only: pair locks of that identity, never whole sources.
            let filter = "($1::text IS NULL OR source = $1) AND ($2::text IS NULL OR identity = $2)";
            let scope = if identity.is_some() {
                " AND scope = 'identity'"
            } else {
                ""
            };
            let ended: i64 = get(
                &db.query_one(
                    &format!(
                        "SELECT count(*) FROM login_lockouts WHERE {filter}{scope} AND until_micros > $3"
                    ),
                    &[&source, &identity, &now],
                )
                .await
                .map_err(db_error)?,
                0,
            )?;
            db.execute(
                &format!("DELETE FROM login_lockouts WHERE {filter}{scope}"),
                &[&source, &identity],
            )
            .await
            .map_err(db_error)?;
            db.execute(
                &format!("DELETE FROM login_failures WHERE {filter}"),
                &[&source, &identity],
            )
            .await
            .map_err(db_error)?;
            listen::notify(&db, &StoreChange::Lockouts).await?;
            db.commit().await.map_err(db_error)?;
            Ok(usize::try_from(ended).unwrap_or(0))
        })
    }

    fn active_login_lockouts(&self) -> Result<usize, StoreError> {
        self.run(move |shared| async move {
            let now = shared.clock.now_micros();
            let client = shared.pool.get().await?;
            let active: i64 = get(
                &client
                    .query_one(
                        "SELECT count(*) FROM login_lockouts WHERE until_micros > $1",
                        &[&now],
                    )
                    .await
                    .map_err(db_error)?,
                0,
            )?;
            Ok(usize::try_from(active).unwrap_or(0))
        })
    }
}

async fn count(
    db: &impl GenericClient,
    sql: &str,
    values: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<i64, StoreError> {
    get(&db.query_one(sql, values).await.map_err(db_error)?, 0)
}

async fn record(
    db: &impl GenericClient,
    failure: &LoginFailure,
    now: i64,
) -> Result<LoginTally, StoreError> {
    let since = now - failure.window_micros;
    let (realm, source, identity) = (&failure.realm, &failure.source, &failure.identity);
    db.execute(
        "DELETE FROM login_failures WHERE at_micros <= $1",
        &[&since],
    )
    .await
    .map_err(db_error)?;
    db.execute(
        "DELETE FROM login_lockouts WHERE until_micros <= $1",
        &[&now],
    )
    .await
    .map_err(db_error)?;
    db.execute(
        "INSERT INTO login_failures (realm, source, identity, at_micros) VALUES ($1, $2, $3, $4)",
        &[realm, source, identity, &now],
    )
    .await
    .map_err(db_error)?;
    let source_failures = count(
        db,
        "SELECT count(*) FROM login_failures WHERE realm = $1 AND source = $2",
        &[realm, source],
    )
    .await?;
    let pair_failures = count(
        db,
        "SELECT count(*) FROM login_failures WHERE realm = $1 AND source = $2 AND identity = $3",
        &[realm, source, identity],
    )
    .await?;
    let identity_failures = count(
        db,
        "SELECT count(*) FROM login_failures WHERE realm = $1 AND identity = $2",
        &[realm, identity],
    )
    .await?;
    let lock_exists = "SELECT count(*) FROM login_lockouts WHERE realm = $1 AND source = $2 \
                       AND scope = $3 AND identity = $4";
    let until = now + failure.lockout_micros;
    let empty = String::new();
    let mut locked_now = None;
    if source_failures >= failure.source_threshold
        && count(db, lock_exists, &[realm, source, &"source", &empty]).await? == 0
    {
        db.execute(
            "INSERT INTO login_lockouts (realm, source, scope, identity, until_micros) \
             VALUES ($1, $2, 'source', '', $3)",
            &[realm, source, &until],
        )
        .await
        .map_err(db_error)?;
        db.execute(
            "DELETE FROM login_failures WHERE realm = $1 AND source = $2",
            &[realm, source],
        )
        .await
        .map_err(db_error)?;
        locked_now = Some("source".to_string());
    } else if pair_failures >= failure.threshold
        && count(db, lock_exists, &[realm, source, &"identity", identity]).await? == 0
    {
        db.execute(
            "INSERT INTO login_lockouts (realm, source, scope, identity, until_micros) \
             VALUES ($1, $2, 'identity', $3, $4)",
            &[realm, source, identity, &until],
        )
        .await
        .map_err(db_error)?;
        db.execute(
            "DELETE FROM login_failures WHERE realm = $1 AND source = $2 AND identity = $3",
            &[realm, source, identity],
        )
        .await
        .map_err(db_error)?;
        locked_now = Some("identity".to_string());
    }
    Ok(LoginTally {
        source_failures,
        identity_failures,
        locked_now,
    })
}
