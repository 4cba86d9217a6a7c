//! Limits on a request's head, checked before its body is read: a URI over [`MAX_URI_BYTES`]
//! is a 414, headers over [`MAX_HEADER_BYTES`] in all a 431. Both are well below hyper's own
//! limits (a URI of 64 KiB, a head of ~400 KiB), where hyper answers by itself with no body:
//! here the answer is plain text that the router gives the client family's shape.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Google's front ends refuse URLs of a few KiB; no client of this gateway needs more than this.
pub const MAX_URI_BYTES: usize = 16 * 1024;

/// Names and values of every header together, as nginx's and Google's front ends allow.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

pub async fn check_head(request: Request, next: impl AsyncFnOnce(Request) -> Response) -> Response {
    let uri_bytes = request
        .uri()
        .path_and_query()
        .map_or(0, |path| path.as_str().len());
    if uri_bytes > MAX_URI_BYTES {
        return (
            StatusCode::URI_TOO_LONG,
            format!("the request URI is over {} KiB", MAX_URI_BYTES / 1024),
        )
            .into_response();
    }
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "the request headers are over {} KiB",
                MAX_HEADER_BYTES / 1024
            ),
        )
            .into_response();
    }
    next(request).await
}
