//! Checks on the claims of a token whose signature has verified, and the
//! mapping from claims to an airlock [`Identity`]. Pure: the clock is a
//! parameter, so every rule is table-tested.
//!
//! Claim types are checked strictly: `exp` must be a number and is required;
//! `nbf` and `iat`, when present, must be numbers. A claim of the wrong type
//! is refused, never treated as absent (the mistake behind
//! CVE-2026-25537 in another JWT library).

use airlock_types::{AuthMethod, Identity, IdentityKind};
use serde_json::{Map, Value};

use crate::config::IssuerConfig;
use crate::error::OidcError;
use crate::jws::JoseHeader;

/// Longest identity name accepted, in bytes (PostgreSQL's `NAMEDATALEN` is
/// 64, but other protocols allow more; 255 keeps log lines bounded).
const MAX_IDENTITY_NAME_BYTES: usize = 255;
/// Most groups taken from one token.
const MAX_GROUPS: usize = 256;

/// What the claim checks produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckedClaims {
    pub identity: Identity,
    pub client_id: Option<String>,
}

/// Checks issuer, token type, lifetime and audience, then maps the identity.
///
/// `provider_issuer` is the issuer exactly as the provider's discovery
/// document states it; the token's `iss` must equal it byte for byte.
pub(crate) fn check_claims(
    config: &IssuerConfig,
    provider_issuer: &str,
    header: &JoseHeader,
    claims: &Map<String, Value>,
    now: i64,
) -> Result<CheckedClaims, OidcError> {
    let provider = config.name.as_str();
    let invalid = |reason: String| OidcError::InvalidClaims {
        provider: provider.to_owned(),
        reason,
    };

    match claims.get("iss") {
        Some(Value::String(issuer)) if issuer == provider_issuer => {}
        Some(Value::String(issuer)) => {
            return Err(OidcError::UnknownIssuer {
                issuer: crate::error::quote_untrusted(issuer),
            })
        }
        _ => {
            return Err(OidcError::malformed(
                "claim `iss` is missing or not a string",
            ))
        }
    }

    check_token_type(config, header.token_type.as_deref()).map_err(invalid)?;

    let leeway = i64::try_from(config.leeway_seconds).unwrap_or(i64::MAX);
    let expires_at = match numeric_date(claims, "exp")? {
        Some(expires_at) => expires_at.floor(),
        None => return Err(invalid("token has no `exp` claim".to_owned())),
    };
    if now >= expires_at.saturating_add(leeway) {
        return Err(OidcError::Expired {
            provider: provider.to_owned(),
            expired_at: expires_at,
            now,
        });
    }
    if let Some(not_before) = numeric_date(claims, "nbf")? {
        let not_before = not_before.ceil();
        if now.saturating_add(leeway) < not_before {
            return Err(OidcError::NotYetValid {
                provider: provider.to_owned(),
                reason: format!("`nbf` is {not_before} (now {now})"),
            });
        }
    }
    if let Some(issued_at) = numeric_date(claims, "iat")? {
        let issued_at = issued_at.ceil();
        if now.saturating_add(leeway) < issued_at {
            return Err(OidcError::NotYetValid {
                provider: provider.to_owned(),
                reason: format!("`iat` is {issued_at}, in the future (now {now})"),
            });
        }
    }

    let audiences = string_or_strings(claims.get("aud"), "aud")?;
    let accepted = |audience: &str| config.audiences.iter().any(|ok| ok == audience);
    if !audiences.iter().any(|audience| accepted(audience)) {
        return Err(OidcError::WrongAudience {
            provider: provider.to_owned(),
        });
    }

    let client_id = client_id(claims)?;
    if config.use_id_token {
        // OIDC Core §3.1.3.7: when `azp` is present it names the client the
        // ID token was issued to; it must be one we accept.
        if let Some(Value::String(authorized_party)) = claims.get("azp") {
            if !accepted(authorized_party) {
                return Err(OidcError::WrongAudience {
                    provider: provider.to_owned(),
                });
            }
        }
    }

    let name = identity_name(config, claims).map_err(invalid)?;
    let groups = groups(config, claims).map_err(invalid)?;
    let kind = identity_kind(config, claims, client_id.as_deref()).map_err(invalid)?;

    Ok(CheckedClaims {
        identity: Identity {
            name,
            kind,
            groups,
            auth_method: AuthMethod::Oidc {
                issuer: provider_issuer.to_owned(),
            },
            expires_at,
        },
        client_id,
    })
}

/// Only token types that can be what this issuer is configured to accept:
/// other JWTs the provider signs (logout tokens, DPoP proofs, security event
/// tokens) must not pass as access or ID tokens.
fn check_token_type(config: &IssuerConfig, token_type: Option<&str>) -> Result<(), String> {
    let Some(token_type) = token_type else {
        return Ok(());
    };
    let lower = token_type.to_ascii_lowercase();
    let media_type = lower.strip_prefix("application/").unwrap_or(&lower);
    let allowed = matches!(
        (config.use_id_token, media_type),
        (_, "jwt") | (false, "at+jwt")
    );
    if allowed {
        Ok(())
    } else if config.use_id_token {
        Err(format!(
            "token type (`typ`) {} is not an ID token",
            crate::error::quote_untrusted(token_type)
        ))
    } else {
        Err(format!(
            "token type (`typ`) {} is not an access token",
            crate::error::quote_untrusted(token_type)
        ))
    }
}

/// A NumericDate claim: absent → `None`, a number → its value (as seconds,
/// fraction kept for the caller to round safely), anything else → malformed.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<Seconds>, OidcError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(number)) => {
            if let Some(whole) = number.as_i64() {
                return Ok(Some(Seconds::Whole(whole)));
            }
            match number.as_f64() {
                // Beyond ±2^53 an f64 is not a meaningful date anyway.
                Some(value) if value.is_finite() && value.abs() < 9.0e15 => {
                    Ok(Some(Seconds::Fraction(value)))
                }
                _ => Err(OidcError::malformed(format!(
                    "claim `{name}` is out of range"
                ))),
            }
        }
        Some(_) => Err(OidcError::malformed(format!(
            "claim `{name}` is not a number"
        ))),
    }
}

/// A NumericDate, whole or fractional seconds.
#[derive(Clone, Copy)]
enum Seconds {
    Whole(i64),
    Fraction(f64),
}

impl Seconds {
    // The casts below are exact or saturating: values are bounded to ±9e15
    // by `numeric_date`, well inside i64.
    #[allow(clippy::cast_possible_truncation)] // bounded above
    fn floor(self) -> i64 {
        match self {
            Self::Whole(value) => value,
            Self::Fraction(value) => value.floor() as i64,
        }
    }

    #[allow(clippy::cast_possible_truncation)] // bounded above
    fn ceil(self) -> i64 {
        match self {
            Self::Whole(value) => value,
            Self::Fraction(value) => value.ceil() as i64,
        }
    }
}

/// `aud`-style claim: one string or an array of strings. Absent → empty.
fn string_or_strings(value: Option<&Value>, name: &str) -> Result<Vec<String>, OidcError> {
    match value {
        None => Ok(Vec::new()),
        Some(Value::String(single)) => Ok(vec![single.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str().map(str::to_owned).ok_or_else(|| {
                    OidcError::malformed(format!("claim `{name}` has a non-string member"))
                })
            })
            .collect(),
        Some(_) => Err(OidcError::malformed(format!(
            "claim `{name}` is neither a string nor an array of strings"
        ))),
    }
}

/// The OAuth client the token was issued to: `client_id` (RFC 9068), else
/// `azp` (OIDC).
fn client_id(claims: &Map<String, Value>) -> Result<Option<String>, OidcError> {
    for name in ["client_id", "azp"] {
        match claims.get(name) {
            None => {}
            Some(Value::String(client_id)) => return Ok(Some(client_id.clone())),
            Some(_) => {
                return Err(OidcError::malformed(format!(
                    "claim `{name}` is not a string"
                )))
            }
        }
    }
    Ok(None)
}

/// Looks a claim up by exact name, then as a dotted path into nested
/// objects (`realm_access.roles`).
fn lookup<'c>(claims: &'c Map<String, Value>, name: &str) -> Option<&'c Value> {
    if let Some(value) = claims.get(name) {
        return Some(value);
    }
    let mut parts = name.split('.');
    let mut current = claims.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

fn identity_name(config: &IssuerConfig, claims: &Map<String, Value>) -> Result<String, String> {
    let claim = config.identity_claim.as_str();
    let name = match lookup(claims, claim) {
        Some(Value::String(name)) => name,
        Some(_) => return Err(format!("identity claim `{claim}` is not a string")),
        None => return Err(format!("token has no identity claim `{claim}`")),
    };
    if name.is_empty() {
        return Err(format!("identity claim `{claim}` is empty"));
    }
    if name.len() > MAX_IDENTITY_NAME_BYTES {
        return Err(format!(
            "identity claim `{claim}` is longer than {MAX_IDENTITY_NAME_BYTES} bytes"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(format!(
            "identity claim `{claim}` contains control characters"
        ));
    }
    Ok(name.clone())
}

fn groups(config: &IssuerConfig, claims: &Map<String, Value>) -> Result<Vec<String>, String> {
    let Some(claim) = config.groups_claim.as_deref() else {
        return Ok(Vec::new());
    };
    let groups: Vec<String> = match lookup(claims, claim) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => text.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("groups claim `{claim}` has a non-string member"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(format!(
                "groups claim `{claim}` is neither a string nor an array of strings"
            ))
        }
    };
    if groups.len() > MAX_GROUPS {
        return Err(format!(
            "groups claim `{claim}` has more than {MAX_GROUPS} groups"
        ));
    }
    if groups
        .iter()
        .any(|group| group.chars().any(char::is_control))
    {
        return Err(format!(
            "groups claim `{claim}` contains control characters"
        ));
    }
    Ok(groups)
}

/// Kind precedence: `agent_client_ids` → `kind_claim` (through `kind_map`)
/// → `kind`. A `kind_claim` value that maps to nothing is refused rather
/// than falling back, so a typo at the provider cannot turn a human into an
/// agent or the reverse.
fn identity_kind(
    config: &IssuerConfig,
    claims: &Map<String, Value>,
    client_id: Option<&str>,
) -> Result<IdentityKind, String> {
    if let Some(client_id) = client_id {
        if config
            .agent_client_ids
            .iter()
            .any(|agent| agent == client_id)
        {
            return Ok(IdentityKind::Agent);
        }
    }
    if let Some(claim) = config.kind_claim.as_deref() {
        match lookup(claims, claim) {
            Some(Value::String(value)) => {
                return config
                    .kind_map
                    .get(value)
                    .copied()
                    .or_else(|| IdentityKind::parse(value))
                    .ok_or_else(|| {
                        format!(
                            "kind claim `{claim}` value {} is not agent, human, service or in kind_map",
                            crate::error::quote_untrusted(value)
                        )
                    });
            }
            Some(_) => return Err(format!("kind claim `{claim}` is not a string")),
            None => {}
        }
    }
    config
        .kind
        .ok_or_else(|| match config.kind_claim.as_deref() {
            Some(claim) => {
                format!("token has no kind claim `{claim}` and no default `kind` is set")
            }
            None => {
                "token's client is not in agent_client_ids and no default `kind` is set".to_owned()
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISSUER: &str = "https://login.example.com/";
    const NOW: i64 = 1_800_000_000;

    fn config() -> IssuerConfig {
        let mut config = IssuerConfig::new("corp", ISSUER, vec!["airlock".to_owned()]);
        config.groups_claim = Some("groups".to_owned());
        config.kind = Some(IdentityKind::Agent);
        config
    }

    fn header(token_type: Option<&str>) -> JoseHeader {
        JoseHeader {
            algorithm: "RS256".to_owned(),
            key_id: None,
            token_type: token_type.map(str::to_owned),
        }
    }

    fn claims(extra: Value) -> Map<String, Value> {
        let mut base = json!({
            "iss": ISSUER, "sub": "agent-7", "aud": "airlock",
            "iat": NOW - 10, "exp": NOW + 600, "client_id": "agent-7",
            "groups": ["agents", "payments"],
        });
        if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
            for (key, value) in extra {
                if value.is_null() {
                    base.remove(&key);
                } else {
                    base.insert(key, value);
                }
            }
        }
        match base {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    fn check(config: &IssuerConfig, extra: Value) -> Result<CheckedClaims, OidcError> {
        check_claims(config, ISSUER, &header(Some("at+jwt")), &claims(extra), NOW)
    }

    #[test]
    fn good_claims_map_to_an_identity() {
        let checked = check(&config(), json!({})).unwrap();
        assert_eq!(
            checked.identity,
            Identity {
                name: "agent-7".to_owned(),
                kind: IdentityKind::Agent,
                groups: vec!["agents".to_owned(), "payments".to_owned()],
                auth_method: AuthMethod::Oidc {
                    issuer: ISSUER.to_owned()
                },
                expires_at: NOW + 600,
            }
        );
        assert_eq!(checked.client_id.as_deref(), Some("agent-7"));
    }

    #[test]
    fn lifetime_rules_with_leeway() {
        let config = config(); // leeway 60
        let table: Vec<(Value, &str)> = vec![
            (json!({"exp": NOW - 61}), "expired"),
            (json!({"exp": NOW - 60}), "expired"),
            (json!({"exp": NOW - 59}), "ok"),
            (json!({"exp": (NOW - 59) as f64 + 0.5}), "ok"),
            (json!({"exp": null}), "invalid"),
            (json!({"exp": "99999999999"}), "malformed"),
            (json!({"exp": true}), "malformed"),
            (json!({"exp": 1e300}), "malformed"),
            (json!({"nbf": NOW + 60}), "ok"),
            (json!({"nbf": NOW + 61}), "not yet"),
            (json!({"nbf": (NOW + 60) as f64 + 0.5}), "not yet"),
            (json!({"nbf": "99999999999"}), "malformed"),
            (json!({"iat": NOW + 60}), "ok"),
            (json!({"iat": NOW + 61}), "not yet"),
            (json!({"iat": null}), "ok"),
            (json!({"iat": [1]}), "malformed"),
        ];
        for (extra, expected) in table {
            let result = check(&config, extra.clone());
            let actual = match &result {
                Ok(_) => "ok",
                Err(OidcError::Expired { .. }) => "expired",
                Err(OidcError::NotYetValid { .. }) => "not yet",
                Err(OidcError::Malformed { .. }) => "malformed",
                Err(OidcError::InvalidClaims { .. }) => "invalid",
                Err(_) => "other",
            };
            assert_eq!(actual, expected, "{extra} → {result:?}");
        }
        let mut strict = config.clone();
        strict.leeway_seconds = 0;
        assert!(matches!(
            check(&strict, json!({"exp": NOW})),
            Err(OidcError::Expired {
                expired_at: NOW,
                now: NOW,
                ..
            })
        ));
        assert!(check(&strict, json!({"exp": NOW + 1})).is_ok());
    }

    #[test]
    fn issuer_must_match_the_discovery_issuer_exactly() {
        for issuer in [
            json!("https://login.example.com"),
            json!("https://evil.example/"),
        ] {
            assert!(matches!(
                check(&config(), json!({"iss": issuer})),
                Err(OidcError::UnknownIssuer { .. })
            ));
        }
        assert!(matches!(
            check(&config(), json!({"iss": 7})),
            Err(OidcError::Malformed { .. })
        ));
    }

    #[test]
    fn audience_rules() {
        let mut config = config();
        config.audiences = vec!["airlock".to_owned(), "api://airlock".to_owned()];
        let table = [
            (json!({"aud": "airlock"}), true),
            (json!({"aud": "api://airlock"}), true),
            (json!({"aud": ["other", "airlock"]}), true),
            (json!({"aud": "other"}), false),
            (json!({"aud": ["other"]}), false),
            (json!({"aud": []}), false),
            (json!({"aud": null}), false),
            (json!({"aud": "AIRLOCK"}), false),
        ];
        for (extra, ok) in table {
            let result = check(&config, extra.clone());
            if ok {
                assert!(result.is_ok(), "{extra}: {result:?}");
            } else {
                assert!(
                    matches!(result, Err(OidcError::WrongAudience { .. })),
                    "{extra}: {result:?}"
                );
            }
        }
        assert!(matches!(
            check(&config, json!({"aud": 5})),
            Err(OidcError::Malformed { .. })
        ));
        assert!(matches!(
            check(&config, json!({"aud": ["airlock", 5]})),
            Err(OidcError::Malformed { .. })
        ));
    }

    #[test]
    fn token_type_rules() {
        let access = config();
        let mut id = config();
        id.use_id_token = true;
        let table = [
            (&access, None, true),
            (&access, Some("at+jwt"), true),
            (&access, Some("application/at+JWT"), true),
            (&access, Some("JWT"), true),
            (&access, Some("logout+jwt"), false),
            (&access, Some("dpop+jwt"), false),
            (&id, None, true),
            (&id, Some("JWT"), true),
            (&id, Some("at+jwt"), false),
        ];
        for (config, token_type, ok) in table {
            let result = check_claims(config, ISSUER, &header(token_type), &claims(json!({})), NOW);
            assert_eq!(result.is_ok(), ok, "{token_type:?}: {result:?}");
        }
    }

    #[test]
    fn id_token_azp_must_be_an_accepted_client() {
        let mut config = config();
        config.use_id_token = true;
        let check =
            |extra: Value| check_claims(&config, ISSUER, &header(None), &claims(extra), NOW);
        assert!(check(json!({"client_id": null, "azp": "airlock"})).is_ok());
        assert!(matches!(
            check(json!({"client_id": null, "azp": "someone-else"})),
            Err(OidcError::WrongAudience { .. })
        ));
    }

    #[test]
    fn identity_name_and_groups_rules() {
        let mut config = config();
        assert!(matches!(
            check(&config, json!({"sub": null})),
            Err(OidcError::InvalidClaims { reason, .. }) if reason.contains("no identity claim `sub`")
        ));
        for bad in [json!(""), json!(42), json!("a\nb"), json!("x".repeat(256))] {
            assert!(
                matches!(
                    check(&config, json!({"sub": bad})),
                    Err(OidcError::InvalidClaims { .. })
                ),
                "{bad}"
            );
        }
        config.identity_claim = "ext.login".to_owned();
        let checked = check(&config, json!({"ext": {"login": "alice"}})).unwrap();
        assert_eq!(checked.identity.name, "alice");

        config.groups_claim = Some("scope".to_owned());
        let checked = check(
            &config,
            json!({"ext": {"login": "alice"}, "scope": "db:read  db:write"}),
        )
        .unwrap();
        assert_eq!(checked.identity.groups, vec!["db:read", "db:write"]);
        let checked = check(&config, json!({"ext": {"login": "alice"}})).unwrap();
        assert!(checked.identity.groups.is_empty());
        assert!(matches!(
            check(
                &config,
                json!({"ext": {"login": "alice"}, "scope": ["a", 1]})
            ),
            Err(OidcError::InvalidClaims { .. })
        ));
        assert!(matches!(
            check(
                &config,
                json!({"ext": {"login": "alice"}, "scope": {"a": 1}})
            ),
            Err(OidcError::InvalidClaims { .. })
        ));
    }

    #[test]
    fn kind_precedence_and_mapping() {
        let mut config = config();
        config.kind = Some(IdentityKind::Human);
        config.kind_claim = Some("principal_type".to_owned());
        config
            .kind_map
            .insert("svc".to_owned(), IdentityKind::Service);
        config.agent_client_ids = vec!["agent-7".to_owned()];
        let kind = |extra: Value| check(&config, extra).map(|checked| checked.identity.kind);

        // agent_client_ids wins over the claim.
        assert_eq!(
            kind(json!({"principal_type": "human"})),
            Ok(IdentityKind::Agent)
        );
        // azp counts as the client id when client_id is absent.
        assert_eq!(
            kind(json!({"client_id": null, "azp": "agent-7"})),
            Ok(IdentityKind::Agent)
        );
        // kind_map, then the plain names, then the default.
        assert_eq!(
            kind(json!({"client_id": "x", "principal_type": "svc"})),
            Ok(IdentityKind::Service)
        );
        assert_eq!(
            kind(json!({"client_id": "x", "principal_type": "agent"})),
            Ok(IdentityKind::Agent)
        );
        assert_eq!(kind(json!({"client_id": "x"})), Ok(IdentityKind::Human));
        // An unmappable value is refused, not defaulted.
        assert!(matches!(
            kind(json!({"client_id": "x", "principal_type": "robot"})),
            Err(OidcError::InvalidClaims { .. })
        ));
        assert!(matches!(
            kind(json!({"client_id": 7})),
            Err(OidcError::Malformed { .. })
        ));

        config.kind = None;
        assert!(matches!(
            check(&config, json!({"client_id": "x"})),
            Err(OidcError::InvalidClaims { reason, .. }) if reason.contains("no default `kind`")
        ));
    }
}
