//! Classification speed for typical statements (target: well under 5 µs).

use airlock_sql::{classify, Dialect};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

const STATEMENTS: &[(&str, &str)] = &[
    ("point_select", "SELECT abalance FROM pgbench_accounts WHERE aid = $1"),
    (
        "join_select",
        "SELECT u.id, u.email, count(o.id) FROM users u LEFT JOIN orders o ON o.user_id = u.id \
         WHERE u.created_at > now() - interval '7 days' GROUP BY u.id, u.email ORDER BY 3 DESC LIMIT 20",
    ),
    ("update", "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2"),
    ("insert", "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)"),
    (
        "cte_delete",
        "WITH d AS (DELETE FROM events WHERE ts < now() - interval '30 days' RETURNING *) \
         INSERT INTO events_archive SELECT * FROM d",
    ),
];

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("classify");
    for (name, sql) in STATEMENTS {
        group.bench_function(*name, |b| {
            b.iter(|| classify(Dialect::Postgres, black_box(sql)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
