//! End-to-end tests of the MCP proxy in front of `url:` servers: the real
//! `airlock` binary as an MCP client of `@modelcontextprotocol/server-everything`
//! (npm, installed by `bash .ci/install-deps` into `node-mcp-servers/`),
//! run in its Streamable HTTP mode and in its legacy HTTP+SSE mode, and of
//! a server written for these tests with the official Python SDK that
//! echoes the request headers it received (`python-mcp/header_echo_server.py`).
//! The agent is the official Python SDK (`python-mcp/client.py`) over
//! Streamable HTTP at `/<connection>/mcp`.
//!
//! Enforcement is asserted on the upstream: `gzip-file-as-resource`
//! fetches a URL, here a listener of the test, so a call the gateway
//! denied would show as a request there; the server's own log shows the
//! session's GET stream and the DELETE that ends it.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use airlock_testkit::{free_port, repo_file, GatewayProcess};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The credential the gateway injects (`inject: {bearer: true}`).
const UPSTREAM_TOKEN: &str = "upstream-secret-7c1d9e2f4a6b";

const POLICY: &str = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: everything-tools
    match: {mcp: {tools: [echo, gzip-file-as-resource, show_headers, trigger-sampling-request, cut]}}
    action: allow
  - name: sampling-where-trusted
    match: {connection: {name: sampled}, mcp: {methods: [\"sampling/*\"]}}
    action: allow
  - name: no-sampling-elsewhere
    match: {connection: {name: everything}, mcp: {methods: [\"sampling/*\"]}}
    action: deny
    message: this server may not sample the agent's model
  - name: no-secret-archives
    match: {mcp: {tools: [gzip-file-as-resource], arguments: {name: \"secret-*\"}}}
    action: deny
    message: agents may not archive secret files
  - name: short-operations
    match: {mcp: {tools: [trigger-long-running-operation], arguments: {steps: \"2\"}}}
    action: allow
  - name: sums-need-review
    match: {mcp: {tools: [get-sum]}}
    action: review
    approvers: ops
  - name: mask-pii
    match: {connection: {tags: {env: dev}}}
    mask: {detectors: [email], style: full}
";

fn python_dir() -> PathBuf {
    repo_file("crates/airlock/tests/python-mcp")
}

fn python_site() -> PathBuf {
    airlock_testkit::pip_site("crates/airlock/tests/python-mcp", &["mcp"])
}

/// The server's entry point; installed by `.ci/install-deps`.
fn everything_server() -> PathBuf {
    let entry = repo_file(
        "crates/airlock/tests/node-mcp-servers/node_modules/@modelcontextprotocol/server-everything/dist/index.js",
    );
    assert!(
        entry.exists(),
        "{} is missing: run `bash .ci/install-deps` (it installs the npm MCP servers of these tests)",
        entry.display()
    );
    entry
}

/// A server process of the test, killed on drop; its output in `log`.
struct Upstream {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Upstream {
    fn start(program: &str, args: &[&str], port: u16) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("airlock-mcp-upstream-")
            .tempdir()
            .unwrap();
        let log = dir.path().join("server.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(program)
            .args(args)
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {program}: {error}"));
        let upstream = Self {
            child,
            port,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{program} did not listen on {port}:\n{}",
                upstream.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        upstream
    }

    fn everything(mode: &str) -> Self {
        let entry = everything_server();
        Self::start("node", &[entry.to_str().unwrap(), mode], free_port())
    }

    /// The header-echo server; `options` as its docstring says.
    fn header_echo(options: &[&str]) -> Self {
        let port = free_port();
        let script = python_dir().join("header_echo_server.py");
        let site = python_site();
        let port_text = port.to_string();
        let mut args = vec![script.to_str().unwrap(), site.to_str().unwrap(), &port_text];
        args.extend_from_slice(options);
        Self::start("python3", &args, port)
    }

    /// The server that cuts its GET stream once (`python-mcp/cut_stream_server.py`).
    fn cut_stream() -> Self {
        let port = free_port();
        let script = python_dir().join("cut_stream_server.py");
        Self::start(
            "python3",
            &[script.to_str().unwrap(), &port.to_string()],
            port,
        )
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP listener that records the path of every request it gets
/// (what the server fetched on a tool's behalf).
struct Marker {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Marker {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                let path = line.split(' ').nth(1).unwrap_or("").to_string();
                record.lock().unwrap().push(path);
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|read| read > 2) {
                    header.clear();
                }
                let mut stream = stream;
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
                );
            }
        });
        Self { port, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
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

/// The gateway in front of `connections` (YAML list items), and an agent
/// token for `names`.
fn gateway(connections: &str, names: &[&str]) -> (GatewayProcess, String) {
    let config = format!("connections:\n{connections}");
    let gateway = GatewayProcess::start_with_policy(common::binary(), &config, POLICY);
    gateway.set_credential("upstream-token", "gateway", UPSTREAM_TOKEN);
    let (_, token) = gateway.issue_token("agent-7", names, "10m");
    (gateway, token)
}

fn connection(name: &str, url: &str, transport: Option<&str>) -> String {
    let transport = transport
        .map(|transport| format!("    transport: {transport}\n"))
        .unwrap_or_default();
    format!(
        "  - name: {name}
    protocol: mcp
    url: {url}
    credential: upstream-token
    inject: {{bearer: true}}
{transport}    tags: {{env: dev}}
"
    )
}

fn scenario(gateway: &GatewayProcess, token: &str, connection: &str, calls: Value) -> Value {
    json!({
        "transport": "http",
        "url": format!("http://127.0.0.1:{}/{connection}/mcp", gateway.http_port),
        "token": token,
        "calls": calls,
    })
}

fn text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn tool_names(tools: &Value) -> Vec<String> {
    tools
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap().to_string())
        .collect()
}

fn wait_for(seconds: u64, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    condition()
}

fn gzip(name: &str, data: &str) -> Value {
    json!({"tool": "gzip-file-as-resource", "arguments": {"name": name, "data": data}})
}

#[test]
fn streamable_http_lists_filtered_relays_allowed_and_a_denied_call_never_reaches_the_server() {
    let server = Upstream::everything("streamableHttp");
    let marker = Marker::start();
    let url = format!("http://127.0.0.1:{}/mcp", server.port);
    let (gateway, token) = gateway(&connection("everything", &url, None), &["everything"]);
    let out = sdk(&scenario(
        &gateway,
        &token,
        "everything",
        json!([
            {"tool": "echo", "arguments": {"message": "write to jane.doe@example.com"}},
            gzip("ok.gz", &marker.url("allowed")),
            gzip("secret-keys.gz", &marker.url("denied")),
            {"tool": "get-env", "arguments": {}},
        ]),
    ));
    let names = tool_names(&out["tools"]);
    for offered in ["echo", "gzip-file-as-resource", "get-sum"] {
        assert!(names.contains(&offered.to_string()), "{offered}: {names:?}");
    }
    for hidden in [
        "get-env",
        "trigger-long-running-operation",
        "toggle-simulated-logging",
    ] {
        assert!(
            !names.contains(&hidden.to_string()),
            "{hidden} is denied, so not offered: {names:?}"
        );
    }
    let results = out["results"].as_array().unwrap();
    // Allowed: relayed, and masked on its way back.
    let echoed = text(&results[0]);
    assert!(
        echoed.contains("write to") && !echoed.contains("jane.doe@example.com"),
        "{}",
        results[0]
    );
    assert_eq!(results[1]["isError"], false, "{}", results[1]);
    // Denied by the argument rule: a tool error naming it, and the server
    // never fetched the URL it would have.
    assert_eq!(results[2]["isError"], true, "{}", results[2]);
    assert!(
        text(&results[2]).contains("no-secret-archives"),
        "{}",
        results[2]
    );
    assert_eq!(results[3]["isError"], true, "{}", results[3]);
    assert!(
        wait_for(5, || marker.seen().contains(&"/allowed".to_string())),
        "the allowed call did not reach the server: {:?}",
        marker.seen()
    );
    assert!(
        !marker.seen().contains(&"/denied".to_string()),
        "the denied call reached the server: {:?}",
        marker.seen()
    );

    // The session opened the server's own stream (GET), and its end (the
    // client's DELETE to the gateway) ended the server's session too.
    assert!(
        wait_for(10, || server
            .log()
            .contains("Received session termination request")),
        "no DELETE reached the server:\n{}",
        server.log()
    );
    let log = server.log();
    assert!(
        log.contains("Establishing new SSE stream for session"),
        "{log}"
    );

    let events = common::events(&gateway);
    let denied = events
        .iter()
        .find(|event| {
            event.kind == "command"
                && event.data["statement"]
                    .as_str()
                    .unwrap_or("")
                    .contains("secret-keys")
        })
        .expect("the denied call is recorded");
    assert_eq!(denied.data["decision"], "refuse", "{}", denied.data);
    let session = denied.session_id.clone().unwrap();
    assert!(events
        .iter()
        .any(|event| event.kind == "session.end" && event.session_id.as_deref() == Some(&session)));
    assert!(!events
        .iter()
        .any(|event| event.data.to_string().contains("jane.doe@example.com")));
    assert!(!events
        .iter()
        .any(|event| event.data.to_string().contains(UPSTREAM_TOKEN)));
    assert!(!gateway.log().contains(UPSTREAM_TOKEN));
}

/// The server's `sampling/createMessage` (sent while its tool call runs)
/// is decided by `mcp: {methods: [...]}`: allowed on `sampled`, it reaches
/// the agent's sampling callback (its params masked) and the agent's answer
/// (masked too) reaches the tool's result; refused on `everything`, the
/// tool reports the rule and the callback never ran. Both are recorded.
#[test]
fn server_sampling_requests_are_relayed_or_refused_by_policy() {
    let server = Upstream::everything("streamableHttp");
    let url = format!("http://127.0.0.1:{}/mcp", server.port);
    let connections = format!(
        "{}{}",
        connection("sampled", &url, None),
        connection("everything", &url, None)
    );
    let (gateway, token) = gateway(&connections, &["sampled", "everything"]);
    let dir = tempfile::tempdir().unwrap();
    let call = json!({
        "tool": "trigger-sampling-request",
        "arguments": {"prompt": "write to jane.doe@example.com", "maxTokens": 20},
    });
    let with_sampling = |connection: &str, marker: &std::path::Path| {
        let mut run = scenario(&gateway, &token, connection, json!([call]));
        run["sampling"] = json!({
            "reply": "model says hi to bob.smith@example.org",
            "marker": marker,
        });
        sdk(&run)
    };

    let allowed_marker = dir.path().join("allowed.jsonl");
    let out = with_sampling("sampled", &allowed_marker);
    let result = &out["results"][0];
    assert_eq!(result["isError"], false, "{result}");
    let tool_text = text(result);
    assert!(tool_text.contains("model says hi"), "{result}");
    assert!(
        tool_text.contains("airlock-test-model"),
        "the agent's answer is the tool's: {result}"
    );
    assert!(
        !tool_text.contains("bob.smith@example.org"),
        "the agent's answer is masked before the server: {result}"
    );
    let asked = std::fs::read_to_string(&allowed_marker).expect("the callback ran");
    assert_eq!(asked.lines().count(), 1, "{asked}");
    assert!(asked.contains("You are a helpful test server"), "{asked}");
    assert!(
        !asked.contains("jane.doe@example.com"),
        "the server's params are masked before the agent: {asked}"
    );

    let refused_marker = dir.path().join("refused.jsonl");
    let out = with_sampling("everything", &refused_marker);
    let result = &out["results"][0];
    assert_eq!(result["isError"], true, "{result}");
    assert!(
        text(result).contains("may not sample the agent's model"),
        "the tool reports the rule: {result}"
    );
    assert!(
        !refused_marker.exists(),
        "the agent's callback never ran on a refusal"
    );

    let events = common::events(&gateway);
    let decided: Vec<&airlock_store::EventRecord> = events
        .iter()
        .filter(|event| {
            event.kind == "command"
                && event.data["statement"]
                    .as_str()
                    .unwrap_or("")
                    .contains("sampling/createMessage")
        })
        .collect();
    assert_eq!(decided.len(), 2, "both server requests are recorded");
    let verdicts: Vec<&str> = decided
        .iter()
        .map(|event| event.data["decision"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(verdicts, ["forward", "refuse"], "{decided:?}");
    assert_eq!(decided[0].data["policy"]["verdict"], "allow");
    assert_eq!(decided[0].data["policy"]["access"], "write");
    assert!(
        decided[1]
            .data
            .to_string()
            .contains("no-sampling-elsewhere"),
        "{}",
        decided[1].data
    );
    assert!(!events
        .iter()
        .any(|event| event.data.to_string().contains("jane.doe@example.com")));
}

/// An agent speaking the stateless 2026-07-28 revision (the SDK's `Client`
/// default: `server/discover` first) works through the proxy in front of a
/// server that speaks only the handshake revisions: the gateway keeps one
/// upstream session for the identity and connection, and the results are
/// typed for the revision.
#[test]
fn an_agent_speaking_the_stateless_revision_works_against_a_handshake_only_server() {
    let server = Upstream::everything("streamableHttp");
    let url = format!("http://127.0.0.1:{}/mcp", server.port);
    let (gateway, token) = gateway(&connection("everything", &url, None), &["everything"]);
    let mut auto = scenario(
        &gateway,
        &token,
        "everything",
        json!([
            {"tool": "echo", "arguments": {"message": "hello modern"}},
            {"tool": "echo", "arguments": {"message": "write to jane.doe@example.com"}},
            {"tool": "get-env", "arguments": {}},
        ]),
    );
    auto["mode"] = json!("auto");
    let out = sdk(&auto);
    assert_eq!(out["discovered"], true, "{out}");
    assert_eq!(out["protocol_version"], "2026-07-28", "{out}");
    let names = tool_names(&out["tools"]);
    assert!(names.contains(&"echo".to_string()), "{out}");
    assert!(!names.contains(&"get-env".to_string()), "filtered: {out}");
    assert!(text(&out["results"][0]).contains("hello modern"), "{out}");
    assert_eq!(out["results"][0]["resultType"], "complete", "{out}");
    assert!(
        !text(&out["results"][1]).contains("jane.doe@example.com"),
        "masked: {out}"
    );
    assert_eq!(out["results"][2]["isError"], true, "denied: {out}");
    // A second agent run of the same identity reuses the kept session.
    let again = sdk(&auto);
    assert!(
        text(&again["results"][0]).contains("hello modern"),
        "{again}"
    );
    let events = common::events(&gateway);
    let starts = events
        .iter()
        .filter(|event| event.kind == "session.start")
        .count();
    assert_eq!(
        starts, 1,
        "one upstream session carries every stateless request"
    );
}

/// The server's GET stream drops after its first event: the gateway
/// reopens it with `Last-Event-ID`, so the event sent after the cut reaches
/// the agent, and each event arrives exactly once (the server replays
/// everything to a reopening without the header).
#[test]
fn a_dropped_server_stream_is_resumed_with_last_event_id() {
    let server = Upstream::cut_stream();
    let url = format!("http://127.0.0.1:{}/mcp", server.port);
    let (gateway, token) = gateway(&connection("cut", &url, Some("streamable-http")), &["cut"]);
    let mut run = scenario(
        &gateway,
        &token,
        "cut",
        json!([{"tool": "cut", "arguments": {}}]),
    );
    run["logging"] = json!(true);
    let out = sdk(&run);
    let result = &out["results"][0];
    assert_eq!(result["isError"], false, "{result}");
    assert!(
        text(result).contains("Last-Event-ID=e1"),
        "the reopened stream resumed after e1: {result}"
    );
    assert_eq!(
        out["logs"],
        json!(["before-cut", "after-cut"]),
        "each event once, in order: {out}"
    );
    let log = server.log();
    assert!(log.contains("GET 1 Last-Event-ID=None"), "{log}");
    assert!(log.contains("GET 2 Last-Event-ID=e1"), "{log}");
}

/// curl POST to the gateway's HTTP listener with `headers`: (status, body).
fn post_with(
    gateway: &GatewayProcess,
    path: &str,
    token: &str,
    headers: &[&str],
    body: &str,
) -> (u16, Value) {
    let auth = format!("Authorization: Bearer {token}");
    let mut args = vec![
        "-sS",
        "--max-time",
        "30",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-H",
        "Accept: application/json",
        "-H",
        auth.as_str(),
        "--data-binary",
        body,
    ];
    for header in headers {
        args.extend(["-H", header]);
    }
    let url = format!("http://127.0.0.1:{}{path}", gateway.http_port);
    let output = Command::new("curl")
        .args(&args)
        .arg(url)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        status.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

/// On the proxy too, a stateless request whose routing headers disagree
/// with its body is refused (`-32020`) before it reaches the server, and
/// an unserved revision is `-32022`.
#[test]
fn routing_headers_that_disagree_with_the_body_never_reach_the_server() {
    let server = Upstream::everything("streamableHttp");
    let marker = Marker::start();
    let url = format!("http://127.0.0.1:{}/mcp", server.port);
    let (gateway, token) = gateway(&connection("everything", &url, None), &["everything"]);
    let call = |fetch: &str, version: &str| {
        json!({
            "jsonrpc": "2.0", "id": "r1", "method": "tools/call",
            "params": {
                "name": "gzip-file-as-resource",
                "arguments": {"name": "ok.gz", "data": marker.url(fetch)},
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": version,
                    "io.modelcontextprotocol/clientCapabilities": {},
                },
            },
        })
        .to_string()
    };
    let modern = "MCP-Protocol-Version: 2026-07-28";
    let (status, answer) = post_with(
        &gateway,
        "/everything/mcp",
        &token,
        &[modern, "Mcp-Method: tools/call", "Mcp-Name: echo"],
        &call("mismatch", "2026-07-28"),
    );
    assert_eq!(
        (status, &answer["error"]["code"]),
        (400, &json!(-32020)),
        "{answer}"
    );
    assert_eq!(answer["id"], "r1");
    let (status, answer) = post_with(
        &gateway,
        "/everything/mcp",
        &token,
        &[
            "MCP-Protocol-Version: 2099-01-01",
            "Mcp-Method: tools/call",
            "Mcp-Name: gzip-file-as-resource",
        ],
        &call("future", "2099-01-01"),
    );
    assert_eq!(
        (status, &answer["error"]["code"]),
        (400, &json!(-32022)),
        "{answer}"
    );
    assert_eq!(
        answer["error"]["data"]["supported"],
        json!(["2026-07-28"]),
        "{answer}"
    );
    // Agreeing headers: relayed, and the server fetched the marker.
    let (status, answer) = post_with(
        &gateway,
        "/everything/mcp",
        &token,
        &[
            modern,
            "Mcp-Method: tools/call",
            "Mcp-Name: gzip-file-as-resource",
        ],
        &call("agreed", "2026-07-28"),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"]["resultType"], "complete", "{answer}");
    assert!(
        wait_for(10, || marker.seen().contains(&"/agreed".to_string())),
        "{:?}",
        marker.seen()
    );
    let seen = marker.seen();
    assert!(!seen.contains(&"/mismatch".to_string()), "{seen:?}");
    assert!(!seen.contains(&"/future".to_string()), "{seen:?}");
}

/// The server's progress notifications, sent on the answer's event stream,
/// reach the agent before the result.
#[test]
fn progress_of_a_long_call_is_relayed() {
    let server = Upstream::everything("streamableHttp");
    let url = format!("http://127.0.0.1:{}/mcp", server.port);
    let (gateway, token) = gateway(&connection("everything", &url, None), &["everything"]);
    let out = sdk(&scenario(
        &gateway,
        &token,
        "everything",
        json!([{
            "tool": "trigger-long-running-operation",
            "arguments": {"duration": 1, "steps": 2},
            "progress": true,
        }]),
    ));
    let result = &out["results"][0];
    assert_eq!(result["isError"], false, "{result}");
    assert!(text(result).contains("completed"), "{result}");
    let progress = result["progress"].as_array().unwrap();
    assert_eq!(progress.len(), 2, "{result}");
    assert_eq!(progress[1]["progress"], 2.0, "{result}");
}

#[test]
fn a_held_call_returns_its_review_and_runs_once_approved() {
    let server = Upstream::everything("streamableHttp");
    let url = format!("http://127.0.0.1:{}/mcp", server.port);
    let (gateway, token) = gateway(&connection("everything", &url, None), &["everything"]);
    let sum = json!({"tool": "get-sum", "arguments": {"a": 2, "b": 3}});
    let out = sdk(&scenario(&gateway, &token, "everything", json!([sum])));
    let held = &out["results"][0];
    assert_eq!(held["isError"], true, "{held}");
    assert_eq!(
        held["structuredContent"]["status"], "review_required",
        "{held}"
    );
    let review = held["structuredContent"]["review"]
        .as_str()
        .unwrap()
        .to_string();
    let approver = common::issue_for(&gateway, "everything", "alice", "human", &["ops"]);
    let approved = common::as_person(&gateway, &approver, &["review", "approve", &review]);
    assert!(approved.status.success(), "{}", common::stderr(&approved));
    let again = sdk(&scenario(&gateway, &token, "everything", json!([sum])));
    assert_eq!(
        again["results"][0]["isError"], false,
        "{}",
        again["results"][0]
    );
    assert!(
        text(&again["results"][0]).contains('5'),
        "{}",
        again["results"][0]
    );
}

#[test]
fn the_injected_credential_reaches_the_server_but_never_the_agent() {
    let server = Upstream::header_echo(&[]);
    let url = format!("http://127.0.0.1:{}/mcp", server.port);
    let (gateway, token) = gateway(
        &connection("echo", &url, Some("streamable-http")),
        &["echo"],
    );
    let out = sdk(&scenario(
        &gateway,
        &token,
        "echo",
        json!([{"tool": "show_headers"}]),
    ));
    let headers = text(&out["results"][0]);
    // The server got a bearer credential (shown as the gateway replaced
    // it), not the agent's airlock token.
    assert!(
        headers.contains("authorization: Bearer [airlock:credential]"),
        "{headers}"
    );
    assert!(!headers.contains(UPSTREAM_TOKEN), "{headers}");
    assert!(
        !headers.contains(&token),
        "the agent's token went upstream: {headers}"
    );
    assert!(!out.to_string().contains(UPSTREAM_TOKEN));
    let events = common::events(&gateway);
    assert!(!events
        .iter()
        .any(|event| event.data.to_string().contains(UPSTREAM_TOKEN)));
}

/// An https server, its certificate checked against the connection's
/// `ca_file` (a wrong CA is refused before anything is sent), answering
/// with JSON rather than event streams.
#[test]
fn an_https_server_is_verified_against_the_ca_file_and_json_answers_are_relayed() {
    let (certs, cert, key) = airlock_testkit::server_certificate();
    let server = Upstream::header_echo(&[
        "--json",
        "--tls",
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
    ]);
    let wrong = {
        let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let path = certs.path().join("other-ca.crt");
        std::fs::write(&path, other.cert.pem()).unwrap();
        path
    };
    let url = format!("https://localhost:{}/mcp", server.port);
    let with_ca = |name: &str, ca: &std::path::Path| {
        connection(name, &url, Some("streamable-http")).replace(
            "    tags:",
            &format!("    ca_file: {}\n    tags:", ca.display()),
        )
    };
    let connections = format!(
        "{}{}",
        with_ca("echo-tls", &cert),
        with_ca("echo-wrong-ca", &wrong)
    );
    let (gateway, token) = gateway(&connections, &["echo-tls", "echo-wrong-ca"]);
    let out = sdk(&scenario(
        &gateway,
        &token,
        "echo-tls",
        json!([{"tool": "show_headers"}]),
    ));
    let headers = text(&out["results"][0]);
    assert!(
        headers.contains("authorization: Bearer [airlock:credential]"),
        "{headers}"
    );
    assert!(!out.to_string().contains(UPSTREAM_TOKEN));
    let before = server.log().matches("POST /mcp").count();
    assert!(
        before > 0,
        "the server logs its requests:\n{}",
        server.log()
    );
    let output = Command::new("curl")
        .args(["-s", "-H", "content-type: application/json", "-H", "accept: application/json, text/event-stream"])
        .args(["-H", &format!("authorization: Bearer {token}")])
        .args(["--data-binary", r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}"#])
        .arg(format!("http://127.0.0.1:{}/echo-wrong-ca/mcp", gateway.http_port))
        .output()
        .expect("these tests need curl");
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        answer["error"]["data"]["status"], "upstream_failed",
        "{answer}"
    );
    assert_eq!(
        server.log().matches("POST /mcp").count(),
        before,
        "a request reached the server past a certificate the CA did not sign"
    );
}

#[test]
fn the_legacy_sse_transport_is_spoken_when_named_and_by_fallback() {
    let server = Upstream::everything("sse");
    let marker = Marker::start();
    let url = format!("http://127.0.0.1:{}/sse", server.port);
    let connections = format!(
        "{}{}",
        connection("legacy", &url, Some("sse")),
        connection("fallback", &url, None)
    );
    let (gateway, token) = gateway(&connections, &["legacy", "fallback"]);
    for name in ["legacy", "fallback"] {
        let out = sdk(&scenario(
            &gateway,
            &token,
            name,
            json!([
                {"tool": "echo", "arguments": {"message": format!("hello over {name}")}},
                gzip("secret-x.gz", &marker.url(&format!("denied-{name}"))),
            ]),
        ));
        let names = tool_names(&out["tools"]);
        assert!(names.contains(&"echo".to_string()), "{name}: {names:?}");
        assert!(!names.contains(&"get-env".to_string()), "{name}: {names:?}");
        let results = out["results"].as_array().unwrap();
        assert!(
            text(&results[0]).contains(&format!("hello over {name}")),
            "{name}: {}",
            results[0]
        );
        assert_eq!(results[1]["isError"], true, "{name}: {}", results[1]);
        assert!(text(&results[1]).contains("no-secret-archives"));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        marker.seen().is_empty(),
        "a denied call reached the server: {:?}",
        marker.seen()
    );
    // Both sessions were the server's SSE sessions, their messages POSTed
    // to the endpoint it named.
    let log = server.log();
    assert!(log.matches("Client Connected").count() >= 2, "{log}");
    assert!(log.contains("Client Message from"), "{log}");
}

/// A server that cannot be reached, or refuses the gateway's credential,
/// is a clear error for the agent, never a hang or its words.
#[test]
fn an_unreachable_server_is_a_clear_error() {
    let closed = free_port();
    let (gateway, token) = gateway(
        &connection("gone", &format!("http://127.0.0.1:{closed}/mcp"), None),
        &["gone"],
    );
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}"#;
    let output = Command::new("curl")
        .args([
            "-s",
            "-H",
            "content-type: application/json",
            "-H",
            "accept: application/json, text/event-stream",
        ])
        .args(["-H", &format!("authorization: Bearer {token}")])
        .args(["--data-binary", body])
        .arg(format!("http://127.0.0.1:{}/gone/mcp", gateway.http_port))
        .output()
        .expect("these tests need curl");
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        answer["error"]["data"]["status"], "upstream_failed",
        "{answer}"
    );
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot be reached"),
        "{answer}"
    );
}

fn median(samples: &mut [u64]) -> u64 {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or(0)
}

/// The added latency of the proxy in front of a Streamable HTTP server:
/// the same `echo` call, directly and through the gateway, in the same
/// run. Printed (`cargo test … -- --nocapture`) for the README; asserted
/// only loosely.
#[test]
fn measures_the_added_latency_per_remote_tool_call() {
    let server = Upstream::everything("streamableHttp");
    let url = format!("http://127.0.0.1:{}/mcp", server.port);
    let (gateway, token) = gateway(&connection("everything", &url, None), &["everything"]);
    let repeat = json!({"tool": "echo", "arguments": {"message": "ping"}, "times": 100});
    let direct = sdk(&json!({
        "transport": "http",
        "url": url,
        "token": "not-checked-by-the-server",
        "repeat": repeat,
    }));
    let mut proxied = scenario(&gateway, &token, "everything", json!([]));
    proxied["repeat"] = repeat;
    let proxied = sdk(&proxied);
    let samples = |out: &Value| -> Vec<u64> {
        out["repeat_us"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect()
    };
    let (mut direct, mut proxied) = (samples(&direct), samples(&proxied));
    let (direct, proxied) = (median(&mut direct), median(&mut proxied));
    println!("MCP proxy latency per tool call (url: Streamable HTTP, echo, median of 100): direct {direct} us, through airlock {proxied} us, added {} us", proxied.saturating_sub(direct));
    assert!(
        proxied < direct + 50_000,
        "the proxy adds more than 50 ms per call: {direct} vs {proxied}"
    );
}
