//! Request-info parsing and the decision for typical Kubernetes requests
//! against the shared example policy (`examples/policy-multi.yaml`):
//! DESIGN.md's budget for classification plus policy is 5 µs.

use airlock_k8s::parse_request;
use airlock_policy::{decide, DecisionInput, Policy};
use airlock_types::command::CommandKind;
use airlock_types::{AuthMethod, Command, ConnectionInfo, Identity, IdentityKind, Protocol};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

/// The repository's own `examples/policy-multi.yaml` (tracked in this
/// repository, two folders above this crate), compiled in.
const POLICY: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/policy-multi.yaml"
));

fn bench(c: &mut Criterion) {
    let policy = match Policy::from_yaml(POLICY, "policy-multi.yaml") {
        Ok(policy) => policy,
        Err(error) => {
            eprintln!("examples/policy-multi.yaml does not load: {error}");
            return;
        }
    };
    let identity = Identity {
        name: "agent-7".into(),
        kind: IdentityKind::Agent,
        groups: vec!["agents".into()],
        auth_method: AuthMethod::AirlockToken {
            token_id: "t".into(),
        },
        expires_at: 0,
    };
    let connection = ConnectionInfo {
        name: "k8s-prod".into(),
        protocol: Protocol::Kubernetes,
        tags: [("env".to_string(), "prod".to_string())].into(),
    };
    let requests = [
        (
            "list_pods",
            "GET",
            "/api/v1/namespaces/default/pods",
            Some("limit=500"),
        ),
        (
            "watch",
            "GET",
            "/api/v1/namespaces/default/configmaps",
            Some("watch=true&resourceVersion=42"),
        ),
        (
            "patch_deployment",
            "PATCH",
            "/apis/apps/v1/namespaces/prod/deployments/web",
            None,
        ),
        (
            "exec",
            "POST",
            "/api/v1/namespaces/default/pods/web-1/exec",
            Some("command=sh&stdin=true"),
        ),
    ];
    let mut group = c.benchmark_group("kubernetes");
    for (name, method, path, query) in requests {
        group.bench_function(format!("parse_{name}"), |b| {
            b.iter(|| parse_request(black_box(method), black_box(path), black_box(query)))
        });
        group.bench_function(format!("parse_and_decide_{name}"), |b| {
            b.iter(|| {
                let Ok(info) = parse_request(black_box(method), black_box(path), query) else {
                    return None;
                };
                let command = Command::new(
                    format!("{method} {path}"),
                    CommandKind::Kubernetes(info.into_request(false)),
                );
                Some(decide(
                    &policy,
                    &DecisionInput {
                        identity: &identity,
                        connection: &connection,
                        command: &command,
                        now_unix: 1_700_000_000,
                    },
                ))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
