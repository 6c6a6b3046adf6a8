//! Fetching JSON documents (discovery, JWKS) from identity providers.
//!
//! Uses the blocking `ureq` client on tokio's blocking pool: two requests per
//! provider every few minutes do not justify an async HTTP stack. Every
//! request is bounded: connect and total timeouts, a body size cap, no
//! redirects (a redirect could leave https or the provider's host), and
//! `https` only (plain `http` on loopback for tests). TLS is rustls with the
//! ring provider and the Mozilla root store.

use std::io::Read as _;
use std::time::Duration;

use serde_json::Value;
use url::Url;

use crate::config::check_fetch_url;

/// Largest discovery or JWKS document accepted, in bytes.
const MAX_DOCUMENT_BYTES: u64 = 512 * 1024;

/// A small HTTP client for provider documents. Cheap to clone.
#[derive(Clone)]
pub(crate) struct HttpFetcher {
    agent: ureq::Agent,
}

impl HttpFetcher {
    /// A client whose every request completes or fails within `timeout`.
    pub fn new(timeout: Duration) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(timeout)
            .timeout(timeout)
            .redirects(0)
            .user_agent(concat!("airlock-oidc/", env!("CARGO_PKG_VERSION")))
            .build();
        Self { agent }
    }

    /// GETs `url` and parses the body as JSON. The error names the URL and
    /// the cause; it never contains a token (none is sent).
    pub async fn get_json(&self, url: Url) -> Result<Value, String> {
        check_fetch_url(&url).map_err(|message| format!("refusing to fetch {url}: {message}"))?;
        let agent = self.agent.clone();
        tokio::task::spawn_blocking(move || get_json_blocking(&agent, &url))
            .await
            .map_err(|error| format!("fetch task failed: {error}"))?
    }
}

impl HttpFetcher {
    /// POSTs a form to `url` (a token endpoint), with HTTP Basic
    /// `client_id:secret` when `basic` is given, and parses the JSON answer.
    /// An error answer (4xx) is returned as its JSON body's `error` code,
    /// never with the request (which holds the code and the secret).
    pub async fn post_form(
        &self,
        url: Url,
        basic: Option<String>,
        form: Vec<(&'static str, String)>,
    ) -> Result<Value, String> {
        check_fetch_url(&url).map_err(|message| format!("refusing to post to {url}: {message}"))?;
        let agent = self.agent.clone();
        tokio::task::spawn_blocking(move || {
            let mut request = agent.post(url.as_str()).set("accept", "application/json");
            if let Some(basic) = basic {
                request = request.set("authorization", &basic);
            }
            let pairs: Vec<(&str, &str)> = form
                .iter()
                .map(|(name, value)| (*name, value.as_str()))
                .collect();
            match request.send_form(&pairs) {
                Ok(response) => read_json(url.as_str(), response),
                Err(ureq::Error::Status(status, response)) => {
                    let code = read_json(url.as_str(), response)
                        .ok()
                        .and_then(|body| {
                            body.get("error").and_then(Value::as_str).map(str::to_owned)
                        })
                        .unwrap_or_default();
                    Err(format!(
                        "POST {url} answered HTTP {status} {}",
                        crate::error::quote_untrusted(&code)
                    ))
                }
                Err(ureq::Error::Transport(transport)) => {
                    Err(format!("POST {url} failed: {transport}"))
                }
            }
        })
        .await
        .map_err(|error| format!("token request task failed: {error}"))?
    }
}

fn read_json(url: &str, response: ureq::Response) -> Result<Value, String> {
    let mut body = Vec::new();
    response
        .into_reader()
        .take(MAX_DOCUMENT_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(|error| format!("{url}: reading the body failed: {error}"))?;
    if body.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(format!(
            "{url}: answer is larger than {MAX_DOCUMENT_BYTES} bytes"
        ));
    }
    serde_json::from_slice(&body).map_err(|error| format!("{url}: not JSON: {error}"))
}

fn get_json_blocking(agent: &ureq::Agent, url: &Url) -> Result<Value, String> {
    let response = agent
        .get(url.as_str())
        .set("accept", "application/json")
        .call()
        .map_err(|error| match error {
            ureq::Error::Status(status, _) => format!("GET {url} answered HTTP {status}"),
            ureq::Error::Transport(transport) => format!("GET {url} failed: {transport}"),
        })?;
    let mut body = Vec::new();
    response
        .into_reader()
        .take(MAX_DOCUMENT_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(|error| format!("GET {url}: reading the body failed: {error}"))?;
    if body.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(format!(
            "GET {url}: document is larger than {MAX_DOCUMENT_BYTES} bytes"
        ));
    }
    serde_json::from_slice(&body).map_err(|error| format!("GET {url}: not JSON: {error}"))
}
