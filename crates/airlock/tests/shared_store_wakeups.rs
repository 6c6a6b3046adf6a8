//! Wake-ups across replicas on one shared PostgreSQL store (a throwaway
//! cluster), in front of a real upstream PostgreSQL: each replica keeps a
//! `LISTEN` connection on the store, and the store's writers `NOTIFY` in
//! their transaction. With the listener up a replica polls only every few
//! seconds (5 s for the policy and the live sessions' tokens, 2 s for a
//! held review), so what these tests see within a second came through the
//! notification; what they see after a listener is cut came through the
//! reconnect's resync. Every enforcement is checked on the upstream.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use airlock_testkit::{pg_client, GatewayProcess, PgCluster};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::replicas::{
    clusters, count, listeners, start_replica, start_replica_with_policy, wait_for_listeners,
};

const DENY_DELETES: &str = "version: 1\ndefault: deny\nrules:\n  - name: reads\n    match: {access: read}\n    action: allow\n  - name: no-deletes\n    match: {operations: [delete]}\n    action: deny\n    message: deletes are not allowed\n  - name: other-writes\n    match: {access: write}\n    action: allow\n";

const ALLOW_DELETES: &str =
    "version: 1\ndefault: deny\nrules:\n  - name: everything\n    match: {}\n    action: allow\n";

fn apply(replica: &GatewayProcess, name: &str, policy: &str) {
    let file = replica.data_dir().join(format!("{name}.yaml"));
    std::fs::write(&file, policy).unwrap();
    replica.cli_ok(&["policy", "apply", file.to_str().unwrap()], None);
}

/// Runs a DELETE of a row that does not exist on `replica` until it is
/// refused by `no-deletes` (`true`) or allowed (`false`) as `refused`
/// wants; returns how long that took. At most `limit`.
fn until_deletes(
    replica: &GatewayProcess,
    token: &str,
    refused: bool,
    limit: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let output = replica.psql(
            token,
            "agent-7",
            "pg-test",
            "require",
            "delete from items where id = 999",
        );
        let blocked = common::stderr(&output).contains("blocked by rule \"no-deletes\"");
        assert!(
            blocked || output.status.success(),
            "{}",
            common::stderr(&output)
        );
        if blocked == refused {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "the policy change did not reach the replica within {limit:?}:\n{}",
            replica.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Three replicas: a policy applied through C is enforced by A's next
/// command within a second, three versions in a row (polling alone would
/// take up to 5 s each); the DELETE A then refuses did not reach the
/// upstream. A DELETE held for review on B is released by an approval
/// through A within a second, and its row is gone upstream.
#[test]
fn a_policy_applied_through_c_and_a_review_decided_through_a_act_at_once_elsewhere() {
    let (store, upstream, config) = clusters();
    let a = start_replica(&config, &store);
    let b = start_replica(&config, &store);
    let c = start_replica(&config, &store);
    wait_for_listeners(&store, 3);
    a.set_credential("app", "app", &upstream.role_password("app"));
    let (_, token) = a.issue_token("agent-7", &["pg-test"], "1h");

    for (round, (name, policy, refused)) in [
        ("deny-1", DENY_DELETES, true),
        ("allow", ALLOW_DELETES, false),
        ("deny-2", DENY_DELETES, true),
    ]
    .into_iter()
    .enumerate()
    {
        apply(&c, name, policy);
        let took = until_deletes(&a, &token, refused, Duration::from_secs(3));
        eprintln!(
            "round {round}: A enforced C's policy after {} ms",
            took.as_millis()
        );
        assert!(took < Duration::from_secs(1), "round {round}: {took:?}");
    }
    let output = a.psql(
        &token,
        "agent-7",
        "pg-test",
        "require",
        "delete from items where id = 5",
    );
    assert!(!output.status.success(), "A ran a denied delete");
    assert_eq!(
        count(&upstream),
        "5",
        "the denied delete reached the upstream"
    );

    // A review held on B, decided through A.
    let review_policy = "version: 1\ndefault: deny\nrules:\n  - name: reads\n    match: {access: read}\n    action: allow\n  - name: deletes-need-review\n    match: {operations: [delete]}\n    action: review\n    approvers: dba\n    wait: 20s\n";
    apply(&c, "review", review_policy);
    let agent = common::issue_for(&a, "pg-test", "agent-7", "agent", &["agents"]);
    let alice = common::issue_for(&a, "pg-test", "alice", "human", &["dba"]);
    // B has the review policy once it holds a DELETE (rather than deny it).
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let output = b.psql(
            &agent,
            "agent-7",
            "pg-test",
            "require",
            "show server_version",
        );
        assert!(output.status.success(), "{}", common::stderr(&output));
        let version = b.cli_ok(&["policy", "show", "--output", "json"], None);
        if version.contains("deletes-need-review") {
            break;
        }
        assert!(Instant::now() < deadline, "B never saw the review policy");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut waiting = Command::new(pg_client("psql"))
        .arg(b.conninfo("agent-7", "pg-test", "disable"))
        .args([
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "delete from items where id = 1",
        ])
        .env("PGPASSWORD", &agent)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let id = loop {
        let list: serde_json::Value =
            serde_json::from_str(&a.cli_ok(&["review", "list", "--output", "json"], None)).unwrap();
        if let Some(id) = list
            .as_array()
            .and_then(|list| list.first())
            .and_then(|review| review["id"].as_str())
        {
            break id.to_string();
        }
        assert!(Instant::now() < deadline, "no pending review:\n{}", b.log());
        std::thread::sleep(Duration::from_millis(50));
    };
    // Let B settle into its wait (its fallback poll is 2 s apart).
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(count(&upstream), "5", "it ran before approval");
    let approved = common::as_person(&a, &alice, &["review", "approve", &id]);
    assert!(approved.status.success(), "{}", common::stderr(&approved));
    let approved_at = Instant::now();
    let status = loop {
        if let Some(status) = waiting.try_wait().unwrap() {
            break status;
        }
        assert!(
            approved_at.elapsed() < Duration::from_secs(5),
            "B did not release the command"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let released_after = approved_at.elapsed();
    let output = waiting.wait_with_output().unwrap();
    assert!(
        status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!(
        "released {} ms after the approval",
        released_after.as_millis()
    );
    assert!(
        released_after < Duration::from_secs(1),
        "{released_after:?}"
    );
    assert_eq!(
        upstream
            .sql_in("appdb", "select count(*) from items where id = 1")
            .trim(),
        "0",
        "the approved delete did not run upstream"
    );
    assert_eq!(count(&upstream), "4");
}

/// The store ends every replica's listening connection; a policy applied
/// right then (its notification may reach no one) is still enforced on
/// A within the reconnect (0.5 s) and its resync, and the listeners are
/// back.
#[test]
fn a_lost_listener_connection_only_delays_a_change() {
    let (store, upstream, config) = clusters();
    let a = start_replica(&config, &store);
    let c = start_replica(&config, &store);
    wait_for_listeners(&store, 2);
    a.set_credential("app", "app", &upstream.role_password("app"));
    let (_, token) = a.issue_token("agent-7", &["pg-test"], "1h");
    until_deletes(&a, &token, false, Duration::from_secs(1));

    store.sql_in(
        "airlock_state",
        "select pg_terminate_backend(pid) from pg_stat_activity \
         where application_name = 'airlock-listen'",
    );
    apply(&c, "deny", DENY_DELETES);
    let took = until_deletes(&a, &token, true, Duration::from_secs(4));
    eprintln!(
        "enforced {} ms after the listeners were cut",
        took.as_millis()
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
    wait_for_listeners(&store, 2);
    let output = a.psql(
        &token,
        "agent-7",
        "pg-test",
        "require",
        "delete from items where id = 2",
    );
    assert!(!output.status.success());
    assert_eq!(count(&upstream), "5");
    assert_eq!(listeners(&store), 2);
}

/// An interactive psql on `replica`, reading statements from its stdin.
fn open_psql(
    replica: &GatewayProcess,
    user: &str,
    connection: &str,
    token: &str,
) -> std::process::Child {
    Command::new(pg_client("psql"))
        .arg(replica.conninfo(user, connection, "require"))
        .args(["-X", "-At", "-v", "ON_ERROR_STOP=1"])
        .env("PGPASSWORD", token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Upstream backends of role `app` (the gateway's sessions).
fn app_backends(upstream: &PgCluster) -> usize {
    upstream
        .sql_in(
            "appdb",
            "select count(*) from pg_stat_activity where usename = 'app'",
        )
        .trim()
        .parse()
        .unwrap()
}

/// A psql session lives on B; its token is revoked through A: B closes
/// the session within ~1 s (woken by the notification; its own poll is
/// 5 s apart), the upstream backend is gone, and a statement the client
/// sends afterwards never runs.
#[test]
fn a_token_revoked_through_a_closes_its_live_session_on_b() {
    let (store, upstream, config) = clusters();
    let a = start_replica(&config, &store);
    let b = start_replica(&config, &store);
    wait_for_listeners(&store, 2);
    a.set_credential("app", "app", &upstream.role_password("app"));
    let (token_id, token) = a.issue_token("agent-7", &["pg-test"], "1h");
    let (_, other) = a.issue_token("agent-8", &["pg-test"], "1h");
    let open = |replica: &GatewayProcess, user: &str, token: &str| {
        open_psql(replica, user, "pg-test", token)
    };
    let mut session = open(&b, "agent-7", &token);
    let mut bystander = open(&b, "agent-8", &other);
    for psql in [&mut session, &mut bystander] {
        psql.stdin
            .as_mut()
            .unwrap()
            .write_all(b"select 'ready';\n")
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while app_backends(&upstream) < 2 {
        assert!(
            Instant::now() < deadline,
            "the sessions never reached the upstream"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let live: serde_json::Value =
        serde_json::from_str(&b.cli_ok(&["session", "live", "--output", "json"], None)).unwrap();
    assert_eq!(live.as_array().map(Vec::len), Some(2), "{live}");

    a.cli_ok(&["token", "revoke", &token_id], None);
    let revoked_at = Instant::now();
    while app_backends(&upstream) > 1 {
        assert!(
            revoked_at.elapsed() < Duration::from_secs(4),
            "B kept the revoked token's session open:\n{}",
            b.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let closed_after = revoked_at.elapsed();
    eprintln!(
        "closed on B {} ms after the revocation on A",
        closed_after.as_millis()
    );
    assert!(
        closed_after < Duration::from_millis(1500),
        "{closed_after:?}"
    );

    // The client's next statement never runs; the bystander's session lives.
    {
        let stdin = session.stdin.as_mut().unwrap();
        let _ = stdin.write_all(b"insert into items values (100, 'after revoke');\n");
    }
    drop(session.stdin.take());
    let output = session.wait_with_output().unwrap();
    assert!(
        !output.status.success(),
        "psql on B went on after the revocation"
    );
    assert_eq!(
        upstream
            .sql_in("appdb", "select count(*) from items where id = 100")
            .trim(),
        "0",
        "a statement after the revocation ran"
    );
    {
        let stdin = bystander.stdin.as_mut().unwrap();
        stdin
            .write_all(b"insert into items values (101, 'bystander');\n")
            .unwrap();
    }
    drop(bystander.stdin.take());
    let output = bystander.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        upstream
            .sql_in("appdb", "select count(*) from items where id = 101")
            .trim(),
        "1"
    );
    let live: serde_json::Value =
        serde_json::from_str(&b.cli_ok(&["session", "live", "--output", "json"], None)).unwrap();
    assert_eq!(live.as_array().map(Vec::len), Some(0), "{live}");
}

const JIT_POLICY: &str = "version: 1
default: deny
rules:
  - name: everything
    match: {}
    action: allow
access:
  - name: oncall-quick
    match:
      identity: {groups: [oncall]}
    max_duration: 10m
    auto_approve: true
  - name: dbas-standing
    match:
      identity: {groups: [dba]}
    standing: true
";

/// A JIT grant made through B admits a session on B; the grant is revoked
/// through A: B closes that session within ~1 s (the upstream backend is
/// gone, a later INSERT never runs), while a session on B under a standing
/// rule for the same connection stays.
#[test]
fn a_grant_revoked_through_a_closes_the_session_it_admitted_on_b() {
    let (store, upstream, config) = clusters();
    let jit = format!(
        "  - name: pg-jit\n    protocol: postgres\n    address: 127.0.0.1:{}\n    database: appdb\n    credential: app\n    access: jit\nstore: ",
        upstream.port
    );
    let config = config.replacen("store: ", &jit, 1);
    let a = start_replica_with_policy(&config, &store, JIT_POLICY);
    let b = start_replica_with_policy(&config, &store, JIT_POLICY);
    wait_for_listeners(&store, 2);
    a.set_credential("app", "app", &upstream.role_password("app"));
    let oncall = common::issue_for(&a, "pg-jit", "agent-9", "agent", &["oncall"]);
    let dba = common::issue_for(&a, "pg-jit", "alice", "human", &["dba"]);
    let granted = common::as_person(
        &b,
        &oncall,
        &[
            "access",
            "request",
            "--connection",
            "pg-jit",
            "--duration",
            "5m",
            "--reason",
            "pager",
            "--output",
            "json",
        ],
    );
    let granted: serde_json::Value = serde_json::from_str(&common::stdout(&granted)).unwrap();
    assert_eq!(granted["status"], "granted", "{granted}");
    let grant_id = granted["grant_id"].as_str().unwrap().to_string();

    let mut session = open_psql(&b, "agent-9", "pg-jit", &oncall);
    let mut standing = open_psql(&b, "alice", "pg-jit", &dba);
    for psql in [&mut session, &mut standing] {
        psql.stdin
            .as_mut()
            .unwrap()
            .write_all(b"select 'ready';\n")
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while app_backends(&upstream) < 2 {
        assert!(
            Instant::now() < deadline,
            "the sessions never reached the upstream"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let revoked: serde_json::Value =
        serde_json::from_str(&a.cli_ok(&["access", "revoke", &grant_id, "--output", "json"], None))
            .unwrap();
    assert_eq!(
        revoked["sessions_closed"], 0,
        "A had no session of it: {revoked}"
    );
    let revoked_at = Instant::now();
    while app_backends(&upstream) > 1 {
        assert!(
            revoked_at.elapsed() < Duration::from_secs(4),
            "B kept the session of a revoked grant:\n{}",
            b.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let closed_after = revoked_at.elapsed();
    eprintln!(
        "closed on B {} ms after the grant was revoked on A",
        closed_after.as_millis()
    );
    assert!(
        closed_after < Duration::from_millis(1500),
        "{closed_after:?}"
    );
    let _ = session
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"insert into items values (200, 'after revoke');\n");
    drop(session.stdin.take());
    assert!(!session.wait_with_output().unwrap().status.success());
    standing
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"insert into items values (201, 'standing');\n")
        .unwrap();
    drop(standing.stdin.take());
    let output = standing.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        upstream
            .sql_in(
                "appdb",
                "select string_agg(id::text, ',' order by id) from items where id >= 200"
            )
            .trim(),
        "201"
    );
}

/// Without a change feed (two processes on one SQLite data dir) the same
/// sweep runs by polling (every second): a token revoked through one
/// closes its live session on the other within ~2 s.
#[test]
fn without_a_feed_polling_closes_a_revoked_tokens_session_on_a_sibling() {
    let (upstream, a) = common::setup("");
    upstream.sql_in(
        "appdb",
        "create table items(id int primary key, name text); grant all on items to app",
    );
    let b = a.start_sibling();
    let (token_id, token) = a.issue_token("agent-7", &["pg-test"], "1h");
    let mut session = open_psql(&b, "agent-7", "pg-test", &token);
    session
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"select 'ready';\n")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while app_backends(&upstream) < 1 {
        assert!(
            Instant::now() < deadline,
            "the session never reached the upstream"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    a.cli_ok(&["token", "revoke", &token_id], None);
    let revoked_at = Instant::now();
    while app_backends(&upstream) > 0 {
        assert!(
            revoked_at.elapsed() < Duration::from_millis(2500),
            "the sibling kept the revoked token's session open:\n{}",
            b.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "closed on the sibling {} ms after the revocation",
        revoked_at.elapsed().as_millis()
    );
    let _ = session
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"insert into items values (300, 'after revoke');\n");
    drop(session.stdin.take());
    assert!(!session.wait_with_output().unwrap().status.success());
    assert_eq!(
        upstream
            .sql_in("appdb", "select count(*) from items where id = 300")
            .trim(),
        "0"
    );
}
