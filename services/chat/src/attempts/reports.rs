//! What an attempt leaves behind: an error log when it failed, the outcome report for the keys
//! service, metrics and the attempt span; what a call leaves: one request record, its client
//! request's row when it answers one. A failure's verdict is
//! applied to this replica's view of the pool at once.

use std::time::Instant;

use gb_proto::keys::v1 as pb;
use gb_proto::logging::v1 as logs;
use gb_runtime::log_records::{LogRecord, recorded_body};
use gb_runtime::now_ms;
use gb_runtime::secrets::{mask_key, redact};
use gb_upstream::{FailureClass, UpstreamFailure};

use super::Attempts;
use super::call::{CallRecord, Origin};
use crate::pool::{LocalKey, Picked};
use crate::usage::Usage;

/// How a call ended, as its request record tells it.
pub(crate) struct Ending<'a> {
    /// `None` when no key could be tried.
    pub key: Option<&'a LocalKey>,
    pub started: Instant,
    pub status: u16,
    pub outcome: pb::OutcomeClass,
    pub usage: Usage,
    pub attempts: u32,
}

impl Attempts {
    /// The request record of a call's last attempt: the client request's row when the call
    /// answers one (with the client's method and path), else a successful attempt to count.
    fn request_record(record: &CallRecord, ending: &Ending<'_>) -> logs::RequestRecord {
        let row = record
            .origin
            .client_request
            .as_deref()
            .filter(|row| row.take());
        let (kind, method, path, label) = match row {
            Some(row) => (
                logs::RecordKind::Client,
                row.request.method.clone(),
                row.request.path.clone(),
                row.request.label.clone(),
            ),
            None => (
                logs::RecordKind::Attempt,
                record.method.clone(),
                record.path.clone(),
                String::new(),
            ),
        };
        logs::RequestRecord {
            at_ms: now_ms(),
            kind: kind.into(),
            method,
            path,
            model: record.model.clone(),
            key_id: ending.key.map_or(0, |key| key.id),
            key_masked: ending
                .key
                .map(|key| mask_key(&key.value))
                .unwrap_or_default(),
            status_code: u32::from(ending.status),
            latency_ms: latency_ms(ending.started),
            prompt_tokens: ending.usage.prompt,
            completion_tokens: ending.usage.completion,
            client: record.origin.client.clone(),
            outcome: ending.outcome.into(),
            attempts: ending.attempts,
            label,
        }
    }

    /// Reports a successful attempt; its key's count for the model is settled.
    pub fn report_success(
        &self,
        record: &CallRecord,
        key: &Picked,
        started: Instant,
        usage: Usage,
        attempts: u32,
    ) {
        self.logs.push(LogRecord::Request(Self::request_record(
            record,
            &Ending {
                key: Some(&key.key),
                started,
                status: 200,
                outcome: pb::OutcomeClass::Success,
                usage,
                attempts,
            },
        )));
        if !key.in_pool() {
            return;
        }
        let seq = self.reporter.push(pb::Outcome {
            key_id: key.id,
            class: pb::OutcomeClass::Success.into(),
            http_status: 200,
            latency_ms: latency_ms(started),
            model: record.model.clone(),
            at_ms: now_ms(),
            prompt_tokens: usage.prompt,
            completion_tokens: usage.completion,
            ..Default::default()
        });
        key.settle(Some(seq), usage.prompt + usage.completion);
    }

    /// The client request's row of a call that failed (its failed attempts are error logs,
    /// counted there): nothing when the call answers no client request, or it is written.
    pub(crate) fn report_call_failed(&self, record: &CallRecord, ending: Ending<'_>) {
        if record
            .origin
            .client_request
            .as_deref()
            .is_some_and(|row| !row.is_written())
        {
            self.logs
                .push(LogRecord::Request(Self::request_record(record, &ending)));
        }
    }

    /// The client request's row of a call refused before any attempt (a model the rules do
    /// not allow, a path not forwarded), unless an attempt wrote it.
    pub fn report_refusal(&self, origin: &Origin, model: &str, status: u16) {
        let Some(row) = origin.client_request.as_deref().filter(|row| row.take()) else {
            return;
        };
        self.logs.push(LogRecord::Request(logs::RequestRecord {
            at_ms: now_ms(),
            kind: logs::RecordKind::Client.into(),
            method: row.request.method.clone(),
            path: row.request.path.clone(),
            model: model.to_owned(),
            status_code: u32::from(status),
            latency_ms: latency_ms(row.started),
            client: origin.client.clone(),
            label: row.request.label.clone(),
            ..Default::default()
        }));
    }

    /// Reports a failed attempt and applies its verdict to this replica's view at once.
    pub fn report_failure(
        &self,
        record: &CallRecord,
        key: &Picked,
        started: Instant,
        failure: &UpstreamFailure,
    ) {
        let model = record.model.as_str();
        let class = failure.class.outcome_class();
        let too_many = failure.class == FailureClass::Transient
            && key.in_pool()
            && key.count_failure(record.max_failures);
        if failure.class == FailureClass::DeadKey || too_many {
            key.mark_disabled();
            self.pool.refresh();
        }
        let cooling = quota_cooling(failure, model, record.quota_reset, now_ms());
        match cooling {
            Some(QuotaCooling {
                model: Some(model),
                until_ms,
            }) => key.mark_model_cooling_until(model, until_ms),
            Some(QuotaCooling {
                model: None,
                until_ms,
            }) => key.mark_cooling_until(until_ms),
            None => {}
        }
        tracing::warn!(
            key.id = key.id,
            key.masked = %mask_key(&key.value),
            http.response.status_code = failure.status,
            class = ?failure.class,
            model,
            "upstream attempt failed"
        );
        self.logs.push(LogRecord::Error(logs::ErrorRecord {
            at_ms: now_ms(),
            key_id: key.id,
            key_masked: mask_key(&key.value),
            model: model.to_owned(),
            error_type: record.origin.operation.to_owned(),
            error_class: class.into(),
            error_code: u32::from(failure.status),
            // Redacted here too: a failure read from a stream after its first event is not.
            error_message: redact(&recorded_body(&failure.body), &key.value),
            request_body: record
                .body
                .as_deref()
                .map(recorded_body)
                .unwrap_or_default(),
            client: record.origin.client.clone(),
            latency_ms: latency_ms(started),
        }));
        if !key.in_pool() {
            return;
        }
        let seq = self.reporter.push(pb::Outcome {
            key_id: key.id,
            class: class.into(),
            http_status: u32::from(failure.status),
            latency_ms: latency_ms(started),
            retry_after_ms: failure.class.retry_after_ms(),
            error: redact(&failure.message(), &key.value),
            model: model.to_owned(),
            at_ms: now_ms(),
            quota_model: cooling
                .as_ref()
                .and_then(|cooling| cooling.model)
                .unwrap_or_default()
                .to_owned(),
            cooldown_until_ms: cooling.map_or(0, |cooling| cooling.until_ms),
            ..Default::default()
        });
        key.settle(Some(seq), 0);
    }
}

/// What a quota failure rests: the key for one model, or the whole key, and until when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct QuotaCooling<'a> {
    /// `None`: every model.
    pub model: Option<&'a str>,
    pub until_ms: i64,
}

/// Google counts quotas per key and model: a 429 whose `QuotaFailure` names a model (or a
/// plain `RetryInfo`, with no `QuotaFailure`) rests the key for the model the request named,
/// which is how the next pick asks; one whose `QuotaFailure` names no model rests the whole key.
/// A quota per day rests it until the next midnight of `QUOTA_RESET_TIMEZONE`, any other for
/// `RetryInfo`'s delay (or the default).
pub(crate) fn quota_cooling<'a>(
    failure: &UpstreamFailure,
    model: &'a str,
    reset: gb_runtime::settings::TimeZone,
    now_ms: i64,
) -> Option<QuotaCooling<'a>> {
    let delay = failure.class.cooldown()?;
    Some(match &failure.quota {
        Some(hit) => QuotaCooling {
            model: hit.model.as_ref().map(|_| model),
            until_ms: if hit.per_day {
                reset.next_midnight_ms(now_ms)
            } else {
                now_ms + delay.as_millis() as i64
            },
        },
        None => QuotaCooling {
            model: Some(model),
            until_ms: now_ms + delay.as_millis() as i64,
        },
    })
}

fn latency_ms(started: Instant) -> u32 {
    started.elapsed().as_millis().min(u128::from(u32::MAX)) as u32
}

/// `gemini_upstream_attempts_total` and `gemini_upstream_attempt_duration_seconds` by outcome.
pub(super) fn record_attempt(outcome: &'static str, started: Instant) {
    metrics::counter!("gemini_upstream_attempts_total", "outcome" => outcome).increment(1);
    metrics::histogram!("gemini_upstream_attempt_duration_seconds", "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
}

pub(super) fn attempt_span(attempt: u32, key: &LocalKey, model: &str, host: &str) -> tracing::Span {
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
