//! Tests of the project input rules.
use super::*;

fn create(json: serde_json::Value) -> Result<NewProject, Invalid> {
    serde_json::from_value::<CreateProject>(json)
        .unwrap()
        .validate()
}

/// The characters `NOT_BLANK` excludes, read from its class (`\\t`, `\\uXXXX`, ranges).
fn excluded_by_not_blank() -> Vec<char> {
    let body = NOT_BLANK
        .strip_prefix("[^")
        .unwrap()
        .strip_suffix(']')
        .unwrap();
    let mut chars: Vec<char> = Vec::new();
    let mut rest = body;
    let mut range_from: Option<char> = None;
    while !rest.is_empty() {
        let (c, tail) = match rest.strip_prefix('\\') {
            Some(esc) if esc.starts_with('u') => {
                let code = u32::from_str_radix(&esc[1..5], 16).unwrap();
                (char::from_u32(code).unwrap(), &esc[5..])
            }
            Some(esc) => {
                let c = match &esc[..1] {
                    "t" => '\t',
                    "n" => '\n',
                    "f" => '\u{c}',
                    "r" => '\r',
                    other => panic!("unexpected escape {other}"),
                };
                (c, &esc[1..])
            }
            None if rest.starts_with('-') => {
                range_from = chars.pop();
                rest = &rest[1..];
                continue;
            }
            None => {
                let c = rest.chars().next().unwrap();
                (c, &rest[c.len_utf8()..])
            }
        };
        match range_from.take() {
            Some(from) => chars.extend(from..=c),
            None => chars.push(c),
        }
        rest = tail;
    }
    chars
}

#[test]
fn not_blank_excludes_exactly_what_trim_removes() {
    let excluded = excluded_by_not_blank();
    for c in (0..=0x10FFFF).filter_map(char::from_u32) {
        assert_eq!(
            excluded.contains(&c),
            c.is_whitespace(),
            "U+{:04X}",
            c as u32
        );
    }
}

#[test]
fn create_trims_and_accepts_valid_input() {
    let p =
        create(serde_json::json!({"name": "  Pump  ", "product_code": "FRN", "tags": ["a", "a"]}))
            .unwrap();
    assert_eq!(p.name, "Pump");
    assert_eq!(p.tags, vec!["a"]);
}

#[test]
fn create_names_every_bad_field() {
    let err = create(serde_json::json!({
        "name": " ", "product_code": "abc", "priority": "urgent",
        "description": "x".repeat(1001), "tags": vec!["t"; 11]
    }))
    .unwrap_err();
    let Invalid(fields) = err;
    for f in ["name", "product_code", "priority", "description", "tags"] {
        assert!(fields.contains_key(f), "{f} missing from {fields:?}");
    }
}

#[test]
fn tag_checks_stop_at_the_first_rejection() {
    // Over the count: one message, no tag read.
    let Invalid(fields) =
        create(serde_json::json!({"name": "x", "tags": vec![""; 5000]})).unwrap_err();
    assert_eq!(fields["tags"], vec!["at most 10 tags"]);
    // Several bad tags within the count: still one message.
    let Invalid(fields) =
        create(serde_json::json!({"name": "x", "tags": ["", " ", "y".repeat(51)]})).unwrap_err();
    assert_eq!(fields["tags"].len(), 1, "{fields:?}");
}

#[test]
fn server_fields_are_refused_on_create() {
    for field in ["id", "user_id", "version", "status", "created_at"] {
        let mut body = serde_json::json!({"name": "x"});
        body[field] = serde_json::json!(1);
        assert!(
            serde_json::from_value::<CreateProject>(body).is_err(),
            "{field}"
        );
    }
}

#[test]
fn update_distinguishes_null_from_absent() {
    let u: UpdateProject =
        serde_json::from_value(serde_json::json!({"description": null})).unwrap();
    assert_eq!(u.description, Some(None));
    assert_eq!(u.device_type, None);
}
