//! Test harness: starts the real OpenID Provider in `tests/oidc-provider/`
//! (the `oidc-provider` npm package on node), talks to its token endpoint and
//! test-only admin API, and signs arbitrary claims with its private keys.
//!
//! Requires `node` (>= 20) and `npm` on PATH (or `NODE` / `NPM` env vars);
//! runs `npm ci` once when `node_modules` is missing. Without node the tests
//! fail; they never skip.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use airlock_oidc::{IssuerConfig, OidcError, OidcValidator, OidcValidatorOptions, ValidatedToken};
use airlock_types::IdentityKind;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

fn provider_dir() -> PathBuf {
    // This harness is also included by the gateway's end-to-end tests,
    // which live in another crate.
    let own = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-provider");
    if own.exists() {
        own
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../airlock-oidc/tests/oidc-provider")
    }
}

/// Runs `npm ci` once per test binary when the provider's dependencies are
/// not installed yet.
fn ensure_node_modules() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let dir = provider_dir();
        if dir.join("node_modules/oidc-provider/package.json").exists() {
            return;
        }
        let npm = std::env::var("NPM").unwrap_or_else(|_| "npm".to_owned());
        let output = std::process::Command::new(&npm)
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .output()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot run `{npm} ci` in {}: {error}; the OIDC tests need node >= 20 and npm",
                    dir.display()
                )
            });
        assert!(
            output.status.success(),
            "`{npm} ci` failed in {}:\n{}\n{}",
            dir.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    });
}

/// A running provider. Killed on drop.
pub struct Provider {
    child: Option<Child>,
    /// The issuer exactly as the provider states it (`http://127.0.0.1:PORT`).
    pub issuer: String,
}

impl Provider {
    pub async fn start() -> Provider {
        ensure_node_modules();
        // A provider that has not said it listens within 40 s is stuck (it
        // starts in well under a second; once in a few dozen suite runs on a
        // loaded machine one never did): start another, up to three times.
        for attempt in 1..=3 {
            if let Some(provider) = Self::try_start(Duration::from_secs(40)).await {
                return provider;
            }
            eprintln!("[oidc-provider] attempt {attempt}: no LISTENING line within 40 s");
        }
        panic!("the OIDC provider did not start in three attempts");
    }

    async fn try_start(timeout: Duration) -> Option<Provider> {
        let node = std::env::var("NODE").unwrap_or_else(|_| "node".to_owned());
        let mut child = Command::new(&node)
            .arg("server.mjs")
            .current_dir(provider_dir())
            .env("PORT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start `{node} server.mjs`: {error}; the OIDC tests need node >= 20")
            });
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        // Forward the provider's diagnostics into the test output, minus the
        // warnings it prints on every start.
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if !line.starts_with("oidc-provider WARNING") {
                    eprintln!("[oidc-provider] {line}");
                }
            }
        });
        let mut lines = BufReader::new(stdout).lines();
        // On time-out `child` drops here and is killed.
        let first = tokio::time::timeout(timeout, lines.next_line())
            .await
            .ok()?
            .unwrap();
        let issuer = first
            .as_deref()
            .and_then(|line| line.strip_prefix("LISTENING "))
            .unwrap_or_else(|| panic!("unexpected provider output {first:?}"))
            .to_owned();
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let provider = Provider {
            child: Some(child),
            issuer,
        };
        // Discovery must answer before tests use the provider.
        let discovery = provider.get(".well-known/openid-configuration").await;
        assert_eq!(discovery["issuer"], provider.issuer.as_str());
        Some(provider)
    }

    /// Kills the provider and waits until it is gone.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    /// An issuer configuration for this provider. `issuer` is written with a
    /// trailing slash, which the provider does not use: airlock must cope.
    pub fn config(&self) -> IssuerConfig {
        let mut config = IssuerConfig::new(
            "corp",
            format!("{}/", self.issuer),
            vec!["airlock".to_owned()],
        );
        config.groups_claim = Some("groups".to_owned());
        config.agent_client_ids = vec!["agent-7".to_owned()];
        config.kind_claim = Some("principal_type".to_owned());
        config
            .kind_map
            .insert("svc".to_owned(), IdentityKind::Service);
        config.kind = Some(IdentityKind::Human);
        config
    }

    /// A validator for [`Self::config`] with fast refresh intervals.
    pub fn validator(&self, config: IssuerConfig, min_key_refresh: Duration) -> OidcValidator {
        OidcValidator::with_options(
            vec![config],
            OidcValidatorOptions {
                min_key_refresh_interval: min_key_refresh,
                http_timeout: Duration::from_secs(5),
            },
        )
        .unwrap()
    }

    /// A real access token from the provider's token endpoint
    /// (client-credentials grant, resource indicator → JWT access token).
    pub async fn token(&self, client_id: &str, resource: &str) -> String {
        let url = format!("{}/token", self.issuer);
        let authorization = format!(
            "Basic {}",
            STANDARD.encode(format!("{client_id}:{client_id}-secret"))
        );
        let resource = resource.to_owned();
        let body: Value = blocking(move || {
            ureq::post(&url)
                .set("authorization", &authorization)
                .send_form(&[
                    ("grant_type", "client_credentials"),
                    ("resource", &resource),
                ])
                .map_err(|error| match error {
                    ureq::Error::Status(status, response) => {
                        format!(
                            "token endpoint: HTTP {status}: {}",
                            response.into_string().unwrap_or_default()
                        )
                    }
                    other => other.to_string(),
                })
                .unwrap()
                .into_json()
                .unwrap()
        })
        .await;
        assert_eq!(body["token_type"], "Bearer", "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// The provider's current PRIVATE signing keys (test-only endpoint).
    pub async fn private_keys(&self) -> Vec<Value> {
        keys_of(&self.get("__admin/keys").await)
    }

    /// Rotates the provider's keys: `add` new keys (they sign from now on),
    /// `remove` kids. The provider keeps running on the same port.
    pub async fn rotate(&self, add: Value, remove: Value) -> Vec<Value> {
        let url = format!("{}/__admin/rotate", self.issuer);
        let body = json!({"add": add, "remove": remove});
        keys_of(
            &blocking(move || {
                ureq::post(&url)
                    .send_json(body)
                    .unwrap()
                    .into_json()
                    .unwrap()
            })
            .await,
        )
    }

    /// How many discovery and JWKS requests the provider has served.
    pub async fn fetch_counts(&self) -> (u64, u64) {
        let stats = self.get("__admin/stats").await;
        (
            stats["discovery"].as_u64().unwrap(),
            stats["jwks"].as_u64().unwrap(),
        )
    }

    pub async fn private_key(&self, kid: &str) -> Value {
        self.private_keys()
            .await
            .into_iter()
            .find(|key| key["kid"] == kid)
            .unwrap_or_else(|| panic!("provider has no key {kid}"))
    }

    async fn get(&self, path: &str) -> Value {
        let url = format!("{}/{path}", self.issuer);
        blocking(move || ureq::get(&url).call().unwrap().into_json().unwrap()).await
    }
}

fn keys_of(document: &Value) -> Vec<Value> {
    document["keys"].as_array().unwrap().clone()
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.unwrap()
}

pub fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn b64_field(jwk: &Value, name: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(
            jwk[name]
                .as_str()
                .unwrap_or_else(|| panic!("jwk has no {name}")),
        )
        .unwrap()
}

/// `base64url(header).base64url(claims)`.
pub fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

/// Signs `claims` with a private JWK (RSA → RS256, EC P-256 → ES256, OKP
/// Ed25519 → EdDSA); the header gets `alg`, `kid` and `typ: at+jwt` unless
/// `header_override` replaces fields.
pub fn sign(private_jwk: &Value, claims: &Value, header_override: Value) -> String {
    let algorithm = match private_jwk["kty"].as_str().unwrap() {
        "RSA" => "RS256",
        "EC" => "ES256",
        "OKP" => "EdDSA",
        other => panic!("unsupported kty {other}"),
    };
    let mut header = json!({"alg": algorithm, "kid": private_jwk["kid"], "typ": "at+jwt"});
    for (key, value) in header_override.as_object().unwrap() {
        if value.is_null() {
            header.as_object_mut().unwrap().remove(key);
        } else {
            header[key] = value.clone();
        }
    }
    let input = signing_input(&header, claims);
    let signature = raw_sign(private_jwk, input.as_bytes());
    format!("{input}.{}", b64(&signature))
}

fn raw_sign(private_jwk: &Value, message: &[u8]) -> Vec<u8> {
    let rng = SystemRandom::new();
    match private_jwk["kty"].as_str().unwrap() {
        "RSA" => {
            let field = |name| b64_field(private_jwk, name);
            let components = ring::rsa::KeyPairComponents {
                public_key: ring::rsa::PublicKeyComponents {
                    n: field("n"),
                    e: field("e"),
                },
                d: field("d"),
                p: field("p"),
                q: field("q"),
                dP: field("dp"),
                dQ: field("dq"),
                qInv: field("qi"),
            };
            let pair = RsaKeyPair::from_components(&components).unwrap();
            let mut signature = vec![0; pair.public().modulus_len()];
            pair.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut signature)
                .unwrap();
            signature
        }
        "EC" => {
            let mut point = vec![4];
            point.extend(b64_field(private_jwk, "x"));
            point.extend(b64_field(private_jwk, "y"));
            let pair = EcdsaKeyPair::from_private_key_and_public_key(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &b64_field(private_jwk, "d"),
                &point,
                &rng,
            )
            .unwrap();
            pair.sign(&rng, message).unwrap().as_ref().to_vec()
        }
        "OKP" => {
            let pair = Ed25519KeyPair::from_seed_and_public_key(
                &b64_field(private_jwk, "d"),
                &b64_field(private_jwk, "x"),
            )
            .unwrap();
            pair.sign(message).as_ref().to_vec()
        }
        other => panic!("unsupported kty {other}"),
    }
}

/// A fresh Ed25519 key the provider has never seen, as a private JWK.
pub fn foreign_ed25519_key(kid: &str) -> Value {
    use ring::rand::SecureRandom as _;
    use ring::signature::KeyPair as _;
    let mut seed = [0u8; 32];
    SystemRandom::new().fill(&mut seed).unwrap();
    let pair = Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
    json!({
        "kty": "OKP", "crv": "Ed25519", "kid": kid,
        "d": b64(&seed), "x": b64(pair.public_key().as_ref()),
    })
}

/// Claims like the provider's access tokens for agent-7.
pub fn agent_claims(issuer: &str) -> Value {
    let now = now();
    json!({
        "iss": issuer, "sub": "agent-7", "client_id": "agent-7", "aud": "airlock",
        "iat": now, "exp": now + 600, "groups": ["agents", "payments"], "jti": "test",
    })
}

/// Sets or (with `null`) removes claims.
pub fn with(mut claims: Value, changes: Value) -> Value {
    for (key, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(key);
        } else {
            claims[key] = value.clone();
        }
    }
    claims
}

/// Decodes the unverified header of a token (for assertions).
pub fn header_of(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

/// Validates and returns the refusal, checking that its message does not
/// echo the token.
pub async fn refused(validator: &OidcValidator, token: &str) -> OidcError {
    let error = match validator.validate(token).await {
        Ok(accepted) => panic!("token accepted but should be refused: {accepted:?}"),
        Err(error) => error,
    };
    let message = error.to_string();
    for segment in token.split('.').filter(|segment| segment.len() > 8) {
        assert!(
            !message.contains(segment),
            "error echoes the token: {message}"
        );
    }
    error
}

pub async fn accepted(validator: &OidcValidator, token: &str) -> ValidatedToken {
    validator
        .validate(token)
        .await
        .unwrap_or_else(|error| panic!("token refused: {error}"))
}
