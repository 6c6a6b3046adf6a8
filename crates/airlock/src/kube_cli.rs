//! The Kubernetes client side of the CLI: `airlock kubeconfig` (a
//! kubeconfig for one `protocol: kubernetes` connection whose server is the
//! gateway and whose user is an exec credential plugin) and `airlock token
//! kubectl-credential` (that plugin: an `ExecCredential` with the caller's
//! short-lived token). Neither talks to the admin API, and the kubeconfig
//! never holds a token.

use anyhow::{bail, Context, Result};

use airlock_k8s::client_config::{exec_credential, kubeconfig as kubeconfig_text, KubeconfigSpec};

use crate::cli::KubeconfigArgs;
use crate::output::out;

/// `airlock kubeconfig`.
pub fn kubeconfig(args: &KubeconfigArgs) -> Result<()> {
    let ca_pem = match &args.ca_file {
        Some(path) => {
            Some(std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?)
        }
        None => None,
    };
    let airlock_command = match &args.airlock_command {
        Some(command) => command.clone(),
        None => std::env::current_exe()
            .context("cannot tell where this airlock executable is; pass --airlock-command")?
            .to_string_lossy()
            .into_owned(),
    };
    let gateway = args.gateway.trim_end_matches('/');
    if !(gateway.starts_with("https://") || gateway.starts_with("http://")) {
        bail!("--gateway {gateway:?} must start with https:// or http://");
    }
    let text = kubeconfig_text(&KubeconfigSpec {
        connection: &args.connection,
        gateway_url: gateway,
        ca_pem: ca_pem.as_deref(),
        airlock_command: &airlock_command,
        extra_args: vec!["--connection".into(), args.connection.clone()],
        namespace: args.namespace.as_deref(),
    });
    out!("{text}");
    Ok(())
}

/// `airlock token kubectl-credential`: the token from `AIRLOCK_TOKEN` or
/// `airlock login`, as kubectl's exec plugin protocol wants it.
pub fn kubectl_credential(token: Option<&str>) -> Result<()> {
    let Some(token) = token.filter(|token| !token.trim().is_empty()) else {
        bail!("no token: set AIRLOCK_TOKEN (airlock token issue …) or sign in with airlock login");
    };
    let credential = exec_credential(token.trim(), None);
    out!("{}\n", serde_json::to_string(&credential)?);
    Ok(())
}
