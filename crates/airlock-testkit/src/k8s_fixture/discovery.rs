//! The fixture's discovery documents, written from the Kubernetes API
//! reference (API concepts, "Discovery API"): `/api` (`APIVersions`),
//! `/apis` (`APIGroupList`), `/api/v1` and `/apis/apps/v1`
//! (`APIResourceList`) and `/version`, in the legacy (unaggregated) form,
//! which every kubectl still reads when the server does not answer with
//! the aggregated media type. Only the resources the fixture serves are
//! listed.

use serde_json::{json, Value};

/// One resource the fixture serves.
#[derive(Debug, Clone, Copy)]
pub struct ResourceKind {
    pub resource: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub subresources: &'static [&'static str],
}

impl ResourceKind {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// Everything the fixture serves.
pub const KINDS: [ResourceKind; 6] = [
    ResourceKind {
        resource: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        group: "",
        version: "v1",
        namespaced: false,
        short_names: &["ns"],
        subresources: &["status", "finalize"],
    },
    ResourceKind {
        resource: "pods",
        singular: "pod",
        kind: "Pod",
        group: "",
        version: "v1",
        namespaced: true,
        short_names: &["po"],
        subresources: &["attach", "exec", "log", "portforward", "status"],
    },
    ResourceKind {
        resource: "configmaps",
        singular: "configmap",
        kind: "ConfigMap",
        group: "",
        version: "v1",
        namespaced: true,
        short_names: &["cm"],
        subresources: &[],
    },
    ResourceKind {
        resource: "secrets",
        singular: "secret",
        kind: "Secret",
        group: "",
        version: "v1",
        namespaced: true,
        short_names: &[],
        subresources: &[],
    },
    ResourceKind {
        resource: "events",
        singular: "event",
        kind: "Event",
        group: "",
        version: "v1",
        namespaced: true,
        short_names: &["ev"],
        subresources: &[],
    },
    ResourceKind {
        resource: "deployments",
        singular: "deployment",
        kind: "Deployment",
        group: "apps",
        version: "v1",
        namespaced: true,
        short_names: &["deploy"],
        subresources: &["scale", "status"],
    },
];

/// The kind serving `group`/`version`/`resource`.
pub fn kind_of(group: &str, version: &str, resource: &str) -> Option<&'static ResourceKind> {
    KINDS
        .iter()
        .find(|kind| kind.group == group && kind.version == version && kind.resource == resource)
}

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn resource_list(group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for kind in KINDS
        .iter()
        .filter(|k| k.group == group && k.version == version)
    {
        resources.push(json!({
            "name": kind.resource,
            "singularName": kind.singular,
            "namespaced": kind.namespaced,
            "kind": kind.kind,
            "verbs": VERBS,
            "shortNames": kind.short_names,
            "storageVersionHash": "fixture",
        }));
        for subresource in kind.subresources {
            let (sub_kind, verbs): (&str, &[&str]) = match *subresource {
                "exec" | "attach" | "portforward" => ("PodExecOptions", &["create", "get"]),
                "log" => ("Pod", &["get"]),
                "scale" => ("Scale", &["get", "patch", "update"]),
                _ => (kind.kind, &["get", "patch", "update"]),
            };
            resources.push(json!({
                "name": format!("{}/{subresource}", kind.resource),
                "singularName": "",
                "namespaced": kind.namespaced,
                "kind": sub_kind,
                "verbs": verbs,
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    })
}

/// The discovery document at `path`, if it is one.
pub fn document(path: &str, server_address: &str) -> Option<Value> {
    let path = path.trim_end_matches('/');
    match path {
        "/api" => Some(json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
        })),
        "/apis" => Some(json!({
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [{
                "name": "apps",
                "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
            }],
        })),
        "/apis/apps" => Some(json!({
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": "apps",
            "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
            "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
        })),
        "/api/v1" => Some(resource_list("", "v1")),
        "/apis/apps/v1" => Some(resource_list("apps", "v1")),
        "/version" => Some(json!({
            "major": "1",
            "minor": "32",
            "gitVersion": "v1.32.4-airlock-fixture",
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2025-01-01T00:00:00Z",
            "goVersion": "go1.23.0",
            "compiler": "gc",
            "platform": "linux/amd64",
        })),
        _ => None,
    }
}
