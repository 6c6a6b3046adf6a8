//! Policy loading errors: every problem of a policy file, each with where it
//! is.
//!
//! A policy that does not load must be fixed by a person, so the error lists
//! *all* problems at once (not the first), one per line, as
//! `policy.yaml:LINE: rule "name": problem`.

use serde::Serialize;
use std::fmt;

/// One problem in a policy file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// 1-based line in the file (0 when unknown).
    pub line: u64,
    /// The rule the problem is in, if any.
    pub rule: Option<String>,
    /// What is wrong, starting with the field path (`match.operations: …`).
    pub message: String,
}

/// A policy file that cannot be used, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    /// The file name used in messages (`policy.yaml`).
    pub source_name: String,
    /// Every problem, in file order.
    pub problems: Vec<Problem>,
}

impl PolicyError {
    pub(crate) fn single(source_name: &str, line: u64, message: String) -> Self {
        Self {
            source_name: source_name.to_string(),
            problems: vec![Problem {
                line,
                rule: None,
                message,
            }],
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.problems.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            if problem.line == 0 {
                write!(f, "{}: ", self.source_name)?;
            } else {
                write!(f, "{}:{}: ", self.source_name, problem.line)?;
            }
            if let Some(rule) = &problem.rule {
                write!(f, "rule \"{rule}\": ")?;
            }
            write!(f, "{}", problem.message)?;
        }
        Ok(())
    }
}
