//! The one place where airlock's answers become MySQL errors.
//!
//! The core refuses with protocol-neutral values ([`Refusal`],
//! [`LoginRefusal`], [`AdmissionRefusal`]); sessions end for reasons of
//! their own. This module maps every one of them to a MySQL error number
//! and SQLSTATE ([`code`]), so every code a client can get from the gateway
//! is listed here and nowhere else in this crate.

use airlock_core::admission::AdmissionRefusal;
use airlock_core::gate::{Object, Refusal};
use airlock_core::login::LoginRefusal;
use airlock_mysql::listener::ListenerError;
use airlock_mysql::ErrPacket;

/// The (error number, SQLSTATE) pairs the gateway answers with: the
/// server's own numbers, so clients react as they would to the server.
pub mod code {
    pub use airlock_mysql::generic::error_code::*;
    /// 1046 `3D000` `ER_NO_DB_ERROR`: no database (connection) named.
    pub const NO_DATABASE: (u16, [u8; 5]) = (1046, *b"3D000");
    /// 1049 `42000` `ER_BAD_DB_ERROR`: no connection of that name.
    pub const UNKNOWN_DATABASE: (u16, [u8; 5]) = (1049, *b"42000");
    /// 1064 `42000` `ER_PARSE_ERROR`: the text does not parse.
    pub const PARSE_ERROR: (u16, [u8; 5]) = (1064, *b"42000");
    /// 1105 `HY000` `ER_UNKNOWN_ERROR`: the gateway cannot serve now (store,
    /// audit log, upstream unreachable).
    pub const UNAVAILABLE: (u16, [u8; 5]) = (1105, *b"HY000");
    /// 1094 `HY000` `ER_NO_SUCH_THREAD`: a `KILL` of a session the client
    /// may not end.
    pub const NO_SUCH_THREAD: (u16, [u8; 5]) = (1094, *b"HY000");
    /// 1153 `08S01` `ER_NET_PACKET_TOO_LARGE`.
    pub const PACKET_TOO_LARGE: (u16, [u8; 5]) = (1153, *b"08S01");
    /// 1156 `08S01` `ER_NET_PACKETS_OUT_OF_ORDER`: a bad sequence id.
    pub const PACKETS_OUT_OF_ORDER: (u16, [u8; 5]) = (1156, *b"08S01");
    /// 1226 `42000` `ER_USER_LIMIT_REACHED`: a rate limit.
    pub const LIMIT_REACHED: (u16, [u8; 5]) = (1226, *b"42000");
    /// 1243 `HY000` `ER_UNKNOWN_STMT_HANDLER`: a statement id never prepared.
    pub const UNKNOWN_STATEMENT: (u16, [u8; 5]) = (1243, *b"HY000");
    /// 1927 `70100` `ER_CONNECTION_KILLED`: the session was ended (kill
    /// switch, token or grant expiry, gateway shutdown, upstream gone).
    pub const CONNECTION_KILLED: (u16, [u8; 5]) = (1927, *b"70100");
}

/// The client's error for a refused command. Policy refusals are 1142
/// `42000` (command denied), naming the rule and policy version, or the
/// review and the command that approves it.
pub fn refusal(refusal: &Refusal) -> ErrPacket {
    let pair = match refusal {
        Refusal::Denied { .. } | Refusal::Review { .. } | Refusal::Unavailable { .. } => {
            code::TABLE_ACCESS_DENIED
        }
        Refusal::RateLimited { .. } => code::LIMIT_REACHED,
        Refusal::RecordingUnavailable { .. } => code::UNAVAILABLE,
        Refusal::Syntax { .. } => code::PARSE_ERROR,
        Refusal::UnknownObject {
            object: Object::PreparedStatement | Object::Portal,
            ..
        } => code::UNKNOWN_STATEMENT,
    };
    let mut message = refusal.message().to_string();
    if let Refusal::RecordingUnavailable { .. } = refusal {
        message.push_str(
            " (the gateway records every command before it runs; retry when the audit store is writable)",
        );
    }
    ErrPacket::from_code(pair, message)
}

/// A refused login: 1045 `28000` for every token failure, whatever its
/// reason (no hint whether the identity exists).
pub fn login(refusal: &LoginRefusal) -> ErrPacket {
    let pair = match refusal {
        LoginRefusal::LockedOut { .. } | LoginRefusal::Failed { .. } => code::ACCESS_DENIED,
        LoginRefusal::StoreUnavailable => code::UNAVAILABLE,
    };
    ErrPacket::from_code(pair, refusal.to_string())
}

/// A refused admission.
pub fn admission(refusal: &AdmissionRefusal) -> ErrPacket {
    let pair = match refusal {
        AdmissionRefusal::SessionLimit { .. } => code::TOO_MANY_CONNECTIONS,
        AdmissionRefusal::UnknownConnection { .. } | AdmissionRefusal::WrongProtocol { .. } => {
            code::UNKNOWN_DATABASE
        }
        AdmissionRefusal::NoGrant { .. } => code::DB_ACCESS_DENIED,
        AdmissionRefusal::StoreUnavailable
        | AdmissionRefusal::CredentialMissing { .. }
        | AdmissionRefusal::CredentialUnreadable { .. }
        | AdmissionRefusal::RecordingUnavailable => code::UNAVAILABLE,
    };
    ErrPacket::from_code(pair, refusal.to_string())
}

/// A client login the listener refused before the token was checked.
pub fn listener(error: &ListenerError, client_ip: std::net::IpAddr) -> ErrPacket {
    match error {
        ListenerError::TlsRequired => ErrPacket::from_code(
            code::SECURE_TRANSPORT_REQUIRED,
            format!(
                "airlock: TLS is required for clients at {client_ip}: connect with --ssl (mariadb) or --ssl-mode=REQUIRED (mysql)"
            ),
        ),
        ListenerError::TlsUnavailable => ErrPacket::from_code(
            code::UNAVAILABLE,
            "airlock: TLS is not available on this listener",
        ),
        ListenerError::RsaUnsupported => ErrPacket::from_code(
            code::ACCESS_DENIED,
            "airlock: RSA key exchange is not supported: connect with TLS",
        ),
        ListenerError::Codec(_) | ListenerError::Unexpected(_) => ErrPacket::from_code(
            code::UNKNOWN_COMMAND,
            format!("airlock: invalid login packet: {error}"),
        ),
    }
}

/// The client named no database: the connection goes there.
pub fn no_connection_named(user: &str) -> ErrPacket {
    ErrPacket::from_code(
        code::NO_DATABASE,
        format!(
            "airlock: no connection named: pass the connection name as the database (user = identity, database = connection, password = token), e.g. mariadb -u {user} -D <connection> --ssl"
        ),
    )
}

/// The client named no user.
pub fn no_user() -> ErrPacket {
    ErrPacket::from_code(
        code::ACCESS_DENIED,
        "airlock: no user name given (user = your identity name)",
    )
}

/// The upstream login failed; the inside's words stay in the log.
pub fn upstream(connection: &str, what: UpstreamProblem) -> ErrPacket {
    let message = match what {
        UpstreamProblem::Rejected => format!(
            "airlock: the upstream of connection \"{connection}\" rejected the stored credential"
        ),
        UpstreamProblem::Unreachable => {
            format!("airlock: cannot reach the upstream of connection \"{connection}\"")
        }
        UpstreamProblem::Tls => format!(
            "airlock: the TLS handshake with the upstream of connection \"{connection}\" failed"
        ),
        UpstreamProblem::TimedOut => format!(
            "airlock: connecting to the upstream of connection \"{connection}\" timed out"
        ),
        UpstreamProblem::Incompatible(detail) => format!(
            "airlock: the upstream of connection \"{connection}\" cannot serve this client: {detail}"
        ),
        UpstreamProblem::Refused => {
            format!("airlock: the upstream of connection \"{connection}\" refused the connection")
        }
    };
    ErrPacket::from_code(code::UNAVAILABLE, message)
}

/// What went wrong logging in upstream, as the client may hear it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProblem {
    Rejected,
    Unreachable,
    Tls,
    TimedOut,
    Incompatible(&'static str),
    Refused,
}

/// A command the gateway does not relay (`COM_CHANGE_USER`, replication,
/// bulk execute …), with why.
pub fn unsupported(command: &str, why: &str) -> ErrPacket {
    ErrPacket::from_code(
        code::NOT_SUPPORTED_YET,
        format!("airlock: {command} is not supported through the gateway: {why}"),
    )
}

/// A `KILL` the gateway does not map: another identity's session, an id it
/// does not relay, or a shape it does not read (`KILL USER`, a `KILL`
/// among other statements).
pub fn kill_refused(id: Option<u64>) -> ErrPacket {
    let message = match id {
        Some(id) => format!(
            "airlock: KILL {id} refused: it names no session of yours on this connection (ids are those your client was given at login, or CONNECTION_ID())"
        ),
        None => "airlock: this KILL is refused: send KILL [QUERY] <id> alone, for a session of yours on this connection".to_string(),
    };
    ErrPacket::from_code(code::NO_SUCH_THREAD, message)
}

/// A command byte the gateway does not know.
pub fn unknown_command(code_byte: u8) -> ErrPacket {
    ErrPacket::from_code(
        code::UNKNOWN_COMMAND,
        format!("airlock: unknown command 0x{code_byte:02x} refused"),
    )
}

/// A statement id the client never prepared through this session.
pub fn unknown_statement(statement_id: u32, command: &str) -> ErrPacket {
    ErrPacket::from_code(
        code::UNKNOWN_STATEMENT,
        format!("airlock: unknown prepared statement {statement_id} given to {command}"),
    )
}

/// The client's packet could not be read: the session ends.
pub fn client_protocol(error: &airlock_mysql::MySqlCodecError) -> ErrPacket {
    use airlock_mysql::MySqlCodecError as E;
    let pair = match error {
        E::TooLarge { .. } => code::PACKET_TOO_LARGE,
        E::BadSequence { .. } => code::PACKETS_OUT_OF_ORDER,
        _ => code::UNKNOWN_COMMAND,
    };
    ErrPacket::from_code(pair, format!("airlock: {error}; session closed"))
}

/// The session ends: killed, expired, the gateway or the upstream gone.
pub fn session_ended(reason: &str) -> ErrPacket {
    ErrPacket::from_code(
        code::CONNECTION_KILLED,
        format!("airlock: terminating connection: {reason}"),
    )
}

/// The upstream sent what the gateway cannot follow: the session ends.
pub fn upstream_protocol() -> ErrPacket {
    ErrPacket::from_code(
        code::UNAVAILABLE,
        "airlock: the upstream sent an invalid packet; session closed",
    )
}

/// The login took too long.
pub fn login_timed_out() -> ErrPacket {
    ErrPacket::from_code(code::ACCESS_DENIED, "airlock: authentication timed out")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every refusal has its code, and the code table is the one the
    /// README documents.
    #[test]
    fn refusals_map_to_documented_codes() {
        let cases = [
            (
                Refusal::Denied {
                    message: "d".into(),
                },
                1142,
                "42000",
            ),
            (
                Refusal::Review {
                    review_id: Some("r-1".into()),
                    message: "r".into(),
                },
                1142,
                "42000",
            ),
            (
                Refusal::RateLimited {
                    message: "l".into(),
                },
                1226,
                "42000",
            ),
            (
                Refusal::RecordingUnavailable {
                    message: "a".into(),
                },
                1105,
                "HY000",
            ),
            (
                Refusal::Unavailable {
                    message: "u".into(),
                },
                1142,
                "42000",
            ),
            (
                Refusal::Syntax {
                    message: "s".into(),
                    position: None,
                },
                1064,
                "42000",
            ),
            (
                Refusal::UnknownObject {
                    object: Object::PreparedStatement,
                    message: "o".into(),
                },
                1243,
                "HY000",
            ),
        ];
        for (refused, number, state) in cases {
            let packet = refusal(&refused);
            assert_eq!(packet.code, number, "{refused:?}");
            assert_eq!(packet.sql_state_str(), state, "{refused:?}");
            assert!(packet.message.starts_with(refused.message()));
        }
        let failed = LoginRefusal::Failed {
            user: "u".into(),
            connection: "c".into(),
        };
        assert_eq!(login(&failed).code, 1045);
        assert_eq!(login(&failed).sql_state_str(), "28000");
        assert_eq!(no_connection_named("agent").code, 1046);
        assert_eq!(code::ACCESS_DENIED.0, 1045);
    }
}
