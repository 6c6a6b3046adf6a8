//! End-to-end tests of the MCP proxy: the real `airlock` binary in front of
//! real MCP servers it starts over stdio, `@modelcontextprotocol/server-filesystem`
//! from npm (installed into `node-mcp-servers/node_modules` on first run)
//! and a rug-pull server written for these tests with the official Python
//! SDK (`python-mcp/rug_pull_server.py`), with the official Python SDK
//! (`mcp` from PyPI, `python-mcp/client.py`) as the agent over Streamable
//! HTTP at `/<connection>/mcp`, and curl for what an SDK never sends.
//! Enforcement is asserted on the upstream: the files a denied tool would
//! have written do not exist.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use airlock_testkit::{repo_file, GatewayProcess};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const EMAIL: &str = "jane.doe@example.com";
const NOTES_KEY: &str = "notes-key-9f8e7d6c5b4a";

const POLICY: &str = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: notes-tools
    match: {connection: {name: notes-mcp}, mcp: {tools: [fetch_notes, key_length]}}
    action: allow
  - name: no-file-changes
    match: {mcp: {tools: [\"write_*\", \"edit_*\", \"move_*\", \"delete_*\"]}}
    action: deny
    message: agents may not change files
  - name: new-directories-need-review
    match: {mcp: {tools: [create_directory]}}
    action: review
    approvers: ops
  - name: mask-pii
    match: {connection: {tags: {env: dev}}}
    mask: {detectors: [email], style: full}
";

/// Tools of the filesystem server that only read.
const READ_TOOLS: &str = "[list_directory, list_directory_with_sizes, directory_tree, read_text_file, read_file, read_media_file, read_multiple_files, get_file_info, search_files, list_allowed_directories]";

fn python_dir() -> PathBuf {
    repo_file("crates/airlock/tests/python-mcp")
}

fn python_site() -> PathBuf {
    airlock_testkit::pip_site("crates/airlock/tests/python-mcp", &["mcp"])
}

fn servers_dir() -> PathBuf {
    repo_file("crates/airlock/tests/node-mcp-servers")
}

/// The filesystem server's entry point; `npm ci` on first run.
fn filesystem_server() -> PathBuf {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    let entry =
        servers_dir().join("node_modules/@modelcontextprotocol/server-filesystem/dist/index.js");
    INSTALLED.get_or_init(|| {
        if entry.exists() {
            return;
        }
        let output = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(servers_dir())
            .output()
            .expect("these tests need node >= 20 and npm");
        assert!(
            output.status.success(),
            "npm ci failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    });
    entry
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
    gateway: GatewayProcess,
    token: String,
    /// The directory the filesystem server serves.
    files: tempfile::TempDir,
    /// The rug-pull server's state directory.
    notes_state: tempfile::TempDir,
}

fn setup() -> Setup {
    let files = tempfile::Builder::new()
        .prefix("airlock-mcp-files-")
        .tempdir()
        .unwrap();
    std::fs::write(
        files.path().join("notes.txt"),
        format!("call {EMAIL} about the invoice\n"),
    )
    .unwrap();
    let notes_state = tempfile::Builder::new()
        .prefix("airlock-mcp-notes-")
        .tempdir()
        .unwrap();
    let config = format!(
        "connections:
  - name: files-mcp
    protocol: mcp
    command: [node, {filesystem}, {files}]
    read_tools: {READ_TOOLS}
    tags: {{env: dev}}
  - name: notes-mcp
    protocol: mcp
    command: [python3, {rug}, {site}, {state}]
    env_from_credentials: {{NOTES_API_KEY: notes-key}}
    tags: {{env: dev}}
",
        filesystem = filesystem_server().display(),
        files = files.path().display(),
        rug = python_dir().join("rug_pull_server.py").display(),
        site = python_site().display(),
        state = notes_state.path().display(),
    );
    let gateway = GatewayProcess::start_with_policy(common::binary(), &config, POLICY);
    gateway.set_credential("notes-key", "notes", NOTES_KEY);
    let (_, token) = gateway.issue_token("agent-7", &["files-mcp", "notes-mcp"], "10m");
    Setup {
        gateway,
        token,
        files,
        notes_state,
    }
}

fn scenario(setup: &Setup, connection: &str, calls: Value) -> Value {
    json!({
        "transport": "http",
        "url": format!("http://127.0.0.1:{}/{connection}/mcp", setup.gateway.http_port),
        "token": setup.token,
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

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &Path) -> usize {
    let needle = needle.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .filter(|cmdline| String::from_utf8_lossy(cmdline).contains(&needle))
        .count()
}

fn wait_for(seconds: u64, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    condition()
}

#[test]
fn the_filesystem_server_lists_and_reads_masked_and_a_denied_write_never_lands() {
    let setup = setup();
    let dir = setup.files.path().to_string_lossy().into_owned();
    let out = sdk(&scenario(
        &setup,
        "files-mcp",
        json!([
            {"tool": "list_directory", "arguments": {"path": dir}},
            {"tool": "read_text_file", "arguments": {"path": format!("{dir}/notes.txt")}},
            {"tool": "write_file", "arguments": {"path": format!("{dir}/new.txt"), "content": "pwned"}},
        ]),
    ));
    let names = tool_names(&out["tools"]);
    assert!(names.contains(&"list_directory".to_string()), "{names:?}");
    assert!(names.contains(&"read_text_file".to_string()), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|name| name == "write_file" || name == "edit_file"),
        "denied tools are not offered: {names:?}"
    );
    let results = out["results"].as_array().unwrap();
    assert!(text(&results[0]).contains("notes.txt"), "{}", results[0]);
    let read = text(&results[1]);
    assert!(
        read.contains("about the invoice") && !read.contains(EMAIL),
        "masked: {read}"
    );
    assert_eq!(results[2]["isError"], true, "{}", results[2]);
    assert!(
        text(&results[2]).contains("no-file-changes"),
        "{}",
        results[2]
    );
    assert!(
        !setup.files.path().join("new.txt").exists(),
        "the denied write reached the server"
    );

    // The session ended with the client (DELETE): its child is gone and
    // every call is in the audit log, arguments masked, results masked.
    assert!(
        wait_for(10, || processes_mentioning(setup.files.path()) == 0),
        "the filesystem server outlived its session"
    );
    let events = common::events(&setup.gateway);
    let commands: Vec<&airlock_store::EventRecord> = events
        .iter()
        .filter(|event| event.kind == "command" && event.data["message"] == "mcp")
        .collect();
    let write = commands
        .iter()
        .find(|event| {
            event.data["statement"]
                .as_str()
                .unwrap_or("")
                .contains("write_file")
        })
        .expect("the write_file call is recorded");
    assert_eq!(write.data["decision"], "refuse", "{}", write.data);
    let session = write.session_id.clone().unwrap();
    let results: Vec<&serde_json::Value> = events
        .iter()
        .filter(|event| event.session_id.as_deref() == Some(&session))
        .filter_map(|event| event.command_result())
        .collect();
    assert!(results.iter().any(|result| result["body_sample"]
        .as_str()
        .unwrap_or("")
        .contains("about the invoice")));
    assert!(
        !events
            .iter()
            .any(|event| event.data.to_string().contains(EMAIL)),
        "the email is recorded unmasked"
    );
    assert!(events
        .iter()
        .any(|event| event.kind == "session.end" && event.session_id.as_deref() == Some(&session)));
    let shown = setup.gateway.cli_ok(&["session", "show", &session], None);
    assert!(
        shown.contains("MCP tools/call") && shown.contains("no-file-changes"),
        "{shown}"
    );
}

/// curl against the proxy: (status, headers, body).
fn curl(setup: &Setup, extra: &[&str], body: &str) -> (u16, String, String) {
    let url = format!("http://127.0.0.1:{}/files-mcp/mcp", setup.gateway.http_port);
    let output = Command::new("curl")
        .args([
            "-s",
            "-D",
            "-",
            "-H",
            "content-type: application/json",
            "-H",
            "accept: application/json, text/event-stream",
        ])
        .args(["-H", &format!("authorization: Bearer {}", setup.token)])
        .args(extra)
        .args(["--data-binary", body, &url])
        .output()
        .expect("these tests need curl");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

#[test]
fn hostile_message_shapes_never_get_a_denied_tool_to_the_server() {
    let setup = setup();
    let dir = setup.files.path().to_string_lossy().into_owned();
    let initialize = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}"#;
    let (status, head, body) = curl(&setup, &[], initialize);
    assert_eq!(status, 200, "{head}{body}");
    let session = head
        .lines()
        .find_map(|line| line.strip_prefix("mcp-session-id: "))
        .expect("a session id")
        .trim()
        .to_string();
    let with_session = ["-H".to_string(), format!("mcp-session-id: {session}")];
    let with_session: Vec<&str> = with_session.iter().map(String::as_str).collect();
    let (status, _, _) = curl(
        &setup,
        &with_session,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    assert_eq!(status, 202);
    let write = |id: &str, extra: &str, name: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call"{extra},"params":{{"name":{name},"arguments":{{"path":"{dir}/{}.txt","content":"x"}}}}}}"#,
            id.trim_matches('"')
        )
    };
    let shapes = [
        write("1", "", r#""write_file""#),
        write(r#""two""#, r#","unknown":{"a":[1]}"#, r#""write_file""#),
        write("3", "", r#""read_text_file","name":"write_file""#),
        write("4.5", "", r#""write_\u0066ile""#),
        format!("[{}]", write("5", "", r#""write_file""#)),
        write("null", "", r#""write_file""#),
        // A tools/call without an id (a notification) is never relayed.
        write("6", "", r#""write_file""#).replace(r#""id":6,"#, ""),
    ];
    for shape in &shapes {
        let (status, head, body) = curl(&setup, &with_session, shape);
        assert!(status < 500, "{shape}: {head}{body}");
        if status == 200 {
            let answer: Value = serde_json::from_str(
                body.trim()
                    .trim_start_matches("event: message\ndata: ")
                    .trim(),
            )
            .unwrap_or_else(|_| json!({"raw": body}));
            assert!(
                answer["result"]["isError"] == true
                    || answer.get("error").is_some()
                    || answer.get("raw").is_some(),
                "{shape}: {body}"
            );
        }
    }
    for id in ["1", "two", "3", "4.5", "5", "null", "6"] {
        assert!(
            !setup.files.path().join(format!("{id}.txt")).exists(),
            "shape {id} wrote a file"
        );
    }
    // An unknown session is 404; another identity cannot use this one.
    let (status, _, _) = curl(
        &setup,
        &["-H", "mcp-session-id: s-0000"],
        r#"{"jsonrpc":"2.0","id":9,"method":"ping"}"#,
    );
    assert_eq!(status, 404);
    let (_, other) = setup.gateway.issue_token("agent-8", &["files-mcp"], "10m");
    let url = format!("http://127.0.0.1:{}/files-mcp/mcp", setup.gateway.http_port);
    let output = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "content-type: application/json",
        ])
        .args([
            "-H",
            &format!("authorization: Bearer {other}"),
            "-H",
            &format!("mcp-session-id: {session}"),
        ])
        .args([
            "--data-binary",
            r#"{"jsonrpc":"2.0","id":9,"method":"ping"}"#,
            &url,
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "404");
    // Without a token: 401, nothing started.
    let output = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "content-type: application/json",
        ])
        .args(["--data-binary", initialize, &url])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "401");
    // DELETE ends the session and kills its child.
    let (status, _, _) = curl(
        &setup,
        &["-X", "DELETE"]
            .iter()
            .chain(with_session.iter())
            .copied()
            .collect::<Vec<_>>(),
        "",
    );
    assert_eq!(status, 204);
    assert!(
        wait_for(10, || processes_mentioning(setup.files.path()) == 0),
        "the child outlived DELETE"
    );
}

#[test]
fn a_call_under_review_returns_its_id_and_runs_once_approved() {
    let setup = setup();
    let target = setup.files.path().join("reviewed");
    let create =
        json!({"tool": "create_directory", "arguments": {"path": target.to_string_lossy()}});
    let out = sdk(&scenario(&setup, "files-mcp", json!([create])));
    assert!(
        tool_names(&out["tools"]).contains(&"create_directory".to_string()),
        "a reviewed tool is offered"
    );
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
    assert_eq!(
        held["structuredContent"]["approve"],
        format!("airlock review approve {review}")
    );
    assert!(text(held).contains(&review), "{held}");
    assert!(!target.exists(), "the held call reached the server");
    let approver = common::issue_for(&setup.gateway, "files-mcp", "alice", "human", &["ops"]);
    let approved = common::as_person(&setup.gateway, &approver, &["review", "approve", &review]);
    assert!(approved.status.success(), "{}", common::stderr(&approved));
    let again = sdk(&scenario(&setup, "files-mcp", json!([create])));
    assert_eq!(
        again["results"][0]["isError"], false,
        "{}",
        again["results"][0]
    );
    assert!(target.is_dir(), "the approved call did not run");
}

#[test]
fn a_rug_pull_is_hidden_and_refused_until_an_admin_approves_it() {
    let setup = setup();
    let out = sdk(&scenario(
        &setup,
        "notes-mcp",
        json!([
            {"tool": "key_length"},
            {"tool": "fetch_notes"},
            {"tool": "delete_notes"},
            {"list": true},
            {"tool": "fetch_notes"},
        ]),
    ));
    let first = tool_names(&out["tools"]);
    assert_eq!(
        first,
        ["fetch_notes", "key_length"],
        "delete_notes is denied, so not offered"
    );
    let results = out["results"].as_array().unwrap();
    // The credential reached the child's environment, never the agent.
    assert_eq!(
        text(&results[0]),
        NOTES_KEY.len().to_string(),
        "{}",
        results[0]
    );
    let notes = text(&results[1]);
    assert!(
        notes.contains("about the invoice") && !notes.contains(EMAIL),
        "masked: {notes}"
    );
    assert_eq!(results[2]["isError"], true, "{}", results[2]);
    assert!(
        !setup.notes_state.path().join("deleted").exists(),
        "the denied tool ran"
    );
    // The second listing changed fetch_notes' description: hidden, refused.
    let second = tool_names(&results[3]["tools"]);
    assert_eq!(second, ["key_length"], "{}", results[3]);
    assert_eq!(results[4]["isError"], true, "{}", results[4]);
    assert!(
        text(&results[4]).contains("changed since it was pinned"),
        "{}",
        results[4]
    );

    let events = common::events(&setup.gateway);
    let changed = events
        .iter()
        .find(|event| event.kind == "mcp.tool_changed")
        .expect("an mcp.tool_changed event");
    assert_eq!(changed.data["tool"], "fetch_notes");
    assert!(!events
        .iter()
        .any(|event| event.data.to_string().contains(NOTES_KEY)));
    assert!(!setup.gateway.log().contains(NOTES_KEY));

    let list = setup
        .gateway
        .cli_ok(&["mcp", "tools", "list", "--connection", "notes-mcp"], None);
    assert!(
        list.contains("fetch_notes") && list.contains("changed"),
        "{list}"
    );
    let diff = setup.gateway.cli_ok(
        &[
            "mcp",
            "tools",
            "diff",
            "--connection",
            "notes-mcp",
            "fetch_notes",
        ],
        None,
    );
    assert!(
        diff.lines()
            .any(|line| line.starts_with('+') && line.contains("attacker@example.net")),
        "{diff}"
    );
    let pins: Value = serde_json::from_str(&setup.gateway.cli_ok(
        &[
            "mcp",
            "tools",
            "list",
            "--connection",
            "notes-mcp",
            "--output",
            "json",
        ],
        None,
    ))
    .unwrap();
    let waiting = pins
        .as_array()
        .unwrap()
        .iter()
        .find(|pin| pin["tool"] == "fetch_notes")
        .unwrap()["pending_fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    let refused = setup.gateway.cli(
        &[
            "mcp",
            "tools",
            "approve",
            "--connection",
            "notes-mcp",
            "fetch_notes",
            "--fingerprint",
            "00",
        ],
        None,
    );
    assert!(
        !refused.status.success(),
        "a fingerprint that is not the waiting one is refused"
    );
    setup.gateway.cli_ok(
        &[
            "mcp",
            "tools",
            "approve",
            "--connection",
            "notes-mcp",
            "fetch_notes",
            "--fingerprint",
            &waiting,
        ],
        None,
    );
    let after = sdk(&scenario(
        &setup,
        "notes-mcp",
        json!([{"tool": "fetch_notes"}]),
    ));
    assert_eq!(tool_names(&after["tools"]), ["fetch_notes", "key_length"]);
    assert_eq!(
        after["results"][0]["isError"], false,
        "{}",
        after["results"][0]
    );
    assert!(common::events(&setup.gateway)
        .iter()
        .any(|event| event.kind == "mcp.tool_approved"));
}

fn median(samples: &mut [u64]) -> u64 {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or(0)
}

/// The added latency of the proxy: the same tool call on the same server,
/// directly over stdio and through the gateway, in the same run. Printed
/// (`cargo test … -- --nocapture`) for the README; asserted only loosely.
#[test]
fn measures_the_added_latency_per_tool_call() {
    let setup = setup();
    let dir = setup.files.path().to_string_lossy().into_owned();
    let repeat = json!({"tool": "list_directory", "arguments": {"path": dir}, "times": 100});
    let direct = sdk(&json!({
        "transport": "stdio",
        "command": ["node", filesystem_server(), dir],
        "env": {"PATH": std::env::var("PATH").unwrap_or_default()},
        "repeat": repeat,
    }));
    let mut proxied = scenario(&setup, "files-mcp", json!([]));
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
    println!("MCP proxy latency per tool call (list_directory, median of 100): direct stdio {direct} us, through airlock {proxied} us, added {} us", proxied.saturating_sub(direct));
    assert!(
        proxied < direct + 50_000,
        "the proxy adds more than 50 ms per call: {direct} vs {proxied}"
    );
}
