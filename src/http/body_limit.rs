//! Refuses a body whose declared length is over the limit, so the client reads the 413.
//!
//! Answering before the body is read is not enough: the server then closes a socket with unread
//! bytes, the kernel resets the connection, and a client still writing its body sees a broken
//! pipe instead of the answer (hyper has no lingering close). So a refused body is read and
//! thrown away first, as nginx's `lingering_close` does, within a size cap and a deadline;
//! beyond them the answer says `Connection: close` and the connection goes.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use crate::error::ApiError;
use crate::http::AppState;

/// The most a refused body is read for; a bigger one gets its connection closed.
const DRAIN_MAX_BYTES: u64 = 16 * 1024 * 1024;
/// How long a refused body may take to arrive before its connection is closed.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// Bodies that declare no length (chunked) are bounded further in by `RequestBodyLimitLayer`.
pub async fn refuse_oversized(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limit = u64::try_from(state.config.body_limit_bytes).unwrap_or(u64::MAX);
    let Some(length) = declared.filter(|&length| length > limit) else {
        return next.run(req).await;
    };
    let drained = length <= DRAIN_MAX_BYTES && drain(req).await;
    let mut response = ApiError::PayloadTooLarge.into_response();
    if !drained {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Reads the body to its end; false when it failed or took longer than the deadline.
async fn drain(req: Request) -> bool {
    let mut body = req.into_body().into_data_stream();
    let read_all = async {
        while let Some(chunk) = body.next().await {
            if chunk.is_err() {
                return false;
            }
        }
        true
    };
    tokio::time::timeout(DRAIN_DEADLINE, read_all)
        .await
        .unwrap_or(false)
}
