//! The response on its way to the client: headers scrubbed of the
//! credential and of hop-by-hop fields, the body streamed (no mask plan),
//! streamed one masked event at a time (a Kubernetes watch under a mask
//! plan) or read whole and masked (a mask plan), and the outcome recorded
//! with the end of the request's session once the body is done.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::sync::mpsc;

use airlock_core::admission::{AdmittedSession, SessionCounts};
use airlock_core::gate::Decision;
use airlock_mask::MaskStats;

use crate::body::{encoding, mask_body, media_kind, pump, read_limited, ChannelBody, MediaKind};
use crate::errors;
use crate::headers::client_response_headers;
use crate::kubernetes::watch::{pump_watch, WatchMask};
use crate::recording::{HttpResult, RecordContext, ResultRecord};
use crate::request::elapsed_us;
use crate::scrub::Scrubber;
use crate::{ClientBody, HttpGateway};

/// Response headers with every echo of the credential replaced; a header
/// whose scrubbed value is not a valid value is dropped.
fn scrub_headers(headers: HeaderMap, scrubber: &Scrubber) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers.iter() {
        if scrubber.finds(value.as_bytes()) {
            if let Ok(clean) = HeaderValue::from_bytes(&scrubber.scrub_all(value.as_bytes())) {
                out.append(name.clone(), clean);
            }
        } else {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// Relays the upstream's response; `line_stream` for a Kubernetes watch
/// or followed log (masked one line at a time under a mask plan).
pub async fn relay_response(
    gateway: &Arc<HttpGateway>,
    response: Response<Incoming>,
    decision: Decision,
    scrubber: Scrubber,
    session: AdmittedSession,
    started: Instant,
    line_stream: bool,
) -> Response<ClientBody> {
    let (parts, incoming) = response.into_parts();
    let status = parts.status;
    let encoded = match encoding(&parts.headers) {
        Ok(encoded) => encoded,
        Err(reason) => return refuse(gateway, session, started, &reason).await,
    };
    // The body is always rewritten (scrubbed, decoded, masked): its length
    // and encoding headers no longer hold.
    let headers = scrub_headers(client_response_headers(&parts.headers, true), &scrubber);
    let sample_limit = gateway.state.config.recording.sample_bytes;
    let kind = media_kind(&parts.headers);
    let lines = line_stream && matches!(kind, MediaKind::Json | MediaKind::Text);
    if let (Some(plan), true) = (decision.mask.clone(), lines) {
        let (sender, receiver) = mpsc::channel(8);
        let task_gateway = Arc::clone(gateway);
        let fields = decision.mask_fields.clone();
        tokio::spawn(async move {
            let mask = WatchMask {
                plan: &plan,
                fields: &fields,
                max_event_bytes: task_gateway.max_masked_body_bytes,
                kind,
            };
            let (relayed, stats) =
                pump_watch(incoming, encoded, &scrubber, sender, sample_limit, mask).await;
            count_masked(&task_gateway, &session, &stats);
            let mut result = ResultRecord::answered(status.as_u16(), elapsed_us(started))
                .with_body(relayed.bytes, &relayed.sample, sample_limit, &stats);
            result.rows = relayed.rows;
            if let Some(error) = relayed.error {
                result.status = "error";
                result.error_message = Some(error);
            }
            finish(&task_gateway, session, result).await;
        });
        let mut out = Response::new(ChannelBody(receiver).boxed());
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        return out;
    }
    if let Some(plan) = decision.mask.clone() {
        let whole = match read_limited(incoming, encoded, gateway.max_masked_body_bytes).await {
            Ok(whole) => whole,
            Err(reason) => return refuse(gateway, session, started, &reason).await,
        };
        let mut stats = MaskStats::new();
        let kubernetes = session.connection.protocol == airlock_types::Protocol::Kubernetes;
        let masked = match mask_body(
            kind,
            &whole,
            &plan,
            &decision.mask_fields,
            kubernetes,
            &mut stats,
        ) {
            Ok(masked) => scrubber.scrub_all(&masked),
            Err(reason) => return refuse(gateway, session, started, &reason).await,
        };
        count_masked(gateway, &session, &stats);
        let sample = masked.get(..sample_limit.min(masked.len())).unwrap_or(&[]);
        let result = ResultRecord::answered(status.as_u16(), elapsed_us(started)).with_body(
            masked.len() as u64,
            sample,
            sample_limit,
            &stats,
        );
        finish(gateway, session, result).await;
        let mut out = Response::new(
            Full::new(Bytes::from(masked))
                .map_err(|never| match never {})
                .boxed(),
        );
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        return out;
    }
    let (sender, receiver) = mpsc::channel(8);
    let task_gateway = Arc::clone(gateway);
    tokio::spawn(async move {
        let relayed = pump(incoming, encoded, &scrubber, sender, sample_limit).await;
        let mut result = ResultRecord::answered(status.as_u16(), elapsed_us(started)).with_body(
            relayed.bytes,
            &relayed.sample,
            sample_limit,
            &MaskStats::new(),
        );
        if line_stream {
            // A watch or followed log: one event (line) per row.
            result.rows = relayed.newlines;
        }
        if let Some(error) = relayed.error {
            result.status = "error";
            result.error_message = Some(error);
        }
        finish(&task_gateway, session, result).await;
    });
    let mut out = Response::new(ChannelBody(receiver).boxed());
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}

/// Counts what a response's masking masked, per detector, in
/// `airlock_masked_values_total` under the connection's protocol (`http`
/// or `kubernetes`), as the databases count their rows.
fn count_masked(gateway: &HttpGateway, session: &AdmittedSession, stats: &MaskStats) {
    if gateway.state.config.metrics.enabled {
        gateway
            .state
            .metrics
            .values_masked(session.connection.protocol.as_str(), stats.iter());
    }
}

/// Records the result and ends the request's session.
pub(crate) async fn finish(gateway: &HttpGateway, session: AdmittedSession, result: ResultRecord) {
    let context = RecordContext {
        session_id: session.session_id(),
        identity: session.identity(),
        connection: &session.connection.name,
    };
    if gateway.state.config.recording.enabled {
        gateway
            .state
            .recorder
            .record_later(vec![result.event(&context.scope(0))])
            .await;
    }
    let counts = SessionCounts {
        bytes_from_upstream: result.bytes(),
        commands: 1,
        ..SessionCounts::default()
    };
    session.record_end("request_done", None, counts).await;
}

/// Refuses a response the gateway cannot relay safely.
async fn refuse(
    gateway: &HttpGateway,
    session: AdmittedSession,
    started: Instant,
    reason: &str,
) -> Response<ClientBody> {
    tracing::warn!(reason, "response refused");
    let response = errors::unmaskable(reason);
    let result = ResultRecord::failed(
        response.status().as_u16(),
        reason.to_string(),
        elapsed_us(started),
    );
    finish(gateway, session, result).await;
    response
}
