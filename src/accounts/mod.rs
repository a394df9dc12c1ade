//! Account use cases shared by the HTTP routes and the CLI: sign-in (JWTs and API keys), create
//! users, issue and revoke keys. Each change and its audit row commit together.

mod cache;
mod sign_in;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::audit::{Actor, AuditLog, Change};
use crate::db::users::{self, ApiKey, User};
use crate::error::ApiError;

pub use sign_in::{generate_api_key, hash_api_key, Credential, SignIn, SignedIn, API_KEY_PREFIX};

/// The subject prefix of local accounts (created by the CLI or an admin, signing in with API
/// keys only); a JWT subject may never start with it.
pub const LOCAL_SUBJECT_PREFIX: &str = "local:";

/// The roles a user can have: `user` (own projects), `auditor` (every audit trail), `admin`.
pub const ROLES: [&str; 3] = ["user", "auditor", "admin"];

/// Creates a user that signs in with API keys (`subject` = `local:<email>`), audited.
pub async fn create_user(
    audit: &AuditLog,
    actor: &Actor,
    email: &str,
    name: &str,
    role: &str,
) -> Result<User, ApiError> {
    let subject = format!("{LOCAL_SUBJECT_PREFIX}{}", email.to_lowercase());
    let mut work = audit.begin().await?;
    let user = users::insert(work.tx(), &subject, email, name, role)
        .await?
        .ok_or_else(|| ApiError::Conflict(format!("a user with email {email} already exists")))?;
    let actor = Actor {
        id: actor.id.or(Some(user.id)),
        email: actor.email.clone().or(Some(user.email.clone())),
        ..actor.clone()
    };
    work.commit(
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
    Ok(user)
}

/// Issues a key for `user_id`; the key text is returned once and stored only as a hash.
pub async fn issue_key(
    audit: &AuditLog,
    actor: &Actor,
    user_id: i64,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(ApiKey, String), ApiError> {
    let (key, prefix, hash) = generate_api_key();
    let mut work = audit.begin().await?;
    let row = users::insert_key(work.tx(), user_id, name, &prefix, &hash, expires_at).await?;
    work.commit(
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
    Ok((row, key))
}

/// Issues a key for the existing local account of `email` (the CLI's `users issue-key`), audited
/// as the account itself acting from the command line. Unknown and disabled accounts get none.
pub async fn issue_key_for_local(
    audit: &AuditLog,
    email: &str,
    label: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(ApiKey, String), ApiError> {
    let subject = format!("{LOCAL_SUBJECT_PREFIX}{}", email.to_lowercase());
    let user = users::find_by_subject(audit.db(), &subject)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("local account {email}")))?;
    if user.disabled {
        return Err(ApiError::Forbidden(format!(
            "the account {email} is disabled; an admin must enable it first"
        )));
    }
    let actor = Actor {
        id: Some(user.id),
        email: Some(user.email.clone()),
        request_id: format!("cli-{}", uuid::Uuid::new_v4()),
        reason: Some("issued with `regassist users issue-key`".into()),
    };
    issue_key(audit, &actor, user.id, label, expires_at).await
}

/// Revokes a key at once. Owners revoke their own keys; admins any key.
pub async fn revoke_key(
    audit: &AuditLog,
    actor: &Actor,
    caller: &User,
    key_id: i64,
) -> Result<ApiKey, ApiError> {
    let mut work = audit.begin().await?;
    let key = users::find_key(work.tx(), key_id)
        .await?
        .filter(|k| k.user_id == caller.id || caller.is_admin())
        .ok_or_else(|| ApiError::not_found(format!("API key {key_id}")))?;
    let revoked = users::revoke_key(work.tx(), key_id).await?;
    work.commit(
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
    Ok(revoked)
}
