//! `airlock config check [FILE]`: validates a gateway config file and the
//! policy file it names, offline, with the same loader and validator
//! `airlock serve` uses, and prints every problem at once, one line each
//! with its location (`file:line: message`).
//!
//! It never opens the store nor contacts anything: it must work on a laptop
//! before the file is deployed.

use anyhow::Result;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

use airlock_core::config::{relative_to, GatewayConfig};
use airlock_policy::Policy;

use crate::cli::OutputFormat;
use crate::output::outln;

/// One problem, located.
struct Problem {
    line: Option<u64>,
    message: String,
}

/// One checked file.
struct Checked {
    path: PathBuf,
    kind: &'static str,
    problems: Vec<Problem>,
    /// What it holds, when it loaded (`4 connections`, `3 rules`).
    summary: Option<String>,
}

pub fn run(file: Option<&Path>, format: OutputFormat) -> Result<()> {
    let config_path = file.map_or_else(|| PathBuf::from("airlock.yaml"), Path::to_path_buf);
    let files = check(&config_path);
    let problems: usize = files.iter().map(|file| file.problems.len()).sum();
    if format == OutputFormat::Json {
        let report: Vec<Value> = files
            .iter()
            .map(|file| {
                json!({
                    "file": file.path.display().to_string(),
                    "kind": file.kind,
                    "ok": file.problems.is_empty(),
                    "problems": file.problems.iter().map(|problem| json!({
                        "line": problem.line,
                        "message": problem.message,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        outln!("{}", json!({"ok": problems == 0, "files": report}));
    } else {
        for file in &files {
            for problem in &file.problems {
                match problem.line {
                    Some(line) => outln!("{}:{line}: {}", file.path.display(), problem.message),
                    None => outln!("{}: {}", file.path.display(), problem.message),
                }
            }
        }
        for file in &files {
            match (&file.summary, file.problems.len()) {
                (Some(summary), 0) => {
                    outln!("ok: {} {} ({summary})", file.kind, file.path.display())
                }
                (_, 0) => outln!("ok: {} {}", file.kind, file.path.display()),
                (_, count) => outln!(
                    "{count} problem{} in {} {}",
                    if count == 1 { "" } else { "s" },
                    file.kind,
                    file.path.display()
                ),
            }
        }
    }
    if problems > 0 {
        return Err(crate::output::AlreadyReported(format!("{problems} problems")).into());
    }
    Ok(())
}

/// Checks the config file and, when it names one, the policy file.
fn check(config_path: &Path) -> Vec<Checked> {
    let mut files = Vec::new();
    let text = std::fs::read_to_string(config_path);
    let (config_problems, policy_name, summary) = match GatewayConfig::load(config_path) {
        Ok((config, _)) => (
            Vec::new(),
            config.policy.clone(),
            Some(format!(
                "{} connection{}, {} identity provider{}",
                config.connections.len(),
                if config.connections.len() == 1 {
                    ""
                } else {
                    "s"
                },
                config.identity_providers.len(),
                if config.identity_providers.len() == 1 {
                    ""
                } else {
                    "s"
                }
            )),
        ),
        Err(error) => {
            // A file that parses but does not validate still names its
            // policy: check that too, so one run shows every problem.
            let policy_name = text
                .as_deref()
                .ok()
                .and_then(|text| serde_saphyr::from_str::<GatewayConfig>(text).ok())
                .and_then(|config| config.policy);
            let problems = error
                .problems
                .into_iter()
                .map(|problem| Problem {
                    line: problem.line.and_then(|line| u64::try_from(line).ok()),
                    message: problem.message,
                })
                .collect();
            (problems, policy_name, None)
        }
    };
    files.push(Checked {
        path: config_path.to_path_buf(),
        kind: "config",
        problems: config_problems,
        summary,
    });
    if let Some(name) = policy_name {
        let policy_path = relative_to(config_path, &name);
        let (problems, summary) = check_policy(&policy_path);
        files.push(Checked {
            path: policy_path,
            kind: "policy",
            problems,
            summary,
        });
    }
    files
}

fn check_policy(path: &Path) -> (Vec<Problem>, Option<String>) {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            return (
                vec![Problem {
                    line: None,
                    message: format!("cannot read the policy file (named by `policy:`): {error}"),
                }],
                None,
            )
        }
    };
    match Policy::from_yaml(&text, &path.display().to_string()) {
        Ok(policy) => (
            Vec::new(),
            Some(format!(
                "{} rule{}, default {}",
                policy.rules.len(),
                if policy.rules.len() == 1 { "" } else { "s" },
                match policy.default {
                    airlock_policy::DefaultAction::Allow => "allow",
                    airlock_policy::DefaultAction::Deny => "deny",
                }
            )),
        ),
        Err(error) => (
            error
                .problems
                .into_iter()
                .map(|problem| Problem {
                    line: (problem.line > 0).then_some(problem.line),
                    message: match problem.rule {
                        Some(rule) => format!("rule \"{rule}\": {}", problem.message),
                        None => problem.message,
                    },
                })
                .collect(),
            None,
        ),
    }
}
