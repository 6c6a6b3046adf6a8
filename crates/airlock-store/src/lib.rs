//! airlock's persistence layer.
//!
//! This crate owns everything that outlives a process: what a store backend
//! must do, one trait per domain ([`backend`]: credentials, tokens,
//! connections, policy versions, the event log, the journal index, reviews,
//! grants, MFA secrets), the embedded SQLite backend that does it and its
//! migrations ([`Store`]), the shared PostgreSQL backend that does the same
//! for several gateway replicas ([`PgStore`]), the clock every stored time comes from
//! ([`Clock`]), the encrypted credential vault ([`vault`]), the write-ahead
//! journal of audit events ([`journal`]), folding each command's result
//! into its command's row ([`fold_results`]) and the records all of them
//! exchange.
//!
//! Architecture invariant: no plaintext secret is ever written here. Upstream
//! passwords are AES-256-GCM ciphertext bound to their credential name;
//! tokens are hashes. The crate knows nothing about protocols or policy.
//! No store method reads the system clock: times come from the store's
//! [`Clock`]. Every file it creates is owner-only (`0600`, folders `0700`:
//! [`private`]).

pub mod backend;
pub mod changes;
mod clock;
mod error;
mod events;
mod fold;
pub mod journal;
mod postgres;
pub mod private;
mod records;
mod sqlite;
pub mod vault;

pub use backend::{
    ConnectionStore, CredentialStore, EventStore, GrantStore, JournalIndex, LockoutStore, MfaStore,
    PinCheck, PolicyStore, ReviewStore, StoreBackend, TokenStore, ToolPinStore,
};
pub use changes::{ChangeFeed, StoreChange};
pub use clock::{now_micros, now_unix, Clock, ManualClock, SystemClock};
pub use error::StoreError;
pub use events::{
    event_hash, BrokenLink, ChainLink, EventData, EventFilter, EventRecord, NewEvent, PruneReport,
    VerifyReport, GENESIS_HASH,
};
pub use fold::{fold_results, COMMAND, COMMAND_RESULT};
pub use postgres::{PgSslMode, PgStore, PgStoreUrl, OPERATION_TIMEOUT};
pub use records::credential_kind;
pub use records::{
    hash_token, ConnectionRecord, CredentialRecord, DecisionOutcome, GrantRecord, LoginFailure,
    LoginTally, MfaSecretRecord, NewReview, PendingReviews, PolicyVersionRecord, ReviewDecision,
    ReviewRecord, StoredLockout, TokenRecord, ToolPinRecord,
};
pub use sqlite::Store;

/// The backend traits, so their methods can be called on a [`Store`] (or
/// any backend): `use airlock_store::prelude::*;`.
pub mod prelude {
    pub use crate::backend::{
        ConnectionStore, CredentialStore, EventStore, GrantStore, JournalIndex, LockoutStore,
        MfaStore, PolicyStore, ReviewStore, StoreBackend, TokenStore, ToolPinStore,
    };
}
