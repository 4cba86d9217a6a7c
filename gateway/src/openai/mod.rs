//! The OpenAI-format surface (`/v1/…` and `/hf/v1/…`: Chat Completions, the Responses API,
//! embeddings, images, speech), translated into Gemini-native calls on
//! the chat service, and the pass-through to Google's own OpenAI layer (`/openai/v1/…`).
//! Every answer and every error is in OpenAI's shape.

pub mod chat;
pub mod chat_request;
pub mod chat_response;
pub mod chat_types;
pub mod embeddings;
pub mod images;
pub mod json_schema;
pub mod media_fetch;
pub mod models;
pub mod passthrough;
pub mod responses;
pub mod responses_request;
pub mod responses_response;
pub mod speech;

use axum::Router;
use axum::body::Bytes;
use axum::response::Response;
use axum::routing::{get, post};
use serde::de::DeserializeOwned;

use crate::errors::openai_error;
use crate::state::GatewayState;

/// The translated routes, mounted under `/v1` and `/hf/v1`. (`GET models` is mounted by the
/// router, which shares that path with the Gemini-native list.)
pub fn routes() -> Router<GatewayState> {
    Router::new()
        .route("/chat/completions", post(chat::chat_completions))
        .route("/embeddings", post(embeddings::embeddings))
        .route("/images/generations", post(images::generate_images))
        .route("/audio/speech", post(speech::speech))
        .route("/responses", post(responses::create))
        .route(
            "/responses/{id}",
            get(responses::retrieve).delete(responses::delete),
        )
}

/// Google's OpenAI layer, mounted under `/openai/v1`.
pub fn passthrough_routes() -> Router<GatewayState> {
    Router::new()
        .route("/models", get(passthrough::models))
        .route("/chat/completions", post(passthrough::chat_completions))
        .route("/embeddings", post(passthrough::embeddings))
        .route("/images/generations", post(passthrough::images))
}

/// Parses a JSON body, or answers 400 in OpenAI's shape.
#[expect(clippy::result_large_err, reason = "the error is the ready answer")]
pub fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, Response> {
    if crate::json_limits::depth(body) > crate::json_limits::MAX_DEPTH {
        let message = format!(
            "invalid request body: nested deeper than {} levels",
            crate::json_limits::MAX_DEPTH
        );
        return Err(openai_error(400, &message));
    }
    serde_json::from_slice(body)
        .map_err(|error| openai_error(400, &format!("invalid request body: {error}")))
}

/// The message of an upstream answer that is not JSON (a 502: the gateway cannot translate
/// it, and an empty answer would hide the failure).
pub(crate) fn malformed_answer(error: &serde_json::Error) -> String {
    tracing::warn!(%error, "an upstream answer is not JSON");
    format!("the upstream answered with malformed JSON: {error}")
}

/// An upstream answer's JSON, or a 502 in OpenAI's shape.
#[expect(clippy::result_large_err, reason = "the error is the ready answer")]
pub fn upstream_json(body: &[u8]) -> Result<serde_json::Value, Response> {
    serde_json::from_slice(body).map_err(|error| openai_error(502, &malformed_answer(&error)))
}

/// An upstream stream chunk's JSON, or the OpenAI-shaped error event that ends the stream.
pub fn upstream_chunk_json(data: &[u8]) -> Result<serde_json::Value, serde_json::Value> {
    serde_json::from_slice(data)
        .map_err(|error| crate::errors::openai_error_json(502, &malformed_answer(&error), None))
}

pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}
