//! End-to-end tests of the upstream keep-alive pool of `protocol: http`
//! connections: the real `airlock` binary in front of a small Python
//! HTTP/1.1 server (`http.server`, keep-alive) that logs, for every request
//! it receives, the TCP peer port of the gateway's connection and the
//! injected credential. Asserted at the upstream: sequential requests
//! share one connection, a rotated credential is carried by the next
//! request, and a pooled connection the upstream drops after reading a
//! request is retried for a GET but never for a POST.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use airlock_testkit::{free_port, GatewayProcess};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The upstream: HTTP/1.1 with keep-alive; one JSON line per request in
/// the log (peer port, method, path, X-Api-Key). `/vanish`, when it is
/// not the first request of its connection, is read and then the
/// connection is closed without an answer (a pooled connection the
/// upstream dropped in the race with the gateway's next request).
const SERVER: &str = r#"
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = open(sys.argv[2], "a", buffering=1)

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    served = 0

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        log.write(json.dumps({"port": self.client_address[1], "method": self.command,
                              "path": self.path, "key": self.headers.get("X-Api-Key")}) + "\n")
        self.served += 1
        if self.path.startswith("/vanish") and self.served > 1:
            self.close_connection = True
            return
        body = json.dumps({"port": self.client_address[1]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = answer
    do_POST = answer

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"#;

struct Upstream {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Upstream {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("server.py");
        std::fs::write(&script, SERVER).unwrap();
        let log = dir.path().join("requests.log");
        let port = free_port();
        let child = Command::new("python3")
            .arg(&script)
            .arg(port.to_string())
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the upstream did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        // The probe connection above is no request: the log stays empty.
        Self {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    /// Every request the upstream received, in order.
    fn requests(&self) -> Vec<Value> {
        std::thread::sleep(Duration::from_millis(150));
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const POLICY: &str = "version: 1
default: allow
rules: []
";

fn setup() -> (Upstream, GatewayProcess, String) {
    let upstream = Upstream::start();
    let config = format!(
        "connections:
  - name: api
    protocol: http
    url: http://127.0.0.1:{}
    credential: api-key
    inject: {{header: X-Api-Key}}
",
        upstream.port
    );
    let gateway = GatewayProcess::start_with_policy(common::binary(), &config, POLICY);
    gateway.set_credential("api-key", "api", "key-version-one");
    let (_, token) = gateway.issue_token("agent-7", &["api"], "10m");
    (upstream, gateway, token)
}

/// One request through the gateway by curl (a new client connection each
/// time): the status.
fn curl(gateway: &GatewayProcess, token: &str, method: &str, path: &str) -> u16 {
    let output = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args(["-X", method, "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .args(if method == "POST" {
            &["--data", "{\"n\": 1}"][..]
        } else {
            &[][..]
        })
        .arg(format!("http://127.0.0.1:{}/api{path}", gateway.http_port))
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

fn ports(requests: &[Value]) -> std::collections::BTreeSet<u64> {
    requests
        .iter()
        .map(|r| r["port"].as_u64().unwrap())
        .collect()
}

#[test]
fn sequential_requests_share_one_upstream_connection_until_a_rotation() {
    let (upstream, gateway, token) = setup();
    for n in 0..10 {
        assert_eq!(curl(&gateway, &token, "GET", &format!("/get/{n}")), 200);
    }
    let seen = upstream.requests();
    assert_eq!(seen.len(), 10, "{seen:?}");
    assert_eq!(ports(&seen).len(), 1, "one upstream connection: {seen:?}");
    assert!(
        seen.iter().all(|r| r["key"] == "key-version-one"),
        "{seen:?}"
    );

    // A rotation: the very next request carries the new credential, on a
    // connection of its own (the old version's connection is not reused).
    gateway.set_credential("api-key", "api", "key-version-two");
    for n in 0..3 {
        assert_eq!(curl(&gateway, &token, "GET", &format!("/after/{n}")), 200);
    }
    let seen = upstream.requests();
    let (before, after) = seen.split_at(10);
    assert_eq!(after.len(), 3, "{seen:?}");
    assert!(
        after.iter().all(|r| r["key"] == "key-version-two"),
        "{seen:?}"
    );
    assert_eq!(ports(after).len(), 1, "the new version pools too: {seen:?}");
    assert!(
        ports(before).is_disjoint(&ports(after)),
        "a connection of the old credential was reused: {seen:?}"
    );
}

#[test]
fn a_dropped_pooled_connection_is_retried_for_a_get_never_for_a_post() {
    let (upstream, gateway, token) = setup();
    // A GET on a pooled connection the upstream drops: sent again once,
    // on a new connection, and answered.
    assert_eq!(curl(&gateway, &token, "GET", "/warm"), 200);
    assert_eq!(curl(&gateway, &token, "GET", "/vanish/get"), 200);
    let seen = upstream.requests();
    let vanished: Vec<_> = seen.iter().filter(|r| r["path"] == "/vanish/get").collect();
    assert_eq!(vanished.len(), 2, "sent, dropped, sent again: {seen:?}");
    assert_eq!(
        vanished[0]["port"], seen[0]["port"],
        "the first try used the pooled connection: {seen:?}"
    );
    assert_ne!(vanished[1]["port"], vanished[0]["port"], "{seen:?}");

    // A POST on a pooled connection the upstream drops after reading it:
    // never replayed, the client gets a 502.
    assert_eq!(curl(&gateway, &token, "GET", "/warm-again"), 200);
    assert_eq!(curl(&gateway, &token, "POST", "/vanish/post"), 502);
    let seen = upstream.requests();
    let posts: Vec<_> = seen.iter().filter(|r| r["method"] == "POST").collect();
    assert_eq!(posts.len(), 1, "a POST was sent twice: {seen:?}");

    // The gateway keeps serving, on a new connection.
    assert_eq!(curl(&gateway, &token, "GET", "/after"), 200);
    let seen = upstream.requests();
    assert_eq!(seen.last().unwrap()["path"], "/after", "{seen:?}");
}

#[test]
fn no_pooling_opens_a_connection_per_request() {
    let upstream = Upstream::start();
    let config = format!(
        "http:
  upstream_max_idle: 0
connections:
  - name: api
    protocol: http
    url: http://127.0.0.1:{}
    credential: api-key
    inject: {{header: X-Api-Key}}
",
        upstream.port
    );
    let gateway = GatewayProcess::start_with_policy(common::binary(), &config, POLICY);
    gateway.set_credential("api-key", "api", "key-version-one");
    let (_, token) = gateway.issue_token("agent-7", &["api"], "10m");
    for n in 0..4 {
        assert_eq!(curl(&gateway, &token, "GET", &format!("/get/{n}")), 200);
    }
    let seen = upstream.requests();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(ports(&seen).len(), 4, "{seen:?}");
}
