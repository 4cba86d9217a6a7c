//! Errors in the client's own shape: Google's `{"error":{"code","message","status"}}` on the
//! Gemini and admin routes (built by `gb_proto::error::google_error_json`, the one place),
//! OpenAI's `{"error":{"message","type","param","code"}}` on OpenAI routes and Anthropic's
//! `{"type":"error","error":{"type","message"}}` on the Messages routes (both built here, the
//! one place). A gRPC status from a service maps back through the shared code table; when it
//! carries the upstream's own error, that status and body are what the client gets.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gb_proto::chat::{http_status, upstream_error};
use gb_proto::error::google_error_json;

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
    json_response(status, google_error_json(status, message))
}

/// An OpenAI-shaped error answer.
pub fn openai_error(status: u16, message: &str) -> Response {
    openai_error_with_param(status, message, None)
}

/// OpenAI's error JSON: the one place it is built.
pub(crate) fn openai_error_json(
    status: u16,
    message: &str,
    param: Option<&str>,
) -> serde_json::Value {
    let kind = match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    };
    serde_json::json!({
        "error": {"message": message, "type": kind, "param": param, "code": openai_code(status, message)}
    })
}

/// OpenAI's string `code` for an error (its clients match on these, not on the status).
fn openai_code(status: u16, message: &str) -> Option<&'static str> {
    Some(match status {
        401 => "invalid_api_key",
        403 => "permission_denied",
        404 if message.to_ascii_lowercase().contains("model") => "model_not_found",
        404 => "not_found",
        413 | 414 | 431 => "request_too_large",
        429 => "rate_limit_exceeded",
        500..=599 => "server_error",
        // Other client errors: OpenAI's own code is null unless it names a specific check.
        _ => return None,
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
    openai_error_json(http_status(status), status.message(), None)
}

/// A failed call whose status is the gateway's problem (not the upstream's answer) is logged
/// once, here.
fn log_if_internal(status: &tonic::Status, http_status: u16) {
    if http_status >= 500 && upstream_error(status).is_none() {
        tracing::error!(code = ?status.code(), message = status.message(), "service call failed");
    }
}

/// `Retry-After` from the upstream's delay, when the status carries one.
fn with_retry_after(mut response: Response, status: &tonic::Status) -> Response {
    if let Some(seconds) = upstream_error(status).and_then(|upstream| upstream.retry_after_seconds)
    {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// A failed call whose status carries no upstream error never reached a chat handler (the
/// service was unreachable, or refused the caller): the gateway writes that request's row.
fn marked_if_unrecorded(mut response: Response, status: &tonic::Status) -> Response {
    if upstream_error(status).is_none() {
        response
            .extensions_mut()
            .insert(crate::request_log::CallNotRecorded);
    }
    response
}

/// A service's status as a Google-shaped answer (the upstream's own body when it has one).
pub fn google_from_status(status: &tonic::Status) -> Response {
    let code = http_status(status);
    log_if_internal(status, code);
    let response = match upstream_error(status) {
        Some(upstream) => {
            let mut response = json_response(code, upstream.body);
            // A relay's own page (HTML, text) keeps its type: it is not JSON.
            if let Some(content_type) = upstream
                .content_type
                .as_deref()
                .and_then(|content_type| HeaderValue::from_str(content_type).ok())
            {
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, content_type);
                response.extensions_mut().insert(UpstreamsOwnBody);
            }
            response
        }
        None => google_error(code, status.message()),
    };
    marked_if_unrecorded(with_retry_after(response, status), status)
}

/// A service's status as an OpenAI-shaped answer (the upstream's status, `Retry-After` kept).
pub fn openai_from_status(status: &tonic::Status) -> Response {
    let code = http_status(status);
    log_if_internal(status, code);
    let response = with_retry_after(openai_error(code, status.message()), status);
    marked_if_unrecorded(response, status)
}

/// Anthropic's status for an HTTP status: Google's 503 ("the model is overloaded") is
/// Anthropic's 529, which its clients retry.
pub fn anthropic_status(status: u16) -> u16 {
    if status == 503 { 529 } else { status }
}

/// Anthropic's error JSON: the one place it is built.
pub(crate) fn anthropic_error_json(status: u16, message: &str) -> serde_json::Value {
    let kind = match status {
        400 | 405 | 415 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    };
    serde_json::json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// An Anthropic-shaped error answer.
pub fn anthropic_error(status: u16, message: &str) -> Response {
    let status = anthropic_status(status);
    json_response(status, anthropic_error_json(status, message).to_string())
}

/// The Anthropic-shaped error of a failed service call, as a JSON value (for stream events).
pub fn anthropic_error_body(status: &tonic::Status) -> serde_json::Value {
    anthropic_error_json(anthropic_status(http_status(status)), status.message())
}

/// A service's status as an Anthropic-shaped answer (the upstream's status, `retry-after` kept).
pub fn anthropic_from_status(status: &tonic::Status) -> Response {
    let code = http_status(status);
    log_if_internal(status, code);
    let response = with_retry_after(anthropic_error(code, status.message()), status);
    marked_if_unrecorded(response, status)
}

/// Marks an error answer whose body is the upstream's own page, passed on as it is (not
/// reshaped into JSON like the plain-text errors axum makes).
#[derive(Clone, Copy)]
pub struct UpstreamsOwnBody;

/// Errors of the gateway's own making on Google-shaped routes.
#[derive(Debug)]
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
        GoogleError(http_status(&status), status.message().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gb_proto::chat::ChatError;

    async fn body_json(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or_default()
    }

    #[tokio::test]
    async fn an_upstream_429_stays_a_429_with_its_body_and_retry_after() {
        let mut upstream = ChatError::local(429, "quota");
        upstream.body = bytes::Bytes::from_static(br#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[]}}"#);
        upstream.retry_after_seconds = Some(37);
        let status = tonic::Status::from(upstream);

        let google = google_from_status(&status);
        assert_eq!(google.status(), 429);
        assert_eq!(google.headers()[header::RETRY_AFTER], "37");
        let body = body_json(google).await;
        assert_eq!(
            body["error"]["details"],
            serde_json::json!([]),
            "the upstream's own body"
        );

        let openai = openai_from_status(&status);
        assert_eq!(openai.status(), 429);
        assert_eq!(openai.headers()[header::RETRY_AFTER], "37");
        let body = body_json(openai).await;
        assert_eq!(body["error"]["type"], "rate_limit_error");
        assert_eq!(body["error"]["message"], "quota");
    }

    #[tokio::test]
    async fn a_plain_status_maps_through_the_table_in_each_shape() {
        let status = tonic::Status::not_found("no such key");
        let google = google_from_status(&status);
        assert_eq!(google.status(), 404);
        assert_eq!(
            body_json(google).await,
            serde_json::json!({"error": {"code": 404, "message": "no such key", "status": "NOT_FOUND"}})
        );
        let openai = body_json(openai_from_status(&status)).await;
        assert_eq!(openai["error"]["type"], "not_found_error");
        assert_eq!(openai["error"]["code"], "not_found");
        let unavailable = tonic::Status::unavailable("keys service down");
        assert_eq!(google_from_status(&unavailable).status(), 503);
        assert_eq!(GoogleError::from(unavailable).0, 503);
    }

    #[tokio::test]
    async fn anthropic_errors_keep_the_status_and_make_overloaded_a_529() {
        let mut upstream = ChatError::local(429, "quota");
        upstream.retry_after_seconds = Some(9);
        let limited = anthropic_from_status(&tonic::Status::from(upstream));
        assert_eq!(limited.status(), 429);
        assert_eq!(limited.headers()[header::RETRY_AFTER], "9");
        assert_eq!(
            body_json(limited).await,
            serde_json::json!({"type": "error", "error": {"type": "rate_limit_error", "message": "quota"}})
        );
        let overloaded = anthropic_from_status(&tonic::Status::from(ChatError::local(
            503,
            "The model is overloaded.",
        )));
        assert_eq!(overloaded.status(), 529);
        assert_eq!(
            body_json(overloaded).await["error"]["type"],
            "overloaded_error"
        );
        for (status, kind) in [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (413, "request_too_large"),
            (500, "api_error"),
        ] {
            assert_eq!(anthropic_error_json(status, "m")["error"]["type"], kind);
        }
    }

    #[test]
    fn openai_error_types_follow_the_status() {
        for (status, kind) in [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (413, "invalid_request_error"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (503, "api_error"),
        ] {
            assert_eq!(
                openai_error_json(status, "m", None)["error"]["type"],
                kind,
                "{status}"
            );
        }
        assert_eq!(
            openai_error_json(400, "bad", Some("model"))["error"]["param"],
            "model"
        );
        for (status, message, code) in [
            (
                401,
                "Incorrect API key",
                serde_json::json!("invalid_api_key"),
            ),
            (
                404,
                "The model \"x\" does not exist",
                serde_json::json!("model_not_found"),
            ),
            (
                404,
                "no route for GET /v1/x",
                serde_json::json!("not_found"),
            ),
            (429, "quota", serde_json::json!("rate_limit_exceeded")),
            (503, "down", serde_json::json!("server_error")),
            (400, "bad", serde_json::Value::Null),
        ] {
            assert_eq!(
                openai_error_json(status, message, None)["error"]["code"],
                code,
                "{status} {message}"
            );
        }
    }
}
