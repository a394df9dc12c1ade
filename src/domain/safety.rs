//! The safety block every candidate carries: its recalls and adverse-event counts, and whether
//! each was checked at all, so that "none found" never reads like "not checked"; and the one
//! rule of how recalls weigh on a predicate's score, its reasons and its comparison's risk.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::candidate::RecallFlag;

/// Whether a kind of safety data was looked at for a candidate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// Looked up in data that was loaded: an empty list means none found.
    Checked,
    /// The source holds no such data (nothing imported): not checked.
    NoData,
    /// Not looked up (e.g. beyond the first candidates openFDA is asked about).
    #[default]
    NotChecked,
    /// The lookup failed: not checked.
    Failed,
}

/// Whose recall it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecallScope {
    /// The recall names the candidate's K-number.
    #[default]
    ThisDevice,
    /// A recall of another device of the candidate's applicant, with its product code.
    SameApplicantProductCode,
}

/// Adverse-event reports (MDRs) of one year, by event type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct YearTally {
    /// The year FDA received the reports (0 when the report has no date).
    pub year: i32,
    pub death: i64,
    pub injury: i64,
    pub malfunction: i64,
    pub other: i64,
}

/// Adverse-event reports naming one 510(k) or one product code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventTally {
    /// The K-number or the product code counted.
    pub key: String,
    pub death: i64,
    pub injury: i64,
    pub malfunction: i64,
    pub other: i64,
    pub total: i64,
    /// Newest year first.
    pub by_year: Vec<YearTally>,
}

impl EventTally {
    /// Adds `n` reports of `event_type` (`death`, `injury`, `malfunction`, else other) in `year`.
    pub fn add(&mut self, year: i32, event_type: &str, n: i64) {
        let at = match self.by_year.iter().position(|y| y.year == year) {
            Some(i) => i,
            None => {
                let i = self.by_year.partition_point(|y| y.year > year);
                self.by_year.insert(
                    i,
                    YearTally {
                        year,
                        ..Default::default()
                    },
                );
                i
            }
        };
        let y = &mut self.by_year[at];
        let (total, per_year) = match event_type {
            "death" => (&mut self.death, &mut y.death),
            "injury" => (&mut self.injury, &mut y.injury),
            "malfunction" => (&mut self.malfunction, &mut y.malfunction),
            _ => (&mut self.other, &mut y.other),
        };
        *total += n;
        *per_year += n;
        self.total += n;
    }
}

/// Adverse-event counts of a candidate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventCounts {
    /// Reports that name the candidate's 510(k); `None` when none do.
    pub device: Option<EventTally>,
    /// Reports on any device of its product code; `None` when none do.
    pub product_code: Option<EventTally>,
}

/// A candidate's safety history as far as the source knows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Safety {
    pub recalls_status: Availability,
    /// Recalls of this device, then of other devices of its applicant and product code.
    pub recalls: Vec<RecallFlag>,
    pub events_status: Availability,
    /// Present when `events_status` is `checked`.
    pub events: Option<EventCounts>,
    /// The date the recall data is current to (openFDA's `last_updated`, or the import's).
    pub recalls_data_date: Option<NaiveDate>,
    /// The date the adverse-event data is current to.
    pub events_data_date: Option<NaiveDate>,
    /// Why something was not checked, in words.
    pub note: Option<String>,
}

impl Safety {
    /// The worst Class I recall, if any: its own first, then its applicant's.
    pub fn class_one(&self) -> Option<&RecallFlag> {
        let ones = || self.recalls.iter().filter(|r| r.class == Some(1));
        ones()
            .find(|r| r.scope == RecallScope::ThisDevice)
            .or_else(|| ones().next())
    }
}

/// The factor recalls put on a score. The candidate's own recalls: the worst class decides
/// (Class I 0.4, unknown class 0.8, Class II 0.85, Class III 0.95). A Class I recall of another
/// device of its applicant and product code: 0.7 (a JAMA study found such predicates' progeny
/// recalled far more often); other classes there do not count.
pub fn recall_factor(safety: &Safety) -> f64 {
    safety
        .recalls
        .iter()
        .map(|r| match (r.scope, r.class) {
            (RecallScope::ThisDevice, Some(1)) => 0.4,
            (RecallScope::ThisDevice, Some(2)) => 0.85,
            (RecallScope::ThisDevice, Some(3)) => 0.95,
            (RecallScope::ThisDevice, _) => 0.8,
            (RecallScope::SameApplicantProductCode, Some(1)) => 0.7,
            (RecallScope::SameApplicantProductCode, _) => 1.0,
        })
        .fold(1.0, f64::min)
}

fn class_name(class: Option<u8>) -> &'static str {
    match class {
        Some(1) => "Class I",
        Some(2) => "Class II",
        Some(3) => "Class III",
        _ => "unclassified",
    }
}

/// The ranking reasons of a safety block: each recall, and what was not checked.
pub fn reasons(safety: &Safety) -> Vec<String> {
    let mut out = Vec::new();
    for r in &safety.recalls {
        let class = class_name(r.class);
        out.push(match r.scope {
            RecallScope::ThisDevice => format!("{class} recall on record ({})", r.recall_number),
            RecallScope::SameApplicantProductCode if r.class == Some(1) => format!(
                "Class I recall of another device of the same applicant and product code ({}{})",
                r.recall_number,
                others(&r.k_numbers)
            ),
            RecallScope::SameApplicantProductCode => format!(
                "{class} recall of another device of the same applicant and product code ({}); not weighed",
                r.recall_number
            ),
        });
    }
    match safety.recalls_status {
        Availability::Checked if safety.recalls.is_empty() => {
            out.push("no recalls on record".to_string())
        }
        Availability::Checked => {}
        _ => out.push("recalls not checked".to_string()),
    }
    out
}

fn others(k_numbers: &[String]) -> String {
    if k_numbers.is_empty() {
        String::new()
    } else {
        format!(", {}", k_numbers.join(", "))
    }
}

/// What a comparison's risk assessment says of the predicate's safety history: each Class I
/// recall, and that nothing was checked when nothing was.
pub fn concerns(safety: &Safety) -> Vec<String> {
    let mut out = Vec::new();
    for r in safety.recalls.iter().filter(|r| r.class == Some(1)) {
        let whose = match r.scope {
            RecallScope::ThisDevice => "the predicate".to_string(),
            RecallScope::SameApplicantProductCode => format!(
                "another device of the predicate's applicant and product code{}",
                others(&r.k_numbers)
            ),
        };
        let reason = r
            .reason
            .as_deref()
            .map(|t| format!(": {}", t.chars().take(300).collect::<String>()))
            .unwrap_or_default();
        out.push(format!(
            "Safety: Class I recall {} of {whose}{reason}. Show in the risk analysis that the \
             subject device does not share the failure.",
            r.recall_number
        ));
    }
    if safety.recalls_status != Availability::Checked {
        out.push(
            "Safety: the predicate's recalls were not checked; check FDA's recall database \
             before relying on it."
                .to_string(),
        );
    }
    out
}

/// Words of company names that do not tell firms apart ("Inc", "Corporation", "Co.", …).
const FIRM_SUFFIXES: &[&str] = &[
    "inc",
    "incorporated",
    "corp",
    "corporation",
    "co",
    "company",
    "ltd",
    "limited",
    "llc",
    "lp",
    "llp",
    "plc",
    "gmbh",
    "ag",
    "sa",
    "sas",
    "bv",
    "nv",
    "kg",
    "spa",
    "srl",
    "pty",
    "the",
    "dba",
];

/// A firm's name reduced to what identifies it, so that a recall's `recalling_firm`
/// ("Arrow International Inc") meets a 510(k)'s applicant ("ARROW INTERNATIONAL, INC."):
/// lowercase ASCII words, legal-form words dropped. `None` when nothing is left.
pub fn firm_key(name: &str) -> Option<String> {
    let words: Vec<String> = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .filter(|w| !FIRM_SUFFIXES.contains(&w.as_str()))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(class: Option<u8>, scope: RecallScope) -> RecallFlag {
        RecallFlag {
            recall_number: "Z-0001-2020".into(),
            class,
            scope,
            ..Default::default()
        }
    }

    #[test]
    fn factors_and_reasons() {
        let mut s = Safety {
            recalls_status: Availability::Checked,
            ..Default::default()
        };
        assert_eq!(recall_factor(&s), 1.0);
        assert_eq!(reasons(&s), vec!["no recalls on record"]);
        s.recalls
            .push(flag(Some(2), RecallScope::SameApplicantProductCode));
        assert_eq!(recall_factor(&s), 1.0, "a related Class II does not weigh");
        s.recalls
            .push(flag(Some(1), RecallScope::SameApplicantProductCode));
        assert_eq!(recall_factor(&s), 0.7);
        assert!(reasons(&s)[1].starts_with("Class I recall of another device"));
        assert_eq!(concerns(&s).len(), 1);
        s.recalls.push(flag(Some(1), RecallScope::ThisDevice));
        assert_eq!(recall_factor(&s), 0.4);
        assert_eq!(
            s.class_one().map(|r| r.scope),
            Some(RecallScope::ThisDevice)
        );
        let unchecked = Safety::default();
        assert_eq!(reasons(&unchecked), vec!["recalls not checked"]);
        assert!(concerns(&unchecked)[0].contains("not checked"));
    }

    #[test]
    fn firm_keys_meet_across_spellings() {
        assert_eq!(
            firm_key("Arrow International Inc"),
            firm_key("ARROW INTERNATIONAL, INC.")
        );
        assert_eq!(
            firm_key("Baxter Healthcare Corporation").as_deref(),
            Some("baxter healthcare")
        );
        assert_ne!(
            firm_key("Baxter Healthcare Corp"),
            firm_key("Icu Medical, Inc.")
        );
        assert_eq!(firm_key(" Inc. "), None);
    }

    #[test]
    fn tallies_sum_by_type_and_year() {
        let mut t = EventTally::default();
        t.add(2020, "death", 1);
        t.add(2022, "malfunction", 5);
        t.add(2020, "injury", 2);
        t.add(2021, "other", 1);
        assert_eq!(
            (t.death, t.injury, t.malfunction, t.other, t.total),
            (1, 2, 5, 1, 9)
        );
        let years: Vec<i32> = t.by_year.iter().map(|y| y.year).collect();
        assert_eq!(years, vec![2022, 2021, 2020]);
        assert_eq!(t.by_year[2].injury, 2);
    }
}
