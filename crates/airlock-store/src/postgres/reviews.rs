//! Reviews of held commands and their decisions ([`ReviewStore`]), access
//! grants ([`GrantStore`]) and the approvers' MFA secrets ([`MfaStore`]),
//! in PostgreSQL.
//!
//! What must hold across replicas: one pending review per statement
//! (creation under an advisory lock keyed by the statement), a decision
//! taken on the review's locked row (`FOR UPDATE`), an approval used by
//! one conditional `UPDATE` (PostgreSQL re-checks `uses_left > 0` after a
//! concurrent update, so a run is used once), a TOTP step accepted once.

use tokio_postgres::GenericClient;

use super::pool::{db_error, get};
use super::{listen, locks, PgStore};
use crate::backend::{GrantStore, MfaStore, ReviewStore};
use crate::changes::StoreChange;
use crate::records::{
    DecisionOutcome, GrantRecord, MfaSecretRecord, NewReview, PendingReviews, ReviewDecision,
    ReviewRecord,
};
use crate::StoreError;

const REVIEW_COLUMNS: &str = "id, status, identity, connection, statement, fingerprint, classification, rule, \
     policy_version, approvers, min_approvals, require_mfa, session_id, created_at, expires_at, decided_at, \
     valid_until, uses_left, reason, kind, duration_seconds";

const GRANT_COLUMNS: &str =
    "id, identity, connection, review_id, rule, created_at, expires_at, revoked_at";

const EXPIRE_PENDING: &str =
    "UPDATE reviews SET status = 'expired' WHERE status = 'pending' AND expires_at <= $1";

fn review_from_row(row: &tokio_postgres::Row) -> Result<ReviewRecord, StoreError> {
    let classification: String = get(row, 6)?;
    let approvers: String = get(row, 9)?;
    Ok(ReviewRecord {
        id: get(row, 0)?,
        status: get(row, 1)?,
        identity: get(row, 2)?,
        connection: get(row, 3)?,
        statement: get(row, 4)?,
        fingerprint: get(row, 5)?,
        classification: serde_json::from_str(&classification).unwrap_or_default(),
        rule: get(row, 7)?,
        policy_version: get(row, 8)?,
        approvers: serde_json::from_str(&approvers).unwrap_or_default(),
        min_approvals: get(row, 10)?,
        require_mfa: get(row, 11)?,
        session_id: get(row, 12)?,
        created_at: get(row, 13)?,
        expires_at: get(row, 14)?,
        decided_at: get(row, 15)?,
        valid_until: get(row, 16)?,
        uses_left: get(row, 17)?,
        reason: get(row, 18)?,
        kind: get(row, 19)?,
        duration_seconds: get(row, 20)?,
        decisions: Vec::new(),
    })
}

fn grant_from_row(row: &tokio_postgres::Row) -> Result<GrantRecord, StoreError> {
    Ok(GrantRecord {
        id: get(row, 0)?,
        identity: get(row, 1)?,
        connection: get(row, 2)?,
        review_id: get(row, 3)?,
        rule: get(row, 4)?,
        created_at: get(row, 5)?,
        expires_at: get(row, 6)?,
        revoked_at: get(row, 7)?,
    })
}

fn new_grant_id() -> String {
    let bytes: [u8; 4] = rand::random();
    format!("g-{}", hex::encode(bytes))
}

async fn insert_grant(
    db: &impl GenericClient,
    grant: GrantRecord,
) -> Result<GrantRecord, StoreError> {
    db.execute(
        &format!("INSERT INTO grants ({GRANT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)"),
        &[
            &grant.id,
            &grant.identity,
            &grant.connection,
            &grant.review_id,
            &grant.rule,
            &grant.created_at,
            &grant.expires_at,
        ],
    )
    .await
    .map_err(db_error)?;
    Ok(grant)
}

/// A 32-bit key for the statement's advisory lock.
fn statement_lock_key(review: &NewReview) -> i32 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(
        format!(
            "{}\0{}\0{}",
            review.identity, review.connection, review.fingerprint
        )
        .as_bytes(),
    );
    let mut bytes = [0u8; 4];
    for (slot, byte) in bytes.iter_mut().zip(digest.iter()) {
        *slot = *byte;
    }
    i32::from_be_bytes(bytes)
}

impl ReviewStore for PgStore {
    fn pending_reviews(&self) -> Result<PendingReviews, StoreError> {
        self.run(move |shared| async move {
            let now = shared.clock.now_unix();
            let client = shared.pool.get().await?;
            let row = client
                .query_one(
                    "SELECT count(*), min(created_at) FROM reviews
                     WHERE status = 'pending' AND expires_at > $1",
                    &[&now],
                )
                .await
                .map_err(db_error)?;
            let count: i64 = get(&row, 0)?;
            Ok(PendingReviews {
                count: u64::try_from(count).unwrap_or(0),
                oldest_created_at: get(&row, 1)?,
            })
        })
    }

    fn create_or_find_review(&self, review: &NewReview) -> Result<ReviewRecord, StoreError> {
        let review = review.clone();
        let lock_key = statement_lock_key(&review);
        self.run(move |shared| async move {
            let now = shared.clock.now_unix();
            let mut client = shared.pool.get().await?;
            let transaction = client.client_mut().transaction().await.map_err(db_error)?;
            transaction
                .execute("SELECT pg_advisory_xact_lock($1, $2)", &[&locks::REVIEWS, &lock_key])
                .await
                .map_err(db_error)?;
            transaction.execute(EXPIRE_PENDING, &[&now]).await.map_err(db_error)?;
            let existing = transaction
                .query_opt(
                    &format!(
                        "SELECT {REVIEW_COLUMNS} FROM reviews WHERE identity = $1 AND connection = $2 \
                         AND fingerprint = $3 AND status = 'pending' ORDER BY created_at DESC LIMIT 1"
                    ),
                    &[&review.identity, &review.connection, &review.fingerprint],
                )
                .await
                .map_err(db_error)?;
            let row = match existing {
                Some(row) => row,
                None => transaction
                    .query_one(
                        &format!(
                            "INSERT INTO reviews ({REVIEW_COLUMNS}) VALUES \
                             ($1, 'pending', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
                              NULL, NULL, 0, NULL, $15, $16) RETURNING {REVIEW_COLUMNS}"
                        ),
                        &[
                            &review.id,
                            &review.identity,
                            &review.connection,
                            &review.statement,
                            &review.fingerprint,
                            &review.classification.to_string(),
                            &review.rule,
                            &review.policy_version,
                            &serde_json::to_string(&review.approvers).unwrap_or_default(),
                            &review.min_approvals,
                            &review.require_mfa,
                            &review.session_id,
                            &now,
                            &review.expires_at,
                            &review.kind,
                            &review.duration_seconds,
                        ],
                    )
                    .await
                    .map_err(db_error)?,
            };
            let record = review_from_row(&row)?;
            transaction.commit().await.map_err(db_error)?;
            Ok(record)
        })
    }

    fn consume_approval(
        &self,
        identity: &str,
        connection: &str,
        fingerprint: &str,
    ) -> Result<Option<String>, StoreError> {
        let (identity, connection, fingerprint) = (
            identity.to_string(),
            connection.to_string(),
            fingerprint.to_string(),
        );
        self.run(move |shared| async move {
            let now = shared.clock.now_unix();
            let client = shared.pool.get().await?;
            // One statement: a concurrent consumer waits on the row and,
            // once it commits, finds `uses_left > 0` false.
            let row = client
                .query_opt(
                    "UPDATE reviews SET uses_left = uses_left - 1, \
                     status = CASE WHEN uses_left - 1 <= 0 THEN 'used' ELSE status END \
                     WHERE id = (SELECT id FROM reviews WHERE identity = $1 AND connection = $2 \
                        AND fingerprint = $3 AND status = 'approved' AND uses_left > 0 \
                        AND valid_until > $4 ORDER BY decided_at LIMIT 1) \
                     AND status = 'approved' AND uses_left > 0 AND valid_until > $4 RETURNING id",
                    &[&identity, &connection, &fingerprint, &now],
                )
                .await
                .map_err(db_error)?;
            row.as_ref().map(|row| get(row, 0)).transpose()
        })
    }

    fn review(&self, id: &str) -> Result<Option<ReviewRecord>, StoreError> {
        let id = id.to_string();
        self.run(move |shared| async move {
            let now = shared.clock.now_unix();
            let client = shared.pool.get().await?;
            client
                .execute(EXPIRE_PENDING, &[&now])
                .await
                .map_err(db_error)?;
            let row = client
                .query_opt(
                    &format!("SELECT {REVIEW_COLUMNS} FROM reviews WHERE id = $1"),
                    &[&id],
                )
                .await
                .map_err(db_error)?;
            let Some(row) = row else { return Ok(None) };
            let mut review = review_from_row(&row)?;
            let decisions = client
                .query(
                    "SELECT approver, decision, comment, mfa, created_at FROM review_decisions \
                     WHERE review_id = $1 ORDER BY created_at, approver",
                    &[&id],
                )
                .await
                .map_err(db_error)?;
            review.decisions = decisions
                .iter()
                .map(|row| {
                    Ok(ReviewDecision {
                        approver: get(row, 0)?,
                        decision: get(row, 1)?,
                        comment: get(row, 2)?,
                        mfa: get(row, 3)?,
                        created_at: get(row, 4)?,
                    })
                })
                .collect::<Result<_, StoreError>>()?;
            Ok(Some(review))
        })
    }

    fn reviews_visible_to(
        &self,
        status: Option<&str>,
        limit: i64,
        viewer: Option<(&str, &[String])>,
    ) -> Result<Vec<ReviewRecord>, StoreError> {
        let status = status.map(str::to_string);
        let viewer_name = viewer.map(|(name, _)| name.to_string());
        let viewer_groups: Vec<String> = viewer
            .map(|(_, groups)| groups.to_vec())
            .unwrap_or_default();
        self.run(move |shared| async move {
            let now = shared.clock.now_unix();
            let client = shared.pool.get().await?;
            client.execute(EXPIRE_PENDING, &[&now]).await.map_err(db_error)?;
            let rows = client
                .query(
                    &format!(
                        "SELECT {REVIEW_COLUMNS} FROM reviews WHERE ($1::TEXT IS NULL OR status = $1) \
                         AND ($3::TEXT IS NULL OR identity = $3 OR EXISTS (\
                           SELECT 1 FROM jsonb_array_elements_text(reviews.approvers::JSONB) AS approver \
                           WHERE approver = ANY($4::TEXT[]))) \
                         ORDER BY created_at DESC, id LIMIT $2"
                    ),
                    &[&status, &limit, &viewer_name, &viewer_groups],
                )
                .await
                .map_err(db_error)?;
            rows.iter().map(review_from_row).collect()
        })
    }

    #[allow(clippy::too_many_arguments)] // one decision's fields
    fn decide_review(
        &self,
        id: &str,
        approver: &str,
        approve: bool,
        comment: Option<&str>,
        mfa: bool,
        validity_seconds: i64,
        uses: i64,
    ) -> Result<DecisionOutcome, StoreError> {
        let (id, approver) = (id.to_string(), approver.to_string());
        let comment = comment.map(str::to_string);
        self.run(move |shared| async move {
            let now = shared.clock.now_unix();
            let mut client = shared.pool.get().await?;
            let db = client.client_mut().transaction().await.map_err(db_error)?;
            let row = db
                .query_opt(
                    "SELECT status, min_approvals, expires_at, kind, duration_seconds, identity, connection, rule \
                     FROM reviews WHERE id = $1 FOR UPDATE",
                    &[&id],
                )
                .await
                .map_err(db_error)?
                .ok_or_else(|| StoreError::NotFound { what: "review", name: id.clone() })?;
            let status: String = get(&row, 0)?;
            let min_approvals: i64 = get(&row, 1)?;
            let expires_at: i64 = get(&row, 2)?;
            let kind: String = get(&row, 3)?;
            let duration: Option<i64> = get(&row, 4)?;
            if status != "pending" || expires_at <= now {
                return Err(StoreError::Conflict(format!(
                    "review {id} is {} and can no longer be decided",
                    if status == "pending" { "expired" } else { status.as_str() }
                )));
            }
            let inserted = db
                .execute(
                    "INSERT INTO review_decisions (review_id, approver, decision, comment, mfa, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    &[&id, &approver, &if approve { "approve" } else { "deny" }, &comment, &mfa, &now],
                )
                .await
                .map_err(db_error)?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!("{approver} has already decided review {id}")));
            }
            let approvals: i64 = get(
                &db.query_one(
                    "SELECT count(*) FROM review_decisions WHERE review_id = $1 AND decision = 'approve'",
                    &[&id],
                )
                .await
                .map_err(db_error)?,
                0,
            )?;
            let mut grant = None;
            let status = if !approve {
                db.execute(
                    "UPDATE reviews SET status = 'denied', decided_at = $2, reason = $3 WHERE id = $1",
                    &[&id, &now, &comment],
                )
                .await
                .map_err(db_error)?;
                "denied"
            } else if approvals >= min_approvals && kind == "access" {
                db.execute(
                    "UPDATE reviews SET status = 'approved', decided_at = $2, uses_left = 0 WHERE id = $1",
                    &[&id, &now],
                )
                .await
                .map_err(db_error)?;
                let record = GrantRecord {
                    id: new_grant_id(),
                    identity: get(&row, 5)?,
                    connection: get(&row, 6)?,
                    review_id: Some(id.clone()),
                    rule: get(&row, 7)?,
                    created_at: now,
                    expires_at: now + duration.unwrap_or(0),
                    revoked_at: None,
                };
                grant = Some(insert_grant(&db, record).await?);
                "approved"
            } else if approvals >= min_approvals {
                db.execute(
                    "UPDATE reviews SET status = 'approved', decided_at = $2, valid_until = $3, uses_left = $4 \
                     WHERE id = $1",
                    &[&id, &now, &(now + validity_seconds), &uses],
                )
                .await
                .map_err(db_error)?;
                "approved"
            } else {
                "pending"
            };
            listen::notify(&db, &StoreChange::Review).await?;
            if grant.is_some() {
                listen::notify(&db, &StoreChange::Grants).await?;
            }
            db.commit().await.map_err(db_error)?;
            Ok(DecisionOutcome {
                status: status.to_string(),
                approvals,
                min_approvals,
                grant,
            })
        })
    }
}

impl GrantStore for PgStore {
    fn create_grant(
        &self,
        identity: &str,
        connection: &str,
        rule: &str,
        seconds: i64,
    ) -> Result<GrantRecord, StoreError> {
        let (identity, connection, rule) = (
            identity.to_string(),
            connection.to_string(),
            rule.to_string(),
        );
        self.run(move |shared| async move {
            let now = shared.clock.now_unix();
            let client = shared.pool.get().await?;
            let record = GrantRecord {
                id: new_grant_id(),
                identity,
                connection,
                review_id: None,
                rule,
                created_at: now,
                expires_at: now + seconds,
                revoked_at: None,
            };
            let grant = insert_grant(&*client, record).await?;
            listen::notify(&*client, &StoreChange::Grants).await?;
            Ok(grant)
        })
    }

    fn active_grant(
        &self,
        identity: &str,
        connection: &str,
    ) -> Result<Option<GrantRecord>, StoreError> {
        let (identity, connection) = (identity.to_string(), connection.to_string());
        self.run(move |shared| async move {
            let now = shared.clock.now_unix();
            let client = shared.pool.get().await?;
            let row = client
                .query_opt(
                    &format!(
                        "SELECT {GRANT_COLUMNS} FROM grants WHERE identity = $1 AND connection = $2 \
                         AND revoked_at IS NULL AND expires_at > $3 ORDER BY expires_at DESC LIMIT 1"
                    ),
                    &[&identity, &connection, &now],
                )
                .await
                .map_err(db_error)?;
            row.as_ref().map(grant_from_row).transpose()
        })
    }

    fn grants(&self, active_only: bool) -> Result<Vec<GrantRecord>, StoreError> {
        self.run(move |shared| async move {
            let now = shared.clock.now_unix();
            let client = shared.pool.get().await?;
            let rows = client
                .query(
                    &format!(
                        "SELECT {GRANT_COLUMNS} FROM grants WHERE NOT $1 OR (revoked_at IS NULL AND expires_at > $2) \
                         ORDER BY created_at DESC, id LIMIT 1000"
                    ),
                    &[&active_only, &now],
                )
                .await
                .map_err(db_error)?;
            rows.iter().map(grant_from_row).collect()
        })
    }

    fn revoke_grant(&self, id: &str) -> Result<GrantRecord, StoreError> {
        let id = id.to_string();
        self.run(move |shared| async move {
            let now = shared.clock.now_unix();
            let client = shared.pool.get().await?;
            client
                .execute(
                    "UPDATE grants SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                    &[&id, &now],
                )
                .await
                .map_err(db_error)?;
            listen::notify(&*client, &StoreChange::Grants).await?;
            let row = client
                .query_opt(
                    &format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = $1"),
                    &[&id],
                )
                .await
                .map_err(db_error)?;
            match row {
                Some(row) => grant_from_row(&row),
                None => Err(StoreError::NotFound {
                    what: "grant",
                    name: id,
                }),
            }
        })
    }
}

impl MfaStore for PgStore {
    fn set_mfa_secret(
        &self,
        identity: &str,
        nonce: &[u8],
        ciphertext: &[u8],
    ) -> Result<(), StoreError> {
        let identity = identity.to_string();
        let (nonce, ciphertext) = (nonce.to_vec(), ciphertext.to_vec());
        self.run(move |shared| async move {
            let now = shared.clock.now_unix();
            let client = shared.pool.get().await?;
            client
                .execute(
                    "INSERT INTO mfa_secrets (identity, nonce, ciphertext, last_step, created_at) \
                     VALUES ($1, $2, $3, NULL, $4) ON CONFLICT (identity) DO UPDATE SET \
                     nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext, last_step = NULL, \
                     created_at = EXCLUDED.created_at",
                    &[&identity, &nonce, &ciphertext, &now],
                )
                .await
                .map_err(db_error)?;
            Ok(())
        })
    }

    fn mfa_secret(&self, identity: &str) -> Result<Option<MfaSecretRecord>, StoreError> {
        let identity = identity.to_string();
        self.run(move |shared| async move {
            let client = shared.pool.get().await?;
            let row = client
                .query_opt(
                    "SELECT nonce, ciphertext, last_step FROM mfa_secrets WHERE identity = $1",
                    &[&identity],
                )
                .await
                .map_err(db_error)?;
            row.map(|row| {
                Ok(MfaSecretRecord {
                    nonce: get(&row, 0)?,
                    ciphertext: get(&row, 1)?,
                    last_step: get(&row, 2)?,
                })
            })
            .transpose()
        })
    }

    fn use_mfa_step(&self, identity: &str, step: i64) -> Result<bool, StoreError> {
        let identity = identity.to_string();
        self.run(move |shared| async move {
            let client = shared.pool.get().await?;
            let changed = client
                .execute(
                    "UPDATE mfa_secrets SET last_step = $2 WHERE identity = $1 \
                     AND (last_step IS NULL OR last_step < $2)",
                    &[&identity, &step],
                )
                .await
                .map_err(db_error)?;
            Ok(changed == 1)
        })
    }
}
