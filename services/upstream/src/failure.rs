//! What a failed upstream attempt means: the client's own error, a dead key, a quota, or a
//! transient failure, read from the status, Google's `ErrorInfo` reason and `RetryInfo` delay.

use std::time::Duration;

use bytes::Bytes;
use gb_proto::chat::ChatError;
use gb_proto::error::google_error_json;
use gb_proto::keys::v1::OutcomeClass;

/// How long a key cools down after a 429 that names no `RetryInfo` delay.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(60);

/// What a failed upstream attempt says about the key and about retrying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureClass {
    /// The request itself is wrong (bad argument, unknown model): returned as is, not retried,
    /// not counted against the key.
    ClientError,
    /// The key is invalid, expired, revoked or suspended: disabled at once.
    DeadKey,
    /// Rate limit or quota: the key cools down for `retry_after` (the upstream's `RetryInfo`).
    Quota { retry_after: Option<Duration> },
    /// 5xx, timeout, connection reset: counted, another key is tried.
    Transient,
}

impl FailureClass {
    pub fn is_retryable(self) -> bool {
        !matches!(self, FailureClass::ClientError)
    }

    /// The outcome class this failure is reported as (to the keys service, the logs, the
    /// metrics).
    pub fn outcome_class(self) -> OutcomeClass {
        match self {
            FailureClass::ClientError => OutcomeClass::ClientError,
            FailureClass::DeadKey => OutcomeClass::DeadKey,
            FailureClass::Quota { .. } => OutcomeClass::Quota,
            FailureClass::Transient => OutcomeClass::Transient,
        }
    }

    /// The cooldown the upstream asked for, in milliseconds (0: none given, the default
    /// applies).
    pub fn retry_after_ms(self) -> u32 {
        match self {
            FailureClass::Quota {
                retry_after: Some(delay),
            } => delay.as_millis().min(u128::from(u32::MAX)) as u32,
            _ => 0,
        }
    }

    /// How long a key cools down after this failure: the upstream's delay, else
    /// [`DEFAULT_COOLDOWN`]; `None` for failures that do not cool a key.
    pub fn cooldown(self) -> Option<Duration> {
        match self {
            FailureClass::Quota { retry_after } => Some(retry_after.unwrap_or(DEFAULT_COOLDOWN)),
            _ => None,
        }
    }
}

/// A failed attempt: the status and body the client would see, and what they mean.
#[derive(Clone, Debug)]
pub struct UpstreamFailure {
    pub status: u16,
    /// The upstream's error body (Google-shaped JSON, or whatever a relay in between sent), or
    /// one made in Google's shape for a network error.
    pub body: Bytes,
    pub class: FailureClass,
    /// The body's content type when it is not JSON (an HTML page from a proxy, say).
    pub content_type: Option<String>,
    /// On a 429: the quota its `google.rpc.QuotaFailure` names, if it names one.
    pub quota: Option<QuotaHit>,
}

/// The quota a 429's `google.rpc.QuotaFailure` detail names. Google counts quotas per key (its
/// project) and model: a key that spent one model's quota still serves the others.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuotaHit {
    /// `quotaDimensions.model`: the model whose quota is spent; `None`: a quota of the whole
    /// key, whatever the model.
    pub model: Option<String>,
    /// A quota per day (`quotaId` like `GenerateRequestsPerDayPerProjectPerModel-FreeTier`),
    /// given back at midnight Pacific time, not after `RetryInfo`'s delay.
    pub per_day: bool,
}

/// The first violation of a `google.rpc.QuotaFailure` detail: its model, and whether any
/// violation is of a quota per day (the longest wait decides).
fn quota_hit(details: &[serde_json::Value]) -> Option<QuotaHit> {
    let violations: Vec<&serde_json::Value> = details
        .iter()
        .filter(|detail| {
            detail["@type"]
                .as_str()
                .is_some_and(|kind| kind.ends_with("google.rpc.QuotaFailure"))
        })
        .filter_map(|detail| detail["violations"].as_array())
        .flatten()
        .collect();
    let first = violations.first()?;
    Some(QuotaHit {
        model: first["quotaDimensions"]["model"]
            .as_str()
            .filter(|model| !model.is_empty())
            .map(str::to_owned),
        per_day: violations.iter().any(|violation| {
            violation["quotaId"]
                .as_str()
                .is_some_and(|id| id.contains("PerDay"))
        }),
    })
}

impl UpstreamFailure {
    /// Classifies an HTTP error answer of the upstream.
    pub fn from_response(status: u16, body: Bytes) -> Self {
        let class = classify(status, &body);
        let quota = if status == 429 {
            serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|parsed| quota_hit(parsed["error"]["details"].as_array()?))
        } else {
            None
        };
        UpstreamFailure {
            status,
            body,
            class,
            content_type: None,
            quota,
        }
    }

    /// A transient failure of this gateway's own making (an empty or malformed stream), in
    /// Google's error shape.
    pub fn transient(status: u16, message: &str) -> Self {
        UpstreamFailure {
            status,
            body: google_error_json(status, message),
            class: FailureClass::Transient,
            content_type: None,
            quota: None,
        }
    }

    /// A network-level failure (timeout, refused, reset), in Google's error shape.
    pub fn from_transport(error: &reqwest::Error) -> Self {
        let (status, message) = if error.is_timeout() {
            (504, "upstream request timed out")
        } else if error.is_connect() {
            (502, "could not connect to the upstream")
        } else {
            (502, "the upstream connection failed")
        };
        UpstreamFailure::transient(status, message)
    }

    /// The same failure, answered with this `Content-Type` (kept unless it is JSON's).
    pub fn with_content_type(mut self, content_type: Option<&str>) -> Self {
        self.content_type = content_type
            .filter(|content_type| !content_type.starts_with("application/json"))
            .map(str::to_owned);
        self
    }

    /// The same failure with every occurrence of `key` in its body masked (Google names the
    /// key in some messages, e.g. "Consumer 'api_key:…' has been suspended").
    pub fn redacted(mut self, key: &str) -> Self {
        if let Ok(text) = std::str::from_utf8(&self.body)
            && text.contains(key)
        {
            self.body = Bytes::from(gb_runtime::secrets::redact(text, key));
        }
        self
    }

    /// What the client of the chat service gets: this status and body, and the upstream's
    /// delay as `Retry-After`.
    pub fn into_chat_error(self) -> ChatError {
        let retry_after_seconds = match self.class {
            FailureClass::Quota {
                retry_after: Some(delay),
            } => Some(delay.as_secs_f64().ceil() as u32),
            _ => None,
        };
        ChatError {
            http_status: self.status,
            message: self.message(),
            body: self.body,
            retry_after_seconds,
            content_type: self.content_type,
        }
    }

    /// The upstream's error message, if the body is Google-shaped.
    pub fn message(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|value| value["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("upstream answered {}", self.status))
    }
}

/// Classifies an upstream error answer by its status, `ErrorInfo` reason and `RetryInfo`.
/// Google's answer to a reference to a file the key's project does not hold.
pub fn is_missing_file(message: &str) -> bool {
    message.contains("permission to access the File")
}

pub fn classify(status: u16, body: &[u8]) -> FailureClass {
    let parsed: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let error = &parsed["error"];
    let details = error["details"].as_array().cloned().unwrap_or_default();
    let reasons: Vec<&str> = details
        .iter()
        .filter(|detail| {
            detail["@type"]
                .as_str()
                .is_some_and(|kind| kind.ends_with("google.rpc.ErrorInfo"))
        })
        .filter_map(|detail| detail["reason"].as_str())
        .collect();
    let message = error["message"].as_str().unwrap_or_default();
    let dead_reason = reasons.iter().any(|reason| {
        matches!(
            *reason,
            "API_KEY_INVALID"
                | "API_KEY_EXPIRED"
                | "API_KEY_SERVICE_BLOCKED"
                | "CONSUMER_SUSPENDED"
                | "SERVICE_DISABLED"
                | "ACCESS_TOKEN_TYPE_UNSUPPORTED"
        )
    });
    match status {
        429 => FailureClass::Quota {
            retry_after: retry_delay(&details),
        },
        // A file the key's project does not hold (another project's, or one Google deleted):
        // the request's problem, not the key's.
        403 if is_missing_file(message) => FailureClass::ClientError,
        401 | 403 => FailureClass::DeadKey,
        400 if dead_reason
            || message.contains("API key not valid")
            || message.contains("API key expired") =>
        {
            FailureClass::DeadKey
        }
        408 | 500..=599 => FailureClass::Transient,
        _ => FailureClass::ClientError,
    }
}

/// The delay of a `google.rpc.RetryInfo` detail (`"37s"`, `"1.5s"`).
fn retry_delay(details: &[serde_json::Value]) -> Option<Duration> {
    details
        .iter()
        .filter(|detail| {
            detail["@type"]
                .as_str()
                .is_some_and(|kind| kind.ends_with("google.rpc.RetryInfo"))
        })
        .find_map(|detail| {
            let delay = detail["retryDelay"].as_str()?;
            let seconds: f64 = delay.strip_suffix('s')?.parse().ok()?;
            (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(value: serde_json::Value) -> Vec<u8> {
        value.to_string().into_bytes()
    }

    #[test]
    fn invalid_key_is_dead() {
        let answer = body(
            serde_json::json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}}),
        );
        assert_eq!(classify(400, &answer), FailureClass::DeadKey);
        assert_eq!(classify(403, b"{}"), FailureClass::DeadKey);
    }

    #[test]
    fn a_file_of_another_project_is_the_requests_problem() {
        let answer = body(
            serde_json::json!({"error": {"code": 403, "status": "PERMISSION_DENIED",
            "message": "You do not have permission to access the File abc123 or it may not exist."}}),
        );
        assert_eq!(classify(403, &answer), FailureClass::ClientError);
    }

    #[test]
    fn quota_carries_retry_delay() {
        let answer = body(
            serde_json::json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]}}),
        );
        assert_eq!(
            classify(429, &answer),
            FailureClass::Quota {
                retry_after: Some(Duration::from_secs(37))
            }
        );
        assert_eq!(
            classify(429, b"not json"),
            FailureClass::Quota { retry_after: None }
        );
    }

    #[test]
    fn quota_failures_name_their_model_and_period() {
        let answer = |quota_id: &str, dimensions: serde_json::Value| {
            Bytes::from(body(
                serde_json::json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                    "quotaId": quota_id, "quotaDimensions": dimensions, "quotaValue": "50"}]},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}]}}),
            ))
        };
        let daily = UpstreamFailure::from_response(
            429,
            answer(
                "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                serde_json::json!({"location": "global", "model": "gemini-2.5-pro"}),
            ),
        );
        assert_eq!(
            daily.quota,
            Some(QuotaHit {
                model: Some("gemini-2.5-pro".into()),
                per_day: true
            })
        );
        let minute = UpstreamFailure::from_response(
            429,
            answer(
                "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                serde_json::json!({"location": "global", "model": "gemini-2.5-flash"}),
            ),
        );
        assert_eq!(
            minute.quota,
            Some(QuotaHit {
                model: Some("gemini-2.5-flash".into()),
                per_day: false
            })
        );
        let whole_key = UpstreamFailure::from_response(
            429,
            answer(
                "GenerateRequestsPerMinutePerProject",
                serde_json::json!({"location": "global"}),
            ),
        );
        assert_eq!(
            whole_key.quota,
            Some(QuotaHit {
                model: None,
                per_day: false
            })
        );
        assert_eq!(
            UpstreamFailure::from_response(429, Bytes::from_static(b"{}")).quota,
            None
        );
    }

    #[test]
    fn client_errors_and_transients() {
        let bad_request = body(
            serde_json::json!({"error": {"code": 400, "message": "* GenerateContentRequest.contents: contents is not specified", "status": "INVALID_ARGUMENT"}}),
        );
        assert_eq!(classify(400, &bad_request), FailureClass::ClientError);
        assert_eq!(classify(404, b"{}"), FailureClass::ClientError);
        assert_eq!(classify(500, b"{}"), FailureClass::Transient);
        assert_eq!(classify(503, b"{}"), FailureClass::Transient);
    }
}
