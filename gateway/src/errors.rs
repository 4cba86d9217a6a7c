//! Errors in the client's own shape: Google's `{"error":{"code","message","status"}}` on the
//! Gemini and admin routes, OpenAI's `{"error":{"message","type","param","code"}}` on OpenAI
//! routes. A gRPC status from a service maps back through the shared status table; when it
//! carries the upstream's own error, that status and body are what the client gets.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gb_proto::chat::v1::UpstreamError;
use gb_runtime::status_mapping::{google_status_for_http, http_for_code};
use prost::Message;

/// A JSON answer with this status.
pub fn json_response(status: u16, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A Google-shaped error answer.
pub fn google_error(status: u16, message: &str) -> Response {
    let body = serde_json::json!({
        "error": {"code": status, "message": message, "status": google_status_for_http(status)}
    });
    json_response(status, body.to_string())
}

/// An OpenAI-shaped error answer.
pub fn openai_error(status: u16, message: &str) -> Response {
    openai_error_with_param(status, message, None)
}

fn openai_error_json(status: u16, message: &str, param: Option<&str>) -> serde_json::Value {
    let kind = match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    };
    serde_json::json!({
        "error": {"message": message, "type": kind, "param": param, "code": status.to_string()}
    })
}

/// An OpenAI-shaped error answer naming the offending parameter.
pub fn openai_error_with_param(status: u16, message: &str, param: Option<&str>) -> Response {
    json_response(
        status,
        openai_error_json(status, message, param).to_string(),
    )
}

/// The OpenAI-shaped error of a failed service call, as a JSON value (for stream events).
pub fn openai_error_body(status: &tonic::Status) -> serde_json::Value {
    let http_status = upstream_error(status)
        .and_then(|upstream| u16::try_from(upstream.http_status).ok())
        .unwrap_or_else(|| http_for_code(status.code()));
    openai_error_json(http_status, status.message(), None)
}

/// The upstream's status and body carried by a service's status, if any.
pub fn upstream_error(status: &tonic::Status) -> Option<UpstreamError> {
    if status.details().is_empty() {
        return None;
    }
    UpstreamError::decode(status.details()).ok()
}

/// A service's status as a Google-shaped answer (the upstream's own body when it has one).
pub fn google_from_status(status: &tonic::Status) -> Response {
    if let Some(upstream) = upstream_error(status) {
        let http_status = u16::try_from(upstream.http_status).unwrap_or(500);
        let mut response = json_response(http_status, upstream.body);
        if let Some(seconds) = upstream.retry_after_seconds {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        return response;
    }
    let http_status = http_for_code(status.code());
    if http_status >= 500 {
        tracing::error!(code = ?status.code(), message = status.message(), "service call failed");
    }
    google_error(http_status, status.message())
}

/// A service's status as an OpenAI-shaped answer (the upstream's status, `Retry-After` kept).
pub fn openai_from_status(status: &tonic::Status) -> Response {
    let upstream = upstream_error(status);
    let http_status = upstream
        .as_ref()
        .and_then(|upstream| u16::try_from(upstream.http_status).ok())
        .unwrap_or_else(|| http_for_code(status.code()));
    if http_status >= 500 && upstream.is_none() {
        tracing::error!(code = ?status.code(), message = status.message(), "service call failed");
    }
    let mut response = openai_error(http_status, status.message());
    if let Some(seconds) = upstream.and_then(|upstream| upstream.retry_after_seconds) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// Errors of the gateway's own making on Google-shaped routes.
pub struct GoogleError(pub u16, pub String);

impl IntoResponse for GoogleError {
    fn into_response(self) -> Response {
        google_error(self.0, &self.1)
    }
}

/// A query string that does not parse: 400, with axum's description of what is wrong.
impl From<axum::extract::rejection::QueryRejection> for GoogleError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        GoogleError(400, rejection.body_text())
    }
}

impl From<tonic::Status> for GoogleError {
    fn from(status: tonic::Status) -> Self {
        let http_status = upstream_error(&status)
            .and_then(|upstream| u16::try_from(upstream.http_status).ok())
            .unwrap_or_else(|| http_for_code(status.code()));
        GoogleError(http_status, status.message().to_owned())
    }
}
