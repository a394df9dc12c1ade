//! The local 510(k) mirror as a candidate source: its rows become candidates directly, with the
//! classification facts of their product codes read in one query.

use std::collections::BTreeMap;

use chrono::Utc;

use super::{SearchError, SourcePage, SourceQuery};
use crate::db::mirror::{self, Fda510k, MirrorQuery};
use crate::db::Db;
use crate::domain::candidate::{Availability, Candidate, ProductCodeInfo};

/// A mirror row as a candidate (its class and regulation come from its product code's facts).
fn to_candidate(row: Fda510k) -> Candidate {
    Candidate {
        k_number: row.k_number,
        device_name: row.device_name,
        applicant: row.applicant,
        product_code: row.product_code,
        decision_date: row.decision_date,
        decision_code: row.decision_code,
        decision_description: row.decision_description,
        clearance_type: row.clearance_type,
        device_class: None,
        regulation_number: None,
        safety: Default::default(),
    }
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
    let mut candidates: Vec<Candidate> = rows.into_iter().map(to_candidate).collect();
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
    super::safety::fill_from_mirror(db, &mut candidates).await;
    let recalls_checked = candidates
        .first()
        .is_some_and(|c| c.safety.recalls_status == Availability::Checked);
    Ok(SourcePage {
        source: "mirror".into(),
        candidates,
        total: total.max(0) as u64,
        data_last_updated: None,
        fetched_at: Utc::now(),
        product_codes,
        recalls_checked,
    })
}

pub async fn find(db: &Db, k_number: &str) -> Result<Option<Candidate>, SearchError> {
    let row = mirror::find_510k(db, k_number)
        .await
        .map_err(|e| SearchError::Internal(format!("mirror lookup failed: {e}")))?;
    let Some(row) = row else { return Ok(None) };
    let mut one = [to_candidate(row)];
    super::safety::fill_from_mirror(db, &mut one).await;
    let [c] = one;
    Ok(Some(c))
}

/// The classification facts of one product code.
pub async fn product_code(db: &Db, code: &str) -> Option<ProductCodeInfo> {
    let row = mirror::find_product_code(db, code).await.ok().flatten()?;
    Some(info(row))
}

/// The classification facts of a stored product code, in the search's terms.
fn info(row: mirror::ProductCode) -> ProductCodeInfo {
    let text = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let flag = |v: &Option<String>| v.as_deref().is_some_and(|f| f.eq_ignore_ascii_case("y"));
    ProductCodeInfo {
        implant: flag(&row.implant_flag),
        life_sustaining: flag(&row.life_sustain_support_flag),
        device_name: text(Some(row.device_name)),
        device_class: text(Some(row.device_class)).map(|c| c.to_ascii_uppercase()),
        regulation_number: text(row.regulation_number),
        definition: text(row.definition),
        product_code: row.product_code,
    }
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
    rows.into_iter()
        .map(|row| (row.product_code.clone(), info(row)))
        .collect()
}
