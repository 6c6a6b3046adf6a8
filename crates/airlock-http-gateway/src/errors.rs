//! The one place where airlock's answers become HTTP responses: every
//! status code and JSON error body the gateway itself sends is chosen here
//! (a table test lists them).
//!
//! Bodies are `{"error": <stable code>, "message": …}` plus, for policy
//! refusals, `rule` and `policy_version`, and for reviews `review_id` and
//! `approve` (the command that approves it). Messages never describe the
//! inside (addresses, store errors, the credential).

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

use airlock_core::admission::AdmissionRefusal;
use airlock_core::gate::{Decision, Refusal};
use airlock_core::login::LoginRefusal;

use crate::route::RouteError;
use crate::upstream::UpstreamError;
use crate::ClientBody;

/// The one message for every token failure, whatever its reason.
pub const AUTH_FAILED: &str = "airlock: authentication failed: send Authorization: Bearer <token> with a valid airlock or OIDC token for this connection";

/// Marks a response the gateway made itself (its JSON body, kept beside
/// it), so a protocol on top of HTTP can re-render it in its own shape
/// (`crate::kubernetes::errors`: a Kubernetes `Status`).
#[derive(Debug, Clone)]
pub struct GatewayAnswer(pub Value);

/// A JSON response with `status` and `body`.
pub fn json_response(status: StatusCode, body: &Value) -> Response<ClientBody> {
    let bytes = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
    let mut response = Response::new(Full::new(bytes).map_err(|never| match never {}).boxed());
    response
        .extensions_mut()
        .insert(GatewayAnswer(body.clone()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn simple(status: StatusCode, code: &str, message: &str) -> Response<ClientBody> {
    json_response(status, &json!({"error": code, "message": message}))
}

/// 401 for a missing, malformed or refused token.
pub fn unauthenticated() -> Response<ClientBody> {
    let mut response = simple(StatusCode::UNAUTHORIZED, "unauthenticated", AUTH_FAILED);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"airlock\""),
    );
    response
}

/// A refused login.
pub fn login(refusal: &LoginRefusal) -> Response<ClientBody> {
    match refusal {
        LoginRefusal::Failed { .. } => unauthenticated(),
        LoginRefusal::LockedOut { remaining, .. } => {
            let mut response = simple(
                StatusCode::TOO_MANY_REQUESTS,
                "locked_out",
                &refusal.to_string(),
            );
            retry_after(&mut response, remaining.as_secs().max(1));
            response
        }
        LoginRefusal::StoreUnavailable => simple(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            &refusal.to_string(),
        ),
    }
}

/// A refused admission.
pub fn admission(refusal: &AdmissionRefusal) -> Response<ClientBody> {
    let (status, code) = match refusal {
        AdmissionRefusal::SessionLimit { .. } => (StatusCode::TOO_MANY_REQUESTS, "session_limit"),
        AdmissionRefusal::UnknownConnection { .. } | AdmissionRefusal::WrongProtocol { .. } => {
            (StatusCode::NOT_FOUND, "unknown_connection")
        }
        AdmissionRefusal::NoGrant { .. } => (StatusCode::FORBIDDEN, "no_grant"),
        AdmissionRefusal::StoreUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        AdmissionRefusal::CredentialMissing { .. }
        | AdmissionRefusal::CredentialUnreadable { .. } => {
            (StatusCode::BAD_GATEWAY, "connection_not_ready")
        }
        AdmissionRefusal::RecordingUnavailable => {
            (StatusCode::SERVICE_UNAVAILABLE, "recording_unavailable")
        }
    };
    let mut response = simple(status, code, &refusal.to_string());
    if status == StatusCode::TOO_MANY_REQUESTS {
        retry_after(&mut response, 1);
    }
    response
}

/// A refusal of the gate (or of the recorder before forwarding).
pub fn refusal(refusal: &Refusal, decision: &Decision) -> Response<ClientBody> {
    let (status, code) = match refusal {
        Refusal::Denied { .. } => (StatusCode::FORBIDDEN, "denied"),
        Refusal::Review { .. } => (StatusCode::FORBIDDEN, "review_required"),
        Refusal::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        Refusal::RecordingUnavailable { .. } => {
            (StatusCode::SERVICE_UNAVAILABLE, "recording_unavailable")
        }
        Refusal::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        Refusal::Syntax { .. } | Refusal::UnknownObject { .. } => {
            (StatusCode::BAD_REQUEST, "bad_request")
        }
    };
    let mut body = json!({
        "error": code,
        "message": refusal.message(),
        "rule": decision.details.rule(),
        "policy_version": decision.version,
    });
    if let Refusal::Review {
        review_id: Some(id),
        ..
    } = refusal
    {
        body["review_id"] = json!(id);
        body["approve"] = json!(format!("airlock review approve {id}"));
    }
    let mut response = json_response(status, &body);
    if let Refusal::RateLimited { message } = refusal {
        retry_after(&mut response, retry_seconds(message));
    }
    response
}

/// The whole seconds to wait, from the gate's "retry in 40 ms" / "retry in
/// 2.5 s" (rounded up, at least 1).
fn retry_seconds(message: &str) -> u64 {
    let Some(hint) = message.rsplit("retry in ").next() else {
        return 1;
    };
    let mut parts = hint.split_whitespace();
    let (Some(number), Some(unit)) = (parts.next(), parts.next()) else {
        return 1;
    };
    let Ok(value) = number.parse::<f64>() else {
        return 1;
    };
    let seconds = if unit.starts_with("ms") {
        value / 1000.0
    } else {
        value
    };
    // Bounded above by a minute (the limiter's window); the cast is safe.
    seconds.clamp(1.0, 60.0).ceil() as u64
}

fn retry_after(response: &mut Response<ClientBody>, seconds: u64) {
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
}

/// A target that cannot be routed.
pub fn route(error: RouteError) -> Response<ClientBody> {
    let status = match error {
        RouteError::NoConnection => StatusCode::NOT_FOUND,
        RouteError::BadConnection | RouteError::NotNormal => StatusCode::BAD_REQUEST,
    };
    simple(status, "bad_path", &format!("airlock: {error}"))
}

/// A request the gateway will not relay (ambiguous framing, upgrades).
pub fn bad_request(message: &str) -> Response<ClientBody> {
    simple(
        StatusCode::BAD_REQUEST,
        "bad_request",
        &format!("airlock: {message}"),
    )
}

/// A request body held for review that is too large to show.
pub fn body_too_large(limit: usize) -> Response<ClientBody> {
    simple(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        &format!("airlock: a request held for review may carry at most {limit} bytes of body"),
    )
}

/// The upstream could not be reached or failed.
pub fn upstream(error: &UpstreamError) -> Response<ClientBody> {
    let (status, message) = match error {
        UpstreamError::Timeout(_) => (
            StatusCode::GATEWAY_TIMEOUT,
            "airlock: the upstream did not answer in time",
        ),
        _ => (
            StatusCode::BAD_GATEWAY,
            "airlock: the upstream cannot be reached",
        ),
    };
    simple(status, "upstream_unavailable", message)
}

/// A response the gateway cannot mask (too large, unknown type or
/// encoding): refused rather than passed unmasked.
pub fn unmaskable(reason: &str) -> Response<ClientBody> {
    simple(
        StatusCode::BAD_GATEWAY,
        "response_refused",
        &format!("airlock: the response cannot be relayed: {reason}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_its_status() {
        let decision = Decision::forward();
        let table = [
            (
                Refusal::Denied {
                    message: "m".into(),
                },
                403,
            ),
            (
                Refusal::Review {
                    review_id: Some("r-1".into()),
                    message: "m".into(),
                },
                403,
            ),
            (
                Refusal::RateLimited {
                    message: "retry in 2.5 s".into(),
                },
                429,
            ),
            (
                Refusal::RecordingUnavailable {
                    message: "m".into(),
                },
                503,
            ),
            (
                Refusal::Unavailable {
                    message: "m".into(),
                },
                503,
            ),
        ];
        for (refused, status) in table {
            let response = refusal(&refused, &decision);
            assert_eq!(response.status().as_u16(), status, "{refused:?}");
        }
        let limited = refusal(
            &Refusal::RateLimited {
                message: "x; retry in 2.5 s".into(),
            },
            &decision,
        );
        assert_eq!(limited.headers()[header::RETRY_AFTER], "3");
        assert_eq!(retry_seconds("retry in 40 ms"), 1);
        assert_eq!(unauthenticated().status(), StatusCode::UNAUTHORIZED);
        assert!(unauthenticated()
            .headers()
            .contains_key(header::WWW_AUTHENTICATE));
        assert_eq!(
            upstream(&UpstreamError::Exchange("x".into())).status(),
            StatusCode::BAD_GATEWAY
        );
    }
}
