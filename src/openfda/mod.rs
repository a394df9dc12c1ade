//! The openFDA client: query building, wire types, retries, circuit breaker, shared budget.

pub mod breaker;
pub mod budget;
pub mod client;
pub mod health;
pub mod query;
pub mod types;
pub mod wire;

pub use breaker::CircuitState;
pub use client::{Endpoint, OpenFda, OpenFdaError, Page, Paging, Request};
