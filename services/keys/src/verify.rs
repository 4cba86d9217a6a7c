//! Key checks: a tiny request with `TEST_MODEL` on a key, on demand (verify) and every
//! `CHECK_INTERVAL_HOURS` for the keys that failed. A success puts the key back in service;
//! a failure is classified like any upstream failure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use gb_proto::keys::v1 as pb;
use gb_runtime::live::{Live, LiveSettings};
use gb_runtime::now_ms;
use gb_runtime::secrets::mask_key;
use gb_upstream::{Upstream, UpstreamFailure};
use tokio_util::sync::CancellationToken;

use crate::pool::KeyPool;
use crate::state::{KeyEntry, StoredStatus};

/// How many keys are checked at once.
const CHECK_CONCURRENCY: usize = 8;

pub struct Verifier {
    upstream: Upstream,
    test_model: String,
}

/// What a check found.
pub struct CheckResult {
    pub entry: KeyEntry,
    pub failure: Option<UpstreamFailure>,
}

impl Verifier {
    pub fn new(upstream: Upstream, test_model: String) -> Self {
        Verifier {
            upstream,
            test_model,
        }
    }

    async fn probe(&self, key: &str) -> Result<(), UpstreamFailure> {
        let body = serde_json::json!({
            "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "generationConfig": {"maxOutputTokens": 1}
        });
        let path = format!("models/{}:generateContent", self.test_model);
        let response = self
            .upstream
            .request(reqwest::Method::POST, &path, key, true)
            .json(&body)
            .send()
            .await
            .map_err(|error| UpstreamFailure::from_transport(&error))?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(());
        }
        let body = response.bytes().await.unwrap_or_default();
        Err(UpstreamFailure::from_response(status, body).redacted(key))
    }

    /// Checks keys concurrently and records each result in the pool.
    pub async fn check(&self, pool: &KeyPool, entries: Vec<KeyEntry>) -> Vec<CheckResult> {
        let results: Vec<CheckResult> = futures::stream::iter(entries)
            .map(|entry| async move {
                let started = Instant::now();
                let span = tracing::info_span!(
                    "key.check",
                    otel.kind = "client",
                    server.address = %self.upstream.host(),
                    key.id = entry.id,
                    key.masked = %mask_key(&entry.value),
                    gen_ai.request.model = %self.test_model,
                    outcome = tracing::field::Empty,
                );
                let failure =
                    tracing::Instrument::instrument(self.probe(&entry.value), span.clone())
                        .await
                        .err();
                span.record(
                    "outcome",
                    if failure.is_some() {
                        "invalid"
                    } else {
                        "valid"
                    },
                );
                tracing::info!(
                    key.id = entry.id,
                    key.masked = %mask_key(&entry.value),
                    valid = failure.is_none(),
                    duration_ms = started.elapsed().as_millis() as u64,
                    "key checked"
                );
                CheckResult { entry, failure }
            })
            .buffer_unordered(CHECK_CONCURRENCY)
            .collect()
            .await;
        let mut healthy = Vec::new();
        let mut outcomes = Vec::new();
        for result in &results {
            match &result.failure {
                None => healthy.push(result.entry.id),
                Some(failure) => outcomes.push(outcome_of(result.entry.id, failure)),
            }
        }
        if let Err(error) = pool.reset(&healthy).await {
            tracing::error!(%error, "recording successful key checks failed");
        }
        if let Err(error) = pool.apply_outcomes("", &outcomes).await {
            tracing::error!(%error, "recording failed key checks failed");
        }
        results
    }
}

fn outcome_of(key_id: i64, failure: &UpstreamFailure) -> pb::Outcome {
    pb::Outcome {
        key_id,
        class: failure.class.outcome_class().into(),
        http_status: u32::from(failure.status),
        retry_after_ms: failure.class.retry_after_ms(),
        error: failure.message(),
        at_ms: now_ms(),
        ..Default::default()
    }
}

/// Every `interval`, checks the keys that are disabled or have failed since their last success.
/// Re-checks the disabled and failing keys every `CHECK_INTERVAL_HOURS` (read anew each round,
/// so a change applies from the next round; 0 pauses the checks).
pub async fn run_periodic_checks(
    pool: Arc<KeyPool>,
    verifier: Live<Verifier>,
    live: LiveSettings,
    shutdown: CancellationToken,
) {
    let idle = Duration::from_secs(60);
    let mut last_round = tokio::time::Instant::now();
    loop {
        let interval = live.current().keys.check_interval.0;
        let wait = match interval {
            Some(interval) => {
                (last_round + interval).saturating_duration_since(tokio::time::Instant::now())
            }
            None => idle,
        }
        .min(idle);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let Some(interval) = live.current().keys.check_interval.0 else {
            last_round = tokio::time::Instant::now();
            continue;
        };
        if last_round.elapsed() < interval {
            continue;
        }
        last_round = tokio::time::Instant::now();
        let due: Vec<KeyEntry> = pool
            .list()
            .into_iter()
            .filter(|entry| entry.status == StoredStatus::Disabled || entry.failure_count > 0)
            .collect();
        if due.is_empty() {
            continue;
        }
        tracing::info!(keys = due.len(), "re-checking failed keys");
        verifier.get().check(&pool, due).await;
    }
}
