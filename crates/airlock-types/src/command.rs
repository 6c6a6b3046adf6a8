//! The protocol-neutral view of one request: [`Command`] and the
//! classification of each statement in it ([`StatementClass`]).
//!
//! The vocabulary is the user-facing contract of DESIGN.md: operation and
//! access names appear in policy files and must stay stable.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a statement does, as named in policy files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Select,
    Insert,
    Update,
    Delete,
    Merge,
    Truncate,
    CopyFrom,
    CopyTo,
    Create,
    Alter,
    Drop,
    Grant,
    Revoke,
    Call,
    Do,
    Prepare,
    Execute,
    Set,
    Show,
    Explain,
    Transaction,
    Lock,
    Maintenance,
    Listen,
    Notify,
    Other,
    Unknown,
}

impl Operation {
    /// Every operation, in declaration order.
    pub const ALL: [Operation; 27] = [
        Self::Select,
        Self::Insert,
        Self::Update,
        Self::Delete,
        Self::Merge,
        Self::Truncate,
        Self::CopyFrom,
        Self::CopyTo,
        Self::Create,
        Self::Alter,
        Self::Drop,
        Self::Grant,
        Self::Revoke,
        Self::Call,
        Self::Do,
        Self::Prepare,
        Self::Execute,
        Self::Set,
        Self::Show,
        Self::Explain,
        Self::Transaction,
        Self::Lock,
        Self::Maintenance,
        Self::Listen,
        Self::Notify,
        Self::Other,
        Self::Unknown,
    ];

    /// The snake_case name used in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Select => "select",
            Self::Insert => "insert",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Merge => "merge",
            Self::Truncate => "truncate",
            Self::CopyFrom => "copy_from",
            Self::CopyTo => "copy_to",
            Self::Create => "create",
            Self::Alter => "alter",
            Self::Drop => "drop",
            Self::Grant => "grant",
            Self::Revoke => "revoke",
            Self::Call => "call",
            Self::Do => "do",
            Self::Prepare => "prepare",
            Self::Execute => "execute",
            Self::Set => "set",
            Self::Show => "show",
            Self::Explain => "explain",
            Self::Transaction => "transaction",
            Self::Lock => "lock",
            Self::Maintenance => "maintenance",
            Self::Listen => "listen",
            Self::Notify => "notify",
            Self::Other => "other",
            Self::Unknown => "unknown",
        }
    }

    /// Parses a policy-file name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.as_str() == text)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far a statement reaches, ordered: `Read < Write < Admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Only returns rows; no effect on data, schema, session or server.
    Read,
    /// Any effect beyond returning rows (DML, DDL, side-effecting functions,
    /// locks, maintenance, NOTIFY).
    Write,
    /// Roles, grants, privilege-changing settings, server control, server-side
    /// file or program access.
    Admin,
}

impl Access {
    /// The snake_case name used in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The classification of one statement.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StatementClass {
    /// Every operation the statement performs, including ones nested in
    /// CTEs, `EXPLAIN ANALYZE` and the like. Sorted, no duplicates.
    pub operations: Vec<Operation>,
    /// The widest access of any operation or function in the statement.
    /// Never `Read` when `complete` is false.
    pub access: Option<Access>,
    /// Tables (as written, lowercased unless quoted) the statement reads.
    pub tables_read: Vec<String>,
    /// Tables the statement writes (insert, update, delete, DDL targets …).
    pub tables_written: Vec<String>,
    /// Functions the statement calls (lowercased, schema-qualified as written).
    pub functions: Vec<String>,
    /// Functions called that the classifier does not know to be side-effect
    /// free; a policy may deny or review them.
    pub unknown_functions: Vec<String>,
    /// For UPDATE/DELETE: whether a WHERE clause bounds it. `None` when the
    /// statement is neither.
    pub has_where: Option<bool>,
    /// False when the classifier is not sure what the statement does.
    pub complete: bool,
}

impl StatementClass {
    /// The effective access: an incomplete classification is never `Read`.
    pub fn effective_access(&self) -> Access {
        match (self.access, self.complete) {
            (Some(Access::Read), true) => Access::Read,
            (Some(Access::Admin), _) => Access::Admin,
            _ => Access::Write,
        }
    }
}

/// One request from a client, as the policy engine sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Command {
    /// The full statement text as the client sent it.
    pub text: String,
    /// One entry per statement in `text`.
    pub statements: Vec<StatementClass>,
}

impl Command {
    /// True when every statement was classified with certainty.
    pub fn complete(&self) -> bool {
        !self.statements.is_empty() && self.statements.iter().all(|s| s.complete)
    }

    /// The widest access of any statement (`Write` for an empty command,
    /// which the classifier never produces for non-empty text).
    pub fn access(&self) -> Access {
        self.statements
            .iter()
            .map(StatementClass::effective_access)
            .max()
            .unwrap_or(Access::Write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_round_trip() {
        for op in Operation::ALL {
            assert_eq!(Operation::parse(op.as_str()), Some(op));
        }
        assert_eq!(Operation::parse("copy"), None);
    }

    #[test]
    fn incomplete_is_never_read() {
        let statement = StatementClass {
            access: Some(Access::Read),
            complete: false,
            ..Default::default()
        };
        assert_eq!(statement.effective_access(), Access::Write);
        let command = Command {
            text: "x".into(),
            statements: vec![statement],
        };
        assert_eq!(command.access(), Access::Write);
        assert!(!command.complete());
    }
}
