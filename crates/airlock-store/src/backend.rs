//! What a store backend must do, one trait per domain: credentials, tokens,
//! connections, policy versions, the event log, the journal index, reviews,
//! access grants, MFA secrets and pinned MCP tool definitions. The embedded SQLite [`Store`] implements
//! every one; a shared backend (PostgreSQL, so several gateways on several
//! machines share state) implements the same traits.
//!
//! Each trait states the guarantees callers rely on, above all the ones that
//! hold across processes sharing the backend: a backend that cannot keep
//! them is not a backend. Times come from the backend's
//! [`Clock`](crate::Clock), never from the system inside a method.
//!
//! The traits are object safe, so the gateway may hold an
//! `Arc<dyn StoreBackend>`. Bring them into scope with
//! `use airlock_store::prelude::*;`.
//!
//! [`Store`]: crate::Store
//! [`PgStore`]: crate::PgStore

use crate::events::{EventFilter, EventRecord, NewEvent, PruneReport, VerifyReport};
use crate::records::{
    ConnectionRecord, CredentialRecord, DecisionOutcome, GrantRecord, LoginFailure, LoginTally,
    MfaSecretRecord, NewReview, PendingReviews, PolicyVersionRecord, ReviewRecord, StoredLockout,
    TokenRecord, ToolPinRecord,
};
use crate::StoreError;

/// The credential vault's rows. Secrets arrive and leave encrypted (nonce
/// and AES-256-GCM ciphertext, see [`crate::vault`]); a backend never sees
/// a password.
pub trait CredentialStore {
    /// Creates or replaces a credential; returns its version (1, or the
    /// previous one plus 1). Sets `created_at` on creation, `rotated_at` on
    /// replacement.
    fn set_credential(
        &self,
        name: &str,
        username: &str,
        kind: &str,
        nonce: &[u8],
        ciphertext: &[u8],
    ) -> Result<i64, StoreError>;

    /// Replaces the secret of an existing credential ([`StoreError::NotFound`]
    /// otherwise); returns the new version.
    fn rotate_credential(
        &self,
        name: &str,
        nonce: &[u8],
        ciphertext: &[u8],
    ) -> Result<i64, StoreError>;

    /// One credential (still encrypted).
    fn credential(&self, name: &str) -> Result<Option<CredentialRecord>, StoreError>;

    /// Every credential, by name (still encrypted; callers show metadata).
    fn credentials(&self) -> Result<Vec<CredentialRecord>, StoreError>;

    /// Deletes a credential, refused with [`StoreError::Conflict`] naming
    /// the run-time connections that use it. The check and the delete are
    /// one atomic step: no connection can start using it in between.
    fn delete_credential(&self, name: &str) -> Result<(), StoreError>;
}

/// Issued tokens and the admin token, as SHA-256 hashes only
/// ([`crate::hash_token`]).
pub trait TokenStore {
    /// True once an admin token exists.
    fn has_admin_token(&self) -> Result<bool, StoreError>;

    /// Stores the hash of an admin token.
    fn insert_admin_token(&self, id: &str, hash: &str) -> Result<(), StoreError>;

    /// Replaces every admin token with one, atomically (rotation): the old
    /// ones stop working at once for every process sharing the backend.
    fn replace_admin_tokens(&self, id: &str, hash: &str) -> Result<(), StoreError>;

    /// True when `hash` is the hash of a stored admin token.
    fn admin_token_valid(&self, hash: &str) -> Result<bool, StoreError>;

    /// Stores an issued token (its hash only; times as given).
    fn insert_token(&self, record: &TokenRecord) -> Result<(), StoreError>;

    /// The token whose value hashes to `hash`.
    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError>;

    /// The token with id `id`.
    fn token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError>;

    /// Every token, newest first.
    fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;

    /// Marks a token revoked now; false when it already was,
    /// [`StoreError::NotFound`] when there is no such token. A shared
    /// backend tells the other replicas
    /// ([`StoreChange::TokenRevoked`](crate::StoreChange)).
    fn revoke_token(&self, id: &str) -> Result<bool, StoreError>;

    /// The ids among `ids` whose token is revoked: the live sessions a
    /// replica must close (one query on a shared backend). An id with no
    /// stored token (an OIDC session's) is not in the answer.
    fn revoked_among(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        let mut revoked = Vec::new();
        for id in ids {
            if self
                .token(id)?
                .is_some_and(|record| record.revoked_at.is_some())
            {
                revoked.push(id.clone());
            }
        }
        Ok(revoked)
    }
}

/// Connections added at run time (`airlock connection add`).
pub trait ConnectionStore {
    /// Adds one; [`StoreError::AlreadyExists`] when the name is taken.
    fn add_connection(&self, record: &ConnectionRecord) -> Result<(), StoreError>;

    /// Removes one; [`StoreError::NotFound`] when there is none.
    fn remove_connection(&self, name: &str) -> Result<(), StoreError>;

    /// Every run-time connection, by name.
    fn connections(&self) -> Result<Vec<ConnectionRecord>, StoreError>;
}

/// Versioned policies: the newest version is the live one, for every
/// gateway sharing the backend.
pub trait PolicyStore {
    /// Stores `text` as the next version (numbers rise by one, assigned
    /// atomically even when gateways apply at once) and returns it.
    fn insert_policy_version(
        &self,
        text: &str,
        source: &str,
        comment: Option<&str>,
    ) -> Result<i64, StoreError>;

    /// The newest version, with its text.
    fn live_policy(&self) -> Result<Option<PolicyVersionRecord>, StoreError>;

    /// The newest version's number: cheap, polled by replicas.
    fn live_policy_version(&self) -> Result<Option<i64>, StoreError>;

    /// One version, with its text.
    fn policy_version(&self, version: i64) -> Result<Option<PolicyVersionRecord>, StoreError>;

    /// Every version, oldest first, without texts.
    fn policy_versions(&self) -> Result<Vec<PolicyVersionRecord>, StoreError>;
}

/// The append-only, hash-chained event log.
///
/// Every event commits to the previous event's hash
/// ([`crate::event_hash`]); ids rise by one along the chain and are never
/// reused, not even after pruning. Appends from every process sharing the
/// backend extend one chain (never a fork): reading the head and writing
/// the batch is one exclusive step.
pub trait EventStore {
    /// Appends events in one atomic, durable write, stamped with the
    /// clock's time; returns their ids. Nothing is appended when any write
    /// fails.
    fn append_events(&self, events: &[NewEvent]) -> Result<Vec<i64>, StoreError>;

    /// Appends one event; returns its id.
    fn append_event(&self, event: NewEvent) -> Result<i64, StoreError> {
        let ids = self.append_events(std::slice::from_ref(&event))?;
        ids.first()
            .copied()
            .ok_or_else(|| StoreError::Corrupt("no event id".into()))
    }

    /// Events with `id > after`, oldest first, at most `limit`.
    fn events_after(&self, after: i64, limit: i64) -> Result<Vec<EventRecord>, StoreError> {
        self.events(&EventFilter {
            after_id: after,
            limit,
            ..EventFilter::default()
        })
    }

    /// Events matching `filter`, oldest first (in id order), from one
    /// consistent snapshot.
    fn events(&self, filter: &EventFilter) -> Result<Vec<EventRecord>, StoreError>;

    /// Walks the chain from the latest pruning checkpoint (or the genesis)
    /// and reports the first broken link.
    fn verify_chain(&self) -> Result<VerifyReport, StoreError>;

    /// Deletes the events older than `before_micros`, recording the hash of
    /// the newest one deleted as a checkpoint (stamped with the clock's
    /// time) that verification starts from.
    fn prune_events(&self, before_micros: i64) -> Result<PruneReport, StoreError>;
}

/// Where the event log stands with each process's write-ahead journal
/// ([`crate::journal`]): the index thread copies journaled events in, and
/// recovery after a crash resumes from the recorded offset.
pub trait JournalIndex {
    /// Appends events taken from `journal`, each with the time it was
    /// journaled, and records in the same atomic write that the journal is
    /// copied through byte `through`, so replay after a crash neither loses
    /// nor repeats an event. The write need not be durable at once (the
    /// journal still holds the events) until [`JournalIndex::journal_barrier`].
    fn append_journaled(
        &self,
        events: &[(i64, NewEvent)],
        journal: &str,
        through: u64,
    ) -> Result<Vec<i64>, StoreError>;

    /// Makes every event copied from `journal` durable, so the journal may
    /// be deleted.
    fn journal_barrier(&self, journal: &str) -> Result<(), StoreError>;

    /// How far `journal` has been copied, in bytes (0 when unknown).
    fn journal_progress(&self, journal: &str) -> Result<u64, StoreError>;

    /// Forgets a journal that was copied in full and deleted.
    fn forget_journal(&self, journal: &str) -> Result<(), StoreError>;
}

/// Commands and access requests held for people. State lives in the
/// backend, so a decision through any gateway releases a command waiting
/// on another. A pending review past its `expires_at` (by the clock) reads
/// as `expired` and can no longer be decided.
pub trait ReviewStore {
    /// Creates a pending review, or returns the pending one that already
    /// holds the same statement (fingerprint) for the same identity and
    /// connection.
    fn create_or_find_review(&self, review: &NewReview) -> Result<ReviewRecord, StoreError>;

    /// Uses one run of an approved, still valid review of this statement;
    /// returns its id. Atomic: two gateways never use the same run.
    fn consume_approval(
        &self,
        identity: &str,
        connection: &str,
        fingerprint: &str,
    ) -> Result<Option<String>, StoreError>;

    /// One review with its decisions.
    fn review(&self, id: &str) -> Result<Option<ReviewRecord>, StoreError>;

    /// Reviews, newest first; `status` filters when given.
    fn reviews(&self, status: Option<&str>, limit: i64) -> Result<Vec<ReviewRecord>, StoreError> {
        self.reviews_visible_to(status, limit, None)
    }

    /// How many reviews are pending (past `expires_at` they no longer
    /// are) and when the oldest was created, however many there are. The
    /// default reads every pending review; a backend answers it with one
    /// aggregate query.
    fn pending_reviews(&self) -> Result<PendingReviews, StoreError> {
        let pending = self.reviews(Some("pending"), i64::MAX)?;
        Ok(PendingReviews {
            count: u64::try_from(pending.len()).unwrap_or(u64::MAX),
            oldest_created_at: pending.iter().map(|review| review.created_at).min(),
        })
    }

    /// Like [`ReviewStore::reviews`], limited to what `viewer` (an identity
    /// name and its groups) may see when given: the reviews it requested and
    /// those with an approver group among its groups.
    fn reviews_visible_to(
        &self,
        status: Option<&str>,
        limit: i64,
        viewer: Option<(&str, &[String])>,
    ) -> Result<Vec<ReviewRecord>, StoreError>;

    /// Records one approver's decision and moves the review on, in one
    /// atomic step: any denial denies it; `min_approvals` distinct
    /// approvals approve it for `validity_seconds` and `uses` runs (an
    /// access request creates its grant instead). The caller has checked
    /// that the approver may decide.
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
    ) -> Result<DecisionOutcome, StoreError>;
}

/// Time-bound grants of access to `jit` connections.
pub trait GrantStore {
    /// Creates a grant from now for `seconds` (auto-approved access).
    fn create_grant(
        &self,
        identity: &str,
        connection: &str,
        rule: &str,
        seconds: i64,
    ) -> Result<GrantRecord, StoreError>;

    /// The grant admitting `identity` to `connection` now, if any (the one
    /// lasting longest).
    fn active_grant(
        &self,
        identity: &str,
        connection: &str,
    ) -> Result<Option<GrantRecord>, StoreError>;

    /// Grants, newest first (`active_only`: not revoked, not expired now).
    fn grants(&self, active_only: bool) -> Result<Vec<GrantRecord>, StoreError>;

    /// Revokes a grant now; returns it.
    fn revoke_grant(&self, id: &str) -> Result<GrantRecord, StoreError>;
}

/// Approvers' TOTP secrets (encrypted like credentials) and the last time
/// step each used.
pub trait MfaStore {
    /// Stores (replacing) an identity's encrypted secret.
    fn set_mfa_secret(
        &self,
        identity: &str,
        nonce: &[u8],
        ciphertext: &[u8],
    ) -> Result<(), StoreError>;

    /// An identity's encrypted secret and the last time step used.
    fn mfa_secret(&self, identity: &str) -> Result<Option<MfaSecretRecord>, StoreError>;

    /// Records a used time step, atomically; false when it is not newer
    /// than the last one (a replayed code).
    fn use_mfa_step(&self, identity: &str, step: i64) -> Result<bool, StoreError>;
}

/// What a tool's definition is to [`ToolPinStore::check_tool`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinCheck {
    /// First seen: pinned now.
    Pinned,
    /// The same as the pinned (approved) definition.
    Unchanged,
    /// Differs from the pinned definition: held as the pending candidate
    /// until an admin approves it. `first` is true the first time this
    /// candidate was seen (the caller records the change once).
    Changed { first: bool },
}

/// MCP tool definitions pinned per connection (tool pinning against rug
/// pulls): the first definition seen is pinned; a later different one is
/// pending until approved. Gateways sharing a backend see one pin.
pub trait ToolPinStore {
    /// Pins `definition` (canonical JSON) with `fingerprint` (its SHA-256,
    /// hex) when the tool has no pin; otherwise compares. Atomic across
    /// gateways.
    fn check_tool(
        &self,
        connection: &str,
        tool: &str,
        fingerprint: &str,
        definition: &str,
    ) -> Result<PinCheck, StoreError>;

    /// Every pin of a connection, by tool name.
    fn tool_pins(&self, connection: &str) -> Result<Vec<ToolPinRecord>, StoreError>;

    /// Makes the pending definition with `fingerprint` the pinned one.
    /// [`StoreError::NotFound`] when no pending definition has it.
    fn approve_tool(
        &self,
        connection: &str,
        tool: &str,
        fingerprint: &str,
        approved_by: &str,
    ) -> Result<ToolPinRecord, StoreError>;
}

/// Failed logins and the lockouts they led to, counted once for every
/// process sharing the backend (credential spraying across replicas adds
/// up). A failure and the lockout it starts commit together, serialised
/// per (realm, source), so two replicas cannot both miss the threshold.
pub trait LockoutStore {
    /// Counts one failure and locks out when a threshold is reached (see
    /// [`LoginFailure`]); the rows that led to a lockout are dropped.
    fn record_login_failure(&self, failure: &LoginFailure) -> Result<LoginTally, StoreError>;

    /// The active lockout of `source` as a whole, or else of `identity`
    /// from `source`, in `realm`.
    fn login_lockout(
        &self,
        realm: &str,
        source: &str,
        identity: &str,
    ) -> Result<Option<StoredLockout>, StoreError>;

    /// Ends lockouts and forgets failures, with the filters of the core's
    /// `SprayGuard::unlock` (source only: the source and every identity
    /// from it; identity only: that identity from every source, not
    /// whole-source locks; both: that pair; neither: all). Returns how many
    /// active lockouts ended.
    fn unlock_logins(
        &self,
        source: Option<&str>,
        identity: Option<&str>,
    ) -> Result<usize, StoreError>;

    /// Lockouts active now, every realm.
    fn active_login_lockouts(&self) -> Result<usize, StoreError>;
}

/// A whole backend: every domain, shareable between threads.
pub trait StoreBackend:
    CredentialStore
    + TokenStore
    + ConnectionStore
    + PolicyStore
    + EventStore
    + JournalIndex
    + ReviewStore
    + GrantStore
    + MfaStore
    + ToolPinStore
    + LockoutStore
    + Send
    + Sync
{
    /// Ok when the backend answers a trivial query (readiness).
    fn ping(&self) -> Result<(), StoreError>;

    /// Keys the event chain with HMAC-SHA-256 under `key`. Set it before the
    /// first append; every process sharing the backend must use the same key.
    fn set_chain_key(&self, key: [u8; 32]) -> Result<(), StoreError>;

    /// Records `check` (a one-way digest of the master key) when the
    /// backend has none yet, atomically, and tells whether it is the one
    /// recorded: replicas sharing a backend must share the master key (it
    /// decrypts the shared credentials and keys the shared chain).
    fn claim_key_check(&self, check: &str) -> Result<bool, StoreError>;

    /// Hints of what other processes wrote, when the backend has them (the
    /// shared PostgreSQL store's `LISTEN`); `None` means poll only. A hint
    /// is never the state: re-read it (see [`crate::changes`]).
    fn change_feed(&self) -> Option<std::sync::Arc<crate::ChangeFeed>> {
        None
    }
}
