//! A small blocking client for the admin API.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

/// Talks to the admin API with the admin token.
pub struct AdminClient {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl AdminClient {
    pub fn new(base: &str, token: Option<&str>) -> Result<Self> {
        let token = token.filter(|token| !token.is_empty()).ok_or_else(|| {
            anyhow!("no admin token: set AIRLOCK_ADMIN_TOKEN or pass --admin-token")
        })?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            agent: ureq::AgentBuilder::new()
                .timeout(std::time::Duration::from_secs(30))
                .build(),
        })
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
                bail!("{message} (HTTP {status})")
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
