//! The generic response packets: OK (`0x00`, or `0xFE` when it ends a result
//! set under `CLIENT_DEPRECATE_EOF`), ERR (`0xFF`, with the `#` SQLSTATE
//! marker under `CLIENT_PROTOCOL_41`) and EOF (`0xFE`, shorter than 9 bytes).
//! The ERR encoder is how the gateway's refusals reach a MySQL client.

use crate::buf::{put_lenenc, put_lenenc_bytes, put_u16, Reader};
use crate::{Capabilities, MySqlCodecError, ServerStatus};

/// First byte of an OK packet.
pub const OK_HEADER: u8 = 0x00;
/// First byte of an EOF packet (and of an OK ending a result set under
/// `CLIENT_DEPRECATE_EOF`, and of an AuthSwitchRequest).
pub const EOF_HEADER: u8 = 0xFE;
/// First byte of an ERR packet.
pub const ERR_HEADER: u8 = 0xFF;

/// Server error numbers and their SQLSTATEs that the gateway's refusals
/// use (as MySQL and MariaDB send them, so clients react as usual).
pub mod error_code {
    /// 1044 `42000`: access denied for a user to a database.
    pub const DB_ACCESS_DENIED: (u16, [u8; 5]) = (1044, *b"42000");
    /// 1045 `28000`: access denied (bad user or password).
    pub const ACCESS_DENIED: (u16, [u8; 5]) = (1045, *b"28000");
    /// 1047 `08S01`: unknown command.
    pub const UNKNOWN_COMMAND: (u16, [u8; 5]) = (1047, *b"08S01");
    /// 1142 `42000`: command denied to a user on a table.
    pub const TABLE_ACCESS_DENIED: (u16, [u8; 5]) = (1142, *b"42000");
    /// 1227 `42000`: the statement needs a privilege the session lacks.
    pub const SPECIFIC_ACCESS_DENIED: (u16, [u8; 5]) = (1227, *b"42000");
    /// 1235 `42000`: a feature this server does not support.
    pub const NOT_SUPPORTED_YET: (u16, [u8; 5]) = (1235, *b"42000");
    /// 1040 `08004`: too many connections.
    pub const TOO_MANY_CONNECTIONS: (u16, [u8; 5]) = (1040, *b"08004");
    /// 1317 `70100`: query execution was interrupted.
    pub const QUERY_INTERRUPTED: (u16, [u8; 5]) = (1317, *b"70100");
    /// 3159 `HY000`: connections without TLS are prohibited (MySQL's
    /// `ER_SECURE_TRANSPORT_REQUIRED`).
    pub const SECURE_TRANSPORT_REQUIRED: (u16, [u8; 5]) = (3159, *b"HY000");
}

/// An OK packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OkPacket {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: ServerStatus,
    pub warnings: u16,
    /// Human-readable information (`Rows matched: 1 Changed: 1 …`).
    pub info: Vec<u8>,
    /// Session state changes (`CLIENT_SESSION_TRACK` with
    /// `SERVER_SESSION_STATE_CHANGED`), undecoded.
    pub session_state_changes: Option<Vec<u8>>,
}

impl OkPacket {
    /// Decodes an OK packet (header `0x00` or `0xFE`).
    pub fn decode(payload: &[u8], capabilities: Capabilities) -> Result<Self, MySqlCodecError> {
        let mut reader = Reader::new(payload, "OK packet");
        let header = reader.u8()?;
        if header != OK_HEADER && header != EOF_HEADER {
            return Err(MySqlCodecError::Unexpected { what: "OK", header });
        }
        let affected_rows = reader.lenenc()?;
        let last_insert_id = reader.lenenc()?;
        let mut ok = Self {
            affected_rows,
            last_insert_id,
            ..Self::default()
        };
        if capabilities.contains(Capabilities::PROTOCOL_41) {
            ok.status = ServerStatus(reader.u16()?);
            ok.warnings = reader.u16()?;
        } else if capabilities.contains(Capabilities::TRANSACTIONS) {
            ok.status = ServerStatus(reader.u16()?);
        }
        if capabilities.contains(Capabilities::SESSION_TRACK) {
            // The info string may be absent entirely at the end of the packet.
            if !reader.is_empty() {
                ok.info = reader.lenenc_bytes()?.to_vec();
            }
            if ok.status.contains(ServerStatus::SESSION_STATE_CHANGED) && !reader.is_empty() {
                ok.session_state_changes = Some(reader.lenenc_bytes()?.to_vec());
            }
        } else {
            ok.info = reader.rest().to_vec();
        }
        Ok(ok)
    }

    /// Encodes with `header` `0x00`, or `0xFE` for the OK that ends a result
    /// set under `CLIENT_DEPRECATE_EOF`.
    pub fn encode_with_header(&self, header: u8, capabilities: Capabilities) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.info.len());
        out.push(header);
        put_lenenc(&mut out, self.affected_rows);
        put_lenenc(&mut out, self.last_insert_id);
        if capabilities.contains(Capabilities::PROTOCOL_41) {
            put_u16(&mut out, self.status.0);
            put_u16(&mut out, self.warnings);
        } else if capabilities.contains(Capabilities::TRANSACTIONS) {
            put_u16(&mut out, self.status.0);
        }
        if capabilities.contains(Capabilities::SESSION_TRACK) {
            let state = self
                .session_state_changes
                .as_deref()
                .filter(|_| self.status.contains(ServerStatus::SESSION_STATE_CHANGED));
            if !self.info.is_empty() || state.is_some() {
                put_lenenc_bytes(&mut out, &self.info);
            }
            if let Some(state) = state {
                put_lenenc_bytes(&mut out, state);
            }
        } else {
            out.extend_from_slice(&self.info);
        }
        out
    }

    /// Encodes with header `0x00`.
    pub fn encode(&self, capabilities: Capabilities) -> Vec<u8> {
        self.encode_with_header(OK_HEADER, capabilities)
    }
}

/// An ERR packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrPacket {
    /// The MySQL error number (e.g. 1045 access denied).
    pub code: u16,
    /// The five-character SQLSTATE, when the packet carried one.
    pub sql_state: Option<[u8; 5]>,
    pub message: String,
}

impl ErrPacket {
    /// An error to send: `code`, `sql_state` (five ASCII characters, e.g.
    /// `b"28000"`) and `message`.
    pub fn new(code: u16, sql_state: [u8; 5], message: impl Into<String>) -> Self {
        Self {
            code,
            sql_state: Some(sql_state),
            message: message.into(),
        }
    }

    /// An error from one of the [`error_code`] pairs.
    pub fn from_code((code, sql_state): (u16, [u8; 5]), message: impl Into<String>) -> Self {
        Self::new(code, sql_state, message)
    }

    /// Decodes an ERR packet. The SQLSTATE is read when its `#` marker is
    /// there, whatever the capabilities: a server sends ERR before the
    /// capabilities are agreed (too many connections, host blocked).
    pub fn decode(payload: &[u8]) -> Result<Self, MySqlCodecError> {
        let mut reader = Reader::new(payload, "ERR packet");
        let header = reader.u8()?;
        if header != ERR_HEADER {
            return Err(MySqlCodecError::Unexpected {
                what: "ERR",
                header,
            });
        }
        let code = reader.u16()?;
        let mut sql_state = None;
        if reader.peek() == Some(b'#') && reader.remaining() >= 6 {
            reader.take(1)?;
            let state = reader.take(5)?;
            sql_state = Some(<[u8; 5]>::try_from(state).map_err(|_| reader.truncated())?);
        }
        let message = String::from_utf8_lossy(reader.rest()).into_owned();
        Ok(Self {
            code,
            sql_state,
            message,
        })
    }

    /// The SQLSTATE as text (`HY000` when absent).
    pub fn sql_state_str(&self) -> &str {
        self.sql_state
            .as_ref()
            .and_then(|state| std::str::from_utf8(state).ok())
            .unwrap_or("HY000")
    }

    /// Encodes with the `#` SQLSTATE marker (every 4.1+ client expects it).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + self.message.len());
        out.push(ERR_HEADER);
        put_u16(&mut out, self.code);
        out.push(b'#');
        out.extend_from_slice(self.sql_state.as_ref().unwrap_or(b"HY000"));
        out.extend_from_slice(self.message.as_bytes());
        out
    }
}

/// An EOF packet (without `CLIENT_DEPRECATE_EOF`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EofPacket {
    pub warnings: u16,
    pub status: ServerStatus,
}

impl EofPacket {
    /// Decodes an EOF packet.
    pub fn decode(payload: &[u8], capabilities: Capabilities) -> Result<Self, MySqlCodecError> {
        let mut reader = Reader::new(payload, "EOF packet");
        let header = reader.u8()?;
        if header != EOF_HEADER || payload.len() >= 9 {
            return Err(MySqlCodecError::Unexpected {
                what: "EOF",
                header,
            });
        }
        if !capabilities.contains(Capabilities::PROTOCOL_41) {
            return Ok(Self::default());
        }
        Ok(Self {
            warnings: reader.u16()?,
            status: ServerStatus(reader.u16()?),
        })
    }

    /// Encodes an EOF packet.
    pub fn encode(&self, capabilities: Capabilities) -> Vec<u8> {
        let mut out = vec![EOF_HEADER];
        if capabilities.contains(Capabilities::PROTOCOL_41) {
            put_u16(&mut out, self.warnings);
            put_u16(&mut out, self.status.0);
        }
        out
    }
}

/// Whether `payload` ends a result set: EOF (`0xFE`, under 9 bytes) or,
/// under `CLIENT_DEPRECATE_EOF`, the OK with header `0xFE` (any length
/// below one full fragment: a row starting with `0xFE` — an 8-byte
/// length prefix — would be longer).
pub fn is_result_set_end(payload: &[u8], capabilities: Capabilities) -> bool {
    payload.first() == Some(&EOF_HEADER)
        && if capabilities.contains(Capabilities::DEPRECATE_EOF) {
            payload.len() < crate::framing::MAX_FRAGMENT_PAYLOAD
        } else {
            payload.len() < 9
        }
}

/// The end of a result set, decoded either way.
pub fn decode_result_set_end(
    payload: &[u8],
    capabilities: Capabilities,
) -> Result<OkPacket, MySqlCodecError> {
    if capabilities.contains(Capabilities::DEPRECATE_EOF) {
        OkPacket::decode(payload, capabilities)
    } else {
        let eof = EofPacket::decode(payload, capabilities)?;
        Ok(OkPacket {
            status: eof.status,
            warnings: eof.warnings,
            ..OkPacket::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: Capabilities = Capabilities(
        Capabilities::PROTOCOL_41.0 | Capabilities::TRANSACTIONS.0 | Capabilities::SESSION_TRACK.0,
    );

    #[test]
    fn ok_packet_from_the_documentation() {
        // OK: 0 rows, no insert id, autocommit, no warnings.
        let bytes = [0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00];
        let ok = OkPacket::decode(&bytes, CAPS).unwrap();
        assert_eq!(ok.status, ServerStatus::AUTOCOMMIT);
        assert!(ok.status.autocommit() && !ok.status.in_transaction());
        assert_eq!(ok.encode(CAPS), bytes);
        // Without session tracking the info runs to the end.
        let plain = Capabilities::PROTOCOL_41;
        let bytes = b"\x00\x01\x05\x03\x00\x01\x00Rows matched: 1";
        let ok = OkPacket::decode(bytes, plain).unwrap();
        assert_eq!(
            (ok.affected_rows, ok.last_insert_id, ok.warnings),
            (1, 5, 1)
        );
        assert!(ok.status.in_transaction());
        assert_eq!(ok.info, b"Rows matched: 1");
        assert_eq!(ok.encode(plain), bytes);
    }

    #[test]
    fn ok_with_session_state() {
        let ok = OkPacket {
            status: ServerStatus(ServerStatus::SESSION_STATE_CHANGED.0 | 2),
            info: b"hi".to_vec(),
            session_state_changes: Some(b"\x01\x05\x04appdb".to_vec()),
            ..OkPacket::default()
        };
        let bytes = ok.encode(CAPS);
        assert_eq!(OkPacket::decode(&bytes, CAPS).unwrap(), ok);
    }

    #[test]
    fn err_packet_with_and_without_sql_state() {
        let bytes = b"\xff\x48\x04#HY000No tables used";
        let err = ErrPacket::decode(bytes).unwrap();
        assert_eq!(err.code, 1096);
        assert_eq!(err.sql_state_str(), "HY000");
        assert_eq!(err.message, "No tables used");
        assert_eq!(err.encode(), bytes);
        // Pre-handshake: "Too many connections" without a marker.
        let err = ErrPacket::decode(b"\xff\x10\x04Too many connections").unwrap();
        assert_eq!((err.code, err.sql_state), (1040, None));
        let refusal = ErrPacket::from_code(error_code::ACCESS_DENIED, "access denied");
        assert_eq!(
            refusal.encode(),
            b"\xff\x15\x04#28000access denied".to_vec()
        );
    }

    #[test]
    fn eof_and_result_set_end() {
        let bytes = [0xFE, 0x00, 0x00, 0x02, 0x00];
        let eof = EofPacket::decode(&bytes, CAPS).unwrap();
        assert_eq!(eof.status, ServerStatus::AUTOCOMMIT);
        assert_eq!(eof.encode(CAPS), bytes);
        assert!(is_result_set_end(&bytes, CAPS));
        // A row whose first cell has an 8-byte length is not an end.
        let row = [0xFE, 1, 0, 0, 0, 0, 0, 0, 0, b'x'];
        assert!(!is_result_set_end(&row, CAPS));
        let deprecate = CAPS | Capabilities::DEPRECATE_EOF;
        let ok_end = [0xFE, 0x00, 0x00, 0x22, 0x00, 0x00, 0x00];
        assert!(is_result_set_end(&ok_end, deprecate));
        let end = decode_result_set_end(&ok_end, deprecate).unwrap();
        assert_eq!(end.status, ServerStatus(0x22));
        assert!(EofPacket::decode(&[0x00], CAPS).is_err());
    }
}
