//! `airlock login`: the OAuth 2.0 device authorization grant (RFC 8628)
//! against the company's identity provider, and the stored token that later
//! commands use for personal actions (approvals, MFA, access requests).

use crate::output::outln;
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cli::{LoginArgs, OutputFormat};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Where the token is kept: `$AIRLOCK_CONFIG_DIR`, else
/// `$XDG_CONFIG_HOME/airlock`, else `~/.config/airlock`.
fn token_path() -> Option<PathBuf> {
    let folder = std::env::var_os("AIRLOCK_CONFIG_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CONFIG_HOME").map(|dir| PathBuf::from(dir).join("airlock"))
        })
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config/airlock"))
        })?;
    Some(folder.join("token.json"))
}

/// The stored token, if there is one that has not expired.
pub fn stored_token() -> Option<String> {
    let text = std::fs::read_to_string(token_path()?).ok()?;
    let stored: Value = serde_json::from_str(&text).ok()?;
    let expires_at = stored["expires_at"].as_i64()?;
    if expires_at <= now() + 5 {
        return None;
    }
    stored["access_token"].as_str().map(str::to_string)
}

fn form(agent: &ureq::Agent, url: &str, fields: &[(&str, &str)]) -> Result<(u16, Value)> {
    match agent.post(url).send_form(fields) {
        Ok(response) => Ok((
            response.status(),
            response
                .into_json()
                .context("invalid JSON from the provider")?,
        )),
        Err(ureq::Error::Status(status, response)) => {
            Ok((status, response.into_json().unwrap_or(Value::Null)))
        }
        Err(ureq::Error::Transport(error)) => Err(anyhow!("cannot reach {url}: {error}")),
    }
}

pub fn run(args: &LoginArgs, format: OutputFormat) -> Result<()> {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(15))
        .redirects(0)
        .build();
    let issuer = args.issuer.trim_end_matches('/');
    let discovery: Value = agent
        .get(&format!("{issuer}/.well-known/openid-configuration"))
        .call()
        .map_err(|error| anyhow!("cannot read the provider's discovery document: {error}"))?
        .into_json()
        .context("invalid discovery document")?;
    let device_endpoint = discovery["device_authorization_endpoint"]
        .as_str()
        .ok_or_else(|| anyhow!("the provider does not offer the device authorization flow"))?;
    let token_endpoint = discovery["token_endpoint"]
        .as_str()
        .ok_or_else(|| anyhow!("the discovery document names no token endpoint"))?;

    let mut request = vec![
        ("client_id", args.client_id.as_str()),
        ("scope", args.scope.as_str()),
    ];
    if let Some(resource) = &args.resource {
        request.push(("resource", resource));
    }
    if let Some(audience) = &args.audience {
        request.push(("audience", audience));
    }
    let (status, device) = form(&agent, device_endpoint, &request)?;
    if status != 200 {
        bail!(
            "the provider refused the device authorization request: {}",
            device["error_description"]
                .as_str()
                .or(device["error"].as_str())
                .unwrap_or("no details")
        );
    }
    let device_code = device["device_code"]
        .as_str()
        .ok_or_else(|| anyhow!("no device_code in the answer"))?;
    let user_code = device["user_code"].as_str().unwrap_or("");
    let verification = device["verification_uri_complete"]
        .as_str()
        .or(device["verification_uri"].as_str())
        .unwrap_or("");
    eprintln!("To sign in, open {verification}\nand confirm the code: {user_code}");
    let mut interval = Duration::from_secs(device["interval"].as_u64().unwrap_or(5).max(1));
    let deadline =
        Instant::now() + Duration::from_secs(device["expires_in"].as_u64().unwrap_or(600));
    let tokens = loop {
        if Instant::now() >= deadline {
            bail!("the code expired before it was confirmed; run `airlock login` again");
        }
        std::thread::sleep(interval);
        let (status, answer) = form(
            &agent,
            token_endpoint,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", device_code),
                ("client_id", &args.client_id),
            ],
        )?;
        if status == 200 {
            break answer;
        }
        match answer["error"].as_str() {
            Some("authorization_pending") => {}
            Some("slow_down") => interval += Duration::from_secs(5),
            Some("access_denied") => bail!("the sign-in was denied"),
            Some("expired_token") => {
                bail!("the code expired before it was confirmed; run `airlock login` again")
            }
            other => bail!(
                "the provider refused the sign-in: {}",
                answer["error_description"]
                    .as_str()
                    .or(other)
                    .unwrap_or("no details")
            ),
        }
    };
    let access_token = tokens["access_token"]
        .as_str()
        .ok_or_else(|| anyhow!("the provider issued no access token"))?;
    let expires_at = now() + tokens["expires_in"].as_i64().unwrap_or(3600);
    let path = token_path()
        .ok_or_else(|| anyhow!("no folder for the token: set AIRLOCK_CONFIG_DIR or HOME"))?;
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
    }
    let stored = json!({"issuer": issuer, "access_token": access_token, "expires_at": expires_at});
    let _ = std::fs::remove_file(&path);
    airlock_store::vault::write_private_file(&path, stored.to_string().as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    if format == OutputFormat::Json {
        outln!("{}", json!({"token_file": path, "expires_at": expires_at}));
    } else {
        outln!(
            "signed in; the token is stored in {} until {}",
            path.display(),
            crate::output::timestamp(&json!(expires_at))
        );
    }
    Ok(())
}
