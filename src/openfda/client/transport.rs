//! One HTTP attempt and how its answer is classified: page, final error, refusal or retry.

use std::time::Duration;

use serde::de::DeserializeOwned;

use super::OpenFda;
use crate::openfda::types::{OpenFdaError, Page, Paging, Request};
use crate::openfda::wire::{Envelope, ErrorEnvelope};

/// How one attempt ended.
pub(super) enum Attempt<T> {
    Page(Page<T>),
    /// Not retried; upstream is healthy (400, bad-query 500, unparseable 200).
    Final(OpenFdaError),
    /// Not retried; upstream refused us (401/403): says nothing about its health.
    Refused(String),
    Retry {
        kind: RetryKind,
        retry_after: Option<Duration>,
        message: String,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum RetryKind {
    RateLimited,
    Server,
    Timeout,
    Connect,
}

impl RetryKind {
    pub(super) fn label(self) -> &'static str {
        match self {
            RetryKind::RateLimited => "rate_limited",
            RetryKind::Server => "server_error",
            RetryKind::Timeout => "timeout",
            RetryKind::Connect => "connect_error",
        }
    }
}

/// The largest openFDA answer read, in bytes: a full page of 1000 records is a few MiB.
pub(super) const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Redirects followed within the configured origin.
const MAX_REDIRECTS: usize = 5;

/// Follows a redirect only to the configured scheme, host and port (a few hops at most); any
/// other is not followed, so its 3xx is answered as an upstream error. The API key rides in the
/// query string: it must not be sent to another host.
pub(super) fn same_origin_redirects(origin: url::Origin) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() < MAX_REDIRECTS && attempt.url().origin() == origin {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// The body read chunk by chunk, refused past `max` bytes (declared or sent) without reading on.
async fn read_capped(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Result<String, usize>, reqwest::Error> {
    if let Some(declared) = response.content_length() {
        if declared > max as u64 {
            return Ok(Err(max));
        }
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > max {
            return Ok(Err(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Ok(String::from_utf8_lossy(&body).into_owned()))
}

impl OpenFda {
    pub(super) async fn attempt<T: DeserializeOwned>(
        &self,
        req: &Request,
        timeout: Duration,
    ) -> Attempt<T> {
        let url = format!("{}{}", self.inner.base, req.endpoint.path());
        let mut params: Vec<(&str, String)> = Vec::with_capacity(5);
        if let Some(search) = &req.search {
            params.push(("search", search.to_string()));
        }
        if let Some(sort) = req.sort {
            params.push(("sort", sort.as_param().to_string()));
        }
        params.push(("limit", req.limit.to_string()));
        match &req.paging {
            Paging::Skip(0) => {}
            Paging::Skip(n) => params.push(("skip", n.to_string())),
            Paging::After(cursor) => params.push(("search_after", cursor.clone())),
        }
        if let Some(key) = &self.inner.api_key {
            params.push(("api_key", key.expose().to_string()));
        }
        let call = async {
            let response = self.inner.http.get(&url).query(&params).send().await?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let next = response
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_cursor);
            let body = read_capped(response, MAX_BODY_BYTES).await?;
            Ok::<_, reqwest::Error>((status, retry_after, next, body))
        };
        match tokio::time::timeout(timeout, call).await {
            Err(_) => Attempt::Retry {
                kind: RetryKind::Timeout,
                retry_after: None,
                message: format!("no answer within {} ms", timeout.as_millis()),
            },
            Ok(Err(e)) => {
                let kind = if e.is_timeout() {
                    RetryKind::Timeout
                } else {
                    RetryKind::Connect
                };
                // `without_url` keeps the query string (and the key) out of the message.
                let message = self.redact(&format!("{:#}", anyhow::Error::new(e.without_url())));
                Attempt::Retry {
                    kind,
                    retry_after: None,
                    message,
                }
            }
            Ok(Ok((_, _, _, Err(max)))) => Attempt::Final(OpenFdaError::Protocol(format!(
                "answer larger than {} MiB; not read",
                max / (1024 * 1024)
            ))),
            Ok(Ok((status, _, _, Ok(_)))) if status.is_redirection() => {
                Attempt::Final(OpenFdaError::Protocol(format!(
                    "HTTP {}: redirected off the configured openFDA host; not followed",
                    status.as_u16()
                )))
            }
            Ok(Ok((status, retry_after, next, Ok(body)))) => {
                self.classify(status.as_u16(), retry_after, next, &body)
            }
        }
    }

    fn classify<T: DeserializeOwned>(
        &self,
        status: u16,
        retry_after: Option<Duration>,
        next: Option<String>,
        body: &str,
    ) -> Attempt<T> {
        let error = serde_json::from_str::<ErrorEnvelope>(body)
            .ok()
            .map(|e| e.error);
        let code = error
            .as_ref()
            .and_then(|e| e.code.clone())
            .unwrap_or_default();
        let detail = || {
            let e = error.as_ref();
            let parts: Vec<&str> = [
                e.and_then(|e| e.message.as_deref()),
                e.and_then(|e| e.details.as_deref()),
            ]
            .into_iter()
            .flatten()
            .collect();
            let text = if parts.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status} {code}: {}", parts.join(" - "))
            };
            self.redact(&text.chars().take(300).collect::<String>())
        };
        match status {
            200 => match serde_json::from_str::<Envelope<T>>(body) {
                Ok(env) => {
                    let meta = env.meta.unwrap_or_default();
                    Attempt::Page(Page {
                        total: meta.results.map_or(env.results.len() as u64, |r| r.total),
                        results: env.results,
                        last_updated: meta.last_updated,
                        next,
                    })
                }
                Err(e) => {
                    Attempt::Final(OpenFdaError::Protocol(format!("unreadable results: {e}")))
                }
            },
            404 if code == "NOT_FOUND" => Attempt::Page(Page::empty()),
            400 => Attempt::Final(OpenFdaError::BadQuery(detail())),
            // openFDA answers 500 SERVER_ERROR with parser details for a query it cannot read.
            500 if code == "SERVER_ERROR"
                && error.as_ref().is_some_and(|e| e.details.is_some()) =>
            {
                Attempt::Final(OpenFdaError::BadQuery(detail()))
            }
            429 => Attempt::Retry {
                kind: RetryKind::RateLimited,
                retry_after,
                message: detail(),
            },
            401 | 403 => Attempt::Refused(format!("openFDA refused the request ({})", detail())),
            500..=599 => Attempt::Retry {
                kind: RetryKind::Server,
                retry_after,
                message: detail(),
            },
            _ => Attempt::Final(OpenFdaError::Protocol(detail())),
        }
    }
}

/// The `search_after` value of a `Link: <...>; rel="next"` header.
pub(super) fn next_cursor(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        if !params.contains("rel=\"next\"") && !params.contains("rel=next") {
            return None;
        }
        let target = target.trim().trim_start_matches('<').trim_end_matches('>');
        let url = url::Url::parse(target).ok()?;
        let cursor = url
            .query_pairs()
            .find(|(k, _)| k == "search_after")
            .map(|(_, v)| v.into_owned());
        cursor
    })
}
