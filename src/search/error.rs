//! Errors of the search use cases and how they answer over HTTP.

use crate::error::ApiError;
use crate::openfda::OpenFdaError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Upstream(#[from] OpenFdaError),
    #[error("the local 510(k) mirror is not available; set OPENFDA_MODE=auto or live")]
    MirrorUnavailable,
    #[error("{0}")]
    Internal(String),
}

impl SearchError {
    /// `Retry-After` for answers that carry none in `ApiError` (504).
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            SearchError::Upstream(OpenFdaError::Timeout { retry_after_secs }) => {
                Some(*retry_after_secs)
            }
            _ => None,
        }
    }
}

/// A failed search use case: the API error and the `Retry-After` it should carry (a 504 from
/// an upstream timeout has no place for it in `ApiError`).
#[derive(Debug)]
pub struct Failure {
    pub error: ApiError,
    pub retry_after_secs: Option<u64>,
}

impl From<SearchError> for Failure {
    fn from(err: SearchError) -> Self {
        Failure {
            retry_after_secs: err.retry_after_secs(),
            error: err.into(),
        }
    }
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Failure {
            error,
            retry_after_secs: None,
        }
    }
}

impl From<sqlx::Error> for Failure {
    fn from(err: sqlx::Error) -> Self {
        ApiError::from(err).into()
    }
}

impl From<anyhow::Error> for Failure {
    fn from(err: anyhow::Error) -> Self {
        ApiError::from(err).into()
    }
}

impl From<SearchError> for ApiError {
    fn from(err: SearchError) -> Self {
        let unavailable = |message: String, secs: u64| ApiError::Unavailable {
            message,
            retry_after_secs: Some(secs),
        };
        match err {
            SearchError::Upstream(e) => match e {
                OpenFdaError::BadQuery(m) => {
                    ApiError::field("q", format!("openFDA could not run this search ({m})"))
                }
                OpenFdaError::InvalidRequest(m) => ApiError::field("limit", m),
                OpenFdaError::Timeout { .. } => ApiError::Timeout(e.to_string()),
                OpenFdaError::Protocol(m) => {
                    ApiError::BadGateway(format!("unexpected answer from openFDA: {m}"))
                }
                OpenFdaError::RateLimited { retry_after_secs }
                | OpenFdaError::BudgetExhausted {
                    retry_after_secs, ..
                }
                | OpenFdaError::CircuitOpen { retry_after_secs }
                | OpenFdaError::Unavailable {
                    retry_after_secs, ..
                } => unavailable(e.to_string(), retry_after_secs),
            },
            SearchError::MirrorUnavailable => ApiError::Unavailable {
                message: err.to_string(),
                retry_after_secs: None,
            },
            SearchError::Internal(m) => ApiError::Internal(anyhow::anyhow!(m)),
        }
    }
}
