//! The `Status` object (`kind: Status`, `apiVersion: v1`) the API server
//! answers failures with, so `kubectl` prints a refusal as
//! `Error from server (Forbidden): <message>`. Pure.

use serde_json::{json, Value};

/// The `reason` Kubernetes gives a failure with this HTTP status.
pub fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

/// A failure `Status` with `code`, `message` and, when given, `details`
/// (airlock puts the rule, the policy version and a review's id there).
pub fn failure(code: u16, message: &str, details: Option<Value>) -> Value {
    let mut status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason_for(code),
        "code": code,
    });
    if let Some(details) = details {
        status["details"] = details;
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_have_the_api_server_shape() {
        let status = failure(403, "blocked by rule \"x\"", Some(json!({"name": "x"})));
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["apiVersion"], "v1");
        assert_eq!(status["status"], "Failure");
        assert_eq!(status["reason"], "Forbidden");
        assert_eq!(status["code"], 403);
        assert_eq!(status["details"]["name"], "x");
        assert_eq!(reason_for(429), "TooManyRequests");
        assert_eq!(reason_for(502), "InternalError");
        assert!(failure(401, "m", None).get("details").is_none());
    }
}
