//! The storage conformance story: every `db::*` function behaves the same on SQLite and on
//! PostgreSQL (when `TEST_DATABASE_URL` is set).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit_json;
#[path = "../common/mod.rs"]
mod common;
mod list_json;
mod mirror_page;
mod warm_pool;

use common::{fresh_db, Backend};
use regassist::audit::{self, Actor, Change};
use regassist::db::{agent, classifications, predicates, projects, users};
use regassist::domain::project::{CreateProject, UpdateProject};
use serde_json::json;

async fn story(backend: Backend) {
    let Some(test_db) = fresh_db(backend).await else {
        common::skipped("TEST_DATABASE_URL");
        return;
    };
    let db = &test_db.db;

    // Users: insert, duplicate subject, find, profile and admin updates.
    let mut tx = db.begin().await.unwrap();
    let u = users::insert(&mut tx, "sub-1", "a@example.com", "A", "user")
        .await
        .unwrap()
        .unwrap();
    assert!(
        users::insert(&mut tx, "sub-1", "b@example.com", "B", "user")
            .await
            .unwrap()
            .is_none()
    );
    let u2 = users::update_profile(&mut tx, u.id, "new@example.com", "A2")
        .await
        .unwrap();
    assert_eq!(u2.email, "new@example.com");
    let u3 = users::update_admin_fields(&mut tx, u.id, Some("auditor"), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((u3.role.as_str(), u3.disabled), ("auditor", false));
    tx.commit().await.unwrap();
    assert_eq!(
        users::find_by_subject(db, "sub-1")
            .await
            .unwrap()
            .unwrap()
            .id,
        u.id
    );
    assert!(users::find(db, 999).await.unwrap().is_none());

    // Keys: insert, find by hash, revoke keeps the first revocation time.
    let mut tx = db.begin().await.unwrap();
    let key = users::insert_key(&mut tx, u.id, "k", "rk_abc", "hash-1", None)
        .await
        .unwrap();
    let revoked = users::revoke_key(&mut tx, key.id).await.unwrap();
    let again = users::revoke_key(&mut tx, key.id).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(revoked.revoked_at, again.revoked_at);
    let (found, hash) = users::find_key_by_hash(db, "hash-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.id, hash.as_str()), (key.id, "hash-1"));
    assert_eq!(users::list_keys(db, u.id).await.unwrap().len(), 1);

    // Projects: insert, list with filters, compare-and-swap update, soft delete.
    let new = serde_json::from_value::<CreateProject>(
        json!({"name": "Pump", "device_type": "infusion", "tags": ["x"]}),
    )
    .unwrap()
    .validate()
    .unwrap();
    let mut tx = db.begin().await.unwrap();
    let p = projects::insert(&mut tx, u.id, &new).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        (p.version, p.status.as_str(), p.tags.0.clone()),
        (1, "draft", vec!["x".to_string()])
    );
    let filter = projects::ProjectFilter {
        search: Some("pum".into()),
        ..Default::default()
    };
    let (rows, total) = projects::list(db, u.id, &filter, 10, 0).await.unwrap();
    assert_eq!((rows.len(), total), (1, 1));
    let changes = serde_json::from_value::<UpdateProject>(json!({"name": "Pump 2"}))
        .unwrap()
        .validate()
        .unwrap();
    let mut tx = db.begin().await.unwrap();
    let updated = projects::update(&mut tx, &p, &changes)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.version, 2);
    assert!(
        projects::update(&mut tx, &p, &changes)
            .await
            .unwrap()
            .is_none(),
        "stale version loses"
    );
    tx.commit().await.unwrap();

    // Predicates keep their selection across refreshes.
    let mut tx = db.begin().await.unwrap();
    let cand = predicates::NewPredicate {
        k_number: "K872032",
        device_name: "Pump",
        intended_use: None,
        product_code: Some("FRN"),
        clearance_date: chrono::NaiveDate::from_ymd_opt(1987, 9, 1),
        confidence_score: 0.8,
        comparison_data: &Default::default(),
    };
    let row = predicates::upsert(&mut tx, p.id, &cand).await.unwrap();
    predicates::set_selected(&mut tx, p.id, row.id, true)
        .await
        .unwrap()
        .unwrap();
    let refreshed = predicates::upsert(
        &mut tx,
        p.id,
        &predicates::NewPredicate {
            confidence_score: 0.9,
            ..cand
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(refreshed.id, row.id);
    assert!(refreshed.is_selected);
    assert_eq!(refreshed.confidence_score, 0.9);
    assert_eq!(
        refreshed.clearance_date,
        chrono::NaiveDate::from_ymd_opt(1987, 9, 1)
    );

    // Classifications and interactions.
    let mut tx = db.begin().await.unwrap();
    let sections = vec!["21 CFR 880.5725".to_string()];
    classifications::insert(
        &mut tx,
        p.id,
        &classifications::NewClassification {
            device_class: "2",
            product_code: "FRN",
            regulatory_pathway: "510k",
            cfr_sections: &sections,
            confidence_score: 0.7,
            reasoning: "r",
            sources: &[],
        },
    )
    .await
    .unwrap();
    agent::insert(
        &mut tx,
        &agent::NewInteraction {
            project_id: Some(p.id),
            user_id: u.id,
            session_id: "s",
            task_type: "predicate_search",
            input: &json!({"q": 1}),
            output: &json!({"n": 2}),
            confidence: Some(0.5),
            sources: &[],
            reasoning: "",
            execution_time_ms: 1.5,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        classifications::latest(db, p.id)
            .await
            .unwrap()
            .unwrap()
            .cfr_sections
            .0,
        sections
    );
    assert_eq!(agent::count_for_project(db, p.id).await.unwrap(), 1);
    assert_eq!(
        agent::for_project(db, p.id, 5).await.unwrap()[0].input.0,
        json!({"q": 1})
    );

    // Soft delete hides the project from owner reads.
    let mut tx = db.begin().await.unwrap();
    assert!(projects::soft_delete(&mut tx, &updated).await.unwrap());
    tx.commit().await.unwrap();
    assert!(projects::find_owned(db, p.id, u.id)
        .await
        .unwrap()
        .is_none());

    // Audit: append, list, verify.
    let actor = Actor {
        id: Some(u.id),
        email: Some(u2.email.clone()),
        request_id: "r".into(),
        reason: None,
    };
    let log = audit::AuditLog::new(db.clone());
    for i in 0..3 {
        let work = log.begin().await.unwrap();
        work.commit(
            &actor,
            Change {
                action: "test",
                entity_type: "thing",
                entity_id: Some(i.to_string()),
                project_id: Some(p.id),
                before: None,
                after: Some(json!({"i": i, "nested": {"b": 1, "a": 2}})),
            },
        )
        .await
        .unwrap();
    }
    let filter = regassist::db::audit::AuditFilter {
        project_id: Some(p.id),
        ..Default::default()
    };
    let (rows, total) = regassist::db::audit::list(db, &filter, 2, 1).await.unwrap();
    assert_eq!((rows.len(), total, rows[0].seq), (2, 3, 2));
    let v = audit::verify(db, None, "not_configured", None)
        .await
        .unwrap();
    assert!(v.is_valid, "{v:?}");
    assert_eq!(v.head_seq, 3);
}

#[tokio::test]
async fn sqlite() {
    story(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres() {
    story(Backend::Postgres).await;
}
