//! Validated types and pure logic, no I/O: project rules, identifiers, text analysis, ranking,
//! comparison and classification scoring.

pub mod classify;
pub mod ids;
pub mod project;
pub mod text;
