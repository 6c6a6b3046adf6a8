//! What a command's record keeps of its decision (the `policy` field of a
//! `command` record): the classification, the verdict, the rules that
//! matched. Typed, because the gate builds one for every command: a
//! `serde_json::Value` map cost an allocation per key and a tree walk per
//! field on the hot path. The JSON it serializes to is the one readers
//! (`session show`, the web UI, exports) already read.

use std::borrow::Cow;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use airlock_types::{Access, Command};

/// What the classifier said of a command, under which policy version.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    pub policy_version: i64,
    /// The statements' operations, sorted, each once.
    pub operations: Vec<&'static str>,
    /// The tables read or written, sorted, each once.
    pub tables: Vec<String>,
    pub access: Access,
    pub complete: bool,
    pub statements: usize,
}

impl Classification {
    /// The classification of `command` under policy `version`.
    pub fn of(command: &Command, version: i64) -> Self {
        let statements = command.statements();
        let mut operations: Vec<&'static str> = statements
            .iter()
            .flat_map(|statement| statement.operations.iter().map(|op| op.as_str()))
            .collect();
        operations.sort_unstable();
        operations.dedup();
        let mut tables: Vec<&str> = statements
            .iter()
            .flat_map(|statement| {
                statement
                    .tables_read
                    .iter()
                    .chain(&statement.tables_written)
                    .map(String::as_str)
            })
            .collect();
        tables.sort_unstable();
        tables.dedup();
        Self {
            policy_version: version,
            operations,
            tables: tables.into_iter().map(str::to_owned).collect(),
            access: command.access(),
            complete: command.complete(),
            statements: statements.len(),
        }
    }
}

/// A decision as recorded. Every part is optional: a command a protocol
/// refused before the gate has a verdict and a reason, nothing else.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Details {
    pub classification: Option<Classification>,
    /// `allow`, `deny`, `review`, `approved`, `rate_limited`, `empty`,
    /// `syntax_error` …
    pub verdict: Option<Cow<'static, str>>,
    /// The names of the rules that matched, when a policy decided.
    pub rules: Option<Vec<String>>,
    /// The rule that refused or held the command.
    pub rule: Option<String>,
    /// The review that decided it.
    pub review: Option<String>,
    /// What a protocol adds beyond these (`reason`, `review_at` …).
    pub other: Map<String, Value>,
}

impl Details {
    /// Details with only a verdict.
    pub fn verdict(verdict: &'static str) -> Self {
        Self {
            verdict: Some(Cow::Borrowed(verdict)),
            ..Self::default()
        }
    }

    /// Details holding only a classification.
    pub fn classified(classification: Classification) -> Self {
        Self {
            classification: Some(classification),
            ..Self::default()
        }
    }

    /// The same, with `key` set to `value` among the protocol's additions.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.other.insert(key.to_owned(), value.into());
        self
    }

    /// Sets the verdict.
    pub fn set_verdict(&mut self, verdict: &'static str) {
        self.verdict = Some(Cow::Borrowed(verdict));
    }

    /// The rule that refused or held the command.
    pub fn rule(&self) -> Option<&str> {
        self.rule.as_deref()
    }

    /// True when there is nothing to record.
    pub fn is_empty(&self) -> bool {
        self.classification.is_none()
            && self.verdict.is_none()
            && self.rules.is_none()
            && self.rule.is_none()
            && self.review.is_none()
            && self.other.is_empty()
    }

    /// As JSON (for a review request, which the store keeps as JSON).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Details read back from JSON (a review's stored classification, or what
/// a protocol wrote with `json!`): the known fields typed, the rest kept.
impl From<Value> for Details {
    fn from(value: Value) -> Self {
        let Value::Object(mut map) = value else {
            return Self::default();
        };
        let mut take_string = |key: &str| match map.remove(key) {
            Some(Value::String(text)) => Some(text),
            Some(other) => {
                map.insert(key.to_owned(), other);
                None
            }
            None => None,
        };
        let verdict = take_string("verdict").map(Cow::Owned);
        let rule = take_string("rule");
        let review = take_string("review");
        Self {
            classification: None,
            verdict,
            rules: None,
            rule,
            review,
            other: map,
        }
    }
}

impl Serialize for Details {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if let Some(classification) = &self.classification {
            map.serialize_entry("policy_version", &classification.policy_version)?;
            map.serialize_entry("operations", &classification.operations)?;
            map.serialize_entry("tables", &classification.tables)?;
            map.serialize_entry("access", &classification.access)?;
            map.serialize_entry("complete", &classification.complete)?;
            map.serialize_entry("statements", &classification.statements)?;
        }
        if let Some(verdict) = &self.verdict {
            map.serialize_entry("verdict", verdict)?;
        }
        if let Some(rules) = &self.rules {
            map.serialize_entry("rules", rules)?;
        }
        if let Some(rule) = &self.rule {
            map.serialize_entry("rule", rule)?;
        }
        if let Some(review) = &self.review {
            map.serialize_entry("review", review)?;
        }
        for (key, value) in &self.other {
            // A key the typed fields carry is never written twice.
            if !self.typed(key) {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

impl Details {
    fn typed(&self, key: &str) -> bool {
        match key {
            "policy_version" | "operations" | "tables" | "access" | "complete" | "statements" => {
                self.classification.is_some()
            }
            "verdict" => self.verdict.is_some(),
            "rules" => self.rules.is_some(),
            "rule" => self.rule.is_some(),
            "review" => self.review.is_some(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn classification() -> Classification {
        Classification {
            policy_version: 3,
            operations: vec!["select"],
            tables: vec!["public.t".into()],
            access: Access::Read,
            complete: true,
            statements: 1,
        }
    }

    #[test]
    fn serializes_as_the_record_always_read_it() {
        let mut details = Details::classified(classification());
        details.set_verdict("deny");
        details.rules = Some(vec!["no-drop".into()]);
        details.rule = Some("no-drop".into());
        let json = serde_json::to_value(&details).unwrap();
        assert_eq!(
            json,
            json!({
                "policy_version": 3,
                "operations": ["select"],
                "tables": ["public.t"],
                "access": "read",
                "complete": true,
                "statements": 1,
                "verdict": "deny",
                "rules": ["no-drop"],
                "rule": "no-drop",
            })
        );
    }

    #[test]
    fn json_details_keep_every_field_once() {
        let details =
            Details::from(json!({"verdict": "deny", "reason": "unknown name", "rule": 7}));
        assert_eq!(details.verdict.as_deref(), Some("deny"));
        assert_eq!(
            details.rule(),
            None,
            "a rule that is not a name is kept as it was"
        );
        let json = serde_json::to_value(&details).unwrap();
        assert_eq!(
            json,
            json!({"verdict": "deny", "reason": "unknown name", "rule": 7})
        );
        let mut overridden = details.with("verdict", "stale");
        overridden.set_verdict("approved");
        let json = serde_json::to_string(&overridden).unwrap();
        assert_eq!(json.matches("verdict").count(), 1, "{json}");
        assert!(json.contains("\"approved\""), "{json}");
    }

    #[test]
    fn a_review_round_trip_keeps_the_classification() {
        let mut details = Details::classified(classification());
        details.set_verdict("review");
        details.rule = Some("hold".into());
        let stored = details.to_value();
        let back = serde_json::to_value(Details::from(stored.clone())).unwrap();
        assert_eq!(back, stored);
        assert!(Details::default().is_empty());
        assert!(!Details::verdict("empty").is_empty());
    }
}
