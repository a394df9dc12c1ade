//! Classification scoring (pure): ranks FDA product codes for a free-text device description.
//!
//! Each product code is seen three ways, each its own BM25 field: the classification name
//! ("Pump, Infusion"), its definition, and the trade names of every 510(k) cleared under it
//! ("SIGMA SPECTRUM INFUSION PUMP"). Trade names are indexed one 510(k) per document and their
//! matches aggregated per code (a nearest-neighbour vote), because one long concatenated
//! document would drown a rare, telling name among thousands of others. Scores are normalised by
//! the query's ideal score in each field, weighted, and nudged by how often FDA clears devices
//! under the code. Everything is built once in memory; a query touches only the postings of its
//! own terms.

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::pathway::{cfr_sections, pathway};
use super::postings::Postings;
use super::text::terms;

/// What the index needs of a product code.
#[derive(Debug, Clone, Default)]
pub struct CodeInfo {
    pub product_code: String,
    pub device_name: String,
    pub device_class: String,
    pub regulation_number: Option<String>,
    pub submission_type_id: Option<String>,
    pub definition: Option<String>,
}

/// A cleared 510(k) as the index learns from it.
#[derive(Debug, Clone, Default)]
pub struct TradeName {
    pub k_number: String,
    pub product_code: String,
    pub device_name: String,
    pub year: Option<i32>,
}

/// One ranked product code.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Suggestion {
    #[schema(example = "FRN")]
    pub product_code: String,
    pub device_name: String,
    /// `1`, `2`, `3`, `U`, `N` or `F`.
    pub device_class: String,
    pub regulation_number: Option<String>,
    /// `510k`, `De Novo`, `PMA` or `Exempt`.
    pub regulatory_pathway: String,
    /// e.g. `21 CFR 880.5725`.
    pub cfr_sections: Vec<String>,
    /// 0..1: how often a suggestion scored like this one is the right product code, measured on
    /// 510(k)s the index did not hold (see `CALIBRATION`).
    pub confidence: f64,
    /// False means "no confident suggestion": the confidence is below [`CONFIDENT`], so the code
    /// is more likely wrong than right; review the alternatives rather than trust it.
    pub confident: bool,
    pub reasons: Vec<String>,
    /// The uncalibrated score share the confidence is read from (for the calibration itself).
    #[serde(skip)]
    pub raw_confidence: f64,
}

/// The confidence from which a suggestion is more likely right than wrong.
pub const CONFIDENT: f64 = 0.5;

/// Raw score share -> share of right first suggestions, measured on the bundled 2015–2026 sample
/// in five folds (each fold held out of its own index; never the evaluated files), made monotone;
/// `examples/predicate_eval.rs --dev` prints it. Many first suggestions saturate at a raw share
/// of 1: that point is their average.
const CALIBRATION: &[(f64, f64)] = &[
    (0.0, 0.15),
    (0.095, 0.170),
    (0.142, 0.213),
    (0.220, 0.250),
    (0.297, 0.330),
    (0.400, 0.367),
    (0.506, 0.420),
    (0.594, 0.527),
    (0.721, 0.550),
    (0.808, 0.570),
    (0.862, 0.580),
    (0.920, 0.660),
    (0.980, 0.685),
    (0.999, 0.690),
    (1.0, 0.81),
];

/// The calibrated confidence of a raw score share: linear between the table's points.
fn calibrate(raw: f64) -> f64 {
    let (first, last) = (CALIBRATION[0], CALIBRATION[CALIBRATION.len() - 1]);
    if raw <= first.0 {
        return first.1;
    }
    for pair in CALIBRATION.windows(2) {
        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
        if raw <= x1 {
            let t = if x1 > x0 { (raw - x0) / (x1 - x0) } else { 1.0 };
            return y0 + t * (y1 - y0);
        }
    }
    last.1
}

/// Weights of the scoring; the defaults were chosen on a development split of the mirror's own
/// 510(k)s (see `examples/classification_eval.rs`), never on the evaluated files.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub w_name: f64,
    pub w_definition: f64,
    pub w_trade: f64,
    /// Weight of the log clearance count (how common devices under a code are).
    pub w_prior: f64,
    /// Decay of the 2nd, 3rd, … best trade-name match of a code.
    pub neighbour_decay: f64,
    pub neighbours: usize,
    /// Trade names decided in or after this year count `w_recent` times: today's devices
    /// resemble recent clearances more than 1980s ones.
    pub recent_year: i32,
    pub w_recent: f64,
    /// Adds adjacent word pairs ("blood_pressure") as terms.
    pub bigrams: bool,
    /// Weight of the log count of recent clearances (codes FDA still clears devices under).
    pub w_recent_prior: f64,
}

/// The terms of `text`, with adjacent pairs when `bigrams` is set.
fn analyse(text: &str, bigrams: bool) -> Vec<String> {
    let mut t = terms(text);
    if bigrams && t.len() > 1 {
        let pairs: Vec<String> = t.windows(2).map(|w| format!("{}_{}", w[0], w[1])).collect();
        t.extend(pairs);
    }
    t
}

impl Default for Params {
    fn default() -> Self {
        Params {
            w_name: 1.0,
            w_definition: 0.3,
            w_trade: 1.5,
            w_prior: 0.05,
            neighbour_decay: 0.5,
            neighbours: 3,
            recent_year: 2000,
            w_recent: 2.5,
            bigrams: true,
            w_recent_prior: 0.1,
        }
    }
}

/// One cleared 510(k) as the index keeps it.
struct TradeDoc {
    code: u32,
    weight: f64,
    k_number: String,
    name: String,
}

/// The in-memory classification index.
pub struct ClassIndex {
    codes: Vec<CodeInfo>,
    clearances: Vec<u32>,
    recent_clearances: Vec<u32>,
    names: Postings,
    definitions: Postings,
    trade: Postings,
    trade_docs: Vec<TradeDoc>,
    max_log_clearances: f64,
    max_log_recent: f64,
    params: Params,
}

/// Per-code score parts, kept for the reasons.
#[derive(Default, Clone)]
struct Parts {
    name: f64,
    definition: f64,
    trade: f64,
    best_trade: Option<(u32, f64)>,
    trade_hits: u32,
}

impl ClassIndex {
    /// Builds the index from the product codes and the cleared 510(k)s (names under codes the
    /// table does not know are ignored).
    pub fn build(
        codes: Vec<CodeInfo>,
        trade_names: impl IntoIterator<Item = TradeName>,
        params: Params,
    ) -> Self {
        let position: HashMap<&str, u32> = codes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.product_code.as_str(), i as u32))
            .collect();
        let mut clearances = vec![0u32; codes.len()];
        let mut recent_clearances = vec![0u32; codes.len()];
        let mut trade_docs = Vec::new();
        for t in trade_names {
            if let Some(&i) = position.get(t.product_code.as_str()) {
                clearances[i as usize] += 1;
                let recent = t.year.is_some_and(|y| y >= params.recent_year);
                if recent {
                    recent_clearances[i as usize] += 1;
                }
                trade_docs.push(TradeDoc {
                    code: i,
                    weight: if recent { params.w_recent } else { 1.0 },
                    k_number: t.k_number,
                    name: t.device_name,
                });
            }
        }
        let b = params.bigrams;
        let names = Postings::build(codes.iter().map(|c| analyse(&c.device_name, b)));
        let definitions = Postings::build(
            codes
                .iter()
                .map(|c| analyse(c.definition.as_deref().unwrap_or(""), b)),
        );
        let trade = Postings::build(trade_docs.iter().map(|d| analyse(&d.name, b)));
        let max_log_clearances = clearances
            .iter()
            .map(|&n| f64::from(n).ln_1p())
            .fold(1.0, f64::max);
        let max_log_recent = recent_clearances
            .iter()
            .map(|&n| f64::from(n).ln_1p())
            .fold(1.0, f64::max);
        ClassIndex {
            recent_clearances,
            max_log_recent,
            codes,
            clearances,
            names,
            definitions,
            trade,
            trade_docs,
            max_log_clearances,
            params,
        }
    }

    pub fn product_codes(&self) -> usize {
        self.codes.len()
    }

    pub fn trade_names(&self) -> usize {
        self.trade_docs.len()
    }

    /// How many indexed 510(k)s were cleared under `code` (`None` for an unknown code).
    pub fn clearances(&self, code: &str) -> Option<u32> {
        let i = self.codes.iter().position(|c| c.product_code == code)?;
        Some(self.clearances[i])
    }

    /// The `limit` best product codes for `text`, best first; empty when no word matches.
    pub fn suggest(&self, text: &str, limit: usize) -> Vec<Suggestion> {
        let mut query = analyse(text, self.params.bigrams);
        let mut seen = std::collections::HashSet::new();
        query.retain(|t| seen.insert(t.clone()));
        if query.is_empty() {
            return Vec::new();
        }
        let p = self.params;
        let mut parts: HashMap<u32, Parts> = HashMap::new();

        let mut acc = HashMap::new();
        self.names.score_into(&query, &mut acc);
        let ideal = self.names.ideal(&query);
        for (doc, s) in acc.drain() {
            parts.entry(doc).or_default().name = s / ideal;
        }
        self.definitions.score_into(&query, &mut acc);
        let ideal = self.definitions.ideal(&query);
        for (doc, s) in acc.drain() {
            parts.entry(doc).or_default().definition = s / ideal;
        }
        self.trade.score_into(&query, &mut acc);
        let ideal = self.trade.ideal(&query);
        let mut per_code: HashMap<u32, Vec<(f64, u32)>> = HashMap::new();
        for (doc, s) in acc.drain() {
            let d = &self.trade_docs[doc as usize];
            per_code
                .entry(d.code)
                .or_default()
                .push((d.weight * s / ideal, doc));
        }
        for (code, mut sims) in per_code {
            sims.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let mut weight = 1.0;
            let mut total = 0.0;
            for (s, _) in sims.iter().take(p.neighbours) {
                total += weight * s;
                weight *= p.neighbour_decay;
            }
            let entry = parts.entry(code).or_default();
            entry.trade = total;
            entry.best_trade = sims.first().map(|&(s, d)| (d, s));
            entry.trade_hits = sims.len() as u32;
        }

        let mut ranked: Vec<(f64, u32, Parts)> = parts
            .into_iter()
            .map(|(code, parts)| {
                let prior =
                    f64::from(self.clearances[code as usize]).ln_1p() / self.max_log_clearances;
                let score = p.w_name * parts.name
                    + p.w_definition * parts.definition
                    + p.w_trade * parts.trade
                    + p.w_prior * prior
                    + p.w_recent_prior * f64::from(self.recent_clearances[code as usize]).ln_1p()
                        / self.max_log_recent;
                (score, code, parts)
            })
            .collect();
        ranked.sort_by(|a, b| {
            b.0.total_cmp(&a.0).then_with(|| {
                self.codes[a.1 as usize]
                    .product_code
                    .cmp(&self.codes[b.1 as usize].product_code)
            })
        });
        let max_possible = p.w_name + p.w_definition + p.w_trade * 1.75 + p.w_prior;
        let top: Vec<f64> = ranked.iter().take(10).map(|r| r.0).collect();
        ranked
            .into_iter()
            .take(limit)
            .map(|(score, code, parts)| {
                self.suggestion(code, score, &parts, &top, max_possible, &query)
            })
            .collect()
    }

    fn suggestion(
        &self,
        code: u32,
        score: f64,
        parts: &Parts,
        top: &[f64],
        max_possible: f64,
        query: &[String],
    ) -> Suggestion {
        let info = &self.codes[code as usize];
        let clearances = self.clearances[code as usize];
        // Confidence: how much of the query the code explains, times how clearly it beats the
        // other candidates (its share of a softmax over the top ten).
        let coverage = (score / max_possible * 2.0).min(1.0);
        let denom: f64 = top.iter().map(|s| ((s - top[0]) * 8.0).exp()).sum();
        let share = ((score - top[0]) * 8.0).exp() / denom.max(1e-9);
        let raw_confidence = coverage * share;
        let confidence = (calibrate(raw_confidence) * 1000.0).round() / 1000.0;

        let mut reasons = Vec::new();
        if parts.name > 0.0 {
            // The name is analysed once, not once per query term.
            let name_terms = terms(&info.device_name);
            let matched: Vec<&str> = query
                .iter()
                .filter(|t| name_terms.contains(t))
                .map(String::as_str)
                .collect();
            reasons.push(format!(
                "the FDA classification name \"{}\" matches {} of your terms ({})",
                info.device_name,
                matched.len(),
                matched.join(", ")
            ));
        }
        if let Some((doc, _)) = parts.best_trade {
            let d = &self.trade_docs[doc as usize];
            reasons.push(format!(
                "{} of {} cleared 510(k)s under {} have similar device names, closest: \"{}\" ({})",
                parts.trade_hits, clearances, info.product_code, d.name, d.k_number
            ));
        }
        if parts.definition > 0.0 {
            reasons.push("the classification's definition mentions your terms".to_string());
        }
        let (pathway, why) = pathway(
            &info.device_class,
            info.submission_type_id.as_deref(),
            clearances,
        );
        reasons.push(why);
        let cfr = cfr_sections(info.regulation_number.as_deref());
        if let Some(section) = cfr.first() {
            reasons.push(format!(
                "class {} device regulated under {section}",
                info.device_class
            ));
        }
        Suggestion {
            product_code: info.product_code.clone(),
            device_name: info.device_name.clone(),
            device_class: info.device_class.clone(),
            regulation_number: info.regulation_number.clone(),
            regulatory_pathway: pathway.to_string(),
            cfr_sections: cfr,
            confidence,
            confident: confidence >= CONFIDENT,
            reasons,
            raw_confidence,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(pc: &str, name: &str, class: &str, sub: &str) -> CodeInfo {
        CodeInfo {
            product_code: pc.into(),
            device_name: name.into(),
            device_class: class.into(),
            regulation_number: Some("880.5725".into()),
            submission_type_id: Some(sub.into()),
            definition: None,
        }
    }

    #[test]
    fn trade_names_and_classification_names_rank_codes() {
        let codes = vec![
            code("FRN", "Pump, Infusion", "2", "1"),
            code(
                "DXN",
                "System, Measurement, Blood-Pressure, Non-Invasive",
                "2",
                "1",
            ),
            code("BRW", "Protector, Dental", "1", "4"),
        ];
        let trade = [
            ("K1", "FRN", "SIGMA SPECTRUM INFUSION PUMP"),
            ("K2", "DXN", "OMRON AUTOMATIC BLOOD PRESSURE MONITOR"),
        ]
        .map(|(k, c, n)| TradeName {
            k_number: k.into(),
            product_code: c.into(),
            device_name: n.into(),
            year: Some(2020),
        });
        let index = ClassIndex::build(codes, trade, Params::default());
        let s = index.suggest("ambulatory infusion pump", 3);
        assert_eq!(s[0].product_code, "FRN");
        assert_eq!(s[0].regulatory_pathway, "510k");
        assert_eq!(s[0].cfr_sections, vec!["21 CFR 880.5725"]);
        assert!(s[0].confidence > 0.0 && s[0].confidence <= 1.0);
        assert!(s[0].reasons.iter().any(|r| r.contains("K1")));
        assert_eq!(index.suggest("omron monitor", 1)[0].product_code, "DXN");
        assert!(index.suggest("the of and", 5).is_empty());
    }
}
