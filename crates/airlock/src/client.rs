//! A small blocking client for the admin API.

use anyhow::{anyhow, Context, Result};
use serde_json::Value;

/// The admin API refused a request: its HTTP status and message. Kept as a
/// type so `--output json` can report the status.
#[derive(Debug)]
pub struct ApiFailure {
    pub status: u16,
    pub message: String,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (HTTP {})", self.message, self.status)
    }
}

impl std::error::Error for ApiFailure {}

/// How an approver gets a token of their own, for messages that ask for one.
pub const OWN_TOKEN_HINT: &str = "set AIRLOCK_TOKEN to your own token or run `airlock login`; \
an admin issues one with `airlock token issue --identity alice --kind human --group dba` \
(a human's token needs no --connection)";

/// Talks to the admin API with the admin token, or a person's own token.
pub struct AdminClient {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl AdminClient {
    /// A client with the admin token.
    pub fn new(base: &str, token: Option<&str>) -> Result<Self> {
        let token = token.filter(|token| !token.is_empty()).ok_or_else(|| {
            anyhow!("no admin token: set AIRLOCK_ADMIN_TOKEN or pass --admin-token")
        })?;
        Ok(Self::with_token(base, token))
    }

    /// A client with the caller's own token, for what is personal
    /// (`action`: "approving", "MFA enrolment" …). The admin token cannot
    /// stand in: the error says so when only the admin token is set.
    pub fn personal(
        base: &str,
        token: Option<&str>,
        admin_token: Option<&str>,
        action: &str,
    ) -> Result<Self> {
        match token.filter(|token| !token.is_empty()) {
            Some(token) => Ok(Self::with_token(base, token)),
            None if admin_token.is_some_and(|token| !token.is_empty()) => Err(anyhow!(
                "{action} needs your own token, not the admin token \
                 (AIRLOCK_ADMIN_TOKEN is set, but it cannot act for a person): {OWN_TOKEN_HINT}"
            )),
            None => Err(anyhow!("{action} needs your own token: {OWN_TOKEN_HINT}")),
        }
    }

    fn with_token(base: &str, token: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            agent: ureq::AgentBuilder::new()
                .timeout(std::time::Duration::from_secs(30))
                .build(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    fn handle(&self, result: Result<ureq::Response, ureq::Error>) -> Result<Value> {
        match result {
            Ok(response) => response.into_json().context("the admin API returned invalid JSON"),
            Err(ureq::Error::Status(status, response)) => {
                let body: Value = response.into_json().unwrap_or(Value::Null);
                let message = body
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("no details")
                    .to_string();
                Err(ApiFailure { status, message }.into())
            }
            Err(ureq::Error::Transport(error)) => Err(anyhow!(
                "cannot reach the admin API at {}: {error} (is `airlock serve` running? set AIRLOCK_URL)",
                self.base
            )),
        }
    }

    pub fn get(&self, path: &str) -> Result<Value> {
        let result = self
            .agent
            .get(&self.url(path))
            .set("Authorization", &format!("Bearer {}", self.token))
            .call();
        self.handle(result)
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let result = self
            .agent
            .post(&self.url(path))
            .set("Authorization", &format!("Bearer {}", self.token))
            .send_json(body);
        self.handle(result)
    }

    pub fn delete(&self, path: &str) -> Result<Value> {
        let result = self
            .agent
            .delete(&self.url(path))
            .set("Authorization", &format!("Bearer {}", self.token))
            .call();
        self.handle(result)
    }
}
