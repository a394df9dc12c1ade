//! regassist: the regulatory-affairs assistant's backend (library; `main.rs` is a thin CLI).

pub mod accounts; // account use cases: users, API keys
pub mod app; // AppState, build, serve, graceful shutdown
pub mod assistant; // the assistant's tasks behind /api/agent/execute
pub mod audit; // the hash-chained audit trail
pub mod auth; // JWT and API-key authentication, role extractors
pub mod backup; // SQLite online backup and restore for embedded installs
pub mod cache; // response cache over Redis or memory
pub mod config; // settings from defaults, file, environment
pub mod db; // the Db enum and every SQL statement
pub mod domain; // validated types and pure logic
pub mod error; // ApiError and the one error body
pub mod http; // router, middleware, handlers, OpenAPI
pub mod mirror; // the local FDA mirror: importers, shipped classification, classification index
pub mod openfda; // openFDA client: queries, retries, breaker, shared budget
pub mod rate_limit; // fixed-window limits over Redis or memory
pub mod search; // predicate search: normalise, cache, single flight, source, rank
pub mod telemetry; // logs and metrics
