//! The substantial-equivalence table of a subject device against one predicate: a row per
//! characteristic with an assessment and its impact, the risk that follows, and the tests and
//! standards that would close each gap. Pure: everything comes from the two descriptions and
//! the classification facts.
//!
//! openFDA holds a predicate's name, codes and classification but not its indications or design,
//! so a characteristic the predicate's record does not mention is `review_needed` (read its
//! 510(k) summary), not `different`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::text::terms;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Assessment {
    Same,
    Similar,
    Different,
    ReviewNeeded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Impact {
    None,
    Low,
    Medium,
    High,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Row {
    pub characteristic: String,
    pub subject_device: String,
    pub predicate_device: String,
    pub assessment: Assessment,
    pub impact: Impact,
    /// Why the assessment is what it is.
    pub rationale: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RiskAssessment {
    /// `low`, `medium` or `high`: the highest impact among the rows.
    pub level: String,
    pub concerns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub struct TestingRecommendation {
    /// The standard or guidance, e.g. `ISO 10993-1`.
    pub standard: String,
    pub title: String,
    /// The row that calls for it.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Comparison {
    pub rows: Vec<Row>,
    pub risk_assessment: RiskAssessment,
    pub testing_recommendations: Vec<TestingRecommendation>,
    pub summary: String,
}

/// The subject device, from its project.
#[derive(Debug, Clone, Default)]
pub struct SubjectDevice<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub intended_use: &'a str,
    pub product_code: Option<&'a str>,
    pub device_class: Option<&'a str>,
    pub regulation_number: Option<&'a str>,
}

/// The predicate, from its 510(k) record and its product code's classification.
#[derive(Debug, Clone, Default)]
pub struct PredicateDevice<'a> {
    pub k_number: &'a str,
    pub device_name: &'a str,
    /// Indications for use when known (rarely: openFDA does not carry them).
    pub intended_use: Option<&'a str>,
    pub product_code: Option<&'a str>,
    pub device_class: Option<&'a str>,
    pub regulation_number: Option<&'a str>,
    /// The classification definition of its product code.
    pub definition: Option<&'a str>,
    pub implant_flag: bool,
    /// Its safety history as the search found it (`None`: never checked).
    pub safety: Option<&'a super::safety::Safety>,
}

/// A technology characteristic found by keywords.
struct Technology {
    name: &'static str,
    /// (phrase as lowercase words, label shown)
    keywords: &'static [(&'static str, &'static str)],
    /// Impact when the two devices use different ones / when only the subject states it.
    differ: Impact,
    unstated: Impact,
}

const TECHNOLOGIES: &[Technology] = &[
    Technology {
        name: "Materials (patient contact)",
        keywords: &[
            ("titanium", "titanium"),
            ("stainless steel", "stainless steel"),
            ("cobalt chrome", "cobalt-chromium"),
            ("cobalt chromium", "cobalt-chromium"),
            ("nitinol", "nitinol"),
            ("peek", "PEEK"),
            ("polyethylene", "polyethylene"),
            ("uhmwpe", "UHMWPE"),
            ("polypropylene", "polypropylene"),
            ("polyurethane", "polyurethane"),
            ("silicone", "silicone"),
            ("pvc", "PVC"),
            ("polyvinyl chloride", "PVC"),
            ("latex", "latex"),
            ("nylon", "nylon"),
            ("ptfe", "PTFE"),
            ("polycarbonate", "polycarbonate"),
            ("ceramic", "ceramic"),
            ("zirconia", "zirconia"),
            ("hydroxyapatite", "hydroxyapatite"),
            ("hydrogel", "hydrogel"),
            ("collagen", "collagen"),
            ("nonwoven", "nonwoven fabric"),
            ("polyester", "polyester"),
            ("cotton", "cotton"),
        ],
        differ: Impact::High,
        unstated: Impact::Medium,
    },
    Technology {
        name: "Energy source",
        keywords: &[
            ("battery", "battery"),
            ("rechargeable", "battery"),
            ("mains", "mains power"),
            ("ac powered", "mains power"),
            ("radiofrequency", "radiofrequency"),
            ("rf ablation", "radiofrequency"),
            ("laser", "laser"),
            ("ultrasound", "ultrasound"),
            ("ultrasonic", "ultrasound"),
            ("x ray", "X-ray"),
            ("xray", "X-ray"),
            ("microwave", "microwave"),
            ("cryo", "cryogenic"),
            ("cryogenic", "cryogenic"),
            ("pneumatic", "pneumatic"),
            ("electrosurgical", "electrosurgical"),
            ("infrared", "infrared"),
            ("ultraviolet", "ultraviolet"),
            ("uv", "ultraviolet"),
            ("electrical stimulation", "electrical stimulation"),
            ("manual", "manual (no energy)"),
        ],
        differ: Impact::High,
        unstated: Impact::Medium,
    },
    Technology {
        name: "Connectivity / wireless",
        keywords: &[
            ("bluetooth", "Bluetooth"),
            ("wifi", "Wi-Fi"),
            ("wi fi", "Wi-Fi"),
            ("wireless", "wireless"),
            ("cellular", "cellular"),
            ("lte", "cellular"),
            ("nfc", "NFC"),
            ("rfid", "RFID"),
            ("zigbee", "Zigbee"),
            ("ethernet", "network"),
            ("network", "network"),
            ("cloud", "cloud"),
            ("internet", "internet"),
            ("telemetry", "telemetry"),
            ("remote monitoring", "remote monitoring"),
            ("usb", "USB"),
        ],
        differ: Impact::High,
        unstated: Impact::High,
    },
    Technology {
        name: "Software",
        keywords: &[
            ("software", "software"),
            ("firmware", "firmware"),
            ("algorithm", "algorithm"),
            ("artificial intelligence", "AI/ML"),
            ("machine learning", "AI/ML"),
            ("deep learning", "AI/ML"),
            ("neural network", "AI/ML"),
            ("mobile app", "mobile app"),
            ("smartphone", "mobile app"),
            ("app", "mobile app"),
            ("computer aided", "computer-aided analysis"),
        ],
        differ: Impact::Medium,
        unstated: Impact::Medium,
    },
    Technology {
        name: "Sterilisation",
        keywords: &[
            ("ethylene oxide", "ethylene oxide"),
            ("eto", "ethylene oxide"),
            ("eo sterilized", "ethylene oxide"),
            ("gamma", "gamma radiation"),
            ("electron beam", "electron beam"),
            ("e beam", "electron beam"),
            ("steam", "moist heat (steam)"),
            ("autoclave", "moist heat (steam)"),
            ("hydrogen peroxide", "vaporised hydrogen peroxide"),
            ("non sterile", "non-sterile"),
            ("nonsterile", "non-sterile"),
            ("sterile", "sterile (method not stated)"),
        ],
        differ: Impact::Medium,
        unstated: Impact::Medium,
    },
    Technology {
        name: "Implantation",
        keywords: &[
            ("implant", "implant"),
            ("implantable", "implant"),
            ("implanted", "implant"),
            ("permanent", "permanent implant"),
            ("long term", "long-term contact"),
        ],
        differ: Impact::High,
        unstated: Impact::High,
    },
];

/// Lowercase ASCII words of `text`, for phrase matching.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}

/// The labels of `tech` found in `text`.
fn detect(tech: &Technology, text: &str) -> BTreeSet<&'static str> {
    let ws = words(text);
    let mut found = BTreeSet::new();
    for (phrase, label) in tech.keywords {
        let p: Vec<&str> = phrase.split(' ').collect();
        if ws
            .windows(p.len())
            .any(|w| w.iter().zip(&p).all(|(a, b)| a == b))
        {
            found.insert(*label);
        }
    }
    // "sterile (method not stated)" adds nothing once a method is named.
    if found.len() > 1 {
        found.remove("sterile (method not stated)");
    }
    found
}

fn show(set: &BTreeSet<&str>) -> String {
    if set.is_empty() {
        "not stated".to_string()
    } else {
        set.iter().copied().collect::<Vec<_>>().join(", ")
    }
}

fn opt(v: Option<&str>) -> String {
    v.map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("not stated")
        .to_string()
}

mod rows;
mod standards;

/// Builds the table, risk assessment and testing recommendations.
pub fn compare(subject: &SubjectDevice<'_>, predicate: &PredicateDevice<'_>) -> Comparison {
    let subject_text = format!(
        "{} {} {}",
        subject.name, subject.description, subject.intended_use
    );
    let predicate_text = format!(
        "{} {} {}",
        predicate.device_name,
        predicate.definition.unwrap_or(""),
        predicate.intended_use.unwrap_or("")
    );
    let mut rows = vec![
        rows::intended_use(subject, predicate),
        rows::identity(
            "Product code",
            subject.product_code,
            predicate.product_code,
            Impact::High,
        ),
        rows::identity(
            "Device class",
            subject.device_class,
            predicate.device_class,
            Impact::High,
        ),
        rows::regulation(subject.regulation_number, predicate.regulation_number),
    ];
    let mut found = Vec::new();
    for tech in TECHNOLOGIES {
        let s = detect(tech, &subject_text);
        let mut p = detect(tech, &predicate_text);
        if tech.name == "Implantation" && predicate.implant_flag {
            p.insert("implant");
        }
        rows.push(rows::technology(tech, &s, &p));
        found.push((tech.name, s));
    }
    let testing_recommendations = standards::recommend(&rows, &found);
    let mut level = rows.iter().map(|r| r.impact).max().unwrap_or(Impact::None);
    let mut concerns: Vec<String> = rows
        .iter()
        .filter(|r| r.impact >= Impact::Medium)
        .map(|r| format!("{}: {}", r.characteristic, r.rationale))
        .collect();
    // A Class I recall of the predicate makes the risk high; one of its applicant's devices of
    // the same product code, at least medium.
    let unchecked = super::safety::Safety::default();
    let safety = predicate.safety.unwrap_or(&unchecked);
    concerns.extend(super::safety::concerns(safety));
    level = level.max(match safety.class_one().map(|r| r.scope) {
        Some(super::safety::RecallScope::ThisDevice) => Impact::High,
        Some(super::safety::RecallScope::SameApplicantProductCode) => Impact::Medium,
        None => Impact::None,
    });
    let level = match level {
        Impact::High => "high",
        Impact::Medium => "medium",
        Impact::Low | Impact::None => "low",
    };
    let alike = rows
        .iter()
        .filter(|r| matches!(r.assessment, Assessment::Same | Assessment::Similar))
        .count();
    let open = rows.len() - alike;
    let summary = format!(
        "{} ({}): {alike} of {} characteristics are the same or similar; {open} need evidence or \
         review. Overall risk of the differences: {level}.",
        predicate.k_number,
        predicate.device_name,
        rows.len()
    );
    Comparison {
        rows,
        risk_assessment: RiskAssessment {
            level: level.to_string(),
            concerns,
        },
        testing_recommendations,
        summary,
    }
}

/// Share of `a`'s distinct stemmed terms that `b` also has (0 when `a` has none).
fn containment(a: &str, b: &str) -> f64 {
    let a: BTreeSet<String> = terms(a).into_iter().collect();
    let b: BTreeSet<String> = terms(b).into_iter().collect();
    if a.is_empty() {
        return 0.0;
    }
    a.intersection(&b).count() as f64 / a.len() as f64
}

#[cfg(test)]
#[path = "comparison_tests.rs"]
mod tests;
