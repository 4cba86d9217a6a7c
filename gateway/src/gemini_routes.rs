//! Gemini-native routes (`/v1beta/…` and `/gemini/v1beta/…`): the body passes through as bytes
//! to the chat service and back; streams are framed as SSE (`alt=sse`) or as the JSON array
//! that Google returns without it.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use futures::StreamExt;
use gb_proto::chat::v1 as pb;
use serde::Deserialize;

use crate::auth::Caller;
use crate::errors::{google_error, google_from_status, json_response};
use crate::state::GatewayState;
use gb_proto::chat::upstream_error;

pub fn routes() -> Router<GatewayState> {
    Router::new()
        .route("/models", get(list_models))
        .route("/models/{model_action}", get(get_model).post(model_action))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListQuery {
    page_size: Option<u32>,
    page_token: Option<String>,
}

pub(crate) async fn list_models(
    State(state): State<GatewayState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Query(query): Query<ListQuery>,
) -> Response {
    let request = pb::ListModelsRequest {
        context: caller.call_context(),
        page_size: query.page_size.unwrap_or(0),
        page_token: query.page_token.unwrap_or_default(),
    };
    match state.chat.clone().list_models(request).await {
        Ok(answer) => json_response(200, answer.into_inner().body),
        Err(status) => google_from_status(&status),
    }
}

pub(crate) async fn get_model(
    State(state): State<GatewayState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(model): Path<String>,
) -> Response {
    let request = pb::GetModelRequest {
        context: caller.call_context(),
        model,
    };
    match state.chat.clone().get_model(request).await {
        Ok(answer) => json_response(200, answer.into_inner().body),
        Err(status) => google_from_status(&status),
    }
}

fn wants_sse(query: Option<&str>) -> bool {
    query.is_some_and(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .any(|(name, value)| name == "alt" && value == "sse")
    })
}

pub(crate) async fn model_action(
    State(state): State<GatewayState>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(model_action): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let Some((model, action)) = model_action.rsplit_once(':') else {
        return google_error(404, &format!("unknown method for models/{model_action}"));
    };
    if let Err(problem) = crate::json_limits::check(&body) {
        return google_error(400, &format!("Invalid JSON payload received: {problem}"));
    }
    let request = pb::GeminiRequest {
        context: caller.call_context(),
        model: model.to_owned(),
        body,
    };
    let chat = &state.chat;
    let answer = match action {
        "generateContent" => chat.generate_content(request).await,
        "countTokens" => chat.count_tokens(request).await,
        "embedContent" => chat.embed_content(request).await,
        "batchEmbedContents" => chat.batch_embed_contents(request).await,
        "streamGenerateContent" => {
            return match chat.stream_generate_content(request).await {
                Ok(stream) => stream_answer(stream.into_inner(), wants_sse(query.as_deref())),
                Err(status) => google_from_status(&status),
            };
        }
        other => return google_error(404, &format!("unknown method {other:?} for models/{model}")),
    };
    match answer {
        Ok(answer) => json_response(200, answer.into_inner().body),
        Err(status) => google_from_status(&status),
    }
}

/// The error body a failed stream ends with: the upstream's own, or one in Google's shape.
fn stream_error_body(status: &tonic::Status) -> Bytes {
    match upstream_error(status) {
        Some(upstream) => upstream.body,
        None => gb_proto::error::google_error_json(
            gb_proto::chat::http_status(status),
            status.message(),
        ),
    }
}

/// Frames chunks as they arrive: SSE events, or the elements of a JSON array.
fn stream_answer(chunks: gb_proto::chat::ChunkStream, sse: bool) -> Response {
    let mut first = true;
    let mut ended = false;
    let framed = chunks
        .map(move |item| {
            let (data, is_error) = match item {
                Ok(chunk) => (chunk.data, false),
                Err(status) => (stream_error_body(&status), true),
            };
            let mut frame = Vec::with_capacity(data.len() + 8);
            if sse {
                frame.extend_from_slice(b"data: ");
                frame.extend_from_slice(&data);
                frame.extend_from_slice(b"\r\n\r\n");
            } else {
                frame.extend_from_slice(if first { b"[" } else { b",\r\n" });
                frame.extend_from_slice(&data);
            }
            first = false;
            (Bytes::from(frame), is_error)
        })
        // A failed stream ends after its error event.
        .take_while(move |(_, is_error)| {
            let keep = !ended;
            ended |= *is_error;
            futures::future::ready(keep)
        })
        .map(|(frame, _)| Ok::<_, std::convert::Infallible>(frame));
    let body = if sse {
        Body::from_stream(framed)
    } else {
        let closing = futures::stream::once(async { Ok(Bytes::from_static(b"]")) });
        Body::from_stream(framed.chain(closing))
    };
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    let content_type = if sse {
        "text/event-stream"
    } else {
        "application/json"
    };
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
