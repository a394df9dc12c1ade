//! Where candidates come from: openFDA or the local mirror, each turned into the same
//! [`SourcePage`] of [`Candidate`]s with the classification facts of their product codes.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{mirror, SearchError};
use crate::db::Db;
use crate::domain::candidate::{
    recall_class, Availability, Candidate, ProductCodeInfo, RecallFlag, Safety,
};
use crate::openfda::query::{Field, Search, Sort, Term};
use crate::openfda::wire::{
    self, ClassificationRecord, EnforcementRecord, RecallRecord, Record510k,
};
use crate::openfda::{Endpoint, OpenFda, Request};

/// Candidates looked up for recalls: the first this many in source order (one call).
const RECALL_LOOKUP: usize = 50;
/// Why openFDA candidates carry no adverse-event counts.
const EVENTS_NOTE: &str =
    "adverse-event counts come from the mirror only (import openFDA's device/event files)";
/// Product codes whose classification is fetched per search (one call).
const CLASSIFICATION_LOOKUP: usize = 25;

/// What is asked of a source. Built by `search` from validated input; the same value gives
/// the same cache key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceQuery {
    /// Significant words of the free text, sorted; used only when there is no product code.
    pub words: Vec<String>,
    pub product_code: Option<String>,
    pub decision_date_from: Option<NaiveDate>,
    pub decision_date_to: Option<NaiveDate>,
    /// Records fetched before ranking.
    pub fetch_limit: u32,
}

/// One fetch's candidates, as cached.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourcePage {
    /// `openfda` or `mirror`.
    pub source: String,
    pub candidates: Vec<Candidate>,
    /// Matches at the source (may exceed the candidates fetched).
    pub total: u64,
    /// openFDA's `meta.last_updated`.
    pub data_last_updated: Option<String>,
    pub fetched_at: DateTime<Utc>,
    /// Classification facts by product code.
    pub product_codes: BTreeMap<String, ProductCodeInfo>,
    /// False when the recall lookup was skipped or failed.
    pub recalls_checked: bool,
}

impl SourcePage {
    pub fn empty(source: &str) -> Self {
        Self {
            source: source.to_string(),
            candidates: Vec::new(),
            total: 0,
            data_last_updated: None,
            fetched_at: Utc::now(),
            product_codes: BTreeMap::new(),
            recalls_checked: false,
        }
    }
}

/// The source a search reads.
#[derive(Clone)]
pub enum CandidateSource {
    OpenFda(OpenFda),
    /// The mirror as of import `generation` (see [`super::mirror_view`]).
    Mirror {
        db: Db,
        generation: i64,
    },
}

impl CandidateSource {
    pub fn name(&self) -> &'static str {
        match self {
            CandidateSource::OpenFda(_) => "openfda",
            CandidateSource::Mirror { .. } => "mirror",
        }
    }

    /// What cached pages of this source are keyed under: a mirror page belongs to the import
    /// generation it was read from, so an import makes the older pages unreachable.
    pub fn cache_scope(&self) -> String {
        match self {
            CandidateSource::OpenFda(_) => "openfda".to_string(),
            CandidateSource::Mirror { generation, .. } => format!("mirror@{generation}"),
        }
    }

    pub async fn fetch(&self, q: &SourceQuery) -> Result<SourcePage, SearchError> {
        match self {
            CandidateSource::OpenFda(client) => fetch_openfda(client, q).await,
            CandidateSource::Mirror { db, .. } => mirror::search(db, q).await,
        }
    }

    /// One 510(k) by number, or `None`.
    pub async fn find(&self, k_number: &str) -> Result<Option<Candidate>, SearchError> {
        match self {
            CandidateSource::Mirror { db, .. } => mirror::find(db, k_number).await,
            CandidateSource::OpenFda(client) => {
                let Some(term) = Term::k_number(k_number) else {
                    return Ok(None);
                };
                let req = Request::new(
                    Endpoint::Device510k,
                    Search::new().is(Field::KNumber, term),
                    1,
                );
                let page = client.get::<Record510k>(&req).await?;
                Ok(page.results.into_iter().next().map(candidate_from_wire))
            }
        }
    }
}

/// A wire record as a candidate: names and classes fall back to the `openfda` block.
pub fn candidate_from_wire(r: Record510k) -> Candidate {
    let block = r.openfda.unwrap_or_default();
    Candidate {
        device_name: r
            .device_name
            .or(block.device_name)
            .unwrap_or_else(|| "(no device name)".to_string()),
        k_number: r.k_number,
        applicant: r.applicant,
        product_code: r.product_code,
        decision_date: r.decision_date.as_deref().and_then(wire::parse_date),
        decision_code: r.decision_code,
        decision_description: r.decision_description,
        clearance_type: r.clearance_type,
        device_class: block.device_class,
        regulation_number: block.regulation_number.into_iter().next(),
        safety: Safety::default(),
    }
}

/// A classification record as the facts ranking and comparison use.
pub fn product_code_info(r: ClassificationRecord) -> ProductCodeInfo {
    let flag = |v: &Option<String>| v.as_deref().is_some_and(|f| f.eq_ignore_ascii_case("y"));
    ProductCodeInfo {
        implant: flag(&r.implant_flag),
        life_sustaining: flag(&r.life_sustain_support_flag),
        product_code: r.product_code,
        device_name: r.device_name,
        device_class: r.device_class.map(|c| c.to_ascii_uppercase()),
        regulation_number: r.regulation_number.into_iter().next(),
        definition: r.definition,
    }
}

/// The openFDA search behind a query: a product code filters (newest first) and the text only
/// ranks; without a product code the words are searched in device names.
pub fn openfda_search(q: &SourceQuery) -> Request {
    let mut search = Search::new();
    let mut by_code = false;
    if let Some(term) = q.product_code.as_deref().and_then(Term::product_code) {
        search = search.is(Field::ProductCode, term);
        by_code = true;
    } else {
        let terms = q.words.iter().filter_map(|w| Term::text(w)).collect();
        search = search.any_of(Field::DeviceName, terms);
    }
    search = search.between(
        Field::DecisionDate,
        q.decision_date_from,
        q.decision_date_to,
    );
    let mut req = Request::new(Endpoint::Device510k, search, q.fetch_limit);
    if by_code {
        req.sort = Some(Sort::DecisionDateDesc);
    }
    req
}

async fn fetch_openfda(client: &OpenFda, q: &SourceQuery) -> Result<SourcePage, SearchError> {
    let req = openfda_search(q);
    if req.search.is_none() {
        return Ok(SourcePage::empty("openfda"));
    }
    let page = client.get::<Record510k>(&req).await?;
    let mut candidates: Vec<Candidate> =
        page.results.into_iter().map(candidate_from_wire).collect();
    let product_codes = classifications(client, q.product_code.as_deref(), &candidates).await;
    for c in &mut candidates {
        if let Some(info) = c.product_code.as_ref().and_then(|pc| product_codes.get(pc)) {
            c.device_class = c.device_class.take().or_else(|| info.device_class.clone());
            c.regulation_number = c
                .regulation_number
                .take()
                .or_else(|| info.regulation_number.clone());
        }
    }
    let recalls_checked = match recalls(client, &candidates).await {
        Ok((flags, date)) => {
            for (i, c) in candidates.iter_mut().enumerate() {
                c.safety = if i < RECALL_LOOKUP {
                    Safety {
                        recalls_status: Availability::Checked,
                        recalls: flags.get(&c.k_number).cloned().unwrap_or_default(),
                        recalls_data_date: date,
                        note: Some(EVENTS_NOTE.into()),
                        ..Default::default()
                    }
                } else {
                    Safety {
                        note: Some(format!(
                            "only the first {RECALL_LOOKUP} candidates are checked for recalls on openFDA; {EVENTS_NOTE}"
                        )),
                        ..Default::default()
                    }
                };
            }
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "recall lookup failed; candidates are not flagged");
            for c in &mut candidates {
                c.safety = Safety {
                    recalls_status: Availability::Failed,
                    note: Some(format!(
                        "the recall lookup on openFDA failed; {EVENTS_NOTE}"
                    )),
                    ..Default::default()
                };
            }
            false
        }
    };
    Ok(SourcePage {
        source: "openfda".into(),
        total: page.total,
        candidates,
        data_last_updated: page.last_updated,
        fetched_at: Utc::now(),
        product_codes,
        recalls_checked,
    })
}

/// Classification facts of the subject's and candidates' product codes (best effort: a failure
/// only loses the definitions).
async fn classifications(
    client: &OpenFda,
    subject: Option<&str>,
    candidates: &[Candidate],
) -> BTreeMap<String, ProductCodeInfo> {
    let mut codes: Vec<&str> = subject.into_iter().collect();
    for c in candidates {
        if let Some(pc) = c.product_code.as_deref() {
            if !codes.contains(&pc) && codes.len() < CLASSIFICATION_LOOKUP {
                codes.push(pc);
            }
        }
    }
    let terms: Vec<Term> = codes.iter().filter_map(|c| Term::product_code(c)).collect();
    if terms.is_empty() {
        return BTreeMap::new();
    }
    let n = terms.len() as u32;
    let req = Request::new(
        Endpoint::Classification,
        Search::new().any_of(Field::ProductCode, terms),
        n,
    );
    match client.get::<ClassificationRecord>(&req).await {
        Ok(page) => page
            .results
            .into_iter()
            .map(|r| (r.product_code.clone(), product_code_info(r)))
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "classification lookup failed; ranking without definitions");
            BTreeMap::new()
        }
    }
}

/// The recalls of each candidate.
type RecallsByK = BTreeMap<String, Vec<RecallFlag>>;

/// Recalls naming the first candidates' K-numbers, with their class from the enforcement
/// reports (CDRH's recall records carry no class), and the recall data's date.
async fn recalls(
    client: &OpenFda,
    candidates: &[Candidate],
) -> Result<(RecallsByK, Option<NaiveDate>), SearchError> {
    let terms: Vec<Term> = candidates
        .iter()
        .take(RECALL_LOOKUP)
        .filter_map(|c| Term::k_number(&c.k_number))
        .collect();
    if terms.is_empty() {
        return Ok((BTreeMap::new(), None));
    }
    let req = Request::new(
        Endpoint::Recall,
        Search::new().any_of(Field::RecallKNumbers, terms),
        1000,
    );
    let page = client.get::<RecallRecord>(&req).await?;
    let numbers: Vec<Term> = page
        .results
        .iter()
        .filter_map(|r| {
            r.product_res_number
                .as_deref()
                .and_then(Term::recall_number)
        })
        .take(RECALL_LOOKUP)
        .collect();
    let mut classes: BTreeMap<String, u8> = BTreeMap::new();
    if !numbers.is_empty() {
        let n = numbers.len() as u32;
        let req = Request::new(
            Endpoint::Enforcement,
            Search::new().any_of(Field::RecallNumber, numbers),
            n,
        );
        match client.get::<EnforcementRecord>(&req).await {
            Ok(found) => {
                for e in found.results {
                    if let (Some(num), Some(class)) = (
                        e.recall_number,
                        e.classification.as_deref().and_then(recall_class),
                    ) {
                        classes.insert(num, class);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "recall class lookup failed; classes unknown"),
        }
    }
    let wanted: Vec<&str> = candidates
        .iter()
        .take(RECALL_LOOKUP)
        .map(|c| c.k_number.as_str())
        .collect();
    let mut out: BTreeMap<String, Vec<RecallFlag>> = BTreeMap::new();
    for r in page.results {
        let Some(number) = r.product_res_number.clone() else {
            continue;
        };
        for k in r.k_numbers.iter().filter(|k| wanted.contains(&k.as_str())) {
            out.entry(k.clone()).or_default().push(RecallFlag {
                class: classes.get(&number).copied(),
                recall_number: number.clone(),
                status: r.recall_status.clone(),
                initiated: r.event_date_initiated.as_deref().and_then(wire::parse_date),
                terminated: r
                    .event_date_terminated
                    .as_deref()
                    .and_then(wire::parse_date),
                reason: r.reason_for_recall.clone(),
                event_number: r.res_event_number.clone(),
                recalling_firm: r.recalling_firm.clone(),
                scope: Default::default(),
                k_numbers: r.k_numbers.clone(),
            });
        }
    }
    let date = page.last_updated.as_deref().and_then(wire::parse_date);
    Ok((out, date))
}
