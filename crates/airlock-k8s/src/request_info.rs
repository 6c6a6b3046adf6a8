//! Request info: what a Kubernetes API request is, from its method, path
//! and query, the way the API server's own `RequestInfoFactory` reads it
//! (so the policy sees what the cluster will do). Pure.
//!
//! Resource paths are `/api/<version>/…` (the core group) and
//! `/apis/<group>/<version>/…`, then optionally `watch/` or `proxy/` (the
//! legacy verb prefixes), `namespaces/<namespace>/`, and
//! `<resource>[/<name>[/<subresource>]]`. A `namespaces` object's
//! namespace is its own name; `namespaces/<ns>/status` and `/finalize` are
//! subresources of the namespace. GET without a name lists (or watches,
//! with `watch=true`); DELETE without a name is a deletecollection; the
//! `exec`, `attach`, `portforward` and `proxy` subresources are verbs of
//! their own. Everything else is a non-resource URL: discovery (`/api`,
//! `/api/v1`, `/apis`, `/apis/<group>[/<version>]`), `/version`,
//! `/openapi/v2`, `/openapi/v3[/…]`, `/healthz`, `/livez`, `/readyz`
//! (and below) are reads; any other non-resource URL, or a non-resource
//! URL with a method other than GET/HEAD, is unclassified.
//!
//! Fail closed: a path not in normal form (empty, `.` or `..` segments,
//! `//`, any percent-escape, a backslash or control character) is an
//! error, not a request: the API server decodes escapes, so `%2F` or
//! `%2e%2e` would let it see a different path than the policy matched.
//! A path the server would read but this parser cannot place with
//! certainty (extra segments after a subresource, an odd version) is
//! returned with `complete: false`, which is never a read.

use airlock_types::command::kubernetes::KubernetesVerb;
use airlock_types::KubernetesRequest;

use crate::query::{classifying_parameters, QueryError};

/// Longest path the parser looks at (the listener bounds request heads
/// anyway; this keeps the parser's own work bounded).
pub const MAX_PATH_BYTES: usize = 8192;

/// What one request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    pub verb: KubernetesVerb,
    /// False for a non-resource URL (discovery, `/version`, `/openapi/…`).
    pub resource_request: bool,
    /// `""` for the core group.
    pub group: String,
    pub version: String,
    /// `""` for a non-resource URL.
    pub resource: String,
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
    /// A watch (`watch=true` or the `/watch/` prefix).
    pub watch: bool,
    /// A `portforward`'s `ports=` (every value, comma-separated, as the
    /// kubelet reads them); empty for other requests.
    pub ports: Vec<u16>,
    /// False when the parser is not sure (then never a read).
    pub complete: bool,
}

impl RequestInfo {
    /// The command the gate decides; `impersonates` when the client sent
    /// `Impersonate-*` headers (admin, whatever the verb).
    pub fn into_request(self, impersonates: bool) -> KubernetesRequest {
        KubernetesRequest {
            verb: self.verb,
            group: self.group,
            version: self.version,
            resource: self.resource,
            subresource: self.subresource,
            namespace: self.namespace,
            name: self.name,
            dry_run: self.dry_run,
            impersonates,
            ports: self.ports,
            complete: self.complete,
        }
    }
}

/// Why a request is refused before classification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestInfoError {
    /// The path is not in normal form.
    #[error("the path is not in normal form: {0}")]
    NotNormal(&'static str),
    /// A method the Kubernetes API has no verb for.
    #[error("method {0:?} has no Kubernetes verb")]
    UnknownMethod(String),
    /// `/api/v1/watch` and the like: a verb prefix without a resource.
    #[error("the path names no resource after its verb prefix")]
    NoResource,
    /// The query cannot be read with certainty.
    #[error(transparent)]
    Query(#[from] QueryError),
}

/// The segments of `path`, or why it is not in normal form. One trailing
/// `/` is allowed (`/api/v1/pods/`), as the API server trims it.
fn segments(path: &str) -> Result<Vec<&str>, RequestInfoError> {
    if path.len() > MAX_PATH_BYTES {
        return Err(RequestInfoError::NotNormal("too long"));
    }
    if path.contains("//") {
        return Err(RequestInfoError::NotNormal("empty segment (//)"));
    }
    let rest = path
        .strip_prefix('/')
        .ok_or(RequestInfoError::NotNormal("it must start with /"))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for segment in rest.split('/') {
        if segment.is_empty() {
            return Err(RequestInfoError::NotNormal("empty segment (//)"));
        }
        if segment == "." || segment == ".." {
            return Err(RequestInfoError::NotNormal("dot segment"));
        }
        if segment.contains('%') {
            return Err(RequestInfoError::NotNormal("percent-escape"));
        }
        if !segment
            .bytes()
            .all(|byte| byte.is_ascii_graphic() && !matches!(byte, b'\\' | b'?' | b'#'))
        {
            return Err(RequestInfoError::NotNormal("character not allowed"));
        }
        out.push(segment);
    }
    Ok(out)
}

/// A version as the API serves them: `v1`, `v2beta1`, `v1alpha3`.
fn plausible_version(version: &str) -> bool {
    let Some(rest) = version.strip_prefix('v') else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (number, suffix) = rest.split_at(digits);
    if number.is_empty() || number.starts_with('0') {
        return false;
    }
    let level = suffix
        .strip_prefix("alpha")
        .or_else(|| suffix.strip_prefix("beta"));
    match level {
        None => suffix.is_empty(),
        Some(n) => !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0'),
    }
}

/// Non-resource URLs that only read.
fn known_read_path(parts: &[&str]) -> bool {
    match parts {
        ["api"] | ["apis"] | ["version"] | ["openapi", "v2"] => true,
        ["api", _] | ["apis", _] | ["apis", _, _] => true,
        ["openapi", "v3", ..] => true,
        [first, ..] => matches!(*first, "healthz" | "livez" | "readyz"),
        [] => false,
    }
}

/// Classifies one request. `path` is the request path below the
/// connection (still percent-encoded, as sent), `query` without `?`.
pub fn parse_request(
    method: &str,
    path: &str,
    query: Option<&str>,
) -> Result<RequestInfo, RequestInfoError> {
    let parts = segments(path)?;
    let parameters = classifying_parameters(query)?;
    let (group, version, rest) = match parts.as_slice() {
        ["api", version, rest @ ..] if !rest.is_empty() => ("", *version, rest),
        ["apis", group, version, rest @ ..] if !rest.is_empty() => (*group, *version, rest),
        _ => return Ok(non_resource(method, &parts, parameters.dry_run)),
    };
    let (special, rest) = match rest {
        [verb @ ("watch" | "proxy"), rest @ ..] => {
            if rest.is_empty() {
                return Err(RequestInfoError::NoResource);
            }
            (Some(*verb), rest)
        }
        _ => (None, rest),
    };
    let mut namespace = None;
    let mut object = rest;
    if let ["namespaces", ns, after @ ..] = rest {
        namespace = Some((*ns).to_string());
        if let [first, ..] = after {
            if !matches!(*first, "status" | "finalize") {
                object = after;
            }
        }
    }
    let mut complete = plausible_version(version);
    let (resource, name, subresource) = match object {
        [resource] => (*resource, None, None),
        [resource, name] => (*resource, Some(*name), None),
        [resource, name, subresource, tail @ ..] => {
            // A proxy passes the tail through; any other subresource with
            // more segments is a path the server would not serve as such.
            if special == Some("proxy") {
                (*resource, Some(*name), None)
            } else {
                if !tail.is_empty() && *subresource != "proxy" {
                    complete = false;
                }
                (*resource, Some(*name), Some(*subresource))
            }
        }
        [] => return Err(RequestInfoError::NoResource),
    };
    let named = name.is_some();
    let verb = match special {
        Some("proxy") => KubernetesVerb::Proxy,
        Some(_) if matches!(method, "GET" | "HEAD") => KubernetesVerb::Watch,
        Some(_) => return Err(RequestInfoError::UnknownMethod(method.to_string())),
        None => KubernetesVerb::from_http(method, subresource, named, parameters.watch && !named)
            .ok_or_else(|| RequestInfoError::UnknownMethod(method.to_string()))?,
    };
    let ports = if verb == KubernetesVerb::PortForward {
        crate::query::ports(query)?
    } else {
        Vec::new()
    };
    let mut name = name.map(str::to_string);
    if name.is_none() && matches!(verb, KubernetesVerb::List | KubernetesVerb::Watch) {
        name = parameters.name_selector.clone();
    }
    Ok(RequestInfo {
        watch: verb == KubernetesVerb::Watch,
        verb,
        resource_request: true,
        group: group.to_string(),
        version: version.to_string(),
        resource: resource.to_string(),
        subresource: subresource.map(str::to_string),
        namespace,
        name,
        dry_run: parameters.dry_run,
        ports,
        complete,
    })
}

/// A non-resource URL: a read when it is a known read path and the
/// method GET/HEAD; otherwise unclassified (a write at least).
fn non_resource(method: &str, parts: &[&str], dry_run: bool) -> RequestInfo {
    let reads = matches!(method, "GET" | "HEAD");
    let verb = if reads {
        KubernetesVerb::Get
    } else {
        KubernetesVerb::from_http(method, None, true, false).unwrap_or(KubernetesVerb::Update)
    };
    RequestInfo {
        verb,
        resource_request: false,
        group: String::new(),
        version: String::new(),
        resource: String::new(),
        subresource: None,
        namespace: None,
        name: None,
        dry_run,
        watch: false,
        ports: Vec::new(),
        complete: reads && known_read_path(parts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_types::Access;
    use proptest::prelude::*;
    use KubernetesVerb::*;

    /// (verb, group, version, resource, subresource, namespace, name, complete)
    type Expected = (
        KubernetesVerb,
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        bool,
    );

    fn check(method: &str, target: &str, expected: Expected) {
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        let info = parse_request(method, path, query)
            .unwrap_or_else(|error| panic!("{method} {target}: {error}"));
        let (verb, group, version, resource, subresource, namespace, name, complete) = expected;
        assert_eq!(
            (
                info.verb,
                info.group.as_str(),
                info.version.as_str(),
                info.resource.as_str(),
                info.subresource.as_deref(),
                info.namespace.as_deref(),
                info.name.as_deref(),
                info.complete
            ),
            (
                verb,
                group,
                version,
                resource,
                subresource,
                namespace,
                name,
                complete
            ),
            "{method} {target}"
        );
    }

    /// Core-group collections, single objects and watches.
    #[test]
    fn resource_paths() {
        let cases: Vec<(&str, &str, Expected)> = vec![
            (
                "GET",
                "/api/v1/pods",
                (List, "", "v1", "pods", None, None, None, true),
            ),
            (
                "GET",
                "/api/v1/namespaces/default/pods",
                (List, "", "v1", "pods", None, Some("default"), None, true),
            ),
            (
                "GET",
                "/api/v1/namespaces/default/pods/",
                (List, "", "v1", "pods", None, Some("default"), None, true),
            ),
            (
                "GET",
                "/api/v1/namespaces/default/pods/web",
                (
                    Get,
                    "",
                    "v1",
                    "pods",
                    None,
                    Some("default"),
                    Some("web"),
                    true,
                ),
            ),
            (
                "HEAD",
                "/api/v1/namespaces/default/pods/web",
                (
                    Get,
                    "",
                    "v1",
                    "pods",
                    None,
                    Some("default"),
                    Some("web"),
                    true,
                ),
            ),
            (
                "GET",
                "/api/v1/namespaces/default/pods?watch=true",
                (Watch, "", "v1", "pods", None, Some("default"), None, true),
            ),
            (
                "GET",
                "/api/v1/namespaces/default/pods?watch=1&fieldSelector=metadata.name%3Dweb",
                (
                    Watch,
                    "",
                    "v1",
                    "pods",
                    None,
                    Some("default"),
                    Some("web"),
                    true,
                ),
            ),
            (
                "GET",
                "/api/v1/watch/namespaces/default/pods",
                (Watch, "", "v1", "pods", None, Some("default"), None, true),
            ),
        ];
        for (method, target, expected) in cases {
            check(method, target, expected);
        }
    }

    /// Subresources: log, exec, attach and port-forward paths.
    #[test]
    fn resource_paths_subresources() {
        let cases: Vec<(&str, &str, Expected)> = vec![
            (
                "GET",
                "/api/v1/namespaces/default/pods/web/log",
                (
                    Get,
                    "",
                    "v1",
                    "pods",
                    Some("log"),
                    Some("default"),
                    Some("web"),
                    true,
                ),
            ),
            (
                "POST",
                "/api/v1/namespaces/default/pods/web/exec",
                (
                    Exec,
                    "",
                    "v1",
                    "pods",
                    Some("exec"),
                    Some("default"),
                    Some("web"),
                    true,
                ),
            ),
            (
                "GET",
                "/api/v1/namespaces/default/pods/web/exec?command=sh",
                (
                    Exec,
                    "",
                    "v1",
                    "pods",
                    Some("exec"),
                    Some("default"),
                    Some("web"),
                    true,
                ),
            ),
            (
                "POST",
                "/api/v1/namespaces/default/pods/web/attach",
                (
                    Attach,
                    "",
                    "v1",
                    "pods",
                    Some("attach"),
                    Some("default"),
                    Some("web"),
                    true,
                ),
            ),
            (
                "POST",
                "/api/v1/namespaces/default/pods/web/portforward",
                (
                    PortForward,
                    "",
                    "v1",
                    "pods",
                    Some("portforward"),
                    Some("default"),
                    Some("web"),
                    true,
                ),
            ),
        ];
        for (method, target, expected) in cases {
            check(method, target, expected);
        }
    }

    /// Proxy paths, in both spellings.
    #[test]
    fn resource_paths_proxy() {
        let cases: Vec<(&str, &str, Expected)> = vec![
            (
                "GET",
                "/api/v1/namespaces/default/services/web/proxy/metrics/x",
                (
                    Proxy,
                    "",
                    "v1",
                    "services",
                    Some("proxy"),
                    Some("default"),
                    Some("web"),
                    true,
                ),
            ),
            (
                "GET",
                "/api/v1/proxy/namespaces/default/pods/web/x/y",
                (
                    Proxy,
                    "",
                    "v1",
                    "pods",
                    None,
                    Some("default"),
                    Some("web"),
                    true,
                ),
            ),
        ];
        for (method, target, expected) in cases {
            check(method, target, expected);
        }
    }

    /// Creates and updates, with and without a dry run.
    #[test]
    fn resource_paths_writes() {
        let cases: Vec<(&str, &str, Expected)> = vec![
            (
                "POST",
                "/api/v1/namespaces/default/configmaps",
                (
                    Create,
                    "",
                    "v1",
                    "configmaps",
                    None,
                    Some("default"),
                    None,
                    true,
                ),
            ),
            (
                "POST",
                "/api/v1/namespaces/default/configmaps?dryRun=All",
                (
                    Create,
                    "",
                    "v1",
                    "configmaps",
                    None,
                    Some("default"),
                    None,
                    true,
                ),
            ),
            (
                "PUT",
                "/api/v1/namespaces/default/configmaps/c",
                (
                    Update,
                    "",
                    "v1",
                    "configmaps",
                    None,
                    Some("default"),
                    Some("c"),
                    true,
                ),
            ),
        ];
        for (method, target, expected) in cases {
            check(method, target, expected);
        }
    }

    /// Patches, the scale subresource, deletes and collection deletes.
    #[test]
    fn resource_paths_patch_and_delete() {
        let cases: Vec<(&str, &str, Expected)> = vec![
            (
                "PATCH",
                "/apis/apps/v1/namespaces/prod/deployments/web",
                (
                    Patch,
                    "apps",
                    "v1",
                    "deployments",
                    None,
                    Some("prod"),
                    Some("web"),
                    true,
                ),
            ),
            (
                "PATCH",
                "/apis/apps/v1/namespaces/prod/deployments/web/scale",
                (
                    Patch,
                    "apps",
                    "v1",
                    "deployments",
                    Some("scale"),
                    Some("prod"),
                    Some("web"),
                    true,
                ),
            ),
            (
                "DELETE",
                "/apis/apps/v1/namespaces/prod/deployments/web",
                (
                    Delete,
                    "apps",
                    "v1",
                    "deployments",
                    None,
                    Some("prod"),
                    Some("web"),
                    true,
                ),
            ),
            (
                "DELETE",
                "/api/v1/namespaces/prod/pods",
                (
                    DeleteCollection,
                    "",
                    "v1",
                    "pods",
                    None,
                    Some("prod"),
                    None,
                    true,
                ),
            ),
        ];
        for (method, target, expected) in cases {
            check(method, target, expected);
        }
    }

    /// The namespaces resource itself and its subresources.
    #[test]
    fn resource_paths_namespaces() {
        let cases: Vec<(&str, &str, Expected)> = vec![
            (
                "GET",
                "/api/v1/namespaces",
                (List, "", "v1", "namespaces", None, None, None, true),
            ),
            (
                "GET",
                "/api/v1/namespaces/prod",
                (
                    Get,
                    "",
                    "v1",
                    "namespaces",
                    None,
                    Some("prod"),
                    Some("prod"),
                    true,
                ),
            ),
            (
                "DELETE",
                "/api/v1/namespaces/prod",
                (
                    Delete,
                    "",
                    "v1",
                    "namespaces",
                    None,
                    Some("prod"),
                    Some("prod"),
                    true,
                ),
            ),
            (
                "PUT",
                "/api/v1/namespaces/prod/finalize",
                (
                    Update,
                    "",
                    "v1",
                    "namespaces",
                    Some("finalize"),
                    Some("prod"),
                    Some("prod"),
                    true,
                ),
            ),
            (
                "GET",
                "/api/v1/namespaces/prod/status",
                (
                    Get,
                    "",
                    "v1",
                    "namespaces",
                    Some("status"),
                    Some("prod"),
                    Some("prod"),
                    true,
                ),
            ),
        ];
        for (method, target, expected) in cases {
            check(method, target, expected);
        }
    }

    /// Cluster-scoped resources, dotted groups and incomplete paths.
    #[test]
    fn resource_paths_cluster_scoped() {
        let cases: Vec<(&str, &str, Expected)> = vec![
            (
                "GET",
                "/api/v1/nodes/n1",
                (Get, "", "v1", "nodes", None, None, Some("n1"), true),
            ),
            (
                "POST",
                "/api/v1/namespaces/ci/serviceaccounts/builder/token",
                (
                    Create,
                    "",
                    "v1",
                    "serviceaccounts",
                    Some("token"),
                    Some("ci"),
                    Some("builder"),
                    true,
                ),
            ),
            (
                "PUT",
                "/apis/certificates.k8s.io/v1/certificatesigningrequests/c1/approval",
                (
                    Update,
                    "certificates.k8s.io",
                    "v1",
                    "certificatesigningrequests",
                    Some("approval"),
                    None,
                    Some("c1"),
                    true,
                ),
            ),
            (
                "GET",
                "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/system:admin",
                (
                    Get,
                    "rbac.authorization.k8s.io",
                    "v1",
                    "clusterrolebindings",
                    None,
                    None,
                    Some("system:admin"),
                    true,
                ),
            ),
            (
                "GET",
                "/apis/batch/v1beta1/namespaces/x/cronjobs",
                (
                    List,
                    "batch",
                    "v1beta1",
                    "cronjobs",
                    None,
                    Some("x"),
                    None,
                    true,
                ),
            ),
            (
                "GET",
                "/apis/x/version1/things",
                (List, "x", "version1", "things", None, None, None, false),
            ),
            (
                "GET",
                "/api/v1/namespaces/default/pods/web/log/extra",
                (
                    Get,
                    "",
                    "v1",
                    "pods",
                    Some("log"),
                    Some("default"),
                    Some("web"),
                    false,
                ),
            ),
        ];
        for (method, target, expected) in cases {
            check(method, target, expected);
        }
    }

    #[test]
    fn non_resource_paths() {
        for path in [
            "/api",
            "/api/",
            "/api/v1",
            "/apis",
            "/apis/apps",
            "/apis/apps/v1",
            "/version",
            "/openapi/v2",
            "/openapi/v3",
            "/openapi/v3/apis/apps/v1",
            "/healthz",
            "/livez",
            "/readyz/ping",
        ] {
            let info = parse_request("GET", path, None).unwrap();
            assert!(!info.resource_request, "{path}");
            assert!(info.complete, "{path}");
            assert_eq!(
                info.clone().into_request(false).effective_access(),
                Access::Read,
                "{path}"
            );
        }
        for (method, path) in [
            ("GET", "/"),
            ("GET", "/logs/kubelet"),
            ("GET", "/metrics"),
            ("POST", "/api"),
            ("PUT", "/version"),
        ] {
            let info = parse_request(method, path, None).unwrap();
            assert!(!info.complete, "{method} {path}");
            assert_ne!(
                info.into_request(false).effective_access(),
                Access::Read,
                "{method} {path}"
            );
        }
    }

    #[test]
    fn refuses_paths_not_in_normal_form() {
        for path in [
            "",
            "api/v1/pods",
            "//api/v1/pods",
            "/api//v1/pods",
            "/api/v1/namespaces//pods",
            "/api/v1/namespaces/default/pods/../secrets",
            "/api/v1/./pods",
            "/api/v1/..",
            "/api/v1/namespaces/default/pods%2F..%2Fsecrets",
            "/api/v1/namespaces/%64efault/pods",
            "/api/v1/pods%2fweb",
            "/api/v1/pods\\web",
            "/api/v1/po ds",
            "/api/v1/pods/w\u{e9}b",
            "/api/v1/pods//",
        ] {
            assert!(
                matches!(
                    parse_request("GET", path, None),
                    Err(RequestInfoError::NotNormal(_))
                ),
                "{path:?}"
            );
        }
        assert_eq!(
            parse_request("GET", "/api/v1/watch", None),
            Err(RequestInfoError::NoResource)
        );
        assert_eq!(
            parse_request("GET", "/api/v1/namespaces/x/watch/", None).map(|i| i.resource),
            Ok("watch".into())
        );
        assert_eq!(
            parse_request("TRACE", "/api/v1/pods", None),
            Err(RequestInfoError::UnknownMethod("TRACE".into()))
        );
        assert!(matches!(
            parse_request("GET", "/api/v1/pods", Some("watch=0&watch=1")),
            Err(RequestInfoError::Query(_))
        ));
    }

    #[test]
    fn access_follows_design() {
        let access = |method: &str, target: &str| {
            let (path, query) = target
                .split_once('?')
                .map_or((target, None), |(p, q)| (p, Some(q)));
            parse_request(method, path, query)
                .unwrap()
                .into_request(false)
                .effective_access()
        };
        assert_eq!(
            access("GET", "/api/v1/namespaces/a/secrets/s"),
            Access::Read
        );
        assert_eq!(access("GET", "/api/v1/pods?watch=true"), Access::Read);
        assert_eq!(
            access("POST", "/api/v1/namespaces/a/configmaps?dryRun=All"),
            Access::Write
        );
        assert_eq!(access("DELETE", "/api/v1/namespaces/a/pods"), Access::Write);
        assert_eq!(
            access("POST", "/api/v1/namespaces/a/pods/p/exec"),
            Access::Admin
        );
        assert_eq!(
            access("GET", "/api/v1/namespaces/a/pods/p/portforward"),
            Access::Admin
        );
        assert_eq!(access("GET", "/api/v1/proxy/nodes/n1/x"), Access::Admin);
        assert_eq!(
            access("GET", "/apis/rbac.authorization.k8s.io/v1/roles"),
            Access::Admin
        );
        assert_eq!(
            access("POST", "/api/v1/namespaces/a/serviceaccounts/s/token"),
            Access::Admin
        );
        let impersonating = parse_request("GET", "/api/v1/pods", None)
            .unwrap()
            .into_request(true);
        assert_eq!(impersonating.effective_access(), Access::Admin);
        let dry = parse_request(
            "PATCH",
            "/api/v1/namespaces/a/configmaps/c",
            Some("dryRun=All"),
        )
        .unwrap();
        assert!(dry.dry_run);
    }

    fn name() -> impl Strategy<Value = String> {
        "[a-z0-9]([a-z0-9.-]{0,10}[a-z0-9])?"
            .prop_filter("no dot segments", |s| s != "." && s != "..")
    }

    fn method() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just("GET"),
            Just("HEAD"),
            Just("POST"),
            Just("PUT"),
            Just("PATCH"),
            Just("DELETE")
        ]
    }

    proptest! {
        /// A path built from its parts parses back to those parts.
        #[test]
        fn built_paths_round_trip(
            group in proptest::option::of(name()),
            namespace in proptest::option::of(name()),
            resource in name().prop_filter("not the namespace collection", |r| r != "namespaces" && r != "watch" && r != "proxy"),
            object in proptest::option::of(name()),
            subresource in proptest::option::of(name()),
            method in method(),
        ) {
            let subresource = object.as_ref().and(subresource);
            let mut path = match &group {
                Some(group) => format!("/apis/{group}/v1"),
                None => "/api/v1".to_string(),
            };
            if let Some(namespace) = &namespace {
                path.push_str(&format!("/namespaces/{namespace}"));
            }
            path.push_str(&format!("/{resource}"));
            if let Some(object) = &object {
                path.push_str(&format!("/{object}"));
            }
            if let Some(subresource) = &subresource {
                path.push_str(&format!("/{subresource}"));
            }
            let info = parse_request(method, &path, None).unwrap();
            prop_assert!(info.resource_request);
            prop_assert_eq!(info.group, group.unwrap_or_default());
            prop_assert_eq!(info.version, "v1");
            prop_assert_eq!(&info.namespace, &namespace);
            prop_assert_eq!(&info.resource, &resource);
            prop_assert_eq!(&info.name, &object);
            prop_assert_eq!(&info.subresource, &subresource);
            let expected = KubernetesVerb::from_http(method, subresource.as_deref(), object.is_some(), false).unwrap();
            prop_assert_eq!(info.verb, expected);
        }

        /// Whatever the input: no panic; an accepted path has no segment
        /// that a server could resolve or decode into another path, and
        /// what it names carries no escape, slash or dot segment.
        #[test]
        fn never_accepts_tricks(
            method in prop_oneof![method().prop_map(str::to_string), "[A-Z]{1,7}"],
            segments in proptest::collection::vec(
                prop_oneof![
                    Just("api".to_string()), Just("apis".to_string()), Just("v1".to_string()),
                    Just("namespaces".to_string()), Just("pods".to_string()), Just("secrets".to_string()),
                    Just("..".to_string()), Just(".".to_string()), Just("".to_string()),
                    Just("%2e%2e".to_string()), Just("%2F".to_string()), Just("a%2fb".to_string()),
                    Just("\\".to_string()), Just("watch".to_string()), Just("proxy".to_string()),
                    "[a-z%./\\\\:]{0,6}",
                ],
                0..9,
            ),
            query in proptest::option::of("[a-zA-Z=&%0-9.]{0,20}"),
        ) {
            let path = format!("/{}", segments.join("/"));
            if let Ok(info) = parse_request(&method, &path, query.as_deref()) {
                for segment in path.trim_start_matches('/').trim_end_matches('/').split('/') {
                    prop_assert!(!segment.contains('%') && !segment.contains('\\'));
                    prop_assert!(segment != ".." && segment != ".");
                }
                prop_assert!(!path.contains("//"));
                for part in [Some(&info.resource), info.namespace.as_ref(), info.name.as_ref(), info.subresource.as_ref()].into_iter().flatten() {
                    prop_assert!(!part.contains('/') && !part.contains('%') && part != "..");
                }
                let request = info.into_request(false);
                if request.effective_access() == Access::Read {
                    prop_assert!(request.complete);
                    prop_assert!(matches!(method.as_str(), "GET" | "HEAD"));
                }
            }
        }
    }
}
