//! Table-driven tests of the MySQL / MariaDB dialect, written by an
//! attacker: every case is a way to slip a write, a file read, a privilege
//! change or a hidden statement past a read-only policy, or a plain
//! statement that must stay classified exactly. Plus a no-panic property
//! test over arbitrary and mutated MySQL text.

// Test code: panics are the failure mechanism.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use airlock_sql::{
    classify, classify_with, prepared_definitions, session_effects, split_statements, Dialect,
    SessionEffect,
};
use airlock_types::{Access, Command, Operation, StatementClass};
use proptest::prelude::*;
use std::collections::HashMap;

use Operation as Op;

fn my(sql: &str) -> Command {
    classify(Dialect::Mysql, sql)
}

fn one(sql: &str) -> StatementClass {
    let command = my(sql);
    assert_eq!(command.statements().len(), 1, "{sql}: {command:?}");
    command.statements().first().cloned().unwrap()
}

/// (sql, operations, effective access, complete)
const CASES: &[(&str, &[Op], Access, bool)] = &[
    // Reads.
    ("SELECT 1", &[Op::Select], Access::Read, true),
    ("select * from t where id = 1", &[Op::Select], Access::Read, true),
    ("SELECT a FROM t1 JOIN t2 USING (id) LEFT JOIN t3 ON t3.x = t1.x", &[Op::Select], Access::Read, true),
    ("SELECT * FROM t1 STRAIGHT_JOIN t2 ON t1.a = t2.a", &[Op::Select], Access::Read, true),
    ("SELECT * FROM t FORCE INDEX (PRIMARY) WHERE id = 1", &[Op::Select], Access::Read, true),
    ("SELECT * FROM t AS x USE INDEX FOR JOIN (i1, i2)", &[Op::Select], Access::Read, true),
    ("SELECT 1 FROM DUAL", &[Op::Select], Access::Read, true),
    ("WITH RECURSIVE c (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 5) SELECT * FROM c", &[Op::Select], Access::Read, true),
    ("SELECT * FROM (SELECT id FROM t) AS d WHERE d.id IN (SELECT id FROM u)", &[Op::Select], Access::Read, true),
    ("SELECT CAST(a AS DATETIME(6)), CONVERT(b, CHAR(10)), CONVERT(c USING utf8mb4) FROM t", &[Op::Select], Access::Read, true),
    ("SELECT GROUP_CONCAT(a ORDER BY a SEPARATOR ',') FROM t", &[Op::Select], Access::Read, true),
    ("SELECT MATCH (a) AGAINST ('x' IN BOOLEAN MODE) FROM t", &[Op::Select], Access::Read, true),
    ("SELECT DATE_ADD(NOW(), INTERVAL 1 DAY), JSON_EXTRACT(j, '$.a') FROM t", &[Op::Select], Access::Read, true),
    ("TABLE t", &[Op::Select], Access::Read, true),
    ("VALUES ROW(1, 2), ROW(3, 4)", &[Op::Select], Access::Read, true),
    ("SELECT 'it\\'s', \"say \\\"hi\\\"\"", &[Op::Select], Access::Read, true),
    ("SELECT _utf8mb4'x', N'y', X'41', B'1', 0x41, 0b1", &[Op::Select], Access::Read, true),
    ("SELECT 1--1", &[Op::Select], Access::Read, true),
    ("SELECT 1 # comment ; DROP TABLE t", &[Op::Select], Access::Read, true),
    ("SELECT 1 -- comment ; DROP TABLE t", &[Op::Select], Access::Read, true),
    ("SELECT /*+ MAX_EXECUTION_TIME(1000) */ * FROM t", &[Op::Select], Access::Read, true),
    ("SHOW TABLES", &[Op::Show], Access::Read, true),
    ("SHOW FULL PROCESSLIST", &[Op::Show], Access::Read, true),
    ("DESCRIBE t", &[Op::Show], Access::Read, true),
    ("DESC t", &[Op::Show], Access::Read, true),
    ("EXPLAIN SELECT * FROM t", &[Op::Explain], Access::Read, true),
    ("EXPLAIN FORMAT=JSON DELETE FROM t", &[Op::Explain], Access::Write, true),
    ("DO 1 + 1", &[Op::Select], Access::Read, true),
    ("HANDLER t OPEN", &[Op::Select], Access::Read, true),
    ("USE appdb", &[Op::Other], Access::Admin, true),
    ("SET @a = 1", &[Op::Set], Access::Read, true),
    ("SELECT @a := 1", &[Op::Select], Access::Read, true),
    ("SELECT a INTO @x FROM t LIMIT 1", &[Op::Select], Access::Read, true),
    ("SELECT a FROM t LIMIT 1 INTO @x, @y", &[Op::Select], Access::Read, true),
    ("START TRANSACTION READ ONLY", &[Op::Transaction], Access::Read, true),
    ("START TRANSACTION WITH CONSISTENT SNAPSHOT", &[Op::Transaction], Access::Read, true),
    ("BEGIN WORK", &[Op::Transaction], Access::Read, true),
    ("COMMIT", &[Op::Transaction], Access::Read, true),
    ("ROLLBACK TO SAVEPOINT a", &[Op::Transaction], Access::Read, true),
    ("SAVEPOINT a", &[Op::Transaction], Access::Read, true),
    ("RELEASE SAVEPOINT a", &[Op::Transaction], Access::Read, true),
    ("XA START 'x'", &[Op::Transaction], Access::Read, true),
    ("UNLOCK TABLES", &[Op::Lock], Access::Read, true),
    ("PREPARE s FROM 'SELECT * FROM t WHERE id = ?'", &[Op::Prepare, Op::Select], Access::Read, true),
    ("DEALLOCATE PREPARE s", &[Op::Other], Access::Read, true),
    ("DROP PREPARE s", &[Op::Other], Access::Read, true),
    // Writes.
    ("INSERT INTO t VALUES (1)", &[Op::Insert], Access::Write, true),
    ("INSERT t (a) VALUE (1)", &[Op::Insert], Access::Write, true),
    ("INSERT IGNORE INTO t SET a = 1", &[Op::Insert], Access::Write, true),
    ("INSERT INTO t SELECT * FROM u", &[Op::Insert], Access::Write, true),
    ("INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = VALUES(a)", &[Op::Insert, Op::Update], Access::Write, true),
    ("REPLACE INTO t VALUES (1)", &[Op::Insert, Op::Delete], Access::Write, true),
    ("UPDATE t SET a = 1 WHERE id = 1", &[Op::Update], Access::Write, true),
    ("UPDATE t1 JOIN t2 ON t1.id = t2.id SET t1.a = t2.a WHERE t2.b = 1", &[Op::Update], Access::Write, true),
    ("DELETE FROM t WHERE id = 1", &[Op::Delete], Access::Write, true),
    ("DELETE t1, t2 FROM t1 JOIN t2 ON t1.id = t2.id WHERE t1.a = 1", &[Op::Delete], Access::Write, true),
    ("DELETE FROM t1 USING t1 JOIN t2 ON t1.id = t2.id", &[Op::Delete], Access::Write, true),
    ("SELECT * FROM t FOR UPDATE", &[Op::Select, Op::Lock], Access::Write, true),
    ("SELECT * FROM t FOR SHARE NOWAIT", &[Op::Select, Op::Lock], Access::Write, true),
    ("SELECT * FROM t LOCK IN SHARE MODE", &[Op::Select, Op::Lock], Access::Write, true),
    ("LOCK TABLES t READ, u AS x WRITE", &[Op::Lock], Access::Write, true),
    ("SELECT SLEEP(10)", &[Op::Select], Access::Write, true),
    ("SELECT BENCHMARK(100000000, MD5('a'))", &[Op::Select], Access::Write, true),
    ("SELECT GET_LOCK('x', 10)", &[Op::Select], Access::Write, true),
    ("SELECT NEXTVAL(s)", &[Op::Select], Access::Write, true),
    ("SELECT NEXT VALUE FOR s", &[Op::Select], Access::Write, true),
    ("INSERT INTO t VALUES (NEXT VALUE FOR s)", &[Op::Insert], Access::Write, true),
    ("SELECT my_udf(1)", &[Op::Select], Access::Write, true),
    ("SET @a = SLEEP(1)", &[Op::Set], Access::Write, true),
    // Under ANSI_QUOTES `"sleep"` is the function's name.
    ("SELECT \"sleep\"(1)", &[Op::Select], Access::Write, true),
    ("SELECT `load_file`('/etc/passwd')", &[Op::Select], Access::Admin, true),
    ("SELECT appdb.concat('a')", &[Op::Select], Access::Write, true),
    ("LOAD DATA LOCAL INFILE 'x.csv' INTO TABLE t", &[Op::CopyFrom], Access::Write, true),
    ("SET autocommit = 0", &[Op::Set], Access::Write, true),
    ("SET SESSION wait_timeout = 10", &[Op::Set], Access::Write, true),
    ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", &[Op::Set], Access::Write, true),
    ("SET TRANSACTION READ ONLY, ISOLATION LEVEL READ COMMITTED", &[Op::Set], Access::Write, true),
    ("SET TRANSACTION ISOLATION LEVEL READ COMMITTED, READ WRITE", &[Op::Set], Access::Admin, true),
    ("CREATE TABLE t (id INT PRIMARY KEY, a DATETIME(6), KEY k (a))", &[Op::Create], Access::Write, true),
    ("CREATE TABLE t2 SELECT * FROM t", &[Op::Create, Op::Select], Access::Write, true),
    ("CREATE TABLE t2 LIKE t", &[Op::Create], Access::Write, true),
    ("ALTER TABLE t ADD COLUMN b INT", &[Op::Alter], Access::Write, true),
    ("DROP TABLE IF EXISTS t, u", &[Op::Drop], Access::Write, true),
    ("TRUNCATE TABLE t", &[Op::Truncate], Access::Write, true),
    ("RENAME TABLE t TO t_old", &[Op::Alter], Access::Write, true),
    ("CREATE INDEX i ON t (a)", &[Op::Create], Access::Write, true),
    ("CREATE VIEW v AS SELECT * FROM t", &[Op::Create], Access::Write, true),
    ("XA COMMIT 'x'", &[Op::Transaction], Access::Write, true),
    ("CALL p(1)", &[Op::Call], Access::Write, false),
    ("EXPLAIN ANALYZE DELETE FROM t", &[Op::Explain, Op::Delete], Access::Write, true),
    ("ANALYZE DELETE FROM t", &[Op::Explain, Op::Delete], Access::Write, true),
    // Admin.
    ("SELECT * FROM t INTO OUTFILE '/tmp/x'", &[Op::Select, Op::CopyTo], Access::Admin, true),
    ("SELECT a INTO DUMPFILE '/tmp/x' FROM t", &[Op::Select, Op::CopyTo], Access::Admin, true),
    ("SELECT LOAD_FILE('/etc/passwd')", &[Op::Select], Access::Admin, true),
    ("LOAD DATA INFILE '/etc/passwd' INTO TABLE t", &[Op::CopyFrom], Access::Admin, true),
    ("LOAD XML INFILE '/x.xml' INTO TABLE t", &[Op::CopyFrom], Access::Admin, true),
    ("SET sql_mode = 'NO_BACKSLASH_ESCAPES'", &[Op::Set], Access::Admin, true),
    ("SET SESSION sql_mode = 'ANSI_QUOTES'", &[Op::Set], Access::Admin, true),
    ("SET @@sql_mode = ''", &[Op::Set], Access::Admin, true),
    ("SET @@session.sql_mode = ''", &[Op::Set], Access::Admin, true),
    ("SET @a = 1, `SQL_MODE` = ''", &[Op::Set], Access::Admin, true),
    ("SET LOCAL sql_mode := ''", &[Op::Set], Access::Admin, true),
    ("SET GLOBAL max_connections = 1", &[Op::Set], Access::Admin, true),
    ("SET @@global.wait_timeout = 1", &[Op::Set], Access::Admin, true),
    ("SET NAMES gbk", &[Op::Set], Access::Admin, true),
    ("SET CHARACTER SET big5", &[Op::Set], Access::Admin, true),
    ("SET character_set_client = sjis", &[Op::Set], Access::Admin, true),
    ("SET sql_log_bin = 0", &[Op::Set], Access::Admin, true),
    ("SET foreign_key_checks = 0", &[Op::Set], Access::Admin, true),
    ("SET unique_checks = 0", &[Op::Set], Access::Admin, true),
    ("SET sql_safe_updates = 0", &[Op::Set], Access::Admin, true),
    ("SET transaction_read_only = 0", &[Op::Set], Access::Admin, true),
    ("SET tx_read_only = OFF", &[Op::Set], Access::Admin, true),
    ("SET SESSION TRANSACTION READ WRITE", &[Op::Set], Access::Admin, true),
    ("SET ROLE ALL", &[Op::Set], Access::Admin, true),
    ("SET DEFAULT ROLE r FOR u", &[Op::Set], Access::Admin, true),
    ("SET PASSWORD = PASSWORD('x')", &[Op::Set], Access::Admin, true),
    ("SET STATEMENT sql_mode = '' FOR SELECT 1", &[Op::Set, Op::Select], Access::Admin, true),
    ("SET STATEMENT max_statement_time = 1 FOR SELECT 1", &[Op::Set, Op::Select], Access::Admin, true),
    // To an ASCII-safe set a character-set change is an ordinary setting
    // (a gateway refuses the others whatever the policy).
    ("/*!40101 SET NAMES utf8mb4 */", &[Op::Set], Access::Write, true),
    ("SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci", &[Op::Set], Access::Write, true),
    ("SET SESSION character_set_results = 'binary'", &[Op::Set], Access::Write, true),
    ("SET NAMES utf8mb4 COLLATE gbk_bin", &[Op::Set], Access::Admin, true),
    ("SET character_set_client = @v", &[Op::Set], Access::Admin, true),
    ("SET GLOBAL character_set_client = utf8mb4", &[Op::Set], Access::Admin, true),
    ("GRANT ALL ON *.* TO 'x'@'%'", &[Op::Grant], Access::Admin, true),
    ("REVOKE ALL ON *.* FROM x", &[Op::Revoke], Access::Admin, true),
    ("CREATE USER x IDENTIFIED BY 'p'", &[Op::Create], Access::Admin, true),
    ("ALTER USER root IDENTIFIED BY 'p'", &[Op::Alter], Access::Admin, true),
    ("DROP USER x", &[Op::Drop], Access::Admin, true),
    ("CREATE ROLE r", &[Op::Create], Access::Admin, true),
    ("FLUSH PRIVILEGES", &[Op::Other], Access::Admin, true),
    ("RESET MASTER", &[Op::Other], Access::Admin, true),
    ("PURGE BINARY LOGS TO 'x'", &[Op::Other], Access::Admin, true),
    ("KILL 1", &[Op::Other], Access::Admin, true),
    ("KILL QUERY 1", &[Op::Other], Access::Admin, true),
    ("SHUTDOWN", &[Op::Other], Access::Admin, true),
    ("INSTALL PLUGIN x SONAME 'x.so'", &[Op::Other], Access::Admin, true),
    ("INSTALL SONAME 'auth_ed25519'", &[Op::Other], Access::Admin, true),
    ("UNINSTALL PLUGIN x", &[Op::Other], Access::Admin, true),
    ("CHANGE MASTER TO MASTER_HOST = 'evil'", &[Op::Other], Access::Admin, true),
    ("START SLAVE", &[Op::Other], Access::Admin, true),
    ("STOP REPLICA", &[Op::Other], Access::Admin, true),
    ("BINLOG 'AAAA'", &[Op::Other], Access::Admin, true),
    ("CACHE INDEX t IN k", &[Op::Other], Access::Admin, true),
    ("OPTIMIZE TABLE t", &[Op::Maintenance], Access::Admin, true),
    ("REPAIR TABLE t", &[Op::Maintenance], Access::Admin, true),
    ("ANALYZE TABLE t", &[Op::Maintenance], Access::Admin, true),
    ("CHECK TABLE t", &[Op::Maintenance], Access::Admin, true),
    ("CREATE DEFINER = root@localhost PROCEDURE p() SELECT 1", &[Op::Create], Access::Admin, true),
    ("CREATE FUNCTION f RETURNS STRING SONAME 'evil.so'", &[Op::Create], Access::Admin, true),
    // Executable comments are code.
    ("/*! DROP TABLE t */", &[Op::Drop], Access::Write, true),
    ("SELECT 1 /*!, SLEEP(5) */", &[Op::Select], Access::Write, true),
    ("/*!50000 DELETE FROM t */", &[Op::Delete], Access::Write, true),
    ("/*M! UPDATE t SET a = 1 */", &[Op::Update], Access::Write, true),
    ("/*M!100500 UPDATE t SET a = 1 */", &[Op::Update], Access::Write, true),
    ("SELECT 1 /*!99999 INTO OUTFILE '/tmp/x' */", &[Op::Select, Op::CopyTo], Access::Admin, true),
    // What the classifier cannot be sure of.
    ("SELECT 1 /*! ; DROP TABLE t */", &[Op::Select, Op::Unknown], Access::Write, false),
    ("SELECT 1 /*!99999 'a */ ; DROP TABLE t; -- ' */", &[Op::Select, Op::Unknown], Access::Write, false),
    ("SELECT 1 /*!99999 /* x */ , 2 */", &[Op::Select, Op::Unknown], Access::Write, false),
    ("SELECT 1 /*!500001 , 2 */", &[Op::Select, Op::Unknown], Access::Write, false),
    ("DELIMITER //", &[Op::Unknown], Access::Write, false),
    ("PREPARE s FROM @q", &[Op::Prepare], Access::Write, false),
    ("EXECUTE s", &[Op::Execute], Access::Write, false),
    ("EXECUTE IMMEDIATE 'DROP TABLE t'", &[Op::Execute, Op::Drop], Access::Write, true),
    ("HANDLER h READ FIRST", &[Op::Select], Access::Write, false),
    ("BEGIN NOT ATOMIC SELECT 1; END", &[Op::Do], Access::Write, false),
    ("IF 1 THEN SELECT 1; END IF", &[Op::Do], Access::Write, false),
    ("SELECT 'unterminated", &[Op::Select], Access::Write, false),
    ("SELECT * FROM t WHERE update = 1", &[Op::Select], Access::Write, false),
    ("FROBNICATE", &[Op::Unknown], Access::Write, false),
    ("SET @@foo.bar.baz = 1", &[Op::Set], Access::Admin, true),
];

#[test]
fn classification_table() {
    let mut failures = Vec::new();
    for (sql, operations, access, complete) in CASES {
        let command = my(sql);
        let class = command.statements().first().cloned().unwrap();
        let mut expected = operations.to_vec();
        expected.sort();
        if class.operations != expected
            || class.effective_access() != *access
            || class.complete != *complete
        {
            failures.push(format!("{sql}: {class:?}"));
        }
        if !class.complete {
            assert_ne!(class.access, Some(Access::Read), "{sql}");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Texts that hide a second statement: it must be seen, or the text must
/// be unsure.
#[test]
fn hidden_statements_are_seen() {
    // A backslash-escaped quote keeps the `;` inside the string by
    // default, but not under NO_BACKSLASH_ESCAPES: unsure.
    let command = my("SELECT 'a\\';DROP TABLE t;--'");
    assert!(!command.complete(), "{command:?}");
    assert_ne!(command.access(), Access::Read);
    assert!(command.statements()[0].operations.contains(&Op::Unknown));
    // The same with double quotes.
    let command = my("SELECT \"a\\\";DROP TABLE t;--\"");
    assert!(!command.complete(), "{command:?}");
    // `--x` is not a comment: the DROP is a statement.
    let command = my("SELECT 1 --x\n; DROP TABLE t");
    assert_eq!(command.statements().len(), 2);
    assert_eq!(command.statements()[1].operations, vec![Op::Drop]);
    // `#` is a comment only to the end of the line.
    let command = my("SELECT 1 # x\n; DROP TABLE t");
    assert_eq!(command.statements().len(), 2);
    assert_eq!(command.access(), Access::Write);
    // Non-nesting comments: `/* /* */` ends at the first `*/`.
    let command = my("SELECT 1 /* /* */ ; DROP TABLE t; /* */ */");
    assert!(command
        .statements()
        .iter()
        .any(|s| s.operations.contains(&Op::Drop)));
    // A `"…"` table name under ANSI_QUOTES is a table.
    let class = one("SELECT * FROM \"secrets\"");
    assert_eq!(class.tables_read, vec!["secrets"]);
    // A version-gated WHERE may not run: not bounded.
    let class = one("DELETE FROM t /*!99999 WHERE id = 1 */");
    assert_eq!(class.has_where, Some(false));
    let class = one("DELETE FROM t /*! WHERE id = 1 */");
    assert_eq!(class.has_where, Some(true));
}

#[test]
fn tables_and_where() {
    let class = one("SELECT * FROM `App`.`Users` u JOIN orders o ON o.uid = u.id");
    assert_eq!(class.tables_read, vec!["app.users", "orders"]);
    let class = one("SELECT * FROM `we``ird`");
    assert_eq!(class.tables_read, vec!["we`ird"]);
    let class = one("SELECT * FROM appdb.1t");
    assert_eq!(class.tables_read, vec!["appdb.1t"]);
    let class = one("DELETE a FROM t1 AS a JOIN t2 b ON a.id = b.id WHERE b.x = 1");
    assert_eq!(class.tables_written, vec!["a", "t1", "t2"]);
    assert_eq!(class.has_where, Some(true));
    let class = one("DELETE t1 FROM t1, t2 WHERE t1.id = t2.id");
    assert_eq!(class.tables_written, vec!["t1", "t2"]);
    let class = one("DELETE t1 FROM t1 JOIN t2");
    assert_eq!(class.has_where, Some(false));
    let class = one("UPDATE t1, t2 SET t1.a = t2.a");
    assert_eq!(class.tables_written, vec!["t1", "t2"]);
    assert_eq!(class.has_where, Some(false));
    let class = one("UPDATE t SET a = 1 WHERE id IN (SELECT id FROM u)");
    assert_eq!(class.tables_written, vec!["t"]);
    assert_eq!(class.tables_read, vec!["u"]);
    for unbounded in [
        "DELETE FROM t WHERE 1",
        "DELETE FROM t WHERE id = 1 || 1",
        "DELETE FROM t WHERE id = 1 OR 1 = 1",
        "DELETE FROM t WHERE id = 1 XOR 1",
        "DELETE FROM t WHERE id <=> id",
        "DELETE FROM t WHERE 'a' RLIKE 'a'",
        "DELETE FROM t WHERE @x = @x",
        "DELETE FROM t WHERE 1 = 1 ORDER BY id LIMIT 1",
        "UPDATE t SET a = 1 WHERE 2 > 1 LIMIT 5",
        "DELETE FROM t WHERE NOW() < NOW() + INTERVAL 1 DAY",
        "DELETE FROM t",
        "UPDATE t SET a = 1 ORDER BY id LIMIT 1",
    ] {
        assert_eq!(one(unbounded).has_where, Some(false), "{unbounded}");
    }
    for bounded in [
        "DELETE FROM t WHERE id = 1 ORDER BY id LIMIT 1",
        "DELETE FROM t WHERE id = 1 && a = 2",
        "UPDATE t SET a = 1 WHERE `id` = 5",
    ] {
        assert_eq!(one(bounded).has_where, Some(true), "{bounded}");
    }
}

#[test]
fn functions_are_listed() {
    let class = one("SELECT LOAD_FILE('/etc/passwd'), CONCAT(a, b), my_udf(1) FROM t");
    assert_eq!(class.functions, vec!["concat", "load_file", "my_udf"]);
    assert_eq!(class.unknown_functions, vec!["my_udf"]);
    assert_eq!(class.effective_access(), Access::Admin);
}

#[test]
fn splitting() {
    let cases: &[(&str, &[&str])] = &[
        ("SELECT 1; SELECT 2", &["SELECT 1", "SELECT 2"]),
        ("SELECT ';' ; SELECT `;`", &["SELECT ';'", "SELECT `;`"]),
        ("SELECT 'a\\';b'; SELECT 2", &["SELECT 'a\\';b'", "SELECT 2"]),
        ("SELECT 1 # ;\n; SELECT 2", &["SELECT 1", "SELECT 2"]),
        ("SELECT 1 --x\n;", &["SELECT 1 --x"]),
        (" ; ;", &[]),
        (
            "CREATE PROCEDURE p() BEGIN SELECT 1; IF 1 THEN SELECT 2; END IF; END; SELECT 3",
            &["CREATE PROCEDURE p() BEGIN SELECT 1; IF 1 THEN SELECT 2; END IF; END", "SELECT 3"],
        ),
        (
            "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.a = CASE WHEN 1 THEN 1 END; END; SELECT 1",
            &["CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.a = CASE WHEN 1 THEN 1 END; END", "SELECT 1"],
        ),
    ];
    for (sql, expected) in cases {
        assert_eq!(&split_statements(Dialect::Mysql, sql), expected, "{sql}");
    }
    // Blocks that do not balance (`begin` used as a name): the rest of the
    // text may be inside; unknown.
    let command = my(
        "CREATE PROCEDURE p() BEGIN DECLARE begin INT; SET begin = 1; END; GRANT ALL ON *.* TO x",
    );
    assert!(
        command.statements()[0].operations.contains(&Op::Unknown),
        "{command:?}"
    );
    // A compound statement with `;` inside is never complete.
    let command = my("CREATE PROCEDURE p() BEGIN SELECT 1; END; GRANT ALL ON *.* TO x");
    assert_eq!(command.statements().len(), 2);
    assert!(!command.statements()[0].complete);
    assert_eq!(command.statements()[1].operations, vec![Op::Grant]);
}

#[test]
fn prepared_statements_from_strings() {
    let command = my("PREPARE s FROM 'DELETE FROM t'");
    let class = &command.statements()[0];
    assert!(class.operations.contains(&Op::Delete), "{class:?}");
    assert_eq!(class.effective_access(), Access::Write);
    assert_eq!(class.has_where, Some(false));
    let definitions = prepared_definitions(Dialect::Mysql, &command);
    assert_eq!(definitions.len(), 1);
    assert_eq!(definitions[0].name, "s");
    assert_eq!(definitions[0].body, "DELETE FROM t");
    let mut session = HashMap::new();
    session.insert("s".to_string(), definitions[0].statement.clone());
    let execute = classify_with(Dialect::Mysql, "EXECUTE s USING @a", &session);
    assert!(execute.statements()[0].operations.contains(&Op::Delete));
    assert!(execute.complete());
    // Two statements in one PREPARE: the server refuses; unsure here.
    assert!(!my("PREPARE s FROM 'SELECT 1; DROP TABLE t'").complete());
    // The body's quotes are doubled.
    let class = one("PREPARE s FROM 'SELECT ''a'' FROM t'");
    assert_eq!(class.tables_read, vec!["t"]);
    assert!(class.complete);
    // A backslash makes the body's text depend on sql_mode.
    assert!(!my("PREPARE s FROM 'SELECT \\'a\\''").complete());
}

#[test]
fn session_effects_are_reported() {
    let effects = session_effects(
        Dialect::Mysql,
        "USE `Other`; PREPARE s FROM 'SELECT 1'; EXECUTE s; DEALLOCATE PREPARE s; SET @a = 1, @B := 2; SELECT @c := 3, x INTO @d FROM t",
    );
    assert_eq!(
        effects,
        vec![
            SessionEffect::UseDatabase("other".into()),
            SessionEffect::Prepare("s".into()),
            SessionEffect::Execute("s".into()),
            SessionEffect::Deallocate("s".into()),
            SessionEffect::SetUserVariable("a".into()),
            SessionEffect::SetUserVariable("b".into()),
            SessionEffect::SetUserVariable("c".into()),
            SessionEffect::SetUserVariable("d".into()),
        ]
    );
}

#[test]
fn deep_nesting_does_not_overflow() {
    let deep_parens = format!("SELECT {}1{}", "(".repeat(100_000), ")".repeat(100_000));
    assert!(my(&deep_parens).complete());
    let explains = format!("{}SELECT 1", "EXPLAIN ANALYZE ".repeat(1000));
    assert!(!my(&explains).complete());
    let mut prepare = "SELECT 1".to_string();
    for _ in 0..12 {
        prepare = format!("EXECUTE IMMEDIATE '{}'", prepare.replace('\'', "''"));
    }
    let _ = my(&prepare);
}

const SEEDS: &[&str] = &[
    "SELECT 'a\\'b', \"c\\\"d\", `e``f` FROM t /*! WHERE 1 */ # x\n-- y\n; DELETE t1 FROM t1 JOIN t2",
    "/*!50000 SET @a := 1 */; PREPARE s FROM 'SELECT ?'; EXECUTE s USING @a; SET NAMES gbk",
    "CREATE PROCEDURE p() BEGIN IF 1 THEN SELECT 1; END IF; END; /*M!100500 SELECT 2 */",
    "SELECT * FROM t INTO OUTFILE '/x' ; LOAD DATA LOCAL INFILE 'f' INTO TABLE t; SELECT 1--1",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_on_arbitrary_text(text in ".{0,200}") {
        let command = my(&text);
        for statement in command.statements() {
            prop_assert!(statement.complete || statement.access != Some(Access::Read));
        }
        prop_assert_eq!(split_statements(Dialect::Mysql, &text).len(), command.statements().len());
        let _ = session_effects(Dialect::Mysql, &text);
        let _ = prepared_definitions(Dialect::Mysql, &command);
    }

    #[test]
    fn never_panics_on_mutated_sql(
        seed in 0..SEEDS.len(),
        cut in 0usize..200,
        insert in "[;'\"`#@/*!()M\\-\\\\a-z0-9 \n]{0,8}",
    ) {
        let base = SEEDS[seed];
        let mut position = cut.min(base.len());
        while !base.is_char_boundary(position) {
            position -= 1;
        }
        let mutated = format!("{}{}{}", &base[..position], insert, &base[position..]);
        let command = my(&mutated);
        for statement in command.statements() {
            prop_assert!(statement.complete || statement.access != Some(Access::Read));
        }
        prop_assert_eq!(split_statements(Dialect::Mysql, &mutated).len(), command.statements().len());
        let _ = session_effects(Dialect::Mysql, &mutated);
        let _ = prepared_definitions(Dialect::Mysql, &command);
    }
}

#[test]
fn local_infile_names_are_the_plain_names_every_reading_agrees_on() {
    use airlock_sql::mysql_local_infile_names as names;
    assert_eq!(
        names("LOAD DATA LOCAL INFILE '/tmp/a.tsv' INTO TABLE t"),
        vec!["/tmp/a.tsv"]
    );
    assert_eq!(
        names("load xml low_priority local infile '/x.xml' into table t; LOAD DATA CONCURRENT LOCAL INFILE 'b' INTO TABLE u"),
        vec!["/x.xml", "b"]
    );
    assert_eq!(
        names("/*!LOAD DATA LOCAL INFILE 'c' INTO TABLE t*/"),
        vec!["c"]
    );
    // Not a client file, or a name the server may read differently.
    for text in [
        "LOAD DATA INFILE '/tmp/a.tsv' INTO TABLE t",
        r"LOAD DATA LOCAL INFILE '/tmp/a\.tsv' INTO TABLE t",
        "LOAD DATA LOCAL INFILE '/tmp/it''s' INTO TABLE t",
        "LOAD DATA LOCAL INFILE \"/tmp/a.tsv\" INTO TABLE t",
        "LOAD DATA LOCAL INFILE X'41' INTO TABLE t",
        "LOAD DATA LOCAL INFILE _utf8mb4'/a' INTO TABLE t",
        "LOAD DATA LOCAL INFILE '' INTO TABLE t",
        "SELECT 'LOAD DATA LOCAL INFILE ''/a'''",
        // An earlier backslash changes where the strings are under
        // NO_BACKSLASH_ESCAPES: no reading-independent name.
        r"SELECT 'x\'; LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE t; -- '",
    ] {
        assert!(names(text).is_empty(), "{text}: {:?}", names(text));
    }
}
