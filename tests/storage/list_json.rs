//! The project page SQLite builds as JSON (`projects::list_json`) is, byte for byte, what serde
//! writes for the typed rows, whatever the text, the times' sub-seconds, the filters and the page.

use chrono::{DateTime, TimeZone, Utc};
use regassist::db::{projects, users, Db};
use regassist::domain::project::NewProject;

use crate::common::{fresh_db, Backend};

/// Texts that JSON writers escape differently if any: quotes, backslashes, control characters,
/// non-ASCII letters, an emoji, U+2028, a slash and something that looks like JSON.
pub const AWKWARD: [&str; 6] = [
    "Pump \"X\" \\ 1",
    "tab\there\nnew line\r\u{1}\u{1f}\u{7f}",
    "Blutzuckermessgerät ß 血糖 😀",
    "line\u{2028}separator / slash",
    "{\"not\": \"json\"}",
    "",
];

/// Times as sqlx stores them, with each sub-second length serde may write (none, 3, 6 digits).
fn times() -> Vec<DateTime<Utc>> {
    let base = Utc.with_ymd_and_hms(2026, 8, 1, 12, 0, 0).unwrap();
    [0, 120_000_000, 123_456_000, 1_000, 999_999_000]
        .into_iter()
        .map(|nanos| base + chrono::Duration::nanoseconds(nanos))
        .collect()
}

async fn typed_page(
    db: &Db,
    user: i64,
    filter: &projects::ProjectFilter,
    limit: i64,
    offset: i64,
) -> (String, i64) {
    let (rows, total) = projects::list(db, user, filter, limit, offset)
        .await
        .unwrap();
    (serde_json::to_string(&rows).unwrap(), total)
}

#[tokio::test]
async fn sqlite_builds_the_same_page_as_serde() {
    let test_db = fresh_db(Backend::Sqlite).await.unwrap();
    let db = &test_db.db;
    let mut tx = db.begin().await.unwrap();
    let user = users::insert(&mut tx, "json-page", "j@example.com", "J", "user")
        .await
        .unwrap()
        .unwrap();
    let other = users::insert(&mut tx, "other", "o@example.com", "O", "user")
        .await
        .unwrap()
        .unwrap();
    let mut ids = Vec::new();
    for (i, text) in AWKWARD.iter().enumerate() {
        let new = NewProject {
            name: format!("{text} pump {i}"),
            description: (i % 2 == 0).then(|| text.to_string()),
            device_type: (i % 3 != 0).then(|| format!("type {}", i % 2)),
            intended_use: Some(text.to_string()),
            product_code: (i % 2 == 1).then(|| "FRN".to_string()),
            priority: (i % 2 == 0).then(|| "high".to_string()),
            tags: vec![text.to_string(), format!("t{i}")],
        };
        ids.push(projects::insert(&mut tx, user.id, &new).await.unwrap().id);
    }
    let theirs = NewProject {
        name: "not mine".into(),
        description: None,
        device_type: None,
        intended_use: None,
        product_code: None,
        priority: None,
        tags: vec![],
    };
    projects::insert(&mut tx, other.id, &theirs).await.unwrap();
    tx.commit().await.unwrap();
    // Each sub-second length, and two projects with the same time (the id breaks the tie).
    let Db::Sqlite(sqlite) = db else {
        unreachable!()
    };
    for (id, at) in ids.iter().zip(times().into_iter().cycle()) {
        sqlx::query("UPDATE projects SET created_at = $1, updated_at = $2 WHERE id = $3")
            .bind(at)
            .bind(at + chrono::Duration::microseconds(*id))
            .bind(id)
            .execute(&sqlite.write)
            .await
            .unwrap();
    }

    let filters = [
        projects::ProjectFilter::default(),
        projects::ProjectFilter {
            search: Some("PUMP".into()),
            ..Default::default()
        },
        projects::ProjectFilter {
            device_type: Some("TYPE 1".into()),
            status: Some("draft".into()),
            ..Default::default()
        },
        projects::ProjectFilter {
            search: Some("nothing like it".into()),
            ..Default::default()
        },
    ];
    let mut compared = 0;
    for filter in &filters {
        for (limit, offset) in [(20, 0), (2, 0), (2, 2), (2, 4), (3, 5), (1, 6), (5, 40)] {
            let built = projects::list_json(db, user.id, filter, limit, offset)
                .await
                .unwrap()
                .expect("every time here has the stored shape");
            let typed = typed_page(db, user.id, filter, limit, offset).await;
            assert_eq!(built, typed, "{filter:?} limit {limit} offset {offset}");
            compared += 1;
        }
    }
    assert_eq!(compared, 28);

    // A time in a shape this service never writes: the typed path answers instead.
    sqlx::query("UPDATE projects SET updated_at = '2026-08-01 12:00:00' WHERE id = $1")
        .bind(ids[0])
        .execute(&sqlite.write)
        .await
        .unwrap();
    let filter = projects::ProjectFilter::default();
    assert!(projects::list_json(db, user.id, &filter, 20, 0)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn postgres_leaves_the_page_to_the_typed_rows() {
    let Some(test_db) = fresh_db(Backend::Postgres).await else {
        crate::common::skipped("TEST_DATABASE_URL");
        return;
    };
    let filter = projects::ProjectFilter::default();
    let page = projects::list_json(&test_db.db, 1, &filter, 20, 0).await;
    assert!(page.unwrap().is_none());
}
