//! End-to-end tests of airlock's own MCP server: the real `airlock` binary
//! in front of a real PostgreSQL (testkit `PgCluster`), with the official
//! MCP Python SDK (`mcp` from PyPI, installed into `python-mcp/site`) as the
//! client over Streamable HTTP (`/mcp`) and over stdio (`airlock mcp serve
//! --stdio`), and curl for what an SDK never sends (bad JSON, no token).
//! Enforcement is asserted on the upstream: PostgreSQL logs every statement
//! it runs (`log_statement = 'all'`) and the table's rows are counted.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod httpbin;
mod mysql;

use airlock_testkit::{repo_file, GatewayProcess, PgCluster};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

const EMAIL: &str = "jane.doe@example.com";

const POLICY: &str = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: no-destructive-ddl
    match: {operations: [drop, truncate]}
    action: deny
    message: destructive DDL is blocked here
  - name: deletes-need-review
    match: {operations: [delete]}
    action: review
    approvers: dba
  - name: updates-wait-for-review
    match: {operations: [update]}
    action: review
    approvers: dba
    wait: 30s
  - name: mask-pii
    match: {connection: {name: pg-test}}
    mask: {detectors: [email], style: full}
";

fn python_dir() -> PathBuf {
    repo_file("crates/airlock/tests/python-mcp")
}

/// `tests/python-mcp/requirements.txt` installed into its `site/`
/// (git-ignored) on first run.
fn python_site() -> PathBuf {
    airlock_testkit::pip_site("crates/airlock/tests/python-mcp", &["mcp"])
}

/// Runs `client.py` with `scenario`; its JSON output.
fn sdk(scenario: &Value) -> Value {
    let output = Command::new("python3")
        .arg(python_dir().join("client.py"))
        .arg(scenario.to_string())
        .env("PYTHONPATH", python_site())
        .output()
        .expect("run the MCP client");
    assert!(
        output.status.success(),
        "the MCP client failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the client's JSON")
}

struct Setup {
    cluster: PgCluster,
    gateway: GatewayProcess,
    token: String,
}

fn setup() -> Setup {
    let (cluster, gateway) = common::setup_with_policy("", POLICY);
    cluster.sql_in(
        "appdb",
        &format!(
            "CREATE TABLE customers (id int PRIMARY KEY, name text, email text);
             INSERT INTO customers VALUES (1, 'Jane', '{EMAIL}'), (2, 'Max', 'max@example.org');
             GRANT ALL ON customers TO app;"
        ),
    );
    let (_, token) = gateway.issue_token("agent-7", &["pg-test"], "10m");
    Setup {
        cluster,
        gateway,
        token,
    }
}

fn http_scenario(setup: &Setup, calls: Value) -> Value {
    json!({
        "transport": "http",
        "url": format!("http://127.0.0.1:{}/mcp", setup.gateway.http_port),
        "token": setup.token,
        "calls": calls,
    })
}

/// curl against the gateway's HTTP listener: (status, headers, body).
fn curl(gateway: &GatewayProcess, args: &[&str], path: &str) -> (u16, String, String) {
    let output = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "30",
            "-D",
            "/dev/stderr",
            "-o",
            "/dev/stdout",
        ])
        .args(args)
        .arg(format!("http://127.0.0.1:{}{path}", gateway.http_port))
        .output()
        .expect("run curl");
    let head = String::from_utf8_lossy(&output.stderr).into_owned();
    let status = head
        .lines()
        .rev()
        .find(|line| line.starts_with("HTTP/"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (
        status,
        head,
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

fn post(gateway: &GatewayProcess, token: Option<&str>, body: &str) -> (u16, String, Value) {
    post_with(gateway, token, &[], body)
}

/// [`post`] with more request headers (`Name: value`).
fn post_with(
    gateway: &GatewayProcess,
    token: Option<&str>,
    headers: &[&str],
    body: &str,
) -> (u16, String, Value) {
    let auth = token.map(|token| format!("Authorization: Bearer {token}"));
    let mut args = vec![
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-H",
        "Accept: application/json, text/event-stream",
        "--data-binary",
        body,
    ];
    if let Some(auth) = &auth {
        args.extend(["-H", auth.as_str()]);
    }
    for header in headers {
        args.extend(["-H", header]);
    }
    let (status, head, body) = curl(gateway, &args, "/mcp");
    (
        status,
        head,
        serde_json::from_str(&body).unwrap_or(Value::Null),
    )
}

fn customers(cluster: &PgCluster) -> String {
    cluster.sql_in("appdb", "SELECT count(*) FROM customers")
}

#[test]
fn the_python_sdk_lists_tools_and_queries_postgres_masked() {
    let setup = setup();
    let out = sdk(&http_scenario(
        &setup,
        json!([
            {"tool": "list_connections"},
            {"tool": "query", "arguments": {"connection": "pg-test", "sql": "SELECT id, name, email FROM customers ORDER BY id"}},
            {"tool": "describe", "arguments": {"connection": "pg-test"}},
        ]),
    ));
    assert_eq!(out["protocol_version"], "2025-11-25", "{out}");
    let tools: Vec<&str> = out["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        tools,
        [
            "list_connections",
            "query",
            "describe",
            "http_request",
            "review_status"
        ]
    );
    let query_tool = &out["tools"][1];
    assert_eq!(query_tool["annotations"]["destructiveHint"], true);
    assert_eq!(out["tools"][0]["annotations"]["readOnlyHint"], true);
    assert!(query_tool["inputSchema"]["required"]
        .to_string()
        .contains("sql"));

    let listed = &out["results"][0];
    assert_eq!(listed["isError"], false, "{listed}");
    let names: Vec<&str> = listed["structuredContent"]["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pg-test"], "only what the token is scoped to");
    assert_eq!(
        listed["structuredContent"]["connections"][0]["tags"]["env"],
        "dev"
    );
    assert!(!listed.to_string().contains("credential"), "{listed}");

    let queried = &out["results"][1];
    assert_eq!(queried["isError"], false, "{queried}");
    let structured = &queried["structuredContent"];
    assert_eq!(structured["status"], "ok");
    assert_eq!(structured["columns"], json!(["id", "name", "email"]));
    assert_eq!(structured["row_count"], 2);
    assert_eq!(structured["rows"][0][1], "Jane");
    let text = queried["content"][0]["text"].as_str().unwrap();
    assert!(text.starts_with("id | name | email"), "{text}");
    assert!(text.ends_with("(2 rows)"), "{text}");
    assert!(
        !queried.to_string().contains(EMAIL),
        "raw PII reached the agent: {queried}"
    );
    assert!(
        !queried.to_string().contains("max@example.org"),
        "{queried}"
    );

    let described = &out["results"][2];
    assert_eq!(described["isError"], false, "{described}");
    let rows = described["structuredContent"]["rows"].to_string();
    assert!(
        rows.contains("customers") && rows.contains("email"),
        "{rows}"
    );

    assert!(setup
        .cluster
        .log()
        .contains("SELECT id, name, email FROM customers"));
    let events = common::events(&setup.gateway);
    let recorded: String = events
        .iter()
        .map(|event| serde_json::to_string(event).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!recorded.contains(EMAIL), "raw PII in the recording");
    assert!(
        !recorded.contains(&setup.token),
        "the token in the recording"
    );
    let calls: Vec<&airlock_store::EventRecord> = events
        .iter()
        .filter(|event| event.kind == "mcp.tool_call")
        .collect();
    assert_eq!(calls.len(), 3, "one record per tool call");
    let query_record = serde_json::to_value(calls[1]).unwrap().to_string();
    assert!(
        query_record.contains("SELECT id, name, email FROM customers"),
        "{query_record}"
    );
    assert!(
        events.iter().any(|event| event.kind == "command"
            && serde_json::to_string(event)
                .unwrap()
                .contains("FROM customers ORDER BY id")),
        "the statement is recorded by its session"
    );
}

/// The SDK's default negotiation (a `server/discover` probe) adopts the
/// stateless 2026-07-28 revision: no handshake, no session id, every
/// request naming its revision; queries and refusals work as before.
#[test]
fn the_stateless_revision_is_discovered_and_served() {
    let setup = setup();
    let mut scenario = http_scenario(
        &setup,
        json!([
            {"tool": "query", "arguments": {"connection": "pg-test", "sql": "SELECT id, email FROM customers ORDER BY id"}},
            {"tool": "query", "arguments": {"connection": "pg-test", "sql": "DROP TABLE customers"}},
        ]),
    );
    scenario["mode"] = json!("auto");
    let out = sdk(&scenario);
    assert_eq!(out["discovered"], true, "{out}");
    assert_eq!(out["protocol_version"], "2026-07-28", "{out}");
    assert_eq!(out["tools"].as_array().unwrap().len(), 5, "{out}");
    let rows = out["results"][0].to_string();
    assert_eq!(
        out["results"][0]["structuredContent"]["row_count"], 2,
        "{rows}"
    );
    assert_eq!(out["results"][0]["resultType"], "complete", "{rows}");
    assert!(!rows.contains(EMAIL), "masked: {rows}");
    assert_eq!(out["results"][1]["isError"], true, "{out}");
    assert!(
        out["results"][1].to_string().contains("no-destructive-ddl"),
        "{out}"
    );
    assert!(!setup.cluster.log().contains("DROP TABLE customers"));
    assert_eq!(customers(&setup.cluster), "2");
    let discover = r#"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let routed = [
        "MCP-Protocol-Version: 2026-07-28",
        "Mcp-Method: server/discover",
    ];
    let (status, _, discovered) = post_with(&setup.gateway, Some(&setup.token), &routed, discover);
    assert_eq!(status, 200, "{discovered}");
    assert_eq!(
        discovered["result"]["supportedVersions"][0], "2026-07-28",
        "{discovered}"
    );
    assert_eq!(
        discovered["result"]["resultType"], "complete",
        "{discovered}"
    );
}

/// The stateless revision's routing headers must agree with the body
/// (`-32020`, HTTP 400, never run), and a revision not served is `-32022`
/// naming the served one.
#[test]
fn routing_headers_that_disagree_with_the_body_are_refused_before_anything_runs() {
    let setup = setup();
    let call = |sql: &str, version: &str| {
        json!({
            "jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {
                "name": "query",
                "arguments": {"connection": "pg-test", "sql": sql},
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": version,
                    "io.modelcontextprotocol/clientCapabilities": {},
                },
            },
        })
        .to_string()
    };
    let modern = "MCP-Protocol-Version: 2026-07-28";
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                modern,
                "Mcp-Method: tools/call",
                "Mcp-Name: list_connections",
            ],
            "routing_marker_name",
        ),
        (
            &[modern, "Mcp-Method: tools/list", "Mcp-Name: query"],
            "routing_marker_method",
        ),
        (&[modern, "Mcp-Name: query"], "routing_marker_missing"),
        (
            &[
                "MCP-Protocol-Version: 2025-11-25",
                "Mcp-Method: tools/call",
                "Mcp-Name: query",
            ],
            "routing_marker_version",
        ),
    ];
    for (headers, marker) in cases {
        let (status, _, answer) = post_with(
            &setup.gateway,
            Some(&setup.token),
            headers,
            &call(&format!("SELECT '{marker}'"), "2026-07-28"),
        );
        assert_eq!(status, 400, "{headers:?}: {answer}");
        assert_eq!(answer["id"], 7, "{answer}");
        assert_eq!(answer["error"]["code"], -32020, "{headers:?}: {answer}");
    }
    let (status, _, answer) = post_with(
        &setup.gateway,
        Some(&setup.token),
        &[
            "MCP-Protocol-Version: 2099-01-01",
            "Mcp-Method: tools/call",
            "Mcp-Name: query",
        ],
        &call("SELECT 'routing_marker_future'", "2099-01-01"),
    );
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], -32022, "{answer}");
    assert_eq!(
        answer["error"]["data"]["supported"],
        json!(["2026-07-28"]),
        "{answer}"
    );
    assert_eq!(
        answer["error"]["data"]["requested"], "2099-01-01",
        "{answer}"
    );
    // The same request with agreeing headers (the name base64-encoded, as
    // a client may send it) runs.
    let (status, _, answer) = post_with(
        &setup.gateway,
        Some(&setup.token),
        &[
            modern,
            "Mcp-Method: tools/call",
            "Mcp-Name: =?base64?cXVlcnk=?=",
        ],
        &call("SELECT 'routing_marker_agreed'", "2026-07-28"),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"]["isError"], false, "{answer}");
    let log = setup.cluster.log();
    assert!(
        log.contains("routing_marker_agreed"),
        "the agreeing one ran"
    );
    assert!(!log.contains("routing_marker_name"), "{log}");
    assert!(!log.contains("routing_marker_method"));
    assert!(!log.contains("routing_marker_missing"));
    assert!(!log.contains("routing_marker_version"));
    assert!(!log.contains("routing_marker_future"));
}

#[test]
fn a_denied_statement_is_a_tool_error_that_never_reaches_postgres() {
    let setup = setup();
    let out = sdk(&http_scenario(
        &setup,
        json!([
            {"tool": "query", "arguments": {"connection": "pg-test", "sql": "DROP TABLE customers"}},
            {"tool": "query", "arguments": {"connection": "pg-other", "sql": "SELECT 1"}},
            {"tool": "query", "arguments": {"connection": "pg-test", "sql": 42}},
        ]),
    ));
    let denied = &out["results"][0];
    assert_eq!(denied["isError"], true, "{denied}");
    let text = denied["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("no-destructive-ddl"),
        "names the rule: {text}"
    );
    assert!(!setup.cluster.log().contains("DROP TABLE customers"));
    assert_eq!(customers(&setup.cluster), "2");
    let out_of_scope = &out["results"][1];
    assert_eq!(out_of_scope["isError"], true, "{out_of_scope}");
    assert_eq!(out["results"][2]["isError"], true);
}

#[test]
fn a_held_statement_returns_its_review_id_and_runs_once_approved() {
    let setup = setup();
    let delete = json!({"tool": "query", "arguments": {"connection": "pg-test", "sql": "DELETE FROM customers WHERE id = 2"}});
    let out = sdk(&http_scenario(&setup, json!([delete])));
    let held = &out["results"][0];
    assert_eq!(held["isError"], false, "{held}");
    let structured = &held["structuredContent"];
    assert_eq!(structured["status"], "review_required", "{held}");
    let review = structured["review_id"].as_str().unwrap().to_string();
    assert!(review.starts_with("r-"), "{review}");
    assert_eq!(
        structured["approve_command"],
        format!("airlock review approve {review}")
    );
    assert!(!setup.cluster.log().contains("DELETE FROM customers"));
    assert_eq!(customers(&setup.cluster), "2");

    let status = sdk(&http_scenario(
        &setup,
        json!([{"tool": "review_status", "arguments": {"id": review}}]),
    ));
    assert_eq!(
        status["results"][0]["structuredContent"]["status"], "pending",
        "{status}"
    );

    let approver = common::issue_for(&setup.gateway, "pg-test", "alice", "human", &["dba"]);
    let approved = common::as_person(&setup.gateway, &approver, &["review", "approve", &review]);
    assert!(approved.status.success(), "{}", common::stderr(&approved));
    let again = sdk(&http_scenario(&setup, json!([delete])));
    assert_eq!(
        again["results"][0]["structuredContent"]["status"], "ok",
        "{again}"
    );
    assert_eq!(customers(&setup.cluster), "1");
}

#[test]
fn a_call_under_a_waiting_review_reports_progress_and_is_released_by_an_approver() {
    let setup = setup();
    let scenario = http_scenario(
        &setup,
        json!([{"tool": "query", "progress": true, "arguments": {"connection": "pg-test", "sql": "UPDATE customers SET name = 'Janet' WHERE id = 1"}}]),
    );
    let waiting = Command::new("python3")
        .arg(python_dir().join("client.py"))
        .arg(scenario.to_string())
        .env("PYTHONPATH", python_site())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    let id = loop {
        let list: Value = serde_json::from_str(
            &setup
                .gateway
                .cli_ok(&["review", "list", "--output", "json"], None),
        )
        .unwrap();
        if let Some(id) = list
            .as_array()
            .and_then(|list| list.first())
            .and_then(|review| review["id"].as_str())
        {
            break id.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no review appeared:\n{}",
            setup.gateway.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(
        !setup.cluster.log().contains("UPDATE customers"),
        "ran before approval"
    );
    let approver = common::issue_for(&setup.gateway, "pg-test", "alice", "human", &["dba"]);
    let approved = common::as_person(&setup.gateway, &approver, &["review", "approve", &id]);
    assert!(approved.status.success(), "{}", common::stderr(&approved));
    let output = waiting.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        out["results"][0]["structuredContent"]["status"], "ok",
        "{out}"
    );
    let progress = out["results"][0]["progress"].to_string();
    assert!(
        progress.contains(&format!("approve with: airlock review approve {id}")),
        "a progress notification while held: {out}"
    );
    assert_eq!(
        setup
            .cluster
            .sql_in("appdb", "SELECT name FROM customers WHERE id = 1"),
        "Janet"
    );
}

#[test]
fn without_a_token_it_is_401_pointing_at_the_protected_resource_metadata() {
    let setup = setup();
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let (status, head, _) = post(&setup.gateway, None, ping);
    assert_eq!(status, 401, "{head}");
    let metadata_url = format!(
        "http://127.0.0.1:{}/.well-known/oauth-protected-resource/mcp",
        setup.gateway.http_port
    );
    assert!(
        head.to_ascii_lowercase().contains(&format!(
            "www-authenticate: bearer resource_metadata=\"{metadata_url}\""
        )),
        "{head}"
    );
    let (status, head, _) = post(&setup.gateway, Some("not-a-token"), ping);
    assert_eq!(status, 401, "{head}");
    assert!(head.contains("invalid_token"), "{head}");

    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let (status, _, body) = curl(&setup.gateway, &[], path);
        assert_eq!(status, 200, "{body}");
        let metadata: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            metadata["resource"],
            format!("http://127.0.0.1:{}/mcp", setup.gateway.http_port)
        );
        assert_eq!(metadata["bearer_methods_supported"], json!(["header"]));
        assert!(metadata["authorization_servers"].is_array());
    }
    let (status, _, answer) = post(&setup.gateway, Some(&setup.token), ping);
    assert_eq!(status, 200);
    assert_eq!(answer, json!({"jsonrpc": "2.0", "id": 1, "result": {}}));
}

#[test]
fn bad_messages_are_json_rpc_errors_and_the_server_lives_on() {
    let setup = setup();
    let token = Some(setup.token.as_str());
    let cases = [
        ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":", 400, -32700),
        ("\u{1}\u{2}garbage", 400, -32700),
        (
            "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]",
            400,
            -32600,
        ),
        (
            "{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}",
            400,
            -32600,
        ),
        (
            "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"nope/nope\"}",
            200,
            -32601,
        ),
        (
            "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"tools/call\",\"params\":{\"name\":\"rm\"}}",
            200,
            -32602,
        ),
    ];
    for (body, status, code) in cases {
        let (got, head, answer) = post(&setup.gateway, token, body);
        assert_eq!(got, status, "{body}: {head}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
    }
    let (status, _, _) = post(
        &setup.gateway,
        token,
        "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}",
    );
    assert_eq!(status, 202);
    let big = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{{\"x\":\"{}\"}}}}",
        "a".repeat(2 * 1024 * 1024)
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), big).unwrap();
    let at_file = format!("@{}", file.path().display());
    let auth = format!("Authorization: Bearer {}", setup.token);
    let (status, _, _) = curl(
        &setup.gateway,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-H",
            &auth,
            "--data-binary",
            &at_file,
        ],
        "/mcp",
    );
    assert_eq!(status, 413);
    let (status, _, _) = curl(&setup.gateway, &["-H", &auth], "/mcp");
    assert_eq!(status, 405, "no server-initiated stream");
    let (status, _, _) = curl(
        &setup.gateway,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-H",
            &auth,
            "-H",
            "Mcp-Session-Id: forged.00",
            "--data-binary",
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}",
        ],
        "/mcp",
    );
    assert_eq!(status, 404, "a session id this gateway did not sign");
    let (status, _, answer) = post(
        &setup.gateway,
        token,
        "{\"jsonrpc\":\"2.0\",\"id\":\"still\",\"method\":\"ping\"}",
    );
    assert_eq!((status, answer["id"].clone()), (200, json!("still")));
    assert!(setup.gateway.log().contains("MCP") || !setup.gateway.log().contains("panicked"));
    assert!(!setup.gateway.log().contains("panicked"));
}

#[test]
fn initialize_negotiates_the_version_and_signs_a_session_id() {
    let setup = setup();
    let token = Some(setup.token.as_str());
    for (asked, answered) in [
        ("2025-06-18", "2025-06-18"),
        ("2025-11-25", "2025-11-25"),
        ("2024-11-05", "2025-11-25"),
    ] {
        let body = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{{\"protocolVersion\":\"{asked}\",\"capabilities\":{{}},\"clientInfo\":{{\"name\":\"curl\",\"version\":\"1\"}}}}}}"
        );
        let (status, head, answer) = post(&setup.gateway, token, &body);
        assert_eq!(status, 200, "{head}");
        assert_eq!(answer["result"]["protocolVersion"], answered, "{answer}");
        assert!(
            head.to_ascii_lowercase().contains("mcp-session-id: "),
            "{head}"
        );
    }
    let auth = format!("Authorization: Bearer {}", setup.token);
    let (status, _, _) = curl(
        &setup.gateway,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-H",
            &auth,
            "-H",
            "MCP-Protocol-Version: 1999-01-01",
            "--data-binary",
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}",
        ],
        "/mcp",
    );
    assert_eq!(status, 400);
}

#[test]
fn the_stdio_server_serves_the_same_tools_through_the_gateway() {
    let setup = setup();
    let out = sdk(&json!({
        "transport": "stdio",
        "command": [common::binary().display().to_string(), "mcp", "serve", "--stdio"],
        "env": {
            "AIRLOCK_TOKEN": setup.token,
            "AIRLOCK_GATEWAY_URL": format!("http://127.0.0.1:{}", setup.gateway.http_port),
            "PATH": std::env::var("PATH").unwrap_or_default(),
        },
        "calls": [
            {"tool": "query", "arguments": {"connection": "pg-test", "sql": "SELECT email FROM customers WHERE id = 1"}},
            {"tool": "query", "arguments": {"connection": "pg-test", "sql": "TRUNCATE customers"}},
        ],
    }));
    assert_eq!(out["tools"].as_array().unwrap().len(), 5);
    let queried = &out["results"][0];
    assert_eq!(queried["isError"], false, "{queried}");
    assert!(!queried.to_string().contains(EMAIL), "{queried}");
    assert_eq!(out["results"][1]["isError"], true);
    assert!(!setup.cluster.log().contains("TRUNCATE customers"));
    assert_eq!(customers(&setup.cluster), "2");
}

#[test]
fn a_mysql_query_goes_through_the_mysql_gateway_masked_and_decided() {
    let (server, gateway) = mysql::setup(
        "",
        POLICY.replace("name: pg-test", "name: shop-mysql").as_str(),
    );
    server.sql_in(
        "appdb",
        &format!(
            "CREATE TABLE customers (id int PRIMARY KEY, name varchar(32), email varchar(64));
             INSERT INTO customers VALUES (1, 'Jane', '{EMAIL}'), (2, 'Max', 'max@example.org');"
        ),
    );
    let (_, token) = gateway.issue_token("agent-7", &["shop-mysql"], "10m");
    let out = sdk(&json!({
        "transport": "http",
        "url": format!("http://127.0.0.1:{}/mcp", gateway.http_port),
        "token": token,
        "calls": [
            {"tool": "list_connections"},
            {"tool": "query", "arguments": {"connection": "shop-mysql", "sql": "SELECT id, name, email FROM customers ORDER BY id"}},
            {"tool": "describe", "arguments": {"connection": "shop-mysql"}},
            {"tool": "query", "arguments": {"connection": "shop-mysql", "sql": "DROP TABLE customers"}},
            {"tool": "query", "arguments": {"connection": "shop-mysql", "sql": "DELETE FROM customers WHERE id = 2"}},
        ],
    }));
    let listed = &out["results"][0]["structuredContent"]["connections"][0];
    assert_eq!(
        (listed["name"].clone(), listed["protocol"].clone()),
        (json!("shop-mysql"), json!("mysql"))
    );
    let queried = &out["results"][1];
    assert_eq!(queried["isError"], false, "{queried}");
    assert_eq!(queried["structuredContent"]["row_count"], 2, "{queried}");
    assert_eq!(queried["structuredContent"]["rows"][0][1], "Jane");
    assert!(
        !queried.to_string().contains(EMAIL),
        "raw PII reached the agent: {queried}"
    );
    let described = out["results"][2].to_string();
    assert!(
        described.contains("customers") && described.contains("email"),
        "{described}\n{}",
        gateway.log()
    );
    let denied = &out["results"][3];
    assert_eq!(denied["isError"], true, "{denied}");
    assert!(
        denied.to_string().contains("no-destructive-ddl"),
        "{denied}"
    );
    let held = &out["results"][4]["structuredContent"];
    assert_eq!(held["status"], "review_required", "{out}");
    let log = server.general_log();
    assert!(
        log.contains("SELECT id, name, email FROM customers"),
        "{log}"
    );
    assert!(
        !log.contains("DROP TABLE customers") && !log.contains("DELETE FROM customers"),
        "{log}"
    );
    assert_eq!(
        server.sql_in("appdb", "SELECT count(*) FROM customers"),
        "2"
    );
}

#[test]
fn an_http_request_goes_through_the_http_gateway_with_the_credential_injected() {
    let bin = httpbin::Httpbin::start();
    let config = format!(
        "connections:
  - name: bin
    protocol: http
    url: http://127.0.0.1:{}
    credential: bin-key
    inject: {{header: X-Api-Key}}
    tags: {{env: dev}}
",
        bin.port
    );
    let policy = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: posts-need-review
    match:
      http: {methods: [POST], paths: [\"/post\"]}
    action: review
    approvers: finance
  - name: no-deletes
    match:
      http: {methods: [DELETE]}
    action: deny
    message: no deletes through agents
  - name: mask-bin
    match: {connection: {name: bin}}
    mask: {detectors: [email], style: full}
";
    let gateway = GatewayProcess::start_with_policy(common::binary(), &config, policy);
    gateway.set_credential("bin-key", "api", "upstream-key-93c1f0");
    let (_, token) = gateway.issue_token("agent-7", &["bin"], "10m");
    let out = sdk(&json!({
        "transport": "http",
        "url": format!("http://127.0.0.1:{}/mcp", gateway.http_port),
        "token": token,
        "calls": [
            {"tool": "http_request", "arguments": {"connection": "bin", "method": "GET", "path": format!("/anything/x?mail={EMAIL}")}},
            {"tool": "http_request", "arguments": {"connection": "bin", "method": "DELETE", "path": "/delete"}},
            {"tool": "http_request", "arguments": {"connection": "bin", "method": "POST", "path": "/post", "body": "{}", "content_type": "application/json"}},
            {"tool": "http_request", "arguments": {"connection": "bin", "method": "GET", "path": "no-slash"}},
        ],
    }));
    let got = &out["results"][0];
    assert_eq!(got["isError"], false, "{got}");
    assert_eq!(got["structuredContent"]["http_status"], 200, "{got}");
    let echoed = &got["structuredContent"]["body"];
    assert_eq!(echoed["method"], "GET", "{got}");
    assert!(
        echoed["headers"]["X-Api-Key"].is_string(),
        "the gateway injected the credential: {got}"
    );
    assert!(
        !got.to_string().contains("upstream-key-93c1f0"),
        "the credential reached the agent: {got}"
    );
    assert!(!got.to_string().contains(EMAIL), "masked: {got}");
    let denied = &out["results"][1];
    assert_eq!(denied["isError"], true, "{denied}");
    assert!(
        denied.to_string().contains("no deletes through agents"),
        "{denied}"
    );
    assert_eq!(
        out["results"][2]["structuredContent"]["status"], "review_required",
        "{out}"
    );
    assert_eq!(out["results"][3]["isError"], true);
    let seen = bin.seen();
    assert!(seen.contains("GET /anything/x"), "{seen}");
    assert!(
        !seen.contains("DELETE /delete") && !seen.contains("POST /post"),
        "{seen}"
    );
}

fn node_dir() -> PathBuf {
    repo_file("crates/airlock/tests/node-mcp")
}

/// The TypeScript SDK's client (`node-mcp/client.mjs`) with `scenario`;
/// `npm ci` into `node-mcp/node_modules` (git-ignored) on first run.
fn typescript_sdk(scenario: &Value) -> Value {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let dir = node_dir();
        if dir
            .join("node_modules/@modelcontextprotocol/sdk/package.json")
            .exists()
        {
            return;
        }
        let output = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .output()
            .expect("these tests need node >= 20 and npm");
        assert!(
            output.status.success(),
            "npm ci failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    });
    let output = Command::new("node")
        .arg(node_dir().join("client.mjs"))
        .arg(scenario.to_string())
        .output()
        .expect("run node");
    assert!(
        output.status.success(),
        "the TypeScript MCP client failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the client's JSON")
}

#[test]
fn the_typescript_sdk_finds_the_metadata_then_queries_and_is_denied() {
    let setup = setup();
    let out = typescript_sdk(&http_scenario(
        &setup,
        json!([
            {"tool": "query", "arguments": {"connection": "pg-test", "sql": "SELECT email FROM customers ORDER BY id"}},
            {"tool": "query", "arguments": {"connection": "pg-test", "sql": "DROP TABLE customers"}},
        ]),
    ));
    assert_eq!(out["unauthenticated_status"], 401, "{out}");
    assert_eq!(
        out["metadata"]["resource"],
        format!("http://127.0.0.1:{}/mcp", setup.gateway.http_port),
        "{out}"
    );
    assert_eq!(out["protocol_version"], "2025-11-25", "{out}");
    assert!(out["session_id"].is_string(), "{out}");
    assert_eq!(out["tools"].as_array().unwrap().len(), 5);
    let queried = &out["results"][0];
    assert_eq!(queried["isError"], false, "{queried}");
    assert_eq!(queried["structuredContent"]["row_count"], 2);
    assert!(!queried.to_string().contains(EMAIL), "{queried}");
    let denied = &out["results"][1];
    assert_eq!(denied["isError"], true, "{denied}");
    assert!(
        denied.to_string().contains("no-destructive-ddl"),
        "{denied}"
    );
    assert!(!setup.cluster.log().contains("DROP TABLE customers"));
    assert_eq!(customers(&setup.cluster), "2");
}

/// Median of microsecond samples.
fn median(samples: &mut [u64]) -> u64 {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// The added latency of a `query` tool call over a direct query and over a
/// psql-like session through the gateway, in the same run (printed; the
/// README quotes it). Each sample opens its own session, as a tool call does.
#[test]
fn measures_the_added_latency_per_tool_call() {
    let setup = setup();
    let sql = "SELECT id, name FROM customers WHERE id = 1";
    let times = 30;
    let mut scenario = http_scenario(&setup, json!([]));
    scenario["repeat"] = json!({"tool": "query", "arguments": {"connection": "pg-test", "sql": sql}, "times": times});
    let out = sdk(&scenario);
    let mut mcp: Vec<u64> = out["repeat_us"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let password = setup.cluster.role_password("app");
    let direct_info = format!(
        "host=127.0.0.1 port={} user=app dbname=appdb password={password}",
        setup.cluster.port
    );
    let (mut open_direct, mut open_gateway) = runtime.block_on(async {
        let (direct_client, connection) =
            tokio_postgres::connect(&direct_info, tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(connection);
        let gateway_client =
            common::client(&setup.gateway, "agent-7", "pg-test", &setup.token).await;
        let (mut direct, mut gateway) = (Vec::new(), Vec::new());
        for _ in 0..times {
            let started = Instant::now();
            direct_client.simple_query(sql).await.unwrap();
            direct.push(u64::try_from(started.elapsed().as_micros()).unwrap());
            let started = Instant::now();
            gateway_client.simple_query(sql).await.unwrap();
            gateway.push(u64::try_from(started.elapsed().as_micros()).unwrap());
        }
        (direct, gateway)
    });
    let (mut direct, mut gateway) = runtime.block_on(async {
        let mut direct = Vec::new();
        let mut gateway = Vec::new();
        for _ in 0..times {
            let started = Instant::now();
            let (client, connection) = tokio_postgres::connect(&direct_info, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            client.simple_query(sql).await.unwrap();
            direct.push(u64::try_from(started.elapsed().as_micros()).unwrap());
            let started = Instant::now();
            let client = common::client(&setup.gateway, "agent-7", "pg-test", &setup.token).await;
            client.simple_query(sql).await.unwrap();
            gateway.push(u64::try_from(started.elapsed().as_micros()).unwrap());
        }
        (direct, gateway)
    });
    let (mcp, direct, gateway) = (median(&mut mcp), median(&mut direct), median(&mut gateway));
    let (open_direct, open_gateway) = (median(&mut open_direct), median(&mut open_gateway));
    eprintln!(
        "latency (median of {times}): query on an open connection: direct {open_direct} us, through the PostgreSQL listener {open_gateway} us; connect + query: direct {direct} us, through the PostgreSQL listener {gateway} us; MCP query tool call (Python SDK, Streamable HTTP) {mcp} us: {} us over a direct connect + query, {} us over a direct query on an open connection",
        mcp.saturating_sub(direct),
        mcp.saturating_sub(open_direct)
    );
    assert!(mcp > 0 && direct > 0 && gateway > 0 && open_direct > 0 && open_gateway > 0);
}
