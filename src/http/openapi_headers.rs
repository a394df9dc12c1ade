//! The response headers in the OpenAPI document: `X-Request-ID` on every answer, `Retry-After` and
//! `WWW-Authenticate` where the error mapping sets them, and the per-operation ones (`ETag`,
//! `Location`, `X-Total-Count`, `Content-Disposition`), listed here by operationId so one table
//! says which operation sends what.

use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::schema::{Object, Type};
use utoipa::openapi::{OpenApi, RefOr};

/// `(operationId, status, header)`: a header a successful answer carries.
const SUCCESS_HEADERS: &[(&str, &str, &str)] = &[
    ("listProjects", "200", "X-Total-Count"),
    ("listProjectPredicates", "200", "X-Total-Count"),
    ("listUsers", "200", "X-Total-Count"),
    ("createProject", "201", "ETag"),
    ("createProject", "201", "Location"),
    ("getProject", "200", "ETag"),
    ("replaceProject", "200", "ETag"),
    ("updateProject", "200", "ETag"),
    ("exportProject", "200", "Content-Disposition"),
];

fn header(name: &str) -> Header {
    let (ty, description) = match name {
        "X-Request-ID" => (
            Type::String,
            "The request's id (the caller's, if it sent a valid one); also in every error body \
             and log line",
        ),
        "Retry-After" => (Type::Integer, "Seconds to wait before trying again"),
        "WWW-Authenticate" => (Type::String, "`Bearer`"),
        "X-Total-Count" => (
            Type::Integer,
            "How many items match, across all pages (page with limit and offset)",
        ),
        "ETag" => (
            Type::String,
            "The project's version, quoted (e.g. \"3\"); send it back in If-Match",
        ),
        "Location" => (Type::String, "The new resource's URL"),
        "Content-Disposition" => (Type::String, "attachment; filename=…"),
        _ => (Type::String, ""),
    };
    HeaderBuilder::new()
        .schema(Object::with_type(ty))
        .description(Some(description))
        .build()
}

/// Documents every header the service sends.
pub fn apply(api: &mut OpenApi) {
    for item in api.paths.paths.values_mut() {
        for op in super::openapi::operations(item) {
            let id = op.operation_id.clone().unwrap_or_default();
            for (status, response) in op.responses.responses.iter_mut() {
                let RefOr::T(response) = response else {
                    continue;
                };
                let mut names = vec!["X-Request-ID"];
                match status.as_str() {
                    "401" => names.push("WWW-Authenticate"),
                    "429" | "503" | "504" => names.push("Retry-After"),
                    _ => {}
                }
                names.extend(
                    SUCCESS_HEADERS
                        .iter()
                        .filter(|(op_id, s, _)| *op_id == id && s == status)
                        .map(|(_, _, name)| *name),
                );
                for name in names {
                    response
                        .headers
                        .entry(name.to_string())
                        .or_insert_with(|| header(name));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_operation_and_status_exists() {
        let api = crate::http::openapi_document();
        for (op_id, status, name) in SUCCESS_HEADERS {
            let found = api.paths.paths.values().any(|item| {
                [&item.get, &item.put, &item.post, &item.delete, &item.patch]
                    .into_iter()
                    .flatten()
                    .any(|op| {
                        op.operation_id.as_deref() == Some(*op_id)
                            && op.responses.responses.contains_key(*status)
                    })
            });
            assert!(
                found,
                "{op_id} {status} (for {name}) is not in the document"
            );
        }
    }
}
