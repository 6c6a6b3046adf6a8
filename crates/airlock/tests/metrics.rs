//! End-to-end tests of observability: `GET /metrics` after a scripted
//! workload through the real gateway and a real PostgreSQL (exact counter
//! deltas, each enforcement also checked on the upstream) and a real
//! MariaDB (the same core hooks count MySQL sessions), `promtool check
//! metrics` on the scrape, the shipped alert rules under `promtool check
//! rules` and `promtool test rules`, the shipped dashboard's metric names
//! against a real scrape, and a JSON log that holds no raw value, token or
//! upstream password.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod httpbin;
mod mysql;

use airlock_testkit::{repo_file, GatewayProcess, PgCluster};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const POLICY: &str = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: no-drop
    match: {operations: [drop]}
    action: deny
    message: dropping tables is not allowed
  - name: deletes-need-review
    match: {operations: [delete]}
    action: review
    approvers: dba
    wait: 30s
  - name: mask-emails
    match: {}
    mask:
      detectors: [email]
      style: partial
  - name: limited
    match: {identity: {name: agent-rl}}
    rate_limit: {per_minute: 2}
";

const EMAILS: [&str; 2] = ["jane.doe@example.com", "john.roe@example.org"];

/// One sample of a scrape: name and labels.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format (the subset airlock writes: no
/// escaped quotes in label values, no timestamps).
fn parse(scrape: &str) -> Vec<Sample> {
    scrape
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let labels = rest.trim_end_matches('}');
                    let labels = labels
                        .split("\",")
                        .filter(|pair| !pair.is_empty())
                        .map(|pair| {
                            let (key, value) = pair.split_once("=\"").expect("a label");
                            (key.to_string(), value.trim_end_matches('"').to_string())
                        })
                        .collect();
                    (name.to_string(), labels)
                }
                None => (series.to_string(), BTreeMap::new()),
            };
            Sample {
                name,
                labels,
                value: value.parse().expect("a number"),
            }
        })
        .collect()
}

/// The sum of `name`'s samples whose labels include `labels`.
fn sum(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|sample| sample.name == name)
        .filter(|sample| {
            labels
                .iter()
                .all(|(key, value)| sample.labels.get(*key).map(String::as_str) == Some(*value))
        })
        .map(|sample| sample.value)
        .sum()
}

/// `GET /metrics` with `accept`: (content type, body).
fn scrape_with(gateway: &GatewayProcess, accept: &str) -> (String, String) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", gateway.admin_port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let content_type = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default();
    (content_type, body.to_string())
}

fn scrape(gateway: &GatewayProcess) -> String {
    scrape_with(gateway, "text/plain").1
}

fn promtool(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; .ci/install-deps installs it)");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn setup() -> (PgCluster, GatewayProcess) {
    let (cluster, gateway) = common::setup_with_policy(
        "auth:\n  lockout_threshold: 3\n  lockout_duration: 5m\n",
        POLICY,
    );
    cluster.sql_in(
        "appdb",
        &format!(
            "create table people(id int primary key, email text); \
             insert into people values (1, '{}'), (2, '{}'); grant all on people to app",
            EMAILS[0], EMAILS[1]
        ),
    );
    (cluster, gateway)
}

fn pending_review(gateway: &GatewayProcess) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        let list: serde_json::Value =
            serde_json::from_str(&gateway.cli_ok(&["review", "list", "--output", "json"], None))
                .unwrap();
        if let Some(id) = list
            .as_array()
            .and_then(|list| list.first())
            .and_then(|review| review["id"].as_str())
        {
            return id.to_string();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no pending review appeared:\n{}", gateway.log());
}

/// The scripted workload: allowed (masked), denied, reviewed and approved,
/// rate-limited commands, failed logins and a lockout; then the exact
/// counters, each enforcement checked on the upstream too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_workload_counts_exactly() {
    let (cluster, gateway) = setup();
    let before = parse(&scrape(&gateway));
    let agent = common::issue_for(&gateway, "pg-test", "agent-7", "agent", &["agents"]);
    let limited = common::issue_for(&gateway, "pg-test", "agent-rl", "agent", &["agents"]);
    let alice = common::issue_for(&gateway, "pg-test", "alice", "human", &["dba"]);

    // Allowed and masked: two emails masked, never shown raw.
    let client = Arc::new(common::client(&gateway, "agent-7", "pg-test", &agent).await);
    let rows = client
        .simple_query("select email from people order by id")
        .await
        .unwrap();
    let shown: Vec<String> = rows
        .iter()
        .filter_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .collect();
    assert_eq!(shown.len(), 2);
    for (value, raw) in shown.iter().zip(EMAILS) {
        assert_ne!(value, raw, "an email was shown raw");
    }

    // Denied: the table is still there upstream.
    let error = client.batch_execute("drop table people").await.unwrap_err();
    assert!(
        error
            .as_db_error()
            .unwrap()
            .message()
            .contains("dropping tables is not allowed"),
        "{error:?}"
    );
    assert_eq!(cluster.sql_in("appdb", "select count(*) from people"), "2");
    assert!(!cluster.log().contains("drop table people"));

    // Held for review, approved by alice, then run once upstream.
    let held = Arc::clone(&client);
    let delete =
        tokio::spawn(async move { held.batch_execute("delete from people where id = 1").await });
    let id = pending_review(&gateway);
    let approved = common::as_person(&gateway, &alice, &["review", "approve", &id]);
    assert!(approved.status.success(), "{}", common::stderr(&approved));
    delete.await.unwrap().unwrap();
    assert_eq!(cluster.sql_in("appdb", "select count(*) from people"), "1");

    // Rate-limited: two run, the third never reaches the upstream.
    let rl = common::client(&gateway, "agent-rl", "pg-test", &limited).await;
    rl.batch_execute("select 'rate-probe'").await.unwrap();
    rl.batch_execute("select 'rate-probe'").await.unwrap();
    let error = rl.batch_execute("select 'rate-probe'").await.unwrap_err();
    assert_eq!(error.as_db_error().unwrap().code().code(), "53400");
    assert_eq!(cluster.log().matches("select 'rate-probe'").count(), 2);

    // Failed logins: a revoked token, then three wrong ones lock agent-x out.
    let (revoked_id, revoked) = gateway.issue_token("agent-rv", &["pg-test"], "15m");
    gateway.cli_ok(&["token", "revoke", &revoked_id], None);
    assert!(common::connect(&gateway, "agent-rv", "pg-test", &revoked)
        .await
        .is_err());
    for _ in 0..3 {
        let error = common::connect(&gateway, "agent-x", "pg-test", "wrong-token")
            .await
            .err()
            .expect("a wrong token is refused");
        assert_eq!(error.as_db_error().unwrap().code().code(), "28P01");
    }
    let error = common::connect(&gateway, "agent-x", "pg-test", "wrong-token")
        .await
        .err()
        .expect("a locked-out identity is refused");
    assert_eq!(error.as_db_error().unwrap().code().code(), "28000");

    drop(rl);
    drop(client);
    let mut after = parse(&scrape(&gateway));
    let deadline = Instant::now() + Duration::from_secs(10);
    while sum(&after, "airlock_sessions_active", &[]) > 0.0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = parse(&scrape(&gateway));
    }
    let delta = |name: &str, labels: &[(&str, &str)]| {
        sum(&after, name, labels) - sum(&before, name, labels)
    };
    let pg = ("protocol", "postgres");
    let conn = ("connection", "pg-test");
    for (verdict, expected) in [
        ("allow", 3.0),
        ("deny", 1.0),
        ("review", 1.0),
        ("rate_limited", 1.0),
        ("unavailable", 0.0),
    ] {
        assert_eq!(
            delta("airlock_commands_total", &[pg, conn, ("verdict", verdict)]),
            expected,
            "verdict {verdict}"
        );
    }
    assert_eq!(
        delta(
            "airlock_command_refusals_by_rule_total",
            &[conn, ("rule", "no-drop"), ("verdict", "deny")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            "airlock_command_refusals_by_rule_total",
            &[conn, ("rule", "deletes-need-review"), ("verdict", "review")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            "airlock_command_refusals_by_rule_total",
            &[conn, ("rule", "limited"), ("verdict", "rate_limited")]
        ),
        1.0
    );
    assert_eq!(
        delta("airlock_rate_limited_total", &[("rule", "limited")]),
        1.0
    );
    // The select and the two selects that ran under the limit: the reads
    // rule allowed them (the approved delete is counted as a review).
    assert_eq!(
        delta(
            "airlock_commands_allowed_by_rule_total",
            &[pg, conn, ("rule", "reads")]
        ),
        3.0
    );
    assert_eq!(
        delta("airlock_commands_allowed_by_rule_total", &[pg, conn]),
        3.0
    );
    assert_eq!(delta("airlock_decision_duration_seconds_count", &[pg]), 6.0);
    // Batches forwarded, the reviewed one left out: select, drop, the
    // Terminate of agent-7; three selects and the Terminate of agent-rl.
    assert_eq!(
        delta("airlock_gateway_added_duration_seconds_count", &[pg]),
        7.0
    );
    assert_eq!(
        delta("airlock_masked_values_total", &[pg, ("detector", "email")]),
        2.0
    );
    assert!(delta("airlock_upstream_duration_seconds_count", &[pg, conn]) >= 4.0);
    assert_eq!(
        delta(
            "airlock_reviews_created_total",
            &[("kind", "command"), conn, ("rule", "deletes-need-review")]
        ),
        1.0
    );
    assert_eq!(
        delta("airlock_reviews_decided_total", &[("outcome", "approved")]),
        1.0
    );
    assert_eq!(
        delta("airlock_review_decision_duration_seconds_count", &[]),
        1.0
    );
    assert_eq!(sum(&after, "airlock_reviews_pending", &[]), 0.0);
    assert_eq!(delta("airlock_sessions_started_total", &[pg, conn]), 2.0);
    assert_eq!(delta("airlock_sessions_ended_total", &[pg, conn]), 2.0);
    assert_eq!(sum(&after, "airlock_sessions_active", &[]), 0.0);
    assert_eq!(
        delta("airlock_session_duration_seconds_count", &[pg, conn]),
        2.0
    );
    assert_eq!(
        delta(
            "airlock_auth_failures_total",
            &[pg, ("reason", "unknown_token")]
        ),
        3.0
    );
    assert_eq!(
        delta("airlock_auth_failures_total", &[pg, ("reason", "revoked")]),
        1.0
    );
    assert_eq!(delta("airlock_auth_failures_total", &[pg]), 4.0);
    assert_eq!(
        delta("airlock_auth_lockouts_total", &[pg, ("scope", "identity")]),
        1.0
    );
    assert_eq!(sum(&after, "airlock_auth_active_lockouts", &[]), 1.0);
    assert_eq!(delta("airlock_upstream_connect_failures_total", &[]), 0.0);
    assert_eq!(delta("airlock_recording_refusals_total", &[]), 0.0);
    assert!(delta("airlock_journal_appends_total", &[]) > 0.0);
    // The delete has an effect: its record was synced before it ran.
    assert!(delta("airlock_journal_fsync_duration_seconds_count", &[]) >= 1.0);
    assert_eq!(sum(&after, "airlock_policy_version", &[]), 1.0);
    assert_eq!(
        sum(
            &after,
            "airlock_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    // The generated certificate's expiry, in the future.
    let expiry = sum(
        &after,
        "airlock_tls_certificate_expiry_timestamp_seconds",
        &[],
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(expiry > now, "{expiry}");
    // No identity labels by default, no secret anywhere.
    let text = scrape(&gateway);
    assert!(!text.contains("identity=\""), "{text}");
    for secret in [
        agent.as_str(),
        limited.as_str(),
        alice.as_str(),
        EMAILS[0],
        EMAILS[1],
    ] {
        assert!(!text.contains(secret));
    }
    assert!(!text.contains(&cluster.role_password("app")));

    // promtool accepts the scrape.
    let (ok, report) = promtool(&["check", "metrics"], Some(&text));
    assert!(ok, "promtool check metrics:\n{report}\n{text}");

    // OpenMetrics when asked.
    let (content_type, body) = scrape_with(&gateway, "application/openmetrics-text; version=1.0.0");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(body.ends_with("# EOF\n"));
    assert!(body.contains("# TYPE airlock_commands counter"));

    every_dashboard_metric_is_scraped(&text);
}

/// Every metric name the dashboard's queries use is in a real scrape.
fn every_dashboard_metric_is_scraped(scrape: &str) {
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_file("deploy/grafana/airlock.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(dashboard["uid"], "airlock-gateway");
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|variable| variable["name"].as_str())
        .collect();
    assert_eq!(variables, ["datasource", "instance"]);
    let scraped: std::collections::HashSet<String> = parse(scrape)
        .into_iter()
        .map(|sample| sample.name)
        .collect();
    let names = regex_names(&dashboard);
    assert!(names.len() >= 20, "{names:?}");
    for name in &names {
        assert!(
            scraped.contains(name),
            "the dashboard uses {name}, which no scrape holds"
        );
    }
}

/// `airlock_…` names in every panel query (and the instance variable's).
fn regex_names(dashboard: &serde_json::Value) -> std::collections::BTreeSet<String> {
    let mut queries: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| panel["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|target| target["expr"].as_str().map(str::to_string))
        .collect();
    queries.push(
        dashboard["templating"]["list"][1]["definition"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    let mut names = std::collections::BTreeSet::new();
    for query in queries {
        let mut rest = query.as_str();
        while let Some(at) = rest.find("airlock_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(tail[..end].to_string());
            rest = &tail[end..];
        }
    }
    names
}

/// The shipped alert rules load, and their unit tests pass (every alert
/// fires when it should and not before).
#[test]
fn alert_rules_pass_promtool() {
    let rules = repo_file("deploy/prometheus/airlock-rules.yaml");
    let tests = repo_file("deploy/prometheus/airlock-rules.test.yaml");
    let (ok, report) = promtool(&["check", "rules", rules.to_str().unwrap()], None);
    assert!(ok, "{report}");
    let (ok, report) = promtool(&["test", "rules", tests.to_str().unwrap()], None);
    assert!(ok, "{report}");
    // Every alert of the rules file has a test that expects it to fire.
    let rules_text = std::fs::read_to_string(&rules).unwrap();
    let tests_text = std::fs::read_to_string(&tests).unwrap();
    let alerts: Vec<&str> = rules_text
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- alert: "))
        .collect();
    assert!(alerts.len() >= 12, "{alerts:?}");
    for alert in alerts {
        assert!(
            tests_text.contains(&format!("alertname: {alert}")),
            "no promtool test for {alert}"
        );
    }
}

/// A session that handled PII and secrets, logged as JSON at debug level
/// (`log.format`, `log.level`): every line is JSON, the session's lines
/// carry its span, and no line holds a raw value, the token or the
/// upstream password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_hold_no_secret_or_raw_value() {
    let (cluster, gateway) = {
        let cluster = PgCluster::start();
        let gateway = GatewayProcess::start_with_policy(
            common::binary(),
            &common::config(&cluster, "log:\n  format: json\n  level: debug\n"),
            POLICY,
        );
        gateway.set_credential("app", "app", &cluster.role_password("app"));
        cluster.sql_in(
            "appdb",
            &format!(
                "create table people(id int primary key, email text); \
                 insert into people values (1, '{}'), (2, '{}'); grant all on people to app",
                EMAILS[0], EMAILS[1]
            ),
        );
        (cluster, gateway)
    };
    let token = common::issue_for(&gateway, "pg-test", "agent-7", "agent", &["agents"]);
    let client = common::client(&gateway, "agent-7", "pg-test", &token).await;
    client
        .simple_query("select email from people")
        .await
        .unwrap();
    let error = client
        .batch_execute(&format!(
            "select * from people where email = '{}' ; drop table people",
            EMAILS[0]
        ))
        .await;
    assert!(error.is_err());
    drop(client);
    assert!(
        common::connect(&gateway, "agent-7", "pg-test", "wrong-token")
            .await
            .is_err()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gateway.log().contains("session ended") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = gateway.log();
    let mut session_lines = 0;
    for line in log.lines().filter(|line| line.starts_with('{')) {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        if value["span"]["name"] == "session" && value["span"]["identity"] == "agent-7" {
            assert_eq!(value["span"]["protocol"], "postgres", "{line}");
            assert_eq!(value["span"]["connection"], "pg-test", "{line}");
            assert!(value["span"]["session"]
                .as_str()
                .is_some_and(|id| !id.is_empty()));
            session_lines += 1;
        }
    }
    assert!(session_lines >= 2, "{log}");
    assert!(
        log.contains("\"level\":\"DEBUG\"") || log.contains("session started"),
        "{log}"
    );
    let password = cluster.role_password("app");
    for (what, secret) in [
        ("an email", EMAILS[0]),
        ("an email", EMAILS[1]),
        ("the token", token.as_str()),
        ("the upstream password", password.as_str()),
        ("the wrong token", "wrong-token"),
    ] {
        assert!(!log.contains(secret), "the log holds {what}:\n{log}");
    }
}

/// `/healthz` is liveness; `/readyz` is ready only with a policy in place
/// (without one every command is refused), and says why it is not.
#[test]
fn readyz_needs_a_policy() {
    let cluster = PgCluster::start();
    let bare = GatewayProcess::start(common::binary(), &common::config(&cluster, ""));
    assert_eq!(bare.http_get("/healthz").unwrap().0, 200);
    let (status, body) = bare.http_get("/readyz").unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no policy is loaded"), "{body}");
    // Metrics are served all the same: the policy version is 0.
    let samples = parse(&scrape(&bare));
    assert_eq!(sum(&samples, "airlock_policy_version", &[]), 0.0);
}

/// `metrics.enabled: false` (for measuring what counting costs): no
/// route, sessions still work and the gateway is ready.
#[test]
fn metrics_can_be_switched_off() {
    let cluster = PgCluster::start();
    let gateway = GatewayProcess::start_with_policy(
        common::binary(),
        &common::config(&cluster, "metrics:\n  enabled: false\n"),
        common::ALLOW_ALL,
    );
    gateway.set_credential("app", "app", &cluster.role_password("app"));
    let (_, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let output = gateway.psql(&token, "agent-7", "pg-test", "disable", "select 1");
    assert!(output.status.success(), "{}", common::stderr(&output));
    let (status, body) = gateway.http_get("/metrics").unwrap();
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("metrics.enabled: false"), "{body}");
    assert_eq!(gateway.http_get("/readyz").unwrap().0, 200);
}

/// MySQL sessions are counted by the same core hooks, with no counting
/// code of the MySQL gateway's own besides reporting upstream answers.
#[test]
fn mysql_sessions_commands_and_failures_are_counted_by_the_core() {
    let policy = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: no-ddl
    match: {operations: [drop]}
    action: deny
  - name: mask-emails
    match: {}
    mask:
      detectors: [email]
      style: partial
";
    let (server, gateway) = mysql::setup("", policy);
    server.sql_in(
        "appdb",
        &format!("create table people(id int primary key, email varchar(64)); insert into people values (1, '{}');", EMAILS[0]),
    );
    let before = parse(&scrape(&gateway));
    let (_id, token) = gateway.issue_token("agent-7", &["shop-mysql"], "15m");
    let read = mysql::mariadb(
        &gateway,
        "agent-7",
        &token,
        "shop-mysql",
        true,
        "select email from people",
    );
    assert!(read.status.success(), "{}", mysql::err(&read));
    assert_ne!(mysql::out(&read), EMAILS[0]);
    let drop = mysql::mariadb(
        &gateway,
        "agent-7",
        &token,
        "shop-mysql",
        true,
        "drop table people",
    );
    assert!(!drop.status.success());
    assert_eq!(server.sql_in("appdb", "select count(*) from people"), "1");
    let wrong = mysql::mariadb(
        &gateway,
        "agent-7",
        "wrong-token",
        "shop-mysql",
        true,
        "select 1",
    );
    assert!(!wrong.status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut after = parse(&scrape(&gateway));
    while sum(&after, "airlock_sessions_active", &[]) > 0.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        after = parse(&scrape(&gateway));
    }
    let delta = |name: &str, labels: &[(&str, &str)]| {
        sum(&after, name, labels) - sum(&before, name, labels)
    };
    let my = ("protocol", "mysql");
    let conn = ("connection", "shop-mysql");
    assert_eq!(delta("airlock_sessions_started_total", &[my, conn]), 2.0);
    assert_eq!(delta("airlock_sessions_ended_total", &[my, conn]), 2.0);
    assert_eq!(
        delta("airlock_commands_total", &[my, conn, ("verdict", "deny")]),
        1.0
    );
    assert!(delta("airlock_commands_total", &[my, conn, ("verdict", "allow")]) >= 1.0);
    assert_eq!(
        delta(
            "airlock_command_refusals_by_rule_total",
            &[my, conn, ("rule", "no-ddl"), ("verdict", "deny")]
        ),
        1.0
    );
    assert_eq!(
        delta("airlock_masked_values_total", &[my, ("detector", "email")]),
        1.0
    );
    assert!(delta("airlock_upstream_duration_seconds_count", &[my, conn]) >= 1.0);
    assert_eq!(
        delta(
            "airlock_auth_failures_total",
            &[my, ("reason", "unknown_token")]
        ),
        1.0
    );
}

/// How much `name`'s samples with `labels` grew between two scrapes.
fn delta_of(before: &[Sample], after: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    sum(after, name, labels) - sum(before, name, labels)
}

/// Commands PostgreSQL clients send that the gateway refuses before the
/// gate (a syntax error, a Bind of a statement never prepared through it,
/// an Execute of a portal never bound, a fastpath call that ends the
/// session) are counted as `verdict="rejected"` by reason, not under the
/// policy's verdict; an allowed command is counted under its rule. None of
/// the refused ones reached PostgreSQL (its statement log).
#[test]
fn pg_rejections_before_the_gate_and_allowing_rules_are_counted() {
    use common::wire::{bind, execute, message, pipeline, sync, Wire};
    let (cluster, gateway) = setup();
    let before = parse(&scrape(&gateway));
    let (_, token) = gateway.issue_token("agent-7", &["pg-test"], "15m");
    let mut wire = Wire::connect(&gateway, &token, &[]).unwrap();
    let reply = wire.query("selec email from people");
    assert_eq!(reply.codes(), ["42601"], "{}", reply.text());
    let reply = wire.query("select 'allowed-probe'");
    assert!(reply.codes().is_empty(), "{}", reply.text());
    wire.send(&pipeline(&[bind("", "never-prepared", &[], 0), sync()]));
    let reply = wire.until_ready();
    assert_eq!(reply.codes(), ["26000"], "{}", reply.text());
    wire.send(&pipeline(&[execute("never-bound"), sync()]));
    let reply = wire.until_ready();
    assert_eq!(reply.codes(), ["34000"], "{}", reply.text());
    // A fastpath FunctionCall (oid 1, no arguments): a protocol violation.
    let mut call = 1i32.to_be_bytes().to_vec();
    call.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    wire.send(&message(b'F', &call));
    let reply = wire.until_ready();
    assert_eq!(reply.codes(), ["08P01"], "{}", reply.text());
    drop(wire);
    let after = wait_for_no_sessions(&gateway);
    let delta = |name: &str, labels: &[(&str, &str)]| delta_of(&before, &after, name, labels);
    let pg = ("protocol", "postgres");
    let conn = ("connection", "pg-test");
    let rejected = ("verdict", "rejected");
    for (reason, expected) in [
        ("syntax_error", 1.0),
        ("unknown_statement", 2.0),
        ("protocol_violation", 1.0),
        ("unsupported", 0.0),
    ] {
        assert_eq!(
            delta(
                "airlock_commands_total",
                &[pg, conn, rejected, ("reason", reason)]
            ),
            expected,
            "reason {reason}"
        );
    }
    assert_eq!(
        delta("airlock_commands_total", &[pg, conn, ("verdict", "deny")]),
        0.0
    );
    assert_eq!(
        delta("airlock_commands_total", &[pg, conn, ("verdict", "allow")]),
        1.0
    );
    assert_eq!(
        delta(
            "airlock_commands_allowed_by_rule_total",
            &[pg, conn, ("rule", "reads")]
        ),
        1.0
    );
    assert_eq!(delta("airlock_commands_allowed_by_rule_total", &[]), 1.0);
    let log = cluster.log();
    assert!(log.contains("allowed-probe"), "{log}");
    assert!(!log.contains("selec email"), "{log}");
    assert!(!log.contains("never-prepared") && !log.contains("never-bound"));
}

/// Scrapes until no session is active (their ends are counted).
fn wait_for_no_sessions(gateway: &GatewayProcess) -> Vec<Sample> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut after = parse(&scrape(gateway));
    while sum(&after, "airlock_sessions_active", &[]) > 0.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        after = parse(&scrape(gateway));
    }
    after
}

/// MySQL: the gateway-added latency of every forwarded command, commands
/// allowed by rule (and by the policy's default), and commands refused
/// before the gate by reason (unknown prepared statements, commands the
/// gateway does not relay, a malformed packet that ends the session). The
/// write ran upstream; nothing refused did.
#[test]
fn mysql_latency_allowing_rules_and_rejections_are_counted() {
    use airlock_mysql::response::ResponsePacket;
    let policy = "version: 1
default: allow
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: no-ddl
    match: {operations: [drop]}
    action: deny
";
    let (server, gateway) = mysql::setup("", policy);
    server.sql_in(
        "appdb",
        "create table people(id int primary key, email varchar(64)); insert into people values (1, 'a');",
    );
    let before = parse(&scrape(&gateway));
    let (_, token) = gateway.issue_token("agent-7", &["shop-mysql"], "15m");
    let mut raw = mysql::Raw::connect(&gateway, "agent-7", &token, "shop-mysql").unwrap();
    let answer = raw.query("select email from people");
    assert!(mysql::error_of(&answer).is_none(), "{answer:?}");
    let answer = raw.query("insert into people values (2, 'b')");
    assert!(
        matches!(answer.first(), Some((ResponsePacket::Ok(_), _))),
        "{answer:?}"
    );
    let answer = raw.query("drop table people");
    assert!(mysql::error_of(&answer).is_some());
    let answer = raw.query("KILL 424242");
    assert!(mysql::error_of(&answer).is_some());
    let mut refused = |payload: &[u8]| {
        raw.write_raw_command(payload);
        let reply = raw.read();
        assert_eq!(reply.first(), Some(&0xFF), "{payload:?}: {reply:?}");
    };
    // COM_STMT_EXECUTE and COM_STMT_FETCH of ids never prepared.
    refused(&[0x17, 0x99, 0, 0, 0, 0, 1, 0, 0, 0]);
    refused(&[0x1c, 0x98, 0, 0, 0, 1, 0, 0, 0]);
    // An unknown command byte.
    refused(&[0x60]);
    // A COM_STMT_EXECUTE too short to decode: the session ends.
    refused(&[0x17, 1]);
    drop(raw);
    let after = wait_for_no_sessions(&gateway);
    let delta = |name: &str, labels: &[(&str, &str)]| delta_of(&before, &after, name, labels);
    let my = ("protocol", "mysql");
    let conn = ("connection", "shop-mysql");
    for (reason, expected) in [
        ("unknown_statement", 2.0),
        ("unsupported", 2.0),
        ("protocol_violation", 1.0),
        ("syntax_error", 0.0),
    ] {
        assert_eq!(
            delta(
                "airlock_commands_total",
                &[my, conn, ("verdict", "rejected"), ("reason", reason)]
            ),
            expected,
            "reason {reason}"
        );
    }
    for (verdict, expected) in [("allow", 2.0), ("deny", 1.0)] {
        assert_eq!(
            delta("airlock_commands_total", &[my, conn, ("verdict", verdict)]),
            expected,
            "verdict {verdict}"
        );
    }
    for (rule, expected) in [("reads", 1.0), ("default", 1.0)] {
        assert_eq!(
            delta(
                "airlock_commands_allowed_by_rule_total",
                &[my, conn, ("rule", rule)]
            ),
            expected,
            "rule {rule}"
        );
    }
    // The select and the insert were forwarded; nothing else was.
    assert_eq!(
        delta("airlock_gateway_added_duration_seconds_count", &[my]),
        2.0
    );
    assert_eq!(delta("airlock_decision_duration_seconds_count", &[my]), 3.0);
    assert_eq!(server.sql_in("appdb", "select count(*) from people"), "2");
}

/// HTTP and Kubernetes responses count what their masking masked, per
/// detector, as the databases do: two emails in an httpbin (real
/// upstream) JSON answer; one Secret value (`kubernetes_secret`) and one
/// email from the test kit's fixture API server (the one stand-in: no real
/// kube-apiserver runs here). The client never sees the raw values; both
/// requests reached their upstream.
#[test]
fn http_and_kubernetes_masking_is_counted_by_detector() {
    const SA_TOKEN: &str = "sa-token-metrics-3c9e51";
    let httpbin = httpbin::Httpbin::start();
    let kube = airlock_testkit::KubeApiFixture::start(SA_TOKEN);
    kube.put(
        "secrets",
        "default",
        serde_json::json!({"metadata": {"name": "db-creds"}, "type": "Opaque", "data": {"password": "aHVudGVyMg=="}}),
    );
    kube.put(
        "configmaps",
        "default",
        serde_json::json!({"metadata": {"name": "owners"}, "data": {"owner": EMAILS[0]}}),
    );
    let config = format!(
        "connections:
  - name: bin-masked
    protocol: http
    url: http://127.0.0.1:{port}
    credential: bin-key
    inject: {{header: X-Api-Key}}
  - name: k8s-dev
    protocol: kubernetes
    url: {kube}
    credential: k8s-sa
",
        port = httpbin.port,
        kube = kube.url()
    );
    let policy = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: mask-emails
    match: {}
    mask:
      detectors: [email]
      style: full
";
    let gateway = GatewayProcess::start_with_policy(common::binary(), &config, policy);
    gateway.set_credential("bin-key", "api", "upstream-api-key-metrics");
    gateway.set_credential("k8s-sa", "gateway", SA_TOKEN);
    let (_, token) = gateway.issue_token("agent-7", &["bin-masked", "k8s-dev"], "15m");
    let before = parse(&scrape(&gateway));
    let get = |path: &str| -> String {
        let output = Command::new("curl")
            .args(["-sS", "--max-time", "40", "-H"])
            .arg(format!("Authorization: Bearer {token}"))
            .arg(format!("http://127.0.0.1:{}{path}", gateway.http_port))
            .output()
            .expect("run curl");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let body = get(&format!(
        "/bin-masked/response-headers?a={}&b={}",
        EMAILS[0], EMAILS[1]
    ));
    assert!(body.contains("\"a\""), "{body}");
    let secret = get("/k8s-dev/api/v1/namespaces/default/secrets/db-creds");
    assert!(secret.contains("db-creds"), "{secret}");
    let configmap = get("/k8s-dev/api/v1/namespaces/default/configmaps/owners");
    assert!(configmap.contains("owner"), "{configmap}");
    for text in [&body, &secret, &configmap] {
        for raw in [EMAILS[0], EMAILS[1], "aHVudGVyMg=="] {
            assert!(!text.contains(raw), "{raw} reached the client: {text}");
        }
    }
    assert!(httpbin.seen().contains("/response-headers"));
    assert_eq!(kube.requests_to("GET", "/secrets/db-creds").len(), 1);
    let after = wait_for_no_sessions(&gateway);
    let delta = |name: &str, labels: &[(&str, &str)]| delta_of(&before, &after, name, labels);
    let masked = "airlock_masked_values_total";
    assert_eq!(
        delta(masked, &[("protocol", "http"), ("detector", "email")]),
        2.0
    );
    assert_eq!(
        delta(
            masked,
            &[
                ("protocol", "kubernetes"),
                ("detector", "kubernetes_secret")
            ]
        ),
        1.0
    );
    assert_eq!(
        delta(masked, &[("protocol", "kubernetes"), ("detector", "email")]),
        1.0
    );
    assert_eq!(delta(masked, &[]), 4.0);
}

/// The pending-review gauges read the store with one aggregate, so they
/// stay right past any list limit: one real review held through the
/// gateway (made an hour old in the store), then 10,500 newer pending
/// reviews written straight into the store's table; the oldest is still
/// the real one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oldest_pending_review_is_right_past_ten_thousand() {
    let (_cluster, gateway) = setup();
    let agent = common::issue_for(&gateway, "pg-test", "agent-7", "agent", &["agents"]);
    let client = Arc::new(common::client(&gateway, "agent-7", "pg-test", &agent).await);
    let held = Arc::clone(&client);
    let delete =
        tokio::spawn(async move { held.batch_execute("delete from people where id = 1").await });
    let id = pending_review(&gateway);
    let store = rusqlite::Connection::open(gateway.data_dir().join("airlock.db")).unwrap();
    store.busy_timeout(Duration::from_secs(10)).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    store
        .execute(
            "UPDATE reviews SET created_at = ?2, expires_at = ?3 WHERE id = ?1",
            rusqlite::params![id, now - 3600, now + 3600],
        )
        .unwrap();
    let columns: Vec<String> = {
        let mut statement = store
            .prepare("SELECT name FROM pragma_table_info('reviews')")
            .unwrap();
        let names = statement
            .query_map([], |row| row.get::<_, String>(0))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        names
    };
    let copied: Vec<String> = columns
        .iter()
        .map(|column| match column.as_str() {
            "id" => "'bulk-' || i".to_string(),
            "fingerprint" => "'fp-' || i".to_string(),
            "created_at" => format!("{} + (i % 3000)", now - 3000),
            other => other.to_string(),
        })
        .collect();
    store
        .execute(
            &format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10500) \
                 INSERT INTO reviews ({}) SELECT {} FROM reviews, n WHERE id = ?1",
                columns.join(", "),
                copied.join(", ")
            ),
            [&id],
        )
        .unwrap();
    let samples = parse(&scrape(&gateway));
    assert_eq!(sum(&samples, "airlock_reviews_pending", &[]), 10_501.0);
    let oldest = sum(&samples, "airlock_review_oldest_pending_age_seconds", &[]);
    assert!((3600.0..3700.0).contains(&oldest), "{oldest}");
    delete.abort();
}
