//! Account use cases shared by the HTTP routes and the CLI: create users, issue and revoke keys.
//! Each change and its audit row commit together.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::audit::{self, Actor, Change};
use crate::auth::generate_api_key;
use crate::db::users::{self, ApiKey, User};
use crate::db::Db;
use crate::error::ApiError;

/// Creates a user that signs in with API keys (`subject` = `local:<email>`), audited.
pub async fn create_user(
    db: &Db,
    actor: &Actor,
    email: &str,
    name: &str,
    role: &str,
) -> Result<User, ApiError> {
    let subject = format!("local:{}", email.to_lowercase());
    let mut tx = db.begin().await?;
    let user = users::insert(&mut tx, &subject, email, name, role)
        .await?
        .ok_or_else(|| ApiError::Conflict(format!("a user with email {email} already exists")))?;
    let actor = Actor {
        id: actor.id.or(Some(user.id)),
        email: actor.email.clone().or(Some(user.email.clone())),
        ..actor.clone()
    };
    audit::append(
        &mut tx,
        &actor,
        Change {
            action: "user.create",
            entity_type: "user",
            entity_id: Some(user.id.to_string()),
            project_id: None,
            before: None,
            after: Some(json!(user)),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// Issues a key for `user_id`; the key text is returned once and stored only as a hash.
pub async fn issue_key(
    db: &Db,
    actor: &Actor,
    user_id: i64,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(ApiKey, String), ApiError> {
    let (key, prefix, hash) = generate_api_key();
    let mut tx = db.begin().await?;
    let row = users::insert_key(&mut tx, user_id, name, &prefix, &hash, expires_at).await?;
    audit::append(
        &mut tx,
        actor,
        Change {
            action: "api_key.issue",
            entity_type: "api_key",
            entity_id: Some(row.id.to_string()),
            project_id: None,
            before: None,
            after: Some(json!(row)),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((row, key))
}

/// Revokes a key at once. Owners revoke their own keys; admins any key.
pub async fn revoke_key(
    db: &Db,
    actor: &Actor,
    caller: &User,
    key_id: i64,
) -> Result<ApiKey, ApiError> {
    let mut tx = db.begin().await?;
    let key = users::find_key(&mut tx, key_id)
        .await?
        .filter(|k| k.user_id == caller.id || caller.is_admin())
        .ok_or_else(|| ApiError::not_found(format!("API key {key_id}")))?;
    let revoked = users::revoke_key(&mut tx, key_id).await?;
    audit::append(
        &mut tx,
        actor,
        Change {
            action: "api_key.revoke",
            entity_type: "api_key",
            entity_id: Some(key_id.to_string()),
            project_id: None,
            before: Some(json!(key)),
            after: Some(json!(revoked)),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(revoked)
}
