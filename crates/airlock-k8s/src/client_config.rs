//! The documents on the client side of the gateway: the kubeconfig
//! `airlock kubeconfig` prints (its server is the gateway's URL for one
//! connection; its user runs `airlock token kubectl-credential` as an
//! `exec` credential plugin, so no long-lived secret lands in
//! `~/.kube/config`) and the `ExecCredential`
//! (`client.authentication.k8s.io/v1`) that command prints. Pure.
//!
//! The kubeconfig is written as YAML whose every scalar is a JSON string
//! (valid YAML), so no name or path can break out of its field.

use serde_json::{json, Value};

/// The API version of the exec credential plugin protocol airlock speaks.
pub const EXEC_CREDENTIAL_API_VERSION: &str = "client.authentication.k8s.io/v1";

/// What goes into a kubeconfig for one connection.
#[derive(Debug, Clone)]
pub struct KubeconfigSpec<'a> {
    /// The connection's name (also the cluster, user and context name,
    /// prefixed `airlock-`).
    pub connection: &'a str,
    /// The gateway's base URL (`https://gw:18080`), without the connection.
    pub gateway_url: &'a str,
    /// PEM of the CA that signed the gateway's certificate, embedded as
    /// `certificate-authority-data`.
    pub ca_pem: Option<&'a [u8]>,
    /// The `airlock` executable the plugin runs.
    pub airlock_command: &'a str,
    /// Arguments after `token kubectl-credential` (`--connection NAME`
    /// and the like).
    pub extra_args: Vec<String>,
    /// The namespace of the context, if any.
    pub namespace: Option<&'a str>,
}

fn quoted(text: &str) -> String {
    Value::String(text.to_string()).to_string()
}

/// Standard base64 (RFC 4648, padded), for `certificate-authority-data`.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b0 = chunk.first().copied().unwrap_or(0);
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let triple = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        for (index, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if index <= chunk.len() {
                let sextet = usize::try_from((triple >> shift) & 63).unwrap_or(0);
                out.push(char::from(ALPHABET.get(sextet).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The kubeconfig text.
pub fn kubeconfig(spec: &KubeconfigSpec<'_>) -> String {
    let name = quoted(&format!("airlock-{}", spec.connection));
    let server = quoted(&format!(
        "{}/{}",
        spec.gateway_url.trim_end_matches('/'),
        spec.connection
    ));
    let mut args = vec![quoted("token"), quoted("kubectl-credential")];
    args.extend(spec.extra_args.iter().map(|arg| quoted(arg)));
    let mut text = String::from("apiVersion: v1\nkind: Config\nclusters:\n");
    text.push_str(&format!(
        "  - name: {name}\n    cluster:\n      server: {server}\n"
    ));
    if let Some(pem) = spec.ca_pem {
        text.push_str(&format!(
            "      certificate-authority-data: {}\n",
            quoted(&base64(pem))
        ));
    }
    text.push_str(&format!(
        "contexts:\n  - name: {name}\n    context:\n      cluster: {name}\n      user: {name}\n"
    ));
    if let Some(namespace) = spec.namespace {
        text.push_str(&format!("      namespace: {}\n", quoted(namespace)));
    }
    text.push_str(&format!(
        "current-context: {name}\nusers:\n  - name: {name}\n    user:\n      exec:\n"
    ));
    text.push_str(&format!(
        "        apiVersion: {}\n",
        quoted(EXEC_CREDENTIAL_API_VERSION)
    ));
    text.push_str(&format!(
        "        command: {}\n",
        quoted(spec.airlock_command)
    ));
    text.push_str(&format!("        args: [{}]\n", args.join(", ")));
    text.push_str("        interactiveMode: \"Never\"\n        provideClusterInfo: false\n");
    text
}

/// The `ExecCredential` for `token` (and its expiry, RFC 3339, if known).
pub fn exec_credential(token: &str, expires_at: Option<&str>) -> Value {
    let mut status = json!({"token": token});
    if let Some(expires_at) = expires_at {
        status["expirationTimestamp"] = json!(expires_at);
    }
    json!({
        "apiVersion": EXEC_CREDENTIAL_API_VERSION,
        "kind": "ExecCredential",
        "status": status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn kubeconfig_points_at_the_gateway_and_runs_the_plugin() {
        let text = kubeconfig(&KubeconfigSpec {
            connection: "k8s-prod",
            gateway_url: "https://gw:18080/",
            ca_pem: Some(b"PEM"),
            airlock_command: "/usr/bin/airlock",
            extra_args: vec!["--connection".into(), "k8s-prod".into()],
            namespace: Some("default"),
        });
        assert!(
            text.contains("server: \"https://gw:18080/k8s-prod\""),
            "{text}"
        );
        assert!(
            text.contains("certificate-authority-data: \"UEVN\""),
            "{text}"
        );
        assert!(text
            .contains("args: [\"token\", \"kubectl-credential\", \"--connection\", \"k8s-prod\"]"));
        assert!(text.contains("current-context: \"airlock-k8s-prod\""));
        let credential = exec_credential("t0k", Some("2030-01-01T00:00:00Z"));
        assert_eq!(credential["kind"], "ExecCredential");
        assert_eq!(credential["status"]["token"], "t0k");
    }
}
