//! The admin REST API.
//!
//! Thin HTTP glue over [`airlock_core::admin`]: every route under
//! `/api/v1` requires `Authorization: Bearer <token>`: the admin token, or
//! for the personal routes (reviews, MFA, access) a person's or agent's own
//! token; `/healthz`, `/readyz` and `/metrics` are open. Errors are turned into JSON
//! `{"error": …}` with a status code in exactly one place ([`ApiError`]). No
//! route returns a stored secret: a token is shown only in the response that
//! issued it.
//!
//! Bearer tokens are checked once per request, in [`authenticate`], which
//! also counts wrong tokens per source address (the gateway's
//! [`airlock_core::auth::SprayGuard`], with the PostgreSQL listener's
//! settings): a locked-out source gets `429 Too Many Requests` with
//! `Retry-After` for every `/api/v1` route, whatever token it presents, and
//! the lockout is recorded as an `auth.lockout` event.

use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use airlock_core::admin::{AddConnectionRequest, AdminError, IssueTokenRequest};
use airlock_core::audit::{parse_since, SessionFilter};
use airlock_core::GatewayState;

type AppState = Arc<GatewayState>;

/// An error as the API reports it.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> Self {
        let status = match &error {
            AdminError::Invalid(_) => StatusCode::BAD_REQUEST,
            AdminError::NotFound(_) => StatusCode::NOT_FOUND,
            AdminError::Conflict(_) => StatusCode::CONFLICT,
            AdminError::Forbidden(_) => StatusCode::FORBIDDEN,
            AdminError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        Self(status, error.to_string())
    }
}

/// Runs a blocking admin operation off the async workers.
async fn blocking<T, F>(state: &AppState, operation: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&GatewayState) -> Result<T, AdminError> + Send + 'static,
{
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || operation(&state))
        .await
        .map_err(|_| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into()))?
        .map_err(ApiError::from)
}

/// The admin API router.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/credentials", get(list_credentials).post(set_credential))
        .route("/credentials/:name", delete(delete_credential))
        .route("/credentials/:name/rotate", post(rotate_credential))
        .route("/tokens", get(list_tokens).post(issue_token))
        .route("/tokens/:id", delete(revoke_token))
        .route("/connections", get(list_connections).post(add_connection))
        .route("/connections/:name", delete(remove_connection))
        .route("/sessions/live", get(live_sessions))
        .route("/sessions", get(list_sessions))
        .route("/sessions/:id", get(session_detail))
        .route("/audit/verify", get(verify_audit))
        .route("/audit/events", get(export_events))
        .route("/audit/prune", post(prune_audit))
        .route("/policy", get(live_policy).post(apply_policy))
        .route("/policy/versions", get(policy_history))
        .route("/policy/versions/:version", get(policy_version))
        .route("/policy/rollback", post(rollback_policy))
        .route("/access/grants/:id", delete(revoke_grant))
        .route("/auth/unlock", post(unlock))
        .route("/mcp/tools", get(mcp_tool_pins))
        .route("/mcp/tools/approve", post(approve_mcp_tool))
        .route_layer(middleware::from_fn(require_admin))
        // Routes for people and agents with their own tokens (approvals are
        // personal: the admin token cannot approve).
        .route("/reviews", get(list_reviews))
        .route("/reviews/:id", get(show_review))
        .route("/reviews/:id/approve", post(approve_review))
        .route("/reviews/:id/deny", post(deny_review))
        .route("/mfa/enroll", post(enroll_mfa))
        .route("/access", get(list_access))
        .route("/access/requests", post(request_access))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            authenticate,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/oauth/token", post(token_exchange))
        .nest("/api/v1", api)
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "no such route".into())
}

/// The bearer token of a request, trimmed; empty when there is none.
fn bearer(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default()
        .to_string()
}

/// The spray guard's identity key for the API: a bearer token claims no
/// identity, so every wrong token from one source counts together.
const API_IDENTITY: &str = "";

/// Authenticates the bearer token of every `/api/v1` request once: refuses
/// a locked-out source with 429, counts a wrong token against its source,
/// and puts the [`Caller`] (when the token is valid) in the request's
/// extensions for [`require_admin`] and the personal routes. A request
/// without a token is not counted (it guessed nothing).
async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let source = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
    if let Err(locked) = state.api_guard.check(source, API_IDENTITY) {
        return too_many_failures(locked.remaining);
    }
    // Wrong tokens through every replica sharing the store count together.
    if let Some(remaining) = state.shared_api_lockout(source).await {
        return too_many_failures(remaining);
    }
    let token = bearer(request.headers());
    if token.is_empty() {
        return next.run(request).await;
    }
    match resolve_caller(&state, token).await {
        Ok(Some(caller)) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Ok(None) => {
            record_api_failure(&state, source).await;
            next.run(request).await
        }
        Err(error) => error.into_response(),
    }
}

fn too_many_failures(remaining: std::time::Duration) -> Response {
    let seconds = remaining.as_secs().max(1);
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, seconds.to_string())],
        Json(json!({
            "error": format!("too many failed authentication attempts from this address; try again in {seconds} s")
        })),
    )
        .into_response()
}

/// Counts a wrong bearer token and records it (and a lockout it causes).
async fn record_api_failure(state: &AppState, source: IpAddr) {
    let outcome = airlock_core::login::merge_tallies(
        state.api_guard.record_failure(source, API_IDENTITY),
        state.record_shared_api_failure(source).await,
    );
    tracing::warn!(client = %source, source_failures = outcome.source_failures, "admin API authentication failed");
    let failed = airlock_core::events::ApiAuthFailed {
        client_address: source.to_string(),
        protocol: "admin_api",
        reason: "unknown_token",
        source_failures: outcome.source_failures,
    };
    let mut events = vec![airlock_core::events::record(None, None, &failed)];
    state
        .metrics
        .auth_failed("admin_api", "unknown_token", API_IDENTITY);
    if outcome.locked_now.is_some() {
        state.metrics.locked_out("admin_api", "source");
        tracing::warn!(client = %source, "admin API source locked out after repeated authentication failures");
        let locked = airlock_core::events::LockedOut {
            client_address: source.to_string(),
            lockout_seconds: state.api_guard.lockout().as_secs(),
            protocol: "admin_api",
            scope: "source",
        };
        events.push(airlock_core::events::record(None, None, &locked));
    }
    if let Err(error) = state.recorder.record(events).await {
        tracing::error!(%error, "could not record an admin API authentication failure");
    }
}

async fn require_admin(request: Request, next: Next) -> Response {
    if !matches!(request.extensions().get::<Caller>(), Some(Caller::Admin)) {
        return ApiError(
            StatusCode::UNAUTHORIZED,
            "a valid admin token is required (Authorization: Bearer …; the CLI reads AIRLOCK_ADMIN_TOKEN)".into(),
        )
        .into_response();
    }
    next.run(request).await
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

/// Ready when the store answers, recording admits commands and a policy
/// is loaded: a gateway whose audit index fails, or that has no policy,
/// refuses every command, so a load balancer should send clients elsewhere.
async fn readyz(State(state): State<AppState>) -> Response {
    let store = Arc::clone(&state.store);
    let ready = tokio::task::spawn_blocking(move || store.ping()).await;
    let not_ready = |reason: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "reason": reason})),
        )
            .into_response()
    };
    if !matches!(ready, Ok(Ok(()))) {
        return not_ready("the store does not answer".into());
    }
    if let Some(problem) = state.recorder.problem() {
        return not_ready(format!("recording: {problem}"));
    }
    // Without a policy every command is refused: send clients elsewhere
    // until one is applied.
    if state.policy.current().policy.is_none() {
        return not_ready("no policy is loaded (airlock policy apply FILE)".into());
    }
    Json(json!({
        "status": "ready",
        "sessions": state.sessions.len(),
        "audit_index_lag": state.recorder.index_lag(),
        "audit_journal_syncs": state.recorder.journal_syncs(),
        "audit_timed_journal_syncs": state.recorder.timed_journal_syncs(),
        "audit_led_journal_syncs": state.recorder.led_journal_syncs(),
        "audit_sync": state.recorder.mode().name(),
    }))
    .into_response()
}

/// `GET /metrics`: every family in the Prometheus text format, or in
/// OpenMetrics when `Accept` asks for `application/openmetrics-text`.
/// Open like `/healthz` (scrapers carry no token); it holds no secret,
/// and identities only under `metrics.identity_labels: true`.
async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if !state.config.metrics.enabled {
        let message = "metrics are off (metrics.enabled: false)";
        return ApiError(StatusCode::NOT_FOUND, message.into()).into_response();
    }
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("application/openmetrics-text"));
    let scraped = tokio::task::spawn_blocking(move || {
        let values = state.scrape_values();
        if openmetrics {
            state.metrics.encode_openmetrics(&values)
        } else {
            state.metrics.encode_prometheus(&values)
        }
    })
    .await;
    let Ok(body) = scraped else {
        return ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
            .into_response();
    };
    let content_type = if openmetrics {
        airlock_metrics::OPENMETRICS_CONTENT_TYPE
    } else {
        airlock_metrics::PROMETHEUS_CONTENT_TYPE
    };
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetCredential {
    name: String,
    username: String,
    password: String,
}

async fn set_credential(
    State(state): State<AppState>,
    Json(body): Json<SetCredential>,
) -> Result<Response, ApiError> {
    let info = blocking(&state, move |state| {
        state.set_credential(&body.name, &body.username, &body.password)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateCredential {
    password: String,
}

async fn rotate_credential(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Json(body): Json<RotateCredential>,
) -> Result<Response, ApiError> {
    let info = blocking(&state, move |state| {
        state.rotate_credential(&name, &body.password)
    })
    .await?;
    Ok(Json(info).into_response())
}

async fn delete_credential(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let outcome = blocking(&state, move |state| state.delete_credential(&name)).await?;
    Ok(Json(outcome).into_response())
}

async fn list_credentials(State(state): State<AppState>) -> Result<Response, ApiError> {
    let list = blocking(&state, |state| state.list_credentials()).await?;
    Ok(Json(list).into_response())
}

async fn issue_token(
    State(state): State<AppState>,
    Json(body): Json<IssueTokenRequest>,
) -> Result<Response, ApiError> {
    let issued = blocking(&state, move |state| state.issue_token(&body)).await?;
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

async fn list_tokens(State(state): State<AppState>) -> Result<Response, ApiError> {
    let list = blocking(&state, |state| state.list_tokens()).await?;
    Ok(Json(list).into_response())
}

async fn revoke_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (revoked, sessions_closed) = blocking(&state, move |state| state.revoke_token(&id)).await?;
    Ok(Json(json!({"revoked": revoked, "sessions_closed": sessions_closed})).into_response())
}

async fn add_connection(
    State(state): State<AppState>,
    Json(body): Json<AddConnectionRequest>,
) -> Result<Response, ApiError> {
    let info = blocking(&state, move |state| state.add_connection(&body)).await?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

async fn remove_connection(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let outcome = blocking(&state, move |state| state.remove_connection(&name)).await?;
    Ok(Json(outcome).into_response())
}

async fn list_connections(State(state): State<AppState>) -> Result<Response, ApiError> {
    let list = blocking(&state, |state| state.list_connections()).await?;
    Ok(Json(list).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct McpToolsQuery {
    connection: String,
}

/// The pinned tool definitions of an MCP connection.
async fn mcp_tool_pins(
    State(state): State<AppState>,
    Query(query): Query<McpToolsQuery>,
) -> Result<Response, ApiError> {
    let pins = blocking(&state, move |state| state.mcp_tool_pins(&query.connection)).await?;
    Ok(Json(pins).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveMcpTool {
    connection: String,
    tool: String,
    fingerprint: Option<String>,
}

/// Approves a changed MCP tool definition.
async fn approve_mcp_tool(
    State(state): State<AppState>,
    Json(request): Json<ApproveMcpTool>,
) -> Result<Response, ApiError> {
    let approved = blocking(&state, move |state| {
        state.approve_mcp_tool(
            &request.connection,
            &request.tool,
            request.fingerprint.as_deref(),
        )
    })
    .await?;
    Ok(Json(approved).into_response())
}

async fn live_sessions(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!(state.sessions.list()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionQuery {
    identity: Option<String>,
    connection: Option<String>,
    since: Option<String>,
    limit: Option<i64>,
}

fn since(text: Option<&str>) -> Result<Option<i64>, ApiError> {
    text.map(parse_since)
        .transpose()
        .map_err(|error| ApiError(StatusCode::BAD_REQUEST, error))
}

async fn list_sessions(
    State(state): State<AppState>,
    Query(query): Query<SessionQuery>,
) -> Result<Response, ApiError> {
    let filter = SessionFilter {
        identity: query.identity,
        connection: query.connection,
        since_micros: since(query.since.as_deref())?,
        limit: query.limit.unwrap_or(100),
    };
    let list = blocking(&state, move |state| state.list_sessions(&filter)).await?;
    Ok(Json(list).into_response())
}

async fn session_detail(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let detail = blocking(&state, move |state| state.session_detail(&id)).await?;
    Ok(Json(detail).into_response())
}

async fn verify_audit(State(state): State<AppState>) -> Result<Response, ApiError> {
    let report = blocking(&state, |state| state.verify_audit()).await?;
    Ok(Json(report).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    since: Option<String>,
    after_id: Option<i64>,
    limit: Option<i64>,
}

async fn export_events(
    State(state): State<AppState>,
    Query(query): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let since_micros = since(query.since.as_deref())?;
    let after_id = query.after_id.unwrap_or(0);
    let limit = query.limit.unwrap_or(1000);
    let events = blocking(&state, move |state| {
        state.export_events(since_micros, after_id, limit)
    })
    .await?;
    Ok(Json(events).into_response())
}

async fn prune_audit(State(state): State<AppState>) -> Result<Response, ApiError> {
    let report = blocking(&state, |state| state.prune_audit()).await?;
    Ok(Json(report).into_response())
}

async fn live_policy(State(state): State<AppState>) -> Result<Response, ApiError> {
    let record = blocking(&state, |state| Ok(state.store.live_policy()?)).await?;
    match record {
        Some(record) => Ok(Json(record).into_response()),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            "no policy has been applied".into(),
        )),
    }
}

async fn policy_history(State(state): State<AppState>) -> Result<Response, ApiError> {
    let list = blocking(&state, |state| Ok(state.store.policy_versions()?)).await?;
    Ok(Json(list).into_response())
}

async fn policy_version(
    State(state): State<AppState>,
    Path(version): Path<i64>,
) -> Result<Response, ApiError> {
    let record = blocking(&state, move |state| {
        Ok(state.store.policy_version(version)?)
    })
    .await?;
    match record {
        Some(record) => Ok(Json(record).into_response()),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("policy version {version} not found"),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApplyPolicy {
    text: String,
    comment: Option<String>,
}

async fn apply_policy(
    State(state): State<AppState>,
    Json(body): Json<ApplyPolicy>,
) -> Result<Response, ApiError> {
    let applied = blocking(&state, move |state| {
        state.apply_policy(&body.text, body.comment.as_deref(), "apply")
    })
    .await?;
    Ok((StatusCode::CREATED, Json(applied)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackPolicy {
    version: i64,
}

async fn rollback_policy(
    State(state): State<AppState>,
    Json(body): Json<RollbackPolicy>,
) -> Result<Response, ApiError> {
    let applied = blocking(&state, move |state| state.rollback_policy(body.version)).await?;
    Ok((StatusCode::CREATED, Json(applied)).into_response())
}

/// RFC 8693 token exchange request (form-encoded).
#[derive(Deserialize)]
struct TokenExchange {
    grant_type: String,
    subject_token: String,
    subject_token_type: String,
    /// The connection the airlock token is for (`resource` or `audience`).
    resource: Option<String>,
    audience: Option<String>,
    /// Requested lifetime (`15m`); capped by policy and the subject token.
    ttl: Option<String>,
}

fn oauth_error(status: StatusCode, error: &str, description: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description.into()})),
    )
        .into_response()
}

async fn token_exchange(
    State(state): State<AppState>,
    axum::Form(request): axum::Form<TokenExchange>,
) -> Response {
    if request.grant_type != "urn:ietf:params:oauth:grant-type:token-exchange" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only token exchange is supported",
        );
    }
    if !matches!(
        request.subject_token_type.as_str(),
        "urn:ietf:params:oauth:token-type:jwt"
            | "urn:ietf:params:oauth:token-type:access_token"
            | "urn:ietf:params:oauth:token-type:id_token"
    ) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "subject_token_type must be a JWT",
        );
    }
    let Some(connection) = request.resource.or(request.audience) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_target",
            "name the connection in `resource` or `audience`",
        );
    };
    let Some(validator) = &state.oidc else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "no identity provider is configured",
        );
    };
    let validated = match validator.validate(&request.subject_token).await {
        Ok(validated) => validated,
        Err(error) => {
            tracing::info!(%error, "token exchange refused");
            let status = if error.is_provider_failure() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::BAD_REQUEST
            };
            return oauth_error(status, "invalid_grant", error.to_string());
        }
    };
    let identity = validated.identity.clone();
    let result = blocking(&state, move |state| {
        state.exchange_token(&identity, &connection, request.ttl.as_deref())
    })
    .await;
    match result {
        Ok(issued) => Json(json!({
            "access_token": issued.token,
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "token_type": "Bearer",
            "expires_in": (issued.expires_at - airlock_store::now_unix()).max(0),
            "airlock_token_id": issued.id,
            "scope": issued.connections.join(" "),
        }))
        .into_response(),
        Err(ApiError(status, message)) => oauth_error(
            if status == StatusCode::BAD_REQUEST {
                StatusCode::BAD_REQUEST
            } else {
                status
            },
            "invalid_target",
            message,
        ),
    }
}

/// Who is calling, as [`authenticate`] found it.
#[derive(Clone)]
enum Caller {
    Admin,
    Person(airlock_types::Identity),
}

impl Caller {
    /// The identity to limit what is shown to: `None` for the admin, who
    /// sees everything.
    fn person(self) -> Option<airlock_types::Identity> {
        match self {
            Caller::Admin => None,
            Caller::Person(identity) => Some(identity),
        }
    }
}

/// Resolves a bearer token: the admin token, an airlock token (not revoked,
/// not expired; any connection scope) or an OIDC token. `None` when it is
/// none of them; an error when the store or the provider cannot tell.
async fn resolve_caller(state: &AppState, token: String) -> Result<Option<Caller>, ApiError> {
    if let (Some(validator), true) = (
        &state.oidc,
        airlock_oidc::OidcValidator::looks_like_jwt(&token),
    ) {
        return match validator.validate(&token).await {
            Ok(validated) => Ok(Some(Caller::Person(validated.identity))),
            // The provider could not vouch either way: not a wrong token.
            Err(error) if error.is_provider_failure() => Err(ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                "the identity provider cannot be reached to check the token".into(),
            )),
            Err(_) => Ok(None),
        };
    }
    blocking(state, move |state| {
        if state.admin_token_valid(&token) {
            return Ok(Some(Caller::Admin));
        }
        Ok(state.identity_for_token(&token)?.map(Caller::Person))
    })
    .await
}

/// The caller of a personal route: the admin token or a valid own token.
fn caller(request_caller: Option<axum::Extension<Caller>>) -> Result<Caller, ApiError> {
    request_caller
        .map(|axum::Extension(caller)| caller)
        .ok_or_else(|| {
            ApiError(
                StatusCode::UNAUTHORIZED,
                "a valid token is required (Authorization: Bearer …; the CLI reads AIRLOCK_TOKEN)"
                    .into(),
            )
        })
}

fn person(caller: Caller) -> Result<airlock_types::Identity, ApiError> {
    match caller {
        Caller::Person(identity) => Ok(identity),
        Caller::Admin => Err(ApiError(
            StatusCode::FORBIDDEN,
            "this needs your own identity token (AIRLOCK_TOKEN or `airlock login`), not the admin token; an admin issues one with `airlock token issue --identity NAME --kind human --group GROUP`".into(),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewQuery {
    status: Option<String>,
    limit: Option<i64>,
}

async fn list_reviews(
    State(state): State<AppState>,
    request_caller: Option<axum::Extension<Caller>>,
    Query(query): Query<ReviewQuery>,
) -> Result<Response, ApiError> {
    let viewer = caller(request_caller)?.person();
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let list = blocking(&state, move |state| {
        state.list_reviews(viewer.as_ref(), query.status.as_deref(), limit)
    })
    .await?;
    Ok(Json(list).into_response())
}

async fn show_review(
    State(state): State<AppState>,
    request_caller: Option<axum::Extension<Caller>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let viewer = caller(request_caller)?.person();
    let review = blocking(&state, move |state| state.show_review(viewer.as_ref(), &id)).await?;
    Ok(Json(review).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Decide {
    comment: Option<String>,
    reason: Option<String>,
    totp: Option<String>,
}

async fn approve_review(
    State(state): State<AppState>,
    request_caller: Option<axum::Extension<Caller>>,
    Path(id): Path<String>,
    Json(body): Json<Decide>,
) -> Result<Response, ApiError> {
    let approver = person(caller(request_caller)?)?;
    let outcome = blocking(&state, move |state| {
        state.decide_review(
            &approver,
            &id,
            true,
            body.comment.as_deref(),
            body.totp.as_deref(),
        )
    })
    .await?;
    Ok(Json(outcome).into_response())
}

async fn deny_review(
    State(state): State<AppState>,
    request_caller: Option<axum::Extension<Caller>>,
    Path(id): Path<String>,
    Json(body): Json<Decide>,
) -> Result<Response, ApiError> {
    let approver = person(caller(request_caller)?)?;
    let reason = body.reason.or(body.comment);
    if reason.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "a denial needs a reason".into(),
        ));
    }
    let outcome = blocking(&state, move |state| {
        state.decide_review(
            &approver,
            &id,
            false,
            reason.as_deref(),
            body.totp.as_deref(),
        )
    })
    .await?;
    Ok(Json(outcome).into_response())
}

async fn enroll_mfa(
    State(state): State<AppState>,
    request_caller: Option<axum::Extension<Caller>>,
) -> Result<Response, ApiError> {
    let identity = person(caller(request_caller)?)?;
    let enrolled = blocking(&state, move |state| state.enroll_mfa(&identity)).await?;
    Ok((StatusCode::CREATED, Json(enrolled)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessRequest {
    connection: String,
    duration: String,
    reason: String,
}

async fn request_access(
    State(state): State<AppState>,
    request_caller: Option<axum::Extension<Caller>>,
    Json(body): Json<AccessRequest>,
) -> Result<Response, ApiError> {
    let requester = person(caller(request_caller)?)?;
    let outcome = blocking(&state, move |state| {
        state.request_access(&requester, &body.connection, &body.duration, &body.reason)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(outcome)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessQuery {
    all: Option<bool>,
}

async fn list_access(
    State(state): State<AppState>,
    request_caller: Option<axum::Extension<Caller>>,
    Query(query): Query<AccessQuery>,
) -> Result<Response, ApiError> {
    let viewer = caller(request_caller)?.person();
    let active_only = !query.all.unwrap_or(false);
    let listing = blocking(&state, move |state| {
        state.list_access(viewer.as_ref(), active_only)
    })
    .await?;
    Ok(Json(listing).into_response())
}

async fn revoke_grant(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let outcome = blocking(&state, move |state| state.revoke_grant(&id)).await?;
    Ok(Json(outcome).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Unlock {
    source: Option<String>,
    identity: Option<String>,
}

async fn unlock(
    State(state): State<AppState>,
    Json(body): Json<Unlock>,
) -> Result<Response, ApiError> {
    let outcome = blocking(&state, move |state| {
        state.unlock_authentication(body.source.as_deref(), body.identity.as_deref())
    })
    .await?;
    Ok(Json(outcome).into_response())
}
