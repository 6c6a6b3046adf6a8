//! End-to-end tests of the HTTP API gateway: the real `airlock` binary in
//! front of a real third-party service, `httpbin` (PyPI) served by
//! gunicorn on a free port, with curl and Python `requests` as clients.
//! Enforcement is asserted on the upstream side: httpbin echoes what it
//! received, and gunicorn's access log lists every request that reached it.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use airlock_testkit::{free_port, GatewayProcess};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const API_KEY: &str = "upstream-api-key-5f1c9e";
const BEARER: &str = "upstream-bearer-7d2a41";
const BASIC_USER: &str = "svc";
const BASIC_PASSWORD: &str = "basic-pass-93be";

/// `tests/python-http/requirements.txt` installed into its `site/`
/// (git-ignored) on first run.
fn python_site() -> PathBuf {
    airlock_testkit::pip_site("crates/airlock/tests/python-http", &["httpbin", "gunicorn"])
}

/// httpbin under gunicorn on a free port, with an access log.
struct Httpbin {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
    access_log: PathBuf,
}

impl Httpbin {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let access_log = dir.path().join("access.log");
        let port = free_port();
        let child = Command::new("python3")
            .args(["-m", "gunicorn", "--threads", "8", "-b"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--access-logfile")
            .arg(&access_log)
            .arg("httpbin:app")
            .env("PYTHONPATH", python_site())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gunicorn");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "httpbin did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            child,
            port,
            _dir: dir,
            access_log,
        }
    }

    /// The request lines that reached httpbin.
    fn seen(&self) -> String {
        std::thread::sleep(Duration::from_millis(200));
        std::fs::read_to_string(&self.access_log).unwrap_or_default()
    }
}

impl Drop for Httpbin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const POLICY: &str = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: posts-allowed
    match:
      http: {methods: [POST], paths: [\"/post\", \"/anything/**\"]}
    action: allow
  - name: deletes-need-review
    match:
      http: {methods: [DELETE], paths: [\"/delete\"]}
    action: review
    approvers: finance
    wait: 30s
  - name: no-teapots
    match:
      http: {paths: [\"/status/418\"]}
    action: deny
    message: no teapots here
  - name: mask-pii
    match: {connection: {name: bin-masked}}
    mask:
      detectors: [email, card]
      fields: [\"$..password\"]
      style: full
  - name: slow-down
    match: {connection: {name: bin-limited}}
    rate_limit: {per_minute: 2}
";

struct Setup {
    httpbin: Httpbin,
    gateway: GatewayProcess,
    token: String,
}

fn setup() -> Setup {
    let httpbin = Httpbin::start();
    let url = format!("http://127.0.0.1:{}", httpbin.port);
    let down = free_port();
    let config = format!(
        "connections:
  - name: bin
    protocol: http
    url: {url}
    credential: bin-key
    inject: {{header: X-Api-Key}}
  - name: bin-bearer
    protocol: http
    url: {url}
    credential: bin-bearer
    inject: {{bearer: true}}
  - name: bin-basic
    protocol: http
    url: {url}
    credential: bin-basic
    inject: {{basic: true}}
  - name: bin-masked
    protocol: http
    url: {url}
    credential: bin-key
    inject: {{header: X-Api-Key}}
  - name: bin-limited
    protocol: http
    url: {url}
    credential: bin-key
    inject: {{header: X-Api-Key}}
  - name: bin-down
    protocol: http
    url: http://127.0.0.1:{down}
    credential: bin-key
    inject: {{header: X-Api-Key}}
"
    );
    let gateway = GatewayProcess::start_with_policy(common::binary(), &config, POLICY);
    gateway.set_credential("bin-key", "api", API_KEY);
    gateway.set_credential("bin-bearer", "api", BEARER);
    gateway.set_credential("bin-basic", BASIC_USER, BASIC_PASSWORD);
    let connections = [
        "bin",
        "bin-bearer",
        "bin-basic",
        "bin-masked",
        "bin-limited",
        "bin-down",
    ];
    let (_, token) = gateway.issue_token("agent-7", &connections, "10m");
    Setup {
        httpbin,
        gateway,
        token,
    }
}

/// curl through the gateway (plaintext from loopback): status, headers,
/// body.
fn curl(gateway: &GatewayProcess, args: &[&str], path: &str) -> (u16, String, String) {
    let output = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "40",
            "-D",
            "/dev/stderr",
            "-o",
            "/dev/stdout",
        ])
        .args(args)
        .arg(format!("http://127.0.0.1:{}{path}", gateway.http_port))
        .output()
        .expect("run curl");
    response_of(&output)
}

fn response_of(output: &Output) -> (u16, String, String) {
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

fn auth(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

fn assert_no_secret(text: &str) {
    for secret in [
        API_KEY,
        BEARER,
        BASIC_PASSWORD,
        "c3ZjOmJhc2ljLXBhc3MtOTNiZQ",
    ] {
        assert!(
            !text.contains(secret),
            "a credential reached the client: {text}"
        );
    }
}

#[test]
fn injects_the_credential_and_strips_what_the_client_sent() {
    let Setup {
        httpbin,
        gateway,
        token,
    } = setup();
    let (status, head, body) = curl(
        &gateway,
        &[
            "-H",
            &auth(&token),
            "-H",
            "Cookie: session=agent-cookie",
            "-H",
            "Impersonate-User: admin",
            "-H",
            "Impersonate-Group: system:masters",
            "-H",
            "Proxy-Authorization: Basic eDp5",
            "-H",
            "X-Trace: t-1",
        ],
        "/bin/headers",
    );
    assert_eq!(status, 200, "{head}{body}");
    let echoed: Value = serde_json::from_str(&body).unwrap();
    let headers = &echoed["headers"];
    // httpbin received the key (echoed, and replaced on the way back).
    assert_eq!(headers["X-Api-Key"], "[airlock:credential]", "{body}");
    assert_eq!(headers["X-Trace"], "t-1");
    for stripped in [
        "Authorization",
        "Cookie",
        "Impersonate-User",
        "Impersonate-Group",
        "Proxy-Authorization",
    ] {
        assert!(
            headers.get(stripped).is_none(),
            "{stripped} reached the upstream: {body}"
        );
    }
    assert!(
        !body.contains(&token),
        "the agent's token reached the upstream"
    );
    assert_no_secret(&head);
    assert_no_secret(&body);

    // Basic auth: httpbin answers 200 only for the right user and password.
    let (status, _, body) = curl(
        &gateway,
        &["-H", &auth(&token)],
        &format!("/bin-basic/basic-auth/{BASIC_USER}/{BASIC_PASSWORD}"),
    );
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = curl(&gateway, &["-H", &auth(&token)], "/bin-basic/headers");
    assert_eq!(status, 200);
    assert!(body.contains("Basic [airlock:credential]"), "{body}");
    assert_no_secret(&body);
    // Bearer: httpbin's /bearer echoes the token it got.
    let (status, _, body) = curl(&gateway, &["-H", &auth(&token)], "/bin-bearer/bearer");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("[airlock:credential]"), "{body}");
    assert_no_secret(&body);
    // Echoed inside a gzip body: decoded, then scrubbed.
    let (status, head, body) = curl(
        &gateway,
        &["-H", &auth(&token), "--compressed"],
        "/bin/gzip",
    );
    assert_eq!(status, 200, "{head}");
    let echoed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echoed["gzipped"], true);
    assert_eq!(echoed["headers"]["X-Api-Key"], "[airlock:credential]");
    assert!(
        !head.to_ascii_lowercase().contains("content-encoding: gzip"),
        "{head}"
    );
    assert_no_secret(&body);
    // And in a response header (httpbin's /response-headers sets them).
    let (status, head, _) = curl(
        &gateway,
        &["-H", &auth(&token)],
        &format!("/bin/response-headers?X-Echo={API_KEY}"),
    );
    assert_eq!(status, 200);
    assert_no_secret(&head);
    drop(httpbin);
}

#[test]
fn bad_tokens_get_401_and_lock_out() {
    let Setup {
        httpbin,
        gateway,
        token,
    } = setup();
    for args in [
        vec![],
        vec!["-H".to_string(), auth("not-a-token")],
        vec!["-H".to_string(), format!("Authorization: Basic {token}")],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (status, head, body) = curl(&gateway, &args, "/bin/get");
        assert_eq!(status, 401, "{head}{body}");
        assert!(
            head.to_ascii_lowercase()
                .contains("www-authenticate: bearer"),
            "{head}"
        );
        let error: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["error"], "unauthenticated");
    }
    // A token not scoped to the connection: the same 401.
    let (_, other) = gateway.issue_token("agent-8", &["bin-basic"], "10m");
    let (status, _, body) = curl(&gateway, &["-H", &auth(&other)], "/bin/get");
    assert_eq!(status, 401, "{body}");
    // Repeated failures lock the source out (threshold 5): even the good
    // token is refused then.
    for _ in 0..6 {
        curl(&gateway, &["-H", &auth("wrong")], "/bin/get");
    }
    let (status, head, _) = curl(&gateway, &["-H", &auth(&token)], "/bin/get");
    assert_eq!(status, 429, "{head}");
    assert!(head.to_ascii_lowercase().contains("retry-after:"), "{head}");
    assert!(
        !httpbin.seen().contains("GET /get"),
        "a refused request reached the upstream"
    );
}

#[test]
fn policy_decides_methods_and_paths() {
    let Setup {
        httpbin,
        gateway,
        token,
    } = setup();
    let a = auth(&token);
    let (status, _, body) = curl(
        &gateway,
        &["-H", &a, "-X", "POST", "-d", "x=1"],
        "/bin/post",
    );
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = curl(&gateway, &["-H", &a, "-X", "PUT", "-d", "x=1"], "/bin/put");
    assert_eq!(status, 403, "{body}");
    let refusal: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(refusal["error"], "denied");
    assert!(refusal["policy_version"].as_i64().unwrap() >= 1);
    let (status, _, body) = curl(&gateway, &["-H", &a], "/bin/status/418");
    assert_eq!(status, 403, "{body}");
    let refusal: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(refusal["rule"], "no-teapots");
    assert!(
        refusal["message"]
            .as_str()
            .unwrap()
            .contains("no teapots here"),
        "{body}"
    );
    // Paths that could read as another path never reach the upstream.
    for tricky in [
        "/bin/status/%34%31%38",
        "/bin/anything/%2e%2e/status/418",
        "/bin//status/418",
        "/bin/anything%2F..%2Fstatus",
    ] {
        let (status, _, body) = curl(&gateway, &["-H", &a, "--path-as-is"], tricky);
        assert_eq!(status, 400, "{tricky}: {body}");
    }
    let (status, _, _) = curl(&gateway, &["-H", &a], "/nosuch/get");
    assert_eq!(
        status, 401,
        "an unknown connection is outside every token's scope"
    );
    let seen = httpbin.seen();
    assert!(seen.contains("POST /post"), "{seen}");
    for refused in ["PUT /put", "/status/418", "status/%34", "%2e"] {
        assert!(
            !seen.contains(refused),
            "{refused} reached the upstream:\n{seen}"
        );
    }
}

#[test]
fn a_held_request_is_released_by_an_approver() {
    let Setup {
        httpbin,
        gateway,
        token,
    } = setup();
    let (_, approver) = {
        let output = gateway.cli_ok(
            &[
                "token",
                "issue",
                "--identity",
                "fin-1",
                "--kind",
                "human",
                "--group",
                "finance",
                "--connection",
                "bin",
                "--ttl",
                "10m",
                "--output",
                "json",
            ],
            None,
        );
        let value: Value = serde_json::from_str(&output).unwrap();
        (
            value["id"].as_str().unwrap().to_string(),
            value["token"].as_str().unwrap().to_string(),
        )
    };
    let url = format!("http://127.0.0.1:{}/bin/delete", gateway.http_port);
    let waiting = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "40",
            "-X",
            "DELETE",
            "-H",
            &auth(&token),
            "-w",
            "\n%{http_code}",
            &url,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let id = loop {
        let list: Value =
            serde_json::from_str(&gateway.cli_ok(&["review", "list", "--output", "json"], None))
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
            gateway.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        !httpbin.seen().contains("DELETE /delete"),
        "forwarded before approval"
    );
    let approved = common::as_person(&gateway, &approver, &["review", "approve", &id]);
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    let output = waiting.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.trim_end().ends_with("200"), "{text}");
    assert!(httpbin.seen().contains("DELETE /delete"));
}

#[test]
fn rate_limits_answer_429_with_retry_after() {
    let Setup {
        httpbin,
        gateway,
        token,
    } = setup();
    let a = auth(&token);
    for _ in 0..2 {
        assert_eq!(curl(&gateway, &["-H", &a], "/bin-limited/get").0, 200);
    }
    let (status, head, body) = curl(&gateway, &["-H", &a], "/bin-limited/get");
    assert_eq!(status, 429, "{body}");
    assert!(head.to_ascii_lowercase().contains("retry-after:"), "{head}");
    assert_eq!(httpbin.seen().matches("GET /get").count(), 2);
}

#[test]
fn json_bodies_are_masked_and_stay_valid() {
    let Setup {
        httpbin: _httpbin,
        gateway,
        token,
    } = setup();
    let document = r#"{"customer": {"email": "ann.lee@example.com", "password": "hunter2!", "card": "4111 1111 1111 1111"}, "notes": ["call bob@example.org"], "id": 42}"#;
    let (status, _, body) = curl(
        &gateway,
        &[
            "-H",
            &auth(&token),
            "-H",
            "Content-Type: application/json",
            "-X",
            "POST",
            "--data-binary",
            document,
        ],
        "/bin-masked/anything/orders",
    );
    assert_eq!(status, 200, "{body}");
    let echoed: Value = serde_json::from_str(&body).expect("masked output is valid JSON");
    for secret in [
        "ann.lee@example.com",
        "hunter2!",
        "4111 1111 1111 1111",
        "bob@example.org",
    ] {
        assert!(
            !body.contains(secret),
            "{secret} reached the client: {body}"
        );
    }
    assert_eq!(echoed["json"]["id"], 42);
    assert_no_secret(&body);
    // gzip under a mask plan: decoded, masked.
    let (status, _, body) = curl(
        &gateway,
        &["-H", &auth(&token), "--compressed"],
        "/bin-masked/gzip",
    );
    assert_eq!(status, 200, "{body}");
    assert!(serde_json::from_str::<Value>(&body).is_ok(), "{body}");
    // A body the masker cannot read (an image) is refused, not passed raw.
    let (status, _, body) = curl(&gateway, &["-H", &auth(&token)], "/bin-masked/image/png");
    assert_eq!(status, 502, "{body}");
    // Python requests as a client over TLS, verifying the gateway's certificate.
    let script = format!(
        "import requests, json\nr = requests.get('https://localhost:{port}/bin-masked/anything?mail=zed@example.com', headers={{'Authorization': 'Bearer {token}'}}, verify='{cert}')\nprint(json.dumps({{'status': r.status_code, 'body': r.text}}))",
        port = gateway.http_port,
        cert = gateway.data_dir().join("tls.crt").display(),
    );
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .env("PYTHONPATH", python_site())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["status"], 200, "{answer}");
    let text = answer["body"].as_str().unwrap();
    assert!(!text.contains("zed@example.com"), "{text}");
    assert!(serde_json::from_str::<Value>(text).is_ok());
}

#[test]
fn streams_pass_through_and_a_dead_upstream_is_a_502() {
    let Setup {
        httpbin: _httpbin,
        gateway,
        token,
    } = setup();
    let a = auth(&token);
    let (status, _, body) = curl(&gateway, &["-H", &a], "/bin/stream/5");
    assert_eq!(status, 200);
    assert_eq!(body.lines().count(), 5, "{body}");
    assert_no_secret(&body);
    let started = Instant::now();
    let (status, _, body) = curl(
        &gateway,
        &["-H", &a],
        "/bin/drip?duration=1&numbytes=5&delay=0",
    );
    assert_eq!(status, 200);
    assert_eq!(body, "*****");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "the drip was not relayed as it came"
    );
    let (status, _, body) = curl(&gateway, &["-H", &a], "/bin-down/get");
    assert_eq!(status, 502, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"], "upstream_unavailable");
    // The gateway keeps serving.
    assert_eq!(curl(&gateway, &["-H", &a], "/bin/get").0, 200);
}

#[test]
fn requests_are_recorded_for_session_show() {
    let Setup {
        httpbin: _httpbin,
        gateway,
        token,
    } = setup();
    let a = auth(&token);
    assert_eq!(curl(&gateway, &["-H", &a], "/bin/get?q=1").0, 200);
    assert_eq!(curl(&gateway, &["-H", &a, "-X", "PUT"], "/bin/put").0, 403);
    let list: Value =
        serde_json::from_str(&gateway.cli_ok(&["session", "list", "--output", "json"], None))
            .unwrap();
    let sessions = list.as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{list}");
    let mut statements = Vec::new();
    for session in sessions {
        let id = session["session_id"].as_str().unwrap();
        let detail: Value = serde_json::from_str(
            &gateway.cli_ok(&["session", "show", id, "--output", "json"], None),
        )
        .unwrap();
        let entry = &detail["timeline"][0];
        statements.push((
            entry["statement"].as_str().unwrap().to_string(),
            entry["decision"].as_str().unwrap().to_string(),
            entry["result"].clone(),
        ));
        assert_eq!(detail["session"]["identity"], "agent-7");
    }
    statements.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(statements[0].0, "GET /get?q=1");
    assert_eq!(statements[0].1, "forward");
    assert_eq!(statements[0].2["http_status"], 200);
    assert!(statements[0].2["bytes"].as_u64().unwrap() > 0);
    assert_eq!(statements[1].0, "PUT /put");
    assert_eq!(statements[1].1, "refuse");
    // The forwarded request's upstream and gateway-added latency are
    // measured, once; the refused one never reached the upstream.
    let metrics = scrape_metrics(&gateway);
    for family in [
        "airlock_upstream_duration_seconds_count",
        "airlock_gateway_added_duration_seconds_count",
    ] {
        let counted: f64 = metrics
            .lines()
            .filter(|line| line.starts_with(family) && line.contains("protocol=\"http\""))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert_eq!(counted, 1.0, "{family}:\n{metrics}");
    }
    let export = gateway.cli_ok(&["audit", "export"], None);
    assert!(export.contains("GET /get?q=1"), "{export}");
    assert_no_secret(&export);
    assert!(!export.contains(&token));
    assert_no_secret(&gateway.log());
}

/// The admin listener's `GET /metrics` (Prometheus text).
fn scrape_metrics(gateway: &GatewayProcess) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", gateway.admin_port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// Request smuggling and oversized heads never reach the upstream; a
/// client's two `Authorization` headers are one too many.
#[test]
fn smuggling_and_oversized_requests_are_refused() {
    use std::io::{Read, Write};
    let Setup {
        httpbin,
        gateway,
        token,
    } = setup();
    let raw = |request: String| -> String {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", gateway.http_port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    };
    let smuggled = raw(format!(
        "POST /bin/post HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\nGET /status/418 HTTP/1.1\r\nHost: x\r\n\r\n"
    ));
    // hyper frames a body with both headers by Transfer-Encoding alone (RFC
    // 9112 6.1) and the gateway sends the upstream a request of its own
    // framing: whatever the client answer, nothing smuggled arrives.
    assert!(!smuggled.contains("418"), "{smuggled}");
    let twice = raw(format!(
        "GET /bin/get HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    ));
    assert!(twice.starts_with("HTTP/1.1 401"), "{twice}");
    let huge = raw(format!(
        "GET /bin/get HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(200 * 1024)
    ));
    assert!(!huge.starts_with("HTTP/1.1 200"), "{huge}");
    let seen = httpbin.seen();
    assert!(
        !seen.contains("/status/418") && !seen.contains("GET /get"),
        "{seen}"
    );
}

/// Many requests on one keep-alive connection, each its own session; the
/// time per request through airlock is printed beside the direct one.
#[test]
fn keep_alive_connections_carry_many_requests() {
    let Setup {
        httpbin,
        gateway,
        token,
    } = setup();
    let count = 100;
    let run = |base: &str, headers: &[&str]| -> (Duration, Vec<String>) {
        // `-o` applies to one URL each: one per URL.
        let mut urls: Vec<String> = Vec::new();
        for _ in 0..count {
            urls.extend([
                "-o".to_string(),
                "/dev/null".to_string(),
                format!("{base}/get"),
            ]);
        }
        let started = Instant::now();
        let output = Command::new("curl")
            .args(["-s", "-w", "%{http_code}\n"])
            .args(headers)
            .args(&urls)
            .output()
            .unwrap();
        let codes = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        (started.elapsed(), codes)
    };
    let (direct, codes) = run(&format!("http://127.0.0.1:{}", httpbin.port), &[]);
    assert!(codes.iter().all(|code| code == "200"));
    let a = auth(&token);
    let (through, codes) = run(
        &format!("http://127.0.0.1:{}/bin", gateway.http_port),
        &["-H", &a],
    );
    assert_eq!(codes.len(), count);
    assert!(codes.iter().all(|code| code == "200"), "{codes:?}");
    eprintln!(
        "{count} sequential GETs: direct {:.2} ms/request, through airlock {:.2} ms/request",
        direct.as_secs_f64() * 1000.0 / count as f64,
        through.as_secs_f64() * 1000.0 / count as f64
    );
    let list: Value = serde_json::from_str(&gateway.cli_ok(
        &["session", "list", "--limit", "1000", "--output", "json"],
        None,
    ))
    .unwrap();
    assert_eq!(
        list.as_array().unwrap().len(),
        count,
        "one session per request"
    );
}

/// An https upstream verified against the connection's `ca_file`.
#[test]
fn https_upstreams_are_verified_against_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("up.crt"), dir.path().join("up.key"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let port = free_port();
    let mut child = Command::new("python3")
        .args(["-m", "gunicorn", "-b"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--certfile")
        .arg(&cert)
        .arg("--keyfile")
        .arg(&key)
        .arg("httpbin:app")
        .env("PYTHONPATH", python_site())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(100));
    }
    let config = format!(
        "connections:
  - name: tls-bin
    protocol: http
    url: https://localhost:{port}
    ca_file: {ca}
    credential: bin-key
    inject: {{header: X-Api-Key}}
  - name: tls-unverified
    protocol: http
    url: https://localhost:{port}
    credential: bin-key
    inject: {{header: X-Api-Key}}
",
        ca = cert.display()
    );
    let gateway = GatewayProcess::start_with_policy(common::binary(), &config, POLICY);
    gateway.set_credential("bin-key", "api", API_KEY);
    let (_, token) = gateway.issue_token("agent-7", &["tls-bin", "tls-unverified"], "10m");
    let (status, _, body) = curl(&gateway, &["-H", &auth(&token)], "/tls-bin/headers");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("[airlock:credential]"), "{body}");
    // Without the CA (system roots only) the self-signed upstream is refused.
    let (status, _, body) = curl(&gateway, &["-H", &auth(&token)], "/tls-unverified/headers");
    assert_eq!(status, 502, "{body}");
    let _ = child.kill();
    let _ = child.wait();
}
