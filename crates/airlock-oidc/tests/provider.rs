//! End-to-end tests of `OidcValidator` against a real OpenID Provider
//! (`oidc-provider` on node, started per test on loopback by
//! `common::Provider`). Tokens come from the provider's real token endpoint,
//! or are signed in the test with the provider's own private keys to craft
//! exact claims.

// Test harness code: a failed setup step must abort the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use airlock_oidc::{JwsAlgorithm, OidcError};
use airlock_types::{AuthMethod, IdentityKind};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{
    accepted, agent_claims, foreign_ed25519_key, header_of, now, refused, sign, signing_input,
    with, Provider,
};
use serde_json::json;

const SLOW: Duration = Duration::from_secs(60);

#[tokio::test]
async fn provider_tokens_are_accepted_lazily_and_keys_are_cached() {
    let provider = Provider::start().await;
    let validator = provider.validator(provider.config(), SLOW);
    // Nothing fetched before the first token arrives.
    assert_eq!(provider.fetch_counts().await, (1, 0)); // the harness' own readiness probe

    for (resource, algorithm) in [
        ("urn:airlock", "RS256"),
        ("urn:airlock:es256", "ES256"),
        ("urn:airlock:eddsa", "EdDSA"),
    ] {
        let token = provider.token("agent-7", resource).await;
        assert_eq!(header_of(&token)["alg"], algorithm);
        let validated = accepted(&validator, &token).await;
        let identity = &validated.identity;
        assert_eq!(identity.name, "agent-7");
        assert_eq!(identity.kind, IdentityKind::Agent);
        assert_eq!(identity.groups, vec!["agents", "payments"]);
        assert_eq!(
            identity.auth_method,
            AuthMethod::Oidc {
                issuer: provider.issuer.clone()
            }
        );
        assert_eq!(Some(identity.expires_at), validated.claims["exp"].as_i64());
        assert!(identity.expires_at > now());
        assert_eq!(validated.issuer_name, "corp");
        assert_eq!(validated.client_id.as_deref(), Some("agent-7"));
        assert_eq!(validated.claims["aud"], "airlock");
    }
    // One discovery and one JWKS fetch served all three tokens.
    assert_eq!(provider.fetch_counts().await, (2, 1));

    // svc-1 is not an agent client: its kind comes from `principal_type`
    // through kind_map (svc → service).
    let token = provider.token("svc-1", "urn:airlock").await;
    let validated = accepted(&validator, &token).await;
    assert_eq!(validated.identity.name, "svc-1");
    assert_eq!(validated.identity.kind, IdentityKind::Service);
    assert_eq!(validated.identity.groups, vec!["ops"]);
}

#[tokio::test]
async fn provider_tokens_for_another_audience_or_expired_are_refused() {
    let provider = Provider::start().await;
    let validator = provider.validator(provider.config(), SLOW);

    let other = provider.token("agent-7", "urn:other").await;
    assert!(matches!(
        refused(&validator, &other).await,
        OidcError::WrongAudience { provider } if provider == "corp"
    ));

    // A real five-second token, checked without leeway once it has lapsed.
    let mut strict = provider.config();
    strict.leeway_seconds = 0;
    let strict = provider.validator(strict, SLOW);
    let short = provider.token("agent-7", "urn:airlock:short").await;
    let expires_at = accepted(&strict, &short).await.identity.expires_at;
    while now() < expires_at {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(matches!(
        refused(&strict, &short).await,
        OidcError::Expired { expired_at, .. } if expired_at == expires_at
    ));
    // The default leeway (60 s) still accepts it: leeway is applied.
    accepted(&validator, &short).await;
}

#[tokio::test]
async fn crafted_claims_signed_with_the_provider_key_are_checked() {
    let provider = Provider::start().await;
    let validator = provider.validator(provider.config(), SLOW);
    let rsa = provider.private_key("rsa-1").await;
    let good = agent_claims(&provider.issuer);
    let now = now();

    // The test signer is faithful: an honest crafted token is accepted.
    accepted(&validator, &sign(&rsa, &good, json!({}))).await;
    // Fractional dates and array audiences are fine.
    accepted(
        &validator,
        &sign(
            &rsa,
            &with(
                good.clone(),
                json!({"aud": ["x", "airlock"], "exp": (now + 60) as f64 + 0.5}),
            ),
            json!({}),
        ),
    )
    .await;

    let expired = sign(
        &rsa,
        &with(good.clone(), json!({"exp": now - 3600, "iat": now - 7200})),
        json!({}),
    );
    assert!(matches!(
        refused(&validator, &expired).await,
        OidcError::Expired { expired_at, .. } if expired_at == now - 3600
    ));
    let within_leeway = sign(
        &rsa,
        &with(good.clone(), json!({"exp": now - 30})),
        json!({}),
    );
    accepted(&validator, &within_leeway).await;

    let not_before = sign(
        &rsa,
        &with(good.clone(), json!({"nbf": now + 3600})),
        json!({}),
    );
    assert!(matches!(
        refused(&validator, &not_before).await,
        OidcError::NotYetValid { .. }
    ));
    let future_iat = sign(
        &rsa,
        &with(good.clone(), json!({"iat": now + 3600})),
        json!({}),
    );
    assert!(matches!(
        refused(&validator, &future_iat).await,
        OidcError::NotYetValid { .. }
    ));

    for audience in [
        json!("other"),
        json!(["other", "airlock-test"]),
        json!(null),
    ] {
        let token = sign(
            &rsa,
            &with(good.clone(), json!({ "aud": audience })),
            json!({}),
        );
        assert!(
            matches!(
                refused(&validator, &token).await,
                OidcError::WrongAudience { .. }
            ),
            "aud {audience}"
        );
    }

    // The configured issuer has a trailing slash, the provider's has none:
    // tokens must carry the provider's exact form.
    let slash_iss = sign(
        &rsa,
        &with(
            good.clone(),
            json!({"iss": format!("{}/", provider.issuer)}),
        ),
        json!({}),
    );
    assert!(matches!(
        refused(&validator, &slash_iss).await,
        OidcError::UnknownIssuer { .. }
    ));
    let other_iss = sign(
        &rsa,
        &with(good.clone(), json!({"iss": "https://evil.example"})),
        json!({}),
    );
    assert!(matches!(
        refused(&validator, &other_iss).await,
        OidcError::UnknownIssuer { .. }
    ));

    // Type confusion on dates is refused, not ignored.
    for changes in [
        json!({"exp": "99999999999"}),
        json!({"nbf": "99999999999"}),
        json!({"exp": null}),
    ] {
        let token = sign(&rsa, &with(good.clone(), changes.clone()), json!({}));
        assert!(
            matches!(
                refused(&validator, &token).await,
                OidcError::Malformed { .. } | OidcError::InvalidClaims { .. }
            ),
            "{changes}"
        );
    }

    // Other JWT types the provider could sign do not pass as access tokens.
    let logout = sign(&rsa, &good, json!({"typ": "logout+jwt"}));
    assert!(matches!(
        refused(&validator, &logout).await,
        OidcError::InvalidClaims { .. }
    ));
    let no_subject = sign(&rsa, &with(good.clone(), json!({"sub": null})), json!({}));
    assert!(matches!(
        refused(&validator, &no_subject).await,
        OidcError::InvalidClaims { .. }
    ));

    // ID-token mode: audience is the client id, `at+jwt` is refused.
    let mut id_config = provider.config();
    id_config.use_id_token = true;
    id_config.audiences = vec!["agent-7".to_owned()];
    let id_validator = provider.validator(id_config, SLOW);
    let id_claims = with(
        good.clone(),
        json!({"aud": "agent-7", "azp": "agent-7", "client_id": null}),
    );
    let id_token = sign(&rsa, &id_claims, json!({"typ": "JWT"}));
    assert_eq!(
        accepted(&id_validator, &id_token).await.identity.kind,
        IdentityKind::Agent
    );
    let access_token = sign(&rsa, &id_claims, json!({}));
    assert!(matches!(
        refused(&id_validator, &access_token).await,
        OidcError::InvalidClaims { .. }
    ));
}

#[tokio::test]
async fn tampered_tokens_are_refused() {
    let provider = Provider::start().await;
    let validator = provider.validator(provider.config(), SLOW);
    let token = provider.token("agent-7", "urn:airlock").await;
    accepted(&validator, &token).await;
    let [header, payload, signature]: [&str; 3] =
        token.split('.').collect::<Vec<_>>().try_into().unwrap();

    // Flip one byte of the payload (sub agent-7 → agent-8), keep the signature.
    let mut claims = URL_SAFE_NO_PAD.decode(payload).unwrap();
    let position = claims
        .windows(7)
        .position(|window| window == b"agent-7")
        .unwrap();
    claims[position + 6] = b'8';
    let forged = format!("{header}.{}.{signature}", URL_SAFE_NO_PAD.encode(&claims));
    assert!(matches!(
        refused(&validator, &forged).await,
        OidcError::BadSignature { .. }
    ));

    // Flip one byte of the signature.
    let mut raw_signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    raw_signature[10] ^= 0x01;
    let flipped = format!(
        "{header}.{payload}.{}",
        URL_SAFE_NO_PAD.encode(&raw_signature)
    );
    assert!(matches!(
        refused(&validator, &flipped).await,
        OidcError::BadSignature { .. }
    ));

    // Truncated signature, and the signature of another token.
    let truncated = format!(
        "{header}.{payload}.{}",
        URL_SAFE_NO_PAD.encode(&raw_signature[..100])
    );
    assert!(matches!(
        refused(&validator, &truncated).await,
        OidcError::BadSignature { .. }
    ));
    let other = provider.token("svc-1", "urn:airlock").await;
    let spliced = format!("{header}.{payload}.{}", other.split('.').nth(2).unwrap());
    assert!(matches!(
        refused(&validator, &spliced).await,
        OidcError::BadSignature { .. }
    ));
}

#[tokio::test]
async fn alg_none_and_algorithm_confusion_are_refused() {
    let provider = Provider::start().await;
    let validator = provider.validator(provider.config(), SLOW);
    let claims = agent_claims(&provider.issuer);
    let jwks = provider.private_keys().await;
    let rsa = provider.private_key("rsa-1").await;

    // alg none, with and without a signature.
    for algorithm in ["none", "None", "NONE"] {
        let input = signing_input(&json!({"alg": algorithm, "typ": "at+jwt"}), &claims);
        for token in [format!("{input}."), format!("{input}.c2lnbmF0dXJl")] {
            assert!(
                matches!(
                    refused(&validator, &token).await,
                    OidcError::DisallowedAlgorithm { .. }
                ),
                "{algorithm}"
            );
        }
    }

    // HS256 keyed with the provider's RSA public key, in the forms an
    // attacker would try (JWK JSON, raw modulus), naming the RSA kid.
    let public_rsa = json!({"kty": "RSA", "kid": "rsa-1", "n": rsa["n"], "e": rsa["e"]});
    let secrets = [
        public_rsa.to_string().into_bytes(),
        URL_SAFE_NO_PAD.decode(rsa["n"].as_str().unwrap()).unwrap(),
    ];
    for secret in secrets {
        let input = signing_input(
            &json!({"alg": "HS256", "kid": "rsa-1", "typ": "at+jwt"}),
            &claims,
        );
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
        let tag = ring::hmac::sign(&key, input.as_bytes());
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
        assert!(matches!(
            refused(&validator, &token).await,
            OidcError::DisallowedAlgorithm { reason, .. } if reason.contains("symmetric")
        ));
    }

    // A supported alg that does not match the key it names: ES256 signed
    // with the EC key but naming the RSA kid, and RS256 naming the EC kid.
    let ec = jwks.iter().find(|key| key["kid"] == "ec-1").unwrap();
    let es_as_rsa = sign(ec, &claims, json!({"kid": "rsa-1"}));
    assert!(matches!(
        refused(&validator, &es_as_rsa).await,
        OidcError::DisallowedAlgorithm { reason, .. } if reason.contains("RS256")
    ));
    let rs_as_ec = sign(&rsa, &claims, json!({"kid": "ec-1"}));
    assert!(matches!(
        refused(&validator, &rs_as_ec).await,
        OidcError::DisallowedAlgorithm { .. }
    ));

    // An algorithm the provider supports but this issuer's config does not.
    let mut rsa_only = provider.config();
    rsa_only.algorithms = vec![JwsAlgorithm::RS256];
    let rsa_only = provider.validator(rsa_only, SLOW);
    let es_token = provider.token("agent-7", "urn:airlock:es256").await;
    assert!(matches!(
        refused(&rsa_only, &es_token).await,
        OidcError::DisallowedAlgorithm { reason, .. } if reason.contains("algorithms")
    ));
    accepted(&rsa_only, &provider.token("agent-7", "urn:airlock").await).await;
}

#[tokio::test]
async fn unknown_keys_are_refused_and_refresh_is_rate_limited() {
    let provider = Provider::start().await;
    let min_refresh = Duration::from_secs(3);
    let validator = provider.validator(provider.config(), min_refresh);
    let claims = agent_claims(&provider.issuer);
    accepted(&validator, &provider.token("agent-7", "urn:airlock").await).await;
    assert_eq!(provider.fetch_counts().await, (2, 1));

    // A key the provider never published, even when the token points at it
    // with `jku`/`jwk` headers: unknown, and nothing is fetched from there.
    let foreign = foreign_ed25519_key("attacker");
    let public = json!({"kty": "OKP", "crv": "Ed25519", "kid": "attacker", "x": foreign["x"]});
    let forged = sign(
        &foreign,
        &claims,
        json!({"jku": "http://127.0.0.1:9/jwks", "jwk": public}),
    );
    let error = refused(&validator, &forged).await;
    assert!(
        matches!(&error, OidcError::UnknownKey { kid, .. } if kid == "\"attacker\""),
        "{error}"
    );
    // Keys were fetched less than `min_refresh` ago: no refetch, however
    // many unknown kids arrive.
    for _ in 0..5 {
        refused(&validator, &forged).await;
    }
    assert_eq!(provider.fetch_counts().await, (2, 1));

    // After the interval, one unknown kid refreshes once; the key is still
    // unknown, and the next attempts are rate-limited again.
    tokio::time::sleep(min_refresh + Duration::from_millis(200)).await;
    for _ in 0..5 {
        assert!(matches!(
            refused(&validator, &forged).await,
            OidcError::UnknownKey { .. }
        ));
    }
    assert_eq!(provider.fetch_counts().await, (3, 2));

    // A token without kid, signed by a foreign key of a type the provider
    // publishes: tried against the provider's Ed25519 key, refused.
    let no_kid = sign(&foreign, &claims, json!({"kid": null}));
    assert!(matches!(
        refused(&validator, &no_kid).await,
        OidcError::BadSignature { .. }
    ));
    // The provider's own key without kid is found and accepted.
    let ed = provider.private_key("ed-1").await;
    accepted(&validator, &sign(&ed, &claims, json!({"kid": null}))).await;
}

#[tokio::test]
async fn rotated_signing_keys_are_picked_up_without_restarting_the_validator() {
    let provider = Provider::start().await;
    let mut config = provider.config();
    config.jwks_refresh_seconds = 2;
    let min_refresh = Duration::from_millis(500);
    let validator = provider.validator(config, min_refresh);

    let old_token = provider.token("agent-7", "urn:airlock").await;
    assert_eq!(header_of(&old_token)["kid"], "rsa-1");
    accepted(&validator, &old_token).await;
    let old_key = provider.private_key("rsa-1").await;

    // Rotation, step 1: the provider publishes a new key and signs with it.
    provider
        .rotate(json!([{"kty": "RSA", "kid": "rsa-2"}]), json!([]))
        .await;
    let new_token = provider.token("agent-7", "urn:airlock").await;
    assert_eq!(header_of(&new_token)["kid"], "rsa-2");
    tokio::time::sleep(min_refresh).await;
    // Unknown kid → immediate refresh → accepted; the old key still works.
    accepted(&validator, &new_token).await;
    accepted(&validator, &old_token).await;

    // Step 2: the old key is withdrawn. Once the cached set is older than
    // jwks_refresh_seconds, it is fetched again and the old kid is refused,
    // for provider tokens and for anything else signed with that key.
    provider.rotate(json!([]), json!(["rsa-1"])).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(matches!(
        refused(&validator, &old_token).await,
        OidcError::UnknownKey { kid, .. } if kid == "\"rsa-1\""
    ));
    let crafted_old = sign(&old_key, &agent_claims(&provider.issuer), json!({}));
    assert!(matches!(
        refused(&validator, &crafted_old).await,
        OidcError::UnknownKey { .. }
    ));
    accepted(&validator, &new_token).await;
    accepted(&validator, &provider.token("agent-7", "urn:airlock").await).await;
}

#[tokio::test]
async fn unreachable_provider_fails_closed() {
    let mut provider = Provider::start().await;
    let token = provider.token("agent-7", "urn:airlock").await;
    let mut config = provider.config();
    config.jwks_refresh_seconds = 1;
    let warm = provider.validator(config.clone(), Duration::from_millis(500));
    accepted(&warm, &token).await;

    provider.stop().await;

    // No keys cached: refused, and the error says it is the provider's fault.
    let cold = provider.validator(config, Duration::from_millis(500));
    let error = refused(&cold, &token).await;
    assert!(
        matches!(&error, OidcError::FetchFailed { provider, .. } if provider == "corp"),
        "{error}"
    );
    assert!(error.is_provider_failure());
    // Remembered: the next attempt is refused without waiting on the network.
    let started = std::time::Instant::now();
    assert!(matches!(
        refused(&cold, &token).await,
        OidcError::FetchFailed { .. }
    ));
    assert!(started.elapsed() < Duration::from_millis(400));

    // Keys cached and fresh: still accepted. Once due for refresh: refused.
    accepted(&warm, &token).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(matches!(
        refused(&warm, &token).await,
        OidcError::FetchFailed { .. }
    ));
}

#[tokio::test]
async fn discovery_must_name_the_configured_issuer() {
    let provider = Provider::start().await;
    // Same server reached as `localhost`: its discovery document names
    // 127.0.0.1, so it is not the issuer configured here.
    let localhost_issuer = provider.issuer.replace("127.0.0.1", "localhost");
    let mut config = provider.config();
    config.issuer = localhost_issuer.clone();
    let validator = provider.validator(config, SLOW);
    let rsa = provider.private_key("rsa-1").await;
    let token = sign(
        &rsa,
        &with(
            agent_claims(&provider.issuer),
            json!({"iss": localhost_issuer}),
        ),
        json!({}),
    );
    let error = refused(&validator, &token).await;
    assert!(
        matches!(&error, OidcError::FetchFailed { reason, .. } if reason.contains("discovery document names issuer")),
        "{error}"
    );
}
