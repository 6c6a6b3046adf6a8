//! The HTTP parts of the configuration file: the `http:` listener options,
//! a connection's `inject:` block, and the checks an `protocol: http`
//! connection must pass (and the HTTP-only fields other protocols must not
//! carry), and [`split_authority`], how every HTTP upstream's `url`
//! names its host and port. Kept apart from `config.rs` so each protocol's settings stay in
//! one place; `config.rs` calls [`connection_problems`] for every
//! connection.

use serde::Deserialize;

use crate::config::{ConnectionConfig, PlaintextPolicy};
use crate::duration::parse_duration;

/// The HTTP listener's address when `listen.http` is not set.
pub const DEFAULT_HTTP_LISTEN: &str = "0.0.0.0:18080";

/// HTTP listener options (`http:`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpOptions {
    /// Who may skip TLS: `loopback` (default), `always`, `never`. Without
    /// TLS the bearer token crosses the network in clear.
    #[serde(default)]
    pub allow_plaintext: PlaintextPolicy,
    /// Largest response body (after decompression) the gateway holds in
    /// memory to mask it, in bytes (default 8 MiB). A larger response under
    /// a mask plan is refused, never passed unmasked.
    #[serde(default = "default_max_masked_body_bytes")]
    pub max_masked_body_bytes: usize,
    /// Largest request head (request line and headers) accepted from a
    /// client, in bytes (default 64 KiB).
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// Time allowed to connect upstream and receive the response head
    /// (default `30s`). A request held for review waits outside it.
    #[serde(default = "default_upstream_timeout")]
    pub upstream_timeout: String,
    /// How long an idle keep-alive connection to an `http`/`kubernetes`
    /// upstream is kept for the next request of the same connection and
    /// credential version (default `90s`; `0s` opens a connection per
    /// request).
    #[serde(default = "default_upstream_idle_timeout")]
    pub upstream_idle_timeout: String,
    /// Most idle keep-alive connections kept per connection and
    /// credential version (default 32; 0 opens a connection per request).
    #[serde(default = "default_upstream_max_idle")]
    pub upstream_max_idle: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            allow_plaintext: PlaintextPolicy::default(),
            max_masked_body_bytes: default_max_masked_body_bytes(),
            max_header_bytes: default_max_header_bytes(),
            upstream_timeout: default_upstream_timeout(),
            upstream_idle_timeout: default_upstream_idle_timeout(),
            upstream_max_idle: default_upstream_max_idle(),
        }
    }
}

fn default_max_masked_body_bytes() -> usize {
    8 * 1024 * 1024
}

fn default_max_header_bytes() -> usize {
    64 * 1024
}

fn default_upstream_timeout() -> String {
    "30s".into()
}

fn default_upstream_idle_timeout() -> String {
    "90s".into()
}

fn default_upstream_max_idle() -> usize {
    32
}

/// How an HTTP connection's stored credential is sent upstream: exactly
/// one of the three.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectConfig {
    /// The credential's secret as the value of this header (`X-Api-Key`).
    #[serde(default)]
    pub header: Option<String>,
    /// `Authorization: Bearer <secret>`.
    #[serde(default)]
    pub bearer: bool,
    /// `Authorization: Basic base64(<username>:<secret>)`.
    #[serde(default)]
    pub basic: bool,
}

/// Headers the gateway sets or removes itself: a connection may not inject
/// its credential under them.
const RESERVED_HEADERS: [&str; 12] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-connection",
    "cookie",
    "proxy-authorization",
    "authorization",
];

/// True for an HTTP header name (RFC 9110 token characters).
pub fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

/// The problems of one connection's HTTP fields, as (field, message):
/// an `http` connection needs a `url` with an `http`/`https` scheme, an
/// `inject` with exactly one way, and no `address`/`tls`/`database`; any
/// other protocol carries none of the HTTP fields.
pub fn connection_problems(connection: &ConnectionConfig) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    let kubernetes = connection.protocol == "kubernetes";
    if connection.impersonate && !kubernetes {
        problems.push((
            "impersonate",
            "impersonate is for protocol kubernetes connections".into(),
        ));
    }
    if connection.client_certificate && !kubernetes {
        problems.push((
            "client_certificate",
            "client_certificate is for protocol kubernetes connections".into(),
        ));
    }
    if connection.client_certificate
        && kubernetes
        && !connection
            .url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://"))
    {
        problems.push((
            "client_certificate",
            "client_certificate needs an https url".into(),
        ));
    }
    if !over_http(&connection.protocol) {
        // An MCP connection may have a url and an inject (`mcp_config`).
        let mcp = connection.protocol == "mcp";
        let http_only = [
            ("url", connection.url.is_some() && !mcp),
            ("inject", connection.inject.is_some() && !mcp),
            (
                "insecure_skip_verify",
                connection.insecure_skip_verify && !mcp,
            ),
            ("forward_cookies", connection.forward_cookies),
            ("strip_headers", !connection.strip_headers.is_empty()),
        ];
        for (field, set) in http_only {
            if set {
                problems.push((field, format!("{field} is for protocol http connections")));
            }
        }
        return problems;
    }
    let kind = if kubernetes {
        "a kubernetes"
    } else {
        "an http"
    };
    match connection.url.as_deref() {
        None => problems.push(("url", format!("{kind} connection needs a url"))),
        Some(url) => {
            if let Some(problem) = url_problem(url) {
                problems.push(("url", format!("url {url:?} {problem}")));
            }
        }
    }
    for (field, set) in [
        ("address", !connection.address.is_empty()),
        ("tls", connection.tls.is_some()),
        ("database", connection.database.is_some()),
    ] {
        if set {
            problems.push((
                field,
                format!(
                    "{field} is not used by {} connections (the url says where and whether TLS)",
                    connection.protocol
                ),
            ));
        }
    }
    match &connection.inject {
        // Kubernetes: the stored service-account token always goes as
        // `Authorization: Bearer`; there is no other way to choose.
        Some(_) if kubernetes => problems.push((
            "inject",
            "inject is for protocol http connections (a kubernetes connection sends its service-account token as a bearer token)".into(),
        )),
        None if kubernetes => {}
        None => problems.push((
            "credential",
            "an http connection needs inject: {header: NAME}, {bearer: true} or {basic: true}"
                .into(),
        )),
        Some(inject) => problems.extend(inject_problems(inject, false)),
    }
    if connection.insecure_skip_verify && connection.ca_file.is_some() {
        problems.push((
            "insecure_skip_verify",
            "insecure_skip_verify and ca_file exclude each other".into(),
        ));
    }
    for header in &connection.strip_headers {
        if !valid_header_name(header) {
            problems.push((
                "strip_headers",
                format!("strip_headers: {header:?} is not a header name"),
            ));
        }
    }
    problems
}

/// The problems of an `inject:` block (HTTP and MCP `url:` connections),
/// as (field, message): exactly one way, and a header name the gateway
/// does not set or remove itself (for MCP also none of the transport's
/// `Mcp-*` headers).
pub fn inject_problems(inject: &InjectConfig, mcp: bool) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    let ways = usize::from(inject.header.is_some())
        + usize::from(inject.bearer)
        + usize::from(inject.basic);
    if ways != 1 {
        problems.push((
            "inject",
            "inject: give exactly one of header, bearer, basic".into(),
        ));
    }
    if let Some(header) = &inject.header {
        let lower = header.to_ascii_lowercase();
        if !valid_header_name(header) {
            problems.push((
                "inject",
                format!("inject.header {header:?} is not a header name"),
            ));
        } else if RESERVED_HEADERS.contains(&lower.as_str())
            || lower.starts_with("impersonate-")
            || (mcp && lower.starts_with("mcp-"))
        {
            problems.push((
                "inject",
                format!("inject.header {header:?} is a header the gateway sets or removes itself"),
            ));
        }
    }
    problems
}

/// True for the protocols served on the HTTP listener with a `url`:
/// `http` and `kubernetes`.
pub fn over_http(protocol: &str) -> bool {
    matches!(protocol, "http" | "kubernetes")
}

/// Why `url` cannot be an HTTP connection's base URL, if it cannot.
fn url_problem(url: &str) -> Option<&'static str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else {
        return Some("must start with http:// or https://");
    };
    let (authority, path) = match rest.find('/') {
        Some(index) => rest.split_at(index),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') {
        return Some("needs a host (and no user:password@)");
    }
    if url.contains(['?', '#']) || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("must not carry a query, a fragment or spaces");
    }
    if !path.is_empty() && path != "/" && !airlock_types::command::http::http_path_is_normal(path) {
        return Some("has a path that is not in normal form");
    }
    None
}

/// The problems of the `http:` options, as (field, message).
pub fn options_problems(options: &HttpOptions) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    if options.max_masked_body_bytes < 1024 {
        problems.push((
            "max_masked_body_bytes",
            "http.max_masked_body_bytes: must be at least 1024".into(),
        ));
    }
    if options.max_header_bytes < 8192 {
        problems.push((
            "max_header_bytes",
            "http.max_header_bytes: must be at least 8192".into(),
        ));
    }
    match parse_duration(&options.upstream_timeout) {
        Ok(duration) if duration.is_zero() => problems.push((
            "upstream_timeout",
            "http.upstream_timeout: must be longer than zero".into(),
        )),
        Ok(_) => {}
        Err(error) => problems.push((
            "upstream_timeout",
            format!("http.upstream_timeout: {error}"),
        )),
    }
    if let Err(error) = parse_duration(&options.upstream_idle_timeout) {
        problems.push((
            "upstream_idle_timeout",
            format!("http.upstream_idle_timeout: {error}"),
        ));
    }
    if options.upstream_max_idle > 1024 {
        problems.push((
            "upstream_max_idle",
            "http.upstream_max_idle: must be at most 1024".into(),
        ));
    }
    problems
}

/// `host[:port]` of an upstream URL (brackets around an IPv6 host), with
/// the scheme's default port (`https`: 443, else 80).
pub fn split_authority(authority: &str, https: bool) -> Option<(String, u16)> {
    let default = if https { 443 } else { 80 };
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => port.parse().ok()?,
            None if after.is_empty() => default,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => Some((host.to_string(), port.parse().ok()?)),
        Some(_) => None,
        None if !authority.is_empty() => Some((authority.to_string(), default)),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_split() {
        assert_eq!(split_authority("h:8443", true), Some(("h".into(), 8443)));
        assert_eq!(split_authority("h", true), Some(("h".into(), 443)));
        assert_eq!(split_authority("h", false), Some(("h".into(), 80)));
        assert_eq!(split_authority("[::1]:9", false), Some(("::1".into(), 9)));
        assert_eq!(split_authority(":9", false), None);
        assert_eq!(split_authority("h:x", false), None);
    }

    #[test]
    fn urls_are_checked() {
        assert_eq!(url_problem("https://billing.internal:8443"), None);
        assert_eq!(url_problem("http://127.0.0.1:9/api/v2"), None);
        assert!(url_problem("ftp://x").is_some());
        assert!(url_problem("https://").is_some());
        assert!(url_problem("https://user:pw@host").is_some());
        assert!(url_problem("https://host/a/../b").is_some());
        assert!(url_problem("https://host/?q").is_some());
    }

    #[test]
    fn header_names() {
        assert!(valid_header_name("X-Api-Key"));
        assert!(!valid_header_name("X Api"));
        assert!(!valid_header_name(""));
        assert!(!valid_header_name("a:b"));
    }
}
