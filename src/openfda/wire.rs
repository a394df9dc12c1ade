//! openFDA's JSON as it really arrives: fields documented as arrays that come as strings
//! (`openfda.regulation_number`), `openfda` blocks that are missing or half empty, `""` for
//! "no value", and dates as `YYYY-MM-DD` or `YYYYMMDD`.

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// `{meta, results}` of a search answer.
#[derive(Debug, Deserialize)]
pub struct Envelope<T> {
    #[serde(default)]
    pub meta: Option<Meta>,
    #[serde(default = "Vec::new")]
    pub results: Vec<T>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Meta {
    #[serde(default, deserialize_with = "opt_string")]
    pub last_updated: Option<String>,
    #[serde(default)]
    pub results: Option<MetaResults>,
}

#[derive(Debug, Default, Deserialize)]
pub struct MetaResults {
    #[serde(default)]
    pub skip: u64,
    #[serde(default)]
    pub limit: u64,
    #[serde(default)]
    pub total: u64,
}

/// `{"error": {"code": "NOT_FOUND", "message": "No matches found!", "details": "..."}}`.
#[derive(Debug, Deserialize)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    #[serde(default, deserialize_with = "opt_string")]
    pub code: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub message: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub details: Option<String>,
}

/// One `/device/510k.json` record (the fields this service uses).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Record510k {
    pub k_number: String,
    #[serde(default, deserialize_with = "opt_string")]
    pub device_name: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub applicant: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub product_code: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub decision_date: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub decision_code: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub decision_description: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub clearance_type: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub advisory_committee_description: Option<String>,
    #[serde(default, deserialize_with = "opt_block")]
    pub openfda: Option<OpenFdaBlock>,
}

/// The harmonised `openfda` annotation.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct OpenFdaBlock {
    #[serde(default, deserialize_with = "opt_string")]
    pub device_name: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub device_class: Option<String>,
    /// Documented as an array, often a plain string.
    #[serde(default, deserialize_with = "string_list")]
    pub regulation_number: Vec<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub medical_specialty_description: Option<String>,
}

/// One `/device/classification.json` record.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ClassificationRecord {
    pub product_code: String,
    #[serde(default, deserialize_with = "opt_string")]
    pub device_name: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub device_class: Option<String>,
    #[serde(default, deserialize_with = "string_list")]
    pub regulation_number: Vec<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub definition: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub implant_flag: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub life_sustain_support_flag: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub medical_specialty_description: Option<String>,
}

/// One `/device/recall.json` record (CDRH's recall database; it has no recall class).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RecallRecord {
    #[serde(default, deserialize_with = "opt_string")]
    pub product_res_number: Option<String>,
    #[serde(default, deserialize_with = "string_list")]
    pub k_numbers: Vec<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub recall_status: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub event_date_initiated: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub root_cause_description: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub event_date_terminated: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub reason_for_recall: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub res_event_number: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub recalling_firm: Option<String>,
}

/// One `/device/enforcement.json` record: where the recall class ("Class I") lives.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct EnforcementRecord {
    #[serde(default, deserialize_with = "opt_string")]
    pub recall_number: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub classification: Option<String>,
}

/// Parses `YYYY-MM-DD` or `YYYYMMDD`.
pub fn parse_date(raw: &str) -> Option<NaiveDate> {
    let raw = raw.trim();
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(raw, "%Y%m%d"))
        .ok()
}

/// A string field where `""`, whitespace and `null` mean "absent"; numbers are kept as text.
fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => {
            let t = s.trim();
            (!t.is_empty()).then(|| t.to_string())
        }
        Value::Number(n) => Some(n.to_string()),
        Value::Array(items) => items
            .into_iter()
            .filter_map(|v| v.as_str().map(|s| s.trim().to_string()))
            .find(|s| !s.is_empty()),
        _ => None,
    })
}

/// A list that may arrive as a single string; empty strings are dropped.
fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let keep = |s: &str| {
        let t = s.trim();
        (!t.is_empty()).then(|| t.to_string())
    };
    Ok(match Value::deserialize(d)? {
        Value::String(s) => keep(&s).into_iter().collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(|v| match v {
                Value::String(s) => keep(s),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    })
}

/// An `openfda` block that may be missing, `{}`, or not an object at all.
fn opt_block<'de, D: Deserializer<'de>>(d: D) -> Result<Option<OpenFdaBlock>, D::Error> {
    match Value::deserialize(d)? {
        Value::Object(map) if !map.is_empty() => {
            Ok(serde_json::from_value(Value::Object(map)).ok())
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_quirks_are_absorbed() {
        let raw = r#"{"meta": {"last_updated": "2026-01-12", "results": {"skip": 0, "limit": 2, "total": 173883}},
          "results": [
            {"k_number": "K911488", "device_name": "LAPAROSCOPIC RINSING CONTAINER", "decision_date": "1991-06-06",
             "decision_code": "SESE", "expedited_review_flag": "", "statement_or_summary": "",
             "openfda": {"registration_number": ["", "3010437008"], "regulation_number": "876.1500", "device_class": "2"}},
            {"k_number": "K834212", "product_code": "LOS", "applicant": "",
             "openfda": {"registration_number": [""], "fei_number": ["1"]}},
            {"k_number": "K000001", "openfda": {}}
          ]}"#;
        let env: Envelope<Record510k> = serde_json::from_str(raw).unwrap();
        let meta = env.meta.unwrap();
        assert_eq!(meta.last_updated.as_deref(), Some("2026-01-12"));
        assert_eq!(meta.results.unwrap().total, 173883);
        let first = env.results[0].openfda.as_ref().unwrap();
        assert_eq!(first.regulation_number, vec!["876.1500"]);
        assert_eq!(first.device_class.as_deref(), Some("2"));
        let second = &env.results[1];
        assert!(second.applicant.is_none(), "empty string is no value");
        assert!(second
            .openfda
            .as_ref()
            .unwrap()
            .regulation_number
            .is_empty());
        assert!(env.results[2].openfda.is_none());
    }

    #[test]
    fn the_real_first_page_parses() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data-fda/api_json/device_510k_limit100_2026-01-12.json"
        );
        let text = std::fs::read_to_string(path).expect("the bundled openFDA response");
        let env: Envelope<Record510k> = serde_json::from_str(&text).unwrap();
        assert_eq!(env.results.len(), 100);
        let los = env
            .results
            .iter()
            .find(|r| r.k_number == "K834212")
            .unwrap();
        assert!(los
            .openfda
            .as_ref()
            .is_some_and(|o| o.regulation_number.is_empty()));
        assert!(env.results.iter().all(|r| r
            .decision_date
            .as_deref()
            .and_then(parse_date)
            .is_some()));
    }

    #[test]
    fn regulation_numbers_come_as_arrays_too() {
        let block: OpenFdaBlock =
            serde_json::from_str(r#"{"regulation_number": ["888.3070", ""]}"#).unwrap();
        assert_eq!(block.regulation_number, vec!["888.3070"]);
        assert_eq!(parse_date("20120716"), NaiveDate::from_ymd_opt(2012, 7, 16));
        assert_eq!(
            parse_date("0020-08-04").map(|d| d.to_string()).as_deref(),
            Some("0020-08-04")
        );
    }
}
