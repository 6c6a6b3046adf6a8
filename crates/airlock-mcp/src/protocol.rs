//! The MCP revisions this server speaks and what `initialize` answers:
//! version negotiation, capabilities, server info; and the stateless
//! revision ([`STATELESS_VERSION`]): no handshake, every request naming its
//! revision in `_meta`, `server/discover` instead of `initialize`, every
//! result typed (`resultType`) and the cacheable ones with a cache hint.
//! Pure.

use serde_json::{json, Value};

/// Revisions served, newest first. A client asking for one of them gets it;
/// any other request gets the newest (the client then decides whether it
/// can go on, as the specification says).
pub const SUPPORTED_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];

/// What a client without an `MCP-Protocol-Version` header is assumed to
/// speak (the specification's rule for Streamable HTTP).
pub const DEFAULT_HEADER_VERSION: &str = "2025-03-26";

/// The version answered to a client that asks for `requested`.
pub fn negotiate(requested: Option<&str>) -> &'static str {
    requested
        .and_then(|asked| SUPPORTED_VERSIONS.iter().find(|known| **known == asked))
        .copied()
        .unwrap_or(SUPPORTED_VERSIONS[0])
}

/// The stateless revision: served beside the handshake revisions (the
/// server keeps no session state either way).
pub const STATELESS_VERSION: &str = "2026-07-28";

/// Where a stateless request names its revision.
const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";

/// True when an `MCP-Protocol-Version` header names a served revision.
pub fn header_supported(version: &str) -> bool {
    version == STATELESS_VERSION || SUPPORTED_VERSIONS.contains(&version)
}

/// True for a request of the stateless revision (`_meta` names it).
pub fn is_stateless(params: &serde_json::Map<String, Value>) -> bool {
    params
        .get("_meta")
        .and_then(|meta| meta.get(META_VERSION))
        .and_then(Value::as_str)
        == Some(STATELESS_VERSION)
}

/// The `server/discover` result: every revision served, the capabilities
/// and instructions `initialize` gives. The tools are the same for every
/// caller, but what they reach is not: cached per authorization context
/// (`private`), and never fresh for long (`ttlMs: 0`).
pub fn discover_result() -> Value {
    let initialized = initialize_result(STATELESS_VERSION);
    let mut versions = vec![STATELESS_VERSION];
    versions.extend(SUPPORTED_VERSIONS);
    json!({
        "supportedVersions": versions,
        "capabilities": initialized["capabilities"],
        "serverInfo": initialized["serverInfo"],
        "instructions": initialized["instructions"],
        "resultType": "complete",
        "cacheScope": "private",
        "ttlMs": 0,
    })
}

/// What the stateless revision adds to a result of `method`: its type
/// (every answer here is complete) and, for a listing, the cache hint.
pub fn stamp_stateless(method: &str, result: &mut Value) {
    let Value::Object(result) = result else {
        return;
    };
    result
        .entry("resultType")
        .or_insert_with(|| json!("complete"));
    if method == "tools/list" {
        result
            .entry("cacheScope")
            .or_insert_with(|| json!("private"));
        result.entry("ttlMs").or_insert_with(|| json!(0));
    }
}

/// The `initialize` result for `version`.
pub fn initialize_result(version: &str) -> Value {
    json!({
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": false}},
        "serverInfo": {
            "name": "airlock",
            "title": "airlock governed access",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "instructions": "Every tool call runs under airlock policy: statements may be denied (a tool error naming the rule) or held for human review (status review_required with the review id; ask a person to approve it, then run the same statement again). Results are masked.",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_echoes_a_served_version_and_offers_the_newest_otherwise() {
        assert_eq!(negotiate(Some("2025-06-18")), "2025-06-18");
        assert_eq!(negotiate(Some("2025-11-25")), "2025-11-25");
        assert_eq!(negotiate(Some("2024-11-05")), "2025-11-25");
        assert_eq!(negotiate(Some("not-a-version")), "2025-11-25");
        assert_eq!(negotiate(None), "2025-11-25");
        assert!(header_supported(DEFAULT_HEADER_VERSION));
        assert!(!header_supported("2099-01-01"));
        assert!(header_supported(STATELESS_VERSION));
    }

    #[test]
    fn the_stateless_revision_is_named_in_meta_and_typed_results() {
        let stateless: serde_json::Map<String, Value> = serde_json::from_value(json!({
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}
        }))
        .unwrap();
        assert!(is_stateless(&stateless));
        assert!(!is_stateless(&serde_json::Map::new()));
        let discovered = discover_result();
        assert_eq!(discovered["supportedVersions"][0], STATELESS_VERSION);
        assert_eq!(discovered["resultType"], "complete");
        let mut listed = json!({"tools": []});
        stamp_stateless("tools/list", &mut listed);
        assert_eq!(
            (listed["resultType"].as_str(), listed["ttlMs"].as_i64()),
            (Some("complete"), Some(0))
        );
        let mut called = json!({"content": [], "isError": true});
        stamp_stateless("tools/call", &mut called);
        assert!(called.get("cacheScope").is_none() && called["resultType"] == "complete");
    }
}
