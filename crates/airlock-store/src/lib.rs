//! airlock's persistence layer.
//!
//! This crate owns everything that outlives a process: the embedded SQLite
//! store and its migrations ([`Store`]), the encrypted credential vault
//! ([`vault`]), token and admin-token records (stored as SHA-256 hashes,
//! never in clear) and the append-only, hash-chained event log.
//!
//! Architecture invariant: no plaintext secret is ever written here. Upstream
//! passwords are AES-256-GCM ciphertext bound to their credential name;
//! tokens are hashes. The crate knows nothing about protocols or policy.
//! Every file it creates is owner-only (`0600`, folders `0700`:
//! [`private`]).

mod error;
mod events;
pub mod journal;
mod migrations;
pub mod private;
mod records;
mod reviews;
mod store;
pub mod vault;

pub use error::StoreError;
pub use events::{
    event_hash, BrokenLink, EventData, EventRecord, NewEvent, PruneReport, VerifyReport,
    GENESIS_HASH,
};
pub use records::{ConnectionRecord, CredentialRecord, PolicyVersionRecord, TokenRecord};
pub use reviews::{
    DecisionOutcome, GrantRecord, MfaSecretRecord, NewReview, ReviewDecision, ReviewRecord,
};
pub use store::{hash_token, now_micros, now_unix, EventFilter, Store};
