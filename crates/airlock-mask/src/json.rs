//! Masking JSON values (HTTP and Kubernetes bodies, MCP results) under a
//! decision's mask plan. Pure.
//!
//! Two kinds of rules: the plan's detectors run over every string value
//! and every number (a card number sent as a JSON number is still a card
//! number; a masked number becomes a string), and the obligation's field
//! rules (`$..password`, `$.user.email`, `$.items[*].token`, `['a b']`)
//! mask whole values, every leaf below a matched object or array included.
//! Field names match as case-insensitive globs. Object keys are kept as
//! they are (renaming one could collide with another). The output is
//! always valid JSON: values are replaced by JSON strings.

use globset::{GlobBuilder, GlobMatcher};
use serde_json::{Map, Value};

use crate::{MaskPlan, MaskStats};

/// One step of a field rule.
#[derive(Debug, Clone)]
enum Step {
    /// `.name`: a member of an object.
    Child(GlobMatcher),
    /// `..name`: a member at any depth.
    Descendant(GlobMatcher),
    /// `[N]`.
    Index(usize),
    /// `[*]`: any element or member.
    Any,
}

/// A compiled field rule.
#[derive(Debug, Clone)]
pub struct FieldRule(Vec<Step>);

/// One step of the path to a value.
#[derive(Debug, Clone, Copy)]
enum PathStep<'a> {
    Key(&'a str),
    Index(usize),
}

fn glob(name: &str) -> Option<GlobMatcher> {
    GlobBuilder::new(name)
        .case_insensitive(true)
        .literal_separator(false)
        .build()
        .ok()
        .map(|glob| glob.compile_matcher())
}

impl FieldRule {
    /// Compiles a rule as `airlock-policy` validated it; `None` for one it
    /// would not have accepted.
    pub fn parse(rule: &str) -> Option<Self> {
        let mut rest = rule.strip_prefix('$')?;
        let mut steps = Vec::new();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('.') {
                let (descendant, after) = match after.strip_prefix('.') {
                    Some(deeper) => (true, deeper),
                    None => (false, after),
                };
                let end = after
                    .find(|c: char| matches!(c, '.' | '[' | ']' | '\'' | '"') || c.is_whitespace())
                    .unwrap_or(after.len());
                let (name, tail) = after.split_at(end);
                if name.is_empty() {
                    return None;
                }
                let matcher = glob(name)?;
                steps.push(if descendant {
                    Step::Descendant(matcher)
                } else {
                    Step::Child(matcher)
                });
                rest = tail;
            } else if let Some(after) = rest.strip_prefix('[') {
                let close = after.find(']')?;
                let (inside, tail) = after.split_at(close);
                let quoted = ['\'', '"'].iter().find_map(|quote| {
                    inside
                        .strip_prefix(*quote)
                        .and_then(|text| text.strip_suffix(*quote))
                });
                steps.push(if inside == "*" {
                    Step::Any
                } else if let Some(name) = quoted {
                    Step::Child(glob(&globset::escape(name))?)
                } else {
                    Step::Index(inside.parse().ok()?)
                });
                rest = tail.get(1..).unwrap_or("");
            } else {
                return None;
            }
        }
        (!steps.is_empty()).then_some(Self(steps))
    }

    /// True when the rule matches the value at `path`.
    fn matches(&self, path: &[PathStep<'_>]) -> bool {
        matches_from(&self.0, path)
    }
}

fn matches_from(steps: &[Step], path: &[PathStep<'_>]) -> bool {
    let Some((step, rest_steps)) = steps.split_first() else {
        return path.is_empty();
    };
    match step {
        Step::Descendant(name) => (0..path.len()).any(|skip| {
            matches!(path.get(skip), Some(PathStep::Key(key)) if name.is_match(key))
                && matches_from(rest_steps, path.get(skip + 1..).unwrap_or(&[]))
        }),
        _ => {
            let Some((first, rest_path)) = path.split_first() else {
                return false;
            };
            let here = match (step, first) {
                (Step::Child(name), PathStep::Key(key)) => name.is_match(key),
                (Step::Index(index), PathStep::Index(at)) => index == at,
                (Step::Any, _) => true,
                _ => false,
            };
            here && matches_from(rest_steps, rest_path)
        }
    }
}

/// What masks a JSON document: the plan and the compiled field rules.
pub struct JsonMasker<'p> {
    plan: &'p MaskPlan,
    fields: Vec<FieldRule>,
}

/// How deep the masker follows nested values; deeper ones are masked whole
/// (serde_json refuses documents nested over 128 levels anyway).
const MAX_DEPTH: usize = 256;

impl<'p> JsonMasker<'p> {
    /// The masker for a plan and its field rules. A rule that does not
    /// compile is `Err` (the caller refuses the response: fail closed).
    pub fn new(plan: &'p MaskPlan, fields: &[String]) -> Result<Self, String> {
        let fields = fields
            .iter()
            .map(|rule| {
                FieldRule::parse(rule)
                    .ok_or_else(|| format!("field rule {rule:?} does not compile"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { plan, fields })
    }

    /// Masks `value` in place.
    pub fn mask(&self, value: &mut Value, stats: &mut MaskStats) {
        let mut path = Vec::new();
        self.walk(value, &mut path, stats);
    }

    fn walk<'v>(&self, value: &'v mut Value, path: &mut Vec<PathStep<'v>>, stats: &mut MaskStats) {
        if !path.is_empty() && self.fields.iter().any(|rule| rule.matches(path)) {
            self.mask_whole(value, stats);
            return;
        }
        if path.len() >= MAX_DEPTH {
            self.mask_whole(value, stats);
            return;
        }
        match value {
            Value::String(text) => {
                if let Some(nested) = self.mask_embedded(text, path, stats) {
                    *text = nested;
                } else if let std::borrow::Cow::Owned(masked) = self.plan.mask_text(text, stats) {
                    *text = masked;
                }
            }
            Value::Number(number) => {
                let text = number.to_string();
                if let std::borrow::Cow::Owned(masked) = self.plan.mask_text(&text, stats) {
                    *value = Value::String(masked);
                }
            }
            Value::Array(items) => {
                for (index, item) in items.iter_mut().enumerate() {
                    path.push(PathStep::Index(index));
                    self.walk_child(item, path, stats);
                    path.pop();
                }
            }
            Value::Object(members) => self.walk_members(members, path, stats),
            Value::Null | Value::Bool(_) => {}
        }
    }

    fn walk_members<'v>(
        &self,
        members: &'v mut Map<String, Value>,
        path: &mut Vec<PathStep<'v>>,
        stats: &mut MaskStats,
    ) {
        for (key, member) in members.iter_mut() {
            path.push(PathStep::Key(key));
            self.walk_child(member, path, stats);
            path.pop();
        }
    }

    /// A string that is itself a JSON document (an echo such as httpbin's
    /// `data`, a payload wrapped by an API) is masked as one, the field
    /// rules included: a field rule must not be escaped by quoting.
    fn mask_embedded(
        &self,
        text: &str,
        path: &[PathStep<'_>],
        stats: &mut MaskStats,
    ) -> Option<String> {
        let trimmed = text.trim_start();
        if !(trimmed.starts_with('{') || trimmed.starts_with('[')) || path.len() >= MAX_DEPTH / 2 {
            return None;
        }
        let mut nested: Value = serde_json::from_str(text).ok()?;
        let mut owned: Vec<PathStep<'_>> = path.to_vec();
        self.walk(&mut nested, &mut owned, stats);
        serde_json::to_string(&nested).ok()
    }

    /// Walks a child with a path that borrows only for this call.
    fn walk_child(&self, value: &mut Value, path: &[PathStep<'_>], stats: &mut MaskStats) {
        let mut owned: Vec<PathStep<'_>> = path.to_vec();
        self.walk(value, &mut owned, stats);
    }

    /// Masks every leaf of `value` whole (a field rule matched it).
    fn mask_whole(&self, value: &mut Value, stats: &mut MaskStats) {
        match value {
            Value::Null => {}
            Value::String(text) => {
                *text = self.plan.mask_whole(text);
                stats.record("field", 1);
            }
            Value::Bool(_) | Value::Number(_) => {
                *value = Value::String(self.plan.mask_whole(&value.to_string()));
                stats.record("field", 1);
            }
            Value::Array(items) => {
                for item in items {
                    self.mask_whole(item, stats);
                }
            }
            Value::Object(members) => {
                for member in members.values_mut() {
                    self.mask_whole(member, stats);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MaskSpec, Style};
    use proptest::prelude::*;
    use serde_json::json;

    fn plan() -> MaskPlan {
        MaskPlan::compile(&MaskSpec {
            detectors: vec!["email".into(), "card".into()],
            style: Style::Full,
            ..MaskSpec::default()
        })
        .unwrap()
    }

    fn masked(value: Value, fields: &[&str]) -> Value {
        let plan = plan();
        let fields: Vec<String> = fields.iter().map(|field| field.to_string()).collect();
        let masker = JsonMasker::new(&plan, &fields).unwrap();
        let mut value = value;
        masker.mask(&mut value, &mut MaskStats::new());
        value
    }

    #[test]
    fn masks_detected_values_and_field_rules() {
        let out = masked(
            json!({
                "user": {"email": "ann@example.com", "password": "hunter2", "id": 7},
                "card": 4111111111111111u64,
                "items": [{"token": "abc"}, {"Token": ["x", 1]}],
                "note": "write to bob@example.org",
                "data": "{\"password\": \"quoted-secret\", \"x\": 1}",
            }),
            &["$..password", "$.items[*].*token*"],
        );
        let text = out.to_string();
        for secret in [
            "ann@example.com",
            "hunter2",
            "4111111111111111",
            "abc",
            "bob@example.org",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(out["user"]["id"], 7);
        assert_eq!(out["items"][1]["Token"][1], "*");
        assert!(out["note"].as_str().unwrap().starts_with("write to "));
    }

    #[test]
    fn rules_parse_like_the_policy_accepts_them() {
        for rule in [
            "$..password",
            "$.user.email",
            "$.a[*]",
            "$.a[0].b",
            "$['a b']",
            "$..*token*",
        ] {
            assert!(FieldRule::parse(rule).is_some(), "{rule}");
        }
        for rule in ["password", "$", "$.", "$[x]", "$[0"] {
            assert!(FieldRule::parse(rule).is_none(), "{rule}");
        }
        let rule = FieldRule::parse("$.a[1].b").unwrap();
        assert!(rule.matches(&[PathStep::Key("a"), PathStep::Index(1), PathStep::Key("b")]));
        assert!(!rule.matches(&[PathStep::Key("a"), PathStep::Index(0), PathStep::Key("b")]));
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            "[a-z@. 0-9]{0,24}".prop_map(Value::String),
            Just(json!("x@example.com")),
            Just(json!("4111 1111 1111 1111")),
        ];
        leaf.prop_recursive(6, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map("[a-zA-Z]{0,8}", inner, 0..6)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Never panics, the output is valid JSON that reparses to itself,
        /// and no detected value survives.
        #[test]
        fn masking_keeps_json_valid_and_hides_values(value in json_value()) {
            let out = masked(value, &["$..password", "$.a[*]"]);
            let text = serde_json::to_string(&out).unwrap();
            // Valid JSON (floats may not round-trip bit for bit through
            // serde_json's default parser, so only validity is compared).
            prop_assert!(serde_json::from_str::<Value>(&text).is_ok());
            prop_assert!(!text.contains("x@example.com"));
            prop_assert!(!text.contains("4111 1111 1111 1111"));
        }
    }
}
