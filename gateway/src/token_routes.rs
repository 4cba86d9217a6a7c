//! The operator's API for managed client tokens (admin token): create (the value is shown in
//! that answer only), list (masked, with what each has spent), change, revoke, rotate. Tokens
//! from `ALLOWED_TOKENS` are not listed here: they stay unlimited, as before.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use gb_proto::keys::v1 as pb;
use serde_json::{Map, Value, json};

use crate::errors::GoogleError;
use crate::key_admin_routes::time;
use crate::state::GatewayState;

pub fn routes() -> Router<GatewayState> {
    Router::new()
        .route("/api/tokens", get(list).post(create))
        .route(
            "/api/tokens/{id}",
            axum::routing::patch(update).delete(revoke),
        )
        .route("/api/tokens/{id}/rotate", post(rotate))
        .route("/api/stats/client-tokens", get(stats))
}

type Body = Result<Json<Value>, axum::extract::rejection::JsonRejection>;

fn object(body: Body) -> Result<Map<String, Value>, GoogleError> {
    let Json(body) = body.map_err(|rejection| GoogleError(400, rejection.body_text()))?;
    match body {
        Value::Object(fields) => Ok(fields),
        _ => Err(GoogleError(400, "a JSON object is expected".into())),
    }
}

const FIELDS: &[&str] = &[
    "name",
    "models",
    "rpm",
    "tpm",
    "daily_token_budget",
    "monthly_token_budget",
    "expires_at",
    "enabled",
];

fn check_fields(fields: &Map<String, Value>, allowed: &[&str]) -> Result<(), GoogleError> {
    match fields.keys().find(|name| !allowed.contains(&name.as_str())) {
        Some(unknown) => Err(GoogleError(
            400,
            format!(
                "{unknown}: not a field of a client token (known: {})",
                allowed.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

/// A limit: a whole number ≥ 0, or null (none).
fn limit(fields: &Map<String, Value>, name: &str) -> Result<Option<Option<u64>>, GoogleError> {
    match fields.get(name) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(value) => value
            .as_u64()
            .map(|limit| Some(Some(limit)))
            .ok_or_else(|| GoogleError(400, format!("{name}: a whole number ≥ 0 or null"))),
    }
}

/// `expires_at`: RFC 3339 or Unix seconds, or null (never).
fn expiry(fields: &Map<String, Value>) -> Result<Option<Option<i64>>, GoogleError> {
    let bad = || GoogleError(400, "expires_at: RFC 3339, Unix seconds or null".into());
    match fields.get("expires_at") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::Number(seconds)) => seconds
            .as_i64()
            .and_then(|seconds| seconds.checked_mul(1000))
            .map(|ms| Some(Some(ms)))
            .ok_or_else(bad),
        Some(Value::String(text)) => chrono::DateTime::parse_from_rfc3339(text)
            .map(|time| Some(Some(time.timestamp_millis())))
            .map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

fn models(fields: &Map<String, Value>) -> Result<Option<Vec<String>>, GoogleError> {
    match fields.get("models") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(models)) => models
            .iter()
            .map(|model| model.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| GoogleError(400, "models: a list of model globs".into())),
        Some(_) => Err(GoogleError(400, "models: a list of model globs".into())),
    }
}

fn token_json(state: &GatewayState, token: &pb::ClientToken) -> Value {
    let spec = token.spec.clone().unwrap_or_default();
    let spent = state.managed_tokens.spent(&token.caller);
    json!({
        "id": token.id,
        "name": spec.name,
        "masked": token.masked,
        "client": token.caller,
        "models": spec.models,
        "rpm": spec.rpm,
        "tpm": spec.tpm,
        "daily_token_budget": spec.daily_token_budget,
        "monthly_token_budget": spec.monthly_token_budget,
        "expires_at": spec.expires_at_ms.map(time),
        "enabled": token.enabled,
        "created_at": time(token.created_at_ms),
        "usage": {
            "tokens_last_minute": spent.tokens_last_minute,
            "tokens_today": spent.tokens_today,
            "tokens_this_month": spent.tokens_this_month,
        },
    })
}

fn issued_json(state: &GatewayState, issued: &pb::IssuedClientToken) -> Value {
    let mut body = issued
        .token
        .as_ref()
        .map(|token| token_json(state, token))
        .unwrap_or_else(|| json!({}));
    body["token"] = json!(issued.value);
    body
}

async fn create(State(state): State<GatewayState>, body: Body) -> Result<Response, GoogleError> {
    let fields = object(body)?;
    check_fields(&fields, &FIELDS[..7])?;
    let name = match fields.get("name") {
        Some(Value::String(name)) => name.clone(),
        _ => return Err(GoogleError(400, "name: a string is required".into())),
    };
    let spec = pb::ClientTokenSpec {
        name,
        models: models(&fields)?.unwrap_or_default(),
        rpm: limit(&fields, "rpm")?.flatten(),
        tpm: limit(&fields, "tpm")?.flatten(),
        daily_token_budget: limit(&fields, "daily_token_budget")?.flatten(),
        monthly_token_budget: limit(&fields, "monthly_token_budget")?.flatten(),
        expires_at_ms: expiry(&fields)?.flatten(),
    };
    let issued = state
        .keys
        .clone()
        .create_client_token(spec)
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, Json(issued_json(&state, &issued))).into_response())
}

async fn list(State(state): State<GatewayState>) -> Result<Json<Value>, GoogleError> {
    let tokens = state
        .keys
        .clone()
        .list_client_tokens(pb::ListClientTokensRequest {})
        .await?
        .into_inner()
        .tokens;
    Ok(Json(json!({
        "tokens": tokens.iter().map(|token| token_json(&state, token)).collect::<Vec<_>>(),
    })))
}

/// Each managed token's use against its limits: the listing's rows, with what is left of each
/// budget and rate (`null`: no limit).
async fn stats(State(state): State<GatewayState>) -> Result<Json<Value>, GoogleError> {
    let Json(mut listed) = list(State(state)).await?;
    if let Some(rows) = listed["tokens"].as_array_mut() {
        for row in rows {
            let usage = row["usage"].clone();
            let left = |limit: &str, used: &str| {
                row[limit]
                    .as_u64()
                    .map(|limit| limit.saturating_sub(usage[used].as_u64().unwrap_or(0)))
            };
            row["left"] = json!({
                "tokens_this_minute": left("tpm", "tokens_last_minute"),
                "daily_tokens": left("daily_token_budget", "tokens_today"),
                "monthly_tokens": left("monthly_token_budget", "tokens_this_month"),
            });
        }
    }
    Ok(Json(listed))
}

fn token_id(id: &str) -> Result<i64, GoogleError> {
    id.parse()
        .map_err(|_| GoogleError(400, format!("{id:?} is not a client token id")))
}

async fn update(
    State(state): State<GatewayState>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<Value>, GoogleError> {
    let id = token_id(&id)?;
    let fields = object(body)?;
    check_fields(&fields, FIELDS)?;
    let mut update = pb::UpdateClientTokenRequest {
        id,
        ..Default::default()
    };
    match fields.get("name") {
        None => {}
        Some(Value::String(name)) => update.name = Some(name.clone()),
        Some(_) => return Err(GoogleError(400, "name: a string".into())),
    }
    if fields.contains_key("models") {
        update.set_models = true;
        update.models = models(&fields)?.unwrap_or_default();
    }
    for (name, value, clear) in [
        ("rpm", &mut update.rpm, &mut update.clear_rpm),
        ("tpm", &mut update.tpm, &mut update.clear_tpm),
        (
            "daily_token_budget",
            &mut update.daily_token_budget,
            &mut update.clear_daily_token_budget,
        ),
        (
            "monthly_token_budget",
            &mut update.monthly_token_budget,
            &mut update.clear_monthly_token_budget,
        ),
    ] {
        match limit(&fields, name)? {
            None => {}
            Some(None) => *clear = true,
            Some(given) => *value = given,
        }
    }
    match expiry(&fields)? {
        None => {}
        Some(None) => update.clear_expires_at = true,
        Some(given) => update.expires_at_ms = given,
    }
    match fields.get("enabled") {
        None => {}
        Some(Value::Bool(enabled)) => update.enabled = Some(*enabled),
        Some(_) => return Err(GoogleError(400, "enabled: true or false".into())),
    }
    let token = state
        .keys
        .clone()
        .update_client_token(update)
        .await?
        .into_inner();
    Ok(Json(token_json(&state, &token)))
}

async fn revoke(
    State(state): State<GatewayState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, GoogleError> {
    let id = token_id(&id)?;
    state
        .keys
        .clone()
        .delete_client_token(pb::ClientTokenId { id })
        .await?;
    Ok(Json(json!({"message": "client token revoked", "id": id})))
}

async fn rotate(
    State(state): State<GatewayState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, GoogleError> {
    let id = token_id(&id)?;
    let issued = state
        .keys
        .clone()
        .rotate_client_token(pb::ClientTokenId { id })
        .await?
        .into_inner();
    Ok(Json(issued_json(&state, &issued)))
}
