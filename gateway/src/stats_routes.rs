//! Statistics, behind the admin token: gemini-balance's routes (calls per period, attention
//! keys, one key's calls and models) and what its users asked for: call counts for the last
//! minute, hour, day and this month, and token usage per key and per client token, per day.
//! Everything counts upstream attempts, as gemini-balance does.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use gb_proto::logging::v1 as pb;
use gb_runtime::now_ms;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::errors::GoogleError;
use crate::key_admin_routes::time;
use crate::logs_routes::find_key;
use crate::state::GatewayState;

pub fn routes() -> Router<GatewayState> {
    Router::new()
        .route("/api/stats/details", get(details))
        .route("/api/stats/attention-keys", get(attention_keys))
        .route("/api/stats/key-details", get(key_details))
        .route("/api/stats/calls", get(calls))
        .route("/api/stats/tokens", get(tokens))
        .route("/api/stats/limits", get(limits))
        .route("/api/stats/series", get(series))
        .route("/api/key-usage-details/{key}", get(key_usage))
}

/// The most call rows one answer lists.
const MAX_CALLS: u32 = 10_000;

fn period_ms(period: Option<&str>) -> Result<i64, GoogleError> {
    const MINUTE: i64 = 60_000;
    Ok(match period.unwrap_or("24h") {
        "1m" => MINUTE,
        "1h" => 60 * MINUTE,
        "8h" => 8 * 60 * MINUTE,
        "24h" => 24 * 60 * MINUTE,
        "7d" => 7 * 24 * 60 * MINUTE,
        "30d" => 30 * 24 * 60 * MINUTE,
        other => {
            return Err(GoogleError(
                400,
                format!("period: {other:?} is not one of 1m, 1h, 8h, 24h, 7d, 30d"),
            ));
        }
    })
}

type QueryResult<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

fn call_json(call: &pb::RequestRecord) -> Value {
    json!({
        "timestamp": time(call.at_ms),
        "key": call.key_masked,
        "key_id": call.key_id,
        "model": call.model,
        "status_code": call.status_code,
        "is_success": (200..300).contains(&call.status_code),
        "outcome": call.outcome().label(),
        "latency_ms": call.latency_ms,
        "prompt_tokens": call.prompt_tokens,
        "completion_tokens": call.completion_tokens,
        "client": call.client,
    })
}

async fn list_calls(
    state: &GatewayState,
    period: Option<&str>,
    key_id: i64,
) -> Result<Json<Value>, GoogleError> {
    let since_ms = now_ms() - period_ms(period)?;
    let calls = state
        .logging
        .clone()
        .list_calls(pb::ListCallsRequest {
            since_ms,
            key_id,
            limit: MAX_CALLS,
        })
        .await?
        .into_inner()
        .calls;
    Ok(Json(Value::Array(calls.iter().map(call_json).collect())))
}

#[derive(Deserialize)]
struct PeriodQuery {
    period: Option<String>,
}

async fn details(
    State(state): State<GatewayState>,
    period: QueryResult<PeriodQuery>,
) -> Result<Json<Value>, GoogleError> {
    let Query(period) = period?;
    list_calls(&state, period.period.as_deref(), 0).await
}

#[derive(Deserialize)]
struct KeyQuery {
    key: String,
    period: Option<String>,
}

async fn key_details(
    State(state): State<GatewayState>,
    key: QueryResult<KeyQuery>,
) -> Result<Json<Value>, GoogleError> {
    let Query(key) = key?;
    let Some((key_id, _)) = find_key(&state, &key.key).await? else {
        return Err(GoogleError(404, "no such key in the pool".into()));
    };
    list_calls(&state, key.period.as_deref(), key_id).await
}

#[derive(Deserialize)]
struct AttentionQuery {
    limit: Option<u32>,
    status_code: Option<u32>,
    period: Option<String>,
}

async fn attention_keys(
    State(state): State<GatewayState>,
    attention: QueryResult<AttentionQuery>,
) -> Result<Json<Value>, GoogleError> {
    let Query(attention) = attention?;
    let keys = state
        .logging
        .clone()
        .attention_keys(pb::AttentionKeysRequest {
            since_ms: now_ms() - period_ms(attention.period.as_deref())?,
            status_code: attention.status_code.unwrap_or(429),
            limit: attention.limit.unwrap_or(20),
        })
        .await?
        .into_inner()
        .keys;
    Ok(Json(Value::Array(
        keys.iter()
            .map(|key| json!({"key": key.key_masked, "key_id": key.key_id, "count": key.count}))
            .collect(),
    )))
}

/// gemini-balance's per-key usage: calls per model in the last 24 hours (with tokens here).
async fn key_usage(
    State(state): State<GatewayState>,
    Path(key): Path<String>,
) -> Result<Json<Value>, GoogleError> {
    let Some((key_id, masked)) = find_key(&state, &key).await? else {
        return Err(GoogleError(404, "no such key in the pool".into()));
    };
    let models = state
        .logging
        .clone()
        .key_model_usage(pb::KeyModelUsageRequest {
            key_id,
            since_ms: now_ms() - period_ms(Some("24h"))?,
        })
        .await?
        .into_inner()
        .models;
    let usage: Map<String, Value> = models
        .iter()
        .map(|model| (model.model.clone(), json!(model.calls)))
        .collect();
    Ok(Json(json!({
        "key": masked,
        "key_id": key_id,
        "period": "24h",
        "usage": usage,
        "models": models.iter().map(|model| json!({
            "model": model.model,
            "calls": model.calls,
            "success": model.success,
            "failure": model.calls - model.success,
            "prompt_tokens": model.prompt_tokens,
            "completion_tokens": model.completion_tokens,
            "latency_mean_ms": model.latency_mean_ms,
            "latency_p50_ms": model.latency_p50_ms,
            "latency_p99_ms": model.latency_p99_ms,
        })).collect::<Vec<_>>(),
    })))
}

fn counts_json(counts: Option<pb::Counts>) -> Value {
    let counts = counts.unwrap_or_default();
    json!({"total": counts.total, "success": counts.success, "failure": counts.failure})
}

async fn calls(State(state): State<GatewayState>) -> Result<Json<Value>, GoogleError> {
    let counts = state
        .logging
        .clone()
        .call_counts(pb::CallCountsRequest {})
        .await?
        .into_inner();
    Ok(Json(json!({
        "calls_1m": counts_json(counts.last_minute),
        "calls_1h": counts_json(counts.last_hour),
        "calls_24h": counts_json(counts.last_day),
        "calls_month": counts_json(counts.this_month),
    })))
}

/// Each key's use of each model in the last minute and the current quota day, every chat
/// replica's summed by the keys service, beside the limits `KEY_MODEL_LIMITS` sets for it
/// (`null`: none).
async fn limits(State(state): State<GatewayState>) -> Result<Json<Value>, GoogleError> {
    let usage = state
        .keys
        .clone()
        .get_usage(gb_proto::keys::v1::GetUsageRequest {})
        .await?
        .into_inner()
        .usage;
    let rows: Vec<Value> = usage
        .iter()
        .map(|row| {
            json!({
                "key": row.masked_value,
                "key_id": row.key_id,
                "key_type": row.key_type,
                "model": row.model,
                "requests_last_minute": row.requests_last_minute,
                "tokens_last_minute": row.tokens_last_minute,
                "requests_today": row.requests_today,
                "tokens_today": row.tokens_today,
                "rpm": row.rpm,
                "tpm": row.tpm,
                "rpd": row.rpd,
                "day_ends": (row.day_end_ms > 0).then(|| time(row.day_end_ms)),
            })
        })
        .collect();
    Ok(Json(json!({ "keys": rows })))
}

#[derive(Deserialize)]
struct TokensQuery {
    group_by: Option<String>,
    days: Option<u32>,
}

/// Tokens per day (UTC) and per key or client token, over the last `days` (default 7, at most
/// 92), from the successful attempts.
async fn tokens(
    State(state): State<GatewayState>,
    tokens: QueryResult<TokensQuery>,
) -> Result<Json<Value>, GoogleError> {
    let Query(tokens) = tokens?;
    let (grouping, by_client) = match tokens.group_by.as_deref().unwrap_or("key") {
        "key" => (pb::TokenGrouping::Key, false),
        "client" => (pb::TokenGrouping::Client, true),
        other => {
            return Err(GoogleError(
                400,
                format!("group_by: {other:?} is not key or client"),
            ));
        }
    };
    let days = tokens.days.unwrap_or(7);
    if !(1..=92).contains(&days) {
        return Err(GoogleError(400, "days: must be between 1 and 92".into()));
    }
    let today_start = now_ms() - now_ms().rem_euclid(86_400_000);
    let since_ms = today_start - i64::from(days - 1) * 86_400_000;
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
    let rows: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut value = json!({
                "day": row.day,
                "calls": row.calls,
                "prompt_tokens": row.prompt_tokens,
                "completion_tokens": row.completion_tokens,
                "total_tokens": row.prompt_tokens + row.completion_tokens,
            });
            if by_client {
                value["client"] = json!(row.group);
            } else {
                value["key"] = json!(row.group);
                value["key_id"] = json!(row.key_id);
            }
            value
        })
        .collect();
    Ok(Json(json!({
        "group_by": if by_client { "client" } else { "key" },
        "days": days,
        "rows": rows,
    })))
}

#[derive(Deserialize)]
struct SeriesQuery {
    /// `minute`, `hour` or `day`.
    width: Option<String>,
    /// `1h`, `8h`, `24h`, … as the other statistics take it.
    period: Option<String>,
}

/// Calls and failures per minute, hour or day over a period, with the period's latency
/// percentiles of upstream attempts: the console's charts.
async fn series(
    State(state): State<GatewayState>,
    query: QueryResult<SeriesQuery>,
) -> Result<Json<Value>, GoogleError> {
    let Query(query) = query?;
    let width_s = match query.width.as_deref().unwrap_or("minute") {
        "minute" => 60,
        "hour" => 3_600,
        "day" => 86_400,
        other => {
            return Err(GoogleError(
                400,
                format!("width: {other:?} is not minute, hour or day"),
            ));
        }
    };
    let period = period_ms(query.period.as_deref())?;
    let since_ms = now_ms() - period;
    let series = state
        .logging
        .clone()
        .call_series(pb::CallSeriesRequest {
            since_ms: since_ms - since_ms.rem_euclid(i64::from(width_s) * 1_000),
            width_s,
        })
        .await?
        .into_inner();
    Ok(Json(json!({
        "width": query.width.as_deref().unwrap_or("minute"),
        "points": series.points.iter().map(|point| json!({
            "time": time(point.bucket_ms),
            "calls": point.calls,
            "success": point.success,
            "failure": point.calls - point.success,
        })).collect::<Vec<_>>(),
        "calls": series.calls,
        "latency_ms": {
            "p50": series.latency_p50_ms,
            "p90": series.latency_p90_ms,
            "p99": series.latency_p99_ms,
        },
    })))
}
