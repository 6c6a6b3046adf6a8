//! Streamable HTTP at `/mcp` on the gateway's `listen.http` listener, and
//! the OAuth protected-resource metadata (RFC 9728) at
//! `/.well-known/oauth-protected-resource` (and `…/mcp`, the path-suffixed
//! form the MCP authorization specification derives from the resource).
//!
//! A POST carries one JSON-RPC message (bounded by [`MAX_MESSAGE_BYTES`]);
//! a request is answered with one JSON object (`application/json`), a
//! notification or response with 202. No server-to-client stream is
//! offered (GET is 405). Sessions are stateless: `initialize` hands out an
//! HMAC-signed `Mcp-Session-Id` that any replica verifies
//! ([`crate::session_id`]); `DELETE` has nothing to end.
//!
//! Every request authenticates (`Authorization: Bearer`, the core's
//! lockout and token check) before anything else is read.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{json, Value};

use airlock_core::login::LoginAttempt;
use airlock_types::{Protocol, Secret};

use crate::errors;
use crate::jsonrpc::{self, Message};
use crate::protocol::{header_supported, SUPPORTED_VERSIONS};
use crate::routing::RoutingHeaders;
use crate::server::{progress_token, Caller, McpServer};
use crate::McpBody;

/// The MCP endpoint.
pub const MCP_PATH: &str = "/mcp";
/// The protected-resource metadata.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";
/// The metadata under the resource's own path (RFC 9728 section 3.1).
pub const METADATA_MCP_PATH: &str = "/.well-known/oauth-protected-resource/mcp";
/// Largest JSON-RPC message accepted.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

pub(crate) const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";

/// True for the paths this crate serves on the HTTP listener (routed
/// before `/<connection>/…`; config refuses connections named like them).
pub fn serves(path: &str) -> bool {
    matches!(path, MCP_PATH | METADATA_PATH | METADATA_MCP_PATH)
}

/// The request's origin as the client named it (`Host`), reduced to safe
/// characters; used only in answers to the same client.
fn authority(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .filter(|host| {
            !host.is_empty()
                && host.len() <= 255
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .unwrap_or("localhost")
        .to_string()
}

pub(crate) fn base_url(headers: &HeaderMap, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{}", authority(headers))
}

fn metadata(server: &McpServer, headers: &HeaderMap, tls: bool) -> Response<McpBody> {
    let base = base_url(headers, tls);
    let issuers: Vec<&str> = server
        .state
        .config
        .identity_providers
        .iter()
        .map(|provider| provider.issuer.as_str())
        .collect();
    errors::json_response(
        StatusCode::OK,
        &json!({
            "resource": format!("{base}{MCP_PATH}"),
            "authorization_servers": issuers,
            "bearer_methods_supported": ["header"],
            "resource_name": "airlock MCP server",
            "resource_documentation": "https://example.invalid/airlock#mcp-server",
        }),
    )
}

pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let (scheme, token) = value.to_str().ok()?.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' '))
        .then(|| token.to_string())
}

/// A browser page from another origin must not reach the server (DNS
/// rebinding): an `Origin`, when sent, must name this host.
pub(crate) fn origin_allowed(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = authority(headers);
    origin.to_str().ok().is_some_and(|origin| {
        origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest.trim_end_matches('/') == host)
    })
}

pub(crate) fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

pub(crate) fn accepts_json(headers: &HeaderMap) -> bool {
    header_text(headers, "accept").is_none_or(|accept| {
        accept.contains("application/json")
            || accept.contains("*/*")
            || accept.contains("application/*")
    })
}

pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    header_text(headers, "content-type").is_some_and(|value| {
        value
            .split(';')
            .next()
            .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
    })
}

/// The body of a streamed answer: each message as one server-sent event,
/// ended when the call is done.
pub(crate) struct EventStream {
    messages: tokio::sync::mpsc::UnboundedReceiver<Value>,
}

impl http_body::Body for EventStream {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        self.messages.poll_recv(cx).map(|message| {
            message.map(|message| {
                Ok(http_body::Frame::data(Bytes::from(format!(
                    "event: message\ndata: {message}\n\n"
                ))))
            })
        })
    }
}

/// A `tools/call` with a `progressToken` from a client that takes event
/// streams: answered as `text/event-stream`, so the progress a held
/// statement reports reaches the client before the result.
fn streams_progress(message: &Message) -> bool {
    matches!(message, Message::Request { method, params, .. }
        if method == "tools/call" && progress_token(params).is_some())
}

pub(crate) fn wants_event_stream(headers: &HeaderMap) -> bool {
    header_text(headers, "accept").is_some_and(|accept| accept.contains("text/event-stream"))
}

impl EventStream {
    /// The `text/event-stream` response carrying `messages` until every
    /// sender is gone.
    pub(crate) fn response(
        messages: tokio::sync::mpsc::UnboundedReceiver<Value>,
    ) -> Response<McpBody> {
        let mut response = Response::new(EventStream { messages }.boxed());
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

fn streamed(server: &Arc<McpServer>, caller: Caller, message: Message) -> Response<McpBody> {
    let (sink, messages) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let server = Arc::clone(server);
    tokio::spawn(async move {
        if let Some(answer) = server.handle(&caller, message, Some(&sink)).await {
            let _ = sink.send(answer);
        }
    });
    EventStream::response(messages)
}

/// Serves one request to a path [`serves`] accepts.
pub async fn handle(
    server: &Arc<McpServer>,
    request: Request<Incoming>,
    peer: SocketAddr,
    tls: bool,
) -> Response<McpBody> {
    let path = request.uri().path();
    if path != MCP_PATH {
        return match *request.method() {
            Method::GET | Method::HEAD => metadata(server, request.headers(), tls),
            _ => errors::method_not_allowed("GET"),
        };
    }
    if !origin_allowed(request.headers()) {
        return errors::foreign_origin();
    }
    let metadata_url = format!("{}{METADATA_MCP_PATH}", base_url(request.headers(), tls));
    let caller = match authenticate(server, request.headers(), peer, &metadata_url).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let headers = request.headers();
    // A stateless request names its revision in the body: its header is
    // checked against that once the body is read (crate::routing).
    let unsupported_header =
        header_text(headers, VERSION_HEADER).is_some_and(|version| !header_supported(version));
    let routing = match RoutingHeaders::read(headers) {
        Ok(routing) => routing,
        Err(refused) => return errors::routing(&Value::Null, &refused),
    };
    let identity = caller.authenticated.identity.name.clone();
    if let Some(id) = headers.get(SESSION_HEADER) {
        let known = id
            .to_str()
            .is_ok_and(|id| server.session_ids.verify(id, &identity));
        if !known {
            return errors::unknown_session();
        }
    }
    match *request.method() {
        Method::POST => {}
        Method::DELETE => return errors::empty(StatusCode::NO_CONTENT),
        _ => return errors::method_not_allowed("POST, DELETE"),
    }
    if !is_json(headers) {
        return errors::media_type(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    if !accepts_json(headers) {
        return errors::media_type(StatusCode::NOT_ACCEPTABLE);
    }
    let stream = wants_event_stream(headers);
    let body = match Limited::new(request.into_body(), MAX_MESSAGE_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return errors::too_large(MAX_MESSAGE_BYTES),
    };
    let message = match jsonrpc::parse(&body) {
        Ok(message) => message,
        Err(rejected) => {
            return errors::rpc(StatusCode::BAD_REQUEST, &rejected.id, &rejected.error)
        }
    };
    match &message {
        Message::Request { id, method, params } => {
            if let Err(refused) = crate::routing::check(&routing, method, params) {
                return errors::routing(id, &refused);
            }
            if unsupported_header && crate::routing::named_version(params).is_none() {
                return errors::unsupported_version(&SUPPORTED_VERSIONS);
            }
        }
        _ if unsupported_header => return errors::unsupported_version(&SUPPORTED_VERSIONS),
        _ => {}
    }
    if stream && streams_progress(&message) {
        return streamed(server, caller, message);
    }
    let initialize = matches!(&message, Message::Request { method, .. } if method == "initialize");
    let Some(answer) = server.handle(&caller, message, None).await else {
        return errors::empty(StatusCode::ACCEPTED);
    };
    let mut response = errors::json_response(StatusCode::OK, &answer);
    if initialize && answer.get("result").is_some() {
        if let Ok(value) = HeaderValue::from_str(&server.session_ids.issue(&identity)) {
            response.headers_mut().insert(SESSION_HEADER, value);
        }
    }
    response
}

/// The core's lockout check, then the bearer token (airlock or OIDC).
async fn authenticate(
    server: &McpServer,
    headers: &HeaderMap,
    peer: SocketAddr,
    metadata_url: &str,
) -> Result<Caller, Response<McpBody>> {
    let session_id = format!("s-{}", hex::encode(rand::random::<[u8; 8]>()));
    let attempt = LoginAttempt {
        protocol: Protocol::Mcp,
        user: "",
        connection: "mcp",
        session_id: &session_id,
        peer,
    };
    let state = &server.state;
    state
        .check_lockout(&attempt)
        .map_err(|refusal| errors::login(&refusal, metadata_url))?;
    let Some(token) = bearer_token(headers) else {
        return Err(errors::unauthenticated(metadata_url, false));
    };
    let (authenticated, scope) = state
        .log_in_bearer_any(&attempt, token.clone())
        .await
        .map_err(|refusal| errors::login(&refusal, metadata_url))?;
    Ok(Caller {
        authenticated,
        scope,
        token: Secret::new(token),
        peer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn origins_hosts_and_tokens() {
        assert!(origin_allowed(&headers(&[("host", "gw:18080")])));
        assert!(origin_allowed(&headers(&[
            ("host", "gw:18080"),
            ("origin", "https://gw:18080")
        ])));
        assert!(!origin_allowed(&headers(&[
            ("host", "gw:18080"),
            ("origin", "https://evil.example")
        ])));
        assert_eq!(authority(&headers(&[("host", "gw\"bad")])), "localhost");
        assert_eq!(
            bearer_token(&headers(&[("authorization", "Bearer abc")])).as_deref(),
            Some("abc")
        );
        assert_eq!(
            bearer_token(&headers(&[("authorization", "Basic abc")])),
            None
        );
        assert_eq!(
            bearer_token(&headers(&[
                ("authorization", "Bearer a"),
                ("authorization", "Bearer b")
            ])),
            None
        );
        assert!(
            serves("/mcp") && serves(METADATA_PATH) && !serves("/mcp/x") && !serves("/prod/mcp")
        );
        assert!(is_json(&headers(&[(
            "content-type",
            "application/json; charset=utf-8"
        )])));
        assert!(!is_json(&headers(&[("content-type", "text/plain")])));
    }
}
