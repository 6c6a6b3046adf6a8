//! What the web UI's server-side tests share: a real gateway state over
//! a SQLite store in a temporary folder, the UI's in-process router, and
//! requests through it as a browser would send them (cookies, forms).

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)] // each test file uses a part

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use std::sync::Arc;
use tower::ServiceExt;

use airlock_core::admin::IssueTokenRequest;
use airlock_core::config::GatewayConfig;
use airlock_core::GatewayState;
use airlock_store::prelude::*;
use airlock_store::{now_unix, NewReview, Store};
use airlock_web::Web;

pub const CONFIG: &str = "listen:
  admin: 127.0.0.1:0
  postgres: 127.0.0.1:0
connections:
  - name: pg-test
    protocol: postgres
    address: 127.0.0.1:1
    database: appdb
    credential: app
ui:
  admin_groups: [ops]
  auditor_groups: [audit]
";

pub struct Fixture {
    pub _dir: tempfile::TempDir,
    pub state: Arc<GatewayState>,
    pub web: Arc<Web>,
    pub router: Router,
}

pub fn fixture() -> Fixture {
    fixture_with(CONFIG)
}

/// [`fixture`] over another gateway config.
pub fn fixture_with(config: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (config, settings) = GatewayConfig::parse(config, "airlock.yaml").unwrap();
    let store: Arc<dyn StoreBackend> = Arc::new(Store::open(dir.path()).unwrap());
    let vault = airlock_store::vault::MasterKey::load(None, dir.path()).unwrap();
    let live = airlock_core::live_policy::bootstrap(&*store, None).unwrap();
    let state = Arc::new(
        GatewayState::new(
            config,
            settings,
            dir.path().join("airlock.yaml"),
            dir.path().to_path_buf(),
            store,
            vault,
            live,
            airlock_notify::Notifier::disabled(),
        )
        .unwrap(),
    );
    let web = Arc::new(Web::new(Arc::clone(&state)));
    let router = airlock_web::router_with(Arc::clone(&web));
    Fixture {
        _dir: dir,
        state,
        web,
        router,
    }
}

pub fn issue(
    state: &GatewayState,
    identity: &str,
    kind: &str,
    groups: &[&str],
) -> (String, String) {
    let issued = state
        .issue_token(&IssueTokenRequest {
            identity: identity.into(),
            kind: kind.into(),
            groups: groups.iter().map(|group| group.to_string()).collect(),
            connections: vec!["pg-test".into()],
            ttl: Some("1h".into()),
        })
        .unwrap();
    (issued.token, issued.id)
}

pub fn review(state: &GatewayState, id: &str, requester: &str, approvers: &[&str], mfa: bool) {
    state
        .store
        .create_or_find_review(&NewReview {
            id: id.into(),
            identity: requester.into(),
            connection: "pg-test".into(),
            statement: format!("delete from items where id = 1 /* {id} <script>x</script> */"),
            fingerprint: format!("print-{id}"),
            classification: serde_json::json!({"access": "write", "operations": ["delete"], "tables": ["items"], "complete": true}),
            rule: "deletes-need-review".into(),
            policy_version: 0,
            approvers: approvers.iter().map(|group| group.to_string()).collect(),
            min_approvals: 1,
            require_mfa: mfa,
            session_id: None,
            expires_at: now_unix() + 3600,
            kind: "command".into(),
            duration_seconds: None,
        })
        .unwrap();
}

pub fn status_of(state: &GatewayState, id: &str) -> String {
    state.store.review(id).unwrap().unwrap().status
}

/// Every stored event, once one of `kind` is there (journaled events are
/// indexed within milliseconds).
pub async fn all_events(state: &GatewayState, kind: &str) -> Vec<airlock_store::EventRecord> {
    let filter = airlock_store::EventFilter {
        limit: 10_000,
        ..Default::default()
    };
    for _ in 0..50 {
        let events = state.store.events(&filter).unwrap();
        if events.iter().any(|event| event.kind == kind) {
            return events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no {kind} event was stored");
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

pub async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

pub async fn get(router: &Router, path: &str, cookie: Option<&str>) -> Answer {
    let mut request = Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    send(router, request.body(Body::empty()).unwrap()).await
}

pub async fn post(
    router: &Router,
    path: &str,
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> Answer {
    let body: String = form
        .iter()
        .map(|(key, value)| format!("{key}={}", urlencode(value)))
        .collect::<Vec<_>>()
        .join("&");
    let mut request =
        Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    send(router, request.body(Body::from(body)).unwrap()).await
}

pub fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// The value of `name="csrf" value="…"` in a page.
pub fn form_csrf(body: &str) -> String {
    body.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no CSRF field in:\n{body}"))
        .to_string()
}

pub fn set_cookie(answer: &Answer, name: &str) -> Option<String> {
    answer
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

/// A sign-in through the form; the session cookie and the CSRF token of
/// its pages, or the refusing answer.
pub async fn sign_in(router: &Router, token: &str) -> Result<(String, String), Answer> {
    let form = get(router, "/ui/signin", None).await;
    assert_eq!(form.status, StatusCode::OK);
    let nonce_cookie = set_cookie(&form, "airlock_ui_signin").unwrap();
    let nonce_pair = nonce_cookie.split(';').next().unwrap().to_string();
    let nonce = form_csrf(&form.body);
    let answer = post(
        router,
        "/ui/signin",
        Some(&nonce_pair),
        &[("csrf", &nonce), ("token", token)],
    )
    .await;
    if answer.status != StatusCode::SEE_OTHER {
        return Err(answer);
    }
    let session = set_cookie(&answer, "airlock_ui").unwrap();
    let pair = session.split(';').next().unwrap().to_string();
    let page = get(router, "/ui/approvals", Some(&pair)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    Ok((pair, form_csrf(&page.body)))
}
