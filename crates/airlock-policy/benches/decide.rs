//! Classification + decision speed for typical statements against the
//! example policy (target: under 5 µs per statement).

use airlock_policy::{decide, DecisionInput, Policy};
use airlock_sql::{classify, Dialect};
use airlock_types::{AuthMethod, ConnectionInfo, Identity, IdentityKind, Protocol};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

const POLICY: &str = include_str!("../tests/fixtures/policy.yaml");

fn bench(c: &mut Criterion) {
    let Ok(policy) = Policy::from_yaml(POLICY, "policy.yaml") else {
        return;
    };
    let identity = Identity {
        name: "agent-7".into(),
        kind: IdentityKind::Agent,
        groups: vec!["eng".into()],
        auth_method: AuthMethod::AirlockToken {
            token_id: "t".into(),
        },
        expires_at: 0,
    };
    let connection = ConnectionInfo {
        name: "prod-pg".into(),
        protocol: Protocol::Postgres,
        tags: [("env".to_string(), "prod".to_string())].into(),
    };
    let statements = [
        ("point_select", "SELECT abalance FROM pgbench_accounts WHERE aid = $1"),
        ("update", "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2"),
        ("insert", "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)"),
    ];
    let mut group = c.benchmark_group("classify_and_decide");
    for (name, sql) in statements {
        group.bench_function(name, |b| {
            b.iter(|| {
                let command = classify(Dialect::Postgres, black_box(sql));
                decide(
                    &policy,
                    &DecisionInput {
                        identity: &identity,
                        connection: &connection,
                        command: &command,
                        now_unix: 1_700_000_000,
                    },
                )
            })
        });
    }
    let command = classify(Dialect::Postgres, statements[0].1);
    group.bench_function("decide_only", |b| {
        b.iter(|| {
            decide(
                &policy,
                &DecisionInput {
                    identity: &identity,
                    connection: &connection,
                    command: black_box(&command),
                    now_unix: 1_700_000_000,
                },
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
