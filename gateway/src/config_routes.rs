//! The settings API, behind the admin token: the original design's `/configs` resource and
//! gemini-balance's `/api/config`. Secrets are masked in every answer; a masked value sent
//! back unchanged keeps the stored one, so a client may send back what it read.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use gb_proto::config::v1 as pb;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::errors::GoogleError;
use crate::key_admin_routes::time;
use crate::state::GatewayState;

pub fn routes() -> Router<GatewayState> {
    Router::new()
        .route("/configs", get(list_configs))
        .route(
            "/configs/{key}",
            get(get_config).put(put_config).delete(reset_config),
        )
        .route("/api/config", get(get_flat).put(put_flat))
        .route("/api/config/reset", post(reset_all))
        // gemini-balance's proxy checks (its settings page's buttons).
        .route("/proxy/check", post(check_proxy))
        .route("/proxy/check-all", post(check_all_proxies))
}

fn source_name(source: pb::ConfigSource) -> &'static str {
    match source {
        pb::ConfigSource::Default => "default",
        pb::ConfigSource::Environment => "environment",
        pb::ConfigSource::Api => "api",
        pb::ConfigSource::Unspecified => "unknown",
    }
}

fn value_of(entry: &pb::ConfigEntry) -> Value {
    serde_json::from_str(&entry.value_json).unwrap_or(Value::Null)
}

fn entry_json(entry: &pb::ConfigEntry) -> Value {
    json!({
        "key": entry.name,
        "value": value_of(entry),
        "source": source_name(entry.source()),
        "kind": entry.kind,
        "secret": entry.secret,
        "editable": entry.editable,
        "updated_at": time(entry.updated_at_ms),
        "applied": entry.not_applied.is_empty(),
        "problem": (!entry.not_applied.is_empty()).then_some(&entry.not_applied),
    })
}

fn flat(entries: &[pb::ConfigEntry]) -> Value {
    Value::Object(
        entries
            .iter()
            .map(|entry| (entry.name.clone(), value_of(entry)))
            .collect(),
    )
}

async fn entries(state: &GatewayState) -> Result<Vec<pb::ConfigEntry>, GoogleError> {
    Ok(state
        .config
        .clone()
        .list_configs(pb::ListConfigsRequest {})
        .await?
        .into_inner()
        .entries)
}

async fn put(
    state: &GatewayState,
    values: HashMap<String, String>,
) -> Result<Vec<pb::ConfigEntry>, GoogleError> {
    Ok(state
        .config
        .clone()
        .put_configs(pb::PutConfigsRequest {
            values_json: values,
        })
        .await?
        .into_inner()
        .entries)
}

async fn list_configs(State(state): State<GatewayState>) -> Result<Json<Value>, GoogleError> {
    let entries = entries(&state).await?;
    Ok(Json(
        json!({"configs": entries.iter().map(entry_json).collect::<Vec<_>>()}),
    ))
}

async fn get_config(
    State(state): State<GatewayState>,
    Path(key): Path<String>,
) -> Result<Json<Value>, GoogleError> {
    let entry = state
        .config
        .clone()
        .get_config(pb::GetConfigRequest { name: key })
        .await?
        .into_inner();
    Ok(Json(entry_json(&entry)))
}

#[derive(Deserialize)]
struct NewValue {
    value: Value,
}

async fn put_config(
    State(state): State<GatewayState>,
    Path(key): Path<String>,
    body: Result<Json<NewValue>, JsonRejection>,
) -> Result<Json<Value>, GoogleError> {
    let Json(body) = body.map_err(|rejection| {
        GoogleError(
            400,
            format!("expected {{\"value\": …}}: {}", rejection.body_text()),
        )
    })?;
    let entries = put(
        &state,
        HashMap::from([(key.clone(), body.value.to_string())]),
    )
    .await?;
    changed(&entries, &key, "updated")
}

/// The answer to a change of one setting: the setting as it now is.
fn changed(entries: &[pb::ConfigEntry], key: &str, what: &str) -> Result<Json<Value>, GoogleError> {
    let entry = entries
        .iter()
        .find(|entry| entry.name == key)
        .ok_or_else(|| GoogleError(500, format!("{key} is missing from the answer")))?;
    Ok(Json(json!({
        "success": true,
        "message": format!("{key} {what}"),
        "config": entry_json(entry),
    })))
}

async fn reset_config(
    State(state): State<GatewayState>,
    Path(key): Path<String>,
) -> Result<Json<Value>, GoogleError> {
    let entries = state
        .config
        .clone()
        .reset_configs(pb::ResetConfigsRequest {
            names: vec![key.clone()],
        })
        .await?
        .into_inner()
        .entries;
    changed(&entries, &key, "reset")
}

async fn get_flat(State(state): State<GatewayState>) -> Result<Json<Value>, GoogleError> {
    Ok(Json(flat(&entries(&state).await?)))
}

/// gemini-balance's save: any subset of the settings, as one object. Settings read from the
/// environment only may be sent back as they were read (masked); any other change to them,
/// and any unknown name, is refused with the setting named.
async fn put_flat(
    State(state): State<GatewayState>,
    body: Result<Json<Map<String, Value>>, JsonRejection>,
) -> Result<Json<Value>, GoogleError> {
    let Json(body) = body.map_err(|rejection| {
        GoogleError(
            400,
            format!(
                "expected a JSON object of settings: {}",
                rejection.body_text()
            ),
        )
    })?;
    let current = entries(&state).await?;
    let mut values = HashMap::new();
    for (name, value) in body {
        let unchanged_read_only = current
            .iter()
            .any(|entry| entry.name == name && !entry.editable && value_of(entry) == value);
        if !unchanged_read_only {
            values.insert(name, value.to_string());
        }
    }
    if values.is_empty() {
        return Ok(Json(flat(&current)));
    }
    Ok(Json(flat(&put(&state, values).await?)))
}

async fn reset_all(State(state): State<GatewayState>) -> Result<Json<Value>, GoogleError> {
    let entries = state
        .config
        .clone()
        .reset_configs(pb::ResetConfigsRequest { names: vec![] })
        .await?
        .into_inner()
        .entries;
    Ok(Json(flat(&entries)))
}

fn proxy_check_json(check: &gb_proto::chat::v1::ProxyCheck) -> Value {
    json!({
        "proxy": check.proxy,
        "is_available": check.available,
        "status_code": (check.status_code > 0).then_some(check.status_code),
        "response_time": f64::from(check.latency_ms) / 1_000.0,
        "error_message": (!check.error.is_empty()).then_some(&check.error),
    })
}

async fn check_proxies(
    state: &GatewayState,
    proxies: Vec<String>,
) -> Result<Vec<gb_proto::chat::v1::ProxyCheck>, GoogleError> {
    Ok(state
        .chat
        .clone()
        .check_proxies(tonic::Request::new(
            gb_proto::chat::v1::CheckProxiesRequest { proxies },
        ))
        .await?
        .into_inner()
        .checks)
}

#[derive(Deserialize)]
struct ProxyToCheck {
    proxy: String,
}

/// `POST /proxy/check` `{"proxy": "http://…"}` (or its masked form, as the settings show it):
/// whether it reaches `BASE_URL`'s host.
async fn check_proxy(
    State(state): State<GatewayState>,
    body: Result<Json<ProxyToCheck>, JsonRejection>,
) -> Result<Json<Value>, GoogleError> {
    let Json(body) = body.map_err(|rejection| GoogleError(400, rejection.body_text()))?;
    if body.proxy.trim().is_empty() {
        return Err(GoogleError(400, "proxy: empty".into()));
    }
    let checks = check_proxies(&state, vec![body.proxy.trim().to_owned()]).await?;
    let check = checks
        .first()
        .ok_or_else(|| GoogleError(500, "no proxy check result".into()))?;
    Ok(Json(proxy_check_json(check)))
}

/// `POST /proxy/check-all`: every proxy of `PROXIES`, ten at a time.
async fn check_all_proxies(State(state): State<GatewayState>) -> Result<Json<Value>, GoogleError> {
    let checks = check_proxies(&state, Vec::new()).await?;
    Ok(Json(json!({
        "total": checks.len(),
        "available": checks.iter().filter(|check| check.available).count(),
        "results": checks.iter().map(proxy_check_json).collect::<Vec<_>>(),
    })))
}
