//! Where a `url:` MCP connection's requests go ([`RemoteTarget`]: scheme,
//! host, port, path, TLS as the HTTP connections do it: the system roots,
//! a `ca_file`, or no verification only when the connection says
//! `insecure_skip_verify`), and sending one request there over a
//! connection of its own (HTTP/1.1).
//!
//! One connection per request: a Streamable HTTP answer may stay open as
//! an event stream while the next request is sent, and HTTP/1.1 cannot
//! carry both on one connection. The credential header is added by the
//! caller ([`crate::proxy::remote`]); nothing here logs a header.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::net::TcpStream;

use airlock_core::config::{relative_to, ConnectionConfig};
use airlock_core::http_config::split_authority;
use airlock_core::mcp_config::McpTransport;

use crate::proxy::upstream::UpstreamError;

/// A `url:` connection's server.
#[derive(Clone)]
pub struct RemoteTarget {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// `host[:port]` as the `Host` header says it.
    pub authority: String,
    /// The url's path (`/mcp`; `/` for none).
    pub path: String,
    pub tls: Option<Arc<ClientConfig>>,
    pub transport: McpTransport,
}

impl std::fmt::Debug for RemoteTarget {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RemoteTarget")
            .field("https", &self.https)
            .field("authority", &self.authority)
            .field("path", &self.path)
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

/// Why a connection's target cannot be built (its url or TLS files).
#[derive(Debug, thiserror::Error)]
#[error("connection {connection:?}: {reason}")]
pub struct TargetError {
    pub connection: String,
    pub reason: String,
}

impl RemoteTarget {
    /// The target of `connection` (a `url:` MCP connection).
    pub fn of(connection: &ConnectionConfig, config_path: &Path) -> Result<Self, TargetError> {
        let problem = |reason: &str| TargetError {
            connection: connection.name.clone(),
            reason: reason.to_string(),
        };
        let url = connection.url.as_deref().ok_or_else(|| problem("no url"))?;
        let (https, authority, path) =
            split_url(url).ok_or_else(|| problem("the url cannot be used"))?;
        let (host, port) =
            split_authority(authority, https).ok_or_else(|| problem("bad host or port"))?;
        let tls = if https {
            let ca = connection
                .ca_file
                .as_ref()
                .map(|file| relative_to(config_path, file));
            Some(
                airlock_core::tls::https_client_config(
                    ca.as_deref(),
                    connection.insecure_skip_verify,
                )
                .map_err(|error| problem(&format!("TLS: {error}")))?,
            )
        } else {
            None
        };
        Ok(Self {
            https,
            host,
            port,
            authority: authority.to_string(),
            path: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
            tls,
            transport: McpTransport::of(connection),
        })
    }

    /// True when `url` (absolute) is on this target's scheme, host and
    /// port: the only place its credential may go.
    pub fn same_origin(&self, url: &str) -> Option<String> {
        let (https, authority, path) = split_url(url)?;
        let (host, port) = split_authority(authority, https)?;
        (https == self.https && host.eq_ignore_ascii_case(&self.host) && port == self.port).then(
            || {
                if path.is_empty() {
                    "/".into()
                } else {
                    path.to_string()
                }
            },
        )
    }

    /// The path (and query) of a URL reference the server gave (the
    /// legacy transport's `endpoint` event): a path, or an absolute URL on
    /// this origin; `None` for anything else (another host must never get
    /// the credential).
    pub fn resolve(&self, reference: &str) -> Option<String> {
        let reference = reference.trim();
        if reference.chars().any(|c| c.is_control() || c == ' ') {
            return None;
        }
        if reference.starts_with("http://") || reference.starts_with("https://") {
            return self.same_origin(reference);
        }
        if reference.starts_with("//") || reference.starts_with('\\') {
            // Scheme-relative: another host.
            return None;
        }
        if reference.starts_with('/') {
            return Some(reference.to_string());
        }
        // A relative path: beside the url's own last segment.
        if reference.is_empty() || reference.contains(':') {
            return None;
        }
        let folder = self.path.rsplit_once('/').map_or("", |(folder, _)| folder);
        Some(format!("{folder}/{reference}"))
    }
}

/// `(https, authority, path and query)` of an `http(s)://` URL.
fn split_url(url: &str) -> Option<(bool, &str, &str)> {
    let (https, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        (None, None) => return None,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let path = path.split('#').next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some((https, authority, path))
}

/// Sends `request` to `target` on a fresh connection and waits (at most
/// `timeout`) for the response head; the body streams afterwards.
pub async fn send(
    target: &RemoteTarget,
    request: http::Request<Full<Bytes>>,
    timeout: Duration,
) -> Result<http::Response<Incoming>, UpstreamError> {
    let exchange = async {
        let tcp = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|error| {
                UpstreamError::Unreachable(format!("cannot connect: {}", error.kind()))
            })?;
        let _ = tcp.set_nodelay(true);
        match &target.tls {
            None => exchange(TokioIo::new(tcp), request).await,
            Some(config) => {
                let name = ServerName::try_from(target.host.clone())
                    .map_err(|_| UpstreamError::Unreachable("bad server name".into()))?;
                let tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
                    .connect(name, tcp)
                    .await
                    .map_err(|error| UpstreamError::Unreachable(format!("TLS: {error}")))?;
                exchange(TokioIo::new(tls), request).await
            }
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| UpstreamError::Timeout(timeout))?
}

async fn exchange<T>(
    io: TokioIo<T>,
    request: http::Request<Full<Bytes>>,
) -> Result<http::Response<Incoming>, UpstreamError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(256 * 1024)
        .handshake(io)
        .await
        .map_err(|error| UpstreamError::Unreachable(format!("handshake: {error}")))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "MCP server connection ended with an error");
        }
    });
    sender
        .send_request(request)
        .await
        .map_err(|error| UpstreamError::Unreachable(format!("request failed: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> RemoteTarget {
        let connection: ConnectionConfig =
            serde_saphyr::from_str(&format!("{{name: m, protocol: mcp, url: '{url}'}}")).unwrap();
        RemoteTarget::of(&connection, Path::new("/etc/airlock/airlock.yaml")).unwrap()
    }

    #[test]
    fn urls_and_endpoint_references() {
        let sse = target("http://127.0.0.1:3001/sse");
        assert_eq!(
            (sse.host.as_str(), sse.port, sse.path.as_str()),
            ("127.0.0.1", 3001, "/sse")
        );
        assert_eq!(
            sse.resolve("/message?sessionId=ab-1").as_deref(),
            Some("/message?sessionId=ab-1")
        );
        assert_eq!(
            sse.resolve("http://127.0.0.1:3001/message?s=1").as_deref(),
            Some("/message?s=1")
        );
        assert_eq!(
            sse.resolve("messages?s=1").as_deref(),
            Some("/messages?s=1")
        );
        for elsewhere in [
            "http://evil.example/message",
            "https://127.0.0.1:3001/message",
            "http://127.0.0.1:3002/message",
            "//evil.example/message",
            "javascript:alert(1)",
            "/a b",
            "",
        ] {
            assert_eq!(sse.resolve(elsewhere), None, "{elsewhere}");
        }
        let bare = target("https://mcp.example");
        assert_eq!((bare.port, bare.path.as_str()), (443, "/"));
        assert!(bare.tls.is_some());
        assert_eq!(bare.transport, McpTransport::Auto);
    }
}
