//! FDA's releasable 510(k) files (`pmn7680.txt` … `pmn96cur.txt`, `pmnlstmn.txt`): pipe-delimited,
//! one byte per character, CRLF, a header row, 22 columns, dates `MM/DD/YYYY`.
//!
//! Rows whose dates are implausible (FDA's `pmn7680` dates two 2026 submissions `08/04/0020`)
//! are rejected and reported rather than stored with a wrong date: the mirror never holds a
//! date it knows to be false, and the same records arrive correctly in FDA's current files.

use std::collections::HashMap;
use std::io::BufRead;

use super::import::Sink;
use super::text::{date, decision_description, field, is_product_code, parse_pipe_file};
use super::Record;
use crate::db::mirror::Fda510k;
use crate::domain::ids::KNumber;

const REQUIRED: &[&str] = &["KNUMBER", "DEVICENAME", "DECISIONDATE"];

pub fn is_header(columns: &[&str]) -> bool {
    REQUIRED.iter().all(|r| columns.contains(r))
}

pub fn parse(reader: &mut dyn BufRead, name: &str, sink: &mut Sink) -> anyhow::Result<()> {
    parse_pipe_file(reader, name, sink, |index, width, fields| {
        row(index, width, fields).map(Record::Device)
    })
}

fn row(index: &HashMap<String, usize>, width: usize, fields: &[&str]) -> Result<Fda510k, String> {
    if fields.len() != width {
        return Err(format!("expected {width} fields, found {}", fields.len()));
    }
    let get = |col: &str| {
        index
            .get(col)
            .and_then(|&i| fields.get(i))
            .and_then(|v| field(v))
    };
    let k_number = get("KNUMBER").unwrap_or_default();
    if KNumber::parse(&k_number).is_none() {
        return Err(format!("{k_number:?} is not a 510(k) or De Novo number"));
    }
    let device_name = get("DEVICENAME").ok_or("the device name is empty")?;
    let product_code = get("PRODUCTCODE");
    if let Some(code) = &product_code {
        if !is_product_code(code) {
            return Err(format!(
                "product code {code:?} is not three capital letters"
            ));
        }
    }
    let decision_date =
        date(&get("DECISIONDATE").unwrap_or_default()).map_err(|e| format!("decision {e}"))?;
    let date_received =
        date(&get("DATERECEIVED").unwrap_or_default()).map_err(|e| format!("received {e}"))?;
    let decision_code = get("DECISION");
    Ok(Fda510k {
        k_number,
        applicant: get("APPLICANT"),
        device_name,
        product_code,
        decision_date,
        decision_description: decision_code.as_deref().and_then(decision_description),
        decision_code,
        clearance_type: get("TYPE"),
        date_received,
        review_advisory_committee: get("REVIEWADVISECOMM"),
        advisory_committee: get("CLASSADVISECOMM"),
        statement_or_summary: get("STATEORSUMM"),
        third_party_flag: get("THIRDPARTY"),
        expedited_review_flag: get("EXPEDITEDREVIEW"),
        country_code: get("COUNTRY_CODE"),
        state: get("STATE"),
        city: get("CITY"),
        zip_code: get("ZIP"),
    })
}
