//! The stateless revision (2026-07-28) offered to agents in front of a
//! server that speaks only the handshake revisions: an agent's request
//! names its revision in `_meta` and carries no session; the gateway keeps
//! one handshake session with the server per identity and connection
//! (admitted, decided and recorded like any other session, started with an
//! `initialize` of the gateway's own that carries the client capabilities
//! and info from the request's `_meta`), relays each request through it,
//! and types the result (`resultType`, the listing's cache hint).
//! `server/discover` is answered from that session's `initialize` result.
//!
//! The kept session ends as any session does (idle timeout, kill switch,
//! grant expiry, the server going away); the next request starts another.
//! It lives in the gateway process that started it (see ARCHITECTURE.md,
//! sessions across replicas).

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use airlock_core::auth::Authenticated;

use crate::protocol::{stamp_stateless, STATELESS_VERSION, SUPPORTED_VERSIONS};
use crate::proxy::relay;
use crate::proxy::session::{ProxySession, StartFailure};
use crate::proxy::upstream::UpstreamError;
use crate::proxy::McpProxy;

const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";

/// The gateway's session for (`identity`, `connection`): the live one, or
/// a new one, initialized. Starting is serialized, so concurrent first
/// requests share one session.
pub async fn kept_session(
    proxy: &Arc<McpProxy>,
    authenticated: &Authenticated,
    connection: &str,
    peer: SocketAddr,
    tls: bool,
    params: &Map<String, Value>,
) -> Result<Arc<ProxySession>, StartFailure> {
    let key = (authenticated.identity.name.clone(), connection.to_string());
    let mut kept = proxy.kept.lock().await;
    if let Some(session) = kept.get(&key).and_then(|id| proxy.session(id)) {
        return Ok(session);
    }
    kept.retain(|_, id| proxy.session(id).is_some());
    let session = ProxySession::start(proxy, authenticated, connection, peer, tls).await?;
    let meta = params.get("_meta");
    let capabilities = meta
        .and_then(|meta| meta.get(META_CAPABILITIES))
        .filter(|value| value.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    let client_info = meta
        .and_then(|meta| meta.get(META_CLIENT_INFO))
        .filter(|value| value.is_object())
        .cloned()
        .unwrap_or_else(
            || json!({"name": "airlock-mcp-proxy", "version": env!("CARGO_PKG_VERSION")}),
        );
    let initialize_params = json!({
        "protocolVersion": SUPPORTED_VERSIONS[0],
        "capabilities": capabilities,
        "clientInfo": client_info,
    });
    let Value::Object(initialize_params) = initialize_params else {
        return Err(StartFailure::Upstream(UpstreamError::BadAnswer));
    };
    let mut message = Map::new();
    message.insert("jsonrpc".into(), json!("2.0"));
    message.insert("id".into(), json!(0));
    message.insert("method".into(), json!("initialize"));
    message.insert("params".into(), Value::Object(initialize_params.clone()));
    let request = relay::Request {
        id: &json!(0),
        method: "initialize",
        params: &initialize_params,
        message,
    };
    let answered = relay::request(proxy, &session, request).await;
    let Some(result) = answered.get("result") else {
        proxy
            .end(&session.id, "refused", Some("initialize failed".into()))
            .await;
        return Err(StartFailure::Upstream(UpstreamError::BadAnswer));
    };
    let _ = session.upstream_initialize.set(result.clone());
    let mut initialized = Map::new();
    initialized.insert("jsonrpc".into(), json!("2.0"));
    initialized.insert("method".into(), json!("notifications/initialized"));
    relay::notification(&session, "notifications/initialized", initialized).await;
    kept.insert(key, session.id.clone());
    Ok(session)
}

/// The `server/discover` answer: the stateless revision and the one the
/// gateway speaks with the server, the server's capabilities, info and
/// instructions; cached per authorization context only.
pub fn discover(id: &Value, session: &ProxySession) -> Value {
    let initialized = session
        .upstream_initialize
        .get()
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut versions = vec![json!(STATELESS_VERSION)];
    if let Some(version) = initialized.get("protocolVersion") {
        versions.push(version.clone());
    }
    let mut result = json!({
        "supportedVersions": versions,
        "capabilities": initialized.get("capabilities").cloned().unwrap_or_else(|| json!({})),
        "serverInfo": initialized.get("serverInfo").cloned().unwrap_or_else(|| json!({"name": "unknown", "version": "0"})),
        "resultType": "complete",
        "cacheScope": "private",
        "ttlMs": 0,
    });
    if let Some(instructions) = initialized.get("instructions") {
        result["instructions"] = instructions.clone();
    }
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// Types a result of `method` for the stateless revision (errors as they
/// are).
pub fn stamp(method: &str, answered: &mut Value) {
    if let Some(result) = answered.get_mut("result") {
        stamp_stateless(method, result);
    }
}
