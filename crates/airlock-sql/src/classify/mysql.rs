//! The MySQL / MariaDB statements: dispatch on the leading keyword(s) of a
//! MySQL statement, for the forms whose grammar differs from PostgreSQL's.
//!
//! Where the grammars agree (SELECT bodies, CTEs, joins, subqueries,
//! function calls, WHERE bounds) it reuses the shared walk of the parent
//! module, which switches on [`Dialect::Mysql`](crate::Dialect) for the few
//! MySQL spellings (`INTO @var`, `INTO OUTFILE`, `LOCK IN SHARE MODE`,
//! index hints, `STRAIGHT_JOIN`, `DUAL`). It owns the MySQL-only forms:
//! `INSERT`/`REPLACE` without `INTO`, multi-table UPDATE and DELETE, `LOAD
//! DATA`, `HANDLER`, `SHOW`/`DESCRIBE`/`EXPLAIN`, `USE`, transactions and
//! XA, `LOCK TABLES`, DDL, server administration, `PREPARE … FROM`,
//! `EXECUTE [IMMEDIATE]`, and the session effects of those. `SET` lives in
//! `mysql_set.rs`.
//!
//! The rule of the parent module holds: a form not understood is
//! incomplete, and an unknown leading keyword is `unknown`.

use super::{Builder, Mode, Statement};
use crate::lexer::TokenKind;
use crate::{NoPrepared, SessionEffect};
use airlock_types::{Access, Operation, StatementClass};

/// MySQL words that may be followed by `(` without being a function call.
pub(super) const NOT_FUNCTIONS: &[&str] = &[
    "against",
    "binary",
    "btree",
    "div",
    "elseif",
    "fulltext",
    "hash",
    "index",
    "interval",
    "key",
    "linear",
    "list",
    "mod",
    "regexp",
    "rlike",
    "separator",
    "spatial",
    // `t STRAIGHT_JOIN (SELECT …) AS d`: a join of a derived table.
    "straight_join",
    "than",
    "value",
    "xor",
];

/// MySQL words that end a `FROM` item's optional alias.
pub(super) const NOT_ALIASES: &[&str] = &["force", "ignore", "lock", "straight_join", "use"];

/// MySQL type names that take modifiers in parentheses (`datetime(6)`).
pub(super) const TYPE_NAMES: &[&str] = &[
    "bigint",
    "binary",
    "blob",
    "char",
    "datetime",
    "decimal",
    "double",
    "enum",
    "float",
    "int",
    "integer",
    "mediumint",
    "mediumtext",
    "nvarchar",
    "real",
    "smallint",
    "text",
    "time",
    "timestamp",
    "tinyint",
    "varbinary",
    "varchar",
    "year",
];

/// Words after which a name followed by `(` is an index or constraint
/// name, or a type (`CAST(x AS DATETIME(6))`), not a call.
const NAME_BEFORE_COLUMNS: &[&str] = &[
    "as",
    "constraint",
    "fulltext",
    "index",
    "key",
    "spatial",
    "unique",
];

/// Statements of server administration: all `admin`.
const ADMIN_STATEMENTS: &[&str] = &[
    "backup",
    "binlog",
    "cache",
    "change",
    "flush",
    "install",
    "kill",
    "purge",
    "reset",
    "shutdown",
    "uninstall",
];

impl Statement<'_> {
    /// The identifier value of one token: unquoted words and `` `quoted` ``
    /// (or, under ANSI_QUOTES, `"quoted"`) identifiers, lowercased (see
    /// the crate doc on case).
    pub(super) fn mysql_ident(&self, index: usize) -> Option<String> {
        let text = self.text(index);
        match self.kind(index)? {
            TokenKind::Word => Some(text.to_ascii_lowercase()),
            TokenKind::QuotedIdent => {
                let quote = text.get(..1)?;
                let inner = text.get(1..text.len().saturating_sub(1))?;
                let doubled = format!("{quote}{quote}");
                Some(inner.replace(&doubled, quote).to_lowercase())
            }
            _ => None,
        }
    }

    /// True when the name at `index`, followed by `(`, is not a call: an
    /// index or constraint name, or a type after `AS`.
    pub(super) fn mysql_type_position(&self, index: usize) -> bool {
        index > 0 && self.is_one_of(index - 1, NAME_BEFORE_COLUMNS)
    }

    /// `USE|FORCE|IGNORE {INDEX|KEY} [FOR {JOIN|ORDER BY|GROUP BY}] (…)`
    /// at `index`: the index after it.
    pub(super) fn mysql_index_hint(&self, index: usize, to: usize) -> Option<usize> {
        if !self.is_one_of(index, &["use", "force", "ignore"])
            || !self.is_one_of(index + 1, &["index", "key"])
        {
            return None;
        }
        let mut next = index + 2;
        if self.kw(next, "for") {
            next += if self.kw(next + 1, "join") { 2 } else { 3 };
        }
        if self.kind(next) == Some(TokenKind::LParen) {
            next = self.close_of(next, to) + 1;
        }
        Some(next)
    }

    /// After `SELECT … INTO`: `@vars` (read; the assignment is a session
    /// effect), `OUTFILE|DUMPFILE 'file'` (a server file: admin), or local
    /// variables of a compound statement (not understood here).
    pub(super) fn mysql_into(&self, builder: &mut Builder, from: usize, to: usize) -> usize {
        if self.is_one_of(from, &["outfile", "dumpfile"]) {
            builder.op(Operation::CopyTo, Access::Admin);
            return from + 1;
        }
        let mut index = from;
        while index < to && self.kind(index) == Some(TokenKind::Variable) {
            index += 1;
            if self.kind(index) == Some(TokenKind::Comma) {
                index += 1;
            } else {
                break;
            }
        }
        if index == from {
            builder.incomplete();
        }
        index
    }

    /// Classifies MySQL statement tokens `from..to` into `builder`.
    pub(super) fn mysql_statement(&self, builder: &mut Builder, from: usize, to: usize) {
        if from >= to {
            builder.op(Operation::Unknown, Access::Write);
            return;
        }
        if self.kind(from) == Some(TokenKind::LParen) {
            builder.op(Operation::Select, Access::Read);
            self.walk(builder, from, to, Mode::QUERY);
            return;
        }
        if crate::mysql_split::starts_compound(self.sql, self.tokens.get(from..to).unwrap_or(&[]))
            && !self.kw(from, "create")
        {
            // A compound statement runs code the classifier does not
            // follow (`BEGIN NOT ATOMIC …`, `IF … END IF`, loops).
            builder.op(Operation::Do, Access::Write);
            builder.incomplete();
            return;
        }
        let mut buffer = [0u8; 32];
        let Some(first) = self.word(from, &mut buffer) else {
            builder.op(Operation::Unknown, Access::Write);
            return;
        };
        self.mysql_keyword_statement(builder, first, from + 1, to);
    }

    /// Dispatches on the leading keyword `first`; `next..to` follows it.
    fn mysql_keyword_statement(&self, builder: &mut Builder, first: &str, next: usize, to: usize) {
        match first {
            "select" | "values" => {
                builder.op(Operation::Select, Access::Read);
                self.walk(builder, next, to, Mode::QUERY);
            }
            // `DO expr`: evaluated like a SELECT list, no rows returned.
            "do" => {
                builder.op(Operation::Select, Access::Read);
                self.walk(builder, next, to, Mode::QUERY);
            }
            "table" => self.mysql_table(builder, next, to),
            "with" => self.with_statement(builder, next, to),
            "insert" => self.mysql_insert(builder, next, to, false),
            "replace" => self.mysql_insert(builder, next, to, true),
            "update" => self.mysql_update(builder, next, to),
            "delete" => self.mysql_delete(builder, next, to),
            "load" => self.mysql_load(builder, next, to),
            "handler" => self.mysql_handler(builder, next),
            "show" => self.mysql_show(builder, next, to),
            "help" => builder.op(Operation::Show, Access::Read),
            "explain" | "describe" | "desc" => self.mysql_explain(builder, next, to, false),
            "analyze" => self.mysql_analyze(builder, next, to),
            "optimize" | "repair" | "check" => builder.op(Operation::Maintenance, Access::Admin),
            "checksum" => self.mysql_checksum(builder, next, to),
            "use" => self.mysql_use(builder, next, to),
            "set" => self.mysql_set(builder, next, to),
            "start" => self.mysql_start(builder, next),
            "stop" => builder.op(Operation::Other, Access::Admin),
            "begin" | "commit" | "rollback" | "savepoint" | "release" => {
                builder.op(Operation::Transaction, Access::Read)
            }
            "xa" => self.mysql_xa(builder, next),
            "lock" => self.mysql_lock(builder, next, to),
            "unlock" => builder.op(Operation::Lock, Access::Read),
            "grant" => builder.op(Operation::Grant, Access::Admin),
            "revoke" => builder.op(Operation::Revoke, Access::Admin),
            "create" => self.mysql_create(builder, next, to),
            "alter" => self.mysql_alter(builder, next, to),
            "drop" => self.mysql_drop(builder, next, to),
            "rename" => self.mysql_rename_statement(builder, next, to),
            "truncate" => self.mysql_truncate(builder, next, to),
            "call" => self.mysql_call(builder, next, to),
            "prepare" => self.mysql_prepare(builder, next, to),
            "execute" => self.mysql_execute(builder, next, to),
            "deallocate" => builder.op(Operation::Other, Access::Read),
            "get" => builder.op(Operation::Other, Access::Read),
            w if ADMIN_STATEMENTS.contains(&w) => builder.op(Operation::Other, Access::Admin),
            _ => builder.op(Operation::Unknown, Access::Write),
        }
    }

    /// `TABLE name …`: reads the named table.
    fn mysql_table(&self, builder: &mut Builder, next: usize, to: usize) {
        builder.op(Operation::Select, Access::Read);
        match self.qualified_name(next) {
            Some((name, after)) => {
                builder.read_table(name);
                self.walk(builder, after, to, Mode::QUERY);
            }
            None => builder.incomplete(),
        }
    }

    /// `SHOW …`: a read; `SHOW … WHERE expr` evaluates the expression.
    fn mysql_show(&self, builder: &mut Builder, next: usize, to: usize) {
        builder.op(Operation::Show, Access::Read);
        if let Some(at) = self.find_word(next, to, "where") {
            self.walk(builder, at, to, Mode::QUERY);
        }
    }

    /// `ANALYZE TABLE …` (maintenance) or MariaDB's `ANALYZE stmt`.
    fn mysql_analyze(&self, builder: &mut Builder, next: usize, to: usize) {
        if self.is_one_of(next, &["table", "tables", "no_write_to_binlog", "local"]) {
            builder.op(Operation::Maintenance, Access::Admin);
        } else {
            // MariaDB's `ANALYZE stmt` runs the statement.
            self.mysql_explain(builder, next, to, true);
        }
    }

    /// `CHECKSUM TABLE[S] names`: reads the named tables.
    fn mysql_checksum(&self, builder: &mut Builder, next: usize, to: usize) {
        builder.op(Operation::Maintenance, Access::Read);
        let index = if self.is_one_of(next, &["table", "tables"]) {
            next + 1
        } else {
            next
        };
        self.name_list(builder, index, to, false);
    }

    /// `USE db` (exactly one identifier, else incomplete): it changes what every later unqualified table name means
    /// (as `search_path` does for PostgreSQL), so it is `admin`; a gateway
    /// that knows the session's own database decides a `USE` of it itself.
    fn mysql_use(&self, builder: &mut Builder, next: usize, to: usize) {
        builder.op(Operation::Other, Access::Admin);
        if self.mysql_ident(next).is_none() || next + 1 != to {
            builder.incomplete();
        }
    }

    /// `START TRANSACTION` (a transaction) or replication control (admin).
    fn mysql_start(&self, builder: &mut Builder, next: usize) {
        if self.kw(next, "transaction") {
            builder.op(Operation::Transaction, Access::Read);
        } else {
            // START SLAVE|REPLICA|ALL SLAVES|GROUP_REPLICATION.
            builder.op(Operation::Other, Access::Admin);
        }
    }

    /// `XA …`: COMMIT / ROLLBACK write, the other forms read.
    fn mysql_xa(&self, builder: &mut Builder, next: usize) {
        // XA COMMIT / ROLLBACK may finish a transaction another
        // session prepared.
        let access = if self.is_one_of(next, &["commit", "rollback"]) {
            Access::Write
        } else {
            Access::Read
        };
        builder.op(Operation::Transaction, access);
    }

    /// `RENAME TABLE[S] …` (write) or `RENAME USER` (admin).
    fn mysql_rename_statement(&self, builder: &mut Builder, next: usize, to: usize) {
        if self.is_one_of(next, &["table", "tables"]) {
            builder.op(Operation::Alter, Access::Write);
            self.mysql_rename(builder, next + 1, to);
        } else {
            // RENAME USER.
            builder.op(Operation::Alter, Access::Admin);
        }
    }

    /// `TRUNCATE [TABLE] names`: writes the named tables.
    fn mysql_truncate(&self, builder: &mut Builder, next: usize, to: usize) {
        builder.op(Operation::Truncate, Access::Write);
        let index = if self.kw(next, "table") {
            next + 1
        } else {
            next
        };
        self.name_list(builder, index, to, true);
    }

    /// `CALL proc(…)`: a write, always incomplete (the body is not followed).
    fn mysql_call(&self, builder: &mut Builder, next: usize, to: usize) {
        builder.op(Operation::Call, Access::Write);
        builder.incomplete();
        if let Some((name, after)) = self.qualified_name(next) {
            builder.call(name);
            self.walk(builder, after, to, Mode::QUERY);
        }
    }

    /// `PREPARE name FROM …`: takes the class of the prepared body.
    fn mysql_prepare(&self, builder: &mut Builder, next: usize, to: usize) {
        builder.op(Operation::Prepare, Access::Read);
        match self.mysql_prepared_body(next, to) {
            Some((_, _, class)) => builder.absorb_class(&class),
            None => builder.incomplete(),
        }
    }

    /// `INSERT|REPLACE [LOW_PRIORITY|DELAYED|HIGH_PRIORITY] [IGNORE] [INTO]
    /// name [PARTITION (…)] [(cols)] {VALUES|VALUE|SELECT|TABLE|SET} …
    /// [ON DUPLICATE KEY UPDATE …]`. REPLACE deletes the rows it replaces,
    /// and ON DUPLICATE KEY UPDATE updates them: both are reported, bounded
    /// by the inserted rows' keys.
    fn mysql_insert(&self, builder: &mut Builder, from: usize, to: usize, replace: bool) {
        builder.op(Operation::Insert, Access::Write);
        if replace {
            builder.op(Operation::Delete, Access::Write);
            builder.note_where(true);
        }
        let mut index = from;
        while self.is_one_of(
            index,
            &["low_priority", "delayed", "high_priority", "ignore"],
        ) {
            index += 1;
        }
        if self.kw(index, "into") {
            index += 1;
        }
        let Some((name, mut index)) = self.qualified_name(index) else {
            builder.incomplete();
            return;
        };
        builder.write_table(name);
        if self.kw(index, "partition") && self.kind(index + 1) == Some(TokenKind::LParen) {
            index = self.close_of(index + 1, to) + 1;
        }
        if self.kind(index) == Some(TokenKind::LParen)
            && !self.is_one_of(index + 1, &["select", "values", "with", "table"])
            && self.kind(index + 1) != Some(TokenKind::LParen)
        {
            index = self.close_of(index, to) + 1;
        }
        if self.kw(index, "value") {
            index += 1;
        }
        let mut position = index;
        while position + 3 < to {
            if self.kw(position, "on")
                && self.kw(position + 1, "duplicate")
                && self.kw(position + 2, "key")
                && self.kw(position + 3, "update")
            {
                builder.op(Operation::Update, Access::Write);
                builder.note_where(true);
                break;
            }
            position += 1;
        }
        self.walk(builder, index, to, Mode::QUERY);
    }

    /// Walks a table-reference list `from..to` and reports every table in
    /// it as written: in a multi-table UPDATE or DELETE the targets are
    /// named by alias or by column, so every table of the list counts.
    fn mysql_written_references(&self, builder: &mut Builder, from: usize, to: usize) {
        let mut references = self.builder();
        references.cte_names = builder.cte_names.clone();
        self.walk(
            &mut references,
            from,
            to,
            Mode {
                table_list: true,
                ..Mode::QUERY
            },
        );
        let read = std::mem::take(&mut references.tables_read);
        builder.tables_written.extend(read);
        builder.absorb(references);
    }

    /// `UPDATE [LOW_PRIORITY] [IGNORE] references SET … [WHERE …] [ORDER BY
    /// …] [LIMIT …]`.
    fn mysql_update(&self, builder: &mut Builder, from: usize, to: usize) {
        builder.op(Operation::Update, Access::Write);
        let mut index = from;
        while self.is_one_of(index, &["low_priority", "ignore"]) {
            index += 1;
        }
        let Some(set) = self.find_word(index, to, "set") else {
            builder.incomplete();
            return;
        };
        if set == index {
            builder.incomplete();
            return;
        }
        self.mysql_written_references(builder, index, set);
        let summary = self.walk(builder, set, to, Mode::QUERY);
        builder.note_where(summary.bounded(self, to));
    }

    /// `DELETE [LOW_PRIORITY] [QUICK] [IGNORE] FROM name …`, `DELETE t1[.*],
    /// … FROM references …` and `DELETE FROM t1[.*], … USING references …`.
    fn mysql_delete(&self, builder: &mut Builder, from: usize, to: usize) {
        builder.op(Operation::Delete, Access::Write);
        let mut index = from;
        while self.is_one_of(index, &["low_priority", "quick", "ignore"]) {
            index += 1;
        }
        let (targets_from, references_from) = if self.kw(index, "from") {
            match self.find_word(index + 1, to, "using") {
                Some(using) => (Some((index + 1, using)), using + 1),
                None => (None, index + 1),
            }
        } else {
            match self.find_word(index, to, "from") {
                Some(from_at) => (Some((index, from_at)), from_at + 1),
                None => {
                    builder.incomplete();
                    return;
                }
            }
        };
        if let Some((start, end)) = targets_from {
            if !self.mysql_delete_targets(builder, start, end) {
                builder.incomplete();
                return;
            }
        }
        let references_end = self
            .find_word(references_from, to, "where")
            .or_else(|| self.find_word(references_from, to, "order"))
            .or_else(|| self.find_word(references_from, to, "limit"))
            .or_else(|| self.find_word(references_from, to, "returning"))
            .unwrap_or(to);
        if references_end == references_from {
            builder.incomplete();
            return;
        }
        self.mysql_written_references(builder, references_from, references_end);
        let summary = self.walk(builder, references_end, to, Mode::QUERY);
        builder.note_where(summary.bounded(self, to));
    }

    /// The `t1[.*], t2` target list of a multi-table DELETE, as written.
    fn mysql_delete_targets(&self, builder: &mut Builder, from: usize, to: usize) -> bool {
        let mut index = from;
        while index < to {
            let Some((name, after)) = self.qualified_name(index) else {
                return false;
            };
            builder.write_table(name);
            index = after;
            if self.kind(index) == Some(TokenKind::Dot)
                && self.kind(index + 1) == Some(TokenKind::Operator)
                && self.text(index + 1) == "*"
            {
                index += 2;
            }
            if self.kind(index) == Some(TokenKind::Comma) {
                index += 1;
            } else {
                return index == to;
            }
        }
        index == to
    }

    /// `LOAD DATA|XML [LOW_PRIORITY|CONCURRENT] [LOCAL] INFILE 'file' …
    /// INTO TABLE name …`: a file of the client (LOCAL: write) or of the
    /// server (admin). `LOAD INDEX INTO CACHE`: admin.
    fn mysql_load(&self, builder: &mut Builder, from: usize, to: usize) {
        if !self.is_one_of(from, &["data", "xml"]) {
            builder.op(Operation::Maintenance, Access::Admin);
            return;
        }
        let mut index = from + 1;
        while self.is_one_of(index, &["low_priority", "concurrent"]) {
            index += 1;
        }
        let local = self.kw(index, "local");
        let access = if local { Access::Write } else { Access::Admin };
        builder.op(Operation::CopyFrom, access);
        let Some(into) = self.find_word(index, to, "into") else {
            builder.incomplete();
            return;
        };
        let table = if self.kw(into + 1, "table") {
            into + 2
        } else {
            into + 1
        };
        match self.qualified_name(table) {
            Some((name, after)) => {
                builder.write_table(name);
                // `SET col = expr` may call functions.
                self.walk(builder, after, to, Mode::DDL);
            }
            None => builder.incomplete(),
        }
    }

    /// `HANDLER t OPEN [[AS] alias]` reads table `t`; `HANDLER h READ …`
    /// reads through a handler that may be an alias of any table: not
    /// sure; `HANDLER h CLOSE` ends it.
    fn mysql_handler(&self, builder: &mut Builder, from: usize) {
        let Some((name, after)) = self.qualified_name(from) else {
            builder.op(Operation::Unknown, Access::Write);
            return;
        };
        let mut buffer = [0u8; 32];
        match self.word(after, &mut buffer) {
            Some("open") => {
                builder.op(Operation::Select, Access::Read);
                builder.read_table(name);
            }
            Some("read") => {
                builder.op(Operation::Select, Access::Read);
                builder.read_table(name);
                builder.incomplete();
            }
            Some("close") => builder.op(Operation::Other, Access::Read),
            _ => builder.op(Operation::Unknown, Access::Write),
        }
    }

    /// `EXPLAIN|DESCRIBE [EXTENDED|PARTITIONS|FORMAT=…] [ANALYZE] statement`,
    /// `EXPLAIN table [column]`, `EXPLAIN FOR CONNECTION n`. With ANALYZE
    /// (or MariaDB's `ANALYZE statement`, `runs`) the statement runs.
    fn mysql_explain(&self, builder: &mut Builder, from: usize, to: usize, runs: bool) {
        let mut analyze = runs;
        let mut index = from;
        loop {
            if self.kw(index, "analyze") {
                analyze = true;
                index += 1;
            } else if self.is_one_of(index, &["extended", "partitions", "verbose"]) {
                index += 1;
            } else if self.kw(index, "format") && self.kind(index + 1) == Some(TokenKind::Operator)
            {
                index += 3;
            } else {
                break;
            }
        }
        if self.kw(index, "for") {
            // Another session's plan.
            builder.op(Operation::Explain, Access::Admin);
            return;
        }
        let statement = self.kind(index) == Some(TokenKind::LParen)
            || self.is_one_of(
                index,
                &[
                    "select", "insert", "update", "delete", "replace", "with", "table", "values",
                ],
            );
        if !statement {
            if analyze {
                builder.op(Operation::Unknown, Access::Write);
                return;
            }
            builder.op(Operation::Show, Access::Read);
            match self.qualified_name(index) {
                Some((name, _)) => builder.read_table(name),
                None => builder.incomplete(),
            }
            return;
        }
        builder.op(Operation::Explain, Access::Read);
        let mut inner = self.builder();
        self.statement(&mut inner, index, to);
        if analyze {
            builder.absorb(inner);
            return;
        }
        // MariaDB refuses to explain a data-modifying statement in a READ
        // ONLY transaction: it counts as a write.
        if !inner.tables_written.is_empty()
            || inner.access > Access::Read
            || !inner.unknown_functions.is_empty()
        {
            builder.raise(Access::Write);
        }
        builder.tables_read.extend(inner.tables_read);
        builder.tables_read.extend(inner.tables_written);
        builder.functions.extend(inner.functions);
        builder.unknown_functions.extend(inner.unknown_functions);
        builder.complete &= inner.complete;
    }

    /// `LOCK TABLE[S] name [[AS] alias] {READ [LOCAL] | [LOW_PRIORITY]
    /// WRITE}, …`: every locked table is reported as written.
    fn mysql_lock(&self, builder: &mut Builder, from: usize, to: usize) {
        if !self.is_one_of(from, &["table", "tables"]) {
            // LOCK INSTANCE FOR BACKUP.
            builder.op(Operation::Lock, Access::Admin);
            return;
        }
        builder.op(Operation::Lock, Access::Write);
        let mut index = from + 1;
        loop {
            let Some((name, after)) = self.qualified_name(index) else {
                builder.incomplete();
                return;
            };
            builder.write_table(name);
            index = after;
            while index < to && self.kind(index) != Some(TokenKind::Comma) {
                index += 1;
            }
            if index >= to {
                return;
            }
            index += 1;
        }
    }

    /// `RENAME TABLE a TO b, c TO d`: all four are written.
    fn mysql_rename(&self, builder: &mut Builder, from: usize, to: usize) {
        let mut index = from;
        while index < to {
            let Some((name, after)) = self.qualified_name(index) else {
                builder.incomplete();
                return;
            };
            builder.write_table(name);
            index = after;
            if self.kw(index, "to") || self.kind(index) == Some(TokenKind::Comma) {
                index += 1;
            } else {
                break;
            }
        }
        if index != to {
            builder.incomplete();
        }
    }

    /// Skips `OR REPLACE`, `DEFINER = user`, `SQL SECURITY …`, `ALGORITHM =
    /// …` and the like before the object word of CREATE/ALTER. Returns the
    /// index of the object word and whether a DEFINER clause was seen.
    fn mysql_skip_create_options(&self, from: usize, to: usize) -> (usize, bool) {
        let mut index = from;
        let mut definer = false;
        while index < to {
            if self.kw(index, "or") && self.kw(index + 1, "replace") {
                index += 2;
            } else if self.is_one_of(index, &["definer", "algorithm"])
                && self.kind(index + 1) == Some(TokenKind::Operator)
            {
                definer |= self.kw(index, "definer");
                index += 2;
                // `user`, `'user'@'host'`, `user@host`, CURRENT_USER[()].
                index += 1;
                while matches!(
                    self.kind(index),
                    Some(TokenKind::Variable | TokenKind::String)
                ) || (self.kind(index) == Some(TokenKind::Other) && self.text(index) == "@")
                {
                    index += 1;
                }
                if self.kind(index) == Some(TokenKind::LParen)
                    && self.kind(index + 1) == Some(TokenKind::RParen)
                {
                    index += 2;
                }
            } else if self.kw(index, "sql") && self.kw(index + 1, "security") {
                index += 3;
            } else if self.is_one_of(
                index,
                &[
                    "temporary",
                    "aggregate",
                    "unique",
                    "fulltext",
                    "spatial",
                    "online",
                    "offline",
                    "ignore",
                ],
            ) {
                index += 1;
            } else {
                break;
            }
        }
        (index, definer)
    }

    /// `CREATE …`.
    fn mysql_create(&self, builder: &mut Builder, from: usize, to: usize) {
        let (index, definer) = self.mysql_skip_create_options(from, to);
        let mut buffer = [0u8; 32];
        let object = self.word(index, &mut buffer).unwrap_or("").to_string();
        let next = self.skip_if_exists(index + 1);
        // A DEFINER other than the caller runs stored code with someone
        // else's privileges.
        let base = if definer {
            Access::Admin
        } else {
            Access::Write
        };
        match object.as_str() {
            "table" => {
                builder.op(Operation::Create, base);
                let Some((name, after)) = self.qualified_name(next) else {
                    builder.incomplete();
                    return;
                };
                builder.write_table(name);
                if self.kw(after, "like") {
                    if let Some((source, _)) = self.qualified_name(after + 1) {
                        builder.read_table(source);
                    }
                    return;
                }
                // `CREATE TABLE t [(…)] [options] [IGNORE|REPLACE] [AS]
                // SELECT …`: the query runs now.
                let query = self.find_word(after, to, "select").or_else(|| {
                    self.find_word(after, to, "with")
                        .filter(|at| self.kw(at.saturating_sub(1), "as"))
                });
                match query {
                    Some(query) => {
                        self.walk(builder, after, query, Mode::DDL);
                        self.statement(builder, query, to);
                    }
                    None => {
                        self.walk(builder, after, to, Mode::DDL);
                    }
                }
            }
            "view" => {
                builder.op(Operation::Create, base);
                match self.qualified_name(next) {
                    // A view's query is stored, not run now.
                    Some((name, after)) => {
                        builder.write_table(name);
                        self.walk(builder, after, to, Mode::DDL);
                    }
                    None => builder.incomplete(),
                }
            }
            "index" => {
                builder.op(Operation::Create, Access::Write);
                let Some(on) = self.find_word(next, to, "on") else {
                    builder.incomplete();
                    return;
                };
                match self.qualified_name(on + 1) {
                    Some((name, _)) => builder.write_table(name),
                    None => builder.incomplete(),
                }
            }
            "sequence" => {
                builder.op(Operation::Create, Access::Write);
                match self.qualified_name(next) {
                    Some((name, _)) => builder.write_table(name),
                    None => builder.incomplete(),
                }
            }
            "database" | "schema" => builder.op(Operation::Create, Access::Write),
            "procedure" | "function" | "trigger" | "event" | "package" => {
                builder.op(Operation::Create, base);
                // `CREATE FUNCTION f RETURNS … SONAME 'lib.so'` loads a
                // shared library into the server.
                if self.find_word(next, to, "soname").is_some() {
                    builder.raise(Access::Admin);
                }
                if object == "trigger" {
                    if let Some(on) = self.find_word(next, to, "on") {
                        if let Some((name, _)) = self.qualified_name(on + 1) {
                            builder.write_table(name);
                        }
                    }
                }
                // A body with `;` inside was split by counting blocks:
                // never trusted as complete.
                let has_body = self
                    .tokens
                    .get(from..to)
                    .is_some_and(|tokens| tokens.iter().any(|t| t.kind == TokenKind::Semicolon));
                if has_body {
                    builder.incomplete();
                }
            }
            "user" | "role" | "server" | "tablespace" | "logfile" => {
                builder.op(Operation::Create, Access::Admin)
            }
            _ => builder.op(Operation::Unknown, Access::Write),
        }
    }

    /// `ALTER …`.
    fn mysql_alter(&self, builder: &mut Builder, from: usize, to: usize) {
        let (index, definer) = self.mysql_skip_create_options(from, to);
        let mut buffer = [0u8; 32];
        let object = self.word(index, &mut buffer).unwrap_or("").to_string();
        let next = self.skip_if_exists(index + 1);
        let base = if definer {
            Access::Admin
        } else {
            Access::Write
        };
        match object.as_str() {
            "table" | "view" | "sequence" => {
                builder.op(Operation::Alter, base);
                match self.qualified_name(next) {
                    Some((name, after)) => {
                        builder.write_table(name);
                        self.walk(builder, after, to, Mode::DDL);
                    }
                    None => builder.incomplete(),
                }
            }
            "database" | "schema" | "procedure" | "function" | "event" => {
                builder.op(Operation::Alter, base)
            }
            "user" | "role" | "server" | "instance" | "tablespace" | "logfile" => {
                builder.op(Operation::Alter, Access::Admin)
            }
            _ => builder.op(Operation::Unknown, Access::Write),
        }
    }

    /// `DROP …`.
    fn mysql_drop(&self, builder: &mut Builder, from: usize, to: usize) {
        let mut index = from;
        if self.kw(index, "temporary") {
            index += 1;
        }
        let mut buffer = [0u8; 32];
        let object = self.word(index, &mut buffer).unwrap_or("").to_string();
        let next = self.skip_if_exists(index + 1);
        match object.as_str() {
            "table" | "tables" | "view" | "sequence" => {
                builder.op(Operation::Drop, Access::Write);
                self.name_list(builder, next, to, true);
            }
            "index" => {
                builder.op(Operation::Drop, Access::Write);
                let table = self
                    .find_word(next, to, "on")
                    .and_then(|on| self.qualified_name(on + 1));
                match table {
                    Some((name, _)) => builder.write_table(name),
                    None => builder.incomplete(),
                }
            }
            "trigger" | "procedure" | "function" | "event" | "database" | "schema" | "package" => {
                builder.op(Operation::Drop, Access::Write)
            }
            "prepare" => builder.op(Operation::Other, Access::Read),
            "user" | "role" | "server" | "tablespace" | "logfile" => {
                builder.op(Operation::Drop, Access::Admin)
            }
            _ => builder.op(Operation::Unknown, Access::Write),
        }
    }

    /// The text of a plain `'…'` string token, unquoted, when the reading
    /// does not depend on `sql_mode` (no backslash) and it is not a
    /// `"…"` string (an identifier under ANSI_QUOTES).
    pub(super) fn mysql_plain_string(&self, index: usize) -> Option<String> {
        if self.kind(index) != Some(TokenKind::String) {
            return None;
        }
        let text = self.text(index);
        let inner = text.strip_prefix('\'')?.strip_suffix('\'')?;
        if inner.contains('\\') {
            return None;
        }
        Some(inner.replace("''", "'"))
    }

    /// `PREPARE name FROM 'text'`: the name, the text and its
    /// classification (one statement). `FROM @var` and anything else the
    /// classifier cannot read give `None`.
    fn mysql_prepared_body(
        &self,
        from: usize,
        to: usize,
    ) -> Option<(String, String, StatementClass)> {
        let name = self.mysql_ident(from)?;
        if !self.kw(from + 1, "from") || from + 3 != to {
            return None;
        }
        let body = self.mysql_plain_string(from + 2)?;
        let class = self.mysql_nested_text(&body)?;
        Some((name, body, class))
    }

    /// The classification of statement text given as a string (`PREPARE …
    /// FROM '…'`, `EXECUTE IMMEDIATE '…'`): exactly one statement, and not
    /// itself a PREPARE (the server refuses those; bounding the recursion).
    fn mysql_nested_text(&self, body: &str) -> Option<StatementClass> {
        if self.depth.get() > super::MAX_NESTING {
            return None;
        }
        let mut statements = crate::mysql::classify_mysql(body, &NoPrepared);
        if statements.len() != 1 {
            return None;
        }
        let class = statements.pop()?;
        if class.operations.contains(&Operation::Prepare) {
            return None;
        }
        Some(class)
    }

    /// `PREPARE name FROM 'text'`: what a session remembers.
    pub(super) fn mysql_prepared_definition(&self) -> Option<(String, String, StatementClass)> {
        if !self.kw(0, "prepare") {
            return None;
        }
        self.mysql_prepared_body(1, self.tokens.len())
    }

    /// `EXECUTE name [USING @a, …]` through the session's prepared
    /// statements; MariaDB's `EXECUTE IMMEDIATE 'text'` classifies the
    /// text.
    fn mysql_execute(&self, builder: &mut Builder, from: usize, to: usize) {
        builder.op(Operation::Execute, Access::Read);
        if self.kw(from, "immediate") {
            let class = if from + 2 == to {
                self.mysql_plain_string(from + 1)
                    .and_then(|body| self.mysql_nested_text(&body))
            } else {
                None
            };
            match class {
                Some(class) => builder.absorb_class(&class),
                None => builder.incomplete(),
            }
            return;
        }
        let Some(name) = self.mysql_ident(from) else {
            builder.incomplete();
            return;
        };
        match self.prepared.prepared(&name) {
            Some(class) => builder.absorb_class(class),
            None => builder.incomplete(),
        }
        if self.kw(from + 1, "using") {
            self.walk(builder, from + 2, to, Mode::QUERY);
        } else if from + 1 != to {
            builder.incomplete();
        }
    }

    /// The name of a user variable token (`@a`, `@'a'`), lowercased; `None`
    /// for system variables.
    fn user_variable_name(&self, index: usize) -> Option<String> {
        if self.kind(index) != Some(TokenKind::Variable) {
            return None;
        }
        let name = self.text(index).strip_prefix('@')?;
        if name.starts_with('@') {
            return None;
        }
        let unquoted = match name.get(..1) {
            Some(quote @ ("'" | "\"" | "`")) => name
                .get(1..name.len().saturating_sub(1))?
                .replace(&format!("{quote}{quote}"), quote),
            _ => name.to_string(),
        };
        Some(unquoted.to_lowercase())
    }

    /// The client file a `LOAD DATA|XML [LOW_PRIORITY|CONCURRENT] LOCAL
    /// INFILE 'name' …` names, when the name is a plain single-quoted
    /// string without backslashes or quotes inside: the one form whose
    /// name reads the same under every `sql_mode`, and so the name the
    /// server will ask the client for. Any other form gives `None`, and a
    /// gateway then lets the server read no file.
    pub(crate) fn mysql_local_infile_name(&self) -> Option<String> {
        if !self.kw(0, "load") || !self.is_one_of(1, &["data", "xml"]) {
            return None;
        }
        let mut index = 2;
        while self.is_one_of(index, &["low_priority", "concurrent"]) {
            index += 1;
        }
        if !self.kw(index, "local")
            || !self.kw(index + 1, "infile")
            || self.kind(index + 2) != Some(TokenKind::String)
        {
            return None;
        }
        let inner = self
            .text(index + 2)
            .strip_prefix('\'')?
            .strip_suffix('\'')?;
        if inner.is_empty() || inner.contains(['\\', '\'']) {
            return None;
        }
        Some(inner.to_owned())
    }

    /// What this MySQL statement does to the session: prepared statements,
    /// the current database, user variables.
    pub(crate) fn mysql_session_effects(&self) -> Vec<SessionEffect> {
        let mut effects = Vec::new();
        let mut buffer = [0u8; 32];
        match self.word(0, &mut buffer) {
            Some("prepare") => effects.push(match self.mysql_ident(1) {
                Some(name) => SessionEffect::Prepare(name),
                None => SessionEffect::DeallocateAll,
            }),
            Some("deallocate" | "drop") if self.kw(1, "prepare") => {
                effects.push(match self.mysql_ident(2) {
                    Some(name) => SessionEffect::Deallocate(name),
                    None => SessionEffect::DeallocateAll,
                })
            }
            Some("execute") if !self.kw(1, "immediate") => {
                if let Some(name) = self.mysql_ident(1) {
                    effects.push(SessionEffect::Execute(name));
                }
            }
            Some("use") => {
                if let Some(name) = self.mysql_ident(1) {
                    effects.push(SessionEffect::UseDatabase(name));
                }
            }
            _ => {}
        }
        let set = self.kw(0, "set");
        let mut into_list = false;
        for index in 0..self.tokens.len() {
            if self.kw(index, "into") {
                into_list = true;
                continue;
            }
            let Some(name) = self.user_variable_name(index) else {
                if self.kind(index) != Some(TokenKind::Comma) {
                    into_list = false;
                }
                continue;
            };
            let previous_starts_item = index > 0
                && (self.kw(index - 1, "set")
                    || self.kind(index - 1) == Some(TokenKind::Comma)
                    || self.is_one_of(index - 1, &["session", "local"]));
            let assigned = (self.kind(index + 1) == Some(TokenKind::Operator)
                && self.text(index + 1) == ":=")
                || (set
                    && previous_starts_item
                    && self.kind(index + 1) == Some(TokenKind::Operator)
                    && self.text(index + 1) == "=")
                || into_list;
            if assigned {
                effects.push(SessionEffect::SetUserVariable(name));
            }
        }
        effects
    }
}
