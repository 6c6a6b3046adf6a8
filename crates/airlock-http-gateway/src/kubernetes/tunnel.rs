//! kubectl's port-forward tunnel (kubectl 1.30 and later, KEP 4006):
//! SPDY/3.1 inside a WebSocket whose subprotocol is
//! `SPDY/3.1+portforward.k8s.io`, relayed once the gate allowed the
//! upgrade. The upgrade names no port (kubectl asks for them inside the
//! tunnel), so every forwarded connection is decided on its own: its
//! `SYN_STREAM`s (`streamtype: error` and `data`, one `requestid`, the
//! pod's `port`) become a `portforward` command with that port, decided
//! by the gate and recorded (`command`, awaited) before the stream goes
//! up. A refused connection never reaches the upstream: the gateway
//! answers its streams itself (the error stream carries the refusal, so
//! kubectl prints it with the rule), and swallows what the client sends
//! on them.
//!
//! Both directions are read with `airlock_k8s::spdy` inside the frames of
//! [`super::websocket`]; every header block is inflated and compressed
//! again by the gateway (each side's zlib stream then only holds what the
//! gateway sent it, which is what lets it answer refused streams itself).
//! Data passes unchanged and is counted per connection (bytes up and down
//! in the session's result), not kept: it is the pod's own traffic and is
//! not masked, so a port-forward under a mask plan is refused before it
//! starts. A connection held by a review rule waits here like any request
//! (the tunnel's other traffic waits with it); one the tunnel's own
//! approved review covers (same rule) is not asked again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use airlock_core::admission::AdmittedSession;
use airlock_core::gate::{Decision, Gate, Limits, Refusal, Verdict};
use airlock_k8s::spdy::{
    self, Frame as SpdyFrame, FrameReader as SpdyReader, HeaderBlock, HeaderDeflater,
    HeaderInflater, FLAG_FIN,
};
use airlock_types::command::CommandKind;
use airlock_types::Command;

use super::stream::{stopped, Ended, MAX_FRAME_BYTES};
use super::websocket::{client_frame, server_frame, FrameReader, Opcode, Sender};
use crate::recording::{command_event, RecordContext};
use crate::HttpGateway;

/// The tunnel's WebSocket subprotocol.
pub const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
/// After one side closed, the other gets this long to finish.
const LINGER: Duration = Duration::from_secs(5);
/// Most connections listed one by one in the session's result.
const LISTED_CONNECTIONS: usize = 32;
/// Most streams one tunnel may open (each costs a decision, a record and
/// an entry here): past it every new stream is refused.
const MAX_STREAMS: usize = 4096;

/// What the tunnel needs of the request that opened it.
pub struct TunnelContext {
    /// The gate of the tunnel's session.
    pub gate: Gate,
    /// The upgrade's command (verb `portforward`, no port).
    pub command: Command,
    /// The upgrade's path (for the records).
    pub path: String,
    /// What a reviewer saw of the upgrade.
    pub shown: String,
    /// The rule whose review approved the upgrade, if one did.
    pub approved_rule: Option<String>,
}

impl std::fmt::Debug for TunnelContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelContext")
            .field("path", &self.path)
            .field("approved_rule", &self.approved_rule)
            .finish_non_exhaustive()
    }
}

/// One forwarded connection (a `requestid`).
#[derive(Debug, Default)]
struct Connection {
    port: u16,
    /// `None`: forwarded; the refusal's text otherwise.
    refused: Option<String>,
    up: u64,
    down: u64,
}

/// The relay's state over both directions.
struct Tunnel<'a> {
    gateway: &'a HttpGateway,
    session: &'a AdmittedSession,
    context: &'a TunnelContext,
    client_spdy: SpdyReader,
    upstream_spdy: SpdyReader,
    /// Client → gateway header blocks, and gateway → upstream.
    client_inflater: HeaderInflater,
    upstream_deflater: HeaderDeflater,
    /// Upstream → gateway, and gateway → client.
    upstream_inflater: HeaderInflater,
    client_deflater: HeaderDeflater,
    /// Stream id → the connection it belongs to.
    streams: BTreeMap<u32, String>,
    connections: BTreeMap<String, Connection>,
    from_client: u64,
    to_client: u64,
}

/// Relays the tunnel until it ends (both sides closed, one closed and the
/// other did not follow within [`LINGER`], the session's kill switch, or
/// `ends_at`); the outcome with a line per connection.
pub(super) async fn run<C, U>(
    gateway: &Arc<HttpGateway>,
    session: &AdmittedSession,
    client: C,
    upstream: U,
    context: &TunnelContext,
    ends_at: Option<i64>,
) -> Ended
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let mut tunnel = Tunnel {
        gateway,
        session,
        context,
        client_spdy: SpdyReader::new(MAX_FRAME_BYTES + 8),
        upstream_spdy: SpdyReader::new(MAX_FRAME_BYTES + 8),
        client_inflater: HeaderInflater::new(),
        upstream_deflater: HeaderDeflater::new(),
        upstream_inflater: HeaderInflater::new(),
        client_deflater: HeaderDeflater::new(),
        streams: BTreeMap::new(),
        connections: BTreeMap::new(),
        from_client: 0,
        to_client: 0,
    };
    let mut kill = session.registration.kill.clone();
    let outcome = tokio::select! {
        outcome = tunnel.relay(client, upstream) => outcome,
        reason = stopped(&mut kill, ends_at) => Err(format!("the stream was ended: {reason}")),
    };
    if let Err(error) = &outcome {
        tracing::warn!(%error, "port-forward tunnel ended");
    }
    tunnel.ended(outcome.err())
}

impl Tunnel<'_> {
    async fn relay<C, U>(&mut self, client: C, upstream: U) -> Result<(), String>
    where
        C: AsyncRead + AsyncWrite + Unpin,
        U: AsyncRead + AsyncWrite + Unpin,
    {
        let (mut client_read, mut client_write) = tokio::io::split(client);
        let (mut upstream_read, mut upstream_write) = tokio::io::split(upstream);
        let mut client_frames = FrameReader::new(Sender::Client, MAX_FRAME_BYTES);
        let mut upstream_frames = FrameReader::new(Sender::Server, MAX_FRAME_BYTES);
        let mut client_buffer = vec![0u8; 64 * 1024];
        let mut upstream_buffer = vec![0u8; 64 * 1024];
        let (mut client_done, mut upstream_done) = (false, false);
        let mut first_done: Option<Instant> = None;
        loop {
            if client_done && upstream_done {
                return Ok(());
            }
            let linger = async {
                match first_done {
                    Some(at) => tokio::time::sleep_until((at + LINGER).into()).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                read = client_read.read(&mut client_buffer), if !client_done => {
                    let read = read.unwrap_or(0);
                    if read == 0 {
                        client_done = true;
                        first_done.get_or_insert_with(Instant::now);
                        let _ = upstream_write.shutdown().await;
                        continue;
                    }
                    self.from_client += read as u64;
                    client_frames.push(client_buffer.get(..read).unwrap_or(&[]));
                    let closed = self
                        .read_client_frames(&mut client_frames, &mut client_write, &mut upstream_write)
                        .await?;
                    if closed {
                        client_done = true;
                        first_done.get_or_insert_with(Instant::now);
                    }
                }
                read = upstream_read.read(&mut upstream_buffer), if !upstream_done => {
                    let read = read.unwrap_or(0);
                    if read == 0 {
                        upstream_done = true;
                        first_done.get_or_insert_with(Instant::now);
                        let _ = client_write.shutdown().await;
                        continue;
                    }
                    upstream_frames.push(upstream_buffer.get(..read).unwrap_or(&[]));
                    let closed = self
                        .read_upstream_frames(&mut upstream_frames, &mut client_write)
                        .await?;
                    if closed {
                        upstream_done = true;
                        first_done.get_or_insert_with(Instant::now);
                    }
                }
                () = linger => return Ok(()),
            }
        }
    }

    /// The client's WebSocket frames: SPDY bytes read on, control frames
    /// forwarded. True once the client sent its close.
    async fn read_client_frames<W, X>(
        &mut self,
        frames: &mut FrameReader,
        client: &mut W,
        upstream: &mut X,
    ) -> Result<bool, String>
    where
        W: AsyncWrite + Unpin,
        X: AsyncWrite + Unpin,
    {
        let mut closed = false;
        while let Some(frame) = frames
            .next_frame()
            .map_err(|error| format!("the client's stream was ended: {error}"))?
        {
            match frame.opcode {
                Opcode::Binary | Opcode::Continuation => {
                    self.client_spdy.push(&frame.payload);
                    self.spdy_from_client(client, upstream).await?;
                }
                Opcode::Text => return Err("the client sent text in a SPDY tunnel".into()),
                Opcode::Close | Opcode::Ping | Opcode::Pong => {
                    closed |= frame.opcode == Opcode::Close;
                    write(upstream, &frame.raw).await?;
                }
            }
        }
        Ok(closed)
    }

    async fn read_upstream_frames<W: AsyncWrite + Unpin>(
        &mut self,
        frames: &mut FrameReader,
        client: &mut W,
    ) -> Result<bool, String> {
        let mut closed = false;
        while let Some(frame) = frames
            .next_frame()
            .map_err(|error| format!("the upstream's stream was ended: {error}"))?
        {
            match frame.opcode {
                Opcode::Binary | Opcode::Continuation => {
                    self.upstream_spdy.push(&frame.payload);
                    self.spdy_from_upstream(client).await?;
                }
                Opcode::Text => return Err("the upstream sent text in a SPDY tunnel".into()),
                Opcode::Close | Opcode::Ping | Opcode::Pong => {
                    closed |= frame.opcode == Opcode::Close;
                    self.to_client += frame.raw.len() as u64;
                    write(client, &frame.raw).await?;
                }
            }
        }
        Ok(closed)
    }

    /// SPDY frames from the client: new streams decided, refused streams
    /// answered here, the rest forwarded.
    async fn spdy_from_client<W, X>(
        &mut self,
        client: &mut W,
        upstream: &mut X,
    ) -> Result<(), String>
    where
        W: AsyncWrite + Unpin,
        X: AsyncWrite + Unpin,
    {
        while let Some(frame) = self.client_spdy.next_frame().map_err(spdy_error)? {
            let refused = frame
                .stream_id()
                .and_then(|id| self.streams.get(&id))
                .and_then(|key| self.connections.get(key))
                .is_some_and(|connection| connection.refused.is_some());
            let out = match frame {
                SpdyFrame::SynStream {
                    stream_id,
                    associated,
                    priority,
                    slot,
                    flags,
                    header_block,
                } => {
                    let headers = self
                        .client_inflater
                        .headers(&header_block)
                        .map_err(spdy_error)?;
                    if let Some(message) = self.open(stream_id, &headers).await {
                        self.refuse(client, stream_id, &headers, &message).await?;
                        continue;
                    }
                    SpdyFrame::SynStream {
                        stream_id,
                        associated,
                        priority,
                        slot,
                        flags,
                        header_block: self.upstream_deflater.compress(&headers),
                    }
                }
                // A refused stream's data, reset or headers stay here.
                _ if refused => continue,
                SpdyFrame::SynReply {
                    stream_id,
                    flags,
                    header_block,
                } => SpdyFrame::SynReply {
                    stream_id,
                    flags,
                    header_block: self.recompress_up(&header_block)?,
                },
                SpdyFrame::Headers {
                    stream_id,
                    flags,
                    header_block,
                } => SpdyFrame::Headers {
                    stream_id,
                    flags,
                    header_block: self.recompress_up(&header_block)?,
                },
                SpdyFrame::Data {
                    stream_id,
                    flags,
                    payload,
                } => {
                    if let Some(connection) = self.connection_of(stream_id) {
                        connection.up += payload.len() as u64;
                    }
                    SpdyFrame::Data {
                        stream_id,
                        flags,
                        payload,
                    }
                }
                other => other,
            };
            let bytes = out.encode();
            write(
                upstream,
                &client_frame(Opcode::Binary, true, &bytes, rand::random()),
            )
            .await?;
        }
        Ok(())
    }

    fn recompress_up(&mut self, block: &[u8]) -> Result<Vec<u8>, String> {
        let headers = self.client_inflater.headers(block).map_err(spdy_error)?;
        Ok(self.upstream_deflater.compress(&headers))
    }

    /// SPDY frames from the upstream: header blocks re-compressed for the
    /// client, data counted.
    async fn spdy_from_upstream<W: AsyncWrite + Unpin>(
        &mut self,
        client: &mut W,
    ) -> Result<(), String> {
        while let Some(frame) = self.upstream_spdy.next_frame().map_err(spdy_error)? {
            let out = match frame {
                SpdyFrame::SynStream {
                    stream_id,
                    associated,
                    priority,
                    slot,
                    flags,
                    header_block,
                } => SpdyFrame::SynStream {
                    stream_id,
                    associated,
                    priority,
                    slot,
                    flags,
                    header_block: self.recompress_down(&header_block)?,
                },
                SpdyFrame::SynReply {
                    stream_id,
                    flags,
                    header_block,
                } => SpdyFrame::SynReply {
                    stream_id,
                    flags,
                    header_block: self.recompress_down(&header_block)?,
                },
                SpdyFrame::Headers {
                    stream_id,
                    flags,
                    header_block,
                } => SpdyFrame::Headers {
                    stream_id,
                    flags,
                    header_block: self.recompress_down(&header_block)?,
                },
                SpdyFrame::Data {
                    stream_id,
                    flags,
                    payload,
                } => {
                    if let Some(connection) = self.connection_of(stream_id) {
                        connection.down += payload.len() as u64;
                    }
                    SpdyFrame::Data {
                        stream_id,
                        flags,
                        payload,
                    }
                }
                other => other,
            };
            self.send_client(client, &out).await?;
        }
        Ok(())
    }

    fn recompress_down(&mut self, block: &[u8]) -> Result<Vec<u8>, String> {
        let headers = self.upstream_inflater.headers(block).map_err(spdy_error)?;
        Ok(self.client_deflater.compress(&headers))
    }

    async fn send_client<W: AsyncWrite + Unpin>(
        &mut self,
        client: &mut W,
        frame: &SpdyFrame,
    ) -> Result<(), String> {
        let bytes = server_frame(Opcode::Binary, true, &frame.encode());
        self.to_client += bytes.len() as u64;
        write(client, &bytes).await
    }

    /// The data stream's connection, for counting.
    fn connection_of(&mut self, stream_id: u32) -> Option<&mut Connection> {
        let key = self.streams.get(&stream_id)?;
        self.connections.get_mut(key)
    }

    /// A new stream: its connection decided when it is the connection's
    /// first (recorded before anything goes up). The refusal's text when
    /// the stream must not go up.
    async fn open(&mut self, stream_id: u32, headers: &HeaderBlock) -> Option<String> {
        let port = headers
            .get("port")
            .and_then(|port| port.parse::<u16>().ok())
            .filter(|port| *port > 0);
        let key = match headers.get("requestid") {
            Some(id) => format!("request {id}"),
            None => format!("stream {stream_id}"),
        };
        if self.streams.len() >= MAX_STREAMS {
            return Some(format!(
                "airlock: a tunnel opens at most {MAX_STREAMS} streams"
            ));
        }
        self.streams.insert(stream_id, key.clone());
        if let Some(known) = self.connections.get(&key) {
            // Both streams of one connection name one port.
            return match (&known.refused, port == Some(known.port)) {
                (None, true) => None,
                (Some(message), _) => Some(message.clone()),
                (None, false) => {
                    Some("airlock: the streams of one connection name different ports".into())
                }
            };
        }
        let Some(port) = port else {
            let message = "airlock: a port-forward stream names no valid port".to_string();
            self.connections.insert(
                key,
                Connection {
                    refused: Some(message.clone()),
                    ..Connection::default()
                },
            );
            return Some(message);
        };
        let refused = self.decide(port).await;
        self.connections.insert(
            key,
            Connection {
                port,
                refused: refused.clone(),
                ..Connection::default()
            },
        );
        refused
    }

    /// Decides and records one connection to `port`.
    async fn decide(&self, port: u16) -> Option<String> {
        let context = self.context;
        let mut command = context.command.clone();
        if let CommandKind::Kubernetes(request) = &mut command.kind {
            request.ports = vec![port];
        }
        command.text = format!("{} port {port}", command.text);
        let shown = format!("{} port {port}", context.shown);
        let gate = &context.gate;
        let mut decision = gate.decide(&command, Limits::Now, &shown);
        if decision.review.is_some() {
            let rule = decision.details.rule();
            if rule.is_some() && rule == context.approved_rule.as_deref() {
                // The tunnel's own approval covers its connections.
                decision.review = None;
                decision.verdict = Verdict::Forward;
                decision.details.set_verdict("approved");
            } else {
                decision = gate
                    .resolve(decision, self.session.session_id(), |notice| {
                        tracing::info!(%notice, port, "port-forward connection held for review");
                    })
                    .await;
            }
        }
        if let Err(refused) = self.record(&command, &shown, &decision).await {
            decision = refused;
        }
        match &decision.verdict {
            Verdict::Forward => None,
            Verdict::Refuse(refusal) => Some(refusal_text(refusal)),
        }
    }

    /// Audit before forward: the connection's `command` event, awaited.
    async fn record(
        &self,
        command: &Command,
        shown: &str,
        decision: &Decision,
    ) -> Result<(), Decision> {
        let state = &self.gateway.state;
        if !state.config.recording.enabled {
            return Ok(());
        }
        let context = RecordContext {
            session_id: self.session.session_id(),
            identity: self.session.identity(),
            connection: &self.session.connection.name,
        };
        let event = command_event(
            &context,
            command,
            &self.context.path,
            shown,
            decision,
            state.config.recording.max_statement_bytes,
        );
        state.recorder.record(vec![event]).await.map_err(|error| {
            tracing::error!(%error, "refusing a port-forward connection: audit write failed");
            let mut refused = Decision::refuse(
                Refusal::RecordingUnavailable {
                    message: "airlock: the audit log cannot be written; the connection is refused"
                        .into(),
                },
                decision.details.clone(),
            );
            refused.version = decision.version;
            refused
        })
    }

    /// Answers a refused stream: accepted and at once closed by the
    /// "server", the error stream carrying `message`.
    async fn refuse<W: AsyncWrite + Unpin>(
        &mut self,
        client: &mut W,
        stream_id: u32,
        headers: &HeaderBlock,
        message: &str,
    ) -> Result<(), String> {
        let error_stream = headers.get("streamtype") == Some("error");
        let reply = SpdyFrame::SynReply {
            stream_id,
            flags: if error_stream { 0 } else { FLAG_FIN },
            header_block: self.client_deflater.compress(&HeaderBlock::default()),
        };
        self.send_client(client, &reply).await?;
        if error_stream {
            let data = SpdyFrame::Data {
                stream_id,
                flags: FLAG_FIN,
                payload: message.as_bytes().to_vec(),
            };
            self.send_client(client, &data).await?;
        }
        Ok(())
    }

    /// The outcome: bytes, and a line per connection.
    fn ended(&self, error: Option<String>) -> Ended {
        let mut tags = Vec::new();
        for (key, connection) in self.connections.iter().take(LISTED_CONNECTIONS) {
            tags.push(match &connection.refused {
                None => format!(
                    "port {} ({key}): {} B up, {} B down",
                    connection.port, connection.up, connection.down
                ),
                Some(_) => format!("port {} ({key}): refused", connection.port),
            });
        }
        if self.connections.len() > LISTED_CONNECTIONS {
            tags.push(format!(
                "{} more connections",
                self.connections.len() - LISTED_CONNECTIONS
            ));
        }
        Ended {
            from_client: self.from_client,
            to_client: self.to_client,
            exit_code: None,
            error,
            tags,
        }
    }
}

/// What kubectl prints of a refused connection: the gate's message, and
/// how to approve a pending review.
fn refusal_text(refusal: &Refusal) -> String {
    match refusal {
        Refusal::Review {
            review_id: Some(id),
            message,
        } => format!("{message} (review {id}; approve with: airlock review approve {id})"),
        other => other.message().to_string(),
    }
}

fn spdy_error(error: spdy::SpdyError) -> String {
    format!("the port-forward tunnel was ended: {error}")
}

async fn write<W: AsyncWrite + Unpin>(to: &mut W, bytes: &[u8]) -> Result<(), String> {
    to.write_all(bytes)
        .await
        .map_err(|_| "the peer went away".to_string())?;
    to.flush()
        .await
        .map_err(|_| "the peer went away".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_as_kubectl_prints_them() {
        let denied = Refusal::Denied {
            message: "blocked by rule \"no-db\" (policy v2)".into(),
        };
        assert_eq!(
            refusal_text(&denied),
            "blocked by rule \"no-db\" (policy v2)"
        );
        let held = Refusal::Review {
            review_id: Some("r-1".into()),
            message: "review required".into(),
        };
        assert!(refusal_text(&held).contains("airlock review approve r-1"));
    }
}
