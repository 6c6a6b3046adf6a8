//! Differential test of the MySQL dialect against the real MariaDB server,
//! the oracle for what a text does.
//!
//! Over the corpus `tests/mysql_corpus/statements.sql` (one text per line,
//! tagged with the expected access and completeness) it checks:
//!
//! 1. every tag: the classifier's effective access and completeness;
//! 2. every text classified `read` and complete runs inside `START
//!    TRANSACTION READ ONLY` without an error (in particular not MariaDB's
//!    "Cannot execute statement in a READ ONLY transaction") and leaves the
//!    checksums of every table unchanged;
//! 3. every text (run as a user who may only read, so the writes in the
//!    corpus fail instead of running): the statements the server starts,
//!    seen through `SHOW PROFILES`, begin where `split_statements` says
//!    statements begin. For a complete classification the server runs
//!    exactly our statements (or stops early at an error); for an
//!    incomplete one, the server never starts a statement inside one of
//!    ours. The same is checked with `sql_mode` set to
//!    `NO_BACKSLASH_ESCAPES,ANSI_QUOTES`, where a different split is allowed
//!    only if the text is classified incomplete.
//!
//! The test prints the corpus size and the counts of each check.

// Test code: panics are the failure mechanism.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use airlock_sql::{classify, split_statements, Dialect};
use airlock_testkit::MariaDb;
use airlock_types::{Access, Command};
use std::io::Write;
use std::process::{Command as Process, Stdio};

mod mysql_schema;
use mysql_schema::SCHEMA;

const CHECKSUMS: &str = "CHECKSUM TABLE t, u, users, orders, ft";

/// Separates the packets sent by the `mariadb` client: never in a text.
const DELIMITER: &str = "\u{1}\u{2}";

struct Line {
    number: usize,
    tag: String,
    text: String,
}

fn corpus() -> Vec<Line> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/mysql_corpus/statements.sql"
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.starts_with('#') && !line.trim().is_empty())
        .map(|(index, line)| {
            let (tag, text) = line.split_once(' ').unwrap();
            Line {
                number: index + 1,
                tag: tag.to_string(),
                text: text.replace('⏎', "\n"),
            }
        })
        .collect()
}

/// Sends `packets` as separate queries in one session, as `user` (root
/// when empty); returns (success, stdout, stderr). With `force` the client
/// goes on after an error.
fn run(server: &MariaDb, user: &str, packets: &[&str], force: bool) -> (bool, String, String) {
    let mut command = Process::new("mariadb");
    command.arg("--no-defaults");
    if force {
        command.arg("--force");
    }
    command
        .arg(format!("--socket={}", server.socket().display()))
        .args([
            "--batch",
            "--skip-column-names",
            "--comments",
            "--binary-mode",
        ])
        .arg(format!("--delimiter={DELIMITER}"));
    if user.is_empty() {
        command.arg("-uroot");
    } else {
        command.args([format!("-u{user}"), "-pro-password".to_string()]);
    }
    command
        .arg("appdb")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    // The delimiter on a line of its own: the client ends a `#` comment
    // at the end of the line, and sends each packet trimmed.
    let input: String = packets
        .iter()
        .map(|packet| format!("{packet}\n{DELIMITER}\n"))
        .collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Undoes the `mariadb --batch` escapes of one field.
fn unescape(field: &str) -> String {
    let mut out = String::new();
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('0') => out.push('\0'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Where the statements the server started begin in `text`, from the
/// `SHOW PROFILES` rows (a statement's text runs from its start to the end
/// of the packet, cut at 300 characters). Rows whose text is not part of
/// the packet from their start on (statements inside a compound
/// statement) are not top-level statements and are left out.
fn server_starts(text: &str, profiles: &str) -> Vec<usize> {
    let mut starts: Vec<usize> = Vec::new();
    for row in profiles.lines() {
        let mut fields = row.splitn(3, '\t');
        let (Some(_), Some(_), Some(query)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        let query = unescape(query);
        let after = starts.last().map_or(0, |last| last + 1);
        let found = if query.chars().count() < 300 {
            text.len()
                .checked_sub(query.len())
                .filter(|start| *start >= after && text.get(*start..) == Some(query.as_str()))
        } else {
            (after..text.len()).find(|start| {
                text.get(*start..)
                    .is_some_and(|rest| rest.starts_with(&query))
            })
        };
        if let Some(start) = found {
            starts.push(start);
        }
    }
    starts
}

/// Where our statements begin in `text`.
fn our_starts(text: &str) -> Vec<usize> {
    split_statements(Dialect::Mysql, text)
        .iter()
        .map(|statement| statement.as_ptr() as usize - text.as_ptr() as usize)
        .collect()
}

/// True when a server statement starting at `server` is our statement
/// starting at `ours` (only whitespace and comments between).
fn aligned(text: &str, server: usize, ours: usize) -> bool {
    server <= ours && split_statements(Dialect::Mysql, &text[server..ours]).is_empty()
}

/// Compares the server's statement starts with ours; `None` when they
/// agree as the classification requires.
fn compare_split(text: &str, command: &Command, server: &[usize], stopped: bool) -> Option<String> {
    let ours = our_starts(text);
    if command.complete() {
        let count_ok = server.len() == ours.len() || (stopped && server.len() < ours.len());
        let all_aligned = server
            .iter()
            .zip(&ours)
            .all(|(server, ours)| aligned(text, *server, *ours));
        if count_ok && all_aligned {
            return None;
        }
    } else {
        // Never a server statement inside one of ours.
        let mut next = 0usize;
        let all_found = server.iter().all(|start| {
            match ours
                .iter()
                .enumerate()
                .skip(next)
                .find(|(_, ours)| aligned(text, *start, **ours))
            {
                Some((index, _)) => {
                    next = index + 1;
                    true
                }
                None => false,
            }
        });
        if all_found {
            return None;
        }
    }
    Some(format!("server starts {server:?}, ours {ours:?}"))
}

fn tag_of(command: &Command) -> &'static str {
    if !command.complete() {
        return "?";
    }
    match command.access() {
        Access::Read => "R",
        Access::Write => "W",
        Access::Admin => "A",
    }
}

#[test]
fn classifier_agrees_with_mariadb() {
    let server = MariaDb::start();
    server.sql_in("appdb", SCHEMA);
    let lines = corpus();
    let mut failures = Vec::new();
    let (mut read_checked, mut split_checked, mut mode_checked) = (0, 0, 0);

    // 1. The tags.
    for line in &lines {
        let command = classify(Dialect::Mysql, &line.text);
        if tag_of(&command) != line.tag {
            failures.push(format!(
                "line {}: tagged {} but classified {}: {:?}\n  {command:?}",
                line.number,
                line.tag,
                tag_of(&command),
                line.text
            ));
        }
    }

    // 2. Reads are reads.
    let (ok, before, error) = run(&server, "", &[CHECKSUMS], false);
    assert!(ok, "{error}");
    for line in &lines {
        let command = classify(Dialect::Mysql, &line.text);
        if !(command.complete() && command.access() == Access::Read) {
            continue;
        }
        read_checked += 1;
        let (ok, _, error) = run(
            &server,
            "",
            &["START TRANSACTION READ ONLY", &line.text, "COMMIT"],
            false,
        );
        if !ok {
            failures.push(format!(
                "line {}: read {:?} failed in a READ ONLY transaction: {error}",
                line.number, line.text
            ));
        }
        let (ok, after, error) = run(&server, "", &[CHECKSUMS], false);
        assert!(ok, "{error}");
        if after != before {
            failures.push(format!(
                "line {}: read {:?} changed a table:\n{before}\n{after}",
                line.number, line.text
            ));
        }
    }

    // 3. Statement boundaries, under the default sql_mode and under
    // NO_BACKSLASH_ESCAPES,ANSI_QUOTES.
    for line in &lines {
        // The client sends each packet trimmed.
        let text = line.text.trim();
        // Client commands, a password change of the test user, statements
        // the profiler does not list, and a result character set the
        // client cannot read.
        let unobservable = ["PASSWORD", "SHOW PROFILES", "HELP", "character_set_results"];
        if text.starts_with("DELIMITER")
            || text.starts_with('\\')
            || unobservable.iter().any(|word| text.contains(word))
        {
            continue;
        }
        let command = classify(Dialect::Mysql, text);
        for mode in ["", "NO_BACKSLASH_ESCAPES,ANSI_QUOTES"] {
            let setup = format!(
                "SET profiling = 1, profiling_history_size = 100, sql_mode = CONCAT(@@sql_mode, ',{mode}')"
            );
            let (_, profiles, stderr) = run(&server, "ro", &[&setup, text, "SHOW PROFILES"], true);
            // The server stops a multi-statement text at its first error.
            let stopped = stderr.contains("ERROR");
            let starts = server_starts(text, &profiles);
            let mismatch = compare_split(text, &command, &starts, stopped);
            if mode.is_empty() {
                split_checked += 1;
                if let Some(mismatch) = mismatch {
                    failures.push(format!(
                        "line {}: split of {text:?}: {mismatch}",
                        line.number
                    ));
                }
            } else {
                mode_checked += 1;
                if mismatch.is_some() && command.complete() {
                    failures.push(format!(
                        "line {}: under {mode} the server splits {text:?} differently, yet it is complete: {}",
                        line.number,
                        mismatch.unwrap_or_default()
                    ));
                }
            }
        }
    }

    println!(
        "mysql corpus: {} texts; {} reads checked in READ ONLY transactions; {} splits checked; {} splits checked under NO_BACKSLASH_ESCAPES,ANSI_QUOTES; {} failures",
        lines.len(),
        read_checked,
        split_checked,
        mode_checked,
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Routine, trigger and event bodies hold `;`: the server must see each
/// definition as one statement, and the statement after it as the next
/// one, exactly where `split_statements` puts them. Top-level compound
/// statements run their inner statements (which the profiler lists, not
/// the compound statement): there, no server statement may start inside
/// one of ours.
#[test]
fn compound_statements_split_like_mariadb() {
    let server = MariaDb::start();
    server.sql_in("appdb", SCHEMA);
    let texts = [
        "CREATE PROCEDURE rp1() BEGIN SELECT 1; SELECT 2; END; SELECT 3",
        "CREATE PROCEDURE rp2() BEGIN DECLARE x INT DEFAULT 0; WHILE x < 3 DO SET x = x + 1; END WHILE; IF x = 3 THEN SELECT 'y'; ELSEIF x > 3 THEN SELECT 'z'; ELSE SELECT 'n'; END IF; END; SELECT 4",
        "CREATE FUNCTION rf1(a INT) RETURNS INT DETERMINISTIC BEGIN DECLARE b INT; SET b = CASE WHEN a > 1 THEN 1 ELSE 0 END; RETURN IF(b = 1, REPEAT('x', 1) = 'x', 0); END; SELECT 5",
        "CREATE TRIGGER rt1 BEFORE INSERT ON u FOR EACH ROW BEGIN IF NEW.x IS NULL THEN SET NEW.x = 0; END IF; END; SELECT 6",
        "CREATE PROCEDURE rp3() lbl: BEGIN LOOP LEAVE lbl; END LOOP; END lbl; SELECT 7",
        "CREATE PROCEDURE rp4() BEGIN DECLARE CONTINUE HANDLER FOR SQLEXCEPTION BEGIN SELECT 'h'; END; REPEAT SELECT 1; UNTIL 1 END REPEAT; END; SELECT 8",
        "CREATE EVENT re1 ON SCHEDULE EVERY 1 DAY DO BEGIN DELETE FROM u WHERE x = 99; END; SELECT 9",
        "CREATE PROCEDURE rp5() BEGIN CASE 1 WHEN 1 THEN SELECT 1; ELSE SELECT 2; END CASE; END; SELECT 10",
        "CREATE PROCEDURE rp6() FOR i IN 1..3 DO SELECT i; END FOR; SELECT 11",
        "CREATE PROCEDURE rp7() IF 1 THEN SELECT 1; END IF; SELECT 12",
        "CREATE PROCEDURE rp8() BEGIN SELECT 1 FROM t FOR UPDATE; END; SELECT 13",
        "CREATE DEFINER = root@localhost PROCEDURE rp9() BEGIN SELECT 1; END; SELECT 14",
        "CREATE FUNCTION rf2() RETURNS INT RETURN 1; SELECT 15",
        "BEGIN NOT ATOMIC DECLARE x INT DEFAULT 1; IF x THEN SELECT 1; END IF; END; SELECT 16",
        "IF 1 THEN SELECT 1; ELSE SELECT 2; END IF; SELECT 17",
        "WHILE 0 DO SELECT 1; END WHILE; SELECT 18",
    ];
    let mut failures = Vec::new();
    for text in texts {
        let setup = "SET profiling = 1, profiling_history_size = 100";
        let (_, profiles, stderr) = run(&server, "", &[setup, text, "SHOW PROFILES"], true);
        if stderr.contains("ERROR") {
            failures.push(format!("{text:?} failed: {stderr}"));
            continue;
        }
        let server_starts = server_starts(text, &profiles);
        let ours = our_starts(text);
        let command = classify(Dialect::Mysql, text);
        let agrees = if text.starts_with("CREATE") {
            server_starts.len() == ours.len()
                && server_starts
                    .iter()
                    .zip(&ours)
                    .all(|(server, ours)| aligned(text, *server, *ours))
        } else {
            compare_split(text, &command, &server_starts, false).is_none()
        };
        if !agrees {
            failures.push(format!(
                "{text:?}: server starts {server_starts:?}, ours {ours:?}"
            ));
        }
        // A body with `;` inside is never complete; the statement after
        // it is classified on its own.
        let first = &command.statements()[0];
        if first.complete && text.contains("BEGIN") {
            failures.push(format!("{text:?}: a compound body is complete"));
        }
        let last = command.statements().last().unwrap();
        if !(last.complete && last.effective_access() == Access::Read) {
            failures.push(format!("{text:?}: the final SELECT is {last:?}"));
        }
    }
    println!(
        "compound statements: {} texts, {} failures",
        texts.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
