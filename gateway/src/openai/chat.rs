//! `POST chat/completions`: translated to `generateContent` / `streamGenerateContent`.

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use futures::StreamExt;
use gb_proto::chat::v1 as pb;
use serde_json::Value;

use super::chat_request::{ChatCompletionRequest, remote_image_urls, to_gemini};
use super::chat_response::{StreamTranslator, to_openai};
use super::{parse_body, unix_now};
use crate::auth::Caller;
use crate::errors::{openai_error, openai_error_body, openai_from_status};
use crate::state::GatewayState;

pub async fn chat_completions(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let mut request: ChatCompletionRequest = match parse_body(&body) {
        Ok(request) => request,
        Err(answer) => return answer,
    };
    if request.model.trim().is_empty() {
        return openai_error(400, "model is required");
    }
    // One version of the settings for the whole request.
    let translation = state.translation.get();
    if request.model == format!("{}-chat", translation.create_image_model) {
        return image_chat(&state, &caller, &request, &translation.create_image_model).await;
    }
    if let Err(crate::files::attachments::AttachmentError(status, message)) =
        crate::files::attachments::store_large(&state, &caller, &mut request.messages).await
    {
        return openai_error(status, &message);
    }
    let fetched = match translation
        .media
        .fetch_all(remote_image_urls(&request))
        .await
    {
        Ok(fetched) => fetched,
        Err(message) => return openai_error(400, &message),
    };
    let gemini = match to_gemini(&request, &fetched) {
        Ok(gemini) => gemini,
        Err(invalid) => {
            return crate::errors::openai_error_with_param(
                400,
                &invalid.message,
                invalid.param.as_deref(),
            );
        }
    };
    caller.label(request.user.as_deref());
    let grpc_request = pb::GeminiRequest {
        context: caller.call_context(),
        model: request.model.clone(),
        body: Bytes::from(gemini.to_string()),
    };
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let created = unix_now();
    let chat = &state.chat;
    if !request.stream {
        return match chat.generate_content(grpc_request).await {
            Ok(answer) => {
                let answer = match super::upstream_json(&answer.into_inner().body) {
                    Ok(answer) => answer,
                    Err(malformed) => return malformed,
                };
                axum::response::IntoResponse::into_response(axum::Json(to_openai(
                    &answer,
                    &id,
                    &request.model,
                    created,
                    translation.show_search_link,
                )))
            }
            Err(status) => openai_from_status(&status),
        };
    }
    let include_usage = request
        .stream_options
        .as_ref()
        .is_some_and(|options| options.include_usage);
    if let Some(interval) = translation.fake_stream_interval {
        let translator = StreamTranslator::new(id, request.model.clone(), created, include_usage)
            .show_sources(translation.show_search_link);
        return fake_stream(
            &state.tasks,
            chat.clone(),
            grpc_request,
            translator,
            interval,
        );
    }
    let chunks = match chat.stream_generate_content(grpc_request).await {
        Ok(chunks) => chunks.into_inner(),
        Err(status) => return openai_from_status(&status),
    };
    let translator = StreamTranslator::new(id, request.model.clone(), created, include_usage)
        .show_sources(translation.show_search_link);
    sse_response(Body::from_stream(translated_events(chunks, translator)))
}

struct StreamState {
    chunks: gb_proto::chat::ChunkStream,
    translator: StreamTranslator,
    finished: bool,
}

/// The SSE events of a translated stream: the chunks as they come, then the usage chunk (when
/// asked for) and `data: [DONE]`; a stream that fails ends with its error event instead.
fn translated_events(
    chunks: gb_proto::chat::ChunkStream,
    translator: StreamTranslator,
) -> impl futures::Stream<Item = Result<Bytes, std::convert::Infallible>> {
    let state = StreamState {
        chunks,
        translator,
        finished: false,
    };
    futures::stream::unfold(state, |mut state| async move {
        if state.finished {
            return None;
        }
        let events: Vec<Bytes> = match state.chunks.next().await {
            Some(Ok(chunk)) => match super::upstream_chunk_json(&chunk.data) {
                Ok(gemini) => state
                    .translator
                    .translate(&gemini)
                    .iter()
                    .map(sse_event)
                    .collect(),
                Err(error_event) => {
                    state.finished = true;
                    vec![sse_event(&error_event)]
                }
            },
            Some(Err(status)) => {
                state.finished = true;
                vec![sse_event(&openai_error_body(&status))]
            }
            None => {
                state.finished = true;
                let mut closing: Vec<Bytes> =
                    state.translator.finish().iter().map(sse_event).collect();
                closing.push(Bytes::from_static(b"data: [DONE]\n\n"));
                closing
            }
        };
        Some((events, state))
    })
    .flat_map(|events| futures::stream::iter(events.into_iter().map(Ok)))
}

/// A `text/event-stream` answer.
pub fn sse_response(body: Body) -> Response {
    let mut response = Response::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

pub fn sse_event(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

/// gemini-balance's `{CREATE_IMAGE_MODEL}-chat` model: the last user message is an Imagen
/// prompt (with its `{n:…}` and `{ratio:…}` directives); the images come back as markdown.
async fn image_chat(
    state: &GatewayState,
    caller: &Caller,
    request: &ChatCompletionRequest,
    image_model: &str,
) -> Response {
    let prompt = request
        .messages
        .iter()
        .rev()
        .find(|message| message.role == "user")
        .map(|message| match &message.content {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|part| part["text"].as_str())
                .collect::<Vec<_>>()
                .join(" "),
            _ => String::new(),
        })
        .unwrap_or_default();
    let (prompt, count, ratio) = super::images::prompt_directives(&prompt);
    if prompt.trim().is_empty() {
        return crate::errors::openai_error_with_param(
            400,
            "the last user message must describe the image",
            Some("messages"),
        );
    }
    let model = image_model.to_owned();
    let images = match super::images::imagen(
        state,
        caller,
        model,
        &prompt,
        count.unwrap_or(1),
        ratio.as_deref().unwrap_or("1:1"),
    )
    .await
    {
        Ok(images) => images,
        Err(answer) => return answer,
    };
    let content = images
        .iter()
        .map(|image| format!("![image]({})", image.data_url()))
        .collect::<Vec<_>>()
        .join("\n\n");
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let created = unix_now();
    if !request.stream {
        let completion = serde_json::json!({
            "id": id, "object": "chat.completion", "created": created, "model": request.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop", "logprobs": null}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        });
        return axum::response::IntoResponse::into_response(axum::Json(completion));
    }
    let chunk = |delta: Value, finish: Value| {
        sse_event(&serde_json::json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": request.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}]
        }))
    };
    let events = vec![
        chunk(
            serde_json::json!({"role": "assistant", "content": content}),
            Value::Null,
        ),
        chunk(serde_json::json!({}), serde_json::json!("stop")),
        Bytes::from_static(b"data: [DONE]\n\n"),
    ];
    sse_response(Body::from_stream(futures::stream::iter(
        events.into_iter().map(Ok::<_, std::convert::Infallible>),
    )))
}

/// gemini-balance's fake streaming: the answer comes from a plain call; until it arrives, an
/// empty chunk every `interval` keeps the client's connection (and its read timeout) alive.
fn fake_stream(
    tasks: &gb_runtime::tasks::Tasks,
    chat: gb_proto::chat::Chat,
    request: pb::GeminiRequest,
    mut translator: StreamTranslator,
    interval: std::time::Duration,
) -> Response {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(16);
    tasks.spawn(async move {
        let call = chat.generate_content(request);
        tokio::pin!(call);
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        let events: Vec<Bytes> = loop {
            tokio::select! {
                result = &mut call => break match result {
                    Ok(answer) => match super::upstream_chunk_json(&answer.into_inner().body) {
                        Ok(gemini) => {
                            let mut events: Vec<Bytes> = translator.translate(&gemini).iter().map(sse_event).collect();
                            events.extend(translator.finish().iter().map(sse_event));
                            events.push(Bytes::from_static(b"data: [DONE]\n\n"));
                            events
                        }
                        Err(error_event) => vec![sse_event(&error_event)],
                    },
                    Err(status) => vec![sse_event(&openai_error_body(&status))],
                },
                _ = ticker.tick() => {
                    if sender.send(sse_event(&translator.heartbeat())).await.is_err() {
                        return;
                    }
                }
            }
        };
        for event in events {
            if sender.send(event).await.is_err() {
                return;
            }
        }
    });
    let events = tokio_stream::wrappers::ReceiverStream::new(receiver)
        .map(Ok::<_, std::convert::Infallible>);
    sse_response(Body::from_stream(events))
}
