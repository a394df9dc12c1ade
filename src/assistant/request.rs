//! What `POST /api/agent/execute` accepts and answers. The schema of each field says exactly
//! what `validate` accepts; the rules across fields (a project for a comparison, some text or a
//! product code for a search, text that names a device for a classification) answer 422 and are
//! documented on the operation.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::{ApiError, FieldErrors};

/// The assistant's tasks (a closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskType {
    DeviceClassification,
    PredicateSearch,
    PredicateComparison,
}

impl TaskType {
    /// The name stored in `agent_interactions.task_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskType::DeviceClassification => "device_classification",
            TaskType::PredicateSearch => "predicate_search",
            TaskType::PredicateComparison => "predicate_comparison",
        }
    }
}

/// Task options; each applies to the tasks named, others ignore it. Unknown keys are ignored.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct TaskParameters {
    /// Search text (`predicate_search`), at most 2000 characters; blank means the device type,
    /// else the description (the request's or the project's).
    #[schema(max_length = 2000)]
    pub q: Option<String>,
    /// Product code filter (`predicate_search`); defaults to the project's.
    #[schema(pattern = "^[A-Z]{3}$", max_length = 3)]
    pub product_code: Option<String>,
    /// Candidates returned (`predicate_search`), 1..100, default 10.
    #[schema(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// The stored candidate to compare (`predicate_comparison`); else `k_number`, else the
    /// selected one.
    pub predicate_id: Option<i64>,
    /// The stored candidate to compare by its 510(k) number (`predicate_comparison`).
    #[schema(pattern = "^(K|DEN|BK)[0-9]{6}$", max_length = 9)]
    pub k_number: Option<String>,
    /// Groups interactions (at most 100 characters); blank or absent means a new session.
    #[schema(max_length = 100)]
    pub session_id: Option<String>,
}

/// Body of `POST /api/agent/execute`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteRequest {
    pub task_type: TaskType,
    /// The project the task is for (required for `predicate_comparison`).
    pub project_id: Option<i64>,
    /// What the device is; defaults to the project's description.
    #[schema(max_length = 5000)]
    pub device_description: Option<String>,
    /// Its intended use; defaults to the project's.
    #[schema(max_length = 2000)]
    pub intended_use: Option<String>,
    #[schema(max_length = 255)]
    pub device_type: Option<String>,
    pub parameters: Option<TaskParameters>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExecuteResponse {
    pub session_id: String,
    pub task_type: TaskType,
    /// Always `completed` (failures answer with an error status).
    pub status: String,
    #[schema(value_type = Object)]
    pub result: Value,
    pub confidence: Option<f64>,
    pub sources: Vec<String>,
    pub reasoning: String,
    pub execution_time_ms: f64,
}

impl ExecuteRequest {
    /// The parameters, or none.
    pub fn params(&self) -> &TaskParameters {
        static NONE: TaskParameters = TaskParameters {
            q: None,
            product_code: None,
            limit: None,
            predicate_id: None,
            k_number: None,
            session_id: None,
        };
        self.parameters.as_ref().unwrap_or(&NONE)
    }

    /// Field checks the types do not make (lengths, identifier shapes, ranges).
    pub fn validate(&self) -> Result<(), ApiError> {
        let mut fields = FieldErrors::new();
        let mut long = |name: &str, v: &Option<String>, max: usize| {
            if v.as_ref().is_some_and(|s| s.chars().count() > max) {
                fields.insert(name.into(), vec![format!("at most {max} characters")]);
            }
        };
        long("device_description", &self.device_description, 5000);
        long("intended_use", &self.intended_use, 2000);
        long("device_type", &self.device_type, 255);
        let p = self.params();
        long("parameters.session_id", &p.session_id, 100);
        // Refused for every task, not only the search that reads it: the text is stored with
        // the interaction.
        long("parameters.q", &p.q, crate::search::MAX_TEXT_CHARS);
        if p.product_code
            .as_deref()
            .is_some_and(|c| crate::domain::ids::ProductCode::parse(c).is_none())
        {
            fields.insert(
                "parameters.product_code".into(),
                vec!["must be three capital letters".into()],
            );
        }
        if p.k_number
            .as_deref()
            .is_some_and(|k| crate::domain::ids::KNumber::parse(k).is_none())
        {
            fields.insert(
                "parameters.k_number".into(),
                vec!["must be K, DEN or BK and six digits".into()],
            );
        }
        if p.limit.is_some_and(|l| !(1..=100).contains(&l)) {
            fields.insert(
                "parameters.limit".into(),
                vec!["must be between 1 and 100".into()],
            );
        }
        ApiError::check(fields)
    }
}

/// A string option with blanks read as absent.
pub fn non_blank(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: Value) -> Result<ExecuteRequest, serde_json::Error> {
        serde_json::from_value(body)
    }

    #[test]
    fn task_types_are_a_closed_set() {
        assert!(parse(serde_json::json!({"task_type": ""})).is_err());
        assert!(parse(serde_json::json!({"task_type": "telepathy"})).is_err());
        let r = parse(serde_json::json!({"task_type": "predicate_search", "parameters": null}))
            .unwrap();
        assert_eq!(r.task_type.as_str(), "predicate_search");
        assert!(r.validate().is_ok());
    }

    #[test]
    fn parameters_are_checked() {
        let r = parse(serde_json::json!({"task_type": "predicate_search",
            "parameters": {"limit": 0, "product_code": "abc", "k_number": "K1", "other": 1}}))
        .unwrap();
        let Err(ApiError::Validation { fields, .. }) = r.validate() else {
            panic!("not a validation error")
        };
        for f in [
            "parameters.limit",
            "parameters.product_code",
            "parameters.k_number",
        ] {
            assert!(fields.contains_key(f), "{f}");
        }
        assert!(parse(serde_json::json!({"task_type": "predicate_search",
            "parameters": {"limit": "ten"}}))
        .is_err());
    }
}
