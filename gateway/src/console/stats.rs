//! `/console/stats`: calls and failures per minute, hour or day, tokens per day per key and
//! per client token, and the latency percentiles of upstream attempts. The figures are
//! server-rendered tables (readable without scripts); `stats.js` draws them as charts from
//! `/api/stats/series` and `/api/stats/tokens`.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use gb_proto::logging::v1 as pb;

use super::{Chrome, failure, render};
use crate::state::GatewayState;

pub struct Latency {
    pub window: &'static str,
    pub calls: u64,
    pub p50: u32,
    pub p90: u32,
    pub p99: u32,
}

pub struct TokenRow {
    pub day: String,
    pub group: String,
    pub calls: u64,
    pub tokens: u64,
}

#[derive(Template)]
#[template(path = "console/stats.html")]
struct StatsPage {
    chrome: Chrome,
    latency: Vec<Latency>,
    by_key: Vec<TokenRow>,
    by_client: Vec<TokenRow>,
}

async fn token_rows(
    state: &GatewayState,
    grouping: pb::TokenGrouping,
    since_ms: i64,
) -> Result<Vec<TokenRow>, tonic::Status> {
    let rows = state
        .logging
        .clone()
        .token_usage(pb::TokenUsageRequest {
            group_by: grouping.into(),
            since_ms,
        })
        .await?
        .into_inner()
        .rows;
    let mut summed: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for row in rows {
        let entry = summed.entry((row.day, row.group)).or_default();
        entry.0 += row.calls;
        entry.1 += row.prompt_tokens + row.completion_tokens;
    }
    Ok(summed
        .into_iter()
        .rev()
        .map(|((day, group), (calls, tokens))| TokenRow {
            day,
            group,
            calls,
            tokens,
        })
        .collect())
}

pub async fn page(State(state): State<GatewayState>, headers: HeaderMap, uri: Uri) -> Response {
    let chrome = match Chrome::of(&state, &headers, uri.query(), "stats") {
        Ok(chrome) => chrome,
        Err(login) => return login.into_response(),
    };
    let now = gb_runtime::now_ms();
    let loaded = async {
        let mut latency = Vec::new();
        for (window, since_ms) in [
            ("1 h", now - 3_600_000),
            ("24 h", now - 86_400_000),
            ("7 d", now - 7 * 86_400_000),
        ] {
            let series = state
                .logging
                .clone()
                .call_series(pb::CallSeriesRequest {
                    since_ms,
                    width_s: 86_400,
                })
                .await?
                .into_inner();
            latency.push(Latency {
                window,
                calls: series.calls,
                p50: series.latency_p50_ms,
                p90: series.latency_p90_ms,
                p99: series.latency_p99_ms,
            });
        }
        let today = now - now.rem_euclid(86_400_000);
        let since_ms = today - 6 * 86_400_000;
        let by_key = token_rows(&state, pb::TokenGrouping::Key, since_ms).await?;
        let by_client = token_rows(&state, pb::TokenGrouping::Client, since_ms).await?;
        Ok::<_, tonic::Status>((latency, by_key, by_client))
    };
    match loaded.await {
        Ok((latency, by_key, by_client)) => render(&StatsPage {
            chrome,
            latency,
            by_key,
            by_client,
        }),
        Err(status) => failure(&chrome, &status),
    }
}
