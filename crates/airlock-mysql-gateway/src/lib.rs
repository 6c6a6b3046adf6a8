//! airlock's MySQL/MariaDB gateway: the MySQL client/server protocol on the
//! core.
//!
//! This crate owns what is MySQL about a session and nothing else: the
//! listener ([`server`]), the session in named phases ([`session`]: greet,
//! TLS, the token by full authentication, admission, the upstream login
//! ([`upstream`]), relay, finish), the command relay ([`relay`]) with the
//! prepared statements it knows ([`statements`]), the answer relay with row
//! masking ([`answer`], [`masking`]), the SQL side of the gate ([`gate`], with the SQL-level `PREPARE`s it
//! tracks in [`sql_prepared`] and the databases a session may select in
//! [`schema`]),
//! the records ([`record`]), `KILL` mapped to the sessions it may end
//! ([`kill`]), the character sets it serves ([`charset`]) and
//! the one module that words every refusal as a MySQL error ([`errors`]).
//! Packets are the `airlock-mysql` codec's; authentication, admission,
//! decisions, recording and reviews are `airlock-core`'s.
//!
//! Architecture invariant: protocol code never decides whether a command
//! runs; it asks the core's gate. No command reaches the upstream before
//! its `command` record is written. The decrypted upstream password exists
//! only during the upstream login.

pub mod answer;
pub mod charset;
pub mod errors;
pub mod fuzzing;
pub mod gate;
pub mod io;
pub mod kill;
pub mod masking;
pub mod record;
pub mod relay;
pub mod schema;
pub mod server;
pub mod session;
pub mod sql_prepared;
pub mod statements;
pub mod upstream;

#[cfg(test)]
mod tests {
    #[test]
    fn the_core_default_packet_bound_is_the_codecs() {
        assert_eq!(
            airlock_core::config::DEFAULT_MYSQL_MAX_PACKET_BYTES,
            airlock_mysql::DEFAULT_MAX_PACKET_BYTES
        );
    }
}
