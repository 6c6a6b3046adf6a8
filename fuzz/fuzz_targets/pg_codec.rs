//! Fuzzes the PostgreSQL codec: startup packets, framing and every frontend
//! and backend decoder must return errors, never panic, on any bytes.
#![no_main]

use airlock_pg::backend::{decode_auth_request, decode_command_complete, decode_error_fields};
use airlock_pg::frontend::{decode_frontend, decode_password};
use airlock_pg::startup::decode_startup;
use airlock_pg::FrameDecoder;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut startup = BytesMut::from(data);
    let _ = decode_startup(&mut startup);
    let decoder = FrameDecoder::new(64 * 1024);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = decoder.decode(&mut buf) {
        let _ = decode_frontend(&frame);
        let _ = decode_password(&frame);
        let _ = decode_auth_request(frame.body());
        let _ = decode_error_fields(frame.body());
        let _ = decode_command_complete(frame.body());
        let _ = airlock_pg::backend::decode_data_row(frame.body());
        let _ = airlock_pg::backend::decode_row_description(frame.body());
    }
});
