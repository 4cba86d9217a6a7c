//! Request bodies, read once and whole before a handler sees them: refused at once when their
//! declared size is over the limit (nothing read), read into one buffer of the declared size,
//! and cut off when the whole body (not each of its frames) takes longer than
//! `BODY_READ_TIMEOUT`. Errors are plain text here; the router gives them the family's shape.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use http_body_util::BodyExt;

/// Gemini requests may carry inline media: the limit is well above Google's own 20 MB.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// How long a whole body may take, from the gateway's settings at start; and the owner of
/// the tasks that discard what a refused body still sends.
#[derive(Clone)]
pub struct BodyLimits {
    pub read_timeout: Duration,
    pub tasks: gb_runtime::tasks::Tasks,
}

fn too_large() -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the request body is over {} MB",
            MAX_BODY_BYTES / (1024 * 1024)
        ),
    )
        .into_response()
}

pub async fn read_whole_body(
    limits: &BodyLimits,
    request: Request,
    next: impl AsyncFnOnce(Request) -> Response,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let (parts, body) = request.into_parts();
    if declared.is_some_and(|size| size > MAX_BODY_BYTES as u64) {
        // Answered at once, from the header. What the client still sends is read and dropped
        // (never kept), for at most the body timeout, so that it reads the answer instead of
        // a reset connection.
        drain(limits, body);
        return too_large();
    }
    let capacity = declared.map_or(0, |size| size as usize);
    let read = tokio::time::timeout(limits.read_timeout, collect(body, capacity)).await;
    let bytes = match read {
        Err(_) => {
            return (
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time",
            )
                .into_response();
        }
        Ok(Err(response)) => return response,
        Ok(Ok(bytes)) => bytes,
    };
    next(Request::from_parts(parts, Body::from(bytes.freeze()))).await
}

/// Reads and drops what a client still sends of a body refused before it was read (for at
/// most the body timeout), so that it reads the answer instead of a reset connection.
pub(crate) fn drain(limits: &BodyLimits, body: Body) {
    let limit = limits.read_timeout;
    let shutdown = limits.tasks.shutdown().clone();
    limits.tasks.spawn(async move {
        tokio::select! {
            _ = tokio::time::timeout(limit, discard(body)) => {}
            _ = shutdown.cancelled() => {}
        }
    });
}

/// Reads a body to its end, keeping nothing.
async fn discard(mut body: Body) {
    while let Some(Ok(_)) = body.frame().await {}
}

/// The body's frames into one buffer (of the declared size, when one was given).
async fn collect(mut body: Body, capacity: usize) -> Result<BytesMut, Response> {
    let mut buffer = BytesMut::with_capacity(capacity);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| {
            (
                StatusCode::BAD_REQUEST,
                format!("the request body could not be read: {error}"),
            )
                .into_response()
        })?;
        if let Ok(data) = frame.into_data() {
            if buffer.len() + data.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok(buffer)
}
