//! Administrative key routes, all behind the admin token: the original design's `/keys`
//! resource, and gemini-balance's own key routes with the answer shapes its admin UI expects.
//! Key values are masked in every answer; a key in a path or body may be given by its full
//! value (as gemini-balance's UI sends it) or by its numeric id.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use chrono::DateTime;
use gb_proto::keys::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::errors::GoogleError;
use crate::state::GatewayState;

/// The original design's key resource.
pub fn key_resource_routes() -> Router<GatewayState> {
    Router::new()
        .route("/keys", get(list_keys).post(create_key))
        .route("/keys/{id}", delete(delete_key))
}

/// gemini-balance's key routes under `/gemini/v1beta`.
pub fn gemini_balance_key_routes() -> Router<GatewayState> {
    Router::new()
        .route("/verify-key/{key}", post(verify_key))
        .route("/verify-selected-keys", post(verify_selected_keys))
        .route("/reset-fail-count/{key}", post(reset_fail_count))
        .route("/reset-all-fail-counts", post(reset_all_fail_counts))
        .route(
            "/reset-selected-fail-counts",
            post(reset_selected_fail_counts),
        )
}

/// gemini-balance's `GET {/v1,/hf/v1}/keys/list`.
pub fn key_list_routes() -> Router<GatewayState> {
    Router::new().route("/keys/list", get(keys_list))
}

pub(crate) fn selector(key: &str) -> pb::KeySelector {
    let key = key.trim();
    let selector = match key.parse::<i64>() {
        Ok(id) => pb::key_selector::Selector::Id(id),
        Err(_) => pb::key_selector::Selector::Value(key.to_owned()),
    };
    pb::KeySelector {
        selector: Some(selector),
    }
}

fn status_name(status: pb::KeyStatus) -> &'static str {
    match status {
        pb::KeyStatus::Active => "active",
        pb::KeyStatus::CoolingDown => "cooling_down",
        pb::KeyStatus::Disabled => "disabled",
        pb::KeyStatus::Unspecified => "unknown",
    }
}

pub(crate) fn time(ms: i64) -> Value {
    if ms <= 0 {
        return Value::Null;
    }
    DateTime::from_timestamp_millis(ms).map_or(Value::Null, |time| json!(time.to_rfc3339()))
}

fn key_json(key: &pb::Key) -> Value {
    json!({
        "id": key.id,
        "key_value": key.masked_value,
        "key_type": key.key_type,
        "create_time": time(key.create_time_ms),
        "status": status_name(key.status()),
        "failure_count": key.failure_count,
        "cooldown_until": time(key.cooldown_until_ms),
        // The models the key rests for (their quota spent) while it serves the others.
        "model_cooldowns": key
            .model_cooldowns
            .iter()
            .map(|cooling| json!({"model": cooling.model, "until": time(cooling.until_ms)}))
            .collect::<Vec<_>>(),
        "last_error": if key.last_error.is_empty() { Value::Null } else { json!(key.last_error) },
        "last_used": time(key.last_used_ms),
        "success_count": key.success_count,
        "failure_total": key.failure_total,
    })
}

async fn all_keys(state: &GatewayState) -> Result<Vec<pb::Key>, GoogleError> {
    Ok(state
        .keys
        .clone()
        .list_keys(pb::ListKeysRequest::default())
        .await?
        .into_inner()
        .keys)
}

async fn list_keys(State(state): State<GatewayState>) -> Result<Json<Value>, GoogleError> {
    let keys = all_keys(&state).await?;
    Ok(Json(
        json!({"keys": keys.iter().map(key_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Deserialize)]
struct CreateKey {
    key_value: String,
    #[serde(default)]
    key_type: Option<String>,
}

async fn create_key(
    State(state): State<GatewayState>,
    body: Result<Json<CreateKey>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, GoogleError> {
    let Json(body) = body.map_err(|rejection| GoogleError(400, rejection.body_text()))?;
    let key = state
        .keys
        .clone()
        .create_key(pb::CreateKeyRequest {
            key_value: body.key_value,
            key_type: body.key_type.unwrap_or_default(),
        })
        .await?
        .into_inner();
    Ok((
        StatusCode::CREATED,
        Json(json!({"message": "key created", "key": key_json(&key)})),
    )
        .into_response())
}

async fn delete_key(
    State(state): State<GatewayState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, GoogleError> {
    let id: i64 = id
        .parse()
        .map_err(|_| GoogleError(400, format!("key id {id:?} is not a number")))?;
    let selector = pb::KeySelector {
        selector: Some(pb::key_selector::Selector::Id(id)),
    };
    state
        .keys
        .clone()
        .delete_key(pb::DeleteKeyRequest {
            key: Some(selector),
        })
        .await?;
    Ok(Json(json!({"message": "key deleted", "id": id})))
}

async fn keys_list(State(state): State<GatewayState>) -> Result<Json<Value>, GoogleError> {
    let keys = all_keys(&state).await?;
    let mut valid = serde_json::Map::new();
    let mut invalid = serde_json::Map::new();
    for key in &keys {
        let target = if key.status() == pb::KeyStatus::Disabled {
            &mut invalid
        } else {
            &mut valid
        };
        // Two keys whose masks collide stay apart by their id.
        let mut name = key.masked_value.clone();
        if target.contains_key(&name) {
            name = format!("{name}#{}", key.id);
        }
        target.insert(name, json!(key.failure_count));
    }
    Ok(Json(json!({
        "status": "success",
        "data": {"valid_keys": valid, "invalid_keys": invalid},
        "total": keys.len(),
    })))
}

async fn verify(
    state: &GatewayState,
    keys: Vec<pb::KeySelector>,
) -> Result<Vec<pb::VerifyResult>, GoogleError> {
    Ok(state
        .keys
        .clone()
        .verify_keys(pb::VerifyKeysRequest { keys })
        .await?
        .into_inner()
        .results)
}

async fn verify_key(
    State(state): State<GatewayState>,
    Path(key): Path<String>,
) -> Result<Response, GoogleError> {
    let results = verify(&state, vec![selector(&key)]).await?;
    let Some(result) = results.first() else {
        return Err(GoogleError(500, "no verification result".into()));
    };
    if !result.found {
        return Ok((
            StatusCode::NOT_FOUND,
            Json(json!({"status": "invalid", "error": "no such key in the pool"})),
        )
            .into_response());
    }
    Ok(Json(if result.valid {
        json!({"status": "valid"})
    } else {
        json!({"status": "invalid", "error": result.error})
    })
    .into_response())
}

#[derive(Deserialize)]
struct SelectedKeys {
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    key_type: Option<String>,
}

fn refuse_selection(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"success": false, "message": message})),
    )
        .into_response()
}

/// The selected keys of a bulk route; the refusal message when there are none.
fn selected(
    body: Result<Json<SelectedKeys>, axum::extract::rejection::JsonRejection>,
) -> Result<SelectedKeys, String> {
    let Json(body) = body.map_err(|rejection| rejection.body_text())?;
    if body.keys.is_empty() {
        return Err("no keys given".into());
    }
    Ok(body)
}

async fn verify_selected_keys(
    State(state): State<GatewayState>,
    body: Result<Json<SelectedKeys>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, GoogleError> {
    let body = match selected(body) {
        Ok(body) => body,
        Err(message) => return Ok(refuse_selection(message)),
    };
    let results = verify(&state, body.keys.iter().map(|key| selector(key)).collect()).await?;
    let mut successful = Vec::new();
    let mut failed = serde_json::Map::new();
    for result in &results {
        let name = if result.masked_value.is_empty() {
            match &result.key {
                Some(pb::KeySelector {
                    selector: Some(pb::key_selector::Selector::Value(value)),
                }) => gb_runtime::secrets::mask_key(value),
                Some(pb::KeySelector {
                    selector: Some(pb::key_selector::Selector::Id(id)),
                }) => format!("#{id}"),
                _ => String::new(),
            }
        } else {
            result.masked_value.clone()
        };
        if result.valid {
            successful.push(json!(name));
        } else {
            failed.insert(
                name,
                json!({"error_message": result.error, "error_code": if result.found { result.http_status } else { 404 }}),
            );
        }
    }
    Ok(Json(json!({
        "success": true,
        "message": format!("verified {} keys: {} valid, {} invalid", results.len(), successful.len(), failed.len()),
        "valid_count": successful.len(),
        "invalid_count": failed.len(),
        "successful_keys": successful,
        "failed_keys": failed,
    }))
    .into_response())
}

async fn reset(
    state: &GatewayState,
    request: pb::ResetKeysRequest,
) -> Result<pb::ResetKeysResponse, GoogleError> {
    Ok(state.keys.clone().reset_keys(request).await?.into_inner())
}

async fn reset_fail_count(
    State(state): State<GatewayState>,
    Path(key): Path<String>,
) -> Result<Response, GoogleError> {
    let answer = reset(
        &state,
        pb::ResetKeysRequest {
            keys: vec![selector(&key)],
            ..Default::default()
        },
    )
    .await?;
    if answer.reset == 0 {
        return Ok((
            StatusCode::NOT_FOUND,
            Json(json!({"success": false, "message": "no such key in the pool"})),
        )
            .into_response());
    }
    Ok(Json(json!({"success": true, "message": "failure count reset"})).into_response())
}

fn statuses_of(key_type: Option<&str>) -> Result<Vec<i32>, GoogleError> {
    match key_type.map(str::trim) {
        None | Some("") | Some("all") => Ok(Vec::new()),
        Some("valid") => Ok(vec![
            pb::KeyStatus::Active.into(),
            pb::KeyStatus::CoolingDown.into(),
        ]),
        Some("invalid") => Ok(vec![pb::KeyStatus::Disabled.into()]),
        Some(other) => Err(GoogleError(
            400,
            format!("key_type {other:?}: expected valid, invalid or all"),
        )),
    }
}

#[derive(Deserialize)]
struct KeyTypeQuery {
    key_type: Option<String>,
}

async fn reset_all_fail_counts(
    State(state): State<GatewayState>,
    Query(query): Query<KeyTypeQuery>,
) -> Result<Json<Value>, GoogleError> {
    let answer = reset(
        &state,
        pb::ResetKeysRequest {
            all: true,
            statuses: statuses_of(query.key_type.as_deref())?,
            ..Default::default()
        },
    )
    .await?;
    Ok(Json(
        json!({"success": true, "message": format!("reset {} keys", answer.reset), "reset_count": answer.reset}),
    ))
}

async fn reset_selected_fail_counts(
    State(state): State<GatewayState>,
    body: Result<Json<SelectedKeys>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, GoogleError> {
    let body = match selected(body) {
        Ok(body) => body,
        Err(message) => return Ok(refuse_selection(message)),
    };
    statuses_of(body.key_type.as_deref())?;
    let answer = reset(
        &state,
        pb::ResetKeysRequest {
            keys: body.keys.iter().map(|key| selector(key)).collect(),
            ..Default::default()
        },
    )
    .await?;
    let failed = answer.not_found.len();
    let status = if failed == 0 {
        StatusCode::OK
    } else {
        StatusCode::MULTI_STATUS
    };
    Ok((
        status,
        Json(json!({
            "success": failed == 0,
            "message": format!("reset {} keys, {} not found", answer.reset, failed),
            "reset_count": answer.reset,
            "failed_count": failed,
        })),
    )
        .into_response())
}
