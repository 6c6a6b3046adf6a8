//! A `url:` MCP server, spoken to as a client over Streamable HTTP or the
//! legacy HTTP+SSE transport, for one proxied agent session.
//!
//! Streamable HTTP: every message is a POST to the url; a request's
//! answer comes as JSON or as an event stream (which may carry the
//! server's notifications and requests before it); the server's
//! `Mcp-Session-Id` (from the `initialize` answer) and the negotiated
//! `MCP-Protocol-Version` go on every later request; once the session is
//! initialized a GET opens the server's own stream where it offers one
//! (405: none), reopened with `Last-Event-ID` when it drops (bounded
//! retries), an event replayed under the id already seen dropped; the
//! session's end is a DELETE. A 404 on a request with the
//! session id means the server dropped the session: it ends here too.
//!
//! Legacy HTTP+SSE (`transport: sse`, or `auto` when the server refuses
//! the `initialize` POST with 400, 404 or 405): a GET of the url opens an
//! event stream whose first `endpoint` event names where to POST; every
//! answer arrives on that stream. The endpoint must be on the url's own
//! origin: the credential never goes anywhere else.
//!
//! The stored credential is added to every request as the connection's
//! `inject:` says; the server's answers pass through [`scrub`], which
//! replaces every form of it, so an upstream that echoes what it received
//! cannot hand it to the agent. Bodies are bounded: a JSON answer by
//! [`MAX_MESSAGE_BYTES`], each event of a stream likewise
//! ([`crate::proxy::sse`]); a stream breaking the bound is dropped. Every
//! task reading from the server ends with the session.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{Map, Value};
use tokio::sync::{oneshot, watch};

use airlock_core::http_config::InjectConfig;
use airlock_core::mcp_config::McpTransport;
use airlock_types::Secret;

use crate::http::MAX_MESSAGE_BYTES;
use crate::proxy::http_client::{self, RemoteTarget};
use crate::proxy::sse::SseDecoder;
use crate::proxy::upstream::{Correlation, UpstreamError};

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
/// Longest `Mcp-Session-Id` of a server kept (it goes back on every
/// request).
const MAX_SESSION_ID_BYTES: usize = 256;
/// Longest event id of a server kept (it goes back as `Last-Event-ID`).
const MAX_EVENT_ID_BYTES: usize = 256;
const LAST_EVENT_ID_HEADER: &str = "last-event-id";
/// How long the session-ending DELETE may take.
const DELETE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the credential becomes in the server's answers.
pub const SCRUBBED: &str = "[airlock:credential]";

/// Which transport the session speaks, once known.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// `auto` before the first POST was answered.
    Undecided,
    Streamable,
    /// The legacy transport: where to POST (a path on the url's origin).
    Legacy {
        endpoint: String,
    },
}

#[derive(Debug)]
struct Negotiated {
    mode: Mode,
    /// The server's `Mcp-Session-Id`.
    session_id: Option<String>,
    /// The revision the server answered `initialize` with.
    protocol_version: Option<String>,
    /// The gateway's id of the `initialize` request.
    initialize_id: Option<u64>,
    /// The standalone GET stream was asked for.
    listening: bool,
    /// The `id` of the last event the GET stream delivered: sent as
    /// `Last-Event-ID` when it is reopened, so nothing sent meanwhile is
    /// lost, and an event replayed under it is not delivered twice.
    last_event_id: Option<String>,
}

struct Inner {
    target: RemoteTarget,
    /// The credential header, marked sensitive.
    credential: Option<(HeaderName, HeaderValue)>,
    /// Every form of the credential an answer may echo, longest first.
    forms: Vec<String>,
    correlation: Arc<Correlation>,
    timeout: Duration,
    negotiated: Mutex<Negotiated>,
    gone: AtomicBool,
    /// `true` once the session is over (the server ended it, its legacy
    /// stream closed, or the gateway ended it): every reader task stops.
    closed: watch::Sender<bool>,
}

/// A remote MCP server of one session.
pub struct RemoteServer {
    inner: Arc<Inner>,
}

impl RemoteServer {
    /// A client of `target`, sending `secret` as `inject` says (nothing is
    /// sent before the first message).
    pub fn new(
        target: RemoteTarget,
        inject: Option<&InjectConfig>,
        username: &str,
        secret: &Secret<String>,
        correlation: Arc<Correlation>,
        timeout: Duration,
    ) -> Result<Self, UpstreamError> {
        let (credential, forms) = match inject {
            Some(inject) if !secret.expose().is_empty() => {
                let (name, value) =
                    airlock_core::inject::credential_header(inject, username, secret.expose());
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| UpstreamError::Unreachable("bad credential header".into()))?;
                let mut value = HeaderValue::from_str(&value).map_err(|_| {
                    UpstreamError::Unreachable("the credential cannot be sent as a header".into())
                })?;
                value.set_sensitive(true);
                let mut forms: Vec<String> =
                    airlock_core::inject::echo_forms(inject, username, secret.expose())
                        .into_iter()
                        .map(|form| String::from_utf8_lossy(&form).into_owned())
                        .collect();
                forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
                (Some((name, value)), forms)
            }
            _ => (None, Vec::new()),
        };
        let mode = match target.transport {
            McpTransport::Auto => Mode::Undecided,
            McpTransport::StreamableHttp | McpTransport::Sse => Mode::Streamable,
        };
        let (closed, _) = watch::channel(false);
        Ok(Self {
            inner: Arc::new(Inner {
                target,
                credential,
                forms,
                correlation,
                timeout,
                negotiated: Mutex::new(Negotiated {
                    mode,
                    session_id: None,
                    protocol_version: None,
                    initialize_id: None,
                    listening: false,
                    last_event_id: None,
                }),
                gone: AtomicBool::new(false),
                closed,
            }),
        })
    }

    /// Sends one message; its answer (if any) reaches the correlation.
    pub async fn send(&self, message: &Value) -> Result<(), UpstreamError> {
        send(&self.inner, message).await
    }

    /// Fires once the session is over on the server's side.
    pub fn exited(&self) -> watch::Receiver<bool> {
        self.inner.closed.subscribe()
    }

    /// Ends the session: a DELETE for a Streamable HTTP session the server
    /// named; every reader task stops.
    pub async fn kill(&self) {
        let inner = &self.inner;
        if inner.gone.swap(true, Ordering::AcqRel) {
            return;
        }
        let (mode, session_id) = {
            let negotiated = inner.negotiated();
            (negotiated.mode.clone(), negotiated.session_id.clone())
        };
        if mode == Mode::Streamable && session_id.is_some() {
            let request = inner.request(Method::DELETE, &inner.target.path, None);
            if let Ok(request) = request {
                match http_client::send(&inner.target, request, DELETE_TIMEOUT).await {
                    Ok(response) => {
                        tracing::debug!(status = %response.status(), "MCP session deleted upstream")
                    }
                    Err(error) => tracing::debug!(%error, "MCP session DELETE failed"),
                }
            }
        }
        inner.close();
    }
}

impl Inner {
    fn negotiated(&self) -> std::sync::MutexGuard<'_, Negotiated> {
        self.negotiated
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes the id of an event of the GET stream; false when it is the
    /// id last noted (the server replayed it: not delivered again).
    fn note_event_id(&self, id: Option<&str>) -> bool {
        let Some(id) = id.filter(|id| is_header_text(id, MAX_EVENT_ID_BYTES)) else {
            return true;
        };
        let mut negotiated = self.negotiated();
        if negotiated.last_event_id.as_deref() == Some(id) {
            return false;
        }
        negotiated.last_event_id = Some(id.to_string());
        true
    }

    fn close(&self) {
        self.gone.store(true, Ordering::Release);
        self.correlation.close();
        self.closed.send_replace(true);
    }

    /// A request to `path` with the credential, the session's headers and
    /// `body` (JSON) if any.
    fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<http::Request<Full<Bytes>>, UpstreamError> {
        let mut builder = http::Request::builder()
            .method(method.clone())
            .uri(path)
            .header(http::header::HOST, &self.target.authority)
            .header(http::header::USER_AGENT, "airlock-mcp-proxy");
        builder = if method == Method::GET {
            builder.header(http::header::ACCEPT, "text/event-stream")
        } else {
            builder.header(http::header::ACCEPT, "application/json, text/event-stream")
        };
        if body.is_some() {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
        }
        {
            let negotiated = self.negotiated();
            if let Some(id) = &negotiated.session_id {
                builder = builder.header(SESSION_HEADER, id);
            }
            if let Some(version) = &negotiated.protocol_version {
                builder = builder.header(VERSION_HEADER, version);
            }
        }
        let mut request = builder
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|_| UpstreamError::Unreachable("the request cannot be built".into()))?;
        if let Some((name, value)) = &self.credential {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        Ok(request)
    }

    /// POSTs `message` to `path`; the response head.
    async fn post(
        &self,
        path: &str,
        message: &Value,
    ) -> Result<http::Response<Incoming>, UpstreamError> {
        let body = Bytes::from(message.to_string());
        let request = self.request(Method::POST, path, Some(body))?;
        http_client::send(&self.target, request, self.timeout).await
    }

    /// One message from the server: the credential scrubbed, the
    /// negotiated revision noted, then to the correlation; a refusal of a
    /// server request is posted back.
    fn deliver(self: &Arc<Self>, mut message: Value) {
        scrub(&mut message, &self.forms);
        {
            let mut negotiated = self.negotiated();
            let answers_initialize = negotiated.initialize_id.is_some()
                && message.get("id").and_then(Value::as_u64) == negotiated.initialize_id;
            if answers_initialize {
                negotiated.protocol_version = message
                    .pointer("/result/protocolVersion")
                    .and_then(Value::as_str)
                    .filter(|version| is_header_text(version, 64))
                    .map(str::to_string);
            }
        }
        if let Some(reply) = self.correlation.incoming(message) {
            tokio::spawn(post_reply(Arc::clone(self), reply));
        }
    }
}

/// True for text that may go in a header the gateway sends.
fn is_header_text(text: &str, max: usize) -> bool {
    !text.is_empty() && text.len() <= max && text.bytes().all(|byte| (0x21..=0x7e).contains(&byte))
}

async fn send(inner: &Arc<Inner>, message: &Value) -> Result<(), UpstreamError> {
    if inner.gone.load(Ordering::Acquire) {
        return Err(UpstreamError::Gone);
    }
    let method = message.get("method").and_then(Value::as_str).unwrap_or("");
    if method == "initialize" {
        inner.negotiated().initialize_id = message.get("id").and_then(Value::as_u64);
    }
    if inner.target.transport == McpTransport::Sse && legacy_endpoint(inner).is_none() {
        connect_legacy(inner).await?;
    }
    if let Some(endpoint) = legacy_endpoint(inner) {
        return post_legacy(inner, &endpoint, message).await;
    }
    let response = inner.post(&inner.target.path, message).await?;
    let status = response.status();
    let undecided = inner.negotiated().mode == Mode::Undecided;
    if undecided
        && method == "initialize"
        && matches!(
            status,
            StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
        )
    {
        tracing::info!(%status, "the MCP server refused the Streamable HTTP initialize; trying the HTTP+SSE transport");
        connect_legacy(inner).await?;
        let endpoint = legacy_endpoint(inner).ok_or(UpstreamError::BadAnswer)?;
        return post_legacy(inner, &endpoint, message).await;
    }
    streamable_answer(inner, message, response).await
}

/// Reads a Streamable HTTP answer to a POST.
async fn streamable_answer(
    inner: &Arc<Inner>,
    message: &Value,
    response: http::Response<Incoming>,
) -> Result<(), UpstreamError> {
    let method = message.get("method").and_then(Value::as_str).unwrap_or("");
    let request_id = message.get("id").and_then(Value::as_u64);
    let status = response.status();
    let had_session = inner.negotiated().session_id.is_some();
    if status == StatusCode::NOT_FOUND && had_session {
        tracing::info!("the MCP server ended the session (404)");
        inner.close();
        return Err(UpstreamError::Gone);
    }
    if !status.is_success() {
        return Err(UpstreamError::Refused(status.as_u16()));
    }
    {
        let mut negotiated = inner.negotiated();
        negotiated.mode = Mode::Streamable;
        if negotiated.session_id.is_none() {
            negotiated.session_id = response
                .headers()
                .get(SESSION_HEADER)
                .and_then(|value| value.to_str().ok())
                .filter(|id| is_header_text(id, MAX_SESSION_ID_BYTES))
                .map(str::to_string);
        }
    }
    if method == "notifications/initialized" {
        listen(inner);
    }
    if status == StatusCode::ACCEPTED {
        return Ok(());
    }
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let body = response.into_body();
    if content_type.starts_with("text/event-stream") {
        let stream = match request_id {
            Some(id) => Stream::Answer(id),
            None => Stream::Standalone,
        };
        tokio::spawn(read_stream(Arc::clone(inner), body, stream));
        Ok(())
    } else if content_type.starts_with("application/json") {
        tokio::spawn(read_json(Arc::clone(inner), body));
        Ok(())
    } else if method.starts_with("notifications/") || method.is_empty() {
        // A 200 without a body to a notification or a response.
        Ok(())
    } else {
        Err(UpstreamError::BadAnswer)
    }
}

/// Consecutive failed reopenings of the GET stream before it is given up.
const MAX_REOPEN_ATTEMPTS: u32 = 5;
/// The wait before the first reopening; it grows with each failure.
const REOPEN_BACKOFF: Duration = Duration::from_millis(200);

/// Opens the server's standalone stream, if it offers one, and reopens it
/// with `Last-Event-ID` when it drops while the session lives (the
/// resumption the transport specifies), so the server's notifications
/// sent meanwhile are replayed, not lost. A server that answers the GET
/// with anything but 200 offers no stream: not asked again.
fn listen(inner: &Arc<Inner>) {
    {
        let mut negotiated = inner.negotiated();
        if negotiated.listening || negotiated.session_id.is_none() {
            return;
        }
        negotiated.listening = true;
    }
    let inner = Arc::clone(inner);
    tokio::spawn(async move {
        let mut failures = 0u32;
        loop {
            let Ok(mut request) = inner.request(Method::GET, &inner.target.path, None) else {
                return;
            };
            let resume = inner.negotiated().last_event_id.clone();
            if let Some(value) = resume.and_then(|id| HeaderValue::from_str(&id).ok()) {
                request.headers_mut().insert(LAST_EVENT_ID_HEADER, value);
            }
            match http_client::send(&inner.target, request, inner.timeout).await {
                Ok(response) if response.status() == StatusCode::OK => {
                    let ended =
                        read_stream(Arc::clone(&inner), response.into_body(), Stream::Listen).await;
                    match ended {
                        StreamEnd::SessionClosed => return,
                        StreamEnd::Ended { delivered } => {
                            if delivered > 0 {
                                failures = 0;
                            }
                        }
                    }
                }
                Ok(response) => {
                    tracing::debug!(status = %response.status(), "the MCP server offers no stream of its own");
                    return;
                }
                Err(error) => tracing::debug!(%error, "the MCP server's stream cannot be opened"),
            }
            failures += 1;
            if failures > MAX_REOPEN_ATTEMPTS || inner.gone.load(Ordering::Acquire) {
                tracing::info!("the MCP server's stream is not reopened any more");
                return;
            }
            let mut closed = inner.closed.subscribe();
            tokio::select! {
                _ = tokio::time::sleep(REOPEN_BACKOFF * failures) => {}
                _ = closed.wait_for(|closed| *closed) => return,
            }
            tracing::debug!(attempt = failures, "reopening the MCP server's stream");
        }
    });
}

/// A JSON answer (one message, or a batch of them), bounded.
async fn read_json(inner: Arc<Inner>, body: Incoming) {
    let mut closed = inner.closed.subscribe();
    let read = tokio::select! {
        read = tokio::time::timeout(inner.timeout, Limited::new(body, MAX_MESSAGE_BYTES).collect()) => read,
        _ = closed.wait_for(|closed| *closed) => return,
    };
    let Ok(Ok(collected)) = read else {
        tracing::warn!("the MCP server's JSON answer is too large or incomplete; dropped");
        return;
    };
    match serde_json::from_slice::<Value>(&collected.to_bytes()) {
        Ok(Value::Array(messages)) => {
            for message in messages {
                inner.deliver(message);
            }
        }
        Ok(message) => inner.deliver(message),
        Err(_) => tracing::debug!("the MCP server's answer is not JSON; dropped"),
    }
}

/// Which stream is read.
enum Stream {
    /// The answer to the gateway's request with this id: read until it
    /// came (a server that keeps the stream open does not keep the task).
    Answer(u64),
    /// An answer to a notification.
    Standalone,
    /// The server's own stream (GET): event ids noted for resumption.
    Listen,
    /// The legacy transport's one stream: its first `endpoint` event goes
    /// to the sender; its end ends the session.
    Legacy(Option<oneshot::Sender<String>>),
}

/// How a stream's reading ended.
enum StreamEnd {
    /// The session closed.
    SessionClosed,
    /// The stream ended, broke or broke a bound, after delivering this
    /// many messages.
    Ended { delivered: usize },
}

/// Reads an event stream until it ends, breaks a bound or the session
/// closes; `message` events are delivered.
async fn read_stream(inner: Arc<Inner>, mut body: Incoming, mut stream: Stream) -> StreamEnd {
    let mut closed = inner.closed.subscribe();
    let mut decoder = SseDecoder::new(MAX_MESSAGE_BYTES);
    let mut delivered = 0usize;
    'read: loop {
        let frame = tokio::select! {
            frame = body.frame() => frame,
            _ = closed.wait_for(|closed| *closed) => return StreamEnd::SessionClosed,
        };
        let Some(Ok(frame)) = frame else { break };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let events = match decoder.push(&data) {
            Ok(events) => events,
            Err(error) => {
                tracing::warn!(%error, "dropping the MCP server's stream");
                break;
            }
        };
        for event in events {
            match event.event.as_str() {
                "endpoint" => {
                    if let Stream::Legacy(endpoint) = &mut stream {
                        if let Some(sender) = endpoint.take() {
                            let _ = sender.send(event.data);
                        }
                    }
                }
                "message"
                    if matches!(stream, Stream::Listen)
                        && !inner.note_event_id(event.id.as_deref()) =>
                {
                    tracing::debug!("an event replayed twice by the MCP server; dropped");
                }
                "message" => match serde_json::from_str::<Value>(&event.data) {
                    Ok(message) => {
                        delivered += 1;
                        let answered = matches!(stream, Stream::Answer(id)
                            if message.get("id").and_then(Value::as_u64) == Some(id)
                                && message.get("method").is_none());
                        inner.deliver(message);
                        if answered {
                            break 'read;
                        }
                    }
                    Err(_) => tracing::debug!("an event of the MCP server is not JSON; dropped"),
                },
                _ => {}
            }
        }
    }
    if matches!(stream, Stream::Legacy(_)) {
        tracing::info!("the MCP server's HTTP+SSE stream ended");
        inner.close();
    }
    StreamEnd::Ended { delivered }
}

fn legacy_endpoint(inner: &Inner) -> Option<String> {
    match &inner.negotiated().mode {
        Mode::Legacy { endpoint } => Some(endpoint.clone()),
        _ => None,
    }
}

/// Opens the legacy stream (GET the url) and waits for its `endpoint`.
async fn connect_legacy(inner: &Arc<Inner>) -> Result<(), UpstreamError> {
    let request = inner.request(Method::GET, &inner.target.path, None)?;
    let response = http_client::send(&inner.target, request, inner.timeout).await?;
    if response.status() != StatusCode::OK {
        return Err(UpstreamError::Refused(response.status().as_u16()));
    }
    let (sender, receiver) = oneshot::channel();
    tokio::spawn(read_stream(
        Arc::clone(inner),
        response.into_body(),
        Stream::Legacy(Some(sender)),
    ));
    let reference = tokio::time::timeout(inner.timeout, receiver)
        .await
        .map_err(|_| UpstreamError::Timeout(inner.timeout))?
        .map_err(|_| UpstreamError::BadAnswer)?;
    let Some(endpoint) = inner.target.resolve(&reference) else {
        tracing::warn!("the MCP server named an endpoint off its own origin; refused");
        inner.close();
        return Err(UpstreamError::BadAnswer);
    };
    inner.negotiated().mode = Mode::Legacy { endpoint };
    Ok(())
}

/// POSTs to the legacy endpoint; the answer comes on the stream.
async fn post_legacy(
    inner: &Arc<Inner>,
    endpoint: &str,
    message: &Value,
) -> Result<(), UpstreamError> {
    let response = inner.post(endpoint, message).await?;
    let status = response.status();
    // The body ("Accepted") says nothing: drained, bounded.
    let _ = tokio::time::timeout(
        inner.timeout,
        Limited::new(response.into_body(), 64 * 1024).collect(),
    )
    .await;
    if status.is_success() {
        Ok(())
    } else if status == StatusCode::NOT_FOUND {
        inner.close();
        Err(UpstreamError::Gone)
    } else {
        Err(UpstreamError::Refused(status.as_u16()))
    }
}

/// Sends the gateway's answer to a request of the server (its refusal);
/// whatever comes back is not read.
async fn post_reply(inner: Arc<Inner>, reply: Value) {
    if inner.gone.load(Ordering::Acquire) {
        return;
    }
    let path = legacy_endpoint(&inner).unwrap_or_else(|| inner.target.path.clone());
    if let Err(error) = inner.post(&path, &reply).await {
        tracing::debug!(%error, "the answer to the MCP server's request was not sent");
    }
}

/// Replaces every form of the credential in every string (and key) of
/// `value`.
pub fn scrub(value: &mut Value, forms: &[String]) {
    if forms.is_empty() {
        return;
    }
    match value {
        Value::String(text) => {
            if let Some(clean) = scrubbed(text, forms) {
                *text = clean;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| scrub(item, forms)),
        Value::Object(object) => {
            if object.keys().any(|key| scrubbed(key, forms).is_some()) {
                let entries = std::mem::take(object);
                *object = entries
                    .into_iter()
                    .map(|(key, value)| (scrubbed(&key, forms).unwrap_or(key), value))
                    .collect::<Map<String, Value>>();
            }
            object.values_mut().for_each(|item| scrub(item, forms));
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// `text` with every form replaced, if it held one.
fn scrubbed(text: &str, forms: &[String]) -> Option<String> {
    if !forms.iter().any(|form| text.contains(form.as_str())) {
        return None;
    }
    let mut clean = text.to_string();
    for form in forms {
        if clean.contains(form.as_str()) {
            clean = clean.replace(form.as_str(), SCRUBBED);
        }
    }
    Some(clean)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_echo_of_the_credential_is_replaced() {
        let inject = InjectConfig {
            bearer: true,
            ..InjectConfig::default()
        };
        let mut forms: Vec<String> = airlock_core::inject::echo_forms(&inject, "", "tok/en+secret")
            .into_iter()
            .map(|form| String::from_utf8(form).unwrap())
            .collect();
        forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
        let mut answer = json!({
            "result": {
                "content": [{"type": "text", "text": "Authorization: Bearer tok/en+secret"}],
                "structuredContent": {"tok%2Fen%2Bsecret": ["dG9rL2VuK3NlY3JldA=="], "n": 1},
            }
        });
        scrub(&mut answer, &forms);
        let text = answer.to_string();
        assert!(!text.contains("tok/en+secret"), "{text}");
        assert!(!text.contains("tok%2Fen%2Bsecret"), "{text}");
        assert!(!text.contains("dG9rL2VuK3NlY3JldA"), "{text}");
        assert_eq!(
            answer["result"]["content"][0]["text"],
            format!("Authorization: Bearer {SCRUBBED}")
        );
        assert_eq!(answer["result"]["structuredContent"]["n"], 1);
    }

    /// A scripted HTTP server (a stand-in: these cases need a server that
    /// misbehaves on purpose): each connection gets the next answer; every
    /// request's head and body is kept.
    async fn scripted(answers: Vec<String>) -> (u16, Arc<Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        tokio::spawn(async move {
            for answer in answers {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                // Head, then as much body as Content-Length says.
                loop {
                    let read = stream.read(&mut buffer).await.unwrap_or(0);
                    request.extend_from_slice(&buffer[..read]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|line| {
                                line.to_ascii_lowercase()
                                    .strip_prefix("content-length: ")
                                    .map(str::to_string)
                            })
                            .and_then(|length| length.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if body.len() >= length {
                            break;
                        }
                    }
                    if read == 0 {
                        break;
                    }
                }
                record
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&request).to_string());
                stream.write_all(answer.as_bytes()).await.unwrap();
                // An event stream stays open; the test ends it.
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    drop(stream);
                });
            }
        });
        (port, seen)
    }

    fn server(port: u16, path: &str, transport: &str) -> RemoteServer {
        let connection: airlock_core::config::ConnectionConfig = serde_saphyr::from_str(&format!(
            "{{name: m, protocol: mcp, url: 'http://127.0.0.1:{port}{path}', transport: {transport}}}"
        ))
        .unwrap();
        let target = RemoteTarget::of(&connection, std::path::Path::new("/x.yaml")).unwrap();
        let inject = InjectConfig {
            header: Some("X-Api-Key".into()),
            ..InjectConfig::default()
        };
        RemoteServer::new(
            target,
            Some(&inject),
            "",
            &Secret::new("key-0123456789".to_string()),
            Arc::new(Correlation::default()),
            Duration::from_secs(5),
        )
        .unwrap()
    }

    fn json_answer(headers: &str, body: &Value) -> String {
        let body = body.to_string();
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    #[tokio::test]
    async fn streamable_http_keeps_the_session_scrubs_answers_and_ends_on_404() {
        let (port, seen) = scripted(vec![
            json_answer(
                "mcp-session-id: up-1\r\n",
                &json!({"jsonrpc": "2.0", "id": 1, "result": {"protocolVersion": "2025-06-18", "echo": "X-Api-Key: key-0123456789"}}),
            ),
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into(),
        ])
        .await;
        let remote = server(port, "/mcp", "streamable-http");
        let correlation = Arc::clone(&remote.inner.correlation);
        let (id, answer) = correlation.register();
        let initialize = json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {}});
        remote.send(&initialize).await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(5), answer)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(answer["result"]["echo"], format!("X-Api-Key: {SCRUBBED}"));
        let (next, _) = correlation.register();
        let listed = json!({"jsonrpc": "2.0", "id": next, "method": "tools/list"});
        assert!(matches!(
            remote.send(&listed).await,
            Err(UpstreamError::Gone)
        ));
        assert!(*remote.exited().borrow(), "the server ended the session");
        assert!(matches!(
            remote.send(&listed).await,
            Err(UpstreamError::Gone)
        ));
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        let first = seen[0].to_ascii_lowercase();
        assert!(first.starts_with("post /mcp "), "{first}");
        assert!(first.contains("x-api-key: key-0123456789"), "{first}");
        assert!(!first.contains("mcp-session-id"), "{first}");
        let second = seen[1].to_ascii_lowercase();
        assert!(second.contains("mcp-session-id: up-1"), "{second}");
        assert!(
            second.contains("mcp-protocol-version: 2025-06-18"),
            "{second}"
        );
    }

    #[tokio::test]
    async fn a_refused_credential_is_an_http_status_not_the_servers_words() {
        let (port, _) = scripted(vec![
            "HTTP/1.1 401 Unauthorized\r\ncontent-length: 9\r\nconnection: close\r\n\r\nbad token"
                .into(),
        ])
        .await;
        let remote = server(port, "/mcp", "auto");
        let message = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize"});
        assert!(matches!(
            remote.send(&message).await,
            Err(UpstreamError::Refused(401))
        ));
    }

    #[tokio::test]
    async fn a_legacy_endpoint_on_another_origin_gets_nothing() {
        let stream = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\nevent: endpoint\r\ndata: http://127.0.0.2:9/steal\r\n\r\n";
        let (port, seen) = scripted(vec![
            "HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                .into(),
            stream.into(),
        ])
        .await;
        let remote = server(port, "/sse", "auto");
        let message = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize"});
        assert!(matches!(
            remote.send(&message).await,
            Err(UpstreamError::BadAnswer)
        ));
        assert!(*remote.exited().borrow());
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen.len(),
            2,
            "the POST, then the fallback GET; nothing else"
        );
        assert!(seen[1].starts_with("GET /sse "), "{}", seen[1]);
    }

    #[test]
    fn header_text_is_bounded_and_visible() {
        assert!(is_header_text("2025-06-18", 64));
        assert!(!is_header_text("a\r\nx-injected: 1", 64));
        assert!(!is_header_text("", 64));
        assert!(!is_header_text(&"a".repeat(65), 64));
    }
}
