//! The OpenAPI document: a snapshot that makes every API change visible in review, and checks
//! that every operation documents its errors.

use serde_json::Value;

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/openapi.json");

#[test]
fn the_spec_matches_the_reviewed_snapshot() {
    let spec = regassist::http::openapi_document();
    let text = serde_json::to_string_pretty(&spec).unwrap() + "\n";
    if std::env::var("UPDATE_SNAPSHOTS").is_ok() {
        std::fs::write(SNAPSHOT, &text).unwrap();
        return;
    }
    let reviewed = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
    assert!(
        reviewed == text,
        "the OpenAPI document changed: review it, then run `UPDATE_SNAPSHOTS=1 cargo test --test api openapi` and commit tests/snapshots/openapi.json"
    );
}

#[test]
fn every_operation_documents_its_errors() {
    let spec: Value = serde_json::to_value(regassist::http::openapi_document()).unwrap();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("500"), "{method} {path}");
            if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                for code in ["401", "403", "429"] {
                    assert!(responses.contains_key(code), "{method} {path} lacks {code}");
                }
            }
            if path.contains('{') {
                assert!(responses.contains_key("404"), "{method} {path} lacks 404");
            }
            if op.get("requestBody").is_some() {
                assert!(responses.contains_key("422"), "{method} {path} lacks 422");
            }
        }
    }
}

/// Every "not only whitespace" pattern is the one `str::trim` agrees with (see `NOT_BLANK`):
/// attribute macros take only literals, so the text is repeated and could drift.
#[test]
fn not_blank_patterns_are_the_checked_one() {
    fn walk(v: &Value, found: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(p)) = map.get("pattern") {
                    if p.contains("u0085") || p.contains("\\S") || p.contains("\\s") {
                        found.push(p.clone());
                    }
                }
                map.values().for_each(|x| walk(x, found));
            }
            Value::Array(items) => items.iter().for_each(|x| walk(x, found)),
            _ => {}
        }
    }
    let spec: Value = serde_json::to_value(regassist::http::openapi_document()).unwrap();
    let mut found = Vec::new();
    walk(&spec, &mut found);
    assert!(found.len() >= 4, "{found:?}");
    for p in found {
        assert_eq!(p, regassist::domain::project::NOT_BLANK);
    }
}

/// Generators name methods after operationIds: each must exist, be unique, and read as a
/// camelCase verb and noun (`listProjects`), so a route rename does not rename client methods.
#[test]
fn operation_ids_are_unique_camel_case_verb_noun() {
    let spec: Value = serde_json::to_value(regassist::http::openapi_document()).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_default();
            assert!(
                id.len() > 3
                    && id.starts_with(|c: char| c.is_ascii_lowercase())
                    && id.chars().all(|c| c.is_ascii_alphanumeric())
                    && id.chars().any(|c| c.is_ascii_uppercase()),
                "{method} {path}: operationId {id:?} is not camelCase verb+noun"
            );
            assert!(
                seen.insert(id.to_string()),
                "operationId {id} is used twice"
            );
        }
    }
}

/// Every response names the request id header; the error responses of 429/503 name Retry-After.
#[test]
fn responses_document_their_headers() {
    let spec: Value = serde_json::to_value(regassist::http::openapi_document()).unwrap();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                let headers = &response["headers"];
                assert!(
                    headers.get("X-Request-ID").is_some(),
                    "{method} {path} {status}"
                );
                if status == "429" || status == "503" {
                    assert!(
                        headers.get("Retry-After").is_some(),
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
    let list = &spec["paths"]["/api/projects"]["get"]["responses"]["200"]["headers"];
    assert!(list.get("X-Total-Count").is_some());
    let created = &spec["paths"]["/api/projects"]["post"]["responses"]["201"]["headers"];
    assert!(created.get("ETag").is_some() && created.get("Location").is_some());
}
