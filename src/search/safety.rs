//! The safety block of candidates read from the mirror: their recalls (by K-number, and the
//! Class I recalls of their applicant's other devices of the same product code; other classes
//! there are noise), the recall class from
//! the enforcement reports, and adverse-event counts, in four queries for a whole page. What
//! the mirror has never imported is marked `no_data`, never an empty "checked".

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::db::mirror::safety::{self as store, RecallHit};
use crate::db::Db;
use crate::domain::candidate::{
    recall_class, Availability, Candidate, EventCounts, EventTally, RecallFlag, RecallScope, Safety,
};
use crate::domain::safety::firm_key;

/// What the mirror holds: whether recall, enforcement and event data were imported, and dates.
#[derive(Debug, Default)]
struct Held {
    recalls: bool,
    enforcement: bool,
    events: bool,
    recalls_date: Option<NaiveDate>,
    events_date: Option<NaiveDate>,
}

async fn held(db: &Db) -> Result<Held, sqlx::Error> {
    let mut h = Held::default();
    for (kind, n, date) in store::safety_imports(db).await? {
        match kind.as_str() {
            "recall" => (h.recalls, h.recalls_date) = (n > 0, date.max(h.recalls_date)),
            "enforcement" => {
                h.enforcement = n > 0;
                h.recalls_date = h.recalls_date.max(date);
            }
            "event" => (h.events, h.events_date) = (n > 0, date),
            _ => {}
        }
    }
    Ok(h)
}

fn flag(hit: &RecallHit, scope: RecallScope) -> RecallFlag {
    RecallFlag {
        recall_number: hit.recall_number.clone(),
        class: hit.classification.as_deref().and_then(recall_class),
        status: hit.recall_status.clone(),
        initiated: hit.event_date_initiated,
        terminated: hit.event_date_terminated,
        reason: hit.reason_for_recall.clone(),
        event_number: hit.event_number.clone(),
        recalling_firm: hit.recalling_firm.clone(),
        scope,
        k_numbers: hit
            .k_numbers
            .as_deref()
            .map(|k| k.split(',').map(String::from).collect())
            .unwrap_or_default(),
    }
}

/// Fills the safety block of every candidate from the mirror.
pub async fn fill_from_mirror(db: &Db, candidates: &mut [Candidate]) {
    if let Err(e) = fill(db, candidates).await {
        tracing::warn!(error = %e, "safety lookup in the mirror failed; candidates say so");
        for c in candidates.iter_mut() {
            c.safety = Safety {
                recalls_status: Availability::Failed,
                events_status: Availability::Failed,
                note: Some("the safety lookup failed; recalls and events not checked".into()),
                ..Default::default()
            };
        }
    }
}

async fn fill(db: &Db, candidates: &mut [Candidate]) -> Result<(), sqlx::Error> {
    let held = held(db).await?;
    let k_numbers: Vec<&str> = candidates.iter().map(|c| c.k_number.as_str()).collect();
    let mut codes: Vec<&str> = candidates
        .iter()
        .filter_map(|c| c.product_code.as_deref())
        .collect();
    codes.sort_unstable();
    codes.dedup();
    let firms: Vec<Option<String>> = candidates
        .iter()
        .map(|c| c.applicant.as_deref().and_then(firm_key))
        .collect();
    let (mut direct, mut related) = (Vec::new(), Vec::new());
    if held.recalls {
        direct = store::recalls_naming(db, &k_numbers).await?;
        let mut keys: Vec<&str> = firms.iter().flatten().map(String::as_str).collect();
        keys.sort_unstable();
        keys.dedup();
        related = store::recalls_of_firms(db, &codes, &keys).await?;
    }
    let mut counts: BTreeMap<(String, String), EventTally> = BTreeMap::new();
    if held.events {
        for (scope, key, year, kind, n) in store::event_counts(db, &k_numbers, &codes).await? {
            let tally = counts
                .entry((scope, key.clone()))
                .or_insert_with(|| EventTally {
                    key,
                    ..Default::default()
                });
            tally.add(year, &kind, n);
        }
    }
    let mut notes = Vec::new();
    if !held.recalls {
        notes.push("no recall data in the mirror (import openFDA's device/recall and device/enforcement files)");
    } else if !held.enforcement {
        notes.push("no enforcement reports in the mirror: recall classes are unknown");
    }
    if !held.events {
        notes.push("no adverse-event data in the mirror (import openFDA's device/event files)");
    }
    let note = (!notes.is_empty()).then(|| notes.join("; "));
    let state = |has: bool| {
        if has {
            Availability::Checked
        } else {
            Availability::NoData
        }
    };
    let (recalls_status, events_status) = (state(held.recalls), state(held.events));
    for (c, firm) in candidates.iter_mut().zip(&firms) {
        let mut recalls: Vec<RecallFlag> = direct
            .iter()
            .filter(|h| h.via.as_deref() == Some(c.k_number.as_str()))
            .map(|h| flag(h, RecallScope::ThisDevice))
            .collect();
        for h in &related {
            let same = h.product_code.is_some()
                && h.product_code == c.product_code
                && firm.is_some()
                && h.firm_key == *firm;
            let names_it = h
                .k_numbers
                .as_deref()
                .is_some_and(|ks| ks.split(',').any(|k| k == c.k_number));
            let class_one = h.classification.as_deref().and_then(recall_class) == Some(1);
            if same
                && class_one
                && !names_it
                && !recalls.iter().any(|r| r.recall_number == h.recall_number)
            {
                recalls.push(flag(h, RecallScope::SameApplicantProductCode));
            }
        }
        let events = held.events.then(|| EventCounts {
            device: counts
                .get(&("k_number".to_string(), c.k_number.clone()))
                .cloned(),
            product_code: c.product_code.as_ref().and_then(|pc| {
                counts
                    .get(&("product_code".to_string(), pc.clone()))
                    .cloned()
            }),
        });
        c.safety = Safety {
            recalls_status,
            recalls,
            events_status,
            events,
            recalls_data_date: held.recalls_date,
            events_data_date: held.events_date,
            note: note.clone(),
        };
    }
    Ok(())
}

/// The safety block of one mirrored 510(k).
pub async fn of_device(
    db: &Db,
    k_number: &str,
    applicant: Option<&str>,
    product_code: Option<&str>,
) -> Safety {
    let mut one = [Candidate {
        k_number: k_number.to_string(),
        device_name: String::new(),
        applicant: applicant.map(String::from),
        product_code: product_code.map(String::from),
        decision_date: None,
        decision_code: None,
        decision_description: None,
        clearance_type: None,
        device_class: None,
        regulation_number: None,
        safety: Safety::default(),
    }];
    fill_from_mirror(db, &mut one).await;
    let [c] = one;
    c.safety
}
