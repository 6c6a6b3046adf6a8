//! Reviews of commands held for human approval and their decisions
//! ([`ReviewStore`]), access grants ([`GrantStore`]) and the approvers' MFA
//! secrets, encrypted like credentials ([`MfaStore`]), in SQLite.
//!
//! State lives here, not in a gateway's memory, so a decision taken through
//! any gateway sharing the store releases a command waiting on another.

use rusqlite::{params, OptionalExtension};

use super::Store;
use crate::backend::{GrantStore, MfaStore, ReviewStore};
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

fn grant_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<GrantRecord> {
    Ok(GrantRecord {
        id: row.get(0)?,
        identity: row.get(1)?,
        connection: row.get(2)?,
        review_id: row.get(3)?,
        rule: row.get(4)?,
        created_at: row.get(5)?,
        expires_at: row.get(6)?,
        revoked_at: row.get(7)?,
    })
}

fn new_grant_id() -> String {
    let bytes: [u8; 4] = rand::random();
    format!("g-{}", hex::encode(bytes))
}

fn insert_grant(
    db: &rusqlite::Connection,
    identity: &str,
    connection: &str,
    review_id: Option<&str>,
    rule: &str,
    now: i64,
    seconds: i64,
) -> Result<GrantRecord, StoreError> {
    let grant = GrantRecord {
        id: new_grant_id(),
        identity: identity.to_string(),
        connection: connection.to_string(),
        review_id: review_id.map(str::to_string),
        rule: rule.to_string(),
        created_at: now,
        expires_at: now + seconds,
        revoked_at: None,
    };
    db.execute(
        &format!("INSERT INTO grants ({GRANT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)"),
        params![
            grant.id,
            grant.identity,
            grant.connection,
            grant.review_id,
            grant.rule,
            grant.created_at,
            grant.expires_at
        ],
    )?;
    Ok(grant)
}

fn review_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ReviewRecord> {
    let classification: String = row.get(6)?;
    let approvers: String = row.get(9)?;
    Ok(ReviewRecord {
        id: row.get(0)?,
        status: row.get(1)?,
        identity: row.get(2)?,
        connection: row.get(3)?,
        statement: row.get(4)?,
        fingerprint: row.get(5)?,
        classification: serde_json::from_str(&classification).unwrap_or_default(),
        rule: row.get(7)?,
        policy_version: row.get(8)?,
        approvers: serde_json::from_str(&approvers).unwrap_or_default(),
        min_approvals: row.get(10)?,
        require_mfa: row.get::<_, i64>(11)? != 0,
        session_id: row.get(12)?,
        created_at: row.get(13)?,
        expires_at: row.get(14)?,
        decided_at: row.get(15)?,
        valid_until: row.get(16)?,
        uses_left: row.get(17)?,
        reason: row.get(18)?,
        kind: row.get(19)?,
        duration_seconds: row.get(20)?,
        decisions: Vec::new(),
    })
}

impl ReviewStore for Store {
    /// Creates a pending review, or returns the pending one that already
    /// holds the same statement for the same identity and connection.
    fn create_or_find_review(&self, review: &NewReview) -> Result<ReviewRecord, StoreError> {
        self.with_connection(|connection| {
            let now = self.clock.now_unix();
            connection.execute(
                "UPDATE reviews SET status = 'expired' WHERE status = 'pending' AND expires_at <= ?1",
                [now],
            )?;
            let existing = connection
                .query_row(
                    &format!(
                        "SELECT {REVIEW_COLUMNS} FROM reviews WHERE identity = ?1 AND connection = ?2 \
                         AND fingerprint = ?3 AND status = 'pending' ORDER BY created_at DESC LIMIT 1"
                    ),
                    params![review.identity, review.connection, review.fingerprint],
                    review_from_row,
                )
                .optional()?;
            if let Some(existing) = existing {
                return Ok(existing);
            }
            connection.execute(
                &format!(
                    "INSERT INTO reviews ({REVIEW_COLUMNS}) VALUES \
                     (?1, 'pending', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, NULL, NULL, 0, NULL, ?15, ?16)"
                ),
                params![
                    review.id,
                    review.identity,
                    review.connection,
                    review.statement,
                    review.fingerprint,
                    review.classification.to_string(),
                    review.rule,
                    review.policy_version,
                    serde_json::to_string(&review.approvers).unwrap_or_default(),
                    review.min_approvals,
                    i64::from(review.require_mfa),
                    review.session_id,
                    now,
                    review.expires_at,
                    review.kind,
                    review.duration_seconds
                ],
            )?;
            connection
                .query_row(
                    &format!("SELECT {REVIEW_COLUMNS} FROM reviews WHERE id = ?1"),
                    [&review.id],
                    review_from_row,
                )
                .map_err(StoreError::from)
        })
    }

    /// Uses one run of an approved review for this statement, if one is
    /// valid now. Returns its id.
    fn consume_approval(
        &self,
        identity: &str,
        connection: &str,
        fingerprint: &str,
    ) -> Result<Option<String>, StoreError> {
        self.with_connection(|db| {
            let now = self.clock.now_unix();
            let id: Option<String> = db
                .query_row(
                    "SELECT id FROM reviews WHERE identity = ?1 AND connection = ?2 AND fingerprint = ?3 \
                     AND status = 'approved' AND uses_left > 0 AND valid_until > ?4 ORDER BY decided_at LIMIT 1",
                    params![identity, connection, fingerprint, now],
                    |row| row.get(0),
                )
                .optional()?;
            let Some(id) = id else { return Ok(None) };
            let changed = db.execute(
                "UPDATE reviews SET uses_left = uses_left - 1, \
                 status = CASE WHEN uses_left - 1 <= 0 THEN 'used' ELSE status END \
                 WHERE id = ?1 AND uses_left > 0",
                [&id],
            )?;
            Ok((changed == 1).then_some(id))
        })
    }

    /// One review with its decisions.
    fn review(&self, id: &str) -> Result<Option<ReviewRecord>, StoreError> {
        self.with_connection(|db| {
            db.execute(
                "UPDATE reviews SET status = 'expired' WHERE status = 'pending' AND expires_at <= ?1",
                [self.clock.now_unix()],
            )?;
            let review = db
                .query_row(
                    &format!("SELECT {REVIEW_COLUMNS} FROM reviews WHERE id = ?1"),
                    [id],
                    review_from_row,
                )
                .optional()?;
            let Some(mut review) = review else { return Ok(None) };
            let mut statement = db.prepare(
                "SELECT approver, decision, comment, mfa, created_at FROM review_decisions \
                 WHERE review_id = ?1 ORDER BY created_at",
            )?;
            let decisions = statement.query_map([id], |row| {
                Ok(ReviewDecision {
                    approver: row.get(0)?,
                    decision: row.get(1)?,
                    comment: row.get(2)?,
                    mfa: row.get::<_, i64>(3)? != 0,
                    created_at: row.get(4)?,
                })
            })?;
            review.decisions = decisions.collect::<Result<Vec<_>, _>>()?;
            Ok(Some(review))
        })
    }

    /// Like [`ReviewStore::reviews`], limited to what `viewer` (an identity name
    /// and its groups) may see when given: the reviews it requested and
    /// those with an approver group among its groups. `None` lists all.
    fn reviews_visible_to(
        &self,
        status: Option<&str>,
        limit: i64,
        viewer: Option<(&str, &[String])>,
    ) -> Result<Vec<ReviewRecord>, StoreError> {
        let (viewer_name, viewer_groups) = match viewer {
            Some((name, groups)) => (
                Some(name),
                Some(serde_json::to_string(groups).unwrap_or_else(|_| "[]".into())),
            ),
            None => (None, None),
        };
        self.with_connection(|db| {
            db.execute(
                "UPDATE reviews SET status = 'expired' WHERE status = 'pending' AND expires_at <= ?1",
                [self.clock.now_unix()],
            )?;
            let mut statement = db.prepare(&format!(
                "SELECT {REVIEW_COLUMNS} FROM reviews WHERE (?1 IS NULL OR status = ?1) \
                 AND (?3 IS NULL OR identity = ?3 OR EXISTS (\
                   SELECT 1 FROM json_each(reviews.approvers) AS approver \
                   WHERE approver.value IN (SELECT value FROM json_each(?4)))) \
                 ORDER BY created_at DESC, id LIMIT ?2"
            ))?;
            let rows = statement.query_map(
                params![status, limit, viewer_name, viewer_groups],
                review_from_row,
            )?;
            rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::from)
        })
    }

    /// One aggregate over the pending reviews not past their expiry (the
    /// same rows [`ReviewStore::reviews`] would list, without reading them).
    fn pending_reviews(&self) -> Result<PendingReviews, StoreError> {
        self.with_connection(|db| {
            let (count, oldest): (i64, Option<i64>) = db.query_row(
                "SELECT count(*), min(created_at) FROM reviews \
                 WHERE status = 'pending' AND expires_at > ?1",
                [self.clock.now_unix()],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?;
            Ok(PendingReviews {
                count: u64::try_from(count).unwrap_or(0),
                oldest_created_at: oldest,
            })
        })
    }

    /// Records one approver's decision and moves the review on: any denial
    /// denies it; `min_approvals` distinct approvals approve it for
    /// `validity_seconds` and `uses` runs. The caller has checked that the
    /// approver may decide.
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
        self.with_transaction(|db| {
            let now = self.clock.now_unix();
            let (status, min_approvals, expires_at, kind, duration, identity, connection, rule): (
                String,
                i64,
                i64,
                String,
                Option<i64>,
                String,
                String,
                String,
            ) = db
                .query_row(
                    "SELECT status, min_approvals, expires_at, kind, duration_seconds, identity, connection, rule \
                     FROM reviews WHERE id = ?1",
                    [id],
                    |row| {
                        Ok((
                            row.get(0)?,
                            row.get(1)?,
                            row.get(2)?,
                            row.get(3)?,
                            row.get(4)?,
                            row.get(5)?,
                            row.get(6)?,
                            row.get(7)?,
                        ))
                    },
                )
                .optional()?
                .ok_or_else(|| StoreError::NotFound {
                    what: "review",
                    name: id.to_string(),
                })?;
            if status != "pending" || expires_at <= now {
                return Err(StoreError::Conflict(format!(
                    "review {id} is {} and can no longer be decided",
                    if status == "pending" { "expired" } else { status.as_str() }
                )));
            }
            let inserted = db.execute(
                "INSERT OR IGNORE INTO review_decisions (review_id, approver, decision, comment, mfa, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, approver, if approve { "approve" } else { "deny" }, comment, i64::from(mfa), now],
            )?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!("{approver} has already decided review {id}")));
            }
            let approvals: i64 = db.query_row(
                "SELECT count(*) FROM review_decisions WHERE review_id = ?1 AND decision = 'approve'",
                [id],
                |row| row.get(0),
            )?;
            let status = if !approve {
                db.execute(
                    "UPDATE reviews SET status = 'denied', decided_at = ?2, reason = ?3 WHERE id = ?1",
                    params![id, now, comment],
                )?;
                "denied"
            } else if approvals >= min_approvals && kind == "access" {
                db.execute(
                    "UPDATE reviews SET status = 'approved', decided_at = ?2, uses_left = 0 WHERE id = ?1",
                    params![id, now],
                )?;
                let grant = insert_grant(db, &identity, &connection, Some(id), &rule, now, duration.unwrap_or(0))?;
                return Ok(DecisionOutcome {
                    status: "approved".into(),
                    approvals,
                    min_approvals,
                    grant: Some(grant),
                });
            } else if approvals >= min_approvals {
                db.execute(
                    "UPDATE reviews SET status = 'approved', decided_at = ?2, valid_until = ?3, uses_left = ?4 WHERE id = ?1",
                    params![id, now, now + validity_seconds, uses],
                )?;
                "approved"
            } else {
                "pending"
            };
            Ok(DecisionOutcome {
                status: status.to_string(),
                approvals,
                min_approvals,
                grant: None,
            })
        })
    }
}

impl GrantStore for Store {
    /// Creates a grant directly (auto-approved access).
    fn create_grant(
        &self,
        identity: &str,
        connection: &str,
        rule: &str,
        seconds: i64,
    ) -> Result<GrantRecord, StoreError> {
        self.with_connection(|db| {
            insert_grant(
                db,
                identity,
                connection,
                None,
                rule,
                self.clock.now_unix(),
                seconds,
            )
        })
    }

    /// The grant admitting `identity` to `connection` now, if any (the one
    /// lasting longest).
    fn active_grant(
        &self,
        identity: &str,
        connection: &str,
    ) -> Result<Option<GrantRecord>, StoreError> {
        self.with_connection(|db| {
            db.query_row(
                &format!(
                    "SELECT {GRANT_COLUMNS} FROM grants WHERE identity = ?1 AND connection = ?2 \
                     AND revoked_at IS NULL AND expires_at > ?3 ORDER BY expires_at DESC LIMIT 1"
                ),
                params![identity, connection, self.clock.now_unix()],
                grant_from_row,
            )
            .optional()
            .map_err(StoreError::from)
        })
    }

    /// Grants, newest first (`active_only`: not revoked, not expired).
    fn grants(&self, active_only: bool) -> Result<Vec<GrantRecord>, StoreError> {
        self.with_connection(|db| {
            let mut statement = db.prepare(&format!(
                "SELECT {GRANT_COLUMNS} FROM grants WHERE ?1 = 0 OR (revoked_at IS NULL AND expires_at > ?2) \
                 ORDER BY created_at DESC, id LIMIT 1000"
            ))?;
            let rows = statement.query_map(params![i64::from(active_only), self.clock.now_unix()], grant_from_row)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::from)
        })
    }

    /// Revokes a grant; returns it.
    fn revoke_grant(&self, id: &str) -> Result<GrantRecord, StoreError> {
        self.with_connection(|db| {
            db.execute(
                "UPDATE grants SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, self.clock.now_unix()],
            )?;
            db.query_row(
                &format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = ?1"),
                [id],
                grant_from_row,
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound {
                what: "grant",
                name: id.to_string(),
            })
        })
    }
}

impl MfaStore for Store {
    /// Stores (replacing) an identity's encrypted MFA secret.
    fn set_mfa_secret(
        &self,
        identity: &str,
        nonce: &[u8],
        ciphertext: &[u8],
    ) -> Result<(), StoreError> {
        self.with_connection(|db| {
            db.execute(
                "INSERT INTO mfa_secrets (identity, nonce, ciphertext, last_step, created_at) VALUES (?1, ?2, ?3, NULL, ?4) \
                 ON CONFLICT(identity) DO UPDATE SET nonce = ?2, ciphertext = ?3, last_step = NULL, created_at = ?4",
                params![identity, nonce, ciphertext, self.clock.now_unix()],
            )?;
            Ok(())
        })
    }

    /// An identity's encrypted MFA secret and the last time step used.
    fn mfa_secret(&self, identity: &str) -> Result<Option<MfaSecretRecord>, StoreError> {
        self.with_connection(|db| {
            db.query_row(
                "SELECT nonce, ciphertext, last_step FROM mfa_secrets WHERE identity = ?1",
                [identity],
                |row| {
                    Ok(MfaSecretRecord {
                        nonce: row.get(0)?,
                        ciphertext: row.get(1)?,
                        last_step: row.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(StoreError::from)
        })
    }

    /// Records a used time step; false when it is not newer than the last
    /// one (a replayed code).
    fn use_mfa_step(&self, identity: &str, step: i64) -> Result<bool, StoreError> {
        self.with_connection(|db| {
            let changed = db.execute(
                "UPDATE mfa_secrets SET last_step = ?2 WHERE identity = ?1 AND (last_step IS NULL OR last_step < ?2)",
                params![identity, step],
            )?;
            Ok(changed == 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{clocked_store, CLOCK_START_UNIX};
    use super::*;
    use crate::now_unix;

    fn new_review(id: &str, min_approvals: i64, expires_at: i64) -> NewReview {
        NewReview {
            id: id.into(),
            identity: "agent-7".into(),
            connection: "prod-pg".into(),
            statement: "delete from t where id = 1".into(),
            fingerprint: "f1".into(),
            classification: serde_json::json!({"operations": ["delete"]}),
            rule: "agent-writes".into(),
            policy_version: 3,
            approvers: vec!["dba".into()],
            min_approvals,
            require_mfa: false,
            session_id: None,
            expires_at,
            kind: "command".into(),
            duration_seconds: None,
        }
    }

    /// Beyond any list limit: 10,500 newer pending reviews do not hide the
    /// oldest one, an expired one does not count, and the default (which
    /// reads every pending review) agrees with the aggregate.
    #[test]
    fn the_oldest_pending_review_is_found_among_more_than_ten_thousand() {
        let (_dir, store, clock) = clocked_store();
        let start = CLOCK_START_UNIX;
        store
            .create_or_find_review(&new_review("stale", 1, start + 10))
            .unwrap();
        clock.advance_secs(5);
        store
            .create_or_find_review(&NewReview {
                fingerprint: "oldest".into(),
                ..new_review("oldest", 1, start + 7200)
            })
            .unwrap();
        const NEWER: i64 = 10_500;
        let columns: Vec<String> = REVIEW_COLUMNS
            .split(',')
            .map(str::trim)
            .map(|column| match column {
                "id" => "'bulk-' || i".to_string(),
                "fingerprint" => "'fp-' || i".to_string(),
                "created_at" => "created_at + i".to_string(),
                other => other.to_string(),
            })
            .collect();
        store
            .with_connection(|db| {
                db.execute(
                    &format!(
                        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
                         INSERT INTO reviews ({REVIEW_COLUMNS}) SELECT {} FROM reviews, n WHERE id = 'oldest'",
                        columns.join(", ")
                    ),
                    [NEWER],
                )?;
                Ok(())
            })
            .unwrap();
        clock.advance_secs(10);
        let pending = store.pending_reviews().unwrap();
        assert_eq!(
            pending,
            PendingReviews {
                count: u64::try_from(NEWER + 1).unwrap(),
                oldest_created_at: Some(start + 5),
            }
        );
        assert_eq!(
            store.reviews(Some("pending"), 10_000).unwrap().len(),
            10_000
        );
        struct Listing<'a>(&'a Store);
        impl ReviewStore for Listing<'_> {
            fn create_or_find_review(&self, r: &NewReview) -> Result<ReviewRecord, StoreError> {
                self.0.create_or_find_review(r)
            }
            fn consume_approval(
                &self,
                i: &str,
                c: &str,
                f: &str,
            ) -> Result<Option<String>, StoreError> {
                self.0.consume_approval(i, c, f)
            }
            fn review(&self, id: &str) -> Result<Option<ReviewRecord>, StoreError> {
                self.0.review(id)
            }
            fn reviews_visible_to(
                &self,
                status: Option<&str>,
                limit: i64,
                viewer: Option<(&str, &[String])>,
            ) -> Result<Vec<ReviewRecord>, StoreError> {
                self.0.reviews_visible_to(status, limit, viewer)
            }
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
                self.0
                    .decide_review(id, approver, approve, comment, mfa, validity_seconds, uses)
            }
        }
        assert_eq!(Listing(&store).pending_reviews().unwrap(), pending);
    }

    #[test]
    fn reviews_are_listed_only_to_their_requester_and_approvers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let far = now_unix() + 3600;
        store
            .create_or_find_review(&new_review("r-1", 1, far))
            .unwrap();
        let mut other = new_review("r-2", 1, far);
        other.identity = "agent-8".into();
        other.fingerprint = "f2".into();
        other.approvers = vec!["security".into(), "dba".into()];
        store.create_or_find_review(&other).unwrap();
        let ids = |viewer: Option<(&str, &[String])>| -> Vec<String> {
            let mut ids: Vec<_> = store
                .reviews_visible_to(None, 100, viewer)
                .unwrap()
                .into_iter()
                .map(|review| review.id)
                .collect();
            ids.sort();
            ids
        };
        assert_eq!(ids(None), ["r-1", "r-2"]);
        assert_eq!(ids(Some(("agent-7", &[]))), ["r-1"]);
        assert_eq!(ids(Some(("agent-8", &["agents".into()]))), ["r-2"]);
        assert_eq!(ids(Some(("alice", &["dba".into()]))), ["r-1", "r-2"]);
        assert_eq!(ids(Some(("sam", &["security".into()]))), ["r-2"]);
        assert!(ids(Some(("eve", &["dbas".into(), "'dba'".into()]))).is_empty());
    }

    #[test]
    fn a_review_needs_distinct_approvals_and_runs_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let far = now_unix() + 3600;
        let first = store
            .create_or_find_review(&new_review("r-1", 2, far))
            .unwrap();
        let again = store
            .create_or_find_review(&new_review("r-2", 2, far))
            .unwrap();
        assert_eq!(
            again.id, first.id,
            "a pending review for the same statement is reused"
        );
        assert!(store
            .consume_approval("agent-7", "prod-pg", "f1")
            .unwrap()
            .is_none());

        let one = store
            .decide_review("r-1", "alice", true, None, false, 600, 1)
            .unwrap();
        assert_eq!((one.status.as_str(), one.approvals), ("pending", 1));
        assert!(matches!(
            store.decide_review("r-1", "alice", true, None, false, 600, 1),
            Err(StoreError::Conflict(_))
        ));
        let two = store
            .decide_review("r-1", "bob", true, Some("ok"), false, 600, 1)
            .unwrap();
        assert_eq!(two.status, "approved");
        assert_eq!(
            store
                .consume_approval("agent-7", "prod-pg", "f1")
                .unwrap()
                .as_deref(),
            Some("r-1")
        );
        assert!(
            store
                .consume_approval("agent-7", "prod-pg", "f1")
                .unwrap()
                .is_none(),
            "once by default"
        );
        let review = store.review("r-1").unwrap().unwrap();
        assert_eq!(review.status, "used");
        assert_eq!(review.decisions.len(), 2);
        assert!(matches!(
            store.decide_review("r-1", "carol", false, None, false, 600, 1),
            Err(StoreError::Conflict(_))
        ));
    }

    #[test]
    fn a_denial_wins_and_pending_reviews_expire() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .create_or_find_review(&new_review("r-1", 2, now_unix() + 3600))
            .unwrap();
        store
            .decide_review("r-1", "alice", true, None, false, 600, 1)
            .unwrap();
        let denied = store
            .decide_review("r-1", "bob", false, Some("too risky"), false, 600, 1)
            .unwrap();
        assert_eq!(denied.status, "denied");
        assert_eq!(
            store.review("r-1").unwrap().unwrap().reason.as_deref(),
            Some("too risky")
        );

        let mut stale = new_review("r-9", 1, now_unix() - 1);
        stale.fingerprint = "f9".into();
        store.create_or_find_review(&stale).unwrap();
        assert_eq!(store.review("r-9").unwrap().unwrap().status, "expired");
        assert!(store
            .decide_review("r-9", "alice", true, None, false, 600, 1)
            .is_err());
    }

    #[test]
    fn mfa_steps_cannot_be_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.set_mfa_secret("alice", b"n", b"c").unwrap();
        assert!(store.use_mfa_step("alice", 100).unwrap());
        assert!(!store.use_mfa_step("alice", 100).unwrap());
        assert!(!store.use_mfa_step("alice", 99).unwrap());
        assert!(store.use_mfa_step("alice", 101).unwrap());
    }

    /// Creation, decision, validity and expiry times come from the store's
    /// clock, and so does the "now" that expires a pending review, ends an
    /// approval's validity and a grant: the clock stands in 2100, where the
    /// system clock would call none of them expired.
    #[test]
    fn review_grant_and_mfa_times_follow_the_store_clock() {
        let (dir, store, clock) = clocked_store();
        let start = CLOCK_START_UNIX;
        let review = store
            .create_or_find_review(&new_review("r-1", 1, start + 100))
            .unwrap();
        assert_eq!(
            (review.created_at, review.status.as_str()),
            (start, "pending")
        );
        let mut late = new_review("r-2", 1, start + 100);
        late.fingerprint = "f2".into();
        store.create_or_find_review(&late).unwrap();
        clock.advance_secs(10);
        let outcome = store
            .decide_review("r-1", "alice", true, None, false, 30, 1)
            .unwrap();
        assert_eq!(outcome.status, "approved");
        let decided = store.review("r-1").unwrap().unwrap();
        assert_eq!(
            (
                decided.decided_at,
                decided.valid_until,
                decided.decisions[0].created_at
            ),
            (Some(start + 10), Some(start + 40), start + 10)
        );
        // Past the approval's validity on the store's clock: not usable.
        clock.advance_secs(31);
        assert!(store
            .consume_approval("agent-7", "prod-pg", "f1")
            .unwrap()
            .is_none());
        // Past the pending review's expiry: expired, and no longer decidable.
        clock.advance_secs(60);
        assert_eq!(store.review("r-2").unwrap().unwrap().status, "expired");
        assert!(matches!(
            store.decide_review("r-2", "alice", true, None, false, 30, 1),
            Err(StoreError::Conflict(_))
        ));

        let now = start + 101;
        let grant = store.create_grant("agent-7", "prod-pg", "jit", 60).unwrap();
        assert_eq!((grant.created_at, grant.expires_at), (now, now + 60));
        assert!(store.active_grant("agent-7", "prod-pg").unwrap().is_some());
        clock.advance_secs(60);
        assert!(store.active_grant("agent-7", "prod-pg").unwrap().is_none());
        assert!(store.grants(true).unwrap().is_empty());
        assert_eq!(store.grants(false).unwrap().len(), 1);
        let revoked = store.revoke_grant(&grant.id).unwrap();
        assert_eq!(revoked.revoked_at, Some(now + 60));

        store.set_mfa_secret("alice", b"n", b"c").unwrap();
        let enrolled: i64 = super::super::test_support::raw(&dir)
            .query_row(
                "SELECT created_at FROM mfa_secrets WHERE identity = 'alice'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(enrolled, now + 60);
    }
}
