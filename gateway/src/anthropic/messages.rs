//! `POST messages` (whole or streamed), `POST messages/count_tokens` and `GET models` for
//! Anthropic clients: translated to `generateContent`, `streamGenerateContent` and
//! `countTokens` on the chat service, which runs them through the pool like any other call.

use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use gb_proto::chat::v1 as pb;
use serde_json::{Value, json};

use super::request::{MessagesRequest, remote_urls, to_gemini};
use super::response::{Event, StreamTranslator, ping, to_message};
use super::{ids, parse_body};
use crate::auth::Caller;
use crate::errors::{
    anthropic_error, anthropic_error_body, anthropic_error_json, anthropic_from_status,
};
use crate::openai::chat::sse_response;
use crate::state::GatewayState;

/// A `ping` after this long without a chunk, so that clients and proxies keep the stream.
const PING_INTERVAL: Duration = Duration::from_secs(10);

/// A request read and translated: the Gemini model that serves it and its body.
struct Translated {
    request: MessagesRequest,
    model: String,
    body: Value,
}

/// Reads, checks and translates a Messages request (its remote media fetched).
async fn translate(state: &GatewayState, body: &Bytes) -> Result<Translated, Response> {
    let request: MessagesRequest = parse_body(body)?;
    if request.model.trim().is_empty() {
        return Err(anthropic_error(400, "model: a model name is required"));
    }
    let translation = state.translation.get();
    let model = translation
        .anthropic_models
        .map(&request.model)
        .unwrap_or(&request.model)
        .to_owned();
    let fetched = translation
        .media
        .fetch_all(remote_urls(&request))
        .await
        .map_err(|message| anthropic_error(400, &message))?;
    let body = to_gemini(&request, &model, &fetched)
        .map_err(|invalid| anthropic_error(400, &invalid.0))?;
    Ok(Translated {
        request,
        model,
        body,
    })
}

pub async fn create(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let translated = match translate(&state, &body).await {
        Ok(translated) => translated,
        Err(answer) => return answer,
    };
    let Translated {
        request,
        model,
        body,
    } = translated;
    if request.max_tokens.is_none() {
        return anthropic_error(400, "max_tokens: Field required");
    }
    caller.label(
        request
            .metadata
            .as_ref()
            .and_then(|metadata| metadata["user_id"].as_str()),
    );
    let grpc_request = pb::GeminiRequest {
        context: caller.call_context(),
        model,
        body: Bytes::from(body.to_string()),
    };
    let id = ids::message_id();
    let thinking = request.wants_thinking();
    if !request.stream {
        return match state.chat.generate_content(grpc_request).await {
            Ok(answer) => match serde_json::from_slice::<Value>(&answer.into_inner().body) {
                Ok(answer) => {
                    axum::Json(to_message(&answer, &id, &request.model, thinking)).into_response()
                }
                Err(error) => anthropic_error(502, &crate::openai::malformed_answer(&error)),
            },
            Err(status) => anthropic_from_status(&status),
        };
    }
    let chunks = match state.chat.stream_generate_content(grpc_request).await {
        Ok(chunks) => chunks.into_inner(),
        Err(status) => return anthropic_from_status(&status),
    };
    let translator = StreamTranslator::new(id, request.model, thinking);
    sse_response(Body::from_stream(events(chunks, translator)))
}

/// One SSE event, named as Anthropic names them.
fn sse_event((name, data): &Event) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

struct StreamState {
    chunks: gb_proto::chat::ChunkStream,
    translator: StreamTranslator,
    finished: bool,
}

/// The events of a translated stream, forwarded as the chunks come, a `ping` whenever the
/// upstream is silent for `PING_INTERVAL`; a stream that fails ends with an `error` event
/// (the pool retried it on other keys before its first chunk; after that nothing is sent
/// twice).
fn events(
    chunks: gb_proto::chat::ChunkStream,
    translator: StreamTranslator,
) -> impl futures::Stream<Item = Result<Bytes, Infallible>> {
    let state = StreamState {
        chunks,
        translator,
        finished: false,
    };
    futures::stream::unfold(state, |mut state| async move {
        if state.finished {
            return None;
        }
        // `next` is cancel-safe: a ping loses no chunk.
        let events: Vec<Event> =
            match tokio::time::timeout(PING_INTERVAL, state.chunks.next()).await {
                Err(_silent) => vec![ping()],
                Ok(Some(Ok(chunk))) => match serde_json::from_slice::<Value>(&chunk.data) {
                    Ok(gemini) => state.translator.translate(&gemini),
                    Err(error) => {
                        state.finished = true;
                        let message = crate::openai::malformed_answer(&error);
                        vec![("error", anthropic_error_json(502, &message))]
                    }
                },
                Ok(Some(Err(status))) => {
                    state.finished = true;
                    vec![("error", anthropic_error_body(&status))]
                }
                Ok(None) => {
                    state.finished = true;
                    state.translator.finish()
                }
            };
        Some((events, state))
    })
    .flat_map(|events| futures::stream::iter(events.into_iter().map(|event| Ok(sse_event(&event)))))
}

pub async fn count_tokens(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let Translated { model, body, .. } = match translate(&state, &body).await {
        Ok(translated) => translated,
        Err(answer) => return answer,
    };
    let mut inner = body;
    inner["model"] = json!(format!("models/{model}"));
    let grpc_request = pb::GeminiRequest {
        context: caller.call_context(),
        model,
        body: Bytes::from(json!({"generateContentRequest": inner}).to_string()),
    };
    match state.chat.count_tokens(grpc_request).await {
        Ok(answer) => match serde_json::from_slice::<Value>(&answer.into_inner().body) {
            Ok(counted) => axum::Json(json!({
                "input_tokens": counted["totalTokens"].as_u64().unwrap_or(0)
            }))
            .into_response(),
            Err(error) => anthropic_error(502, &crate::openai::malformed_answer(&error)),
        },
        Err(status) => anthropic_from_status(&status),
    }
}

/// `GET models` in Anthropic's shape: the models the pool serves (a Gemini name is a model
/// an Anthropic client may ask for as it is).
pub async fn list_models(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let names = match crate::openai::models::model_names(
        &state,
        &caller,
        anthropic_from_status,
        anthropic_error,
    )
    .await
    {
        Ok(names) => names,
        Err(answer) => return answer,
    };
    let data: Vec<Value> = names
        .iter()
        .map(|name| {
            json!({"type": "model", "id": name, "display_name": name, "created_at": "1970-01-01T00:00:00Z"})
        })
        .collect();
    axum::Json(json!({
        "data": data,
        "has_more": false,
        "first_id": names.first(),
        "last_id": names.last(),
    }))
    .into_response()
}
