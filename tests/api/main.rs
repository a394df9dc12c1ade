//! HTTP API tests against a real server on loopback, once per database backend.

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod health;
mod projects;
