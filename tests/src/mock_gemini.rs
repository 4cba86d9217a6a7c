//! A mock of the Gemini API (`/v1beta`), faithful where the gateway depends on it: Google's
//! JSON shapes, SSE framing (`data: …\r\n\r\n`) and the JSON-array stream form, error bodies
//! with `ErrorInfo` reasons and `RetryInfo` delays, and per-key behaviours a test can set
//! (in process, or over `/_mock/…` from another process). It records every call it receives.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// How the mock answers calls made with one key.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(tag = "behavior", rename_all = "snake_case")]
pub enum Behavior {
    /// Normal answers.
    #[default]
    Ok,
    /// 400 `INVALID_ARGUMENT` with `ErrorInfo` reason `API_KEY_INVALID`.
    InvalidKey,
    /// 403 `PERMISSION_DENIED` with reason `CONSUMER_SUSPENDED`.
    Suspended,
    /// The same 403, with a message of the test's choosing (what a relay, or Google quoting a
    /// request, may put there: the console must show it as text).
    SuspendedWithMessage { message: String },
    /// 429 `RESOURCE_EXHAUSTED` with a `QuotaFailure` of the whole project (no model named)
    /// and (when set) a `RetryInfo` delay.
    Quota { retry_delay_seconds: Option<f64> },
    /// Calls for `model` answer Google's 429 for that model's quota per minute or per day
    /// (`QuotaFailure` with `quotaDimensions.model`, and a `RetryInfo` delay, which Google
    /// gives for daily quotas too); calls for other models are answered normally.
    ModelQuota {
        model: String,
        per_day: bool,
        retry_delay_seconds: f64,
    },
    /// A 5xx answer (500 `INTERNAL`, 503 `UNAVAILABLE`).
    ServerError { status: u16 },
    /// Streams send this many chunks, then the connection breaks.
    CutStreamAfter { chunks: usize },
    /// Answers normally after a delay.
    Slow { millis: u64 },
    /// 200 with a body that is not JSON (what a broken relay or captive portal sends).
    MalformedAnswer,
    /// An error page that is not JSON, with this status (a relay in front of Google).
    RelayError { status: u16 },
}

/// One call the mock received.
#[derive(Clone, Debug, Serialize)]
pub struct Call {
    pub key: String,
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: Value,
    /// The request's headers, but the key's.
    pub headers: std::collections::BTreeMap<String, String>,
}

#[derive(Default)]
struct MockState {
    behaviors: Mutex<HashMap<String, Behavior>>,
    /// Behaviours for the next N calls of a key, consumed before `behaviors`.
    queued: Mutex<HashMap<String, Vec<Behavior>>>,
    calls: Mutex<Vec<Call>>,
    /// Chunks per streamed answer.
    stream_chunks: Mutex<usize>,
    /// Pause before each streamed chunk, in milliseconds.
    stream_delay_ms: Mutex<u64>,
    /// Requests per minute and per day each key may make of a model.
    quotas: crate::mock_quotas::Quotas,
    /// Google's Files API, each file its key's.
    files: crate::mock_files::MockFiles,
}

/// A running mock; stops when dropped.
pub struct MockGemini {
    pub addr: SocketAddr,
    state: Arc<MockState>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl MockGemini {
    /// Starts on an ephemeral port of 127.0.0.1.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await?).await
    }

    pub async fn start_on(listener: TcpListener) -> anyhow::Result<Self> {
        let state = Arc::new(MockState {
            stream_chunks: Mutex::new(3),
            stream_delay_ms: Mutex::new(5),
            ..Default::default()
        });
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = router(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(MockGemini {
            addr,
            state,
            _stop: stop,
        })
    }

    /// `BASE_URL` for the gateway.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1beta", self.addr)
    }

    pub fn set_behavior(&self, key: &str, behavior: Behavior) {
        lock(&self.state.behaviors).insert(key.to_owned(), behavior);
    }

    /// The next calls with `key` follow `behaviors` in order, then the key's standing behaviour.
    pub fn queue_behaviors(&self, key: &str, behaviors: Vec<Behavior>) {
        lock(&self.state.queued).insert(key.to_owned(), behaviors);
    }

    pub fn set_stream_chunks(&self, chunks: usize) {
        *lock(&self.state.stream_chunks) = chunks.max(1);
    }

    /// The pause before each frame of a stream.
    pub fn set_stream_delay(&self, millis: u64) {
        *lock(&self.state.stream_delay_ms) = millis;
    }

    /// From now on, `key` may make `quota` requests of `model` (per minute, per day); past
    /// that it gets Google's 429 for that model's quota.
    pub fn set_model_quota(&self, key: &str, model: &str, quota: crate::mock_quotas::ModelQuota) {
        self.state.quotas.set(key, model, quota);
    }

    /// How many calls were refused for going over a quota set with `set_model_quota`.
    pub fn quota_refusals(&self) -> usize {
        self.state.quotas.refusals()
    }

    /// The Files API's state: the files each key holds.
    pub fn files(&self) -> &crate::mock_files::MockFiles {
        &self.state.files
    }

    pub fn calls(&self) -> Vec<Call> {
        lock(&self.state.calls).clone()
    }

    pub fn clear_calls(&self) {
        lock(&self.state.calls).clear();
    }
}

fn router(state: Arc<MockState>) -> Router {
    Router::new()
        .route("/v1beta/models", get(list_models))
        .route(
            "/v1beta/models/{model_action}",
            get(get_model).post(model_action),
        )
        .route("/upload/v1beta/files", post(upload_file))
        .route("/v1beta/files/{name}", get(get_file).delete(delete_file))
        .route("/v1beta/openai/models", get(openai_models))
        .route("/v1beta/openai/chat/completions", post(openai_chat))
        .route("/v1beta/openai/embeddings", post(openai_embeddings))
        .route("/v1beta/openai/images/generations", post(openai_images))
        .route(
            "/_mock/image.png",
            get(|| async { ([(header::CONTENT_TYPE, "image/png")], tiny_png_bytes()) }),
        )
        .route("/_mock/keys/{key}", post(control_set_behavior))
        .route(
            "/_mock/calls",
            get(control_calls).delete(control_clear_calls),
        )
        .route("/_mock/stream-chunks/{chunks}", post(control_stream_chunks))
        .route("/_mock/stream-delay/{millis}", post(control_stream_delay))
        .with_state(state)
}

// ----- Files API (`mock_files.rs`) -----

/// `http://host` of the mock, as the client reached it.
fn own_base(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// A resumable start (with a key, admitted like any call), or a session's chunk (its
/// `upload_id` is the credential).
async fn upload_file(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    let base = own_base(&headers);
    let upload_id = query.as_deref().and_then(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "upload_id")
            .map(|(_, value)| value.into_owned())
    });
    if let Some(upload_id) = upload_id {
        let (status, upload_status, answer) =
            state.files.chunk(&upload_id, &headers, body, &base).await;
        let mut response = if answer.is_null() {
            StatusCode::OK.into_response()
        } else {
            json_answer(status, &answer)
        };
        response.headers_mut().insert(
            "x-goog-upload-status",
            upload_status
                .parse()
                .unwrap_or(header::HeaderValue::from_static("active")),
        );
        return response;
    }
    let Ok(body) = axum::body::to_bytes(body, 1024 * 1024).await else {
        return invalid_argument("Upload metadata too large.");
    };
    let path = "/upload/v1beta/files";
    let (key, _) = match admit(&state, &headers, "POST", path, query.as_deref(), &body).await {
        Ok(admitted) => admitted,
        Err(answer) => return answer,
    };
    let metadata: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match state.files.start(&key, &headers, &metadata, &base) {
        Ok(url) => {
            let mut response = StatusCode::OK.into_response();
            let headers = response.headers_mut();
            headers.insert(
                "x-goog-upload-status",
                header::HeaderValue::from_static("active"),
            );
            if let Ok(url) = url.parse() {
                headers.insert("x-goog-upload-url", url);
            }
            response
        }
        Err(error) => json_answer(400, &error),
    }
}

async fn get_file(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let path = format!("/v1beta/files/{name}");
    let (key, _) = match admit(
        &state,
        &headers,
        "GET",
        &path,
        query.as_deref(),
        &Bytes::new(),
    )
    .await
    {
        Ok(admitted) => admitted,
        Err(answer) => return answer,
    };
    match state.files.get(&key, &format!("files/{name}")) {
        Ok(file) => json_answer(200, &file.resource(&own_base(&headers))),
        Err(error) => json_answer(403, &error),
    }
}

async fn delete_file(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let path = format!("/v1beta/files/{name}");
    let (key, _) = match admit(
        &state,
        &headers,
        "DELETE",
        &path,
        query.as_deref(),
        &Bytes::new(),
    )
    .await
    {
        Ok(admitted) => admitted,
        Err(answer) => return answer,
    };
    match state.files.delete(&key, &format!("files/{name}")) {
        Ok(()) => json_answer(200, &json!({})),
        Err(error) => json_answer(403, &error),
    }
}

// ----- control API, for tests in another process -----

async fn control_set_behavior(
    State(state): State<Arc<MockState>>,
    Path(key): Path<String>,
    axum::Json(behavior): axum::Json<Behavior>,
) -> StatusCode {
    lock(&state.behaviors).insert(key, behavior);
    StatusCode::NO_CONTENT
}

async fn control_calls(State(state): State<Arc<MockState>>) -> axum::Json<Vec<Call>> {
    axum::Json(lock(&state.calls).clone())
}

async fn control_clear_calls(State(state): State<Arc<MockState>>) -> StatusCode {
    lock(&state.calls).clear();
    StatusCode::NO_CONTENT
}

async fn control_stream_delay(
    State(state): State<Arc<MockState>>,
    Path(millis): Path<u64>,
) -> StatusCode {
    *lock(&state.stream_delay_ms) = millis;
    StatusCode::NO_CONTENT
}

async fn control_stream_chunks(
    State(state): State<Arc<MockState>>,
    Path(chunks): Path<usize>,
) -> StatusCode {
    *lock(&state.stream_chunks) = chunks.max(1);
    StatusCode::NO_CONTENT
}

// ----- Google's shapes -----

fn json_answer(status: u16, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/json; charset=UTF-8"
            .parse()
            .unwrap_or_else(|_| header::HeaderValue::from_static("application/json")),
    );
    response
}

fn google_error(code: u16, status: &str, message: &str, details: Value) -> Value {
    let mut error = json!({"code": code, "message": message, "status": status});
    if details
        .as_array()
        .is_some_and(|details| !details.is_empty())
    {
        error["details"] = details;
    }
    json!({"error": error})
}

/// The error body a behaviour produces, if it is an error.
fn behavior_error(behavior: &Behavior, key: &str) -> Option<(u16, Value)> {
    match behavior {
        Behavior::InvalidKey => Some((
            400,
            google_error(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                json!([
                    {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                     "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}},
                    {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
                     "message": "API key not valid. Please pass a valid API key."}
                ]),
            ),
        )),
        Behavior::Suspended => Some((
            403,
            google_error(
                403,
                "PERMISSION_DENIED",
                // Google names the consumer by its key here: a gateway must mask it.
                &format!("Permission denied: Consumer 'api_key:{key}' has been suspended."),
                json!([
                    {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "CONSUMER_SUSPENDED",
                     "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}
                ]),
            ),
        )),
        Behavior::SuspendedWithMessage { message } => Some((
            403,
            google_error(
                403,
                "PERMISSION_DENIED",
                message,
                json!([
                    {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "CONSUMER_SUSPENDED",
                     "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}
                ]),
            ),
        )),
        Behavior::Quota {
            retry_delay_seconds,
        } => {
            let mut details = vec![
                json!({"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                    "quotaMetric": "generativelanguage.googleapis.com/generate_requests_per_project",
                    "quotaId": "GenerateRequestsPerMinutePerProject",
                    "quotaDimensions": {"location": "global"}, "quotaValue": "60"}]}),
                json!({"@type": "type.googleapis.com/google.rpc.Help", "links": [{
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]}),
            ];
            if let Some(seconds) = retry_delay_seconds {
                details.push(json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format!("{seconds}s")}));
            }
            Some((
                429,
                google_error(
                    429,
                    "RESOURCE_EXHAUSTED",
                    "You exceeded your current quota, please check your plan and billing details.",
                    Value::Array(details),
                ),
            ))
        }
        Behavior::ModelQuota {
            model,
            per_day,
            retry_delay_seconds,
        } => {
            let (metric, quota_id, value) = if *per_day {
                (
                    "generate_content_free_tier_requests",
                    "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                    "50",
                )
            } else {
                (
                    "generate_content_free_tier_requests",
                    "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                    "5",
                )
            };
            Some((
                429,
                google_error(
                    429,
                    "RESOURCE_EXHAUSTED",
                    &format!(
                        "You exceeded your current quota, please check your plan and billing details. \
                         * Quota exceeded for metric: generativelanguage.googleapis.com/{metric}, \
                         limit: {value}, model: {model}\nPlease retry in {retry_delay_seconds}s."
                    ),
                    json!([
                        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                            "quotaMetric": format!("generativelanguage.googleapis.com/{metric}"),
                            "quotaId": quota_id,
                            "quotaDimensions": {"location": "global", "model": model},
                            "quotaValue": value}]},
                        {"@type": "type.googleapis.com/google.rpc.Help", "links": [{
                            "description": "Learn more about Gemini API quotas",
                            "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
                        {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                         "retryDelay": format!("{}s", retry_delay_seconds.floor())}
                    ]),
                ),
            ))
        }
        Behavior::ServerError { status } => {
            let (name, message) = if *status == 503 {
                (
                    "UNAVAILABLE",
                    "The model is overloaded. Please try again later.",
                )
            } else {
                (
                    "INTERNAL",
                    "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
                )
            };
            Some((*status, google_error(*status, name, message, json!([]))))
        }
        Behavior::Ok
        | Behavior::CutStreamAfter { .. }
        | Behavior::Slow { .. }
        | Behavior::MalformedAnswer
        | Behavior::RelayError { .. } => None,
    }
}

const MODELS: &[(&str, &str, &[&str])] = &[
    (
        "gemini-2.5-flash",
        "Gemini 2.5 Flash",
        &[
            "generateContent",
            "countTokens",
            "createCachedContent",
            "batchGenerateContent",
        ],
    ),
    (
        "gemini-2.5-pro",
        "Gemini 2.5 Pro",
        &[
            "generateContent",
            "countTokens",
            "createCachedContent",
            "batchGenerateContent",
        ],
    ),
    (
        "gemini-2.5-flash-lite",
        "Gemini 2.5 Flash-Lite",
        &["generateContent", "countTokens"],
    ),
    (
        "gemini-2.0-flash-exp",
        "Gemini 2.0 Flash Experimental",
        &["generateContent", "countTokens", "bidiGenerateContent"],
    ),
    (
        "gemini-2.5-flash-preview-tts",
        "Gemini 2.5 Flash Preview TTS",
        &["countTokens", "generateContent"],
    ),
    (
        "gemini-embedding-001",
        "Gemini Embedding 001",
        &[
            "embedContent",
            "countTextTokens",
            "countTokens",
            "asyncBatchEmbedContent",
        ],
    ),
    (
        "text-embedding-004",
        "Text Embedding 004",
        &["embedContent"],
    ),
    (
        "gemini-pro-vision",
        "Gemini Pro Vision (legacy)",
        &["generateContent"],
    ),
    ("imagen-3.0-generate-002", "Imagen 3.0", &["predict"]),
    (
        "gemini-3-pro-preview",
        "Gemini 3 Pro Preview",
        &["generateContent", "countTokens"],
    ),
];

fn model_json(name: &str, display: &str, methods: &[&str]) -> Value {
    json!({
        "name": format!("models/{name}"),
        "version": "001",
        "displayName": display,
        "description": format!("{display}, as served by the mock."),
        "inputTokenLimit": 1048576,
        "outputTokenLimit": 65536,
        "supportedGenerationMethods": methods,
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
        "thinking": name.starts_with("gemini-2.5")
    })
}

fn find_model(name: &str) -> Option<Value> {
    MODELS
        .iter()
        .find(|(model, _, _)| *model == name)
        .map(|(model, display, methods)| model_json(model, display, methods))
}

fn not_found_model(model: &str, method: &str) -> Response {
    json_answer(
        404,
        &google_error(
            404,
            "NOT_FOUND",
            &format!(
                "models/{model} is not found for API version v1beta, or is not supported for {method}. Call ListModels to see the list of available models and their supported methods."
            ),
            json!([]),
        ),
    )
}

// ----- request handling -----

fn presented_key(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(key) = headers
        .get("x-goog-api-key")
        .and_then(|value| value.to_str().ok())
    {
        return Some(key.to_owned());
    }
    if let Some(key) = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(name, _)| name == "key")
        .map(|(_, value)| value.into_owned())
    {
        return Some(key);
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::to_owned)
}

/// Records the call and decides its behaviour; `Err` is an answer to return at once.
/// A page that is not JSON, as a relay in front of Google may send one.
fn html_page(status: StatusCode, text: &str, content_type: &'static str) -> Response {
    let mut page = Response::new(axum::body::Body::from(format!(
        "<html><body>{text}</body></html>"
    )));
    *page.status_mut() = status;
    page.headers_mut().insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(content_type),
    );
    page
}

async fn admit(
    state: &MockState,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    query: Option<&str>,
    body: &Bytes,
) -> Result<(String, Behavior), Response> {
    let Some(key) = presented_key(headers, query) else {
        return Err(json_answer(
            403,
            &google_error(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
                json!([]),
            ),
        ));
    };
    lock(&state.calls).push(Call {
        key: key.clone(),
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.unwrap_or_default().to_owned(),
        body: serde_json::from_slice(body).unwrap_or(Value::Null),
        headers: headers
            .iter()
            .filter(|(name, _)| *name != "x-goog-api-key" && *name != header::AUTHORIZATION)
            .map(|(name, value)| {
                (
                    name.to_string(),
                    value.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
    });
    let queued = {
        let mut queued = lock(&state.queued);
        match queued.get_mut(&key) {
            Some(list) if !list.is_empty() => Some(list.remove(0)),
            _ => None,
        }
    };
    let behavior = queued.unwrap_or_else(|| {
        lock(&state.behaviors)
            .get(&key)
            .cloned()
            .unwrap_or_default()
    });
    // A model's quota is spent for that model alone.
    let behavior = match behavior {
        Behavior::ModelQuota { ref model, .. }
            if path
                .split_once("/models/")
                .and_then(|(_, rest)| rest.split(':').next())
                != Some(model.as_str()) =>
        {
            Behavior::Ok
        }
        other => other,
    };
    if let Behavior::Slow { millis } = behavior {
        tokio::time::sleep(Duration::from_millis(millis)).await;
    }
    // The quotas Google keeps per key and model (generation counts; listing does not).
    let behavior = match path
        .split_once("/models/")
        .and_then(|(_, rest)| rest.split_once(':'))
    {
        Some((model, "generateContent" | "streamGenerateContent")) if behavior == Behavior::Ok => {
            match state.quotas.admit(&key, model) {
                Ok(()) => behavior,
                Err(refusal) => Behavior::ModelQuota {
                    model: model.to_owned(),
                    per_day: refusal.per_day,
                    retry_delay_seconds: refusal.retry_delay_seconds,
                },
            }
        }
        _ => behavior,
    };
    if let Some((status, error)) = behavior_error(&behavior, &key) {
        return Err(json_answer(status, &error));
    }
    if let Behavior::RelayError { status } = behavior {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        return Err(html_page(status, "Relay error", "text/html; charset=utf-8"));
    }
    if behavior == Behavior::MalformedAnswer {
        return Err(html_page(StatusCode::OK, "Bad gateway", "text/html"));
    }
    Ok((key, behavior))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    page_size: Option<usize>,
    page_token: Option<String>,
}

async fn list_models(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    RawQuery(raw_query): RawQuery,
    Query(query): Query<ListQuery>,
) -> Response {
    if let Err(answer) = admit(
        &state,
        &headers,
        "GET",
        "/v1beta/models",
        raw_query.as_deref(),
        &Bytes::new(),
    )
    .await
    {
        return answer;
    }
    let page_size = query.page_size.unwrap_or(50).clamp(1, 1000);
    let start: usize = query
        .page_token
        .and_then(|token| token.parse().ok())
        .unwrap_or(0);
    let models: Vec<Value> = MODELS
        .iter()
        .skip(start)
        .take(page_size)
        .map(|(model, display, methods)| model_json(model, display, methods))
        .collect();
    let mut answer = json!({"models": models});
    if start + page_size < MODELS.len() {
        answer["nextPageToken"] = json!((start + page_size).to_string());
    }
    json_answer(200, &answer)
}

async fn get_model(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    Path(model): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let path = format!("/v1beta/models/{model}");
    if let Err(answer) = admit(
        &state,
        &headers,
        "GET",
        &path,
        query.as_deref(),
        &Bytes::new(),
    )
    .await
    {
        return answer;
    }
    match find_model(&model) {
        Some(found) => json_answer(200, &found),
        None => json_answer(
            404,
            &google_error(
                404,
                "NOT_FOUND",
                &format!("models/{model} is not found for API version v1beta"),
                json!([]),
            ),
        ),
    }
}

/// The text of the last user turn, which the mock echoes.
fn last_user_text(request: &Value) -> String {
    request["contents"]
        .as_array()
        .and_then(|contents| {
            contents
                .iter()
                .rev()
                .find(|content| content["role"].as_str().unwrap_or("user") == "user")
        })
        .and_then(|content| content["parts"].as_array())
        .map(|parts| {
            parts
                .iter()
                .filter_map(|part| part["text"].as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn answer_text(request: &Value) -> String {
    let last = request["contents"]
        .as_array()
        .and_then(|contents| contents.last())
        .cloned()
        .unwrap_or_default();
    let parts = last["parts"].as_array().cloned().unwrap_or_default();
    let responses: Vec<&Value> = parts
        .iter()
        .filter_map(|part| part.get("functionResponse"))
        .collect();
    if !responses.is_empty() {
        return format!(
            "Tool results: {}",
            Value::Array(responses.into_iter().cloned().collect())
        );
    }
    let mut text = format!("Echo: {}", last_user_text(request));
    for part in &parts {
        if let Some(data) = part.get("inlineData") {
            let size = data["data"]
                .as_str()
                .map_or(0, |encoded| encoded.len() * 3 / 4);
            text.push_str(&format!(
                " [saw {} of about {size} bytes]",
                data["mimeType"].as_str().unwrap_or("?")
            ));
        }
    }
    if request["generationConfig"]["responseMimeType"] == "application/json" {
        return json!({"echo": text}).to_string();
    }
    text
}

/// A 1×1 transparent PNG.
const TINY_PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";

/// The function the mock calls when the request declares tools and no tool result came back
/// yet: the first declared one, every declared property set to the user's text.
fn function_call(request: &Value) -> Option<Value> {
    let declaration = request["tools"].as_array()?.iter().find_map(|tool| {
        tool["functionDeclarations"]
            .as_array()
            .and_then(|declarations| declarations.first())
    })?;
    let last_parts = request["contents"].as_array()?.last()?["parts"]
        .as_array()?
        .clone();
    if last_parts
        .iter()
        .any(|part| part.get("functionResponse").is_some())
    {
        return None;
    }
    let text = last_user_text(request);
    let args: serde_json::Map<String, Value> = declaration["parameters"]["properties"]
        .as_object()
        .map(|properties| {
            properties
                .keys()
                .map(|name| (name.clone(), json!(text)))
                .collect()
        })
        .unwrap_or_default();
    Some(
        json!({"functionCall": {"name": declaration["name"], "args": args}, "thoughtSignature": "c2lnLWZvci1mdW5jdGlvbi1jYWxs"}),
    )
}

/// A whole `generateContent` answer, as the request's config asks for it.
fn full_answer(model: &str, request: &Value, prompt_tokens: u64) -> Value {
    let config = &request["generationConfig"];
    let modalities = config["responseModalities"]
        .to_string()
        .to_ascii_uppercase();
    if modalities.contains("AUDIO") {
        // 0.1 s of a quiet square wave, 16-bit little-endian mono at 24 kHz.
        let pcm: Vec<u8> = (0..2400u32)
            .flat_map(|index| (if index % 48 < 24 { 1000i16 } else { -1000i16 }).to_le_bytes())
            .collect();
        return json!({
            "candidates": [{"content": {"parts": [{"inlineData": {"mimeType": "audio/L16;codec=pcm;rate=24000", "data": base64_encode(&pcm)}}], "role": "model"}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": prompt_tokens, "candidatesTokenCount": 10, "totalTokenCount": prompt_tokens + 10},
            "modelVersion": model
        });
    }
    let mut text = answer_text(request);
    let mut finish = "STOP";
    if let Some(limit) = config["maxOutputTokens"].as_u64()
        && word_count(&text) > limit
    {
        text = text
            .split_whitespace()
            .take(limit as usize)
            .collect::<Vec<_>>()
            .join(" ");
        finish = "MAX_TOKENS";
    }
    let mut parts = Vec::new();
    let thinking = config["thinkingConfig"]["includeThoughts"] == true;
    if thinking {
        parts.push(json!({"text": "Thinking it over.", "thought": true}));
    }
    match function_call(request) {
        Some(call) => parts.push(call),
        None => {
            parts.push(json!({"text": text, "thoughtSignature": "c2lnbmF0dXJlLW9mLXRoZS1tb2Nr"}))
        }
    }
    if modalities.contains("IMAGE") {
        parts.push(json!({"inlineData": {"mimeType": "image/png", "data": TINY_PNG}}));
    }
    let count = config["candidateCount"].as_u64().unwrap_or(1).max(1);
    let candidates: Vec<Value> = (0..count)
        .map(|index| {
            let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "finishReason": finish, "index": index});
            if request["tools"].as_array().is_some_and(|tools| tools.iter().any(|tool| tool.get("googleSearch").is_some())) {
                candidate["groundingMetadata"] = json!({"groundingChunks": [{"web": {"uri": "https://example.com/source", "title": "Example source"}}], "webSearchQueries": [text]});
            }
            candidate
        })
        .collect();
    let completion = word_count(&text) * count;
    let thoughts = if thinking { 3 } else { 0 };
    let mut usage = json!({
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": completion,
        "totalTokenCount": prompt_tokens + completion + thoughts,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}]
    });
    if thinking {
        usage["thoughtsTokenCount"] = json!(thoughts);
    }
    json!({
        "candidates": candidates,
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": "mock-response",
        "mockFutureField": {"kept": true}
    })
}

fn tiny_png_bytes() -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(TINY_PNG)
        .unwrap_or_default()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Imagen's `predict`: one PNG per requested sample, for the aspect ratios Imagen serves.
fn imagen_answer(request: &Value) -> Response {
    let Some(prompt) = request["instances"][0]["prompt"].as_str() else {
        return invalid_argument("instances[0].prompt is required");
    };
    let count = request["parameters"]["sampleCount"].as_u64().unwrap_or(1);
    if !(1..=4).contains(&count) {
        return invalid_argument("sampleCount must be between 1 and 4");
    }
    let ratio = request["parameters"]["aspectRatio"]
        .as_str()
        .unwrap_or("1:1");
    if !["1:1", "3:4", "4:3", "9:16", "16:9"].contains(&ratio) {
        return invalid_argument(&format!("aspectRatio {ratio} is not supported"));
    }
    let predictions: Vec<Value> = (0..count)
        .map(|_| json!({"bytesBase64Encoded": TINY_PNG, "mimeType": "image/png", "prompt": format!("{prompt} ({ratio})")}))
        .collect();
    json_answer(200, &json!({"predictions": predictions}))
}

fn word_count(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

fn generate_answer(
    model: &str,
    text: &str,
    (prompt_tokens, output_tokens): (u64, u64),
    finish: bool,
    index: usize,
) -> Value {
    let mut candidate = json!({
        "content": {"parts": [{"text": text, "thoughtSignature": "c2lnbmF0dXJlLW9mLXRoZS1tb2Nr"}], "role": "model"},
        "index": 0
    });
    if finish {
        candidate["finishReason"] = json!("STOP");
    }
    json!({
        "candidates": [candidate],
        "usageMetadata": {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": output_tokens,
            "totalTokenCount": prompt_tokens + output_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}]
        },
        "modelVersion": model,
        "responseId": format!("mock-response-{index}"),
        // A field no client library knows yet: it must reach the client unchanged.
        "mockFutureField": {"kept": true}
    })
}

/// Gemini 3's rule: in the current turn (the contents after the last user text), the first
/// `functionCall` part of each model step must carry the `thoughtSignature` it came with.
fn missing_thought_signature(request: &Value) -> Option<String> {
    let contents = request["contents"].as_array()?;
    let turn_start = contents
        .iter()
        .rposition(|content| {
            content["role"].as_str().unwrap_or("user") == "user"
                && content["parts"]
                    .as_array()
                    .is_some_and(|parts| parts.iter().any(|part| part.get("text").is_some()))
        })
        .map_or(0, |position| position + 1);
    for (position, content) in contents.iter().enumerate().skip(turn_start) {
        if content["role"] != "model" {
            continue;
        }
        let first_call = content["parts"]
            .as_array()
            .and_then(|parts| parts.iter().find(|part| part.get("functionCall").is_some()));
        if let Some(call) = first_call
            && !call["thoughtSignature"].is_string()
        {
            return Some(format!(
                "Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `default_api:{}` , position {}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.",
                call["functionCall"]["name"].as_str().unwrap_or_default(),
                position + 1
            ));
        }
    }
    None
}

fn invalid_argument(message: &str) -> Response {
    json_answer(
        400,
        &google_error(400, "INVALID_ARGUMENT", message, json!([])),
    )
}

fn embedding(text: &str, dimensions: usize) -> Value {
    let seed = text.bytes().fold(7u64, |hash, byte| {
        hash.wrapping_mul(31).wrapping_add(u64::from(byte))
    });
    let values: Vec<f64> = (0..dimensions)
        .map(|index| (((seed.wrapping_add(index as u64 * 97)) % 2000) as f64 / 1000.0) - 1.0)
        .collect();
    json!({"values": values})
}

async fn model_action(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    Path(model_action): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let path = format!("/v1beta/models/{model_action}");
    let (key, behavior) =
        match admit(&state, &headers, "POST", &path, query.as_deref(), &body).await {
            Ok(admitted) => admitted,
            Err(answer) => return answer,
        };
    let Some((model, action)) = model_action.split_once(':') else {
        return json_answer(404, &google_error(404, "NOT_FOUND", "Not Found", json!([])));
    };
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return invalid_argument("Invalid JSON payload received. Unexpected token.");
    };
    // A file is its uploading key's: any other key is refused, as Google refuses it.
    if let Some(refusal) = state.files.check_references(&key, &request) {
        return json_answer(403, &refusal);
    }
    let Some(found) = find_model(model) else {
        return not_found_model(model, action);
    };
    let methods: Vec<&str> = found["supportedGenerationMethods"]
        .as_array()
        .map(|methods| methods.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let method_ok = |method: &str| methods.contains(&method);
    match action {
        "generateContent" | "streamGenerateContent" if method_ok("generateContent") => {
            if request["contents"]
                .as_array()
                .is_none_or(|contents| contents.is_empty())
            {
                return invalid_argument(
                    "* GenerateContentRequest.contents: contents is not specified\n",
                );
            }
            if model.starts_with("gemini-3")
                && let Some(message) = missing_thought_signature(&request)
            {
                return invalid_argument(&message);
            }
            let prompt_tokens = word_count(&last_user_text(&request));
            if action == "generateContent" {
                return json_answer(200, &full_answer(model, &request, prompt_tokens));
            }
            let text = answer_text(&request);
            let sse = query
                .as_deref()
                .is_some_and(|query| query.contains("alt=sse"));
            let chunk_count = *lock(&state.stream_chunks);
            let delay = Duration::from_millis(*lock(&state.stream_delay_ms));
            stream_answer(
                model,
                &text,
                prompt_tokens,
                (chunk_count, delay),
                sse,
                behavior,
                &request,
            )
        }
        "predict" if method_ok("predict") => imagen_answer(&request),
        "countTokens" if method_ok("countTokens") => {
            let contents = if request.get("generateContentRequest").is_some() {
                &request["generateContentRequest"]
            } else {
                &request
            };
            let total = word_count(&last_user_text(contents));
            json_answer(
                200,
                &json!({"totalTokens": total, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": total}]}),
            )
        }
        "embedContent" if method_ok("embedContent") => {
            let dimensions = request["outputDimensionality"].as_u64().unwrap_or(8) as usize;
            let text = request["content"]["parts"][0]["text"]
                .as_str()
                .unwrap_or_default();
            json_answer(200, &json!({"embedding": embedding(text, dimensions)}))
        }
        "batchEmbedContents" if method_ok("embedContent") => {
            let Some(requests) = request["requests"].as_array() else {
                return invalid_argument(
                    "* BatchEmbedContentsRequest.requests: requests is not specified\n",
                );
            };
            let mut embeddings = Vec::new();
            for (index, item) in requests.iter().enumerate() {
                if item["model"].as_str() != Some(&format!("models/{model}")) {
                    return invalid_argument(&format!(
                        "* BatchEmbedContentsRequest.requests[{index}].model: model must be models/{model}\n"
                    ));
                }
                let dimensions = item["outputDimensionality"].as_u64().unwrap_or(8) as usize;
                let text = item["content"]["parts"][0]["text"]
                    .as_str()
                    .unwrap_or_default();
                embeddings.push(embedding(text, dimensions));
            }
            json_answer(200, &json!({"embeddings": embeddings}))
        }
        _ => not_found_model(model, action),
    }
}

fn stream_answer(
    model: &str,
    text: &str,
    prompt_tokens: u64,
    (chunk_count, delay): (usize, Duration),
    sse: bool,
    behavior: Behavior,
    request: &Value,
) -> Response {
    if let Some(call) = function_call(request) {
        // A function call comes whole, in one chunk.
        let chunk = json!({
            "candidates": [{"content": {"parts": [call], "role": "model"}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": prompt_tokens, "candidatesTokenCount": 5, "totalTokenCount": prompt_tokens + 5},
            "modelVersion": model
        });
        let body = if sse {
            format!("data: {chunk}\r\n\r\n")
        } else {
            format!("[{chunk}]")
        };
        let content_type = if sse {
            "text/event-stream"
        } else {
            "application/json; charset=UTF-8"
        };
        return ([(header::CONTENT_TYPE, content_type)], body).into_response();
    }
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    let per_chunk = words.len().div_ceil(chunk_count).max(1);
    let mut pieces: Vec<String> = words
        .chunks(per_chunk)
        .map(|chunk| chunk.concat())
        .collect();
    while pieces.len() < chunk_count {
        pieces.push(String::new());
    }
    let total = pieces.len();
    let cut_after = match behavior {
        Behavior::CutStreamAfter { chunks } => Some(chunks),
        _ => None,
    };
    let mut frames: Vec<Result<Bytes, std::io::Error>> = Vec::new();
    for (index, piece) in pieces.iter().enumerate() {
        if cut_after == Some(index) {
            frames.push(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "mock cut the stream",
            )));
            break;
        }
        // Like Gemini's, each chunk's usage is the stream's so far.
        let so_far: String = pieces[..=index].concat();
        let chunk = generate_answer(
            model,
            piece,
            (prompt_tokens, word_count(&so_far)),
            index + 1 == total,
            index,
        )
        .to_string();
        let frame = if sse {
            format!("data: {chunk}\r\n\r\n")
        } else if index == 0 {
            format!("[{chunk}")
        } else {
            format!(",\r\n{chunk}")
        };
        frames.push(Ok(Bytes::from(frame)));
    }
    if !sse && cut_after.is_none() {
        frames.push(Ok(Bytes::from_static(b"]")));
    }
    // Frames go out one by one with a short pause, as a model's tokens would.
    let stream = futures::StreamExt::then(futures::stream::iter(frames), move |frame| async move {
        tokio::time::sleep(delay).await;
        frame
    });
    let content_type = if sse {
        "text/event-stream"
    } else {
        "application/json; charset=UTF-8"
    };
    (
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(stream),
    )
        .into_response()
}

// ----- Google's OpenAI-compatible layer (/v1beta/openai/…) -----

async fn openai_admit(
    state: &MockState,
    headers: &HeaderMap,
    path: &str,
    body: &Bytes,
) -> Result<Value, Response> {
    let (_, _) = admit(
        state,
        headers,
        if body.is_empty() { "GET" } else { "POST" },
        path,
        None,
        body,
    )
    .await?;
    if body.is_empty() {
        return Ok(Value::Null);
    }
    let request: Value = serde_json::from_slice(body)
        .map_err(|_| invalid_argument("Invalid JSON payload received."))?;
    // Google's OpenAI layer refuses what it does not know, such as top_k, and null values.
    if let Some(object) = request.as_object()
        && let Some((name, _)) = object
            .iter()
            .find(|(name, value)| *name == "top_k" || value.is_null())
    {
        return Err(invalid_argument(&format!(
            "Invalid JSON payload received. Unknown name or null value: \"{name}\""
        )));
    }
    Ok(request)
}

async fn openai_models(State(state): State<Arc<MockState>>, headers: HeaderMap) -> Response {
    if let Err(answer) =
        openai_admit(&state, &headers, "/v1beta/openai/models", &Bytes::new()).await
    {
        return answer;
    }
    let data: Vec<Value> = MODELS
        .iter()
        .map(|(model, _, _)| json!({"id": format!("models/{model}"), "object": "model", "owned_by": "google"}))
        .collect();
    json_answer(200, &json!({"object": "list", "data": data}))
}

async fn openai_chat(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request =
        match openai_admit(&state, &headers, "/v1beta/openai/chat/completions", &body).await {
            Ok(request) => request,
            Err(answer) => return answer,
        };
    let text = request["messages"]
        .as_array()
        .and_then(|messages| {
            messages
                .iter()
                .rev()
                .find(|message| message["role"] == "user")
        })
        .and_then(|message| message["content"].as_str())
        .map(|content| format!("Echo: {content}"))
        .unwrap_or_default();
    let model = request["model"].as_str().unwrap_or_default().to_owned();
    if request["stream"] == true {
        let mut frames: Vec<Result<Bytes, std::io::Error>> = Vec::new();
        for (index, word) in text.split_inclusive(' ').enumerate() {
            let mut delta = json!({"content": word});
            if index == 0 {
                delta["role"] = json!("assistant");
            }
            let chunk = json!({"id": "mock-openai", "object": "chat.completion.chunk", "created": 0, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": null}]});
            frames.push(Ok(Bytes::from(format!("data: {chunk}\n\n"))));
        }
        let last = json!({"id": "mock-openai", "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
        frames.push(Ok(Bytes::from(format!("data: {last}\n\n"))));
        frames.push(Ok(Bytes::from_static(b"data: [DONE]\n\n")));
        return (
            [(header::CONTENT_TYPE, "text/event-stream")],
            Body::from_stream(futures::stream::iter(frames)),
        )
            .into_response();
    }
    json_answer(
        200,
        &json!({
            "id": "mock-openai", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}
        }),
    )
}

async fn openai_embeddings(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = match openai_admit(&state, &headers, "/v1beta/openai/embeddings", &body).await {
        Ok(request) => request,
        Err(answer) => return answer,
    };
    let inputs: Vec<String> = match &request["input"] {
        Value::String(text) => vec![text.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|item| item.as_str().map(str::to_owned))
            .collect(),
        _ => return invalid_argument("input is required"),
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| json!({"object": "embedding", "index": index, "embedding": embedding(text, 8)["values"]}))
        .collect();
    json_answer(
        200,
        &json!({"object": "list", "data": data, "model": request["model"], "usage": {"prompt_tokens": 2, "total_tokens": 2}}),
    )
}

async fn openai_images(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request =
        match openai_admit(&state, &headers, "/v1beta/openai/images/generations", &body).await {
            Ok(request) => request,
            Err(answer) => return answer,
        };
    let count = request["n"].as_u64().unwrap_or(1);
    let data: Vec<Value> = (0..count).map(|_| json!({"b64_json": TINY_PNG})).collect();
    json_answer(200, &json!({"created": 0, "data": data}))
}
