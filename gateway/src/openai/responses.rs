//! OpenAI's Responses API: `POST responses` (whole or streamed), translated to
//! `generateContent` / `streamGenerateContent` on the chat service; `GET` and `DELETE
//! responses/{id}` over the responses the logging service keeps (`store`, true unless the
//! client says false), which also give `previous_response_id` its conversation.

use std::collections::HashMap;
use std::convert::Infallible;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use gb_proto::chat::v1 as pb;
use gb_proto::logging::v1 as logging;
use serde_json::{Value, json};

use super::chat::sse_response;
use super::responses_request::{
    Previous, ResponsesRequest, referenced_items, remote_urls, resolve_references, to_gemini,
};
use super::responses_response::{Echo, Event, ResponseTranslator, response_of_item};
use super::{parse_body, unix_now};
use crate::auth::Caller;
use crate::errors::{openai_error, openai_error_body, openai_error_with_param, openai_from_status};
use crate::state::GatewayState;

/// What the response object repeats of the request.
fn echo(request: &ResponsesRequest) -> Echo {
    Echo {
        model: request.model.clone(),
        instructions: request.instructions.clone(),
        max_output_tokens: request.max_output_tokens,
        temperature: request.temperature,
        top_p: request.top_p,
        tools: json!(request.tools.clone().unwrap_or_default()),
        tool_choice: request.tool_choice.clone().unwrap_or(json!("auto")),
        parallel_tool_calls: request.parallel_tool_calls.unwrap_or(true),
        previous_response_id: request.previous_response_id.clone(),
        reasoning: request
            .reasoning
            .clone()
            .unwrap_or(json!({"effort": null, "summary": null})),
        text: request
            .text
            .clone()
            .unwrap_or(json!({"format": {"type": "text"}})),
        store: request.keeps(),
        metadata: request.metadata.clone().unwrap_or(json!({})),
    }
}

/// A kept response of this caller, if there is one.
async fn stored(
    state: &GatewayState,
    caller: &Caller,
    id: &str,
) -> Result<Option<logging::StoredResponse>, tonic::Status> {
    let stored = state
        .logging
        .clone()
        .get_response(logging::ResponseKey {
            id: id.to_owned(),
            client: caller.name.clone(),
        })
        .await;
    match stored {
        Ok(stored) => Ok(Some(stored.into_inner())),
        Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
        Err(status) => Err(status),
    }
}

/// The stored conversation a `previous_response_id` names, or the client's error.
async fn previous(
    state: &GatewayState,
    caller: &Caller,
    id: Option<&str>,
) -> Result<Previous, Response> {
    let Some(id) = id else {
        return Ok(Previous::default());
    };
    match stored(state, caller, id).await {
        Ok(Some(stored)) => {
            let response: Value = serde_json::from_slice(&stored.response).unwrap_or_default();
            Ok(Previous::from_stored(&stored.contents, &response))
        }
        Ok(None) => Err(openai_error_with_param(
            400,
            &format!("Previous response with id {id:?} not found."),
            Some("previous_response_id"),
        )),
        Err(status) => Err(openai_from_status(&status)),
    }
}

/// Puts the items an `item_reference` names (items of this caller's kept responses: the AI
/// SDK refers to them so) in place of their references.
async fn resolve(
    state: &GatewayState,
    caller: &Caller,
    request: &mut ResponsesRequest,
) -> Result<(), Response> {
    let mut responses: Vec<String> = referenced_items(request)
        .iter()
        .filter_map(|id| response_of_item(id))
        .collect();
    responses.sort();
    responses.dedup();
    let mut items = HashMap::new();
    for id in responses {
        let Some(kept) = stored(state, caller, &id)
            .await
            .map_err(|status| openai_from_status(&status))?
        else {
            continue;
        };
        let response: Value = serde_json::from_slice(&kept.response).unwrap_or_default();
        for item in response["output"].as_array().into_iter().flatten() {
            if let Some(item_id) = item["id"].as_str() {
                items.insert(item_id.to_owned(), item.clone());
            }
        }
    }
    resolve_references(request, &items)
        .map_err(|invalid| openai_error_with_param(400, &invalid.message, invalid.param.as_deref()))
}

/// Keeps a finished response and its conversation for its caller.
async fn keep(
    state: &GatewayState,
    caller: &Caller,
    response: &Value,
    translator: &ResponseTranslator,
    mut contents: Vec<Value>,
) -> Result<(), tonic::Status> {
    contents.push(translator.model_content());
    state
        .logging
        .clone()
        .put_response(logging::StoredResponse {
            id: response["id"].as_str().unwrap_or_default().to_owned(),
            client: caller.name.clone(),
            created_at_ms: gb_runtime::now_ms(),
            response: Bytes::from(response.to_string()),
            contents: Bytes::from(Value::Array(contents).to_string()),
        })
        .await
        .map(|_| ())
}

pub async fn create(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let mut request: ResponsesRequest = match parse_body(&body) {
        Ok(request) => request,
        Err(answer) => return answer,
    };
    if request.model.trim().is_empty() {
        return openai_error_with_param(400, "model is required", Some("model"));
    }
    if request.background == Some(true) {
        return openai_error_with_param(
            400,
            "background responses are not supported by this gateway",
            Some("background"),
        );
    }
    let previous = match previous(&state, &caller, request.previous_response_id.as_deref()).await {
        Ok(previous) => previous,
        Err(answer) => return answer,
    };
    if let Err(answer) = resolve(&state, &caller, &mut request).await {
        return answer;
    }
    let fetched = match state
        .translation
        .get()
        .media
        .fetch_all(remote_urls(&request))
        .await
    {
        Ok(fetched) => fetched,
        Err(message) => return openai_error(400, &message),
    };
    let gemini = match to_gemini(&request, &request.model, &previous, &fetched) {
        Ok(gemini) => gemini,
        Err(invalid) => {
            return openai_error_with_param(400, &invalid.message, invalid.param.as_deref());
        }
    };
    caller.label(request.user.as_deref());
    let contents = gemini["contents"].as_array().cloned().unwrap_or_default();
    let grpc_request = pb::GeminiRequest {
        context: caller.call_context(),
        model: request.model.clone(),
        body: Bytes::from(gemini.to_string()),
    };
    let id = format!("resp_{}", uuid::Uuid::new_v4().simple());
    let translator = ResponseTranslator::new(id, unix_now(), echo(&request));
    if !request.stream {
        let mut translator = translator.without_events();
        let answer = match state.chat.generate_content(grpc_request).await {
            Ok(answer) => answer.into_inner(),
            Err(status) => return openai_from_status(&status),
        };
        let answer = match super::upstream_json(&answer.body) {
            Ok(answer) => answer,
            Err(malformed) => return malformed,
        };
        translator.translate(&answer);
        translator.finish();
        let response = translator.response();
        if request.keeps()
            && let Err(status) = keep(&state, &caller, &response, &translator, contents).await
        {
            return openai_from_status(&status);
        }
        return axum::Json(response).into_response();
    }
    let chunks = match state.chat.stream_generate_content(grpc_request).await {
        Ok(chunks) => chunks.into_inner(),
        Err(status) => return openai_from_status(&status),
    };
    let stream = StreamState {
        chunks,
        translator,
        finished: false,
        keep: request
            .keeps()
            .then(|| (state.clone(), caller.clone(), contents)),
    };
    sse_response(Body::from_stream(events(stream)))
}

struct StreamState {
    chunks: gb_proto::chat::ChunkStream,
    translator: ResponseTranslator,
    finished: bool,
    /// Where and for whom the finished response is kept (`store`), with its conversation.
    keep: Option<(GatewayState, Caller, Vec<Value>)>,
}

fn sse_event((name, data): &Event) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// The typed events of a stream as the chunks come; the response is kept before
/// `response.completed` goes out, so that a client may name it as the previous at once. A
/// stream that fails ends with an `error` event.
fn events(state: StreamState) -> impl futures::Stream<Item = Result<Bytes, Infallible>> {
    futures::stream::unfold(state, |mut state| async move {
        if state.finished {
            return None;
        }
        let events: Vec<Event> = match state.chunks.next().await {
            Some(Ok(chunk)) => match super::upstream_chunk_json(&chunk.data) {
                Ok(gemini) => state.translator.translate(&gemini),
                Err(error) => {
                    state.finished = true;
                    state.translator.error(&error)
                }
            },
            Some(Err(status)) => {
                state.finished = true;
                state.translator.error(&openai_error_body(&status))
            }
            None => {
                state.finished = true;
                let closing = state.translator.finish();
                match state.keep.take() {
                    Some((gateway, caller, contents)) => {
                        let response = state.translator.response();
                        match keep(&gateway, &caller, &response, &state.translator, contents).await
                        {
                            Ok(()) => closing,
                            Err(status) => state.translator.error(&openai_error_body(&status)),
                        }
                    }
                    None => closing,
                }
            }
        };
        Some((events, state))
    })
    .flat_map(|events| futures::stream::iter(events.into_iter().map(|event| Ok(sse_event(&event)))))
}

pub async fn retrieve(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    match stored(&state, &caller, &id).await {
        Ok(Some(kept)) => {
            let mut response = Response::new(Body::from(kept.response));
            response.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Ok(None) => openai_error(404, &format!("No response found with id {id:?}.")),
        Err(status) => openai_from_status(&status),
    }
}

pub async fn delete(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let deleted = state
        .logging
        .clone()
        .delete_response(logging::ResponseKey {
            id: id.clone(),
            client: caller.name.clone(),
        })
        .await;
    match deleted {
        Ok(_) => {
            axum::Json(json!({"id": id, "object": "response", "deleted": true})).into_response()
        }
        Err(status) if status.code() == tonic::Code::NotFound => {
            openai_error(404, &format!("No response found with id {id:?}."))
        }
        Err(status) => openai_from_status(&status),
    }
}
