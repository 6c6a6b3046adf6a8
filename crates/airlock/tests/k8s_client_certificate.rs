//! Kubernetes connections whose credential is a client certificate: the
//! real `airlock` binary and real `kubectl` against the test kit's fixture
//! API server (the one stand-in these tests allow: no kube-apiserver runs
//! here) behind mutual TLS, its server and client certificates from a
//! throwaway CA. The gateway presents the stored certificate upstream;
//! without it the fixture refuses the handshake and serves nothing
//! (asserted on its request log); a rotated certificate is used from the
//! next request on; the key never appears in the gateway's log, export
//! or data files.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use airlock_testkit::{GatewayProcess, KubeApiFixture};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const SA_TOKEN: &str = "sa-token-mtls-5c2e9a";
const KUBECTL: &str = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33";

const POLICY: &str = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
";

fn kubectl(gateway: &GatewayProcess, dir: &Path, connection: &str, token: &str) -> Output {
    let config = dir.join(format!("config-{connection}.yaml"));
    std::fs::write(
        &config,
        format!(
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
            port = gateway.http_port,
            ca = gateway.data_dir().join("tls.crt").display()
        ),
    )
    .unwrap();
    assert!(Path::new(KUBECTL).exists(), "{KUBECTL} is missing");
    Command::new(KUBECTL)
        .arg("--kubeconfig")
        .arg(&config)
        .args(["--request-timeout", "30s", "get", "pods", "-o", "name"])
        .env_remove("KUBECONFIG")
        .env("HOME", dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The random part of a PEM key's base64 (past the PKCS#8 header every
/// key of its type shares), as it would appear if leaked.
fn key_body(pem: &str) -> String {
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    // Within the second 64-character line, so a leaked PEM matches too.
    body.chars().skip(64).take(40).collect()
}

fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path) {
            if bytes.windows(needle.len()).any(|window| window == needle) {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn the_gateway_presents_the_stored_client_certificate() {
    let (fixture, certificates) = KubeApiFixture::start_with_client_certificates(SA_TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let ca = write(dir.path(), "fixture-ca.crt", &certificates.ca_pem);
    let config = format!(
        "connections:
  - name: k8s-mtls
    protocol: kubernetes
    url: {url}
    ca_file: {ca}
    client_certificate: true
    credential: k8s-cert
  - name: k8s-token-only
    protocol: kubernetes
    url: {url}
    ca_file: {ca}
    credential: k8s-sa
",
        url = fixture.url(),
        ca = ca.display()
    );
    let gateway = GatewayProcess::start_with_policy(common::binary(), &config, POLICY);
    gateway.set_credential("k8s-sa", "gateway", SA_TOKEN);
    let cert = write(dir.path(), "client.crt", &certificates.client_cert_pem);
    let key = write(dir.path(), "client.key", &certificates.client_key_pem);
    let set = gateway.cli_ok(
        &[
            "credential",
            "set",
            "k8s-cert",
            "--client-cert",
            cert.to_str().unwrap(),
            "--client-key",
            key.to_str().unwrap(),
            "--output",
            "json",
        ],
        None,
    );
    let set: Value = serde_json::from_str(&set).unwrap();
    assert_eq!(set["username"], "client-certificate", "{set}");
    // A bundle without its key is refused when it is stored.
    let refused = gateway.cli(
        &[
            "credential",
            "set",
            "k8s-bad",
            "--client-cert",
            cert.to_str().unwrap(),
            "--client-key",
            cert.to_str().unwrap(),
        ],
        None,
    );
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("no private key"),
        "{}",
        text(&refused)
    );

    let issued: Value = serde_json::from_str(&gateway.cli_ok(
        &[
            "token",
            "issue",
            "--identity",
            "agent-7",
            "--kind",
            "agent",
            "--connection",
            "k8s-mtls",
            "--connection",
            "k8s-token-only",
            "--ttl",
            "10m",
            "--output",
            "json",
        ],
        None,
    ))
    .unwrap();
    let token = issued["token"].as_str().unwrap();

    let output = kubectl(&gateway, dir.path(), "k8s-mtls", token);
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("pod/web-1"), "{}", text(&output));
    let requests = fixture.requests();
    assert!(!requests.is_empty());
    assert!(requests.iter().all(|request| request.authorized));
    // The certificate is the credential: no bearer token went up.
    assert!(
        requests
            .iter()
            .all(|request| request.header_values("authorization").is_empty()),
        "{requests:?}"
    );

    // Without the certificate the fixture refuses the handshake: nothing
    // is served, whatever token the gateway injects.
    let before = fixture.requests().len();
    let output = kubectl(&gateway, dir.path(), "k8s-token-only", token);
    assert!(!output.status.success(), "{}", text(&output));
    assert_eq!(fixture.requests().len(), before);

    // A rotation: the next request presents the new certificate.
    let (new_cert, new_key) = certificates.another_client("airlock-gateway-2");
    let new_cert = write(dir.path(), "client-2.crt", &new_cert);
    let new_key_path = write(dir.path(), "client-2.key", &new_key);
    let rotated: Value = serde_json::from_str(&gateway.cli_ok(
        &[
            "credential",
            "rotate",
            "k8s-cert",
            "--client-cert",
            new_cert.to_str().unwrap(),
            "--client-key",
            new_key_path.to_str().unwrap(),
            "--output",
            "json",
        ],
        None,
    ))
    .unwrap();
    assert_eq!(rotated["version"], 2, "{rotated}");
    assert_eq!(rotated["kind"], "client_certificate", "{rotated}");
    // The list names each credential's kind (and no secret).
    let listed = gateway.cli_ok(&["credential", "list", "--output", "json"], None);
    let kinds: Vec<(String, String)> = serde_json::from_str::<Vec<Value>>(&listed)
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().into(),
                c["kind"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("k8s-cert".into(), "client_certificate".into())),
        "{listed}"
    );
    assert!(
        kinds.contains(&("k8s-sa".into(), "password".into())),
        "{listed}"
    );
    let table = gateway.cli_ok(&["credential", "list"], None);
    assert!(
        table.contains("KIND") && table.contains("client_certificate"),
        "{table}"
    );
    assert!(
        !listed.contains("BEGIN") && !table.contains("BEGIN"),
        "{listed}"
    );
    let before = fixture.requests().len();
    let output = kubectl(&gateway, dir.path(), "k8s-mtls", token);
    assert!(output.status.success(), "{}", text(&output));
    assert!(fixture.requests().len() > before);

    // The keys stay in the vault, encrypted.
    let export = gateway.cli_ok(&["audit", "export"], None);
    for pem in [&certificates.client_key_pem, &new_key] {
        let body = key_body(pem);
        assert!(!gateway.log().contains(&body));
        assert!(!export.contains(&body));
        assert!(
            files_containing(&gateway.data_dir(), body.as_bytes()).is_empty(),
            "a key in the data dir: {:?}",
            files_containing(&gateway.data_dir(), body.as_bytes())
        );
    }
}
