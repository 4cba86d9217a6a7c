//! One call to the upstream as the attempt loop sees it: what to send, who asked, what the logs
//! say of it, and how it ended.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use gb_proto::chat::ChatError;
use gb_runtime::now_ms;
use gb_upstream::{KeyPlacement, UpstreamFailure};

use super::send::EventStream;
use crate::pool::{NoKey, Picked};

#[derive(Debug)]
pub enum CallError {
    /// No key could be tried at all.
    NoKey(NoKey),
    /// The caller may not use the model (a managed client token's rule): no attempt made.
    ModelNotAllowed(String),
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
    /// The client request this call answers, when the call writes its request-log row.
    pub client_request: Option<Arc<ClientRow>>,
    /// Globs of the models the caller may use (a managed client token's rule); empty: any.
    pub allowed_models: Arc<[String]>,
}

/// The client request a call answers: its request-log row is written once, by the attempt loop
/// when an attempt was made, else by the handler that refused the call.
#[derive(Debug)]
pub struct ClientRow {
    pub request: gb_proto::chat::v1::ClientRequest,
    pub started: Instant,
    written: std::sync::atomic::AtomicBool,
}

impl ClientRow {
    /// Whether the row is this caller's to write (true once).
    pub fn take(&self) -> bool {
        !self
            .written
            .swap(true, std::sync::atomic::Ordering::Relaxed)
    }

    pub fn is_written(&self) -> bool {
        self.written.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Origin {
    pub fn of(context: Option<&gb_proto::chat::v1::CallContext>, operation: &'static str) -> Self {
        Origin {
            client: context
                .map(|context| context.caller.chars().take(64).collect())
                .unwrap_or_default(),
            operation,
            client_request: context
                .and_then(|context| context.client_request.clone())
                .map(|request| {
                    Arc::new(ClientRow {
                        request,
                        started: Instant::now(),
                        written: Default::default(),
                    })
                }),
            allowed_models: context
                .map(|context| context.allowed_models.as_slice().into())
                .unwrap_or_default(),
        }
    }

    /// Whether the caller may use `model` (globs matched without case).
    pub fn may_use(&self, model: &str) -> bool {
        self.allowed_models.is_empty()
            || model.is_empty()
            || self.allowed_models.iter().any(|glob| {
                globset::GlobBuilder::new(glob)
                    .case_insensitive(true)
                    .build()
                    .is_ok_and(|glob| glob.compile_matcher().is_match(model))
            })
    }
}

/// What the logs say of a call; owned, since a stream's records are written after the call.
#[derive(Clone)]
pub struct CallRecord {
    pub(super) origin: Origin,
    pub(super) method: String,
    pub(super) path: String,
    pub(super) model: String,
    pub(super) body: Option<Bytes>,
    /// `MAX_FAILURES` when the call began: this replica's own count disables a key there.
    pub(super) max_failures: u32,
    /// `QUOTA_RESET_TIMEZONE` when the call began: where a daily quota it spends resets.
    pub(super) quota_reset: gb_runtime::settings::TimeZone,
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
    /// The gateway files the body references: each attempt's body names its key's copies.
    pub files: Option<Arc<crate::files::FileRefs>>,
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
            files: None,
        }
    }

    pub fn with_files(mut self, files: Option<Arc<crate::files::FileRefs>>) -> Self {
        self.files = files;
        self
    }

    /// The body of an attempt on `key`.
    pub(super) async fn body_for(
        &self,
        link: &crate::files::FileLink,
        key: &crate::pool::LocalKey,
        upstream: &gb_upstream::Upstream,
    ) -> Result<Option<Bytes>, UpstreamFailure> {
        match &self.files {
            Some(files) => link.body_for(files, key, upstream).await.map(Some),
            None => Ok(self.body.clone()),
        }
    }

    /// What the logs say of this call; the body only when error logs keep it (a stream's
    /// record lives as long as the stream).
    pub(super) fn record(&self, settings: &crate::chat_settings::ChatSettings) -> CallRecord {
        CallRecord {
            origin: self.origin.clone(),
            method: self.method.to_string(),
            path: self.path.to_owned(),
            model: self.model.to_owned(),
            body: self.body.clone().filter(|_| settings.record_request_body),
            max_failures: settings.max_failures,
            quota_reset: settings.quota_reset,
        }
    }
}

pub struct Answer {
    pub body: Bytes,
    pub attempts: u32,
}

impl CallError {
    /// The status the client gets for it.
    pub fn status(&self) -> u16 {
        match self {
            CallError::Upstream(failure) => failure.status,
            CallError::NoKey(no_key) => no_key_error(no_key).http_status,
            CallError::ModelNotAllowed(_) => 403,
        }
    }
}

/// A stream whose first event has arrived: the rest is read on demand.
pub struct OpenStream {
    pub record: CallRecord,
    pub first: Bytes,
    pub rest: EventStream,
    pub key: Picked,
    pub started: Instant,
    pub attempts: u32,
}

/// What the client gets when no key could be tried: 503, or 429 with the time until the
/// first cooldown ends.
fn no_key_error(no_key: &NoKey) -> ChatError {
    match no_key {
        NoKey::NoneUsable => ChatError::local(503, "no usable API key in the pool"),
        NoKey::AllCooling { until_ms } => {
            let seconds = (until_ms - now_ms()).max(0) / 1000 + 1;
            let mut error = ChatError::local(
                429,
                format!("every API key in the pool is rate-limited; retry in {seconds}s"),
            );
            error.retry_after_seconds = u32::try_from(seconds).ok();
            error
        }
        NoKey::AllTried => ChatError::local(503, "every usable API key failed"),
    }
}

/// What the client gets: the upstream's status and body, or one made in the same shape.
impl From<CallError> for ChatError {
    fn from(error: CallError) -> Self {
        match error {
            CallError::Upstream(failure) => failure.into_chat_error(),
            CallError::NoKey(no_key) => no_key_error(&no_key),
            CallError::ModelNotAllowed(model) => ChatError::local(
                403,
                format!("this client token may not use the model {model}"),
            ),
        }
    }
}
