//! `airlock policy …`: versions through the admin API, `apply --dry-run`
//! (what would change against the live version), and `explain`, offline
//! from files or with `--live` against the server's policy and connections.

use crate::output::{out, outln};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::io::Read;

use airlock_core::config::GatewayConfig;
use airlock_policy::{explain, DecisionInput, Policy};
use airlock_types::{AuthMethod, ConnectionInfo, Identity, IdentityKind, Protocol};

use crate::cli::{GlobalArgs, OutputFormat, PolicyCommand};
use crate::client::AdminClient;
use crate::output::print_list;

pub fn run(command: PolicyCommand, global: &GlobalArgs) -> Result<()> {
    let format = global.output;
    let client = || AdminClient::new(&global.url, global.admin_token.as_deref());
    match command {
        PolicyCommand::Apply {
            file,
            comment,
            dry_run,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            // Validate locally first: the same errors, with the file's name.
            Policy::from_yaml(&text, &file.display().to_string())
                .map_err(|error| anyhow!("{error}"))?;
            if dry_run {
                let live = match client()?.get("/policy") {
                    Ok(record) => Some(record),
                    Err(error)
                        if error
                            .downcast_ref::<crate::client::ApiFailure>()
                            .is_some_and(|failure| failure.status == 404) =>
                    {
                        None
                    }
                    Err(error) => return Err(error),
                };
                let live_text = live
                    .as_ref()
                    .and_then(|record| record["text"].as_str())
                    .unwrap_or("");
                let changes = policy_changes(live_text, &text)?;
                let live_version = live.as_ref().map(|record| record["version"].clone());
                if format == OutputFormat::Json {
                    let mut report = changes.to_json();
                    report["live_version"] = json!(live_version);
                    report["applied"] = json!(false);
                    outln!("{report}");
                } else {
                    match &live_version {
                        Some(version) => outln!(
                            "dry run: {} against the live policy v{version} (nothing applied)",
                            file.display()
                        ),
                        None => outln!(
                            "dry run: {} against no live policy (nothing applied)",
                            file.display()
                        ),
                    }
                    out!("{}", changes.to_text());
                }
                return Ok(());
            }
            let applied = client()?.post("/policy", &json!({"text": text, "comment": comment}))?;
            if format == OutputFormat::Json {
                outln!("{applied}");
            } else {
                outln!(
                    "policy v{} is live ({} rules)",
                    applied["version"],
                    applied["rules"]
                );
            }
        }
        PolicyCommand::History => {
            // The newest version is the live one: say so.
            let mut versions = client()?.get("/policy/versions")?;
            let newest = versions
                .as_array()
                .and_then(|list| list.iter().filter_map(|v| v["version"].as_i64()).max());
            if let Some(list) = versions.as_array_mut() {
                for version in list {
                    let live = version["version"].as_i64() == newest;
                    version["live"] = if format == OutputFormat::Json {
                        serde_json::json!(live)
                    } else {
                        serde_json::json!(if live { "live" } else { "" })
                    };
                }
            }
            print_list(
                format,
                &versions,
                &[
                    ("version", "VERSION"),
                    ("live", "LIVE"),
                    ("created_at", "CREATED"),
                    ("source", "SOURCE"),
                    ("comment", "COMMENT"),
                    ("sha256", "SHA256"),
                ],
            )
        }
        PolicyCommand::Show { version } => {
            let record = match version {
                Some(version) => client()?.get(&format!("/policy/versions/{version}"))?,
                None => client()?.get("/policy")?,
            };
            if format == OutputFormat::Json {
                outln!("{record}");
            } else {
                eprintln!(
                    "# policy v{} ({})",
                    record["version"],
                    record["source"].as_str().unwrap_or("")
                );
                out!("{}", record["text"].as_str().unwrap_or(""));
            }
        }
        PolicyCommand::Diff { from, to } => {
            let client = client()?;
            let text = |record: &Value| record["text"].as_str().unwrap_or("").to_string();
            let old = text(&client.get(&format!("/policy/versions/{from}"))?);
            let new = text(&client.get(&format!("/policy/versions/{to}"))?);
            let diff = line_diff(&old, &new);
            if format == OutputFormat::Json {
                outln!("{}", json!({"from": from, "to": to, "diff": diff}));
            } else {
                outln!("--- policy v{from}\n+++ policy v{to}");
                for line in diff {
                    outln!("{line}");
                }
            }
        }
        PolicyCommand::Rollback { version } => {
            let applied = client()?.post("/policy/rollback", &json!({"version": version}))?;
            if format == OutputFormat::Json {
                outln!("{applied}");
            } else {
                outln!(
                    "policy v{} is live (the content of v{version})",
                    applied["version"]
                );
            }
        }
        PolicyCommand::Explain {
            live,
            config,
            policy,
            identity,
            kind,
            groups,
            connection,
            sql,
        } => {
            let (policy, tags) = if live {
                live_policy_and_tags(&client()?, &connection)?
            } else {
                let (Some(config), Some(policy)) = (config, policy) else {
                    bail!("pass --config and --policy, or --live");
                };
                let (config, _) =
                    GatewayConfig::load(&config).map_err(|error| anyhow!("{error}"))?;
                let policy = Policy::from_file(&policy).map_err(|error| anyhow!("{error}"))?;
                let connection = config
                    .connection(&connection)
                    .ok_or_else(|| anyhow!("connection {connection:?} is not in the config"))?;
                (policy, connection.tags.clone())
            };
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
                name: connection,
                protocol: Protocol::Postgres,
                tags,
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
                outln!("{}", explanation.to_json());
            } else {
                out!("{}", explanation.to_text());
            }
        }
    }
    Ok(())
}

/// The live policy (with its store version) and the tags of `connection`
/// as the server resolves it (config-file and run-time connections).
fn live_policy_and_tags(
    client: &AdminClient,
    connection: &str,
) -> Result<(Policy, std::collections::BTreeMap<String, String>)> {
    let record = client.get("/policy")?;
    let version = record["version"].as_u64().unwrap_or(0);
    let mut policy = Policy::from_yaml(record["text"].as_str().unwrap_or(""), "live")
        .map_err(|error| anyhow!("the live policy v{version} does not load: {error}"))?;
    policy.version = version;
    let connections = client.get("/connections")?;
    let found = connections
        .as_array()
        .into_iter()
        .flatten()
        .find(|item| item["name"] == connection)
        .ok_or_else(|| anyhow!("connection {connection:?} is not configured on the server"))?;
    let tags = serde_json::from_value(found["tags"].clone()).unwrap_or_default();
    Ok((policy, tags))
}

/// What applying a policy would change, rule by rule (by name).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PolicyChanges {
    /// `(live, new)` when the default action differs.
    pub default: Option<(String, String)>,
    pub rules_added: Vec<String>,
    pub rules_removed: Vec<String>,
    pub rules_changed: Vec<String>,
    /// Rules kept in both whose order differs (the order of rules matters
    /// where the policy says which rule's message is shown).
    pub order_changed: bool,
    /// Other top-level sections that differ (`detectors`, `access` …).
    pub sections_changed: Vec<String>,
}

impl PolicyChanges {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn to_json(&self) -> Value {
        json!({
            "default": self.default.as_ref().map(|(from, to)| json!({"from": from, "to": to})),
            "rules_added": self.rules_added,
            "rules_removed": self.rules_removed,
            "rules_changed": self.rules_changed,
            "order_changed": self.order_changed,
            "sections_changed": self.sections_changed,
        })
    }

    fn to_text(&self) -> String {
        if self.is_empty() {
            return "no changes\n".into();
        }
        let mut out = String::new();
        if let Some((from, to)) = &self.default {
            out.push_str(&format!("~ default: {from} -> {to}\n"));
        }
        for name in &self.rules_added {
            out.push_str(&format!("+ rule {name}\n"));
        }
        for name in &self.rules_removed {
            out.push_str(&format!("- rule {name}\n"));
        }
        for name in &self.rules_changed {
            out.push_str(&format!("~ rule {name}\n"));
        }
        if self.order_changed {
            out.push_str("~ the order of rules changed\n");
        }
        for section in &self.sections_changed {
            out.push_str(&format!("~ {section}\n"));
        }
        out
    }
}

/// Compares two policy texts as YAML documents: rules by name, the
/// default, and every other top-level section as a whole. `live` may be
/// empty (no live policy).
pub fn policy_changes(live: &str, new: &str) -> Result<PolicyChanges> {
    let parse = |text: &str, what: &str| -> Result<serde_json::Map<String, Value>> {
        if text.trim().is_empty() {
            return Ok(serde_json::Map::new());
        }
        let value: Value = serde_saphyr::from_str(text)
            .map_err(|error| anyhow!("cannot read the {what} policy as YAML: {error}"))?;
        Ok(value.as_object().cloned().unwrap_or_default())
    };
    let live = parse(live, "live")?;
    let new = parse(new, "new")?;
    let rules = |document: &serde_json::Map<String, Value>| -> Vec<(String, Value)> {
        document
            .get("rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|rule| {
                (
                    rule["name"].as_str().unwrap_or("").to_string(),
                    rule.clone(),
                )
            })
            .collect()
    };
    let (live_rules, new_rules) = (rules(&live), rules(&new));
    let find = |list: &[(String, Value)], name: &str| {
        list.iter()
            .find(|(candidate, _)| candidate == name)
            .map(|(_, rule)| rule.clone())
    };
    let mut changes = PolicyChanges::default();
    let name_of = |document: &serde_json::Map<String, Value>| {
        document
            .get("default")
            .map(|value| {
                value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_string)
            })
            .unwrap_or_else(|| "(none)".into())
    };
    if live.get("default") != new.get("default") {
        changes.default = Some((name_of(&live), name_of(&new)));
    }
    for (name, rule) in &new_rules {
        match find(&live_rules, name) {
            None => changes.rules_added.push(name.clone()),
            Some(old) if &old != rule => changes.rules_changed.push(name.clone()),
            Some(_) => {}
        }
    }
    for (name, _) in &live_rules {
        if find(&new_rules, name).is_none() {
            changes.rules_removed.push(name.clone());
        }
    }
    let kept = |list: &[(String, Value)], other: &[(String, Value)]| -> Vec<String> {
        list.iter()
            .filter(|(name, _)| other.iter().any(|(candidate, _)| candidate == name))
            .map(|(name, _)| name.clone())
            .collect()
    };
    changes.order_changed = kept(&live_rules, &new_rules) != kept(&new_rules, &live_rules);
    let mut sections: Vec<&String> = live.keys().chain(new.keys()).collect();
    sections.sort();
    sections.dedup();
    for section in sections {
        if matches!(section.as_str(), "rules" | "default") {
            continue;
        }
        if live.get(section) != new.get(section) {
            changes.sections_changed.push(section.clone());
        }
    }
    Ok(changes)
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
    use super::{line_diff, policy_changes};

    #[test]
    fn policy_changes_are_found_by_rule_name() {
        let live = "version: 1\ndefault: deny\nrules:\n  - name: a\n    match: {}\n    action: allow\n  - name: b\n    match: {operations: [delete]}\n    action: deny\n  - name: c\n    match: {}\n    action: allow\n";
        let new = "version: 1\ndefault: allow\nrules:\n  - name: a\n    match: {}\n    action: allow\n  - name: b\n    match: {operations: [delete, update]}\n    action: deny\n  - name: d\n    match: {}\n    action: allow\n";
        let changes = policy_changes(live, new).unwrap();
        assert_eq!(changes.default, Some(("deny".into(), "allow".into())));
        assert_eq!(changes.rules_added, ["d"]);
        assert_eq!(changes.rules_removed, ["c"]);
        assert_eq!(changes.rules_changed, ["b"]);
        assert!(!changes.order_changed);
        assert!(policy_changes(live, live).unwrap().to_text() == "no changes\n");
        let all_new = policy_changes("", new).unwrap();
        assert_eq!(all_new.rules_added, ["a", "b", "d"]);
    }

    #[test]
    fn diff_marks_changes() {
        let diff = line_diff("a\nb\nc\n", "a\nx\nc\nd\n");
        assert_eq!(diff, [" a", "-b", "+x", " c", "+d"]);
    }
}
