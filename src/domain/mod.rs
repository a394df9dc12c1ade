//! The entities (projects, predicates, classifications), validated types and pure logic, no I/O:
//! project rules, identifiers, text analysis, ranking, comparison and classification scoring.

pub mod candidate;
pub mod classification;
pub mod classify;
pub mod comparison;
pub mod hedging;
pub mod ids;
pub mod pathway;
pub mod postings;
pub mod predicate;
pub mod project;
pub mod ranking;
pub mod safety;
pub mod text;
pub mod validation;
