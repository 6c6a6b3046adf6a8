//! `analyze` (one pass of the lexer for a PostgreSQL text) gives exactly
//! what the separate passes give: the classification, the session effects,
//! the `PREPARE` definitions, and the cursors each `DECLARE` opens with the
//! classification of its query. Checked over every text of the own corpus
//! and over texts that exercise each effect; the MySQL dialect over its
//! corpus.

// Test code: panics are the failure mechanism.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use airlock_sql::{
    analyze, classify, prepared_definitions, session_effects, split_statements, Dialect,
    NoPrepared, SessionEffect,
};

fn corpus(dir: &str) -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut texts = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "sql") {
            let text = std::fs::read_to_string(&path).unwrap();
            texts.extend(
                text.split(";\n")
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(|t| format!("{t};")),
            );
        }
    }
    assert!(
        texts.len() > 100,
        "corpus at {} is too small",
        dir.display()
    );
    texts
}

fn check(dialect: Dialect, text: &str) {
    let analysis = analyze(dialect, text, &NoPrepared);
    let command = classify(dialect, text);
    assert_eq!(analysis.command, command, "classification of {text:?}");
    assert_eq!(
        analysis.effects,
        session_effects(dialect, text),
        "effects of {text:?}"
    );
    assert_eq!(
        analysis.prepares,
        prepared_definitions(dialect, &command),
        "PREPAREs of {text:?}"
    );
    if dialect == Dialect::Postgres {
        let declared: Vec<(String, airlock_types::StatementClass)> =
            split_statements(dialect, text)
                .into_iter()
                .zip(command.statements())
                .filter_map(|(statement, class)| {
                    match session_effects(dialect, statement).into_iter().next() {
                        Some(SessionEffect::Declare(name)) => Some((name, class.clone())),
                        _ => None,
                    }
                })
                .collect();
        assert_eq!(analysis.declares, declared, "DECLAREs of {text:?}");
    }
}

#[test]
fn one_pass_agrees_with_the_separate_passes() {
    let own = [
        "PREPARE p(int) AS SELECT * FROM t WHERE id = $1; EXECUTE p(1); DEALLOCATE p",
        "DECLARE c CURSOR FOR SELECT * FROM secrets; FETCH 10 FROM c; CLOSE c",
        "BEGIN; DECLARE c1 CURSOR WITH HOLD FOR SELECT a FROM t; DECLARE c2 CURSOR FOR SELECT 1; COMMIT",
        "DISCARD ALL",
        "DEALLOCATE ALL; CLOSE ALL",
        "PREPARE q AS DELETE FROM t; PREPARE q2 AS UPDATE t SET a = 1 WHERE id = 2",
        "SELECT 'prepare x as'; -- execute y\nSELECT 1",
        ";;",
        "",
    ];
    for text in own {
        check(Dialect::Postgres, text);
    }
    let texts = corpus("tests/corpus");
    for text in &texts {
        check(Dialect::Postgres, text);
    }
    let mysql = [
        "PREPARE s FROM 'SELECT * FROM t'; EXECUTE s; DEALLOCATE PREPARE s",
        "USE appdb; SET @a = 1; SELECT @a := 2",
    ];
    for text in mysql {
        check(Dialect::Mysql, text);
    }
    for line in std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mysql_corpus/statements.sql"),
    )
    .unwrap()
    .lines()
    .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
    {
        let text = line.split_once(' ').map(|(_, text)| text).unwrap_or(line);
        check(Dialect::Mysql, text);
    }
}
