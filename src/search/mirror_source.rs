//! The local 510(k) mirror as a candidate source. `Fda510k` serialises with openFDA's field
//! names, so its records go through the same wire type and conversion as openFDA's.

use std::collections::BTreeMap;

use chrono::Utc;
use serde_json::Value;

use super::source::candidate_from_wire;
use super::{SearchError, SourcePage, SourceQuery};
use crate::db::mirror::{self, MirrorQuery};
use crate::db::Db;
use crate::domain::candidate::{Candidate, ProductCodeInfo};
use crate::openfda::wire::Record510k;

fn to_candidate(record: &impl serde::Serialize) -> Option<Candidate> {
    let value = serde_json::to_value(record).ok()?;
    serde_json::from_value::<Record510k>(value)
        .ok()
        .map(candidate_from_wire)
}

pub async fn search(db: &Db, q: &SourceQuery) -> Result<SourcePage, SearchError> {
    let query = MirrorQuery {
        text: (!q.words.is_empty() && q.product_code.is_none()).then(|| q.words.join(" ")),
        product_code: q.product_code.clone(),
        decision_date_from: q.decision_date_from,
        decision_date_to: q.decision_date_to,
        limit: i64::from(q.fetch_limit),
    };
    let (rows, total) = mirror::search_510k(db, &query)
        .await
        .map_err(|e| SearchError::Internal(format!("mirror search failed: {e}")))?;
    let mut candidates: Vec<Candidate> = rows.iter().filter_map(to_candidate).collect();
    let mut codes: Vec<&str> = q.product_code.as_deref().into_iter().collect();
    for c in &candidates {
        if let Some(pc) = c.product_code.as_deref() {
            if !codes.contains(&pc) {
                codes.push(pc);
            }
        }
    }
    let product_codes = product_codes(db, &codes).await;
    for c in &mut candidates {
        if let Some(info) = c.product_code.as_ref().and_then(|pc| product_codes.get(pc)) {
            c.device_class = c.device_class.take().or_else(|| info.device_class.clone());
            c.regulation_number = c
                .regulation_number
                .take()
                .or_else(|| info.regulation_number.clone());
        }
    }
    Ok(SourcePage {
        source: "mirror".into(),
        candidates,
        total: total.max(0) as u64,
        data_last_updated: None,
        fetched_at: Utc::now(),
        product_codes,
        recalls_checked: false,
    })
}

pub async fn find(db: &Db, k_number: &str) -> Result<Option<Candidate>, SearchError> {
    let row = mirror::find_510k(db, k_number)
        .await
        .map_err(|e| SearchError::Internal(format!("mirror lookup failed: {e}")))?;
    Ok(row.as_ref().and_then(to_candidate))
}

/// The classification facts of one product code, read through its JSON form so this file does
/// not depend on the mirror's struct layout beyond FDA's column names.
pub async fn product_code(db: &Db, code: &str) -> Option<ProductCodeInfo> {
    let row = mirror::find_product_code(db, code).await.ok().flatten()?;
    info(code, &row)
}

/// The classification facts of a stored product code, in the search's terms.
fn info(code: &str, row: &mirror::ProductCode) -> Option<ProductCodeInfo> {
    let v = serde_json::to_value(row).ok()?;
    let text = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
    };
    let flag = |k: &str| match v.get(k) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("y"),
        _ => false,
    };
    Some(ProductCodeInfo {
        product_code: code.to_string(),
        device_name: text("device_name"),
        device_class: text("device_class").map(|c| c.to_ascii_uppercase()),
        regulation_number: text("regulation_number"),
        definition: text("definition"),
        implant: flag("implant_flag"),
        life_sustaining: flag("life_sustain_support_flag"),
    })
}

/// Up to 50 product codes in one query.
pub async fn product_codes(db: &Db, codes: &[&str]) -> BTreeMap<String, ProductCodeInfo> {
    let wanted: Vec<&str> = codes.iter().take(50).copied().collect();
    let rows = match mirror::find_product_codes(db, &wanted).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "product codes lookup failed; ranking without them");
            return BTreeMap::new();
        }
    };
    rows.iter()
        .filter_map(|row| {
            let code = row.product_code.clone();
            info(&code, row).map(|i| (code, i))
        })
        .collect()
}
