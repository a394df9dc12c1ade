//! FDA's product classification file (`foiclass.txt`): pipe-delimited, one byte per character
//! (ISO-8859-1 / Windows-1252), CRLF, a header row, one row per product code.

use std::collections::HashMap;
use std::io::BufRead;

use super::import::Sink;
use super::text::{field, is_product_code, parse_pipe_file};
use super::Record;
use crate::db::mirror::ProductCode;

/// Columns without which a row means nothing.
const REQUIRED: &[&str] = &["PRODUCTCODE", "DEVICENAME", "DEVICECLASS"];

/// True when the (uppercased) header names the classification file's columns.
pub fn is_header(columns: &[&str]) -> bool {
    REQUIRED.iter().all(|r| columns.contains(r)) && !columns.contains(&"KNUMBER")
}

pub fn parse(reader: &mut dyn BufRead, name: &str, sink: &mut Sink) -> anyhow::Result<()> {
    parse_pipe_file(reader, name, sink, |index, width, fields| {
        row(index, width, fields).map(Record::Code)
    })
}

fn row(
    index: &HashMap<String, usize>,
    width: usize,
    fields: &[&str],
) -> Result<ProductCode, String> {
    if fields.len() != width {
        return Err(format!("expected {width} fields, found {}", fields.len()));
    }
    let get = |col: &str| {
        index
            .get(col)
            .and_then(|&i| fields.get(i))
            .and_then(|v| field(v))
    };
    let product_code = get("PRODUCTCODE").unwrap_or_default();
    if !is_product_code(&product_code) {
        return Err(format!(
            "product code {product_code:?} is not three capital letters"
        ));
    }
    let device_name = get("DEVICENAME").ok_or("the device name is empty")?;
    // HDE devices carry a lowercase `f` in FDA's file; the documented value is `F`.
    let device_class = get("DEVICECLASS").unwrap_or_default().to_ascii_uppercase();
    if !matches!(device_class.as_str(), "1" | "2" | "3" | "U" | "N" | "F") {
        return Err(format!(
            "device class {device_class:?} is not 1, 2, 3, U, N or F"
        ));
    }
    Ok(ProductCode {
        product_code,
        device_name,
        device_class,
        regulation_number: get("REGULATIONNUMBER"),
        medical_specialty: get("MEDICALSPECIALTY"),
        review_panel: get("REVIEW_PANEL"),
        definition: get("DEFINITION"),
        implant_flag: get("IMPLANT_FLAG"),
        life_sustain_support_flag: get("LIFE_SUSTAIN_SUPPORT_FLAG"),
        gmp_exempt_flag: get("GMPEXEMPTFLAG"),
        third_party_flag: get("THIRDPARTYFLAG"),
        submission_type_id: get("SUBMISSION_TYPE_ID"),
        unclassified_reason: get("UNCLASSIFIED_REASON"),
        review_code: get("REVIEWCODE"),
        physical_state: get("PHYSICALSTATE"),
        technical_method: get("TECHNICALMETHOD"),
        target_area: get("TARGETAREA"),
        summary_malfunction_reporting: get("SUMMARYMALFUNCTIONREPORTING"),
    })
}
