//! The agent's side of the proxy: Streamable HTTP at `/<connection>/mcp`.
//!
//! Every request authenticates (`Authorization: Bearer`, the core's lockout
//! and token check, scoped to the connection) before its body is read. An
//! `initialize` without `Mcp-Session-Id` starts a session (admission, the
//! server started, the `initialize` relayed) and its answer carries the
//! new id; every other message needs the id of a live session of the same
//! identity (404 otherwise, as the transport specifies, so the client
//! starts over). A request of the stateless revision (2026-07-28: its
//! revision named in `_meta`, no session) is carried by the gateway's own
//! session with the server ([`crate::proxy::stateless`]); its routing
//! headers are checked against the body first ([`crate::routing`]).
//! `DELETE` ends the session. A POST carries one message
//! (bounded by [`MAX_MESSAGE_BYTES`]); a request is answered with JSON, or
//! with an event stream holding the server's notifications before the
//! answer when the client accepts one. GET (a standalone server stream) is
//! 405: a server-to-client request the policy allows is relayed on the
//! answer stream of the agent's request in flight, and the agent's answer
//! (a POST of a response) goes back through
//! [`crate::proxy::server_requests`].

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{json, Value};

use airlock_core::auth::Authenticated;
use airlock_core::login::LoginAttempt;
use airlock_types::Protocol;

use crate::errors as http_errors;
use crate::http::{
    accepts_json, base_url, bearer_token, header_text, is_json, origin_allowed, wants_event_stream,
    EventStream, MAX_MESSAGE_BYTES, METADATA_MCP_PATH, SESSION_HEADER,
};
use crate::proxy::message::{self, ClientMessage};
use crate::proxy::relay;
use crate::proxy::session::ProxySession;
use crate::proxy::stateless;
use crate::proxy::upstream::NOTIFICATION_QUEUE;
use crate::proxy::{errors, McpProxy};
use crate::routing::RoutingHeaders;
use crate::McpBody;

/// Serves one request to a path below an MCP connection.
pub async fn handle(
    proxy: &Arc<McpProxy>,
    request: Request<Incoming>,
    peer: SocketAddr,
    tls: bool,
) -> Response<McpBody> {
    let path = request.uri().path().to_string();
    let Some(connection) = path
        .strip_prefix('/')
        .and_then(|rest| rest.strip_suffix("/mcp"))
        .filter(|name| proxy.targets.contains_key(*name))
    else {
        return http_errors::json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": "not_found", "message": "airlock: an MCP connection is served at /<connection>/mcp"}),
        );
    };
    if !origin_allowed(request.headers()) {
        return http_errors::foreign_origin();
    }
    let metadata_url = format!("{}{METADATA_MCP_PATH}", base_url(request.headers(), tls));
    let authenticated = match authenticate(proxy, &request, connection, peer, &metadata_url).await {
        Ok(authenticated) => authenticated,
        Err(response) => return response,
    };
    let session = match header_text(request.headers(), SESSION_HEADER) {
        None => None,
        Some(id) => match proxy.session(id) {
            Some(session)
                if session.identity == authenticated.identity.name
                    && session.connection == connection =>
            {
                Some(session)
            }
            _ => return http_errors::unknown_session(),
        },
    };
    match (request.method(), &session) {
        (&Method::POST, _) => {}
        (&Method::DELETE, Some(session)) => {
            proxy.end(&session.id, "client_closed", None).await;
            return http_errors::empty(StatusCode::NO_CONTENT);
        }
        (&Method::DELETE, None) => return http_errors::unknown_session(),
        _ => return http_errors::method_not_allowed("POST, DELETE"),
    }
    let headers = request.headers();
    let routing = match RoutingHeaders::read(headers) {
        Ok(routing) => routing,
        Err(refused) => return http_errors::routing(&Value::Null, &refused),
    };
    if !is_json(headers) {
        return http_errors::media_type(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    if !accepts_json(headers) {
        return http_errors::media_type(StatusCode::NOT_ACCEPTABLE);
    }
    let stream = wants_event_stream(headers);
    let body = match Limited::new(request.into_body(), MAX_MESSAGE_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return http_errors::too_large(MAX_MESSAGE_BYTES),
    };
    let read = match message::read(&body) {
        Ok(read) => read,
        Err(unreadable) => {
            return http_errors::rpc(StatusCode::BAD_REQUEST, &unreadable.id, &unreadable.error)
        }
    };
    if let ClientMessage::Request {
        id, method, params, ..
    } = &read
    {
        if let Err(refused) = crate::routing::check(&routing, method, params) {
            return http_errors::routing(id, &refused);
        }
    }
    let exchange = Exchange {
        proxy,
        authenticated: &authenticated,
        connection,
        peer,
        tls,
        stream,
    };
    exchange.serve(session, read).await
}

/// The core's lockout check, then the bearer token, for `connection`.
async fn authenticate(
    proxy: &McpProxy,
    request: &Request<Incoming>,
    connection: &str,
    peer: SocketAddr,
    metadata_url: &str,
) -> Result<Authenticated, Response<McpBody>> {
    let session_id = format!("s-{}", hex::encode(rand::random::<[u8; 8]>()));
    let attempt = LoginAttempt {
        protocol: Protocol::Mcp,
        user: "",
        connection,
        session_id: &session_id,
        peer,
    };
    let state = &proxy.state;
    state
        .check_lockout(&attempt)
        .map_err(|refusal| http_errors::login(&refusal, metadata_url))?;
    let Some(token) = bearer_token(request.headers()) else {
        return Err(http_errors::unauthenticated(metadata_url, false));
    };
    state
        .log_in_bearer(&attempt, token)
        .await
        .map_err(|refusal| http_errors::login(&refusal, metadata_url))
}

/// One authenticated message on its way.
struct Exchange<'a> {
    proxy: &'a Arc<McpProxy>,
    authenticated: &'a Authenticated,
    connection: &'a str,
    peer: SocketAddr,
    tls: bool,
    stream: bool,
}

impl Exchange<'_> {
    async fn serve(
        &self,
        session: Option<Arc<ProxySession>>,
        read: ClientMessage,
    ) -> Response<McpBody> {
        match (read, session) {
            (ClientMessage::Response { id, message }, Some(session)) => {
                if !session
                    .correlation
                    .agent_answer(&id, Value::Object(message))
                {
                    tracing::debug!("an agent response matching no relayed request; dropped");
                }
                http_errors::empty(StatusCode::ACCEPTED)
            }
            (ClientMessage::Response { .. }, None) => http_errors::unknown_session(),
            (ClientMessage::Notification { method, message }, Some(session)) => {
                relay::notification(&session, &method, message).await;
                http_errors::empty(StatusCode::ACCEPTED)
            }
            (ClientMessage::Notification { .. }, None) => http_errors::unknown_session(),
            (ClientMessage::Request { id, method, .. }, Some(_)) if method == "initialize" => {
                answer(
                    &errors::error(
                        &id,
                        -32600,
                        "invalid request: the session is initialized already",
                        None,
                    ),
                    None,
                )
            }
            (
                ClientMessage::Request {
                    id,
                    method,
                    params,
                    message,
                },
                None,
            ) => {
                if crate::routing::named_version(&params).is_some() {
                    return self.stateless(id, method, params, message).await;
                }
                if method != "initialize" {
                    return http_errors::unknown_session();
                }
                self.initialize(id, params, message).await
            }
            (
                ClientMessage::Request {
                    id,
                    method,
                    params,
                    message,
                },
                Some(session),
            ) => {
                let request = relay::Request {
                    id: &id,
                    method: &method,
                    params: &params,
                    message,
                };
                if self.stream {
                    return streamed(Arc::clone(self.proxy), session, request.into_owned(), false);
                }
                answer(&relay::request(self.proxy, &session, request).await, None)
            }
        }
    }

    /// A request of the stateless revision: no session of the agent's; the
    /// gateway's own handshake session with the server, kept per identity
    /// and connection ([`stateless::kept_session`]), carries it.
    /// `server/discover` is answered from that session's `initialize`.
    async fn stateless(
        &self,
        id: Value,
        method: String,
        params: serde_json::Map<String, Value>,
        message: serde_json::Map<String, Value>,
    ) -> Response<McpBody> {
        let kept = stateless::kept_session(
            self.proxy,
            self.authenticated,
            self.connection,
            self.peer,
            self.tls,
            &params,
        )
        .await;
        let session = match kept {
            Ok(session) => session,
            Err(failure) => return answer(&failure.answer(&id), None),
        };
        if method == "server/discover" {
            return answer(&stateless::discover(&id, &session), None);
        }
        let request = relay::Request {
            id: &id,
            method: &method,
            params: &params,
            message,
        };
        if self.stream {
            return streamed(Arc::clone(self.proxy), session, request.into_owned(), true);
        }
        let mut answered = relay::request(self.proxy, &session, request).await;
        stateless::stamp(&method, &mut answered);
        answer(&answered, None)
    }

    /// Starts a session and relays its `initialize`.
    async fn initialize(
        &self,
        id: Value,
        params: serde_json::Map<String, Value>,
        message: serde_json::Map<String, Value>,
    ) -> Response<McpBody> {
        let session = match ProxySession::start(
            self.proxy,
            self.authenticated,
            self.connection,
            self.peer,
            self.tls,
        )
        .await
        {
            Ok(session) => session,
            Err(failure) => return answer(&failure.answer(&id), None),
        };
        let request = relay::Request {
            id: &id,
            method: "initialize",
            params: &params,
            message,
        };
        let answered = relay::request(self.proxy, &session, request).await;
        if answered.get("result").is_none() {
            self.proxy
                .end(&session.id, "refused", Some("initialize failed".into()))
                .await;
            return answer(&answered, None);
        }
        answer(&answered, Some(&session.id))
    }
}

fn answer(value: &Value, session_id: Option<&str>) -> Response<McpBody> {
    let mut response = http_errors::json_response(StatusCode::OK, value);
    if let Some(value) = session_id.and_then(|id| HeaderValue::from_str(id).ok()) {
        response.headers_mut().insert(SESSION_HEADER, value);
    }
    response
}

/// An answer as an event stream: the server's notifications while the
/// request runs, then the answer.
fn streamed(
    proxy: Arc<McpProxy>,
    session: Arc<ProxySession>,
    request: relay::OwnedRequest,
    stateless: bool,
) -> Response<McpBody> {
    let (sink, messages) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let (notifications, mut notified) = tokio::sync::mpsc::channel::<Value>(NOTIFICATION_QUEUE);
    session
        .correlation
        .stream_notifications(Some(notifications));
    let forwarder = sink.clone();
    tokio::spawn(async move {
        while let Some(notification) = notified.recv().await {
            if forwarder.send(notification).is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let mut answered = relay::request(&proxy, &session, request.borrowed()).await;
        if stateless {
            stateless::stamp(&request.method, &mut answered);
        }
        session.correlation.stream_notifications(None);
        let _ = sink.send(answered);
    });
    EventStream::response(messages)
}
