//! Frontend (client → server) messages the gateway inspects, and encoders for
//! the ones it sends upstream itself.

use crate::buf::{begin_message, finish_message, put_cstr, BodyReader};
use crate::frame::Frame;
use crate::PgCodecError;

/// Bound on parameters in one `Parse` or `Bind` (PostgreSQL's own is 65,535).
pub const MAX_PARAMETERS: usize = 65_535;

/// Frontend message tags.
pub mod tag {
    pub const QUERY: u8 = b'Q';
    pub const PARSE: u8 = b'P';
    pub const BIND: u8 = b'B';
    pub const EXECUTE: u8 = b'E';
    pub const DESCRIBE: u8 = b'D';
    pub const CLOSE: u8 = b'C';
    pub const SYNC: u8 = b'S';
    pub const FLUSH: u8 = b'H';
    pub const TERMINATE: u8 = b'X';
    pub const PASSWORD: u8 = b'p';
    pub const COPY_DATA: u8 = b'd';
    pub const COPY_DONE: u8 = b'c';
    pub const COPY_FAIL: u8 = b'f';
    pub const FUNCTION_CALL: u8 = b'F';
}

/// A decoded frontend message, borrowing from its frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontendMessage<'a> {
    /// Simple query: one or more statements.
    Query {
        /// Bytes that are not UTF-8 are replaced by U+FFFD: the client
        /// encoding is one in which every byte below 0x80 is ASCII (see
        /// [`crate::encoding`]), so the statement's structure is intact;
        /// the frame itself is forwarded unchanged.
        text: std::borrow::Cow<'a, str>,
    },
    /// Extended protocol: prepare `query` as statement `name` (empty: unnamed).
    Parse {
        name: &'a str,
        /// As [`FrontendMessage::Query`]'s text.
        query: std::borrow::Cow<'a, str>,
        parameter_types: usize,
    },
    /// Bind a prepared statement to a portal.
    Bind {
        portal: &'a str,
        statement: &'a str,
        parameters: usize,
        /// Result column format codes (none: all text; one: all alike).
        result_formats: Vec<i16>,
    },
    /// Run a portal.
    Execute {
        portal: &'a str,
        max_rows: i32,
    },
    /// Describe a statement (`S`) or portal (`P`).
    Describe {
        kind: u8,
        name: &'a str,
    },
    /// Close a statement (`S`) or portal (`P`).
    Close {
        kind: u8,
        name: &'a str,
    },
    Sync,
    Flush,
    Terminate,
    /// A password, SASL or GSS response: opaque here, see [`decode_password`].
    PasswordOrSasl,
    CopyData,
    CopyDone,
    CopyFail,
    /// The legacy fastpath function call interface.
    FunctionCall,
}

/// Decodes the frontend message in `frame`.
pub fn decode_frontend(frame: &Frame) -> Result<FrontendMessage<'_>, PgCodecError> {
    let body = frame.body();
    let message = match frame.tag() {
        tag::QUERY => {
            let mut reader = BodyReader::new(body, "Query");
            let text = reader.cstr_lossy()?;
            FrontendMessage::Query { text }
        }
        tag::PARSE => {
            let mut reader = BodyReader::new(body, "Parse");
            let name = reader.cstr()?;
            let query = reader.cstr_lossy()?;
            let parameter_types = reader.count16("parameter types", MAX_PARAMETERS)?;
            reader.take(parameter_types.saturating_mul(4))?;
            FrontendMessage::Parse {
                name,
                query,
                parameter_types,
            }
        }
        tag::BIND => {
            let mut reader = BodyReader::new(body, "Bind");
            let portal = reader.cstr()?;
            let statement = reader.cstr()?;
            let formats = reader.count16("parameter formats", MAX_PARAMETERS)?;
            reader.take(formats.saturating_mul(2))?;
            let parameters = reader.count16("parameters", MAX_PARAMETERS)?;
            for _ in 0..parameters {
                let length = reader.i32()?;
                if length > 0 {
                    let length = usize::try_from(length)
                        .map_err(|_| PgCodecError::Malformed { what: "Bind" })?;
                    reader.take(length)?;
                } else if length < -1 {
                    return Err(PgCodecError::Malformed { what: "Bind" });
                }
            }
            let result_format_count =
                reader.count16("result formats", crate::backend::MAX_COLUMNS)?;
            let mut result_formats = Vec::with_capacity(result_format_count);
            for _ in 0..result_format_count {
                result_formats.push(reader.i16()?);
            }
            FrontendMessage::Bind {
                portal,
                statement,
                parameters,
                result_formats,
            }
        }
        tag::EXECUTE => {
            let mut reader = BodyReader::new(body, "Execute");
            let portal = reader.cstr()?;
            let max_rows = reader.i32()?;
            FrontendMessage::Execute { portal, max_rows }
        }
        tag::DESCRIBE | tag::CLOSE => {
            let what = if frame.tag() == tag::DESCRIBE {
                "Describe"
            } else {
                "Close"
            };
            let mut reader = BodyReader::new(body, what);
            let kind = reader.u8()?;
            if kind != b'S' && kind != b'P' {
                return Err(PgCodecError::Malformed { what });
            }
            let name = reader.cstr()?;
            if frame.tag() == tag::DESCRIBE {
                FrontendMessage::Describe { kind, name }
            } else {
                FrontendMessage::Close { kind, name }
            }
        }
        tag::SYNC => FrontendMessage::Sync,
        tag::FLUSH => FrontendMessage::Flush,
        tag::TERMINATE => FrontendMessage::Terminate,
        tag::PASSWORD => FrontendMessage::PasswordOrSasl,
        tag::COPY_DATA => FrontendMessage::CopyData,
        tag::COPY_DONE => FrontendMessage::CopyDone,
        tag::COPY_FAIL => FrontendMessage::CopyFail,
        tag::FUNCTION_CALL => FrontendMessage::FunctionCall,
        other => {
            return Err(PgCodecError::UnexpectedTag {
                tag: char::from(other),
            })
        }
    };
    Ok(message)
}

/// Reads a cleartext `PasswordMessage`.
pub fn decode_password(frame: &Frame) -> Result<&str, PgCodecError> {
    if frame.tag() != tag::PASSWORD {
        return Err(PgCodecError::UnexpectedTag {
            tag: char::from(frame.tag()),
        });
    }
    let mut reader = BodyReader::new(frame.body(), "PasswordMessage");
    let password = reader.cstr()?;
    if reader.remaining() != 0 {
        return Err(PgCodecError::Malformed {
            what: "PasswordMessage",
        });
    }
    Ok(password)
}

/// Encodes a simple `Query`.
pub fn encode_query(out: &mut Vec<u8>, text: &str) {
    let at = begin_message(out, tag::QUERY);
    put_cstr(out, text);
    finish_message(out, at);
}

/// Encodes a `Parse` with no parameter types.
pub fn encode_parse(out: &mut Vec<u8>, name: &str, query: &str) {
    let at = begin_message(out, tag::PARSE);
    put_cstr(out, name);
    put_cstr(out, query);
    out.extend_from_slice(&0i16.to_be_bytes());
    finish_message(out, at);
}

/// Encodes a cleartext or MD5 `PasswordMessage`.
pub fn encode_password(out: &mut Vec<u8>, password: &str) {
    let at = begin_message(out, tag::PASSWORD);
    put_cstr(out, password);
    finish_message(out, at);
}

/// Encodes a `SASLInitialResponse`.
pub fn encode_sasl_initial_response(out: &mut Vec<u8>, mechanism: &str, data: &[u8]) {
    let at = begin_message(out, tag::PASSWORD);
    put_cstr(out, mechanism);
    let length = i32::try_from(data.len()).unwrap_or(i32::MAX);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(data);
    finish_message(out, at);
}

/// Encodes a `SASLResponse`.
pub fn encode_sasl_response(out: &mut Vec<u8>, data: &[u8]) {
    let at = begin_message(out, tag::PASSWORD);
    out.extend_from_slice(data);
    finish_message(out, at);
}

/// Encodes a `Terminate`.
pub fn encode_terminate(out: &mut Vec<u8>) {
    let at = begin_message(out, tag::TERMINATE);
    finish_message(out, at);
}

/// Encodes a `Sync`.
pub fn encode_sync(out: &mut Vec<u8>) {
    let at = begin_message(out, tag::SYNC);
    finish_message(out, at);
}

/// One value bound by a `Bind`: its format code (0 text, 1 binary) and its
/// bytes (`None` for NULL).
pub type BoundValue<'a> = (i16, Option<&'a [u8]>);

/// The parameter values of a `Bind` message body (without the 5-byte
/// header), each with its format code. Bounded like [`decode_frontend`].
pub fn bind_parameters(body: &[u8]) -> Result<Vec<BoundValue<'_>>, PgCodecError> {
    let mut reader = BodyReader::new(body, "Bind");
    reader.cstr()?;
    reader.cstr()?;
    let format_count = reader.count16("parameter formats", MAX_PARAMETERS)?;
    let mut formats = Vec::with_capacity(format_count);
    for _ in 0..format_count {
        formats.push(reader.i16()?);
    }
    let count = reader.count16("parameters", MAX_PARAMETERS)?;
    let mut values = Vec::with_capacity(count.min(1024));
    for index in 0..count {
        let format = match formats.as_slice() {
            [] => 0,
            [single] => *single,
            many => many.get(index).copied().unwrap_or(0),
        };
        let length = reader.i32()?;
        let value = if length >= 0 {
            let length =
                usize::try_from(length).map_err(|_| PgCodecError::Malformed { what: "Bind" })?;
            Some(reader.take(length)?)
        } else if length == -1 {
            None
        } else {
            return Err(PgCodecError::Malformed { what: "Bind" });
        };
        values.push((format, value));
    }
    Ok(values)
}

/// Encodes `Describe` of a portal (`P`) or statement (`S`).
pub fn encode_describe(out: &mut Vec<u8>, kind: u8, name: &str) {
    let at = begin_message(out, tag::DESCRIBE);
    out.push(kind);
    put_cstr(out, name);
    finish_message(out, at);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::FrameDecoder;
    use bytes::BytesMut;

    fn frame(bytes: Vec<u8>) -> Frame {
        FrameDecoder::default()
            .decode(&mut BytesMut::from(&bytes[..]))
            .unwrap()
            .unwrap()
    }

    #[test]
    fn decodes_query_and_parse() {
        let mut out = Vec::new();
        encode_query(&mut out, "select 1; select 2");
        assert_eq!(
            decode_frontend(&frame(out)).unwrap(),
            FrontendMessage::Query {
                text: "select 1; select 2".into()
            }
        );
        // Bytes of another (ASCII-compatible) encoding: kept structurally.
        let mut latin1 = vec![b'Q', 0, 0, 0, 0];
        latin1.extend_from_slice(b"select 'caf\xe9'\0");
        let length = (latin1.len() - 1) as i32;
        latin1[1..5].copy_from_slice(&length.to_be_bytes());
        assert_eq!(
            decode_frontend(&frame(latin1)).unwrap(),
            FrontendMessage::Query {
                text: "select 'caf\u{fffd}'".into()
            }
        );
        let mut out = Vec::new();
        encode_parse(&mut out, "s1", "select $1");
        assert_eq!(
            decode_frontend(&frame(out)).unwrap(),
            FrontendMessage::Parse {
                name: "s1",
                query: "select $1".into(),
                parameter_types: 0
            }
        );
    }

    #[test]
    fn decodes_bind_with_null_and_values() {
        // portal "", statement "s1", 1 format (text), 2 params: NULL and "42", 0 result formats
        let mut body = Vec::new();
        body.extend_from_slice(b"\0s1\0");
        body.extend_from_slice(&1i16.to_be_bytes());
        body.extend_from_slice(&0i16.to_be_bytes());
        body.extend_from_slice(&2i16.to_be_bytes());
        body.extend_from_slice(&(-1i32).to_be_bytes());
        body.extend_from_slice(&2i32.to_be_bytes());
        body.extend_from_slice(b"42");
        body.extend_from_slice(&0i16.to_be_bytes());
        let mut out = Vec::new();
        let at = begin_message(&mut out, tag::BIND);
        out.extend_from_slice(&body);
        finish_message(&mut out, at);
        assert_eq!(
            decode_frontend(&frame(out)).unwrap(),
            FrontendMessage::Bind {
                portal: "",
                statement: "s1",
                parameters: 2,
                result_formats: vec![]
            }
        );
    }

    #[test]
    fn refuses_a_bind_whose_parameter_overruns_the_body() {
        let mut out = Vec::new();
        let at = begin_message(&mut out, tag::BIND);
        out.extend_from_slice(b"\0\0");
        out.extend_from_slice(&0i16.to_be_bytes());
        out.extend_from_slice(&1i16.to_be_bytes());
        out.extend_from_slice(&1000i32.to_be_bytes());
        finish_message(&mut out, at);
        assert!(decode_frontend(&frame(out)).is_err());
    }

    #[test]
    fn reads_a_password() {
        let mut out = Vec::new();
        encode_password(&mut out, "tok");
        assert_eq!(decode_password(&frame(out)).unwrap(), "tok");
    }
}
