//! Errors of the search use case, and the API error kind each one is.

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
                OpenFdaError::Timeout { retry_after_secs } => ApiError::Timeout {
                    message: e.to_string(),
                    retry_after_secs: Some(retry_after_secs),
                },
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
