//! `airlock doctor`: checks a gateway's surroundings from its config file
//! and data directory, offline (no admin API, no store): each configured
//! upstream is reachable over TCP, each identity provider serves its
//! discovery document, the certificates in use are valid and do not expire
//! within 14 days, and the data directory is owner-only (folders `0700`,
//! files `0600`).
//!
//! It reads files and opens connections only; it never changes anything,
//! and never reads the store or the master key's content. Run-time
//! connections (added with `airlock connection add`) live in the store and
//! are not checked.

use anyhow::Result;
use serde_json::json;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use airlock_core::config::{relative_to, GatewayConfig};

use crate::cli::{DoctorArgs, OutputFormat};
use crate::output::outln;

/// Certificates expiring sooner than this are reported.
const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Fail => "fail",
        }
    }
}

/// One check's result.
struct Finding {
    check: &'static str,
    target: String,
    status: Status,
    detail: String,
}

pub fn run(args: &DoctorArgs, format: OutputFormat) -> Result<()> {
    let timeout = Duration::from_secs(args.timeout.max(1));
    let mut findings = Vec::new();
    match GatewayConfig::load(&args.config) {
        Ok((config, _)) => {
            findings.push(Finding {
                check: "config",
                target: args.config.display().to_string(),
                status: Status::Ok,
                detail: "loads and validates".into(),
            });
            check_upstreams(&config, timeout, &mut findings);
            check_identity_providers(&config, timeout, &mut findings);
            check_certificates(&config, &args.config, &args.data_dir, &mut findings);
        }
        Err(error) => findings.push(Finding {
            check: "config",
            target: args.config.display().to_string(),
            status: Status::Fail,
            detail: format!(
                "{} (run `airlock config check` for every problem)",
                error.to_string().trim_end().replace('\n', "; ")
            ),
        }),
    }
    check_data_dir(&args.data_dir, &mut findings);
    print(&findings, format);
    let failed = findings
        .iter()
        .filter(|finding| finding.status == Status::Fail)
        .count();
    if failed > 0 {
        return Err(crate::output::AlreadyReported(format!("{failed} checks failed")).into());
    }
    Ok(())
}

fn print(findings: &[Finding], format: OutputFormat) {
    if format == OutputFormat::Json {
        let list: Vec<_> = findings
            .iter()
            .map(|finding| {
                json!({
                    "check": finding.check,
                    "target": finding.target,
                    "status": finding.status.name(),
                    "detail": finding.detail,
                })
            })
            .collect();
        outln!("{}", serde_json::Value::from(list));
        return;
    }
    for finding in findings {
        let status = match finding.status {
            Status::Ok => "ok  ",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        };
        outln!(
            "{status}  {:<17} {}: {}",
            finding.check,
            finding.target,
            finding.detail
        );
    }
    let count = |status| findings.iter().filter(|f| f.status == status).count();
    outln!(
        "{} ok, {} warnings, {} failed",
        count(Status::Ok),
        count(Status::Warn),
        count(Status::Fail)
    );
}

/// `host:port` of a connection: its `address`, or for the protocols with
/// a `url` (http, kubernetes) the url's authority with the scheme's port.
fn upstream_address(connection: &airlock_core::config::ConnectionConfig) -> String {
    let Some(url) = connection.url.as_deref() else {
        return connection.address.clone();
    };
    let (rest, port) = match url.strip_prefix("https://") {
        Some(rest) => (rest, 443),
        None => (url.strip_prefix("http://").unwrap_or(url), 80),
    };
    let authority = rest.split('/').next().unwrap_or("");
    let has_port = authority.rsplit_once(':').is_some_and(|(_, port)| {
        port.bytes().all(|b| b.is_ascii_digit()) && !authority.ends_with(']')
    });
    if has_port {
        authority.to_string()
    } else {
        format!("{authority}:{port}")
    }
}

fn check_upstreams(config: &GatewayConfig, timeout: Duration, findings: &mut Vec<Finding>) {
    for connection in &config.connections {
        let address = upstream_address(connection);
        let target = format!("{} ({address})", connection.name);
        let (status, detail) = match tcp_connect(&address, timeout) {
            Ok(()) => (Status::Ok, "reachable (TCP connect)".to_string()),
            Err(error) => (Status::Fail, format!("cannot connect: {error}")),
        };
        findings.push(Finding {
            check: "upstream",
            target,
            status,
            detail,
        });
    }
}

fn tcp_connect(address: &str, timeout: Duration) -> Result<(), String> {
    let addresses: Vec<_> = address
        .to_socket_addrs()
        .map_err(|error| format!("cannot resolve: {error}"))?
        .collect();
    let mut last = "no address".to_string();
    for socket in addresses {
        match TcpStream::connect_timeout(&socket, timeout) {
            Ok(_) => return Ok(()),
            Err(error) => last = format!("{socket}: {error}"),
        }
    }
    Err(last)
}

fn check_identity_providers(
    config: &GatewayConfig,
    timeout: Duration,
    findings: &mut Vec<Finding>,
) {
    let agent = ureq::AgentBuilder::new().timeout(timeout).build();
    for provider in &config.identity_providers {
        let url = format!(
            "{}/.well-known/openid-configuration",
            provider.issuer.trim_end_matches('/')
        );
        let (status, detail) = match agent.get(&url).call() {
            Ok(response) => match response.into_json::<serde_json::Value>() {
                Ok(document) => {
                    let issuer = document["issuer"].as_str().unwrap_or("");
                    if issuer != provider.issuer {
                        (
                            Status::Fail,
                            format!("{url} names issuer {issuer:?}, not {:?}", provider.issuer),
                        )
                    } else if document["jwks_uri"].as_str().is_none() {
                        (Status::Fail, format!("{url} has no jwks_uri"))
                    } else {
                        (Status::Ok, format!("{url} answers"))
                    }
                }
                Err(error) => (Status::Fail, format!("{url} is not JSON: {error}")),
            },
            Err(ureq::Error::Status(code, _)) => {
                (Status::Fail, format!("{url} answered HTTP {code}"))
            }
            Err(ureq::Error::Transport(error)) => {
                (Status::Fail, format!("cannot fetch {url}: {error}"))
            }
        };
        findings.push(Finding {
            check: "identity provider",
            target: provider.name.clone(),
            status,
            detail,
        });
    }
}

fn check_certificates(
    config: &GatewayConfig,
    config_path: &Path,
    data_dir: &Path,
    findings: &mut Vec<Finding>,
) {
    let mut files = Vec::new();
    match &config.tls {
        Some(tls) => files.push(("client TLS", relative_to(config_path, &tls.cert))),
        None => {
            let generated = data_dir.join(airlock_core::tls::GENERATED_CERT);
            if generated.exists() {
                files.push(("client TLS", generated));
            } else {
                findings.push(Finding {
                    check: "certificate",
                    target: generated.display().to_string(),
                    status: Status::Warn,
                    detail: "no `tls:` in the config and no generated certificate yet (the first start generates a self-signed one)".into(),
                });
            }
        }
    }
    for connection in &config.connections {
        if let Some(ca_file) = &connection.ca_file {
            files.push(("upstream CA", relative_to(config_path, ca_file)));
        }
    }
    let now = airlock_store::now_unix();
    for (what, path) in files {
        for (status, detail) in certificate_findings(&path, now) {
            findings.push(Finding {
                check: "certificate",
                target: format!("{what} {}", path.display()),
                status,
                detail,
            });
        }
    }
}

/// Checks every certificate in a PEM file at `now` (Unix seconds).
fn certificate_findings(path: &Path, now: i64) -> Vec<(Status, String)> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(error) => return vec![(Status::Fail, format!("cannot read: {error}"))],
    };
    let certificates: Vec<_> = rustls_pemfile::certs(&mut text.as_slice()).collect();
    if certificates.is_empty() {
        return vec![(Status::Fail, "no PEM certificate in the file".into())];
    }
    let warning = i64::try_from(EXPIRY_WARNING.as_secs()).unwrap_or(i64::MAX);
    certificates
        .into_iter()
        .enumerate()
        .map(|(index, certificate)| {
            let label = if index == 0 {
                String::new()
            } else {
                format!("certificate {}: ", index + 1)
            };
            let validity = certificate
                .map_err(|error| error.to_string())
                .and_then(|der| {
                    airlock_core::cert_expiry::validity(der.as_ref())
                        .ok_or_else(|| "not a readable X.509 certificate".into())
                });
            match validity {
                Err(error) => (Status::Fail, format!("{label}{error}")),
                Ok((not_before, _)) if not_before > now => (
                    Status::Fail,
                    format!("{label}not valid before {}", timestamp(not_before)),
                ),
                Ok((_, not_after)) if not_after <= now => (
                    Status::Fail,
                    format!("{label}expired {}", timestamp(not_after)),
                ),
                Ok((_, not_after)) if not_after - now < warning => (
                    Status::Warn,
                    format!(
                        "{label}expires {} (in {} days)",
                        timestamp(not_after),
                        (not_after - now) / 86_400
                    ),
                ),
                Ok((_, not_after)) => (
                    Status::Ok,
                    format!("{label}valid until {}", timestamp(not_after)),
                ),
            }
        })
        .collect()
}

fn timestamp(unix: i64) -> String {
    crate::output::timestamp(&json!(unix))
}

fn check_data_dir(data_dir: &Path, findings: &mut Vec<Finding>) {
    if !data_dir.exists() {
        findings.push(Finding {
            check: "data dir",
            target: data_dir.display().to_string(),
            status: Status::Warn,
            detail: "does not exist yet (`airlock serve` creates it, 0700)".into(),
        });
        return;
    }
    let mut loose = Vec::new();
    let mut checked = 0usize;
    walk(data_dir, &mut loose, &mut checked);
    if loose.is_empty() {
        findings.push(Finding {
            check: "data dir",
            target: data_dir.display().to_string(),
            status: Status::Ok,
            detail: format!("owner-only ({checked} entries: folders 0700, files 0600)"),
        });
    }
    for (path, mode, is_dir) in loose {
        findings.push(Finding {
            check: "permissions",
            target: path.display().to_string(),
            status: Status::Fail,
            detail: format!(
                "mode {mode:04o}: other users may read it; `chmod {} {}`",
                if is_dir { "700" } else { "600" },
                path.display()
            ),
        });
    }
}

/// Collects every entry under `dir` (itself included) that group or others
/// may access. Symbolic links are not followed.
fn walk(dir: &Path, loose: &mut Vec<(std::path::PathBuf, u32, bool)>, checked: &mut usize) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(metadata) = std::fs::symlink_metadata(dir) else {
            return;
        };
        *checked += 1;
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            loose.push((dir.to_path_buf(), mode, metadata.is_dir()));
        }
        if !metadata.is_dir() {
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut paths: Vec<_> = entries.flatten().map(|entry| entry.path()).collect();
        paths.sort();
        for path in paths {
            walk(&path, loose, checked);
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (dir, loose, checked);
    }
}

#[cfg(test)]
mod tests {
    use super::{certificate_findings, Status};
    use airlock_core::cert_expiry::validity;

    fn certificate(days_valid: i64) -> String {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(days_valid);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn certificates_expiring_soon_warn_and_expired_ones_fail() {
        let dir = tempfile::tempdir().unwrap();
        let now = airlock_store::now_unix();
        for (days, expected) in [(90, Status::Ok), (5, Status::Warn), (-2, Status::Fail)] {
            let path = dir.path().join(format!("cert-{days}.pem"));
            std::fs::write(&path, certificate(days)).unwrap();
            let findings = certificate_findings(&path, now);
            assert_eq!(findings.len(), 1);
            assert_eq!(findings[0].0, expected, "{days} days: {}", findings[0].1);
        }
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate").unwrap();
        assert_eq!(certificate_findings(&garbage, now)[0].0, Status::Fail);
    }

    #[test]
    fn validity_reads_both_time_forms_and_refuses_garbage() {
        let pem = certificate(30);
        let der = rustls_pemfile::certs(&mut pem.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        let (not_before, not_after) = validity(der.as_ref()).unwrap();
        assert!(not_after - not_before > 30 * 86_400);
        assert!(validity(&[0x30, 0x82, 0xff]).is_none());
        assert!(validity(&[]).is_none());
    }
}
