//! The OpenAPI document's frame (info, security scheme) and the error responses every operation
//! shares, added in one place so no route can forget them.

use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};
use utoipa::OpenApi as _;

use crate::http::error::ErrorBody;
use crate::http::health::{Check, HealthReport};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "regassist",
        description = "Regulatory-affairs assistant for medical devices: 510(k) predicate search, \
            FDA product classification, substantial-equivalence comparison and a tamper-evident audit trail.",
        contact(name = "regassist maintainers"),
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    servers((url = "/", description = "The server that serves this document")),
    components(schemas(ErrorBody, Check, HealthReport)),
    tags(
        (name = "health", description = "Probes and metrics"),
        (name = "users", description = "Users and API keys"),
        (name = "projects", description = "Regulatory projects"),
        (name = "audit", description = "Tamper-evident audit trail"),
        (name = "classification", description = "FDA product codes and the classification assistant"),
        (name = "devices", description = "510(k) records from the local FDA mirror"),
        (name = "predicates", description = "510(k) predicate search, stored candidates, comparison"),
        (name = "assistant", description = "The copilot's tasks"),
        (name = "admin", description = "Operations: openFDA budget and cache"),
    )
)]
struct Base;

pub fn base() -> OpenApi {
    let mut api = Base::openapi();
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            Http::builder()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("A JWT (HS256) from the frontend, or an `rk_` API key"))
                .build(),
        ),
    );
    api
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

fn add(op: &mut Operation, status: &str, description: &str) {
    if !op.responses.responses.contains_key(status) {
        op.responses
            .responses
            .insert(status.to_string(), error_response(description).into());
    }
}

fn complete(op: &mut Operation) {
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_path_params = op.parameters.as_ref().is_some_and(|ps| {
        ps.iter()
            .any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Path))
    });
    let has_query = op.parameters.as_ref().is_some_and(|ps| {
        ps.iter()
            .any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query))
    });
    add(op, "400", "Malformed request (path, query or JSON syntax)");
    add(op, "500", "Internal error (opaque)");
    add(op, "504", "The request took too long");
    if secured {
        add(op, "401", "Missing or invalid credentials");
        add(
            op,
            "403",
            "Authenticated but not allowed (role, disabled account)",
        );
        add(op, "429", "Rate limited; see Retry-After");
    }
    if has_path_params {
        add(op, "404", "Not found (or owned by someone else)");
    }
    if has_query {
        add(op, "422", "Invalid query parameter value");
    }
    if op.request_body.is_some() {
        add(op, "413", "Request body larger than the limit");
        add(op, "415", "Content-Type is not application/json");
        add(op, "422", "Validation failed; see fields");
    }
}

/// Adds the shared error responses to every operation, the closed sets as enums and the response
/// headers; an operation without credentials says so (`security: []`) rather than saying nothing.
pub fn finish(mut api: OpenApi) -> OpenApi {
    for item in api.paths.paths.values_mut() {
        for op in operations(item) {
            complete(op);
            op.security.get_or_insert_with(Vec::new);
        }
    }
    super::openapi_enums::apply(&mut api);
    super::openapi_headers::apply(&mut api);
    super::openapi_examples::apply(&mut api);
    api
}

pub(crate) fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}
