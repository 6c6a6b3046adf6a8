//! Sans-IO MySQL/MariaDB client/server protocol codec.
//!
//! This crate turns bytes into typed packets and typed packets into bytes,
//! in both roles the gateway plays: a server to its clients and a client
//! to its upstreams. It owns the wire format and the protocol's state
//! machines (upstream login, response tracking) only: no sockets, no
//! clocks, no async runtime, no entropy source, no policy.
//!
//! Architecture invariant: every decoder is bounded (packet size, field
//! counts) and returns an error instead of panicking on hostile bytes; the
//! fuzz target `mysql_codec` and the property tests exercise this.

#![deny(clippy::indexing_slicing)]

pub mod auth;
mod buf;
pub mod bulk;
pub mod capabilities;
pub mod column;
pub mod command;
mod error;
pub mod framing;
pub mod generic;
pub mod handshake;
pub mod listener;
pub mod login;
pub mod response;
pub mod row;
pub mod rsa;
pub mod translate;

pub use capabilities::{Capabilities, ServerStatus, CHARSET_BINARY, CHARSET_UTF8MB4_GENERAL_CI};
pub use error::MySqlCodecError;
pub use framing::{Packet, PacketCodec, DEFAULT_MAX_PACKET_BYTES};
pub use generic::{EofPacket, ErrPacket, OkPacket};
