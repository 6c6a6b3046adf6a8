//! One HTTP request through the gateway, in phases: route, authenticate
//! (the core's login), admit (the core's admission: one session per
//! request), decide (the core's gate, a review held here), record before
//! forward, forward with the injected credential, relay the response
//! (scrubbed, masked) and record its outcome.
//!
//! Every refusal is answered by `errors`; every request that reached
//! admission ends its session with `session.end`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{header, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use airlock_core::admission::{AdmissionRequest, AdmittedSession, SessionCounts, UpstreamLogin};
use airlock_core::auth::Authenticated;
use airlock_core::gate::{Decision, Gate, Limits, Refusal, Verdict};
use airlock_core::login::LoginAttempt;
use airlock_types::command::{CommandKind, HttpRequest};
use airlock_types::{Command, Protocol};

use crate::errors;
use crate::headers::{
    check_request, credential_header, echo_forms, upstream_request_headers, HeaderError,
};
use crate::recording::{command_event, HttpResult, RecordContext, ResultRecord};
use crate::relay::relay_response;
use crate::route::{route, upstream_target, Route};
use crate::scrub::Scrubber;
use crate::upstream::{send, send_upgrade, UpstreamBody};
use crate::{ClientBody, HttpGateway};

/// Largest request body shown to (and bound by) a reviewer; a larger body
/// of a request held for review is refused.
pub const MAX_REVIEWED_BODY_BYTES: usize = 64 * 1024;

/// Where the request came from.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub address: SocketAddr,
    pub tls: bool,
}

fn new_session_id() -> String {
    let bytes: [u8; 8] = rand::random();
    format!("s-{}", hex::encode(bytes))
}

/// The bearer token of the request: exactly one `Authorization` header
/// with scheme `Bearer`.
fn bearer_token(request: &Request<Incoming>) -> Option<String> {
    let mut values = request.headers().get_all(header::AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let text = value.to_str().ok()?;
    let (scheme, token) = text.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' '))
        .then(|| token.to_string())
}

/// True when the first path segment names a `protocol: kubernetes`
/// connection (its answers are then `Status` objects).
fn kubernetes_connection(gateway: &HttpGateway, path: &str) -> bool {
    let name = path.trim_start_matches('/').split('/').next().unwrap_or("");
    gateway
        .targets
        .get(name)
        .is_some_and(|target| target.kubernetes.is_some())
}

/// Serves one request.
pub async fn handle(
    gateway: Arc<HttpGateway>,
    request: Request<Incoming>,
    peer: Peer,
) -> Response<ClientBody> {
    if airlock_mcp::http::serves(request.uri().path()) {
        return airlock_mcp::http::handle(&gateway.mcp, request, peer.address, peer.tls).await;
    }
    if gateway.mcp_proxy.serves(request.uri().path()) {
        let proxy = &gateway.mcp_proxy;
        return airlock_mcp::proxy::endpoint::handle(proxy, request, peer.address, peer.tls).await;
    }
    if kubernetes_connection(&gateway, request.uri().path()) {
        crate::kubernetes::errors::as_status(serve(gateway, request, peer, true).await)
    } else {
        serve(gateway, request, peer, false).await
    }
}

async fn serve(
    gateway: Arc<HttpGateway>,
    request: Request<Incoming>,
    peer: Peer,
    kubernetes: bool,
) -> Response<ClientBody> {
    let started = Instant::now();
    let path = request.uri().path().to_string();
    let query = request.uri().query().map(str::to_string);
    let routed = match route(&path, query.as_deref()) {
        Ok(routed) => routed,
        Err(error) => return errors::route(error),
    };
    // Kubernetes streams (exec, attach, port-forward) arrive as upgrades:
    // the gate decides them like any request (they are admin); an allowed
    // one is relayed when `kubernetes::stream` can read it.
    let mut upgrade = false;
    match check_request(request.headers()) {
        Ok(()) => {}
        Err(HeaderError::Upgrade) if kubernetes => upgrade = true,
        Err(error) => return errors::bad_request(&error.to_string()),
    }
    let protocol = if kubernetes {
        Protocol::Kubernetes
    } else {
        Protocol::Http
    };
    let session_id = new_session_id();
    let attempt = LoginAttempt {
        protocol,
        user: "",
        connection: routed.connection,
        session_id: &session_id,
        peer: peer.address,
    };
    let state = &gateway.state;
    if let Err(refusal) = state.check_lockout(&attempt) {
        return errors::login(&refusal);
    }
    let Some(token) = bearer_token(&request) else {
        return errors::unauthenticated();
    };
    let authenticated = match state.log_in_bearer(&attempt, token).await {
        Ok(authenticated) => authenticated,
        Err(refusal) => return errors::login(&refusal),
    };
    let admission = AdmissionRequest {
        protocol,
        authenticated: &authenticated,
        connection: routed.connection,
        session_id: &session_id,
        peer: peer.address,
        tls: peer.tls,
        started,
    };
    let admitted = match state.admit_session(&admission).await {
        Ok(admitted) => admitted,
        Err(refusal) => return errors::admission(&refusal),
    };
    let (session, login) = match admitted.open(state, &admission, None).await {
        Ok(opened) => opened,
        Err(refusal) => return errors::admission(&refusal),
    };
    let span = tracing::info_span!("http", session = %session_id, protocol = protocol.as_str(),
        client = %peer.address, identity = %authenticated.identity.name, connection = %routed.connection);
    let _entered = span.enter();
    let exchange = Exchange {
        gateway: &gateway,
        authenticated: &authenticated,
        routed: &routed,
        started,
        upgrade,
    };
    exchange.run(request, session, login).await
}

/// The headers the gateway adds upstream, the credential first.
type AddedHeaders = Vec<(http::HeaderName, HeaderValue)>;

/// Why the added headers cannot be sent.
#[derive(Debug, Clone, Copy)]
enum Unsendable {
    /// The stored credential is not a valid header value.
    Credential,
    /// The identity (or a group) is not a valid header value, or is a
    /// reserved `system:` user.
    Identity,
    /// The client-certificate credential holds no usable certificate and key.
    Certificate,
}

impl Unsendable {
    fn response(self) -> Response<ClientBody> {
        match self {
            Self::Credential => {
                errors::unmaskable("the stored credential cannot be sent as a header")
            }
            Self::Identity => {
                errors::bad_request("the identity cannot be sent as Impersonate-User")
            }
            Self::Certificate => errors::unmaskable("the stored client certificate cannot be used"),
        }
    }
}

/// One admitted request on its way.
struct Exchange<'a> {
    gateway: &'a Arc<HttpGateway>,
    authenticated: &'a Authenticated,
    routed: &'a Route<'a>,
    started: Instant,
    /// The client asked for a protocol upgrade (Kubernetes streams only;
    /// refused for plain HTTP before this point).
    upgrade: bool,
}

impl Exchange<'_> {
    fn context<'s>(&'s self, session: &'s AdmittedSession) -> RecordContext<'s> {
        RecordContext {
            session_id: session.session_id(),
            identity: &self.authenticated.identity.name,
            connection: self.routed.connection,
        }
    }

    /// Decides, records, forwards, relays.
    async fn run(
        &self,
        request: Request<Incoming>,
        session: AdmittedSession,
        login: UpstreamLogin,
    ) -> Response<ClientBody> {
        let state = &self.gateway.state;
        let Some(target) = self.gateway.targets.get(self.routed.connection) else {
            let response = errors::admission(
                &airlock_core::admission::AdmissionRefusal::UnknownConnection {
                    connection: self.routed.connection.to_string(),
                },
            );
            session
                .record_end("refused", None, SessionCounts::default())
                .await;
            return response;
        };
        let method = request.method().as_str().to_string();
        let command = match self.command(target, &method, request.headers()) {
            Ok(command) => command,
            Err(message) => {
                session
                    .record_end("refused", None, SessionCounts::default())
                    .await;
                return errors::bad_request(&message);
            }
        };
        let mut shown = match self.routed.query {
            Some(query) => format!("{method} {}?{query}", self.routed.path),
            None => format!("{method} {}", self.routed.path),
        };
        let gate = Gate::new(
            Arc::clone(state),
            self.authenticated.identity.clone(),
            state.connection_info(&session.connection),
        );
        let (mut parts, body) = request.into_parts();
        // The client's side of an upgrade (taken before the parts go upstream).
        let client_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
        let mut decision = gate.decide(&command, Limits::Now, &shown);
        let mut body: UpstreamBody = body.boxed();
        let held = decision.review.is_some();
        if held {
            match hold_for_review(
                &gate,
                &command,
                &mut shown,
                body,
                decision,
                session.session_id(),
            )
            .await
            {
                Some((held, read)) => {
                    decision = held;
                    body = read;
                }
                None => {
                    session
                        .record_end("refused", None, SessionCounts::default())
                        .await;
                    return errors::body_too_large(MAX_REVIEWED_BODY_BYTES);
                }
            }
        }
        let mut stream_plan = None;
        if self.upgrade && matches!(decision.verdict, Verdict::Forward) {
            match crate::kubernetes::stream::plan(&parts.headers, &command, decision.mask.is_some())
            {
                Ok(mut plan) => {
                    let identity = &self.authenticated.identity;
                    plan.ends_at = (!state.config.auth.sessions_outlive_tokens
                        && identity.expires_at > 0)
                        .then_some(identity.expires_at);
                    if plan.kind == crate::kubernetes::stream::StreamKind::PortForward {
                        plan.tunnel = Some(Arc::new(
                            self.tunnel_context(&session, &command, &shown, &decision),
                        ));
                    }
                    stream_plan = Some(plan);
                }
                Err(message) => decision = refused_upgrade(&decision, message),
            }
        }
        if let Err(refused) = self
            .record_command(&session, &command, &shown, &decision)
            .await
        {
            decision = refused;
        }
        if let Verdict::Refuse(refusal) = &decision.verdict {
            let response = errors::refusal(refusal, &decision);
            let counts = SessionCounts {
                commands: 1,
                refused: 1,
                ..SessionCounts::default()
            };
            session.record_end("refused", None, counts).await;
            return response;
        }
        let pool_key = crate::pool::PoolKey {
            connection: self.routed.connection.to_string(),
            credential_version: login.credential_version,
        };
        let (added, scrubber, client_tls) = match self.added_headers(target, login) {
            Ok(added) => added,
            Err(unsendable) => {
                session
                    .record_end("refused", None, SessionCounts::default())
                    .await;
                return unsendable.response();
            }
        };
        // A client-certificate connection presents the credential in TLS.
        let with_certificate;
        let target = match client_tls {
            Some(config) => {
                with_certificate = crate::upstream::UpstreamTarget {
                    tls: Some(config),
                    ..target.clone()
                };
                &with_certificate
            }
            None => target,
        };
        let json_only = target.kubernetes.is_some() && decision.mask.is_some();
        let Some(mut upstream_request) =
            build_upstream_request(target, self.routed, parts, body, added, json_only)
        else {
            session
                .record_end("refused", None, SessionCounts::default())
                .await;
            return errors::bad_request("the path cannot be forwarded");
        };
        let line_stream = crate::kubernetes::streams_lines(&command, self.routed.query);
        let sent = Instant::now();
        if let (Some(meter), false) = (gate.meter(), held) {
            // What the gateway added before forwarding (a review's wait
            // left out, as for the databases).
            meter.added(sent.saturating_duration_since(self.started));
        }
        let answered = match &stream_plan {
            Some(plan) => {
                crate::kubernetes::stream::upstream_headers(upstream_request.headers_mut(), plan);
                let pool = &self.gateway.pool;
                send_upgrade(
                    pool,
                    target,
                    upstream_request,
                    self.gateway.upstream_timeout,
                )
                .await
            }
            None => {
                let pool = &self.gateway.pool;
                let timeout = self.gateway.upstream_timeout;
                send(pool, pool_key, target, upstream_request, timeout).await
            }
        };
        if let (Some(meter), Ok(_)) = (gate.meter(), &answered) {
            // Until the upstream's response head: the body streams after.
            meter.answered(sent.elapsed(), std::iter::empty());
        }
        match answered {
            Ok(response) if response.status() == http::StatusCode::SWITCHING_PROTOCOLS => {
                let stream = (stream_plan, client_upgrade);
                self.switched(response, stream, scrubber, session).await
            }
            Ok(response) => {
                relay_response(
                    self.gateway,
                    response,
                    decision,
                    scrubber,
                    session,
                    self.started,
                    line_stream,
                )
                .await
            }
            Err(error) => self.upstream_failed(session, &error).await,
        }
    }

    /// What kubectl's port-forward tunnel needs to decide its connections:
    /// a gate of its own, the upgrade's command, and the rule whose review
    /// approved the upgrade.
    fn tunnel_context(
        &self,
        session: &AdmittedSession,
        command: &Command,
        shown: &str,
        decision: &Decision,
    ) -> crate::kubernetes::tunnel::TunnelContext {
        let state = &self.gateway.state;
        let approved_rule = decision
            .details
            .review
            .as_ref()
            .and(decision.details.rule())
            .map(str::to_string);
        crate::kubernetes::tunnel::TunnelContext {
            gate: Gate::new(
                Arc::clone(state),
                self.authenticated.identity.clone(),
                state.connection_info(&session.connection),
            ),
            command: command.clone(),
            path: self.routed.path.to_string(),
            shown: shown.to_string(),
            approved_rule,
        }
    }

    /// The upstream switched protocols: an allowed stream is relayed
    /// (`kubernetes::stream`); an upgrade nobody asked for is not.
    async fn switched(
        &self,
        response: hyper::Response<Incoming>,
        (plan, client): (
            Option<crate::kubernetes::stream::StreamPlan>,
            Option<hyper::upgrade::OnUpgrade>,
        ),
        scrubber: Scrubber,
        session: AdmittedSession,
    ) -> Response<ClientBody> {
        let Some(plan) = plan else {
            let error = crate::upstream::UpstreamError::Exchange(
                "the upstream switched protocols unasked".into(),
            );
            return self.upstream_failed(session, &error).await;
        };
        crate::kubernetes::stream::relay(
            self.gateway,
            response,
            client,
            plan,
            scrubber,
            session,
            self.started,
        )
        .await
    }

    /// The headers the gateway adds upstream (the credential first, then a
    /// Kubernetes connection's impersonation) and the scrubber for the
    /// credential's echoes; the decrypted login is dropped here. The
    /// client's answer when they cannot be sent.
    fn added_headers(
        &self,
        target: &crate::upstream::UpstreamTarget,
        login: UpstreamLogin,
    ) -> Result<(AddedHeaders, Scrubber, Option<Arc<rustls::ClientConfig>>), Unsendable> {
        let secret = login.password.expose();
        let certificate = target
            .kubernetes
            .as_ref()
            .and_then(|k8s| k8s.client_certificate.as_ref());
        let mut added = Vec::new();
        let (scrubber, tls) = match certificate {
            // The credential is the client certificate: no header carries it.
            Some(certificate) => {
                let config = certificate
                    .config(secret, login.credential_version)
                    .map_err(|reason| {
                        tracing::warn!(%reason, "client certificate credential unusable");
                        Unsendable::Certificate
                    })?;
                (Scrubber::new(&[]), Some(config))
            }
            None => {
                added.push(
                    credential_header(&target.inject, &login.username, secret)
                        .ok_or(Unsendable::Credential)?,
                );
                let forms = echo_forms(&target.inject, &login.username, secret);
                (Scrubber::new(&forms), None)
            }
        };
        drop(login);
        if target
            .kubernetes
            .as_ref()
            .is_some_and(|k8s| k8s.impersonate)
        {
            let headers = crate::kubernetes::impersonation_headers(&self.authenticated.identity)
                .ok_or(Unsendable::Identity)?;
            added.extend(headers);
        }
        Ok((added, scrubber, tls))
    }

    /// The command of the request: a Kubernetes request (its request
    /// info) for a kubernetes connection, an HTTP request otherwise; the
    /// client's message when the path cannot be classified.
    fn command(
        &self,
        target: &crate::upstream::UpstreamTarget,
        method: &str,
        headers: &http::HeaderMap,
    ) -> Result<Command, String> {
        if target.kubernetes.is_some() {
            return crate::kubernetes::command(method, self.routed, headers)
                .map_err(|error| error.to_string());
        }
        Ok(Command::new(
            format!("{method} {}", self.routed.path),
            CommandKind::Http(HttpRequest::new(method, self.routed.path)),
        ))
    }

    /// The upstream could not be reached or did not answer: 502/504, the
    /// result and the session's end recorded.
    async fn upstream_failed(
        &self,
        session: AdmittedSession,
        error: &crate::upstream::UpstreamError,
    ) -> Response<ClientBody> {
        tracing::warn!(%error, "upstream request failed");
        let response = errors::upstream(error);
        let result = ResultRecord::failed(
            response.status().as_u16(),
            error.to_string(),
            elapsed_us(self.started),
        );
        if self.gateway.state.config.recording.enabled {
            let event = result.event(&self.context(&session).scope(0));
            self.gateway.state.recorder.record_later(vec![event]).await;
        }
        let counts = SessionCounts {
            commands: 1,
            ..SessionCounts::default()
        };
        session
            .record_end("upstream_failed", Some(error.to_string()), counts)
            .await;
        response
    }

    /// Audit before forward: the `command` event, awaited. A refusal when
    /// it could not be written (the request is not forwarded).
    async fn record_command(
        &self,
        session: &AdmittedSession,
        command: &Command,
        shown: &str,
        decision: &Decision,
    ) -> Result<(), Decision> {
        let state = &self.gateway.state;
        if !state.config.recording.enabled {
            return Ok(());
        }
        let event = command_event(
            &self.context(session),
            command,
            self.routed.path,
            shown,
            decision,
            state.config.recording.max_statement_bytes,
        );
        match state.recorder.record(vec![event]).await {
            Ok(()) => Ok(()),
            Err(error) => {
                tracing::error!(%error, "refusing the request: audit write failed");
                let mut refused = Decision::refuse(
                    Refusal::RecordingUnavailable {
                        message: "airlock: the audit log cannot be written; the request is refused"
                            .into(),
                    },
                    decision.details.clone(),
                );
                refused.version = decision.version;
                Err(refused)
            }
        }
    }
}

/// Holds a request a review rule caught: its body (at most
/// [`MAX_REVIEWED_BODY_BYTES`]) joins what the reviewer sees and the
/// approval binds, then the core waits for reviewers. `None` when the body
/// is too large to show.
async fn hold_for_review(
    gate: &Gate,
    command: &Command,
    shown: &mut String,
    body: UpstreamBody,
    mut decision: Decision,
    session_id: &str,
) -> Option<(Decision, UpstreamBody)> {
    let collected = Limited::new(body, MAX_REVIEWED_BODY_BYTES)
        .collect()
        .await
        .ok()?;
    let bytes = collected.to_bytes();
    if !bytes.is_empty() {
        shown.push_str("\n\n");
        match &command.kind {
            // A Secret's values must not reach the reviewer or the record.
            CommandKind::Kubernetes(_) => shown.push_str(&crate::kubernetes::reviewed_body(&bytes)),
            _ => shown.push_str(&String::from_utf8_lossy(&bytes)),
        }
        decision = gate.decide(command, Limits::Now, shown);
    }
    let body = Full::new(bytes).map_err(|never| match never {}).boxed();
    let resolved = gate
        .resolve(decision, session_id, |notice| {
            tracing::info!(%notice, "request held for review");
        })
        .await;
    Some((resolved, body))
}

/// An allowed upgrade the gateway cannot relay (SPDY, an unreadable
/// subprotocol, a stream under a mask plan): refused after the gate
/// allowed it, with the reason.
fn refused_upgrade(decision: &Decision, message: String) -> Decision {
    let mut refused = Decision::refuse(Refusal::Unavailable { message }, decision.details.clone());
    refused.version = decision.version;
    refused
}

/// The request as the upstream gets it: the client's headers filtered,
/// the credential (and impersonation) headers added, `Host` and
/// `Accept-Encoding: identity` set, `Accept` without protobuf when
/// `json_only`, the target below the connection's base path.
fn build_upstream_request(
    target: &crate::upstream::UpstreamTarget,
    routed: &Route<'_>,
    parts: http::request::Parts,
    body: UpstreamBody,
    added: Vec<(http::HeaderName, HeaderValue)>,
    json_only: bool,
) -> Option<Request<UpstreamBody>> {
    let mut headers = upstream_request_headers(&parts.headers, &target.header_rules);
    // The first is the credential: it replaces whatever the client sent
    // under that name. The rest (Impersonate-Group may repeat) are added;
    // the client's own were removed above.
    let mut added = added.into_iter();
    if let Some((name, value)) = added.next() {
        headers.insert(name, value);
    }
    for (name, value) in added {
        headers.append(name, value);
    }
    if json_only {
        crate::kubernetes::accept_json_only(&mut headers);
    }
    if let Ok(host) = HeaderValue::from_str(&target.authority) {
        headers.insert(header::HOST, host);
    }
    headers.insert(
        header::ACCEPT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    let mut request = Request::new(body);
    *request.method_mut() = parts.method;
    *request.uri_mut() = upstream_target(&target.base_path, routed).parse().ok()?;
    *request.headers_mut() = headers;
    Some(request)
}

/// Microseconds since `started`.
pub fn elapsed_us(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}
