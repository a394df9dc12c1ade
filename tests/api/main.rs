//! HTTP API tests against a real server on loopback, once per database backend.

#[path = "../common/mod.rs"]
mod common;

mod cli;
mod health;
mod openfda;
mod predicates;
mod shared_budget;
mod support;
