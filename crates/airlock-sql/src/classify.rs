//! The token-level classifier: one statement's tokens → [`StatementClass`].
//!
//! It owns the decision of what a statement does. It dispatches on the
//! leading keyword(s), then walks *every* token of the statement looking for
//! what the leading keyword does not tell: data-modifying statements nested in
//! parentheses (CTE bodies), function calls (an identifier followed by `(`),
//! row locks (`FOR UPDATE`), `SELECT … INTO`, and the tables in `FROM` lists.
//!
//! It serves both dialects: a [`Statement`] knows its [`Dialect`], the
//! walk switches on it for MySQL's spellings, and the MySQL-only statements
//! live in `classify/mysql.rs` and `classify/mysql_set.rs`.
//!
//! Rule of the module: when a construct is not understood, the statement is
//! marked incomplete (`complete: false`) rather than guessed; an incomplete
//! statement never has `read` access. Every token access is bounds-checked
//! (`get`), and recursion into nested statements is bounded by
//! [`MAX_NESTING`], so hostile input cannot panic or overflow the stack.

mod mysql;
mod mysql_charset;
mod mysql_set;
mod predicate;

pub use mysql_charset::{
    is_ascii_safe_name as is_ascii_safe_character_set, CharacterSetChange,
    MYSQL_ASCII_SAFE_CHARACTER_SETS,
};
pub use mysql_set::{MYSQL_PRIVILEGED_SETTINGS, MYSQL_PRIVILEGED_SETTING_PREFIXES};

use crate::functions::{function_effect, mysql_function_effect};
use crate::lexer::{Token, TokenKind};
use crate::{Dialect, PreparedLookup, SessionEffect};
use airlock_types::{Access, Operation, StatementClass};

/// Maximum nesting of statements inside statements (CTE bodies, EXPLAIN,
/// COPY queries …). Deeper input is marked incomplete.
const MAX_NESTING: usize = 32;

/// PostgreSQL truncates identifiers to `NAMEDATALEN - 1` bytes.
const MAX_IDENTIFIER_BYTES: usize = 63;

/// Settings whose change alters what later statements are allowed to do, or
/// how the classifier must read them. Changing them is `admin`.
pub const PRIVILEGED_SETTINGS: &[&str] = &[
    // Who the session acts as.
    "role",
    "session_authorization",
    // Read-only guards.
    "default_transaction_read_only",
    "transaction_read_only",
    // Trigger and row-level-security bypasses.
    "session_replication_role",
    "row_security",
    "event_triggers",
    // Which function or table an unqualified name resolves to.
    "search_path",
    // How statement text is lexed (string escapes, multibyte encodings).
    "standard_conforming_strings",
    "backslash_quote",
    "client_encoding",
    // Code loaded into the backend.
    "local_preload_libraries",
    "session_preload_libraries",
];

/// Words that may be followed by `(` without being a function call.
const NOT_FUNCTIONS: &[&str] = &[
    "at",
    "case",
    "collate",
    "cycle",
    "end",
    "escape",
    "identity",
    "ilike",
    "inherits",
    "null",
    "nulls",
    "of",
    "options",
    "ordinality",
    "return",
    "returns",
    "search",
    "similar",
    "to",
    "zone",
    "all",
    "and",
    "any",
    "array",
    "as",
    "between",
    "by",
    "check",
    "columns",
    "conflict",
    "cube",
    "default",
    "delete",
    "distinct",
    "do",
    "else",
    "enum",
    "except",
    "exclude",
    "exists",
    "filter",
    "first",
    "for",
    "foreign",
    "from",
    "grouping",
    "having",
    "in",
    "include",
    "insert",
    "intersect",
    "into",
    "is",
    "join",
    "key",
    "lateral",
    "like",
    "limit",
    "materialized",
    "merge",
    "next",
    "not",
    "offset",
    "on",
    "only",
    "or",
    "over",
    "partition",
    "primary",
    "range",
    "references",
    "repeatable",
    "returning",
    "rollup",
    "row",
    "rows",
    "select",
    "set",
    "sets",
    "some",
    "table",
    "then",
    "union",
    "unique",
    "update",
    "using",
    "values",
    "when",
    "where",
    "window",
    "with",
    "within",
];

/// Type names that take modifiers in parentheses (`varchar(10)`).
const TYPE_NAMES: &[&str] = &[
    "bit",
    "char",
    "character",
    "dec",
    "decimal",
    "float",
    "interval",
    "nchar",
    "numeric",
    "time",
    "timestamp",
    "timestamptz",
    "timetz",
    "varbit",
    "varchar",
    "varying",
];

/// Words that end a `FROM` item's optional alias.
const NOT_ALIASES: &[&str] = &[
    "cross",
    "do",
    "else",
    "end",
    "except",
    "fetch",
    "for",
    "from",
    "full",
    "group",
    "having",
    "inner",
    "intersect",
    "into",
    "join",
    "left",
    "limit",
    "natural",
    "offset",
    "on",
    "order",
    "returning",
    "right",
    "select",
    "set",
    "tablesample",
    "then",
    "union",
    "using",
    "values",
    "when",
    "where",
    "window",
    "with",
];

/// Words that end a `FROM` list at their nesting level.
const FROM_TERMINATORS: &[&str] = &[
    "except",
    "fetch",
    "for",
    "group",
    "having",
    "intersect",
    "limit",
    "offset",
    "order",
    "returning",
    "select",
    "union",
    "where",
    "window",
    "into",
    "set",
    "values",
];

/// The accumulating classification of one statement.
#[derive(Debug, Clone)]
pub(crate) struct Builder {
    operations: Vec<Operation>,
    access: Access,
    tables_read: Vec<String>,
    tables_written: Vec<String>,
    functions: Vec<String>,
    unknown_functions: Vec<String>,
    has_where: Option<bool>,
    complete: bool,
    cte_names: Vec<String>,
    /// Look functions up in the MySQL lists.
    mysql: bool,
}

impl Builder {
    pub(crate) fn for_dialect(dialect: Dialect) -> Self {
        Self {
            mysql: dialect == Dialect::Mysql,
            operations: Vec::new(),
            access: Access::Read,
            tables_read: Vec::new(),
            tables_written: Vec::new(),
            functions: Vec::new(),
            unknown_functions: Vec::new(),
            has_where: None,
            complete: true,
            cte_names: Vec::new(),
        }
    }

    fn op(&mut self, operation: Operation, access: Access) {
        self.operations.push(operation);
        self.raise(access);
    }

    fn raise(&mut self, access: Access) {
        self.access = self.access.max(access);
    }

    fn incomplete(&mut self) {
        self.complete = false;
    }

    fn read_table(&mut self, name: String) {
        if !name.contains('.') && self.cte_names.contains(&name) {
            return;
        }
        self.tables_read.push(name);
    }

    fn write_table(&mut self, name: String) {
        self.tables_written.push(name);
    }

    fn call(&mut self, name: String) {
        let effect = if self.mysql {
            mysql_function_effect(&name)
        } else {
            function_effect(&name)
        };
        match effect {
            Some(effect) => self.raise(effect.access()),
            None => {
                self.raise(Access::Write);
                self.unknown_functions.push(name.clone());
            }
        }
        self.functions.push(name);
    }

    fn note_where(&mut self, bounded: bool) {
        self.has_where = Some(self.has_where.unwrap_or(true) && bounded);
    }

    /// Merges everything another builder found into this one.
    fn absorb(&mut self, other: Builder) {
        self.operations.extend(other.operations);
        self.raise(other.access);
        self.tables_read.extend(other.tables_read);
        self.tables_written.extend(other.tables_written);
        self.functions.extend(other.functions);
        self.unknown_functions.extend(other.unknown_functions);
        if let Some(bounded) = other.has_where {
            self.note_where(bounded);
        }
        self.complete &= other.complete;
    }

    fn absorb_class(&mut self, class: &StatementClass) {
        self.operations.extend(class.operations.iter().copied());
        self.raise(class.effective_access());
        self.tables_read.extend(class.tables_read.iter().cloned());
        self.tables_written
            .extend(class.tables_written.iter().cloned());
        self.functions.extend(class.functions.iter().cloned());
        self.unknown_functions
            .extend(class.unknown_functions.iter().cloned());
        if let Some(bounded) = class.has_where {
            self.note_where(bounded);
        }
        self.complete &= class.complete;
    }

    pub(crate) fn finish(mut self) -> StatementClass {
        if self.operations.is_empty() {
            self.operations.push(Operation::Unknown);
        }
        if self.operations.contains(&Operation::Unknown) {
            self.complete = false;
        }
        for list in [
            &mut self.operations as &mut dyn SortDedup,
            &mut self.tables_read,
            &mut self.tables_written,
            &mut self.functions,
            &mut self.unknown_functions,
        ] {
            list.sort_dedup();
        }
        if !self.complete && self.access == Access::Read {
            self.access = Access::Write;
        }
        StatementClass {
            operations: self.operations,
            access: Some(self.access),
            tables_read: self.tables_read,
            tables_written: self.tables_written,
            functions: self.functions,
            unknown_functions: self.unknown_functions,
            has_where: self.has_where,
            complete: self.complete,
        }
    }
}

trait SortDedup {
    fn sort_dedup(&mut self);
}

impl<T: Ord> SortDedup for Vec<T> {
    fn sort_dedup(&mut self) {
        self.sort();
        self.dedup();
    }
}

/// What the generic token walk looks for.
#[derive(Debug, Clone, Copy, Default)]
struct Mode {
    /// The tokens are (part of) a query or DML statement that runs now:
    /// nested DML, row locks and misplaced DML keywords count.
    query: bool,
    /// `USING` at the top level starts a table list (DELETE, MERGE).
    using_is_from: bool,
    /// Inside MERGE: `THEN INSERT|UPDATE|DELETE` are its actions.
    merge: bool,
    /// The tokens start with a table list, as after `FROM` (MySQL's
    /// multi-table UPDATE and DELETE).
    table_list: bool,
}

impl Mode {
    const QUERY: Mode = Mode {
        query: true,
        using_is_from: false,
        merge: false,
        table_list: false,
    };
    const DDL: Mode = Mode {
        query: false,
        using_is_from: false,
        merge: false,
        table_list: false,
    };
}

/// Per-parenthesis state of the walk.
#[derive(Debug, Clone, Copy, Default)]
struct Level {
    in_from: bool,
    expect_table: bool,
    expect_alias: bool,
    function_arguments: bool,
    from_item: bool,
}

/// The generic walk's state across tokens.
struct Walk {
    summary: WalkSummary,
    /// One level per open parenthesis.
    levels: Vec<Level>,
    /// `Some(from_item)` when the next `(` opens a function's arguments.
    pending_function: Option<bool>,
    pending_from_item: bool,
}

/// What the walk saw at its top level.
#[derive(Debug, Clone, Copy, Default)]
struct WalkSummary {
    /// The index of the top-level `WHERE` keyword, if any.
    where_at: Option<usize>,
}

impl WalkSummary {
    /// Whether the top-level WHERE (if any) bounds the statement: see
    /// [`predicate`].
    fn bounded(&self, statement: &Statement<'_>, to: usize) -> bool {
        self.where_at
            .is_some_and(|at| statement.where_bounds(at + 1, to))
    }
}

/// One statement being classified.
pub(crate) struct Statement<'a> {
    sql: &'a str,
    tokens: &'a [Token],
    matching: Vec<usize>,
    prepared: &'a dyn PreparedLookup,
    depth: std::cell::Cell<usize>,
    dialect: Dialect,
}

const NO_MATCH: usize = usize::MAX;

impl<'a> Statement<'a> {
    pub(crate) fn new(sql: &'a str, tokens: &'a [Token], prepared: &'a dyn PreparedLookup) -> Self {
        Self::with_dialect(sql, tokens, prepared, Dialect::Postgres)
    }

    /// A statement of `dialect`.
    pub(crate) fn with_dialect(
        sql: &'a str,
        tokens: &'a [Token],
        prepared: &'a dyn PreparedLookup,
        dialect: Dialect,
    ) -> Self {
        let mut matching = vec![NO_MATCH; tokens.len()];
        let mut stack = Vec::new();
        for (index, token) in tokens.iter().enumerate() {
            match token.kind {
                TokenKind::LParen => stack.push(index),
                TokenKind::RParen => {
                    if let Some(open) = stack.pop() {
                        if let Some(slot) = matching.get_mut(open) {
                            *slot = index;
                        }
                    }
                }
                _ => {}
            }
        }
        Self {
            sql,
            tokens,
            matching,
            prepared,
            depth: std::cell::Cell::new(0),
            dialect,
        }
    }

    /// A fresh builder for this statement's dialect.
    fn builder(&self) -> Builder {
        Builder::for_dialect(self.dialect)
    }

    fn is_mysql(&self) -> bool {
        self.dialect == Dialect::Mysql
    }

    /// Classifies the whole statement.
    pub(crate) fn classify(&self) -> StatementClass {
        let mut builder = self.builder();
        self.check_tokens(&mut builder);
        self.statement(&mut builder, 0, self.tokens.len());
        builder.finish()
    }

    /// For `PREPARE name … AS body`: the name, the body's text and the
    /// body's classification.
    pub(crate) fn prepared_definition(&self) -> Option<(String, String, StatementClass)> {
        if self.is_mysql() {
            return self.mysql_prepared_definition();
        }
        if !self.kw(0, "prepare") || self.kw(1, "transaction") {
            return None;
        }
        let name = self.ident(1)?;
        let body = self.find_word(2, self.tokens.len(), "as")? + 1;
        let mut builder = self.builder();
        self.check_tokens(&mut builder);
        self.statement(&mut builder, body, self.tokens.len());
        let start = self.token(body).map(|token| token.start)?;
        let end = self.tokens.last().map(|token| token.end)?;
        let text = self.sql.get(start..end)?.to_string();
        Some((name, text, builder.finish()))
    }

    /// What this statement does to the session's named objects, if
    /// anything: `DEALLOCATE`, `DISCARD`, `CLOSE`, `DECLARE … CURSOR`,
    /// `PREPARE`. A name that cannot be read affects every name.
    pub(crate) fn session_effect(&self) -> Option<SessionEffect> {
        if self.is_mysql() {
            return self.mysql_session_effects().into_iter().next();
        }
        let mut buffer = [0u8; 32];
        match self.word(0, &mut buffer)? {
            "deallocate" => {
                let at = if self.kw(1, "prepare") { 2 } else { 1 };
                if self.kw(at, "all") {
                    return Some(SessionEffect::DeallocateAll);
                }
                Some(match self.ident(at) {
                    Some(name) => SessionEffect::Deallocate(name),
                    None => SessionEffect::DeallocateAll,
                })
            }
            "discard" => self.kw(1, "all").then_some(SessionEffect::DiscardAll),
            "close" => {
                if self.kw(1, "all") {
                    return Some(SessionEffect::CloseAll);
                }
                Some(match self.ident(1) {
                    Some(name) => SessionEffect::Close(name),
                    None => SessionEffect::CloseAll,
                })
            }
            "declare" => Some(match self.ident(1) {
                Some(name) => SessionEffect::Declare(name),
                None => SessionEffect::CloseAll,
            }),
            "execute" => self.ident(1).map(SessionEffect::Execute),
            "prepare" if !self.kw(1, "transaction") => Some(match self.ident(1) {
                Some(name) => SessionEffect::Prepare(name),
                None => SessionEffect::DeallocateAll,
            }),
            _ => None,
        }
    }

    /// Lexical problems anywhere in the statement make it incomplete.
    fn check_tokens(&self, builder: &mut Builder) {
        if self.is_mysql()
            && self.tokens.iter().any(|t| t.kind == TokenKind::Semicolon)
            && !crate::mysql_split::blocks_balanced(self.sql, self.tokens)
        {
            // Blocks that do not balance: the statement may run on into
            // the ones after it.
            builder.op(Operation::Unknown, Access::Write);
        }
        let mut depth = 0i64;
        for token in self.tokens {
            match token.kind {
                TokenKind::Unterminated | TokenKind::AmbiguousString => builder.incomplete(),
                TokenKind::Ambiguous => {
                    // The server's reading is unknown: it may run anything.
                    builder.op(Operation::Unknown, Access::Write);
                    builder.incomplete();
                }
                // A `;` inside a MySQL statement: the splitter counted
                // blocks of a compound statement. Never trusted, so that a
                // miscount cannot hide the next statement.
                TokenKind::Semicolon if self.is_mysql() => builder.incomplete(),
                TokenKind::LParen => depth += 1,
                TokenKind::RParen => {
                    depth -= 1;
                    if depth < 0 {
                        builder.incomplete();
                    }
                }
                _ => {}
            }
        }
        if depth != 0 {
            builder.incomplete();
        }
    }

    // ----- token helpers -------------------------------------------------

    fn token(&self, index: usize) -> Option<&Token> {
        self.tokens.get(index)
    }

    fn kind(&self, index: usize) -> Option<TokenKind> {
        self.token(index).map(|token| token.kind)
    }

    fn text(&self, index: usize) -> &'a str {
        self.token(index)
            .and_then(|token| self.sql.get(token.start..token.end))
            .unwrap_or("")
    }

    /// True when token `index` is the keyword `keyword` (lowercase).
    fn kw(&self, index: usize, keyword: &str) -> bool {
        self.kind(index) == Some(TokenKind::Word) && self.text(index).eq_ignore_ascii_case(keyword)
    }

    /// The token as a lowercase keyword, if it is a short unquoted word.
    fn word<'b>(&self, index: usize, buffer: &'b mut [u8; 32]) -> Option<&'b str> {
        if self.kind(index) != Some(TokenKind::Word) {
            return None;
        }
        let text = self.text(index).as_bytes();
        let target = buffer.get_mut(..text.len())?;
        for (slot, byte) in target.iter_mut().zip(text) {
            *slot = byte.to_ascii_lowercase();
        }
        std::str::from_utf8(target).ok()
    }

    fn is_one_of(&self, index: usize, words: &[&str]) -> bool {
        let mut buffer = [0u8; 32];
        self.word(index, &mut buffer)
            .is_some_and(|word| words.contains(&word))
    }

    fn is_name_token(&self, index: usize) -> bool {
        matches!(
            self.kind(index),
            Some(TokenKind::Word | TokenKind::QuotedIdent | TokenKind::UnicodeQuotedIdent)
        )
    }

    /// The identifier value of one token: unquoted words are lowercased,
    /// quoted identifiers unescaped; both truncated like PostgreSQL does.
    fn ident(&self, index: usize) -> Option<String> {
        let text = self.text(index);
        if self.is_mysql() {
            return self.mysql_ident(index);
        }
        let mut value = match self.kind(index)? {
            TokenKind::Word => text.to_ascii_lowercase(),
            TokenKind::QuotedIdent => text
                .get(1..text.len().saturating_sub(1))
                .unwrap_or("")
                .replace("\"\"", "\""),
            _ => return None,
        };
        if value.len() > MAX_IDENTIFIER_BYTES {
            let mut cut = MAX_IDENTIFIER_BYTES;
            while !value.is_char_boundary(cut) {
                cut -= 1;
            }
            value.truncate(cut);
        }
        Some(value)
    }

    /// A possibly qualified name starting at `index`. Returns the name and
    /// the index after it. `None` when a part is a `U&"…"` identifier (not
    /// decoded): callers that need the name mark the statement incomplete.
    fn qualified_name(&self, index: usize) -> Option<(String, usize)> {
        let mut name = String::new();
        let mut position = index;
        loop {
            let part = self.ident(position)?;
            name.push_str(&part);
            position += 1;
            if self.kind(position) == Some(TokenKind::Dot) && self.is_name_token(position + 1) {
                name.push('.');
                position += 1;
            } else {
                return Some((name, position));
            }
        }
    }

    /// Where the qualified name starting at `index` ends, without building
    /// it (the walk checks every word for a following `(`).
    fn qualified_name_end(&self, index: usize) -> Option<usize> {
        let mut position = index;
        loop {
            if !matches!(
                self.kind(position),
                Some(TokenKind::Word | TokenKind::QuotedIdent)
            ) {
                return None;
            }
            position += 1;
            if self.kind(position) == Some(TokenKind::Dot) && self.is_name_token(position + 1) {
                position += 1;
            } else {
                return Some(position);
            }
        }
    }

    /// The index of the `)` matching the `(` at `index`, clamped to `end`.
    fn close_of(&self, index: usize, end: usize) -> usize {
        match self.matching.get(index) {
            Some(&close) if close != NO_MATCH && close < end => close,
            _ => end,
        }
    }

    /// The first top-level (relative to `from`) occurrence of `keyword`.
    fn find_word(&self, from: usize, to: usize, keyword: &str) -> Option<usize> {
        let mut index = from;
        while index < to {
            if self.kind(index) == Some(TokenKind::LParen) {
                index = self.close_of(index, to) + 1;
                continue;
            }
            if self.kw(index, keyword) {
                return Some(index);
            }
            index += 1;
        }
        None
    }

    /// Skips `IF [NOT] EXISTS`.
    fn skip_if_exists(&self, mut index: usize) -> usize {
        if self.kw(index, "if") {
            index += 1;
            if self.kw(index, "not") {
                index += 1;
            }
            if self.kw(index, "exists") {
                index += 1;
            }
        }
        index
    }

    /// Drops a trailing `WITH [NO] DATA` from a CREATE … AS query range.
    fn strip_with_data(&self, from: usize, to: usize) -> usize {
        if to >= from + 2 && self.kw(to - 1, "data") {
            if self.kw(to - 2, "with") {
                return to - 2;
            }
            if to >= from + 3 && self.kw(to - 2, "no") && self.kw(to - 3, "with") {
                return to - 3;
            }
        }
        to
    }

    // ----- statements ----------------------------------------------------

    /// Classifies the statement in tokens `from..to` into `builder`.
    fn statement(&self, builder: &mut Builder, from: usize, to: usize) {
        let depth = self.depth.get();
        if depth > MAX_NESTING {
            builder.incomplete();
            return;
        }
        self.depth.set(depth + 1);
        self.statement_inner(builder, from, to);
        self.depth.set(depth);
    }

    fn statement_inner(&self, builder: &mut Builder, from: usize, to: usize) {
        if self.is_mysql() {
            self.mysql_statement(builder, from, to);
            return;
        }
        if from >= to {
            builder.op(Operation::Unknown, Access::Write);
            return;
        }
        if self.kind(from) == Some(TokenKind::LParen) {
            builder.op(Operation::Select, Access::Read);
            self.walk(builder, from, to, Mode::QUERY);
            return;
        }
        let mut buffer = [0u8; 32];
        let Some(first) = self.word(from, &mut buffer) else {
            builder.op(Operation::Unknown, Access::Write);
            return;
        };
        let next = from + 1;
        match first {
            "select" | "values" => {
                builder.op(Operation::Select, Access::Read);
                self.walk(builder, next, to, Mode::QUERY);
            }
            "table" => self.table_statement(builder, next, to),
            "with" => self.with_statement(builder, next, to),
            "insert" => self.insert(builder, next, to),
            "update" => self.update(builder, next, to),
            "delete" => self.delete(builder, next, to),
            "merge" => self.merge(builder, next, to),
            "explain" => self.explain(builder, next, to),
            "copy" => self.copy(builder, next, to),
            "do" => {
                // A DO body is arbitrary procedural code: never sure.
                builder.op(Operation::Do, Access::Write);
                builder.incomplete();
            }
            "call" => self.call(builder, next, to),
            "prepare" => self.prepare(builder, next, to),
            "execute" => self.execute(builder, next, to),
            "deallocate" | "close" => builder.op(Operation::Other, Access::Read),
            "discard" => builder.op(Operation::Other, Access::Write),
            "load" => builder.op(Operation::Other, Access::Admin),
            "set" => self.set(builder, next),
            "reset" => self.reset(builder, next),
            "show" => builder.op(Operation::Show, Access::Read),
            "begin" | "start" | "savepoint" | "release" | "abort" | "end" => {
                builder.op(Operation::Transaction, Access::Read)
            }
            "commit" | "rollback" => {
                // COMMIT PREPARED / ROLLBACK PREPARED finish a transaction
                // prepared earlier, possibly by another session.
                let prepared = self.kw(next, "prepared");
                let access = if prepared {
                    Access::Write
                } else {
                    Access::Read
                };
                builder.op(Operation::Transaction, access);
            }
            "lock" => self.lock(builder, next, to),
            "vacuum" | "analyze" | "analyse" | "reindex" | "cluster" | "checkpoint" => {
                builder.op(Operation::Maintenance, Access::Write)
            }
            "refresh" => self.refresh(builder, next),
            "listen" | "unlisten" => builder.op(Operation::Listen, Access::Read),
            "notify" => builder.op(Operation::Notify, Access::Write),
            "grant" => builder.op(Operation::Grant, Access::Admin),
            "revoke" => builder.op(Operation::Revoke, Access::Admin),
            "create" => self.create(builder, next, to),
            "alter" => self.alter(builder, next, to),
            "drop" => self.drop(builder, next, to),
            "truncate" => self.truncate(builder, next, to),
            "comment" | "security" => builder.op(Operation::Other, Access::Write),
            "reassign" => builder.op(Operation::Alter, Access::Admin),
            "import" => builder.op(Operation::Create, Access::Write),
            "declare" => self.declare(builder, next, to),
            "fetch" | "move" => self.fetch(builder, next, to),
            _ => builder.op(Operation::Unknown, Access::Write),
        }
    }

    /// `TABLE [ONLY] name …`: a read of that table.
    fn table_statement(&self, builder: &mut Builder, from: usize, to: usize) {
        builder.op(Operation::Select, Access::Read);
        let mut index = from;
        if self.kw(index, "only") {
            index += 1;
        }
        match self.qualified_name(index) {
            Some((name, after)) => {
                builder.read_table(name);
                self.walk(builder, after, to, Mode::QUERY);
            }
            None => builder.incomplete(),
        }
    }

    /// `CALL proc(…)`: a procedure body is arbitrary code, never sure.
    fn call(&self, builder: &mut Builder, from: usize, to: usize) {
        builder.op(Operation::Call, Access::Write);
        builder.incomplete();
        if let Some((name, after)) = self.qualified_name(from) {
            builder.call(name);
            self.walk(builder, after, to, Mode::QUERY);
        }
    }

    /// `PREPARE name [(types)] AS body` is decided on its body: what it
    /// prepares is what a later EXECUTE (or protocol Bind) runs.
    /// `PREPARE TRANSACTION` is transaction control.
    fn prepare(&self, builder: &mut Builder, from: usize, to: usize) {
        if self.kw(from, "transaction") {
            builder.op(Operation::Transaction, Access::Read);
            return;
        }
        builder.op(Operation::Prepare, Access::Read);
        match self.find_word(from, to, "as") {
            Some(body) if self.ident(from).is_some() => self.statement(builder, body + 1, to),
            _ => builder.incomplete(),
        }
    }

    /// `REFRESH MATERIALIZED VIEW [CONCURRENTLY] name`: writes the view.
    fn refresh(&self, builder: &mut Builder, from: usize) {
        builder.op(Operation::Maintenance, Access::Write);
        let mut index = from;
        while self.is_one_of(index, &["materialized", "view", "concurrently"]) {
            index += 1;
        }
        match self.qualified_name(index) {
            Some((name, _)) => builder.write_table(name),
            None => builder.incomplete(),
        }
    }

    /// `DECLARE name … CURSOR … FOR query`: decided as its query.
    fn declare(&self, builder: &mut Builder, from: usize, to: usize) {
        match self.find_word(from, to, "for") {
            Some(query) if self.find_word(from, query, "cursor").is_some() => {
                self.statement(builder, query + 1, to)
            }
            _ => builder.op(Operation::Unknown, Access::Write),
        }
    }

    /// `FETCH`/`MOVE … cursor`: the cursor's name is the statement's last
    /// token; its rows are what its query reads. An unknown cursor is
    /// never sure.
    fn fetch(&self, builder: &mut Builder, from: usize, to: usize) {
        builder.op(Operation::Select, Access::Read);
        let cursor = to
            .checked_sub(1)
            .filter(|last| *last >= from)
            .and_then(|last| self.ident(last));
        match cursor
            .as_deref()
            .and_then(|name| self.prepared.cursor(name))
        {
            Some(class) => builder.absorb_class(class),
            None => builder.incomplete(),
        }
    }

    /// `WITH [RECURSIVE] name [(cols)] AS [[NOT] MATERIALIZED] (body) …, main`.
    fn with_statement(&self, builder: &mut Builder, from: usize, to: usize) {
        let mut index = from;
        if self.kw(index, "recursive") {
            index += 1;
        }
        loop {
            let Some(name) = self.ident(index) else {
                builder.incomplete();
                return;
            };
            builder.cte_names.push(name);
            index += 1;
            if self.kind(index) == Some(TokenKind::LParen) {
                index = self.close_of(index, to) + 1;
            }
            if !self.kw(index, "as") {
                builder.incomplete();
                return;
            }
            index += 1;
            if self.kw(index, "not") {
                index += 1;
            }
            if self.kw(index, "materialized") {
                index += 1;
            }
            if self.kind(index) != Some(TokenKind::LParen) {
                builder.incomplete();
                return;
            }
            let close = self.close_of(index, to);
            self.statement(builder, index + 1, close);
            index = close + 1;
            // SEARCH … FIRST BY cols SET col, then
            // CYCLE cols SET col [TO v DEFAULT v] USING col.
            if self.kw(index, "search") {
                index = self.find_word(index, to, "set").map_or(to, |set| set + 2);
            }
            if self.kw(index, "cycle") {
                index = self
                    .find_word(index, to, "using")
                    .map_or(to, |using| using + 2);
            }
            if self.kind(index) == Some(TokenKind::Comma) {
                index += 1;
                continue;
            }
            break;
        }
        if index >= to {
            builder.incomplete();
            return;
        }
        self.statement(builder, index, to);
    }

    /// `INSERT INTO name [AS alias] [(cols)] …`.
    fn insert(&self, builder: &mut Builder, from: usize, to: usize) {
        builder.op(Operation::Insert, Access::Write);
        if !self.kw(from, "into") {
            builder.incomplete();
            return;
        }
        let Some((name, mut index)) = self.qualified_name(from + 1) else {
            builder.incomplete();
            return;
        };
        builder.write_table(name);
        if self.kw(index, "as") {
            index += 2;
        }
        if self.kind(index) == Some(TokenKind::LParen)
            && !self.is_one_of(index + 1, &["select", "values", "with", "table"])
            && self.kind(index + 1) != Some(TokenKind::LParen)
        {
            index = self.close_of(index, to) + 1;
        }
        self.walk(builder, index, to, Mode::QUERY);
    }

    /// The target of UPDATE, DELETE FROM and MERGE INTO: `[ONLY] name`,
    /// recorded as written. Returns the index after the name, or marks the
    /// statement incomplete and returns `None`.
    fn write_target(&self, builder: &mut Builder, at: usize) -> Option<usize> {
        let index = if self.kw(at, "only") { at + 1 } else { at };
        let Some((name, index)) = self.qualified_name(index) else {
            builder.incomplete();
            return None;
        };
        builder.write_table(name);
        Some(index)
    }

    /// `UPDATE [ONLY] name [*] [[AS] alias] SET … [FROM …] [WHERE …]`.
    fn update(&self, builder: &mut Builder, from: usize, to: usize) {
        builder.op(Operation::Update, Access::Write);
        let Some(index) = self.write_target(builder, from) else {
            return;
        };
        let summary = self.walk(builder, index, to, Mode::QUERY);
        builder.note_where(summary.bounded(self, to));
    }

    /// `DELETE FROM [ONLY] name [*] [[AS] alias] [USING …] [WHERE …]`.
    fn delete(&self, builder: &mut Builder, from: usize, to: usize) {
        builder.op(Operation::Delete, Access::Write);
        if !self.kw(from, "from") {
            builder.incomplete();
            return;
        }
        let Some(index) = self.write_target(builder, from + 1) else {
            return;
        };
        let summary = self.walk(
            builder,
            index,
            to,
            Mode {
                using_is_from: true,
                ..Mode::QUERY
            },
        );
        builder.note_where(summary.bounded(self, to));
    }

    /// `MERGE INTO [ONLY] name [[AS] alias] USING source ON … WHEN …`.
    fn merge(&self, builder: &mut Builder, from: usize, to: usize) {
        builder.op(Operation::Merge, Access::Write);
        if !self.kw(from, "into") {
            builder.incomplete();
            return;
        }
        let Some(index) = self.write_target(builder, from + 1) else {
            return;
        };
        self.walk(
            builder,
            index,
            to,
            Mode {
                using_is_from: true,
                merge: true,
                ..Mode::QUERY
            },
        );
    }

    /// `EXPLAIN [(options)] | [ANALYZE] [VERBOSE] statement`. Only with
    /// ANALYZE does the inner statement run.
    fn explain(&self, builder: &mut Builder, from: usize, to: usize) {
        builder.op(Operation::Explain, Access::Read);
        let mut index = from;
        let mut analyze = false;
        if self.kind(index) == Some(TokenKind::LParen) {
            let close = self.close_of(index, to);
            let mut option = index + 1;
            while option < close {
                if self.is_one_of(option, &["analyze", "analyse"]) {
                    // `ANALYZE` alone, or with a value that is not false.
                    analyze = !self.is_one_of(option + 1, &["false", "off", "no", "f", "n"])
                        && self.text(option + 1) != "0"
                        && !(self.kind(option + 1) == Some(TokenKind::String)
                            && matches!(
                                self.text(option + 1).to_ascii_lowercase().as_str(),
                                "'false'" | "'off'" | "'no'" | "'0'"
                            ));
                }
                // Advance to the next option.
                while option < close && self.kind(option) != Some(TokenKind::Comma) {
                    option += 1;
                }
                option += 1;
            }
            index = close + 1;
        } else {
            while self.is_one_of(index, &["analyze", "analyse", "verbose"]) {
                if !self.kw(index, "verbose") {
                    analyze = true;
                }
                index += 1;
            }
        }
        let mut inner = self.builder();
        self.statement(&mut inner, index, to);
        if analyze {
            builder.absorb(inner);
            return;
        }
        // Not executed: only planned. Planning can evaluate IMMUTABLE
        // functions with constant arguments; a user function may be falsely
        // declared IMMUTABLE, so unknown functions keep the statement from
        // being read-only. Known side-effecting functions are volatile and
        // never run at plan time.
        builder.tables_read.extend(inner.tables_read);
        builder.tables_read.extend(inner.tables_written);
        builder.functions.extend(inner.functions);
        if !inner.unknown_functions.is_empty() {
            builder.raise(Access::Write);
        }
        builder.unknown_functions.extend(inner.unknown_functions);
        builder.complete &= inner.complete;
    }

    /// `COPY [BINARY] {name [(cols)] | (query)} {FROM|TO} {'file' | PROGRAM
    /// 'cmd' | STDIN | STDOUT} …`.
    fn copy(&self, builder: &mut Builder, from: usize, to: usize) {
        let mut index = from;
        if self.kw(index, "binary") {
            index += 1;
        }
        let mut table = None;
        if self.kind(index) == Some(TokenKind::LParen) {
            let close = self.close_of(index, to);
            self.statement(builder, index + 1, close);
            index = close + 1;
        } else {
            let Some((name, after)) = self.qualified_name(index) else {
                builder.op(Operation::Unknown, Access::Write);
                return;
            };
            table = Some(name);
            index = after;
            if self.kind(index) == Some(TokenKind::LParen) {
                index = self.close_of(index, to) + 1;
            }
        }
        let direction_from = if self.kw(index, "from") {
            true
        } else if self.kw(index, "to") {
            false
        } else {
            builder.op(Operation::Unknown, Access::Write);
            return;
        };
        index += 1;
        let server_side = if self.is_one_of(index, &["stdin", "stdout"]) {
            false
        } else if self.kw(index, "program") || self.kind(index) == Some(TokenKind::String) {
            true
        } else {
            builder.incomplete();
            true
        };
        if direction_from {
            let access = if server_side {
                Access::Admin
            } else {
                Access::Write
            };
            builder.op(Operation::CopyFrom, access);
            if let Some(table) = table {
                builder.write_table(table);
            }
            // COPY FROM … WHERE condition may call functions.
            self.walk(builder, index + 1, to, Mode::DDL);
        } else {
            let access = if server_side {
                Access::Admin
            } else {
                Access::Read
            };
            builder.op(Operation::CopyTo, access);
            if let Some(table) = table {
                builder.read_table(table);
            }
        }
    }

    /// `EXECUTE name [(args)]`, resolved through the session's prepared
    /// statements.
    fn execute(&self, builder: &mut Builder, from: usize, to: usize) {
        builder.op(Operation::Execute, Access::Read);
        let Some(name) = self.ident(from) else {
            builder.incomplete();
            return;
        };
        match self.prepared.prepared(&name) {
            Some(class) => builder.absorb_class(class),
            None => builder.incomplete(),
        }
        // Arguments are expressions and may call functions.
        self.walk(builder, from + 1, to, Mode::QUERY);
    }

    /// `SET [SESSION|LOCAL] …`.
    fn set(&self, builder: &mut Builder, from: usize) {
        let mut index = from;
        if self.is_one_of(index, &["session", "local"])
            && !self.is_one_of(index + 1, &["authorization", "characteristics"])
        {
            index += 1;
        }
        let mut buffer = [0u8; 32];
        let access = match self.word(index, &mut buffer) {
            Some("role") => Access::Admin,
            Some("session") if self.kw(index + 1, "authorization") => Access::Admin,
            Some("names") => Access::Admin,
            // `SET SCHEMA 'name'` is PostgreSQL's alias of `SET search_path
            // TO 'name'`: as privileged as the setting it changes.
            Some("schema") => Access::Admin,
            Some("time" | "transaction" | "constraints") => Access::Write,
            Some("session") if self.kw(index + 1, "characteristics") => Access::Write,
            _ => match self.qualified_name(index) {
                Some((name, _)) if PRIVILEGED_SETTINGS.contains(&name.as_str()) => Access::Admin,
                Some(_) => Access::Write,
                None => {
                    builder.incomplete();
                    Access::Admin
                }
            },
        };
        builder.op(Operation::Set, access);
    }

    /// `RESET name | ALL | ROLE | SESSION AUTHORIZATION`.
    fn reset(&self, builder: &mut Builder, from: usize) {
        let mut buffer = [0u8; 32];
        let access = match self.word(from, &mut buffer) {
            Some("all" | "role" | "session") => Access::Admin,
            _ => match self.qualified_name(from) {
                Some((name, _)) if PRIVILEGED_SETTINGS.contains(&name.as_str()) => Access::Admin,
                Some(_) => Access::Write,
                None => {
                    builder.incomplete();
                    Access::Admin
                }
            },
        };
        builder.op(Operation::Set, access);
    }

    /// `LOCK [TABLE] [ONLY] name [*], … [IN mode MODE] [NOWAIT]`. Locked
    /// tables are reported as written: a lock is a write.
    fn lock(&self, builder: &mut Builder, from: usize, to: usize) {
        builder.op(Operation::Lock, Access::Write);
        let mut index = from;
        if self.kw(index, "table") {
            index += 1;
        }
        self.name_list(builder, index, to, true);
    }

    /// A comma-separated list of (optionally `ONLY`-prefixed, `*`-suffixed)
    /// table names; recorded as written when `written`.
    fn name_list(&self, builder: &mut Builder, mut index: usize, to: usize, written: bool) {
        loop {
            if self.kw(index, "only") {
                index += 1;
            }
            let Some((name, after)) = self.qualified_name(index) else {
                builder.incomplete();
                return;
            };
            if written {
                builder.write_table(name);
            } else {
                builder.read_table(name);
            }
            index = after;
            if self.kind(index) == Some(TokenKind::Operator) && self.text(index) == "*" {
                index += 1;
            }
            if index < to && self.kind(index) == Some(TokenKind::Comma) {
                index += 1;
                continue;
            }
            return;
        }
    }

    /// `TRUNCATE [TABLE] [ONLY] name [*], … [RESTART IDENTITY] [CASCADE]`.
    fn truncate(&self, builder: &mut Builder, from: usize, to: usize) {
        builder.op(Operation::Truncate, Access::Write);
        let index = if self.kw(from, "table") {
            from + 1
        } else {
            from
        };
        self.name_list(builder, index, to, true);
    }

    /// `CREATE …`.
    fn create(&self, builder: &mut Builder, from: usize, to: usize) {
        let mut index = from;
        if self.kw(index, "or") && self.kw(index + 1, "replace") {
            index += 2;
        }
        while self.is_one_of(
            index,
            &[
                "temp",
                "temporary",
                "unlogged",
                "global",
                "local",
                "recursive",
                "trusted",
                "procedural",
                "default",
                "unique",
                "constraint",
            ],
        ) {
            index += 1;
        }
        let mut buffer = [0u8; 32];
        let object = self.word(index, &mut buffer).unwrap_or("").to_string();
        let mut access = Access::Write;
        let next = index + 1;
        match object.as_str() {
            "table" => return self.create_table(builder, next, to),
            "materialized" | "view" => {
                return self.create_view(builder, object == "materialized", next, to)
            }
            "sequence" => {
                builder.op(Operation::Create, Access::Write);
                match self.qualified_name(self.skip_if_exists(next)) {
                    Some((name, _)) => builder.write_table(name),
                    None => builder.incomplete(),
                }
                return;
            }
            "index" => return self.create_index(builder, next, to),
            "schema" => return self.create_schema(builder, next, to),
            "role" | "user" | "group" | "extension" | "language" | "event" | "server"
            | "subscription" | "publication" | "policy" => access = Access::Admin,
            "foreign" if self.kw(next, "data") => access = Access::Admin,
            "" => {
                builder.op(Operation::Unknown, Access::Write);
                return;
            }
            _ => {}
        }
        builder.op(Operation::Create, access);
        self.definition_rest(builder, &object, next, to);
    }

    /// `CREATE TABLE name (…)` writes the table; `… AS query` also runs
    /// the query.
    fn create_table(&self, builder: &mut Builder, from: usize, to: usize) {
        builder.op(Operation::Create, Access::Write);
        let Some((name, after)) = self.qualified_name(self.skip_if_exists(from)) else {
            builder.incomplete();
            return;
        };
        builder.write_table(name);
        if let Some(as_index) = self.find_word(after, to, "as") {
            let end = self.strip_with_data(as_index + 1, to);
            self.statement(builder, as_index + 1, end);
            return;
        }
        self.walk(builder, after, to, Mode::DDL);
    }

    /// `CREATE [MATERIALIZED] VIEW name AS query`: a materialized view runs
    /// its query now; a view's query is stored, not run.
    fn create_view(&self, builder: &mut Builder, materialized: bool, from: usize, to: usize) {
        builder.op(Operation::Create, Access::Write);
        let mut next = from;
        if materialized {
            next += 1;
        }
        let Some((name, after)) = self.qualified_name(self.skip_if_exists(next)) else {
            builder.incomplete();
            return;
        };
        builder.write_table(name);
        match self.find_word(after, to, "as") {
            Some(as_index) if materialized => {
                let end = self.strip_with_data(as_index + 1, to);
                self.statement(builder, as_index + 1, end);
            }
            _ => {
                self.walk(builder, after, to, Mode::DDL);
            }
        }
    }

    /// `CREATE INDEX … ON [ONLY] table …`: writes the table.
    fn create_index(&self, builder: &mut Builder, from: usize, to: usize) {
        builder.op(Operation::Create, Access::Write);
        let Some(on) = self.find_word(from, to, "on") else {
            builder.incomplete();
            return;
        };
        let start = if self.kw(on + 1, "only") {
            on + 2
        } else {
            on + 1
        };
        match self.qualified_name(start) {
            Some((name, after)) => {
                builder.write_table(name);
                self.walk(builder, after, to, Mode::DDL);
            }
            None => builder.incomplete(),
        }
    }

    /// `CREATE SCHEMA [name] [AUTHORIZATION role] elements…`: each element
    /// (CREATE TABLE|VIEW|INDEX|SEQUENCE|TRIGGER and GRANT, one after
    /// another without separators) is classified as its own statement.
    fn create_schema(&self, builder: &mut Builder, from: usize, to: usize) {
        builder.op(Operation::Create, Access::Write);
        let mut next = self.skip_if_exists(from);
        if self.kw(next, "authorization") {
            next += 2;
        } else {
            next += 1;
            if self.kw(next, "authorization") {
                next += 2;
            }
        }
        let mut element = next;
        while element < to {
            if !self.is_one_of(element, &["create", "grant"]) {
                builder.incomplete();
                return;
            }
            let mut end = element + 1;
            while end < to && !self.is_one_of(end, &["create", "grant"]) {
                if self.kind(end) == Some(TokenKind::LParen) {
                    end = self.close_of(end, to);
                }
                end += 1;
            }
            self.statement(builder, element, end);
            element = end;
        }
    }

    /// The rest of a CREATE/ALTER of a named object: skips the object name
    /// and a routine's argument list, escalates privilege-relevant clauses,
    /// and walks the rest for function calls.
    fn definition_rest(&self, builder: &mut Builder, object: &str, from: usize, to: usize) {
        let mut index = self.skip_if_exists(from);
        if let Some((_, after)) = self.qualified_name(index) {
            index = after;
            if matches!(object, "function" | "procedure" | "aggregate" | "routine")
                && self.kind(index) == Some(TokenKind::LParen)
            {
                index = self.close_of(index, to) + 1;
            }
        }
        self.definition_tail(builder, index, to);
    }

    /// Escalates privilege-relevant clauses of a definition and walks it for
    /// function calls.
    fn definition_tail(&self, builder: &mut Builder, index: usize, to: usize) {
        let mut position = index;
        while position < to {
            // SECURITY DEFINER routines and ownership changes move
            // privileges; row-level-security switches change what is
            // visible.
            if (self.kw(position, "security") && self.kw(position + 1, "definer"))
                || (self.kw(position, "owner") && self.kw(position + 1, "to"))
                || (self.kw(position, "level") && self.kw(position + 1, "security"))
            {
                builder.raise(Access::Admin);
            }
            position += 1;
        }
        self.walk(builder, index, to, Mode::DDL);
    }

    /// `ALTER …`.
    fn alter(&self, builder: &mut Builder, from: usize, to: usize) {
        let mut buffer = [0u8; 32];
        let object = self.word(from, &mut buffer).unwrap_or("").to_string();
        let mut next = from + 1;
        match object.as_str() {
            "system" | "role" | "user" | "group" | "database" | "extension" | "server"
            | "subscription" | "publication" | "policy" | "event" | "language" => {
                builder.op(Operation::Alter, Access::Admin);
            }
            "foreign" if self.kw(next, "data") => {
                builder.op(Operation::Alter, Access::Admin);
            }
            "default" => {
                builder.op(Operation::Alter, Access::Admin);
                if self.find_word(next, to, "grant").is_some() {
                    builder.op(Operation::Grant, Access::Admin);
                }
                if self.find_word(next, to, "revoke").is_some() {
                    builder.op(Operation::Revoke, Access::Admin);
                }
            }
            "table" | "index" | "sequence" | "view" | "materialized" | "foreign" => {
                builder.op(Operation::Alter, Access::Write);
                if object == "materialized" || object == "foreign" {
                    next += 1;
                }
                next = self.skip_if_exists(next);
                if self.kw(next, "all") && self.kw(next + 1, "in") {
                    return;
                }
                if self.kw(next, "only") {
                    next += 1;
                }
                let Some((name, after)) = self.qualified_name(next) else {
                    builder.incomplete();
                    return;
                };
                builder.write_table(name);
                self.definition_tail(builder, after, to);
            }
            "" => builder.op(Operation::Unknown, Access::Write),
            _ => {
                builder.op(Operation::Alter, Access::Write);
                self.definition_rest(builder, &object, next, to);
            }
        }
    }

    /// `DROP …`. Argument lists of dropped routines are types, not calls, so
    /// the rest is not walked.
    fn drop(&self, builder: &mut Builder, from: usize, to: usize) {
        let mut buffer = [0u8; 32];
        let object = self.word(from, &mut buffer).unwrap_or("").to_string();
        let mut next = from + 1;
        match object.as_str() {
            "table" | "view" | "sequence" | "index" | "materialized" | "foreign"
                if object != "foreign" || self.kw(next, "table") =>
            {
                builder.op(Operation::Drop, Access::Write);
                if object == "materialized" || object == "foreign" {
                    next += 1;
                }
                if self.kw(next, "concurrently") {
                    next += 1;
                }
                next = self.skip_if_exists(next);
                self.name_list(builder, next, to, true);
            }
            "role" | "user" | "group" | "owned" | "extension" | "language" | "event" | "server"
            | "subscription" | "publication" | "policy" | "foreign" => {
                builder.op(Operation::Drop, Access::Admin)
            }
            "" => builder.op(Operation::Unknown, Access::Write),
            _ => builder.op(Operation::Drop, Access::Write),
        }
    }

    // ----- the generic walk ------------------------------------------------

    /// Walks tokens `from..to`: records tables in `FROM` lists, function
    /// calls, nested data-modifying statements, row locks and `SELECT INTO`.
    /// Each token is taken in turn by [`Statement::walk_punctuation`], then
    /// [`Statement::walk_name`], then [`Statement::walk_keyword`]: the first
    /// that takes it says where the walk goes on.
    fn walk(&self, builder: &mut Builder, from: usize, to: usize, mode: Mode) -> WalkSummary {
        let mut walk = Walk {
            summary: WalkSummary::default(),
            levels: vec![Level {
                in_from: mode.table_list,
                expect_table: mode.table_list,
                ..Level::default()
            }],
            pending_function: None,
            pending_from_item: false,
        };
        let mut index = from;
        let mut buffer = [0u8; 32];
        while index < to {
            let Some(token) = self.token(index) else {
                break;
            };
            let kind = token.kind;
            if walk.levels.is_empty() {
                break;
            }
            if let Some(next) = self.walk_punctuation(builder, &mut walk, kind, index, to, mode) {
                index = next;
                continue;
            }
            let word = self.word(index, &mut buffer);
            if let Some(next) = self.walk_name(builder, &mut walk, kind, word, index, to) {
                index = next;
                continue;
            }
            let Some(word) = word else {
                index += 1;
                continue;
            };
            index = self.walk_keyword(builder, &mut walk, word, index, to, mode);
        }
        walk.summary
    }

    /// Parentheses, commas and other non-word tokens: where the walk goes
    /// on, or `None` for a word.
    fn walk_punctuation(
        &self,
        builder: &mut Builder,
        walk: &mut Walk,
        kind: TokenKind,
        mut index: usize,
        to: usize,
        mode: Mode,
    ) -> Option<usize> {
        let level = walk.levels.last_mut()?;
        match kind {
            TokenKind::LParen => {
                let first_inside = index + 1;
                if mode.query
                    && self.is_one_of(first_inside, &["insert", "update", "delete", "merge"])
                {
                    let close = self.close_of(index, to);
                    self.statement(builder, first_inside, close);
                    level.expect_table = false;
                    level.expect_alias = level.in_from;
                    walk.pending_function = None;
                    index = close + 1;
                    return Some(index);
                }
                let mut new_level = Level::default();
                if let Some(from_item) = walk.pending_function.take() {
                    new_level.function_arguments = true;
                    new_level.from_item = from_item;
                } else if level.expect_table || walk.pending_from_item {
                    new_level.from_item = true;
                    // A parenthesised join: `FROM (a JOIN b ON …)`.
                    let query_inside = self.kind(first_inside) == Some(TokenKind::LParen)
                        || self.is_one_of(first_inside, &["select", "values", "with", "table"]);
                    if !query_inside && !walk.pending_from_item {
                        new_level.in_from = true;
                        new_level.expect_table = true;
                    }
                }
                walk.pending_from_item = false;
                level.expect_table = false;
                level.expect_alias = false;
                walk.levels.push(new_level);
                index += 1;
                return Some(index);
            }
            TokenKind::RParen => {
                if walk.levels.len() > 1 {
                    if let Some(closed) = walk.levels.pop() {
                        if closed.from_item {
                            if let Some(parent) = walk.levels.last_mut() {
                                parent.expect_alias = true;
                            }
                        }
                    }
                }
                index += 1;
                return Some(index);
            }
            TokenKind::Comma => {
                if level.in_from {
                    level.expect_table = true;
                }
                level.expect_alias = false;
                index += 1;
                return Some(index);
            }
            TokenKind::Unterminated | TokenKind::AmbiguousString => {
                builder.incomplete();
                index += 1;
                return Some(index);
            }
            TokenKind::Word | TokenKind::QuotedIdent | TokenKind::UnicodeQuotedIdent => {}
            _ => {
                level.expect_alias = false;
                level.expect_table = false;
                index += 1;
                return Some(index);
            }
        }
        None
    }

    /// A word as a name: a table in a FROM list, an alias, an index hint,
    /// `OPERATOR(…)`, a function call or a qualified column. Where the walk
    /// goes on, or `None` for a keyword.
    fn walk_name(
        &self,
        builder: &mut Builder,
        walk: &mut Walk,
        kind: TokenKind,
        word: Option<&str>,
        mut index: usize,
        to: usize,
    ) -> Option<usize> {
        if walk.levels.last().is_some_and(|level| level.expect_table) {
            if let Some(next) = self.walk_table_reference(builder, walk, kind, word, index) {
                return Some(next);
            }
        }
        let level = walk.levels.last_mut()?;
        // An alias after a FROM item, with optional column names.
        // MySQL index hints: `t USE INDEX (i)`, `FORCE KEY FOR JOIN (i)`.
        if self.is_mysql() {
            if let Some(after) = self.mysql_index_hint(index, to) {
                level.expect_alias = false;
                index = after;
                return Some(index);
            }
        }
        if level.expect_alias {
            match word {
                Some("as") => {
                    index += 1;
                    return Some(index);
                }
                Some("with") if self.kw(index + 1, "ordinality") => {
                    index += 2;
                    return Some(index);
                }
                Some(w)
                    if NOT_ALIASES.contains(&w)
                        || (self.is_mysql() && mysql::NOT_ALIASES.contains(&w)) =>
                {
                    level.expect_alias = false
                }
                _ => {
                    level.expect_alias = false;
                    index += 1;
                    if self.kind(index) == Some(TokenKind::LParen) {
                        index = self.close_of(index, to) + 1;
                    }
                    return Some(index);
                }
            }
        }
        if kind == TokenKind::UnicodeQuotedIdent
            && matches!(
                self.kind(index + 1),
                Some(TokenKind::LParen | TokenKind::Dot)
            )
        {
            // A function or schema name we cannot decode.
            builder.incomplete();
        }
        // `a OPERATOR(pg_catalog.~) b`, as psql writes it: a built-in
        // operator, not a call. An operator of another schema may run a
        // user function: it stays an unknown call of `operator`.
        if word == Some("operator") && self.kind(index + 1) == Some(TokenKind::LParen) {
            let builtin = match (self.kind(index + 2), self.kind(index + 3)) {
                (Some(TokenKind::Operator), Some(TokenKind::RParen)) => Some(index + 4),
                _ if self.kw(index + 2, "pg_catalog")
                    && self.kind(index + 3) == Some(TokenKind::Dot)
                    && self.kind(index + 4) == Some(TokenKind::Operator)
                    && self.kind(index + 5) == Some(TokenKind::RParen) =>
                {
                    Some(index + 6)
                }
                _ => None,
            };
            if let Some(after) = builtin {
                index = after;
                return Some(index);
            }
        }
        // A function call: a (qualified) name followed by `(`.
        let after_cast = index > 0
            && (self.kind(index - 1) == Some(TokenKind::DoubleColon)
                || (self.is_mysql() && self.mysql_type_position(index)));
        let keyword_like = word.is_some_and(|w| {
            NOT_FUNCTIONS.contains(&w) || (self.is_mysql() && mysql::NOT_FUNCTIONS.contains(&w))
        });
        if !keyword_like {
            if let Some(after) = self.qualified_name_end(index) {
                if self.kind(after) == Some(TokenKind::LParen) {
                    let is_type = after_cast
                        || (after == index + 1
                            && word.is_some_and(|w| {
                                TYPE_NAMES.contains(&w)
                                    || (self.is_mysql() && mysql::TYPE_NAMES.contains(&w))
                            }));
                    if !is_type {
                        if let Some((name, _)) = self.qualified_name(index) {
                            builder.call(name);
                        }
                        walk.pending_function = Some(false);
                    }
                    index = after;
                    return Some(index);
                }
                if after > index + 1 {
                    // A qualified column reference (`t.c`).
                    index = after;
                    return Some(index);
                }
            }
        }
        None
    }

    /// A word where a FROM list expects a table: the table read (or the
    /// set-returning function called), where the walk goes on, or `None`
    /// when the word ends the list.
    fn walk_table_reference(
        &self,
        builder: &mut Builder,
        walk: &mut Walk,
        kind: TokenKind,
        word: Option<&str>,
        mut index: usize,
    ) -> Option<usize> {
        let level = walk.levels.last_mut()?;
        match word {
            Some("lateral" | "only") => {
                index += 1;
                return Some(index);
            }
            Some("rows") if self.kw(index + 1, "from") => {
                level.expect_table = false;
                walk.pending_from_item = true;
                index += 2;
                return Some(index);
            }
            Some(w) if FROM_TERMINATORS.contains(&w) => {
                level.expect_table = false;
            }
            // MySQL's dummy table.
            Some("dual") if self.is_mysql() => {
                level.expect_table = false;
                index += 1;
                return Some(index);
            }
            _ => {
                level.expect_table = false;
                if kind == TokenKind::UnicodeQuotedIdent {
                    builder.incomplete();
                }
                if let Some((name, after)) = self.qualified_name(index) {
                    if self.kind(after) == Some(TokenKind::LParen) {
                        builder.call(name);
                        walk.pending_function = Some(true);
                    } else {
                        builder.read_table(name);
                        level.expect_alias = true;
                    }
                    index = after;
                    if self.kind(index) == Some(TokenKind::Operator) && self.text(index) == "*" {
                        index += 1;
                    }
                    return Some(index);
                }
            }
        }
        None
    }

    /// `FOR [NO KEY] UPDATE | [KEY] SHARE [OF t, …]` at `index` (the `FOR`):
    /// a row lock, recorded; where the walk goes on, or `None` when the
    /// `FOR` is something else.
    fn row_lock(&self, builder: &mut Builder, index: usize) -> Option<usize> {
        let mut next = index + 1;
        if self.kw(next, "no") && self.kw(next + 1, "key") {
            next += 2;
        } else if self.kw(next, "key") {
            next += 1;
        }
        if !self.is_one_of(next, &["update", "share"]) {
            return None;
        }
        builder.op(Operation::Lock, Access::Write);
        next += 1;
        if self.kw(next, "of") {
            next += 1;
            while self.is_name_token(next) {
                match self.qualified_name(next) {
                    Some((_, after)) => next = after,
                    None => break,
                }
                if self.kind(next) == Some(TokenKind::Comma) {
                    next += 1;
                } else {
                    break;
                }
            }
        }
        Some(next)
    }

    /// PostgreSQL's `SELECT … INTO [TEMP] t` at `index` (the `INTO`): a
    /// table created and written. Returns where the walk goes on.
    fn select_into(&self, builder: &mut Builder, index: usize) -> usize {
        let mut next = index + 1;
        while self.is_one_of(next, &["temporary", "temp", "unlogged", "table"]) {
            next += 1;
        }
        builder.op(Operation::Create, Access::Write);
        match self.qualified_name(next) {
            Some((name, after)) => {
                builder.write_table(name);
                after
            }
            None => {
                builder.incomplete();
                next
            }
        }
    }

    /// A keyword: what it opens or ends (FROM lists, joins, WHERE, row
    /// locks, `INTO`, nested statements). Returns where the walk goes on.
    fn walk_keyword(
        &self,
        builder: &mut Builder,
        walk: &mut Walk,
        word: &str,
        mut index: usize,
        to: usize,
        mode: Mode,
    ) -> usize {
        // No parenthesis opened or closed since the token's turn began.
        let top = walk.levels.len() == 1;
        let Some(level) = walk.levels.last_mut() else {
            return index + 1;
        };
        match word {
            "from" => {
                let distinct = index > 0 && self.kw(index - 1, "distinct");
                if !level.function_arguments && !distinct {
                    level.in_from = true;
                    level.expect_table = true;
                }
            }
            "join" => {
                level.in_from = true;
                level.expect_table = true;
            }
            "straight_join" if self.is_mysql() => {
                level.in_from = true;
                level.expect_table = true;
            }
            // `LOCK IN SHARE MODE`: a row lock.
            "lock" if self.is_mysql() && mode.query && self.kw(index + 1, "in") => {
                builder.op(Operation::Lock, Access::Write);
                level.in_from = false;
                index += 4;
                return index;
            }
            // MariaDB's `NEXT VALUE FOR s` is NEXTVAL(s), `PREVIOUS
            // VALUE FOR s` is LASTVAL(s).
            "next" | "previous"
                if self.is_mysql() && self.kw(index + 1, "value") && self.kw(index + 2, "for") =>
            {
                let function = if word == "next" { "nextval" } else { "lastval" };
                builder.call(function.to_string());
                index += 3;
                return index;
            }
            "into" if self.is_mysql() && mode.query => {
                level.in_from = false;
                index = self.mysql_into(builder, index + 1, to);
                return index;
            }
            "references" => {
                // `REFERENCES t (cols)`: a table, not a call.
                if let Some((_, after)) = self.qualified_name(index + 1) {
                    index = after;
                    if self.kind(index) == Some(TokenKind::LParen) {
                        index = self.close_of(index, to) + 1;
                    }
                    return index;
                }
            }
            // `USING btree (cols)`: an access method, not a call.
            "using"
                if !mode.query
                    && self.kind(index + 1) == Some(TokenKind::Word)
                    && self.kind(index + 2) == Some(TokenKind::LParen) =>
            {
                index += 2;
                return index;
            }
            // `DELETE … USING t`, `MERGE … USING t`: a table list.
            "using"
                if mode.using_is_from && top && self.kind(index + 1) != Some(TokenKind::LParen) =>
            {
                level.in_from = true;
                level.expect_table = true;
            }
            "table" => {
                // `(TABLE t)` and `UNION TABLE t`.
                let previous_opens = index > 0
                    && (self.kind(index - 1) == Some(TokenKind::LParen)
                        || self.is_one_of(
                            index - 1,
                            &["union", "intersect", "except", "all", "distinct"],
                        ));
                if previous_opens {
                    level.expect_table = true;
                }
            }
            "where" => {
                level.in_from = false;
                if top && walk.summary.where_at.is_none() {
                    walk.summary.where_at = Some(index);
                }
            }
            "for" if mode.query => {
                level.in_from = false;
                if let Some(next) = self.row_lock(builder, index) {
                    return next;
                }
            }
            "into" if mode.query => return self.select_into(builder, index),
            "insert" | "update" | "delete" | "merge" if mode.query => {
                let previous_explains = index > 0
                    && ((mode.merge && self.kw(index - 1, "then"))
                        || self.kw(index - 1, "do")
                        // `ON DUPLICATE KEY UPDATE`.
                        || (self.is_mysql() && word == "update" && self.kw(index - 1, "key")));
                if !previous_explains {
                    // A data-modifying keyword where none can be: a
                    // column named `update`, or something not
                    // understood. Never guess.
                    builder.incomplete();
                }
            }
            w if FROM_TERMINATORS.contains(&w) => level.in_from = false,
            _ => {}
        }
        index + 1
    }
}
