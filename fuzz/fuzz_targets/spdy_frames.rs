//! Fuzz target: the SPDY/3.1 reader of kubectl's port-forward tunnel
//! (`airlock_k8s::spdy`; it reads the port each forwarded connection is
//! decided by) must never panic, whatever the bytes and however they are
//! split; every frame it returns encodes back to bytes it reads the same;
//! header blocks inflate within their bound or fail, and the gateway's own
//! compressed blocks always inflate to what went in.
#![no_main]

use airlock_k8s::spdy::{Frame, FrameReader, HeaderBlock, HeaderDeflater, HeaderInflater, MAX_HEADER_BLOCK};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |first| usize::from(*first)).min(data.len());
    let (first, second) = data.split_at(split);
    let mut reader = FrameReader::new(1 << 16);
    let mut inflater = HeaderInflater::new();
    for part in [first, second] {
        reader.push(part);
        while let Ok(Some(frame)) = reader.next_frame() {
            let mut again = FrameReader::new(1 << 16);
            again.push(&frame.encode());
            assert_eq!(again.next_frame().ok().flatten().as_ref(), Some(&frame));
            if let Frame::SynStream { header_block, .. }
            | Frame::SynReply { header_block, .. }
            | Frame::Headers { header_block, .. } = &frame
            {
                if let Ok(raw) = inflater.inflate(header_block) {
                    assert!(raw.len() <= MAX_HEADER_BLOCK);
                    if let Ok(block) = HeaderBlock::decode(&raw) {
                        let mut deflater = HeaderDeflater::new();
                        let mut fresh = HeaderInflater::new();
                        assert_eq!(fresh.headers(&deflater.compress(&block)).ok(), Some(block));
                    }
                }
            }
        }
    }
});
