//! The tests and standards that close the gaps a comparison found.

use std::collections::BTreeSet;

use super::{Assessment, Impact, Row, TestingRecommendation};

fn rec(standard: &str, title: &str, reason: &str) -> TestingRecommendation {
    TestingRecommendation {
        standard: standard.to_string(),
        title: title.to_string(),
        reason: reason.to_string(),
    }
}

/// Recommendations for every row that is not plainly the same, and for every technology the
/// subject has (its own verification is needed whatever the predicate did).
pub(super) fn recommend(
    rows: &[Row],
    found: &[(&'static str, BTreeSet<&'static str>)],
) -> Vec<TestingRecommendation> {
    let mut out: BTreeSet<TestingRecommendation> = BTreeSet::new();
    let open = |name: &str| {
        rows.iter()
            .any(|r| r.characteristic == name && r.assessment != Assessment::Same)
    };
    let has = |name: &str, label: &str| {
        found.iter().any(|(n, set)| {
            *n == name && ((label.is_empty() && !set.is_empty()) || set.contains(label))
        })
    };
    out.insert(rec(
        "ISO 14971",
        "Application of risk management to medical devices",
        "every difference from the predicate is analysed in the risk management file",
    ));
    if rows
        .iter()
        .any(|r| r.characteristic == "Intended use" && r.impact >= Impact::Medium)
    {
        out.insert(rec("FDA Q-Submission", "Pre-Submission on the choice of predicate",
            "the intended use may differ from the predicate's; ask FDA before relying on it (or consider De Novo)"));
    }
    let materials = "Materials (patient contact)";
    if open(materials) || has(materials, "") {
        out.insert(rec(
            "ISO 10993-1",
            "Biological evaluation of medical devices within a risk management process",
            "patient-contacting materials differ or are not shown to be the same",
        ));
        out.insert(rec(
            "ISO 10993-5",
            "Tests for in vitro cytotoxicity",
            "material change",
        ));
        out.insert(rec(
            "ISO 10993-10 / ISO 10993-23",
            "Tests for skin sensitisation and irritation",
            "material change",
        ));
    }
    let implant = "Implantation";
    if open(implant) || has(implant, "") {
        out.insert(rec(
            "ISO 10993-6 / ISO 10993-11",
            "Local effects after implantation; systemic toxicity",
            "long-term or implant contact",
        ));
        out.insert(rec(
            "ASTM F2503 / ASTM F2182",
            "MR safety marking and RF heating in MRI",
            "implanted device",
        ));
    }
    let software = "Software";
    if open(software) || has(software, "") {
        out.insert(rec(
            "IEC 62304",
            "Medical device software: software life cycle processes",
            "the subject contains software or firmware",
        ));
        out.insert(rec(
            "FDA guidance (2023)",
            "Content of Premarket Submissions for Device Software Functions",
            "software documentation level for the 510(k)",
        ));
    }
    let wireless = "Connectivity / wireless";
    if open(wireless) || has(wireless, "") {
        out.insert(rec(
            "IEC 60601-1-2",
            "Electromagnetic disturbances (EMC): requirements and tests",
            "wireless or network connectivity",
        ));
        out.insert(rec(
            "FDA guidance / ANSI C63.27",
            "Radio Frequency Wireless Technology in Medical Devices; coexistence testing",
            "wireless function",
        ));
        out.insert(rec(
            "FD&C Act 524B / FDA premarket cybersecurity guidance",
            "Cybersecurity in Medical Devices",
            "a connected device is a cyber device",
        ));
    }
    let energy = "Energy source";
    if open(energy)
        || found
            .iter()
            .any(|(n, s)| *n == energy && s.iter().any(|l| *l != "manual (no energy)"))
    {
        out.insert(rec(
            "IEC 60601-1",
            "Basic safety and essential performance of medical electrical equipment",
            "the energy source differs or is electrical",
        ));
        if has(energy, "battery") {
            out.insert(rec(
                "IEC 62133-2",
                "Safety of secondary lithium cells and batteries",
                "battery powered",
            ));
        }
        if has(energy, "laser") {
            out.insert(rec(
                "IEC 60825-1",
                "Safety of laser products",
                "laser energy",
            ));
        }
        if has(energy, "ultrasound") {
            out.insert(rec(
                "IEC 60601-2-37",
                "Ultrasonic medical diagnostic and monitoring equipment",
                "ultrasound energy",
            ));
        }
        if has(energy, "radiofrequency") || has(energy, "electrosurgical") {
            out.insert(rec(
                "IEC 60601-2-2",
                "High frequency surgical equipment",
                "RF energy",
            ));
        }
    }
    let sterile = "Sterilisation";
    if open(sterile) || has(sterile, "") {
        out.insert(rec(
            "ISO 11607-1/-2",
            "Packaging for terminally sterilised devices",
            "sterile barrier and shelf life",
        ));
        if has(sterile, "ethylene oxide") {
            out.insert(rec(
                "ISO 11135 / ISO 10993-7",
                "Ethylene oxide sterilisation; EO residuals",
                "EO sterilised",
            ));
        }
        if has(sterile, "gamma radiation") || has(sterile, "electron beam") {
            out.insert(rec(
                "ISO 11137-1/-2",
                "Radiation sterilisation: requirements and dose",
                "radiation sterilised",
            ));
        }
        if has(sterile, "moist heat (steam)") {
            out.insert(rec(
                "ISO 17665-1",
                "Moist heat sterilisation",
                "steam sterilised",
            ));
        }
        if has(sterile, "vaporised hydrogen peroxide") {
            out.insert(rec(
                "ISO 22441",
                "Low temperature vaporised hydrogen peroxide sterilisation",
                "VHP sterilised",
            ));
        }
    }
    out.into_iter().collect()
}
