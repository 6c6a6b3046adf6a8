//! Who is signed in: the server-side sessions of the UI, their roles (and
//! [`Role`], the one check of the pages and actions for auditors or admins) and
//! CSRF tokens.
//!
//! A sign-in is kept in memory only, keyed by the SHA-256 of the random
//! cookie value (so the map holds no value a browser could present), and
//! holds the identity and the id of the token it was made with, never the
//! token itself. It ends when its time is up (`ui.session_ttl`, or the
//! token's own expiry, whichever is first), at sign-out, or when the
//! token is found revoked or expired on a request. Sign-ins are per
//! gateway process: behind a load balancer, keep a browser on one replica.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use airlock_core::config::UiOptions;
use airlock_types::Identity;

use crate::errors::WebError;

/// At most this many sign-ins are kept at once (expired ones are dropped
/// first); a sign-in beyond it is refused rather than evicting someone.
pub const MAX_SIGN_INS: usize = 10_000;

/// What a signed-in person may do, from their groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Roles {
    /// Reads everything: every review, live sessions, policy versions.
    pub auditor: bool,
    /// Manages: ends live sessions (and is an auditor).
    pub admin: bool,
}

/// Who a page or an action is for, beyond signing in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `ui.auditor_groups` (admins are auditors too).
    Auditor,
    /// `ui.admin_groups`.
    Admin,
}

impl Role {
    /// `Ok` when `roles` hold this role; else the refusal, which says who
    /// `what` ("tokens are", "ending a session is") is for.
    pub fn check(self, roles: Roles, what: &str) -> Result<(), WebError> {
        let (held, whom) = match self {
            Self::Auditor => (
                roles.auditor,
                "auditors and admins (ui.auditor_groups, ui.admin_groups)",
            ),
            Self::Admin => (roles.admin, "admins (ui.admin_groups)"),
        };
        if held {
            Ok(())
        } else {
            Err(WebError::Forbidden(format!("{what} for {whom}")))
        }
    }
}

impl Roles {
    /// The roles of `identity` under `options`. Deciding reviews is no
    /// role: it follows from each review's approver groups.
    pub fn of(identity: &Identity, options: &UiOptions) -> Self {
        let member = |groups: &[String]| identity.groups.iter().any(|group| groups.contains(group));
        let admin = member(&options.admin_groups);
        Self {
            admin,
            auditor: admin || member(&options.auditor_groups),
        }
    }

    /// The role names, for display and the sign-in record.
    pub fn names(self) -> Vec<String> {
        let mut names = vec!["approver".to_string()];
        if self.auditor {
            names.push("auditor".into());
        }
        if self.admin {
            names.push("admin".into());
        }
        names
    }
}

/// One signed-in person.
#[derive(Debug, Clone)]
pub struct SignIn {
    pub identity: Identity,
    pub roles: Roles,
    /// The token id of an airlock token (checked for revocation on every
    /// request); `None` for an OIDC token (it expires by itself).
    pub token_id: Option<String>,
    /// The CSRF token every form of this sign-in carries.
    pub csrf: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// The sign-ins of this process.
#[derive(Default)]
pub struct SignIns {
    entries: Mutex<HashMap<[u8; 32], Arc<SignIn>>>,
}

/// A random value for a cookie or a CSRF token (256 bits, hex).
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

fn key(cookie: &str) -> [u8; 32] {
    Sha256::digest(cookie.as_bytes()).into()
}

/// Whether a presented secret equals the expected one, compared as
/// digests so the time taken says nothing about the expected value.
pub fn secrets_match(expected: &str, presented: &str) -> bool {
    !expected.is_empty() && key(expected) == key(presented)
}

impl SignIns {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Arc<SignIn>>> {
        // A panic elsewhere while it was held leaves a usable map.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps `sign_in`; returns the cookie value that names it, or `None`
    /// when [`MAX_SIGN_INS`] live sign-ins exist.
    pub fn create(&self, sign_in: SignIn, now: i64) -> Option<String> {
        let mut entries = self.entries();
        if entries.len() >= MAX_SIGN_INS {
            entries.retain(|_, entry| entry.expires_at > now);
            if entries.len() >= MAX_SIGN_INS {
                return None;
            }
        }
        let cookie = random_token();
        entries.insert(key(&cookie), Arc::new(sign_in));
        Some(cookie)
    }

    /// The live sign-in a cookie names (an expired one is dropped).
    pub fn get(&self, cookie: &str, now: i64) -> Option<Arc<SignIn>> {
        let mut entries = self.entries();
        let key = key(cookie);
        match entries.get(&key) {
            Some(entry) if entry.expires_at > now => Some(Arc::clone(entry)),
            Some(_) => {
                entries.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends a sign-in.
    pub fn remove(&self, cookie: &str) {
        self.entries().remove(&key(cookie));
    }

    /// Live sign-ins (for tests and the count).
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// True when nobody is signed in.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().to_string())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_types::{AuthMethod, IdentityKind};

    fn person(groups: &[&str]) -> Identity {
        Identity {
            name: "alice".into(),
            kind: IdentityKind::Human,
            groups: groups.iter().map(|group| group.to_string()).collect(),
            auth_method: AuthMethod::AirlockToken {
                token_id: "t-1".into(),
            },
            expires_at: 2_000,
        }
    }

    #[test]
    fn roles_follow_groups() {
        let options = UiOptions {
            admin_groups: vec!["ops".into()],
            auditor_groups: vec!["audit".into()],
            ..UiOptions::default()
        };
        assert_eq!(Roles::of(&person(&["dba"]), &options), Roles::default());
        assert_eq!(
            Roles::of(&person(&["dba", "audit"]), &options),
            Roles {
                auditor: true,
                admin: false
            }
        );
        assert_eq!(
            Roles::of(&person(&["ops"]), &options),
            Roles {
                auditor: true,
                admin: true
            }
        );
    }

    #[test]
    fn sign_ins_expire_and_end() {
        let sign_ins = SignIns::default();
        let sign_in = SignIn {
            identity: person(&[]),
            roles: Roles::default(),
            token_id: None,
            csrf: random_token(),
            expires_at: 100,
        };
        let cookie = sign_ins.create(sign_in.clone(), 10).unwrap();
        assert!(sign_ins.get(&cookie, 99).is_some());
        assert!(sign_ins.get("another", 99).is_none());
        assert!(sign_ins.get(&cookie, 100).is_none());
        assert!(sign_ins.is_empty(), "an expired sign-in is dropped");
        let cookie = sign_ins.create(sign_in, 10).unwrap();
        sign_ins.remove(&cookie);
        assert!(sign_ins.get(&cookie, 11).is_none());
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(secrets_match("abc", "abc"));
        assert!(!secrets_match("abc", "abd"));
        assert!(!secrets_match("abc", ""));
        assert!(!secrets_match("", ""));
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            "a=1; airlock_ui=xyz; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&headers, "airlock_ui").as_deref(), Some("xyz"));
        assert_eq!(cookie(&headers, "airlock"), None);
    }
}
