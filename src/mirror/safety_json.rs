//! openFDA's safety records inside the bulk envelope (`{"meta": …, "results": […]}`):
//! `device/recall` (CDRH's recalls, no class), `device/enforcement` (the recall class) and
//! `device/event` (adverse-event reports, reduced at once to what the counts need).

use serde_json::{Map, Value};

use super::text::{date, field, is_product_code};
use crate::db::mirror::safety::{Enforcement, Recall};
use crate::domain::ids::KNumber;
use crate::domain::safety::firm_key;

/// An adverse-event report as the aggregate sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventReport {
    /// `death`, `injury`, `malfunction` or `other`.
    pub event_type: &'static str,
    /// The year FDA received it, 0 when unknown.
    pub year: i32,
    /// Distinct product codes of its devices.
    pub product_codes: Vec<String>,
    /// Distinct 510(k)s its devices name (`device[].pma_pmn_number`).
    pub k_numbers: Vec<String>,
}

/// Recognises a recall record.
pub fn is_recall(obj: &Map<String, Value>) -> bool {
    obj.contains_key("product_res_number") || obj.contains_key("res_event_number")
}

/// Recognises an enforcement report (of any product type; non-device ones are refused).
pub fn is_enforcement(obj: &Map<String, Value>) -> bool {
    obj.contains_key("recall_number")
        || (obj.contains_key("classification") && obj.contains_key("product_type"))
}

/// Recognises an adverse-event report.
pub fn is_event(obj: &Map<String, Value>) -> bool {
    obj.contains_key("mdr_report_key")
        || (obj.contains_key("event_type") && obj.contains_key("device"))
}

fn text(obj: &Map<String, Value>, key: &str) -> Option<String> {
    match obj.get(key)? {
        Value::String(s) => field(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(items) => items.first().and_then(Value::as_str).and_then(field),
        _ => None,
    }
}

fn day(obj: &Map<String, Value>, key: &str) -> Result<Option<chrono::NaiveDate>, String> {
    date(&text(obj, key).unwrap_or_default()).map_err(|e| format!("{key}: {e}"))
}

/// FDA's recall numbers: `Z-0053-2020` (devices), bounded in length.
fn recall_number(raw: Option<String>, what: &str) -> Result<String, String> {
    let n = raw.ok_or_else(|| format!("no {what}"))?;
    if n.len() > 40 || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(format!("{what} {n:?} is not a recall number"));
    }
    Ok(n)
}

fn product_code(obj: &Map<String, Value>) -> Result<Option<String>, String> {
    match text(obj, "product_code") {
        Some(code) if !is_product_code(&code) => Err(format!(
            "product code {code:?} is not three capital letters"
        )),
        code => Ok(code),
    }
}

/// Distinct valid K-numbers of a string-or-list field; invalid entries are ignored.
fn k_numbers(value: Option<&Value>) -> Vec<String> {
    let mut out: Vec<String> = match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::trim)
            .filter(|k| KNumber::parse(k).is_some())
            .map(String::from)
            .collect(),
        Some(Value::String(s)) if KNumber::parse(s.trim()).is_some() => vec![s.trim().to_string()],
        _ => Vec::new(),
    };
    out.sort();
    out.dedup();
    out
}

pub fn recall(obj: &Map<String, Value>) -> Result<Recall, String> {
    let firm = text(obj, "recalling_firm");
    Ok(Recall {
        recall_number: recall_number(text(obj, "product_res_number"), "product_res_number")?,
        event_number: text(obj, "res_event_number"),
        product_code: product_code(obj)?,
        firm_key: firm.as_deref().and_then(firm_key),
        recalling_firm: firm,
        recall_status: text(obj, "recall_status"),
        event_date_initiated: day(obj, "event_date_initiated")?,
        event_date_posted: day(obj, "event_date_posted")?,
        event_date_terminated: day(obj, "event_date_terminated")?,
        reason_for_recall: text(obj, "reason_for_recall"),
        root_cause_description: text(obj, "root_cause_description"),
        product_description: text(obj, "product_description"),
        k_numbers: k_numbers(obj.get("k_numbers")),
    })
}

pub fn enforcement(obj: &Map<String, Value>) -> Result<Enforcement, String> {
    if let Some(kind) = text(obj, "product_type") {
        if !kind.eq_ignore_ascii_case("devices") {
            return Err(format!("an enforcement report on {kind}, not on devices"));
        }
    }
    let classification = text(obj, "classification");
    if let Some(c) = &classification {
        if crate::domain::candidate::recall_class(c).is_none() && c != "Not Yet Classified" {
            return Err(format!("classification {c:?} is not Class I, II or III"));
        }
    }
    Ok(Enforcement {
        recall_number: recall_number(text(obj, "recall_number"), "recall_number")?,
        classification,
        status: text(obj, "status"),
        event_id: text(obj, "event_id"),
        recalling_firm: text(obj, "recalling_firm"),
        recall_initiation_date: day(obj, "recall_initiation_date")?,
        report_date: day(obj, "report_date")?,
        termination_date: day(obj, "termination_date")?,
        reason_for_recall: text(obj, "reason_for_recall"),
    })
}

pub fn event(obj: &Map<String, Value>) -> Result<EventReport, String> {
    let event_type = match text(obj, "event_type")
        .unwrap_or_default()
        .to_ascii_lowercase()
        .as_str()
    {
        "death" => "death",
        "injury" => "injury",
        "malfunction" => "malfunction",
        _ => "other",
    };
    // A bad date loses the year, not the report.
    let year = date(&text(obj, "date_received").unwrap_or_default())
        .ok()
        .flatten()
        .map_or(0, |d| chrono::Datelike::year(&d));
    let mut product_codes = Vec::new();
    let mut knumbers = Vec::new();
    let devices = match obj.get("device") {
        Some(Value::Array(d)) => d.as_slice(),
        Some(_) => return Err("\"device\" is not a list".into()),
        None => &[],
    };
    for d in devices.iter().filter_map(Value::as_object) {
        if let Some(code) = text(d, "device_report_product_code").filter(|c| is_product_code(c)) {
            product_codes.push(code);
        }
        knumbers.extend(k_numbers(d.get("pma_pmn_number")));
    }
    product_codes.sort();
    product_codes.dedup();
    knumbers.sort();
    knumbers.dedup();
    Ok(EventReport {
        event_type,
        year,
        product_codes,
        k_numbers: knumbers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn reads_the_docs_shapes() {
        let r = recall(&obj(serde_json::json!({
            "product_res_number": "Z-0053-2020", "res_event_number": "82984",
            "product_code": "FOZ", "k_numbers": ["K900263", "bogus", "K900263"],
            "recalling_firm": "Arrow International Inc", "recall_status": "Terminated",
            "event_date_initiated": "2019-05-17", "event_date_terminated": "2020-09-24"
        })))
        .unwrap();
        assert_eq!(r.k_numbers, vec!["K900263"]);
        assert_eq!(r.firm_key.as_deref(), Some("arrow international"));
        assert!(recall(&obj(serde_json::json!({"product_res_number": "Z 1; drop"}))).is_err());
        let e = enforcement(&obj(serde_json::json!({
            "recall_number": "Z-0053-2020", "classification": "Class II",
            "product_type": "Devices", "report_date": "20120815"
        })))
        .unwrap();
        assert_eq!(e.classification.as_deref(), Some("Class II"));
        let food = obj(serde_json::json!({"recall_number": "F-1-2020", "product_type": "Food"}));
        assert!(enforcement(&food).unwrap_err().contains("Food"));
        let ev = event(&obj(serde_json::json!({
            "event_type": "Malfunction", "date_received": "20120426",
            "device": [{"device_report_product_code": "NIQ", "pma_pmn_number": "K123456"},
                       {"device_report_product_code": "NIQ"}]
        })))
        .unwrap();
        assert_eq!(
            (ev.event_type, ev.year, ev.product_codes, ev.k_numbers),
            (
                "malfunction",
                2012,
                vec!["NIQ".to_string()],
                vec!["K123456".to_string()]
            )
        );
    }
}
