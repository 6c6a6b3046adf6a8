//! The MySQL dialect over the generated corpus
//! (`tests/mysql_corpus/generated.sql`, from `mysql_corpus_generator`)
//! and the hand-written one (`tests/mysql_corpus/statements.sql`), with the
//! real MariaDB server as the oracle:
//!
//! 1. the generated file is what the generator writes;
//! 2. every generated text is classified as its tag says;
//! 3. every text of both corpora (and of an external corpus directory named
//!    by `AIRLOCK_MYSQL_CORPUS_DIR`: every `*.sql` file in it, one text per
//!    line) that the classifier calls a complete `read` runs on a scratch
//!    MariaDB as `ro`, a user holding only `SELECT` on the scratch schema,
//!    inside `START TRANSACTION READ ONLY`. A privilege or read-only error
//!    from the server is a confident disagreement and fails the test; other
//!    errors (an XA or transaction statement out of its state, a routine
//!    that does not exist) say nothing about access and are only counted.
//!
//! The test prints the corpus size, the share classified complete and the
//! count of confident disagreements.

// Test code: panics are the failure mechanism.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod mysql_corpus_generator;
mod mysql_schema;

use airlock_sql::{classify, Dialect};
use airlock_testkit::MariaDb;
use airlock_types::{Access, Command};
use std::io::Write;
use std::process::{Command as Process, Stdio};

const GENERATED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/mysql_corpus/generated.sql"
);
const HAND_WRITTEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/mysql_corpus/statements.sql"
);

/// Separates the packets sent by the `mariadb` client: never in a text.
const DELIMITER: &str = "\u{1}\u{2}";

/// Server errors that say the statement needed more than reading: table,
/// column, database or routine privileges, SUPER-like privileges, a
/// read-only transaction or server.
const CONFIDENT: [u32; 10] = [1044, 1045, 1142, 1143, 1227, 1290, 1370, 1410, 1792, 1836];

struct Text {
    origin: String,
    tag: Option<String>,
    text: String,
}

/// `TAG text` lines (`#` comments, `⏎` for a newline) of a corpus file;
/// untagged lines when `tagged` is false.
fn read_corpus(path: &str, tagged: bool) -> Vec<Text> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("{path}: {error}"))
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.starts_with('#') && !line.trim().is_empty())
        .map(|(index, line)| {
            let (tag, text) = if tagged {
                let (tag, text) = line.split_once(' ').unwrap();
                (Some(tag.to_string()), text)
            } else {
                (None, line)
            };
            Text {
                origin: format!("{path}:{}", index + 1),
                tag,
                text: text.replace('⏎', "\n"),
            }
        })
        .collect()
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

/// Runs every text in `START TRANSACTION READ ONLY` as `ro`, all in one
/// client session that goes on after errors; the errors as (text index,
/// code, message).
fn run_reads(server: &MariaDb, texts: &[&str]) -> Vec<(usize, u32, String)> {
    let mut child = Process::new("mariadb")
        .arg("--no-defaults")
        .arg("--force")
        .arg(format!("--socket={}", server.socket().display()))
        .args([
            "--batch",
            "--skip-column-names",
            "--comments",
            "--binary-mode",
        ])
        .arg(format!("--delimiter={DELIMITER}"))
        .args(["-uro", "-pro-password", "appdb"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Four packets per text, each on its own line with the delimiter on
    // the next: packet p spans lines 2p+1 and 2p+2.
    let mut input = String::new();
    for text in texts {
        for packet in ["START TRANSACTION READ ONLY", text, "ROLLBACK", "DO 0"] {
            assert!(!packet.contains('\n'), "one line per packet: {packet:?}");
            input.push_str(packet);
            input.push('\n');
            input.push_str(DELIMITER);
            input.push('\n');
        }
    }
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut errors = Vec::new();
    for line in stderr.lines() {
        // `ERROR 1142 (42000) at line 17: SELECT command denied …`
        let Some(rest) = line.strip_prefix("ERROR ") else {
            continue;
        };
        let code: u32 = rest
            .split_whitespace()
            .next()
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let at = rest
            .split_once(" at line ")
            .and_then(|(_, after)| after.split_once(':'))
            .and_then(|(number, _)| number.trim().parse::<usize>().ok())
            .unwrap_or_else(|| panic!("no line in {line:?}"));
        let packet = (at - 1) / 2;
        errors.push((packet / 4, code, line.to_string()));
    }
    errors
}

#[test]
fn generated_corpus_is_up_to_date() {
    let expected = mysql_corpus_generator::contents();
    if std::env::var_os("AIRLOCK_REGENERATE_CORPUS").is_some() {
        std::fs::write(GENERATED, &expected).unwrap();
    }
    let actual = std::fs::read_to_string(GENERATED).unwrap_or_default();
    assert!(
        actual == expected,
        "{GENERATED} is stale: AIRLOCK_REGENERATE_CORPUS=1 cargo test -p airlock-sql --test mysql_generated"
    );
}

#[test]
fn classifier_reads_are_reads_on_mariadb() {
    let mut texts = read_corpus(GENERATED, true);
    let generated = texts.len();
    texts.extend(read_corpus(HAND_WRITTEN, true));
    let team = texts.len();
    if let Some(dir) = std::env::var_os("AIRLOCK_MYSQL_CORPUS_DIR") {
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
            .collect();
        files.sort();
        for file in files {
            texts.extend(read_corpus(file.to_str().unwrap(), false));
        }
    }
    let mut failures = Vec::new();
    let mut complete = 0usize;
    let mut reads = Vec::new();
    for (index, text) in texts.iter().enumerate() {
        let command = classify(Dialect::Mysql, &text.text);
        if command.complete() {
            complete += 1;
        }
        if index < generated {
            let tag = tag_of(&command);
            if text.tag.as_deref() != Some(tag) {
                failures.push(format!(
                    "{}: tagged {} but classified {tag}: {:?}",
                    text.origin,
                    text.tag.as_deref().unwrap_or(""),
                    text.text
                ));
            }
        }
        // The hand-written corpus's multi-line texts are checked by
        // mysql_server.rs; this session sends one line per packet.
        if command.complete() && command.access() == Access::Read && !text.text.contains('\n') {
            reads.push(index);
        }
    }
    let server = MariaDb::start();
    server.sql_in("appdb", mysql_schema::SCHEMA);
    // Reading is reading wherever the table is (`mysql.user` too).
    server.sql_in("appdb", "GRANT SELECT ON *.* TO 'ro'@'localhost'");
    let sent: Vec<&str> = reads
        .iter()
        .map(|&index| texts[index].text.as_str())
        .collect();
    let errors = run_reads(&server, &sent);
    let mut confident = 0usize;
    for (read, code, message) in &errors {
        let text = &texts[reads[*read]];
        let is_confident = CONFIDENT.contains(code);
        if is_confident {
            confident += 1;
        }
        if is_confident {
            failures.push(format!(
                "{}: classified read, but {message}: {:?}",
                text.origin, text.text
            ));
        }
    }
    println!(
        "mysql corpora: {} texts ({generated} generated, {} hand-written, {} external); {:.1}% classified complete; {} reads run as a SELECT-only user in READ ONLY transactions; {} server errors, {confident} confident disagreements",
        texts.len(),
        team - generated,
        texts.len() - team,
        100.0 * complete as f64 / texts.len().max(1) as f64,
        reads.len(),
        errors.len(),
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
