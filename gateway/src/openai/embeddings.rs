//! `POST embeddings`: a string → `embedContent`, a list → `batchEmbedContents`;
//! `encoding_format` float or base64 (little-endian f32, as OpenAI encodes it); `dimensions` →
//! `outputDimensionality`. Gemini reports no token count for embeddings: `usage` is an
//! estimate (about four characters a token).

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use gb_proto::chat::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

use super::parse_body;
use crate::auth::Caller;
use crate::errors::{openai_error, openai_error_with_param, openai_from_status};
use crate::state::GatewayState;

const DEFAULT_EMBEDDING_MODEL: &str = "gemini-embedding-001";

#[derive(Deserialize)]
struct EmbeddingRequest {
    input: Value,
    model: Option<String>,
    encoding_format: Option<String>,
    dimensions: Option<u32>,
}

fn inputs(input: &Value) -> Option<(Vec<String>, bool)> {
    match input {
        Value::String(text) => Some((vec![text.clone()], false)),
        Value::Array(items) if !items.is_empty() => {
            let texts: Option<Vec<String>> = items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect();
            Some((texts?, true))
        }
        _ => None,
    }
}

fn encode(values: &[Value], base64: bool) -> Value {
    if !base64 {
        return Value::Array(values.to_vec());
    }
    let mut bytes = Vec::with_capacity(values.len() * 4);
    for value in values {
        bytes.extend_from_slice(&(value.as_f64().unwrap_or(0.0) as f32).to_le_bytes());
    }
    json!(BASE64.encode(bytes))
}

/// What `encoding_format` asks for: base64 (true) or floats.
#[expect(clippy::result_large_err, reason = "the error is the ready answer")]
fn wants_base64(request: &EmbeddingRequest) -> Result<bool, Response> {
    match request.encoding_format.as_deref() {
        None | Some("float") => Ok(false),
        Some("base64") => Ok(true),
        Some(other) => Err(openai_error_with_param(
            400,
            &format!("encoding_format {other:?} is not float or base64"),
            Some("encoding_format"),
        )),
    }
}

/// The model the request names, as the client named it (the default embedding model when
/// none).
fn model_of(request: &EmbeddingRequest) -> String {
    let model = request
        .model
        .clone()
        .filter(|model| !model.is_empty())
        .unwrap_or_else(|| DEFAULT_EMBEDDING_MODEL.to_owned());
    model.strip_prefix("models/").unwrap_or(&model).to_owned()
}

/// One `embedContent` request body for a text.
fn content(text: &str, dimensions: Option<u32>) -> Value {
    let mut one = json!({"content": {"parts": [{"text": text}]}});
    if let Some(dimensions) = dimensions {
        one["outputDimensionality"] = json!(dimensions);
    }
    one
}

/// Embeds the texts: one `embedContent`, or a `batchEmbedContents` for a list.
async fn embed(
    state: &GatewayState,
    caller: &Caller,
    model: &str,
    texts: &[String],
    batch: bool,
    dimensions: Option<u32>,
) -> Result<tonic::Response<pb::GeminiResponse>, tonic::Status> {
    let chat = &state.chat;
    if !batch {
        let body = content(&texts[0], dimensions);
        return chat
            .embed_content(pb::GeminiRequest {
                context: caller.call_context(),
                model: model.to_owned(),
                body: Bytes::from(body.to_string()),
            })
            .await;
    }
    let requests: Vec<Value> = texts
        .iter()
        .map(|text| {
            let mut one = content(text, dimensions);
            one["model"] = json!(format!("models/{model}"));
            one
        })
        .collect();
    let body = json!({"requests": requests});
    chat.batch_embed_contents(pb::GeminiRequest {
        context: caller.call_context(),
        model: model.to_owned(),
        body: Bytes::from(body.to_string()),
    })
    .await
}

/// OpenAI's list of embeddings from Gemini's answer; a 502 when the count differs.
#[expect(clippy::result_large_err, reason = "the error is the ready answer")]
fn to_openai(
    answer: &Value,
    texts: &[String],
    batch: bool,
    model: &str,
    as_base64: bool,
) -> Result<Value, Response> {
    let vectors: Vec<&Value> = if batch {
        answer["embeddings"]
            .as_array()
            .map(|all| all.iter().collect())
            .unwrap_or_default()
    } else {
        vec![&answer["embedding"]]
    };
    if vectors.len() != texts.len() {
        return Err(openai_error(
            502,
            "the upstream answered with a different number of embeddings",
        ));
    }
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(index, vector)| {
            let values = vector["values"].as_array().cloned().unwrap_or_default();
            json!({"object": "embedding", "index": index, "embedding": encode(&values, as_base64)})
        })
        .collect();
    // Gemini reports no tokens for embeddings: about four characters a token.
    let tokens: usize = texts
        .iter()
        .map(|text| text.chars().count().div_ceil(4))
        .sum();
    Ok(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}
    }))
}

pub async fn embeddings(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let request: EmbeddingRequest = match parse_body(&body) {
        Ok(request) => request,
        Err(answer) => return answer,
    };
    let Some((texts, batch)) = inputs(&request.input) else {
        return openai_error_with_param(
            400,
            "input must be a string or a non-empty list of strings",
            Some("input"),
        );
    };
    let as_base64 = match wants_base64(&request) {
        Ok(as_base64) => as_base64,
        Err(refused) => return refused,
    };
    let model = model_of(&request);
    // OpenAI's embedding names (tools that know no other) are served by a Gemini model.
    let gemini_model = state
        .translation
        .get()
        .embedding_models
        .map(&model)
        .unwrap_or(&model)
        .to_owned();
    let answer = embed(
        &state,
        &caller,
        &gemini_model,
        &texts,
        batch,
        request.dimensions,
    )
    .await;
    let answer = match answer {
        Ok(answer) => match super::upstream_json(&answer.into_inner().body) {
            Ok(answer) => answer,
            Err(malformed) => return malformed,
        },
        Err(status) => return openai_from_status(&status),
    };
    match to_openai(&answer, &texts, batch, &model, as_base64) {
        Ok(list) => axum::Json(list).into_response(),
        Err(refused) => refused,
    }
}
