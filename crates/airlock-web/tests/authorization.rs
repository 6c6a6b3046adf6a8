//! Every handler's authorization, through the in-process router over a
//! real gateway state (SQLite store in a temporary folder): who may sign
//! in, who sees and decides which review, who reads live sessions and
//! policies, who ends a session, and that a POST without the sign-in's
//! CSRF token (or with another's) is refused and changes nothing in the
//! store. Every answer carries the Content-Security-Policy.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{header, StatusCode};

use airlock_core::registry::SessionSummary;
use airlock_store::now_unix;
use airlock_web::security::CONTENT_SECURITY_POLICY;
use common::*;

#[tokio::test]
async fn only_people_sign_in_through_the_form_bound_to_their_browser() {
    let fixture = fixture();
    let router = &fixture.router;
    let (agent, _) = issue(&fixture.state, "agent-7", "agent", &["dba"]);
    let (service, _) = issue(&fixture.state, "etl", "service", &["dba"]);
    let (alice, _) = issue(&fixture.state, "alice", "human", &["dba"]);

    let refused = sign_in(router, &agent)
        .await
        .expect_err("an agent signed in");
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("only people"), "{}", refused.body);
    let refused = sign_in(router, &service)
        .await
        .expect_err("a service signed in");
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let refused = sign_in(router, "al_not-a-token").await.err().unwrap();
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.body.contains("not accepted"));
    assert!(
        !refused.body.contains("al_not-a-token"),
        "the token is echoed"
    );
    let admin = airlock_core::admin::bootstrap_admin_token(&*fixture.state.store, None).unwrap();
    if let airlock_core::admin::AdminTokenStart::Generated(admin) = admin {
        let refused = sign_in(router, &admin)
            .await
            .expect_err("the admin token signed in");
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert!(refused.body.contains("admin token cannot sign in"));
    } else {
        panic!("no admin token was generated");
    }
    assert!(fixture.web.sign_ins.is_empty());

    // The form's value must match the cookie set with it (login CSRF).
    let form = get(router, "/ui/signin", None).await;
    let nonce = form_csrf(&form.body);
    let without_cookie = post(
        router,
        "/ui/signin",
        None,
        &[("csrf", &nonce), ("token", &alice)],
    )
    .await;
    assert_eq!(without_cookie.status, StatusCode::FORBIDDEN);
    let other = post(
        router,
        "/ui/signin",
        Some("airlock_ui_signin=another-value"),
        &[("csrf", &nonce), ("token", &alice)],
    )
    .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    assert!(fixture.web.sign_ins.is_empty());

    // A person signs in: the cookie is HttpOnly, SameSite=Strict, lasts as
    // long as the token at most, and not Secure on a loopback listener.
    let form = get(router, "/ui/signin", None).await;
    let nonce_pair = set_cookie(&form, "airlock_ui_signin").unwrap();
    let nonce_pair = nonce_pair.split(';').next().unwrap();
    let answer = post(
        router,
        "/ui/signin",
        Some(nonce_pair),
        &[("csrf", &form_csrf(&form.body)), ("token", &alice)],
    )
    .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    let cookie = set_cookie(&answer, "airlock_ui").unwrap();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/ui"), "{cookie}");
    assert!(!cookie.contains("Secure"), "{cookie}");
    let max_age: i64 = cookie
        .split("Max-Age=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3500..=3600).contains(&max_age), "{cookie}");
    assert_eq!(fixture.web.sign_ins.len(), 1);

    // The sign-in is recorded, and the token is nowhere in the record.
    let events = all_events(&fixture.state, "auth.failure").await;
    let signed_in = events
        .iter()
        .find(|event| event.kind == "ui.sign_in")
        .expect("a ui.sign_in event");
    assert_eq!(signed_in.identity.as_deref(), Some("alice"));
    assert!(!serde_json::to_string(&events).unwrap().contains(&alice));
    assert!(events.iter().any(|event| event.kind == "auth.failure"));
}

#[tokio::test]
async fn reviews_are_seen_and_decided_by_their_approvers_only() {
    let fixture = fixture();
    let router = &fixture.router;
    let state = &fixture.state;
    review(state, "r-0001", "agent-7", &["dba"], false);
    review(state, "r-0002", "dave", &["dba"], false);
    review(state, "r-0003", "agent-7", &["dba"], true);
    let (alice, _) = issue(state, "alice", "human", &["dba"]);
    let (carol, _) = issue(state, "carol", "human", &["finance"]);
    let (dave, _) = issue(state, "dave", "human", &["dba"]);
    let (auditor, _) = issue(state, "audrey", "human", &["audit"]);
    let (alice_cookie, alice_csrf) = sign_in(router, &alice).await.ok().unwrap();
    let (carol_cookie, carol_csrf) = sign_in(router, &carol).await.ok().unwrap();
    let (dave_cookie, dave_csrf) = sign_in(router, &dave).await.ok().unwrap();
    let (auditor_cookie, auditor_csrf) = sign_in(router, &auditor).await.ok().unwrap();

    // The queue: the approver sees the statement masked and escaped.
    let queue = get(router, "/ui/approvals", Some(&alice_cookie)).await;
    assert!(queue.body.contains("r-0001") && queue.body.contains("r-0003"));
    assert!(queue.body.contains("&lt;script&gt;x&lt;/script&gt;"));
    assert!(!queue.body.contains("<script>x</script>"));
    assert!(queue.body.contains("deletes-need-review"));
    assert_eq!(
        queue.headers.get(header::CONTENT_SECURITY_POLICY).unwrap(),
        CONTENT_SECURITY_POLICY
    );
    // Another group's approver sees none of it, and the review page is
    // "not found" to them.
    let queue = get(router, "/ui/approvals", Some(&carol_cookie)).await;
    assert!(!queue.body.contains("r-0001"), "{}", queue.body);
    let page = get(router, "/ui/reviews/r-0001", Some(&carol_cookie)).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    // The auditor sees every review, without a decision form.
    let page = get(router, "/ui/reviews/r-0001", Some(&auditor_cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("/approve\""), "{}", page.body);
    let page = get(router, "/ui/reviews/r-0001", Some(&alice_cookie)).await;
    assert!(page.body.contains("/ui/reviews/r-0001/approve"));

    let approve = "/ui/reviews/r-0001/approve";
    let refused = [
        // No sign-in: to the sign-in page, nothing decided.
        (
            post(router, approve, None, &[("csrf", &alice_csrf)]).await,
            StatusCode::SEE_OTHER,
        ),
        // No CSRF token, or another sign-in's.
        (
            post(router, approve, Some(&alice_cookie), &[]).await,
            StatusCode::FORBIDDEN,
        ),
        (
            post(
                router,
                approve,
                Some(&alice_cookie),
                &[("csrf", &carol_csrf)],
            )
            .await,
            StatusCode::FORBIDDEN,
        ),
        // Another group's approver; the auditor.
        (
            post(
                router,
                approve,
                Some(&carol_cookie),
                &[("csrf", &carol_csrf)],
            )
            .await,
            StatusCode::NOT_FOUND,
        ),
        (
            post(
                router,
                approve,
                Some(&auditor_cookie),
                &[("csrf", &auditor_csrf)],
            )
            .await,
            StatusCode::NOT_FOUND,
        ),
    ];
    for (index, (answer, status)) in refused.iter().enumerate() {
        assert_eq!(answer.status, *status, "case {index}: {}", answer.body);
        assert!(answer.headers.contains_key(header::CONTENT_SECURITY_POLICY));
    }
    assert_eq!(
        refused[0].0.headers.get(header::LOCATION).unwrap(),
        "/ui/signin"
    );
    assert_eq!(status_of(state, "r-0001"), "pending");

    // Nobody decides their own request.
    let own = post(
        router,
        "/ui/reviews/r-0002/approve",
        Some(&dave_cookie),
        &[("csrf", &dave_csrf)],
    )
    .await;
    assert_eq!(own.status, StatusCode::FORBIDDEN, "{}", own.body);
    assert!(own.body.contains("cannot decide it"));
    assert_eq!(status_of(state, "r-0002"), "pending");
    // MFA: no code, no approval.
    let no_code = post(
        router,
        "/ui/reviews/r-0003/approve",
        Some(&alice_cookie),
        &[("csrf", &alice_csrf)],
    )
    .await;
    assert_eq!(no_code.status, StatusCode::FORBIDDEN);
    assert!(no_code.body.contains("requires MFA"), "{}", no_code.body);
    assert_eq!(status_of(state, "r-0003"), "pending");
    // A denial needs a reason.
    let no_reason = post(
        router,
        "/ui/reviews/r-0002/deny",
        Some(&alice_cookie),
        &[("csrf", &alice_csrf)],
    )
    .await;
    assert_eq!(no_reason.status, StatusCode::BAD_REQUEST);
    assert_eq!(status_of(state, "r-0002"), "pending");

    // The approver decides, and a command held for the review in this
    // process is woken at once (not at its next store poll).
    let mut held = state.review_wakeups.subscribe();
    held.mark_unchanged();
    let approved = post(
        router,
        approve,
        Some(&alice_cookie),
        &[("csrf", &alice_csrf), ("comment", "one row, fine")],
    )
    .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.body);
    assert_eq!(
        approved.headers.get(header::LOCATION).unwrap(),
        "/ui/approvals?done=approved&review=r-0001"
    );
    assert_eq!(status_of(state, "r-0001"), "approved");
    assert!(
        held.has_changed().unwrap(),
        "the decision did not wake the held commands"
    );
    let denied = post(
        router,
        "/ui/reviews/r-0002/deny",
        Some(&alice_cookie),
        &[("csrf", &alice_csrf), ("reason", "not today")],
    )
    .await;
    assert_eq!(denied.status, StatusCode::SEE_OTHER);
    let record = state.store.review("r-0002").unwrap().unwrap();
    assert_eq!(record.status, "denied");
    assert_eq!(record.reason.as_deref(), Some("not today"));
    let done = get(
        router,
        "/ui/approvals?done=approved&review=r-0001",
        Some(&alice_cookie),
    )
    .await;
    assert!(done.body.contains("r-0001: approved"));
}

#[tokio::test]
async fn the_stream_needs_a_sign_in_and_a_revoked_token_ends_it() {
    let fixture = fixture();
    let router = &fixture.router;
    let (alice, alice_id) = issue(&fixture.state, "alice", "human", &["dba"]);
    let stream = get(router, "/ui/approvals/stream", None).await;
    assert_eq!(stream.status, StatusCode::SEE_OTHER);
    let (cookie, csrf) = sign_in(router, &alice).await.ok().unwrap();
    // Revoking the token ends the sign-in at the next request.
    fixture.state.revoke_token(&alice_id).unwrap();
    let page = get(router, "/ui/approvals", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(fixture.web.sign_ins.is_empty());
    let stream = get(router, "/ui/approvals/stream", Some(&cookie)).await;
    assert_eq!(stream.status, StatusCode::SEE_OTHER);

    // Sign-out ends a sign-in, and needs the CSRF token too.
    let (bob, _) = issue(&fixture.state, "bob", "human", &["dba"]);
    let (cookie, csrf_bob) = sign_in(router, &bob).await.ok().unwrap();
    let refused = post(router, "/ui/signout", Some(&cookie), &[("csrf", &csrf)]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        get(router, "/ui/approvals", Some(&cookie)).await.status,
        StatusCode::OK
    );
    let out = post(router, "/ui/signout", Some(&cookie), &[("csrf", &csrf_bob)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(
        get(router, "/ui/approvals", Some(&cookie)).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn live_sessions_are_read_by_auditors_and_ended_by_admins() {
    let fixture = fixture();
    let router = &fixture.router;
    let state = &fixture.state;
    let registration = state.sessions.register(SessionSummary {
        session_id: "s-live-1".into(),
        identity: "agent-7".into(),
        token_id: "t-x".into(),
        connection: "pg-test".into(),
        client_address: "127.0.0.1:5555".into(),
        tls: false,
        started_at: now_unix() - 30,
    });
    let (alice, _) = issue(state, "alice", "human", &["dba"]);
    let (auditor, _) = issue(state, "audrey", "human", &["audit"]);
    let (admin, _) = issue(state, "olga", "human", &["ops"]);
    let (alice_cookie, alice_csrf) = sign_in(router, &alice).await.ok().unwrap();
    let (auditor_cookie, auditor_csrf) = sign_in(router, &auditor).await.ok().unwrap();
    let (admin_cookie, admin_csrf) = sign_in(router, &admin).await.ok().unwrap();

    let page = get(router, "/ui/sessions/live", None).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let page = get(router, "/ui/sessions/live", Some(&alice_cookie)).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = get(router, "/ui/sessions/live", Some(&auditor_cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("s-live-1") && page.body.contains("agent-7"));
    assert!(
        !page.body.contains("/end\""),
        "an auditor gets a kill switch"
    );
    let page = get(router, "/ui/sessions/live", Some(&admin_cookie)).await;
    assert!(page.body.contains("/ui/sessions/live/s-live-1/end"));

    let end = "/ui/sessions/live/s-live-1/end";
    let reason = ("reason", "runaway agent");
    for (answer, status) in [
        (
            post(router, end, None, &[reason]).await,
            StatusCode::SEE_OTHER,
        ),
        (
            post(
                router,
                end,
                Some(&alice_cookie),
                &[("csrf", &alice_csrf), reason],
            )
            .await,
            StatusCode::FORBIDDEN,
        ),
        (
            post(
                router,
                end,
                Some(&auditor_cookie),
                &[("csrf", &auditor_csrf), reason],
            )
            .await,
            StatusCode::FORBIDDEN,
        ),
        (
            post(router, end, Some(&admin_cookie), &[reason]).await,
            StatusCode::FORBIDDEN,
        ),
        (
            post(router, end, Some(&admin_cookie), &[("csrf", &admin_csrf)]).await,
            StatusCode::BAD_REQUEST,
        ),
    ] {
        assert_eq!(answer.status, status, "{}", answer.body);
    }
    assert!(
        registration.kill.borrow().is_none(),
        "a refused request ended the session"
    );
    let unknown = post(
        router,
        "/ui/sessions/live/s-none/end",
        Some(&admin_cookie),
        &[("csrf", &admin_csrf), reason],
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    let ended = post(
        router,
        end,
        Some(&admin_cookie),
        &[("csrf", &admin_csrf), reason],
    )
    .await;
    assert_eq!(ended.status, StatusCode::SEE_OTHER, "{}", ended.body);
    assert_eq!(
        registration.kill.borrow().as_deref(),
        Some("ended by olga: runaway agent")
    );
    let events = all_events(state, "session.kill").await;
    let killed = events
        .iter()
        .find(|event| event.kind == "session.kill")
        .expect("session.kill");
    assert_eq!(killed.session_id.as_deref(), Some("s-live-1"));
    let data = serde_json::to_string(&killed.data).unwrap();
    assert!(
        data.contains("runaway agent") && data.contains("olga"),
        "{data}"
    );
}

#[tokio::test]
async fn policies_are_for_auditors_with_a_diff_of_two_versions() {
    let fixture = fixture();
    let router = &fixture.router;
    let state = &fixture.state;
    let first = "version: 1\ndefault: deny\nrules:\n  - name: reads\n    match: {access: read}\n    action: allow\n";
    let second = "version: 1\ndefault: deny\nrules:\n  - name: reads\n    match: {access: read}\n    action: allow\n  - name: deletes\n    match: {operations: [delete]}\n    action: review\n    approvers: dba\n";
    state
        .apply_policy(first, Some("start <small>"), "apply")
        .unwrap();
    state
        .apply_policy(second, Some("hold deletes"), "apply")
        .unwrap();
    let (alice, _) = issue(state, "alice", "human", &["dba"]);
    let (auditor, _) = issue(state, "audrey", "human", &["audit"]);
    let (alice_cookie, _) = sign_in(router, &alice).await.ok().unwrap();
    let (auditor_cookie, _) = sign_in(router, &auditor).await.ok().unwrap();

    assert_eq!(
        get(router, "/ui/policies", None).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        get(router, "/ui/policies", Some(&alice_cookie))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get(router, "/ui/policies/diff?from=1&to=2", Some(&alice_cookie))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let list = get(router, "/ui/policies", Some(&auditor_cookie)).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("hold deletes") && list.body.contains("start &lt;small&gt;"));
    let diff = get(
        router,
        "/ui/policies/diff?from=1&to=2",
        Some(&auditor_cookie),
    )
    .await;
    assert_eq!(diff.status, StatusCode::OK);
    assert!(
        diff.body.contains(
            "<div class=\"ins\"><span class=\"skip\">added: </span>  - name: deletes</div>"
        ),
        "{}",
        diff.body
    );
    assert!(!diff.body.contains("class=\"del\""));
    let missing = get(
        router,
        "/ui/policies/diff?from=1&to=9",
        Some(&auditor_cookie),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn assets_are_embedded_and_every_answer_has_the_policy() {
    let fixture = fixture();
    let router = &fixture.router;
    let script = get(router, "/ui/assets/htmx.min.js", None).await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(script.body.contains("htmx"));
    assert_eq!(
        script.headers.get(header::CONTENT_TYPE).unwrap(),
        "text/javascript; charset=utf-8"
    );
    for path in ["/ui/signin", "/ui/assets/nope", "/ui/approvals", "/ui"] {
        let answer = get(router, path, None).await;
        assert_eq!(
            answer.headers.get(header::CONTENT_SECURITY_POLICY).unwrap(),
            CONTENT_SECURITY_POLICY,
            "{path}"
        );
        assert_eq!(answer.headers.get(header::X_FRAME_OPTIONS).unwrap(), "DENY");
    }
    let page = get(router, "/ui/signin", None).await;
    assert!(!page.body.contains("<script>"), "an inline script");
    assert!(!page.body.contains("style="), "an inline style");
}
