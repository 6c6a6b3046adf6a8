//! End-to-end tests of OIDC identity through the gateway, against a real
//! OpenID Provider (the `oidc-provider` npm package) started on loopback:
//! an agent gets a token with client credentials and uses it directly as
//! its PostgreSQL password, or exchanges it for an airlock token.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../../airlock-oidc/tests/common/mod.rs"]
#[allow(dead_code)] // shared with airlock-oidc's own tests; this file uses a part
mod provider;

use common::{client, connect, eventually, setup_with_policy, stderr, stdout, ALLOW_ALL};
use serde_json::Value;
use std::time::Duration;

fn oidc_config(provider: &provider::Provider) -> String {
    format!(
        "identity_providers:
  - name: corp
    issuer: {}/
    audiences: [airlock]
    identity_claim: sub
    groups_claim: groups
    agent_client_ids: [agent-7]
    kind: human
    leeway_seconds: 0
",
        provider.issuer
    )
}

fn exchange(
    gateway: &airlock_testkit::GatewayProcess,
    subject: &str,
    connection: &str,
) -> Result<Value, (u16, Value)> {
    let url = format!("http://127.0.0.1:{}/oauth/token", gateway.admin_port);
    match ureq::post(&url).send_form(&[
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        ("subject_token", subject),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        ),
        ("resource", connection),
    ]) {
        Ok(response) => Ok(response.into_json().unwrap()),
        Err(ureq::Error::Status(status, response)) => {
            Err((status, response.into_json().unwrap_or(Value::Null)))
        }
        Err(error) => panic!("token endpoint: {error}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_authenticates_with_its_identity_provider() {
    let provider = provider::Provider::start().await;
    let (_cluster, gateway) = setup_with_policy(&oidc_config(&provider), ALLOW_ALL);

    // A good token from the provider, used directly as the password.
    let token = provider.token("agent-7", "urn:airlock").await;
    let output = gateway.psql(
        &token,
        "agent-7",
        "pg-test",
        "require",
        "select current_user",
    );
    assert!(
        output.status.success(),
        "{}\n{}",
        stderr(&output),
        gateway.log()
    );
    assert_eq!(stdout(&output), "app");
    // … only for the identity it names.
    let output = gateway.psql(&token, "agent-8", "pg-test", "require", "select 1");
    assert!(
        stderr(&output).contains("authentication failed"),
        "{}",
        stderr(&output)
    );

    // Wrong audience, tampered signature: refused.
    let other = provider.token("agent-7", "urn:other").await;
    let output = gateway.psql(&other, "agent-7", "pg-test", "disable", "select 1");
    assert!(
        stderr(&output).contains("authentication failed"),
        "{}",
        stderr(&output)
    );
    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 3;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let output = gateway.psql(&tampered, "agent-7", "pg-test", "disable", "select 1");
    assert!(
        stderr(&output).contains("authentication failed"),
        "{}",
        stderr(&output)
    );

    // Token exchange (RFC 8693): an airlock token scoped to one connection.
    let exchanged = exchange(&gateway, &token, "pg-test").unwrap();
    assert_eq!(
        exchanged["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert_eq!(exchanged["token_type"], "Bearer");
    let lifetime = exchanged["expires_in"].as_i64().unwrap();
    assert!(lifetime > 0 && lifetime <= 900, "{exchanged}");
    let airlock_token = exchanged["access_token"].as_str().unwrap();
    let output = gateway.psql(
        airlock_token,
        "agent-7",
        "pg-test",
        "disable",
        "select 'exchanged'",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let output = gateway.psql(airlock_token, "agent-7", "pg-other", "disable", "select 1");
    assert!(
        !output.status.success(),
        "the exchanged token is scoped to pg-test only"
    );
    let tokens = gateway.cli_ok(&["token", "list", "--output", "json"], None);
    let tokens: Value = serde_json::from_str(&tokens).unwrap();
    assert_eq!(tokens[0]["identity"], "agent-7");
    assert_eq!(tokens[0]["kind"], "agent");
    assert_eq!(
        tokens[0]["groups"],
        serde_json::json!(["agents", "payments"])
    );
    let (status, body) = exchange(&gateway, &other, "pg-test").unwrap_err();
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");

    // An expired token is refused, and a session ends with its token.
    let short = provider.token("agent-7", "urn:airlock:short").await;
    let session = client(&gateway, "agent-7", "pg-test", &short).await;
    assert_eq!(
        session
            .query_one("select 1", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        1
    );
    assert!(
        eventually(20, || session.is_closed()).await,
        "the session outlived its token"
    );
    assert!(connect(&gateway, "agent-7", "pg-test", &short)
        .await
        .is_err());
    let events = common::events(&gateway);
    assert!(events.iter().any(|event| event.kind == "session.end"
        && event.data["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("expired"))));
    assert!(events
        .iter()
        .any(|event| event.kind == "auth.failure" && event.data["reason"] == "oidc_invalid"));
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// `airlock login`: the device authorization flow against the real
/// provider; the stored token then serves personal commands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_with_the_device_flow() {
    use std::io::BufRead;
    let provider = provider::Provider::start().await;
    let (_cluster, gateway) = setup_with_policy(&oidc_config(&provider), ALLOW_ALL);
    let home = tempfile::tempdir().unwrap();
    let mut login = std::process::Command::new(common::binary())
        .args([
            "login",
            "--issuer",
            &provider.issuer,
            "--client-id",
            "airlock-cli",
            "--resource",
            "urn:airlock",
        ])
        .env("AIRLOCK_CONFIG_DIR", home.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let progress = login.stderr.take().unwrap();
    let user_code = tokio::task::spawn_blocking(move || {
        for line in std::io::BufReader::new(progress).lines() {
            let line = line.unwrap();
            if let Some(code) = line.strip_prefix("and confirm the code: ") {
                return code.trim().to_string();
            }
        }
        panic!("airlock login printed no code");
    })
    .await
    .unwrap();
    // A person confirms the code at the provider (its test hook stands in
    // for the browser).
    let approve = format!("{}/__admin/approve-device", provider.issuer);
    let body = serde_json::json!({"user_code": user_code, "account": "alice"});
    tokio::task::spawn_blocking(move || ureq::post(&approve).send_json(body).unwrap())
        .await
        .unwrap();
    let output = tokio::task::spawn_blocking(move || login.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout(&output).starts_with("signed in"),
        "{}",
        stdout(&output)
    );
    let token_file = home.path().join("token.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Personal commands use the stored token: alice is a human from the
    // provider, so she may enroll for MFA.
    let personal = |args: &[&str]| {
        std::process::Command::new(common::binary())
            .args(args)
            .env(
                "AIRLOCK_URL",
                format!("http://127.0.0.1:{}", gateway.admin_port),
            )
            .env("AIRLOCK_CONFIG_DIR", home.path())
            .env_remove("AIRLOCK_TOKEN")
            .env_remove("AIRLOCK_ADMIN_TOKEN")
            .output()
            .unwrap()
    };
    let enrolled = personal(&["mfa", "enroll", "--output", "json"]);
    assert!(enrolled.status.success(), "{}", stderr(&enrolled));
    let enrolled: Value = serde_json::from_str(&stdout(&enrolled)).unwrap();
    assert!(enrolled["otpauth_uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/airlock:alice?"));
    let reviews = personal(&["review", "list", "--output", "json"]);
    assert!(reviews.status.success(), "{}", stderr(&reviews));

    // Without a stored token, the same command has nothing to present.
    std::fs::remove_file(&token_file).unwrap();
    let anonymous = personal(&["mfa", "enroll"]);
    assert!(!anonymous.status.success());
}
