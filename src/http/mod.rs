//! The web layer: the router, the middleware, the extractors (sign-in included), the mapping of
//! errors to the one error body, the OpenAPI document built from the handlers themselves, and one
//! file per resource. Handlers stay short: they parse, call a use case (`assistant`, `search`,
//! `accounts`), a `db::*` read, or `audit` for a change, and shape the answer.

pub mod agent;
pub mod audit;
pub mod auth;
pub mod body_limit;
pub mod classification;
pub mod csv_out;
pub mod devices;
pub mod error;
pub mod extract;
pub mod health;
pub mod middleware;
pub mod openapi;
mod openapi_enums;
mod openapi_examples;
mod openapi_headers;
pub mod openfda_admin;
pub mod pages;
pub mod predicate_input;
pub mod predicates;
pub mod project_reports;
pub mod projects;
mod state;
pub mod users;

use axum::Router;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

pub use state::{AppState, Services};

/// Every resource's routes with their OpenAPI operations.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .merge(health::routes())
        .merge(users::routes())
        .merge(projects::routes())
        .merge(audit::routes())
        .merge(classification::routes())
        .merge(devices::routes())
        .merge(predicates::routes())
        .merge(agent::routes())
        .merge(openfda_admin::routes())
}

/// The OpenAPI document, complete with the shared error responses.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let (_, api) = api_routes().split_for_parts();
    openapi::finish(api)
}

/// The application router with the middleware stack.
pub fn router(state: AppState) -> Router {
    let (routes, api) = api_routes().split_for_parts();
    let api = openapi::finish(api);
    let routes = routes
        .merge(SwaggerUi::new("/docs").url("/openapi.json", api))
        .merge(trailing_slash_aliases())
        // A person who opens the bare address lands on the API documentation.
        .route(
            "/",
            axum::routing::get(|| async { axum::response::Redirect::temporary("/docs/") }),
        );
    middleware::apply(routes, &state).with_state(state)
}

/// `/api/projects/` answers like `/api/projects` (no redirect).
fn trailing_slash_aliases() -> Router<AppState> {
    Router::new().route(
        "/api/projects/",
        axum::routing::get(projects::list_projects).post(projects::create_project),
    )
}
