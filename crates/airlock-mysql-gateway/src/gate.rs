//! The SQL side of the command gate for MySQL: every statement text a
//! command carries (`COM_QUERY`, `COM_STMT_PREPARE`, and the commands that
//! amount to a statement: `COM_INIT_DB` is `USE db`, `COM_FIELD_LIST` is
//! `SHOW COLUMNS FROM t`) is classified with the MySQL dialect (cached by
//! text) and decided by the core's [`Gate`]. Protocol code never decides.
//!
//! SQL-level `PREPARE name FROM '…'` is classified as its text, and the
//! gate remembers that classification so a later `EXECUTE name` is decided
//! as the text it runs ([`MySqlGate::ran`] applies what a forwarded text
//! did). `PREPARE name FROM @var` leaves the name unknown: its `EXECUTE`
//! is incomplete.
//!
//! A change of the session's character set to one that is not ASCII-safe
//! (`SET NAMES gbk`, `SET character_set_client = sjis` …) is refused
//! whatever the policy says, as the same sets are at login.
//!
//! The text is read as UTF-8 with invalid bytes replaced: the session's
//! character set is one where every byte of a quote, backslash or comment
//! is ASCII and no multi-byte character contains one (see
//! [`crate::charset`]), so the replacement cannot change where a string or
//! a statement ends.

use std::collections::HashMap;
use std::sync::Arc;

use airlock_core::gate::{Decision, Details, Gate, Limits, Refusal};
use airlock_core::state::GatewayState;
use airlock_sql::{analyze, Dialect, PreparedDefinition, SessionEffect};
use airlock_types::{Access, Command, ConnectionInfo, Identity, Operation, StatementClass};

use crate::sql_prepared::SqlPrepared;

/// Classifications kept per session, by statement text.
const CLASSIFICATION_CACHE: usize = 512;
/// Longest text whose classification is cached.
const CACHED_TEXT_BYTES: usize = 4096;

/// What the gate knows of one text: its classification, what it does to
/// the session's SQL-level prepared statements, and a character-set change
/// the gateway never lets through.
#[derive(Debug)]
pub struct Analyzed {
    pub command: Command,
    pub effects: Vec<SessionEffect>,
    pub prepares: Vec<PreparedDefinition>,
    /// The first change of the session's character set to one that is not
    /// ASCII-safe, described for the client.
    pub unsafe_character_set: Option<String>,
}

/// A decision with what the relay applies once the command ran.
pub struct Decided {
    pub decision: Decision,
    pub analyzed: Option<Arc<Analyzed>>,
}

/// One session's decision point for SQL texts.
pub struct MySqlGate {
    core: Gate,
    cache: HashMap<String, Arc<Analyzed>>,
    /// The session's SQL-level `PREPARE`d statements, by name, as the
    /// gateway classified their text: `EXECUTE name` is decided as that
    /// text. A name whose text the gateway could not read is absent, so its
    /// `EXECUTE` is incomplete.
    prepared: SqlPrepared,
}

impl MySqlGate {
    pub fn new(state: Arc<GatewayState>, identity: Identity, connection: ConnectionInfo) -> Self {
        Self {
            core: Gate::new(state, identity, connection),
            cache: HashMap::new(),
            prepared: SqlPrepared::default(),
        }
    }

    /// The core's gate (reviews, rate limits per execution).
    pub fn core(&self) -> &Gate {
        &self.core
    }

    fn analyze(&mut self, text: &str) -> Arc<Analyzed> {
        if let Some(analyzed) = self.cache.get(text) {
            return Arc::clone(analyzed);
        }
        let analysis = analyze(Dialect::Mysql, text, &self.prepared);
        let analyzed = Arc::new(Analyzed {
            unsafe_character_set: unsafe_character_set(text),
            command: analysis.command,
            effects: analysis.effects,
            prepares: analysis.prepares,
        });
        // An `EXECUTE name` means what the session prepared under that name
        // now: never cached.
        let executes = analyzed
            .effects
            .iter()
            .any(|effect| matches!(effect, SessionEffect::Execute(_)));
        if text.len() <= CACHED_TEXT_BYTES && !executes {
            if self.cache.len() >= CLASSIFICATION_CACHE {
                self.cache.clear();
            }
            self.cache.insert(text.to_string(), Arc::clone(&analyzed));
        }
        analyzed
    }

    /// Decides one statement text. Rate limits are consumed now
    /// ([`Limits::Now`]) or at each execution of a prepared statement.
    pub fn decide(&mut self, text: &str, limits: Limits) -> Decision {
        self.decide_analyzed(text, limits).decision
    }

    /// [`Self::decide`], with the analysis the relay applies after the
    /// command ran ([`Self::ran`]).
    pub fn decide_analyzed(&mut self, text: &str, limits: Limits) -> Decided {
        if text
            .bytes()
            .all(|byte| byte.is_ascii_whitespace() || byte == b';')
        {
            // Nothing that can hide anything: the server answers "Query was
            // empty" and runs nothing.
            let mut empty = Decision::forward();
            empty.details = Details::verdict("empty");
            empty.version = self.core.live_version();
            return Decided {
                decision: empty,
                analyzed: None,
            };
        }
        let analyzed = self.analyze(text);
        let mut decision = self.core.decide(&analyzed.command, limits, text);
        if let Some(change) = &analyzed.unsafe_character_set {
            // Whatever the policy says: after it the gateway could not
            // read the session's statements as the server does.
            decision = Decision::refuse(
                Refusal::Denied {
                    message: format!(
                        "airlock: {change} is refused: in that character set the gateway and the server could read a statement differently; use utf8mb4"
                    ),
                },
                {
                    let mut details = std::mem::take(&mut decision.details);
                    details.set_verdict("unsafe_character_set");
                    details
                },
            );
        }
        Decided {
            decision,
            analyzed: Some(analyzed),
        }
    }

    /// A `USE` of the connection's own database (see [`crate::schema`]):
    /// what unqualified names mean stays the same, so it is decided as a
    /// complete read (`other`), not as the dialect's `admin` `USE`.
    pub fn decide_own_use(&mut self, text: &str) -> Decided {
        let statement = StatementClass {
            operations: vec![Operation::Other],
            access: Some(Access::Read),
            complete: true,
            ..StatementClass::default()
        };
        let command = Command::sql(text, vec![statement]);
        let mut decision = self.core.decide(&command, Limits::Now, text);
        decision
            .details
            .other
            .insert("selects".into(), "the connection's database".into());
        Decided {
            decision,
            analyzed: None,
        }
    }

    /// What a forwarded text did to the session's SQL-level prepared
    /// statements (see [`SqlPrepared::apply`]). `failed`: the answer held
    /// an error.
    pub fn ran(&mut self, analyzed: &Analyzed, failed: bool) {
        self.prepared
            .apply(&analyzed.effects, &analyzed.prepares, failed);
    }

    /// `COM_RESET_CONNECTION`: the server forgets every prepared statement.
    pub fn reset(&mut self) {
        self.prepared.clear();
    }
}

/// The first character-set change in `text` the gateway refuses, described.
pub fn unsafe_character_set(text: &str) -> Option<String> {
    // Cheap test first: a change needs one of these words.
    let lower = text.to_ascii_lowercase();
    let candidates = ["names", "char", "collation", "prepare", "immediate"];
    if !candidates.iter().any(|word| lower.contains(word)) {
        return None;
    }
    airlock_sql::mysql_character_set_changes(text)
        .into_iter()
        .find(|change| !change.is_ascii_safe())
        .map(|change| match change.value {
            Some(value) => format!("setting {} to {value}", change.setting),
            None if change.setting == "dynamic statement text" => {
                "dynamic SQL whose text the gateway cannot read (it could change the character set)"
                    .to_string()
            }
            None => format!(
                "setting {} to a value the gateway cannot read",
                change.setting
            ),
        })
}

/// The statement a `COM_INIT_DB` amounts to: it changes what unqualified
/// names mean, so it is decided as the `USE` it is.
pub fn init_db_statement(schema: &[u8]) -> String {
    format!("USE {}", quote_identifier(schema))
}

/// The statement a `COM_FIELD_LIST` amounts to (it reads a table's column
/// definitions).
pub fn field_list_statement(table: &[u8]) -> String {
    format!("SHOW COLUMNS FROM {}", quote_identifier(table))
}

/// A backquoted identifier, inner backquotes doubled (what the server reads
/// back as the same name).
fn quote_identifier(name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    format!("`{}`", name.replace('`', "``"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_sql::classify;

    #[test]
    fn commands_become_the_statements_they_are() {
        assert_eq!(init_db_statement(b"shop"), "USE `shop`");
        assert_eq!(init_db_statement(b"a`b"), "USE `a``b`");
        assert_eq!(
            field_list_statement(b"t`; DROP TABLE x; --"),
            "SHOW COLUMNS FROM `t``; DROP TABLE x; --`"
        );
        let classified = classify(Dialect::Mysql, &field_list_statement(b"t`; DROP TABLE x"));
        assert_eq!(classified.statements().len(), 1);
    }

    #[test]
    fn unsafe_character_sets_are_found_in_every_disguise() {
        for refused in [
            "SET NAMES gbk",
            "set names 'sjis'",
            "SET NAMES utf8mb4 COLLATE gbk_bin",
            "SET CHARACTER SET big5",
            "SET CHARSET cp932",
            "SET character_set_client = gb18030",
            "SET @@session.character_set_client = 'gbk'",
            "SET SESSION character_set_connection = @v",
            "SET @a = 1, collation_connection = sjis_japanese_ci",
            "SET character_set_results = utf16",
            "SET NAMES DEFAULT",
            "SET STATEMENT character_set_client = gbk FOR SELECT 1",
            "/*!40101 SET NAMES gbk */",
            "SELECT 1; SET NAMES gbk",
            "PREPARE s FROM 'SET NAMES gbk'",
            "EXECUTE IMMEDIATE 'SET NAMES gbk'",
            "PREPARE s FROM @q",
        ] {
            assert!(unsafe_character_set(refused).is_some(), "{refused}");
        }
        for allowed in [
            "SET NAMES utf8mb4",
            "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci",
            "SET character_set_results = 'binary'",
            "SET SESSION character_set_results = 'utf8mb4'",
            "SET CHARACTER SET latin1",
            "SELECT names FROM t WHERE names = 'gbk'",
            "UPDATE t SET names = 'gbk'",
            "PREPARE s FROM 'SELECT 1'",
        ] {
            assert_eq!(unsafe_character_set(allowed), None, "{allowed}");
        }
    }
}
