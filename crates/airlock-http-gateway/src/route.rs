//! Routing: the request target `/<connection>/<rest>?<query>` becomes the
//! connection's name and the path relative to it. Pure.
//!
//! The path the policy sees is the path the upstream gets (below the
//! connection's base URL), so a path the upstream could read as another
//! one must never pass: dot segments, empty segments, encoded slashes,
//! backslashes or dots, and any escape of an unreserved character are
//! refused here (`airlock_types::command::http::http_path_is_normal`), which
//! also means no target can climb out of the connection's prefix. The
//! connection segment itself must be a plain name (no escapes).

use airlock_types::command::http::http_path_is_normal;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route<'a> {
    /// The connection's name (first path segment).
    pub connection: &'a str,
    /// The path below the connection, starting with `/` (`/` when none).
    pub path: &'a str,
    /// The query string, without `?`, as sent.
    pub query: Option<&'a str>,
}

/// Why a request target cannot be routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// No connection segment (`/`, or a target not starting with `/`).
    #[error("the path must start with /<connection>/")]
    NoConnection,
    /// The connection segment is not a plain name.
    #[error("the connection name in the path is not a plain name")]
    BadConnection,
    /// The rest is not a path in normal form.
    #[error("the path is not in normal form (no dot or empty segments, encoded slashes or dots, backslashes)")]
    NotNormal,
}

/// True for a connection name as it may appear in a path.
pub fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'))
        && name != "."
        && name != ".."
}

/// Splits an origin-form request path (what hyper gives as `uri.path()`,
/// still percent-encoded) and its query into a [`Route`].
pub fn route<'a>(path: &'a str, query: Option<&'a str>) -> Result<Route<'a>, RouteError> {
    let rest = path.strip_prefix('/').ok_or(RouteError::NoConnection)?;
    let (connection, below) = match rest.find('/') {
        Some(index) => (
            rest.get(..index).unwrap_or(""),
            rest.get(index..).unwrap_or("/"),
        ),
        None => (rest, "/"),
    };
    if connection.is_empty() {
        return Err(RouteError::NoConnection);
    }
    if !plain_name(connection) {
        return Err(RouteError::BadConnection);
    }
    if !http_path_is_normal(below) {
        return Err(RouteError::NotNormal);
    }
    if query.is_some_and(|query| {
        query
            .bytes()
            .any(|byte| byte.is_ascii_control() || byte == b'#')
    }) {
        return Err(RouteError::NotNormal);
    }
    Ok(Route {
        connection,
        path: below,
        query,
    })
}

/// The upstream request target: the connection's base path (no trailing
/// `/`), the routed path, the query.
pub fn upstream_target(base_path: &str, route: &Route<'_>) -> String {
    let base = base_path.trim_end_matches('/');
    let mut target = String::with_capacity(base.len() + route.path.len() + 16);
    target.push_str(base);
    target.push_str(route.path);
    if let Some(query) = route.query {
        target.push('?');
        target.push_str(query);
    }
    target
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn routes_by_first_segment() {
        let routed = route("/billing-api/v1/invoices", Some("limit=2")).unwrap();
        assert_eq!(routed.connection, "billing-api");
        assert_eq!(routed.path, "/v1/invoices");
        assert_eq!(routed.query, Some("limit=2"));
        assert_eq!(route("/api", None).unwrap().path, "/");
        assert_eq!(route("/api/", None).unwrap().path, "/");
        assert_eq!(
            upstream_target("/base/", &route("/api/x/y", Some("a=1")).unwrap()),
            "/base/x/y?a=1"
        );
        assert_eq!(upstream_target("", &route("/api", None).unwrap()), "/");
    }

    #[test]
    fn refuses_tricks() {
        let cases = [
            ("/", RouteError::NoConnection),
            ("//x", RouteError::NoConnection),
            ("x", RouteError::NoConnection),
            ("/a%2Fb/x", RouteError::BadConnection),
            ("/../x", RouteError::BadConnection),
            ("/./x", RouteError::BadConnection),
            ("/api/../admin", RouteError::NotNormal),
            ("/api/%2e%2e/admin", RouteError::NotNormal),
            ("/api/%2E%2e/admin", RouteError::NotNormal),
            ("/api/a%2fb", RouteError::NotNormal),
            ("/api/a%5Cb", RouteError::NotNormal),
            ("/api/a\\b", RouteError::NotNormal),
            ("/api//x", RouteError::NotNormal),
            ("/api/./x", RouteError::NotNormal),
            ("/api/x/..", RouteError::NotNormal),
            ("/api/%zz", RouteError::NotNormal),
        ];
        for (path, expected) in cases {
            assert_eq!(route(path, None), Err(expected), "{path}");
        }
    }

    /// Resolves dot segments the way an upstream would (RFC 3986 5.2.4),
    /// after decoding every escape: what the upstream may see.
    fn resolved(path: &str) -> String {
        let decoded = decode(path);
        let mut out: Vec<&str> = Vec::new();
        for segment in decoded.split(['/', '\\']) {
            match segment {
                "" | "." => {}
                ".." => {
                    out.pop();
                }
                other => out.push(other),
            }
        }
        format!("/{}", out.join("/"))
    }

    fn decode(path: &str) -> String {
        let bytes = path.as_bytes();
        let mut out = Vec::new();
        let mut index = 0;
        while let Some(&byte) = bytes.get(index) {
            if byte == b'%' {
                if let Some(hex) = path.get(index + 1..index + 3) {
                    if let Ok(value) = u8::from_str_radix(hex, 16) {
                        out.push(value);
                        index += 3;
                        continue;
                    }
                }
            }
            out.push(byte);
            index += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    proptest! {
        /// Whatever the target, a routed request stays below the
        /// connection's base path, even after the upstream decodes escapes
        /// and resolves dot segments, and its connection is a plain name.
        #[test]
        fn never_escapes_the_prefix(
            segments in proptest::collection::vec(
                prop_oneof![
                    Just("..".to_string()), Just(".".to_string()), Just("".to_string()),
                    Just("%2e%2e".to_string()), Just("%2E.".to_string()), Just("%2f".to_string()),
                    Just("%5c".to_string()), Just("a%2F..".to_string()), Just("\\..".to_string()),
                    "[a-z%./\\\\]{0,6}",
                ],
                0..8,
            )
        ) {
            let path = format!("/{}", segments.join("/"));
            if let Ok(routed) = route(&path, None) {
                prop_assert!(plain_name(routed.connection));
                let target = upstream_target("/base", &routed);
                let seen = resolved(&target);
                prop_assert!(seen == "/base" || seen.starts_with("/base/"), "{path} -> {target} -> {seen}");
                let decoded = decode(routed.path);
                prop_assert!(!decoded.contains('\\'), "{path}");
                prop_assert!(!decoded.split('/').any(|segment| segment == ".." || segment == "."), "{path}");
            }
        }
    }
}
