//! Kubernetes streams (`exec`, `attach`, `portforward`) relayed as
//! WebSocket upgrades, once the gate allowed them: which upgrades can be
//! relayed ([`plan`]), the upgrade request's headers towards the upstream
//! ([`upstream_headers`]), and the relay itself ([`relay`]): the client's
//! and the upstream's connections after the `101`, every frame read by the
//! sans-IO [`super::websocket`] reader both ways, a terminal's channels
//! recorded as a transcript ([`super::transcript`], `command.stream`
//! events), the outcome (exit code, bytes) recorded with the session's end.
//!
//! kubectl's port-forward tunnel (SPDY inside the WebSocket,
//! `SPDY/3.1+portforward.k8s.io`) is relayed by [`super::tunnel`], which
//! decides each forwarded connection by its port.
//!
//! What is refused, after the gate allowed it, with the reason: a bare
//! SPDY/3.1 upgrade (not read here; `kubectl` ≥ 1.30 tries WebSocket
//! first), subprotocols other than the binary channel protocols and the
//! tunnel (the base64 variants), and any stream under a mask plan (a live
//! terminal cannot be masked reliably, so it is not passed raw). Terminal output
//! (stdout, stderr, error) has every echo of the injected credential
//! replaced, across frames; port-forward bytes pass unchanged (the pod's
//! own traffic; the credential goes to the API server only) and are
//! counted, not kept.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use airlock_core::admission::AdmittedSession;
use airlock_mask::MaskStats;
use airlock_types::command::CommandKind;
use airlock_types::Command;

use super::transcript::{channel_name, Transcript};
use super::websocket::{server_frame, FrameError, FrameReader, Opcode, Sender};
use crate::recording::{HttpResult, ResultRecord};
use crate::request::elapsed_us;
use crate::scrub::{ScrubStream, Scrubber};
use crate::{ClientBody, HttpGateway};

/// The channel protocols a terminal may use (binary frames, channel byte
/// first), in the gateway's order of preference.
const TERMINAL_PROTOCOLS: [&str; 5] = [
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];
/// The port-forward protocols read here (the tunnel by [`super::tunnel`]).
const PORT_FORWARD_PROTOCOLS: [&str; 3] = [
    "v4.channel.k8s.io",
    "portforward.k8s.io",
    super::tunnel::TUNNEL_PROTOCOL,
];

/// Largest frame payload relayed either way.
pub const MAX_FRAME_BYTES: usize = 1 << 20;
/// Most transcript bytes kept per session.
pub const MAX_TRANSCRIPT_BYTES: usize = 1 << 20;
/// A transcript is recorded at least this often while it has news.
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// … or once this much is waiting.
const FLUSH_BYTES: usize = 16 * 1024;
/// After one direction ended, the other gets this long to finish.
const LINGER: Duration = Duration::from_secs(5);

/// What a stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// `exec` or `attach`: a terminal's channels, recorded.
    Terminal,
    /// `portforward`: bytes to a pod's port, counted (or, when the
    /// upstream chooses kubectl's SPDY tunnel, [`super::tunnel`]).
    PortForward,
}

/// An upgrade the gateway will relay.
#[derive(Debug, Clone)]
pub struct StreamPlan {
    pub kind: StreamKind,
    /// The client's offered subprotocols that the gateway reads, in the
    /// client's order: the only ones offered upstream.
    pub protocols: Vec<String>,
    /// When the stream must end (unix seconds): its token's expiry, unless
    /// `auth.sessions_outlive_tokens`. The access grant's is added at relay.
    pub ends_at: Option<i64>,
    /// For a port-forward: what the tunnel needs to decide its
    /// connections, should the upstream choose the tunnel.
    pub tunnel: Option<Arc<super::tunnel::TunnelContext>>,
}

/// Whether an allowed upgrade can be relayed, and how; the client's
/// message when it cannot.
pub fn plan(headers: &HeaderMap, command: &Command, masked: bool) -> Result<StreamPlan, String> {
    let CommandKind::Kubernetes(request) = &command.kind else {
        return Err("airlock: only Kubernetes streams are relayed".into());
    };
    let kind = match request.subresource.as_deref() {
        Some("exec" | "attach") if request.resource == "pods" => StreamKind::Terminal,
        Some("portforward") if request.resource == "pods" => StreamKind::PortForward,
        _ => return Err("airlock: only exec, attach and port-forward streams are relayed".into()),
    };
    let upgrades: Vec<&str> = headers
        .get_all(header::UPGRADE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    match upgrades.as_slice() {
        [one] if one.trim().eq_ignore_ascii_case("websocket") => {}
        [one] if one.to_ascii_lowercase().contains("spdy") => return Err(
            "airlock: SPDY streams cannot be recorded; exec, attach and port-forward are relayed over WebSocket (kubectl 1.30 or later)".into(),
        ),
        _ => return Err("airlock: only WebSocket upgrades are relayed".into()),
    }
    if masked {
        return Err(
            "airlock: a mask applies here, and a live stream cannot be masked: refused".into(),
        );
    }
    let readable: &[&str] = match kind {
        StreamKind::Terminal => &TERMINAL_PROTOCOLS,
        StreamKind::PortForward => &PORT_FORWARD_PROTOCOLS,
    };
    let protocols: Vec<String> = offered_protocols(headers)
        .into_iter()
        .filter(|offer| readable.contains(&offer.as_str()))
        .collect();
    if protocols.is_empty() {
        return Err(format!(
            "airlock: none of the offered stream protocols can be recorded (airlock reads {})",
            readable.join(", ")
        ));
    }
    Ok(StreamPlan {
        kind,
        protocols,
        ends_at: None,
        tunnel: None,
    })
}

fn offered_protocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|token| token.trim().to_string())
        .filter(|token| !token.is_empty())
        .collect()
}

/// The upgrade request's headers towards the upstream: `Connection` and
/// `Upgrade` (removed as hop-by-hop) restored, only the readable
/// subprotocols offered, no extension (compressed frames cannot be read).
pub fn upstream_headers(headers: &mut HeaderMap, plan: &StreamPlan) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.remove(header::SEC_WEBSOCKET_EXTENSIONS);
    headers.remove(header::SEC_WEBSOCKET_PROTOCOL);
    if let Ok(value) = HeaderValue::from_str(&plan.protocols.join(", ")) {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, value);
    }
}

/// Relays an upstream's `101`: the client gets the upgrade answer, and a
/// task relays the stream, records its transcript and outcome and ends
/// the session. A `101` with a subprotocol that was not offered, or an
/// extension, is refused.
pub async fn relay(
    gateway: &Arc<HttpGateway>,
    response: Response<Incoming>,
    client: Option<OnUpgrade>,
    plan: StreamPlan,
    scrubber: Scrubber,
    session: AdmittedSession,
    started: Instant,
) -> Response<ClientBody> {
    let chosen = response
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|chosen| plan.protocols.iter().any(|offer| offer == chosen))
        .map(str::to_string);
    let accept = response
        .headers()
        .get(header::SEC_WEBSOCKET_ACCEPT)
        .cloned();
    let extended = response
        .headers()
        .contains_key(header::SEC_WEBSOCKET_EXTENSIONS);
    let (Some(chosen), Some(accept), false, Some(client)) = (chosen, accept, extended, client)
    else {
        return refuse(gateway, session, started).await;
    };
    let mut out = Response::new(Empty::new().map_err(|never| match never {}).boxed());
    *out.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = out.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    if let Ok(value) = HeaderValue::from_str(&chosen) {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, value);
    }
    let gateway = Arc::clone(gateway);
    tokio::spawn(async move {
        let upstream = hyper::upgrade::on(response).await;
        let client = client.await;
        let (upstream, client) = match (upstream, client) {
            (Ok(upstream), Ok(client)) => (upstream, client),
            _ => {
                let result = ResultRecord::failed(
                    101,
                    "the upgrade did not complete".into(),
                    elapsed_us(started),
                );
                crate::relay::finish(&gateway, session, result).await;
                return;
            }
        };
        let ends_at = [plan.ends_at, session.grant_expires_at]
            .into_iter()
            .flatten()
            .min();
        if chosen == super::tunnel::TUNNEL_PROTOCOL {
            // The tunnel is only ever relayed by `tunnel`, which reads it.
            let Some(context) = plan.tunnel.clone() else {
                let result = ResultRecord::failed(
                    101,
                    "a SPDY tunnel without its decision context".into(),
                    elapsed_us(started),
                );
                crate::relay::finish(&gateway, session, result).await;
                return;
            };
            let ended = super::tunnel::run(
                &gateway,
                &session,
                TokioIo::new(client),
                TokioIo::new(upstream),
                &context,
                ends_at,
            )
            .await;
            crate::relay::finish(&gateway, session, ended.result(started)).await;
            return;
        }
        let ended = run(
            &gateway,
            &session,
            TokioIo::new(client),
            TokioIo::new(upstream),
            (plan.kind, ends_at),
            &scrubber,
        )
        .await;
        crate::relay::finish(&gateway, session, ended.result(started)).await;
    });
    out
}

/// The upstream's `101` cannot be relayed: refused, recorded.
async fn refuse(
    gateway: &HttpGateway,
    session: AdmittedSession,
    started: Instant,
) -> Response<ClientBody> {
    let reason =
        "the upstream's stream answer names no subprotocol airlock offered, or an extension";
    tracing::warn!(reason, "stream refused");
    let response = crate::errors::unmaskable(reason);
    let result = ResultRecord::failed(
        response.status().as_u16(),
        reason.to_string(),
        elapsed_us(started),
    );
    crate::relay::finish(gateway, session, result).await;
    response
}

/// How a relayed stream ended.
#[derive(Debug, Default)]
pub(super) struct Ended {
    pub from_client: u64,
    pub to_client: u64,
    pub exit_code: Option<i64>,
    pub error: Option<String>,
    /// Lines for the result (a tunnel's connections).
    pub tags: Vec<String>,
}

impl Ended {
    fn result(&self, started: Instant) -> ResultRecord {
        let mut result = ResultRecord::answered(101, elapsed_us(started)).with_body(
            self.to_client,
            &[],
            0,
            &MaskStats::new(),
        );
        if let Some(code) = self.exit_code {
            result.tags.push(format!("exit {code}"));
        }
        result.tags.extend(self.tags.iter().cloned());
        if let Some(error) = &self.error {
            result.status = "error";
            result.error_message = Some(error.clone());
        }
        result
    }
}

/// One piece of a terminal's transcript, on its way to the collector.
type Piece = (u64, &'static str, Vec<u8>);

/// Relays both directions until the stream ends (one side closes, then
/// the other within [`LINGER`]; or the session's kill switch fires, or it
/// reaches `ends_at`), gathering the transcript.
async fn run<C, U>(
    gateway: &Arc<HttpGateway>,
    session: &AdmittedSession,
    client: C,
    upstream: U,
    (kind, ends_at): (StreamKind, Option<i64>),
    scrubber: &Scrubber,
) -> Ended
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let started = Instant::now();
    let (client_read, client_write) = tokio::io::split(client);
    let (upstream_read, upstream_write) = tokio::io::split(upstream);
    let (pieces, received) = mpsc::channel::<Piece>(64);
    let recording = gateway.state.config.recording.enabled && kind == StreamKind::Terminal;
    let collector = collect(gateway, session, received, recording);
    let terminal = kind == StreamKind::Terminal;
    let up = upward(
        client_read,
        upstream_write,
        terminal,
        pieces.clone(),
        started,
    );
    let down = downward(
        upstream_read,
        client_write,
        terminal,
        scrubber,
        pieces,
        started,
    );
    let relayed = async {
        tokio::pin!(up, down);
        let mut ended = Ended::default();
        tokio::select! {
            sent = &mut up => {
                ended.from_client = sent.bytes;
                ended.error = sent.error;
                if let Ok(got) = tokio::time::timeout(LINGER, &mut down).await {
                    ended.to_client = got.bytes;
                    ended.error = ended.error.or(got.error);
                }
            }
            got = &mut down => {
                ended.to_client = got.bytes;
                ended.error = got.error;
                if let Ok(sent) = tokio::time::timeout(LINGER, &mut up).await {
                    ended.from_client = sent.bytes;
                    ended.error = ended.error.or(sent.error);
                }
            }
        }
        ended
    };
    let mut kill = session.registration.kill.clone();
    let stopped = async {
        tokio::select! {
            ended = relayed => ended,
            reason = stopped(&mut kill, ends_at) => Ended {
                error: Some(format!("the stream was ended: {reason}")),
                ..Ended::default()
            },
        }
    };
    let (mut ended, exit_code) = tokio::join!(stopped, collector);
    ended.exit_code = exit_code;
    ended
}

/// Resolves with the reason when the kill switch fires or `ends_at`
/// (unix seconds) passes.
pub(super) async fn stopped(
    kill: &mut tokio::sync::watch::Receiver<Option<String>>,
    ends_at: Option<i64>,
) -> String {
    let expiry = async {
        match ends_at {
            Some(at) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |since| since.as_secs());
                let left = u64::try_from(at).unwrap_or(0).saturating_sub(now);
                tokio::time::sleep(Duration::from_secs(left)).await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    let killed = async {
        loop {
            if let Some(reason) = kill.borrow_and_update().clone() {
                return reason;
            }
            if kill.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = expiry => "the token or the access grant expired".to_string(),
        reason = killed => reason,
    }
}

/// What one direction did.
struct Direction {
    bytes: u64,
    error: Option<String>,
}

fn ms_since(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Client → upstream: frames forwarded as they came (masked, as client
/// frames must be); a terminal's stdin, resize and close recorded.
async fn upward<R, W>(
    mut from: R,
    mut to: W,
    terminal: bool,
    pieces: mpsc::Sender<Piece>,
    started: Instant,
) -> Direction
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = FrameReader::new(Sender::Client, MAX_FRAME_BYTES);
    let mut buffer = vec![0u8; 64 * 1024];
    let mut channel = None;
    let mut bytes = 0u64;
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return Direction { bytes, error: None },
            Ok(read) => read,
        };
        bytes += read as u64;
        reader.push(buffer.get(..read).unwrap_or(&[]));
        loop {
            let frame = match reader.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(error) => return broken(&mut to, bytes, "client", &error).await,
            };
            if terminal {
                if let Some((name, data)) = data_of(&frame, &mut channel) {
                    let _ = pieces.send((ms_since(started), name, data.to_vec())).await;
                }
            }
            if to.write_all(&frame.raw).await.is_err() {
                return Direction { bytes, error: None };
            }
            if frame.opcode == Opcode::Close {
                let _ = to.flush().await;
            }
        }
        let _ = to.flush().await;
    }
}

/// The channel name and data of a data frame (`channel` carries a
/// fragmented message's channel to its continuations).
fn data_of<'f>(
    frame: &'f super::websocket::Frame,
    channel: &mut Option<u8>,
) -> Option<(&'static str, &'f [u8])> {
    let data = match frame.opcode {
        Opcode::Binary | Opcode::Text => {
            *channel = frame.payload.first().copied();
            frame.payload.get(1..).unwrap_or(&[])
        }
        Opcode::Continuation => &frame.payload,
        _ => return None,
    };
    let name = channel.and_then(channel_name);
    if frame.fin {
        *channel = None;
    }
    Some((name?, data))
}

/// A frame that cannot be read ends the stream: the reason recorded.
async fn broken<W: AsyncWrite + Unpin>(
    to: &mut W,
    bytes: u64,
    side: &str,
    error: &FrameError,
) -> Direction {
    let _ = to.shutdown().await;
    Direction {
        bytes,
        error: Some(format!("the {side}'s stream was ended: {error}")),
    }
}

/// Upstream → client: a terminal's stdout, stderr and error scrubbed of
/// the credential (re-framed), recorded; everything else as it came.
async fn downward<R, W>(
    mut from: R,
    mut to: W,
    terminal: bool,
    scrubber: &Scrubber,
    pieces: mpsc::Sender<Piece>,
    started: Instant,
) -> Direction
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = FrameReader::new(Sender::Server, MAX_FRAME_BYTES);
    let mut buffer = vec![0u8; 64 * 1024];
    let mut scrubs: [ScrubStream<'_>; 3] =
        [scrubber.stream(), scrubber.stream(), scrubber.stream()];
    let mut channel = None;
    let mut bytes = 0u64;
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        reader.push(buffer.get(..read).unwrap_or(&[]));
        loop {
            let frame = match reader.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(error) => return broken(&mut to, bytes, "upstream", &error).await,
            };
            let first = matches!(frame.opcode, Opcode::Binary | Opcode::Text);
            let out = match (terminal, frame.opcode == Opcode::Close) {
                (true, true) => {
                    let mut out = tails(&mut scrubs);
                    out.extend_from_slice(&frame.raw);
                    out
                }
                (true, false) => match data_of(&frame, &mut channel) {
                    Some((name, data)) => {
                        let scrubbed = scrub(&mut scrubs, name, data);
                        let _ = pieces
                            .send((ms_since(started), name, scrubbed.clone()))
                            .await;
                        reframe(&frame, first, &scrubbed)
                    }
                    None => frame.raw,
                },
                (false, _) => frame.raw,
            };
            bytes += out.len() as u64;
            if to.write_all(&out).await.is_err() {
                return Direction { bytes, error: None };
            }
        }
        let _ = to.flush().await;
    }
    let tail = if terminal {
        tails(&mut scrubs)
    } else {
        Vec::new()
    };
    let _ = to.write_all(&tail).await;
    let _ = to.shutdown().await;
    Direction { bytes, error: None }
}

/// Output channels (stdout, stderr, error) scrubbed, across frames.
fn scrub(scrubs: &mut [ScrubStream<'_>; 3], name: &str, data: &[u8]) -> Vec<u8> {
    let index = match name {
        "stdout" => 0,
        "stderr" => 1,
        "error" => 2,
        _ => return data.to_vec(),
    };
    scrubs
        .get_mut(index)
        .map_or_else(|| data.to_vec(), |stream| stream.push(data))
}

/// The bytes each output channel's scrubber still held, as frames.
fn tails(scrubs: &mut [ScrubStream<'_>; 3]) -> Vec<u8> {
    let mut out = Vec::new();
    for (channel, stream) in (1u8..).zip(scrubs.iter_mut()) {
        let held = stream.finish();
        if !held.is_empty() {
            let mut payload = vec![channel];
            payload.extend_from_slice(&held);
            out.extend(server_frame(Opcode::Binary, true, &payload));
        }
    }
    out
}

/// A data frame with its data replaced (the channel byte kept on a
/// message's first frame).
fn reframe(frame: &super::websocket::Frame, first: bool, data: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(data.len() + 1);
    if first {
        payload.extend(frame.payload.first().copied());
    }
    payload.extend_from_slice(data);
    server_frame(frame.opcode, frame.fin, &payload)
}

/// Gathers the transcript and records it as `command.stream` events (when
/// `recording`); the exit code at the end.
async fn collect(
    gateway: &HttpGateway,
    session: &AdmittedSession,
    mut received: mpsc::Receiver<Piece>,
    recording: bool,
) -> Option<i64> {
    let mut transcript = Transcript::new(&session.connection.name, MAX_TRANSCRIPT_BYTES);
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    let flush = |transcript: &mut Transcript| {
        let payload = transcript.take();
        async move {
            if let (Some(payload), true) = (payload, recording) {
                let event = airlock_core::events::record(
                    Some(session.session_id()),
                    Some(session.identity()),
                    &payload,
                );
                gateway.state.recorder.record_later(vec![event]).await;
            }
        }
    };
    loop {
        tokio::select! {
            piece = received.recv() => match piece {
                Some((at_ms, channel, data)) => {
                    transcript.add(at_ms, channel, &data);
                    if transcript.pending_bytes() >= FLUSH_BYTES {
                        flush(&mut transcript).await;
                    }
                }
                None => break,
            },
            _ = tick.tick() => flush(&mut transcript).await,
        }
    }
    flush(&mut transcript).await;
    transcript.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderName;

    fn command(path: &str) -> Command {
        let routed = crate::route::route(path, Some("command=id")).unwrap();
        crate::kubernetes::command("GET", &routed, &HeaderMap::new()).unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn only_readable_websocket_streams_are_relayed() {
        let exec = command("/k8s/api/v1/namespaces/default/pods/web-1/exec");
        let websocket = headers(&[
            ("upgrade", "websocket"),
            (
                "sec-websocket-protocol",
                "v5.channel.k8s.io, v4.base64.channel.k8s.io, v4.channel.k8s.io",
            ),
            ("sec-websocket-extensions", "permessage-deflate"),
        ]);
        let planned = plan(&websocket, &exec, false).unwrap();
        assert_eq!(planned.kind, StreamKind::Terminal);
        assert_eq!(
            planned.protocols,
            ["v5.channel.k8s.io", "v4.channel.k8s.io"]
        );
        let mut upstream = websocket.clone();
        upstream_headers(&mut upstream, &planned);
        assert_eq!(
            upstream["sec-websocket-protocol"],
            "v5.channel.k8s.io, v4.channel.k8s.io"
        );
        assert!(!upstream.contains_key("sec-websocket-extensions"));
        assert_eq!(upstream["upgrade"], "websocket");
        let spdy = headers(&[("upgrade", "SPDY/3.1")]);
        assert!(plan(&spdy, &exec, false).unwrap_err().contains("SPDY"));
        assert!(plan(&websocket, &exec, true).unwrap_err().contains("mask"));
        let base64_only = headers(&[
            ("upgrade", "websocket"),
            ("sec-websocket-protocol", "base64.channel.k8s.io"),
        ]);
        assert!(plan(&base64_only, &exec, false).is_err());
        let forward = command("/k8s/api/v1/namespaces/default/pods/web-1/portforward");
        let tunnel = headers(&[
            ("upgrade", "websocket"),
            ("sec-websocket-protocol", "SPDY/3.1+portforward.k8s.io"),
        ]);
        // kubectl's tunnel: relayed by `tunnel`, connection by connection.
        assert_eq!(
            plan(&tunnel, &forward, false).unwrap().protocols,
            [super::super::tunnel::TUNNEL_PROTOCOL]
        );
        assert!(plan(&tunnel, &forward, true).unwrap_err().contains("mask"));
        let channels = headers(&[
            ("upgrade", "websocket"),
            ("sec-websocket-protocol", "v4.channel.k8s.io"),
        ]);
        assert_eq!(
            plan(&channels, &forward, false).unwrap().kind,
            StreamKind::PortForward
        );
    }

    #[test]
    fn output_is_scrubbed_across_frames_and_reframed() {
        let scrubber = Scrubber::new(&[b"sa-token-123".to_vec()]);
        let mut scrubs = [scrubber.stream(), scrubber.stream(), scrubber.stream()];
        let mut out = scrub(&mut scrubs, "stdout", b"token: sa-tok");
        out.extend(scrub(&mut scrubs, "stdout", b"en-123 done"));
        out.extend(tails(&mut scrubs));
        let text = String::from_utf8_lossy(&out);
        assert!(!text.contains("sa-token-123"), "{text}");
        assert!(text.contains("[airlock:credential]"), "{text}");
        let mut reader = FrameReader::new(Sender::Server, 1024);
        reader.push(&server_frame(Opcode::Binary, true, b"\x01hello"));
        let frame = reader.next_frame().unwrap().unwrap();
        let mut channel = None;
        let (name, data) = data_of(&frame, &mut channel).unwrap();
        assert_eq!((name, data), ("stdout", &b"hello"[..]));
        let again = reframe(&frame, true, b"bye");
        reader.push(&again);
        assert_eq!(reader.next_frame().unwrap().unwrap().payload, b"\x01bye");
    }
}
