//! The `http_request` tool on `protocol: http` connections, through exactly
//! the path an HTTP client takes: a request to the gateway's own HTTP
//! listener on loopback (`/<connection>/<path>`, the caller's bearer
//! token), so routing, admission, the decision, reviews, rate limits,
//! credential injection, scrubbing, masking and recording are the HTTP
//! gateway's own. It never sees the upstream credential and never decides;
//! it reads the gateway's refusals back from their JSON bodies.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use airlock_core::GatewayState;

use crate::sql::{SqlCaller, SqlFailure};

/// Largest response body returned to the agent (already masked by the
/// gateway).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// The longest a call may take, a review wait included.
const CALL_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// One request, its arguments checked.
pub struct HttpCall<'a> {
    pub connection: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub body: Option<&'a str>,
    pub content_type: Option<&'a str>,
}

/// What the upstream answered (through the gateway).
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

/// The gateway's own refusal in a response, if it is one.
fn refusal(status: u16, body: &[u8]) -> Option<SqlFailure> {
    let parsed: Value = serde_json::from_slice(body).ok()?;
    let code = parsed.get("error")?.as_str()?;
    let message = parsed
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or(code)
        .to_string();
    match (status, code) {
        (403, "review_required") => Some(match parsed.get("review_id").and_then(Value::as_str) {
            Some(id) => SqlFailure::ReviewRequired {
                review_id: id.to_string(),
                message,
            },
            None => SqlFailure::Denied { message },
        }),
        (401 | 403 | 404 | 429 | 503, _) => Some(SqlFailure::Denied { message }),
        _ => None,
    }
}

fn failed(error: impl std::fmt::Display) -> SqlFailure {
    SqlFailure::Internal(format!("the HTTP gateway could not be reached: {error}"))
}

/// Sends the request through the gateway's HTTP listener.
pub async fn run(
    state: &Arc<GatewayState>,
    caller: &SqlCaller<'_>,
    call: &HttpCall<'_>,
) -> Result<HttpAnswer, SqlFailure> {
    let Some(listen) = state.settings.http_listen else {
        return Err(SqlFailure::Internal(
            "the HTTP listener is not running".into(),
        ));
    };
    let method = Method::from_bytes(call.method.as_bytes()).map_err(failed)?;
    let mut request = Request::builder()
        .method(method)
        .uri(format!("/{}{}", call.connection, call.path))
        .header(header::HOST, format!("127.0.0.1:{}", listen.port()))
        .header(header::AUTHORIZATION, format!("Bearer {}", caller.token));
    if let Some(content_type) = call.content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    let body = Bytes::from(call.body.unwrap_or_default().to_string());
    let request = request.body(Full::new(body)).map_err(failed)?;
    let sent = tokio::time::timeout(CALL_TIMEOUT, async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", listen.port()))
            .await
            .map_err(failed)?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(failed)?;
        tokio::spawn(connection);
        let response = sender.send_request(request).await.map_err(failed)?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|_| {
                SqlFailure::Internal(format!(
                    "the response is larger than {MAX_RESPONSE_BYTES} bytes"
                ))
            })?
            .to_bytes();
        if let Some(refused) = refusal(status, &body) {
            return Err(refused);
        }
        Ok(HttpAnswer {
            status,
            content_type,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    })
    .await;
    sent.unwrap_or_else(|_| Err(SqlFailure::Internal("the call timed out".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_refusals_are_read_back() {
        let review = br#"{"error":"review_required","message":"review r-1a2b required","review_id":"r-1a2b"}"#;
        assert!(
            matches!(refusal(403, review), Some(SqlFailure::ReviewRequired { review_id, .. }) if review_id == "r-1a2b")
        );
        let denied = br#"{"error":"denied","message":"blocked by rule \"x\""}"#;
        assert!(matches!(
            refusal(403, denied),
            Some(SqlFailure::Denied { .. })
        ));
        assert!(refusal(200, br#"{"error":"denied"}"#).is_none());
        assert!(refusal(403, b"<html>").is_none());
    }
}
