//! regassist: the regulatory-affairs assistant's backend (library; `main.rs` is a thin CLI).

pub mod accounts; // account use cases: sign-in (JWT, API keys), users, keys
pub mod app; // the composition root: build the services, start, serve, shut down
pub mod assistant; // the assistant's use cases: classification, predicates, comparison, agent tasks
pub mod audit; // the hash-chained audit trail: the unit of work of every change, verification
pub mod backup; // SQLite online backup and restore for embedded installs
pub mod cache; // response cache over Redis or memory
pub mod config; // settings from defaults, file, environment
pub mod db; // the Db enum and every SQL statement
pub mod domain; // entities, validated types and pure logic
pub mod error; // ApiError: the error kinds of the use cases (their HTTP answers: http::error)
pub mod http; // the web layer: router, middleware, extractors, handlers, OpenAPI, AppState
pub mod mirror; // the local FDA mirror: importers and the shipped classification table
pub mod openfda; // openFDA client: queries, retries, breaker, shared budget
pub mod rate_limit; // fixed-window limits over Redis or memory
pub mod redis_link; // every Redis command under a response timeout and a circuit breaker
pub mod search; // the predicate-search pipeline: query, cache, single flight, source, rank
pub mod telemetry; // logs and metrics
