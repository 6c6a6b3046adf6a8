//! Server-side printing: the `Table` (`meta.k8s.io/v1`) the API server
//! answers when the client asks for `application/json;as=Table;…` (what
//! `kubectl get` does), with the columns kubectl shows for the fixture's
//! kinds and each row's object as `PartialObjectMetadata`.

use serde_json::{json, Value};

use super::discovery::ResourceKind;
use super::store::{age, ObjectKey, Store};

/// True when the client asks for a Table.
pub fn wants_table(accept: Option<&str>) -> bool {
    accept.is_some_and(|accept| accept.contains("as=Table"))
}

fn columns(kind: &ResourceKind) -> Vec<(&'static str, &'static str)> {
    let mut columns = vec![("Name", "string")];
    match kind.resource {
        "pods" => columns.extend([
            ("Ready", "string"),
            ("Status", "string"),
            ("Restarts", "integer"),
        ]),
        "configmaps" => columns.push(("Data", "integer")),
        "secrets" => columns.extend([("Type", "string"), ("Data", "integer")]),
        "deployments" => columns.extend([
            ("Ready", "string"),
            ("Up-to-date", "integer"),
            ("Available", "integer"),
        ]),
        "namespaces" => columns.push(("Status", "string")),
        _ => {}
    }
    columns.push(("Age", "string"));
    columns
}

fn cells(kind: &ResourceKind, object: &Value, age_seconds: u64) -> Vec<Value> {
    let name = object["metadata"]["name"].clone();
    let count = |field: &str| object[field].as_object().map_or(0, serde_json::Map::len);
    let mut cells = vec![name];
    match kind.resource {
        "pods" => {
            let phase = object["status"]["phase"].as_str().unwrap_or("Pending");
            cells.extend([json!("1/1"), json!(phase), json!(0)]);
        }
        "configmaps" => cells.push(json!(count("data") + count("binaryData"))),
        "secrets" => {
            let kind_of = object["type"].as_str().unwrap_or("Opaque");
            cells.extend([json!(kind_of), json!(count("data"))]);
        }
        "deployments" => {
            let replicas = object["spec"]["replicas"].as_u64().unwrap_or(1);
            cells.extend([
                json!(format!("{replicas}/{replicas}")),
                json!(replicas),
                json!(replicas),
            ]);
        }
        "namespaces" => cells.push(json!("Active")),
        _ => {}
    }
    cells.push(json!(age(age_seconds)));
    cells
}

/// A Table of `objects` (with the list's `resource_version`).
pub fn table(
    kind: &ResourceKind,
    store: &Store,
    objects: &[(ObjectKey, Value)],
    resource_version: &str,
) -> Value {
    let definitions: Vec<Value> = columns(kind)
        .into_iter()
        .enumerate()
        .map(|(index, (name, type_name))| {
            json!({
                "name": name,
                "type": type_name,
                "format": if index == 0 { "name" } else { "" },
                "description": "",
                "priority": 0,
            })
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|(key, object)| {
            json!({
                "cells": cells(kind, object, store.age_of(key)),
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": object["metadata"].clone(),
                },
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": rows,
    })
}
