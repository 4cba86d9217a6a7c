//! The Gemini API upstream: one pooled HTTP client per route out (direct, or one per proxy),
//! a key→proxy mapping that is stable across restarts, and the classification of every failure.

use std::time::Duration;

use bytes::Bytes;
use sha2::{Digest, Sha256};

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

    /// The outcome class reported to the keys service, and the cooldown asked for (ms).
    pub fn outcome(self) -> (gb_proto::keys::v1::OutcomeClass, u32) {
        use gb_proto::keys::v1::OutcomeClass;
        match self {
            FailureClass::ClientError => (OutcomeClass::ClientError, 0),
            FailureClass::DeadKey => (OutcomeClass::DeadKey, 0),
            FailureClass::Quota { retry_after } => (
                OutcomeClass::Quota,
                retry_after.map_or(0, |delay| {
                    delay.as_millis().min(u128::from(u32::MAX)) as u32
                }),
            ),
            FailureClass::Transient => (OutcomeClass::Transient, 0),
        }
    }
}

/// A failed attempt: the status and body the client would see, and what they mean.
#[derive(Clone, Debug)]
pub struct UpstreamFailure {
    pub status: u16,
    /// A Google-shaped JSON error body (the upstream's own, or one made for a network error).
    pub body: Bytes,
    pub class: FailureClass,
}

impl UpstreamFailure {
    /// Classifies an HTTP error answer of the upstream.
    pub fn from_response(status: u16, body: Bytes) -> Self {
        let class = classify(status, &body);
        UpstreamFailure {
            status,
            body,
            class,
        }
    }

    /// A network-level failure (timeout, refused, reset), in Google's error shape.
    pub fn from_transport(error: &reqwest::Error) -> Self {
        let (status, google_status, message) = if error.is_timeout() {
            (504, "DEADLINE_EXCEEDED", "upstream request timed out")
        } else if error.is_connect() {
            (502, "UNAVAILABLE", "could not connect to the upstream")
        } else {
            (502, "UNAVAILABLE", "the upstream connection failed")
        };
        UpstreamFailure {
            status,
            body: google_error_body(status, google_status, message),
            class: FailureClass::Transient,
        }
    }

    /// The same failure with every occurrence of `key` in its body masked (Google names the
    /// key in some messages, e.g. "Consumer 'api_key:…' has been suspended").
    pub fn redacted(mut self, key: &str) -> Self {
        if let Ok(text) = std::str::from_utf8(&self.body)
            && text.contains(key)
        {
            self.body = Bytes::from(crate::secrets::redact(text, key));
        }
        self
    }

    /// The upstream's error message, if the body is Google-shaped.
    pub fn message(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|value| value["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("upstream answered {}", self.status))
    }
}

/// `{"error":{"code","message","status"}}`, Google's error shape.
pub fn google_error_body(code: u16, status: &str, message: &str) -> Bytes {
    Bytes::from(
        serde_json::json!({"error": {"code": code, "message": message, "status": status}})
            .to_string(),
    )
}

/// Classifies an upstream error answer by its status, `ErrorInfo` reason and `RetryInfo`.
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

/// Which of `count` routes out (proxies) a key always takes: the same on every restart and
/// every replica, since it hashes the key with SHA-256 rather than a per-process seed.
pub fn stable_route_index(key: &str, count: usize) -> usize {
    if count <= 1 {
        return 0;
    }
    let digest = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % count as u64) as usize
}

/// Where a request carries the key: Gemini-native endpoints take `x-goog-api-key`, Google's
/// OpenAI-compatible layer takes `Authorization: Bearer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPlacement {
    GoogApiKey,
    Bearer,
}

/// The HTTP side of the Gemini API.
#[derive(Clone)]
pub struct Upstream {
    base_url: String,
    /// One client (connection pool) per route out: the direct one, or one per proxy.
    clients: Vec<reqwest::Client>,
    timeout: Duration,
}

impl Upstream {
    /// The upstream as the settings describe it (`BASE_URL`, `PROXIES`, `TIME_OUT`,
    /// `CUSTOM_HEADERS`).
    pub fn from_settings(settings: &crate::settings::Settings) -> Result<Self, reqwest::Error> {
        Self::new(
            &settings.base_url,
            &settings.proxies,
            settings.time_out,
            &settings.custom_headers,
        )
    }

    pub fn new(
        base_url: &str,
        proxies: &[String],
        timeout: Duration,
        custom_headers: &std::collections::BTreeMap<String, String>,
    ) -> Result<Self, reqwest::Error> {
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in custom_headers {
            if let (Ok(name), Ok(value)) = (
                reqwest::header::HeaderName::from_bytes(name.as_bytes()),
                reqwest::header::HeaderValue::from_str(value),
            ) {
                headers.insert(name, value);
            }
        }
        let builder = || {
            reqwest::Client::builder()
                .default_headers(headers.clone())
                .connect_timeout(Duration::from_secs(10))
                .read_timeout(timeout)
                .pool_idle_timeout(Duration::from_secs(90))
                .pool_max_idle_per_host(256)
                .tcp_nodelay(true)
        };
        let clients = if proxies.is_empty() {
            vec![builder().build()?]
        } else {
            proxies
                .iter()
                .map(|proxy| builder().proxy(reqwest::Proxy::all(proxy)?).build())
                .collect::<Result<_, _>>()?
        };
        Ok(Upstream {
            base_url: base_url.trim_end_matches('/').to_owned(),
            clients,
            timeout,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The upstream's host, for `server.address` on spans.
    pub fn host(&self) -> String {
        url::Url::parse(&self.base_url)
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// The index of the proxy this key goes through (0 without proxies).
    pub fn route_index(&self, key: &str) -> usize {
        stable_route_index(key, self.clients.len())
    }

    /// A request to `{BASE_URL}/{path}` with the key in `x-goog-api-key`, through the key's route.
    /// `whole_timeout` bounds unary calls; streams are bounded per read instead.
    pub fn request(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        key: &str,
        whole_timeout: bool,
    ) -> reqwest::RequestBuilder {
        self.request_as(
            method,
            path_and_query,
            key,
            KeyPlacement::GoogApiKey,
            whole_timeout,
        )
    }

    /// As [`Upstream::request`], with the key where the endpoint expects it.
    pub fn request_as(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        key: &str,
        placement: KeyPlacement,
        whole_timeout: bool,
    ) -> reqwest::RequestBuilder {
        let client = &self.clients[self.route_index(key)];
        let url = format!(
            "{}/{}",
            self.base_url,
            path_and_query.trim_start_matches('/')
        );
        let request = client.request(method, url);
        let mut request = match placement {
            KeyPlacement::GoogApiKey => request.header("x-goog-api-key", key),
            KeyPlacement::Bearer => request.bearer_auth(key),
        };
        if whole_timeout {
            request = request.timeout(self.timeout);
        }
        request
    }
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
    fn client_errors_and_transients() {
        let bad_request = body(
            serde_json::json!({"error": {"code": 400, "message": "* GenerateContentRequest.contents: contents is not specified", "status": "INVALID_ARGUMENT"}}),
        );
        assert_eq!(classify(400, &bad_request), FailureClass::ClientError);
        assert_eq!(classify(404, b"{}"), FailureClass::ClientError);
        assert_eq!(classify(500, b"{}"), FailureClass::Transient);
        assert_eq!(classify(503, b"{}"), FailureClass::Transient);
    }

    #[test]
    fn route_index_is_stable_and_spread() {
        assert_eq!(
            stable_route_index("key-a", 3),
            stable_route_index("key-a", 3)
        );
        assert_eq!(stable_route_index("anything", 1), 0);
        let used: std::collections::HashSet<usize> = (0..64)
            .map(|i| stable_route_index(&format!("key-{i}"), 4))
            .collect();
        assert_eq!(used.len(), 4);
        // A fixed value, so that a change of hash (and of every key's proxy) cannot pass unseen.
        // (Python: int.from_bytes(sha256(key)[:8], "big") % 7 == 4.)
        assert_eq!(stable_route_index("AIzaSyStableMappingExample", 7), 4);
    }
}
