//! An HTTP API request as a command: [`HttpRequest`], and the pure rules
//! that classify it (DESIGN.md "One core, many protocols").
//!
//! GET, HEAD and OPTIONS read; every other method writes, except a POST to
//! a path the *connection* declares read-only (the protocol crate sets
//! [`HttpRequest::read_only`] from its config, never from the request). A
//! request is complete only when its method is a known one and its path is
//! in the normal form policy globs are matched against
//! ([`http_path_is_normal`]): a path the upstream could read as another
//! path (`/a/../b`, `//b`, `/%61`) must not slip past a rule written for
//! that other path, so it is unclassified and fails closed.

use super::{effective_access, Access};
use serde::{Deserialize, Serialize};

/// The methods airlock knows, in capitals as they are sent (methods are
/// case-sensitive). Policy files may name only these.
pub const HTTP_METHODS: [&str; 9] = [
    "GET", "HEAD", "OPTIONS", "TRACE", "POST", "PUT", "PATCH", "DELETE", "CONNECT",
];

/// True for the methods that only read: GET, HEAD, OPTIONS.
pub fn http_method_reads(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// The access of `method` on its own (a read-only POST path aside).
pub fn http_method_access(method: &str) -> Access {
    if http_method_reads(method) {
        Access::Read
    } else {
        Access::Write
    }
}

/// True when `path` is in the form policy globs see: it starts with `/`,
/// has no empty, `.` or `..` segment (a trailing `/` is allowed), no query
/// or fragment, no backslash or control character, and no percent-escape
/// that an upstream may decode into something that changes the path (an
/// unreserved character, `/` or `\`) or that is not a valid escape. Other
/// escapes (`%20`, `%40`, UTF-8 bytes) stay as written and globs match them
/// as written.
pub fn http_path_is_normal(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    if path
        .chars()
        .any(|c| c.is_control() || matches!(c, '\\' | '?' | '#'))
    {
        return false;
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (index, segment) in segments.iter().enumerate() {
        if (segment.is_empty() && index != last) || *segment == "." || *segment == ".." {
            return false;
        }
    }
    let bytes = path.as_bytes();
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'%' {
            let decoded = match (bytes.get(index + 1), bytes.get(index + 2)) {
                (Some(high), Some(low)) => hex(*high).zip(hex(*low)).map(|(h, l)| h * 16 + l),
                _ => None,
            };
            match decoded {
                Some(value)
                    if !(value.is_ascii_alphanumeric()
                        || matches!(value, b'-' | b'.' | b'_' | b'~' | b'/' | b'\\')) => {}
                _ => return false,
            }
            index += 3;
        } else {
            index += 1;
        }
    }
    true
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}

/// One HTTP request, as the policy engine sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// The method as sent (`GET`, `POST`, …).
    pub method: String,
    /// The request path without query string, as sent (see
    /// [`http_path_is_normal`] for the form that classifies as complete).
    pub path: String,
    /// The connection lists this path as a read-only POST (a search or
    /// query endpoint). Set by the protocol crate from the connection's
    /// configuration, never from anything the client sends; it has no
    /// effect on other methods.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

impl HttpRequest {
    /// A request with no read-only marking.
    pub fn new(method: impl Into<String>, path: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            path: path.into(),
            read_only: false,
        }
    }

    /// GET/HEAD/OPTIONS and read-only POSTs read; the rest write.
    pub fn access(&self) -> Access {
        if self.read_only && self.method == "POST" {
            Access::Read
        } else {
            http_method_access(&self.method)
        }
    }

    /// A known method and a path in normal form.
    pub fn complete(&self) -> bool {
        HTTP_METHODS.contains(&self.method.as_str()) && http_path_is_normal(&self.path)
    }

    /// The access, never `Read` unless complete.
    pub fn effective_access(&self) -> Access {
        effective_access(self.access(), self.complete())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_classify() {
        let cases = [
            ("GET", false, Access::Read),
            ("HEAD", false, Access::Read),
            ("OPTIONS", false, Access::Read),
            ("TRACE", false, Access::Write),
            ("POST", false, Access::Write),
            ("POST", true, Access::Read),
            ("PUT", true, Access::Write),
            ("DELETE", true, Access::Write),
            ("PATCH", false, Access::Write),
            ("get", false, Access::Write),
        ];
        for (method, read_only, expected) in cases {
            let request = HttpRequest {
                read_only,
                ..HttpRequest::new(method, "/v1/x")
            };
            assert_eq!(request.access(), expected, "{method} read_only={read_only}");
        }
        // An unknown method is unclassified: a write at least.
        let request = HttpRequest::new("get", "/v1/x");
        assert!(!request.complete());
        assert_eq!(request.effective_access(), Access::Write);
        assert!(HttpRequest::new("PROPFIND", "/").effective_access() == Access::Write);
    }

    #[test]
    fn paths_in_normal_form() {
        let cases = [
            ("/", true),
            ("/v1/invoices", true),
            ("/v1/invoices/", true),
            ("/v1/invoices/inv%20one", true),
            ("/v1/users/a%40b.c", true),
            ("/v1/caf%C3%A9", true),
            ("", false),
            ("v1/invoices", false),
            ("//v1/invoices", false),
            ("/v1//invoices", false),
            ("/v1/./invoices", false),
            ("/v1/../admin", false),
            ("/v1/..", false),
            ("/v1/%2e%2e/admin", false),
            ("/v1/%69nvoices", false),
            ("/v1/invoices%2Fx", false),
            ("/v1/invoices%5cx", false),
            ("/v1/invoices%", false),
            ("/v1/invoices%zz", false),
            ("/v1/invoices?x=1", false),
            ("/v1/invoices#x", false),
            ("/v1\\invoices", false),
            ("/v1/in\nvoices", false),
        ];
        for (path, normal) in cases {
            assert_eq!(http_path_is_normal(path), normal, "{path:?}");
        }
    }
}
