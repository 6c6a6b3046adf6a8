//! airlock's network side.
//!
//! This crate owns all network I/O of the gateway: the PostgreSQL listener
//! and its sessions ([`session`]), TLS ([`tls`]), client authentication and
//! credential-spraying protection ([`auth`]), upstream connections with
//! credential injection ([`upstream`]), the byte relay ([`relay`]) and the
//! seam where every command meets the decision point ([`gate`]). It also
//! holds the configuration model ([`config`]) and the admin operations the
//! admin API exposes ([`admin`]).
//!
//! Architecture invariant: protocol code never decides whether a command
//! runs; it asks the [`gate::CommandGate`]. And no upstream secret leaves
//! [`upstream`] except as protocol bytes to that upstream.

pub mod access;
pub mod admin;
pub mod audit;
pub mod auth;
pub mod config;
pub mod copy_format;
pub mod duration;
pub mod gate;
mod io;
pub mod masking;
pub mod names;
pub mod notifications;
pub mod policies;
pub mod recorder;
pub mod registry;
pub mod relay;
pub mod reviews;
pub mod server;
pub mod session;
pub mod startup_params;
pub mod state;
pub mod tls;
pub mod tracker;
pub mod upstream;

pub use state::GatewayState;
