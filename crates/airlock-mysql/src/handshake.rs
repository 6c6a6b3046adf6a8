//! The connection phase's opening packets: the server's Initial Handshake
//! (protocol version 10), the client's SSLRequest and HandshakeResponse41.
//! Each is decoded and encoded, since the gateway is a server to its
//! clients and a client to its upstreams.

use crate::buf::{
    check_no_nul, put_lenenc, put_lenenc_bytes, put_nul_bytes, put_u16, put_u32, Reader,
};
use crate::{Capabilities, MySqlCodecError, ServerStatus};

/// The only handshake protocol version spoken (MySQL 3.21.0 onwards).
pub const PROTOCOL_VERSION: u8 = 10;
/// Most connection attributes accepted in one HandshakeResponse.
pub const MAX_CONNECT_ATTRIBUTES: usize = 256;
/// Longest auth response sent in a 1-byte-length field.
const MAX_SHORT_AUTH_RESPONSE: usize = 255;
/// Reserved filler bytes after the charset in SSLRequest and
/// HandshakeResponse41; MariaDB's extended capabilities follow.
const RESPONSE_FILLER: usize = 19;

/// The server's first packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialHandshake {
    pub server_version: String,
    /// The connection (thread) id, as used by `KILL`.
    pub connection_id: u32,
    /// The full auth plugin data (scramble): part 1 and part 2 joined,
    /// without part 2's trailing NUL. 20 bytes for the built-in plugins.
    pub auth_plugin_data: Vec<u8>,
    /// Both capability words (MariaDB's extended word when the server
    /// cleared `CLIENT_MYSQL`).
    pub capabilities: Capabilities,
    /// The server's default collation id.
    pub charset: u8,
    pub status: ServerStatus,
    /// The default authentication plugin (`CLIENT_PLUGIN_AUTH`).
    pub auth_plugin_name: Option<String>,
}

impl InitialHandshake {
    /// Decodes a server's Initial Handshake. An ERR packet in its place
    /// (header `0xFF`) is reported as [`MySqlCodecError::Unexpected`]; the
    /// caller decodes it with [`crate::ErrPacket::decode`].
    pub fn decode(payload: &[u8]) -> Result<Self, MySqlCodecError> {
        let mut reader = Reader::new(payload, "initial handshake");
        let version = reader.u8()?;
        if version == crate::generic::ERR_HEADER {
            return Err(MySqlCodecError::Unexpected {
                what: "initial handshake",
                header: version,
            });
        }
        if version != PROTOCOL_VERSION {
            return Err(MySqlCodecError::Unsupported {
                what: "handshake protocol version",
            });
        }
        let server_version = reader.nul_string()?;
        let connection_id = reader.u32()?;
        let mut auth_plugin_data = reader.take(8)?.to_vec();
        reader.take(1)?;
        let lower = reader.u16()?;
        let mut handshake = Self {
            server_version,
            connection_id,
            auth_plugin_data,
            capabilities: Capabilities(u64::from(lower)),
            charset: 0,
            status: ServerStatus::default(),
            auth_plugin_name: None,
        };
        if reader.is_empty() {
            return Ok(handshake);
        }
        handshake.charset = reader.u8()?;
        handshake.status = ServerStatus(reader.u16()?);
        let upper = reader.u16()?;
        let mysql = u32::from(lower) | u32::from(upper) << 16;
        let auth_data_length = reader.u8()?;
        reader.take(6)?;
        let extended = reader.u32()?;
        let mariadb = if mysql & Capabilities::LONG_PASSWORD.mysql_bits() == 0 {
            extended
        } else {
            0
        };
        let capabilities = Capabilities::from_words(mysql, mariadb);
        handshake.capabilities = capabilities;
        auth_plugin_data = std::mem::take(&mut handshake.auth_plugin_data);
        if capabilities.contains(Capabilities::SECURE_CONNECTION) {
            let length = usize::from(auth_data_length.saturating_sub(8)).max(13);
            let part2 = reader.take(length.min(reader.remaining()))?;
            let part2 = part2.strip_suffix(&[0]).unwrap_or(part2);
            auth_plugin_data.extend_from_slice(part2);
        }
        handshake.auth_plugin_data = auth_plugin_data;
        if capabilities.contains(Capabilities::PLUGIN_AUTH) && !reader.is_empty() {
            let name = reader.nul_or_eof_bytes();
            handshake.auth_plugin_name = Some(String::from_utf8_lossy(name).into_owned());
        }
        Ok(handshake)
    }

    /// Encodes for the gateway's listener. `auth_plugin_data` should be 20
    /// bytes without NULs; part 2 gets its trailing NUL here.
    pub fn encode(&self) -> Result<Vec<u8>, MySqlCodecError> {
        check_no_nul(self.server_version.as_bytes(), "server version")?;
        let data = &self.auth_plugin_data;
        if data.len() < 8 || data.len() > 250 {
            return Err(MySqlCodecError::Malformed {
                what: "auth plugin data length",
            });
        }
        let (part1, part2) = data.split_at(8);
        let mut out = Vec::with_capacity(80 + self.server_version.len());
        out.push(PROTOCOL_VERSION);
        put_nul_bytes(&mut out, self.server_version.as_bytes());
        put_u32(&mut out, self.connection_id);
        out.extend_from_slice(part1);
        out.push(0);
        let mysql = self.capabilities.mysql_bits();
        put_u16(&mut out, mysql as u16);
        out.push(self.charset);
        put_u16(&mut out, self.status.0);
        put_u16(&mut out, (mysql >> 16) as u16);
        let plugin_auth = self.capabilities.contains(Capabilities::PLUGIN_AUTH);
        out.push(if plugin_auth {
            (data.len() + 1) as u8
        } else {
            0
        });
        out.extend_from_slice(&[0; 6]);
        let extended = if mysql & Capabilities::LONG_PASSWORD.mysql_bits() == 0 {
            self.capabilities.mariadb_bits()
        } else {
            0
        };
        put_u32(&mut out, extended);
        if self.capabilities.contains(Capabilities::SECURE_CONNECTION) {
            out.extend_from_slice(part2);
            // Part 2 is at least 13 bytes with its NUL.
            out.resize(out.len() + 12usize.saturating_sub(part2.len()), 0);
            out.push(0);
        }
        if plugin_auth {
            let name = self.auth_plugin_name.as_deref().unwrap_or_default();
            check_no_nul(name.as_bytes(), "auth plugin name")?;
            put_nul_bytes(&mut out, name.as_bytes());
        }
        Ok(out)
    }
}

/// The client's request to upgrade to TLS (a HandshakeResponse cut after
/// its filler); the TLS handshake starts right after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SslRequest {
    pub capabilities: Capabilities,
    pub max_packet_size: u32,
    pub charset: u8,
}

/// Length of an SSLRequest payload.
pub const SSL_REQUEST_LENGTH: usize = 32;

fn decode_response_prefix(
    reader: &mut Reader<'_>,
) -> Result<(Capabilities, u32, u8), MySqlCodecError> {
    let mysql = reader.u32()?;
    if mysql & Capabilities::PROTOCOL_41.mysql_bits() == 0 {
        return Err(MySqlCodecError::Unsupported {
            what: "pre-4.1 handshake response",
        });
    }
    let max_packet_size = reader.u32()?;
    let charset = reader.u8()?;
    reader.take(RESPONSE_FILLER)?;
    let extended = reader.u32()?;
    let mariadb = if mysql & Capabilities::LONG_PASSWORD.mysql_bits() == 0 {
        extended
    } else {
        0
    };
    Ok((
        Capabilities::from_words(mysql, mariadb),
        max_packet_size,
        charset,
    ))
}

fn encode_response_prefix(out: &mut Vec<u8>, capabilities: Capabilities, max: u32, charset: u8) {
    let mysql = capabilities.mysql_bits();
    put_u32(out, mysql);
    put_u32(out, max);
    out.push(charset);
    out.extend_from_slice(&[0; RESPONSE_FILLER]);
    let extended = if mysql & Capabilities::LONG_PASSWORD.mysql_bits() == 0 {
        capabilities.mariadb_bits()
    } else {
        0
    };
    put_u32(out, extended);
}

impl SslRequest {
    /// Decodes an SSLRequest.
    pub fn decode(payload: &[u8]) -> Result<Self, MySqlCodecError> {
        let mut reader = Reader::new(payload, "SSLRequest");
        let (capabilities, max_packet_size, charset) = decode_response_prefix(&mut reader)?;
        if !capabilities.contains(Capabilities::SSL) || !reader.is_empty() {
            return Err(reader.malformed());
        }
        Ok(Self {
            capabilities,
            max_packet_size,
            charset,
        })
    }

    /// Encodes an SSLRequest (`CLIENT_SSL` is set whatever the input).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SSL_REQUEST_LENGTH);
        encode_response_prefix(
            &mut out,
            self.capabilities | Capabilities::SSL,
            self.max_packet_size,
            self.charset,
        );
        out
    }
}

/// HandshakeResponse41: who the client is and its first auth response.
#[derive(Clone, PartialEq, Eq)]
pub struct HandshakeResponse {
    pub capabilities: Capabilities,
    pub max_packet_size: u32,
    pub charset: u8,
    pub username: String,
    /// The auth plugin's first response (scramble, signature, token …).
    pub auth_response: Vec<u8>,
    /// `CLIENT_CONNECT_WITH_DB`.
    pub database: Option<String>,
    /// `CLIENT_PLUGIN_AUTH`: the plugin the auth response was made by.
    pub auth_plugin_name: Option<String>,
    /// `CLIENT_CONNECT_ATTRS`, in order.
    pub connect_attributes: Vec<(String, String)>,
    /// `CLIENT_ZSTD_COMPRESSION_ALGORITHM`'s level byte.
    pub zstd_compression_level: Option<u8>,
}

impl std::fmt::Debug for HandshakeResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The auth response may be a cleartext password or token.
        f.debug_struct("HandshakeResponse")
            .field("capabilities", &self.capabilities)
            .field("max_packet_size", &self.max_packet_size)
            .field("charset", &self.charset)
            .field("username", &self.username)
            .field("auth_response", &"<secret>")
            .field("database", &self.database)
            .field("auth_plugin_name", &self.auth_plugin_name)
            .field("connect_attributes", &self.connect_attributes)
            .field("zstd_compression_level", &self.zstd_compression_level)
            .finish()
    }
}

fn utf8(bytes: &[u8], what: &'static str) -> Result<String, MySqlCodecError> {
    // Identity fields are decoded strictly: two byte strings must never
    // collapse into one name through lossy decoding.
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| MySqlCodecError::BadString { what })
}

impl HandshakeResponse {
    /// Decodes a HandshakeResponse41 (4.1+ clients only).
    pub fn decode(payload: &[u8]) -> Result<Self, MySqlCodecError> {
        let mut reader = Reader::new(payload, "handshake response");
        let (capabilities, max_packet_size, charset) = decode_response_prefix(&mut reader)?;
        let username = utf8(reader.nul_bytes()?, "username")?;
        let auth_response =
            if capabilities.contains(Capabilities::PLUGIN_AUTH_LENENC_CLIENT_DATA) {
                reader.lenenc_bytes()?
            } else if capabilities.contains(Capabilities::SECURE_CONNECTION) {
                let length = reader.u8()?;
                reader.take(usize::from(length))?
            } else {
                reader.nul_bytes()?
            }
            .to_vec();
        let mut response = Self {
            capabilities,
            max_packet_size,
            charset,
            username,
            auth_response,
            database: None,
            auth_plugin_name: None,
            connect_attributes: Vec::new(),
            zstd_compression_level: None,
        };
        if capabilities.contains(Capabilities::CONNECT_WITH_DB) && !reader.is_empty() {
            response.database = Some(utf8(reader.nul_or_eof_bytes(), "database")?);
        }
        if capabilities.contains(Capabilities::PLUGIN_AUTH) && !reader.is_empty() {
            response.auth_plugin_name = Some(utf8(reader.nul_or_eof_bytes(), "plugin name")?);
        }
        if capabilities.contains(Capabilities::CONNECT_ATTRS) && !reader.is_empty() {
            let block = reader.lenenc_bytes()?;
            let mut attributes = Reader::new(block, "connect attributes");
            while !attributes.is_empty() {
                if response.connect_attributes.len() >= MAX_CONNECT_ATTRIBUTES {
                    return Err(MySqlCodecError::TooMany {
                        what: "connect attributes",
                        count: response.connect_attributes.len() + 1,
                        max: MAX_CONNECT_ATTRIBUTES,
                    });
                }
                let key = attributes.lenenc_string()?;
                let value = attributes.lenenc_string()?;
                response.connect_attributes.push((key, value));
            }
        }
        if capabilities.contains(Capabilities::ZSTD_COMPRESSION_ALGORITHM) && !reader.is_empty() {
            response.zstd_compression_level = Some(reader.u8()?);
        }
        Ok(response)
    }

    /// Encodes a HandshakeResponse41. The auth response goes in the form
    /// the capabilities select; fields whose capability is clear are
    /// omitted.
    pub fn encode(&self) -> Result<Vec<u8>, MySqlCodecError> {
        let capabilities = self.capabilities | Capabilities::PROTOCOL_41;
        let mut out = Vec::with_capacity(64 + self.username.len() + self.auth_response.len());
        encode_response_prefix(&mut out, capabilities, self.max_packet_size, self.charset);
        check_no_nul(self.username.as_bytes(), "username")?;
        put_nul_bytes(&mut out, self.username.as_bytes());
        if capabilities.contains(Capabilities::PLUGIN_AUTH_LENENC_CLIENT_DATA) {
            put_lenenc_bytes(&mut out, &self.auth_response);
        } else if capabilities.contains(Capabilities::SECURE_CONNECTION) {
            let length = u8::try_from(self.auth_response.len())
                .ok()
                .filter(|&length| usize::from(length) <= MAX_SHORT_AUTH_RESPONSE)
                .ok_or(MySqlCodecError::Malformed {
                    what: "auth response length",
                })?;
            out.push(length);
            out.extend_from_slice(&self.auth_response);
        } else {
            check_no_nul(&self.auth_response, "auth response")?;
            put_nul_bytes(&mut out, &self.auth_response);
        }
        if capabilities.contains(Capabilities::CONNECT_WITH_DB) {
            let database = self.database.as_deref().unwrap_or_default();
            check_no_nul(database.as_bytes(), "database")?;
            put_nul_bytes(&mut out, database.as_bytes());
        }
        if capabilities.contains(Capabilities::PLUGIN_AUTH) {
            let name = self.auth_plugin_name.as_deref().unwrap_or_default();
            check_no_nul(name.as_bytes(), "plugin name")?;
            put_nul_bytes(&mut out, name.as_bytes());
        }
        if capabilities.contains(Capabilities::CONNECT_ATTRS) {
            let mut block = Vec::new();
            for (key, value) in &self.connect_attributes {
                put_lenenc_bytes(&mut block, key.as_bytes());
                put_lenenc_bytes(&mut block, value.as_bytes());
            }
            put_lenenc(&mut out, block.len() as u64);
            out.extend_from_slice(&block);
        }
        if capabilities.contains(Capabilities::ZSTD_COMPRESSION_ALGORITHM) {
            out.push(self.zstd_compression_level.unwrap_or(3));
        }
        Ok(out)
    }
}

/// What a client's first packet is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientHello {
    /// Start TLS now, then read the HandshakeResponse over it.
    SslRequest(SslRequest),
    Response(HandshakeResponse),
}

/// Decodes the client's first packet: an SSLRequest is exactly 32 bytes
/// with `CLIENT_SSL`; anything else must be a HandshakeResponse41.
pub fn decode_client_hello(payload: &[u8]) -> Result<ClientHello, MySqlCodecError> {
    if payload.len() == SSL_REQUEST_LENGTH {
        return SslRequest::decode(payload).map(ClientHello::SslRequest);
    }
    HandshakeResponse::decode(payload).map(ClientHello::Response)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A MySQL 5.7-style handshake, laid out field by field from the
    /// protocol documentation.
    fn mysql_handshake_bytes() -> Vec<u8> {
        let mut bytes = vec![0x0a];
        bytes.extend_from_slice(b"5.7.44\0");
        bytes.extend_from_slice(&[0x2a, 0, 0, 0]); // connection id 42
        bytes.extend_from_slice(b"abcdefgh\0"); // part 1 + filler
        bytes.extend_from_slice(&[0xff, 0xf7]); // caps lower
        bytes.push(0x21); // utf8_general_ci
        bytes.extend_from_slice(&[0x02, 0x00]); // autocommit
        bytes.extend_from_slice(&[0xff, 0x81]); // caps upper
        bytes.push(21); // auth data length
        bytes.extend_from_slice(&[0; 10]);
        bytes.extend_from_slice(b"ijklmnopqrst\0"); // part 2
        bytes.extend_from_slice(b"mysql_native_password\0");
        bytes
    }

    #[test]
    fn decodes_a_mysql_handshake() {
        let bytes = mysql_handshake_bytes();
        let handshake = InitialHandshake::decode(&bytes).unwrap();
        assert_eq!(handshake.server_version, "5.7.44");
        assert_eq!(handshake.connection_id, 42);
        assert_eq!(handshake.auth_plugin_data, b"abcdefghijklmnopqrst");
        assert_eq!(handshake.capabilities, Capabilities(0x81ff_f7ff));
        assert!(handshake.capabilities.contains(Capabilities::PLUGIN_AUTH));
        assert_eq!(handshake.charset, 0x21);
        assert!(handshake.status.autocommit());
        assert_eq!(
            handshake.auth_plugin_name.as_deref(),
            Some("mysql_native_password")
        );
        assert_eq!(handshake.encode().unwrap(), bytes);
    }

    #[test]
    fn decodes_mariadb_extended_capabilities() {
        let mut bytes = mysql_handshake_bytes();
        // Clear CLIENT_MYSQL and put extended capabilities in the filler.
        bytes[21] = 0xfe;
        bytes[35..39].copy_from_slice(&[0x1d, 0, 0, 0]);
        let handshake = InitialHandshake::decode(&bytes).unwrap();
        assert!(!handshake.capabilities.contains(Capabilities::LONG_PASSWORD));
        assert!(handshake
            .capabilities
            .contains(Capabilities::MARIADB_PROGRESS));
        assert!(handshake
            .capabilities
            .contains(Capabilities::MARIADB_EXTENDED_METADATA));
        assert_eq!(handshake.capabilities.mariadb_bits(), 0x1d);
        assert_eq!(handshake.encode().unwrap(), bytes);
    }

    #[test]
    fn plugin_name_without_terminator_and_errors_in_place_of_a_handshake() {
        let mut bytes = mysql_handshake_bytes();
        bytes.pop();
        let handshake = InitialHandshake::decode(&bytes).unwrap();
        assert_eq!(
            handshake.auth_plugin_name.as_deref(),
            Some("mysql_native_password")
        );
        assert!(matches!(
            InitialHandshake::decode(b"\xff\x10\x04Too many connections"),
            Err(MySqlCodecError::Unexpected { header: 0xff, .. })
        ));
        assert!(InitialHandshake::decode(b"\x09abc\0").is_err());
    }

    #[test]
    fn ssl_request_is_32_bytes() {
        let request = SslRequest {
            capabilities: Capabilities::PROTOCOL_41 | Capabilities::SECURE_CONNECTION,
            max_packet_size: 1 << 24,
            charset: 45,
        };
        let bytes = request.encode();
        assert_eq!(bytes.len(), SSL_REQUEST_LENGTH);
        assert_eq!(&bytes[..4], &[0x00, 0x8a, 0x00, 0x00]);
        assert_eq!(&bytes[4..9], &[0, 0, 0, 1, 45]);
        let decoded = decode_client_hello(&bytes).unwrap();
        assert_eq!(
            decoded,
            ClientHello::SslRequest(SslRequest {
                capabilities: request.capabilities | Capabilities::SSL,
                ..request
            })
        );
    }

    #[test]
    fn handshake_response_in_each_auth_encoding() {
        let base = Capabilities::PROTOCOL_41
            | Capabilities::LONG_PASSWORD
            | Capabilities::CONNECT_WITH_DB
            | Capabilities::PLUGIN_AUTH
            | Capabilities::CONNECT_ATTRS;
        for extra in [
            Capabilities::PLUGIN_AUTH_LENENC_CLIENT_DATA | Capabilities::SECURE_CONNECTION,
            Capabilities::SECURE_CONNECTION,
            Capabilities::empty(),
        ] {
            let response = HandshakeResponse {
                capabilities: base | extra,
                max_packet_size: 16 << 20,
                charset: 45,
                username: "app".into(),
                auth_response: b"0123456789abcdefghij".to_vec(),
                database: Some("appdb".into()),
                auth_plugin_name: Some("mysql_native_password".into()),
                connect_attributes: vec![("_client_name".into(), "airlock".into())],
                zstd_compression_level: None,
            };
            let bytes = response.encode().unwrap();
            let decoded = match decode_client_hello(&bytes).unwrap() {
                ClientHello::Response(decoded) => decoded,
                other => panic!("{other:?}"),
            };
            assert_eq!(decoded, response);
        }
    }

    #[test]
    fn handshake_response_bytes_from_the_documentation() {
        // caps PROTOCOL_41|SECURE_CONNECTION|PLUGIN_AUTH|LONG_PASSWORD,
        // user "u", 2-byte auth response, plugin name.
        let mut bytes = vec![0x01, 0x82, 0x08, 0x00, 0, 0, 0, 1, 0x21];
        bytes.extend_from_slice(&[0; 23]);
        bytes.extend_from_slice(b"u\0\x02\xaa\xbbmysql_native_password\0");
        let response = HandshakeResponse::decode(&bytes).unwrap();
        assert_eq!(response.username, "u");
        assert_eq!(response.auth_response, [0xaa, 0xbb]);
        assert_eq!(response.database, None);
        assert_eq!(
            response.auth_plugin_name.as_deref(),
            Some("mysql_native_password")
        );
        assert_eq!(response.encode().unwrap(), bytes);
        assert!(!format!("{response:?}").contains("170"));
    }

    #[test]
    fn refuses_old_clients_and_bad_usernames() {
        let mut bytes = vec![0x00, 0x00, 0x00, 0x00, 0, 0, 0, 1, 0x21];
        bytes.extend_from_slice(&[0; 23]);
        bytes.extend_from_slice(b"u\0\0");
        assert!(matches!(
            HandshakeResponse::decode(&bytes),
            Err(MySqlCodecError::Unsupported { .. })
        ));
        bytes[1] = 0x82;
        bytes[32] = 0xff;
        assert!(HandshakeResponse::decode(&bytes).is_err());
    }
}
