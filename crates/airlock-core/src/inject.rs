//! How a stored credential is sent to an upstream spoken to over HTTP
//! (`protocol: http` connections and MCP `url:` connections), and every
//! form in which an upstream may echo it back, so the gateway can replace
//! each before anything reaches the client. Pure; the protocol crates
//! build their header types from these strings.

use base64::Engine;

use crate::http_config::InjectConfig;

/// The credential as sent upstream: the header's name (lowercase for
/// `authorization`) and its value, as `inject` says.
pub fn credential_header(inject: &InjectConfig, username: &str, secret: &str) -> (String, String) {
    if let Some(header) = &inject.header {
        (header.clone(), secret.to_string())
    } else if inject.basic {
        let pair = format!("{username}:{secret}");
        (
            "authorization".into(),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ),
        )
    } else {
        ("authorization".into(), format!("Bearer {secret}"))
    }
}

/// Every form in which an upstream may echo the injected credential: the
/// secret itself, the header value, the base64 of `user:secret` (basic),
/// the secret in base64 and percent-encoded. Forms shorter than 4 bytes are
/// left out (they would match ordinary text).
pub fn echo_forms(inject: &InjectConfig, username: &str, secret: &str) -> Vec<Vec<u8>> {
    let standard = base64::engine::general_purpose::STANDARD;
    let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut forms = vec![
        secret.as_bytes().to_vec(),
        standard.encode(secret).into_bytes(),
        url_safe.encode(secret).into_bytes(),
        percent_encode(secret).into_bytes(),
    ];
    if inject.basic {
        let pair = format!("{username}:{secret}");
        forms.push(standard.encode(&pair).into_bytes());
        forms.push(url_safe.encode(&pair).into_bytes());
        // base64 of the pair without padding: the padded form contains it
        // only when the length is a multiple of 3.
        forms.push(
            base64::engine::general_purpose::STANDARD_NO_PAD
                .encode(&pair)
                .into_bytes(),
        );
    }
    // JSON escapes a `/` as `\/` in some encoders, and `"`/`\` always.
    let escaped = secret
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('/', "\\/");
    forms.push(escaped.into_bytes());
    forms.retain(|form| form.len() >= 4);
    forms.sort();
    forms.dedup();
    forms
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_way_and_its_echo_forms() {
        let header = InjectConfig {
            header: Some("X-Api-Key".into()),
            ..InjectConfig::default()
        };
        assert_eq!(
            credential_header(&header, "u", "s3cret"),
            ("X-Api-Key".into(), "s3cret".into())
        );
        let bearer = InjectConfig {
            bearer: true,
            ..InjectConfig::default()
        };
        assert_eq!(credential_header(&bearer, "u", "s3cret").1, "Bearer s3cret");
        let basic = InjectConfig {
            basic: true,
            ..InjectConfig::default()
        };
        assert_eq!(
            credential_header(&basic, "user", "pass").1,
            "Basic dXNlcjpwYXNz"
        );
        let forms = echo_forms(&basic, "user", "pass");
        assert!(forms.contains(&b"dXNlcjpwYXNz".to_vec()));
        assert!(forms.contains(&b"pass".to_vec()));
    }
}
