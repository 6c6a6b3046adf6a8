//! The MCP revisions this server speaks and what `initialize` answers:
//! version negotiation, capabilities, server info. Pure.

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

/// True when an `MCP-Protocol-Version` header names a served revision.
pub fn header_supported(version: &str) -> bool {
    SUPPORTED_VERSIONS.contains(&version)
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
    }
}
