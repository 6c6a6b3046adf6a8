//! The untagged first message of a connection: `SSLRequest`,
//! `GSSENCRequest`, `CancelRequest` or `StartupMessage`.

use bytes::{Buf, BytesMut};

use crate::buf::{put_cstr, BodyReader};
use crate::PgCodecError;

/// PostgreSQL refuses startup packets over 10,000 bytes; so do we.
pub const MAX_STARTUP_BYTES: usize = 10_000;
/// Bound on startup parameters (PostgreSQL has no explicit one; clients send
/// fewer than ten).
pub const MAX_STARTUP_PARAMS: usize = 64;

const SSL_REQUEST: i32 = 80_877_103;
const GSSENC_REQUEST: i32 = 80_877_104;
const CANCEL_REQUEST: i32 = 80_877_102;
const PROTOCOL_3_0: i32 = 196_608;

/// What a client asked for in its first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupRequest {
    /// Upgrade to TLS.
    Ssl,
    /// Upgrade to GSSAPI encryption (the gateway refuses it).
    GssEnc,
    /// Cancel the query running on the backend with this key.
    Cancel { process_id: i32, secret_key: i32 },
    /// Start a session.
    Startup(StartupMessage),
}

/// A `StartupMessage`: protocol version and parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupMessage {
    /// Minor protocol version the client asked for (major is always 3).
    pub minor_version: u16,
    /// Parameters in the order sent (`user`, `database`, `application_name` …).
    pub params: Vec<(String, String)>,
}

impl StartupMessage {
    /// The value of a parameter, if sent.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Decodes the first message off `buf`, or `Ok(None)` when incomplete.
pub fn decode_startup(buf: &mut BytesMut) -> Result<Option<StartupRequest>, PgCodecError> {
    let Some(length_bytes) = buf.get(..4) else {
        return Ok(None);
    };
    let mut array = [0u8; 4];
    array.copy_from_slice(length_bytes);
    let length = i32::from_be_bytes(array);
    let total = usize::try_from(length)
        .ok()
        .filter(|&length| (8..=MAX_STARTUP_BYTES).contains(&length))
        .ok_or(PgCodecError::BadLength {
            length: i64::from(length),
            max: MAX_STARTUP_BYTES,
        })?;
    if buf.len() < total {
        return Ok(None);
    }
    let packet = buf.split_to(total);
    let body = packet.get(4..).unwrap_or_default();
    parse_startup_body(body).map(Some)
}

fn parse_startup_body(body: &[u8]) -> Result<StartupRequest, PgCodecError> {
    let mut reader = BodyReader::new(body, "startup");
    let code = reader.i32()?;
    match code {
        SSL_REQUEST if reader.remaining() == 0 => Ok(StartupRequest::Ssl),
        GSSENC_REQUEST if reader.remaining() == 0 => Ok(StartupRequest::GssEnc),
        CANCEL_REQUEST => {
            let process_id = reader.i32()?;
            let secret_key = reader.i32()?;
            if reader.remaining() != 0 {
                return Err(PgCodecError::Malformed {
                    what: "cancel request",
                });
            }
            Ok(StartupRequest::Cancel {
                process_id,
                secret_key,
            })
        }
        _ => {
            let major = u16::try_from(code >> 16).unwrap_or(u16::MAX);
            let minor = u16::try_from(code & 0xffff).unwrap_or(u16::MAX);
            if major != 3 {
                return Err(PgCodecError::UnsupportedProtocol { major, minor });
            }
            let mut params = Vec::new();
            loop {
                let key = reader.cstr()?;
                if key.is_empty() {
                    break;
                }
                let value = reader.cstr()?;
                if params.len() >= MAX_STARTUP_PARAMS {
                    return Err(PgCodecError::TooMany {
                        what: "startup parameters",
                        count: params.len() + 1,
                        max: MAX_STARTUP_PARAMS,
                    });
                }
                params.push((key.to_string(), value.to_string()));
            }
            if reader.remaining() != 0 {
                return Err(PgCodecError::Malformed { what: "startup" });
            }
            Ok(StartupRequest::Startup(StartupMessage {
                minor_version: minor,
                params,
            }))
        }
    }
}

/// Encodes a protocol 3.0 `StartupMessage`.
pub fn encode_startup(params: &[(&str, &str)]) -> Vec<u8> {
    let mut out = vec![0, 0, 0, 0];
    out.extend_from_slice(&PROTOCOL_3_0.to_be_bytes());
    for (key, value) in params {
        put_cstr(&mut out, key);
        put_cstr(&mut out, value);
    }
    out.push(0);
    patch_length(&mut out);
    out
}

/// Encodes an `SSLRequest`.
pub fn encode_ssl_request() -> Vec<u8> {
    let mut out = Vec::with_capacity(8);
    out.extend_from_slice(&8i32.to_be_bytes());
    out.extend_from_slice(&SSL_REQUEST.to_be_bytes());
    out
}

/// Encodes a `CancelRequest`.
pub fn encode_cancel(process_id: i32, secret_key: i32) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    out.extend_from_slice(&16i32.to_be_bytes());
    out.extend_from_slice(&CANCEL_REQUEST.to_be_bytes());
    out.extend_from_slice(&process_id.to_be_bytes());
    out.extend_from_slice(&secret_key.to_be_bytes());
    out
}

fn patch_length(out: &mut [u8]) {
    let length = i32::try_from(out.len()).unwrap_or(i32::MAX);
    if let Some(slot) = out.get_mut(..4) {
        slot.copy_from_slice(&length.to_be_bytes());
    }
}

/// Discards a startup packet's worth of bytes (used in tests and fuzzing).
pub fn skip(buf: &mut BytesMut, count: usize) {
    buf.advance(count.min(buf.len()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_startup_message() {
        let encoded = encode_startup(&[("user", "agent-7"), ("database", "pg-test")]);
        let mut buf = BytesMut::from(&encoded[..]);
        let Some(StartupRequest::Startup(message)) = decode_startup(&mut buf).unwrap() else {
            panic!("not a startup message");
        };
        assert_eq!(message.param("user"), Some("agent-7"));
        assert_eq!(message.param("database"), Some("pg-test"));
        assert_eq!(message.minor_version, 0);
        assert!(buf.is_empty());
    }

    #[test]
    fn recognises_ssl_gssenc_and_cancel() {
        let mut ssl = BytesMut::from(&encode_ssl_request()[..]);
        assert_eq!(decode_startup(&mut ssl).unwrap(), Some(StartupRequest::Ssl));
        let mut gss = BytesMut::from(&b"\0\0\0\x08\x04\xd2\x16\x30"[..]);
        assert_eq!(
            decode_startup(&mut gss).unwrap(),
            Some(StartupRequest::GssEnc)
        );
        let mut cancel = BytesMut::from(&encode_cancel(42, -7)[..]);
        assert_eq!(
            decode_startup(&mut cancel).unwrap(),
            Some(StartupRequest::Cancel {
                process_id: 42,
                secret_key: -7
            })
        );
    }

    #[test]
    fn refuses_oversized_and_old_protocols() {
        let mut huge = BytesMut::from(&b"\0\x01\0\0"[..]);
        assert!(decode_startup(&mut huge).is_err());
        let mut v2 = BytesMut::from(&b"\0\0\0\x09\0\x02\0\0\0"[..]);
        assert!(matches!(
            decode_startup(&mut v2),
            Err(PgCodecError::UnsupportedProtocol { major: 2, .. })
        ));
    }

    #[test]
    fn waits_for_a_partial_packet() {
        let encoded = encode_startup(&[("user", "u")]);
        let mut buf = BytesMut::from(&encoded[..encoded.len() - 1]);
        assert_eq!(decode_startup(&mut buf).unwrap(), None);
    }
}
