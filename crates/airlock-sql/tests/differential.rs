//! Differential test against PostgreSQL's own parser (`pg_query`, a binding
//! of libpg_query).
//!
//! For every statement PostgreSQL can parse, the operations and written
//! tables our classifier reports must equal what the parse tree shows, unless
//! our classifier says `complete: false`. The splitter must agree with
//! libpg_query's parser-based split for every file the parser accepts whole.
//!
//! It always runs over airlock's own corpus, `tests/corpus/*.sql`: files the
//! team wrote by hand (`psql-catalog.sql`) and files generated from
//! combinations of clauses by `corpus_generator` (checked in; a test fails
//! when they differ from what the generator writes). Every statement of the
//! own corpus must parse, and none may disagree.
//!
//! When `AIRLOCK_SQL_CORPUS` names a folder of `.sql` files, it runs over
//! that one too, e.g. PostgreSQL's regression suite from its source
//! distribution (`src/test/regress/sql`): there, statements PostgreSQL
//! cannot parse (the suite tests errors) are skipped, and the test asks for
//! 0 disagreements and more than 99% classified completely. The test prints
//! each corpus it ran, its size and the agreement figures.

// Test code: panics are the failure mechanism (clippy.toml allows unwrap and
// indexing in tests; these allow the helpers outside `#[test]` too).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod corpus_generator;

use airlock_sql::{classify, classify_with, prepared_definitions, split_statements, Dialect};
use airlock_types::{Operation, StatementClass};
use serde_json::Value;
use std::collections::BTreeSet;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The own corpus, inside this crate.
fn own_corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// The `.sql` files of `dir`, sorted: (file name, text).
fn read_corpus(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("corpus missing at {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let raw = std::fs::read(path).unwrap();
            (
                path.file_name().unwrap().to_string_lossy().to_string(),
                String::from_utf8_lossy(&raw).into_owned(),
            )
        })
        .collect()
}

/// Drops psql meta-command lines and COPY … FROM stdin data blocks, keeping
/// line numbers (dropped lines become empty).
fn strip_psql(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_copy_data = false;
    for line in text.lines() {
        if in_copy_data {
            if line.trim_end() == "\\." {
                in_copy_data = false;
            }
            out.push('\n');
            continue;
        }
        if line.trim_start().starts_with('\\') {
            out.push('\n');
            continue;
        }
        let lower = line.to_ascii_lowercase();
        if lower.contains("from stdin") && lower.trim_end().ends_with(';') {
            in_copy_data = true;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// What the parse tree says a statement does.
struct Oracle {
    operations: BTreeSet<Operation>,
    /// `None` when the oracle does not define written tables for this
    /// statement type (then they are not compared).
    written: Option<BTreeSet<String>>,
}

fn range_var_name(value: &Value) -> Option<String> {
    let relname = value.get("relname")?.as_str()?;
    let mut parts = Vec::new();
    for key in ["catalogname", "schemaname"] {
        if let Some(part) = value.get(key).and_then(Value::as_str) {
            if !part.is_empty() {
                parts.push(part.to_string());
            }
        }
    }
    parts.push(relname.to_string());
    Some(parts.join("."))
}

/// `{"node": {"Kind": body}}` → ("Kind", body).
fn node_kind(value: &Value) -> Option<(&str, &Value)> {
    let inner = value.get("node")?.as_object()?;
    inner.iter().next().map(|(k, v)| (k.as_str(), v))
}

/// Every data-modifying statement and row-locking clause anywhere in the
/// tree (including `value` itself).
fn deep_scan(value: &Value, ops: &mut BTreeSet<Operation>, written: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let op = match key.as_str() {
                    "InsertStmt" => Some(Operation::Insert),
                    "UpdateStmt" => Some(Operation::Update),
                    "DeleteStmt" => Some(Operation::Delete),
                    "MergeStmt" => Some(Operation::Merge),
                    "LockingClause" => Some(Operation::Lock),
                    _ => None,
                };
                if let Some(op) = op {
                    ops.insert(op);
                    if op != Operation::Lock {
                        if let Some(name) = child.get("relation").and_then(range_var_name) {
                            written.insert(name);
                        }
                    }
                }
                // `SELECT … INTO` anywhere in a set operation creates a table.
                if key == "into_clause" {
                    if let Some(name) = child.get("rel").and_then(range_var_name) {
                        ops.insert(Operation::Create);
                        written.insert(name);
                    }
                }
                // Row-locking clauses of a SELECT are in `locking_clause`.
                if key == "locking_clause" && child.as_array().is_some_and(|a| !a.is_empty()) {
                    ops.insert(Operation::Lock);
                }
                deep_scan(child, ops, written);
            }
        }
        Value::Array(items) => {
            for item in items {
                deep_scan(item, ops, written);
            }
        }
        _ => {}
    }
}

/// Operations of the root's own CTE bodies that are plain queries.
fn cte_selects(body: &Value, ops: &mut BTreeSet<Operation>) {
    let Some(ctes) = body
        .get("with_clause")
        .and_then(|w| w.get("ctes"))
        .and_then(Value::as_array)
    else {
        return;
    };
    for cte in ctes {
        if let Some((_, cte_body)) = node_kind(cte) {
            if let Some(query) = cte_body.get("ctequery") {
                if let Some(("SelectStmt", _)) = node_kind(query) {
                    ops.insert(Operation::Select);
                }
            }
        }
    }
}

/// Whether an ExplainStmt's options include ANALYZE (not set to false).
fn explain_analyze(body: &Value) -> bool {
    body.get("options")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(node_kind)
        .any(|(_, def)| {
            let name = def.get("defname").and_then(Value::as_str).unwrap_or("");
            if name != "analyze" && name != "analyse" {
                return false;
            }
            match def.get("arg").and_then(node_kind) {
                None => true,
                Some(("Boolean", b)) => b.get("boolval").and_then(Value::as_bool).unwrap_or(false),
                Some(("String", s)) => !matches!(
                    s.get("sval").and_then(Value::as_str).unwrap_or(""),
                    "false" | "off" | "no" | "0"
                ),
                Some(("Integer", i)) => i.get("ival").and_then(Value::as_i64).unwrap_or(0) != 0,
                Some(_) => true,
            }
        })
}

const RELATION_TYPES: [i64; 6] = [19, 21, 24, 38, 42, 52];

/// Per-file session state: the oracle's view of prepared statements.
type OraclePrepared =
    std::collections::HashMap<String, (BTreeSet<Operation>, Option<BTreeSet<String>>)>;

fn oracle_session(node: &Value, prepared: &mut OraclePrepared) -> Option<Oracle> {
    let (kind, body) = node_kind(node)?;
    match kind {
        "PrepareStmt" => {
            let name = body.get("name").and_then(Value::as_str)?.to_string();
            // PREPARE is decided on its body: its operations and writes.
            let inner = body
                .get("query")
                .and_then(|q| oracle_session(q, prepared))?;
            prepared.insert(name, (inner.operations.clone(), inner.written.clone()));
            let mut operations = inner.operations;
            operations.insert(Operation::Prepare);
            Some(Oracle {
                operations,
                written: inner.written,
            })
        }
        "ExecuteStmt" => {
            let name = body.get("name").and_then(Value::as_str)?;
            let (operations, written) = prepared.get(name)?.clone();
            let mut operations = operations;
            operations.insert(Operation::Execute);
            Some(Oracle {
                operations,
                written,
            })
        }
        "CreateTableAsStmt" => {
            // May wrap an EXECUTE.
            let inner = oracle_session(body.get("query")?, prepared)?;
            let mut operations = inner.operations;
            operations.insert(Operation::Create);
            let mut written = inner.written?;
            if let Some(name) = body
                .get("into")
                .and_then(|i| i.get("rel"))
                .and_then(range_var_name)
            {
                written.insert(name);
            }
            Some(Oracle {
                operations,
                written: Some(written),
            })
        }
        "ExplainStmt" => {
            let mut operations = BTreeSet::from([Operation::Explain]);
            if !explain_analyze(body) {
                return Some(Oracle {
                    operations,
                    written: Some(BTreeSet::new()),
                });
            }
            let inner = oracle_session(body.get("query")?, prepared)?;
            operations.extend(inner.operations);
            Some(Oracle {
                operations,
                written: inner.written,
            })
        }
        "CreateSchemaStmt" => {
            let mut operations = BTreeSet::from([Operation::Create]);
            for element in body
                .get("schema_elts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                operations.extend(oracle_session(element, prepared)?.operations);
            }
            Some(Oracle {
                operations,
                written: None,
            })
        }
        _ => oracle(node),
    }
}

fn oracle(node: &Value) -> Option<Oracle> {
    let (kind, body) = node_kind(node)?;
    let mut ops = BTreeSet::new();
    let mut written = BTreeSet::new();
    let single = |op| {
        Some(Oracle {
            operations: BTreeSet::from([op]),
            written: None,
        })
    };
    let with_relation = |op, key: &str| {
        let mut written = BTreeSet::new();
        if let Some(name) = body.get(key).and_then(range_var_name) {
            written.insert(name);
        }
        Some(Oracle {
            operations: BTreeSet::from([op]),
            written: Some(written),
        })
    };
    match kind {
        "SelectStmt" | "InsertStmt" | "UpdateStmt" | "DeleteStmt" | "MergeStmt" => {
            if kind == "SelectStmt" {
                ops.insert(Operation::Select);
            }
            cte_selects(body, &mut ops);
            deep_scan(node, &mut ops, &mut written);
            Some(Oracle {
                operations: ops,
                written: Some(written),
            })
        }
        "ExplainStmt" => {
            let analyze = explain_analyze(body);
            let mut ops = BTreeSet::from([Operation::Explain]);
            if !analyze {
                return Some(Oracle {
                    operations: ops,
                    written: Some(BTreeSet::new()),
                });
            }
            let inner = oracle(body.get("query")?)?;
            ops.extend(inner.operations);
            Some(Oracle {
                operations: ops,
                written: inner.written,
            })
        }
        "CopyStmt" => {
            let is_from = body
                .get("is_from")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            ops.insert(if is_from {
                Operation::CopyFrom
            } else {
                Operation::CopyTo
            });
            if let Some(query) = body.get("query").filter(|q| !q.is_null()) {
                let inner = oracle(query)?;
                ops.extend(inner.operations);
                written.extend(inner.written.unwrap_or_default());
            }
            if is_from {
                if let Some(name) = body.get("relation").and_then(range_var_name) {
                    written.insert(name);
                }
            }
            Some(Oracle {
                operations: ops,
                written: Some(written),
            })
        }
        "CreateTableAsStmt" => {
            let inner = oracle(body.get("query")?)?;
            ops.insert(Operation::Create);
            ops.extend(inner.operations);
            let mut written = inner.written?;
            if let Some(name) = body
                .get("into")
                .and_then(|i| i.get("rel"))
                .and_then(range_var_name)
            {
                written.insert(name);
            }
            Some(Oracle {
                operations: ops,
                written: Some(written),
            })
        }
        "DeclareCursorStmt" => {
            let inner = oracle(body.get("query")?)?;
            Some(Oracle {
                operations: inner.operations,
                written: None,
            })
        }
        "CreateStmt" => with_relation(Operation::Create, "relation"),
        "ViewStmt" => with_relation(Operation::Create, "view"),
        "CreateSeqStmt" => with_relation(Operation::Create, "sequence"),
        "AlterSeqStmt" => with_relation(Operation::Alter, "sequence"),
        "IndexStmt" => with_relation(Operation::Create, "relation"),
        "AlterTableStmt" => {
            // ALTER TYPE … ATTRIBUTE is an AlterTableStmt on a composite
            // type: not a table.
            let object_type = body.get("objtype").and_then(Value::as_i64).unwrap_or(0);
            if RELATION_TYPES.contains(&object_type) {
                with_relation(Operation::Alter, "relation")
            } else {
                single(Operation::Alter)
            }
        }
        "RefreshMatViewStmt" => with_relation(Operation::Maintenance, "relation"),
        "TruncateStmt" => {
            for relation in body
                .get("relations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(("RangeVar", rv)) = node_kind(relation) {
                    written.extend(range_var_name(rv));
                }
            }
            Some(Oracle {
                operations: BTreeSet::from([Operation::Truncate]),
                written: Some(written),
            })
        }
        "DropStmt" => {
            let remove_type = body.get("remove_type").and_then(Value::as_i64).unwrap_or(0);
            if !RELATION_TYPES.contains(&remove_type) {
                return single(Operation::Drop);
            }
            for object in body
                .get("objects")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(("List", list)) = node_kind(object) {
                    let parts: Vec<String> = list
                        .get("items")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|item| {
                            node_kind(item)
                                .and_then(|(_, s)| s.get("sval"))
                                .and_then(Value::as_str)
                                .map(str::to_string)
                        })
                        .collect();
                    written.insert(parts.join("."));
                }
            }
            Some(Oracle {
                operations: BTreeSet::from([Operation::Drop]),
                written: Some(written),
            })
        }
        "RenameStmt" => {
            let rename_type = body.get("rename_type").and_then(Value::as_i64).unwrap_or(0);
            let relation_type = body
                .get("relation_type")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let relation_based = RELATION_TYPES.contains(&rename_type)
                || ([7, 41].contains(&rename_type) && RELATION_TYPES.contains(&relation_type));
            if relation_based && body.get("relation").is_some() {
                with_relation(Operation::Alter, "relation")
            } else {
                single(Operation::Alter)
            }
        }
        "AlterObjectSchemaStmt" => {
            let object_type = body.get("object_type").and_then(Value::as_i64).unwrap_or(0);
            if RELATION_TYPES.contains(&object_type) && body.get("relation").is_some() {
                with_relation(Operation::Alter, "relation")
            } else {
                single(Operation::Alter)
            }
        }
        "TransactionStmt" => single(Operation::Transaction),
        "VariableSetStmt" | "ConstraintsSetStmt" => single(Operation::Set),
        "VariableShowStmt" => single(Operation::Show),
        "DoStmt" => single(Operation::Do),
        "CallStmt" => single(Operation::Call),
        "PrepareStmt" => single(Operation::Prepare),
        "ExecuteStmt" => single(Operation::Execute),
        "DeallocateStmt" | "CommentStmt" | "SecLabelStmt" | "ClosePortalStmt" | "DiscardStmt"
        | "LoadStmt" => single(Operation::Other),
        "LockStmt" => single(Operation::Lock),
        "VacuumStmt" | "ReindexStmt" | "ClusterStmt" | "CheckPointStmt" => {
            single(Operation::Maintenance)
        }
        "ListenStmt" | "UnlistenStmt" => single(Operation::Listen),
        "NotifyStmt" => single(Operation::Notify),
        "GrantStmt" | "GrantRoleStmt" => {
            if body
                .get("is_grant")
                .and_then(Value::as_bool)
                .unwrap_or(false)
            {
                single(Operation::Grant)
            } else {
                single(Operation::Revoke)
            }
        }
        "AlterDefaultPrivilegesStmt" => {
            let grant = body
                .get("action")
                .and_then(|a| a.get("is_grant"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            Some(Oracle {
                operations: BTreeSet::from([
                    Operation::Alter,
                    if grant {
                        Operation::Grant
                    } else {
                        Operation::Revoke
                    },
                ]),
                written: None,
            })
        }
        "FetchStmt" => single(Operation::Select),
        "ReassignOwnedStmt" => single(Operation::Alter),
        "DropOwnedStmt" => single(Operation::Drop),
        "ImportForeignSchemaStmt" => single(Operation::Create),
        "CompositeTypeStmt" | "DefineStmt" | "RuleStmt" | "CreatedbStmt" => {
            single(Operation::Create)
        }
        "DropdbStmt" => single(Operation::Drop),
        other if other.starts_with("Create") => single(Operation::Create),
        other if other.starts_with("Alter") => single(Operation::Alter),
        other if other.starts_with("Drop") => single(Operation::Drop),
        _ => None,
    }
}

#[derive(Default)]
struct Stats {
    files: usize,
    statements: usize,
    parseable: usize,
    complete: usize,
    disagreements: Vec<String>,
    unparseable: Vec<String>,
    no_oracle: BTreeSet<String>,
    files_split_compared: usize,
    split_disagreements: Vec<String>,
    incomplete_samples: Vec<String>,
}

impl Stats {
    /// Share of the completely classified statements on which the parser
    /// agrees.
    fn agreement(&self) -> f64 {
        let agreed = self.complete.saturating_sub(self.disagreements.len());
        agreed as f64 / self.complete.max(1) as f64 * 100.0
    }

    fn complete_share(&self) -> f64 {
        self.complete as f64 / self.parseable.max(1) as f64 * 100.0
    }

    /// Prints the figures and the first problems, under the corpus' name.
    fn print(&self, corpus: &str) {
        println!(
            "corpus {corpus}: files {} statements {} parseable {} complete {} ({:.2}%) disagreements {} (agreement {:.2}% of the complete ones)",
            self.files,
            self.statements,
            self.parseable,
            self.complete,
            self.complete_share(),
            self.disagreements.len(),
            self.agreement()
        );
        println!(
            "corpus {corpus}: files split-compared {} split disagreements {}",
            self.files_split_compared,
            self.split_disagreements.len()
        );
        if !self.no_oracle.is_empty() {
            println!(
                "corpus {corpus}: statement kinds without oracle: {:?}",
                self.no_oracle
            );
        }
        if std::env::var("AIRLOCK_SHOW_INCOMPLETE").is_ok() {
            for sample in &self.incomplete_samples {
                println!("incomplete: {sample}");
            }
        }
        for disagreement in self.disagreements.iter().take(60) {
            println!("DISAGREE {disagreement}");
        }
        for disagreement in &self.split_disagreements {
            println!("SPLIT {disagreement}");
        }
    }
}

fn one_line(statement: &str, chars: usize) -> String {
    statement
        .chars()
        .take(chars)
        .collect::<String>()
        .replace('\n', " ")
}

/// Classifies every statement of every file and compares with the parser.
fn compare(files: &[(String, String)]) -> Stats {
    let mut stats = Stats {
        files: files.len(),
        ..Stats::default()
    };
    for (file, raw) in files {
        let text = strip_psql(raw);

        // Whole-file split against the parser's split.
        let ours = split_statements(Dialect::Postgres, &text);
        if let Ok(theirs) = pg_query::split_with_parser(&text) {
            let theirs: Vec<&str> = theirs
                .into_iter()
                .filter(|s| !s.trim().is_empty())
                .collect();
            stats.files_split_compared += 1;
            if theirs.len() != ours.len() {
                stats.split_disagreements.push(format!(
                    "{file}: ours {} theirs {}",
                    ours.len(),
                    theirs.len()
                ));
            }
        }
        // The whole file at once must not panic either.
        let _ = classify(Dialect::Postgres, &text);

        // Session state, as the gateway keeps it: prepared statements.
        let mut session: HashMap<String, StatementClass> = HashMap::new();
        let mut oracle_prepared = OraclePrepared::new();
        for statement in ours {
            stats.statements += 1;
            let parsed = match pg_query::parse(statement) {
                Ok(parsed) => parsed,
                Err(error) => {
                    stats
                        .unparseable
                        .push(format!("{file}: {error}: {}", one_line(statement, 300)));
                    continue;
                }
            };
            stats.parseable += 1;
            let command = classify_with(Dialect::Postgres, statement, &session);
            for definition in prepared_definitions(Dialect::Postgres, &command) {
                session.insert(definition.name, definition.statement);
            }
            let tree = serde_json::to_value(&parsed.protobuf.stmts[0].stmt).unwrap();
            let expected = oracle_session(&tree, &mut oracle_prepared);
            let class = &command.statements()[0];
            if command.statements().len() != 1 {
                if class.complete {
                    stats.disagreements.push(format!(
                        "{file}: split into {}: {statement}",
                        command.statements().len()
                    ));
                }
                continue;
            }
            if !class.complete {
                if stats.incomplete_samples.len() < 400 {
                    stats.incomplete_samples.push(format!(
                        "{file}: {:?}: {}",
                        class.operations,
                        one_line(statement, 160)
                    ));
                }
                continue;
            }
            stats.complete += 1;
            if parsed.protobuf.stmts.len() != 1 {
                stats.disagreements.push(format!(
                    "{file}: parser sees {} statements: {statement}",
                    parsed.protobuf.stmts.len()
                ));
                continue;
            }
            let Some(expected) = expected else {
                let kind = node_kind(&tree)
                    .map(|(k, _)| k.to_string())
                    .unwrap_or_default();
                stats.no_oracle.insert(format!("{kind}: {statement}"));
                continue;
            };
            let ours_ops: BTreeSet<Operation> = class.operations.iter().copied().collect();
            let mut problems = Vec::new();
            if ours_ops != expected.operations {
                problems.push(format!(
                    "operations ours {:?} parser {:?}",
                    ours_ops, expected.operations
                ));
            }
            if let Some(written) = &expected.written {
                let ours_written: BTreeSet<String> = class.tables_written.iter().cloned().collect();
                if &ours_written != written {
                    problems.push(format!("written ours {ours_written:?} parser {written:?}"));
                }
            }
            if !problems.is_empty() {
                stats.disagreements.push(format!(
                    "{file}: {}: {}",
                    problems.join("; "),
                    one_line(statement, 300)
                ));
            }
        }
    }
    stats
}

/// The own corpus: every statement parses, none disagrees, every file
/// splits as the parser splits it; then the external corpus, if named.
#[test]
fn classifier_agrees_with_postgres_parser() {
    let own = read_corpus(&own_corpus_dir());
    let stats = compare(&own);
    stats.print("own (tests/corpus)");
    for statement in stats.unparseable.iter().take(40) {
        println!("UNPARSEABLE {statement}");
    }
    assert!(
        stats.files >= 10,
        "own corpus incomplete: {} files",
        stats.files
    );
    assert!(
        stats.parseable > 5_000,
        "own corpus too small: {} statements",
        stats.parseable
    );
    assert_eq!(
        stats.unparseable.len(),
        0,
        "own corpus statements PostgreSQL cannot parse"
    );
    assert!(
        stats.no_oracle.is_empty(),
        "oracle gaps: {:?}",
        stats.no_oracle
    );
    assert_eq!(
        stats.disagreements.len(),
        0,
        "confident disagreements (own corpus)"
    );
    assert_eq!(
        stats.files_split_compared, stats.files,
        "every own-corpus file parses whole"
    );
    assert_eq!(
        stats.split_disagreements.len(),
        0,
        "split disagreements (own corpus)"
    );
    let share = stats.complete_share();
    assert!(
        share > 95.0,
        "own corpus: complete share {share:.2}% is not over 95%"
    );

    let Ok(external) = std::env::var("AIRLOCK_SQL_CORPUS") else {
        println!("corpus external: not run (set AIRLOCK_SQL_CORPUS to a folder of .sql files, e.g. PostgreSQL's src/test/regress/sql)");
        return;
    };
    let files = read_corpus(Path::new(&external));
    assert!(!files.is_empty(), "no .sql files in {external}");
    let stats = compare(&files);
    stats.print(&format!("external ({external})"));
    assert!(stats.parseable > 0, "no statement of {external} parses");
    assert!(
        stats.no_oracle.is_empty(),
        "oracle gaps: {:?}",
        stats.no_oracle
    );
    assert_eq!(
        stats.disagreements.len(),
        0,
        "confident disagreements (external corpus)"
    );
    assert_eq!(
        stats.split_disagreements.len(),
        0,
        "split disagreements (external corpus)"
    );
    let share = stats.complete_share();
    assert!(
        share > 99.0,
        "external corpus: complete share {share:.2}% is not over 99%"
    );
}

/// The checked-in generated files are exactly what `corpus_generator`
/// writes, and no stale generated file is left beside them. With
/// `AIRLOCK_REGENERATE_CORPUS=1` this test rewrites them instead.
#[test]
fn generated_corpus_is_up_to_date() {
    let dir = own_corpus_dir();
    let generated = corpus_generator::files();
    if std::env::var("AIRLOCK_REGENERATE_CORPUS").is_ok() {
        for (name, text) in &generated {
            std::fs::write(dir.join(name), text).unwrap();
        }
    }
    let names: BTreeSet<&str> = generated.iter().map(|(name, _)| name.as_str()).collect();
    for (name, text) in read_corpus(&dir) {
        if text.starts_with(corpus_generator::HEADER) {
            assert!(
                names.contains(name.as_str()),
                "tests/corpus/{name} says it is generated but the generator does not write it"
            );
        }
    }
    for (name, text) in &generated {
        let on_disk = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        assert!(
            &on_disk == text,
            "tests/corpus/{name} is not what the generator writes: \
             AIRLOCK_REGENERATE_CORPUS=1 cargo test -p airlock-sql --test differential"
        );
    }
}
