//! The `identity_providers` configuration model: one [`IssuerConfig`] per
//! trusted OpenID Provider, and [`validate_issuers`] which reports every
//! problem at once with its location.
//!
//! This module owns the file shape only. It performs no I/O: nothing here
//! fetches discovery documents or keys; the validator does that lazily.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use airlock_types::IdentityKind;
use serde::{Deserialize, Serialize};
use url::{Host, Url};

/// The JWS signature algorithms airlock can verify.
///
/// Symmetric algorithms (`HS256`…) are deliberately absent: an identity
/// provider's tokens must be verifiable with *public* keys only, and accepting
/// an HMAC algorithm is what makes "HS256 signed with the RSA public key"
/// confusion attacks possible. `none` is absent for the same reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum JwsAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256, RSA keys of 2048 to 8192 bits.
    RS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// Edwards-curve signatures; airlock supports the Ed25519 curve.
    EdDSA,
}

impl JwsAlgorithm {
    /// The `alg` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }

    /// Parses an `alg` header value (case-sensitive, as JOSE requires).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "RS256" => Some(Self::RS256),
            "ES256" => Some(Self::ES256),
            "EdDSA" => Some(Self::EdDSA),
            _ => None,
        }
    }
}

impl fmt::Display for JwsAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One trusted OpenID Provider, as written under `identity_providers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// Short name used in logs, errors and audit records (`corp`).
    pub name: String,
    /// The issuer identifier, e.g. `https://login.example.com/`. Discovery is
    /// fetched from `<issuer without trailing slash>/.well-known/openid-configuration`.
    /// Must be `https`, except on loopback (`127.0.0.1`, `::1`, `localhost`)
    /// for tests and local development.
    pub issuer: String,
    /// Accepted audiences: a token is accepted when its `aud` (string or
    /// array) contains at least one of these. With `use_id_token` these are
    /// the OIDC client ids the ID tokens were issued to.
    pub audiences: Vec<String>,
    /// The claim that names the identity (becomes the PostgreSQL user name).
    /// Nested claims may be addressed with dots (`ext.login`).
    #[serde(default = "default_identity_claim")]
    pub identity_claim: String,
    /// The claim holding the identity's groups: an array of strings, or one
    /// space-separated string (like `scope`). Absent claim means no groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups_claim: Option<String>,
    /// The kind every identity from this issuer has, or the fallback when
    /// `kind_claim` is absent from a token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<IdentityKind>,
    /// A claim whose value gives the identity kind: `agent`, `human`,
    /// `service`, or any value listed in `kind_map`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind_claim: Option<String>,
    /// Maps values of `kind_claim` to kinds (`svc: service`). Values not in
    /// the map must be one of `agent`, `human`, `service` themselves.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kind_map: BTreeMap<String, IdentityKind>,
    /// OAuth client ids whose tokens are always agents (matched against the
    /// token's `client_id`, else `azp`). Takes precedence over `kind_claim`
    /// and `kind`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agent_client_ids: Vec<String>,
    /// Signature algorithms accepted from this issuer. The token's `alg` must
    /// be listed here *and* match the key it names.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<JwsAlgorithm>,
    /// Accept OIDC ID tokens (audience = client id) instead of OAuth access
    /// tokens. ID tokens with an `azp` claim must name an accepted audience,
    /// and tokens typed `at+jwt` are refused. Default: access tokens.
    #[serde(default)]
    pub use_id_token: bool,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    #[serde(default = "default_leeway_seconds")]
    pub leeway_seconds: u64,
    /// How long fetched signing keys are trusted before the discovery
    /// document and JWKS are fetched again, in seconds.
    #[serde(default = "default_jwks_refresh_seconds")]
    pub jwks_refresh_seconds: u64,
    /// The OAuth client id of airlock's web UI at this provider: when set,
    /// the sign-in page offers "Sign in with <name>" (the authorization
    /// code flow with PKCE, S256). ID tokens must then be issued to this
    /// client (their `aud`); the UI's redirect URI is
    /// `<ui.public_url>/ui/oidc/callback`, which the provider must list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_client_id: Option<String>,
    /// Name of the environment variable holding the web client's secret
    /// (sent with HTTP Basic to the token endpoint). Without it and
    /// `web_client_secret_file` the web UI is a public client (PKCE only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_client_secret_env: Option<String>,
    /// Path of a file holding the web client's secret (trailing whitespace
    /// ignored). At most one of `web_client_secret_env` and
    /// `web_client_secret_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_client_secret_file: Option<std::path::PathBuf>,
    /// Scopes the web UI asks for besides `openid` (`groups`, `profile`…),
    /// when the provider puts the identity or groups claims in ID tokens
    /// only for a scope.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub web_scopes: Vec<String>,
}

fn default_identity_claim() -> String {
    "sub".to_owned()
}

/// The default accepted algorithms: RS256, ES256, EdDSA.
pub fn default_algorithms() -> Vec<JwsAlgorithm> {
    vec![
        JwsAlgorithm::RS256,
        JwsAlgorithm::ES256,
        JwsAlgorithm::EdDSA,
    ]
}

fn default_leeway_seconds() -> u64 {
    60
}

fn default_jwks_refresh_seconds() -> u64 {
    300
}

/// Largest accepted `leeway_seconds`: more would make expiry meaningless for
/// short-lived agent tokens.
pub const MAX_LEEWAY_SECONDS: u64 = 600;
/// Largest accepted `jwks_refresh_seconds` (one day): a removed key must stop
/// being trusted in bounded time.
pub const MAX_JWKS_REFRESH_SECONDS: u64 = 86_400;

/// One problem found in the configuration, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Where: `identity_providers[0].issuer`.
    pub location: String,
    /// What is wrong, lowercase, no trailing period.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

impl IssuerConfig {
    /// A minimal configuration with defaults for every optional field.
    pub fn new(name: impl Into<String>, issuer: impl Into<String>, audiences: Vec<String>) -> Self {
        Self {
            name: name.into(),
            issuer: issuer.into(),
            audiences,
            identity_claim: default_identity_claim(),
            groups_claim: None,
            kind: None,
            kind_claim: None,
            kind_map: BTreeMap::new(),
            agent_client_ids: Vec::new(),
            algorithms: default_algorithms(),
            use_id_token: false,
            leeway_seconds: default_leeway_seconds(),
            jwks_refresh_seconds: default_jwks_refresh_seconds(),
            web_client_id: None,
            web_client_secret_env: None,
            web_client_secret_file: None,
            web_scopes: Vec::new(),
        }
    }

    /// Every problem with this one issuer; `location` prefixes each problem
    /// (`identity_providers[0]`). Empty when the issuer is usable.
    pub fn validate(&self, location: &str) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let mut problem = |field: &str, message: String| {
            problems.push(ConfigProblem {
                location: format!("{location}.{field}"),
                message,
            });
        };

        if self.name.trim().is_empty() {
            problem("name", "must not be empty".to_owned());
        }
        if let Err(message) = check_issuer_url(&self.issuer) {
            problem("issuer", message);
        }
        if self.audiences.is_empty() {
            problem("audiences", "must list at least one audience".to_owned());
        }
        for (index, audience) in self.audiences.iter().enumerate() {
            if audience.trim().is_empty() {
                problem(
                    &format!("audiences[{index}]"),
                    "must not be empty".to_owned(),
                );
            }
        }
        if self.identity_claim.trim().is_empty() {
            problem("identity_claim", "must not be empty".to_owned());
        }
        if self
            .groups_claim
            .as_deref()
            .is_some_and(|claim| claim.trim().is_empty())
        {
            problem("groups_claim", "must not be empty when set".to_owned());
        }
        if self
            .kind_claim
            .as_deref()
            .is_some_and(|claim| claim.trim().is_empty())
        {
            problem("kind_claim", "must not be empty when set".to_owned());
        }
        if self.kind.is_none() && self.kind_claim.is_none() && self.agent_client_ids.is_empty() {
            problem(
                "kind",
                "set `kind`, `kind_claim` or `agent_client_ids` so every identity has a kind"
                    .to_owned(),
            );
        }
        if !self.kind_map.is_empty() && self.kind_claim.is_none() {
            problem("kind_map", "has no effect without `kind_claim`".to_owned());
        }
        for (index, client_id) in self.agent_client_ids.iter().enumerate() {
            if client_id.trim().is_empty() {
                problem(
                    &format!("agent_client_ids[{index}]"),
                    "must not be empty".to_owned(),
                );
            }
        }
        if self.algorithms.is_empty() {
            problem("algorithms", "must list at least one algorithm".to_owned());
        }
        if self.leeway_seconds > MAX_LEEWAY_SECONDS {
            problem(
                "leeway_seconds",
                format!("must be at most {MAX_LEEWAY_SECONDS}"),
            );
        }
        if self.jwks_refresh_seconds == 0 || self.jwks_refresh_seconds > MAX_JWKS_REFRESH_SECONDS {
            problem(
                "jwks_refresh_seconds",
                format!("must be between 1 and {MAX_JWKS_REFRESH_SECONDS}"),
            );
        }
        if self
            .web_client_id
            .as_deref()
            .is_some_and(|client| client.trim().is_empty())
        {
            problem("web_client_id", "must not be empty when set".to_owned());
        }
        let secret_set =
            self.web_client_secret_env.is_some() || self.web_client_secret_file.is_some();
        if secret_set && self.web_client_id.is_none() {
            problem(
                "web_client_id",
                "a web client secret is set without `web_client_id`".to_owned(),
            );
        }
        if self.web_client_secret_env.is_some() && self.web_client_secret_file.is_some() {
            problem(
                "web_client_secret_file",
                "set only one of web_client_secret_env and web_client_secret_file".to_owned(),
            );
        }
        if self
            .web_client_secret_env
            .as_deref()
            .is_some_and(|name| name.trim().is_empty())
        {
            problem("web_client_secret_env", "must not be empty".to_owned());
        }
        for (index, scope) in self.web_scopes.iter().enumerate() {
            if scope.is_empty()
                || !scope
                    .chars()
                    .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
            {
                problem(
                    &format!("web_scopes[{index}]"),
                    "must be a non-empty scope token (printable ASCII, no spaces)".to_owned(),
                );
            }
        }
        problems
    }

    /// The issuer without a trailing slash: how issuers are compared before
    /// the discovery document says which exact form the provider uses.
    pub(crate) fn issuer_key(&self) -> &str {
        trim_one_slash(&self.issuer)
    }
}

/// Removes at most one trailing `/`.
pub(crate) fn trim_one_slash(issuer: &str) -> &str {
    issuer.strip_suffix('/').unwrap_or(issuer)
}

/// Every problem in a list of issuers, located as
/// `identity_providers[i].field`: each issuer's own problems plus duplicate
/// names and duplicate issuer URLs (a token's `iss` must select one issuer).
pub fn validate_issuers(issuers: &[IssuerConfig]) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    let mut issuer_keys = BTreeSet::new();
    for (index, issuer) in issuers.iter().enumerate() {
        let location = format!("identity_providers[{index}]");
        problems.extend(issuer.validate(&location));
        if !names.insert(issuer.name.as_str()) {
            problems.push(ConfigProblem {
                location: format!("{location}.name"),
                message: format!("duplicate identity provider name {:?}", issuer.name),
            });
        }
        if !issuer_keys.insert(issuer.issuer_key()) {
            problems.push(ConfigProblem {
                location: format!("{location}.issuer"),
                message: format!("issuer {:?} is configured twice", issuer.issuer),
            });
        }
    }
    problems
}

/// Checks an issuer identifier: an absolute `https` URL without query or
/// fragment (OIDC Discovery §3), or `http` on loopback only.
pub(crate) fn check_issuer_url(issuer: &str) -> Result<Url, String> {
    let url = Url::parse(issuer).map_err(|error| format!("not a valid URL: {error}"))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials".to_owned());
    }
    check_fetch_url(&url)?;
    Ok(url)
}

/// Checks a URL airlock will fetch keys or metadata from: `https`, or `http`
/// on a loopback host. Plain HTTP elsewhere would let anyone on the path
/// substitute signing keys.
pub(crate) fn check_fetch_url(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(format!(
            "must use https (plain http is allowed on loopback only), got {url}"
        )),
        other => Err(format!("must use https, got scheme {other:?}")),
    }
}

/// Whether the URL's host is `localhost`, `127.0.0.0/8` or `::1`.
pub(crate) fn is_loopback(url: &Url) -> bool {
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

    fn corp() -> IssuerConfig {
        let mut config = IssuerConfig::new(
            "corp",
            "https://login.example.com/",
            vec!["airlock".to_owned()],
        );
        config.kind = Some(IdentityKind::Agent);
        config
    }

    fn messages(problems: &[ConfigProblem]) -> Vec<String> {
        problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn example_yaml_loads_unchanged_with_defaults() {
        #[derive(Deserialize)]
        struct File {
            identity_providers: Vec<IssuerConfig>,
        }
        let yaml = r#"
identity_providers:            # OIDC issuers whose tokens are accepted
  - name: corp
    issuer: https://login.example.com/
    audiences: [airlock]
    identity_claim: sub          # the claim that names the identity
    groups_claim: groups
    kind: agent                  # every identity from this issuer is an agent
"#;
        let file: File = serde_saphyr::from_str(yaml).unwrap();
        let [issuer] = file.identity_providers.as_slice() else {
            panic!("one issuer expected");
        };
        let mut expected = corp();
        expected.groups_claim = Some("groups".to_owned());
        assert_eq!(issuer, &expected);
        assert_eq!(issuer.algorithms, default_algorithms());
        assert_eq!(issuer.leeway_seconds, 60);
        assert_eq!(issuer.jwks_refresh_seconds, 300);
        assert!(!issuer.use_id_token);
        assert!(validate_issuers(&file.identity_providers).is_empty());
    }

    #[test]
    fn every_optional_field_parses() {
        let yaml = r#"
name: corp
issuer: https://login.example.com
audiences: [airlock, api://airlock]
identity_claim: ext.login
groups_claim: roles
kind_claim: principal_type
kind_map: {svc: service, bot: agent}
agent_client_ids: [agent-7]
algorithms: [ES256, EdDSA]
use_id_token: true
leeway_seconds: 5
jwks_refresh_seconds: 60
"#;
        let issuer: IssuerConfig = serde_saphyr::from_str(yaml).unwrap();
        assert_eq!(issuer.kind_map.get("svc"), Some(&IdentityKind::Service));
        assert_eq!(
            issuer.algorithms,
            vec![JwsAlgorithm::ES256, JwsAlgorithm::EdDSA]
        );
        assert!(issuer.use_id_token);
        assert_eq!(issuer.agent_client_ids, vec!["agent-7".to_owned()]);
        assert!(
            issuer.validate("p").is_empty(),
            "{:?}",
            issuer.validate("p")
        );
    }

    #[test]
    fn unknown_fields_and_symmetric_algorithms_are_rejected_by_the_parser() {
        let unknown =
            "name: a\nissuer: https://a.example\naudiences: [x]\nkind: agent\nclient_secret: s\n";
        let error = serde_saphyr::from_str::<IssuerConfig>(unknown).unwrap_err();
        assert!(error.to_string().contains("client_secret"), "{error}");

        for algorithm in ["HS256", "none", "RS384"] {
            let yaml = format!(
                "name: a\nissuer: https://a.example\naudiences: [x]\nkind: agent\nalgorithms: [{algorithm}]\n"
            );
            assert!(
                serde_saphyr::from_str::<IssuerConfig>(&yaml).is_err(),
                "{algorithm} must not parse"
            );
        }
    }

    #[test]
    fn issuer_urls_must_be_https_except_on_loopback() {
        let table = [
            ("https://login.example.com/", true),
            ("https://login.example.com/realms/corp", true),
            ("http://127.0.0.1:8080", true),
            ("http://127.1.2.3:8080/", true),
            ("http://[::1]:8080", true),
            ("http://localhost:8080", true),
            ("http://LOCALHOST", true),
            ("http://login.example.com/", false),
            ("http://10.0.0.1/", false),
            ("http://localhost.example.com/", false),
            ("http://[::2]/", false),
            ("ftp://login.example.com/", false),
            ("https://login.example.com/?tenant=a", false),
            ("https://login.example.com/#x", false),
            ("https://user:pw@login.example.com/", false),
            ("login.example.com", false),
            ("", false),
        ];
        for (issuer, ok) in table {
            assert_eq!(check_issuer_url(issuer).is_ok(), ok, "{issuer}");
        }
    }

    #[test]
    fn validate_reports_every_problem_with_its_location() {
        let mut bad = corp();
        bad.name = " ".to_owned();
        bad.issuer = "http://login.example.com/".to_owned();
        bad.audiences = vec![];
        bad.identity_claim = String::new();
        bad.kind = None;
        bad.kind_map.insert("svc".to_owned(), IdentityKind::Service);
        bad.algorithms = vec![];
        bad.leeway_seconds = 3600;
        bad.jwks_refresh_seconds = 0;
        let problems = messages(&validate_issuers(&[corp(), bad]));
        let expected_locations = [
            "identity_providers[1].name",
            "identity_providers[1].issuer",
            "identity_providers[1].audiences",
            "identity_providers[1].identity_claim",
            "identity_providers[1].kind",
            "identity_providers[1].kind_map",
            "identity_providers[1].algorithms",
            "identity_providers[1].leeway_seconds",
            "identity_providers[1].jwks_refresh_seconds",
        ];
        for location in expected_locations {
            assert!(
                problems.iter().any(|problem| problem.starts_with(location)),
                "missing {location} in {problems:#?}"
            );
        }
        assert_eq!(problems.len(), expected_locations.len(), "{problems:#?}");
        assert!(problems
            .iter()
            .any(|problem| problem.contains("must use https")));
    }

    #[test]
    fn duplicate_names_and_issuers_are_refused() {
        let mut same_issuer = corp();
        same_issuer.name = "corp-2".to_owned();
        same_issuer.issuer = "https://login.example.com".to_owned();
        let mut same_name = corp();
        same_name.issuer = "https://other.example.com".to_owned();
        let problems = messages(&validate_issuers(&[corp(), same_issuer, same_name]));
        assert_eq!(
            problems,
            vec![
                "identity_providers[1].issuer: issuer \"https://login.example.com\" is configured twice"
                    .to_owned(),
                "identity_providers[2].name: duplicate identity provider name \"corp\"".to_owned(),
            ]
        );
    }

    #[test]
    fn agent_client_ids_alone_give_a_kind() {
        let mut config = corp();
        config.kind = None;
        config.agent_client_ids = vec!["agent-7".to_owned()];
        assert!(config.validate("p").is_empty());
    }
}
