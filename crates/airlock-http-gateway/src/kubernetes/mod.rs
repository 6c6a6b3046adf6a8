//! The Kubernetes hooks of the HTTP gateway: a `protocol: kubernetes`
//! connection is served on the same listener and path as `http` ones, with
//! these differences. The request becomes a Kubernetes `Command` (the
//! request-info parser of `airlock-k8s`: verb, group, version, resource,
//! subresource, namespace, name, dry run), any client `Impersonate-*`
//! header makes it an admin request (and is removed all the same); the
//! stored service-account token goes up as `Authorization: Bearer`, and
//! with `impersonate: true` the gateway adds `Impersonate-User` and one
//! `Impersonate-Group` per group of the identity; under a mask plan the
//! upstream is asked for JSON (protobuf cannot be masked) and Secret
//! values are masked whatever the detectors say (also in a held request's
//! body, as the reviewer and the record see it); every refusal is a
//! `Status` object ([`errors`]). Allowed `exec`, `attach` and
//! `port-forward` upgrades are relayed over WebSocket ([`stream`], frames
//! read by [`websocket`], a terminal recorded by [`transcript`], kubectl's
//! SPDY port-forward tunnel decided per connection by [`tunnel`]).
//!
//! Architecture invariant: nothing here decides; it describes the request
//! for the core's gate and adjusts headers the gate already allowed.

pub mod errors;
pub mod stream;
pub mod transcript;
pub mod tunnel;
pub mod watch;
pub mod websocket;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use airlock_k8s::{parse_request, RequestInfoError};
use airlock_types::command::CommandKind;
use airlock_types::{Command, Identity, KubernetesVerb};

use crate::route::Route;

/// True when the client sent any `Impersonate-*` header.
pub fn impersonates(headers: &HeaderMap) -> bool {
    headers
        .keys()
        .any(|name| name.as_str().starts_with("impersonate-"))
}

/// The command of one Kubernetes request, or why it cannot be classified.
pub fn command(
    method: &str,
    routed: &Route<'_>,
    headers: &HeaderMap,
) -> Result<Command, RequestInfoError> {
    let info = parse_request(method, routed.path, routed.query)?;
    let request = info.into_request(impersonates(headers));
    Ok(Command::new(
        format!("{method} {}", routed.path),
        CommandKind::Kubernetes(request),
    ))
}

/// `Impersonate-User: <identity>` and `Impersonate-Group: <group>` for
/// each group; `None` when a name cannot be sent as a header value (the
/// request is then refused rather than sent as the gateway itself).
/// Groups in Kubernetes' reserved `system:` namespace (`system:masters` is
/// cluster-admin) are never sent, whatever a token or an identity
/// provider's groups claim says; a `system:` user name is refused.
pub fn impersonation_headers(identity: &Identity) -> Option<Vec<(HeaderName, HeaderValue)>> {
    if identity.name.starts_with("system:") {
        return None;
    }
    let user = HeaderName::from_static("impersonate-user");
    let group = HeaderName::from_static("impersonate-group");
    let mut out = vec![(user, HeaderValue::from_str(&identity.name).ok()?)];
    for name in identity
        .groups
        .iter()
        .filter(|name| !name.starts_with("system:"))
    {
        out.push((group.clone(), HeaderValue::from_str(name).ok()?));
    }
    Some(out)
}

/// A held request's body as the reviewer sees it (and the record keeps):
/// JSON with every Secret value masked; any other body (protobuf) only as
/// its length and SHA-256, since its values cannot be told apart. The
/// approval binds to this text, so to the body all the same.
pub fn reviewed_body(body: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(mut value) => {
            airlock_k8s::secrets::mask_secret_values(&mut value);
            value.to_string()
        }
        Err(_) => {
            use sha2::Digest;
            format!(
                "[a body of {} bytes that is not JSON, not shown; sha256 {}]",
                body.len(),
                hex::encode(sha2::Sha256::digest(body))
            )
        }
    }
}

/// True for a request whose answer is a stream of lines: a watch, or a
/// followed log (`pods/log?follow=true`). Under a mask plan those are
/// masked line by line instead of read whole.
pub fn streams_lines(command: &Command, query: Option<&str>) -> bool {
    let CommandKind::Kubernetes(request) = &command.kind else {
        return false;
    };
    let follows = || {
        query
            .unwrap_or("")
            .split('&')
            .any(|pair| matches!(pair, "follow=true" | "follow=1" | "follow"))
    };
    request.verb == KubernetesVerb::Watch
        || (request.resource == "pods"
            && request.subresource.as_deref() == Some("log")
            && follows())
}

/// Under a mask plan: the client's `Accept` without protobuf (the masker
/// reads JSON only); `application/json` when nothing else is left.
pub fn accept_json_only(headers: &mut HeaderMap) {
    let kept: Vec<String> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|media| !media.is_empty() && !media.contains("protobuf"))
        .map(str::to_string)
        .collect();
    let value = if kept.is_empty() {
        "application/json".to_string()
    } else {
        kept.join(", ")
    };
    headers.remove(header::ACCEPT);
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(header::ACCEPT, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_types::{Access, AuthMethod, IdentityKind};

    #[test]
    fn commands_carry_the_request_info() {
        let mut headers = HeaderMap::new();
        let routed = crate::route::route("/k8s/api/v1/namespaces/prod/secrets/db", None).unwrap();
        let command = command("GET", &routed, &headers).unwrap();
        assert_eq!(command.text, "GET /api/v1/namespaces/prod/secrets/db");
        let CommandKind::Kubernetes(request) = &command.kind else {
            panic!("not kubernetes: {command:?}");
        };
        assert_eq!(request.verb, KubernetesVerb::Get);
        assert_eq!(request.namespace.as_deref(), Some("prod"));
        assert_eq!(command.access(), Access::Read);
        headers.insert("impersonate-user", HeaderValue::from_static("admin"));
        assert_eq!(command_access(&routed, &headers), Access::Admin);
    }

    fn command_access(routed: &Route<'_>, headers: &HeaderMap) -> Access {
        command("GET", routed, headers).unwrap().access()
    }

    #[test]
    fn reviewers_never_see_secret_values() {
        let shown = reviewed_body(br#"{"kind":"Secret","data":{"password":"aHVudGVyMg=="}}"#);
        assert!(!shown.contains("aHVudGVyMg=="), "{shown}");
        assert!(shown.contains("\"kind\":\"Secret\""), "{shown}");
        let protobuf = reviewed_body(b"k8s\x00\x0a\x02v1hunter2");
        assert!(!protobuf.contains("hunter2"), "{protobuf}");
        assert!(protobuf.contains("sha256 "), "{protobuf}");
    }

    #[test]
    fn impersonation_and_accept() {
        let identity = Identity {
            name: "agent-7".into(),
            kind: IdentityKind::Agent,
            groups: vec!["sre".into(), "system:masters".into(), "ops".into()],
            auth_method: AuthMethod::AirlockToken {
                token_id: "t-1".into(),
            },
            expires_at: 0,
        };
        let headers = impersonation_headers(&identity).unwrap();
        let shown: Vec<(&str, &str)> = headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.to_str().unwrap()))
            .collect();
        assert_eq!(
            shown,
            [
                ("impersonate-user", "agent-7"),
                ("impersonate-group", "sre"),
                ("impersonate-group", "ops")
            ]
        );
        let bad = Identity {
            name: "a\nb".into(),
            ..identity.clone()
        };
        assert!(impersonation_headers(&bad).is_none());
        let reserved = Identity {
            name: "system:admin".into(),
            ..identity
        };
        assert!(impersonation_headers(&reserved).is_none());
        let mut accept = HeaderMap::new();
        accept.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/vnd.kubernetes.protobuf, application/json"),
        );
        accept_json_only(&mut accept);
        assert_eq!(accept[header::ACCEPT], "application/json");
        let mut none = HeaderMap::new();
        accept_json_only(&mut none);
        assert_eq!(none[header::ACCEPT], "application/json");
    }
}
