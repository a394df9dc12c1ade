//! Predicate ranking: a 0..1 score with a breakdown and reasons for each candidate.
//!
//! `score = eligible × recall_factor × Σ weight·component`, each component in 0..1:
//! name relevance (BM25 of the subject's description and intended use against device names),
//! definition relevance (BM25 against the classification definition of the candidate's product
//! code), product-code match (the subject's own code, or else one the classification suggests
//! for the subject's text), regulation match, recency and decision type. Only substantially
//! equivalent decisions are eligible; the rest score 0 and say why. Recalls scale the score
//! down, a Class I recall heavily. Pure and deterministic: ties break on the newer decision,
//! then the K-number.
//!
//! Name relevance is led by how much of the query a name carries (`reach`), scaled by how much
//! of the name the query explains (`coverage`): one common shared word in a short name ("CO 2
//! METER") cannot beat two rarer ones in a longer name ("BLOOD GLUCOSE METER").
//!
//! The definition corpus is keyed by product code and does not depend on the candidates, and
//! the product-code weight is larger than the definition weight, so giving a candidate the
//! subject's product code can never lower its score.

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::candidate::{source_url, Candidate};
use super::text::{terms, Bm25};

const W_NAME: f64 = 0.35;
const W_DEFINITION: f64 = 0.10;
const W_PRODUCT_CODE: f64 = 0.25;
const W_REGULATION: f64 = 0.10;
const W_RECENCY: f64 = 0.10;
const W_DECISION: f64 = 0.10;

/// Query terms the "ideal" score is built from: a long description should not make every
/// candidate look irrelevant just because no device name repeats all of it.
const IDEAL_TERMS: usize = 5;

/// Part of the product-code weight a suggested code gets when its suggestion is the first and
/// confident; less confident and later suggestions get their confidence's share of it.
const SUGGESTED_MAX: f64 = 0.8;

/// The device a predicate is sought for.
#[derive(Debug, Clone, Default)]
pub struct Subject<'a> {
    /// Description, intended use and device type, or the free-text query.
    pub text: &'a str,
    pub product_code: Option<&'a str>,
    pub regulation_number: Option<&'a str>,
    /// Product codes the classification suggests for `text`, best first (used only without
    /// `product_code`).
    pub suggested_codes: &'a [SuggestedCode],
}

/// A product code the classification suggests for the subject's text.
#[derive(Debug, Clone, PartialEq)]
pub struct SuggestedCode {
    pub product_code: String,
    /// The suggestion's calibrated confidence, 0..1.
    pub confidence: f64,
    /// 0 for the first suggestion.
    pub rank: usize,
}

/// How much a suggested code counts as a product-code match: the first suggestion at least half
/// (a predicate under the likeliest code beats one under none), later ones by their confidence.
fn suggested_weight(s: &SuggestedCode) -> f64 {
    let floor = if s.rank == 0 { 0.5 } else { 0.0 };
    SUGGESTED_MAX * s.confidence.max(floor).min(1.0)
}

/// The components, each 0..1, and the factors applied to their weighted sum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Breakdown {
    pub text_relevance: f64,
    pub definition_relevance: f64,
    pub product_code_match: f64,
    pub regulation_match: f64,
    pub recency: f64,
    pub decision_type: f64,
    /// 1 without recalls; 0.4 with a Class I recall (see `safety::recall_factor`).
    pub recall_factor: f64,
    /// False for decisions that are not substantially equivalent (scored 0).
    pub eligible: bool,
}

/// A candidate with its score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Ranked {
    #[serde(flatten)]
    pub candidate: Candidate,
    /// 0..1, four decimals.
    pub score: f64,
    pub score_breakdown: Breakdown,
    pub reasons: Vec<String>,
    pub source_url: String,
}

/// How a decision code reads for predicate purposes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Decision {
    /// SESE / SE: substantially equivalent.
    Full,
    /// SE with conditions (tracking, kit, drug, postmarket surveillance...).
    Conditional,
    /// SN: equivalent for some indications only.
    Partial,
    /// Described as SE, code unknown.
    DescribedSe,
    NotSe,
    Unknown,
}

fn decision(code: Option<&str>, description: Option<&str>) -> Decision {
    const CONDITIONAL: &[&str] = &[
        "ST", "PT", "SK", "SD", "SU", "SP", "SA", "SF", "SI", "SW", "KD", "PR", "RN",
    ];
    if let Some(code) = code
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| !c.is_empty())
    {
        return match code.as_str() {
            "SESE" | "SE" => Decision::Full,
            "SN" | "SESN" => Decision::Partial,
            c if c.starts_with("SE") => Decision::Conditional,
            c if CONDITIONAL.contains(&c) => Decision::Conditional,
            _ => Decision::NotSe,
        };
    }
    match description.map(|d| d.trim().to_ascii_lowercase()) {
        Some(d) if d.starts_with("substantially equivalent") => Decision::DescribedSe,
        Some(d) if d.is_empty() || d == "unknown" => Decision::Unknown,
        Some(_) => Decision::NotSe,
        None => Decision::Unknown,
    }
}

fn recency(decided: Option<NaiveDate>, as_of: NaiveDate) -> f64 {
    let Some(decided) = decided else { return 0.0 };
    let years = (as_of - decided).num_days() as f64 / 365.25;
    // Reviewers prefer predicates of the last ten years.
    if years <= 10.0 {
        1.0
    } else {
        ((35.0 - years) / 25.0).clamp(0.0, 1.0)
    }
}

/// Distinct terms in order (a set remembers what was seen: linear in the text, not quadratic).
fn distinct(mut ts: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    ts.retain(|t| seen.insert(t.clone()));
    ts
}

/// The best score a document could get from `query`: the `IDEAL_TERMS` rarest query terms that
/// occur in the corpus at all, each once.
fn ideal(index: &Bm25, query: &[String], corpus_has: impl Fn(&str) -> bool) -> f64 {
    let mut idfs: Vec<f64> = query
        .iter()
        .filter(|t| corpus_has(t))
        .map(|t| index.idf(t))
        .collect();
    idfs.sort_by(|a, b| b.total_cmp(a));
    idfs.iter().take(IDEAL_TERMS).sum()
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn regulation_match(subject: Option<&str>, candidate: Option<&str>) -> f64 {
    match (subject.map(str::trim), candidate.map(str::trim)) {
        (Some(s), Some(c)) if !s.is_empty() && s == c => 1.0,
        // Same CFR part (e.g. 880.xxxx): the same panel's family of devices.
        (Some(s), Some(c)) if s.split('.').next() == c.split('.').next() && !s.is_empty() => 0.3,
        _ => 0.0,
    }
}

/// The candidates of one search with their analysed text, built once and ranked for any
/// subject (a cached page is ranked again on every hit; analysing it once saves the stemming).
pub struct Corpus {
    pub candidates: Vec<Candidate>,
    name_docs: Vec<Vec<String>>,
    names: Bm25,
    /// Each name's score against its own terms: the most it can match.
    name_own: Vec<f64>,
    name_vocab: HashSet<String>,
    def_codes: Vec<String>,
    def_docs: Vec<Vec<String>>,
    defs: Bm25,
    def_vocab: HashSet<String>,
}

impl Corpus {
    /// `definitions` maps product codes to their classification definitions.
    pub fn new(candidates: Vec<Candidate>, definitions: &BTreeMap<String, String>) -> Self {
        let name_docs: Vec<Vec<String>> =
            candidates.iter().map(|c| terms(&c.device_name)).collect();
        let defs: BTreeMap<String, Vec<String>> = definitions
            .iter()
            .map(|(code, d)| (code.clone(), terms(d)))
            .collect();
        Self::analysed(candidates, name_docs, defs)
    }

    /// One corpus over several (a search's text page and the pages of its suggested product
    /// codes), each K-number once, without analysing any text again.
    pub fn merged(parts: &[&Corpus]) -> Self {
        let mut seen = HashSet::new();
        let (mut candidates, mut name_docs) = (Vec::new(), Vec::new());
        let mut defs = BTreeMap::new();
        for part in parts {
            for (c, doc) in part.candidates.iter().zip(&part.name_docs) {
                if seen.insert(c.k_number.as_str()) {
                    candidates.push(c.clone());
                    name_docs.push(doc.clone());
                }
            }
            for (code, doc) in part.def_codes.iter().zip(&part.def_docs) {
                defs.entry(code.clone()).or_insert_with(|| doc.clone());
            }
        }
        Self::analysed(candidates, name_docs, defs)
    }

    fn analysed(
        candidates: Vec<Candidate>,
        name_docs: Vec<Vec<String>>,
        definitions: BTreeMap<String, Vec<String>>,
    ) -> Self {
        let names = Bm25::new(&name_docs);
        let name_own = name_docs
            .iter()
            .enumerate()
            .map(|(i, d)| names.score(d, i))
            .collect();
        let name_vocab = name_docs.iter().flatten().cloned().collect();
        let (def_codes, def_docs): (Vec<String>, Vec<Vec<String>>) =
            definitions.into_iter().unzip();
        let defs = Bm25::new(&def_docs);
        let def_vocab = def_docs.iter().flatten().cloned().collect();
        Self {
            candidates,
            name_docs,
            names,
            name_own,
            name_vocab,
            def_codes,
            def_docs,
            defs,
            def_vocab,
        }
    }
}

/// Scores and orders `candidates` for `subject`. `definitions` maps product codes to their
/// classification definitions; `as_of` is "today" for recency.
pub fn rank(
    subject: &Subject<'_>,
    candidates: Vec<Candidate>,
    definitions: &BTreeMap<String, String>,
    as_of: NaiveDate,
) -> Vec<Ranked> {
    rank_corpus(subject, &Corpus::new(candidates, definitions), as_of)
}

/// What one ranking pass needs besides the corpus.
struct Pass<'a> {
    subject: &'a Subject<'a>,
    query: Vec<String>,
    name_ideal: f64,
    def_ideal: f64,
    as_of: NaiveDate,
}

impl<'a> Pass<'a> {
    fn new(subject: &'a Subject<'a>, corpus: &Corpus, as_of: NaiveDate) -> Self {
        let query = distinct(terms(subject.text));
        let name_ideal = ideal(&corpus.names, &query, |t| corpus.name_vocab.contains(t));
        let def_ideal = ideal(&corpus.defs, &query, |t| corpus.def_vocab.contains(t));
        Self {
            subject,
            query,
            name_ideal,
            def_ideal,
            as_of,
        }
    }

    /// The suggestion naming `c`'s product code, when the subject has no code of its own.
    fn suggested(&self, c: &Candidate) -> Option<&'a SuggestedCode> {
        if self.subject.product_code.is_some() {
            return None;
        }
        let pc = c.product_code.as_deref()?;
        self.subject
            .suggested_codes
            .iter()
            .find(|s| s.product_code == pc)
    }

    /// Candidate `i`'s score and breakdown.
    fn score(&self, corpus: &Corpus, i: usize) -> (f64, Breakdown) {
        let c = &corpus.candidates[i];
        // Name: how much of the candidate's name the subject explains, and how much of the
        // subject's key terms the name carries.
        let matched = corpus.names.score(&self.query, i);
        let own = corpus.name_own[i];
        let coverage = if own > 0.0 {
            (matched / own).min(1.0)
        } else {
            0.0
        };
        let reach = if self.name_ideal > 0.0 {
            (matched / self.name_ideal).min(1.0)
        } else {
            0.0
        };
        // Reach leads: a name must carry the query's telling words before its brevity counts.
        let text_relevance = reach * (0.6 + 0.4 * coverage);
        // `def_codes` is sorted: it holds a BTreeMap's keys.
        let def_index = c
            .product_code
            .as_ref()
            .and_then(|pc| corpus.def_codes.binary_search(pc).ok());
        let definition_relevance = match def_index {
            Some(d) if self.def_ideal > 0.0 => {
                (corpus.defs.score(&self.query, d) / self.def_ideal).min(1.0)
            }
            _ => 0.0,
        };
        let same_code = matches!((self.subject.product_code, c.product_code.as_deref()), (Some(s), Some(p)) if s == p);
        let product_code_match = if same_code {
            1.0
        } else {
            self.suggested(c).map_or(0.0, suggested_weight)
        };
        let regulation = regulation_match(
            self.subject.regulation_number,
            c.regulation_number.as_deref(),
        );
        let recent = recency(c.decision_date, self.as_of);
        let (eligible, decision_type) = match decision(
            c.decision_code.as_deref(),
            c.decision_description.as_deref(),
        ) {
            Decision::Full => (true, 1.0),
            Decision::DescribedSe => (true, 0.8),
            Decision::Conditional => (true, 0.7),
            Decision::Partial => (true, 0.4),
            Decision::NotSe | Decision::Unknown => (false, 0.0),
        };
        let factor = super::safety::recall_factor(&c.safety);
        let sum = W_NAME * text_relevance
            + W_DEFINITION * definition_relevance
            + W_PRODUCT_CODE * product_code_match
            + W_REGULATION * regulation
            + W_RECENCY * recent
            + W_DECISION * decision_type;
        let score = if eligible {
            round4((sum * factor).clamp(0.0, 1.0))
        } else {
            0.0
        };
        let breakdown = Breakdown {
            text_relevance: round4(text_relevance),
            definition_relevance: round4(definition_relevance),
            product_code_match,
            regulation_match: regulation,
            recency: round4(recent),
            decision_type,
            recall_factor: factor,
            eligible,
        };
        (score, breakdown)
    }

    /// The reasons behind a breakdown, in words (built only for candidates that are shown).
    fn reasons(&self, corpus: &Corpus, i: usize, b: &Breakdown) -> Vec<String> {
        let c = &corpus.candidates[i];
        let mut reasons = Vec::new();
        let shared: Vec<&str> = corpus.name_docs[i]
            .iter()
            .filter(|t| self.query.contains(t))
            .map(String::as_str)
            .collect();
        if !shared.is_empty() {
            reasons.push(format!("device name shares terms: {}", shared.join(", ")));
        }
        if b.definition_relevance > 0.0 {
            reasons.push("classification definition matches the description".to_string());
        }
        let suggested = self.suggested(c);
        match (b.product_code_match > 0.0, c.product_code.as_deref()) {
            (true, Some(pc)) if suggested.is_some() => {
                if let Some(s) = suggested {
                    reasons.push(format!(
                        "product code {pc} is the classification's suggestion no. {} for your text (confidence {:.2})",
                        s.rank + 1,
                        s.confidence
                    ));
                }
            }
            (true, Some(pc)) => reasons.push(format!("same product code ({pc})")),
            (false, Some(pc)) if self.subject.product_code.is_some() => {
                reasons.push(format!("different product code ({pc})"))
            }
            _ => {}
        }
        if b.regulation_match >= 1.0 {
            if let Some(r) = &c.regulation_number {
                reasons.push(format!("same regulation (21 CFR {r})"));
            }
        }
        if let Some(d) = c.decision_date {
            reasons.push(format!("decided {d}"));
        }
        let code = c.decision_code.as_deref().unwrap_or("unknown");
        reasons.push(match decision(c.decision_code.as_deref(), c.decision_description.as_deref()) {
            Decision::Full | Decision::DescribedSe => "substantially equivalent decision".to_string(),
            Decision::Conditional => format!("substantially equivalent with conditions ({code})"),
            Decision::Partial => "substantially equivalent for some indications only (SN)".to_string(),
            Decision::NotSe if code.starts_with("DEN") => format!(
                "not eligible: De Novo decision ({code}); a granted De Novo can serve as a predicate only after review"
            ),
            Decision::NotSe => format!("not eligible: decision {code} is not substantially equivalent"),
            Decision::Unknown => "not eligible: the decision type is unknown; verify on FDA's site".to_string(),
        });
        reasons.extend(super::safety::reasons(&c.safety));
        reasons
    }

    /// Every candidate's score, best first, ties by the newer decision, then the K-number.
    fn order(&self, corpus: &Corpus) -> Vec<(f64, usize, Breakdown)> {
        let mut scored: Vec<(f64, usize, Breakdown)> = (0..corpus.candidates.len())
            .map(|i| {
                let (score, b) = self.score(corpus, i);
                (score, i, b)
            })
            .collect();
        scored.sort_by(|a, b| {
            let (ca, cb) = (&corpus.candidates[a.1], &corpus.candidates[b.1]);
            b.0.total_cmp(&a.0)
                .then_with(|| cb.decision_date.cmp(&ca.decision_date))
                .then_with(|| ca.k_number.cmp(&cb.k_number))
        });
        scored
    }

    fn ranked(&self, corpus: &Corpus, (score, i, b): (f64, usize, Breakdown)) -> Ranked {
        let candidate = corpus.candidates[i].clone();
        Ranked {
            source_url: source_url(&candidate.k_number),
            reasons: self.reasons(corpus, i, &b),
            candidate,
            score,
            score_breakdown: b,
        }
    }
}

/// [`rank`] over a prepared corpus: every candidate, eligible or not.
pub fn rank_corpus(subject: &Subject<'_>, corpus: &Corpus, as_of: NaiveDate) -> Vec<Ranked> {
    let pass = Pass::new(subject, corpus, as_of);
    pass.order(corpus)
        .into_iter()
        .map(|s| pass.ranked(corpus, s))
        .collect()
}

/// The best `limit` eligible candidates, with the counts of eligible and excluded ones.
pub struct Top {
    pub results: Vec<Ranked>,
    pub eligible: usize,
    pub excluded: usize,
}

/// Like [`rank_corpus`], but builds reasons only for the candidates it returns.
pub fn rank_top(subject: &Subject<'_>, corpus: &Corpus, as_of: NaiveDate, limit: usize) -> Top {
    let pass = Pass::new(subject, corpus, as_of);
    let (eligible, excluded): (Vec<_>, Vec<_>) =
        pass.order(corpus).into_iter().partition(|s| s.2.eligible);
    let (eligible_count, excluded) = (eligible.len(), excluded.len());
    // Only ranking by suggested codes hedges: a subject's own code is not a guess.
    let suggested = match subject.product_code {
        Some(_) => &[][..],
        None => subject.suggested_codes,
    };
    let (eligible, promoted) = super::hedging::hedge(
        eligible,
        limit.min(super::hedging::WINDOW),
        suggested,
        super::classify::CONFIDENT,
        |s| corpus.candidates[s.1].product_code.as_deref(),
    );
    let mut results: Vec<Ranked> = eligible
        .into_iter()
        .take(limit)
        .map(|s| pass.ranked(corpus, s))
        .collect();
    for (position, rank) in promoted {
        if let Some(r) = results.get_mut(position) {
            r.reasons.push(format!(
                "moved up to cover the classification's suggestion no. {}, because its first suggestion is not confident",
                rank + 1
            ));
        }
    }
    Top {
        eligible: eligible_count,
        excluded,
        results,
    }
}

#[cfg(test)]
#[path = "ranking_tests.rs"]
mod tests;
