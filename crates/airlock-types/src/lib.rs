//! Protocol-neutral core types shared by every airlock crate.
//!
//! This crate owns the vocabulary of the one path: who is asking
//! ([`Identity`]), where to ([`ConnectionInfo`]), what they asked for
//! ([`command`]), and how secrets are carried ([`Secret`]). It must never do
//! I/O, and it depends on nothing but `serde`.

pub mod command;
mod identity;
mod secret;

pub use command::{Access, Command, Operation, StatementClass};
pub use identity::{AuthMethod, ConnectionInfo, Identity, IdentityKind, Protocol};
pub use secret::Secret;
