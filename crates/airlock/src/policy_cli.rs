//! `airlock policy …`: versions through the admin API, and `explain`
//! offline from files.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::io::Read;

use airlock_gateway::config::GatewayConfig;
use airlock_policy::{explain, DecisionInput, Policy};
use airlock_types::{AuthMethod, ConnectionInfo, Identity, IdentityKind, Protocol};

use crate::cli::{GlobalArgs, OutputFormat, PolicyCommand};
use crate::client::AdminClient;
use crate::output::print_list;

pub fn run(command: PolicyCommand, global: &GlobalArgs) -> Result<()> {
    let format = global.output;
    let client = || AdminClient::new(&global.url, global.admin_token.as_deref());
    match command {
        PolicyCommand::Apply { file, comment } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            // Validate locally first: the same errors, with the file's name.
            Policy::from_yaml(&text, &file.display().to_string())
                .map_err(|error| anyhow!("{error}"))?;
            let applied = client()?.post("/policy", &json!({"text": text, "comment": comment}))?;
            if format == OutputFormat::Json {
                println!("{applied}");
            } else {
                println!(
                    "policy v{} is live ({} rules)",
                    applied["version"], applied["rules"]
                );
            }
        }
        PolicyCommand::History => print_list(
            format,
            &client()?.get("/policy/versions")?,
            &[
                ("version", "VERSION"),
                ("created_at", "CREATED"),
                ("source", "SOURCE"),
                ("comment", "COMMENT"),
                ("sha256", "SHA256"),
            ],
        ),
        PolicyCommand::Show { version } => {
            let record = match version {
                Some(version) => client()?.get(&format!("/policy/versions/{version}"))?,
                None => client()?.get("/policy")?,
            };
            if format == OutputFormat::Json {
                println!("{record}");
            } else {
                eprintln!(
                    "# policy v{} ({})",
                    record["version"],
                    record["source"].as_str().unwrap_or("")
                );
                print!("{}", record["text"].as_str().unwrap_or(""));
            }
        }
        PolicyCommand::Diff { from, to } => {
            let client = client()?;
            let text = |record: &Value| record["text"].as_str().unwrap_or("").to_string();
            let old = text(&client.get(&format!("/policy/versions/{from}"))?);
            let new = text(&client.get(&format!("/policy/versions/{to}"))?);
            let diff = line_diff(&old, &new);
            if format == OutputFormat::Json {
                println!("{}", json!({"from": from, "to": to, "diff": diff}));
            } else {
                println!("--- policy v{from}\n+++ policy v{to}");
                for line in diff {
                    println!("{line}");
                }
            }
        }
        PolicyCommand::Rollback { version } => {
            let applied = client()?.post("/policy/rollback", &json!({"version": version}))?;
            if format == OutputFormat::Json {
                println!("{applied}");
            } else {
                println!(
                    "policy v{} is live (the content of v{version})",
                    applied["version"]
                );
            }
        }
        PolicyCommand::Explain {
            config,
            policy,
            identity,
            kind,
            groups,
            connection,
            sql,
        } => {
            let (config, _) = GatewayConfig::load(&config).map_err(|error| anyhow!("{error}"))?;
            let policy = Policy::from_file(&policy).map_err(|error| anyhow!("{error}"))?;
            let connection = config
                .connection(&connection)
                .ok_or_else(|| anyhow!("connection {connection:?} is not in the config"))?;
            let kind = IdentityKind::parse(&kind)
                .ok_or_else(|| anyhow!("kind {kind:?} is not agent, human or service"))?;
            let sql = if sql == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("cannot read SQL from standard input")?;
                text
            } else {
                sql
            };
            if sql.trim().is_empty() {
                bail!("no SQL to explain");
            }
            let identity = Identity {
                name: identity,
                kind,
                groups,
                auth_method: AuthMethod::AirlockToken {
                    token_id: "explain".into(),
                },
                expires_at: i64::MAX,
            };
            let connection = ConnectionInfo {
                name: connection.name.clone(),
                protocol: Protocol::Postgres,
                tags: connection.tags.clone(),
            };
            let command = airlock_sql::classify(airlock_sql::Dialect::Postgres, &sql);
            let explanation = explain(
                &policy,
                &DecisionInput {
                    identity: &identity,
                    connection: &connection,
                    command: &command,
                    now_unix: airlock_store::now_unix(),
                },
            );
            if format == OutputFormat::Json {
                println!("{}", explanation.to_json());
            } else {
                print!("{}", explanation.to_text());
            }
        }
    }
    Ok(())
}

/// A line diff (longest common subsequence): ` ` kept, `-` removed, `+` added.
pub fn line_diff(old: &str, new: &str) -> Vec<String> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let mut lengths = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lengths[i][j] = if a[i] == b[j] {
                lengths[i + 1][j + 1] + 1
            } else {
                lengths[i + 1][j].max(lengths[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            out.push(format!(" {}", a[i]));
            i += 1;
            j += 1;
        } else if lengths[i + 1][j] >= lengths[i][j + 1] {
            out.push(format!("-{}", a[i]));
            i += 1;
        } else {
            out.push(format!("+{}", b[j]));
            j += 1;
        }
    }
    out.extend(a[i..].iter().map(|line| format!("-{line}")));
    out.extend(b[j..].iter().map(|line| format!("+{line}")));
    out
}

#[cfg(test)]
mod tests {
    use super::line_diff;

    #[test]
    fn diff_marks_changes() {
        let diff = line_diff("a\nb\nc\n", "a\nx\nc\nd\n");
        assert_eq!(diff, [" a", "-b", "+x", " c", "+d"]);
    }
}
