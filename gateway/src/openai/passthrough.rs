//! `/openai/v1/…`: forwarded to Google's own OpenAI-compatible layer (`{BASE_URL}/openai/…`)
//! with a pool key as Bearer, through the same attempt loop and classification as everything
//! else. Top-level nulls and `top_k` (which that layer refuses) are dropped; streams pass
//! through event by event; images use `PAID_KEY` and `CREATE_IMAGE_MODEL`.

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::Response;
use futures::StreamExt;
use gb_proto::chat::v1 as pb;
use serde_json::Value;

use super::chat::sse_response;
use super::parse_body;
use crate::auth::Caller;
use crate::errors::{json_response, openai_error_body, openai_from_status};
use crate::state::GatewayState;

/// The body without top-level nulls and `top_k`; the model it names.
fn cleaned(mut body: Value) -> (Value, String) {
    if let Some(object) = body.as_object_mut() {
        object.retain(|name, value| !value.is_null() && name != "top_k");
    }
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    (body, model)
}

async fn forward(state: &GatewayState, request: pb::OpenAiRequest) -> Response {
    match state.chat.clone().forward_open_ai(request).await {
        Ok(answer) => json_response(200, answer.into_inner().body),
        Err(status) => openai_from_status(&status),
    }
}

pub async fn models(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let request = pb::OpenAiRequest {
        context: caller.call_context(),
        method: "GET".into(),
        path: "models".into(),
        ..Default::default()
    };
    forward(&state, request).await
}

async fn post(
    state: &GatewayState,
    caller: &Caller,
    path: &str,
    body: &Bytes,
    paid: bool,
) -> Result<(pb::OpenAiRequest, bool), Response> {
    let parsed: Value = parse_body(body)?;
    let (mut parsed, model) = cleaned(parsed);
    let model = if paid {
        let image_model = state.translation.get().create_image_model.clone();
        parsed["model"] = Value::String(image_model.clone());
        image_model
    } else {
        model
    };
    let stream = parsed["stream"].as_bool().unwrap_or(false);
    let request = pb::OpenAiRequest {
        context: caller.call_context(),
        method: "POST".into(),
        path: path.into(),
        body: Bytes::from(parsed.to_string()),
        model,
        paid,
    };
    Ok((request, stream))
}

pub async fn chat_completions(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let (request, stream) = match post(&state, &caller, "chat/completions", &body, false).await {
        Ok(prepared) => prepared,
        Err(answer) => return answer,
    };
    if !stream {
        return forward(&state, request).await;
    }
    let chunks = match state.chat.clone().stream_open_ai(request).await {
        Ok(chunks) => chunks.into_inner(),
        Err(status) => return openai_from_status(&status),
    };
    // Events pass as they come; a failure ends the stream with an error event.
    let events = chunks.scan(false, |failed, item| {
        if *failed {
            return futures::future::ready(None);
        }
        let event = match item {
            Ok(chunk) => {
                let mut event = Vec::with_capacity(chunk.data.len() + 8);
                event.extend_from_slice(b"data: ");
                event.extend_from_slice(&chunk.data);
                event.extend_from_slice(b"\n\n");
                Bytes::from(event)
            }
            Err(status) => {
                *failed = true;
                super::chat::sse_event(&openai_error_body(&status))
            }
        };
        futures::future::ready(Some(Ok::<_, std::convert::Infallible>(event)))
    });
    sse_response(Body::from_stream(events))
}

pub async fn embeddings(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    match post(&state, &caller, "embeddings", &body, false).await {
        Ok((request, _)) => forward(&state, request).await,
        Err(answer) => answer,
    }
}

pub async fn images(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    match post(&state, &caller, "images/generations", &body, true).await {
        Ok((request, _)) => forward(&state, request).await,
        Err(answer) => answer,
    }
}
