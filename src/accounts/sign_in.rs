//! Sign-in: HS256 JWTs (RFC 8725 rules) and `rk_` API keys, and the users a first valid JWT
//! provisions.

use std::sync::Arc;

use base64::Engine;
use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::audit::{Actor, AuditLog, Change};
use crate::config::Config;
use crate::db::users::{self, User};
use crate::db::Db;
use crate::error::ApiError;

use super::cache::{Cached, CredentialId, SignInCache};
use super::LOCAL_SUBJECT_PREFIX;

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
    /// Typed so that a time given as a string (or any non-number) fails to parse and the token
    /// is refused: the library only checks the times it can read (GHSA-h395-gr6q-cpjc).
    #[allow(dead_code)]
    exp: f64,
    #[allow(dead_code)]
    #[serde(default)]
    nbf: Option<f64>,
}

/// The `typ` header a token may carry (RFC 7519 §5.1); compared without case (RFC 7515 §4.1.9).
const TOKEN_TYPE: &str = "JWT";

impl JwtVerifier {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        // Only HS256 is accepted: `alg: none`, RS256-with-the-secret-as-public-key and every
        // other algorithm fail in `decode`, and no key is ever taken from the token's header.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = config.jwt_leeway_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // A configured issuer or audience is required, not only checked when present: a token
        // minted for another service without `iss`/`aud` must not sign in here.
        let mut required = vec!["exp", "sub"];
        match &config.jwt_issuer {
            Some(iss) => {
                validation.set_issuer(&[iss]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &config.jwt_audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        let key = match &config.jwt_secret {
            Some(secret) => Some(
                DecodingKey::from_secret(secret.expose().as_bytes()).map_err(|e| {
                    anyhow::anyhow!("JWT_SECRET cannot be used as an HS256 key: {e}")
                })?,
            ),
            None => None,
        };
        Ok(Self { key, validation })
    }

    fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let key = self.key.as_ref().ok_or_else(|| {
            ApiError::Unauthorized("JWT sign-in is not configured; use an API key".into())
        })?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(|e| {
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
        })?;
        if data
            .header
            .typ
            .as_deref()
            .is_some_and(|typ| !typ.eq_ignore_ascii_case(TOKEN_TYPE))
        {
            return Err(ApiError::Unauthorized("token type is not accepted".into()));
        }
        Ok(data.claims)
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

/// What a bearer token was: API keys may do less than a person's sign-in (they mint no keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Jwt,
    ApiKey { key_id: i64 },
}

/// A signed-in, enabled user and the credential used.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    pub credential: Credential,
}

/// How stale `api_keys.last_used_at` may get: one write a minute per key at most, so a busy
/// key's reads do not each become a write.
const LAST_USED_RESOLUTION: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// Signs callers in: verifies a JWT or an API key and returns its user, provisioning the user of a
/// first valid JWT (audited). Whom a credential signs in is cached (see [`SignInCache`]).
pub struct SignIn {
    jwt: JwtVerifier,
    audit: AuditLog,
    cache: Arc<SignInCache>,
}

impl SignIn {
    pub fn new(config: &Config, audit: AuditLog) -> anyhow::Result<Self> {
        let cache = match audit.db() {
            Db::Postgres(_) => SignInCache::until_listening(),
            Db::Sqlite(_) => SignInCache::in_process(),
        };
        Ok(SignIn {
            jwt: JwtVerifier::new(config)?,
            audit,
            cache: Arc::new(cache),
        })
    }

    /// Starts what keeps the cache true across replicas (PostgreSQL's account-change listener).
    pub fn spawn_cache_listener(&self) {
        if let Db::Postgres(pg) = self.audit.db() {
            self.cache.spawn_listener(pg.clone());
        }
    }

    /// Whether the sign-in cache serves (on PostgreSQL, once its listener is connected).
    pub fn cache_is_serving(&self) -> bool {
        self.cache.is_serving()
    }

    /// Empties the cache after this process changed an account or a key (other replicas hear
    /// of it through PostgreSQL's triggers).
    pub fn account_changed(&self) {
        self.cache.invalidate();
    }

    /// The enabled user a bearer token (an `rk_` API key or a JWT) signs in; `request_id` goes
    /// into the audit row of a provisioning or profile update. A disabled user is refused
    /// before anything is written for them.
    pub async fn user(&self, token: &str, request_id: &str) -> Result<SignedIn, ApiError> {
        let (method, result) = if token.starts_with(API_KEY_PREFIX) {
            ("api_key", self.key_user(token).await)
        } else {
            ("jwt", self.jwt_user(token, request_id).await)
        };
        let outcome = if result.is_ok() { "success" } else { "failure" };
        metrics::counter!("auth_attempts_total", "method" => method, "outcome" => outcome)
            .increment(1);
        result
    }

    async fn key_user(&self, token: &str) -> Result<SignedIn, ApiError> {
        let invalid = || ApiError::Unauthorized("API key is invalid, expired or revoked".into());
        let hash = hash_api_key(token);
        let id = CredentialId::KeyHash(hash.clone());
        let (key, user) = match self.cache.get(&id) {
            Some(cached) => match &cached.key {
                Some(key) => (key.clone(), cached.user.clone()),
                None => return Err(invalid()),
            },
            None => {
                let read_at = self.cache.generation();
                let (key, stored_hash) = users::find_key_by_hash(self.audit.db(), &hash)
                    .await?
                    .ok_or_else(invalid)?;
                // The lookup used the hash as an index key; compare in constant time all the same.
                if !bool::from(stored_hash.as_bytes().ct_eq(hash.as_bytes())) {
                    return Err(invalid());
                }
                let user = users::find(self.audit.db(), key.user_id)
                    .await?
                    .ok_or_else(invalid)?;
                let cached = Cached {
                    user: user.clone(),
                    key: Some(key.clone()),
                };
                self.cache.store(read_at, id.clone(), cached);
                (key, user)
            }
        };
        if key.revoked_at.is_some() || key.expires_at.is_some_and(|at| at <= Utc::now()) {
            return Err(invalid());
        }
        refuse_disabled(&user)?;
        let now = crate::db::now();
        let stale = now - LAST_USED_RESOLUTION;
        if key.last_used_at.is_none_or(|at| at <= stale) {
            // A usage stamp, not a change to a record: not audited. The statement's own
            // condition keeps concurrent requests (and replicas) to one write.
            users::touch_key(self.audit.db(), key.id, now, stale).await?;
            self.cache.note_key_used(&id, now);
        }
        Ok(SignedIn {
            user,
            credential: Credential::ApiKey { key_id: key.id },
        })
    }

    async fn jwt_user(&self, token: &str, request_id: &str) -> Result<SignedIn, ApiError> {
        let claims = self.jwt.verify(token)?;
        let name = claims.name.unwrap_or_default();
        if claims.sub.is_empty() || claims.sub.len() > 255 || claims.email.len() > 320 {
            return Err(ApiError::Unauthorized("token claims are malformed".into()));
        }
        // Local accounts (CLI-created, API keys only, possibly admins) live under this prefix;
        // a token naming one would sign in as that account.
        if claims
            .sub
            .get(..LOCAL_SUBJECT_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(LOCAL_SUBJECT_PREFIX))
        {
            return Err(ApiError::Unauthorized(
                "token subject names a local account".into(),
            ));
        }
        let user = match self.find_subject(&claims.sub).await? {
            Some(user) => {
                refuse_disabled(&user)?;
                if user.email == claims.email && user.name == name {
                    user
                } else {
                    self.sync_profile(user, &claims.email, &name, request_id)
                        .await?
                }
            }
            None => {
                self.provision(&claims.sub, &claims.email, &name, request_id)
                    .await?
            }
        };
        Ok(SignedIn {
            user,
            credential: Credential::Jwt,
        })
    }

    /// The user of a JWT subject, from the cache or the database (a miss is not cached: the
    /// first request provisions the user).
    async fn find_subject(&self, subject: &str) -> Result<Option<User>, ApiError> {
        let id = CredentialId::Subject(subject.to_string());
        if let Some(cached) = self.cache.get(&id) {
            return Ok(Some(cached.user.clone()));
        }
        let read_at = self.cache.generation();
        let user = users::find_by_subject(self.audit.db(), subject).await?;
        if let Some(user) = &user {
            let cached = Cached {
                user: user.clone(),
                key: None,
            };
            self.cache.store(read_at, id, cached);
        }
        Ok(user)
    }

    /// Creates the user for a first valid token (audited).
    async fn provision(
        &self,
        subject: &str,
        email: &str,
        name: &str,
        request_id: &str,
    ) -> Result<User, ApiError> {
        let mut work = self.audit.begin().await?;
        let Some(user) = users::insert(work.tx(), subject, email, name, "user").await? else {
            // A concurrent first request created it.
            drop(work);
            let user = users::find_by_subject(self.audit.db(), subject)
                .await?
                .ok_or_else(|| {
                    ApiError::Internal(anyhow::anyhow!("user vanished after conflict"))
                })?;
            refuse_disabled(&user)?;
            return Ok(user);
        };
        let actor = Actor {
            id: Some(user.id),
            email: Some(user.email.clone()),
            request_id: request_id.to_string(),
            reason: None,
        };
        work.commit(
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
        Ok(user)
    }

    /// Applies a changed email or name from a newer token (audited).
    async fn sync_profile(
        &self,
        user: User,
        email: &str,
        name: &str,
        request_id: &str,
    ) -> Result<User, ApiError> {
        let mut work = self.audit.begin().await?;
        let updated = users::update_profile(work.tx(), user.id, email, name).await?;
        let actor = Actor {
            id: Some(user.id),
            email: Some(email.to_string()),
            request_id: request_id.to_string(),
            reason: None,
        };
        work.commit(
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
        self.account_changed();
        Ok(updated)
    }
}

fn refuse_disabled(user: &User) -> Result<(), ApiError> {
    if user.disabled {
        return Err(ApiError::Forbidden("this account is disabled".into()));
    }
    Ok(())
}
