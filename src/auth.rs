//! Authentication: HS256 JWTs (RFC 8725 rules) and `rk_` API keys, the `AuthUser` and
//! `AdminUser` extractors, user provisioning, and the inbound per-user / per-IP rate limit.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use base64::Engine;
use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::app::AppState;
use crate::audit::{self, Actor, Change};
use crate::config::Config;
use crate::db::users::{self, User};
use crate::error::{current_request_id, ApiError};

/// Allowed clock skew for `exp` and `nbf`: 30 s by default (`REGASSIST_JWT_LEEWAY_SECS`).
pub struct JwtVerifier {
    key: Option<DecodingKey>,
    validation: Validation,
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    email: String,
    #[serde(default)]
    name: Option<String>,
}

impl JwtVerifier {
    pub fn new(config: &Config) -> Self {
        // Only HS256 is accepted: `alg: none`, RS256-with-the-secret-as-public-key and every
        // other algorithm fail in `decode`, and no key is ever taken from the token's header.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = config.jwt_leeway_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match &config.jwt_issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &config.jwt_audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        Self {
            key: config
                .jwt_secret
                .as_ref()
                .map(|s| DecodingKey::from_secret(s.expose().as_bytes())),
            validation,
        }
    }

    fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let key = self.key.as_ref().ok_or_else(|| {
            ApiError::Unauthorized("JWT sign-in is not configured; use an API key".into())
        })?;
        jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                let why = match e.kind() {
                    ErrorKind::ExpiredSignature => "token expired",
                    ErrorKind::ImmatureSignature => "token not valid yet",
                    ErrorKind::InvalidSignature => "token signature is invalid",
                    ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                        "token algorithm is not accepted"
                    }
                    ErrorKind::InvalidIssuer => "token issuer is not accepted",
                    ErrorKind::InvalidAudience => "token audience is not accepted",
                    ErrorKind::MissingRequiredClaim(_) => "token lacks a required claim",
                    _ => "token is malformed",
                };
                ApiError::Unauthorized(why.into())
            })
    }
}

/// Prefix of every API key, so scanners and people recognise one.
pub const API_KEY_PREFIX: &str = "rk_";

/// A new API key: `(the key, shown once; its display prefix; its stored hash)`.
pub fn generate_api_key() -> (String, String, String) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let key = format!(
        "{API_KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let prefix = key.chars().take(10).collect();
    let hash = hash_api_key(&key);
    (key, prefix, hash)
}

pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The authenticated caller, with what the audit trail records about the request.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user: User,
    pub actor: Actor,
}

/// An authenticated admin (403 for everyone else).
pub struct AdminUser(pub AuthUser);

/// An authenticated auditor or admin (403 for everyone else).
pub struct AuditorUser(pub AuthUser);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match authenticate(parts, state).await {
            Ok(user) => {
                limit(state, &format!("rl:api:user:{}", user.id)).await?;
                crate::telemetry::record_user(user.id);
                let reason = change_reason(parts)?;
                let actor = Actor {
                    id: Some(user.id),
                    email: Some(user.email.clone()),
                    request_id: current_request_id(),
                    reason,
                };
                Ok(AuthUser { user, actor })
            }
            Err(err) => {
                // Failed sign-ins count against the caller's address, so guessing is slow.
                limit(state, &format!("rl:api:ip:{}", client_ip(parts, state))).await?;
                Err(err)
            }
        }
    }
}

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if !user.user.is_admin() {
            return Err(ApiError::Forbidden("admin role required".into()));
        }
        Ok(AdminUser(user))
    }
}

impl FromRequestParts<AppState> for AuditorUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if !user.user.reads_all_audit() {
            return Err(ApiError::Forbidden("auditor or admin role required".into()));
        }
        Ok(AuditorUser(user))
    }
}

/// The `X-Change-Reason` header: free text up to 500 characters.
fn change_reason(parts: &Parts) -> Result<Option<String>, ApiError> {
    let Some(value) = parts.headers.get("x-change-reason") else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::BadRequest("X-Change-Reason must be visible ASCII text".into()))?
        .trim();
    if text.chars().count() > 500 {
        return Err(ApiError::field(
            "X-Change-Reason",
            "must be at most 500 characters",
        ));
    }
    Ok((!text.is_empty()).then(|| text.to_string()))
}

async fn limit(state: &AppState, key: &str) -> Result<(), ApiError> {
    let per_minute = state.config.api_rate_per_minute;
    if per_minute == 0 {
        return Ok(());
    }
    let decision = state
        .limiter
        .hit(key, u64::from(per_minute), Duration::from_secs(60), 1)
        .await;
    if decision.allowed {
        Ok(())
    } else {
        Err(ApiError::RateLimited {
            retry_after_secs: decision.reset_after.as_secs().max(1),
        })
    }
}

fn client_ip(parts: &Parts, state: &AppState) -> IpAddr {
    if state.config.trust_forwarded_for {
        let forwarded = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok());
        if let Some(ip) = forwarded {
            return ip;
        }
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
    let value = header
        .to_str()
        .map_err(|_| ApiError::Unauthorized("malformed Authorization header".into()))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| ApiError::Unauthorized("malformed Authorization header".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::Unauthorized("expected a Bearer token".into()));
    }
    Ok(token.trim())
}

async fn authenticate(parts: &Parts, state: &AppState) -> Result<User, ApiError> {
    let token = bearer(parts)?;
    let (method, result) = if token.starts_with(API_KEY_PREFIX) {
        ("api_key", authenticate_key(token, state).await)
    } else {
        ("jwt", authenticate_jwt(token, state).await)
    };
    let outcome = if result.is_ok() { "success" } else { "failure" };
    metrics::counter!("auth_attempts_total", "method" => method, "outcome" => outcome).increment(1);
    let user = result?;
    if user.disabled {
        return Err(ApiError::Forbidden("this account is disabled".into()));
    }
    Ok(user)
}

async fn authenticate_key(token: &str, state: &AppState) -> Result<User, ApiError> {
    let invalid = || ApiError::Unauthorized("API key is invalid, expired or revoked".into());
    let hash = hash_api_key(token);
    let (key, stored_hash) = users::find_key_by_hash(&state.db, &hash)
        .await?
        .ok_or_else(invalid)?;
    // The lookup used the hash as an index key; compare in constant time all the same.
    if !bool::from(stored_hash.as_bytes().ct_eq(hash.as_bytes())) {
        return Err(invalid());
    }
    if key.revoked_at.is_some() || key.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(invalid());
    }
    users::find(&state.db, key.user_id)
        .await?
        .ok_or_else(invalid)
}

async fn authenticate_jwt(token: &str, state: &AppState) -> Result<User, ApiError> {
    let claims = state.jwt.verify(token)?;
    let name = claims.name.unwrap_or_default();
    if claims.sub.is_empty() || claims.sub.len() > 255 || claims.email.len() > 320 {
        return Err(ApiError::Unauthorized("token claims are malformed".into()));
    }
    if let Some(user) = users::find_by_subject(&state.db, &claims.sub).await? {
        if user.email == claims.email && user.name == name {
            return Ok(user);
        }
        return sync_profile(state, user, &claims.email, &name).await;
    }
    provision(state, &claims.sub, &claims.email, &name).await
}

/// Creates the user for a first valid token (audited).
async fn provision(
    state: &AppState,
    subject: &str,
    email: &str,
    name: &str,
) -> Result<User, ApiError> {
    let mut tx = state.db.begin().await?;
    let Some(user) = users::insert(&mut tx, subject, email, name, "user").await? else {
        // A concurrent first request created it.
        drop(tx);
        return users::find_by_subject(&state.db, subject)
            .await?
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("user vanished after conflict")));
    };
    let actor = Actor {
        id: Some(user.id),
        email: Some(user.email.clone()),
        request_id: current_request_id(),
        reason: None,
    };
    audit::append(
        &mut tx,
        &actor,
        Change {
            action: "user.provision",
            entity_type: "user",
            entity_id: Some(user.id.to_string()),
            project_id: None,
            before: None,
            after: Some(serde_json::to_value(&user).map_err(anyhow::Error::from)?),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// Applies a changed email or name from a newer token (audited).
async fn sync_profile(
    state: &AppState,
    user: User,
    email: &str,
    name: &str,
) -> Result<User, ApiError> {
    let mut tx = state.db.begin().await?;
    let updated = users::update_profile(&mut tx, user.id, email, name).await?;
    let actor = Actor {
        id: Some(user.id),
        email: Some(email.to_string()),
        request_id: current_request_id(),
        reason: None,
    };
    audit::append(
        &mut tx,
        &actor,
        Change {
            action: "user.profile_sync",
            entity_type: "user",
            entity_id: Some(user.id.to_string()),
            project_id: None,
            before: Some(serde_json::to_value(&user).map_err(anyhow::Error::from)?),
            after: Some(serde_json::to_value(&updated).map_err(anyhow::Error::from)?),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(updated)
}
