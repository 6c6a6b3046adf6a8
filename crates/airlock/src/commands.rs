//! Dispatch of CLI commands. Admin commands go through the admin API only:
//! none opens the store file, so they are safe while a server runs.

use crate::output::outln;
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::io::Read;
use std::path::Path;

use crate::cli::{
    AuditCommand, Cli, Command, ConnectionCommand, CredentialCommand, SessionCommand, TokenCommand,
};
use crate::client::AdminClient;
use crate::output::{print_list, print_object};

pub fn run(cli: Cli) -> Result<()> {
    let mut global = cli.global;
    if global.token.is_none() {
        // A token from `airlock login`, when one is stored and still valid.
        global.token = crate::login::stored_token();
    }
    let format = global.output;
    let client = || AdminClient::new(&global.url, global.admin_token.as_deref());
    match cli.command {
        Command::Serve(args) => crate::serve::run(args),
        Command::Config(crate::cli::ConfigCommand::Check { file }) => {
            crate::config_check::run(file.as_deref(), format)
        }
        Command::Doctor(args) => crate::doctor::run(&args, format),
        Command::AdminToken(crate::cli::AdminTokenCommand::Rotate { data_dir, store }) => {
            rotate_admin_token(&data_dir, &store, global.admin_token.as_deref(), format)
        }
        Command::Status => status(&global.url, global.admin_token.as_deref(), format),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut script = Vec::new();
            clap_complete::generate(
                shell,
                &mut crate::cli::Cli::command(),
                "airlock",
                &mut script,
            );
            crate::output::out!("{}", String::from_utf8_lossy(&script));
            Ok(())
        }
        Command::Credential(command) => {
            let client = client()?;
            match command {
                CredentialCommand::Set {
                    name,
                    username,
                    client_cert,
                    client_key,
                    ..
                } => {
                    let (username, password) = match (client_cert, client_key) {
                        (Some(cert), Some(key)) => (
                            airlock_core::admin::CLIENT_CERTIFICATE_USER.to_string(),
                            read_client_certificate(&cert, &key)?,
                        ),
                        _ => (username.unwrap_or_default(), read_password()?),
                    };
                    let info = client.post(
                        "/credentials",
                        &json!({"name": name, "username": username, "password": password}),
                    )?;
                    print_object(format, &info, CREDENTIAL_COLUMNS);
                }
                CredentialCommand::Rotate {
                    name,
                    client_cert,
                    client_key,
                    ..
                } => {
                    let password = match (client_cert, client_key) {
                        (Some(cert), Some(key)) => read_client_certificate(&cert, &key)?,
                        _ => read_password()?,
                    };
                    let info = client.post(
                        &format!("/credentials/{name}/rotate"),
                        &json!({"password": password}),
                    )?;
                    print_object(format, &info, CREDENTIAL_COLUMNS);
                }
                CredentialCommand::List => {
                    print_list(format, &client.get("/credentials")?, CREDENTIAL_COLUMNS);
                }
                CredentialCommand::Delete { name } => {
                    let outcome = client.delete(&format!("/credentials/{}", encode(&name)))?;
                    if format == crate::cli::OutputFormat::Json {
                        outln!("{outcome}");
                    } else {
                        outln!("credential {name} deleted");
                    }
                }
            }
            Ok(())
        }
        Command::Kubeconfig(args) => crate::kube_cli::kubeconfig(&args),
        Command::Token(TokenCommand::KubectlCredential { .. }) => {
            crate::kube_cli::kubectl_credential(global.token.as_deref())
        }
        Command::Token(command) => {
            let client = client()?;
            match command {
                TokenCommand::Issue {
                    identity,
                    kind,
                    groups,
                    connections,
                    ttl,
                } => {
                    let issued = client.post(
                        "/tokens",
                        &json!({
                            "identity": identity, "kind": kind, "groups": groups,
                            "connections": connections, "ttl": ttl,
                        }),
                    )?;
                    if format == crate::cli::OutputFormat::Json {
                        outln!("{issued}");
                    } else {
                        print_object(format, &issued, TOKEN_ISSUE_COLUMNS);
                        eprintln!("\nThe token is shown only now; airlock keeps only its hash.");
                    }
                }
                TokenCommand::List => print_list(format, &client.get("/tokens")?, TOKEN_COLUMNS),
                // Served above, without the admin API.
                TokenCommand::KubectlCredential { .. } => {
                    crate::kube_cli::kubectl_credential(global.token.as_deref())?
                }
                TokenCommand::Revoke { id } => {
                    let result = client.delete(&format!("/tokens/{id}"))?;
                    print_object(
                        format,
                        &result,
                        &[("revoked", "revoked"), ("sessions_closed", "closed")],
                    );
                }
            }
            Ok(())
        }
        Command::Connection(command) => {
            let client = client()?;
            match command {
                ConnectionCommand::Add {
                    name,
                    address,
                    database,
                    credential,
                    tags,
                    tls,
                } => {
                    let mut tag_map = serde_json::Map::new();
                    for tag in tags {
                        let Some((key, value)) = tag.split_once('=') else {
                            bail!("tag {tag:?} is not key=value");
                        };
                        tag_map.insert(key.to_string(), json!(value));
                    }
                    let info = client.post(
                        "/connections",
                        &json!({
                            "name": name, "address": address, "database": database,
                            "credential": credential, "tags": tag_map, "tls": tls,
                        }),
                    )?;
                    print_object(format, &info, CONNECTION_COLUMNS);
                }
                ConnectionCommand::List => {
                    print_list(format, &client.get("/connections")?, CONNECTION_COLUMNS)
                }
                ConnectionCommand::Remove { name } => {
                    let outcome = client.delete(&format!("/connections/{}", encode(&name)))?;
                    if format == crate::cli::OutputFormat::Json {
                        outln!("{outcome}");
                    } else {
                        outln!(
                            "connection {name} removed ({} live sessions closed)",
                            outcome["sessions_closed"]
                        );
                    }
                }
            }
            Ok(())
        }
        Command::Session(SessionCommand::List {
            identity,
            connection,
            since,
            limit,
        }) => {
            let client = client()?;
            let mut query = vec![format!("limit={limit}")];
            for (key, value) in [
                ("identity", identity),
                ("connection", connection),
                ("since", since),
            ] {
                if let Some(value) = value {
                    query.push(format!("{key}={}", encode(&value)));
                }
            }
            let list = client.get(&format!("/sessions?{}", query.join("&")))?;
            print_list(format, &list, SESSION_COLUMNS);
            Ok(())
        }
        Command::Session(SessionCommand::Show { id }) => {
            let detail = client()?.get(&format!("/sessions/{}", encode(&id)))?;
            if format == crate::cli::OutputFormat::Json {
                outln!("{detail}");
            } else {
                crate::transcript::print_show(&detail);
            }
            Ok(())
        }
        Command::Session(SessionCommand::Replay { id }) => {
            let detail = client()?.get(&format!("/sessions/{}", encode(&id)))?;
            if format == crate::cli::OutputFormat::Json {
                outln!("{detail}");
            } else {
                crate::transcript::print_replay(&detail);
            }
            Ok(())
        }
        Command::Policy(command) => crate::policy_cli::run(command, &global),
        Command::Auth(crate::cli::AuthCommand::Unlock { source, identity }) => {
            let outcome = client()?.post(
                "/auth/unlock",
                &json!({"source": source, "identity": identity}),
            )?;
            print_object(
                format,
                &outcome,
                &[
                    ("source", "source"),
                    ("identity", "identity"),
                    ("lockouts_ended", "lockouts ended"),
                ],
            );
            Ok(())
        }
        Command::Login(args) => crate::login::run(&args, format),
        Command::Mcp(crate::cli::McpCommand::Serve(args)) => {
            crate::mcp_stdio::run(&args, global.token.as_deref())
        }
        Command::Mcp(crate::cli::McpCommand::Tools(command)) => {
            crate::mcp_tools_cli::run(command, &client()?, format)
        }
        Command::Review(command) => {
            use crate::cli::ReviewCommand;
            let personal = |action: &str| {
                AdminClient::personal(
                    &global.url,
                    global.token.as_deref(),
                    global.admin_token.as_deref(),
                    action,
                )
            };
            let reader = || {
                AdminClient::new(
                    &global.url,
                    global.token.as_deref().or(global.admin_token.as_deref()),
                )
            };
            match command {
                ReviewCommand::List { status } => {
                    let path = if status == "all" {
                        "/reviews".to_string()
                    } else {
                        format!("/reviews?status={}", encode(&status))
                    };
                    print_list(
                        format,
                        &reader()?.get(&path)?,
                        &[
                            ("id", "REVIEW"),
                            ("status", "STATUS"),
                            ("identity", "IDENTITY"),
                            ("connection", "CONNECTION"),
                            ("rule", "RULE"),
                            ("statement", "STATEMENT"),
                            ("approvers", "APPROVERS"),
                            ("expires_at", "EXPIRES"),
                        ],
                    );
                }
                ReviewCommand::Show { id } => {
                    let review = reader()?.get(&format!("/reviews/{}", encode(&id)))?;
                    print_object(
                        format,
                        &review,
                        &[
                            ("id", "review"),
                            ("status", "status"),
                            ("identity", "requested by"),
                            ("connection", "connection"),
                            ("statement", "statement"),
                            ("rule", "rule"),
                            ("policy_version", "policy"),
                            ("approvers", "approvers"),
                            ("min_approvals", "approvals"),
                            ("require_mfa", "mfa"),
                            ("created_at", "created"),
                            ("expires_at", "expires"),
                            ("decisions", "decisions"),
                            ("reason", "reason"),
                        ],
                    );
                }
                ReviewCommand::Approve { id, comment, totp } => {
                    let outcome = personal("approving")?.post(
                        &format!("/reviews/{}/approve", encode(&id)),
                        &json!({"comment": comment, "totp": totp}),
                    )?;
                    if format == crate::cli::OutputFormat::Json {
                        outln!("{outcome}");
                    } else {
                        outln!(
                            "review {id}: {} ({} of {} approvals)",
                            outcome["status"].as_str().unwrap_or(""),
                            outcome["approvals"],
                            outcome["min_approvals"]
                        );
                    }
                }
                ReviewCommand::Deny { id, reason } => {
                    let outcome = personal("denying")?.post(
                        &format!("/reviews/{}/deny", encode(&id)),
                        &json!({"reason": reason}),
                    )?;
                    if format == crate::cli::OutputFormat::Json {
                        outln!("{outcome}");
                    } else {
                        outln!("review {id}: {}", outcome["status"].as_str().unwrap_or(""));
                    }
                }
            }
            Ok(())
        }
        Command::Access(command) => {
            use crate::cli::AccessCommand;
            match command {
                AccessCommand::Request {
                    connection,
                    duration,
                    reason,
                } => {
                    let client = AdminClient::personal(
                        &global.url,
                        global.token.as_deref(),
                        global.admin_token.as_deref(),
                        "an access request",
                    )?;
                    let outcome = client.post(
                        "/access/requests",
                        &json!({"connection": connection, "duration": duration, "reason": reason}),
                    )?;
                    if format == crate::cli::OutputFormat::Json {
                        outln!("{outcome}");
                    } else if outcome["status"] == "granted" {
                        outln!(
                            "access granted ({}) until {}",
                            outcome["grant_id"].as_str().unwrap_or(""),
                            crate::output::timestamp(&outcome["expires_at"])
                        );
                    } else {
                        outln!(
                            "request {} is pending; approvers ({}) decide with: {}",
                            outcome["request_id"].as_str().unwrap_or(""),
                            outcome["approvers"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(|v| v.as_str())
                                .collect::<Vec<_>>()
                                .join(", "),
                            outcome["approve_with"].as_str().unwrap_or("")
                        );
                    }
                }
                AccessCommand::List { all } => {
                    let client = AdminClient::new(
                        &global.url,
                        global.token.as_deref().or(global.admin_token.as_deref()),
                    )?;
                    let listing = client.get(if all { "/access?all=true" } else { "/access" })?;
                    if format == crate::cli::OutputFormat::Json {
                        outln!("{listing}");
                    } else {
                        outln!("grants:");
                        print_list(
                            format,
                            &listing["grants"],
                            &[
                                ("id", "GRANT"),
                                ("identity", "IDENTITY"),
                                ("connection", "CONNECTION"),
                                ("rule", "RULE"),
                                ("created_at", "CREATED"),
                                ("expires_at", "EXPIRES"),
                                ("revoked_at", "REVOKED"),
                            ],
                        );
                        outln!("pending requests:");
                        print_list(
                            format,
                            &listing["requests"],
                            &[
                                ("id", "REQUEST"),
                                ("identity", "IDENTITY"),
                                ("statement", "REQUEST"),
                                ("approvers", "APPROVERS"),
                            ],
                        );
                    }
                }
                AccessCommand::Approve { id, comment, totp } => {
                    return run(Cli {
                        global,
                        command: Command::Review(crate::cli::ReviewCommand::Approve {
                            id,
                            comment,
                            totp,
                        }),
                    });
                }
                AccessCommand::Deny { id, reason } => {
                    return run(Cli {
                        global,
                        command: Command::Review(crate::cli::ReviewCommand::Deny { id, reason }),
                    });
                }
                AccessCommand::Revoke { id } => {
                    let outcome = client()?.delete(&format!("/access/grants/{}", encode(&id)))?;
                    print_object(
                        format,
                        &outcome,
                        &[("revoked", "revoked"), ("sessions_closed", "closed")],
                    );
                }
            }
            Ok(())
        }
        Command::Mfa(crate::cli::MfaCommand::Enroll) => {
            let client = AdminClient::personal(
                &global.url,
                global.token.as_deref(),
                global.admin_token.as_deref(),
                "MFA enrolment",
            )?;
            let enrolled = client.post("/mfa/enroll", &json!({}))?;
            if format == crate::cli::OutputFormat::Json {
                outln!("{enrolled}");
            } else {
                outln!("{}", enrolled["otpauth_uri"].as_str().unwrap_or(""));
                eprintln!("\nAdd this URI to your authenticator app; it is shown only now.");
            }
            Ok(())
        }
        Command::Audit(AuditCommand::Verify) => {
            let report = client()?.get("/audit/verify")?;
            if format == crate::cli::OutputFormat::Json {
                outln!("{report}");
            } else if report["ok"] == true {
                outln!(
                    "OK: {} events verified{}",
                    report["events_checked"],
                    report["checkpoint_through_id"]
                        .as_i64()
                        .map(|id| format!(" (from the pruning checkpoint after event {id})"))
                        .unwrap_or_default()
                );
            } else {
                outln!(
                    "BROKEN at event {}: {}",
                    report["first_broken"]["event_id"],
                    report["first_broken"]["problem"].as_str().unwrap_or("")
                );
            }
            if report["ok"] != true {
                bail!("the audit chain is broken");
            }
            Ok(())
        }
        Command::Audit(AuditCommand::Export { since, .. }) => {
            let client = client()?;
            let mut after = 0i64;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            loop {
                let mut path = format!("/audit/events?after_id={after}&limit=5000");
                if let Some(since) = &since {
                    path.push_str(&format!("&since={}", encode(since)));
                }
                let page = client.get(&path)?;
                let events = page.as_array().cloned().unwrap_or_default();
                for event in &events {
                    use std::io::Write;
                    writeln!(out, "{event}")?;
                    after = event["id"].as_i64().unwrap_or(after);
                }
                if events.len() < 5000 {
                    break;
                }
            }
            // Flush here, not in the drop that would swallow a write error
            // (a closed pipe then ends quietly in `report_error`).
            std::io::Write::flush(&mut out)?;
            Ok(())
        }
        Command::Audit(AuditCommand::Prune) => {
            let report = client()?.post("/audit/prune", &json!({}))?;
            print_object(
                format,
                &report,
                &[("pruned_events", "pruned"), ("through_id", "through id")],
            );
            Ok(())
        }
        Command::Session(SessionCommand::Live) => {
            let client = client()?;
            print_list(
                format,
                &client.get("/sessions/live")?,
                &[
                    ("session_id", "SESSION"),
                    ("identity", "IDENTITY"),
                    ("connection", "CONNECTION"),
                    ("client_address", "CLIENT"),
                    ("tls", "TLS"),
                    ("started_at", "STARTED"),
                ],
            );
            Ok(())
        }
    }
}

const SESSION_COLUMNS: &[(&str, &str)] = &[
    ("session_id", "SESSION"),
    ("identity", "IDENTITY"),
    ("connection", "CONNECTION"),
    ("client_address", "CLIENT"),
    ("started_at", "STARTED"),
    ("duration_ms", "MS"),
    ("commands", "COMMANDS"),
    ("ended_by", "ENDED BY"),
    ("live", "LIVE"),
];

/// Percent-encodes a query or path value.
fn encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

const CREDENTIAL_COLUMNS: &[(&str, &str)] = &[
    ("name", "NAME"),
    ("username", "USERNAME"),
    ("kind", "KIND"),
    ("version", "VERSION"),
    ("created_at", "CREATED"),
    ("rotated_at", "ROTATED"),
];

const TOKEN_ISSUE_COLUMNS: &[(&str, &str)] = &[
    ("id", "id"),
    ("token", "token"),
    ("identity", "identity"),
    ("kind", "kind"),
    ("groups", "groups"),
    ("connections", "connections"),
    ("expires_at", "expires"),
];

const TOKEN_COLUMNS: &[(&str, &str)] = &[
    ("id", "ID"),
    ("identity", "IDENTITY"),
    ("kind", "KIND"),
    ("groups", "GROUPS"),
    ("connections", "CONNECTIONS"),
    ("expires_at", "EXPIRES"),
    ("revoked_at", "REVOKED"),
];

const CONNECTION_COLUMNS: &[(&str, &str)] = &[
    ("name", "NAME"),
    ("address", "ADDRESS"),
    ("database", "DATABASE"),
    ("credential", "CREDENTIAL"),
    ("tags", "TAGS"),
    ("tls", "TLS"),
    ("source", "SOURCE"),
];

/// Reads a password from standard input, without a trailing newline.
/// A client certificate and its key as one PEM bundle (the credential's
/// secret); the gateway checks that it holds both.
fn read_client_certificate(cert: &std::path::Path, key: &std::path::Path) -> Result<String> {
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let mut bundle = read(cert)?;
    if !bundle.ends_with('\n') {
        bundle.push('\n');
    }
    bundle.push_str(&read(key)?);
    Ok(bundle)
}

fn read_password() -> Result<String> {
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .context("cannot read the password from standard input")?;
    let password = password.strip_suffix('\n').unwrap_or(&password);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        bail!("no password on standard input");
    }
    Ok(password.to_string())
}

/// `airlock status`: what the server at `url` runs. `/healthz` and
/// `/readyz` need no token; the live policy version is read with the admin
/// token when one is set. Fails when the server cannot be reached or is not
/// ready, so scripts can use the exit status.
fn status(url: &str, admin_token: Option<&str>, format: crate::cli::OutputFormat) -> Result<()> {
    let base = url.trim_end_matches('/');
    let agent = ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(10))
        .build();
    let open_get = |path: &str| -> Result<(u16, serde_json::Value)> {
        match agent.get(&format!("{base}{path}")).call() {
            Ok(response) => Ok((response.status(), response.into_json().unwrap_or_default())),
            Err(ureq::Error::Status(status, response)) => {
                Ok((status, response.into_json().unwrap_or_default()))
            }
            Err(ureq::Error::Transport(error)) => Err(anyhow::anyhow!(
                "cannot reach the admin API at {base}: {error} (is `airlock serve` running? set AIRLOCK_URL)"
            )),
        }
    };
    let (_, health) = open_get("/healthz")?;
    let (ready_status, ready) = open_get("/readyz")?;
    let is_ready = ready_status == 200 && ready["status"] == "ready";
    let policy = match admin_token.filter(|token| !token.is_empty()) {
        Some(token) => match AdminClient::new(url, Some(token))?.get("/policy") {
            Ok(record) => json!({
                "version": record["version"],
                "source": record["source"],
                "created_at": record["created_at"],
            }),
            Err(error) => json!({"error": format!("{error:#}")}),
        },
        None => json!({"error": "not shown: set AIRLOCK_ADMIN_TOKEN"}),
    };
    let report = json!({
        "url": base,
        "server_version": health["version"],
        "cli_version": env!("CARGO_PKG_VERSION"),
        "ready": is_ready,
        "not_ready_reason": ready["reason"],
        "live_sessions": ready["sessions"],
        "audit_index_lag": ready["audit_index_lag"],
        "policy": policy,
    });
    if format == crate::cli::OutputFormat::Json {
        outln!("{report}");
    } else {
        let text = |value: &serde_json::Value| match value {
            serde_json::Value::Null => "-".to_string(),
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        outln!("server:        {base}");
        outln!(
            "version:       airlock {} (this CLI: {})",
            text(&health["version"]),
            env!("CARGO_PKG_VERSION")
        );
        if is_ready {
            outln!("ready:         yes (store answers, recording admits commands)");
        } else {
            outln!("ready:         NO: {}", text(&ready["reason"]));
        }
        outln!("live sessions: {}", text(&ready["sessions"]));
        outln!(
            "audit index:   {} events behind",
            text(&ready["audit_index_lag"])
        );
        match policy.get("error") {
            Some(error) => outln!("policy:        {}", text(error)),
            None => outln!(
                "policy:        v{} ({}, applied {})",
                text(&policy["version"]),
                text(&policy["source"]),
                crate::output::timestamp(&policy["created_at"])
            ),
        }
    }
    if !is_ready {
        return Err(crate::output::AlreadyReported(format!(
            "the gateway is not ready: {}",
            ready["reason"].as_str().unwrap_or("no reason given")
        ))
        .into());
    }
    Ok(())
}

/// `airlock admin-token rotate`: replaces the stored admin token (the
/// store is opened directly: this is for the host, not the API).
fn rotate_admin_token(
    data_dir: &Path,
    store: &str,
    from_env: Option<&str>,
    format: crate::cli::OutputFormat,
) -> Result<()> {
    if !crate::store_open::is_shared(store) && !data_dir.join("airlock.db").exists() {
        anyhow::bail!(
            "no gateway store in {}: pass the data dir the gateway runs with (--data-dir)",
            data_dir.display()
        );
    }
    let store = crate::store_open::open(store, data_dir, true)?;
    let generated = airlock_core::admin::rotate_admin_token(&*store, from_env)?;
    let rotated = airlock_core::events::AdminTokenRotated {
        generated: generated.is_some(),
    };
    store.append_event(airlock_core::events::record(None, Some("host"), &rotated))?;
    match (format, generated) {
        (crate::cli::OutputFormat::Json, generated) => outln!(
            "{}",
            serde_json::json!({"rotated": true, "token": generated})
        ),
        (crate::cli::OutputFormat::Text, Some(token)) => outln!(
            "admin token rotated; the new one (shown once):\n\n    {token}\n\n  export AIRLOCK_ADMIN_TOKEN={token}"
        ),
        (crate::cli::OutputFormat::Text, None) => {
            outln!("admin token rotated: AIRLOCK_ADMIN_TOKEN is now the admin token")
        }
    }
    Ok(())
}
