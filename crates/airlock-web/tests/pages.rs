//! The pages beyond the queue, through the in-process router over a real
//! gateway state: the explain playground (its verdict is the gate's own),
//! policy rollback (admins, CSRF, recorded, a new version), a session's
//! JSON-lines export and terminal replay, command counts of live sessions,
//! access grants, tokens (issued once, revoked), connections and
//! credential metadata, and access requests listed apart from held
//! commands. Every page is read as an admin and searched for every secret
//! the gateway holds: none may appear.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{header, StatusCode};
use serde_json::{json, Value};

use airlock_core::gate::{Gate, Limits};
use airlock_core::registry::SessionSummary;
use airlock_store::{now_unix, NewEvent, NewReview};
use airlock_types::{AuthMethod, ConnectionInfo, Identity, IdentityKind, Protocol};
use common::*;

const POLICY_V1: &str = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
";

const POLICY_V2: &str = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: no-drops
    match: {operations: [drop]}
    action: deny
    message: dropping is not allowed here
  - name: deletes-need-review
    match: {operations: [delete], identity: {kind: [agent]}}
    action: review
    approvers: dba
    require_mfa: true
";

fn event(kind: &str, session: &str, data: Value) -> NewEvent {
    NewEvent {
        kind: kind.into(),
        session_id: Some(session.into()),
        identity: Some("agent-7".into()),
        data: data.into(),
    }
}

fn session_start(session: &str) -> NewEvent {
    event(
        "session.start",
        session,
        json!({"connection": "pg-test", "client_address": "127.0.0.1:5000", "tls": false,
               "token_id": "tok_x", "protocol": "kubernetes", "groups": [], "identity_kind": "agent",
               "credential_version": 1, "application_name": null}),
    )
}

/// The verdict the page shows in its decision heading.
fn page_verdict(body: &str) -> String {
    body.split("Decision: <span class=\"verdict ")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no decision in:\n{body}"))
        .to_string()
}

#[tokio::test]
async fn the_explain_playground_shows_the_gates_own_decision() {
    let fixture = fixture();
    let router = &fixture.router;
    let state = &fixture.state;
    state.apply_policy(POLICY_V2, None, "apply").unwrap();
    let (alice, _) = issue(state, "alice", "human", &["dba"]);
    let (auditor, _) = issue(state, "audrey", "human", &["audit"]);
    let (alice_cookie, alice_csrf) = sign_in(router, &alice).await.ok().unwrap();
    let (auditor_cookie, auditor_csrf) = sign_in(router, &auditor).await.ok().unwrap();

    let path = "/ui/policies/explain";
    assert_eq!(get(router, path, None).await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        get(router, path, Some(&alice_cookie)).await.status,
        StatusCode::FORBIDDEN
    );
    let form = get(router, path, Some(&auditor_cookie)).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("pg-test (postgres)"), "{}", form.body);
    let ask = |text: &'static str, kind: &'static str| {
        [
            ("identity", "agent-7"),
            ("kind", kind),
            ("groups", "agents"),
            ("connection", "pg-test"),
            ("text", text),
        ]
    };
    // No CSRF token, an approver who is no auditor: refused.
    let fields = ask("select 1", "agent");
    assert_eq!(
        post(router, path, Some(&auditor_cookie), &fields)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let mut with_csrf = vec![("csrf", alice_csrf.as_str())];
    with_csrf.extend(fields);
    assert_eq!(
        post(router, path, Some(&alice_cookie), &with_csrf)
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    let connection = ConnectionInfo {
        name: "pg-test".into(),
        protocol: Protocol::Postgres,
        tags: Default::default(),
    };
    for (text, kind, expected) in [
        ("select * from items", "agent", "allow"),
        ("drop table items", "agent", "deny"),
        ("delete from items where id = 1", "agent", "review"),
        ("delete from items where id = 1", "human", "deny"),
        ("select 1; drop table t", "human", "deny"),
    ] {
        let mut fields = vec![("csrf", auditor_csrf.as_str())];
        fields.extend(ask(text, kind));
        let answer = post(router, path, Some(&auditor_cookie), &fields).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let shown = page_verdict(&answer.body);
        // The gate a session would use decides the same.
        let identity = Identity {
            name: "agent-7".into(),
            kind: IdentityKind::parse(kind).unwrap(),
            groups: vec!["agents".into()],
            auth_method: AuthMethod::AirlockToken {
                token_id: "t".into(),
            },
            expires_at: i64::MAX,
        };
        let gate = Gate::new(std::sync::Arc::clone(state), identity, connection.clone());
        let command = airlock_sql::classify(airlock_sql::Dialect::Postgres, text);
        let decided = gate.decide_unmetered(&command, Limits::Now, text);
        assert_eq!(shown, expected, "{text} as {kind}");
        assert_eq!(
            decided.details.verdict.as_deref(),
            Some(expected),
            "{text} as {kind}"
        );
        if expected == "deny" && text.starts_with("drop") {
            assert!(answer.body.contains("blocked by rule &quot;no-drops&quot;"));
            assert!(answer.body.contains("data-matched-rule=\"no-drops\""));
        }
        assert!(
            answer.body.contains(text),
            "the pasted text is kept in the form"
        );
    }
    // Other protocols' requests need their own shape.
    let mut fields = vec![("csrf", auditor_csrf.as_str())];
    fields.extend(ask("", "agent"));
    assert_eq!(
        post(router, path, Some(&auditor_cookie), &fields)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

const JIT_CONFIG: &str = "listen:
  admin: 127.0.0.1:0
  postgres: 127.0.0.1:0
connections:
  - name: pg-test
    protocol: postgres
    address: 127.0.0.1:1
    database: appdb
    credential: app
  - name: pg-jit
    protocol: postgres
    address: 127.0.0.1:1
    database: appdb
    credential: app
    access: jit
ui:
  admin_groups: [ops]
  auditor_groups: [audit]
";

const JIT_POLICY: &str = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: deletes
    match: {operations: [delete]}
    action: allow
  - name: agent-budget
    match: {identity: {kind: [agent]}}
    rate_limit: {per_minute: 2}
access:
  - name: agents-ask
    match:
      identity: {kind: agent}
      connection: {name: pg-jit}
    max_duration: 1h
    approvers: dba
";

/// The final verdict of the whole decision (`data-verdict`).
fn final_verdict(body: &str) -> String {
    body.split("data-verdict=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no final verdict in:\n{body}"))
        .to_string()
}

/// The verdict of the policy alone, shown under the steps.
fn policy_alone(body: &str) -> String {
    body.split("The policy alone: <span class=\"verdict ")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no policy verdict in:\n{body}"))
        .to_string()
}

#[tokio::test]
async fn the_explain_playground_walks_token_scope_grants_and_rate_limits() {
    let fixture = fixture_with(JIT_CONFIG);
    let router = &fixture.router;
    let state = &fixture.state;
    state.apply_policy(JIT_POLICY, None, "apply").unwrap();
    let scoped = |identity: &str, connections: &[&str]| {
        state
            .issue_token(&airlock_core::admin::IssueTokenRequest {
                identity: identity.into(),
                kind: "agent".into(),
                groups: vec!["agents".into()],
                connections: connections.iter().map(|name| name.to_string()).collect(),
                ttl: Some("1h".into()),
            })
            .unwrap()
            .id
    };
    let jit_agent = scoped("agent-7", &["pg-jit"]);
    let test_agent = scoped("agent-8", &["pg-test"]);
    let (auditor, _) = issue(state, "audrey", "human", &["audit"]);
    let (cookie, csrf) = sign_in(router, &auditor).await.ok().unwrap();
    let explain = |token: String, connection: &'static str, text: &'static str| {
        let (cookie, csrf) = (cookie.clone(), csrf.clone());
        async move {
            let answer = post(
                router,
                "/ui/policies/explain",
                Some(&cookie),
                &[
                    ("csrf", csrf.as_str()),
                    ("token", token.as_str()),
                    ("connection", connection),
                    ("text", text),
                ],
            )
            .await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
            answer.body
        }
    };
    let delete = "delete from items where id = 1";

    // A jit connection and no grant: the policy alone allows the DELETE,
    // the gateway refuses the session.
    let body = explain(jit_agent.clone(), "pg-jit", delete).await;
    assert_eq!(final_verdict(&body), "refused_admission", "{body}");
    assert_eq!(policy_alone(&body), "allow");
    assert!(body.contains("agent-7 has no access grant for connection &quot;pg-jit&quot;"));
    assert!(body.contains("data-step=\"token\" data-passed=\"yes\""));

    // With a grant, the same identity gets the policy's allow.
    let grant = state
        .store
        .create_grant("agent-7", "pg-jit", "agents-ask", 3600)
        .unwrap();
    let body = explain(jit_agent.clone(), "pg-jit", delete).await;
    assert_eq!(final_verdict(&body), "allow", "{body}");
    assert!(body.contains(&format!("admitted by access grant {}", grant.id)));

    // A token scoped to pg-test does not reach pg-jit, whatever the grants.
    let body = explain(test_agent.clone(), "pg-jit", delete).await;
    assert_eq!(final_verdict(&body), "refused_token", "{body}");
    assert!(body.contains("the token is not scoped to pg-jit"));
    let body = explain(test_agent, "pg-test", delete).await;
    assert_eq!(final_verdict(&body), "allow", "{body}");
    let body = explain("tok_nonesuch".into(), "pg-test", delete).await;
    assert_eq!(final_verdict(&body), "refused_token", "{body}");

    // Rate limits are shown as they stand and not spent by looking.
    for _ in 0..3 {
        let body = explain(jit_agent.clone(), "pg-jit", "select 1").await;
        assert_eq!(final_verdict(&body), "allow", "{body}");
        assert!(
            body.contains("rule &quot;agent-budget&quot;: 2 of 2 commands per minute left now"),
            "{body}"
        );
    }
    let record = state.store.token(&jit_agent).unwrap().unwrap();
    let identity = airlock_core::auth::check_token_record(&record, "pg-jit")
        .unwrap()
        .identity;
    let connection = ConnectionInfo {
        name: "pg-jit".into(),
        protocol: Protocol::Postgres,
        tags: Default::default(),
    };
    let gate = Gate::new(std::sync::Arc::clone(state), identity, connection);
    let command = airlock_sql::classify(airlock_sql::Dialect::Postgres, "select 1");
    for _ in 0..2 {
        assert!(gate.decide(&command, Limits::Now, "select 1").forwards());
    }
    let body = explain(jit_agent.clone(), "pg-jit", "select 1").await;
    assert_eq!(final_verdict(&body), "rate_limited", "{body}");
    assert!(body.contains("rate limit exceeded by rule &quot;agent-budget&quot;"));
    // The session's next command is refused the same way.
    let refused = gate.decide(&command, Limits::Now, "select 1");
    assert_eq!(refused.details.verdict.as_deref(), Some("rate_limited"));
    // A revoked grant closes the door again.
    state.revoke_grant(&grant.id).unwrap();
    let body = explain(jit_agent, "pg-jit", delete).await;
    assert_eq!(final_verdict(&body), "refused_admission", "{body}");
}

#[tokio::test]
async fn a_rollback_is_for_admins_with_the_csrf_token_and_makes_a_new_version() {
    let fixture = fixture();
    let router = &fixture.router;
    let state = &fixture.state;
    state
        .apply_policy(POLICY_V1, Some("first"), "apply")
        .unwrap();
    state
        .apply_policy(POLICY_V2, Some("second"), "apply")
        .unwrap();
    let live_before = state.policy.current().version;
    let (auditor, _) = issue(state, "audrey", "human", &["audit"]);
    let (admin, _) = issue(state, "olga", "human", &["ops"]);
    let (auditor_cookie, auditor_csrf) = sign_in(router, &auditor).await.ok().unwrap();
    let (admin_cookie, admin_csrf) = sign_in(router, &admin).await.ok().unwrap();

    let list = get(router, "/ui/policies", Some(&auditor_cookie)).await;
    assert!(
        !list.body.contains("Roll back to v"),
        "an auditor may roll back"
    );
    let list = get(router, "/ui/policies", Some(&admin_cookie)).await;
    assert!(list.body.contains("Roll back to v1"), "{}", list.body);

    let path = "/ui/policies/rollback";
    let version = live_before - 1;
    let version_text = version.to_string();
    for (answer, status) in [
        (
            post(router, path, None, &[("version", &version_text)]).await,
            StatusCode::SEE_OTHER,
        ),
        (
            post(
                router,
                path,
                Some(&auditor_cookie),
                &[("csrf", &auditor_csrf), ("version", &version_text)],
            )
            .await,
            StatusCode::FORBIDDEN,
        ),
        (
            post(
                router,
                path,
                Some(&admin_cookie),
                &[("version", &version_text)],
            )
            .await,
            StatusCode::FORBIDDEN,
        ),
        (
            post(
                router,
                path,
                Some(&admin_cookie),
                &[("csrf", &admin_csrf), ("version", "99")],
            )
            .await,
            StatusCode::NOT_FOUND,
        ),
    ] {
        assert_eq!(answer.status, status, "{}", answer.body);
    }
    assert_eq!(state.policy.current().version, live_before);

    let done = post(
        router,
        path,
        Some(&admin_cookie),
        &[
            ("csrf", &admin_csrf),
            ("version", &version_text),
            ("note", "the review rule blocks the nightly job"),
        ],
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let live = state.policy.current();
    assert_eq!(
        live.version,
        live_before + 1,
        "a rollback makes a new version"
    );
    let record = state.store.policy_version(live.version).unwrap().unwrap();
    assert_eq!(record.text.as_deref(), Some(POLICY_V1));
    let comment = record.comment.unwrap_or_default();
    assert!(
        comment.contains(&format!("rollback to v{version} by olga"))
            && comment.contains("nightly job"),
        "{comment}"
    );
    assert_eq!(
        done.headers.get(header::LOCATION).unwrap(),
        &format!("/ui/policies?done=rolled_back&version=v{}", live.version)
    );
    let events = all_events(state, "policy.apply").await;
    let applied = events
        .iter()
        .rev()
        .find(|event| event.kind == "policy.apply")
        .unwrap();
    assert_eq!(applied.identity.as_deref(), Some("olga"));
    assert_eq!(applied.data["source"], "rollback");
}

#[tokio::test]
async fn a_session_exports_as_json_lines_and_replays_its_terminal() {
    let fixture = fixture();
    let router = &fixture.router;
    let state = &fixture.state;
    state.store.append_event(session_start("s-exec-1")).unwrap();
    state
        .store
        .append_event(event(
            "command",
            "s-exec-1",
            json!({"seq": 1, "message": "request", "statement": "POST /api/v1/namespaces/a/pods/p/exec", "decision": "forward"}),
        ))
        .unwrap();
    state
        .store
        .append_event(event(
            "command.stream",
            "s-exec-1",
            json!({"seq": 1, "connection": "pg-test", "truncated": false, "chunks": [
                {"at_ms": 5, "channel": "stdin", "data": "ls <dir>\n"},
                {"at_ms": 9, "channel": "stdout", "data": "\u{1b}[31mred\u{1b}[0m file\n"},
                {"at_ms": 12, "channel": "stderr", "data": "warning\n"},
            ]}),
        ))
        .unwrap();
    let (alice, _) = issue(state, "alice", "human", &["dba"]);
    let (auditor, _) = issue(state, "audrey", "human", &["audit"]);
    let (alice_cookie, _) = sign_in(router, &alice).await.ok().unwrap();
    let (auditor_cookie, _) = sign_in(router, &auditor).await.ok().unwrap();

    let page = get(router, "/ui/sessions/s-exec-1", Some(&auditor_cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Terminal replay"), "{}", page.body);
    assert!(page.body.contains("ls &lt;dir&gt;"));
    assert!(
        page.body.contains("\\x1b[31mred\\x1b[0m file"),
        "escape sequences are shown, not obeyed: {}",
        page.body
    );
    assert!(!page.body.contains('\u{1b}'));
    assert!(page.body.contains("<div class=\"stderr\">"));
    assert!(page.body.contains("/ui/sessions/s-exec-1/export"));

    let export = "/ui/sessions/s-exec-1/export";
    assert_eq!(
        get(router, export, None).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        get(router, export, Some(&alice_cookie)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get(router, "/ui/sessions/s-none/export", Some(&auditor_cookie))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let lines = get(router, export, Some(&auditor_cookie)).await;
    assert_eq!(lines.status, StatusCode::OK);
    assert_eq!(
        lines.headers.get(header::CONTENT_TYPE).unwrap(),
        "application/x-ndjson"
    );
    assert!(lines
        .headers
        .get(header::CONTENT_DISPOSITION)
        .unwrap()
        .to_str()
        .unwrap()
        .contains("session-s-exec-1.jsonl"));
    let events: Vec<Value> = lines
        .body
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|event| event["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["session.start", "command", "command.stream"]);
    assert!(events.iter().all(|event| event["session_id"] == "s-exec-1"
        && event["hash"].as_str().is_some_and(|hash| !hash.is_empty())));
}

#[tokio::test]
async fn live_sessions_show_their_commands_so_far() {
    let fixture = fixture();
    let router = &fixture.router;
    let state = &fixture.state;
    let _registration = state.sessions.register(SessionSummary {
        session_id: "s-live-2".into(),
        identity: "agent-7".into(),
        token_id: "t-x".into(),
        connection: "pg-test".into(),
        client_address: "127.0.0.1:5555".into(),
        tls: false,
        started_at: now_unix() - 5,
    });
    state.store.append_event(session_start("s-live-2")).unwrap();
    for seq in 1..=3 {
        state
            .store
            .append_event(event("command", "s-live-2", json!({"seq": seq})))
            .unwrap();
    }
    let (auditor, _) = issue(state, "audrey", "human", &["audit"]);
    let (cookie, _) = sign_in(router, &auditor).await.ok().unwrap();
    let page = get(router, "/ui/sessions/live", Some(&cookie)).await;
    assert!(page.body.contains("data-commands>3</td>"), "{}", page.body);
}

#[tokio::test]
async fn tokens_are_issued_once_and_revoked_by_admins() {
    let fixture = fixture();
    let router = &fixture.router;
    let state = &fixture.state;
    let (auditor, _) = issue(state, "audrey", "human", &["audit"]);
    let (admin, _) = issue(state, "olga", "human", &["ops"]);
    let (alice, _) = issue(state, "alice", "human", &["dba"]);
    let (auditor_cookie, auditor_csrf) = sign_in(router, &auditor).await.ok().unwrap();
    let (admin_cookie, admin_csrf) = sign_in(router, &admin).await.ok().unwrap();
    let (alice_cookie, _) = sign_in(router, &alice).await.ok().unwrap();

    assert_eq!(
        get(router, "/ui/tokens", Some(&alice_cookie)).await.status,
        StatusCode::FORBIDDEN
    );
    let list = get(router, "/ui/tokens", Some(&auditor_cookie)).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("olga") && !list.body.contains("Issue a token"));
    let form = [
        ("identity", "bot-1"),
        ("kind", "agent"),
        ("groups", "agents, etl"),
        ("connection", "pg-test"),
        ("ttl", "30m"),
    ];
    let mut auditor_form = vec![("csrf", auditor_csrf.as_str())];
    auditor_form.extend(form);
    assert_eq!(
        post(router, "/ui/tokens", Some(&auditor_cookie), &auditor_form)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(router, "/ui/tokens", Some(&admin_cookie), &form)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert!(!state
        .list_tokens()
        .unwrap()
        .iter()
        .any(|token| token.identity == "bot-1"));

    let mut admin_form = vec![("csrf", admin_csrf.as_str())];
    admin_form.extend(form);
    let issued = post(router, "/ui/tokens", Some(&admin_cookie), &admin_form).await;
    assert_eq!(issued.status, StatusCode::OK, "{}", issued.body);
    let token = issued
        .body
        .split("id=\"issued-token\" class=\"secret\" type=\"text\" readonly value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    assert!(token.starts_with("alt_"), "{token}");
    assert_eq!(
        issued.headers.get(header::CACHE_CONTROL).unwrap(),
        "no-store"
    );
    // The token works, and is never shown again.
    let identity = state.identity_for_token(&token).unwrap().unwrap();
    assert_eq!(identity.name, "bot-1");
    assert_eq!(identity.groups, ["agents", "etl"]);
    let record = state
        .list_tokens()
        .unwrap()
        .into_iter()
        .find(|record| record.identity == "bot-1")
        .unwrap();
    assert_eq!(record.connections, ["pg-test"]);
    let list = get(router, "/ui/tokens", Some(&admin_cookie)).await;
    assert!(list.body.contains(&record.id) && !list.body.contains(&token));
    let events = all_events(state, "token.issue").await;
    assert!(events.iter().any(|event| event.kind == "token.issue"
        && event.data["issued_by"] == "olga"
        && event.data["token_id"] == record.id.as_str()));
    assert!(!serde_json::to_string(&events).unwrap().contains(&token));

    let revoke = format!("/ui/tokens/{}/revoke", record.id);
    assert_eq!(
        post(
            router,
            &revoke,
            Some(&auditor_cookie),
            &[("csrf", &auditor_csrf)]
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(router, &revoke, Some(&admin_cookie), &[]).await.status,
        StatusCode::FORBIDDEN
    );
    assert!(state.identity_for_token(&token).unwrap().is_some());
    let revoked = post(
        router,
        &revoke,
        Some(&admin_cookie),
        &[("csrf", &admin_csrf)],
    )
    .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", revoked.body);
    assert!(state.identity_for_token(&token).unwrap().is_none());
    let events = all_events(state, "token.revoke").await;
    assert!(events
        .iter()
        .any(|event| event.kind == "token.revoke" && event.identity.as_deref() == Some("olga")));
}

#[tokio::test]
async fn grants_are_revoked_by_admins_and_requests_wait_apart_from_commands() {
    let fixture = fixture();
    let router = &fixture.router;
    let state = &fixture.state;
    let grant = state
        .store
        .create_grant("agent-7", "pg-test", "jit-reads", 3600)
        .unwrap();
    review(state, "r-cmd1", "agent-7", &["dba"], false);
    state
        .store
        .create_or_find_review(&NewReview {
            id: "r-acc1".into(),
            identity: "agent-7".into(),
            connection: "pg-test".into(),
            statement: "access to pg-test for 1h: nightly report".into(),
            fingerprint: "access:pg-test".into(),
            classification: json!({"kind": "access"}),
            rule: "jit".into(),
            policy_version: 0,
            approvers: vec!["dba".into()],
            min_approvals: 1,
            require_mfa: false,
            session_id: None,
            expires_at: now_unix() + 3600,
            kind: "access".into(),
            duration_seconds: Some(3600),
        })
        .unwrap();
    let (alice, _) = issue(state, "alice", "human", &["dba"]);
    let (auditor, _) = issue(state, "audrey", "human", &["audit"]);
    let (admin, _) = issue(state, "olga", "human", &["ops"]);
    let (alice_cookie, _) = sign_in(router, &alice).await.ok().unwrap();
    let (auditor_cookie, auditor_csrf) = sign_in(router, &auditor).await.ok().unwrap();
    let (admin_cookie, admin_csrf) = sign_in(router, &admin).await.ok().unwrap();

    // The queue lists the access request under its own heading.
    let queue = get(router, "/ui/approvals", Some(&alice_cookie)).await;
    let (commands, requests) = queue.body.split_once("id=\"access-requests\"").unwrap();
    assert!(commands.contains("data-review=\"r-cmd1\" data-kind=\"command\""));
    assert!(!commands.contains("r-acc1"));
    assert!(requests.contains("data-review=\"r-acc1\" data-kind=\"access\""));
    assert!(requests.contains("nightly report") && requests.contains("1 h 0 min"));

    assert_eq!(
        get(router, "/ui/access", Some(&alice_cookie)).await.status,
        StatusCode::FORBIDDEN
    );
    let list = get(router, "/ui/access", Some(&auditor_cookie)).await;
    assert!(list.body.contains(&grant.id) && list.body.contains("jit-reads"));
    assert!(!list.body.contains("/revoke\""), "an auditor may revoke");
    let revoke = format!("/ui/access/{}/revoke", grant.id);
    assert_eq!(
        post(
            router,
            &revoke,
            Some(&auditor_cookie),
            &[("csrf", &auditor_csrf)]
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(router, &revoke, Some(&admin_cookie), &[]).await.status,
        StatusCode::FORBIDDEN
    );
    assert!(state
        .store
        .grants(true)
        .unwrap()
        .iter()
        .any(|g| g.id == grant.id));
    let done = post(
        router,
        &revoke,
        Some(&admin_cookie),
        &[("csrf", &admin_csrf)],
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert!(!state
        .store
        .grants(true)
        .unwrap()
        .iter()
        .any(|g| g.id == grant.id));
    let events = all_events(state, "access.revoke").await;
    assert!(events
        .iter()
        .any(|event| event.kind == "access.revoke" && event.identity.as_deref() == Some("olga")));
}

#[tokio::test]
async fn no_page_shows_a_secret() {
    let fixture = fixture();
    let router = &fixture.router;
    let state = &fixture.state;
    let password = "pw-S3cr3t-never-shown-9f8e7d";
    state.set_credential("app", "app", password).unwrap();
    state.apply_policy(POLICY_V2, None, "apply").unwrap();
    let admin_token = match airlock_core::admin::bootstrap_admin_token(&*state.store, None).unwrap()
    {
        airlock_core::admin::AdminTokenStart::Generated(token) => token,
        _ => panic!("no admin token was generated"),
    };
    let (agent, _) = issue(state, "agent-7", "agent", &["agents"]);
    let (admin, _) = issue(state, "olga", "human", &["ops", "dba"]);
    let (cookie, csrf) = sign_in(router, &admin).await.ok().unwrap();
    review(state, "r-sec1", "agent-7", &["dba"], false);
    state.store.append_event(session_start("s-sec-1")).unwrap();
    let master_key = std::fs::read_dir(fixture._dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().contains("key"))
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .map(|text| text.trim().to_string())
        .filter(|text| text.len() >= 16)
        .collect::<Vec<_>>();
    let mut secrets = vec![
        password.to_string(),
        admin_token.clone(),
        agent.clone(),
        admin.clone(),
        csrf.clone(),
    ];
    secrets.extend(master_key);

    let connections = get(router, "/ui/connections", Some(&cookie)).await;
    assert_eq!(connections.status, StatusCode::OK);
    assert!(connections.body.contains("data-credential=\"app\""));
    assert!(connections.body.contains("data-connection=\"pg-test\""));

    let mut pages = Vec::new();
    for path in [
        "/ui/approvals",
        "/ui/reviews/r-sec1",
        "/ui/sessions/live",
        "/ui/sessions",
        "/ui/sessions/s-sec-1",
        "/ui/sessions/s-sec-1/export",
        "/ui/audit",
        "/ui/policies",
        "/ui/policies/diff?from=1&to=1",
        "/ui/policies/explain",
        "/ui/access",
        "/ui/tokens",
        "/ui/connections",
        "/ui/signin",
    ] {
        let answer = get(router, path, Some(&cookie)).await;
        assert!(
            answer.status == StatusCode::OK || answer.status == StatusCode::SEE_OTHER,
            "{path}: {}",
            answer.status
        );
        pages.push((path, answer.body));
    }
    let explained = post(
        router,
        "/ui/policies/explain",
        Some(&cookie),
        &[
            ("csrf", &csrf),
            ("identity", "agent-7"),
            ("kind", "agent"),
            ("connection", "pg-test"),
            ("text", "select 1"),
        ],
    )
    .await;
    pages.push(("/ui/policies/explain (POST)", explained.body));
    for (path, body) in &pages {
        for secret in &secrets {
            // The CSRF token belongs in the forms of this sign-in's pages.
            if secret == &csrf {
                continue;
            }
            assert!(!body.contains(secret.as_str()), "{path} shows a secret");
        }
    }
    // …and the CSRF token only in form fields.
    for (path, body) in &pages {
        let uses = body.matches(csrf.as_str()).count();
        let fields = body
            .matches(&format!("name=\"csrf\" value=\"{csrf}\""))
            .count();
        assert_eq!(uses, fields, "{path} shows the CSRF token outside a form");
    }
}

#[tokio::test]
async fn identity_provider_sign_ins_need_a_known_provider_and_their_own_state() {
    let fixture = fixture();
    let router = &fixture.router;
    // No provider has a web client here: no button, no flow.
    let form = get(router, "/ui/signin", None).await;
    assert!(!form.body.contains("/ui/signin/oidc/"));
    let start = get(router, "/ui/signin/oidc/corp", None).await;
    assert_eq!(start.status, StatusCode::NOT_FOUND);
    for path in [
        "/ui/oidc/callback",
        "/ui/oidc/callback?code=abc",
        "/ui/oidc/callback?code=abc&state=made-up",
        "/ui/oidc/callback?error=access_denied&state=made-up",
    ] {
        let answer = get(router, path, Some("airlock_ui_oidc=anything")).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(
            answer.body.contains("sign in again"),
            "{path}: {}",
            answer.body
        );
        assert!(set_cookie(&answer, "airlock_ui").is_none(), "{path}");
    }
    assert!(fixture.web.sign_ins.is_empty());
}
