//! openFDA JSON in the API's response shape (`{"meta": {…}, "results": […]}`) for `/device/510k`
//! and `/device/classification`, plain or as a bulk-download zip holding one such file.
//!
//! `results` is read one element at a time through serde's visitor API, so memory stays flat; a
//! file that does not parse to its end (truncated) fails the whole import.

use std::fmt;
use std::io::BufRead;

use anyhow::{bail, Context};
use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::import::{Item, Sink};
use super::text::{date, decision_description, field, is_product_code};
use super::Record;
use crate::db::mirror::{Fda510k, ProductCode};
use crate::domain::ids::KNumber;

pub fn parse(reader: &mut dyn BufRead, name: &str, sink: &mut Sink) -> anyhow::Result<()> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut seen_results = false;
    let mut failure = None;
    let top = Top {
        name,
        sink,
        seen_results: &mut seen_results,
        failure: &mut failure,
    };
    let parsed = serde::Deserializer::deserialize_map(&mut de, top).and_then(|()| de.end());
    if let Some(e) = failure {
        return Err(e);
    }
    parsed.with_context(|| format!("{name} is not complete, valid JSON (truncated?)"))?;
    if !seen_results {
        bail!("{name}: no \"results\" array: not an openFDA API response or bulk-download file");
    }
    Ok(())
}

struct Top<'a, 'b> {
    name: &'a str,
    sink: &'a mut Sink,
    seen_results: &'b mut bool,
    failure: &'b mut Option<anyhow::Error>,
}

impl<'de> Visitor<'de> for Top<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an openFDA response object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "meta" => {
                    let meta: Value = map.next_value()?;
                    let updated = meta.get("last_updated").and_then(Value::as_str).map(date);
                    if let Some(Ok(Some(d))) = updated {
                        if let Err(e) = self.sink.send(Item::DataDate(d)) {
                            *self.failure = Some(e);
                            return Err(A::Error::custom("import aborted"));
                        }
                    }
                }
                "results" => {
                    *self.seen_results = true;
                    map.next_value_seed(Results {
                        name: self.name,
                        sink: &mut *self.sink,
                        failure: &mut *self.failure,
                    })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct Results<'a, 'b> {
    name: &'a str,
    sink: &'a mut Sink,
    failure: &'b mut Option<anyhow::Error>,
}

impl<'de> DeserializeSeed<'de> for Results<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Results<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut n = 0u64;
        while let Some(value) = seq.next_element::<Value>()? {
            n += 1;
            let item = match record(&value) {
                Ok(r) => Item::Row(r),
                Err(reason) => Item::Reject {
                    at: format!("{}:record {n}", self.name),
                    reason,
                },
            };
            if let Err(e) = self.sink.send(item) {
                *self.failure = Some(e);
                return Err(A::Error::custom("import aborted"));
            }
        }
        Ok(())
    }
}

/// A string field; openFDA sometimes gives a one-element array where the docs say string.
fn text(obj: &Map<String, Value>, key: &str) -> Option<String> {
    match obj.get(key)? {
        Value::String(s) => field(s),
        Value::Array(items) => items.first().and_then(Value::as_str).and_then(field),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn record(value: &Value) -> Result<Record, String> {
    use super::safety_json as safety;
    let obj = value.as_object().ok_or("not a JSON object")?;
    if safety::is_recall(obj) {
        safety::recall(obj).map(Record::Recall)
    } else if safety::is_enforcement(obj) {
        safety::enforcement(obj).map(Record::Enforcement)
    } else if safety::is_event(obj) {
        safety::event(obj).map(Record::Event)
    } else if obj.contains_key("k_number") {
        device(obj).map(Record::Device)
    } else if obj.contains_key("product_code") && obj.contains_key("device_class") {
        code(obj).map(Record::Code)
    } else {
        Err(
            "not a device 510(k), classification, recall, enforcement or adverse-event record"
                .into(),
        )
    }
}

fn device(obj: &Map<String, Value>) -> Result<Fda510k, String> {
    let get = |k: &str| text(obj, k);
    let k_number = get("k_number").unwrap_or_default();
    if KNumber::parse(&k_number).is_none() {
        return Err(format!("{k_number:?} is not a 510(k) or De Novo number"));
    }
    let device_name = get("device_name").ok_or("the device name is empty")?;
    let product_code = get("product_code");
    if let Some(code) = &product_code {
        if !is_product_code(code) {
            return Err(format!(
                "product code {code:?} is not three capital letters"
            ));
        }
    }
    let decision_code = get("decision_code");
    Ok(Fda510k {
        k_number,
        applicant: get("applicant"),
        device_name,
        product_code,
        decision_date: date(&get("decision_date").unwrap_or_default())
            .map_err(|e| format!("decision {e}"))?,
        decision_description: get("decision_description")
            .or_else(|| decision_code.as_deref().and_then(decision_description)),
        decision_code,
        clearance_type: get("clearance_type"),
        date_received: date(&get("date_received").unwrap_or_default())
            .map_err(|e| format!("received {e}"))?,
        review_advisory_committee: get("review_advisory_committee"),
        advisory_committee: get("advisory_committee"),
        statement_or_summary: get("statement_or_summary"),
        third_party_flag: get("third_party_flag"),
        expedited_review_flag: get("expedited_review_flag"),
        country_code: get("country_code"),
        state: get("state"),
        city: get("city"),
        zip_code: get("zip_code"),
    })
}

fn code(obj: &Map<String, Value>) -> Result<ProductCode, String> {
    let get = |k: &str| text(obj, k);
    let product_code = get("product_code").unwrap_or_default();
    if !is_product_code(&product_code) {
        return Err(format!(
            "product code {product_code:?} is not three capital letters"
        ));
    }
    let device_class = get("device_class").unwrap_or_default().to_ascii_uppercase();
    if !matches!(device_class.as_str(), "1" | "2" | "3" | "U" | "N" | "F") {
        return Err(format!(
            "device class {device_class:?} is not 1, 2, 3, U, N or F"
        ));
    }
    Ok(ProductCode {
        product_code,
        device_name: get("device_name").ok_or("the device name is empty")?,
        device_class,
        regulation_number: get("regulation_number"),
        medical_specialty: get("medical_specialty"),
        review_panel: get("review_panel"),
        definition: get("definition"),
        implant_flag: get("implant_flag"),
        life_sustain_support_flag: get("life_sustain_support_flag"),
        gmp_exempt_flag: get("gmp_exempt_flag"),
        third_party_flag: get("third_party_flag"),
        submission_type_id: get("submission_type_id"),
        unclassified_reason: get("unclassified_reason"),
        review_code: get("review_code"),
        physical_state: get("physical_state"),
        technical_method: get("technical_method"),
        target_area: get("target_area"),
        summary_malfunction_reporting: get("summary_malfunction_reporting"),
    })
}
