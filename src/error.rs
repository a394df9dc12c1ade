//! `ApiError`: the one error of the service's use cases, in kinds a caller can act on (not found,
//! invalid fields, conflict, unavailable, ...). It knows nothing of HTTP: the web layer
//! (`http::error`) maps each kind to its status, headers and the one JSON error body.

pub use crate::domain::validation::FieldErrors;
use crate::domain::validation::Invalid;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("request body is larger than the limit")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    Validation {
        message: String,
        fields: FieldErrors,
    },
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    #[error("{0}")]
    BadGateway(String),
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after_secs: Option<u64>,
    },
    #[error("{message}")]
    Timeout {
        message: String,
        retry_after_secs: Option<u64>,
    },
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::NotFound(format!("{what} not found"))
    }

    /// A 422 with one field message.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Invalid::field(field, message).into()
    }

    /// A 422 from collected field messages (`Ok` when there are none).
    pub fn check(fields: FieldErrors) -> Result<(), Self> {
        Ok(Invalid::check(fields)?)
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::PreconditionFailed(_) => "precondition_failed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Validation { .. } => "validation_failed",
            Self::RateLimited { .. } => "rate_limited",
            Self::BadGateway(_) => "upstream_error",
            Self::Unavailable { .. } => "service_unavailable",
            Self::Timeout { .. } => "timeout",
            Self::Internal(_) => "internal_error",
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::PoolTimedOut => Self::Unavailable {
                message: "database is busy, try again".into(),
                retry_after_secs: Some(1),
            },
            // PostgreSQL's statement_timeout (57014) and lock_timeout (55P03): the database
            // was too busy for this request, not broken; the client may try again.
            sqlx::Error::Database(db)
                if matches!(db.code().as_deref(), Some("57014" | "55P03")) =>
            {
                Self::Unavailable {
                    message: "the database did not finish in time, try again".into(),
                    retry_after_secs: Some(2),
                }
            }
            _ => Self::Internal(err.into()),
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(Invalid(fields): Invalid) -> Self {
        let names: Vec<&str> = fields.keys().map(String::as_str).collect();
        Self::Validation {
            message: format!("invalid value for {}", names.join(", ")),
            fields,
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        Self::Internal(err)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
