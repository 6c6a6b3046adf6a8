//! The SQL side of the command gate, as the relay sees it.
//!
//! For every `Query` and `Parse` the relay asks [`CommandGate::check`]
//! before a byte of it goes upstream. This module classifies the text
//! (`airlock-sql`, cached by text), works out what it does to the session's
//! prepared statements, portals and cursors, shows an SQL `EXECUTE` to
//! reviewers with the body it runs, and asks the core's gate
//! (`airlock_core::gate`) for the decision: forward (with the mask plan the
//! policy obliges) or a neutral refusal that `errors` turns into the
//! client's error. Protocol code never decides.

use std::collections::HashMap;
use std::sync::Arc;

use airlock_core::gate::{Details, Gate, Rejection};
use airlock_core::reviews::ReviewRequest;
use airlock_core::state::GatewayState;
use airlock_mask::MaskPlan;
use airlock_policy::RateLimitObligation;
use airlock_sql::{
    analyze, Analysis, Dialect, PreparedDefinition, PreparedLookup, SessionEffect, Shape,
    SyntaxError,
};
use airlock_types::{Command, ConnectionInfo, Identity, StatementClass};

pub use airlock_core::gate::{Decision, Limits, Object, Refusal, Verdict as GateVerdict};

/// The kind of command being checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    /// A simple-protocol `Query` (one or more statements).
    SimpleQuery,
    /// An extended-protocol `Parse`.
    Parse,
    /// An extended-protocol `Execute` (decided at its `Parse`; recorded
    /// with the statement it runs).
    Execute,
}

/// The core's decision, with what the relay must track of the statement's
/// effects on the session's named statements, portals and cursors.
#[derive(Clone)]
pub struct GateDecision {
    /// Forward or refuse, the mask, the review, the rate limits.
    pub core: Decision,
    /// What the command does to the session's named statements and portals.
    pub effects: Vec<SessionEffect>,
    /// `PREPARE` definitions in the command (name, body, classification).
    pub prepares: Vec<PreparedDefinition>,
    /// The command may open or close cursors out of the gateway's sight
    /// (procedural code, unknown functions): every named portal is forgotten.
    pub touches_cursors: bool,
    /// Cursors the command declares, with what their queries read.
    pub declares: Vec<(String, StatementClass)>,
}

impl GateDecision {
    /// An Execute of a statement decided at its Parse: it runs what was
    /// decided then (the relay applies the Parse's mask).
    pub fn inherited() -> Self {
        Self::of(Decision::forward())
    }

    /// A core decision with no effect on the session's names.
    pub fn of(core: Decision) -> Self {
        Self {
            core,
            effects: Vec::new(),
            prepares: Vec::new(),
            touches_cursors: false,
            declares: Vec::new(),
        }
    }

    /// A refusal.
    pub fn refuse(refusal: Refusal, details: impl Into<Details>) -> Self {
        Self::of(Decision::refuse(refusal, details))
    }

    /// True when the command goes upstream.
    pub fn forwards(&self) -> bool {
        self.core.forwards()
    }
}

/// Whether an Execute of the parsed `text` must be decided again: an SQL
/// `EXECUTE` inside runs whatever the session's PREPAREs say at that time.
/// The relay computes it once per Parse, not on every Execute.
pub fn decided_again_at_execute(text: &str) -> bool {
    // `FETCH` and `MOVE` read what the session's cursors were declared for.
    mentions_any(text, &[b"execute", b"fetch", b"move"])
}

/// True when `text` contains one of `words` (lowercase ASCII, matched
/// case-insensitively) anywhere. A cheap, allocation-free
/// over-approximation: the classifier decides what the statement really
/// does. One pass: only a byte that can start a word is compared further
/// (three `windows` scans cost a tenth of a pass-through query's
/// instructions).
fn mentions_any(text: &str, words: &[&[u8]]) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(at, byte)| {
        let lower = byte.to_ascii_lowercase();
        words.iter().any(|word| {
            word.first() == Some(&lower)
                && bytes
                    .get(at..at + word.len())
                    .is_some_and(|window| window.eq_ignore_ascii_case(word))
        })
    })
}

/// Classifications kept per session, by statement text.
const CLASSIFICATION_CACHE: usize = 512;

/// The SQL side of one session's decision point: the analysis of each text
/// (classification, session effects, `PREPARE`s and `DECLARE`s, from one
/// pass of the lexer, cached by text), then the core's gate.
pub struct CommandGate {
    core: Gate,
    cache: HashMap<String, Arc<Analysis>>,
    /// Classifications shared by texts that differ only in their constants,
    /// by [`Shape`] key (only those that hold for every constant).
    shapes: HashMap<String, Arc<Analysis>>,
    /// Whether texts the classifier gave up on parse at all, by text.
    syntax: HashMap<String, Option<SyntaxError>>,
}

/// Syntax answers kept per session.
const SYNTAX_CACHE: usize = 64;

/// The session's prepared statements as an SQL `EXECUTE` sees them: each
/// name's classification and body text (shown to reviewers).
#[derive(Default)]
pub struct PreparedView {
    pub statements: HashMap<String, (StatementClass, Arc<str>)>,
    /// SQL cursors by name: the classification of their query, for `FETCH`.
    pub cursors: HashMap<String, StatementClass>,
}

impl PreparedLookup for PreparedView {
    fn prepared(&self, name: &str) -> Option<&StatementClass> {
        self.statements.get(name).map(|(class, _)| class)
    }

    fn cursor(&self, name: &str) -> Option<&StatementClass> {
        self.cursors.get(name)
    }
}

/// The text a review shows, and its approval binds: what will run, an SQL
/// `EXECUTE` shown with the body it executes.
fn shown_text<'a>(
    text: &'a str,
    effects: &[SessionEffect],
    prepared: &PreparedView,
) -> std::borrow::Cow<'a, str> {
    let mut shown = std::borrow::Cow::Borrowed(text);
    for effect in effects {
        if let SessionEffect::Execute(name) = effect {
            let body = prepared
                .statements
                .get(name)
                .map(|(_, body)| body.as_ref())
                .unwrap_or("(unknown)");
            shown
                .to_mut()
                .push_str(&format!("\n-- EXECUTE {name} runs: {body}"));
        }
    }
    shown
}

/// Whether a command may open or close cursors the gateway cannot see
/// (a `DO` block, a `CALL`, an unknown operation or function).
fn may_touch_cursors(command: &Command) -> bool {
    command.statements().iter().any(|statement| {
        !statement.unknown_functions.is_empty()
            || statement.operations.iter().any(|op| {
                matches!(
                    op,
                    airlock_types::Operation::Do
                        | airlock_types::Operation::Call
                        | airlock_types::Operation::Unknown
                )
            })
    })
}

impl CommandGate {
    /// The gate for one session.
    pub fn new(state: Arc<GatewayState>, identity: Identity, connection: ConnectionInfo) -> Self {
        Self {
            core: Gate::new(state, identity, connection),
            cache: HashMap::new(),
            shapes: HashMap::new(),
            syntax: HashMap::new(),
        }
    }

    /// The core's gate (reviews, rate limits per execution).
    pub fn core(&self) -> &Gate {
        &self.core
    }

    /// The policy version live now.
    pub fn live_version(&self) -> i64 {
        self.core.live_version()
    }

    fn analyze(&mut self, text: &str, prepared: &PreparedView) -> Arc<Analysis> {
        // A statement that EXECUTEs a prepared name depends on the session's
        // PREPAREs, which can change: never cache it. The whole text is
        // searched (an EXECUTE can follow other statements).
        let uses_session_state = decided_again_at_execute(text);
        if !uses_session_state {
            if let Some(analysis) = self.cache.get(text) {
                return Arc::clone(analysis);
            }
        }
        let cacheable = !uses_session_state && text.len() <= 4096;
        let shape = cacheable.then(|| Shape::of(text)).flatten();
        if let Some(shape) = &shape {
            if let Some(analysis) = self.shapes.get(&shape.key) {
                // The same statement with other constants: its analysis, as
                // this text's own (the text is all that differs).
                let mut analysis = Analysis::clone(analysis);
                analysis.command.text = text.to_string();
                return Arc::new(analysis);
            }
        }
        let analysis = Arc::new(analyze(Dialect::Postgres, text, prepared));
        if !cacheable {
            return analysis;
        }
        if self.cache.len() >= CLASSIFICATION_CACHE {
            self.cache.clear();
        }
        self.cache.insert(text.to_string(), Arc::clone(&analysis));
        if let Some(shape) = shape {
            // Shared by every text of the shape only when the analysis is the
            // one its parameterised form gets (which holds for any value).
            let parameterized = analyze(Dialect::Postgres, &shape.parameterized, prepared);
            if Shape::holds_for_every_constant(&analysis, &parameterized) {
                if self.shapes.len() >= CLASSIFICATION_CACHE {
                    self.shapes.clear();
                }
                self.shapes.insert(shape.key, Arc::clone(&analysis));
            }
        }
        analysis
    }

    /// Decides one command. `prepared` resolves SQL `EXECUTE name` (only
    /// consulted when the text mentions `execute`). Rate limits are consumed
    /// here for a simple query or a re-decided `Execute`; a `Parse` returns
    /// them for the core's `admit` at each of its executions.
    pub fn check(
        &mut self,
        kind: CommandKind,
        text: &str,
        prepared: &PreparedView,
    ) -> GateDecision {
        // Nothing but white space and semicolons: PostgreSQL answers
        // EmptyQueryResponse and runs nothing. (Comments alone are still
        // classified: only bytes that cannot hide anything pass here.)
        if text
            .bytes()
            .all(|byte| byte.is_ascii_whitespace() || byte == b';')
        {
            let mut empty = Decision::forward();
            empty.details = Details::verdict("empty");
            empty.version = self.live_version();
            return GateDecision::of(empty);
        }
        let analysis = self.analyze(text, prepared);
        let command = &analysis.command;
        if !command.complete() {
            // A text the classifier gave up on may simply not parse: then the
            // client hears PostgreSQL's own syntax error (42601, with its
            // position), and the text never reaches the upstream whatever the
            // policy says of incomplete statements.
            if let Some(error) = self.syntax_error(text) {
                return self.syntax_refusal(command, text, error);
            }
        }
        let effects = analysis.effects.clone();
        let shown = shown_text(text, &effects, prepared);
        let limits = match kind {
            CommandKind::Parse => Limits::AtEachExecution,
            CommandKind::SimpleQuery | CommandKind::Execute => Limits::Now,
        };
        let mut core = self.core.decide(command, limits, &shown);
        let touches_cursors = may_touch_cursors(command);
        let prepares_only = command.statements().iter().all(|statement| {
            statement
                .operations
                .contains(&airlock_types::Operation::Prepare)
        });
        if core.review.is_some() && kind == CommandKind::SimpleQuery && prepares_only {
            // A simple query that only prepares runs nothing: what it
            // prepares is reviewed at each EXECUTE, with what it runs.
            core.details.set_verdict("allow");
            core.details
                .other
                .insert("review_at".into(), "execute".into());
            core.verdict = GateVerdict::Forward;
            core.review = None;
            core.rate_limits = Vec::new();
            return GateDecision {
                core,
                effects,
                prepares: analysis.prepares.clone(),
                touches_cursors,
                declares: Vec::new(),
            };
        }
        if core.review.is_some() {
            return GateDecision {
                core,
                effects,
                prepares: analysis.prepares.clone(),
                touches_cursors,
                declares: Vec::new(),
            };
        }
        if !core.forwards() {
            return GateDecision::of(core);
        }
        GateDecision {
            core,
            effects,
            prepares: analysis.prepares.clone(),
            touches_cursors,
            declares: analysis.declares.clone(),
        }
    }

    /// The refusal of a text PostgreSQL's grammar does not accept: the
    /// client hears the server's own syntax error.
    fn syntax_refusal(&self, command: &Command, text: &str, error: SyntaxError) -> GateDecision {
        // The policy still decides what the record keeps: its mask plan
        // masks the statement (and the parser's message, which quotes it)
        // in the audit log. No rate limit is consumed and no review made:
        // the text never runs. Counted as rejected, not under the
        // policy's verdict: the policy did not decide it.
        let mut refused = self
            .core
            .decide_unmetered(command, Limits::AtEachExecution, text);
        self.core.rejected(Rejection::SyntaxError);
        refused.details.set_verdict("syntax_error");
        refused.verdict = GateVerdict::Refuse(Refusal::Syntax {
            message: error.message,
            position: error.position,
        });
        refused.review = None;
        refused.rate_limits = Vec::new();
        GateDecision::of(refused)
    }

    /// PostgreSQL's grammar's answer for `text` (cached): `None` when it
    /// parses or could not be checked. The check may wait for the parser
    /// thread: on a multi-threaded runtime the worker hands its other tasks
    /// over first, so a slow parse stalls only this session.
    fn syntax_error(&mut self, text: &str) -> Option<SyntaxError> {
        if let Some(known) = self.syntax.get(text) {
            return known.clone();
        }
        let multi_threaded = tokio::runtime::Handle::try_current().is_ok_and(|handle| {
            handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        });
        let answer = if multi_threaded {
            tokio::task::block_in_place(|| airlock_sql::syntax_error(text))
        } else {
            airlock_sql::syntax_error(text)
        };
        if text.len() <= 4096 {
            if self.syntax.len() >= SYNTAX_CACHE {
                self.syntax.clear();
            }
            self.syntax.insert(text.to_string(), answer.clone());
        }
        answer
    }

    /// Resolves a decision that holds the command for review.
    pub async fn resolve(
        &self,
        mut decision: GateDecision,
        session_id: &str,
        notice: impl FnOnce(String),
    ) -> GateDecision {
        let core = std::mem::replace(&mut decision.core, Decision::forward());
        decision.core = self.core.resolve(core, session_id, notice).await;
        decision
    }

    /// Consumes the rate limits of one execution of a parsed statement;
    /// the refusal when one is exceeded.
    pub fn admit(&self, limits: &[RateLimitObligation], version: i64) -> Option<GateDecision> {
        self.core.admit(limits, version).map(GateDecision::of)
    }

    /// The review of one execution of a parsed statement held for review:
    /// the approver sees, and the approval binds, the statement with the
    /// values bound to it.
    pub fn review_execution(
        &self,
        template: &ReviewRequest,
        text: &str,
        parameters: &[Option<String>],
        mask: Option<&MaskPlan>,
    ) -> GateDecision {
        let mut shown = text.to_string();
        if !parameters.is_empty() {
            let values: Vec<String> = parameters
                .iter()
                .enumerate()
                .map(|(index, value)| match value {
                    Some(value) => format!("${} = '{}'", index + 1, value.replace('\'', "''")),
                    None => format!("${} = NULL", index + 1),
                })
                .collect();
            shown.push_str(&format!("\n-- with {}", values.join(", ")));
        }
        GateDecision::of(self.core.review_execution(template, shown, mask))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_any_agrees_with_a_scan_for_each_word() {
        let words: [&[u8]; 3] = [b"execute", b"fetch", b"move"];
        let naive = |text: &str| {
            words.iter().any(|word| {
                text.as_bytes()
                    .windows(word.len())
                    .any(|window| window.eq_ignore_ascii_case(word))
            })
        };
        for text in [
            "",
            "select 1",
            "EXECUTE p(1)",
            "select 'exec' || 'ute'",
            "prepare x as select 1; ExEcUtE x",
            "fetc",
            "FETCH ALL FROM c",
            "select * from t where mo = 'v'",
            "REMOVE",
            "\u{e9} fetch \u{fc}",
            "mov",
            "move next from c",
        ] {
            assert_eq!(mentions_any(text, &words), naive(text), "{text:?}");
            assert_eq!(decided_again_at_execute(text), naive(text), "{text:?}");
        }
    }
}
