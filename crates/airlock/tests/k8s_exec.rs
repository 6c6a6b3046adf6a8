//! `kubectl exec`, `attach` and `port-forward` through airlock, end to
//! end: the real `airlock` binary, real `kubectl` binaries (the newest
//! and oldest versioned ones of the Google Cloud SDK, and the Debian one)
//! and the official Python client as clients, and — the one stand-in these
//! tests allow — the test kit's fixture API server
//! (`airlock_testkit::KubeApiFixture`), because no real kube-apiserver can
//! run or be built on the test machines. Its exec runs the command in a
//! real process; enforcement is asserted on its request and stream logs
//! (what ran there, what stdin it read), not only on what kubectl prints.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use airlock_testkit::{GatewayProcess, KubeApiFixture};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// The service-account token the fixture accepts (airlock injects it).
const SA_TOKEN: &str = "sa-token-exec-4f1c8e2b7d";
const SDK: &str = "/usr/lib/google-cloud-sdk/bin";
/// Newest versioned kubectl: WebSocket exec (v5 channel protocol).
const NEWEST: &str = "kubectl.1.33";
/// Oldest versioned kubectl: SPDY exec only.
const OLDEST: &str = "kubectl.1.27";

const POLICY: &str = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: sre-streams-on-dev
    match:
      identity: {groups: [sre]}
      connection: {name: k8s-dev}
      kubernetes: {verbs: [exec, attach, portforward]}
    action: allow
  - name: prod-exec-needs-review
    match:
      identity: {groups: [oncall]}
      kubernetes: {verbs: [exec], namespaces: [prod]}
    action: review
    approvers: sre
    wait: 60s
  - name: no-database-ports
    match:
      kubernetes: {verbs: [portforward], ports: [5432]}
    action: deny
    message: database ports are not forwarded
  - name: no-shells-for-agents
    match:
      identity: {kind: agent}
      kubernetes: {verbs: [exec, attach, portforward]}
    action: deny
    message: agents may not open streams into pods
";

struct Setup {
    fixture: KubeApiFixture,
    gateway: GatewayProcess,
    dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let fixture = KubeApiFixture::start(SA_TOKEN);
    let config = format!(
        "connections:
  - name: k8s-dev
    protocol: kubernetes
    url: {url}
    credential: k8s-sa
    impersonate: true
    tags: {{env: dev}}
",
        url = fixture.url()
    );
    fixture.put(
        "pods",
        "prod",
        serde_json::json!({"metadata": {"name": "api-1"}, "spec": {"containers": [{"name": "api", "image": "api"}]}}),
    );
    let gateway = GatewayProcess::start_with_policy(common::binary(), &config, POLICY);
    gateway.set_credential("k8s-sa", "gateway", SA_TOKEN);
    Setup {
        fixture,
        gateway,
        dir: tempfile::tempdir().unwrap(),
    }
}

fn token(gateway: &GatewayProcess, identity: &str, kind: &str, groups: &[&str]) -> String {
    let mut args = vec![
        "token",
        "issue",
        "--identity",
        identity,
        "--kind",
        kind,
        "--connection",
        "k8s-dev",
        "--ttl",
        "10m",
        "--output",
        "json",
    ];
    for group in groups {
        args.extend(["--group", group]);
    }
    let issued: Value = serde_json::from_str(&gateway.cli_ok(&args, None)).unwrap();
    issued["token"].as_str().unwrap().to_string()
}

/// A kubeconfig with `token`, TLS to the gateway (its certificate as CA).
fn kubeconfig(setup: &Setup, token: &str) -> PathBuf {
    let path = setup
        .dir
        .path()
        .join(format!("config-{}.yaml", &token[token.len() - 8..]));
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
  - name: gw
    cluster:
      server: https://127.0.0.1:{port}/k8s-dev
      certificate-authority: {ca}
contexts:
  - name: gw
    context: {{cluster: gw, user: agent, namespace: default}}
current-context: gw
users:
  - name: agent
    user:
      token: {token}
",
        port = setup.gateway.http_port,
        ca = setup.gateway.data_dir().join("tls.crt").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn kubectl_command(binary: &str, config: &Path, home: &Path) -> Command {
    let path = if binary.contains('/') {
        PathBuf::from(binary)
    } else {
        Path::new(SDK).join(binary)
    };
    assert!(path.exists(), "{} is missing", path.display());
    let mut command = Command::new(path);
    command
        .arg("--kubeconfig")
        .arg(config)
        .args(["--request-timeout", "60s"])
        .env_remove("KUBECONFIG")
        .env("HOME", home);
    command
}

/// Runs kubectl with `stdin` piped in.
fn kubectl(binary: &str, config: &Path, home: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = kubectl_command(binary, config, home)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn stream_requests(fixture: &KubeApiFixture) -> usize {
    fixture
        .requests()
        .iter()
        .filter(|request| {
            ["/exec", "/attach", "/portforward"]
                .iter()
                .any(|suffix| request.path.ends_with(suffix))
        })
        .count()
}

/// The ids of `identity`'s sessions, oldest first.
fn sessions_of(gateway: &GatewayProcess, identity: &str) -> Vec<String> {
    let list: Value = serde_json::from_str(&gateway.cli_ok(
        &[
            "session",
            "list",
            "--identity",
            identity,
            "--limit",
            "1000",
            "--output",
            "json",
        ],
        None,
    ))
    .unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|session| session["session_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn kubectl_exec_runs_in_the_pod_through_the_gateway() {
    let setup = setup();
    let sre = token(&setup.gateway, "sre-1", "human", &["sre"]);
    let config = kubeconfig(&setup, &sre);
    let home = setup.dir.path();
    let mut served = 0;
    for binary in [NEWEST, "/usr/bin/kubectl"] {
        let output = kubectl(
            binary,
            &config,
            home,
            &["exec", "web-1", "--", "echo", "hello from exec"],
            b"",
        );
        assert!(output.status.success(), "{binary}: {}", text(&output));
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "hello from exec\n",
            "{binary}"
        );
        served += 1;
        let streams = setup
            .fixture
            .wait_for_streams(served, Duration::from_secs(10));
        let ran = streams.last().unwrap();
        assert_eq!(ran.command, ["echo", "hello from exec"], "{binary}");
        assert_eq!(ran.exit_code, Some(0));
        assert_eq!(ran.protocol, "v5.channel.k8s.io", "{binary}");
        assert_eq!(ran.pod, "default/web-1");

        // stdin piped through (`-i`), its end (v5 close) ending `cat`.
        let output = kubectl(
            binary,
            &config,
            home,
            &["exec", "-i", "web-1", "--", "cat"],
            b"typed line\nsecond line\n",
        );
        assert!(output.status.success(), "{binary}: {}", text(&output));
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "typed line\nsecond line\n"
        );
        served += 1;
        let streams = setup
            .fixture
            .wait_for_streams(served, Duration::from_secs(10));
        assert_eq!(streams.last().unwrap().stdin, b"typed line\nsecond line\n");

        // stderr and the exit code come back as the pod's.
        let output = kubectl(
            binary,
            &config,
            home,
            &["exec", "web-1", "--", "sh", "-c", "echo oops >&2; exit 3"],
            b"",
        );
        assert_eq!(output.status.code(), Some(3), "{binary}: {}", text(&output));
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("oops"),
            "{}",
            text(&output)
        );
        served += 1;
        let streams = setup
            .fixture
            .wait_for_streams(served, Duration::from_secs(10));
        assert_eq!(streams.last().unwrap().exit_code, Some(3));
    }
    // attach: the pod's main process (the fixture's: a fresh shell) reads
    // the attached stdin.
    let output = kubectl(
        NEWEST,
        &config,
        home,
        &["attach", "-i", "web-1"],
        b"echo attached $((1 + 1))\nexit\n",
    );
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("attached 2"),
        "{}",
        text(&output)
    );
    served += 1;
    let streams = setup
        .fixture
        .wait_for_streams(served, Duration::from_secs(10));
    assert_eq!(streams.last().unwrap().subresource, "attach");
    // Every stream reached the fixture with the injected token and the
    // gateway's impersonation, never the client's token.
    for request in setup.fixture.requests() {
        assert!(request.authorized, "{request:?}");
        assert!(
            request
                .headers
                .iter()
                .all(|(_, value)| !value.contains(&sre)),
            "{request:?}"
        );
        if request.path.ends_with("/exec") {
            assert_eq!(request.header_values("impersonate-user"), ["sre-1"]);
        }
    }
    assert!(!setup.gateway.log().contains(SA_TOKEN));
}

/// kubectl 1.27 speaks SPDY only: the gateway cannot record SPDY, so it
/// is refused with a `Status` that says why, and nothing reaches the pod.
#[test]
fn the_oldest_kubectl_is_told_spdy_cannot_be_recorded() {
    let setup = setup();
    let sre = token(&setup.gateway, "sre-1", "human", &["sre"]);
    let config = kubeconfig(&setup, &sre);
    let output = kubectl(
        OLDEST,
        &config,
        setup.dir.path(),
        &["exec", "web-1", "--", "echo", "hi"],
        b"",
    );
    assert!(!output.status.success());
    let shown = text(&output);
    assert!(shown.contains("SPDY streams cannot be recorded"), "{shown}");
    assert_eq!(
        stream_requests(&setup.fixture),
        0,
        "{:?}",
        setup.fixture.requests()
    );
    assert!(setup.fixture.streams().is_empty());
}

#[test]
fn a_denied_exec_never_reaches_the_pod() {
    let setup = setup();
    let agent = token(&setup.gateway, "agent-7", "agent", &["agents"]);
    let config = kubeconfig(&setup, &agent);
    for binary in [NEWEST, OLDEST] {
        let output = kubectl(
            binary,
            &config,
            setup.dir.path(),
            &["exec", "web-1", "--", "touch", "/tmp/pwned"],
            b"",
        );
        assert!(!output.status.success(), "{binary}");
        let shown = text(&output);
        assert!(
            shown.contains("no-shells-for-agents")
                && shown.contains("agents may not open streams into pods"),
            "{binary}: {shown}"
        );
    }
    assert_eq!(
        stream_requests(&setup.fixture),
        0,
        "{:?}",
        setup.fixture.requests()
    );
    assert!(setup.fixture.streams().is_empty());
}

#[test]
fn an_exec_session_replays_as_a_terminal_transcript() {
    let setup = setup();
    let sre = token(&setup.gateway, "sre-1", "human", &["sre"]);
    let config = kubeconfig(&setup, &sre);
    let output = kubectl(
        NEWEST,
        &config,
        setup.dir.path(),
        &[
            "exec",
            "-i",
            "web-1",
            "--",
            "sh",
            "-c",
            "while read line; do echo \"got: $line\"; done; echo bye >&2",
        ],
        b"first\nsecond\n",
    );
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "got: first\ngot: second\n"
    );
    setup.fixture.wait_for_streams(1, Duration::from_secs(10));
    // The stream's result and end are recorded once both sides are done.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let (sessions, replays) = loop {
        let sessions = sessions_of(&setup.gateway, "sre-1");
        let replays: Vec<String> = sessions
            .iter()
            .map(|id| setup.gateway.cli_ok(&["session", "replay", id], None))
            .collect();
        let ended = replays
            .iter()
            .any(|replay| replay.contains("/pods/web-1/exec") && replay.contains("HTTP 101"));
        if ended || std::time::Instant::now() > deadline {
            break (sessions, replays);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let replay = replays
        .iter()
        .find(|replay| replay.contains("/pods/web-1/exec"))
        .unwrap_or_else(|| panic!("no exec session: {replays:?}"));
    for expected in [
        "terminal transcript",
        "stdin  > first",
        "second",
        "stdout | got: first",
        "stderr ! bye",
        "close  # (stdin closed)",
        "HTTP 101, exit 0",
    ] {
        assert!(replay.contains(expected), "{expected:?} missing:\n{replay}");
    }
    assert!(!replay.contains(SA_TOKEN));
    // The record holds the pieces as typed events.
    let id = sessions
        .iter()
        .zip(&replays)
        .find(|(_, replay)| replay.contains("/pods/web-1/exec"))
        .unwrap()
        .0;
    let detail: Value = serde_json::from_str(
        &setup
            .gateway
            .cli_ok(&["session", "show", id, "--output", "json"], None),
    )
    .unwrap();
    let streamed: Vec<&Value> = detail["other_events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["kind"] == "command.stream")
        .collect();
    assert!(!streamed.is_empty(), "{detail}");
    assert_eq!(streamed[0]["data"]["connection"], "k8s-dev");
}

/// A credential the pod prints (its own mounted token, say) is replaced in
/// what the client sees and in the transcript.
#[test]
fn the_injected_token_is_scrubbed_from_terminal_output() {
    let setup = setup();
    let sre = token(&setup.gateway, "sre-1", "human", &["sre"]);
    let config = kubeconfig(&setup, &sre);
    let script = format!(
        "printf 'token=%s%s\\n' {} {}",
        &SA_TOKEN[..9],
        &SA_TOKEN[9..]
    );
    let output = kubectl(
        NEWEST,
        &config,
        setup.dir.path(),
        &["exec", "web-1", "--", "sh", "-c", &script],
        b"",
    );
    assert!(output.status.success(), "{}", text(&output));
    let shown = String::from_utf8_lossy(&output.stdout);
    assert_eq!(shown, "token=[airlock:credential]\n");
    let export = setup.gateway.cli_ok(&["audit", "export"], None);
    assert!(!export.contains(SA_TOKEN));
    assert!(export.contains("command.stream"), "{export}");
}

/// `kubectl exec -it` driven through a pseudo-terminal (`script`): the
/// shell runs what was typed, a resize goes through, and the output comes
/// back on the terminal.
#[test]
fn an_interactive_exec_through_a_pty() {
    let setup = setup();
    let sre = token(&setup.gateway, "sre-1", "human", &["sre"]);
    let config = kubeconfig(&setup, &sre);
    let kubectl = Path::new(SDK).join(NEWEST);
    let line = format!(
        "stty cols 100 rows 30; {} --kubeconfig {} exec -it web-1 -- sh",
        kubectl.display(),
        config.display()
    );
    let mut child = Command::new("script")
        .args(["-qfec", &line, "/dev/null"])
        .env("HOME", setup.dir.path())
        .env_remove("KUBECONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    stdin.write_all(b"echo $((6 * 7))\n").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    stdin.write_all(b"exit\n").unwrap();
    let streams = setup.fixture.wait_for_streams(1, Duration::from_secs(20));
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    let shown = text(&output);
    assert!(shown.contains("42"), "{shown}");
    let ran = streams
        .first()
        .unwrap_or_else(|| panic!("no stream: {shown}"));
    assert_eq!(ran.command, ["sh"]);
    assert!(
        String::from_utf8_lossy(&ran.stdin).contains("echo $((6 * 7))"),
        "{ran:?}"
    );
    assert!(
        ran.resizes
            .iter()
            .any(|size| size.contains("100") && size.contains("30")),
        "{ran:?}"
    );
    assert_eq!(ran.exit_code, Some(0));
}

fn python_site() -> PathBuf {
    airlock_testkit::pip_site("crates/airlock/tests/python-k8s", &["kubernetes"])
}

/// A TCP echo server on a free port ("the pod's port"): one connection.
fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut buffer = [0u8; 4096];
            while let Ok(read) = stream.read(&mut buffer) {
                if read == 0 || stream.write_all(&buffer[..read]).is_err() {
                    break;
                }
            }
        }
    });
    port
}

/// Port-forward over WebSocket (the Python client's `v4.channel.k8s.io`)
/// carries bytes to the pod's port and back.
#[test]
fn port_forward_carries_bytes_to_the_pods_port() {
    let setup = setup();
    let sre = token(&setup.gateway, "sre-1", "human", &["sre"]);
    let port = echo_server();
    let script = airlock_testkit::repo_file("crates/airlock/tests/python-k8s/portforward.py");
    let output = Command::new("python3")
        .arg(&script)
        .env("PYTHONPATH", python_site())
        .env(
            "AIRLOCK_K8S_URL",
            format!("https://127.0.0.1:{}/k8s-dev", setup.gateway.http_port),
        )
        .env("AIRLOCK_TOKEN", &sre)
        .env("AIRLOCK_CA", setup.gateway.data_dir().join("tls.crt"))
        .env("AIRLOCK_POD_PORT", port.to_string())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["received"], "ping through the tunnel\n", "{seen}");
    let streams = setup.fixture.wait_for_streams(1, Duration::from_secs(10));
    assert_eq!(streams[0].subresource, "portforward");
    assert_eq!(streams[0].command, [port.to_string()]);
    assert_eq!(streams[0].stdin, b"ping through the tunnel\n");
}

/// A running `kubectl port-forward`, its output gathered by threads.
struct PortForward {
    child: std::process::Child,
    output: std::sync::Arc<std::sync::Mutex<String>>,
}

impl PortForward {
    fn start(binary: &str, config: &Path, home: &Path, port: u16) -> Self {
        let mut child = kubectl_command(binary, config, home)
            .args(["port-forward", "pod/web-1", &format!("0:{port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let readers: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ];
        for mut source in readers {
            let output = std::sync::Arc::clone(&output);
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                while let Ok(read) = source.read(&mut buffer) {
                    if read == 0 {
                        break;
                    }
                    output
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buffer[..read]));
                }
            });
        }
        Self { child, output }
    }

    /// Waits until the output holds `wanted` (within 30 s).
    fn wait_for(&self, wanted: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let output = self.output.lock().unwrap().clone();
            if output.contains(wanted) {
                return output;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {wanted:?} in: {output}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The local port from `Forwarding from 127.0.0.1:<port> -> …`.
    fn local_port(&self) -> u16 {
        let output = self.wait_for("Forwarding from 127.0.0.1:");
        let marker = "Forwarding from 127.0.0.1:";
        let start = output.find(marker).unwrap() + marker.len();
        let digits: String = output[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().unwrap()
    }

    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.output.lock().unwrap().clone()
    }
}

/// `kubectl port-forward` (SPDY tunnelled in WebSocket, kubectl 1.30+):
/// bytes go to the pod's port and back through the gateway, the
/// connection is recorded with its port, and its bytes are counted in
/// the session's result.
#[test]
fn kubectl_port_forward_carries_bytes_through_the_tunnel() {
    let setup = setup();
    let sre = token(&setup.gateway, "sre-1", "human", &["sre"]);
    let config = kubeconfig(&setup, &sre);
    let port = echo_server();
    let forward = PortForward::start(NEWEST, &config, setup.dir.path(), port);
    let local = forward.local_port();
    let mut connection = std::net::TcpStream::connect(("127.0.0.1", local)).unwrap();
    connection
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let sent = b"hello through kubectl port-forward\n";
    connection.write_all(sent).unwrap();
    let mut received = vec![0u8; sent.len()];
    connection.read_exact(&mut received).unwrap();
    assert_eq!(received, sent);
    drop(connection);
    std::thread::sleep(Duration::from_millis(300));
    let shown = forward.stop();
    let streams = setup.fixture.wait_for_streams(1, Duration::from_secs(10));
    assert_eq!(streams[0].subresource, "portforward");
    assert_eq!(
        streams[0].protocol, "SPDY/3.1+portforward.k8s.io",
        "{shown}"
    );
    assert_eq!(streams[0].command, [port.to_string()]);
    assert_eq!(streams[0].stdin, sent);
    assert_eq!(
        streams[0].tunnel_streams,
        [
            format!("error port {port} request 0"),
            format!("data port {port} request 0")
        ]
    );
    let export = setup.gateway.cli_ok(&["audit", "export"], None);
    assert!(
        export.contains(&format!("\"ports\":[{port}]")),
        "the connection's command is recorded with its port: {export}"
    );
    let bytes = sent.len();
    let wanted = format!("port {port} (request 0): {bytes} B up, {bytes} B down");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let export = setup.gateway.cli_ok(&["audit", "export"], None);
        if export.contains(&wanted) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {wanted:?} in {export}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!setup.gateway.log().contains(SA_TOKEN));
}

/// Sends `total` bytes through a running port-forward to an echo server
/// and reads them back: the seconds it took.
fn echo_through(forward: &PortForward, total: usize) -> f64 {
    let local = forward.local_port();
    let connection = std::net::TcpStream::connect(("127.0.0.1", local)).unwrap();
    connection
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let payload: Vec<u8> = (0..total).map(|index| (index % 251) as u8).collect();
    let started = std::time::Instant::now();
    let writer = {
        let mut connection = connection.try_clone().unwrap();
        let payload = payload.clone();
        std::thread::spawn(move || connection.write_all(&payload).unwrap())
    };
    let mut received = vec![0u8; total];
    (&connection).read_exact(&mut received).unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    writer.join().unwrap();
    assert!(received == payload, "the bytes came back changed");
    elapsed
}

/// 8 MiB each way through kubectl's tunnel, whole and in order; prints
/// the throughput (kubectl sends no token to a plain-HTTP server, so the
/// fixture cannot be measured directly the same way).
#[test]
fn port_forward_moves_megabytes_through_the_tunnel() {
    let setup = setup();
    let total = 8 << 20;
    let sre = token(&setup.gateway, "sre-1", "human", &["sre"]);
    let config = kubeconfig(&setup, &sre);
    let forward = PortForward::start(NEWEST, &config, setup.dir.path(), echo_server());
    let seconds = echo_through(&forward, total);
    forward.stop();
    let mib = (total >> 20) as f64;
    eprintln!(
        "port-forward through airlock, {mib} MiB each way: {seconds:.2} s ({:.1} MiB/s)",
        mib / seconds
    );
    let streams = setup.fixture.wait_for_streams(1, Duration::from_secs(10));
    assert_eq!(streams[0].stdin.len(), total);
}

/// A port the policy denies: kubectl prints the refusal with the rule for
/// that connection, and the pod never sees a stream for the port.
#[test]
fn a_denied_port_never_reaches_the_pod() {
    let setup = setup();
    let sre = token(&setup.gateway, "sre-1", "human", &["sre"]);
    let config = kubeconfig(&setup, &sre);
    let forward = PortForward::start(NEWEST, &config, setup.dir.path(), 5432);
    let local = forward.local_port();
    let mut connection = std::net::TcpStream::connect(("127.0.0.1", local)).unwrap();
    let _ = connection.write_all(b"SELECT 1");
    let shown = forward.wait_for("no-database-ports");
    eprintln!("kubectl printed: {shown}");
    assert!(
        shown.contains(
            r#"blocked by rule \"no-database-ports\" (policy v1): database ports are not forwarded"#
        ),
        "{shown}"
    );
    drop(connection);
    let shown = forward.stop();
    let streams = setup.fixture.wait_for_streams(1, Duration::from_secs(10));
    assert!(
        streams[0].tunnel_streams.is_empty(),
        "{:?} {shown}",
        streams[0]
    );
    assert!(streams[0].command.is_empty());
    assert!(streams[0].stdin.is_empty());
}

/// An agent may not port-forward at all: kubectl gets the rule's
/// `Status`, and the fixture never sees the request.
#[test]
fn a_denied_port_forward_never_reaches_the_fixture() {
    let setup = setup();
    let agent = token(&setup.gateway, "agent-7", "agent", &["agents"]);
    let config = kubeconfig(&setup, &agent);
    let output = kubectl_command(NEWEST, &config, setup.dir.path())
        .args(["port-forward", "pod/web-1", "0:8080"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let shown = text(&output);
    assert!(
        shown.contains("no-shells-for-agents") && shown.contains("agents may not open streams"),
        "{shown}"
    );
    assert_eq!(
        stream_requests(&setup.fixture),
        0,
        "{:?}",
        setup.fixture.requests()
    );
    assert!(setup.fixture.streams().is_empty());
}

/// Revoking the token pulls the session's kill switch: an open exec ends.
#[test]
fn revoking_the_token_ends_an_open_exec() {
    let setup = setup();
    let issued: Value = serde_json::from_str(&setup.gateway.cli_ok(
        &[
            "token",
            "issue",
            "--identity",
            "sre-2",
            "--kind",
            "human",
            "--group",
            "sre",
            "--connection",
            "k8s-dev",
            "--ttl",
            "10m",
            "--output",
            "json",
        ],
        None,
    ))
    .unwrap();
    let config = kubeconfig(&setup, issued["token"].as_str().unwrap());
    let mut child = kubectl_command(NEWEST, &config, setup.dir.path())
        .args(["exec", "-i", "web-1", "--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"still here\n").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while setup.fixture.requests_to("GET", "/exec").is_empty() {
        assert!(std::time::Instant::now() < deadline, "exec never arrived");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    setup
        .gateway
        .cli_ok(&["token", "revoke", issued["id"].as_str().unwrap()], None);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the exec outlived its token"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(stdin);
    // The pod's process saw its stdin end.
    let streams = setup.fixture.wait_for_streams(1, Duration::from_secs(10));
    assert_eq!(streams[0].stdin, b"still here\n");
}

/// A review rule holds an exec like any request: nothing reaches the pod
/// until an approver approves, then the stream is relayed.
#[test]
fn a_held_exec_runs_once_approved() {
    let setup = setup();
    let oncall = token(&setup.gateway, "oncall-1", "human", &["oncall"]);
    let approver = token(&setup.gateway, "sre-1", "human", &["sre"]);
    let config = kubeconfig(&setup, &oncall);
    let waiting = kubectl_command(NEWEST, &config, setup.dir.path())
        .args(["exec", "-n", "prod", "api-1", "--", "echo", "approved run"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let id = loop {
        let list: Value = serde_json::from_str(
            &setup
                .gateway
                .cli_ok(&["review", "list", "--output", "json"], None),
        )
        .unwrap();
        if let Some(id) = list[0]["id"].as_str() {
            break id.to_string();
        }
        assert!(std::time::Instant::now() < deadline, "no review appeared");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        stream_requests(&setup.fixture),
        0,
        "forwarded before approval"
    );
    let approved = common::as_person(&setup.gateway, &approver, &["review", "approve", &id]);
    assert!(approved.status.success(), "{}", text(&approved));
    let output = waiting.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "approved run\n");
    let streams = setup.fixture.wait_for_streams(1, Duration::from_secs(10));
    assert_eq!(streams[0].pod, "prod/api-1");
    assert_eq!(streams[0].command, ["echo", "approved run"]);
}

/// A large output streams through whole while its transcript stops at
/// the per-session bound (and says so); prints the throughput.
#[test]
fn large_output_streams_whole_and_the_transcript_is_bounded() {
    let setup = setup();
    let sre = token(&setup.gateway, "sre-1", "human", &["sre"]);
    let config = kubeconfig(&setup, &sre);
    let bytes = 16 * 1024 * 1024;
    let script = format!("head -c {bytes} /dev/zero | tr '\\0' x");
    let started = std::time::Instant::now();
    let output = kubectl(
        NEWEST,
        &config,
        setup.dir.path(),
        &["exec", "web-1", "--", "sh", "-c", &script],
        b"",
    );
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.stdout.len(), bytes);
    assert!(output.stdout.iter().all(|byte| *byte == b'x'));
    println!(
        "exec output through airlock: {} MiB in {:.2} s ({:.1} MiB/s, kubectl start-up included)",
        bytes >> 20,
        elapsed.as_secs_f64(),
        (bytes >> 20) as f64 / elapsed.as_secs_f64()
    );
    setup.fixture.wait_for_streams(1, Duration::from_secs(10));
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let replay = loop {
        let replay = sessions_of(&setup.gateway, "sre-1")
            .iter()
            .map(|id| setup.gateway.cli_ok(&["session", "replay", id], None))
            .find(|replay| replay.contains("/pods/web-1/exec") && replay.contains("HTTP 101"));
        if let Some(replay) = replay {
            break replay;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the stream's end was never recorded"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        replay.contains("the rest of the stream was not kept"),
        "{}",
        &replay[..2000.min(replay.len())]
    );
    // At most the bound (1 MiB) of it was kept.
    let kept = replay.matches('x').count();
    assert!(kept <= 1024 * 1024 + 4096, "{kept}");
    assert!(kept >= 512 * 1024, "{kept}");
}
