//! One function per kind of row of the substantial-equivalence table.

use std::collections::BTreeSet;

use super::{
    containment, opt, show, Assessment, Impact, PredicateDevice, Row, SubjectDevice, Technology,
};

fn row(
    characteristic: &str,
    subject: String,
    predicate: String,
    assessment: Assessment,
    impact: Impact,
    rationale: impl Into<String>,
) -> Row {
    Row {
        characteristic: characteristic.to_string(),
        subject_device: subject,
        predicate_device: predicate,
        assessment,
        impact,
        rationale: rationale.into(),
    }
}

/// Intended use: compared on stemmed terms. Without the predicate's own indications (openFDA
/// has none), the classification definition or the device name stands in, and a weak overlap
/// asks for review rather than declaring a difference.
pub(super) fn intended_use(s: &SubjectDevice<'_>, p: &PredicateDevice<'_>) -> Row {
    const NAME: &str = "Intended use";
    let subject_use = if s.intended_use.trim().is_empty() {
        s.description
    } else {
        s.intended_use
    };
    let (predicate_use, proxy) = match (p.intended_use, p.definition) {
        (Some(u), _) if !u.trim().is_empty() => (u, false),
        (_, Some(d)) if !d.trim().is_empty() => (d, true),
        _ => (p.device_name, true),
    };
    let shown_predicate = if proxy {
        format!(
            "{} (indications not in openFDA; from its classification)",
            predicate_use.trim()
        )
    } else {
        predicate_use.trim().to_string()
    };
    if subject_use.trim().is_empty() {
        return row(
            NAME,
            "not stated".into(),
            shown_predicate,
            Assessment::ReviewNeeded,
            Impact::High,
            "the subject's intended use is not stated",
        );
    }
    // Both directions: the predicate's use should cover the subject's and vice versa.
    let overlap =
        containment(subject_use, predicate_use).max(containment(predicate_use, subject_use));
    let (assessment, impact, why) = match (overlap, proxy) {
        (o, false) if o >= 0.95 => (Assessment::Same, Impact::None, "the indications use the same terms"),
        (o, _) if o >= 0.5 => (Assessment::Similar, Impact::Low, "the uses share most of their key terms"),
        (o, true) if o > 0.0 => (Assessment::ReviewNeeded, Impact::Medium,
            "partial overlap with the predicate's classification; compare with its 510(k) summary"),
        (_, true) => (Assessment::ReviewNeeded, Impact::High,
            "no overlap with the predicate's classification; confirm the indications in its 510(k) summary"),
        (_, false) => (Assessment::Different, Impact::High,
            "the indications differ: a different intended use is not substantially equivalent"),
    };
    row(
        NAME,
        subject_use.trim().to_string(),
        shown_predicate,
        assessment,
        impact,
        why,
    )
}

/// Product code, device class: equal or not.
pub(super) fn identity(name: &str, s: Option<&str>, p: Option<&str>, differ: Impact) -> Row {
    match (
        s.map(str::trim).filter(|v| !v.is_empty()),
        p.map(str::trim).filter(|v| !v.is_empty()),
    ) {
        (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => row(
            name,
            a.into(),
            b.into(),
            Assessment::Same,
            Impact::None,
            "identical",
        ),
        (Some(a), Some(b)) => row(
            name,
            a.into(),
            b.into(),
            Assessment::Different,
            differ,
            format!(
                "{a} vs {b}: justify why this predicate applies, or choose one with the same {}",
                name.to_lowercase()
            ),
        ),
        (a, b) => row(
            name,
            opt(a),
            opt(b),
            Assessment::ReviewNeeded,
            Impact::Low,
            "not known for both devices; classify the subject first",
        ),
    }
}

/// Regulation number: same, same CFR part, or different.
pub(super) fn regulation(s: Option<&str>, p: Option<&str>) -> Row {
    const NAME: &str = "Regulation (21 CFR)";
    match (
        s.map(str::trim).filter(|v| !v.is_empty()),
        p.map(str::trim).filter(|v| !v.is_empty()),
    ) {
        (Some(a), Some(b)) if a == b => row(
            NAME,
            a.into(),
            b.into(),
            Assessment::Same,
            Impact::None,
            "identical",
        ),
        (Some(a), Some(b)) if a.split('.').next() == b.split('.').next() => row(
            NAME,
            a.into(),
            b.into(),
            Assessment::Similar,
            Impact::Medium,
            "same CFR part (same panel), different regulation",
        ),
        (Some(a), Some(b)) => row(
            NAME,
            a.into(),
            b.into(),
            Assessment::Different,
            Impact::High,
            "different regulations: the devices are classified differently",
        ),
        (a, b) => row(
            NAME,
            opt(a),
            opt(b),
            Assessment::ReviewNeeded,
            Impact::Low,
            "not known for both devices",
        ),
    }
}

/// A technology characteristic from the keywords found on each side.
pub(super) fn technology(t: &Technology, s: &BTreeSet<&str>, p: &BTreeSet<&str>) -> Row {
    let (assessment, impact, why) = match (s.is_empty(), p.is_empty()) {
        (true, true) => (Assessment::Same, Impact::None, "neither device's description mentions it".to_string()),
        (false, false) if s == p => (Assessment::Same, Impact::None, "the same".to_string()),
        (false, false) if s.intersection(p).next().is_some() => (Assessment::Similar, Impact::Medium,
            "partly the same; the differences need evidence".to_string()),
        (false, false) => (Assessment::Different, t.differ, "different; show that the difference raises no new questions of safety or effectiveness".to_string()),
        (false, true) => (Assessment::ReviewNeeded, t.unstated,
            "the subject states it, the predicate's record does not: check the predicate's 510(k) summary".to_string()),
        (true, false) => (Assessment::ReviewNeeded, Impact::Low,
            "the predicate's record mentions it; confirm whether the subject has it".to_string()),
    };
    row(t.name, show(s), show(p), assessment, impact, why)
}
