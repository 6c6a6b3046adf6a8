//! airlock's protocol-neutral core: what every protocol gateway shares.
//!
//! A protocol crate (PostgreSQL today: `airlock-pg-gateway`) owns its
//! listener, its codec glue, its upstream login and the one module that
//! turns this crate's refusals into the protocol's own errors. Everything
//! between is here: client authentication and credential-spraying
//! protection ([`auth`], and [`login`], a client's login with its
//! records), admission of a session to a connection and the
//! one value an upstream is opened from ([`admission`]), JIT grants
//! ([`access`]), the command gate that asks the one decision point
//! ([`gate`]), audit-before-forward recording ([`recorder`]), reviews
//! ([`reviews`]), policy versions ([`policies`]), live sessions and kill
//! switches ([`registry`]), TLS material ([`tls`]), the configuration model
//! ([`config`]) and the admin operations the API and CLI use ([`admin`]).
//!
//! Architecture invariant: protocol code never decides whether a command
//! runs; it asks the [`gate`]. A decision is protocol-neutral: a refusal is
//! a [`gate::Refusal`], never a protocol error code.

pub mod access;
pub mod admin;
pub mod admin_mcp;
pub mod admission;
pub mod audit;
pub mod auth;
pub mod cert_expiry;
pub mod command_record;
pub mod config;
pub mod details;
pub mod duration;
pub mod error;
pub mod events;
pub mod gate;
pub mod http_config;
pub mod inject;
pub mod live_policy;
pub mod login;
pub mod mcp_config;
pub mod notifications;
pub mod observe;
pub mod policies;
pub mod recorder;
pub mod registry;
pub mod reviews;
pub mod state;
pub mod tls;
pub mod wakeups;

pub use state::GatewayState;
