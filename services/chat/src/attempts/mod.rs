//! The attempt loop: one request, up to `MAX_RETRIES` attempts, each on another key.
//!
//! The client's own errors end the loop at once and are not counted against the key; a dead key
//! is disabled, a quota error cools the key down, a transient error counts a failure; each
//! outcome is reported in the background. When every attempt fails, the last upstream status and
//! body (key values masked) are returned. A stream is retried only until its first event has been
//! read: after that, a failure ends the stream and nothing is sent twice.

mod call;
mod reports;
mod send;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use gb_proto::keys::v1::OutcomeClass;
use gb_runtime::log_records::LogShipper;
use gb_runtime::now_ms;
use gb_upstream::UpstreamFailure;
use tracing::Instrument;

pub use call::{Answer, Call, CallError, CallRecord, OpenStream, Origin};
pub use send::{broken_stream, stream_error};

use crate::chat_settings::ChatSettings;
use crate::outcomes::OutcomeReporter;
use crate::pool::{LocalKey, LocalPool, NoKey, Picked};
use crate::usage::Usage;
pub(crate) use reports::Ending;
use reports::{attempt_span, record_attempt};

/// A successful attempt: its result, its key, when it started, how many attempts it took.
struct Attempted<T> {
    value: T,
    /// What the logs say of the call, made once for all its attempts.
    record: CallRecord,
    key: Picked,
    started: Instant,
    attempts: u32,
}

/// What the loop needs: this replica's view of the pool, and where outcomes and logs go.
#[derive(Clone)]
pub struct Attempts {
    pub pool: Arc<LocalPool>,
    pub reporter: OutcomeReporter,
    pub logs: LogShipper,
    /// The files service, for requests that reference the gateway's files.
    pub files: crate::files::FileLink,
}

impl Attempts {
    fn pick(
        &self,
        call: &Call<'_>,
        tried: &[i64],
        last: &mut Option<UpstreamFailure>,
    ) -> Result<Picked, CallError> {
        if let Some(value) = call.fixed_key {
            return match last.take() {
                None => Ok(Picked::outside_pool(value)),
                Some(failure) => Err(CallError::Upstream(failure)),
            };
        }
        let now = now_ms();
        let preferred = call
            .files
            .as_ref()
            .map(|files| files.preferred_keys(now))
            .unwrap_or_default();
        self.pool
            .pick_preferring(call.model, tried, &preferred, now)
            .map_err(|no_key| match last.take() {
                Some(failure) => CallError::Upstream(failure),
                None => CallError::NoKey(no_key),
            })
    }

    /// The attempt loop shared by unary calls and streams: up to `MAX_RETRIES` attempts, each
    /// on another key, until one succeeds or fails with the client's own error. Each failure is
    /// reported, and a call that fails its client request's row; the success is the caller's
    /// to report (a stream's only ends later).
    async fn attempt<T, Send, Sent>(
        &self,
        settings: &ChatSettings,
        call: &Call<'_>,
        send: Send,
    ) -> Result<Attempted<T>, CallError>
    where
        Send: FnMut(Arc<LocalKey>) -> Sent,
        Sent: Future<Output = Result<T, UpstreamFailure>>,
    {
        let record = call.record(settings);
        let mut last = None;
        let began = Instant::now();
        let tried = if call.origin.may_use(call.model) {
            self.try_keys(settings, call, &record, send, &mut last)
                .await
        } else {
            Err(CallError::ModelNotAllowed(call.model.to_owned()))
        };
        match tried {
            Ok((value, key, started, attempts)) => Ok(Attempted {
                value,
                record,
                key,
                started,
                attempts,
            }),
            Err(error) => {
                let (key, outcome, attempts) = match &last {
                    Some((key, outcome, attempts)) => (Some(&**key), *outcome, *attempts),
                    None => (None, OutcomeClass::Unspecified, 0),
                };
                self.report_call_failed(
                    &record,
                    Ending {
                        key,
                        started: began,
                        status: error.status(),
                        outcome,
                        usage: Usage::default(),
                        attempts,
                    },
                );
                Err(error)
            }
        }
    }

    /// The attempts themselves; `last` keeps the last failed attempt's key, outcome and number.
    async fn try_keys<T, Send, Sent>(
        &self,
        settings: &ChatSettings,
        call: &Call<'_>,
        record: &CallRecord,
        mut send: Send,
        last: &mut Option<(Arc<LocalKey>, OutcomeClass, u32)>,
    ) -> Result<(T, Picked, Instant, u32), CallError>
    where
        Send: FnMut(Arc<LocalKey>) -> Sent,
        Sent: Future<Output = Result<T, UpstreamFailure>>,
    {
        let mut tried = Vec::new();
        let mut last_failure = None;
        for attempt in 1..=settings.max_retries {
            let key = self.pick(call, &tried, &mut last_failure)?;
            tried.push(key.id);
            let started = Instant::now();
            let span = attempt_span(attempt, &key, call.model, &settings.upstream_host);
            match send(key.key.clone()).instrument(span.clone()).await {
                Ok(value) => {
                    key.count_success();
                    let outcome = OutcomeClass::Success.label();
                    span.record("outcome", outcome);
                    span.record("http.response.status_code", 200);
                    record_attempt(outcome, started);
                    return Ok((value, key, started, attempt));
                }
                Err(failure) => {
                    let class = failure.class.outcome_class();
                    span.record("outcome", class.label());
                    span.record("http.response.status_code", failure.status);
                    record_attempt(class.label(), started);
                    self.report_failure(record, &key, started, &failure);
                    *last = Some((key.key.clone(), class, attempt));
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

    /// A unary call (generate, count, embed, list, get) with retries over keys, on the
    /// settings the request read when it began.
    pub async fn unary(
        &self,
        settings: &ChatSettings,
        call: Call<'_>,
    ) -> Result<Answer, CallError> {
        let done = self
            .attempt(settings, &call, |key| {
                self.send_unary(&settings.upstream, &call, key)
            })
            .await?;
        let usage = Usage::from_body(&done.value).unwrap_or_default();
        self.report_success(&done.record, &done.key, done.started, usage, done.attempts);
        Ok(Answer {
            body: done.value,
            attempts: done.attempts,
        })
    }

    /// Opens a stream, retrying over keys until its first event arrives.
    pub async fn open_stream(
        &self,
        settings: &ChatSettings,
        call: Call<'_>,
    ) -> Result<OpenStream, CallError> {
        let done = self
            .attempt(settings, &call, |key| {
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
}
