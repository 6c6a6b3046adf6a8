//! The fixture's objects: what `kubectl` creates, reads, patches and
//! deletes, each with a `resourceVersion` from one counter, plus the
//! event history a watch replays from a given version. Pure (no I/O).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::discovery::ResourceKind;

/// Where an object lives: resource, namespace (`""` cluster-scoped), name.
pub type ObjectKey = (String, String, String);

/// One change, as a watch sends it.
#[derive(Debug, Clone)]
pub struct Change {
    pub revision: u64,
    pub key: ObjectKey,
    /// `ADDED`, `MODIFIED`, `DELETED`.
    pub kind: &'static str,
    pub object: Value,
}

/// Every object and every change.
#[derive(Debug, Default)]
pub struct Store {
    pub objects: BTreeMap<ObjectKey, Value>,
    pub created_at: BTreeMap<ObjectKey, u64>,
    pub revision: u64,
    pub changes: Vec<Change>,
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// RFC 3339 UTC for Unix `seconds` (civil-from-days, proleptic Gregorian).
pub fn rfc3339(seconds: u64) -> String {
    let days = i64::try_from(seconds / 86_400).unwrap_or(0);
    let rest = seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Age as kubectl prints it (`42s`, `5m`, `3h`, `2d`).
pub fn age(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Why a write failed: (HTTP status, reason, message).
pub type Failure = (u16, &'static str, String);

impl Store {
    fn record(&mut self, key: &ObjectKey, kind: &'static str, object: &Value) {
        self.changes.push(Change {
            revision: self.revision,
            key: key.clone(),
            kind,
            object: object.clone(),
        });
    }

    /// How long ago `key` was created.
    pub fn age_of(&self, key: &ObjectKey) -> u64 {
        now_seconds().saturating_sub(self.created_at.get(key).copied().unwrap_or(0))
    }

    /// Stores `object` as new (or replaces it, `replace`), stamping its
    /// metadata; `dry_run` validates and returns without storing.
    pub fn put(
        &mut self,
        kind: &ResourceKind,
        key: ObjectKey,
        mut object: Value,
        replace: bool,
        dry_run: bool,
    ) -> Result<Value, Failure> {
        let exists = self.objects.contains_key(&key);
        if exists && !replace {
            return Err((
                409,
                "AlreadyExists",
                format!("{} \"{}\" already exists", kind.resource, key.2),
            ));
        }
        if !exists && replace {
            return Err((
                404,
                "NotFound",
                format!("{} \"{}\" not found", kind.resource, key.2),
            ));
        }
        if !object.is_object() {
            return Err((400, "BadRequest", "the body is not an object".into()));
        }
        let previous = self.objects.get(&key).cloned();
        let revision = self.revision + 1;
        object["kind"] = json!(kind.kind);
        object["apiVersion"] = json!(kind.api_version());
        let metadata = object
            .as_object_mut()
            .map(|o| o.entry("metadata").or_insert_with(|| json!({})).clone())
            .unwrap_or_else(|| json!({}));
        let mut metadata = if metadata.is_object() {
            metadata
        } else {
            json!({})
        };
        metadata["name"] = json!(key.2);
        if kind.namespaced {
            metadata["namespace"] = json!(key.1);
        }
        metadata["resourceVersion"] = json!(revision.to_string());
        let created = previous
            .as_ref()
            .and_then(|p| {
                p["metadata"]["creationTimestamp"]
                    .as_str()
                    .map(str::to_string)
            })
            .unwrap_or_else(|| rfc3339(now_seconds()));
        metadata["creationTimestamp"] = json!(created);
        let uid = previous
            .as_ref()
            .and_then(|p| p["metadata"]["uid"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("00000000-0000-4000-8000-{revision:012}"));
        metadata["uid"] = json!(uid);
        object["metadata"] = metadata;
        if kind.resource == "pods" && object["status"]["phase"].is_null() {
            object["status"] = json!({"phase": "Running"});
        }
        if kind.resource == "namespaces" {
            object["status"] = json!({"phase": "Active"});
        }
        if dry_run {
            return Ok(object);
        }
        self.revision = revision;
        self.created_at
            .entry(key.clone())
            .or_insert_with(now_seconds);
        self.objects.insert(key.clone(), object.clone());
        self.record(&key, if exists { "MODIFIED" } else { "ADDED" }, &object);
        Ok(object)
    }

    /// Removes `key`; the object as it was.
    pub fn delete(&mut self, key: &ObjectKey, dry_run: bool) -> Option<Value> {
        let object = self.objects.get(key)?.clone();
        if dry_run {
            return Some(object);
        }
        self.objects.remove(key);
        self.created_at.remove(key);
        self.revision += 1;
        let mut gone = object.clone();
        gone["metadata"]["resourceVersion"] = json!(self.revision.to_string());
        self.record(key, "DELETED", &gone);
        Some(object)
    }

    /// The objects of `resource` in `namespace` (all namespaces: `None`).
    pub fn list(&self, resource: &str, namespace: Option<&str>) -> Vec<(ObjectKey, Value)> {
        self.objects
            .iter()
            .filter(|((r, ns, _), _)| r == resource && namespace.is_none_or(|n| n == ns))
            .map(|(key, object)| (key.clone(), object.clone()))
            .collect()
    }
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    for (name, value) in fields {
        if value.is_null() {
            if let Some(object) = target.as_object_mut() {
                object.remove(name);
            }
        } else {
            merge_patch(&mut target[name.as_str()], value);
        }
    }
}

/// RFC 6902 JSON patch (`add`, `replace`, `remove` on object paths).
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), String> {
    for operation in patch.as_array().ok_or("a JSON patch is an array")? {
        let op = operation["op"].as_str().unwrap_or("");
        let path = operation["path"]
            .as_str()
            .ok_or("a JSON patch operation needs a path")?;
        let pointer = path.rsplit_once('/').ok_or("bad path")?;
        let parent = target
            .pointer_mut(pointer.0)
            .and_then(Value::as_object_mut)
            .ok_or_else(|| format!("path {path} not found"))?;
        let key = pointer.1.replace("~1", "/").replace("~0", "~");
        match op {
            "add" | "replace" => {
                parent.insert(key, operation["value"].clone());
            }
            "remove" => {
                parent.remove(&key);
            }
            other => return Err(format!("op {other:?} is not supported by the fixture")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_patches() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        let mut object = json!({"data": {"a": "1", "b": "2"}});
        merge_patch(&mut object, &json!({"data": {"a": null, "c": "3"}}));
        assert_eq!(object, json!({"data": {"b": "2", "c": "3"}}));
        json_patch(
            &mut object,
            &json!([{"op": "replace", "path": "/data/b", "value": "x"}]),
        )
        .unwrap();
        assert_eq!(object["data"]["b"], "x");
    }
}
