//! The client's request, page and error types, and the limits checked before any call.

use super::query::{Search, Sort, MAX_LIMIT, MAX_SKIP};

/// The endpoints this service reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Device510k,
    Classification,
    Recall,
    Enforcement,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Device510k => "/device/510k.json",
            Endpoint::Classification => "/device/classification.json",
            Endpoint::Recall => "/device/recall.json",
            Endpoint::Enforcement => "/device/enforcement.json",
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Endpoint::Device510k => "510k",
            Endpoint::Classification => "classification",
            Endpoint::Recall => "recall",
            Endpoint::Enforcement => "enforcement",
        }
    }
}

/// Where a page starts: an offset (at most 25000) or openFDA's `search_after` cursor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Paging {
    Skip(u32),
    After(String),
}

#[derive(Clone, Debug)]
pub struct Request {
    pub endpoint: Endpoint,
    pub search: Option<Search>,
    pub sort: Option<Sort>,
    pub limit: u32,
    pub paging: Paging,
}

impl Request {
    pub fn new(endpoint: Endpoint, search: Search, limit: u32) -> Self {
        Self {
            endpoint,
            search: (!search.is_empty()).then_some(search),
            sort: None,
            limit,
            paging: Paging::Skip(0),
        }
    }
}

/// One page of results.
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub results: Vec<T>,
    /// `meta.results.total` (0 for "no match").
    pub total: u64,
    /// `meta.last_updated`.
    pub last_updated: Option<String>,
    /// The `search_after` cursor of the next page, when openFDA offered one.
    pub next: Option<String>,
}

impl<T> Page<T> {
    pub(crate) fn empty() -> Self {
        Self {
            results: Vec::new(),
            total: 0,
            last_updated: None,
            next: None,
        }
    }
}

/// Why a call gave no page. Texts never contain the API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenFdaError {
    #[error("openFDA rejected the query: {0}")]
    BadQuery(String),
    #[error("invalid openFDA request: {0}")]
    InvalidRequest(String),
    #[error("openFDA is rate limiting this service")]
    RateLimited { retry_after_secs: u64 },
    #[error("the openFDA request budget ({window}) is spent")]
    BudgetExhausted {
        window: &'static str,
        retry_after_secs: u64,
    },
    #[error("openFDA is unavailable: {message}")]
    Unavailable {
        message: String,
        retry_after_secs: u64,
    },
    #[error("openFDA did not answer in time")]
    Timeout { retry_after_secs: u64 },
    #[error("openFDA calls are paused after repeated failures (circuit open)")]
    CircuitOpen { retry_after_secs: u64 },
    #[error("unexpected answer from openFDA: {0}")]
    Protocol(String),
}

/// `limit` and `skip` within openFDA's bounds, before anything is spent on a call.
pub(crate) fn validate(req: &Request) -> Result<(), OpenFdaError> {
    if req.limit == 0 || req.limit > MAX_LIMIT {
        return Err(OpenFdaError::InvalidRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    if let Paging::Skip(skip) = req.paging {
        if skip > MAX_SKIP {
            return Err(OpenFdaError::InvalidRequest(format!(
                "skip must be at most {MAX_SKIP}; page deeper with search_after"
            )));
        }
    }
    Ok(())
}
