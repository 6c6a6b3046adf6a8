//! The `http`, `kubernetes` and `mcp` conditions and `mask.fields`:
//! table-driven match and non-match per condition (cross-protocol
//! non-matches included), invalid files with their lines, explain, and the
//! repository's `examples/policy-multi.yaml` (a copy of the project's
//! contract file, loaded unchanged) deciding one sample command of every
//! kind as its comments say.

// Test code: panics are the failure mechanism.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use airlock_policy::{decide, explain, Decision, DecisionInput, Policy, Verdict};
use airlock_sql::{classify, Dialect};
use airlock_types::{
    AuthMethod, Command, CommandKind, ConnectionInfo, HttpRequest, Identity, IdentityKind,
    KubernetesRequest, KubernetesVerb, McpCall, Protocol,
};
use serde_json::json;
use std::time::Duration;

/// The repository's own copy of the multi-protocol example (`examples/`,
/// kept identical to the shared contract by `.ci/run`).
fn multi_example() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/policy-multi.yaml")
}

fn sql(text: &str) -> Command {
    classify(Dialect::Postgres, text)
}

fn http(method: &str, path: &str) -> Command {
    Command::new(
        format!("{method} {path}"),
        CommandKind::Http(HttpRequest::new(method, path)),
    )
}

fn k8s(
    verb: KubernetesVerb,
    group: &str,
    resource: &str,
    subresource: Option<&str>,
    namespace: Option<&str>,
    name: Option<&str>,
) -> Command {
    let request = KubernetesRequest {
        group: group.into(),
        subresource: subresource.map(Into::into),
        namespace: namespace.map(Into::into),
        name: name.map(Into::into),
        ..KubernetesRequest::new(verb, resource)
    };
    Command::new(
        format!("{verb} {}", request.resource_path()),
        CommandKind::Kubernetes(request),
    )
}

/// A namespaced core-group request.
fn k8s_in(verb: KubernetesVerb, resource: &str, namespace: &str) -> Command {
    k8s(verb, "", resource, None, Some(namespace), None)
}

fn tool(name: &str, arguments: serde_json::Value) -> Command {
    Command::new(
        format!("tools/call {name}"),
        CommandKind::Mcp(McpCall::tool_call(name, arguments)),
    )
}

fn read_only_tool(name: &str) -> Command {
    let call = McpCall {
        read_only: true,
        ..McpCall::tool_call(name, json!({}))
    };
    Command::new(format!("tools/call {name}"), CommandKind::Mcp(call))
}

fn server_request(method: &str) -> Command {
    Command::new(method, CommandKind::Mcp(McpCall::server_request(method)))
}

fn mcp_method(method: &str) -> Command {
    Command::new(method, CommandKind::Mcp(McpCall::method(method)))
}

fn identity(kind: IdentityKind) -> Identity {
    Identity {
        name: "agent-7".into(),
        kind,
        groups: vec!["eng".into()],
        auth_method: AuthMethod::AirlockToken {
            token_id: "t-1".into(),
        },
        expires_at: 0,
    }
}

fn connection(name: &str, protocol: Protocol, env: &str) -> ConnectionInfo {
    ConnectionInfo {
        name: name.into(),
        protocol,
        tags: [("env".to_string(), env.to_string())].into(),
    }
}

fn decide_on(
    policy: &Policy,
    kind: IdentityKind,
    connection: &ConnectionInfo,
    command: &Command,
) -> Decision {
    decide(
        policy,
        &DecisionInput {
            identity: &identity(kind),
            connection,
            command,
            now_unix: 1_700_000_000,
        },
    )
}

/// A policy of one deny rule `r` with `matcher` (default allow, so only
/// the rule can deny).
fn one_rule(matcher: &str) -> Policy {
    let text = format!(
        "version: 1\ndefault: allow\nrules:\n  - name: r\n    match: {matcher}\n    action: deny\n"
    );
    Policy::from_yaml(&text, "t.yaml").unwrap_or_else(|error| panic!("{matcher}: {error}"))
}

/// Whether the one rule of `one_rule(matcher)` matches `command`.
fn rule_matches(matcher: &str, command: &Command) -> bool {
    let policy = one_rule(matcher);
    let any = connection("billing-api", Protocol::Http, "prod");
    let decision = decide_on(&policy, IdentityKind::Agent, &any, command);
    matches!(&decision.verdict, Verdict::Deny { rule: Some(rule), .. } if rule == "r")
}

fn check_table(cases: &[(&str, Command, bool)]) {
    for (matcher, command, expected) in cases {
        assert_eq!(
            rule_matches(matcher, command),
            *expected,
            "match {matcher} on {command:?}"
        );
    }
}

#[test]
fn http_conditions() {
    use KubernetesVerb::*;
    check_table(&[
        ("{http: {}}", http("GET", "/x"), true),
        ("{http: {}}", sql("SELECT 1"), false),
        ("{http: {}}", k8s_in(Get, "pods", "a"), false),
        ("{http: {}}", mcp_method("tools/list"), false),
        ("{http: {methods: [POST]}}", http("POST", "/a"), true),
        ("{http: {methods: [POST]}}", http("GET", "/a"), false),
        ("{http: {methods: [POST, PUT]}}", http("PUT", "/a"), true),
        (
            "{http: {paths: [\"/v1/invoices/**\"]}}",
            http("GET", "/v1/invoices"),
            true,
        ),
        (
            "{http: {paths: [\"/v1/invoices/**\"]}}",
            http("GET", "/v1/invoices/"),
            true,
        ),
        (
            "{http: {paths: [\"/v1/invoices/**\"]}}",
            http("GET", "/v1/invoices/7"),
            true,
        ),
        (
            "{http: {paths: [\"/v1/invoices/**\"]}}",
            http("GET", "/v1/invoices/7/lines"),
            true,
        ),
        (
            "{http: {paths: [\"/v1/invoices/**\"]}}",
            http("GET", "/v1/invoicesx"),
            false,
        ),
        (
            "{http: {paths: [\"/v1/invoices/**\"]}}",
            http("GET", "/v2/invoices/7"),
            false,
        ),
        (
            "{http: {paths: [\"/v1/*/items\"]}}",
            http("GET", "/v1/a/items"),
            true,
        ),
        (
            "{http: {paths: [\"/v1/*/items\"]}}",
            http("GET", "/v1/a/b/items"),
            false,
        ),
        (
            "{http: {paths: [\"/v1/**/items\"]}}",
            http("GET", "/v1/a/b/items"),
            true,
        ),
        (
            "{http: {paths: [\"/v1/**/items\"]}}",
            http("GET", "/v1/items"),
            true,
        ),
        (
            "{http: {paths: [\"/health\"]}}",
            http("GET", "/health"),
            true,
        ),
        (
            "{http: {paths: [\"/health\"]}}",
            http("GET", "/healthz"),
            false,
        ),
        (
            "{http: {methods: [DELETE], paths: [\"/v1/**\"]}}",
            http("DELETE", "/v1/x"),
            true,
        ),
        (
            "{http: {methods: [DELETE], paths: [\"/v1/**\"]}}",
            http("GET", "/v1/x"),
            false,
        ),
        (
            "{http: {methods: [DELETE], paths: [\"/v1/**\"]}}",
            http("DELETE", "/v2/x"),
            false,
        ),
    ]);
}

#[test]
fn kubernetes_conditions() {
    use KubernetesVerb::*;
    let exec = k8s(Exec, "", "pods", Some("exec"), Some("a"), Some("web-1"));
    let node = k8s(Delete, "", "nodes", None, None, Some("n1"));
    let deployment = k8s(Create, "apps", "deployments", None, Some("a"), None);
    check_table(&[
        ("{kubernetes: {}}", k8s_in(Get, "pods", "a"), true),
        ("{kubernetes: {}}", http("GET", "/api/v1/pods"), false),
        ("{kubernetes: {}}", sql("SELECT 1"), false),
        ("{kubernetes: {}}", tool("get_pod", json!({})), false),
        ("{kubernetes: {verbs: [delete]}}", k8s_in(Delete, "pods", "a"), true),
        ("{kubernetes: {verbs: [delete]}}", k8s_in(Get, "pods", "a"), false),
        ("{kubernetes: {verbs: [delete]}}", k8s_in(DeleteCollection, "pods", "a"), false),
        ("{kubernetes: {verbs: [exec, attach]}}", exec.clone(), true),
        ("{kubernetes: {resources: [secrets]}}", k8s_in(List, "secrets", "a"), true),
        ("{kubernetes: {resources: [secrets]}}", k8s_in(List, "pods", "a"), false),
        ("{kubernetes: {resources: [\"*\"]}}", node.clone(), true),
        ("{kubernetes: {namespaces: [\"*\"]}}", k8s_in(Delete, "pods", "a"), true),
        ("{kubernetes: {namespaces: [\"*\"]}}", node.clone(), false),
        ("{kubernetes: {namespaces: [\"team-*\"]}}", k8s_in(Get, "pods", "team-a"), true),
        ("{kubernetes: {namespaces: [\"team-*\"]}}", k8s_in(Get, "pods", "prod"), false),
        ("{kubernetes: {groups: [apps]}}", deployment.clone(), true),
        ("{kubernetes: {groups: [apps]}}", k8s_in(Get, "pods", "a"), false),
        ("{kubernetes: {groups: [\"\"]}}", k8s_in(Get, "pods", "a"), true),
        ("{kubernetes: {groups: [\"\"]}}", deployment, false),
        ("{kubernetes: {subresources: [exec]}}", exec.clone(), true),
        ("{kubernetes: {subresources: [exec]}}", k8s_in(Get, "pods", "a"), false),
        ("{kubernetes: {names: [\"web-*\"]}}", exec.clone(), true),
        ("{kubernetes: {names: [\"web-*\"]}}", k8s_in(List, "pods", "a"), false),
        ("{kubernetes: {verbs: [delete], namespaces: [\"*\"]}}", node, false),
        ("{kubernetes: {verbs: [exec], resources: [pods], subresources: [exec], namespaces: [a], names: [web-1]}}", exec, true),
    ]);
}

fn port_forward(ports: &[u16]) -> Command {
    let request = KubernetesRequest {
        subresource: Some("portforward".into()),
        namespace: Some("default".into()),
        name: Some("web-1".into()),
        ports: ports.to_vec(),
        ..KubernetesRequest::new(KubernetesVerb::PortForward, "pods")
    };
    Command::new("POST pods/portforward", CommandKind::Kubernetes(request))
}

/// `kubernetes.ports`: port-forwards only; a deny or review rule when any
/// port asked is listed, an allow rule when every one is (also when none is
/// asked yet: kubectl's tunnel, whose connections are decided one by one).
#[test]
fn port_conditions() {
    let deny = "{kubernetes: {ports: [22, 5432]}}";
    let cases = [
        (deny, port_forward(&[22]), true),
        (deny, port_forward(&[8080, 5432]), true),
        (deny, port_forward(&[8080]), false),
        (deny, port_forward(&[]), false),
        (deny, k8s_in(KubernetesVerb::Get, "pods", "default"), false),
    ];
    check_table(&cases);
    let policy = Policy::from_yaml(
        "version: 1\ndefault: deny\nrules:\n  - name: web\n    match: {kubernetes: {verbs: [portforward], ports: [8080]}}\n    action: allow\n  - name: any-port\n    match: {kubernetes: {ports: [8080]}}\n    action: allow\n",
        "t.yaml",
    )
    .unwrap();
    let dev = connection("k8s-dev", Protocol::Kubernetes, "dev");
    let allowed = |command: &Command| {
        decide_on(&policy, IdentityKind::Agent, &dev, command).verdict == Verdict::Allow
    };
    assert!(allowed(&port_forward(&[8080])));
    assert!(allowed(&port_forward(&[])));
    assert!(!allowed(&port_forward(&[8080, 22])));
    assert!(!allowed(&port_forward(&[22])));
    // A ports condition never lets anything but a port-forward through.
    assert!(!allowed(&k8s_in(KubernetesVerb::Delete, "pods", "default")));
    let problems = problems("version: 1\ndefault: deny\nrules:\n  - name: r\n    match: {kubernetes: {ports: [0, 70000]}}\n    action: allow\n");
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0]
            .2
            .contains("match.kubernetes.ports: 0 is not a port"),
        "{problems:?}"
    );
}

#[test]
fn mcp_conditions() {
    let merge =
        |repo: serde_json::Value| tool("merge_pull_request", json!({"repo": repo, "number": 42}));
    check_table(&[
        ("{mcp: {}}", mcp_method("tools/list"), true),
        ("{mcp: {}}", tool("anything", json!({})), true),
        ("{mcp: {}}", http("POST", "/mcp"), false),
        ("{mcp: {}}", sql("SELECT 1"), false),
        (
            "{mcp: {tools: [\"get_*\"]}}",
            tool("get_issue", json!({})),
            true,
        ),
        (
            "{mcp: {tools: [\"get_*\"]}}",
            tool("merge_pull_request", json!({})),
            false,
        ),
        (
            "{mcp: {tools: [\"get_*\"]}}",
            mcp_method("tools/list"),
            false,
        ),
        (
            "{mcp: {tools: [\"get_*\"]}}",
            k8s_in(KubernetesVerb::Get, "pods", "a"),
            false,
        ),
        ("{mcp: {tools: [a, b]}}", tool("b", json!(null)), true),
        (
            "{mcp: {arguments: {repo: \"acme/*\"}}}",
            merge(json!("acme/api")),
            true,
        ),
        (
            "{mcp: {arguments: {repo: \"acme/*\"}}}",
            merge(json!("other/api")),
            false,
        ),
        (
            "{mcp: {arguments: {repo: \"acme/*\"}}}",
            tool("merge_pull_request", json!({})),
            false,
        ),
        (
            "{mcp: {arguments: {repo: \"acme/*\"}}}",
            merge(json!(["acme/api"])),
            false,
        ),
        (
            "{mcp: {arguments: {repo: \"acme/*\"}}}",
            mcp_method("tools/list"),
            false,
        ),
        (
            "{mcp: {arguments: {number: \"4*\"}}}",
            merge(json!("x")),
            true,
        ),
        (
            "{mcp: {arguments: {repo: \"acme/*\", number: \"7\"}}}",
            merge(json!("acme/api")),
            false,
        ),
        (
            "{mcp: {tools: [merge_pull_request], arguments: {repo: \"acme/*\"}}}",
            merge(json!("acme/api")),
            true,
        ),
        (
            "{mcp: {tools: [merge_pull_request], arguments: {repo: \"acme/*\"}}}",
            tool("close_issue", json!({"repo": "acme/api"})),
            false,
        ),
        (
            "{mcp: {methods: [\"sampling/*\"]}}",
            server_request("sampling/createMessage"),
            true,
        ),
        (
            "{mcp: {methods: [\"sampling/*\"]}}",
            server_request("elicitation/create"),
            false,
        ),
        (
            "{mcp: {methods: [\"sampling/*\"]}}",
            tool("sampling", json!({})),
            false,
        ),
        (
            "{mcp: {methods: [resources/read]}}",
            mcp_method("resources/read"),
            true,
        ),
        (
            "{mcp: {methods: [tools/call], tools: [get_*]}}",
            tool("get_issue", json!({})),
            true,
        ),
        // A server request has no tool: `tools` never matches it.
        (
            "{mcp: {tools: [\"*\"]}}",
            server_request("sampling/createMessage"),
            false,
        ),
        ("{mcp: {}}", server_request("roots/list"), true),
        (
            "{access: read}",
            server_request("sampling/createMessage"),
            false,
        ),
        ("{access: read}", server_request("roots/list"), true),
    ]);
}

/// The SQL conditions never hold for another protocol's command.
#[test]
fn sql_conditions_never_match_other_protocols() {
    use KubernetesVerb::*;
    let sql_only = [
        "{operations: [select, delete]}",
        "{tables: [\"*\"]}",
        "{tables_written: [\"*\"]}",
        "{functions: [\"*\"]}",
        "{unknown_functions: false}",
        "{has_where: false}",
        "{statements: {max: 5}}",
    ];
    let others = [
        http("GET", "/orders"),
        http("DELETE", "/orders/1"),
        k8s_in(Get, "orders", "a"),
        k8s_in(Delete, "orders", "a"),
        tool("select", json!({})),
        mcp_method("resources/read"),
    ];
    for matcher in sql_only {
        for command in &others {
            assert!(!rule_matches(matcher, command), "{matcher} on {command:?}");
        }
    }
    // ... while they do on SQL, so the table above could fail.
    check_table(&[
        (
            "{operations: [select, delete]}",
            sql("SELECT * FROM orders"),
            true,
        ),
        ("{tables: [\"*\"]}", sql("SELECT * FROM orders"), true),
        ("{functions: [\"*\"]}", sql("SELECT now()"), true),
        ("{unknown_functions: false}", sql("SELECT 1"), true),
        ("{has_where: false}", sql("DELETE FROM orders"), true),
        ("{statements: {max: 5}}", sql("SELECT 1"), true),
    ]);
}

/// `access`, `complete`, `identity` and `connection` mean the same for
/// every protocol.
#[test]
fn shared_conditions_hold_everywhere() {
    use KubernetesVerb::*;
    let rolebinding = k8s(
        Create,
        "rbac.authorization.k8s.io",
        "rolebindings",
        None,
        Some("a"),
        None,
    );
    let exec = k8s(Exec, "", "pods", Some("exec"), Some("a"), Some("web-1"));
    check_table(&[
        ("{access: read}", sql("SELECT 1"), true),
        ("{access: read}", sql("DELETE FROM t WHERE id = 1"), false),
        ("{access: read}", http("GET", "/a"), true),
        ("{access: read}", http("HEAD", "/a"), true),
        ("{access: read}", http("POST", "/a"), false),
        ("{access: read}", http("GET", "/a/../b"), false),
        ("{access: read}", k8s_in(List, "pods", "a"), true),
        ("{access: read}", k8s_in(Watch, "pods", "a"), true),
        ("{access: read}", k8s_in(Patch, "pods", "a"), false),
        ("{access: read}", exec.clone(), false),
        ("{access: read}", mcp_method("tools/list"), true),
        ("{access: read}", read_only_tool("get_issue"), true),
        ("{access: read}", tool("get_issue", json!({})), false),
        ("{access: write}", http("PATCH", "/a"), true),
        ("{access: write}", k8s_in(Create, "pods", "a"), true),
        ("{access: write}", tool("create_issue", json!({})), true),
        ("{access: admin}", exec, true),
        ("{access: admin}", rolebinding, true),
        ("{access: admin}", http("DELETE", "/a"), false),
        ("{access: admin}", sql("GRANT ALL ON t TO bob"), true),
        ("{complete: false}", http("GET", "/a/../b"), true),
        ("{complete: false}", http("GET", "/a"), false),
        ("{complete: false}", mcp_method("tasks/run"), true),
        ("{complete: false}", mcp_method("ping"), false),
        ("{complete: true}", k8s_in(Get, "pods", "a"), true),
        ("{identity: {kind: agent}}", http("GET", "/a"), true),
        ("{identity: {kind: human}}", http("GET", "/a"), false),
        ("{identity: {kind: agent}}", tool("x", json!({})), true),
        (
            "{connection: {name: \"billing-*\"}}",
            k8s_in(Get, "pods", "a"),
            true,
        ),
        (
            "{connection: {name: \"github-*\"}}",
            mcp_method("ping"),
            false,
        ),
        ("{connection: {tags: {env: prod}}}", http("GET", "/a"), true),
        ("{connection: {tags: {env: dev}}}", http("GET", "/a"), false),
    ]);
}

/// An unsure request is never allowed by an ordinary allow rule, whatever
/// the protocol: only an explicit `complete: false` rule lets it through.
#[test]
fn incomplete_requests_need_an_explicit_allow() {
    let allow_all = Policy::from_yaml(
        "version: 1\ndefault: allow\nrules:\n  - name: everything\n    match: {http: {}}\n    action: allow\n",
        "t.yaml",
    )
    .unwrap();
    let billing = connection("billing-api", Protocol::Http, "prod");
    let sneaky = http("GET", "/v1/./invoices");
    let decision = decide_on(&allow_all, IdentityKind::Agent, &billing, &sneaky);
    assert!(
        matches!(&decision.verdict, Verdict::Deny { rule: None, message } if message.contains("could not be classified")),
        "{decision:?}"
    );
    let explicit = Policy::from_yaml(
        "version: 1\nrules:\n  - name: unsure-ok\n    match: {http: {}, complete: false}\n    action: allow\n",
        "t.yaml",
    )
    .unwrap();
    let decision = decide_on(&explicit, IdentityKind::Agent, &billing, &sneaky);
    assert_eq!(decision.verdict, Verdict::Allow);
}

fn problems(text: &str) -> Vec<(u64, String, String)> {
    let error = Policy::from_yaml(text, "p.yaml").unwrap_err();
    error
        .problems
        .iter()
        .map(|p| {
            (
                p.line,
                p.rule.clone().unwrap_or_default(),
                p.message.clone(),
            )
        })
        .collect()
}

/// Every problem of the new conditions, with its line.
#[test]
fn invalid_protocol_conditions_report_their_lines() {
    let text = r#"version: 1
rules:
  - name: bad-http
    match:
      http: {methods: [get, FETCH], paths: ["v1/x", "/a/[b"]}
    action: deny
  - name: bad-k8s
    match:
      kubernetes:
        verbs: [remove]
        resources: [pods/exec]
        namespaces: ["[x"]
    action: deny
  - name: sql-and-http
    match:
      operations: [select]
      http: {methods: [GET]}
    action: allow
  - name: http-and-kubernetes
    match:
      http: {}
      kubernetes: {}
    action: deny
  - name: bad-mcp
    match:
      mcp: {tools: ["[a"], arguments: {repo: "{x"}}
    action: deny
  - name: bad-fields
    mask:
      fields: ["password", "$.a["]
"#;
    let found = problems(text);
    let expected: &[(u64, &str, &str)] = &[
        (
            5,
            "bad-http",
            "match.http.methods: methods are case-sensitive: write \"GET\", not \"get\"",
        ),
        (
            5,
            "bad-http",
            "match.http.methods: unknown method \"FETCH\"",
        ),
        (
            5,
            "bad-http",
            "match.http.paths: \"v1/x\" must start with /",
        ),
        (5, "bad-http", "match.http.paths: bad glob \"/a/[b\""),
        (
            10,
            "bad-k8s",
            "match.kubernetes.verbs: unknown verb \"remove\"",
        ),
        (
            11,
            "bad-k8s",
            "match.kubernetes.resources: \"pods/exec\" names a subresource",
        ),
        (
            12,
            "bad-k8s",
            "match.kubernetes.namespaces: bad glob \"[x\"",
        ),
        (
            17,
            "sql-and-http",
            "match: `operations` (SQL) and `http` are conditions of different protocols",
        ),
        (
            22,
            "http-and-kubernetes",
            "match: `http` and `kubernetes` are conditions of different protocols",
        ),
        (26, "bad-mcp", "match.mcp.tools: bad glob \"[a\""),
        (26, "bad-mcp", "match.mcp.arguments.repo: bad glob \"{x\""),
        (
            30,
            "bad-fields",
            "mask.fields: \"password\" must start with $",
        ),
        (
            30,
            "bad-fields",
            "mask.fields: \"$.a[\" a `[` is not closed",
        ),
    ];
    assert_eq!(found.len(), expected.len(), "{found:#?}");
    for ((line, rule, message), (want_line, want_rule, want_message)) in found.iter().zip(expected)
    {
        assert_eq!((line, rule.as_str()), (want_line, *want_rule), "{message}");
        assert!(message.starts_with(want_message), "{message}");
    }
}

/// A misspelt key inside a protocol condition is refused at its rule's
/// line, and the other rules are still checked.
#[test]
fn unknown_keys_in_protocol_conditions() {
    let text = "version: 1
rules:
  - name: typo
    match:
      http: {method: [GET]}
    action: deny
  - name: k8s-typo
    match: {kubernetes: {verb: [get]}}
    action: deny
  - name: mcp-typo
    match: {mcp: {tool: [x]}}
    action: deny
  - name: bad-verb
    match: {kubernetes: {verbs: [nuke]}}
    action: deny
";
    let found = problems(text);
    let lines: Vec<(u64, &str)> = found.iter().map(|(l, r, _)| (*l, r.as_str())).collect();
    assert_eq!(
        lines,
        [
            (3, "typo"),
            (7, "k8s-typo"),
            (10, "mcp-typo"),
            (13, "bad-verb")
        ],
        "{found:#?}"
    );
    assert!(found[0].2.contains("unknown field `method`"), "{found:#?}");
    assert!(found[1].2.contains("unknown field `verb`"), "{found:#?}");
    assert!(found[2].2.contains("unknown field `tool`"), "{found:#?}");
    assert!(found[3].2.contains("unknown verb \"nuke\""), "{found:#?}");
}

/// Access rules admit on identity, connection and time only.
#[test]
fn access_rules_refuse_protocol_conditions() {
    let found = problems(
        "version: 1\naccess:\n  - name: a\n    match: {http: {methods: [GET]}}\n    max_duration: 1h\n    approvers: [sre]\n",
    );
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].0, 3);
    assert!(found[0].2.contains("identity, connection and time only"));
}

/// `mask.fields` merges like the other mask rules and leaves the SQL
/// obligation's JSON as it was when empty.
#[test]
fn mask_fields_are_obligations() {
    let policy = Policy::from_yaml(
        "version: 1\ndefault: allow\nrules:\n  - name: a\n    mask: {fields: [\"$..token\", \"$..password\"]}\n  - name: b\n    mask: {fields: [\"$..password\"], columns: [ssn]}\n  - name: c\n    match: {identity: {kind: human}}\n    mask: {columns: [email]}\n",
        "t.yaml",
    )
    .unwrap();
    let prod = connection("billing-api", Protocol::Http, "prod");
    let decision = decide_on(&policy, IdentityKind::Agent, &prod, &http("GET", "/a"));
    let mask = decision.mask.unwrap();
    assert_eq!(mask.fields, ["$..password", "$..token"]);
    assert_eq!(mask.columns, ["ssn"]);
    let human = decide_on(&policy, IdentityKind::Human, &prod, &sql("SELECT 1"));
    let json = serde_json::to_value(human.mask.unwrap()).unwrap();
    assert_eq!(json["fields"], json!(["$..password", "$..token"]));
    let only_columns = Policy::from_yaml(
        "version: 1\ndefault: allow\nrules:\n  - name: c\n    mask: {columns: [email]}\n",
        "t.yaml",
    )
    .unwrap();
    let decision = decide_on(&only_columns, IdentityKind::Human, &prod, &sql("SELECT 1"));
    let json = serde_json::to_value(decision.mask.unwrap()).unwrap();
    assert!(json.get("fields").is_none(), "{json}");
}

fn multi() -> Policy {
    let mut policy = Policy::from_file(&multi_example())
        .unwrap_or_else(|error| panic!("policy-multi.yaml must load unchanged:\n{error}"));
    policy.version = 3;
    policy
}

/// What a sample command must get: the verdict's name and deciding rule.
struct Sample {
    kind: IdentityKind,
    connection: ConnectionInfo,
    command: Command,
    verdict: &'static str,
    rule: Option<&'static str>,
}

/// `examples/policy-multi.yaml` loads unchanged, and decides a sample of
/// every protocol as its comments say.
#[test]
fn the_multi_protocol_example_loads_and_decides() {
    use IdentityKind::{Agent, Human};
    use KubernetesVerb::*;
    let policy = multi();
    assert_eq!(policy.rules.len(), 11);
    let prod_pg = connection("prod-pg", Protocol::Postgres, "prod");
    let dev_pg = connection("dev-pg", Protocol::Postgres, "dev");
    let billing = connection("billing-api", Protocol::Http, "prod");
    let k8s_prod = connection("k8s-prod", Protocol::Kubernetes, "prod");
    let k8s_dev = connection("k8s-dev", Protocol::Kubernetes, "dev");
    let github = connection("github-mcp", Protocol::Mcp, "prod");
    let files = connection("files-mcp", Protocol::Mcp, "dev");
    let sample = |kind, connection: &ConnectionInfo, command, verdict, rule| Sample {
        kind,
        connection: connection.clone(),
        command,
        verdict,
        rule,
    };
    let samples = [
        // SQL: reads pass, destructive DDL in prod is denied, writes fall
        // to the default.
        sample(Agent, &prod_pg, sql("SELECT * FROM orders"), "allow", None),
        sample(
            Human,
            &prod_pg,
            sql("DROP TABLE orders"),
            "deny",
            Some("no-destructive-ddl-in-prod"),
        ),
        sample(
            Agent,
            &dev_pg,
            sql("INSERT INTO t VALUES (1)"),
            "deny",
            None,
        ),
        // HTTP: GET reads; writes under /v1/invoices (the collection
        // itself included) need finance; other writes: default.
        sample(
            Agent,
            &billing,
            http("GET", "/v1/invoices/7"),
            "allow",
            None,
        ),
        sample(
            Human,
            &billing,
            http("POST", "/v1/invoices/7/void"),
            "review",
            Some("billing-writes-need-review"),
        ),
        sample(
            Agent,
            &billing,
            http("POST", "/v1/invoices"),
            "review",
            Some("billing-writes-need-review"),
        ),
        sample(
            Agent,
            &billing,
            http("DELETE", "/v1/invoices/7"),
            "review",
            Some("billing-writes-need-review"),
        ),
        sample(Agent, &billing, http("POST", "/v1/customers"), "deny", None),
        // A path the upstream could read as another: unclassified, denied.
        sample(
            Agent,
            &billing,
            http("POST", "/v1/invoices/../customers"),
            "deny",
            None,
        ),
        // Kubernetes: reads pass except secrets for agents.
        sample(
            Agent,
            &k8s_prod,
            k8s_in(List, "pods", "payments"),
            "allow",
            None,
        ),
        sample(
            Agent,
            &k8s_prod,
            k8s_in(Get, "secrets", "payments"),
            "deny",
            Some("no-secrets-for-agents"),
        ),
        sample(
            Agent,
            &k8s_dev,
            k8s_in(Create, "secrets", "payments"),
            "deny",
            Some("no-secrets-for-agents"),
        ),
        sample(
            Human,
            &k8s_prod,
            k8s_in(Get, "secrets", "payments"),
            "allow",
            None,
        ),
        // dev writes pass; deletecollection is not among the listed verbs.
        sample(
            Agent,
            &k8s_dev,
            k8s(Create, "apps", "deployments", None, Some("web"), None),
            "allow",
            None,
        ),
        sample(
            Agent,
            &k8s_dev,
            k8s_in(DeleteCollection, "pods", "web"),
            "deny",
            None,
        ),
        // The rule names verbs only, so RBAC changes in dev (admin access)
        // pass too; a policy that minds adds `access: write`.
        sample(
            Agent,
            &k8s_dev,
            k8s(
                Create,
                "rbac.authorization.k8s.io",
                "rolebindings",
                None,
                Some("web"),
                None,
            ),
            "allow",
            None,
        ),
        // prod deletes in a namespace need sre; cluster-scoped ones have no
        // namespace, so only the default applies (deny).
        sample(
            Agent,
            &k8s_prod,
            k8s_in(Delete, "pods", "payments"),
            "review",
            Some("k8s-prod-deletes-need-review"),
        ),
        sample(
            Agent,
            &k8s_prod,
            k8s_in(DeleteCollection, "pods", "payments"),
            "review",
            Some("k8s-prod-deletes-need-review"),
        ),
        sample(
            Human,
            &k8s_prod,
            k8s(Delete, "", "nodes", None, None, Some("n1")),
            "deny",
            None,
        ),
        sample(
            Agent,
            &k8s_prod,
            k8s_in(Update, "deployments", "payments"),
            "deny",
            None,
        ),
        // exec, attach and portforward need an MFA-confirmed review.
        sample(
            Human,
            &k8s_dev,
            k8s(Exec, "", "pods", Some("exec"), Some("web"), Some("web-1")),
            "review",
            Some("exec-needs-mfa"),
        ),
        sample(
            Agent,
            &k8s_prod,
            k8s(
                PortForward,
                "",
                "pods",
                Some("portforward"),
                Some("payments"),
                Some("db-0"),
            ),
            "review",
            Some("exec-needs-mfa"),
        ),
        // MCP: the read tools of github-mcp pass, merges to acme need
        // maintainers, other tool calls fall to the default.
        sample(
            Agent,
            &github,
            tool("get_issue", json!({"number": 7})),
            "allow",
            None,
        ),
        sample(
            Agent,
            &github,
            tool("search_code", json!({"q": "x"})),
            "allow",
            None,
        ),
        sample(
            Agent,
            &github,
            read_only_tool("fetch_readme"),
            "allow",
            None,
        ),
        sample(Agent, &github, mcp_method("tools/list"), "allow", None),
        sample(
            Agent,
            &github,
            tool(
                "merge_pull_request",
                json!({"repo": "acme/api", "number": 4}),
            ),
            "review",
            Some("github-merges-need-review"),
        ),
        sample(
            Agent,
            &github,
            tool(
                "merge_pull_request",
                json!({"repo": "other/api", "number": 4}),
            ),
            "deny",
            None,
        ),
        sample(
            Agent,
            &github,
            tool("create_issue", json!({"title": "x"})),
            "deny",
            None,
        ),
        sample(
            Agent,
            &files,
            tool("get_file_info", json!({"path": "/srv"})),
            "deny",
            None,
        ),
    ];
    for sample in &samples {
        let decision = decide_on(&policy, sample.kind, &sample.connection, &sample.command);
        let rule = match &decision.verdict {
            Verdict::Allow => None,
            Verdict::Deny { rule, .. } => rule.clone(),
            Verdict::Review { rule, .. } => Some(rule.clone()),
        };
        assert_eq!(
            (decision.verdict.name(), rule.as_deref()),
            (sample.verdict, sample.rule),
            "{:?} on {}: {decision:?}",
            sample.command,
            sample.connection.name
        );
    }

    // Obligations: prod is masked (SQL columns and JSON fields alike),
    // agents are rate limited, on every protocol.
    let decision = decide_on(&policy, Agent, &billing, &http("GET", "/v1/invoices/7"));
    let mask = decision.mask.expect("prod is masked");
    assert_eq!(mask.fields, ["$..password", "$..token"]);
    assert_eq!(mask.columns, ["*password*", "*token*"]);
    assert_eq!(decision.rate_limits.len(), 1);
    assert_eq!(decision.rate_limits[0].per_minute, 600);
    let decision = decide_on(&policy, Human, &files, &mcp_method("tools/list"));
    assert!(decision.mask.is_none() && decision.rate_limits.is_empty());

    // The review details come from the rules.
    let decision = decide_on(&policy, Human, &billing, &http("PUT", "/v1/invoices/7"));
    match decision.verdict {
        Verdict::Review {
            approvers, wait, ..
        } => {
            assert_eq!(approvers, ["finance"]);
            assert_eq!(wait, Some(Duration::from_secs(60)));
        }
        other => panic!("{other:?}"),
    }
    let exec = k8s(
        Attach,
        "",
        "pods",
        Some("attach"),
        Some("web"),
        Some("web-1"),
    );
    let decision = decide_on(&policy, Human, &k8s_dev, &exec);
    assert!(
        matches!(&decision.verdict, Verdict::Review { require_mfa: true, approvers, .. } if approvers == &["sre"]),
        "{decision:?}"
    );
    assert_eq!(
        decision.client_message().unwrap(),
        "review required by rule \"exec-needs-mfa\" (policy v3)"
    );
    let denied = decide_on(&policy, Agent, &billing, &http("POST", "/v1/customers"));
    assert_eq!(
        denied.client_message().unwrap(),
        "blocked by policy v3: no rule allows POST /v1/customers on billing-api"
    );
    let secrets = decide_on(&policy, Agent, &k8s_prod, &k8s_in(List, "secrets", "a"));
    assert_eq!(
        secrets.client_message().unwrap(),
        "blocked by rule \"no-secrets-for-agents\" (policy v3): agents may not read or change Kubernetes secrets"
    );
}

/// Explain lists the new conditions, held or not, and shows the request.
#[test]
fn explain_shows_protocol_conditions() {
    let policy = multi();
    let billing = connection("billing-api", Protocol::Http, "prod");
    let command = http("POST", "/v1/invoices/7");
    let explanation = explain(
        &policy,
        &DecisionInput {
            identity: &identity(IdentityKind::Agent),
            connection: &billing,
            command: &command,
            now_unix: 1_700_000_000,
        },
    );
    let rule = |name: &str| explanation.rules.iter().find(|r| r.name == name).unwrap();
    let review = rule("billing-writes-need-review");
    assert!(review.matched);
    let held: Vec<(&str, bool)> = review
        .conditions
        .iter()
        .map(|c| (c.condition.as_str(), c.held))
        .collect();
    assert_eq!(
        held,
        [
            ("connection.name matches billing-api", true),
            ("http", true),
            ("http.methods in [POST, PUT, PATCH, DELETE]", true),
            ("http.paths match [/v1/invoices/**]", true),
        ]
    );
    let secrets = rule("no-secrets-for-agents");
    assert!(!secrets.matched);
    assert!(secrets
        .conditions
        .iter()
        .any(|c| c.condition == "kubernetes" && !c.held));
    assert!(secrets
        .conditions
        .iter()
        .any(|c| c.condition == "kubernetes.resources match [secrets]" && !c.held));
    let text = explanation.to_text();
    assert!(
        text.contains("request: HTTP POST /v1/invoices/7 (write access) -> review"),
        "{text}"
    );
    assert!(
        text.contains("  ✓ HTTP path matches /v1/invoices/**"),
        "{text}"
    );
    assert!(
        text.contains("  ✗ the command is a Kubernetes request"),
        "{text}"
    );
    assert!(text.contains("JSON fields $..password, $..token"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&explanation.to_json()).unwrap();
    assert_eq!(json["statements"][0]["request"]["http"]["method"], "POST");
    assert!(json["statements"][0].get("classification").is_none());

    // On SQL, the protocol conditions are shown as not holding.
    let prod_pg = connection("prod-pg", Protocol::Postgres, "prod");
    let command = sql("SELECT 1");
    let explanation = explain(
        &policy,
        &DecisionInput {
            identity: &identity(IdentityKind::Agent),
            connection: &prod_pg,
            command: &command,
            now_unix: 1_700_000_000,
        },
    );
    let tools = explanation
        .rules
        .iter()
        .find(|r| r.name == "github-merges-need-review")
        .unwrap();
    assert!(!tools.matched);
    assert!(tools.conditions.iter().all(|c| !c.held), "{tools:?}");
    let json: serde_json::Value = serde_json::from_str(&explanation.to_json()).unwrap();
    assert!(json["statements"][0].get("request").is_none());
    assert_eq!(json["statements"][0]["classification"]["access"], "read");
}
