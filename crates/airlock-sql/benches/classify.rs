//! Classification speed for typical statements (target: well under 5 µs),
//! and the cost of the syntax check the incomplete path pays.

use airlock_sql::{classify, syntax_error, Dialect};
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
    let long_typo = format!("select {} form t", "a, ".repeat(3000));
    let syntax_checks: [(&str, &str); 5] = [
        ("typo", "select * form t"),
        ("typo_token_repeated", "select x from t t t"),
        ("unterminated_quote", "select 'abc"),
        ("parses", "DO $$ begin perform 1; end $$"),
        ("typo_after_9kb", &long_typo),
    ];
    let mut group = c.benchmark_group("syntax_error");
    for (name, sql) in syntax_checks {
        group.bench_function(name, |b| b.iter(|| syntax_error(black_box(sql))));
    }
    // libpg_query alone, on this thread: the rest of `typo` is the hand-off
    // to the parser thread and locating the token.
    group.bench_function("typo_libpg_query_only", |b| {
        b.iter(|| pg_query::split_with_parser(black_box("select * form t")))
    });
    group.bench_function("typo_after_9kb_libpg_query_only", |b| {
        b.iter(|| pg_query::split_with_parser(black_box(&long_typo)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
