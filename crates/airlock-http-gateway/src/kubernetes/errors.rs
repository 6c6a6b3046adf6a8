//! The one place where airlock's answers on a Kubernetes connection become
//! what `kubectl` understands: every response the gateway itself sends
//! (refusals of the gate, login, admission, bad paths, upstream failures;
//! `crate::errors` marks them with [`crate::errors::GatewayAnswer`]) is
//! re-rendered as a `Status` object with the same HTTP status, the same
//! message (naming the rule, the policy version and a review's approve
//! command), `reason` from the status (`Forbidden` for 403), airlock's
//! own JSON fields under `details.causes` and `Retry-After` as
//! `details.retryAfterSeconds`, so `kubectl` prints
//! `Error from server (Forbidden): blocked by rule …`. Responses of the
//! upstream pass untouched.

use bytes::Bytes;
use http::{header, HeaderValue, Response};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

use airlock_k8s::status::failure;

use crate::errors::GatewayAnswer;
use crate::ClientBody;

/// `response` as a `Status` when the gateway made it; as it is otherwise.
pub fn as_status(mut response: Response<ClientBody>) -> Response<ClientBody> {
    let Some(GatewayAnswer(body)) = response.extensions_mut().remove::<GatewayAnswer>() else {
        return response;
    };
    let code = response.status().as_u16();
    let mut status = status_of(code, &body);
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if let Some(seconds) = retry_after {
        status["details"]["retryAfterSeconds"] = json!(seconds);
    }
    let bytes = Bytes::from(serde_json::to_vec(&status).unwrap_or_default());
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(
        parts,
        Full::new(bytes).map_err(|never| match never {}).boxed(),
    )
}

/// The `Status` for a gateway answer with HTTP `code` and airlock's JSON
/// `body` (`{"error", "message", "rule", "policy_version", …}`).
pub fn status_of(code: u16, body: &Value) -> Value {
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("airlock: the request was refused");
    let mut causes = Vec::new();
    if let Value::Object(fields) = body {
        for (field, value) in fields {
            if field == "message" || value.is_null() {
                continue;
            }
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            causes.push(json!({"reason": "airlock", "field": field, "message": text}));
        }
    }
    let mut details = json!({"causes": causes});
    if let Some(rule) = body.get("rule").and_then(Value::as_str) {
        details["name"] = json!(rule);
        details["kind"] = json!("airlock-rule");
    }
    failure(code, message, Some(details))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn gateway_answers_become_status_objects() {
        let refused = crate::errors::json_response(
            StatusCode::FORBIDDEN,
            &json!({"error": "denied", "message": "blocked by rule \"no-secrets\" (policy v3): no", "rule": "no-secrets", "policy_version": 3}),
        );
        let status = as_status(refused);
        assert_eq!(status.status(), StatusCode::FORBIDDEN);
        let mut limited = crate::errors::json_response(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({"error": "rate_limited", "message": "slow down"}),
        );
        limited
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("7"));
        let limited = as_status(limited);
        assert_eq!(limited.headers()[header::RETRY_AFTER], "7");
        let body = status_of(
            403,
            &json!({"error": "denied", "message": "blocked by rule \"no-secrets\"", "rule": "no-secrets", "policy_version": 3}),
        );
        assert_eq!(body["kind"], "Status");
        assert_eq!(body["reason"], "Forbidden");
        assert_eq!(body["code"], 403);
        assert_eq!(body["details"]["name"], "no-secrets");
        assert!(body["message"].as_str().unwrap().contains("no-secrets"));
        // An upstream response (no marker) passes untouched.
        let upstream = Response::new(
            Full::new(Bytes::from_static(b"{}"))
                .map_err(|never| match never {})
                .boxed(),
        );
        assert!(as_status(upstream)
            .extensions()
            .get::<GatewayAnswer>()
            .is_none());
    }
}
