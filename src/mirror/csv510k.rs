//! 510(k) records saved as CSV with openFDA's field names (`k_number, applicant, device_name,
//! decision_date, …`), as scripts that page through `/device/510k.json` write them.
//!
//! Such files usually lack `decision_code`; "Substantially Equivalent" is FDA's `SESE`, and any
//! other description leaves the code unknown rather than guessed.

use std::collections::HashMap;
use std::io::BufRead;

use anyhow::Context;

use super::import::{Item, Sink};
use super::text::{date, field, is_product_code};
use super::Record;
use crate::db::mirror::Fda510k;
use crate::domain::ids::KNumber;

pub fn parse(reader: &mut dyn BufRead, name: &str, sink: &mut Sink) -> anyhow::Result<()> {
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(reader);
    let headers = csv
        .byte_headers()
        .with_context(|| format!("{name}: reading the CSV header"))?
        .clone();
    let index: HashMap<String, usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let h = String::from_utf8_lossy(h);
            (
                h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase(),
                i,
            )
        })
        .collect();
    let width = headers.len();
    let mut record = csv::ByteRecord::new();
    loop {
        let more = csv
            .read_byte_record(&mut record)
            .with_context(|| format!("{name}: reading CSV"))?;
        if !more {
            break;
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.len() == 1 && record.get(0).is_some_and(|f| f.trim_ascii().is_empty()) {
            continue;
        }
        let fields: Vec<String> = record
            .iter()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect();
        let item = match row(&index, width, &fields) {
            Ok(device) => Item::Row(Record::Device(device)),
            Err(reason) => Item::Reject {
                at: format!("{name}:{line}"),
                reason,
            },
        };
        sink.send(item)?;
    }
    Ok(())
}

fn row(index: &HashMap<String, usize>, width: usize, fields: &[String]) -> Result<Fda510k, String> {
    if fields.len() != width {
        return Err(format!("expected {width} fields, found {}", fields.len()));
    }
    let get = |col: &str| {
        index
            .get(col)
            .and_then(|&i| fields.get(i))
            .and_then(|v| field(v))
    };
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
    let decision_date =
        date(&get("decision_date").unwrap_or_default()).map_err(|e| format!("decision {e}"))?;
    let date_received =
        date(&get("date_received").unwrap_or_default()).map_err(|e| format!("received {e}"))?;
    let decision_description = get("decision_description");
    let decision_code = get("decision_code").or_else(|| {
        (decision_description.as_deref() == Some("Substantially Equivalent"))
            .then(|| "SESE".to_string())
    });
    Ok(Fda510k {
        k_number,
        applicant: get("applicant"),
        device_name,
        product_code,
        decision_date,
        decision_code,
        decision_description,
        clearance_type: get("clearance_type"),
        date_received,
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
