//! End-to-end tests of human review: commands held by `review` rules wait
//! for a person (on any gateway sharing the store), run exactly once when
//! approved, never reach the upstream when denied or unapproved; approvers
//! must be in the group, not the requester, and confirm with TOTP when the
//! rule requires it.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use airlock_testkit::{pg_client, GatewayProcess};
use common::stderr;
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const POLICY: &str = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: writes
    match: {operations: [insert, update, delete]}
    action: allow
  - name: deletes-need-review
    match: {operations: [delete]}
    action: review
    approvers: dba
    wait: 20s
  - name: updates-need-two
    match: {operations: [update]}
    action: review
    approvers: dba
    min_approvals: 2
    wait: 2s
  - name: vault-writes-need-mfa
    match: {operations: [insert], tables: [vault]}
    action: review
    approvers: security
    require_mfa: true
";

fn psql_background(gateway: &GatewayProcess, token: &str, sql: &str) -> Child {
    Command::new(pg_client("psql"))
        .arg(gateway.conninfo("agent-7", "pg-test", "disable"))
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .env("PGPASSWORD", token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn pending_review(gateway: &GatewayProcess) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let list: Value =
            serde_json::from_str(&gateway.cli_ok(&["review", "list", "--output", "json"], None))
                .unwrap();
        if let Some(review) = list.as_array().and_then(|list| list.first()) {
            return review.clone();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no pending review appeared:\n{}", gateway.log());
}

fn statement_count(cluster: &airlock_testkit::PgCluster, statement: &str) -> usize {
    cluster.log().matches(statement).count()
}

/// A webhook receiver: records (headers, body) of every POST.
type Deliveries = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

fn webhook_receiver() -> (u16, Deliveries) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = std::sync::Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = String::new();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
                headers.push_str(&line);
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            record
                .lock()
                .unwrap()
                .push((headers, String::from_utf8_lossy(&body).to_string()));
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (port, seen)
}

const WEBHOOK_SECRET: &str = "a-webhook-secret-of-some-length";

#[test]
fn a_held_delete_runs_once_after_approval_on_another_gateway() {
    let (hook_port, hooks) = webhook_receiver();
    let notifications = format!(
        "notifications:\n  webhooks:\n    - name: dba-slack\n      url: http://127.0.0.1:{hook_port}/hook\n      approver_groups: [dba]\n      format: slack\n      secret_env: AIRLOCK_WEBHOOK_SECRET\n"
    );
    let cluster = airlock_testkit::PgCluster::start();
    let gateway = GatewayProcess::start_with_policy_and_env(
        common::binary(),
        &common::config(&cluster, &notifications),
        POLICY,
        &[("AIRLOCK_WEBHOOK_SECRET", WEBHOOK_SECRET)],
    );
    gateway.set_credential("app", "app", &cluster.role_password("app"));
    cluster.sql_in(
        "appdb",
        "create table items(id int primary key, name text); insert into items select g, 'n' || g from generate_series(1, 5) g; \
         create table vault(secret text); grant all on items, vault to app",
    );
    let replica = gateway.start_sibling();
    let agent = common::issue_for(&gateway, "pg-test", "agent-7", "agent", &["agents"]);
    let agent_as_dba = common::issue_for(&gateway, "pg-test", "agent-7", "agent", &["dba"]);
    let alice = common::issue_for(&gateway, "pg-test", "alice", "human", &["dba", "security"]);
    let bob = common::issue_for(&gateway, "pg-test", "bob", "human", &["dba"]);
    let carol = common::issue_for(&gateway, "pg-test", "carol", "human", &["finance"]);

    // The agent's DELETE, through the replica, waits for a person.
    let waiting = psql_background(&replica, &agent, "delete from items where id = 1");
    let review = pending_review(&gateway);
    let id = review["id"].as_str().unwrap().to_string();
    assert_eq!(review["identity"], "agent-7");
    assert_eq!(review["rule"], "deletes-need-review");
    assert_eq!(review["statement"], "delete from items where id = 1");
    assert_eq!(
        cluster.sql_in("appdb", "select count(*) from items"),
        "5",
        "it ran before approval"
    );

    // The approvers' webhook hears about it, signed.
    let deadline = Instant::now() + Duration::from_secs(10);
    while hooks.lock().unwrap().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (headers, body) = hooks
        .lock()
        .unwrap()
        .first()
        .cloned()
        .expect("no webhook delivery");
    let signature = headers
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("x-airlock-signature")
                .then(|| value.trim().to_string())
        })
        .expect("a signature header");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(airlock_notify::verify_signature(
        WEBHOOK_SECRET.as_bytes(),
        &signature,
        body.as_bytes(),
        now,
        300
    ));
    assert!(!airlock_notify::verify_signature(
        b"another-secret-entirely",
        &signature,
        body.as_bytes(),
        now,
        300
    ));
    assert!(
        body.contains(&format!("airlock review approve {id}")),
        "{body}"
    );
    assert!(body.contains("\"text\""), "not a Slack payload: {body}");

    // Nobody approves their own request; only approver groups decide (to
    // anyone else the review does not exist); the admin token cannot
    // approve.
    let own = common::as_person(&gateway, &agent_as_dba, &["review", "approve", &id]);
    assert!(!own.status.success());
    assert!(
        stderr(&own).contains("cannot decide it"),
        "{}",
        stderr(&own)
    );
    let outsider = common::as_person(&gateway, &carol, &["review", "approve", &id]);
    assert!(
        stderr(&outsider).contains(&format!("review {id} not found")),
        "{}",
        stderr(&outsider)
    );
    let admin = gateway.cli(&["review", "approve", &id], None);
    assert!(!admin.status.success());

    // Alice approves through the first gateway: the replica releases it.
    let approved = common::as_person(
        &gateway,
        &alice,
        &["review", "approve", &id, "--comment", "one row, fine"],
    );
    assert!(approved.status.success(), "{}", stderr(&approved));
    let output = waiting.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let notice = String::from_utf8_lossy(&output.stderr);
    assert!(
        notice.contains(&format!(
            "review {id} required by rule \"deletes-need-review\" (policy v1)"
        )),
        "{notice}"
    );
    assert!(
        notice.contains(&format!("airlock review approve {id}")),
        "{notice}"
    );
    assert_eq!(cluster.sql_in("appdb", "select count(*) from items"), "4");

    // Once: the same statement needs a new review; a denial never reaches
    // the upstream.
    let again = psql_background(&gateway, &agent, "delete from items where id = 1");
    let second = pending_review(&gateway);
    assert_ne!(second["id"], review["id"]);
    let second_id = second["id"].as_str().unwrap();
    let denied = common::as_person(
        &replica,
        &bob,
        &["review", "deny", second_id, "--reason", "already gone"],
    );
    assert!(denied.status.success(), "{}", stderr(&denied));
    let output = again.wait_with_output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("was denied: already gone"));
    assert_eq!(
        statement_count(&cluster, "delete from items where id = 1"),
        1,
        "a denied command reached the upstream"
    );

    // Two approvals needed, and a waiting command times out cleanly.
    let update = "update items set name = 'x' where id = 2";
    let output = gateway.psql(&agent, "agent-7", "pg-test", "disable", update);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("was not approved within 2 s"),
        "{}",
        stderr(&output)
    );
    let pending = pending_review(&gateway);
    let update_id = pending["id"].as_str().unwrap();
    let first = common::as_person(
        &gateway,
        &alice,
        &["review", "approve", update_id, "--output", "json"],
    );
    let first: Value = serde_json::from_str(&String::from_utf8_lossy(&first.stdout)).unwrap();
    assert_eq!(first["status"], "pending");
    assert_eq!(first["approvals"], 1);
    let twice = common::as_person(&gateway, &alice, &["review", "approve", update_id]);
    assert!(
        stderr(&twice).contains("already decided"),
        "{}",
        stderr(&twice)
    );
    assert!(
        common::as_person(&gateway, &bob, &["review", "approve", update_id])
            .status
            .success()
    );
    let output = gateway.psql(&agent, "agent-7", "pg-test", "disable", update);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        cluster.sql_in("appdb", "select name from items where id = 2"),
        "x"
    );

    // MFA: refused without a code, with a wrong, a reused or an old code.
    let insert = "insert into vault values ('k')";
    let output = gateway.psql(&agent, "agent-7", "pg-test", "disable", insert);
    assert!(
        stderr(&output).contains("approve with: airlock review approve"),
        "{}",
        stderr(&output)
    );
    let vault_review = pending_review(&gateway);
    let vault_id = vault_review["id"].as_str().unwrap();
    let no_code = common::as_person(&gateway, &alice, &["review", "approve", vault_id]);
    assert!(
        stderr(&no_code).contains("requires MFA"),
        "{}",
        stderr(&no_code)
    );
    let agent_enroll = common::as_person(&gateway, &agent, &["mfa", "enroll"]);
    assert!(
        stderr(&agent_enroll).contains("only human identities"),
        "{}",
        stderr(&agent_enroll)
    );
    let enrolled = common::as_person(&gateway, &alice, &["mfa", "enroll", "--output", "json"]);
    let enrolled: Value = serde_json::from_str(&String::from_utf8_lossy(&enrolled.stdout)).unwrap();
    let uri = enrolled["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/airlock:alice?"), "{uri}");
    let secret = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let secret = airlock_mfa::TotpSecret::from_base32(secret).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = airlock_mfa::code_at(&secret, now);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let refused = common::as_person(
        &gateway,
        &alice,
        &["review", "approve", vault_id, "--totp", wrong],
    );
    assert!(
        stderr(&refused).contains("MFA code refused"),
        "{}",
        stderr(&refused)
    );
    let old = airlock_mfa::code_at(&secret, now - 300);
    let refused = common::as_person(
        &gateway,
        &alice,
        &["review", "approve", vault_id, "--totp", &old],
    );
    assert!(
        stderr(&refused).contains("MFA code refused"),
        "{}",
        stderr(&refused)
    );
    let ok = common::as_person(
        &gateway,
        &alice,
        &["review", "approve", vault_id, "--totp", &code],
    );
    assert!(ok.status.success(), "{}", stderr(&ok));
    // The same code again, for another review, is a replay.
    let output = gateway.psql(
        &agent,
        "agent-7",
        "pg-test",
        "disable",
        "insert into vault values ('k2')",
    );
    assert!(!output.status.success());
    let another = pending_review(&gateway);
    let replay = common::as_person(
        &gateway,
        &alice,
        &[
            "review",
            "approve",
            another["id"].as_str().unwrap(),
            "--totp",
            &code,
        ],
    );
    assert!(
        stderr(&replay).contains("MFA code refused"),
        "{}",
        stderr(&replay)
    );
    let output = gateway.psql(&agent, "agent-7", "pg-test", "disable", insert);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(cluster.sql_in("appdb", "select count(*) from vault"), "1");

    // Everything is audited, and the chain holds across both processes.
    let events = common::events(&gateway);
    for kind in [
        "review.created",
        "review.approve",
        "review.deny",
        "mfa.enroll",
    ] {
        assert!(
            events.iter().any(|event| event.kind == kind),
            "no {kind} event"
        );
    }
    let ran = events
        .iter()
        .find(|event| event.kind == "command" && event.data["policy"]["review"] == id.as_str())
        .expect("the approved command names its review");
    assert_eq!(ran.data["decision"], "forward");
    let verified = gateway.cli_ok(&["audit", "verify"], None);
    assert!(verified.starts_with("OK:"), "{verified}");
}

/// A personal token sees the reviews it requested and those it may decide,
/// nothing else: another identity's review is "not found" (list, show,
/// approve); the admin token sees all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_are_visible_to_their_requester_and_approvers_only() {
    const HOLD_DELETES: &str = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: deletes-need-review
    match: {operations: [delete]}
    action: review
    approvers: dba
";
    let (cluster, gateway) = common::setup_with_policy("", HOLD_DELETES);
    cluster.sql_in(
        "appdb",
        "create table items(id int primary key); insert into items values (1), (2); grant all on items to app",
    );
    let agent_7 = common::issue_for(&gateway, "pg-test", "agent-7", "agent", &["agents"]);
    let agent_8 = common::issue_for(&gateway, "pg-test", "agent-8", "agent", &["agents"]);
    let approver = common::issue_for(&gateway, "pg-test", "alice", "human", &["dba"]);
    let outsider = common::issue_for(&gateway, "pg-test", "bob", "human", &["security"]);

    let mut review_of = std::collections::HashMap::new();
    for (name, token, id) in [("agent-7", &agent_7, 1), ("agent-8", &agent_8, 2)] {
        let client = common::client(&gateway, name, "pg-test", token).await;
        let error = client
            .batch_execute(&format!("delete from items where id = {id}"))
            .await
            .unwrap_err();
        let message = error.as_db_error().unwrap().message().to_string();
        let review = message
            .split_whitespace()
            .nth(1)
            .unwrap()
            .trim_end_matches(':')
            .to_string();
        assert!(review.starts_with("r-"), "{message}");
        review_of.insert(name, review);
    }
    assert_eq!(cluster.sql_in("appdb", "select count(*) from items"), "2");

    let listed = |token: &str| -> Vec<String> {
        let (status, _, body) = common::http(&gateway, "GET", "/api/v1/reviews", token, None);
        assert_eq!(status, 200, "{body}");
        let list: Value = serde_json::from_str(&body).unwrap();
        let mut identities: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|review| review["identity"].as_str().unwrap().to_string())
            .collect();
        identities.sort();
        identities
    };
    assert_eq!(listed(&agent_7), ["agent-7"]);
    assert_eq!(listed(&agent_8), ["agent-8"]);
    assert_eq!(listed(&approver), ["agent-7", "agent-8"]);
    assert!(listed(&outsider).is_empty());
    assert_eq!(listed(&gateway.admin_token), ["agent-7", "agent-8"]);

    let other = &review_of["agent-8"];
    let show = |token: &str, id: &str| {
        common::http(
            &gateway,
            "GET",
            &format!("/api/v1/reviews/{id}"),
            token,
            None,
        )
    };
    let (status, _, body) = show(&agent_7, other);
    assert_eq!(status, 404, "{body}");
    assert!(!body.contains("delete from items"), "{body}");
    assert_eq!(show(&outsider, other).0, 404);
    assert_eq!(show(&agent_8, other).0, 200);
    assert_eq!(show(&approver, other).0, 200);
    assert_eq!(show(&gateway.admin_token, other).0, 200);
    // Deciding a review one cannot see is "not found" as well.
    let (status, _, body) = common::http(
        &gateway,
        "POST",
        &format!("/api/v1/reviews/{other}/approve"),
        &outsider,
        Some("{}"),
    );
    assert_eq!(status, 404, "{body}");
    let (status, _, body) = common::http(
        &gateway,
        "POST",
        &format!("/api/v1/reviews/{other}/approve"),
        &approver,
        Some("{}"),
    );
    assert_eq!(status, 200, "{body}");
}
