//! `syntax_error` against the real server: for a table of typos, the
//! SQLSTATE `42601` message and position a throwaway PostgreSQL (the
//! installed server, 15 here) answers to a simple Query must equal what
//! `airlock_sql::syntax_error` returns for the same text; every known
//! difference is listed with its reason in [`KNOWN_DIFFERENCES`].

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use airlock_sql::{syntax_error, SyntaxError};
use airlock_testkit::PgCluster;
use tokio_postgres::error::ErrorPosition;

/// Texts the server rejects as syntax errors (each is sent as one simple
/// Query, so multi-statement texts are parsed whole, as the gateway sees
/// them).
const TYPOS: &[&str] = &[
    "SELEC 1",
    "select * form t",
    "select 'abc",
    "select 1,",
    "select 1,   \n\n",
    "select 1; selec 2",
    "select 1;\nselect\n  2 3",
    "select 'ñandú' || 'é' from t wher x",
    "select 'ünï', \"cödé\" form t t",
    "select \"unterminated",
    "select 1 /* unterminated comment",
    "select $$unterminated dollar quote",
    "select 1 from t where",
    "insert into t values (1, 2",
    "create table (a int)",
    "select * from t where a = = 1",
    "select (1 + 2))",
    "select x from t t t",
    "update t set a = 1 wher id = 2",
    "select 'a' 'b'",
    "select \"\"",
    "select 1a",
    "select \u{FFFD}\u{FFFD} form t t",
    "delete from t where a in (select from from)",
    "select 1 limit 1,2",
    "select 1_000",
    "select U&'\\zzzz'",
    "select U&'wrong' UESCAPE 'ab'",
    "create global temp table t (a int) x",
];

/// Where the server (PostgreSQL 15) and libpg_query (PostgreSQL 17's grammar)
/// differ: (text, the server's answer, ours, why).
const KNOWN_DIFFERENCES: &[(&str, &str, &str, &str)] = &[
    (
        "select 1 limit 1,2",
        "LIMIT #,# syntax is not supported at 10",
        "LIMIT #,# syntax is not supported, no position",
        "a grammar action's error: the server takes its position from a parse-tree \
         node, which libpg_query's binding does not expose",
    ),
    (
        "select U&'\\zzzz'",
        "invalid Unicode escape at 11",
        "invalid Unicode escape, no position",
        "the position is inside the string literal, which the message does not name",
    ),
    (
        "select 1_000",
        "trailing junk after numeric literal at or near \"1_000\" at 8",
        "no syntax error",
        "PostgreSQL 16 added underscores in numeric literals; libpg_query has 17's grammar",
    ),
];

async fn server(cluster: &PgCluster) -> tokio_postgres::Client {
    let conninfo = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres password={} sslmode=disable",
        cluster.port, cluster.superuser_password
    );
    let (client, connection) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// The server's answer to `text` as a simple Query: `None` when it ran
/// (or failed other than with a syntax error's SQLSTATE 42601).
async fn server_syntax_error(client: &tokio_postgres::Client, text: &str) -> Option<SyntaxError> {
    let error = client.simple_query(text).await.err()?;
    let db_error = error.as_db_error()?;
    if db_error.code().code() != "42601" {
        return None;
    }
    let position = match db_error.position() {
        Some(ErrorPosition::Original(position)) => Some(*position),
        Some(ErrorPosition::Internal { .. }) => panic!("internal position for {text:?}"),
        None => None,
    };
    Some(SyntaxError {
        message: db_error.message().to_string(),
        position,
    })
}

fn describe(answer: &Option<SyntaxError>) -> String {
    match answer {
        None => "no syntax error".to_string(),
        Some(SyntaxError {
            message,
            position: Some(position),
        }) => format!("{message} at {position}"),
        Some(SyntaxError {
            message,
            position: None,
        }) => format!("{message}, no position"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typos_get_the_servers_message_and_position() {
    let cluster = PgCluster::start();
    let client = server(&cluster).await;
    let version = client.simple_query("show server_version").await.unwrap();
    println!("server: {version:?}");
    let mut texts: Vec<String> = TYPOS.iter().map(|text| text.to_string()).collect();
    // Nesting deeper than bison's stack (10,000 entries).
    texts.push("(".repeat(20_000));
    texts.push(format!("select {}1", "(".repeat(20_000)));
    let mut mismatches = Vec::new();
    for text in &texts {
        let server = server_syntax_error(&client, text).await;
        assert!(server.is_some(), "the server accepted {text:?}");
        let ours = syntax_error(text);
        let (server, ours) = (describe(&server), describe(&ours));
        let shown: String = text.chars().take(60).collect();
        println!("{shown:?}\n  server: {server}\n  ours:   {ours}");
        match KNOWN_DIFFERENCES.iter().find(|(known, ..)| known == text) {
            Some((_, known_server, known_ours, _)) => {
                assert_eq!(
                    (server.as_str(), ours.as_str()),
                    (*known_server, *known_ours),
                    "known difference changed for {text:?}"
                );
            }
            None if server != ours => mismatches.push(format!("{shown:?}: {server} / {ours}")),
            None => {}
        }
    }
    assert!(
        mismatches.is_empty(),
        "differences from the server:\n{}",
        mismatches.join("\n")
    );
}

/// The statements of the classifier's own corpus (`tests/corpus`).
fn corpus_statements() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "sql"))
        .collect();
    paths.sort();
    let mut statements = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        for statement in airlock_sql::split_statements(airlock_sql::Dialect::Postgres, &text) {
            // psql meta-commands and COPY data are not SQL.
            if !statement.contains('\\') {
                statements.push(statement.to_string());
            }
        }
    }
    statements
}

/// A deterministic pseudo-random sequence (xorshift), so a failure repeats.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound.max(1) as u64) as usize
    }
}

/// `statement` with one typo: a word dropped, two words swapped, a junk word
/// inserted, or the text cut at a character.
fn mutate(statement: &str, random: &mut Random) -> String {
    let words: Vec<&str> = statement.split_whitespace().collect();
    let mut words: Vec<String> = words.iter().map(|word| word.to_string()).collect();
    let index = random.below(words.len());
    match random.below(4) {
        0 => {
            words.remove(index);
        }
        1 if index + 1 < words.len() => words.swap(index, index + 1),
        2 => words.insert(
            index,
            ["frm", "selec", ",", "(", "'x"][random.below(5)].to_string(),
        ),
        _ => {
            let characters: Vec<char> = statement.chars().collect();
            let cut = random.below(characters.len());
            return characters[..cut].iter().collect();
        }
    }
    words.join(" ")
}

/// The server's answer to `text` through the extended protocol's Parse (it
/// parses and analyses, never runs): its SQLSTATE 42601 error, if any.
async fn server_parse_error(client: &tokio_postgres::Client, text: &str) -> Option<SyntaxError> {
    let error = client.prepare(text).await.err()?;
    let db_error = error.as_db_error()?;
    (db_error.code().code() == "42601").then(|| SyntaxError {
        message: db_error.message().to_string(),
        position: match db_error.position() {
            Some(ErrorPosition::Original(position)) => Some(*position),
            _ => None,
        },
    })
}

/// Whether `message` is one of the lexer's or the grammar's own errors,
/// which name where they are.
fn names_a_place(message: &str) -> bool {
    message.contains(" at or near \"") || message.ends_with(" at end of input")
}

/// Mutated corpus statements against the server's Parse. Statements the
/// server itself cannot parse unmutated (syntax newer than the server's
/// version, e.g. `MERGE … RETURNING` or `0x1F`) are skipped. Whenever
/// `syntax_error` reports an error, the server reports the same message and
/// position with SQLSTATE 42601, except that a grammar action's error
/// (`unrecognized role option "sup"`) has no position in ours; whenever the
/// server reports a lexer or grammar error, so does `syntax_error`.
/// Analysis errors the server also gives SQLSTATE 42601 (`SELECT * with no
/// tables specified is not valid`) are not parser errors and not compared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_corpus_statements_agree_with_the_server() {
    let cluster = PgCluster::start();
    let client = server(&cluster).await;
    let statements = corpus_statements();
    assert!(statements.len() > 500, "corpus: {}", statements.len());
    let mut random = Random(0x5eed_cafe_f00d_d00d);
    let (mut compared, mut errors, mut without_position, mut newer) = (0, 0, 0, 0);
    let mut mismatches = Vec::new();
    while compared < 1500 {
        let statement = &statements[random.below(statements.len())];
        if server_parse_error(&client, statement)
            .await
            .is_some_and(|error| names_a_place(&error.message))
        {
            newer += 1;
            continue;
        }
        let text = mutate(statement, &mut random);
        let server = server_parse_error(&client, &text).await;
        let ours = syntax_error(&text);
        compared += 1;
        let agree = match (&ours, &server) {
            (Some(ours), Some(server)) if ours.position.is_none() => {
                without_position += 1;
                ours.message == server.message && !names_a_place(&ours.message)
            }
            (Some(ours), server) => Some(ours) == server.as_ref(),
            (None, server) => !server
                .as_ref()
                .is_some_and(|error| names_a_place(&error.message)),
        };
        errors += usize::from(ours.is_some());
        if !agree {
            mismatches.push(format!(
                "{text:?}\n  server: {}\n  ours:   {}",
                describe(&server),
                describe(&ours)
            ));
        }
    }
    println!(
        "{compared} mutated statements: {errors} syntax errors ({without_position} without \
         position), {} differences; {newer} corpus statements skipped as newer than the server",
        mismatches.len()
    );
    assert!(
        errors > 300,
        "too few syntax errors to mean anything: {errors}"
    );
    assert!(
        mismatches.is_empty(),
        "differences from the server:\n{}",
        mismatches.join("\n")
    );
}
