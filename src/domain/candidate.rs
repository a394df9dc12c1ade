//! A 510(k) record as predicate search sees it, whichever source (openFDA or the local mirror)
//! it came from, plus the classification facts and the safety block (recalls, adverse events)
//! that ranking weighs.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One cleared device that might serve as a predicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Candidate {
    /// `K`, `DEN` or `BK` and six digits.
    pub k_number: String,
    pub device_name: String,
    pub applicant: Option<String>,
    pub product_code: Option<String>,
    pub decision_date: Option<NaiveDate>,
    /// openFDA's decision code, e.g. `SESE`.
    pub decision_code: Option<String>,
    pub decision_description: Option<String>,
    /// `Traditional`, `Special`, `Abbreviated`, ...
    pub clearance_type: Option<String>,
    /// `1`, `2`, `3`, `U`, `N` or `F` (from the classification of its product code).
    pub device_class: Option<String>,
    pub regulation_number: Option<String>,
    /// Recalls and adverse events, with whether they were checked at all.
    #[serde(default)]
    pub safety: Safety,
}

/// A recall that names the candidate's K-number, or another device of its applicant and
/// product code (see `scope`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct RecallFlag {
    /// FDA's recall number, e.g. `Z-0359-2013`.
    pub recall_number: String,
    /// 1, 2 or 3 (Class I is the most serious), from the enforcement report; `None` when the
    /// class is not known.
    pub class: Option<u8>,
    /// `Open, Classified`, `Terminated`, … (CDRH's recall status).
    pub status: Option<String>,
    pub initiated: Option<NaiveDate>,
    pub terminated: Option<NaiveDate>,
    pub reason: Option<String>,
    /// The recall event (one event covers several products), e.g. `82984`.
    pub event_number: Option<String>,
    pub recalling_firm: Option<String>,
    pub scope: RecallScope,
    /// The recalled 510(k)s the recall names (for `same_applicant_product_code`, the others).
    pub k_numbers: Vec<String>,
}

pub use super::safety::{Availability, EventCounts, EventTally, RecallScope, Safety, YearTally};

/// What the FDA classification database says about a product code.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct ProductCodeInfo {
    pub product_code: String,
    pub device_name: Option<String>,
    pub device_class: Option<String>,
    pub regulation_number: Option<String>,
    pub definition: Option<String>,
    pub implant: bool,
    pub life_sustaining: bool,
}

/// The public summary page of a 510(k) on accessdata.fda.gov.
pub fn source_url(k_number: &str) -> String {
    format!("https://www.accessdata.fda.gov/scripts/cdrh/cfdocs/cfpmn/pmn.cfm?ID={k_number}")
}

/// The recall class from openFDA's "Class I" / "Class II" / "Class III" text.
pub fn recall_class(text: &str) -> Option<u8> {
    match text.trim().to_ascii_lowercase().as_str() {
        "class i" | "1" | "i" => Some(1),
        "class ii" | "2" | "ii" => Some(2),
        "class iii" | "3" | "iii" => Some(3),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_classes_and_urls() {
        assert_eq!(recall_class("Class I"), Some(1));
        assert_eq!(recall_class(" class iii "), Some(3));
        assert_eq!(recall_class("Class IV"), None);
        assert!(source_url("K911488").ends_with("ID=K911488"));
    }
}
