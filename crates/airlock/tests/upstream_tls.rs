//! The gateway's connection to the upstream over TLS: `require` (encrypt,
//! no certificate check) and `verify-full` (the server's certificate checked
//! against a CA file and the host name), against a real PostgreSQL with
//! `ssl = on`.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use airlock_testkit::{GatewayProcess, PgCluster};
use common::{stderr, stdout, ALLOW_ALL};

#[test]
fn the_upstream_connection_can_be_encrypted_and_verified() {
    // A certificate for the server, readable by the postgres user.
    let (certs, cert, key) = airlock_testkit::server_certificate();

    let cluster = PgCluster::start_with_config(&format!(
        "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
        cert.display(),
        key.display()
    ));
    let config = format!(
        "connections:
  - name: pg-tls
    protocol: postgres
    address: 127.0.0.1:{port}
    database: appdb
    credential: app
    tls: require
  - name: pg-verified
    protocol: postgres
    address: localhost:{port}
    database: appdb
    credential: app
    tls: verify-full
    ca_file: {ca}
  - name: pg-wrong-ca
    protocol: postgres
    address: localhost:{port}
    database: appdb
    credential: app
    tls: verify-full
    ca_file: {wrong}
",
        port = cluster.port,
        ca = cert.display(),
        wrong = {
            let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
            let path = certs.path().join("other-ca.crt");
            std::fs::write(&path, other.cert.pem()).unwrap();
            path.display().to_string()
        },
    );
    let gateway = GatewayProcess::start_with_policy(common::binary(), &config, ALLOW_ALL);
    gateway.set_credential("app", "app", &cluster.role_password("app"));
    let (_id, token) =
        gateway.issue_token("agent-7", &["pg-tls", "pg-verified", "pg-wrong-ca"], "15m");

    let ssl_in_use = "select ssl from pg_stat_ssl where pid = pg_backend_pid()";
    for connection in ["pg-tls", "pg-verified"] {
        let output = gateway.psql(&token, "agent-7", connection, "disable", ssl_in_use);
        assert!(
            output.status.success(),
            "{connection}: {}\n{}",
            stderr(&output),
            gateway.log()
        );
        assert_eq!(
            stdout(&output),
            "t",
            "{connection} is not encrypted upstream"
        );
    }
    // A certificate that the configured CA did not sign is refused.
    let output = gateway.psql(&token, "agent-7", "pg-wrong-ca", "disable", "select 1");
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("TLS handshake"),
        "{}",
        stderr(&output)
    );
}
