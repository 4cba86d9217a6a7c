//! The `ChatService` gRPC contract: Gemini-native bodies through the attempt loop.

use std::sync::Arc;

use bytes::Bytes;
use gb_proto::chat::v1 as pb;
use gb_proto::chat::v1::chat_service_server::ChatService;
use gb_proto::chat::{ChatError, ChunkStream};
use gb_runtime::live::Live;
use tonic::{Request, Response, Status};

use crate::attempts::{Attempts, Call, Origin};
use crate::chat_settings::ChatSettings;
use crate::models::Refusal;
use crate::openai_calls::{openai_call, openai_path};

mod stream;

pub struct ChatGrpc {
    pub attempts: Attempts,
    pub settings: Live<ChatSettings>,
}

fn refused(refusal: Refusal) -> ChatError {
    ChatError::local(refusal.status, refusal.message)
}

impl ChatGrpc {
    /// The current settings; a request reads one version throughout.
    fn settings(&self) -> Arc<ChatSettings> {
        self.settings.get()
    }

    /// A model action whose body passes through (count, embed), on a model the rules allow;
    /// `prepare` may complete the body first.
    async fn model_action(
        &self,
        request: Request<pb::GeminiRequest>,
        operation: &'static str,
        action: &str,
        prepare: fn(Bytes, &str) -> Bytes,
    ) -> Result<Response<pb::GeminiResponse>, Status> {
        let settings = self.settings();
        let request = request.into_inner();
        let origin = Origin::of(request.context.as_ref(), operation);
        self.logged(&origin.clone(), &request.model, async {
            let model = settings.rules.check(&request.model).map_err(refused)?;
            let path = format!("models/{model}:{action}");
            let body = prepare(request.body.clone(), &model);
            let files = self.referenced(&request, &body).await?;
            self.unary(
                &settings,
                Call::native(origin, reqwest::Method::POST, &path, Some(body), &model)
                    .with_files(files),
            )
            .await
        })
        .await
    }

    /// The gateway files `body` references (`None`, without an RPC, when it names none).
    async fn referenced(
        &self,
        request: &pb::GeminiRequest,
        body: &Bytes,
    ) -> Result<Option<Arc<crate::files::FileRefs>>, ChatError> {
        let caller = request
            .context
            .as_ref()
            .map_or("", |context| context.caller.as_str());
        Ok(self
            .attempts
            .files
            .resolve(caller, body)
            .await?
            .map(Arc::new))
    }

    /// Runs a handler's answer: a call it refuses before any attempt still gets its client
    /// request's row (the attempt loop writes it otherwise).
    async fn logged<T>(
        &self,
        origin: &Origin,
        model: &str,
        answer: impl std::future::Future<Output = Result<T, Status>>,
    ) -> Result<T, Status> {
        let answer = answer.await;
        if let Err(status) = &answer {
            let status = gb_proto::chat::http_status(status);
            self.attempts.report_refusal(origin, model, status);
        }
        answer
    }

    async fn unary(
        &self,
        settings: &ChatSettings,
        call: Call<'_>,
    ) -> Result<Response<pb::GeminiResponse>, Status> {
        let answer = self
            .attempts
            .unary(settings, call)
            .await
            .map_err(ChatError::from)?;
        Ok(Response::new(pb::GeminiResponse {
            body: answer.body,
            attempts: answer.attempts,
        }))
    }

    async fn stream(
        &self,
        settings: &ChatSettings,
        call: Call<'_>,
    ) -> Result<Response<ChunkStream>, Status> {
        let open = self
            .attempts
            .open_stream(settings, call)
            .await
            .map_err(ChatError::from)?;
        Ok(Response::new(self.chunks(open)))
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

/// A generation request as the model rules resolve it (variant, thinking budget, safety and
/// tools applied): who asked, the upstream path of `action`, the model and body to send.
fn generation(
    settings: &ChatSettings,
    request: &pb::GeminiRequest,
    action: &str,
) -> Result<(String, crate::models::Resolved), ChatError> {
    let resolved = settings
        .rules
        .resolve(&request.model, request.body.clone())
        .map_err(refused)?;
    let path = format!("models/{}:{action}", resolved.model);
    Ok((path, resolved))
}

/// A body that passes through as the client sent it.
fn unchanged(body: Bytes, _model: &str) -> Bytes {
    body
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
        let settings = self.settings();
        let request = request.into_inner();
        let origin = Origin::of(request.context.as_ref(), "gemini-generate");
        self.logged(&origin.clone(), &request.model, async {
            let (path, resolved) = generation(&settings, &request, "generateContent")?;
            let files = self.referenced(&request, &resolved.body).await?;
            let body = Some(resolved.body);
            let call = Call::native(origin, reqwest::Method::POST, &path, body, &resolved.model)
                .with_files(files);
            self.unary(&settings, call).await
        })
        .await
    }

    type StreamGenerateContentStream = ChunkStream;

    async fn stream_generate_content(
        &self,
        request: Request<pb::GeminiRequest>,
    ) -> Result<Response<Self::StreamGenerateContentStream>, Status> {
        let settings = self.settings();
        let request = request.into_inner();
        let origin = Origin::of(request.context.as_ref(), "gemini-stream-generate");
        self.logged(&origin.clone(), &request.model, async {
            let action = "streamGenerateContent?alt=sse";
            let (path, resolved) = generation(&settings, &request, action)?;
            let files = self.referenced(&request, &resolved.body).await?;
            let body = Some(resolved.body);
            let call = Call::native(origin, reqwest::Method::POST, &path, body, &resolved.model)
                .with_files(files);
            self.stream(&settings, call).await
        })
        .await
    }

    async fn count_tokens(
        &self,
        request: Request<pb::GeminiRequest>,
    ) -> Result<Response<pb::GeminiResponse>, Status> {
        self.model_action(request, "gemini-count-tokens", "countTokens", unchanged)
            .await
    }

    async fn embed_content(
        &self,
        request: Request<pb::GeminiRequest>,
    ) -> Result<Response<pb::GeminiResponse>, Status> {
        self.model_action(request, "gemini-embed", "embedContent", unchanged)
            .await
    }

    async fn batch_embed_contents(
        &self,
        request: Request<pb::GeminiRequest>,
    ) -> Result<Response<pb::GeminiResponse>, Status> {
        let action = "batchEmbedContents";
        self.model_action(request, "gemini-batch-embed", action, with_request_models)
            .await
    }

    async fn list_models(
        &self,
        request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::GeminiResponse>, Status> {
        let settings = self.settings();
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
        let call = Call::native(origin, reqwest::Method::GET, &path, None, "");
        let answer = self
            .attempts
            .unary(&settings, call)
            .await
            .map_err(ChatError::from)?;
        Ok(Response::new(pb::GeminiResponse {
            body: settings.rules.list(&answer.body),
            attempts: answer.attempts,
        }))
    }

    async fn get_model(
        &self,
        request: Request<pb::GetModelRequest>,
    ) -> Result<Response<pb::GeminiResponse>, Status> {
        let settings = self.settings();
        let request = request.into_inner();
        let origin = Origin::of(request.context.as_ref(), "gemini-get-model");
        self.logged(&origin.clone(), &request.model, async {
            let model = settings.rules.check(&request.model).map_err(refused)?;
            let path = format!("models/{model}");
            let call = Call::native(origin, reqwest::Method::GET, &path, None, &model);
            self.unary(&settings, call).await
        })
        .await
    }

    async fn chat(
        &self,
        request: Request<pb::ChatRequest>,
    ) -> Result<Response<pb::ChatResponse>, Status> {
        let settings = self.settings();
        let request = request.into_inner();
        let origin = Origin::of(request.context.as_ref(), "simple-chat");
        let requested = request.model.as_deref().filter(|model| !model.is_empty());
        let model = requested.unwrap_or(&settings.chat_model).to_owned();
        self.logged(&origin.clone(), &model.clone(), async {
            if request.message.trim().is_empty() {
                return Err(ChatError::local(400, "message must not be empty").into());
            }
            let body = serde_json::json!({
                "contents": [{"role": "user", "parts": [{"text": request.message}]}]
            });
            let resolved = settings
                .rules
                .resolve(&model, Bytes::from(body.to_string()))
                .map_err(refused)?;
            let path = format!("models/{}:generateContent", resolved.model);
            let call = Call::native(
                origin,
                reqwest::Method::POST,
                &path,
                Some(resolved.body),
                &resolved.model,
            );
            let answer = self
                .attempts
                .unary(&settings, call)
                .await
                .map_err(ChatError::from)?;
            let text = answer_text(&answer.body)
                .ok_or_else(|| ChatError::local(502, "the model answered without text"))?;
            Ok(Response::new(pb::ChatResponse {
                response: text,
                model,
            }))
        })
        .await
    }

    async fn predict(
        &self,
        request: Request<pb::GeminiRequest>,
    ) -> Result<Response<pb::GeminiResponse>, Status> {
        let settings = self.settings();
        let request = request.into_inner();
        let origin = Origin::of(request.context.as_ref(), "imagen-predict");
        self.logged(&origin.clone(), &request.model, async {
            let model = settings.rules.check(&request.model).map_err(refused)?;
            let path = format!("models/{model}:predict");
            let body = Some(request.body.clone());
            let mut call = Call::native(origin, reqwest::Method::POST, &path, body, &model);
            call.fixed_key = settings.paid_key.as_deref();
            self.unary(&settings, call).await
        })
        .await
    }

    async fn forward_open_ai(
        &self,
        request: Request<pb::OpenAiRequest>,
    ) -> Result<Response<pb::GeminiResponse>, Status> {
        let settings = self.settings();
        let request = request.into_inner();
        let origin = Origin::of(request.context.as_ref(), "openai");
        self.logged(&origin.clone(), &request.model, async {
            let path = openai_path(&request)?;
            let call = openai_call(&settings, origin, &request, &path)?;
            self.unary(&settings, call).await
        })
        .await
    }

    type StreamOpenAiStream = ChunkStream;

    async fn stream_open_ai(
        &self,
        request: Request<pb::OpenAiRequest>,
    ) -> Result<Response<Self::StreamOpenAiStream>, Status> {
        let settings = self.settings();
        let request = request.into_inner();
        let origin = Origin::of(request.context.as_ref(), "openai-stream");
        self.logged(&origin.clone(), &request.model, async {
            let path = openai_path(&request)?;
            let call = openai_call(&settings, origin, &request, &path)?;
            self.stream(&settings, call).await
        })
        .await
    }

    async fn delete_upstream_files(
        &self,
        request: Request<pb::DeleteUpstreamFilesRequest>,
    ) -> Result<Response<pb::DeleteUpstreamFilesResponse>, Status> {
        let settings = self.settings();
        let copies = request.into_inner().copies;
        let pool = &self.attempts.pool;
        let deleted = self
            .attempts
            .files
            .delete_copies(&copies, |id| pool.key(id), &settings.upstream)
            .await;
        Ok(Response::new(pb::DeleteUpstreamFilesResponse { deleted }))
    }

    async fn check_proxies(
        &self,
        request: Request<pb::CheckProxiesRequest>,
    ) -> Result<Response<pb::CheckProxiesResponse>, Status> {
        use futures::StreamExt;
        let settings = self.settings();
        let configured = &settings.proxies;
        let asked = request.into_inner().proxies;
        // A proxy given as the settings show it (password masked) is the configured one.
        let proxies: Vec<String> = if asked.is_empty() {
            configured.clone()
        } else {
            asked
                .into_iter()
                .map(|proxy| {
                    configured
                        .iter()
                        .find(|known| {
                            gb_runtime::config_registry::mask_url_password(known) == proxy
                        })
                        .cloned()
                        .unwrap_or(proxy)
                })
                .collect()
        };
        let base_url = settings.upstream.base_url().to_owned();
        let checks = futures::stream::iter(proxies)
            .map(|proxy| {
                let base_url = base_url.clone();
                async move {
                    let reach = gb_upstream::reach_through_proxy(
                        &base_url,
                        &proxy,
                        std::time::Duration::from_secs(10),
                    )
                    .await;
                    pb::ProxyCheck {
                        proxy: gb_runtime::config_registry::mask_url_password(&proxy),
                        available: reach.status.is_some(),
                        status_code: reach.status.map_or(0, u32::from),
                        latency_ms: u32::try_from(reach.latency.as_millis()).unwrap_or(u32::MAX),
                        error: reach.error.unwrap_or_default(),
                    }
                }
            })
            .buffered(10)
            .collect()
            .await;
        Ok(Response::new(pb::CheckProxiesResponse { checks }))
    }
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
