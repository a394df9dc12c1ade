//! Examples on the main request and response bodies of the OpenAPI document, in one table so
//! they read as one story (a pulse-oximeter project, its predicate K213456 under product code
//! DQA) and a test can check each against its schema's required fields.

use serde_json::{json, Value};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::{OpenApi, RefOr};

fn examples() -> Vec<(&'static str, Value)> {
    vec![
        (
            "CreateProject",
            json!({
                "name": "Fingertip pulse oximeter",
                "description": "Reflectance SpO2 and pulse-rate monitor for spot checks",
                "device_type": "pulse oximeter",
                "intended_use": "Spot-check measurement of functional oxygen saturation and pulse rate in adults",
                "product_code": "DQA",
                "priority": "high",
                "tags": ["class-ii", "q3"]
            }),
        ),
        (
            "Project",
            json!({
                "id": 42,
                "user_id": 7,
                "name": "Fingertip pulse oximeter",
                "description": "Reflectance SpO2 and pulse-rate monitor for spot checks",
                "device_type": "pulse oximeter",
                "intended_use": "Spot-check measurement of functional oxygen saturation and pulse rate in adults",
                "product_code": "DQA",
                "status": "draft",
                "priority": "high",
                "tags": ["class-ii", "q3"],
                "version": 1,
                "created_at": "2026-03-02T09:15:00Z",
                "updated_at": "2026-03-02T09:15:00Z"
            }),
        ),
        (
            "UpdateProject",
            json!({"status": "in_progress", "priority": null}),
        ),
        (
            "ProjectSearchBody",
            json!({"q": "pulse oximeter", "product_code": "DQA", "limit": 10}),
        ),
        ("SelectPredicate", json!({"is_selected": true})),
        (
            "ExecuteRequest",
            json!({
                "task_type": "device_classification",
                "device_description": "Fingertip sensor that measures blood oxygen saturation",
                "intended_use": "Spot checks of SpO2 in adults"
            }),
        ),
        (
            "ExportRequest",
            json!({"project_id": 42, "format": "csv", "from": "2026-01-01T00:00:00Z"}),
        ),
        (
            "CreateApiKey",
            json!({"name": "ci-pipeline", "expires_at": "2027-01-01T00:00:00Z"}),
        ),
        ("UpdateUser", json!({"role": "auditor"})),
        (
            "ErrorBody",
            json!({
                "code": "validation_failed",
                "message": "invalid value for name",
                "request_id": "0b6c3f4e-2d7a-4f43-9a57-3c1f0e2b9d11",
                "fields": {"name": ["must not be blank"]}
            }),
        ),
    ]
}

/// Puts each example on its schema.
pub fn apply(api: &mut OpenApi) {
    let Some(components) = api.components.as_mut() else {
        return;
    };
    for (name, example) in examples() {
        if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(name) {
            object.examples = vec![example];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_example_names_an_object_schema_and_has_its_required_fields() {
        let api = crate::http::openapi_document();
        let schemas = &api.components.as_ref().expect("components").schemas;
        for (name, example) in examples() {
            let Some(RefOr::T(Schema::Object(object))) = schemas.get(name) else {
                panic!("{name} is not an object schema");
            };
            for field in &object.required {
                assert!(example.get(field).is_some(), "{name} example lacks {field}");
            }
            for key in example.as_object().expect("an object").keys() {
                assert!(
                    object.properties.contains_key(key),
                    "{name} example has {key}, which the schema lacks"
                );
            }
        }
    }
}
