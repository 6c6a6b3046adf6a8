//! Raw PostgreSQL frontend messages for tests that must send what no
//! driver sends (pipelines, names of other sessions, odd orders).

use airlock_pg::backend::{decode_data_row, decode_error_fields, tag};
use airlock_pg::frontend::{encode_parse, encode_password, encode_query, encode_sync};
use airlock_pg::startup::encode_startup;
use airlock_pg::{ErrorFields, FrameDecoder};
use airlock_testkit::GatewayProcess;
use bytes::BytesMut;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

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

/// What the server answered up to a `ReadyForQuery` (or the end).
#[derive(Debug, Default)]
pub struct Reply {
    pub errors: Vec<ErrorFields>,
    pub rows: Vec<Vec<Option<Vec<u8>>>>,
    pub tags: Vec<String>,
    pub descriptions: usize,
    pub ready: bool,
    /// Every message tag received, in order.
    pub frames: Vec<u8>,
    /// `BackendKeyData`: process id and secret key.
    pub backend_key: Option<(i32, i32)>,
    /// The sender process id of each `NotificationResponse`.
    pub notifications: Vec<i32>,
    /// How the reply ended when it did not reach `ReadyForQuery`: `eof`,
    /// or the socket error.
    pub cut_short: Option<String>,
}

impl Reply {
    pub fn codes(&self) -> Vec<&str> {
        self.errors
            .iter()
            .map(|error| error.code.as_str())
            .collect()
    }

    pub fn text(&self) -> String {
        self.rows
            .iter()
            .flatten()
            .flatten()
            .map(|value| String::from_utf8_lossy(value).into_owned())
            .collect::<Vec<_>>()
            .join("|")
    }
}

/// A raw protocol session through the gateway.
pub struct Wire {
    stream: TcpStream,
    buf: BytesMut,
    /// The `BackendKeyData` the session was given.
    pub backend_key: Option<(i32, i32)>,
}

impl Wire {
    #[allow(clippy::result_large_err)] // a test helper: the server's error as it came
    pub fn connect(
        gateway: &GatewayProcess,
        token: &str,
        params: &[(&str, &str)],
    ) -> Result<Self, ErrorFields> {
        Self::connect_to(gateway, "pg-test", token, params)
    }

    /// Connects as `agent-7` to `connection`.
    #[allow(clippy::result_large_err)] // a test helper: the server's error as it came
    pub fn connect_to(
        gateway: &GatewayProcess,
        connection: &str,
        token: &str,
        params: &[(&str, &str)],
    ) -> Result<Self, ErrorFields> {
        let stream = TcpStream::connect(("127.0.0.1", gateway.pg_port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut wire = Self {
            stream,
            buf: BytesMut::new(),
            backend_key: None,
        };
        let mut all = vec![("user", "agent-7"), ("database", connection)];
        all.extend_from_slice(params);
        wire.send(&encode_startup(&all));
        let mut request = [0u8; 9];
        wire.stream.read_exact(&mut request).unwrap();
        assert_eq!(request[0], b'R', "expected a password request");
        let mut password = Vec::new();
        encode_password(&mut password, token);
        wire.send(&password);
        let reply = wire.until_ready();
        wire.backend_key = reply.backend_key;
        match reply.errors.into_iter().next() {
            Some(error) => Err(error),
            None => Ok(wire),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads until `ReadyForQuery` or the end of the stream.
    pub fn until_ready(&mut self) -> Reply {
        let decoder = FrameDecoder::default();
        let mut reply = Reply::default();
        let mut chunk = [0u8; 8192];
        loop {
            while let Ok(Some(frame)) = decoder.decode(&mut self.buf) {
                reply.frames.push(frame.tag());
                match frame.tag() {
                    tag::ERROR_RESPONSE => reply
                        .errors
                        .push(decode_error_fields(frame.body()).unwrap()),
                    tag::DATA_ROW => reply.rows.push(
                        decode_data_row(frame.body())
                            .unwrap()
                            .into_iter()
                            .map(|value| value.map(<[u8]>::to_vec))
                            .collect(),
                    ),
                    tag::COMMAND_COMPLETE => reply.tags.push(
                        String::from_utf8_lossy(frame.body())
                            .trim_end_matches('\0')
                            .to_string(),
                    ),
                    tag::ROW_DESCRIPTION => reply.descriptions += 1,
                    tag::NOTIFICATION_RESPONSE => {
                        if let Some(pid) = frame.body().get(..4) {
                            reply
                                .notifications
                                .push(i32::from_be_bytes([pid[0], pid[1], pid[2], pid[3]]));
                        }
                    }
                    tag::BACKEND_KEY_DATA => {
                        let body = frame.body();
                        if body.len() == 8 {
                            let pid = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                            let key = i32::from_be_bytes([body[4], body[5], body[6], body[7]]);
                            reply.backend_key = Some((pid, key));
                        }
                    }
                    tag::READY_FOR_QUERY => {
                        reply.ready = true;
                        return reply;
                    }
                    _ => {}
                }
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    reply.cut_short = Some("eof".into());
                    return reply;
                }
                Err(error) => {
                    reply.cut_short = Some(error.to_string());
                    return reply;
                }
                Ok(read) => self.buf.extend_from_slice(&chunk[..read]),
            }
        }
    }

    /// A simple query given as bytes (another client encoding) and its reply.
    pub fn query_bytes(&mut self, sql: &[u8]) -> Reply {
        let mut body = sql.to_vec();
        body.push(0);
        self.send(&message(b'Q', &body));
        self.until_ready()
    }

    /// A simple query and its reply.
    pub fn query(&mut self, sql: &str) -> Reply {
        let mut out = Vec::new();
        encode_query(&mut out, sql);
        self.send(&out);
        self.until_ready()
    }
}
