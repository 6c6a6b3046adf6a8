//! Table-driven classification tests, including adversarial statements built
//! to slip a write past a read-only policy, plus property tests that the
//! classifier never panics.

// Test code: panics are the failure mechanism.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use airlock_sql::{classify, classify_with, prepared_definitions, split_statements, Dialect};
use airlock_types::{Access, Command, Operation, StatementClass};
use proptest::prelude::*;
use std::collections::HashMap;

use Operation as Op;

fn pg(sql: &str) -> Command {
    classify(Dialect::Postgres, sql)
}

fn one(sql: &str) -> StatementClass {
    let command = pg(sql);
    assert_eq!(command.statements().len(), 1, "{sql}: {command:?}");
    command.statements().first().cloned().unwrap()
}

/// (sql, operations, access, complete)
const CASES: &[(&str, &[Operation], Access, bool)] = &[
    ("select 1", &[Op::Select], Access::Read, true),
    ("sElEcT * FrOm t", &[Op::Select], Access::Read, true),
    ("SELECT /* ; DROP TABLE t */ 1", &[Op::Select], Access::Read, true),
    ("SELECT 1 -- ; drop table t", &[Op::Select], Access::Read, true),
    ("SELECT \"DELETE\" FROM t", &[Op::Select], Access::Read, true),
    ("SELECT 'DELETE FROM t'", &[Op::Select], Access::Read, true),
    ("SELECT $$ ; DROP TABLE t; $$", &[Op::Select], Access::Read, true),
    ("SELECT $fn$ $$ ; DROP TABLE t $$ $fn$", &[Op::Select], Access::Read, true),
    ("SELECT E'\\'; DROP TABLE t; --'", &[Op::Select], Access::Read, true),
    ("SELECT U&'\\0041' FROM t", &[Op::Select], Access::Read, true),
    ("WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", &[Op::Delete, Op::Select], Access::Write, true),
    ("WITH x AS (SELECT 1) SELECT * FROM x", &[Op::Select], Access::Read, true),
    ("SELECT * INTO t2 FROM t", &[Op::Select, Op::Create], Access::Write, true),
    ("EXPLAIN ANALYZE DELETE FROM t", &[Op::Delete, Op::Explain], Access::Write, true),
    ("EXPLAIN (ANALYZE) DELETE FROM t", &[Op::Delete, Op::Explain], Access::Write, true),
    ("EXPLAIN (ANALYZE false) DELETE FROM t", &[Op::Explain], Access::Read, true),
    ("EXPLAIN DELETE FROM t", &[Op::Explain], Access::Read, true),
    ("select pg_terminate_backend(1)", &[Op::Select], Access::Admin, true),
    ("select \"pg_terminate_backend\"(1)", &[Op::Select], Access::Admin, true),
    ("select pg_catalog . pg_cancel_backend (1)", &[Op::Select], Access::Admin, true),
    ("SELECT set_config('default_transaction_read_only','off',false)", &[Op::Select], Access::Admin, true),
    ("COPY t TO PROGRAM 'rm -rf /'", &[Op::CopyTo], Access::Admin, true),
    ("COPY t FROM '/etc/passwd'", &[Op::CopyFrom], Access::Admin, true),
    ("COPY t FROM STDIN", &[Op::CopyFrom], Access::Write, true),
    ("COPY (SELECT * FROM t) TO STDOUT", &[Op::CopyTo, Op::Select], Access::Read, true),
    ("COPY (DELETE FROM t RETURNING *) TO STDOUT", &[Op::CopyTo, Op::Delete], Access::Write, true),
    ("select nextval('s')", &[Op::Select], Access::Write, true),
    ("SELECT pg_advisory_lock(1)", &[Op::Select], Access::Write, true),
    ("SELECT * FROM t FOR UPDATE", &[Op::Select, Op::Lock], Access::Write, true),
    ("SELECT * FROM t FOR NO KEY UPDATE OF t SKIP LOCKED", &[Op::Select, Op::Lock], Access::Write, true),
    ("select lo_import('/etc/passwd')", &[Op::Select], Access::Admin, true),
    ("select lo_unlink(1)", &[Op::Select], Access::Write, true),
    ("SELECT * FROM dblink('x', 'delete from t') AS r(a int)", &[Op::Select], Access::Admin, true),
    ("SELECT query_to_xml('delete from t returning *', true, false, '')", &[Op::Select], Access::Admin, true),
    ("SELECT my_func(1)", &[Op::Select], Access::Write, true),
    ("SELECT public.lower('A')", &[Op::Select], Access::Write, true),
    ("SELECT lower(name), count(*) FROM t GROUP BY 1", &[Op::Select], Access::Read, true),
    ("SELECT * FROM generate_series(1, 3) AS g(i)", &[Op::Select], Access::Read, true),
    ("CREATE RULE r AS ON SELECT TO t DO INSTEAD DELETE FROM u", &[Op::Create], Access::Write, true),
    ("DO $$ BEGIN DELETE FROM t; END $$", &[Op::Do], Access::Write, false),
    ("CALL p()", &[Op::Call], Access::Write, false),
    ("EXECUTE unknown_plan", &[Op::Execute], Access::Write, false),
    ("PREPARE p AS DELETE FROM t", &[Op::Delete, Op::Prepare], Access::Write, true),
    ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a WHEN NOT MATCHED THEN INSERT (id) VALUES (s.id)", &[Op::Merge], Access::Write, true),
    ("INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = excluded.a", &[Op::Insert], Access::Write, true),
    ("UPDATE t SET a = 1", &[Op::Update], Access::Write, true),
    ("DELETE FROM t WHERE CURRENT OF c", &[Op::Delete], Access::Write, true),
    ("TRUNCATE t", &[Op::Truncate], Access::Write, true),
    ("SET ROLE admin", &[Op::Set], Access::Admin, true),
    ("SET SESSION AUTHORIZATION admin", &[Op::Set], Access::Admin, true),
    ("RESET ROLE", &[Op::Set], Access::Admin, true),
    ("SET default_transaction_read_only = off", &[Op::Set], Access::Admin, true),
    ("SET search_path = evil, pg_catalog", &[Op::Set], Access::Admin, true),
    ("SET standard_conforming_strings = off", &[Op::Set], Access::Admin, true),
    // `SET SCHEMA 'x'` is an alias of `SET search_path TO 'x'`.
    ("SET SCHEMA 'pg_catalog'", &[Op::Set], Access::Admin, true),
    ("set schema 'evil'", &[Op::Set], Access::Admin, true),
    ("SET SESSION SCHEMA 'pg_catalog'", &[Op::Set], Access::Admin, true),
    ("SET LOCAL schema 'pg_catalog'", &[Op::Set], Access::Admin, true),
    ("SET LOCAL search_path TO evil", &[Op::Set], Access::Admin, true),
    ("SET \"search_path\" = evil", &[Op::Set], Access::Admin, true),
    ("RESET search_path", &[Op::Set], Access::Admin, true),
    ("RESET ALL", &[Op::Set], Access::Admin, true),
    ("RESET statement_timeout", &[Op::Set], Access::Write, true),
    ("SELECT pg_catalog.set_config('search_path', 'evil', false)", &[Op::Select], Access::Admin, true),
    ("SELECT set_config('search_path', 'evil', true)", &[Op::Select], Access::Admin, true),
    ("SET statement_timeout = '5s'", &[Op::Set], Access::Write, true),
    ("SHOW search_path", &[Op::Show], Access::Read, true),
    ("BEGIN READ WRITE", &[Op::Transaction], Access::Read, true),
    ("START TRANSACTION", &[Op::Transaction], Access::Read, true),
    ("COMMIT", &[Op::Transaction], Access::Read, true),
    ("SAVEPOINT a", &[Op::Transaction], Access::Read, true),
    ("LOCK TABLE t IN ACCESS EXCLUSIVE MODE", &[Op::Lock], Access::Write, true),
    ("VACUUM t", &[Op::Maintenance], Access::Write, true),
    ("ANALYZE t", &[Op::Maintenance], Access::Write, true),
    ("REINDEX TABLE t", &[Op::Maintenance], Access::Write, true),
    ("CLUSTER t", &[Op::Maintenance], Access::Write, true),
    ("REFRESH MATERIALIZED VIEW mv", &[Op::Maintenance], Access::Write, true),
    ("CHECKPOINT", &[Op::Maintenance], Access::Write, true),
    ("LISTEN ch", &[Op::Listen], Access::Read, true),
    ("NOTIFY ch", &[Op::Notify], Access::Write, true),
    ("GRANT SELECT ON t TO bob", &[Op::Grant], Access::Admin, true),
    ("REVOKE ALL ON t FROM bob", &[Op::Revoke], Access::Admin, true),
    ("CREATE ROLE bob", &[Op::Create], Access::Admin, true),
    ("ALTER USER bob WITH SUPERUSER", &[Op::Alter], Access::Admin, true),
    ("DROP ROLE bob", &[Op::Drop], Access::Admin, true),
    ("ALTER SYSTEM SET fsync = off", &[Op::Alter], Access::Admin, true),
    ("CREATE TABLE t (a int)", &[Op::Create], Access::Write, true),
    ("CREATE TABLE t2 AS SELECT * FROM t", &[Op::Create, Op::Select], Access::Write, true),
    ("ALTER TABLE t ADD COLUMN b int", &[Op::Alter], Access::Write, true),
    ("ALTER TABLE t OWNER TO bob", &[Op::Alter], Access::Admin, true),
    ("CREATE FUNCTION f() RETURNS int SECURITY DEFINER LANGUAGE sql AS 'select 1'", &[Op::Create], Access::Admin, true),
    ("DROP TABLE t", &[Op::Drop], Access::Write, true),
    ("SELECT * FROM U&\"t\"", &[Op::Select], Access::Write, false),
    ("FROBNICATE the database", &[Op::Unknown], Access::Write, false),
    ("SELECT 'unterminated", &[Op::Select], Access::Write, false),
    ("SELECT (1", &[Op::Select], Access::Write, false),
    ("SELECT update FROM t", &[Op::Select], Access::Write, false),
];

#[test]
fn classification_table() {
    for (sql, operations, access, complete) in CASES {
        let class = one(sql);
        let mut expected = operations.to_vec();
        expected.sort();
        assert_eq!(class.operations, expected, "{sql}: {class:?}");
        assert_eq!(class.effective_access(), *access, "{sql}: {class:?}");
        assert_eq!(class.complete, *complete, "{sql}: {class:?}");
        if !class.complete {
            assert_ne!(class.access, Some(Access::Read), "{sql}");
        }
    }
}

#[test]
fn multi_statement_hides_nothing() {
    let command = pg("select 1; drop table t");
    assert_eq!(command.statements().len(), 2);
    assert_eq!(command.statements()[1].operations, vec![Op::Drop]);
    assert_eq!(command.statements()[1].tables_written, vec!["t"]);
    assert_eq!(command.access(), Access::Write);
}

#[test]
fn ambiguous_backslash_string_is_incomplete() {
    // Under standard_conforming_strings = off the server would see one
    // string; under on, two statements. Either way: not complete.
    let command = pg("SELECT 'a\\'; DROP TABLE t; --'");
    assert!(!command.complete());
    assert!(!command.statements()[0].complete);
    assert_eq!(command.access(), Access::Write);
}

#[test]
fn tables_and_where() {
    let class = one("UPDATE Public.Accounts SET a = 1 FROM \"Other\" o WHERE o.id = 1");
    assert_eq!(class.tables_written, vec!["public.accounts"]);
    assert_eq!(class.tables_read, vec!["Other"]);
    assert_eq!(class.has_where, Some(true));

    let class = one("DELETE FROM t");
    assert_eq!(class.has_where, Some(false));

    let class = one("UPDATE t SET a = (SELECT b FROM u WHERE u.id = 1)");
    assert_eq!(
        class.has_where,
        Some(false),
        "a WHERE in a subquery does not bound"
    );

    let class = one(
        "WITH d AS (DELETE FROM t RETURNING *) UPDATE u SET a = 1 WHERE id IN (SELECT id FROM d)",
    );
    assert_eq!(class.has_where, Some(false), "the CTE delete is unbounded");
    assert_eq!(class.tables_written, vec!["t", "u"]);

    let class = one("SELECT * FROM a JOIN b ON a.id = b.id, c WHERE true");
    assert_eq!(class.tables_read, vec!["a", "b", "c"]);
    assert_eq!(class.has_where, None);

    let class = one("WITH x AS (SELECT * FROM real_t) SELECT * FROM x");
    assert_eq!(
        class.tables_read,
        vec!["real_t"],
        "CTE names are not tables"
    );

    let class = one("INSERT INTO t SELECT * FROM u");
    assert_eq!(class.tables_written, vec!["t"]);
    assert_eq!(class.tables_read, vec!["u"]);
}

/// `has_where` for UPDATE and DELETE: a WHERE clause that cannot bound the
/// statement (a constant-true branch) counts as no WHERE.
const WHERE_CASES: &[(&str, bool)] = &[
    ("DELETE FROM t WHERE id = 1", true),
    ("DELETE FROM t WHERE id = $1", true),
    ("DELETE FROM t WHERE x > 0 AND true", true),
    ("DELETE FROM t WHERE x = 1 AND (y = 2 OR true)", true),
    ("DELETE FROM t WHERE id BETWEEN 1 AND 10", true),
    ("DELETE FROM t WHERE id BETWEEN 1 AND 10 OR id = 20", true),
    ("DELETE FROM t WHERE created < date '2024-01-01'", true),
    (
        "DELETE FROM t WHERE created < '2024-01-01'::timestamp with time zone",
        true,
    ),
    ("DELETE FROM t WHERE lower(name) = 'a'", true),
    ("DELETE FROM t WHERE CAST(id AS int) = 1", true),
    (
        "DELETE FROM t WHERE CASE WHEN true OR false THEN id ELSE 0 END = 1",
        true,
    ),
    ("DELETE FROM t WHERE \"ID\" = 1", true),
    ("DELETE FROM t WHERE id IN (SELECT id FROM u)", true),
    ("DELETE FROM t WHERE id <> id", true),
    ("DELETE FROM t WHERE id = 1 RETURNING *", true),
    ("DELETE FROM t WHERE CURRENT OF c", true),
    ("UPDATE t SET a = 1 WHERE id = 2", true),
    ("DELETE FROM t", false),
    ("DELETE FROM t WHERE true", false),
    ("DELETE FROM t WHERE TRUE RETURNING *", false),
    ("DELETE FROM t WHERE 1=1", false),
    ("DELETE FROM t WHERE 1 = 1 OR id = 1", false),
    ("DELETE FROM t WHERE id = 1 OR 1 = 1", false),
    ("DELETE FROM t WHERE NOT false", false),
    ("DELETE FROM t WHERE 'a'='a'", false),
    ("DELETE FROM t WHERE (true)", false),
    ("DELETE FROM t WHERE ((1 = 1))", false),
    ("DELETE FROM t WHERE (id = 1 OR true)", false),
    ("DELETE FROM t WHERE id IS NOT NULL OR true", false),
    ("DELETE FROM t WHERE x > 0 OR 1=1", false),
    ("DELETE FROM t WHERE id = id", false),
    ("DELETE FROM t WHERE t.id >= t.id", false),
    ("DELETE FROM t WHERE (id = id) AND true", false),
    ("DELETE FROM t WHERE '1'::int = 1", false),
    ("DELETE FROM t WHERE CAST('1' AS integer) = 1", false),
    ("DELETE FROM t WHERE lower('A') = 'a'", false),
    ("DELETE FROM t WHERE 1 BETWEEN 0 AND 2", false),
    ("DELETE FROM t WHERE EXISTS (SELECT 1)", false),
    ("DELETE FROM t WHERE $1 = $1", false),
    ("DELETE FROM t WHERE NULL IS NULL", false),
    ("DELETE FROM t WHERE current_user = current_user", false),
    ("DELETE FROM t USING u WHERE true", false),
    ("UPDATE t SET a = 1 WHERE true", false),
    (
        "UPDATE t SET a = 1 FROM u WHERE 2 > 1 OR u.id = t.id",
        false,
    ),
    (
        "WITH d AS (DELETE FROM t WHERE true RETURNING *) SELECT * FROM d",
        false,
    ),
];

#[test]
fn constant_where_is_no_where() {
    for (sql, bounded) in WHERE_CASES {
        let class = one(sql);
        assert_eq!(class.has_where, Some(*bounded), "{sql}: {class:?}");
    }
}

#[test]
fn deeply_nested_where_counts_as_unbounded() {
    let sql = format!(
        "DELETE FROM t WHERE {}id = 1{}",
        "(".repeat(100),
        ")".repeat(100)
    );
    assert_eq!(one(&sql).has_where, Some(false));
}

#[test]
fn functions_are_listed() {
    let class = one("SELECT count(*), my_schema.f(x), lower(y) FROM t");
    assert_eq!(class.functions, vec!["count", "lower", "my_schema.f"]);
    assert_eq!(class.unknown_functions, vec!["my_schema.f"]);
    assert_eq!(class.access, Some(Access::Write));
    let class = one("SELECT CAST(x AS varchar(10)), x::numeric(10,2) FROM t");
    assert!(class.unknown_functions.is_empty(), "{class:?}");
    assert_eq!(class.access, Some(Access::Read));
}

#[test]
fn splitting() {
    let cases: &[(&str, &[&str])] = &[
        ("select 1; select 2", &["select 1", "select 2"]),
        (";;select 1;;", &["select 1"]),
        ("select ';' ; select \";\"", &["select ';'", "select \";\""]),
        ("select $$;$$; select 2", &["select $$;$$", "select 2"]),
        ("select 1 /* ; /* ; */ ; */ ; select 2", &["select 1", "select 2"]),
        ("select E'\\';' ; select 2", &["select E'\\';'", "select 2"]),
        (
            "CREATE RULE r AS ON INSERT TO t DO (INSERT INTO u VALUES (1); DELETE FROM v); select 1",
            &["CREATE RULE r AS ON INSERT TO t DO (INSERT INTO u VALUES (1); DELETE FROM v)", "select 1"],
        ),
        (
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END; select 3",
            &["CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END", "select 3"],
        ),
        ("", &[]),
        ("-- only a comment", &[]),
    ];
    for (sql, expected) in cases {
        assert_eq!(&split_statements(Dialect::Postgres, sql), expected, "{sql}");
    }
}

#[test]
fn prepared_statements_resolve() {
    let prepare =
        pg("PREPARE del (int) AS DELETE FROM t WHERE id = $1; PREPARE \"Sel\" AS SELECT 1");
    let definitions = prepared_definitions(Dialect::Postgres, &prepare);
    assert_eq!(definitions.len(), 2);
    assert_eq!(definitions[0].name, "del");
    assert_eq!(definitions[0].statement.operations, vec![Op::Delete]);
    assert_eq!(definitions[0].body, "DELETE FROM t WHERE id = $1");
    // PREPARE is decided on its body.
    let class = &prepare.statements()[0];
    assert_eq!(class.operations, vec![Op::Delete, Op::Prepare]);
    assert_eq!(class.access, Some(Access::Write));
    assert_eq!(class.tables_written, vec!["t"]);
    assert_eq!(class.has_where, Some(true));
    let unbounded = pg("PREPARE p AS DELETE FROM t");
    assert_eq!(unbounded.statements()[0].has_where, Some(false));
    assert_eq!(unbounded.access(), Access::Write);
    assert_eq!(definitions[1].name, "Sel");
    let session: HashMap<String, StatementClass> = definitions
        .into_iter()
        .map(|d| (d.name, d.statement))
        .collect();
    let command = classify_with(Dialect::Postgres, "EXECUTE del(1)", &session);
    let class = &command.statements()[0];
    assert_eq!(class.operations, vec![Op::Delete, Op::Execute]);
    assert_eq!(class.tables_written, vec!["t"]);
    assert_eq!(class.has_where, Some(true));
    assert!(class.complete);
    let command = classify_with(Dialect::Postgres, "EXECUTE \"Sel\"", &session);
    assert_eq!(command.statements()[0].access, Some(Access::Read));
}

#[test]
fn session_effects_name_what_they_touch() {
    use airlock_sql::{session_effects, SessionEffect as E};
    let effects = session_effects(
        Dialect::Postgres,
        "DEALLOCATE p; deallocate prepare \"Q\"; DEALLOCATE ALL; DISCARD ALL; DISCARD PLANS; \
         CLOSE c; CLOSE ALL; DECLARE cur CURSOR FOR SELECT 1; PREPARE x AS SELECT 1; \
         PREPARE TRANSACTION 'g'; select 1; DEALLOCATE U&\"d\\0061\"",
    );
    assert_eq!(
        effects,
        vec![
            E::Deallocate("p".into()),
            E::Deallocate("Q".into()),
            E::DeallocateAll,
            E::DiscardAll,
            E::Close("c".into()),
            E::CloseAll,
            E::Declare("cur".into()),
            E::Prepare("x".into()),
            // A name that cannot be read affects every name.
            E::DeallocateAll,
        ]
    );
}

#[test]
fn fetch_reads_what_its_cursor_was_declared_for() {
    struct Cursors(HashMap<String, StatementClass>);
    impl airlock_sql::PreparedLookup for Cursors {
        fn prepared(&self, _name: &str) -> Option<&StatementClass> {
            None
        }
        fn cursor(&self, name: &str) -> Option<&StatementClass> {
            self.0.get(name)
        }
    }
    let declared = pg("DECLARE c CURSOR FOR SELECT email FROM customers");
    let cursors = Cursors(HashMap::from([(
        "c".to_string(),
        declared.statements()[0].clone(),
    )]));
    for sql in [
        "FETCH ALL FROM c",
        "fetch forward 10 in c",
        "FETCH c",
        "MOVE LAST IN c",
    ] {
        let command = classify_with(Dialect::Postgres, sql, &cursors);
        let class = &command.statements()[0];
        assert!(class.complete, "{sql}");
        assert_eq!(class.tables_read, vec!["customers"], "{sql}");
        assert_eq!(command.access(), Access::Read, "{sql}");
    }
    // A cursor the session did not declare could read anything.
    for sql in [
        "FETCH ALL FROM other",
        "FETCH 5",
        "fetch all in \"<unnamed portal 1>\"",
    ] {
        assert!(
            !classify_with(Dialect::Postgres, sql, &cursors).complete(),
            "{sql}"
        );
    }
}

#[test]
fn empty_text_is_not_complete() {
    assert!(!pg("").complete());
    assert!(!pg("  -- nothing").complete());
}

#[test]
fn deep_nesting_does_not_overflow() {
    let mut sql = String::new();
    for _ in 0..5000 {
        sql.push_str("(DELETE FROM t WHERE x IN ");
    }
    let command = pg(&format!("WITH a AS {sql}"));
    assert!(!command.complete());
    let deep_parens = format!("SELECT {}1{}", "(".repeat(100_000), ")".repeat(100_000));
    assert!(pg(&deep_parens).complete());
    let explains = format!("{}SELECT 1", "EXPLAIN ANALYZE ".repeat(1000));
    assert!(!pg(&explains).complete());
}

const SEEDS: &[&str] = &[
    "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
    "SELECT $fn$ a;b $fn$, E'\\'', U&'\\0041', \"q\"\"i\" FROM t /* c /* n */ */ -- x\n",
    "COPY (SELECT 1) TO STDOUT; EXPLAIN (ANALYZE) MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE",
    "CREATE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT 1; END; PREPARE p AS SELECT 1; EXECUTE p",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_on_arbitrary_text(text in ".{0,200}") {
        let command = pg(&text);
        for statement in command.statements() {
            prop_assert!(statement.complete || statement.access != Some(Access::Read));
        }
        let _ = split_statements(Dialect::Postgres, &text);
    }

    #[test]
    fn never_panics_on_mutated_sql(
        seed in 0..SEEDS.len(),
        cut in 0usize..200,
        insert in "[;'\"$/*()\\-\\\\a-z ]{0,6}",
    ) {
        let base = SEEDS[seed];
        let mut position = cut.min(base.len());
        while !base.is_char_boundary(position) {
            position -= 1;
        }
        let mutated = format!("{}{}{}", &base[..position], insert, &base[position..]);
        let command = pg(&mutated);
        for statement in command.statements() {
            prop_assert!(statement.complete || statement.access != Some(Access::Read));
        }
        let _ = prepared_definitions(Dialect::Postgres, &command);
    }
}
