//! The routing headers of the stateless revision (2026-07-28), checked
//! against the body, sans-IO: `MCP-Protocol-Version` must equal the
//! revision the request names in `params._meta`, `Mcp-Method` the body's
//! `method`, and for `tools/call` and `prompts/get` `Mcp-Name` the
//! `params.name` (`resources/read`: `params.uri`), a value that may come
//! base64-encoded as `=?base64?…?=`. A mismatch is `-32020`
//! (HeaderMismatch); a revision not served is `-32022` with the served
//! ones in `data.supported`; both with HTTP 400.
//!
//! Why it matters here: a load balancer or a policy in front of the
//! gateway may route or filter by these headers; a request whose headers
//! say one thing and whose body another is refused rather than decided on
//! the body while something else saw the headers. For every revision,
//! routing headers that are present must agree with the body, and a
//! routing header sent twice is refused.

use base64::Engine;
use http::HeaderMap;
use serde_json::{json, Map, Value};

use crate::protocol::STATELESS_VERSION;

/// `Mcp-Method`.
pub const METHOD_HEADER: &str = "mcp-method";
/// `Mcp-Name`.
pub const NAME_HEADER: &str = "mcp-name";
/// `MCP-Protocol-Version`.
pub const VERSION_HEADER: &str = "mcp-protocol-version";

/// The routing headers disagree with the body.
pub const HEADER_MISMATCH: i64 = -32020;
/// The request names a revision not served.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// Where a stateless request names its revision.
const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";

/// A request's routing refused: the JSON-RPC error object to answer (HTTP
/// 400).
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingRefusal {
    pub error: Value,
}

fn refusal(code: i64, message: &str, data: Option<Value>) -> RoutingRefusal {
    let mut error = json!({"code": code, "message": message});
    if let Some(data) = data {
        error["data"] = data;
    }
    RoutingRefusal { error }
}

/// The routing headers of one request, as read (`None`: absent; a header
/// sent twice or not text is refused before).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutingHeaders {
    pub version: Option<String>,
    pub method: Option<String>,
    pub name: Option<String>,
}

impl RoutingHeaders {
    /// Reads them; a header sent twice, or not visible text, is a mismatch.
    pub fn read(headers: &HeaderMap) -> Result<Self, RoutingRefusal> {
        let one = |name: &str| -> Result<Option<String>, RoutingRefusal> {
            let mut values = headers.get_all(name).iter();
            let first = values.next();
            if values.next().is_some() {
                return Err(refusal(
                    HEADER_MISMATCH,
                    &format!("header mismatch: {name} is sent more than once"),
                    None,
                ));
            }
            first
                .map(|value| {
                    value.to_str().map(str::to_string).map_err(|_| {
                        refusal(
                            HEADER_MISMATCH,
                            &format!("header mismatch: {name} is not text"),
                            None,
                        )
                    })
                })
                .transpose()
        };
        Ok(Self {
            version: one(VERSION_HEADER)?,
            method: one(METHOD_HEADER)?,
            name: one(NAME_HEADER)?,
        })
    }
}

/// The revision a request names in `params._meta` (`Some(non-string)` is
/// a shape error), `None` for a request of a handshake revision.
pub fn named_version(params: &Map<String, Value>) -> Option<&Value> {
    params.get("_meta").and_then(|meta| meta.get(META_VERSION))
}

/// Which param `Mcp-Name` mirrors for `method`.
pub fn name_param(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// A header value as sent, or decoded from `=?base64?…?=`.
fn decoded(value: &str) -> Option<String> {
    match value
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok()),
        None => Some(value.to_string()),
    }
}

/// Checks one request (`method`, `params`) against its routing headers.
/// A stateless request must carry all that apply; any revision's present
/// headers must agree. Then a stateless request's revision must be served.
pub fn check(
    headers: &RoutingHeaders,
    method: &str,
    params: &Map<String, Value>,
) -> Result<(), RoutingRefusal> {
    let named = named_version(params);
    let stateless = named.is_some();
    if let Some(named) = named {
        if !named.is_string() {
            return Err(refusal(
                crate::jsonrpc::INVALID_PARAMS,
                "invalid params: the protocol version in _meta must be a string",
                None,
            ));
        }
        if headers.version.as_deref() != named.as_str() {
            return Err(refusal(
                HEADER_MISMATCH,
                "header mismatch: MCP-Protocol-Version does not match the protocol version in _meta",
                None,
            ));
        }
    }
    match &headers.method {
        Some(sent) if sent != method => {
            return Err(refusal(
                HEADER_MISMATCH,
                "header mismatch: Mcp-Method does not match the body's method",
                None,
            ))
        }
        None if stateless => {
            return Err(refusal(
                HEADER_MISMATCH,
                "header mismatch: Mcp-Method is required",
                None,
            ))
        }
        _ => {}
    }
    if let Some(param) = name_param(method) {
        let body = params.get(param).and_then(Value::as_str);
        let sent = headers.name.as_deref().map(decoded);
        let agrees = match (&sent, body) {
            (None, _) => !stateless,
            (Some(sent), Some(body)) => sent.as_deref() == Some(body),
            (Some(_), None) => false,
        };
        if !agrees {
            return Err(refusal(
                HEADER_MISMATCH,
                &format!("header mismatch: Mcp-Name does not match the body's {param}"),
                None,
            ));
        }
    }
    if let Some(named) = named.and_then(Value::as_str) {
        if named != STATELESS_VERSION {
            return Err(refusal(
                UNSUPPORTED_PROTOCOL_VERSION,
                "unsupported protocol version",
                Some(json!({"supported": [STATELESS_VERSION], "requested": named})),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(value: Value) -> Map<String, Value> {
        serde_json::from_value(value).unwrap()
    }

    fn stateless(mut extra: Value) -> Map<String, Value> {
        extra["_meta"] = json!({META_VERSION: STATELESS_VERSION});
        params(extra)
    }

    fn sent(version: Option<&str>, method: Option<&str>, name: Option<&str>) -> RoutingHeaders {
        RoutingHeaders {
            version: version.map(str::to_string),
            method: method.map(str::to_string),
            name: name.map(str::to_string),
        }
    }

    fn code(result: Result<(), RoutingRefusal>) -> Option<i64> {
        result
            .err()
            .and_then(|refused| refused.error["code"].as_i64())
    }

    #[test]
    fn headers_must_agree_with_the_body() {
        let call = stateless(json!({"name": "echo"}));
        let v = Some(STATELESS_VERSION);
        let cases = [
            (sent(v, Some("tools/call"), Some("echo")), None),
            // base64 form of "echo"
            (
                sent(v, Some("tools/call"), Some("=?base64?ZWNobw==?=")),
                None,
            ),
            (
                sent(v, Some("tools/call"), Some("get-env")),
                Some(HEADER_MISMATCH),
            ),
            (
                sent(v, Some("tools/list"), Some("echo")),
                Some(HEADER_MISMATCH),
            ),
            (sent(v, None, Some("echo")), Some(HEADER_MISMATCH)),
            (sent(v, Some("tools/call"), None), Some(HEADER_MISMATCH)),
            (
                sent(Some("2025-11-25"), Some("tools/call"), Some("echo")),
                Some(HEADER_MISMATCH),
            ),
            (
                sent(None, Some("tools/call"), Some("echo")),
                Some(HEADER_MISMATCH),
            ),
            (
                sent(v, Some("tools/call"), Some("=?base64?!!?=")),
                Some(HEADER_MISMATCH),
            ),
        ];
        for (headers, expected) in cases {
            assert_eq!(
                code(check(&headers, "tools/call", &call)),
                expected,
                "{headers:?}"
            );
        }
        let read = stateless(json!({"uri": "file:///a"}));
        assert_eq!(
            code(check(
                &sent(v, Some("resources/read"), Some("file:///a")),
                "resources/read",
                &read
            )),
            None
        );
    }

    #[test]
    fn handshake_requests_need_no_headers_but_present_ones_must_agree() {
        let call = params(json!({"name": "echo"}));
        assert_eq!(
            code(check(&RoutingHeaders::default(), "tools/call", &call)),
            None
        );
        assert_eq!(
            code(check(
                &sent(None, Some("tools/list"), None),
                "tools/call",
                &call
            )),
            Some(HEADER_MISMATCH)
        );
        assert_eq!(
            code(check(
                &sent(None, Some("tools/call"), Some("x")),
                "tools/call",
                &call
            )),
            Some(HEADER_MISMATCH)
        );
    }

    #[test]
    fn an_unserved_revision_is_32022_naming_the_served_one() {
        let mut future = params(json!({}));
        future.insert("_meta".into(), json!({META_VERSION: "2099-01-01"}));
        let refused = check(
            &sent(Some("2099-01-01"), Some("tools/list"), None),
            "tools/list",
            &future,
        )
        .unwrap_err();
        assert_eq!(refused.error["code"], UNSUPPORTED_PROTOCOL_VERSION);
        assert_eq!(refused.error["data"]["supported"][0], STATELESS_VERSION);
        assert_eq!(refused.error["data"]["requested"], "2099-01-01");
        let mut odd = params(json!({}));
        odd.insert("_meta".into(), json!({META_VERSION: 7}));
        assert_eq!(
            code(check(&RoutingHeaders::default(), "tools/list", &odd)),
            Some(crate::jsonrpc::INVALID_PARAMS)
        );
    }
}
