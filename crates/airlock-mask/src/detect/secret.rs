//! The `secret` detector: credentials with a recognisable shape.
//!
//! - AWS access key ids (`AKIA…`, `ASIA…`, 20 characters) and GCP API keys
//!   (`AIza…`, 39 characters);
//! - GitHub tokens (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`);
//! - Slack tokens (`xoxb-`, `xoxa-`, `xoxp-`, `xoxr-`, `xoxs-`) and incoming
//!   webhook URLs (the `T…/B…/…` path is masked, the host kept);
//! - Stripe secret and restricted keys (`sk_live_`, `sk_test_`, `rk_live_`,
//!   `rk_test_`);
//! - JWTs: three base64url segments whose first decodes to a JSON object
//!   with an `"alg"` key (so the header starts `eyJ`);
//! - PEM private-key blocks, `-----BEGIN … PRIVATE KEY-----` to the matching
//!   `END` line, or to the end of the value when the block is truncated;
//! - AWS secret access keys (40 characters) after an `aws_secret_access_key`
//!   / `SecretAccessKey` label;
//! - passwords inside connection URIs (`postgres://user:PASSWORD@host`: only
//!   the password is masked) and in `password=…`, `"password": "…"` and
//!   end-of-line `password: …` pairs.
//!
//! Each rule has a literal prefix; one Aho-Corasick scan over the value finds
//! which rules could match, and only those rules' regexes run. Under the
//! partial style the public type prefix (`ghp_`, `AKIA`, `sk_live_`, the PEM
//! `BEGIN` line) is kept and the rest becomes a fixed `****`, so neither the
//! secret nor its length is revealed.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::bytes::Regex;

use super::{builtin_regex, is_word, scan, Found};
use crate::validate::jwt_header_valid;
use crate::MaskError;

/// What a rule's match becomes.
#[derive(Clone, Copy)]
enum Rule {
    AwsKey,
    GcpKey,
    GithubToken,
    SlackToken,
    SlackWebhook,
    StripeKey,
    Jwt,
    PemPrivateKey,
    UriPassword,
    PasswordPair,
    AwsSecretKey,
}

const RULES: &[(Rule, &str)] = &[
    (Rule::AwsKey, r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
    (Rule::GcpKey, r"\bAIza[0-9A-Za-z_\-]{35}"),
    (
        Rule::GithubToken,
        r"\b(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{40,255})\b",
    ),
    (Rule::SlackToken, r"\bxox[baprs]-[A-Za-z0-9\-]{10,250}"),
    (
        Rule::SlackWebhook,
        r"hooks\.slack\.com/services/(T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{16,})",
    ),
    (
        Rule::StripeKey,
        r"\b[sr]k_(?:live|test)_[0-9A-Za-z]{10,247}\b",
    ),
    (
        Rule::Jwt,
        r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*",
    ),
    (
        Rule::PemPrivateKey,
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?s:.)*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\z)",
    ),
    (
        Rule::UriPassword,
        r"\b[A-Za-z][A-Za-z0-9+.\-]{1,30}://[^\s:/?#@]*:([^\s/?#]{1,256})@",
    ),
    (
        Rule::PasswordPair,
        concat!(
            r#"(?im)(?:\b(?:password|passwd|pwd)\s*=\s*["']?([^\s"';,]{1,256})"#,
            r#"|["'](?:password|passwd|pwd)["']\s*:\s*["']([^"']{1,256})["']"#,
            // YAML-style `password: value` only when the value ends the line
            // (or the flow mapping), so prose like `Password: must be…` is not taken.
            r#"|\b(?:password|passwd)\s*:\s*["']?([^\s"',;{}]{1,256})["']?[ \t]*(?:$|[,}]))"#,
        ),
    ),
    (
        Rule::AwsSecretKey,
        r#"(?i)secret_?access_?key["']?\s*[:=]\s*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|\z)"#,
    ),
];

/// Literal prefixes and the index in [`RULES`] each one triggers.
const TRIGGERS: &[(&str, usize)] = &[
    ("AKIA", 0),
    ("ASIA", 0),
    ("AIza", 1),
    ("ghp_", 2),
    ("gho_", 2),
    ("ghu_", 2),
    ("ghs_", 2),
    ("ghr_", 2),
    ("github_pat_", 2),
    ("xoxb-", 3),
    ("xoxa-", 3),
    ("xoxp-", 3),
    ("xoxr-", 3),
    ("xoxs-", 3),
    ("hooks.slack.com/services/", 4),
    ("sk_live_", 5),
    ("sk_test_", 5),
    ("rk_live_", 5),
    ("rk_test_", 5),
    ("eyJ", 6),
    ("-----BEGIN ", 7),
    ("://", 8),
    ("password", 9),
    ("Password", 9),
    ("PASSWORD", 9),
    ("passwd", 9),
    ("Passwd", 9),
    ("PASSWD", 9),
    ("pwd", 9),
    ("Pwd", 9),
    ("PWD", 9),
    ("ecret_access_key", 10),
    ("ECRET_ACCESS_KEY", 10),
    ("ecretAccessKey", 10),
    ("ecretaccesskey", 10),
];

pub(crate) struct SecretDetector {
    triggers: AhoCorasick,
    rules: Vec<(Rule, Regex)>,
}

impl SecretDetector {
    pub fn new() -> Result<SecretDetector, MaskError> {
        let triggers = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .build(TRIGGERS.iter().map(|(literal, _)| literal))
            .map_err(|error| MaskError::Builtin {
                detector: "secret",
                reason: error.to_string(),
            })?;
        let rules = RULES
            .iter()
            .map(|(rule, pattern)| Ok((*rule, builtin_regex("secret", pattern)?)))
            .collect::<Result<Vec<_>, MaskError>>()?;
        Ok(SecretDetector { triggers, rules })
    }

    pub fn find(&self, haystack: &[u8], out: &mut Vec<Found>) {
        // Bit `i` set: rule `i` has a trigger in the haystack.
        let mut triggered: u32 = 0;
        for hit in self.triggers.find_iter(haystack) {
            if let Some((_, rule)) = TRIGGERS.get(hit.pattern().as_usize()) {
                triggered |= 1 << rule;
            }
        }
        if triggered == 0 {
            return;
        }
        for (index, (rule, regex)) in self.rules.iter().enumerate() {
            if triggered & (1 << index) == 0 {
                continue;
            }
            if regex.captures_len() > 1 {
                find_group(regex, haystack, out);
            } else {
                scan(
                    regex,
                    haystack,
                    0,
                    |start, end| check(*rule, haystack, start, end),
                    out,
                );
            }
        }
    }
}

/// Rules whose secret is one capture group (a password after `user:`, a
/// webhook path): mask the first group that took part in the match.
fn find_group(regex: &Regex, haystack: &[u8], out: &mut Vec<Found>) {
    let mut position = 0;
    while position <= haystack.len() {
        let Some(captures) = regex.captures_at(haystack, position) else {
            break;
        };
        let Some(whole) = captures.get(0) else {
            break;
        };
        let group = captures.iter().skip(1).flatten().next();
        match group {
            // Output of an earlier masking (`****`, or a fragment that
            // starts with stars) is not a new secret.
            Some(group)
                if !group.as_bytes().iter().all(|&byte| byte == b'*')
                    && !group.as_bytes().starts_with(b"***") =>
            {
                out.push(Found::new(group.start(), group.end()));
                position = whole.end().max(whole.start() + 1);
            }
            _ => position = whole.start() + 1,
        }
    }
}

fn check(rule: Rule, haystack: &[u8], start: usize, end: usize) -> Option<Found> {
    let candidate = haystack.get(start..end)?;
    let keep_prefix = match rule {
        Rule::AwsKey | Rule::GcpKey => 4,
        Rule::GithubToken => {
            if candidate.starts_with(b"github_pat_") {
                11
            } else {
                4
            }
        }
        Rule::SlackToken => 5,
        Rule::StripeKey => 8,
        Rule::Jwt => {
            let header = candidate.split(|&byte| byte == b'.').next()?;
            if !jwt_header_valid(header) {
                return None;
            }
            3
        }
        Rule::PemPrivateKey => {
            let header_end = candidate
                .windows(16)
                .position(|window| window == b"PRIVATE KEY-----")?
                + 16;
            let body = candidate.get(header_end..)?;
            // A masked block (`…KEY-----****`) has no key material left.
            if body.starts_with(b"****")
                || body
                    .iter()
                    .filter(|byte| byte.is_ascii_alphanumeric())
                    .count()
                    < 16
            {
                return None;
            }
            header_end
        }
        Rule::SlackWebhook | Rule::UriPassword | Rule::PasswordPair | Rule::AwsSecretKey => 0,
    };
    // GCP keys and Slack tokens have no closing `\b` in their pattern (they
    // may end in `-`); reject candidates glued to more token bytes.
    if matches!(rule, Rule::GcpKey)
        && haystack
            .get(end)
            .is_some_and(|&byte| is_word(byte) || byte == b'-')
    {
        return None;
    }
    Some(Found {
        start,
        end,
        keep_prefix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        let detector = SecretDetector::new().unwrap();
        super::super::matches_in(text, |bytes, out| detector.find(bytes, out))
    }

    const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

    #[test]
    fn catches() {
        let cases = [
            "AKIAIOSFODNN7EXAMPLE",
            "ASIAY34FZKBOKMUTVV7A",
            "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe",
            "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",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456",
            "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "rk_test_51H8abcdEFGHijklMNOP",
            JWT,
        ];
        for secret in cases {
            assert_eq!(found(&format!("key={secret} end")), [secret], "{secret}");
        }
        assert_eq!(
            found("postgres://app:s3cr3t!@db.internal:5432/prod"),
            ["s3cr3t!"]
        );
        assert_eq!(found("redis://:hunter2@cache:6379"), ["hunter2"]);
        assert_eq!(
            found("host=db user=app password=hunter2 sslmode=require"),
            ["hunter2"]
        );
        assert_eq!(
            found(r#"{"user":"a","password": "p@ss w0rd"}"#),
            ["p@ss w0rd"]
        );
        assert_eq!(found("db:\n  password: hunter2\n  host: x"), ["hunter2"]);
        assert_eq!(
            found("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"),
            ["wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"]
        );
        assert_eq!(
            found("https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"),
            ["T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"]
        );
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgwMbRvI0MBZhpI\n-----END RSA PRIVATE KEY-----";
        assert_eq!(found(&format!("key:\n{pem}\nrest")), [pem]);
        let truncated = "-----BEGIN PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn";
        assert_eq!(found(truncated), [truncated]);
    }

    #[test]
    fn ignores() {
        for text in [
            "AKIA is a prefix",
            "AKIAIOSFODNN7EXAMPL",
            "ghp_short",
            "sk_live_",
            "pk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "eyJub3Rhand0IjoxfQ.eyJzdWIiOiIxIn0.abc",
            "https://example.com/path?x=1",
            "http://host:8080/path@foo",
            "postgres://app@db/prod",
            "password reset requested",
            "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----",
            "-----BEGIN RSA PRIVATE KEY-----****",
            "postgres://app:****@db/prod",
            "the pwd command",
        ] {
            assert!(found(text).is_empty(), "{text}: {:?}", found(text));
        }
    }
}
