//! The airlock policy engine: the policy file model, its validation, the one
//! pure decision function, explain reports, and a pure rate limiter. One
//! rule language for every protocol: SQL statements, HTTP and Kubernetes
//! requests and MCP calls (see [`decide`] for how each is matched).
//!
//! This crate decides; it never does I/O (beyond [`Policy::from_file`]),
//! never reads a clock, and never performs the obligations it returns
//! (masking and rate limiting are carried out by the gateway). Evaluation
//! semantics are documented in [`decide`].

pub mod decide;
pub mod error;
pub mod explain;
mod model;
pub mod policy;
pub mod rate_limit;
pub mod validate;

pub use decide::{
    decide, decide_access, standing_access, AccessDecision, Decision, DecisionInput, MatchedAction,
    MatchedRule, RateLimitObligation, Verdict,
};
pub use error::{PolicyError, Problem};
pub use explain::{explain, Explanation};
pub use policy::{
    AccessRule, Conditions, CustomDetector, DefaultAction, HttpConditions, KubernetesConditions,
    MaskObligation, MaskStyle, McpConditions, Policy, ReviewSpec, Rule, RuleAction, TimeWindow,
    Validator,
};
pub use rate_limit::{RateKey, RateLimiter, RetryAfter};
pub use validate::BUILTIN_DETECTORS;
