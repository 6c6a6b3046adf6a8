//! Sans-IO PostgreSQL v3 protocol codec.
//!
//! This crate turns bytes into typed messages and typed messages into bytes.
//! It owns the wire format only: no sockets, no clocks, no async runtime, no
//! policy. The gateway relays most traffic as opaque frames and decodes only
//! what a decision needs (startup, authentication, `Query`, `Parse`, `Bind`,
//! `Execute`, errors, completions).
//!
//! Architecture invariant: every decoder is bounded (message size, field
//! counts) and returns an error instead of panicking on hostile bytes; the
//! fuzz target `pg_codec` and the property tests exercise this.

#![deny(clippy::indexing_slicing)]

pub mod array;
pub mod backend;
mod buf;
pub mod bytea;
pub mod copy;
pub mod encoding;
mod error;
pub mod frame;
pub mod frontend;
pub mod notification;
pub mod numeric;
pub mod record;
pub mod startup;

pub use error::{ErrorFields, PgCodecError};
pub use frame::{Frame, FrameDecoder, DEFAULT_MAX_MESSAGE_BYTES};
