//! The one place where airlock's answers become PostgreSQL errors.
//!
//! The core's gate refuses with a protocol-neutral [`Refusal`]; the session
//! ends for reasons of its own. This module maps both to SQLSTATE codes and
//! `ErrorResponse` fields, so every code a client can get from the gateway is
//! listed here ([`sqlstate`]) and nowhere else.

use airlock_core::admission::AdmissionRefusal;
use airlock_core::gate::{Object, Refusal};
use airlock_core::login::LoginRefusal;
use airlock_pg::backend::encode_error;
use airlock_pg::ErrorFields;

/// The SQLSTATE codes the gateway itself answers with (PostgreSQL's
/// Appendix A names).
pub mod sqlstate {
    /// `insufficient_privilege`: a policy refusal, a review to wait for.
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    /// `syntax_error`: the statement does not parse.
    pub const SYNTAX_ERROR: &str = "42601";
    /// `configuration_limit_exceeded`: a rate limit.
    pub const CONFIGURATION_LIMIT_EXCEEDED: &str = "53400";
    /// `too_many_connections`: a session limit.
    pub const TOO_MANY_CONNECTIONS: &str = "53300";
    /// `io_error`: the audit record could not be written.
    pub const IO_ERROR: &str = "58030";
    /// `system_error`: an internal failure of the gateway.
    pub const SYSTEM_ERROR: &str = "58000";
    /// `invalid_sql_statement_name`: an unknown prepared statement.
    pub const INVALID_SQL_STATEMENT_NAME: &str = "26000";
    /// `invalid_cursor_name`: an unknown portal.
    pub const INVALID_CURSOR_NAME: &str = "34000";
    /// `invalid_authorization_specification`: no such identity, token not
    /// valid for this connection, refused by policy at login.
    pub const INVALID_AUTHORIZATION_SPECIFICATION: &str = "28000";
    /// `invalid_password`: the token was wrong.
    pub const INVALID_PASSWORD: &str = "28P01";
    /// `protocol_violation`.
    pub const PROTOCOL_VIOLATION: &str = "08P01";
    /// `connection_failure`: the client connection is lost or timed out.
    pub const CONNECTION_FAILURE: &str = "08006";
    /// `sqlclient_unable_to_establish_sqlconnection`: the upstream cannot
    /// be reached.
    pub const UNABLE_TO_CONNECT: &str = "08001";
    /// `sqlserver_rejected_establishment_of_sqlconnection`: the upstream
    /// refused the gateway's login.
    pub const SERVER_REJECTED_CONNECTION: &str = "08004";
    /// `invalid_parameter_value`: a startup setting the gateway refuses.
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    /// `invalid_catalog_name`: no connection of that name.
    pub const INVALID_CATALOG_NAME: &str = "3D000";
    /// `admin_shutdown`: revoked, expired, gateway shutting down, upstream
    /// gone.
    pub const ADMIN_SHUTDOWN: &str = "57P01";
    /// `successful_completion`: the code of the gateway's notices.
    pub const SUCCESSFUL_COMPLETION: &str = "00000";
}

/// The client's error for a refusal.
pub fn refusal(refusal: &Refusal) -> ErrorFields {
    let (code, hint, position) = match refusal {
        Refusal::Denied { .. } | Refusal::Review { .. } | Refusal::Unavailable { .. } => {
            (sqlstate::INSUFFICIENT_PRIVILEGE, None, None)
        }
        Refusal::RateLimited { .. } => (sqlstate::CONFIGURATION_LIMIT_EXCEEDED, None, None),
        Refusal::RecordingUnavailable { .. } => (
            sqlstate::IO_ERROR,
            Some(
                "the gateway records every command before it runs; retry when the audit store is writable",
            ),
            None,
        ),
        Refusal::Syntax { position, .. } => (sqlstate::SYNTAX_ERROR, None, *position),
        Refusal::UnknownObject {
            object: Object::PreparedStatement,
            ..
        } => (sqlstate::INVALID_SQL_STATEMENT_NAME, None, None),
        Refusal::UnknownObject {
            object: Object::Portal,
            ..
        } => (sqlstate::INVALID_CURSOR_NAME, None, None),
    };
    ErrorFields {
        severity: "ERROR".into(),
        code: code.into(),
        message: refusal.message().to_string(),
        detail: None,
        hint: hint.map(str::to_string),
        position,
    }
}

/// The SQLSTATE and message of a refused login (sent as FATAL): one code
/// for every token failure, whatever its reason.
pub fn login(refusal: &LoginRefusal) -> (&'static str, String) {
    let code = match refusal {
        LoginRefusal::LockedOut { .. } => sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
        LoginRefusal::Failed { .. } => sqlstate::INVALID_PASSWORD,
        LoginRefusal::StoreUnavailable => sqlstate::SYSTEM_ERROR,
    };
    (code, refusal.to_string())
}

/// The SQLSTATE and message of a refused admission (sent as FATAL).
pub fn admission(refusal: &AdmissionRefusal) -> (&'static str, String) {
    let code = match refusal {
        AdmissionRefusal::SessionLimit { .. } => sqlstate::TOO_MANY_CONNECTIONS,
        AdmissionRefusal::UnknownConnection { .. } | AdmissionRefusal::WrongProtocol { .. } => {
            sqlstate::INVALID_CATALOG_NAME
        }
        AdmissionRefusal::NoGrant { .. } => sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
        AdmissionRefusal::StoreUnavailable => sqlstate::SYSTEM_ERROR,
        AdmissionRefusal::CredentialMissing { .. }
        | AdmissionRefusal::CredentialUnreadable { .. } => sqlstate::SERVER_REJECTED_CONNECTION,
        AdmissionRefusal::RecordingUnavailable => sqlstate::IO_ERROR,
    };
    (code, refusal.to_string())
}

/// An `ERROR` with this code and message.
pub fn error(code: &str, message: impl Into<String>) -> ErrorFields {
    ErrorFields {
        severity: "ERROR".into(),
        code: code.into(),
        message: message.into(),
        ..ErrorFields::default()
    }
}

/// A `NOTICE` from the gateway (a review to wait for, …).
pub fn notice(message: impl Into<String>) -> ErrorFields {
    ErrorFields {
        severity: "NOTICE".into(),
        code: sqlstate::SUCCESSFUL_COMPLETION.into(),
        message: message.into(),
        ..ErrorFields::default()
    }
}

/// An encoded `FATAL` error: the session ends after it.
pub fn fatal(code: &str, message: impl Into<String>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_error(
        &mut out,
        &ErrorFields {
            severity: "FATAL".into(),
            code: code.into(),
            message: message.into(),
            ..ErrorFields::default()
        },
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(message: &str) -> String {
        message.to_string()
    }

    /// The refusal → SQLSTATE table: what a client and its driver see.
    #[test]
    fn refusals_map_to_their_sqlstates() {
        let table = [
            (Refusal::Denied { message: text("d") }, "42501", None),
            (
                Refusal::Review {
                    review_id: Some(text("r-1")),
                    message: text("r"),
                },
                "42501",
                None,
            ),
            (Refusal::Unavailable { message: text("u") }, "42501", None),
            (Refusal::RateLimited { message: text("l") }, "53400", None),
            (
                Refusal::RecordingUnavailable { message: text("a") },
                "58030",
                None,
            ),
            (
                Refusal::Syntax {
                    message: text("syntax error at or near \"form\""),
                    position: Some(10),
                },
                "42601",
                Some(10),
            ),
            (
                Refusal::UnknownObject {
                    object: Object::PreparedStatement,
                    message: text("s"),
                },
                "26000",
                None,
            ),
            (
                Refusal::UnknownObject {
                    object: Object::Portal,
                    message: text("p"),
                },
                "34000",
                None,
            ),
        ];
        for (refused, code, position) in table {
            let fields = refusal(&refused);
            assert_eq!(fields.code, code, "{refused:?}");
            assert_eq!(fields.severity, "ERROR");
            assert_eq!(fields.message, refused.message());
            assert_eq!(fields.position, position);
        }
        let recording = refusal(&Refusal::RecordingUnavailable { message: text("a") });
        assert!(recording.hint.is_some_and(|hint| hint.contains("records")));
    }

    #[test]
    fn fatal_errors_end_with_the_message() {
        let frame = fatal(sqlstate::ADMIN_SHUTDOWN, "bye");
        assert_eq!(frame.first(), Some(&b'E'));
        let fields = airlock_pg::backend::decode_error_fields(&frame[5..]).unwrap();
        assert_eq!(fields.severity, "FATAL");
        assert_eq!(fields.code, "57P01");
        assert_eq!(fields.message, "bye");
    }
}
