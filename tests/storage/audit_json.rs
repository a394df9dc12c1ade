//! The trail page SQLite builds as JSON (`audit::list_json`) is, byte for byte, what serde writes
//! for the typed rows, whatever the text, the times' sub-seconds, the filters and the page; a row
//! it cannot show exactly (stored text that is not JSON) sends the page to the typed path.

use chrono::{DateTime, TimeZone, Utc};
use regassist::audit::canonical_json;
use regassist::db::audit::{self as store, AuditFilter, AuditRow};
use regassist::db::Db;
use regassist::http::audit::AuditEntry;
use serde_json::json;

use crate::common::{fresh_db, Backend};

use crate::list_json::AWKWARD;

/// Each sub-second length sqlx may store: none, 3, 6 and 9 digits.
fn time(i: usize) -> DateTime<Utc> {
    let nanos = [0, 120_000_000, 123_456_000, 123_456_789, 1_000][i % 5];
    Utc.with_ymd_and_hms(2026, 8, 1, 12, 0, 0).unwrap()
        + chrono::Duration::seconds(i as i64)
        + chrono::Duration::nanoseconds(nanos)
}

fn row(seq: i64, text: &str, project_id: Option<i64>) -> AuditRow {
    let i = seq as usize;
    let after = json!({"name": text, "tags": [text, 1.5, null, true], "z": {"a": -3}});
    AuditRow {
        seq,
        occurred_at: time(i),
        actor_id: (!i.is_multiple_of(3)).then_some(7),
        actor_email: (i.is_multiple_of(2)).then(|| format!("{text}@example.com")),
        action: format!("project.update {text}"),
        entity_type: "project".into(),
        entity_id: (!i.is_multiple_of(4)).then(|| text.to_string()),
        project_id,
        reason: (!i.is_multiple_of(2)).then(|| text.to_string()),
        before_json: (i.is_multiple_of(2)).then(|| canonical_json(&json!({"name": text}))),
        after_json: Some(canonical_json(&after)),
        request_id: format!("req-{seq}"),
        prev_hash: format!("{:064x}", seq - 1),
        hash: format!("{:064x}", seq),
    }
}

async fn insert(db: &Db, rows: &[AuditRow]) {
    let mut tx = db.begin().await.unwrap();
    store::insert_sealed(&mut tx, rows).await.unwrap();
    tx.commit().await.unwrap();
}

async fn typed_page(db: &Db, filter: &AuditFilter, limit: i64, offset: i64) -> String {
    let (rows, total) = store::list(db, filter, limit, offset).await.unwrap();
    let entries: Vec<AuditEntry> = rows.into_iter().map(AuditEntry::from).collect();
    format!(
        "{{\"audit_entries\":{},\"total_count\":{total}}}",
        serde_json::to_string(&entries).unwrap()
    )
}

async fn built_page(db: &Db, filter: &AuditFilter, limit: i64, offset: i64) -> Option<String> {
    let (entries, total) = store::list_json(db, filter, limit, offset).await.unwrap()?;
    Some(format!(
        "{{\"audit_entries\":{entries},\"total_count\":{total}}}"
    ))
}

#[tokio::test]
async fn sqlite_builds_the_same_trail_page_as_serde() {
    let test_db = fresh_db(Backend::Sqlite).await.unwrap();
    let db = &test_db.db;
    let rows: Vec<AuditRow> = (1..=24)
        .map(|seq| {
            let text = AWKWARD[seq as usize % AWKWARD.len()];
            row(seq, text, Some(if seq % 3 == 0 { 2 } else { 1 }))
        })
        .collect();
    insert(db, &rows).await;

    let filters = [
        AuditFilter::default(),
        AuditFilter {
            project_id: Some(1),
            ..Default::default()
        },
        AuditFilter {
            project_id: Some(2),
            from: Some(time(6)),
            to: Some(time(20)),
            ..Default::default()
        },
        AuditFilter {
            action: Some(format!("project.update {}", AWKWARD[2])),
            ..Default::default()
        },
        AuditFilter {
            project_id: Some(99),
            ..Default::default()
        },
    ];
    for filter in &filters {
        for (limit, offset) in [(20, 0), (5, 0), (5, 5), (5, 15), (100, 0), (3, 40)] {
            let built = built_page(db, filter, limit, offset)
                .await
                .expect("every row here has a shape SQLite shows exactly");
            assert_eq!(
                built,
                typed_page(db, filter, limit, offset).await,
                "{filter:?} limit {limit} offset {offset}"
            );
            let parsed: serde_json::Value = serde_json::from_str(&built).unwrap();
            assert!(parsed["audit_entries"].as_array().unwrap().len() <= limit as usize);
        }
    }
}

#[tokio::test]
async fn stored_text_that_is_not_json_goes_the_typed_way() {
    let test_db = fresh_db(Backend::Sqlite).await.unwrap();
    let db = &test_db.db;
    let mut odd = row(2, "odd", Some(1));
    // Only an edit of the table can store this; the typed path shows it as a string.
    odd.before_json = Some("not json {".into());
    let mut spaced = row(3, "spaced", Some(1));
    // Valid JSON in another layout: both paths pass it through as it is stored.
    spaced.after_json = Some("{ \"a\" : 1 }".into());
    insert(db, &[row(1, "plain", Some(1)), odd, spaced]).await;

    let one = AuditFilter {
        project_id: Some(1),
        ..Default::default()
    };
    assert!(built_page(db, &one, 1, 0).await.is_some());
    assert!(built_page(db, &one, 2, 0).await.is_none());
    let spaced_page = built_page(db, &one, 1, 2)
        .await
        .expect("valid JSON is shown as stored");
    assert_eq!(spaced_page, typed_page(db, &one, 1, 2).await);
    let typed = typed_page(db, &one, 3, 0).await;
    assert!(typed.contains("\"before\":\"not json {\""), "{typed}");
    assert!(typed.contains("\"after\":{ \"a\" : 1 }"), "{typed}");
}

#[tokio::test]
async fn postgres_takes_the_typed_path() {
    let Some(test_db) = fresh_db(Backend::Postgres).await else {
        crate::common::skipped("TEST_DATABASE_URL");
        return;
    };
    let page = store::list_json(&test_db.db, &AuditFilter::default(), 20, 0)
        .await
        .unwrap();
    assert!(page.is_none());
}
