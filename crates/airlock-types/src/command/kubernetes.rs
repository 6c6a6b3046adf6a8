//! A Kubernetes API request as a command: [`KubernetesRequest`], the verbs
//! policy files name ([`KubernetesVerb`]), and the pure rules that classify
//! them (DESIGN.md "One core, many protocols").
//!
//! get/list/watch read; create/update/patch/delete/deletecollection write;
//! admin: exec, attach, portforward and proxy, any impersonating request,
//! any verb on RBAC objects (roles, rolebindings, clusterroles,
//! clusterrolebindings, whatever their group: reading who may do what is
//! counted with changing it, as DESIGN.md lists RBAC objects as admin),
//! token requests (`serviceaccounts/token`) and certificate approvals
//! (`certificatesigningrequests/approval`). The protocol crate turns the
//! HTTP request into these fields the way the API server's own
//! `RequestInfo` does (a `namespaces` object's namespace is its name);
//! [`KubernetesVerb::from_http`] is the verb part of that.

use super::{effective_access, Access};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a Kubernetes request does, as named in policy files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KubernetesVerb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
    Exec,
    Attach,
    PortForward,
    Proxy,
}

impl KubernetesVerb {
    /// Every verb, in declaration order.
    pub const ALL: [KubernetesVerb; 12] = [
        Self::Get,
        Self::List,
        Self::Watch,
        Self::Create,
        Self::Update,
        Self::Patch,
        Self::Delete,
        Self::DeleteCollection,
        Self::Exec,
        Self::Attach,
        Self::PortForward,
        Self::Proxy,
    ];

    /// The lowercase name used in policy files (Kubernetes' own spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::List => "list",
            Self::Watch => "watch",
            Self::Create => "create",
            Self::Update => "update",
            Self::Patch => "patch",
            Self::Delete => "delete",
            Self::DeleteCollection => "deletecollection",
            Self::Exec => "exec",
            Self::Attach => "attach",
            Self::PortForward => "portforward",
            Self::Proxy => "proxy",
        }
    }

    /// Parses a policy-file name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|verb| verb.as_str() == text)
    }

    /// The verb's own access (before the resource is considered).
    pub fn access(self) -> Access {
        match self {
            Self::Get | Self::List | Self::Watch => Access::Read,
            Self::Create | Self::Update | Self::Patch | Self::Delete | Self::DeleteCollection => {
                Access::Write
            }
            Self::Exec | Self::Attach | Self::PortForward | Self::Proxy => Access::Admin,
        }
    }

    /// The verb of an HTTP request on a resource URL: the connect
    /// subresources (`exec`, `attach`, `portforward`, `proxy`) are their own
    /// verb whatever the method; GET/HEAD are get (`named`), watch (`?watch`)
    /// or list; POST create, PUT update, PATCH patch; DELETE delete
    /// (`named`) or deletecollection. `None` for any other method.
    pub fn from_http(
        method: &str,
        subresource: Option<&str>,
        named: bool,
        watch: bool,
    ) -> Option<Self> {
        match subresource {
            Some("exec") => return Some(Self::Exec),
            Some("attach") => return Some(Self::Attach),
            Some("portforward") => return Some(Self::PortForward),
            Some("proxy") => return Some(Self::Proxy),
            _ => {}
        }
        match method {
            "GET" | "HEAD" if watch => Some(Self::Watch),
            "GET" | "HEAD" if named => Some(Self::Get),
            "GET" | "HEAD" => Some(Self::List),
            "POST" => Some(Self::Create),
            "PUT" => Some(Self::Update),
            "PATCH" => Some(Self::Patch),
            "DELETE" if named => Some(Self::Delete),
            "DELETE" => Some(Self::DeleteCollection),
            _ => None,
        }
    }
}

impl fmt::Display for KubernetesVerb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The RBAC resources: any verb on them is admin.
pub const RBAC_RESOURCES: [&str; 4] = [
    "roles",
    "rolebindings",
    "clusterroles",
    "clusterrolebindings",
];

/// One Kubernetes API request, as the policy engine sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesRequest {
    /// What it does.
    pub verb: KubernetesVerb,
    /// The API group; empty for the core group (`pods`, `secrets`, …).
    pub group: String,
    /// The API version (`v1`, `v1beta1`); empty for a non-resource URL.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// The resource, plural and lowercase (`pods`, `deployments`); empty
    /// for a non-resource URL (`/version`, discovery).
    pub resource: String,
    /// The subresource (`exec`, `log`, `status`, `token`), if any.
    pub subresource: Option<String>,
    /// The namespace; `None` for cluster-scoped requests.
    pub namespace: Option<String>,
    /// The object's name; `None` for list, watch of many, create, and
    /// deletecollection.
    pub name: Option<String>,
    /// The request asks for a dry run (`dryRun=All`): the API server
    /// validates it and changes nothing. Recorded; the access is the
    /// verb's all the same (policy may tell them apart later).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// The request impersonates someone (`Impersonate-*` headers): admin.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub impersonates: bool,
    /// The pod ports a `portforward` asks for: its `ports=` parameter, or
    /// (kubectl's SPDY tunnel names none in the request) the one port of a
    /// forwarded connection, decided when the connection opens.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<u16>,
    /// False when the protocol crate could not map the request with
    /// certainty (it is then never a read).
    pub complete: bool,
}

impl KubernetesRequest {
    /// A complete, non-impersonating request in the core group with no
    /// subresource, namespace or name; set the other fields as needed.
    pub fn new(verb: KubernetesVerb, resource: impl Into<String>) -> Self {
        Self {
            verb,
            group: String::new(),
            version: String::new(),
            resource: resource.into(),
            subresource: None,
            namespace: None,
            name: None,
            dry_run: false,
            impersonates: false,
            ports: Vec::new(),
            complete: true,
        }
    }

    /// `resource` or `resource/subresource`.
    pub fn resource_path(&self) -> String {
        match &self.subresource {
            Some(subresource) => format!("{}/{subresource}", self.resource),
            None => self.resource.clone(),
        }
    }

    /// The access of the request (see the module documentation).
    pub fn access(&self) -> Access {
        let subresource = self.subresource.as_deref();
        let token_request = self.resource == "serviceaccounts" && subresource == Some("token");
        let certificate_approval =
            self.resource == "certificatesigningrequests" && subresource == Some("approval");
        if self.impersonates
            || token_request
            || certificate_approval
            || RBAC_RESOURCES.contains(&self.resource.as_str())
        {
            Access::Admin
        } else {
            self.verb.access()
        }
    }

    /// The access, never `Read` unless complete.
    pub fn effective_access(&self) -> Access {
        effective_access(self.access(), self.complete)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verb_names_round_trip() {
        for verb in KubernetesVerb::ALL {
            assert_eq!(KubernetesVerb::parse(verb.as_str()), Some(verb));
            let json = serde_json::to_value(verb).unwrap();
            assert_eq!(json, verb.as_str());
        }
        assert_eq!(KubernetesVerb::parse("Get"), None);
        assert_eq!(KubernetesVerb::parse("impersonate"), None);
    }

    #[test]
    fn verbs_from_http() {
        use KubernetesVerb::*;
        let cases = [
            ("GET", None, true, false, Some(Get)),
            ("GET", None, false, false, Some(List)),
            ("GET", None, false, true, Some(Watch)),
            ("HEAD", None, true, false, Some(Get)),
            ("POST", None, false, false, Some(Create)),
            ("PUT", None, true, false, Some(Update)),
            ("PATCH", None, true, false, Some(Patch)),
            ("DELETE", None, true, false, Some(Delete)),
            ("DELETE", None, false, false, Some(DeleteCollection)),
            ("GET", Some("exec"), true, false, Some(Exec)),
            ("POST", Some("exec"), true, false, Some(Exec)),
            ("POST", Some("attach"), true, false, Some(Attach)),
            ("GET", Some("portforward"), true, false, Some(PortForward)),
            ("GET", Some("proxy"), true, false, Some(Proxy)),
            ("GET", Some("log"), true, false, Some(Get)),
            ("TRACE", None, true, false, None),
        ];
        for (method, subresource, named, watch, expected) in cases {
            assert_eq!(
                KubernetesVerb::from_http(method, subresource, named, watch),
                expected,
                "{method} {subresource:?} named={named} watch={watch}"
            );
        }
    }

    #[test]
    fn requests_classify() {
        use KubernetesVerb::*;
        let request = |verb, resource: &str, subresource: Option<&str>| KubernetesRequest {
            subresource: subresource.map(str::to_string),
            ..KubernetesRequest::new(verb, resource)
        };
        let cases = [
            (request(Get, "pods", None), Access::Read),
            (request(List, "secrets", None), Access::Read),
            (request(Watch, "deployments", None), Access::Read),
            (request(Get, "pods", Some("log")), Access::Read),
            (request(Create, "pods", None), Access::Write),
            (request(Update, "configmaps", None), Access::Write),
            (request(Patch, "deployments", Some("scale")), Access::Write),
            (request(Delete, "pods", None), Access::Write),
            (request(DeleteCollection, "pods", None), Access::Write),
            (request(Exec, "pods", Some("exec")), Access::Admin),
            (request(Attach, "pods", Some("attach")), Access::Admin),
            (
                request(PortForward, "pods", Some("portforward")),
                Access::Admin,
            ),
            (request(Proxy, "services", Some("proxy")), Access::Admin),
            (request(Create, "rolebindings", None), Access::Admin),
            (request(Get, "clusterroles", None), Access::Admin),
            (
                request(Create, "serviceaccounts", Some("token")),
                Access::Admin,
            ),
            (request(Get, "serviceaccounts", None), Access::Read),
            (
                request(Update, "certificatesigningrequests", Some("approval")),
                Access::Admin,
            ),
            (
                request(Create, "certificatesigningrequests", None),
                Access::Write,
            ),
            (
                KubernetesRequest {
                    impersonates: true,
                    ..request(List, "pods", None)
                },
                Access::Admin,
            ),
        ];
        for (request, expected) in cases {
            assert_eq!(request.access(), expected, "{request:?}");
            assert_eq!(request.effective_access(), expected, "{request:?}");
        }
        let unsure = KubernetesRequest {
            complete: false,
            ..request(Get, "pods", None)
        };
        assert_eq!(unsure.effective_access(), Access::Write);
        assert_eq!(
            request(Exec, "pods", Some("exec")).resource_path(),
            "pods/exec"
        );
    }
}
