//! The `ChatService` gRPC contract: Gemini-native bodies through the attempt loop.

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use gb_proto::chat::v1 as pb;
use gb_proto::chat::v1::chat_service_server::ChatService;
use gb_runtime::status_mapping::{code_for_http, google_status_for_http};
use gb_runtime::upstream::{FailureClass, UpstreamFailure, google_error_body};
use prost::Message;
use tonic::{Request, Response, Status};

use crate::attempts::{
    Attempts, Call, CallError, OpenStream, Origin, Usage, broken_stream, stream_error,
};
use crate::chat_settings::ChatSettings;
use crate::models::Refusal;

pub struct ChatGrpc {
    pub attempts: Attempts,
}

/// A failure as a gRPC status that carries the upstream status and body in its details.
pub fn failure_status(failure: &UpstreamFailure) -> Status {
    let retry_after_seconds = match failure.class {
        FailureClass::Quota {
            retry_after: Some(delay),
        } => Some(delay.as_secs_f64().ceil() as u32),
        _ => None,
    };
    let details = pb::UpstreamError {
        http_status: u32::from(failure.status),
        body: failure.body.clone(),
        retry_after_seconds,
    };
    Status::with_details(
        code_for_http(failure.status),
        failure.message(),
        Bytes::from(details.encode_to_vec()),
    )
}

fn refused(refusal: Refusal) -> Status {
    local_error(refusal.status, &refusal.message)
}

fn local_error(status: u16, message: &str) -> Status {
    failure_status(&UpstreamFailure {
        status,
        body: google_error_body(status, google_status_for_http(status), message),
        class: FailureClass::ClientError,
    })
}

fn call_status(error: CallError) -> Status {
    failure_status(&error.into_failure())
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<pb::GeminiChunk, Status>> + Send>>;

impl ChatGrpc {
    /// The current settings; a request reads one version throughout.
    fn settings(&self) -> Arc<ChatSettings> {
        self.attempts.settings.get()
    }

    /// The requested model, normalized, unless the rules refuse it.
    fn checked_model(&self, requested: &str) -> Result<String, Status> {
        self.settings().rules.check(requested).map_err(refused)
    }

    /// A model action whose body passes through (count, embed), on an already checked model.
    async fn model_action(
        &self,
        origin: Origin,
        model: &str,
        action: &str,
        body: Bytes,
    ) -> Result<Response<pb::GeminiResponse>, Status> {
        let path = format!("models/{model}:{action}");
        self.unary(Call::native(
            origin,
            reqwest::Method::POST,
            &path,
            Some(body),
            model,
        ))
        .await
    }

    async fn unary(&self, call: Call<'_>) -> Result<Response<pb::GeminiResponse>, Status> {
        let answer = self.attempts.unary(call).await.map_err(call_status)?;
        Ok(Response::new(pb::GeminiResponse {
            body: answer.body,
            attempts: answer.attempts,
        }))
    }

    /// Turns an opened upstream stream into chunks; reports the outcome when it ends.
    fn chunks(&self, open: OpenStream) -> ChunkStream {
        struct State {
            open: OpenStream,
            attempts: Attempts,
            usage: Usage,
            done: bool,
        }
        let first = Bytes::clone(&open.first);
        let initial_usage = Usage::from_body(&first).unwrap_or_default();
        let state = State {
            open,
            attempts: self.attempts.clone(),
            usage: initial_usage,
            done: false,
        };
        let rest = futures::stream::unfold(state, |mut state| async move {
            if state.done {
                return None;
            }
            let item = match state.open.rest.next().await {
                Some(Ok(event)) => match stream_error(&event.data) {
                    None => {
                        if event.data.contains("usageMetadata")
                            && let Some(usage) = Usage::from_body(event.data.as_bytes())
                        {
                            state.usage = usage;
                        }
                        Ok(pb::GeminiChunk {
                            data: Bytes::from(event.data),
                        })
                    }
                    Some(failure) => Err(failure),
                },
                Some(Err(error)) => Err(broken_stream(&error)),
                None => {
                    state.attempts.report_success(
                        &state.open.record,
                        &state.open.key,
                        state.open.started,
                        state.usage,
                    );
                    return None;
                }
            };
            match item {
                Ok(chunk) => Some((Ok(chunk), state)),
                Err(failure) => {
                    // Output has reached the client: no retry, the stream ends with the error.
                    state.done = true;
                    state.attempts.report_failure(
                        &state.open.record,
                        &state.open.key,
                        state.open.started,
                        &failure,
                    );
                    Some((Err(failure_status(&failure)), state))
                }
            }
        });
        let first = futures::stream::once(async move { Ok(pb::GeminiChunk { data: first }) });
        Box::pin(first.chain(rest))
    }
}

/// The text parts of the first candidate, without thoughts.
fn answer_text(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let parts = value["candidates"][0]["content"]["parts"].as_array()?;
    Some(
        parts
            .iter()
            .filter(|part| !part["thought"].as_bool().unwrap_or(false))
            .filter_map(|part| part["text"].as_str())
            .collect(),
    )
}

/// `batchEmbedContents` requires each request to name its model; fill it in where missing.
fn with_request_models(body: Bytes, model: &str) -> Bytes {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return body;
    };
    let mut changed = false;
    if let Some(requests) = value
        .get_mut("requests")
        .and_then(serde_json::Value::as_array_mut)
    {
        for request in requests
            .iter_mut()
            .filter_map(serde_json::Value::as_object_mut)
        {
            if !request.contains_key("model") {
                request.insert(
                    "model".into(),
                    serde_json::Value::String(format!("models/{model}")),
                );
                changed = true;
            }
        }
    }
    if changed {
        Bytes::from(value.to_string())
    } else {
        body
    }
}

#[tonic::async_trait]
impl ChatService for ChatGrpc {
    async fn generate_content(
        &self,
        request: Request<pb::GeminiRequest>,
    ) -> Result<Response<pb::GeminiResponse>, Status> {
        let request = request.into_inner();
        let origin = Origin::of(request.context.as_ref(), "gemini-generate");
        let resolved = self
            .settings()
            .rules
            .resolve(&request.model, request.body)
            .map_err(refused)?;
        let path = format!("models/{}:generateContent", resolved.model);
        self.unary(Call::native(
            origin,
            reqwest::Method::POST,
            &path,
            Some(resolved.body),
            &resolved.model,
        ))
        .await
    }

    type StreamGenerateContentStream = ChunkStream;

    async fn stream_generate_content(
        &self,
        request: Request<pb::GeminiRequest>,
    ) -> Result<Response<Self::StreamGenerateContentStream>, Status> {
        let request = request.into_inner();
        let origin = Origin::of(request.context.as_ref(), "gemini-stream-generate");
        let resolved = self
            .settings()
            .rules
            .resolve(&request.model, request.body)
            .map_err(refused)?;
        let path = format!("models/{}:streamGenerateContent?alt=sse", resolved.model);
        let call = Call::native(
            origin,
            reqwest::Method::POST,
            &path,
            Some(resolved.body),
            &resolved.model,
        );
        let open = self.attempts.open_stream(call).await.map_err(call_status)?;
        Ok(Response::new(self.chunks(open)))
    }

    async fn count_tokens(
        &self,
        request: Request<pb::GeminiRequest>,
    ) -> Result<Response<pb::GeminiResponse>, Status> {
        let request = request.into_inner();
        let origin = Origin::of(request.context.as_ref(), "gemini-count-tokens");
        let model = self.checked_model(&request.model)?;
        self.model_action(origin, &model, "countTokens", request.body)
            .await
    }

    async fn embed_content(
        &self,
        request: Request<pb::GeminiRequest>,
    ) -> Result<Response<pb::GeminiResponse>, Status> {
        let request = request.into_inner();
        let origin = Origin::of(request.context.as_ref(), "gemini-embed");
        let model = self.checked_model(&request.model)?;
        self.model_action(origin, &model, "embedContent", request.body)
            .await
    }

    async fn batch_embed_contents(
        &self,
        request: Request<pb::GeminiRequest>,
    ) -> Result<Response<pb::GeminiResponse>, Status> {
        let request = request.into_inner();
        let origin = Origin::of(request.context.as_ref(), "gemini-batch-embed");
        let model = self.checked_model(&request.model)?;
        let body = with_request_models(request.body, &model);
        self.model_action(origin, &model, "batchEmbedContents", body)
            .await
    }

    async fn list_models(
        &self,
        request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::GeminiResponse>, Status> {
        let request = request.into_inner();
        let origin = Origin::of(request.context.as_ref(), "gemini-list-models");
        let page_size = if request.page_size == 0 {
            1000
        } else {
            request.page_size.min(1000)
        };
        let mut path = format!("models?pageSize={page_size}");
        if !request.page_token.is_empty() {
            let token: String = url_encode(&request.page_token);
            path.push_str(&format!("&pageToken={token}"));
        }
        let answer = self
            .attempts
            .unary(Call::native(origin, reqwest::Method::GET, &path, None, ""))
            .await
            .map_err(call_status)?;
        Ok(Response::new(pb::GeminiResponse {
            body: self.settings().rules.list(&answer.body),
            attempts: answer.attempts,
        }))
    }

    async fn get_model(
        &self,
        request: Request<pb::GetModelRequest>,
    ) -> Result<Response<pb::GeminiResponse>, Status> {
        let request = request.into_inner();
        let origin = Origin::of(request.context.as_ref(), "gemini-get-model");
        let model = self.checked_model(&request.model)?;
        let path = format!("models/{model}");
        self.unary(Call::native(
            origin,
            reqwest::Method::GET,
            &path,
            None,
            &model,
        ))
        .await
    }

    async fn chat(
        &self,
        request: Request<pb::ChatRequest>,
    ) -> Result<Response<pb::ChatResponse>, Status> {
        let settings = self.settings();
        let request = request.into_inner();
        let origin = Origin::of(request.context.as_ref(), "simple-chat");
        if request.message.trim().is_empty() {
            return Err(local_error(400, "message must not be empty"));
        }
        let requested = request.model.as_deref().filter(|model| !model.is_empty());
        let model = requested.unwrap_or(&settings.chat_model).to_owned();
        let body = serde_json::json!({
            "contents": [{"role": "user", "parts": [{"text": request.message}]}]
        });
        let resolved = settings
            .rules
            .resolve(&model, Bytes::from(body.to_string()))
            .map_err(refused)?;
        let path = format!("models/{}:generateContent", resolved.model);
        let answer = self
            .attempts
            .unary(Call::native(
                origin,
                reqwest::Method::POST,
                &path,
                Some(resolved.body),
                &resolved.model,
            ))
            .await
            .map_err(call_status)?;
        let text = answer_text(&answer.body)
            .ok_or_else(|| local_error(502, "the model answered without text"))?;
        Ok(Response::new(pb::ChatResponse {
            response: text,
            model,
        }))
    }

    async fn predict(
        &self,
        request: Request<pb::GeminiRequest>,
    ) -> Result<Response<pb::GeminiResponse>, Status> {
        let settings = self.settings();
        let request = request.into_inner();
        let origin = Origin::of(request.context.as_ref(), "imagen-predict");
        let model = settings.rules.check(&request.model).map_err(refused)?;
        let path = format!("models/{model}:predict");
        let mut call = Call::native(
            origin,
            reqwest::Method::POST,
            &path,
            Some(request.body),
            &model,
        );
        call.fixed_key = settings.paid_key.as_deref();
        self.unary(call).await
    }

    async fn forward_open_ai(
        &self,
        request: Request<pb::OpenAiRequest>,
    ) -> Result<Response<pb::GeminiResponse>, Status> {
        let settings = self.settings();
        let request = request.into_inner();
        let origin = Origin::of(request.context.as_ref(), "openai");
        let path = openai_path(&request)?;
        let call = openai_call(&settings, origin, &request, &path)?;
        self.unary(call).await
    }

    type StreamOpenAiStream = ChunkStream;

    async fn stream_open_ai(
        &self,
        request: Request<pb::OpenAiRequest>,
    ) -> Result<Response<Self::StreamOpenAiStream>, Status> {
        let settings = self.settings();
        let request = request.into_inner();
        let origin = Origin::of(request.context.as_ref(), "openai-stream");
        let path = openai_path(&request)?;
        let call = openai_call(&settings, origin, &request, &path)?;
        let open = self.attempts.open_stream(call).await.map_err(call_status)?;
        Ok(Response::new(self.chunks(open)))
    }
}

/// `openai/{path}` below `BASE_URL`, for the paths Google's OpenAI layer serves.
fn openai_path(request: &pb::OpenAiRequest) -> Result<String, Status> {
    let path = request.path.trim_matches('/');
    let known = matches!(
        path,
        "models" | "chat/completions" | "embeddings" | "images/generations"
    ) || path
        .strip_prefix("models/")
        .is_some_and(|model| crate::models::normalize(model).is_some());
    if !known {
        return Err(local_error(404, &format!("openai/{path} is not forwarded")));
    }
    Ok(format!("openai/{path}"))
}

fn openai_call<'a>(
    settings: &'a ChatSettings,
    origin: Origin,
    request: &'a pb::OpenAiRequest,
    path: &'a str,
) -> Result<Call<'a>, Status> {
    let method = match request.method.as_str() {
        "GET" => reqwest::Method::GET,
        "POST" | "" => reqwest::Method::POST,
        other => {
            return Err(local_error(
                405,
                &format!("method {other} is not forwarded"),
            ));
        }
    };
    let body = (method == reqwest::Method::POST).then(|| request.body.clone());
    Ok(Call {
        method,
        path,
        body,
        model: &request.model,
        placement: gb_runtime::upstream::KeyPlacement::Bearer,
        fixed_key: if request.paid {
            settings.paid_key.as_deref()
        } else {
            None
        },
        origin,
    })
}

fn url_encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}
