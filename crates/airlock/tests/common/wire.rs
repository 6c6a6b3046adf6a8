//! Raw PostgreSQL frontend messages for tests that must send what no
//! driver sends (pipelines, names of other sessions, odd orders).

use airlock_pg::frontend::{encode_parse, encode_sync};

/// A frame: tag, length, body.
pub fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A NUL-terminated string.
pub fn cstr(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
    out.push(0);
}

/// `Bind` of text parameters, with one result format for every column.
pub fn bind(portal: &str, statement: &str, parameters: &[&str], result_format: i16) -> Vec<u8> {
    let mut body = Vec::new();
    cstr(&mut body, portal);
    cstr(&mut body, statement);
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&(parameters.len() as i16).to_be_bytes());
    for value in parameters {
        body.extend_from_slice(&(value.len() as i32).to_be_bytes());
        body.extend_from_slice(value.as_bytes());
    }
    body.extend_from_slice(&1i16.to_be_bytes());
    body.extend_from_slice(&result_format.to_be_bytes());
    message(b'B', &body)
}

/// `Execute` of a portal, all rows.
pub fn execute(portal: &str) -> Vec<u8> {
    let mut body = Vec::new();
    cstr(&mut body, portal);
    body.extend_from_slice(&0i32.to_be_bytes());
    message(b'E', &body)
}

/// `Parse` with no parameter types.
pub fn parse(name: &str, sql: &str) -> Vec<u8> {
    let mut out = Vec::new();
    encode_parse(&mut out, name, sql);
    out
}

pub fn sync() -> Vec<u8> {
    let mut out = Vec::new();
    encode_sync(&mut out);
    out
}

/// `Describe` (`kind` `S` statement, `P` portal).
pub fn describe(kind: u8, name: &str) -> Vec<u8> {
    let mut body = vec![kind];
    cstr(&mut body, name);
    message(b'D', &body)
}

/// `Close` (`kind` `S` statement, `P` portal).
pub fn close(kind: u8, name: &str) -> Vec<u8> {
    let mut body = vec![kind];
    cstr(&mut body, name);
    message(b'C', &body)
}

pub fn pipeline(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}
