//! Fuzz target: the Kubernetes request-info parser (it decides which
//! policy rules a request meets) must never panic, must never accept a
//! path with a dot segment, an empty segment or a percent-escape, and must
//! never call an unsure request a read, whatever the method, path and
//! query. Input: `METHOD path?query` (split at the first space and `?`).
#![no_main]

use airlock_k8s::parse_request;
use airlock_types::Access;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (method, target) = text.split_once(' ').unwrap_or(("GET", text));
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    if let Ok(info) = parse_request(method, path, query) {
        assert!(!path.contains("//") && !path.contains('%'));
        assert!(!path.split('/').any(|segment| segment == "." || segment == ".."));
        let complete = info.complete;
        let request = info.into_request(false);
        if request.effective_access() == Access::Read {
            assert!(complete && matches!(method, "GET" | "HEAD"));
        }
    }
});
