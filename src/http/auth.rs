//! The `AuthUser`, `AdminUser` and `AuditorUser` extractors: the bearer token signed in through
//! [`crate::accounts::SignIn`], the inbound per-user / per-IP rate limit, the change reason.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};

use super::error::current_request_id;
use super::AppState;
use crate::accounts::{Credential, SignedIn};
use crate::audit::Actor;
use crate::db::users::User;
use crate::error::ApiError;

/// The authenticated caller, with what the audit trail records about the request.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user: User,
    /// How the caller signed in: a JWT or an API key (which may not mint more keys).
    pub credential: Credential,
    pub actor: Actor,
}

impl AuthUser {
    /// 403 unless the caller signed in as a person (JWT): a leaked key must not beget keys.
    pub fn require_jwt(&self, action: &str) -> Result<(), ApiError> {
        match self.credential {
            Credential::Jwt => Ok(()),
            Credential::ApiKey { .. } => Err(ApiError::Forbidden(format!(
                "an API key cannot {action}; sign in with a JWT or use the CLI"
            ))),
        }
    }
}

/// An authenticated admin (403 for everyone else).
pub struct AdminUser(pub AuthUser);

/// An authenticated auditor or admin (403 for everyone else).
pub struct AuditorUser(pub AuthUser);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match authenticate(parts, state).await {
            Ok(SignedIn { user, credential }) => {
                limit(state, &format!("rl:api:user:{}", user.id)).await?;
                crate::telemetry::record_user(user.id);
                let reason = change_reason(parts)?;
                let actor = Actor {
                    id: Some(user.id),
                    email: Some(user.email.clone()),
                    request_id: current_request_id(),
                    reason,
                };
                Ok(AuthUser {
                    user,
                    credential,
                    actor,
                })
            }
            Err(err) => {
                // Failed sign-ins count against the caller's address, so guessing is slow.
                let ip = client_ip(
                    &parts.headers,
                    &parts.extensions,
                    state.config.trust_forwarded_for,
                );
                limit(state, &format!("rl:api:ip:{ip}")).await?;
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

/// The caller's address: the first `X-Forwarded-For` hop when the proxy is trusted
/// (`REGASSIST_TRUST_FORWARDED_FOR`), else the peer.
pub(super) fn client_ip(
    headers: &HeaderMap,
    extensions: &Extensions,
    trust_forwarded: bool,
) -> IpAddr {
    if trust_forwarded {
        let forwarded = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok());
        if let Some(ip) = forwarded {
            return ip;
        }
    }
    extensions
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

async fn authenticate(parts: &Parts, state: &AppState) -> Result<SignedIn, ApiError> {
    let token = bearer(parts)?;
    state.sign_in.user(token, &current_request_id()).await
}
