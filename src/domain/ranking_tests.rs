//! Tests of predicate ranking: examples on real device names and property tests.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use proptest::prelude::*;

use super::*;
use crate::domain::candidate::RecallFlag;

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn cand(k: &str, name: &str, pc: &str, code: &str, decided: NaiveDate) -> Candidate {
    Candidate {
        k_number: k.into(),
        device_name: name.into(),
        applicant: None,
        product_code: Some(pc.into()),
        decision_date: Some(decided),
        decision_code: Some(code.into()),
        decision_description: None,
        clearance_type: Some("Traditional".into()),
        device_class: Some("2".into()),
        regulation_number: None,
        safety: Default::default(),
    }
}

fn as_of() -> NaiveDate {
    day(2026, 1, 1)
}

#[test]
fn the_relevant_same_code_device_wins_and_reasons_explain_it() {
    let subject = Subject {
        text: "Disposable medical face mask for use in surgery",
        product_code: Some("FXX"),
        regulation_number: Some("878.4040"),
        ..Subject::default()
    };
    let mut mask = cand(
        "K201470",
        "Disposable Medical Face Mask",
        "FXX",
        "SESE",
        day(2020, 9, 8),
    );
    mask.regulation_number = Some("878.4040".into());
    let catheter = cand(
        "K143610",
        "BD INTIMA II CLOSED IV CATHETER",
        "FOZ",
        "SESE",
        day(2015, 4, 9),
    );
    let ranked = rank(&subject, vec![catheter, mask], &BTreeMap::new(), as_of());
    assert_eq!(ranked[0].candidate.k_number, "K201470");
    assert!(ranked[0].score > 0.8, "{}", ranked[0].score);
    assert!(ranked[1].score < 0.3, "{}", ranked[1].score);
    let reasons = ranked[0].reasons.join("; ");
    assert!(reasons.contains("same product code (FXX)"), "{reasons}");
    assert!(reasons.contains("same regulation"), "{reasons}");
    assert!(reasons.contains("mask"), "{reasons}");
}

#[test]
fn only_substantially_equivalent_decisions_are_eligible() {
    let subject = Subject {
        text: "surgical spatial navigation",
        ..Subject::default()
    };
    let denovo = cand(
        "DEN250037",
        "TESSA Spatial Surgery System",
        "SIQ",
        "DENG",
        day(2026, 7, 6),
    );
    let mut unknown = cand(
        "K000002",
        "Spatial Surgery Navigation",
        "SIQ",
        "",
        day(2024, 1, 1),
    );
    unknown.decision_code = None;
    unknown.decision_description = Some("Unknown".into());
    let sn = cand("K000003", "Spatial surgery", "SIQ", "SN", day(2024, 1, 1));
    let ranked = rank(
        &subject,
        vec![denovo, unknown, sn],
        &BTreeMap::new(),
        as_of(),
    );
    let by_k = |k: &str| ranked.iter().find(|r| r.candidate.k_number == k).unwrap();
    assert_eq!(by_k("DEN250037").score, 0.0);
    assert!(!by_k("DEN250037").score_breakdown.eligible);
    assert!(by_k("DEN250037")
        .reasons
        .iter()
        .any(|r| r.contains("De Novo")));
    assert_eq!(by_k("K000002").score, 0.0);
    assert!(by_k("K000003").score > 0.0);
    assert_eq!(ranked[0].candidate.k_number, "K000003");
}

#[test]
fn a_class_one_recall_weighs_heavily() {
    let subject = Subject {
        text: "central venous catheter",
        product_code: Some("FOZ"),
        ..Subject::default()
    };
    let clean = cand(
        "K900001",
        "Central Venous Catheter",
        "FOZ",
        "SESE",
        day(2022, 1, 1),
    );
    let mut recalled = cand(
        "K900000",
        "Central Venous Catheter",
        "FOZ",
        "SESE",
        day(2022, 1, 1),
    );
    recalled.safety.recalls.push(RecallFlag {
        recall_number: "Z-0053-2020".into(),
        class: Some(1),
        ..Default::default()
    });
    let ranked = rank(&subject, vec![recalled, clean], &BTreeMap::new(), as_of());
    assert_eq!(ranked[0].candidate.k_number, "K900001");
    assert_eq!(ranked[1].score_breakdown.recall_factor, 0.4);
    assert!(ranked[1].score <= ranked[0].score * 0.41);
    assert!(ranked[1]
        .reasons
        .iter()
        .any(|r| r.contains("Class I recall")));
}

#[test]
fn ties_break_on_the_k_number_and_definitions_count() {
    let subject = Subject {
        text: "rinsing container for laparoscopy",
        ..Subject::default()
    };
    let a = cand("K200002", "Container", "GCJ", "SESE", day(2024, 1, 1));
    let b = cand("K200001", "Container", "GCJ", "SESE", day(2024, 1, 1));
    let ranked = rank(
        &subject,
        vec![a.clone(), b.clone()],
        &BTreeMap::new(),
        as_of(),
    );
    assert_eq!(ranked[0].score, ranked[1].score);
    assert_eq!(ranked[0].candidate.k_number, "K200001");

    let mut defs = BTreeMap::new();
    defs.insert(
        "GCJ".to_string(),
        "A laparoscope is used to examine the abdomen; rinsing".to_string(),
    );
    let with_def = rank(&subject, vec![a, b], &defs, as_of());
    assert!(with_def[0].score_breakdown.definition_relevance > 0.0);
    assert!(with_def[0].score > ranked[0].score);
}

/// Real records of the bundled 510(k) files.
fn meters() -> Vec<Candidate> {
    vec![
        cand("K792155", "CO 2 METER", "CCK", "SESE", day(1979, 11, 27)),
        cand("K840487", "T-METER", "HCS", "SESE", day(1984, 3, 12)),
        cand(
            "K855178",
            "DIATRON BLOOD GLUCOSE METER",
            "CGA",
            "SESE",
            day(1986, 8, 4),
        ),
        cand(
            "K855202",
            "GLUCOMETER M BLOOD GULCOSE METER",
            "CGA",
            "SESE",
            day(1986, 7, 2),
        ),
    ]
}

#[test]
fn two_rare_shared_words_beat_one_common_one() {
    let subject = Subject {
        text: "blood glucose meter",
        ..Subject::default()
    };
    let ranked = rank(&subject, meters(), &BTreeMap::new(), as_of());
    let at = |k: &str| {
        ranked
            .iter()
            .position(|r| r.candidate.k_number == k)
            .unwrap()
    };
    assert_eq!(ranked[0].candidate.k_number, "K855178", "{ranked:#?}");
    for short in ["K792155", "K840487"] {
        assert!(at("K855178") < at(short), "{short} above the glucose meter");
        assert!(at("K855202") < at(short), "{short} above the glucometer");
    }
}

#[test]
fn a_suggested_code_lifts_its_devices_and_says_why() {
    let suggested = [SuggestedCode {
        product_code: "CGA".into(),
        confidence: 0.62,
        rank: 0,
    }];
    let subject = Subject {
        text: "meter",
        suggested_codes: &suggested,
        ..Subject::default()
    };
    let plain = Subject {
        text: "meter",
        ..Subject::default()
    };
    let before = rank(&plain, meters(), &BTreeMap::new(), as_of());
    let ranked = rank(&subject, meters(), &BTreeMap::new(), as_of());
    let score = |list: &[Ranked], k: &str| {
        list.iter()
            .find(|r| r.candidate.k_number == k)
            .map(|r| r.score)
            .unwrap()
    };
    for k in ["K855178", "K855202"] {
        assert!(score(&ranked, k) > score(&before, k), "{k}");
    }
    for k in ["K792155", "K840487"] {
        assert_eq!(score(&ranked, k), score(&before, k), "{k}");
    }
    let ranked: Vec<Ranked> = ranked
        .into_iter()
        .filter(|r| r.candidate.product_code.as_deref() == Some("CGA"))
        .collect();
    let reasons = ranked[0].reasons.join("; ");
    assert!(
        reasons.contains("classification's suggestion no. 1") && reasons.contains("0.62"),
        "{reasons}"
    );
    // A code of the subject's own outranks any suggestion: suggestions are then ignored.
    let own = Subject {
        product_code: Some("CCK"),
        ..subject
    };
    let ranked = rank(&own, meters(), &BTreeMap::new(), as_of());
    assert_eq!(ranked[0].candidate.k_number, "K792155");
    assert_eq!(ranked[1].score_breakdown.product_code_match, 0.0);
}

/// Glucose meters (CGA) and a carbon dioxide meter (CCK) below them: with an uncertain first
/// suggestion (CGA), the top three hold the best CCK device too, and it says why.
#[test]
fn an_uncertain_first_suggestion_hedges_the_first_results() {
    let mut list = meters();
    for (i, day_of_month) in (1..=4).enumerate() {
        list.push(cand(
            &format!("K86000{i}"),
            "ONE TOUCH BLOOD GLUCOSE METER",
            "CGA",
            "SESE",
            day(1986, 9, day_of_month),
        ));
    }
    let suggestions = |first_confidence: f64| {
        vec![
            SuggestedCode {
                product_code: "CGA".into(),
                confidence: first_confidence,
                rank: 0,
            },
            SuggestedCode {
                product_code: "CCK".into(),
                confidence: 0.1,
                rank: 1,
            },
        ]
    };
    let corpus = Corpus::new(list, &BTreeMap::new());
    let codes_of = |top: &Top| -> Vec<String> {
        top.results
            .iter()
            .map(|r| r.candidate.product_code.clone().unwrap_or_default())
            .collect()
    };
    let confident = suggestions(0.8);
    let subject = Subject {
        text: "blood glucose meter",
        suggested_codes: &confident,
        ..Subject::default()
    };
    let top = rank_top(&subject, &corpus, as_of(), 3);
    assert_eq!(
        codes_of(&top),
        ["CGA", "CGA", "CGA"],
        "a confident code is not hedged"
    );

    let uncertain = suggestions(0.3);
    let subject = Subject {
        suggested_codes: &uncertain,
        ..subject
    };
    let top = rank_top(&subject, &corpus, as_of(), 3);
    assert_eq!(codes_of(&top), ["CGA", "CGA", "CCK"]);
    assert_eq!(top.results[2].candidate.k_number, "K792155");
    assert!(
        top.results[2]
            .reasons
            .iter()
            .any(|r| r.contains("suggestion no. 2") && r.contains("not confident")),
        "{:?}",
        top.results[2].reasons
    );
    // A subject with its own product code is never hedged.
    let own = Subject {
        product_code: Some("CGA"),
        ..subject
    };
    let top = rank_top(&own, &corpus, as_of(), 3);
    assert_eq!(codes_of(&top), ["CGA", "CGA", "CGA"]);
}

#[test]
fn equal_scores_put_the_newer_decision_first() {
    let subject = Subject {
        text: "glucose meter",
        ..Subject::default()
    };
    // Both older than 35 years: the same zero recency, so the same score.
    let older = cand("K100001", "Glucose Meter", "CGA", "SESE", day(1980, 1, 1));
    let newer = cand("K100002", "Glucose Meter", "CGA", "SESE", day(1985, 1, 1));
    let ranked = rank(&subject, vec![older, newer], &BTreeMap::new(), as_of());
    assert_eq!(ranked[0].score, ranked[1].score);
    assert_eq!(ranked[0].candidate.k_number, "K100002");
}

fn arb_candidate() -> impl Strategy<Value = Candidate> {
    let words = prop::sample::subsequence(
        vec![
            "infusion", "pump", "catheter", "mask", "surgical", "laser", "needle", "stent",
            "wound", "dressing",
        ],
        1..4,
    );
    (
        100_000u32..999_999,
        words,
        prop::sample::select(vec!["FOZ", "FXX", "DQY", "GCJ"]),
        prop::sample::select(vec!["SESE", "SESD", "SN", "DENG", "ST"]),
        0i64..15_000,
        prop::option::of(prop::sample::select(vec![
            "880.5200", "878.4040", "870.1250",
        ])),
        prop::option::of(1u8..4),
    )
        .prop_map(|(k, words, pc, code, days, reg, recall)| Candidate {
            k_number: format!("K{k}"),
            device_name: words.join(" "),
            applicant: None,
            product_code: Some(pc.into()),
            decision_date: day(2025, 12, 31).checked_sub_signed(chrono::Duration::days(days)),
            decision_code: Some(code.into()),
            decision_description: None,
            clearance_type: None,
            device_class: None,
            regulation_number: reg.map(String::from),
            safety: crate::domain::candidate::Safety {
                recalls: recall
                    .map(|c| RecallFlag {
                        recall_number: "Z-0001-2020".into(),
                        class: Some(c),
                        ..Default::default()
                    })
                    .into_iter()
                    .collect(),
                ..Default::default()
            },
        })
}

fn definitions() -> BTreeMap<String, String> {
    [
        (
            "FOZ",
            "An intravascular catheter for infusion into the venous system",
        ),
        (
            "FXX",
            "A surgical mask protects against transfer of microorganisms",
        ),
        ("DQY", "A percutaneous catheter for the coronary arteries"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

proptest! {
    #[test]
    fn an_exact_product_code_match_never_lowers_a_score(
        cands in prop::collection::vec(arb_candidate(), 1..12),
        pick in any::<prop::sample::Index>(),
        text in "(infusion|pump|catheter|mask|surgical|venous|coronary| ){0,12}",
        subject_pc in prop::sample::select(vec!["FOZ", "FXX", "DQY", "GCJ"]),
    ) {
        let subject = Subject { text: &text, product_code: Some(subject_pc), regulation_number: Some("880.5200"), ..Subject::default() };
        let i = pick.index(cands.len());
        let k = cands[i].k_number.clone();
        let mut matched = cands.clone();
        matched[i].product_code = Some(subject_pc.to_string());
        let score_of = |list: Vec<Candidate>| {
            rank(&subject, list, &definitions(), as_of())
                .into_iter()
                .filter(|r| r.candidate.k_number == k)
                .map(|r| r.score)
                .fold(f64::INFINITY, f64::min)
        };
        prop_assert!(score_of(matched) >= score_of(cands));
    }

    #[test]
    fn ranking_is_deterministic_and_order_independent(
        cands in prop::collection::vec(arb_candidate(), 0..12),
        text in "(infusion|pump|catheter|mask| ){0,8}",
    ) {
        let subject = Subject { text: &text, product_code: Some("FOZ"), regulation_number: None, ..Subject::default() };
        let forward = rank(&subject, cands.clone(), &definitions(), as_of());
        let mut reversed_input = cands;
        reversed_input.reverse();
        let backward = rank(&subject, reversed_input, &definitions(), as_of());
        let keys = |r: &[Ranked]| r.iter().map(|x| (x.candidate.k_number.clone(), x.score)).collect::<Vec<_>>();
        prop_assert_eq!(keys(&forward), keys(&backward));
        for r in &forward {
            prop_assert!((0.0..=1.0).contains(&r.score));
        }
    }
}
