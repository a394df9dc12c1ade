//! `WHERE` clauses made of the conditions in use only, so each lands on an index: a generic
//! `($1 IS NULL OR col = $1)` form must read every candidate row to evaluate it.

use chrono::{DateTime, Utc};

/// A bound value of a condition.
pub enum Param<'a> {
    Int(i64),
    Text(&'a str),
    Time(DateTime<Utc>),
}

/// Conditions joined with `AND`, their placeholders numbered in the order they were added.
#[derive(Default)]
pub struct Where<'a> {
    conditions: Vec<String>,
    pub params: Vec<Param<'a>>,
}

impl<'a> Where<'a> {
    /// Adds `condition`, in which every `?` stands for `param` (the same value each time).
    pub fn and(mut self, condition: &str, param: Param<'a>) -> Self {
        let placeholder = format!("${}", self.params.len() + 1);
        self.conditions.push(condition.replace('?', &placeholder));
        self.params.push(param);
        self
    }

    /// Adds a condition without a value.
    pub fn and_always(mut self, condition: &str) -> Self {
        self.conditions.push(condition.to_string());
        self
    }

    /// The `WHERE ...` text, empty when no condition is in use.
    pub fn sql(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.conditions.join(" AND "))
        }
    }

    /// The number of the first placeholder after the conditions' own (for LIMIT and OFFSET).
    pub fn next_placeholder(&self) -> usize {
        self.params.len() + 1
    }
}

/// Binds a [`Where`]'s params in order on a query of either backend.
#[macro_export]
macro_rules! bind_params {
    ($query:expr, $params:expr) => {{
        let mut query = $query;
        for param in $params {
            query = match param {
                $crate::db::filter::Param::Int(v) => query.bind(*v),
                $crate::db::filter::Param::Text(v) => query.bind(*v),
                $crate::db::filter::Param::Time(v) => query.bind(*v),
            };
        }
        query
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_placeholders_in_order_and_repeats_a_reused_one() {
        let w = Where::default()
            .and("user_id = ?", Param::Int(7))
            .and_always("deleted_at IS NULL")
            .and("(name LIKE ? OR notes LIKE ?)", Param::Text("%a%"))
            .and("status = ?", Param::Text("draft"));
        assert_eq!(
            w.sql(),
            "WHERE user_id = $1 AND deleted_at IS NULL AND (name LIKE $2 OR notes LIKE $2) AND status = $3"
        );
        assert_eq!(w.params.len(), 3);
        assert_eq!(w.next_placeholder(), 4);
        assert_eq!(Where::default().sql(), "");
    }
}
