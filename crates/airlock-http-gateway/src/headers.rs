//! Headers on the way up and down. Pure.
//!
//! Up: the client's own credentials (`Authorization`,
//! `Proxy-Authorization`, `Cookie` unless the connection forwards cookies),
//! every `Impersonate-*` header (the Kubernetes impersonation headers, which
//! only the gateway may set), the hop-by-hop headers (RFC 9110 7.6.1) and
//! every header the client's `Connection` header names, `Host` and
//! `Accept-Encoding` (the gateway sets both itself) and the connection's
//! `strip_headers` are removed; then the stored credential is added as the
//! connection's `inject` says. A request that frames its body two ways
//! (`Transfer-Encoding` and `Content-Length`) or carries two
//! `Content-Length`s is refused before anything is forwarded (request
//! smuggling).
//!
//! Down: hop-by-hop headers are removed, and so is `Content-Length`
//! whenever the body is rewritten (credential scrubbing, decompression,
//! masking change its length).

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use airlock_core::http_config::InjectConfig;

/// The hop-by-hop headers (RFC 9110 7.6.1, plus the historical
/// `Keep-Alive` and `Proxy-Connection`).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Why a request's headers are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Both `Transfer-Encoding` and `Content-Length`, or `Content-Length`
    /// twice.
    #[error("the request frames its body ambiguously (Transfer-Encoding with Content-Length, or two Content-Length headers)")]
    AmbiguousFraming,
    /// An upgrade (WebSocket and the like) is not relayed for HTTP APIs.
    #[error("protocol upgrades are not relayed")]
    Upgrade,
}

/// What the connection says about request headers.
#[derive(Debug, Clone, Default)]
pub struct HeaderRules {
    /// Forward the client's `Cookie` header.
    pub forward_cookies: bool,
    /// More headers to remove (lowercase).
    pub strip: Vec<String>,
}

/// Refuses requests whose body framing is ambiguous, and upgrades.
pub fn check_request(headers: &HeaderMap) -> Result<(), HeaderError> {
    let lengths = headers.get_all(header::CONTENT_LENGTH).iter().count();
    if lengths > 1 || (lengths == 1 && headers.contains_key(header::TRANSFER_ENCODING)) {
        return Err(HeaderError::AmbiguousFraming);
    }
    if headers.contains_key(header::UPGRADE) {
        return Err(HeaderError::Upgrade);
    }
    Ok(())
}

/// The names the `Connection` headers list (lowercase).
fn connection_tokens(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|token| token.trim().to_ascii_lowercase())
        .filter(|token| !token.is_empty())
        .collect()
}

/// The request headers to send upstream, without the credential yet.
pub fn upstream_request_headers(client: &HeaderMap, rules: &HeaderRules) -> HeaderMap {
    let named = connection_tokens(client);
    let mut out = HeaderMap::with_capacity(client.len());
    for (name, value) in client {
        let lower = name.as_str();
        let dropped = HOP_BY_HOP.contains(&lower)
            || lower == "authorization"
            || lower == "host"
            || lower == "accept-encoding"
            || (lower == "cookie" && !rules.forward_cookies)
            || lower.starts_with("impersonate-")
            || named.iter().any(|token| token == lower)
            || rules.strip.iter().any(|strip| strip == lower);
        if !dropped {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// The response headers to send the client: hop-by-hop headers removed,
/// and the body's length and encoding when the gateway rewrites it.
pub fn client_response_headers(upstream: &HeaderMap, body_rewritten: bool) -> HeaderMap {
    let named = connection_tokens(upstream);
    let mut out = HeaderMap::with_capacity(upstream.len());
    for (name, value) in upstream {
        let lower = name.as_str();
        let dropped = HOP_BY_HOP.contains(&lower)
            || named.iter().any(|token| token == lower)
            || (body_rewritten && (lower == "content-length" || lower == "content-encoding"));
        if !dropped {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// The credential as sent upstream: the header and its value (marked
/// sensitive, so hyper never logs it).
pub fn credential_header(
    inject: &InjectConfig,
    username: &str,
    secret: &str,
) -> Option<(HeaderName, HeaderValue)> {
    let (name, value) = airlock_core::inject::credential_header(inject, username, secret);
    let name = if name == "authorization" {
        header::AUTHORIZATION
    } else {
        HeaderName::from_bytes(name.as_bytes()).ok()?
    };
    let mut value = HeaderValue::from_str(&value).ok()?;
    value.set_sensitive(true);
    Some((name, value))
}

pub use airlock_core::inject::echo_forms;

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn strips_client_credentials_and_hop_by_hop() {
        let client = map(&[
            ("authorization", "Bearer agent-token"),
            ("Proxy-Authorization", "Basic x"),
            ("cookie", "session=1"),
            ("impersonate-user", "admin"),
            ("Impersonate-Group", "system:masters"),
            ("impersonate-extra-scopes", "x"),
            ("connection", "keep-alive, X-Secret-Hop"),
            ("x-secret-hop", "1"),
            ("te", "trailers"),
            ("host", "evil"),
            ("accept-encoding", "br"),
            ("x-drop-me", "1"),
            ("accept", "application/json"),
            ("x-request-id", "r1"),
        ]);
        let rules = HeaderRules {
            forward_cookies: false,
            strip: vec!["x-drop-me".into()],
        };
        let out = upstream_request_headers(&client, &rules);
        let names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["accept", "x-request-id"]);
        let with_cookies = HeaderRules {
            forward_cookies: true,
            strip: vec![],
        };
        assert!(upstream_request_headers(&client, &with_cookies).contains_key("cookie"));
    }

    #[test]
    fn refuses_ambiguous_framing() {
        assert_eq!(
            check_request(&map(&[
                ("content-length", "3"),
                ("transfer-encoding", "chunked")
            ])),
            Err(HeaderError::AmbiguousFraming)
        );
        assert_eq!(
            check_request(&map(&[("content-length", "3"), ("content-length", "4")])),
            Err(HeaderError::AmbiguousFraming)
        );
        assert_eq!(
            check_request(&map(&[("upgrade", "websocket")])),
            Err(HeaderError::Upgrade)
        );
        assert_eq!(check_request(&map(&[("content-length", "3")])), Ok(()));
    }

    #[test]
    fn injects_each_way() {
        let header = InjectConfig {
            header: Some("X-Api-Key".into()),
            ..InjectConfig::default()
        };
        let (name, value) = credential_header(&header, "u", "s3cret").unwrap();
        assert_eq!(
            (name.as_str(), value.to_str().unwrap()),
            ("x-api-key", "s3cret")
        );
        assert!(value.is_sensitive());
        let bearer = InjectConfig {
            bearer: true,
            ..InjectConfig::default()
        };
        let (name, value) = credential_header(&bearer, "u", "s3cret").unwrap();
        assert_eq!(
            (name.as_str(), value.to_str().unwrap()),
            ("authorization", "Bearer s3cret")
        );
        let basic = InjectConfig {
            basic: true,
            ..InjectConfig::default()
        };
        let (_, value) = credential_header(&basic, "user", "pass").unwrap();
        assert_eq!(value.to_str().unwrap(), "Basic dXNlcjpwYXNz");
        let forms = echo_forms(&basic, "user", "pass");
        assert!(forms.contains(&b"dXNlcjpwYXNz".to_vec()));
        assert!(forms.contains(&b"pass".to_vec()));
        assert!(credential_header(&header, "u", "bad\nvalue").is_none());
    }

    #[test]
    fn response_headers_lose_hop_by_hop_and_length_when_rewritten() {
        let upstream = map(&[
            ("content-length", "10"),
            ("content-encoding", "gzip"),
            ("transfer-encoding", "chunked"),
            ("content-type", "application/json"),
        ]);
        let out = client_response_headers(&upstream, true);
        let names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["content-type"]);
        assert!(client_response_headers(&upstream, false).contains_key("content-length"));
    }
}
