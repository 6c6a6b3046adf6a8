//! End-to-end tests of the Kubernetes API through airlock: the real
//! `airlock` binary, real `/usr/bin/kubectl` as the client, and — the one
//! stand-in these tests allow — the test kit's fixture API server
//! (`airlock_testkit::KubeApiFixture`), because no real kube-apiserver can
//! run or be built on the test machines. The policy is the shared example
//! `examples/policy-multi.yaml`, loaded unchanged. Enforcement is asserted
//! on the upstream: the fixture's request log says what reached it.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use airlock_testkit::{repo_text, GatewayProcess, KubeApiFixture};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The service-account token the fixtures accept (airlock injects it).
const SA_TOKEN: &str = "sa-token-k8s-6b1f0c2e9a";
/// A Secret value stored in the prod fixture (base64 of `hunter2-prod`).
const SECRET_B64: &str = "aHVudGVyMi1wcm9k";

struct Setup {
    dev: KubeApiFixture,
    prod: KubeApiFixture,
    gateway: GatewayProcess,
    dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let dev = KubeApiFixture::start(SA_TOKEN);
    let prod = KubeApiFixture::start(SA_TOKEN);
    prod.put(
        "secrets",
        "default",
        json!({"metadata": {"name": "db-creds"}, "type": "Opaque", "data": {"password": SECRET_B64}}),
    );
    prod.put(
        "configmaps",
        "default",
        json!({"metadata": {"name": "cfg-1"}, "data": {"mode": "blue"}}),
    );
    let config = format!(
        "connections:
  - name: k8s-dev
    protocol: kubernetes
    url: {dev}
    credential: k8s-sa
    tags: {{env: dev}}
  - name: k8s-prod
    protocol: kubernetes
    url: {prod}
    credential: k8s-sa
    impersonate: true
    tags: {{env: prod}}
",
        dev = dev.url(),
        prod = prod.url()
    );
    let policy = repo_text("examples/policy-multi.yaml");
    let gateway = GatewayProcess::start_with_policy(common::binary(), &config, &policy);
    gateway.set_credential("k8s-sa", "gateway", SA_TOKEN);
    Setup {
        dev,
        prod,
        gateway,
        dir: tempfile::tempdir().unwrap(),
    }
}

/// A kubeconfig for `connection` with `token`: TLS to the gateway, its
/// self-signed certificate as the CA (kubectl sends no bearer token to a
/// plaintext server).
fn kubeconfig(setup: &Setup, connection: &str, token: &str) -> PathBuf {
    let path = setup
        .dir
        .path()
        .join(format!("{connection}-{}.yaml", &token[token.len() - 8..]));
    let ca = setup.gateway.data_dir().join("tls.crt");
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
  - name: gw
    cluster:
      server: https://127.0.0.1:{port}/{connection}
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
        ca = ca.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn kubectl(config: &Path, args: &[&str]) -> Output {
    Command::new("/usr/bin/kubectl")
        .arg("--kubeconfig")
        .arg(config)
        .args(["--request-timeout", "60s"])
        .args(args)
        .env_remove("KUBECONFIG")
        .env("HOME", config.parent().unwrap())
        .output()
        .expect("run /usr/bin/kubectl")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
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
        "--connection",
        "k8s-prod",
        "--ttl",
        "10m",
        "--output",
        "json",
    ];
    for group in groups {
        args.push("--group");
        args.push(group);
    }
    let issued: Value = serde_json::from_str(&gateway.cli_ok(&args, None)).unwrap();
    issued["token"].as_str().unwrap().to_string()
}

/// Every request the fixture got carried the injected token, never the
/// agent's.
fn assert_only_injected(fixture: &KubeApiFixture, agent_token: &str) {
    for request in fixture.requests() {
        assert!(request.authorized, "{request:?}");
        for (_, value) in &request.headers {
            assert!(!value.contains(agent_token), "{request:?}");
        }
    }
}

#[test]
fn kubectl_reads_and_the_service_account_token_stays_inside() {
    let setup = setup();
    let agent = token(&setup.gateway, "agent-7", "agent", &["agents"]);
    let config = kubeconfig(&setup, "k8s-dev", &agent);
    let output = kubectl(&config, &["get", "pods"]);
    assert!(output.status.success(), "{}", text(&output));
    let shown = text(&output);
    assert!(
        shown.contains("web-1") && shown.contains("Running"),
        "{shown}"
    );
    // Table output was asked for and served server-side.
    let lists = setup
        .dev
        .requests_to("GET", "/api/v1/namespaces/default/pods");
    assert!(!lists.is_empty());
    assert!(
        lists[0].header_values("accept")[0].contains("as=Table"),
        "{lists:?}"
    );
    // -v=9 prints every request and response header and body: the
    // service-account token appears in none of them.
    let verbose = kubectl(&config, &["get", "pods", "-o", "json", "-v=9"]);
    assert!(verbose.status.success(), "{}", text(&verbose));
    assert!(!text(&verbose).contains(SA_TOKEN));
    let described = kubectl(&config, &["describe", "pod", "web-1"]);
    assert!(described.status.success(), "{}", text(&described));
    assert!(text(&described).contains("web-1"), "{}", text(&described));
    setup.dev.append_log("default", "web-1", "hello from web-1");
    let logs = kubectl(&config, &["logs", "web-1"]);
    assert!(text(&logs).contains("hello from web-1"), "{}", text(&logs));
    let namespaces = kubectl(&config, &["get", "namespaces"]);
    assert!(text(&namespaces).contains("prod"), "{}", text(&namespaces));
    assert_only_injected(&setup.dev, &agent);
    assert!(!setup.gateway.log().contains(SA_TOKEN));
    // `airlock doctor` reaches Kubernetes upstreams by their url.
    let config = setup.gateway.config_dir().join("airlock.yaml");
    let doctor = Command::new(common::binary())
        .args(["doctor", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(setup.gateway.data_dir())
        .output()
        .unwrap();
    let shown = text(&doctor);
    let reachable = format!("k8s-dev (127.0.0.1:{})", setup.dev.port);
    assert!(shown.contains(&reachable), "{shown}");
    assert!(!shown.contains("cannot connect"), "{shown}");
}

#[test]
fn secrets_are_denied_to_agents_and_masked_for_others() {
    let setup = setup();
    let agent = token(&setup.gateway, "agent-7", "agent", &["agents"]);
    let output = kubectl(
        &kubeconfig(&setup, "k8s-prod", &agent),
        &["get", "secret", "db-creds", "-o", "yaml"],
    );
    assert!(!output.status.success());
    let shown = text(&output);
    assert!(
        shown.contains("Error from server (Forbidden)")
            && shown.contains("no-secrets-for-agents")
            && shown.contains("agents may not read or change Kubernetes secrets"),
        "{shown}"
    );
    assert!(
        setup
            .prod
            .requests_to("GET", "/secrets/db-creds")
            .is_empty(),
        "a denied request reached the API server"
    );
    // A service may read it; under prod's mask the value never leaves.
    let service = token(&setup.gateway, "backup-svc", "service", &[]);
    let output = kubectl(
        &kubeconfig(&setup, "k8s-prod", &service),
        &["get", "secret", "db-creds", "-o", "yaml"],
    );
    assert!(output.status.success(), "{}", text(&output));
    let shown = text(&output);
    assert!(shown.contains("name: db-creds"), "{shown}");
    assert!(
        shown.contains("password: W2FpcmxvY2s6bWFza2VkXQ=="),
        "{shown}"
    );
    assert!(!shown.contains(SECRET_B64), "{shown}");
    assert_eq!(setup.prod.requests_to("GET", "/secrets/db-creds").len(), 1);
    // The upstream was asked for JSON (protobuf cannot be masked), and
    // saw the agent only through impersonation.
    let seen = &setup.prod.requests_to("GET", "/secrets/db-creds")[0];
    assert!(
        !seen.header_values("accept").join(",").contains("protobuf"),
        "{seen:?}"
    );
    assert_eq!(seen.header_values("impersonate-user"), ["backup-svc"]);
}

#[test]
fn writes_are_decided_by_policy_and_denials_never_reach_the_api_server() {
    let setup = setup();
    let agent = token(&setup.gateway, "agent-7", "agent", &["agents"]);
    let dev = kubeconfig(&setup, "k8s-dev", &agent);
    // `kubectl create -f` and `apply` send JSON (`kubectl create
    // configmap` sends protobuf, which the fixture cannot read; airlock
    // relays either).
    let manifest = |name: &str, value: &str| {
        let path = setup.dir.path().join(format!("{name}.yaml"));
        std::fs::write(
            &path,
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  color: {value}\n"),
        )
        .unwrap();
        path.to_str().unwrap().to_string()
    };
    let created = manifest("app-config", "green");
    let output = kubectl(&dev, &["create", "--validate=false", "-f", &created]);
    assert!(output.status.success(), "{}", text(&output));
    let stored = setup
        .dev
        .object("configmaps", "default", "app-config")
        .unwrap();
    assert_eq!(stored["data"]["color"], "green");
    // apply of a new object (read, then create), then of a change (patch).
    let applied = manifest("applied", "blue");
    let output = kubectl(&dev, &["apply", "--validate=false", "-f", &applied]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(setup
        .dev
        .object("configmaps", "default", "applied")
        .is_some());
    let changed = manifest("applied", "red");
    let output = kubectl(&dev, &["apply", "--validate=false", "-f", &changed]);
    assert!(output.status.success(), "{}", text(&output));
    let stored = setup
        .dev
        .object("configmaps", "default", "applied")
        .unwrap();
    assert_eq!(stored["data"]["color"], "red");
    assert_eq!(
        setup.dev.requests_to("PATCH", "/configmaps/applied").len(),
        1
    );
    // A dry run is a write too, and allowed here.
    let dry = manifest("dry", "x");
    let output = kubectl(
        &dev,
        &["create", "--validate=false", "--dry-run=server", "-f", &dry],
    );
    assert!(output.status.success(), "{}", text(&output));
    assert!(setup.dev.object("configmaps", "default", "dry").is_none());
    // Every patch type kubectl sends, and server-side apply.
    for (kind, patch, key) in [
        ("merge", r#"{"data":{"merge":"1"}}"#, "merge"),
        ("strategic", r#"{"data":{"strategic":"1"}}"#, "strategic"),
        (
            "json",
            r#"[{"op":"add","path":"/data/json","value":"1"}]"#,
            "json",
        ),
    ] {
        let output = kubectl(
            &dev,
            &["patch", "configmap", "applied", "--type", kind, "-p", patch],
        );
        assert!(output.status.success(), "{kind}: {}", text(&output));
        let stored = setup
            .dev
            .object("configmaps", "default", "applied")
            .unwrap();
        assert_eq!(stored["data"][key], "1", "{kind}: {stored}");
    }
    let server_side = manifest("server-side", "green");
    let output = kubectl(
        &dev,
        &[
            "apply",
            "--server-side",
            "--validate=false",
            "-f",
            &server_side,
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    assert!(setup
        .dev
        .object("configmaps", "default", "server-side")
        .is_some());
    let output = kubectl(&dev, &["describe", "configmap", "applied"]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("Name:"), "{}", text(&output));
    let manifest_arg = applied.as_str();

    // Prod: no rule allows writes (default deny).
    let prod = kubeconfig(&setup, "k8s-prod", &agent);
    let output = kubectl(
        &prod,
        &["create", "configmap", "nope", "--from-literal=a=b"],
    );
    assert!(!output.status.success());
    let shown = text(&output);
    assert!(
        shown.contains("blocked by policy v1: no rule allows"),
        "{shown}"
    );
    let output = kubectl(&prod, &["apply", "--validate=false", "-f", manifest_arg]);
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        setup
            .prod
            .requests()
            .iter()
            .all(|request| request.method == "GET"),
        "a denied write reached the API server: {:?}",
        setup.prod.requests()
    );
    assert!(setup.prod.object("configmaps", "default", "nope").is_none());
}

#[test]
fn a_prod_delete_is_held_until_an_sre_approves() {
    let setup = setup();
    let agent = token(&setup.gateway, "agent-7", "agent", &["agents"]);
    let approver = token(&setup.gateway, "sre-1", "human", &["sre"]);
    let prod = kubeconfig(&setup, "k8s-prod", &agent);
    let waiting = Command::new("/usr/bin/kubectl")
        .arg("--kubeconfig")
        .arg(&prod)
        .args(["delete", "configmap", "cfg-1", "--wait=false"])
        .env("HOME", setup.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
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
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        setup
            .prod
            .requests_to("DELETE", "/configmaps/cfg-1")
            .is_empty(),
        "forwarded before approval"
    );
    assert!(setup
        .prod
        .object("configmaps", "default", "cfg-1")
        .is_some());
    let approved = common::as_person(&setup.gateway, &approver, &["review", "approve", &id]);
    assert!(approved.status.success(), "{}", text(&approved));
    let output = waiting.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("configmap \"cfg-1\" deleted"),
        "{}",
        text(&output)
    );
    assert_eq!(
        setup.prod.requests_to("DELETE", "/configmaps/cfg-1").len(),
        1
    );
    assert!(setup
        .prod
        .object("configmaps", "default", "cfg-1")
        .is_none());
}

#[test]
fn a_watch_streams_events_as_they_happen() {
    let setup = setup();
    let agent = token(&setup.gateway, "agent-7", "agent", &["agents"]);
    let dev = kubeconfig(&setup, "k8s-dev", &agent);
    let mut child = Command::new("/usr/bin/kubectl")
        .arg("--kubeconfig")
        .arg(&dev)
        .args(["get", "configmaps", "--watch"])
        .env("HOME", setup.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, received) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    // The watch is open at the fixture before the change is made.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !setup.dev.requests().iter().any(|r| {
        r.path.ends_with("/configmaps") && r.query.as_deref().unwrap_or("").contains("watch=true")
    }) {
        assert!(Instant::now() < deadline, "kubectl never watched");
        std::thread::sleep(Duration::from_millis(50));
    }
    setup.dev.put(
        "configmaps",
        "default",
        json!({"metadata": {"name": "watched-1"}, "data": {"a": "1"}}),
    );
    let seen_at = loop {
        let line = received
            .recv_timeout(Duration::from_secs(15))
            .expect("the event never arrived");
        if line.contains("watched-1") {
            break Instant::now();
        }
    };
    // The watch is still open: the event was streamed, not buffered.
    assert!(child.try_wait().unwrap().is_none(), "kubectl's watch ended");
    assert!(seen_at.elapsed() < Duration::from_secs(1));
    let _ = child.kill();
    let _ = child.wait();
    let events = common::events(&setup.gateway);
    let watch = events
        .iter()
        .find(|event| event.kind == "command" && event.data["kubernetes"]["verb"] == "watch")
        .expect("no watch recorded");
    // One command for the whole watch; its result (once the client went
    // away) counts the events.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let events = common::events(&setup.gateway);
        let result = events
            .iter()
            .filter(|event| event.session_id == watch.session_id)
            .find_map(|event| event.command_result());
        if let Some(result) = result {
            assert!(result["rows"].as_u64().unwrap() >= 1, "{result:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the watch's result was never recorded"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Under prod's mask plan a watch still streams: each event is masked on
/// its own (Secret values included) and sent while the watch stays open.
#[test]
fn a_masked_watch_streams_one_masked_event_at_a_time() {
    let setup = setup();
    let service = token(&setup.gateway, "backup-svc", "service", &[]);
    let prod = kubeconfig(&setup, "k8s-prod", &service);
    let mut child = Command::new("/usr/bin/kubectl")
        .arg("--kubeconfig")
        .arg(&prod)
        .args([
            "get",
            "secrets",
            "--watch",
            "--output-watch-events",
            "-o",
            "json",
        ])
        .env("HOME", setup.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, received) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while !setup.prod.requests().iter().any(|r| {
        r.path.ends_with("/secrets") && r.query.as_deref().unwrap_or("").contains("watch=true")
    }) {
        assert!(Instant::now() < deadline, "kubectl never watched");
        std::thread::sleep(Duration::from_millis(50));
    }
    setup.prod.put(
        "secrets",
        "default",
        json!({"metadata": {"name": "rotated"}, "data": {"password": "cm90YXRlZC1zZWNyZXQ="}}),
    );
    let mut shown = String::new();
    loop {
        let line = received
            .recv_timeout(Duration::from_secs(15))
            .unwrap_or_else(|_| panic!("the event never arrived: {shown}"));
        shown.push_str(&line);
        shown.push('\n');
        if shown.contains("\"rotated\"") && shown.contains("W2FpcmxvY2s6bWFza2VkXQ==") {
            break;
        }
    }
    assert!(child.try_wait().unwrap().is_none(), "kubectl's watch ended");
    assert!(!shown.contains("cm90YXRlZC1zZWNyZXQ="), "{shown}");
    assert!(!shown.contains(SECRET_B64), "{shown}");
    let _ = child.kill();
    let _ = child.wait();
}

/// `kubectl logs -f` under a mask plan: each line masked and sent as the
/// pod writes it.
#[test]
fn a_followed_log_is_masked_line_by_line() {
    let setup = setup();
    setup.prod.append_log("default", "web-1", "started");
    let agent = token(&setup.gateway, "agent-7", "agent", &["agents"]);
    let prod = kubeconfig(&setup, "k8s-prod", &agent);
    let mut child = Command::new("/usr/bin/kubectl")
        .arg("--kubeconfig")
        .arg(&prod)
        .args(["logs", "-f", "web-1"])
        .env("HOME", setup.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, received) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let first = received
        .recv_timeout(Duration::from_secs(20))
        .expect("no log line");
    assert_eq!(first, "started");
    setup
        .prod
        .append_log("default", "web-1", "login by alice.cooper@example.com ok");
    let line = received
        .recv_timeout(Duration::from_secs(15))
        .expect("the new line never arrived");
    assert!(
        line.starts_with("login by ") && line.ends_with(" ok"),
        "{line}"
    );
    assert!(!line.contains("alice.cooper@example.com"), "{line}");
    assert!(child.try_wait().unwrap().is_none(), "kubectl logs -f ended");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn exec_and_impersonation_are_admin_and_refused() {
    let setup = setup();
    let agent = token(&setup.gateway, "agent-7", "agent", &["agents"]);
    let dev = kubeconfig(&setup, "k8s-dev", &agent);
    let output = kubectl(&dev, &["exec", "web-1", "--", "id"]);
    assert!(!output.status.success());
    let shown = text(&output);
    assert!(shown.contains("exec-needs-mfa"), "{shown}");
    let output = Command::new("/usr/bin/kubectl")
        .arg("--kubeconfig")
        .arg(&dev)
        .args(["port-forward", "pod/web-1", "0:80"])
        .env("HOME", setup.dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        text(&output).contains("exec-needs-mfa"),
        "{}",
        text(&output)
    );
    // The client's own impersonation is admin, refused by default.
    let output = kubectl(
        &dev,
        &[
            "get",
            "pods",
            "--as",
            "system:admin",
            "--as-group",
            "system:masters",
        ],
    );
    assert!(!output.status.success());
    let shown = text(&output);
    assert!(shown.contains("Error from server (Forbidden)"), "{shown}");
    for request in setup.dev.requests() {
        assert!(!request.path.ends_with("/exec"), "{request:?}");
        assert!(!request.path.ends_with("/portforward"), "{request:?}");
        assert!(
            request.header_values("impersonate-user").is_empty(),
            "{request:?}"
        );
        assert!(
            request.header_values("impersonate-group").is_empty(),
            "{request:?}"
        );
    }
    // On prod the gateway impersonates the agent itself (and its groups).
    let prod = kubeconfig(&setup, "k8s-prod", &agent);
    let output = kubectl(&prod, &["get", "pods"]);
    assert!(output.status.success(), "{}", text(&output));
    let seen = setup
        .prod
        .requests_to("GET", "/api/v1/namespaces/default/pods");
    assert_eq!(seen[0].header_values("impersonate-user"), ["agent-7"]);
    assert_eq!(seen[0].header_values("impersonate-group"), ["agents"]);
}

#[test]
fn requests_are_recorded_with_verb_resource_and_namespace() {
    let setup = setup();
    let agent = token(&setup.gateway, "agent-7", "agent", &["agents"]);
    let dev = kubeconfig(&setup, "k8s-dev", &agent);
    assert!(kubectl(&dev, &["get", "pods", "-n", "default"])
        .status
        .success());
    assert!(!kubectl(&dev, &["get", "secrets", "-n", "default"])
        .status
        .success());
    let events = common::events(&setup.gateway);
    let commands: Vec<&Value> = events
        .iter()
        .filter(|event| event.kind == "command")
        .map(|event| &event.data)
        .collect();
    let list = commands
        .iter()
        .find(|data| {
            data["kubernetes"]["resource"] == "pods" && data["kubernetes"]["verb"] == "list"
        })
        .unwrap_or_else(|| panic!("{commands:?}"));
    assert_eq!(list["message"], "kubernetes");
    assert_eq!(list["kubernetes"]["namespace"], "default");
    assert_eq!(list["kubernetes"]["access"], "read");
    assert_eq!(list["decision"], "forward");
    let refused = commands
        .iter()
        .find(|data| data["kubernetes"]["resource"] == "secrets")
        .unwrap();
    assert_eq!(refused["decision"], "refuse");
    assert!(refused["refusal"]
        .as_str()
        .unwrap()
        .contains("no-secrets-for-agents"));
    let export = setup.gateway.cli_ok(&["audit", "export"], None);
    assert!(!export.contains(SA_TOKEN));
    assert!(!export.contains(&agent));
}

/// The oldest and newest versioned kubectl binaries on the machine (the
/// Google Cloud SDK's) read through the gateway and get its refusals.
#[test]
fn the_oldest_and_newest_kubectl_work_through_the_gateway() {
    let setup = setup();
    let agent = token(&setup.gateway, "agent-7", "agent", &["agents"]);
    let config = kubeconfig(&setup, "k8s-dev", &agent);
    for binary in ["kubectl.1.27", "kubectl.1.33"] {
        let path = Path::new("/usr/lib/google-cloud-sdk/bin").join(binary);
        assert!(path.exists(), "{} is missing", path.display());
        let run = |args: &[&str]| {
            Command::new(&path)
                .arg("--kubeconfig")
                .arg(&config)
                .args(args)
                .env("HOME", setup.dir.path())
                .output()
                .unwrap()
        };
        let output = run(&["get", "pods"]);
        assert!(output.status.success(), "{binary}: {}", text(&output));
        assert!(
            text(&output).contains("web-1"),
            "{binary}: {}",
            text(&output)
        );
        let output = run(&["get", "secret", "db-creds"]);
        assert!(!output.status.success());
        assert!(
            text(&output).contains("Error from server (Forbidden)")
                && text(&output).contains("no-secrets-for-agents"),
            "{binary}: {}",
            text(&output)
        );
    }
    assert!(setup.dev.requests_to("GET", "/secrets/db-creds").is_empty());
}

fn python_site() -> PathBuf {
    airlock_testkit::pip_site("crates/airlock/tests/python-k8s", &["kubernetes"])
}

/// The official Kubernetes Python client (PyPI `kubernetes`) through the
/// gateway: lists, creates where policy allows, and gets a `Status` 403
/// for a denied read that never reaches the API server.
#[test]
fn the_python_kubernetes_client_works_through_the_gateway() {
    let setup = setup();
    let agent = token(&setup.gateway, "agent-7", "agent", &["agents"]);
    let script = airlock_testkit::repo_file("crates/airlock/tests/python-k8s/client_scenarios.py");
    let output = Command::new("python3")
        .arg(&script)
        .env("PYTHONPATH", python_site())
        .env(
            "AIRLOCK_K8S_URL",
            format!("https://127.0.0.1:{}/k8s-dev", setup.gateway.http_port),
        )
        .env("AIRLOCK_TOKEN", &agent)
        .env("AIRLOCK_CA", setup.gateway.data_dir().join("tls.crt"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["pods"], json!(["web-1"]), "{seen}");
    assert_eq!(seen["created"], "from-python");
    let stored = setup
        .dev
        .object("configmaps", "default", "from-python")
        .unwrap();
    assert_eq!(stored["data"]["lang"], "python");
    assert_eq!(seen["secret"]["status"], 403, "{seen}");
    assert_eq!(seen["secret"]["kind"], "Status");
    assert_eq!(seen["secret"]["reason"], "Forbidden");
    assert!(seen["secret"]["message"]
        .as_str()
        .unwrap()
        .contains("no-secrets-for-agents"));
    assert!(setup.dev.requests_to("GET", "/secrets/db-creds").is_empty());
    assert_only_injected(&setup.dev, &agent);
}

/// Per-request times of `count` GETs of `url` by one curl (one keep-alive
/// connection to the gateway; the fixture closes each connection), in ms.
fn curl_times(url: &str, count: usize, extra: &[&str]) -> Vec<f64> {
    let mut command = Command::new("curl");
    command.args(["-sS", "--max-time", "60"]).args(extra);
    for _ in 0..count {
        command.args(["-o", "/dev/null", "-w", "%{http_code} %{time_total}\n", url]);
    }
    let output = command.output().unwrap();
    let mut times: Vec<f64> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let (code, time) = line.split_once(' ').unwrap();
            assert_eq!(code, "200", "{url}");
            time.parse::<f64>().unwrap() * 1000.0
        })
        .collect();
    assert_eq!(times.len(), count, "{}", text(&output));
    times.sort_by(f64::total_cmp);
    times
}

/// The added latency of a `list` through the gateway (policy, recording,
/// TLS) against the fixture directly, printed for the record; bounded
/// loosely so the test can fail when something stalls.
#[test]
fn list_latency_through_the_gateway() {
    let setup = setup();
    let agent = token(&setup.gateway, "agent-7", "agent", &["agents"]);
    let path = "/api/v1/namespaces/default/pods";
    let direct = curl_times(
        &format!("{}{path}", setup.dev.url()),
        50,
        &["-H", &format!("Authorization: Bearer {SA_TOKEN}")],
    );
    let ca = setup.gateway.data_dir().join("tls.crt");
    let through = curl_times(
        &format!(
            "https://127.0.0.1:{}/k8s-dev{path}",
            setup.gateway.http_port
        ),
        50,
        &[
            "--cacert",
            ca.to_str().unwrap(),
            "-H",
            &format!("Authorization: Bearer {agent}"),
        ],
    );
    let p = |times: &[f64], q: f64| times[((times.len() as f64 - 1.0) * q) as usize];
    println!(
        "list pods, 50 sequential GETs: direct p50 {:.2} ms p90 {:.2} ms; through airlock p50 {:.2} ms p90 {:.2} ms",
        p(&direct, 0.5),
        p(&direct, 0.9),
        p(&through, 0.5),
        p(&through, 0.9)
    );
    assert!(p(&through, 0.5) < 1000.0, "{through:?}");
    assert_eq!(setup.dev.requests_to("GET", path).len(), 100);
}

#[test]
fn airlock_kubeconfig_runs_the_exec_credential_plugin() {
    let setup = setup();
    let agent = token(&setup.gateway, "agent-7", "agent", &["agents"]);
    // TLS with the gateway's own (self-signed) certificate as the CA.
    let ca = setup.gateway.data_dir().join("tls.crt");
    assert!(ca.exists(), "no generated certificate at {}", ca.display());
    let printed = setup.gateway.cli_ok(
        &[
            "kubeconfig",
            "--connection",
            "k8s-dev",
            "--gateway",
            &format!("https://127.0.0.1:{}", setup.gateway.http_port),
            "--ca-file",
            ca.to_str().unwrap(),
            "--airlock-command",
            common::binary().to_str().unwrap(),
        ],
        None,
    );
    assert!(!printed.contains(&agent), "a token in the kubeconfig");
    assert!(printed.contains("kubectl-credential"), "{printed}");
    let path = setup.dir.path().join("generated.yaml");
    std::fs::write(&path, &printed).unwrap();
    let run = |token: Option<&str>| {
        let mut command = Command::new("/usr/bin/kubectl");
        command
            .arg("--kubeconfig")
            .arg(&path)
            .args(["get", "pods", "-n", "default"])
            .env("HOME", setup.dir.path())
            .env_remove("AIRLOCK_TOKEN")
            .env("AIRLOCK_CONFIG_DIR", setup.dir.path().join("no-login"));
        if let Some(token) = token {
            command.env("AIRLOCK_TOKEN", token);
        }
        command.output().unwrap()
    };
    let output = run(Some(&agent));
    assert!(output.status.success(), "{}\n{printed}", text(&output));
    assert!(text(&output).contains("web-1"), "{}", text(&output));
    // Without a token the plugin fails and kubectl says so; nothing is sent.
    let before = setup.dev.requests().len();
    let output = run(None);
    assert!(!output.status.success());
    assert!(text(&output).contains("AIRLOCK_TOKEN"), "{}", text(&output));
    assert_eq!(setup.dev.requests().len(), before);
    // The plugin's own output is an ExecCredential.
    let credential = Command::new(common::binary())
        .args(["token", "kubectl-credential", "--connection", "k8s-dev"])
        .env("AIRLOCK_TOKEN", &agent)
        .output()
        .unwrap();
    let value: Value = serde_json::from_slice(&credential.stdout).unwrap();
    assert_eq!(value["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(value["kind"], "ExecCredential");
    assert_eq!(value["status"]["token"], agent.as_str());
}
