//! What the server holds under each prepared-statement and portal name of
//! one PostgreSQL session, as far as the gateway knows it for certain.
//!
//! The client names server-side objects and can reach them by more than
//! one route: SQL `PREPARE` and the protocol's `Parse` share one namespace
//! of statements; SQL cursors (`DECLARE`, PL/pgSQL `OPEN`) and the
//! protocol's `Bind` share one namespace of portals. A name the gateway
//! maps to the wrong statement would run something other than what was
//! decided, or return rows under another statement's mask. So this map
//! holds only what the gateway can vouch for, and is pure state (no I/O):
//!
//! - an entry is created when its `Parse`, `PREPARE` or `Bind` is sent, in
//!   the protocol segment it was sent in (segments end at `Sync` or with a
//!   `Query`; the server answers each with one `ReadyForQuery`);
//! - an entry whose creation the server rejected or skipped is removed as
//!   soon as the response is seen ([`Names::failed`]), so rejected state is
//!   never believed (a `Parse` of a name that exists fails upstream and
//!   leaves the old statement in place: the gateway then knows neither);
//! - an entry is used in its own segment at once (if its creation failed,
//!   the server skips the rest of the segment), and in a later segment only
//!   once every earlier segment has been answered ([`Lookup::Wait`]);
//! - a named portal lives only as long as the transaction it was bound in:
//!   one `ReadyForQuery` outside a transaction block ends it;
//! - `Close`, `DEALLOCATE`, `DISCARD ALL`, `CLOSE` and `DECLARE` remove the
//!   names they touch when sent, and any statement that could open or close
//!   cursors out of sight (procedural code, unknown functions) removes every
//!   named portal. Removing is always safe: an unknown name is refused.

use std::collections::HashMap;

/// Bound on names remembered per session and namespace.
pub const MAX_NAMES: usize = 10_000;

/// Which namespace a name lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Space {
    /// Prepared statements (protocol `Parse` and SQL `PREPARE`).
    Statement,
    /// Portals (protocol `Bind`).
    Portal,
}

/// A creation the server did not carry out (rejected, or skipped after an
/// earlier error), reported by the response side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub space: Space,
    pub name: String,
    pub id: u64,
}

/// The answer to "what does this name run?".
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'a, T> {
    /// The server holds exactly this (or nothing, and will fail the use).
    Ready(&'a T),
    /// Not known yet: wait until the server has answered this many segments.
    Wait(u64),
    /// The gateway cannot vouch for any statement under this name.
    Missing,
}

struct Entry<T> {
    value: T,
    /// The segment the creation was sent in (1-based).
    segment: u64,
    id: u64,
}

/// The names of one session. `T` is what a statement runs, `P` what a
/// portal runs.
pub struct Names<T, P> {
    statements: HashMap<String, Entry<T>>,
    portals: HashMap<String, Entry<P>>,
    next_id: u64,
}

/// Too many names in one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooMany(pub Space);

impl<T, P> Default for Names<T, P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, P> Names<T, P> {
    pub fn new() -> Self {
        Self {
            statements: HashMap::new(),
            portals: HashMap::new(),
            next_id: 0,
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A statement created (`Parse` or `PREPARE`) in `segment`. Returns the
    /// id to report a failure with.
    pub fn define_statement(&mut self, name: &str, value: T, segment: u64) -> Result<u64, TooMany> {
        if self.statements.len() >= MAX_NAMES && !self.statements.contains_key(name) {
            return Err(TooMany(Space::Statement));
        }
        let id = self.id();
        self.statements
            .insert(name.to_string(), Entry { value, segment, id });
        Ok(id)
    }

    /// A portal bound in `segment`. Returns the id to report a failure with.
    pub fn bind_portal(&mut self, name: &str, value: P, segment: u64) -> Result<u64, TooMany> {
        if self.portals.len() >= MAX_NAMES && !self.portals.contains_key(name) {
            return Err(TooMany(Space::Portal));
        }
        let id = self.id();
        self.portals
            .insert(name.to_string(), Entry { value, segment, id });
        Ok(id)
    }

    /// What statement `name` runs, asked from `segment` when `answered`
    /// segments have been answered.
    pub fn statement(&self, name: &str, segment: u64, answered: u64) -> Lookup<'_, T> {
        match self.statements.get(name) {
            None => Lookup::Missing,
            Some(entry) if entry.segment == segment || entry.segment <= answered => {
                Lookup::Ready(&entry.value)
            }
            Some(entry) => Lookup::Wait(entry.segment),
        }
    }

    /// Mutable access to a statement that [`Names::statement`] found ready.
    pub fn statement_mut(&mut self, name: &str) -> Option<&mut T> {
        self.statements.get_mut(name).map(|entry| &mut entry.value)
    }

    /// What portal `name` runs, asked from `segment` when `answered`
    /// segments have been answered and the last segment that ended outside
    /// a transaction block is `ended_outside`.
    pub fn portal(
        &mut self,
        name: &str,
        segment: u64,
        answered: u64,
        ended_outside: u64,
    ) -> Lookup<'_, P> {
        let Some(bound_in) = self.portals.get(name).map(|entry| entry.segment) else {
            return Lookup::Missing;
        };
        if bound_in != segment {
            // Bound in an earlier segment: alive only if no segment since
            // (its own included) ended outside a transaction block, which
            // needs every earlier segment answered.
            let previous = segment.saturating_sub(1);
            if answered < previous {
                return Lookup::Wait(previous);
            }
            if ended_outside >= bound_in {
                self.portals.remove(name);
                return Lookup::Missing;
            }
        }
        match self.portals.get(name) {
            Some(entry) => Lookup::Ready(&entry.value),
            None => Lookup::Missing,
        }
    }

    /// Mutable access to a portal, whatever its state (for marking it
    /// described or updating its decision).
    pub fn portal_mut(&mut self, name: &str) -> Option<&mut P> {
        self.portals.get_mut(name).map(|entry| &mut entry.value)
    }

    /// The latest segment of a statement created before `segment` that is
    /// not answered yet, if any: what an SQL `EXECUTE` must wait for before
    /// it is classified.
    pub fn unanswered_statements(&self, segment: u64, answered: u64) -> Option<u64> {
        self.statements
            .values()
            .filter(|entry| entry.segment != segment && entry.segment > answered)
            .map(|entry| entry.segment)
            .max()
    }

    /// Statements usable from `segment` (for classifying SQL `EXECUTE`).
    pub fn ready_statements(
        &self,
        segment: u64,
        answered: u64,
    ) -> impl Iterator<Item = (&str, &T)> + '_ {
        self.statements
            .iter()
            .filter(move |(_, entry)| entry.segment == segment || entry.segment <= answered)
            .map(|(name, entry)| (name.as_str(), &entry.value))
    }

    /// The server rejected or skipped a creation.
    pub fn failed(&mut self, failed: &Failed) {
        match failed.space {
            Space::Statement => {
                if self
                    .statements
                    .get(&failed.name)
                    .is_some_and(|entry| entry.id == failed.id)
                {
                    self.statements.remove(&failed.name);
                }
            }
            Space::Portal => {
                if self
                    .portals
                    .get(&failed.name)
                    .is_some_and(|entry| entry.id == failed.id)
                {
                    self.portals.remove(&failed.name);
                }
            }
        }
    }

    pub fn close_statement(&mut self, name: &str) {
        self.statements.remove(name);
    }

    pub fn close_portal(&mut self, name: &str) {
        self.portals.remove(name);
    }

    pub fn clear_statements(&mut self) {
        self.statements.clear();
    }

    /// Forgets every named portal (and the unnamed one).
    pub fn clear_portals(&mut self) {
        self.portals.clear();
    }

    /// Number of statements and portals known (for tests and bounds).
    pub fn len(&self) -> (usize, usize) {
        (self.statements.len(), self.portals.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestNames = Names<&'static str, &'static str>;

    #[test]
    fn a_statement_is_usable_in_its_own_segment_and_after_its_answer() {
        let mut names = TestNames::new();
        names.define_statement("s", "select 1", 3).unwrap();
        assert_eq!(names.statement("s", 3, 0), Lookup::Ready(&"select 1"));
        assert_eq!(names.statement("s", 4, 2), Lookup::Wait(3));
        assert_eq!(names.statement("s", 4, 3), Lookup::Ready(&"select 1"));
        assert_eq!(names.statement("t", 4, 3), Lookup::Missing);
    }

    #[test]
    fn a_rejected_creation_is_forgotten_but_not_a_newer_one() {
        let mut names = TestNames::new();
        let first = names.define_statement("s", "delete", 1).unwrap();
        names.failed(&Failed {
            space: Space::Statement,
            name: "s".into(),
            id: first,
        });
        assert_eq!(names.statement("s", 2, 1), Lookup::Missing);
        let old = names.define_statement("s", "select", 2).unwrap();
        let new = names.define_statement("s", "select 2", 3).unwrap();
        names.failed(&Failed {
            space: Space::Statement,
            name: "s".into(),
            id: old,
        });
        assert_eq!(names.statement("s", 3, 0), Lookup::Ready(&"select 2"));
        assert_ne!(old, new);
    }

    #[test]
    fn a_portal_dies_with_its_transaction() {
        let mut names = TestNames::new();
        names.bind_portal("p", "select email", 5).unwrap();
        assert_eq!(names.portal("p", 5, 0, 0), Lookup::Ready(&"select email"));
        // Segment 7 asks while segment 6 is unanswered.
        assert_eq!(names.portal("p", 7, 5, 0), Lookup::Wait(6));
        // Segments 5 and 6 ended inside a transaction block.
        assert_eq!(names.portal("p", 7, 6, 4), Lookup::Ready(&"select email"));
        // Segment 6 ended outside one: the portal is gone.
        assert_eq!(names.portal("p", 7, 6, 6), Lookup::Missing);
        assert_eq!(names.len().1, 0);
    }

    #[test]
    fn unanswered_statements_name_the_latest_segment() {
        let mut names = TestNames::new();
        names.define_statement("a", "x", 2).unwrap();
        names.define_statement("b", "y", 4).unwrap();
        names.define_statement("c", "z", 6).unwrap();
        assert_eq!(names.unanswered_statements(6, 1), Some(4));
        assert_eq!(names.unanswered_statements(6, 4), None);
        let ready: Vec<&str> = names.ready_statements(6, 2).map(|(name, _)| name).collect();
        assert_eq!(ready.len(), 2, "{ready:?}");
    }

    #[test]
    fn names_are_bounded() {
        let mut names = TestNames::new();
        for index in 0..MAX_NAMES {
            names.define_statement(&index.to_string(), "x", 1).unwrap();
        }
        assert_eq!(
            names.define_statement("one more", "x", 1),
            Err(TooMany(Space::Statement))
        );
        assert!(names.define_statement("7", "replaced", 1).is_ok());
    }
}
