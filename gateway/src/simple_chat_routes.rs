//! The original design's simple chat endpoints, `POST /gemini/chat` and `POST /openai/chat`:
//! `{"message": "...", "model": optional}` in, `{"response": "..."}` out, through the chat
//! service's `Chat` RPC. Errors come in Google's shape on the first, OpenAI's on the second.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use gb_proto::chat::v1 as pb;
use serde::Deserialize;

use crate::auth::Caller;
use crate::errors::{google_error, google_from_status, openai_error, openai_from_status};
use crate::state::GatewayState;

#[derive(Deserialize)]
struct SimpleChat {
    message: String,
    model: Option<String>,
}

#[derive(Clone, Copy)]
enum Shape {
    Google,
    OpenAi,
}

pub fn routes() -> Router<GatewayState> {
    Router::new()
        .route(
            "/gemini/chat",
            post(|state, caller, body| simple_chat(state, caller, body, Shape::Google)),
        )
        .route(
            "/openai/chat",
            post(|state, caller, body| simple_chat(state, caller, body, Shape::OpenAi)),
        )
}

async fn simple_chat(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
    shape: Shape,
) -> Response {
    let error = |status: u16, message: &str| match shape {
        Shape::Google => google_error(status, message),
        Shape::OpenAi => openai_error(status, message),
    };
    let request: SimpleChat = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(parse_error) => return error(400, &format!("invalid request body: {parse_error}")),
    };
    if request.message.trim().is_empty() {
        return error(400, "message must not be empty");
    }
    let answer = state
        .chat
        .clone()
        .chat(pb::ChatRequest {
            context: caller.call_context(),
            message: request.message,
            model: request.model,
        })
        .await;
    match answer {
        Ok(answer) => axum::Json(serde_json::json!({"response": answer.into_inner().response}))
            .into_response(),
        Err(status) => match shape {
            Shape::Google => google_from_status(&status),
            Shape::OpenAi => openai_from_status(&status),
        },
    }
}
