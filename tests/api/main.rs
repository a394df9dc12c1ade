//! HTTP API tests against a real server on loopback, once per database backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod audit;
mod audit_ahead;
mod audit_anchor;
mod auth;
mod bounds;
mod check_openfda;
mod classification;
mod cli;
mod contract;
mod health;
mod mirror;
mod mirror_search;
mod openapi;
mod openfda;
mod pages;
mod predicates;
mod projects;
mod replay;
mod safety;
mod security;
mod service;
mod shared_budget;
mod sign_in_cache;
mod support;
