//! `KILL [QUERY] id` and `COM_PROCESS_KILL` through the gateway.
//!
//! Every session the gateway relays logs in upstream as the connection's
//! one stored user, so on the server every agent's thread belongs to the
//! same user, and a `KILL` the server accepts could end anyone's query. The
//! gateway therefore gives each client a connection id of its own (in its
//! greeting) and keeps, per live session, who it is, on which connection,
//! and which upstream thread relays it ([`ConnectionIds`]). A `KILL` names
//! either a gateway id (what `mysql_thread_id()` returns, and what the
//! `mariadb` client's Ctrl-C sends) or an upstream thread id (what
//! `CONNECTION_ID()` returns); it is mapped to the upstream thread only
//! when that session has the same identity and the same connection, and
//! sent upstream as `KILL [QUERY] thread`. Every other `KILL` is refused
//! whatever the policy says: another identity's session, an id the gateway
//! does not relay, `KILL USER`, `KILL QUERY ID`, or a `KILL` among other
//! statements.
//!
//! A mapped `KILL` is session control, like PostgreSQL's cancel request: it
//! is recorded, and not decided by the policy (which could not tell one's
//! own session from another's).

use std::collections::HashMap;
use std::sync::Mutex;

/// One live session, as a `KILL` may name it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Relayed {
    identity: String,
    connection: String,
    upstream_thread: Option<u32>,
}

/// The gateway's connection ids of its live MySQL sessions.
#[derive(Debug, Default)]
pub struct ConnectionIds {
    sessions: Mutex<HashMap<u32, Relayed>>,
}

/// What a `KILL` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillKind {
    /// `KILL QUERY`: end the statement running, keep the session.
    Query,
    /// `KILL [CONNECTION]`: end the session.
    Connection,
}

/// A `KILL` of one id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kill {
    pub kind: KillKind,
    pub id: u64,
}

/// What the text of a command is, as far as `KILL` goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KillText {
    /// No `KILL` in it.
    None,
    /// One plain `KILL [HARD|SOFT] [CONNECTION|QUERY] id` and nothing else.
    One(Kill),
    /// A `KILL` the gateway does not map: refused.
    Other,
}

impl ConnectionIds {
    /// A fresh nonzero 31-bit id for a new session, reserved until
    /// [`Self::release`] (before login nobody can name it).
    pub fn allocate(&self) -> u32 {
        let mut sessions = self.lock();
        loop {
            let id = rand::random::<u32>() & 0x7fff_ffff;
            if id != 0 && !sessions.contains_key(&id) {
                sessions.insert(
                    id,
                    Relayed {
                        identity: String::new(),
                        connection: String::new(),
                        upstream_thread: None,
                    },
                );
                return id;
            }
        }
    }

    /// Session `id` now relays `identity` on `connection` through upstream
    /// thread `upstream_thread`.
    pub fn relaying(&self, id: u32, identity: &str, connection: &str, upstream_thread: u32) {
        self.lock().insert(
            id,
            Relayed {
                identity: identity.to_string(),
                connection: connection.to_string(),
                upstream_thread: Some(upstream_thread),
            },
        );
    }

    /// Session `id` ended.
    pub fn release(&self, id: u32) {
        self.lock().remove(&id);
    }

    /// The upstream thread a `KILL` of `id` by `identity` on `connection`
    /// may end: a session of the same identity and connection, named by
    /// its gateway id or its upstream thread id.
    pub fn upstream_thread(&self, id: u64, identity: &str, connection: &str) -> Option<u32> {
        let sessions = self.lock();
        let same = |relayed: &&Relayed| {
            relayed.identity == identity
                && relayed.connection == connection
                && relayed.upstream_thread.is_some()
        };
        let by_gateway_id = u32::try_from(id)
            .ok()
            .and_then(|id| sessions.get(&id))
            .filter(same);
        let relayed = by_gateway_id.or_else(|| {
            sessions
                .values()
                .filter(same)
                .find(|relayed| relayed.upstream_thread.map(u64::from) == Some(id))
        })?;
        relayed.upstream_thread
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Relayed>> {
        // A poisoned map is still a map of live sessions: keep serving it.
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Reads `text` for `KILL`: any statement of it whose first word is `kill`
/// (also inside an executable comment) counts.
pub fn kill_text(text: &str) -> KillText {
    if !text.to_ascii_lowercase().contains("kill") {
        return KillText::None;
    }
    let statements = airlock_sql::split_statements(airlock_sql::Dialect::Mysql, text);
    let kills: Vec<&str> = statements
        .iter()
        .copied()
        .filter(|statement| first_word(statement).eq_ignore_ascii_case("kill"))
        .collect();
    match (kills.as_slice(), statements.len()) {
        ([], _) if !has_hidden_kill(text) => KillText::None,
        ([one], 1) => plain_kill(one).map_or(KillText::Other, KillText::One),
        _ => KillText::Other,
    }
}

/// A `kill` word the statement split does not start a statement with (a
/// version comment or other disguise): treated as a `KILL`.
fn has_hidden_kill(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.match_indices("kill").any(|(at, _)| {
        let before = lower.get(..at).unwrap_or("");
        let before =
            before.trim_end_matches(|c: char| c.is_ascii_whitespace() || c.is_ascii_digit());
        before.ends_with("/*!") || before.ends_with("/*m!") || before.ends_with(';')
    })
}

/// The first word of a statement text, past comments that do not run and
/// an executable comment's opener.
fn first_word(statement: &str) -> &str {
    let mut rest = statement.trim_start();
    loop {
        if let Some(after) = rest
            .strip_prefix("/*!")
            .or_else(|| rest.strip_prefix("/*M!"))
            .or_else(|| rest.strip_prefix("/*m!"))
        {
            rest = after
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .trim_start();
            continue;
        }
        if rest.starts_with("/*") {
            match rest.find("*/") {
                Some(end) => rest = rest.get(end + 2..).unwrap_or("").trim_start(),
                None => return "",
            }
            continue;
        }
        break;
    }
    let end = rest
        .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .unwrap_or(rest.len());
    rest.get(..end).unwrap_or("")
}

/// `KILL [HARD|SOFT] [CONNECTION|QUERY] id`, words only (no comments).
fn plain_kill(statement: &str) -> Option<Kill> {
    let mut words = statement.split_ascii_whitespace().peekable();
    if !words.next()?.eq_ignore_ascii_case("kill") {
        return None;
    }
    if words
        .peek()
        .is_some_and(|word| word.eq_ignore_ascii_case("hard") || word.eq_ignore_ascii_case("soft"))
    {
        words.next();
    }
    let mut kind = KillKind::Connection;
    if let Some(word) = words.peek() {
        if word.eq_ignore_ascii_case("query") {
            kind = KillKind::Query;
            words.next();
        } else if word.eq_ignore_ascii_case("connection") {
            words.next();
        }
    }
    let id = words.next()?.parse::<u64>().ok()?;
    words.next().is_none().then_some(Kill { kind, id })
}

/// The statement sent upstream for a mapped `KILL`.
pub fn upstream_statement(kind: KillKind, upstream_thread: u32) -> String {
    match kind {
        KillKind::Query => format!("KILL QUERY {upstream_thread}"),
        KillKind::Connection => format!("KILL CONNECTION {upstream_thread}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_texts_are_read_strictly() {
        let query = |id| {
            KillText::One(Kill {
                kind: KillKind::Query,
                id,
            })
        };
        let connection = |id| {
            KillText::One(Kill {
                kind: KillKind::Connection,
                id,
            })
        };
        assert_eq!(kill_text("select 1"), KillText::None);
        assert_eq!(kill_text("select 'skill'"), KillText::None);
        assert_eq!(kill_text("KILL QUERY 17"), query(17));
        assert_eq!(kill_text("kill soft query 17;"), query(17));
        assert_eq!(kill_text("KILL 9"), connection(9));
        assert_eq!(kill_text("KILL CONNECTION 9"), connection(9));
        // A comment that does not run is not part of the statement.
        assert_eq!(kill_text("KILL QUERY 5 /* x */"), query(5));
        for other in [
            "KILL USER app",
            "KILL QUERY ID 5",
            "select 1; kill 5",
            "kill 5; kill 6",
            "/*!kill 5 */",
            "select 1 /*!; kill 5 */",
            "KILL QUERY 5 /*!99999 , 6 */",
            "KILL QUERY @id",
        ] {
            assert_eq!(kill_text(other), KillText::Other, "{other}");
        }
    }

    #[test]
    fn only_the_same_identity_and_connection_map() {
        let ids = ConnectionIds::default();
        let mine = ids.allocate();
        let theirs = ids.allocate();
        assert_ne!(mine, theirs);
        // Before its login a session cannot be named.
        assert_eq!(ids.upstream_thread(mine.into(), "agent", "shop"), None);
        ids.relaying(mine, "agent", "shop", 41);
        ids.relaying(theirs, "other", "shop", 42);
        assert_eq!(ids.upstream_thread(mine.into(), "agent", "shop"), Some(41));
        assert_eq!(ids.upstream_thread(41, "agent", "shop"), Some(41));
        assert_eq!(ids.upstream_thread(theirs.into(), "agent", "shop"), None);
        assert_eq!(ids.upstream_thread(42, "agent", "shop"), None);
        assert_eq!(ids.upstream_thread(mine.into(), "agent", "other-db"), None);
        assert_eq!(ids.upstream_thread(7, "agent", "shop"), None);
        ids.release(mine);
        assert_eq!(ids.upstream_thread(41, "agent", "shop"), None);
    }
}
