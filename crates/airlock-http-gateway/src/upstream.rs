//! The upstream side: each `protocol: http` (and `kubernetes`) connection's target (scheme,
//! authority, base path, TLS), built once at start-up, and sending one
//! request to it (HTTP/1.1, TLS with the system roots, a `ca_file`, or no
//! verification only when the connection says `insecure_skip_verify`) over
//! a keep-alive connection from the [`pool`](crate::pool) of its
//! connection and credential version, or a new one.
//!
//! Retry rule (the only place a request is sent twice): a request that
//! failed on a *reused* connection (the upstream closed it while idle) is
//! sent once more on a new connection when hyper hands it back unsent, or
//! when its method is idempotent (RFC 9110 9.2.2) and it has no body, so
//! it can be rebuilt exactly; a request that may have reached the upstream
//! with a non-idempotent method (a POST) is never sent again. Upgrades
//! (Kubernetes streams) always get a new connection that never enters the
//! pool.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::net::TcpStream;

use airlock_core::config::{relative_to, GatewayConfig};
use airlock_core::http_config::{split_authority, InjectConfig};

use crate::headers::HeaderRules;
use crate::pool::{PoolKey, UpstreamPool, UpstreamSender};

/// Why a target could not be built or reached.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The connection's `url` does not parse (the config validated it, so
    /// this is internal).
    #[error("connection {connection:?}: url cannot be used: {reason}")]
    Url { connection: String, reason: String },
    /// TLS material could not be loaded.
    #[error("connection {connection:?}: TLS: {reason}")]
    Tls { connection: String, reason: String },
    /// Connecting, the TLS handshake or the exchange failed.
    #[error("{0}")]
    Exchange(String),
    /// No response head within `http.upstream_timeout`.
    #[error("the upstream did not answer within {0:?}")]
    Timeout(Duration),
}

/// Where one connection's requests go.
#[derive(Clone)]
pub struct UpstreamTarget {
    pub host: String,
    pub port: u16,
    /// `host[:port]` as the `Host` header says it.
    pub authority: String,
    /// The url's path, without trailing `/` (`""` for none).
    pub base_path: String,
    /// TLS towards the upstream (`https` urls).
    pub tls: Option<Arc<ClientConfig>>,
    pub inject: InjectConfig,
    pub header_rules: HeaderRules,
    /// `Some` for a `protocol: kubernetes` connection: whether to send
    /// `Impersonate-User`/`-Group` for the agent.
    pub kubernetes: Option<KubernetesTarget>,
}

/// What a Kubernetes connection adds to its target.
#[derive(Debug, Clone)]
pub struct KubernetesTarget {
    pub impersonate: bool,
    /// The credential is a client certificate, presented with mutual TLS.
    pub client_certificate: Option<ClientCertificateTls>,
}

/// How a client-certificate connection builds its TLS: the upstream's
/// roots as configured, the certificate from the credential; one config
/// per credential version, kept until the next rotation.
#[derive(Debug, Clone)]
pub struct ClientCertificateTls {
    ca_file: Option<std::path::PathBuf>,
    insecure: bool,
    cached: Arc<std::sync::Mutex<Option<VersionedConfig>>>,
}

/// A TLS config and the credential version it presents.
type VersionedConfig = (i64, Arc<ClientConfig>);

impl ClientCertificateTls {
    /// The TLS config presenting the credential `bundle` of `version`.
    pub fn config(&self, bundle: &str, version: i64) -> Result<Arc<ClientConfig>, String> {
        if let Ok(cached) = self.cached.lock() {
            if let Some((at, config)) = cached.as_ref() {
                if *at == version {
                    return Ok(Arc::clone(config));
                }
            }
        }
        let identity = airlock_core::tls::client_identity(bundle)
            .map_err(|error| format!("the client certificate credential: {error}"))?;
        let config = client_tls(self.ca_file.as_deref(), self.insecure, Some(identity))?;
        if let Ok(mut cached) = self.cached.lock() {
            *cached = Some((version, Arc::clone(&config)));
        }
        Ok(config)
    }
}

/// Every `protocol: http` connection's target, by name.
pub fn targets(
    config: &GatewayConfig,
    config_path: &Path,
) -> Result<BTreeMap<String, UpstreamTarget>, UpstreamError> {
    let mut out = BTreeMap::new();
    for connection in config
        .connections
        .iter()
        .filter(|c| airlock_core::http_config::over_http(&c.protocol))
    {
        let kubernetes = (connection.protocol == "kubernetes").then(|| KubernetesTarget {
            impersonate: connection.impersonate,
            client_certificate: connection.client_certificate.then(|| ClientCertificateTls {
                ca_file: connection
                    .ca_file
                    .as_ref()
                    .map(|file| relative_to(config_path, file)),
                insecure: connection.insecure_skip_verify,
                cached: Arc::default(),
            }),
        });
        let name = connection.name.clone();
        let url = connection.url.as_deref().unwrap_or("");
        let (https, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
            (Some(rest), _) => (true, rest),
            (None, Some(rest)) => (false, rest),
            (None, None) => {
                return Err(UpstreamError::Url {
                    connection: name,
                    reason: "not http(s)".into(),
                })
            }
        };
        let (authority, base_path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (host, port) = split_authority(authority, https).ok_or_else(|| UpstreamError::Url {
            connection: name.clone(),
            reason: "bad host or port".into(),
        })?;
        let tls = if https {
            let ca = connection
                .ca_file
                .as_ref()
                .map(|file| relative_to(config_path, file));
            Some(
                client_tls(ca.as_deref(), connection.insecure_skip_verify, None).map_err(
                    |reason| UpstreamError::Tls {
                        connection: name.clone(),
                        reason,
                    },
                )?,
            )
        } else {
            None
        };
        let target = UpstreamTarget {
            host,
            port,
            authority: authority.to_string(),
            base_path: base_path.trim_end_matches('/').to_string(),
            tls,
            // A Kubernetes connection's service-account token always goes
            // as a bearer token.
            inject: match &kubernetes {
                Some(_) => InjectConfig {
                    bearer: true,
                    ..InjectConfig::default()
                },
                None => connection.inject.clone().unwrap_or_default(),
            },
            header_rules: HeaderRules {
                forward_cookies: connection.forward_cookies,
                strip: connection
                    .strip_headers
                    .iter()
                    .map(|header| header.to_ascii_lowercase())
                    .collect(),
            },
            kubernetes,
        };
        out.insert(name, target);
    }
    Ok(out)
}

fn client_tls(
    ca_file: Option<&Path>,
    insecure: bool,
    identity: Option<ClientIdentity>,
) -> Result<Arc<ClientConfig>, String> {
    airlock_core::tls::https_client_config_with(ca_file, insecure, identity)
        .map_err(|error| error.to_string())
}

/// A client certificate chain and its key.
type ClientIdentity = (
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
);

/// The body type sent upstream: the client's body as it streams in, or
/// one the gateway read (a request held for review).
pub type UpstreamBody = BoxBody<Bytes, hyper::Error>;

/// Sends `request` to `target` on an idle pooled connection of `key` (or
/// a new one) and waits (at most `timeout`, a retry included) for the
/// response head; the body streams afterwards, and the connection returns
/// to the pool once it has been read.
pub async fn send(
    pool: &UpstreamPool,
    key: PoolKey,
    target: &UpstreamTarget,
    request: http::Request<UpstreamBody>,
    timeout: Duration,
) -> Result<http::Response<Incoming>, UpstreamError> {
    let exchange = async {
        let mut request = request;
        if let Some(mut sender) = pool.take(&key) {
            let again = rebuildable(&request);
            match sender.try_send_request(request).await {
                Ok(response) => {
                    pool.keep_when_ready(key, sender);
                    return Ok(response);
                }
                Err(mut failed) => {
                    tracing::debug!(error = %failed.error(), "a pooled upstream connection failed");
                    request = match (failed.take_message(), again) {
                        // Never written: sending it now is its first time.
                        (Some(unsent), _) => unsent,
                        (None, Some(again)) => again,
                        (None, None) => {
                            return Err(UpstreamError::Exchange(format!(
                                "request failed: {}",
                                failed.into_error()
                            )))
                        }
                    };
                }
            }
        }
        let mut sender = open(pool, target, false).await?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| UpstreamError::Exchange(format!("request failed: {error}")))?;
        pool.keep_when_ready(key, sender);
        Ok(response)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| UpstreamError::Timeout(timeout))?
}

/// True for the methods RFC 9110 (9.2.2) calls idempotent.
fn idempotent(method: &http::Method) -> bool {
    use http::Method;
    [
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
        Method::TRACE,
        Method::PUT,
        Method::DELETE,
    ]
    .contains(method)
}

/// A copy of `request` to send again after a reused connection failed:
/// only for an idempotent method without a body (a streamed body cannot be
/// read twice).
fn rebuildable(request: &http::Request<UpstreamBody>) -> Option<http::Request<UpstreamBody>> {
    if !idempotent(request.method()) || !http_body::Body::is_end_stream(request.body()) {
        return None;
    }
    let mut again = http::Request::new(empty_body());
    *again.method_mut() = request.method().clone();
    *again.uri_mut() = request.uri().clone();
    *again.version_mut() = request.version();
    *again.headers_mut() = request.headers().clone();
    Some(again)
}

fn empty_body() -> UpstreamBody {
    use http_body_util::BodyExt;
    http_body_util::Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

/// [`send`] for an upgrade request (a Kubernetes stream): always a new
/// connection, usable after a `101` for `hyper::upgrade::on`, never pooled.
pub async fn send_upgrade(
    pool: &UpstreamPool,
    target: &UpstreamTarget,
    request: http::Request<UpstreamBody>,
    timeout: Duration,
) -> Result<http::Response<Incoming>, UpstreamError> {
    let exchange = async {
        let mut sender = open(pool, target, true).await?;
        sender
            .send_request(request)
            .await
            .map_err(|error| UpstreamError::Exchange(format!("request failed: {error}")))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| UpstreamError::Timeout(timeout))?
}

/// Opens a new connection to `target` (TCP, TLS when the target has it).
async fn open(
    pool: &UpstreamPool,
    target: &UpstreamTarget,
    upgrades: bool,
) -> Result<UpstreamSender, UpstreamError> {
    let tcp = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|error| UpstreamError::Exchange(format!("cannot connect: {}", error.kind())))?;
    let _ = tcp.set_nodelay(true);
    let sender = match &target.tls {
        None => handshake(TokioIo::new(tcp), upgrades).await?,
        Some(config) => {
            let name = ServerName::try_from(target.host.clone())
                .map_err(|_| UpstreamError::Exchange("bad server name".into()))?;
            let tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
                .connect(name, tcp)
                .await
                .map_err(|error| UpstreamError::Exchange(format!("TLS: {error}")))?;
            handshake(TokioIo::new(tls), upgrades).await?
        }
    };
    pool.note_opened();
    Ok(sender)
}

async fn handshake<T>(io: TokioIo<T>, upgrades: bool) -> Result<UpstreamSender, UpstreamError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(256 * 1024)
        .handshake(io)
        .await
        .map_err(|error| UpstreamError::Exchange(format!("handshake: {error}")))?;
    tokio::spawn(async move {
        let ended = if upgrades {
            connection.with_upgrades().await
        } else {
            connection.await
        };
        if let Err(error) = ended {
            tracing::debug!(%error, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}
