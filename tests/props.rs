//! Property tests: hostile input of any shape ends in a value or an error, never a panic. Every
//! request body type through the real JSON reader and its validation, every importer of FDA
//! files, and the openFDA wire decoder.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Cursor;

use proptest::prelude::*;
use serde_json::Value;

use regassist::assistant::ExecuteRequest;
use regassist::domain::project::{CreateProject, UpdateProject};
use regassist::http::extract::json_object;
use regassist::http::predicate_input::ProjectSearchBody;
use regassist::mirror::import::Sink;
use regassist::openfda::wire::{Envelope, ErrorEnvelope, Record510k};
use regassist::search::{PredicateQuery, SearchDefaults};

/// Any JSON value, nested a few levels, with strings that include long and odd ones.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
        (0usize..3000).prop_map(|n| Value::String("x ".repeat(n))),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..12).prop_map(Value::Array),
            prop::collection::hash_map(field_name(), inner, 0..10)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Field names the body types know, and others.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "name",
            "description",
            "device_type",
            "intended_use",
            "product_code",
            "priority",
            "status",
            "tags",
            "task_type",
            "project_id",
            "device_description",
            "parameters",
            "q",
            "limit",
            "k_number",
            "predicate_id",
            "session_id",
            "decision_date_from",
            "decision_date_to",
            "is_selected",
            "role",
            "disabled",
            "expires_at",
            "format",
            "from",
            "to",
            "results",
            "meta",
            "error",
            "openfda",
            "decision_date",
        ])
        .prop_map(String::from),
        "[a-z_]{1,12}",
    ]
}

/// Every body type read as the server reads it, then validated where it has rules.
fn read_every_body(bytes: &[u8]) {
    if let Ok(b) = json_object::<CreateProject>(bytes) {
        let _ = b.validate();
    }
    if let Ok(b) = json_object::<UpdateProject>(bytes) {
        let _ = b.validate();
    }
    if let Ok(b) = json_object::<ExecuteRequest>(bytes) {
        let _ = b.validate();
    }
    if let Ok(b) = json_object::<ProjectSearchBody>(bytes) {
        let defaults = SearchDefaults {
            text: Some("infusion pump"),
            product_code: Some("FRN"),
            limit: 50,
        };
        let _ = PredicateQuery::parse(&b.request(), &defaults, "");
    }
    let _ = json_object::<regassist::http::predicates::SelectPredicate>(bytes);
    let _ = json_object::<regassist::http::users::UpdateUser>(bytes);
    let _ = json_object::<regassist::http::users::CreateApiKey>(bytes);
    let _ = json_object::<regassist::http::audit::ExportRequest>(bytes);
}

/// Each importer over `bytes`; the sink keeps everything so a parser never blocks.
fn import_all(bytes: &[u8]) {
    type Parser = fn(&mut dyn std::io::BufRead, &str, &mut Sink) -> anyhow::Result<()>;
    let parsers: [(Parser, &str); 4] = [
        (regassist::mirror::pmn::parse, "pmn96cur.txt"),
        (regassist::mirror::foiclass::parse, "foiclass.txt"),
        (
            regassist::mirror::openfda_json::parse,
            "device-510k-0001-of-0001.json",
        ),
        (regassist::mirror::csv510k::parse, "510k.csv"),
    ];
    for (parse, name) in parsers {
        let (mut sink, _rx) = Sink::channel(1_000_000);
        let _ = parse(&mut Cursor::new(bytes), name, &mut sink);
    }
}

/// Lines shaped like the FDA files (pipes, quotes, commas, Latin-1 bytes), headers included.
fn fda_like_file() -> impl Strategy<Value = Vec<u8>> {
    let cell = prop_oneof![
        "[A-Za-z0-9 ./-]{0,12}",
        Just("\"".to_string()),
        Just("K123456".to_string()),
        Just("FRN".to_string()),
        Just("01/31/2020".to_string()),
        Just("2020-01-31".to_string()),
        Just("\u{e9}".to_string()),
    ];
    let line = prop::collection::vec(cell, 0..25)
        .prop_flat_map(|cells| (Just(cells), prop::sample::select(vec!["|", ",", "\t"])))
        .prop_map(|(cells, sep)| cells.join(sep));
    let header = prop::sample::select(vec![
        "KNUMBER|APPLICANT|CONTACT|STREET1|STREET2|CITY|STATE|COUNTRY_CODE|ZIP|POSTAL_CODE|DATERECEIVED|DECISIONDATE|DECISION|REVIEWADVISECOMM|PRODUCTCODE|STATEORSUMM|CLASSADVISECOMM|SSPINDICATOR|TYPE|THIRDPARTY|EXPEDITEDREVIEW|DEVICENAME",
        "REVIEW_PANEL|MEDICALSPECIALTY|PRODUCTCODE|DEVICENAME|DEVICECLASS|UNCLASSIFIED_REASON|GMPEXEMPTFLAG|THIRDPARTYFLAG|REVIEWCODE|REGULATIONNUMBER|SUBMISSION_TYPE_ID|DEFINITION|PHYSICALSTATE|TECHNICALMETHOD|TARGETAREA|Implant_Flag|Life_Sustain_support_flag|SummaryMalfunctionReporting",
        "k_number,applicant,decision_date,product_code,device_name",
        "",
    ]);
    (header, prop::collection::vec(line, 0..30)).prop_map(|(h, lines)| {
        let mut text = h.to_string();
        for l in lines {
            text.push_str("\r\n");
            text.push_str(&l);
        }
        text.into_bytes()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn request_bodies_take_any_json(value in json_value()) {
        read_every_body(value.to_string().as_bytes());
    }

    #[test]
    fn request_bodies_take_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        read_every_body(&bytes);
    }

    #[test]
    fn importers_take_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        import_all(&bytes);
    }

    #[test]
    fn importers_take_any_fda_shaped_file(bytes in fda_like_file()) {
        import_all(&bytes);
    }

    #[test]
    fn importers_take_any_json(value in json_value()) {
        let doc = serde_json::json!({"meta": {"last_updated": "2024-01-01"}, "results": [value]});
        import_all(doc.to_string().as_bytes());
    }

    #[test]
    fn the_openfda_decoder_takes_any_answer(value in json_value(), results in prop::collection::vec(json_value(), 0..5)) {
        let mut doc = serde_json::json!({"meta": value, "results": results});
        let _ = serde_json::from_value::<ErrorEnvelope>(doc.clone());
        if let Ok(env) = serde_json::from_value::<Envelope<Record510k>>(doc.take()) {
            for r in env.results {
                let _ = regassist::search::source::candidate_from_wire(r);
            }
        }
    }

    #[test]
    fn the_openfda_decoder_takes_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = serde_json::from_str::<ErrorEnvelope>(&text);
        if let Ok(env) = serde_json::from_str::<Envelope<Record510k>>(&text) {
            for r in env.results {
                let _ = regassist::search::source::candidate_from_wire(r);
            }
        }
    }
}
