//! airlock's PostgreSQL gateway: the PostgreSQL v3 protocol on the core.
//!
//! This crate owns what is PostgreSQL about a session: the listener and
//! accept loop ([`server`]), the session in named phases ([`session`]),
//! the byte relay ([`relay`]), the response tracker that matches answers to
//! requests and masks rows ([`tracker`], [`masking`], [`copy_format`]),
//! what each prepared-statement and portal name runs ([`names`]), startup
//! parameters decided as `SET` ([`startup_params`]), the upstream login with
//! the injected credential ([`upstream`]) and the SQL side of the command
//! gate ([`gate`]). Authentication, admission, decisions, recording and
//! reviews come from `airlock-core`.
//!
//! Architecture invariant: protocol code never decides whether a command
//! runs; it asks the core's gate. And no upstream secret leaves
//! [`upstream`] except as protocol bytes to that upstream.

pub mod copy_format;
pub mod errors;
pub mod gate;
mod io;
pub mod masking;
pub mod names;
pub mod relay;
pub mod server;
pub mod session;
pub mod startup_params;
pub mod tracker;
pub mod upstream;

#[cfg(test)]
mod tests {
    #[test]
    fn the_core_default_message_bound_is_the_codecs() {
        assert_eq!(
            airlock_core::config::DEFAULT_POSTGRES_MAX_MESSAGE_BYTES,
            airlock_pg::DEFAULT_MAX_MESSAGE_BYTES
        );
    }
}
