//! Backend (server → client) messages: decoders for what the gateway reads
//! from the upstream, encoders for what it says to clients itself.

use crate::buf::{begin_message, finish_message, put_cstr, BodyReader};
use crate::{ErrorFields, PgCodecError};

/// Backend message tags.
pub mod tag {
    pub const AUTHENTICATION: u8 = b'R';
    pub const PARAMETER_STATUS: u8 = b'S';
    pub const BACKEND_KEY_DATA: u8 = b'K';
    pub const READY_FOR_QUERY: u8 = b'Z';
    pub const ERROR_RESPONSE: u8 = b'E';
    pub const NOTICE_RESPONSE: u8 = b'N';
    pub const NOTIFICATION_RESPONSE: u8 = b'A';
    pub const COMMAND_COMPLETE: u8 = b'C';
    pub const ROW_DESCRIPTION: u8 = b'T';
    pub const DATA_ROW: u8 = b'D';
    pub const EMPTY_QUERY_RESPONSE: u8 = b'I';
    pub const NEGOTIATE_PROTOCOL_VERSION: u8 = b'v';
    pub const COPY_IN_RESPONSE: u8 = b'G';
    pub const COPY_OUT_RESPONSE: u8 = b'H';
    pub const COPY_BOTH_RESPONSE: u8 = b'W';
}

/// Bound on SASL mechanisms offered in one message.
const MAX_SASL_MECHANISMS: usize = 16;
/// Bound on fields in an error or notice.
const MAX_ERROR_FIELDS: usize = 64;

/// An `Authentication*` request from a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthRequest<'a> {
    Ok,
    Cleartext,
    Md5 {
        salt: [u8; 4],
    },
    Sasl {
        mechanisms: Vec<&'a str>,
    },
    SaslContinue {
        data: &'a [u8],
    },
    SaslFinal {
        data: &'a [u8],
    },
    /// Kerberos, GSS, SSPI: not supported towards upstreams.
    Unsupported {
        code: i32,
    },
}

/// Decodes the body of an `R` message.
pub fn decode_auth_request(body: &[u8]) -> Result<AuthRequest<'_>, PgCodecError> {
    let mut reader = BodyReader::new(body, "Authentication");
    let code = reader.i32()?;
    Ok(match code {
        0 => AuthRequest::Ok,
        3 => AuthRequest::Cleartext,
        5 => {
            let salt = reader.take(4)?;
            let mut array = [0u8; 4];
            array.copy_from_slice(salt);
            AuthRequest::Md5 { salt: array }
        }
        10 => {
            let mut mechanisms = Vec::new();
            loop {
                let mechanism = reader.cstr()?;
                if mechanism.is_empty() {
                    break;
                }
                if mechanisms.len() >= MAX_SASL_MECHANISMS {
                    return Err(PgCodecError::TooMany {
                        what: "SASL mechanisms",
                        count: mechanisms.len() + 1,
                        max: MAX_SASL_MECHANISMS,
                    });
                }
                mechanisms.push(mechanism);
            }
            AuthRequest::Sasl { mechanisms }
        }
        11 => AuthRequest::SaslContinue {
            data: reader.rest(),
        },
        12 => AuthRequest::SaslFinal {
            data: reader.rest(),
        },
        code => AuthRequest::Unsupported { code },
    })
}

/// PostgreSQL's own bound on columns in a table or result.
pub const MAX_COLUMNS: usize = 1664;

/// One column of a `RowDescription`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDescription {
    pub name: String,
    pub table_oid: i32,
    pub column: i16,
    pub type_oid: i32,
    pub type_size: i16,
    pub type_modifier: i32,
    /// 0 = text, 1 = binary.
    pub format: i16,
}

/// Decodes a `RowDescription`.
pub fn decode_row_description(body: &[u8]) -> Result<Vec<FieldDescription>, PgCodecError> {
    let mut reader = BodyReader::new(body, "RowDescription");
    let count = reader.count16("columns", MAX_COLUMNS)?;
    let mut fields = Vec::with_capacity(count);
    for _ in 0..count {
        fields.push(FieldDescription {
            // In the session's client encoding, which need not be UTF-8
            // (LATIN9, WIN1252 …): bytes that are not UTF-8 read as U+FFFD.
            // The gateway forwards the upstream's own bytes unless it masks a
            // name, and treats a name it cannot read exactly as matching
            // every column rule (`airlock-pg-gateway`'s masking).
            name: reader.cstr_lossy()?.into_owned(),
            table_oid: reader.i32()?,
            column: reader.i16()?,
            type_oid: reader.i32()?,
            type_size: reader.i16()?,
            type_modifier: reader.i32()?,
            format: reader.i16()?,
        });
    }
    Ok(fields)
}

/// Encodes a whole `RowDescription` message.
pub fn encode_row_description(out: &mut Vec<u8>, fields: &[FieldDescription]) {
    let at = begin_message(out, tag::ROW_DESCRIPTION);
    let count = i16::try_from(fields.len()).unwrap_or(i16::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    for field in fields.iter().take(usize::try_from(count).unwrap_or(0)) {
        put_cstr(out, &field.name.replace('\0', ""));
        out.extend_from_slice(&field.table_oid.to_be_bytes());
        out.extend_from_slice(&field.column.to_be_bytes());
        out.extend_from_slice(&field.type_oid.to_be_bytes());
        out.extend_from_slice(&field.type_size.to_be_bytes());
        out.extend_from_slice(&field.type_modifier.to_be_bytes());
        out.extend_from_slice(&field.format.to_be_bytes());
    }
    finish_message(out, at);
}

/// Decodes a `DataRow` into its column values (`None` for NULL), borrowing
/// from the body.
pub fn decode_data_row(body: &[u8]) -> Result<Vec<Option<&[u8]>>, PgCodecError> {
    let mut reader = BodyReader::new(body, "DataRow");
    let count = reader.count16("columns", MAX_COLUMNS)?;
    let mut values = Vec::with_capacity(count);
    for _ in 0..count {
        let length = reader.i32()?;
        if length == -1 {
            values.push(None);
        } else {
            let length =
                usize::try_from(length).map_err(|_| PgCodecError::Malformed { what: "DataRow" })?;
            values.push(Some(reader.take(length)?));
        }
    }
    if reader.remaining() != 0 {
        return Err(PgCodecError::Malformed { what: "DataRow" });
    }
    Ok(values)
}

/// Encodes a `DataRow` from column values (`None` for NULL).
pub fn encode_data_row(out: &mut Vec<u8>, values: &[Option<&[u8]>]) {
    let at = begin_message(out, tag::DATA_ROW);
    let count = i16::try_from(values.len()).unwrap_or(i16::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    for value in values {
        match value {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(bytes) => {
                let length = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
                out.extend_from_slice(&length.to_be_bytes());
                out.extend_from_slice(bytes);
            }
        }
    }
    finish_message(out, at);
}

/// Decodes `BackendKeyData`: (process id, secret key).
pub fn decode_backend_key_data(body: &[u8]) -> Result<(i32, i32), PgCodecError> {
    let mut reader = BodyReader::new(body, "BackendKeyData");
    let process_id = reader.i32()?;
    let secret_key = reader.i32()?;
    Ok((process_id, secret_key))
}

/// Decodes the transaction status byte of `ReadyForQuery`.
pub fn decode_ready_for_query(body: &[u8]) -> Result<u8, PgCodecError> {
    let mut reader = BodyReader::new(body, "ReadyForQuery");
    let status = reader.u8()?;
    if !matches!(status, b'I' | b'T' | b'E') {
        return Err(PgCodecError::Malformed {
            what: "ReadyForQuery",
        });
    }
    Ok(status)
}

/// Decodes the fields of an `ErrorResponse` or `NoticeResponse`.
pub fn decode_error_fields(body: &[u8]) -> Result<ErrorFields, PgCodecError> {
    let mut reader = BodyReader::new(body, "ErrorResponse");
    let mut fields = ErrorFields::default();
    let mut count = 0usize;
    loop {
        let code = reader.u8()?;
        if code == 0 {
            break;
        }
        count += 1;
        if count > MAX_ERROR_FIELDS {
            return Err(PgCodecError::TooMany {
                what: "error fields",
                count,
                max: MAX_ERROR_FIELDS,
            });
        }
        let value = reader.cstr()?;
        match code {
            b'V' => fields.severity = value.to_string(),
            b'S' if fields.severity.is_empty() => fields.severity = value.to_string(),
            b'C' => fields.code = value.to_string(),
            b'M' => fields.message = value.to_string(),
            b'D' => fields.detail = Some(value.to_string()),
            b'H' => fields.hint = Some(value.to_string()),
            b'P' => fields.position = value.parse().ok(),
            _ => {}
        }
    }
    Ok(fields)
}

/// Masks the text of an `ErrorResponse` or `NoticeResponse` field by field:
/// `rewrite(code, value)` returns a new value for fields it changes. The
/// message is re-encoded only when something changed.
pub fn rewrite_error_fields(
    message_tag: u8,
    body: &[u8],
    mut rewrite: impl FnMut(u8, &str) -> Option<String>,
) -> Result<Option<Vec<u8>>, PgCodecError> {
    let mut reader = BodyReader::new(body, "ErrorResponse");
    let mut fields: Vec<(u8, std::borrow::Cow<'_, str>)> = Vec::new();
    let mut changed = false;
    loop {
        let code = reader.u8()?;
        if code == 0 {
            break;
        }
        if fields.len() >= MAX_ERROR_FIELDS {
            return Err(PgCodecError::TooMany {
                what: "error fields",
                count: fields.len() + 1,
                max: MAX_ERROR_FIELDS,
            });
        }
        let value = reader.cstr()?;
        match rewrite(code, value) {
            Some(new) => {
                changed = true;
                fields.push((code, std::borrow::Cow::Owned(new)));
            }
            None => fields.push((code, std::borrow::Cow::Borrowed(value))),
        }
    }
    if !changed {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(body.len() + 16);
    let at = begin_message(&mut out, message_tag);
    for (code, value) in &fields {
        out.push(*code);
        put_cstr(&mut out, &value.replace('\0', ""));
    }
    out.push(0);
    finish_message(&mut out, at);
    Ok(Some(out))
}

/// Decodes the tag of `CommandComplete` (`SELECT 3`, `INSERT 0 1`, …).
pub fn decode_command_complete(body: &[u8]) -> Result<&str, PgCodecError> {
    BodyReader::new(body, "CommandComplete").cstr()
}

/// Decodes a `ParameterStatus`: (name, value).
pub fn decode_parameter_status(body: &[u8]) -> Result<(&str, &str), PgCodecError> {
    let mut reader = BodyReader::new(body, "ParameterStatus");
    let name = reader.cstr()?;
    let value = reader.cstr()?;
    Ok((name, value))
}

/// The number of rows a `CommandComplete` tag reports, if any.
pub fn rows_from_command_tag(tag: &str) -> Option<u64> {
    tag.rsplit(' ').next().and_then(|count| count.parse().ok())
}

/// Encodes `AuthenticationOk`.
pub fn encode_auth_ok(out: &mut Vec<u8>) {
    let at = begin_message(out, tag::AUTHENTICATION);
    out.extend_from_slice(&0i32.to_be_bytes());
    finish_message(out, at);
}

/// Encodes `AuthenticationCleartextPassword`.
pub fn encode_auth_cleartext(out: &mut Vec<u8>) {
    let at = begin_message(out, tag::AUTHENTICATION);
    out.extend_from_slice(&3i32.to_be_bytes());
    finish_message(out, at);
}

/// Encodes `BackendKeyData`.
pub fn encode_backend_key_data(out: &mut Vec<u8>, process_id: i32, secret_key: i32) {
    let at = begin_message(out, tag::BACKEND_KEY_DATA);
    out.extend_from_slice(&process_id.to_be_bytes());
    out.extend_from_slice(&secret_key.to_be_bytes());
    finish_message(out, at);
}

/// Encodes `ReadyForQuery` with a transaction status (`I`, `T`, `E`).
pub fn encode_ready_for_query(out: &mut Vec<u8>, status: u8) {
    let at = begin_message(out, tag::READY_FOR_QUERY);
    out.push(status);
    finish_message(out, at);
}

/// Encodes `ParameterStatus`.
pub fn encode_parameter_status(out: &mut Vec<u8>, name: &str, value: &str) {
    let at = begin_message(out, tag::PARAMETER_STATUS);
    put_cstr(out, name);
    put_cstr(out, value);
    finish_message(out, at);
}

/// Encodes `NegotiateProtocolVersion`: the newest minor version supported and
/// the protocol options (`_pq_.*`) not recognised.
pub fn encode_negotiate_protocol_version(out: &mut Vec<u8>, minor: i32, unrecognised: &[&str]) {
    let at = begin_message(out, tag::NEGOTIATE_PROTOCOL_VERSION);
    out.extend_from_slice(&minor.to_be_bytes());
    let count = i32::try_from(unrecognised.len()).unwrap_or(i32::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    for option in unrecognised {
        put_cstr(out, option);
    }
    finish_message(out, at);
}

fn encode_fields(out: &mut Vec<u8>, message_tag: u8, fields: &ErrorFields) {
    let at = begin_message(out, message_tag);
    out.push(b'S');
    put_cstr(out, &fields.severity);
    out.push(b'V');
    put_cstr(out, &fields.severity);
    out.push(b'C');
    put_cstr(out, &fields.code);
    out.push(b'M');
    put_cstr(out, &fields.message);
    if let Some(detail) = &fields.detail {
        out.push(b'D');
        put_cstr(out, detail);
    }
    if let Some(hint) = &fields.hint {
        out.push(b'H');
        put_cstr(out, hint);
    }
    if let Some(position) = fields.position {
        out.push(b'P');
        put_cstr(out, &position.to_string());
    }
    out.push(0);
    finish_message(out, at);
}

/// Encodes an `ErrorResponse`.
pub fn encode_error(out: &mut Vec<u8>, fields: &ErrorFields) {
    encode_fields(out, tag::ERROR_RESPONSE, fields);
}

/// Encodes a `NoticeResponse`.
pub fn encode_notice(out: &mut Vec<u8>, fields: &ErrorFields) {
    encode_fields(out, tag::NOTICE_RESPONSE, fields);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_round_trip() {
        let fields = ErrorFields {
            severity: "ERROR".into(),
            code: "42501".into(),
            message: "blocked".into(),
            detail: None,
            hint: Some("ask".into()),
            position: Some(12),
        };
        let mut out = Vec::new();
        encode_error(&mut out, &fields);
        assert_eq!(out.first(), Some(&b'E'));
        let decoded = decode_error_fields(&out[5..]).unwrap();
        assert_eq!(decoded, fields);
    }

    #[test]
    fn auth_requests() {
        assert_eq!(
            decode_auth_request(&0i32.to_be_bytes()).unwrap(),
            AuthRequest::Ok
        );
        let mut md5 = 5i32.to_be_bytes().to_vec();
        md5.extend_from_slice(b"abcd");
        assert_eq!(
            decode_auth_request(&md5).unwrap(),
            AuthRequest::Md5 { salt: *b"abcd" }
        );
        let mut sasl = 10i32.to_be_bytes().to_vec();
        sasl.extend_from_slice(b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0");
        assert_eq!(
            decode_auth_request(&sasl).unwrap(),
            AuthRequest::Sasl {
                mechanisms: vec!["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]
            }
        );
        assert!(decode_auth_request(&5i32.to_be_bytes()).is_err());
    }

    #[test]
    fn data_rows_round_trip_and_bounds_hold() {
        let mut out = Vec::new();
        encode_data_row(&mut out, &[Some(b"42"), None, Some(b"")]);
        let values = decode_data_row(&out[5..]).unwrap();
        assert_eq!(values, vec![Some(&b"42"[..]), None, Some(&b""[..])]);
        // A value longer than the body.
        let mut bad = 1i16.to_be_bytes().to_vec();
        bad.extend_from_slice(&100i32.to_be_bytes());
        assert!(decode_data_row(&bad).is_err());
        // Trailing bytes.
        let mut trailing = out[5..].to_vec();
        trailing.push(0);
        assert!(decode_data_row(&trailing).is_err());
    }

    #[test]
    fn row_descriptions_decode() {
        let mut body = 1i16.to_be_bytes().to_vec();
        body.extend_from_slice(b"email\0");
        body.extend_from_slice(&0i32.to_be_bytes());
        body.extend_from_slice(&0i16.to_be_bytes());
        body.extend_from_slice(&25i32.to_be_bytes());
        body.extend_from_slice(&(-1i16).to_be_bytes());
        body.extend_from_slice(&(-1i32).to_be_bytes());
        body.extend_from_slice(&0i16.to_be_bytes());
        let fields = decode_row_description(&body).unwrap();
        assert_eq!(fields[0].name, "email");
        assert_eq!(fields[0].type_oid, 25);
        assert!(decode_row_description(&body[..body.len() - 1]).is_err());
    }

    #[test]
    fn command_tags_give_row_counts() {
        assert_eq!(rows_from_command_tag("SELECT 3"), Some(3));
        assert_eq!(rows_from_command_tag("INSERT 0 12"), Some(12));
        assert_eq!(rows_from_command_tag("BEGIN"), None);
    }
}
