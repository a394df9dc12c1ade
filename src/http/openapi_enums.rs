//! The closed sets of string values (project status, priority, role, error code, export format,
//! device class, …) as named enum schemas in the OpenAPI document, put on every property and
//! parameter that carries one, so generated clients get enums instead of plain strings.
//!
//! The Rust types stay `String` (they are stored and compared as text); the values come from the
//! constants the code validates against, so the document cannot list a value the server refuses.

use serde_json::Value;
use utoipa::openapi::schema::{Object, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{OpenApi, Ref, RefOr};

use crate::accounts::ROLES;
use crate::domain::project::{PRIORITIES, STATUSES};
use crate::http::error::ERROR_CODES;

/// One closed set: its schema name, what it means, its values, and where it is used.
struct ClosedSet {
    name: &'static str,
    description: &'static str,
    values: &'static [&'static str],
    /// `(schema, property)` pairs whose value is one of `values`.
    properties: &'static [(&'static str, &'static str)],
    /// `(path, parameter, empty)` triples whose value is one of `values`, or also the empty
    /// string (meaning "any") when `empty` is set.
    parameters: &'static [(&'static str, &'static str, bool)],
}

/// FDA's device classes (foiclass `DEVICECLASS`; the importer refuses anything else).
const DEVICE_CLASSES: [&str; 6] = ["1", "2", "3", "U", "N", "F"];

const SETS: &[ClosedSet] = &[
    ClosedSet {
        name: "ProjectStatus",
        description: "Where a project stands",
        values: &STATUSES,
        properties: &[("Project", "status"), ("UpdateProject", "status")],
        parameters: &[("/api/projects", "status", true)],
    },
    ClosedSet {
        name: "Priority",
        description: "A project's priority",
        values: &PRIORITIES,
        properties: &[
            ("Project", "priority"),
            ("CreateProject", "priority"),
            ("UpdateProject", "priority"),
        ],
        parameters: &[],
    },
    ClosedSet {
        name: "Role",
        description: "What a user may do: `user` (own projects), `auditor` (read every audit \
            trail), `admin` (users and operations)",
        values: &ROLES,
        properties: &[("User", "role"), ("UpdateUser", "role")],
        parameters: &[],
    },
    ClosedSet {
        name: "ErrorCode",
        description: "The machine-readable kind of an error; one per HTTP status family",
        values: &ERROR_CODES,
        properties: &[("ErrorBody", "code")],
        parameters: &[],
    },
    ClosedSet {
        name: "ExportFormat",
        description: "`json` or RFC 4180 `csv`",
        values: &["json", "csv"],
        properties: &[("ExportRequest", "format")],
        parameters: &[("/api/projects/{id}/export", "format", false)],
    },
    ClosedSet {
        name: "DeviceClass",
        description: "FDA device class: `1`, `2`, `3`, `U` (unclassified), `N` (not classified), \
            `F` (HDE)",
        values: &DEVICE_CLASSES,
        properties: &[
            ("Candidate", "device_class"),
            ("DeviceClassification", "device_class"),
            ("PredicateFacts", "device_class"),
            ("ProductCode", "device_class"),
            ("ProductCodeInfo", "device_class"),
            ("Suggestion", "device_class"),
        ],
        parameters: &[],
    },
    ClosedSet {
        name: "HealthStatus",
        description: "`ok`, `degraded` (a non-critical dependency fails) or `unhealthy`",
        values: &["ok", "degraded", "unhealthy"],
        properties: &[("HealthReport", "status")],
        parameters: &[],
    },
    ClosedSet {
        name: "RiskLevel",
        description: "Overall risk of a comparison's differences",
        values: &["low", "medium", "high"],
        properties: &[("RiskAssessment", "level")],
        parameters: &[],
    },
    ClosedSet {
        name: "OpenFdaMode",
        description: "`auto` (openFDA, the mirror when it fails), `live` or `mirror`",
        values: &["auto", "live", "mirror"],
        properties: &[("OpenFdaStatus", "mode")],
        parameters: &[],
    },
    ClosedSet {
        name: "CacheBackend",
        description: "Where the response cache lives",
        values: &["redis", "memory"],
        properties: &[("CacheStatus", "backend")],
        parameters: &[],
    },
    ClosedSet {
        name: "DataSource",
        description: "Where 510(k) records came from: openFDA or the local mirror",
        values: &["openfda", "mirror"],
        properties: &[("SearchMeta", "source"), ("SearchProvenance", "source")],
        parameters: &[],
    },
];

/// Adds each set as a component schema and points its properties and parameters at it.
pub fn apply(api: &mut OpenApi) {
    let components = api.components.get_or_insert_with(Default::default);
    for set in SETS {
        let mut schema = Object::with_type(Type::String);
        schema.description = Some(set.description.to_string());
        schema.enum_values = Some(set.values.iter().map(|v| Value::from(*v)).collect());
        components
            .schemas
            .insert(set.name.to_string(), Schema::Object(schema).into());
        for (schema_name, property) in set.properties {
            if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(*schema_name)
            {
                if let Some(slot) = object.properties.get_mut(*property) {
                    *slot = to_ref(slot, set.name);
                }
            }
        }
    }
    for set in SETS {
        for (path, name, empty) in set.parameters {
            let Some(item) = api.paths.paths.get_mut(*path) else {
                continue;
            };
            for op in super::openapi::operations(item) {
                for param in op.parameters.iter_mut().flatten() {
                    if param.name == *name {
                        let mut values: Vec<Value> = Vec::new();
                        if *empty {
                            values.push(Value::from(""));
                        }
                        values.extend(set.values.iter().map(|v| Value::from(*v)));
                        let mut schema = Object::with_type(Type::String);
                        schema.enum_values = Some(values);
                        param.schema = Some(Schema::Object(schema).into());
                    }
                }
            }
        }
    }
}

/// A reference to the named set, keeping the property's description and nullability.
fn to_ref(old: &RefOr<Schema>, name: &str) -> RefOr<Schema> {
    let (description, nullable) = match old {
        RefOr::T(Schema::Object(o)) => (
            o.description.clone().unwrap_or_default(),
            matches!(&o.schema_type, SchemaType::Array(types) if types.contains(&Type::Null)),
        ),
        _ => (String::new(), false),
    };
    let mut reference = Ref::from_schema_name(name);
    if !nullable {
        reference.description = description;
        return RefOr::Ref(reference);
    }
    let mut one_of = OneOfBuilder::new()
        .item(reference)
        .item(Object::with_type(Type::Null));
    if !description.is_empty() {
        one_of = one_of.description(Some(description));
    }
    Schema::OneOf(one_of.build()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_property_and_parameter_exists() {
        let api = crate::http::openapi_document();
        let schemas = &api.components.as_ref().expect("components").schemas;
        for set in SETS {
            for (schema, property) in set.properties {
                let Some(RefOr::T(Schema::Object(o))) = schemas.get(*schema) else {
                    panic!("{} names schema {schema}, which is not an object", set.name);
                };
                assert!(
                    o.properties.contains_key(*property),
                    "{schema}.{property} ({}) does not exist",
                    set.name
                );
            }
            for (path, _, _) in set.parameters {
                assert!(api.paths.paths.contains_key(*path), "{path} does not exist");
            }
        }
    }
}
