//! The one place where the MCP endpoint's own refusals become HTTP
//! responses (401 with the protected-resource metadata pointer, 400, 404,
//! 405, 406, 413, 415, 429, 503) and JSON-RPC error bodies. What a tool
//! refusal says (a denied or held statement) is decided in `server`: there
//! it is a tool result, not a protocol error, as the specification asks.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use serde_json::{json, Value};

use airlock_core::login::LoginRefusal;

use crate::jsonrpc::{self, RpcError, INVALID_REQUEST};
use crate::McpBody;

/// The one message for every token failure, whatever its reason.
pub const AUTH_FAILED: &str =
    "airlock: authentication failed: send Authorization: Bearer <token> with a valid airlock or OIDC token";

/// A JSON response.
pub fn json_response(status: StatusCode, body: &Value) -> Response<McpBody> {
    let bytes = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
    let mut response = Response::new(Full::new(bytes).map_err(|never| match never {}).boxed());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A response without a body.
pub fn empty(status: StatusCode) -> Response<McpBody> {
    let mut response = Response::new(Empty::new().map_err(|never| match never {}).boxed());
    *response.status_mut() = status;
    response
}

/// A JSON-RPC error that is also an HTTP error (the message could not be
/// served at all).
pub fn rpc(status: StatusCode, id: &Value, error: &RpcError) -> Response<McpBody> {
    json_response(status, &jsonrpc::error(id, error))
}

/// 400: the stateless revision's routing headers refused
/// ([`crate::routing`]), a JSON-RPC error under `id`.
pub fn routing(id: &Value, refused: &crate::routing::RoutingRefusal) -> Response<McpBody> {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"jsonrpc": "2.0", "id": id, "error": refused.error}),
    )
}

fn http_error(status: StatusCode, message: &str) -> Response<McpBody> {
    rpc(
        status,
        &Value::Null,
        &RpcError::new(INVALID_REQUEST, message),
    )
}

/// 401: no token, or one that did not authenticate. `WWW-Authenticate`
/// names the protected-resource metadata (RFC 9728, MCP authorization).
pub fn unauthenticated(metadata_url: &str, invalid_token: bool) -> Response<McpBody> {
    let mut response = json_response(
        StatusCode::UNAUTHORIZED,
        &json!({"error": if invalid_token {"invalid_token"} else {"unauthenticated"}, "message": AUTH_FAILED}),
    );
    let error = if invalid_token {
        ", error=\"invalid_token\""
    } else {
        ""
    };
    let challenge = format!("Bearer resource_metadata=\"{metadata_url}\"{error}");
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// A refused login.
pub fn login(refusal: &LoginRefusal, metadata_url: &str) -> Response<McpBody> {
    match refusal {
        LoginRefusal::Failed { .. } => unauthenticated(metadata_url, true),
        LoginRefusal::LockedOut { remaining, .. } => {
            let mut response = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                &json!({"error": "locked_out", "message": refusal.to_string()}),
            );
            if let Ok(value) = HeaderValue::from_str(&remaining.as_secs().max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        LoginRefusal::StoreUnavailable => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": "unavailable", "message": refusal.to_string()}),
        ),
    }
}

/// 405: this server opens no server-to-client stream (GET) on `/mcp`.
pub fn method_not_allowed(allow: &'static str) -> Response<McpBody> {
    let mut response = http_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed: send JSON-RPC messages with POST",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// 404 for an `Mcp-Session-Id` this gateway did not issue to this
/// identity: the client starts a new session (the specification's rule).
pub fn unknown_session() -> Response<McpBody> {
    http_error(
        StatusCode::NOT_FOUND,
        "unknown or expired Mcp-Session-Id: initialize again",
    )
}

/// 400 for an `MCP-Protocol-Version` this server does not speak.
pub fn unsupported_version(supported: &[&str]) -> Response<McpBody> {
    http_error(
        StatusCode::BAD_REQUEST,
        &format!(
            "unsupported MCP-Protocol-Version (supported: {})",
            supported.join(", ")
        ),
    )
}

/// 403 for a browser request from another origin (DNS rebinding).
pub fn foreign_origin() -> Response<McpBody> {
    http_error(
        StatusCode::FORBIDDEN,
        "requests from another origin are refused",
    )
}

/// 415 / 406: the body is not JSON, or the client accepts no JSON.
pub fn media_type(status: StatusCode) -> Response<McpBody> {
    http_error(
        status,
        "send Content-Type: application/json and accept application/json",
    )
}

/// 413: the message is larger than the bound.
pub fn too_large(limit: usize) -> Response<McpBody> {
    http_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("the message is larger than {limit} bytes"),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn statuses_and_challenges() {
        let url = "https://gw:18080/.well-known/oauth-protected-resource/mcp";
        let response = unauthenticated(url, false);
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            format!("Bearer resource_metadata=\"{url}\"").as_str()
        );
        let refused = LoginRefusal::Failed {
            user: String::new(),
            connection: "mcp".into(),
        };
        let response = login(&refused, url);
        assert!(response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .ends_with("error=\"invalid_token\""));
        assert_eq!(
            login(&LoginRefusal::StoreUnavailable, url).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            method_not_allowed("POST").status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(unknown_session().status(), StatusCode::NOT_FOUND);
        assert_eq!(too_large(1).status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
