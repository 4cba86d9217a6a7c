//! gemini-balance's error-log API, behind the admin token: listing with filters, sort and
//! pagination, details, the lookup by key and time, and deletion. Keys are shown masked; a
//! full key value (or a key id) in a filter finds that key's logs.

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::routing::{delete, get};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use gb_proto::keys::v1 as keys_pb;
use gb_proto::logging::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::errors::GoogleError;
use crate::key_admin_routes::{selector, time};
use crate::state::GatewayState;

pub fn routes() -> Router<GatewayState> {
    Router::new()
        .route("/api/logs/errors", get(list_errors).delete(delete_selected))
        .route("/api/logs/errors/all", delete(delete_all))
        .route("/api/logs/errors/lookup", get(lookup))
        .route("/api/logs/errors/{id}/details", get(details))
        .route("/api/logs/errors/{id}", delete(delete_one))
}

/// The key a caller names (full value or id), as (id, masked value); `None` when unknown.
pub async fn find_key(
    state: &GatewayState,
    key: &str,
) -> Result<Option<(i64, String)>, GoogleError> {
    match state
        .keys
        .clone()
        .get_key(keys_pb::GetKeyRequest {
            key: Some(selector(key)),
        })
        .await
    {
        Ok(found) => {
            let found = found.into_inner();
            Ok(Some((found.id, found.masked_value)))
        }
        Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
        Err(status) => Err(status.into()),
    }
}

/// A time as the admin UI sends it: RFC 3339, `YYYY-MM-DDTHH:MM[:SS]` or a date (UTC), or
/// milliseconds since the epoch.
pub fn parse_time(name: &str, text: &str) -> Result<i64, GoogleError> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp_millis());
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(time) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(time.and_utc().timestamp_millis());
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date
            .and_hms_opt(0, 0, 0)
            .map_or(0, |time| time.and_utc().timestamp_millis()));
    }
    Err(GoogleError(
        400,
        format!("{name}: {text:?} is not a time (RFC 3339, YYYY-MM-DDTHH:MM or YYYY-MM-DD)"),
    ))
}

fn record_of(log: &pb::ErrorLog) -> pb::ErrorRecord {
    log.record.clone().unwrap_or_default()
}

fn summary_json(log: &pb::ErrorLog) -> Value {
    let record = record_of(log);
    json!({
        "id": log.id,
        "gemini_key": record.key_masked,
        "key_id": record.key_id,
        "error_type": record.error_type,
        "error_code": record.error_code,
        "model_name": record.model,
        "request_time": time(record.at_ms),
    })
}

fn details_json(log: &pb::ErrorLog) -> Value {
    let record = record_of(log);
    let request_msg = if record.request_body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&record.request_body)
            .unwrap_or_else(|_| Value::String(record.request_body.clone()))
    };
    let mut details = summary_json(log);
    details["error_log"] = json!(record.error_message);
    details["error_class"] = json!(record.error_class().label());
    details["request_msg"] = request_msg;
    details["client"] = json!(record.client);
    details
}

/// The filters of an error-log listing, as gemini-balance's UI sends them (and the console).
#[derive(Deserialize, Default)]
pub struct ListQuery {
    pub limit: Option<u32>,
    pub offset: Option<u32>,
    pub key_search: Option<String>,
    pub error_search: Option<String>,
    pub error_code_search: Option<String>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub sort_by: Option<String>,
    pub sort_order: Option<String>,
}

fn nonempty(value: &Option<String>) -> Option<&str> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

async fn list_errors(
    State(state): State<GatewayState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, GoogleError> {
    let Query(query) = query?;
    let (logs, total) = error_logs(&state, &query).await?;
    Ok(Json(json!({
        "logs": logs.iter().map(summary_json).collect::<Vec<_>>(),
        "total": total,
    })))
}

/// The error logs a listing's filters select (one page of them) and how many they select.
pub async fn error_logs(
    state: &GatewayState,
    query: &ListQuery,
) -> Result<(Vec<pb::ErrorLog>, u64), GoogleError> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=1000).contains(&limit) {
        return Err(GoogleError(400, "limit: must be between 1 and 1000".into()));
    }
    let mut request = pb::ListErrorLogsRequest {
        limit,
        offset: query.offset.unwrap_or(0),
        error_search: nonempty(&query.error_search).unwrap_or_default().to_owned(),
        sort_by: nonempty(&query.sort_by).unwrap_or("id").to_owned(),
        ascending: match nonempty(&query.sort_order) {
            None | Some("desc") => false,
            Some("asc") => true,
            Some(other) => {
                return Err(GoogleError(
                    400,
                    format!("sort_order: {other:?} is not asc or desc"),
                ));
            }
        },
        ..Default::default()
    };
    if let Some(code) = nonempty(&query.error_code_search) {
        request.error_code = code.parse().map_err(|_| {
            GoogleError(
                400,
                format!("error_code_search: {code:?} is not a status code"),
            )
        })?;
    }
    if let Some(start) = nonempty(&query.start_date) {
        request.start_ms = parse_time("start_date", start)?;
    }
    if let Some(end) = nonempty(&query.end_date) {
        request.end_ms = parse_time("end_date", end)?;
    }
    if let Some(key) = nonempty(&query.key_search) {
        // A whole key (or an id) names one key; anything else searches the masked values.
        let whole_key = key.len() > 24 && !key.contains('…') || key.parse::<i64>().is_ok();
        match whole_key {
            true => match find_key(state, key).await? {
                Some((id, _)) => request.key_id = id,
                None => return Ok((Vec::new(), 0)),
            },
            false => request.key_search = key.to_owned(),
        }
    }
    let answer = state
        .logging
        .clone()
        .list_error_logs(request)
        .await?
        .into_inner();
    Ok((answer.logs, answer.total))
}

fn log_id(text: &str) -> Result<i64, GoogleError> {
    text.parse()
        .map_err(|_| GoogleError(400, format!("log id {text:?} is not a number")))
}

async fn details(
    State(state): State<GatewayState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, GoogleError> {
    let log = state
        .logging
        .clone()
        .get_error_log(pb::GetErrorLogRequest { id: log_id(&id)? })
        .await?
        .into_inner();
    Ok(Json(details_json(&log)))
}

#[derive(Deserialize)]
struct LookupQuery {
    gemini_key: String,
    timestamp: String,
    status_code: Option<u32>,
    window_seconds: Option<u32>,
}

async fn lookup(
    State(state): State<GatewayState>,
    query: Result<Query<LookupQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, GoogleError> {
    let Query(query) = query?;
    let at_ms = parse_time("timestamp", &query.timestamp)?;
    let Some((key_id, _)) = find_key(&state, &query.gemini_key).await? else {
        return Err(GoogleError(404, "no such key in the pool".into()));
    };
    let log = state
        .logging
        .clone()
        .lookup_error_log(pb::LookupErrorLogRequest {
            key_id,
            at_ms,
            status_code: query.status_code.unwrap_or(0),
            window_seconds: query.window_seconds.unwrap_or(100),
        })
        .await?
        .into_inner();
    Ok(Json(details_json(&log)))
}

#[derive(Deserialize)]
struct Ids {
    ids: Vec<i64>,
}

async fn delete_logs(state: &GatewayState, ids: Vec<i64>, all: bool) -> Result<u64, GoogleError> {
    Ok(state
        .logging
        .clone()
        .delete_error_logs(pb::DeleteErrorLogsRequest { ids, all })
        .await?
        .into_inner()
        .deleted)
}

async fn delete_selected(
    State(state): State<GatewayState>,
    body: Result<Json<Ids>, JsonRejection>,
) -> Result<Json<Value>, GoogleError> {
    let Json(body) = body.map_err(|rejection| {
        GoogleError(
            400,
            format!("expected {{\"ids\": [...]}}: {}", rejection.body_text()),
        )
    })?;
    if body.ids.is_empty() {
        return Err(GoogleError(400, "ids: no log ids given".into()));
    }
    let deleted = delete_logs(&state, body.ids, false).await?;
    Ok(Json(json!({"success": true, "deleted": deleted})))
}

async fn delete_all(State(state): State<GatewayState>) -> Result<Json<Value>, GoogleError> {
    let deleted = delete_logs(&state, Vec::new(), true).await?;
    Ok(Json(json!({"success": true, "deleted": deleted})))
}

async fn delete_one(
    State(state): State<GatewayState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, GoogleError> {
    let id = log_id(&id)?;
    match delete_logs(&state, vec![id], false).await? {
        0 => Err(GoogleError(404, format!("no error log {id}"))),
        deleted => Ok(Json(json!({"success": true, "deleted": deleted}))),
    }
}
