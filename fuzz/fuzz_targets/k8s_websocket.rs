//! Fuzz target: the gateway's RFC 6455 frame reader for Kubernetes streams
//! (`airlock_http_gateway::kubernetes::websocket`; every exec, attach and
//! port-forward byte passes it) must never panic, never return a payload
//! over its bound, and read the same frames however the bytes are split;
//! a frame it returns (but a continuation), re-encoded as a server frame,
//! reads back the same.
#![no_main]

use airlock_http_gateway::kubernetes::websocket::{server_frame, FrameReader, Opcode, Sender};
use libfuzzer_sys::fuzz_target;

const BOUND: usize = 1 << 16;

fn frames(sender: Sender, parts: &[&[u8]]) -> Vec<(bool, Vec<u8>)> {
    let mut reader = FrameReader::new(sender, BOUND);
    let mut out = Vec::new();
    for part in parts {
        reader.push(part);
        while let Ok(Some(frame)) = reader.next_frame() {
            assert!(frame.payload.len() <= BOUND);
            out.push((frame.fin, frame.payload));
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let sender = if selector & 1 == 0 { Sender::Client } else { Sender::Server };
    let split = usize::from(selector >> 1).min(rest.len());
    let (first, second) = rest.split_at(split);
    let whole = frames(sender, &[rest]);
    assert_eq!(frames(sender, &[first, second]), whole);
    let mut reader = FrameReader::new(Sender::Server, BOUND);
    reader.push(rest);
    while let Ok(Some(frame)) = reader.next_frame() {
        // A continuation reads only after its message's first frame.
        if frame.opcode == Opcode::Continuation {
            continue;
        }
        let mut again = FrameReader::new(Sender::Server, BOUND);
        again.push(&server_frame(frame.opcode, frame.fin, &frame.payload));
        let read = again.next_frame().ok().flatten().map(|frame| frame.payload);
        assert_eq!(read.as_deref(), Some(frame.payload.as_slice()));
    }
});
