//! Fuzzes the MySQL/MariaDB codec: framing, every connection-phase and
//! command decoder, the response tracker and both login state machines
//! (upstream and client-facing) must return errors, never panic, on any
//! bytes; what decodes re-encodes, and re-encoded rows and commands decode
//! to the same value.
#![no_main]

use airlock_mysql::auth::{decode_auth_reply, AuthSwitchRequest};
use airlock_mysql::column::{ColumnDefinition, ColumnType};
use airlock_mysql::command::Command;
use airlock_mysql::handshake::{decode_client_hello, InitialHandshake};
use airlock_mysql::listener::{ClientLogin, ListenerParams};
use airlock_mysql::login::{LoginParams, UpstreamLogin};
use airlock_mysql::response::{ResponseKind, ResponsePacket, ResponseTracker};
use airlock_mysql::row::{
    decode_binary_row, decode_text_row, encode_binary_row, encode_text_row, ValueType,
};
use airlock_mysql::{Capabilities, EofPacket, ErrPacket, OkPacket, PacketCodec, ServerStatus};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

const KINDS: [ResponseKind; 8] = [
    ResponseKind::None,
    ResponseKind::Simple,
    ResponseKind::Query,
    ResponseKind::Execute,
    ResponseKind::Fetch,
    ResponseKind::Prepare,
    ResponseKind::FieldList,
    ResponseKind::Statistics,
];

fuzz_target!(|data: &[u8]| {
    // The first 9 bytes choose capabilities and a response kind; the rest
    // is a packet stream.
    let Some((head, rest)) = data.split_at_checked(9) else {
        return;
    };
    let mut word = [0u8; 8];
    word.copy_from_slice(&head[..8]);
    let caps = Capabilities(u64::from_le_bytes(word));
    let kind = KINDS[usize::from(head[8]) % KINDS.len()];

    let mut codec = PacketCodec::new(1 << 16).without_sequence_check();
    let mut buf = BytesMut::from(rest);
    let mut tracker = ResponseTracker::for_kind(kind, caps);
    let mut params = LoginParams::new("u", b"p".to_vec());
    // Every path, the key request included.
    params.request_public_key = head[8] & 4 == 4;
    let mut login = UpstreamLogin::new(params);
    let mut listener = ClientLogin::new(ListenerParams {
        server_version: "8.0.36-airlock".into(),
        connection_id: 1,
        scramble: [b'x'; 20],
        capabilities: caps,
        tls_available: head[8] & 1 == 1,
        plaintext_allowed: head[8] & 2 == 2,
        charset: 45,
        status: ServerStatus::AUTOCOMMIT,
    });
    let _ = listener.greeting();
    let mut first = true;
    let mut columns: Vec<ValueType> = Vec::new();
    while let Ok(Some(packet)) = codec.decode(&mut buf) {
        let payload = &packet.payload[..];
        if let Ok(handshake) = InitialHandshake::decode(payload) {
            let _ = handshake.encode();
        }
        let _ = decode_client_hello(payload);
        if let Ok(ok) = OkPacket::decode(payload, caps) {
            let _ = ok.encode(caps);
        }
        let _ = ErrPacket::decode(payload).map(|err| err.encode());
        let _ = EofPacket::decode(payload, caps);
        let _ = AuthSwitchRequest::decode(payload).map(|switch| switch.encode());
        let _ = decode_auth_reply(payload, caps);
        if let Ok(column) = ColumnDefinition::decode(payload, caps) {
            let _ = column.encode(caps);
        }
        if let Ok(command) = Command::decode(payload, caps) {
            if let Ok(bytes) = command.encode(caps) {
                assert_eq!(Command::decode(&bytes, caps).ok().as_ref(), Some(&command));
            }
            if let Command::StmtExecute(execute) = &command {
                let _ = execute.parameters(columns.len(), Some(&columns), &[1]);
            }
            if let Command::StmtBulkExecute(bulk) = &command {
                if let Ok(rows) = bulk.rows(columns.len(), Some(&columns), 2) {
                    assert!(rows.rows.len() <= 2 && rows.rows.len() <= rows.count);
                }
            }
        }
        if let Ok(airlock_mysql::listener::ListenerStep::StartTls) = listener.receive(payload) {
            let _ = listener.tls_established();
        }
        let _ = if first {
            first = false;
            login.handshake(payload)
        } else {
            login.receive(payload)
        };
        match tracker.feed(payload) {
            Ok(ResponsePacket::Column(column)) => columns.push(ValueType::from(&*column)),
            Ok(ResponsePacket::TextRow { column_count }) => {
                if let Ok(cells) = decode_text_row(payload, column_count) {
                    assert_eq!(encode_text_row(cells.iter().copied()), payload);
                }
            }
            Ok(ResponsePacket::BinaryRow { .. }) => {
                if let Ok(values) = decode_binary_row(payload, &columns) {
                    let bytes = encode_binary_row(&columns, &values).expect("re-encode");
                    let again = decode_binary_row(&bytes, &columns).expect("decode re-encoded");
                    assert_eq!(format!("{again:?}"), format!("{values:?}"));
                }
            }
            _ => {}
        }
        let types: Vec<ValueType> = payload
            .iter()
            .take(8)
            .map(|&byte| ValueType {
                column_type: ColumnType(byte),
                unsigned: byte & 1 == 1,
            })
            .collect();
        let _ = decode_binary_row(payload, &types);
    }
});
