//! The attempt loop: one request, up to `MAX_RETRIES` attempts, each on another key.
//!
//! The client's own errors end the loop at once and are not counted against the key; a dead key
//! is disabled, a quota error cools the key down, a transient error counts a failure; each
//! outcome is reported in the background. When every attempt fails, the last upstream status and
//! body (key values masked) are returned. A stream is retried only until its first event has been
//! read: after that, a failure ends the stream and nothing is sent twice.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use gb_proto::keys::v1 as pb;
use gb_runtime::now_ms;
use gb_runtime::secrets::{mask_key, redact};
use gb_runtime::upstream::{
    FailureClass, KeyPlacement, Upstream, UpstreamFailure, google_error_body,
};
use tracing::Instrument;

use crate::chat_settings::ChatSettings;
use crate::outcomes::OutcomeReporter;
use crate::pool::{LocalKey, LocalPool, NoKey};
use gb_proto::logging::v1 as logs;
use gb_runtime::live::Live;
use gb_runtime::log_records::{LogRecord, LogShipper, recorded_body};

/// When a 429 carries no `RetryInfo`, this replica avoids the key this long on its own.
const LOCAL_DEFAULT_COOLDOWN: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub enum CallError {
    /// No key could be tried at all.
    NoKey(NoKey),
    /// The last attempt's failure.
    Upstream(UpstreamFailure),
}

/// Who asked, and for which operation: carried into the request and error logs.
#[derive(Clone, Debug, Default)]
pub struct Origin {
    /// The client token's stable name, as the gateway gives it in the call's `CallContext`.
    pub client: String,
    /// The operation, e.g. `gemini-generate`, `openai-chat-stream`.
    pub operation: &'static str,
}

impl Origin {
    pub fn of(context: Option<&gb_proto::chat::v1::CallContext>, operation: &'static str) -> Self {
        Origin {
            client: context
                .map(|context| context.caller.chars().take(64).collect())
                .unwrap_or_default(),
            operation,
        }
    }
}

/// What the logs say of a call; owned, since a stream's records are written after the call.
#[derive(Clone)]
pub struct CallRecord {
    origin: Origin,
    method: String,
    path: String,
    model: String,
    body: Option<Bytes>,
}

/// One request to the upstream, sent on whichever key the loop picks.
#[derive(Clone)]
pub struct Call<'a> {
    pub method: reqwest::Method,
    pub path: &'a str,
    pub body: Option<Bytes>,
    /// The model, for outcome records and spans.
    pub model: &'a str,
    pub placement: KeyPlacement,
    /// A key outside the pool (`PAID_KEY`): one attempt, no outcome report.
    pub fixed_key: Option<&'a str>,
    pub origin: Origin,
}

impl<'a> Call<'a> {
    /// A Gemini-native call through the pool.
    pub fn native(
        origin: Origin,
        method: reqwest::Method,
        path: &'a str,
        body: Option<Bytes>,
        model: &'a str,
    ) -> Self {
        Call {
            method,
            path,
            body,
            model,
            placement: KeyPlacement::GoogApiKey,
            fixed_key: None,
            origin,
        }
    }

    /// What the logs say of this call; the body only when error logs keep it (a stream's
    /// record lives as long as the stream).
    fn record(&self, keep_body: bool) -> CallRecord {
        CallRecord {
            origin: self.origin.clone(),
            method: self.method.to_string(),
            path: self.path.to_owned(),
            model: self.model.to_owned(),
            body: self.body.clone().filter(|_| keep_body),
        }
    }
}

/// A successful attempt: its result, its key, when it started, how many attempts it took.
struct Attempted<T> {
    value: T,
    /// What the logs say of the call, made once for all its attempts.
    record: CallRecord,
    key: Arc<LocalKey>,
    started: Instant,
    attempts: u32,
}

pub struct Answer {
    pub body: Bytes,
    pub attempts: u32,
}

pub type EventStream =
    Pin<Box<dyn Stream<Item = Result<Event, EventStreamError<reqwest::Error>>> + Send>>;

/// A stream whose first event has arrived: the rest is read on demand.
pub struct OpenStream {
    pub record: CallRecord,
    pub first: Bytes,
    pub rest: EventStream,
    pub key: Arc<LocalKey>,
    pub started: Instant,
    pub attempts: u32,
}

#[derive(Clone)]
pub struct Attempts {
    pub pool: Arc<LocalPool>,
    pub reporter: OutcomeReporter,
    pub logs: LogShipper,
    pub settings: Live<ChatSettings>,
}

/// Token counts of a Gemini answer's `usageMetadata`.
#[derive(Default, Clone, Copy)]
pub struct Usage {
    pub prompt: u64,
    pub completion: u64,
}

impl Usage {
    pub fn from_body(body: &[u8]) -> Option<Self> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Metadata {
            #[serde(default)]
            prompt_token_count: u64,
            #[serde(default)]
            candidates_token_count: u64,
            #[serde(default)]
            thoughts_token_count: u64,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct WithUsage {
            usage_metadata: Option<Metadata>,
        }
        let metadata = serde_json::from_slice::<WithUsage>(body)
            .ok()?
            .usage_metadata?;
        Some(Usage {
            prompt: metadata.prompt_token_count,
            completion: metadata.candidates_token_count + metadata.thoughts_token_count,
        })
    }
}

fn no_key_failure(no_key: &NoKey) -> UpstreamFailure {
    let (status, google_status, message) = match no_key {
        NoKey::NoneUsable => (
            503,
            "UNAVAILABLE",
            "no usable API key in the pool".to_owned(),
        ),
        NoKey::AllCooling { until_ms } => {
            let seconds = (until_ms - now_ms()).max(0) / 1000 + 1;
            (
                429,
                "RESOURCE_EXHAUSTED",
                format!("every API key in the pool is rate-limited; retry in {seconds}s"),
            )
        }
        NoKey::AllTried => (503, "UNAVAILABLE", "every usable API key failed".to_owned()),
    };
    UpstreamFailure {
        status,
        body: google_error_body(status, google_status, &message),
        class: FailureClass::Transient,
    }
}

impl CallError {
    /// What the client gets: the upstream's status and body, or one made in the same shape.
    pub fn into_failure(self) -> UpstreamFailure {
        match self {
            CallError::Upstream(failure) => failure,
            CallError::NoKey(no_key) => no_key_failure(&no_key),
        }
    }
}

impl Attempts {
    fn pick(
        &self,
        call: &Call<'_>,
        tried: &[i64],
        last: &mut Option<UpstreamFailure>,
    ) -> Result<Arc<LocalKey>, CallError> {
        if let Some(value) = call.fixed_key {
            return match last.take() {
                None => Ok(Arc::new(LocalKey::outside_pool(value))),
                Some(failure) => Err(CallError::Upstream(failure)),
            };
        }
        self.pool
            .pick(tried, now_ms())
            .map_err(|no_key| match last.take() {
                Some(failure) => CallError::Upstream(failure),
                None => CallError::NoKey(no_key),
            })
    }

    /// The request-log row of an attempt.
    fn attempt_record(
        record: &CallRecord,
        key: &LocalKey,
        started: Instant,
        status: u16,
        outcome: &'static str,
        usage: Usage,
    ) -> logs::RequestRecord {
        logs::RequestRecord {
            at_ms: now_ms(),
            kind: logs::RecordKind::Attempt as i32,
            method: record.method.clone(),
            path: record.path.clone(),
            model: record.model.clone(),
            key_id: key.id,
            key_masked: mask_key(&key.value),
            status_code: u32::from(status),
            latency_ms: latency_ms(started),
            prompt_tokens: usage.prompt,
            completion_tokens: usage.completion,
            client: record.origin.client.clone(),
            outcome: outcome.to_owned(),
        }
    }

    pub fn report_success(
        &self,
        record: &CallRecord,
        key: &LocalKey,
        started: Instant,
        usage: Usage,
    ) {
        self.logs.push(LogRecord::Request(Self::attempt_record(
            record, key, started, 200, "success", usage,
        )));
        if !key.in_pool() {
            return;
        }
        self.reporter.push(pb::Outcome {
            key_id: key.id,
            class: pb::OutcomeClass::Success as i32,
            http_status: 200,
            latency_ms: latency_ms(started),
            model: record.model.clone(),
            at_ms: now_ms(),
            prompt_tokens: usage.prompt,
            completion_tokens: usage.completion,
            ..Default::default()
        });
    }

    /// Reports a failed attempt and applies its verdict to this replica's view at once.
    pub fn report_failure(
        &self,
        record: &CallRecord,
        key: &LocalKey,
        started: Instant,
        failure: &UpstreamFailure,
    ) {
        let model = record.model.as_str();
        let (class, retry_after_ms) = failure.class.outcome();
        match failure.class {
            FailureClass::DeadKey => {
                key.mark_disabled();
                self.pool.refresh();
            }
            FailureClass::Quota { retry_after } => {
                let wait = retry_after.unwrap_or(LOCAL_DEFAULT_COOLDOWN);
                key.mark_cooling_until(now_ms() + wait.as_millis() as i64);
            }
            FailureClass::ClientError | FailureClass::Transient => {}
        }
        tracing::warn!(
            key.id = key.id,
            key.masked = %mask_key(&key.value),
            http.response.status_code = failure.status,
            class = ?failure.class,
            model,
            "upstream attempt failed"
        );
        let outcome = outcome_name(failure.class);
        self.logs.push(LogRecord::Request(Self::attempt_record(
            record,
            key,
            started,
            failure.status,
            outcome,
            Usage::default(),
        )));
        self.logs.push(LogRecord::Error(logs::ErrorRecord {
            at_ms: now_ms(),
            key_id: key.id,
            key_masked: mask_key(&key.value),
            model: model.to_owned(),
            error_type: record.origin.operation.to_owned(),
            error_class: outcome.to_owned(),
            error_code: u32::from(failure.status),
            // Redacted here too: a failure read from a stream after its first event is not.
            error_message: redact(&recorded_body(&failure.body), &key.value),
            request_body: record
                .body
                .as_deref()
                .map(recorded_body)
                .unwrap_or_default(),
            client: record.origin.client.clone(),
        }));
        if !key.in_pool() {
            return;
        }
        self.reporter.push(pb::Outcome {
            key_id: key.id,
            class: class as i32,
            http_status: u32::from(failure.status),
            latency_ms: latency_ms(started),
            retry_after_ms,
            error: redact(&failure.message(), &key.value),
            model: model.to_owned(),
            at_ms: now_ms(),
            ..Default::default()
        });
    }

    /// The attempt loop shared by unary calls and streams: up to `MAX_RETRIES` attempts, each
    /// on another key, until one succeeds or fails with the client's own error. Each failure is
    /// reported; the success is the caller's to report (a stream's only ends later).
    async fn attempt<T, Send, Sent>(
        &self,
        settings: &ChatSettings,
        call: &Call<'_>,
        mut send: Send,
    ) -> Result<Attempted<T>, CallError>
    where
        Send: FnMut(Arc<LocalKey>) -> Sent,
        Sent: Future<Output = Result<T, UpstreamFailure>>,
    {
        let mut tried = Vec::new();
        let mut last_failure = None;
        let record = call.record(settings.record_request_body);
        for attempt in 1..=settings.max_retries {
            let key = self.pick(call, &tried, &mut last_failure)?;
            tried.push(key.id);
            let started = Instant::now();
            let span = attempt_span(attempt, &key, call.model, &settings.upstream_host);
            match send(key.clone()).instrument(span.clone()).await {
                Ok(value) => {
                    span.record("outcome", "success");
                    span.record("http.response.status_code", 200);
                    record_attempt("success", started);
                    return Ok(Attempted {
                        value,
                        record,
                        key,
                        started,
                        attempts: attempt,
                    });
                }
                Err(failure) => {
                    let outcome = outcome_name(failure.class);
                    span.record("outcome", outcome);
                    span.record("http.response.status_code", failure.status);
                    record_attempt(outcome, started);
                    self.report_failure(&record, &key, started, &failure);
                    if !failure.class.is_retryable() {
                        return Err(CallError::Upstream(failure));
                    }
                    last_failure = Some(failure);
                }
            }
        }
        Err(match last_failure {
            Some(failure) => CallError::Upstream(failure),
            None => CallError::NoKey(NoKey::NoneUsable),
        })
    }

    /// A unary call (generate, count, embed, list, get) with retries over keys.
    pub async fn unary(&self, call: Call<'_>) -> Result<Answer, CallError> {
        let settings = self.settings.get();
        let done = self
            .attempt(&settings, &call, |key| {
                self.send_unary(&settings.upstream, &call, key)
            })
            .await?;
        let usage = Usage::from_body(&done.value).unwrap_or_default();
        self.report_success(&done.record, &done.key, done.started, usage);
        Ok(Answer {
            body: done.value,
            attempts: done.attempts,
        })
    }

    async fn send_unary(
        &self,
        upstream: &Upstream,
        call: &Call<'_>,
        key: Arc<LocalKey>,
    ) -> Result<Bytes, UpstreamFailure> {
        let mut request = upstream.request_as(
            call.method.clone(),
            call.path,
            &key.value,
            call.placement,
            true,
        );
        if let Some(body) = call.body.clone() {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request
            .send()
            .await
            .map_err(|error| UpstreamFailure::from_transport(&error))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|error| UpstreamFailure::from_transport(&error))?;
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err(UpstreamFailure::from_response(status, body).redacted(&key.value))
        }
    }

    /// Opens a stream, retrying over keys until its first event arrives.
    pub async fn open_stream(&self, call: Call<'_>) -> Result<OpenStream, CallError> {
        let settings = self.settings.get();
        let done = self
            .attempt(&settings, &call, |key| {
                self.send_stream(&settings.upstream, &call, key)
            })
            .await?;
        let (first, rest) = done.value;
        Ok(OpenStream {
            record: done.record,
            first,
            rest,
            key: done.key,
            started: done.started,
            attempts: done.attempts,
        })
    }

    async fn send_stream(
        &self,
        upstream: &Upstream,
        call: &Call<'_>,
        key: Arc<LocalKey>,
    ) -> Result<(Bytes, EventStream), UpstreamFailure> {
        let response = upstream
            .request_as(
                call.method.clone(),
                call.path,
                &key.value,
                call.placement,
                false,
            )
            .header("content-type", "application/json")
            .body(call.body.clone().unwrap_or_default())
            .send()
            .await
            .map_err(|error| UpstreamFailure::from_transport(&error))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let body = response.bytes().await.unwrap_or_default();
            return Err(UpstreamFailure::from_response(status, body).redacted(&key.value));
        }
        let mut events: EventStream = Box::pin(response.bytes_stream().eventsource());
        match events.next().await {
            Some(Ok(event)) => match stream_error(&event.data) {
                Some(failure) => Err(failure.redacted(&key.value)),
                None => Ok((Bytes::from(event.data), events)),
            },
            Some(Err(error)) => Err(broken_stream(&error)),
            None => Err(UpstreamFailure {
                status: 502,
                body: google_error_body(
                    502,
                    "UNAVAILABLE",
                    "the upstream returned an empty stream",
                ),
                class: FailureClass::Transient,
            }),
        }
    }
}

fn latency_ms(started: Instant) -> u32 {
    started.elapsed().as_millis().min(u128::from(u32::MAX)) as u32
}

fn outcome_name(class: FailureClass) -> &'static str {
    match class {
        FailureClass::ClientError => "client_error",
        FailureClass::DeadKey => "dead_key",
        FailureClass::Quota { .. } => "quota",
        FailureClass::Transient => "transient",
    }
}

/// `gemini_upstream_attempts_total` and `gemini_upstream_attempt_duration_seconds` by outcome.
fn record_attempt(outcome: &'static str, started: Instant) {
    metrics::counter!("gemini_upstream_attempts_total", "outcome" => outcome).increment(1);
    metrics::histogram!("gemini_upstream_attempt_duration_seconds", "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
}

fn attempt_span(attempt: u32, key: &LocalKey, model: &str, host: &str) -> tracing::Span {
    tracing::info_span!(
        "upstream.attempt",
        otel.kind = "client",
        server.address = host,
        attempt,
        key.id = key.id,
        key.masked = %mask_key(&key.value),
        gen_ai.request.model = model,
        http.response.status_code = tracing::field::Empty,
        outcome = tracing::field::Empty,
    )
}

/// An SSE event that carries `{"error": …}` instead of a chunk.
pub fn stream_error(data: &str) -> Option<UpstreamFailure> {
    let trimmed = data.trim_start().strip_prefix('{')?.trim_start();
    if !trimmed.starts_with("\"error\"") {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(data).ok()?;
    let status = value["error"]["code"]
        .as_u64()
        .and_then(|code| u16::try_from(code).ok())
        .unwrap_or(500);
    Some(UpstreamFailure::from_response(
        status,
        Bytes::from(data.to_owned()),
    ))
}

/// A stream that broke while being read.
pub fn broken_stream(error: &EventStreamError<reqwest::Error>) -> UpstreamFailure {
    match error {
        EventStreamError::Transport(error) => UpstreamFailure::from_transport(error),
        other => UpstreamFailure {
            status: 502,
            body: google_error_body(
                502,
                "UNAVAILABLE",
                &format!("the upstream stream was malformed: {other}"),
            ),
            class: FailureClass::Transient,
        },
    }
}
