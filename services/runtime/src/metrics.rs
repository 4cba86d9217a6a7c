//! Prometheus metrics: one recorder per process, conventional names with units, histograms
//! with buckets fit for a gateway (from half a millisecond to a minute).
//!
//! | metric | labels |
//! |---|---|
//! | `http_server_requests_total`, `http_server_request_duration_seconds` | method, route, status |
//! | `rpc_server_requests_total`, `rpc_server_duration_seconds` | service, method, code |
//! | `gemini_upstream_attempts_total`, `gemini_upstream_attempt_duration_seconds` | outcome |
//! | `gemini_key_pool_keys` (gauge) | state: active, cooling_down, disabled |
//! | `gemini_outcome_reports_dropped_total` | |

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's recorder (once); later calls return the same handle.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .and_then(|builder| builder.install_recorder())
                .unwrap_or_else(|error| {
                    // Another recorder is already installed (a host process): render an empty one.
                    tracing::warn!(%error, "metrics recorder not installed");
                    PrometheusBuilder::new().build_recorder().handle()
                });
            let upkeep = handle.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let mut ticker = tokio::time::interval(Duration::from_secs(5));
                    loop {
                        ticker.tick().await;
                        upkeep.run_upkeep();
                    }
                });
            }
            handle
        })
        .clone()
}

/// The text exposition of every metric of this process.
pub fn render() -> String {
    install().render()
}
