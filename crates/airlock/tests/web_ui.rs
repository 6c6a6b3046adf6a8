//! The web UI end to end, in a real browser: Debian's `chromium` driven by
//! `playwright-core` (`node-webui/ui.mjs`) against the real gateway and a
//! real PostgreSQL, with `psql` as the agent. An approver signs in with a
//! token, sees the agent's DELETE appear in the queue through the event
//! stream within a second, approves it with a TOTP code (psql finishes,
//! the row is gone upstream), denies another (psql gets the refusal, the
//! row stays), ends a live session with the kill switch (psql is cut
//! off), finds the approved DELETE in its session's timeline, sees the
//! audit chain verify, exports that session as JSON lines, and diffs two
//! policy versions. A person signs in through the real OpenID Provider the
//! OIDC tests run (`oidc-provider`, authorization code with PKCE); the
//! provider's callback cannot be replayed nor finished in another browser
//! than the one that began the sign-in (login CSRF), and an agent account of the
//! same provider is refused. That admin explains a decision in the
//! playground, issues a token (shown once; psql logs in with it), looks at
//! grants and connections, and rolls the policy back (a new version). The
//! CSP is strict and the browser reports no violation of it; a POST
//! without the CSRF token is refused; no page the browser saw holds a
//! secret (the upstream password, the admin token, an agent's token).
//! The script saves a screenshot of each page to the test's scratch
//! folder, or to `docs/screenshots/` (the ones the README shows) with
//! `AIRLOCK_UPDATE_SCREENSHOTS=1`.
//!
//! A second test holds the explain playground to what real `psql`
//! sessions get: through the UI's forms (sign-in, explain) it names
//! tokens and a just-in-time connection, and each answer (refused for
//! want of a grant, allowed under one, refused for a token scoped to
//! another connection) is what psql then meets, seen in the upstream
//! table.
//!
//! Nothing is skipped: without chromium or playwright-core the test fails
//! and says to run `bash .ci/install-deps`.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../../airlock-oidc/tests/common/mod.rs"]
#[allow(dead_code)] // shared with airlock-oidc's own tests; this file uses a part
mod provider;

use airlock_testkit::{pg_client, repo_file, GatewayProcess, PgCluster};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";

const POLICY_V1: &str = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: writes
    match: {operations: [insert, update]}
    action: allow
";

const POLICY_V2: &str = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: writes
    match: {operations: [insert, update]}
    action: allow
  - name: deletes-need-review
    description: Deletes on items wait for a DBA, confirmed with TOTP
    match: {operations: [delete], tables: [items]}
    action: review
    approvers: dba
    require_mfa: true
    wait: 30s
";

fn node_dir() -> PathBuf {
    repo_file("crates/airlock/tests/node-webui")
}

/// playwright-core in `node-webui/node_modules` (git-ignored), installed
/// with `npm ci` from the lock file when missing (as `.ci/install-deps`
/// does); chromium from Debian. Either missing fails the test.
fn browser_ready() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: the web UI test drives Debian's chromium; run `bash .ci/install-deps`"
    );
    let module = node_dir().join("node_modules/playwright-core/package.json");
    if !module.exists() {
        let output = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(node_dir())
            .output()
            .expect("the web UI test needs node >= 20 and npm: run `bash .ci/install-deps`");
        assert!(
            output.status.success(),
            "npm ci in {} failed (run `bash .ci/install-deps`):\n{}",
            node_dir().display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert!(
        module.exists(),
        "playwright-core is missing in {}: run `bash .ci/install-deps`",
        node_dir().display()
    );
}

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

/// The browser script, with a line channel from its stdout.
struct Script {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    stderr_path: PathBuf,
}

impl Script {
    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// The script's next step report, which must be `step`.
    fn expect(&mut self, step: &str, gateway: &GatewayProcess) -> Value {
        match self.lines.recv_timeout(Duration::from_secs(90)) {
            Ok(line) => {
                let report: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| panic!("not a step report: {line}"));
                assert_eq!(report["step"], step, "{report}");
                report
            }
            Err(_) => {
                let _ = self.child.kill();
                let status = self.child.wait();
                panic!(
                    "the browser script did not report {step:?} ({status:?}):\n{}\n--- gateway log ---\n{}",
                    std::fs::read_to_string(&self.stderr_path).unwrap_or_default(),
                    gateway.log()
                );
            }
        }
    }
}

/// Where the script saves its screenshots: `docs/screenshots/` when
/// `AIRLOCK_UPDATE_SCREENSHOTS=1` (to refresh the committed ones), else the
/// test's scratch folder, so a test run leaves the checkout as it was.
fn screenshot_dir(scratch: &Path) -> PathBuf {
    if std::env::var("AIRLOCK_UPDATE_SCREENSHOTS").is_ok_and(|value| value == "1") {
        repo_file("docs/screenshots")
    } else {
        scratch.join("screenshots")
    }
}

fn start_script(gateway: &GatewayProcess, alice: &str, audrey: &str, scratch: &Path) -> Script {
    let pages = scratch.join("pages.html");
    let screenshots = screenshot_dir(scratch);
    std::fs::create_dir_all(&screenshots).unwrap();
    let stderr_path = scratch.join("ui.stderr");
    let mut child = Command::new("node")
        .arg(node_dir().join("ui.mjs"))
        .current_dir(node_dir())
        .env(
            "AIRLOCK_UI",
            format!("http://127.0.0.1:{}", gateway.admin_port),
        )
        .env("ALICE_TOKEN", alice)
        .env("AUDREY_TOKEN", audrey)
        .env("SCREENSHOTS", &screenshots)
        .env("PAGES_FILE", &pages)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("run node");
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (sender, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    Script {
        child,
        stdin,
        lines,
        stderr_path,
    }
}

fn totp_now(secret: &airlock_mfa::TotpSecret) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    airlock_mfa::code_at(secret, now)
}

/// Waits until `psql`'s session is live on the gateway.
fn wait_live(gateway: &GatewayProcess) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let (status, _, body) = common::http(
            gateway,
            "GET",
            "/api/v1/sessions/live",
            &gateway.admin_token,
            None,
        );
        if status == 200 && body.contains("agent-7") {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no live session appeared:\n{}", gateway.log());
}

fn wait_with_deadline(child: Child, seconds: u64) -> std::process::Output {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut child = child;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("psql did not finish within {seconds} s");
}

fn wait_for_exit(child: &mut Child, seconds: u64) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("the browser script did not exit within {seconds} s");
}

/// The web client's secret at the provider (given to the gateway in its
/// environment, never in the config file).
const WEB_CLIENT_SECRET: &str = "airlock-web-test-secret-7c1d";

/// Registers the UI as an authorization-code client of the provider, with
/// the redirect URI on the gateway's admin listener.
fn register_web_client(provider: &provider::Provider, gateway: &GatewayProcess) {
    let body = serde_json::json!({
        "client_id": "airlock-web",
        "client_secret": WEB_CLIENT_SECRET,
        "redirect_uris": [format!("http://127.0.0.1:{}/ui/oidc/callback", gateway.admin_port)],
    });
    let answer: Value = ureq::post(&format!("{}/__admin/clients", provider.issuer))
        .send_json(body)
        .unwrap()
        .into_json()
        .unwrap();
    assert!(answer["clients"].as_u64().unwrap() >= 1, "{answer}");
}

#[test]
fn an_approver_decides_in_the_browser_and_psql_sees_it() {
    browser_ready();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let provider = runtime.block_on(provider::Provider::start());
    let cluster = PgCluster::start();
    let ui = format!(
        "ui:
  admin_groups: [ops]
  auditor_groups: [audit]
identity_providers:
  - name: corp
    issuer: {}/
    audiences: [airlock]
    groups_claim: groups
    kind_claim: principal_type
    kind: human
    web_client_id: airlock-web
    web_client_secret_env: AIRLOCK_TEST_WEB_SECRET
    web_scopes: [groups]
",
        provider.issuer
    );
    let gateway = GatewayProcess::start_with_policy_and_env(
        common::binary(),
        &common::config(&cluster, &ui),
        POLICY_V1,
        &[("AIRLOCK_TEST_WEB_SECRET", WEB_CLIENT_SECRET)],
    );
    register_web_client(&provider, &gateway);
    gateway.set_credential("app", "app", &cluster.role_password("app"));
    cluster.sql_in(
        "appdb",
        "create table items(id int primary key, name text); insert into items select g, 'n' || g from generate_series(1, 5) g; grant all on items to app",
    );
    let scratch = tempfile::tempdir().unwrap();
    let v2 = scratch.path().join("policy-v2.yaml");
    std::fs::write(&v2, POLICY_V2).unwrap();
    gateway.cli_ok(
        &[
            "policy",
            "apply",
            v2.to_str().unwrap(),
            "--comment",
            "hold deletes for a DBA",
        ],
        None,
    );
    let agent = common::issue_for(&gateway, "pg-test", "agent-7", "agent", &["agents"]);
    let alice = common::issue_for(&gateway, "pg-test", "alice", "human", &["dba", "ops"]);
    let audrey = common::issue_for(&gateway, "pg-test", "audrey", "human", &["audit"]);
    let enrolled = common::as_person(&gateway, &alice, &["mfa", "enroll", "--output", "json"]);
    assert!(enrolled.status.success(), "{}", common::stderr(&enrolled));
    let enrolled: Value = serde_json::from_slice(&enrolled.stdout).unwrap();
    let secret = enrolled["otpauth_uri"]
        .as_str()
        .unwrap()
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    let secret = airlock_mfa::TotpSecret::from_base32(&secret).unwrap();

    let mut script = start_script(&gateway, &alice, &audrey, scratch.path());
    let ready = script.expect("ready", &gateway);
    assert!(
        ready["csp"]
            .as_str()
            .unwrap()
            .contains("default-src 'none'"),
        "{ready}"
    );

    // 1. Approved in the browser, with TOTP: psql finishes, the row is gone.
    let first = psql_background(&gateway, &agent, "delete from items where id = 1");
    script.send(&format!("issued-1 {}", totp_now(&secret)));
    let approved = script.expect("approved-1", &gateway);
    let waited = approved["waited_ms"].as_u64().unwrap();
    eprintln!("the held DELETE appeared in the browser's queue {waited} ms after psql started");
    assert!(
        waited < 1000,
        "the DELETE took {waited} ms to appear in the queue"
    );
    let output = wait_with_deadline(first, 20);
    assert!(output.status.success(), "{}", common::stderr(&output));
    assert_eq!(
        cluster.sql_in("appdb", "select count(*) from items where id = 1"),
        "0"
    );
    let review_id = approved["review"].as_str().unwrap();
    let events = common::events(&gateway);
    let decided = events
        .iter()
        .find(|event| event.kind == "review.approve")
        .expect("a review.approve event");
    assert_eq!(decided.identity.as_deref(), Some("alice"));
    assert_eq!(decided.data["review_id"], review_id);
    assert_eq!(decided.data["mfa"], true);
    assert!(events.iter().any(|event| event.kind == "ui.sign_in"));

    // 2. Denied in the browser: psql gets the refusal, the row stays.
    let second = psql_background(&gateway, &agent, "delete from items where id = 2");
    script.send("issued-2");
    let denied = script.expect("denied-2", &gateway);
    let output = wait_with_deadline(second, 20);
    assert!(!output.status.success());
    let refusal = common::stderr(&output);
    assert!(
        refusal.contains(&format!(
            "review {} was denied: not this one",
            denied["review"].as_str().unwrap()
        )),
        "{refusal}"
    );
    assert_eq!(
        cluster.sql_in("appdb", "select count(*) from items where id = 2"),
        "1"
    );

    // 3. The kill switch ends a live session.
    let long = psql_background(&gateway, &agent, "select pg_sleep(30)");
    wait_live(&gateway);
    script.send("live");
    script.expect("ended", &gateway);
    let output = wait_with_deadline(long, 15);
    assert!(!output.status.success(), "the session was not ended");
    let events = common::events(&gateway);
    let killed = events
        .iter()
        .find(|event| event.kind == "session.kill")
        .expect("a session.kill event");
    assert_eq!(killed.data["ended_by"], "alice");
    assert_eq!(killed.data["reason"], "runaway agent");

    // 4. Sessions, a timeline, the audit chain and 5. policies with a diff
    // ran in the script; 6. a review pending for
    // the phone screenshot, then sign-out.
    let third = psql_background(&gateway, &agent, "delete from items where id = 3");
    script.send("phone");
    script.expect("phoned", &gateway);

    // 7. Signed in through the identity provider: the callback is used
    // once, an agent account is refused; 8. the admin pages.
    script.send("oidc");
    let signed_in = script.expect("oidc", &gateway);
    assert_eq!(signed_in["replayed_callback"], 401, "{signed_in}");
    assert_eq!(signed_in["agent_refused"], 403, "{signed_in}");
    assert_eq!(signed_in["other_browser"], 401, "{signed_in}");
    assert_eq!(signed_in["other_browser_signed_in"], false, "{signed_in}");
    let events = common::events(&gateway);
    let oidc_sign_in = events
        .iter()
        .find(|event| event.kind == "ui.sign_in" && event.identity.as_deref() == Some("olivia"))
        .expect("olivia's sign-in is recorded");
    assert!(
        oidc_sign_in.data["method"]
            .as_str()
            .unwrap()
            .starts_with("oidc_code:"),
        "{}",
        oidc_sign_in.data
    );
    assert_eq!(
        oidc_sign_in.data["roles"],
        serde_json::json!(["approver", "auditor", "admin"])
    );
    let issued = script.expect("token", &gateway);
    let token = issued["token"].as_str().unwrap();
    let output = Command::new(pg_client("psql"))
        .arg(gateway.conninfo("report-bot", "pg-test", "disable"))
        .args(["-X", "-At", "-c", "select count(*) from items"])
        .env("PGPASSWORD", token)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", common::stderr(&output));
    script.expect("done", &gateway);
    let status = wait_for_exit(&mut script.child, 30);
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&script.stderr_path).unwrap_or_default()
    );
    let mut third = third;
    let _ = third.kill();
    let _ = third.wait();
    assert_eq!(
        cluster.sql_in("appdb", "select count(*) from items where id = 3"),
        "1",
        "an undecided DELETE ran"
    );
    // The rollback made v3 (v1's text), live, recorded as olivia's.
    let versions = common::http(
        &gateway,
        "GET",
        "/api/v1/policy/versions",
        &gateway.admin_token,
        None,
    )
    .2;
    let versions: Value = serde_json::from_str(&versions).unwrap();
    let newest = versions
        .as_array()
        .unwrap()
        .iter()
        .find(|version| version["version"] == 3)
        .unwrap_or_else(|| panic!("no v3 in {versions}"))
        .clone();
    assert!(
        newest["comment"]
            .as_str()
            .unwrap()
            .contains("rollback to v1 by olivia"),
        "{newest}"
    );
    let shown = common::http(
        &gateway,
        "GET",
        "/api/v1/policy",
        &gateway.admin_token,
        None,
    )
    .2;
    let live: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(live["version"], 3);
    assert_eq!(live["text"], POLICY_V1);
    // No page the browser saw holds a secret.
    let pages = std::fs::read_to_string(scratch.path().join("pages.html")).unwrap();
    assert!(pages.len() > 10_000, "the script saved no pages");
    for (name, secret) in [
        ("the upstream password", cluster.role_password("app")),
        ("the admin token", gateway.admin_token.clone()),
        ("the agent's token", agent.clone()),
        ("the web client secret", WEB_CLIENT_SECRET.to_string()),
        ("the issued token", token.to_string()),
    ] {
        assert!(!pages.contains(&secret), "a page shows {name}");
    }
    assert!(
        !gateway.log().contains(WEB_CLIENT_SECRET),
        "the log holds the web client secret"
    );
    for shot in [
        "signin",
        "approvals-empty",
        "approvals-queue",
        "review",
        "live-sessions",
        "sessions",
        "session-timeline",
        "audit",
        "policies",
        "policy-diff",
        "approvals-phone",
        "explain",
        "tokens",
        "access",
        "connections",
        "policy-rollback",
    ] {
        let path = screenshot_dir(scratch.path()).join(format!("{shot}.png"));
        let size = std::fs::metadata(&path).map(|meta| meta.len()).unwrap_or(0);
        assert!(size > 1000, "{} was not written", path.display());
    }
}

const JIT_POLICY: &str = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: deletes
    match: {operations: [delete]}
    action: allow
access:
  - name: agents-quick
    match:
      identity: {kind: agent}
      connection: {name: pg-jit}
    max_duration: 1h
    auto_approve: true
";

/// A signed-in browser session of the UI, driven with plain HTTP forms.
struct UiSession {
    agent: ureq::Agent,
    base: String,
    cookie: String,
    csrf: String,
}

/// The value of the first `name="csrf"` field of a page.
fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no CSRF field in:\n{page}"))
        .to_string()
}

/// The `name=value` of the `Set-Cookie` named `name`.
fn cookie_of(response: &ureq::Response, name: &str) -> String {
    response
        .all("set-cookie")
        .into_iter()
        .find(|cookie| cookie.starts_with(&format!("{name}=")))
        .and_then(|cookie| cookie.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .to_string()
}

impl UiSession {
    /// Signs in by pasting `token`, as the sign-in form does.
    fn sign_in(gateway: &GatewayProcess, token: &str) -> Self {
        let agent = ureq::AgentBuilder::new().redirects(0).build();
        let base = format!("http://127.0.0.1:{}", gateway.admin_port);
        let form = agent.get(&format!("{base}/ui/signin")).call().unwrap();
        let nonce = cookie_of(&form, "airlock_ui_signin");
        let page = form.into_string().unwrap();
        let signed_in = agent
            .post(&format!("{base}/ui/signin"))
            .set("Cookie", &nonce)
            .send_form(&[("csrf", &csrf_of(&page)), ("token", token)])
            .unwrap();
        assert_eq!(signed_in.status(), 303);
        let cookie = cookie_of(&signed_in, "airlock_ui");
        let page = agent
            .get(&format!("{base}/ui/approvals"))
            .set("Cookie", &cookie)
            .call()
            .unwrap()
            .into_string()
            .unwrap();
        Self {
            csrf: csrf_of(&page),
            agent,
            base,
            cookie,
        }
    }

    /// The playground's final verdict (`data-verdict`) and page.
    fn explain(&self, token_id: &str, connection: &str, text: &str) -> (String, String) {
        let page = self
            .agent
            .post(&format!("{}/ui/policies/explain", self.base))
            .set("Cookie", &self.cookie)
            .send_form(&[
                ("csrf", self.csrf.as_str()),
                ("token", token_id),
                ("connection", connection),
                ("text", text),
            ])
            .unwrap()
            .into_string()
            .unwrap();
        let verdict = page
            .split("data-verdict=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no verdict in:\n{page}"))
            .to_string();
        (verdict, page)
    }
}

#[test]
fn the_explain_playground_answers_what_psql_then_gets() {
    let cluster = PgCluster::start();
    let extra = format!(
        "  - name: pg-jit
    protocol: postgres
    address: 127.0.0.1:{}
    database: appdb
    credential: app
    access: jit
ui:
  admin_groups: [ops]
  auditor_groups: [audit]
",
        cluster.port
    );
    let gateway = GatewayProcess::start_with_policy(
        common::binary(),
        &common::config(&cluster, &extra),
        JIT_POLICY,
    );
    gateway.set_credential("app", "app", &cluster.role_password("app"));
    cluster.sql_in(
        "appdb",
        "create table items(id int primary key); insert into items select generate_series(1, 5); grant all on items to app",
    );
    let rows = || {
        cluster
            .sql_in(
                "appdb",
                "select string_agg(id::text, ',' order by id) from items",
            )
            .trim()
            .to_string()
    };
    let (jit_id, jit_token) = gateway.issue_token("agent-7", &["pg-jit"], "1h");
    let (test_id, test_token) = gateway.issue_token("agent-8", &["pg-test"], "1h");
    let audrey = common::issue_for(&gateway, "pg-test", "audrey", "human", &["audit"]);
    let ui = UiSession::sign_in(&gateway, &audrey);
    let delete_one = "delete from items where id = 1";

    // No grant yet: the playground refuses at admission though the policy
    // alone allows deletes; so does the gateway, and the row stays.
    let (verdict, page) = ui.explain(&jit_id, "pg-jit", delete_one);
    assert_eq!(verdict, "refused_admission", "{page}");
    assert!(page.contains("The policy alone: <span class=\"verdict allow\""));
    let output = gateway.psql(&jit_token, "agent-7", "pg-jit", "disable", delete_one);
    assert!(!output.status.success());
    assert!(common::stderr(&output).contains("has no access grant for connection \"pg-jit\""));
    assert_eq!(rows(), "1,2,3,4,5");

    // Under a grant (auto-approved): allow, and psql deletes the row.
    let granted = common::as_person(
        &gateway,
        &jit_token,
        &[
            "access",
            "request",
            "--connection",
            "pg-jit",
            "--duration",
            "10m",
            "--reason",
            "cleanup",
            "--output",
            "json",
        ],
    );
    let granted: Value = serde_json::from_slice(&granted.stdout).unwrap();
    assert_eq!(granted["status"], "granted", "{granted}");
    let (verdict, page) = ui.explain(&jit_id, "pg-jit", delete_one);
    assert_eq!(verdict, "allow", "{page}");
    assert!(page.contains(granted["grant_id"].as_str().unwrap()));
    let output = gateway.psql(&jit_token, "agent-7", "pg-jit", "disable", delete_one);
    assert!(output.status.success(), "{}", common::stderr(&output));
    assert_eq!(rows(), "2,3,4,5");

    // A token scoped to pg-test: refused on pg-jit, in the playground and
    // by the gateway; allowed on its own connection.
    let delete_two = "delete from items where id = 2";
    let (verdict, page) = ui.explain(&test_id, "pg-jit", delete_two);
    assert_eq!(verdict, "refused_token", "{page}");
    assert!(page.contains("the token is not scoped to pg-jit"));
    let output = gateway.psql(&test_token, "agent-8", "pg-jit", "disable", delete_two);
    assert!(!output.status.success());
    assert_eq!(rows(), "2,3,4,5");
    let (verdict, page) = ui.explain(&test_id, "pg-test", delete_two);
    assert_eq!(verdict, "allow", "{page}");
    let output = gateway.psql(&test_token, "agent-8", "pg-test", "disable", delete_two);
    assert!(output.status.success(), "{}", common::stderr(&output));
    assert_eq!(rows(), "3,4,5");
}
