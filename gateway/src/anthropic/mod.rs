//! Anthropic's Messages API (`/v1/messages`, `/anthropic/v1/messages`), translated into
//! Gemini-native calls on the chat service like the OpenAI format, so that Claude Code and the
//! `anthropic` SDKs run on the pool. Every answer and every error is in Anthropic's shape.

pub mod ids;
pub mod messages;
pub mod request;
pub mod response;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;

use crate::errors::anthropic_error;
use crate::state::GatewayState;

/// The Messages routes, mounted under `/v1` and `/anthropic/v1`.
pub fn routes() -> Router<GatewayState> {
    Router::new()
        .route("/messages", post(messages::create))
        .route("/messages/count_tokens", post(messages::count_tokens))
}

/// Whether a request is an Anthropic client's: its path is a Messages route, or it names
/// itself the way Anthropic's SDKs do (`x-api-key` with `anthropic-version`).
pub fn family(request: &Request) -> bool {
    let path = request.uri().path();
    path.starts_with("/anthropic/")
        || path == "/v1/messages"
        || path.starts_with("/v1/messages/")
        || sdk_headers(request.headers())
}

/// `x-api-key` and `anthropic-version`: what Anthropic's SDKs send on every call.
pub fn sdk_headers(headers: &HeaderMap) -> bool {
    headers.contains_key("x-api-key") && headers.contains_key("anthropic-version")
}

/// Parses a JSON body, or answers 400 in Anthropic's shape.
#[expect(clippy::result_large_err, reason = "the error is the ready answer")]
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Response> {
    if crate::json_limits::depth(body) > crate::json_limits::MAX_DEPTH {
        let message = format!(
            "invalid request body: nested deeper than {} levels",
            crate::json_limits::MAX_DEPTH
        );
        return Err(anthropic_error(400, &message));
    }
    serde_json::from_slice(body)
        .map_err(|error| anthropic_error(400, &format!("invalid request body: {error}")))
}
