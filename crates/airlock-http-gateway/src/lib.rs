//! airlock's HTTP API gateway: the `protocol: http` connections on the
//! protocol-neutral core (`airlock-core`).
//!
//! `https://gw:18080/<connection>/<path>` is routed ([`route`]) to the
//! connection's `url` + `<path>`. The agent's `Authorization: Bearer`
//! token is checked by the core's login; each request is admitted as a
//! session of its own by the core's admission, becomes a `Command`
//! decided by the core's gate ([`request`]), is recorded before it is
//! forwarded ([`recording`]), goes upstream with the stored credential
//! injected and the client's own credentials removed ([`headers`],
//! [`upstream`]), and comes back with every echo of the credential
//! replaced ([`scrub`]) and masked under the decision's mask plan
//! ([`body`], [`json_mask`], [`relay`]). Every status and JSON error the
//! gateway sends itself is chosen in [`errors`].
//!
//! `protocol: kubernetes` connections share all of it; what differs
//! (the request-info command, impersonation, JSON-only upstream answers
//! under a mask plan, Secret values, `Status` refusals) is in
//! [`kubernetes`].
//!
//! Architecture invariants: this crate never decides whether a request
//! runs (it asks the gate); an upstream request is built only from an
//! `UpstreamLogin` (admission); the credential never reaches the client,
//! a log line or a record; a response under a mask plan that cannot be
//! masked is refused, never passed raw.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;

use airlock_core::duration::parse_duration;
use airlock_core::GatewayState;

pub mod body;
pub mod errors;
pub mod headers;
/// JSON masking lives in `airlock-mask` (the MCP proxy masks results too).
pub use airlock_mask::json as json_mask;
pub mod kubernetes;
pub mod pool;
pub mod recording;
pub mod relay;
pub mod request;
pub mod route;
pub mod scrub;
pub mod server;
pub mod upstream;

pub use server::run_http_listener;

/// The body type of every response the gateway sends.
pub type ClientBody = BoxBody<Bytes, std::io::Error>;

/// The HTTP gateway's state: the core's, and each connection's upstream.
pub struct HttpGateway {
    pub state: Arc<GatewayState>,
    pub targets: BTreeMap<String, upstream::UpstreamTarget>,
    pub upstream_timeout: Duration,
    pub max_masked_body_bytes: usize,
    pub max_header_bytes: usize,
    /// Idle keep-alive upstream connections, by connection and credential
    /// version.
    pub pool: pool::UpstreamPool,
    /// airlock's own MCP server, at `/mcp` (routed before connections).
    pub mcp: Arc<airlock_mcp::McpServer>,
    /// The MCP proxy, for `protocol: mcp` connections at
    /// `/<connection>/mcp`.
    pub mcp_proxy: Arc<airlock_mcp::proxy::McpProxy>,
}

impl HttpGateway {
    /// Builds every `protocol: http` connection's upstream (TLS material
    /// included): a problem stops start-up.
    pub fn new(state: Arc<GatewayState>) -> Result<Self, upstream::UpstreamError> {
        let targets = upstream::targets(&state.config, &state.config_path)?;
        let options = &state.config.http;
        let upstream_timeout =
            parse_duration(&options.upstream_timeout).unwrap_or(Duration::from_secs(30));
        let mcp_proxy = airlock_mcp::proxy::McpProxy::new(Arc::clone(&state), upstream_timeout)
            .map_err(|error| upstream::UpstreamError::Exchange(error.to_string()))?;
        let idle_timeout =
            parse_duration(&options.upstream_idle_timeout).unwrap_or(Duration::from_secs(90));
        Ok(Self {
            pool: pool::UpstreamPool::new(idle_timeout, options.upstream_max_idle),
            upstream_timeout,
            max_masked_body_bytes: options.max_masked_body_bytes,
            max_header_bytes: options.max_header_bytes,
            targets,
            mcp: Arc::new(airlock_mcp::McpServer::new(Arc::clone(&state))),
            mcp_proxy: Arc::new(mcp_proxy),
            state,
        })
    }
}
