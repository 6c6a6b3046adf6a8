//! Policy versions in PostgreSQL ([`PolicyStore`]): the newest is live for
//! every replica; numbers are assigned under an advisory lock so replicas
//! applying at once get consecutive versions.

use sha2::{Digest, Sha256};

use super::pool::{db_error, get};
use super::{listen, locks, PgStore};
use crate::backend::PolicyStore;
use crate::changes::StoreChange;
use crate::records::PolicyVersionRecord;
use crate::StoreError;

fn policy_from_row(row: &tokio_postgres::Row) -> Result<PolicyVersionRecord, StoreError> {
    Ok(PolicyVersionRecord {
        version: get(row, 0)?,
        text: get(row, 1)?,
        sha256: get(row, 2)?,
        source: get(row, 3)?,
        comment: get(row, 4)?,
        created_at: get(row, 5)?,
    })
}

impl PgStore {
    fn policy_query(
        &self,
        sql: &'static str,
        version: Option<i64>,
    ) -> Result<Vec<PolicyVersionRecord>, StoreError> {
        self.run(move |shared| async move {
            let client = shared.pool.get().await?;
            let rows = match version {
                Some(version) => client.query(sql, &[&version]).await,
                None => client.query(sql, &[]).await,
            }
            .map_err(db_error)?;
            rows.iter().map(policy_from_row).collect()
        })
    }
}

impl PolicyStore for PgStore {
    fn insert_policy_version(
        &self,
        text: &str,
        source: &str,
        comment: Option<&str>,
    ) -> Result<i64, StoreError> {
        let (text, source) = (text.to_string(), source.to_string());
        let comment = comment.map(str::to_string);
        let sha256 = hex::encode(Sha256::digest(text.as_bytes()));
        self.run(move |shared| async move {
            let now = shared.clock.now_unix();
            let mut client = shared.pool.get().await?;
            let transaction = client.client_mut().transaction().await.map_err(db_error)?;
            transaction
                .execute("SELECT pg_advisory_xact_lock($1)", &[&locks::POLICY_VERSIONS])
                .await
                .map_err(db_error)?;
            let row = transaction
                .query_one(
                    "INSERT INTO policy_versions (version, text, sha256, source, comment, created_at)
                     SELECT COALESCE(MAX(version), 0) + 1, $1, $2, $3, $4, $5 FROM policy_versions
                     RETURNING version",
                    &[&text, &sha256, &source, &comment, &now],
                )
                .await
                .map_err(db_error)?;
            let version: i64 = get(&row, 0)?;
            listen::notify(&transaction, &StoreChange::Policy).await?;
            transaction.commit().await.map_err(db_error)?;
            Ok(version)
        })
    }

    fn live_policy(&self) -> Result<Option<PolicyVersionRecord>, StoreError> {
        Ok(self
            .policy_query(
                "SELECT version, text, sha256, source, comment, created_at FROM policy_versions
                 ORDER BY version DESC LIMIT 1",
                None,
            )?
            .into_iter()
            .next())
    }

    fn live_policy_version(&self) -> Result<Option<i64>, StoreError> {
        self.run(move |shared| async move {
            let client = shared.pool.get().await?;
            let row = client
                .query_one("SELECT MAX(version) FROM policy_versions", &[])
                .await
                .map_err(db_error)?;
            get(&row, 0)
        })
    }

    fn policy_version(&self, version: i64) -> Result<Option<PolicyVersionRecord>, StoreError> {
        Ok(self
            .policy_query(
                "SELECT version, text, sha256, source, comment, created_at FROM policy_versions
                 WHERE version = $1",
                Some(version),
            )?
            .into_iter()
            .next())
    }

    fn policy_versions(&self) -> Result<Vec<PolicyVersionRecord>, StoreError> {
        self.policy_query(
            "SELECT version, NULL::TEXT, sha256, source, comment, created_at FROM policy_versions
             ORDER BY version",
            None,
        )
    }
}
