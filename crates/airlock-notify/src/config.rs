//! The `notifications` configuration section: [`NotificationsConfig`] with
//! its [`WebhookConfig`] entries, [`NotificationsConfig::validate`] which
//! reports every problem at once with its location, and
//! [`NotificationsConfig::resolve`] which reads each webhook's HMAC key.
//!
//! This module owns the file shape and the key lookup only; it sends
//! nothing. Keys are never written in the configuration itself: it names an
//! environment variable or a file, so the configuration can be shared and
//! logged.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

use airlock_types::Secret;
use serde::{Deserialize, Serialize};
use url::{Host, Url};

use crate::error::NotifyError;

/// Shortest accepted webhook key: 128 bits. A shorter HMAC key would make
/// forged notifications (fake "approve this" prompts) guessable.
pub const MIN_SECRET_BYTES: usize = 16;

/// The approver-group wildcard: the webhook receives every event.
pub const ALL_GROUPS: &str = "*";

/// The `notifications` section of the gateway configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationsConfig {
    /// Webhooks that receive review and access-request events. Empty (the
    /// default) means no notifications.
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
}

/// One webhook, as written under `notifications.webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Short unique name used in logs and delivery statistics (`dba-slack`):
    /// letters, digits, `-`, `_` and `.`.
    pub name: String,
    /// Where events are POSTed. Must be `https`, except on loopback
    /// (`127.0.0.0/8`, `::1`, `localhost`) for tests and local relays; must
    /// not carry credentials.
    pub url: String,
    /// The webhook receives events whose approver group is in this list;
    /// `"*"` means every group. Must not be empty.
    pub approver_groups: Vec<String>,
    /// Body format: `json` (the event itself, the default) or `slack` (a
    /// Slack-compatible message with the approve and deny commands).
    #[serde(default)]
    pub format: WebhookFormat,
    /// Name of the environment variable holding the HMAC-SHA256 signing
    /// key. Exactly one of `secret_env` and `secret_file` is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// Path of a file holding the HMAC-SHA256 signing key (trailing
    /// whitespace ignored). Exactly one of `secret_env` and `secret_file` is
    /// required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
    /// Link template shown in Slack messages, `{id}` replaced by the review
    /// or request id: `https://airlock.example/reviews/{id}`. Optional; when
    /// absent the event's own `url`, if any, is shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_url: Option<String>,
}

/// The body format of a webhook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// The [`crate::NotificationEvent`] as JSON, `{"event": kind, ...}`.
    #[default]
    Json,
    /// `{"text": ..., "blocks": [...]}` for Slack incoming webhooks (and the
    /// many chat tools that accept the same shape).
    Slack,
}

/// One problem in the `notifications` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Where: `notifications.webhooks[0].url`.
    pub location: String,
    /// What is wrong, lowercase, no trailing period.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// A webhook with its signing key read: what [`crate::Notifier::start`]
/// takes.
#[derive(Debug, Clone)]
pub struct ResolvedWebhook {
    /// The configuration entry.
    pub config: WebhookConfig,
    /// The HMAC-SHA256 key (at least [`MIN_SECRET_BYTES`]).
    pub secret: Secret<Vec<u8>>,
}

impl NotificationsConfig {
    /// Every problem in the section, each located as
    /// `notifications.webhooks[i].<field>`. Empty means valid.
    pub fn validate(&self) -> Vec<ConfigProblem> {
        validate_webhooks(&self.webhooks, "notifications.webhooks")
    }

    /// Validates, then reads each webhook's key from the process environment
    /// or its file.
    pub fn resolve(&self) -> Result<Vec<ResolvedWebhook>, NotifyError> {
        self.resolve_with(|name| std::env::var(name).ok())
    }

    /// [`NotificationsConfig::resolve`] with an injected environment, for
    /// tests and for callers that read variables once at start-up.
    pub fn resolve_with(
        &self,
        environment: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<ResolvedWebhook>, NotifyError> {
        let problems = self.validate();
        if !problems.is_empty() {
            return Err(NotifyError::Config(problems));
        }
        self.webhooks
            .iter()
            .map(|webhook| {
                Ok(ResolvedWebhook {
                    config: webhook.clone(),
                    secret: webhook.resolve_secret(&environment)?,
                })
            })
            .collect()
    }
}

impl WebhookConfig {
    /// A JSON webhook for `groups`, signed with the key in `secret_env`.
    pub fn new(
        name: impl Into<String>,
        url: impl Into<String>,
        approver_groups: Vec<String>,
        secret_env: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            url: url.into(),
            approver_groups,
            format: WebhookFormat::Json,
            secret_env: Some(secret_env.into()),
            secret_file: None,
            review_url: None,
        }
    }

    /// Whether events for `approver_group` go to this webhook.
    pub fn wants_group(&self, approver_group: &str) -> bool {
        self.approver_groups
            .iter()
            .any(|group| group == ALL_GROUPS || group == approver_group)
    }

    /// Every problem with this entry, located under `location`
    /// (`notifications.webhooks[0]`).
    pub fn validate(&self, location: &str) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let mut problem = |field: &str, message: String| {
            problems.push(ConfigProblem {
                location: format!("{location}.{field}"),
                message,
            });
        };

        if self.name.is_empty() {
            problem("name", "must not be empty".to_owned());
        } else if !self
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            problem(
                "name",
                format!(
                    "{:?} may contain only letters, digits, '-', '_' and '.'",
                    self.name
                ),
            );
        }
        if let Err(message) = check_delivery_url(&self.url) {
            problem("url", message);
        }
        if self.approver_groups.is_empty() {
            problem(
                "approver_groups",
                "must name at least one group (or \"*\" for all)".to_owned(),
            );
        }
        for (index, group) in self.approver_groups.iter().enumerate() {
            if group.trim().is_empty() {
                problem(
                    &format!("approver_groups[{index}]"),
                    "must not be empty".to_owned(),
                );
            }
        }
        match (&self.secret_env, &self.secret_file) {
            (None, None) => problem(
                "secret_env",
                "a signing key is required: set secret_env or secret_file".to_owned(),
            ),
            (Some(_), Some(_)) => problem(
                "secret_file",
                "set only one of secret_env and secret_file".to_owned(),
            ),
            (Some(variable), None) if variable.trim().is_empty() => {
                problem("secret_env", "must not be empty".to_owned());
            }
            (None, Some(path)) if path.as_os_str().is_empty() => {
                problem("secret_file", "must not be empty".to_owned());
            }
            _ => {}
        }
        if let Some(template) = &self.review_url {
            if let Err(message) = check_link_template(template) {
                problem("review_url", message);
            }
        }
        problems
    }

    /// Reads the signing key named by `secret_env` or `secret_file`.
    pub fn resolve_secret(
        &self,
        environment: impl Fn(&str) -> Option<String>,
    ) -> Result<Secret<Vec<u8>>, NotifyError> {
        let key = match (&self.secret_env, &self.secret_file) {
            (Some(variable), _) => {
                environment(variable).ok_or_else(|| NotifyError::SecretEnvMissing {
                    webhook: self.name.clone(),
                    variable: variable.clone(),
                })?
            }
            (None, Some(path)) => {
                std::fs::read_to_string(path).map_err(|source| NotifyError::SecretFile {
                    webhook: self.name.clone(),
                    path: path.clone(),
                    source,
                })?
            }
            (None, None) => {
                return Err(NotifyError::Config(vec![ConfigProblem {
                    location: format!("webhook {:?}.secret_env", self.name),
                    message: "a signing key is required: set secret_env or secret_file".to_owned(),
                }]))
            }
        };
        // Files usually end with a newline; keys never do.
        let key = key.trim_end().as_bytes().to_vec();
        if key.len() < MIN_SECRET_BYTES {
            return Err(NotifyError::WeakSecret {
                webhook: self.name.clone(),
                minimum: MIN_SECRET_BYTES,
            });
        }
        Ok(Secret::new(key))
    }
}

/// Validates a list of webhooks located under `location`
/// (`notifications.webhooks`), including duplicate names.
pub fn validate_webhooks(webhooks: &[WebhookConfig], location: &str) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    for (index, webhook) in webhooks.iter().enumerate() {
        let entry = format!("{location}[{index}]");
        problems.extend(webhook.validate(&entry));
        if !webhook.name.is_empty() && !names.insert(webhook.name.as_str()) {
            problems.push(ConfigProblem {
                location: format!("{entry}.name"),
                message: format!("duplicate webhook name {:?}", webhook.name),
            });
        }
    }
    problems
}

/// A URL airlock will POST to: `https`, or `http` on loopback only. Plain
/// HTTP elsewhere would expose signed approval prompts (statements, ids) on
/// the path. Credentials in the URL are refused: they would end up in logs.
pub(crate) fn check_delivery_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|error| format!("not a valid URL: {error}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials".to_owned());
    }
    if url.fragment().is_some() {
        return Err("must not have a fragment".to_owned());
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err("must use https (plain http is allowed on loopback only)".to_owned()),
        other => Err(format!("must use https, got scheme {other:?}")),
    }
}

/// The review link template: an `http(s)` URL once `{id}` is filled in. It
/// is only shown to people, never fetched, so plain http is allowed.
fn check_link_template(template: &str) -> Result<(), String> {
    let url = Url::parse(&template.replace("{id}", "id"))
        .map_err(|error| format!("not a valid URL: {error}"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(format!(
            "must be an http(s) link, got scheme {:?}",
            url.scheme()
        ));
    }
    Ok(())
}

/// Whether the URL's host is `localhost`, `127.0.0.0/8` or `::1`.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(address)) => address.is_loopback(),
        Some(Host::Ipv6(address)) => address.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
webhooks:
  - name: dba-slack
    url: http://127.0.0.1:9999/hook
    approver_groups: [dba]
    format: slack
    secret_env: AIRLOCK_WEBHOOK_SECRET
    review_url: https://airlock.example/reviews/{id}
  - name: audit-json
    url: https://hooks.example.com/airlock
    approver_groups: ["*"]
    secret_file: /etc/airlock/webhook.key
"#;

    fn parse(text: &str) -> Result<NotificationsConfig, serde_saphyr::Error> {
        serde_saphyr::from_str(text)
    }

    #[test]
    fn the_documented_example_parses_and_validates() {
        let config = parse(EXAMPLE).unwrap();
        assert_eq!(config.validate(), vec![]);
        let slack = &config.webhooks[0];
        assert_eq!(slack.format, WebhookFormat::Slack);
        assert_eq!(slack.approver_groups, vec!["dba".to_owned()]);
        assert_eq!(slack.secret_env.as_deref(), Some("AIRLOCK_WEBHOOK_SECRET"));
        let json = &config.webhooks[1];
        assert_eq!(json.format, WebhookFormat::Json, "json is the default");
        assert!(json.wants_group("anything"));
        assert!(slack.wants_group("dba"));
        assert!(!slack.wants_group("security"));
        assert!(!slack.wants_group("DBA"), "group names are exact");
    }

    #[test]
    fn unknown_fields_and_formats_are_refused() {
        let typo = "webhooks:\n  - name: a\n    url: https://x.example/\n    approver_groups: [dba]\n    secret_env: K\n    approver_group: [dba]\n";
        assert!(parse(typo).is_err());
        let top = "webhook: []\n";
        assert!(parse(top).is_err());
        let format = "webhooks:\n  - name: a\n    url: https://x.example/\n    approver_groups: [dba]\n    secret_env: K\n    format: teams\n";
        assert!(parse(format).is_err());
        assert_eq!(parse("{}").unwrap(), NotificationsConfig::default());
    }

    #[test]
    fn validate_reports_every_problem_with_its_location() {
        let config = NotificationsConfig {
            webhooks: vec![
                WebhookConfig {
                    name: "bad name".to_owned(),
                    url: "http://hooks.example.com/x".to_owned(),
                    approver_groups: vec![],
                    format: WebhookFormat::Json,
                    secret_env: None,
                    secret_file: None,
                    review_url: Some("ftp://x/{id}".to_owned()),
                },
                WebhookConfig {
                    name: "dup".to_owned(),
                    url: "https://user:pw@hooks.example.com/x".to_owned(),
                    approver_groups: vec![" ".to_owned()],
                    format: WebhookFormat::Slack,
                    secret_env: Some("A".to_owned()),
                    secret_file: Some("/k".into()),
                    review_url: None,
                },
                WebhookConfig::new("dup", "gopher://x", vec!["dba".to_owned()], ""),
            ],
        };
        let problems: Vec<String> = config.validate().iter().map(ToString::to_string).collect();
        let expected = [
            "notifications.webhooks[0].name: \"bad name\" may contain only letters, digits, '-', '_' and '.'",
            "notifications.webhooks[0].url: must use https (plain http is allowed on loopback only)",
            "notifications.webhooks[0].approver_groups: must name at least one group (or \"*\" for all)",
            "notifications.webhooks[0].secret_env: a signing key is required: set secret_env or secret_file",
            "notifications.webhooks[0].review_url: must be an http(s) link, got scheme \"ftp\"",
            "notifications.webhooks[1].url: must not contain credentials",
            "notifications.webhooks[1].approver_groups[0]: must not be empty",
            "notifications.webhooks[1].secret_file: set only one of secret_env and secret_file",
            "notifications.webhooks[2].url: must use https, got scheme \"gopher\"",
            "notifications.webhooks[2].secret_env: must not be empty",
            "notifications.webhooks[2].name: duplicate webhook name \"dup\"",
        ];
        assert_eq!(problems, expected);
    }

    #[test]
    fn loopback_http_only() {
        for ok in [
            "http://127.0.0.1:9999/hook",
            "http://127.1.2.3/",
            "http://localhost:80/x",
            "http://[::1]:8080/x",
            "https://hooks.slack.com/services/T/B/X",
        ] {
            assert!(check_delivery_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1/hook",
            "http://localhost.evil.example/",
            "http://[::2]/",
            "not a url",
            "https://h.example/#frag",
        ] {
            assert!(check_delivery_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_resolve_from_env_or_file() {
        let directory = std::env::temp_dir().join(format!("airlock-notify-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let key_file = directory.join("webhook.key");
        std::fs::write(&key_file, "file-secret-0123456789\n").unwrap();

        let mut from_file =
            WebhookConfig::new("f", "https://h.example/", vec!["*".to_owned()], "X");
        from_file.secret_env = None;
        from_file.secret_file = Some(key_file.clone());
        let config = NotificationsConfig {
            webhooks: vec![
                WebhookConfig::new(
                    "e",
                    "https://h.example/",
                    vec!["dba".to_owned()],
                    "HOOK_KEY",
                ),
                from_file,
            ],
        };
        let resolved = config
            .resolve_with(|name| (name == "HOOK_KEY").then(|| "env-secret-0123456789".to_owned()))
            .unwrap();
        assert_eq!(
            resolved[0].secret.expose().as_slice(),
            b"env-secret-0123456789"
        );
        assert_eq!(
            resolved[1].secret.expose().as_slice(),
            b"file-secret-0123456789"
        );
        assert_eq!(
            format!("{:?}", resolved[0]).matches("env-secret").count(),
            0
        );

        let missing = config.resolve_with(|_| None).unwrap_err();
        assert!(
            matches!(missing, NotifyError::SecretEnvMissing { ref variable, .. } if variable == "HOOK_KEY")
        );
        let weak = config
            .resolve_with(|_| Some("short".to_owned()))
            .unwrap_err();
        assert!(matches!(weak, NotifyError::WeakSecret { .. }));

        std::fs::remove_file(&key_file).unwrap();
        let unreadable = config
            .resolve_with(|_| Some("env-secret-0123456789".to_owned()))
            .unwrap_err();
        assert!(matches!(unreadable, NotifyError::SecretFile { .. }));
        std::fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn resolve_refuses_an_invalid_configuration() {
        let config = NotificationsConfig {
            webhooks: vec![WebhookConfig::new(
                "a",
                "http://example.com/",
                vec!["dba".to_owned()],
                "K",
            )],
        };
        let error = config
            .resolve_with(|_| Some("0123456789abcdef".to_owned()))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid notifications configuration: notifications.webhooks[0].url: must use https (plain http is allowed on loopback only)"
        );
    }
}
