//! `GET models` and `GET models/{model}` in OpenAI's shape, from the chat service's list
//! (which already hides `FILTERED_MODELS` and adds the `-search`, `-image`, `-non-thinking`
//! variants).

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use gb_proto::chat::v1 as pb;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::errors::{openai_error, openai_from_status};
use crate::state::GatewayState;

fn model_object(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": 0, "owned_by": "google"})
}

/// Every model the chat service lists (the upstream's pages followed: clients expect the
/// whole list at once), named without `models/`; a failure answered in the caller's shape
/// (`from_status`, `error`).
pub(crate) async fn model_names(
    state: &GatewayState,
    caller: &Caller,
    from_status: fn(&tonic::Status) -> Response,
    error: fn(u16, &str) -> Response,
) -> Result<Vec<String>, Response> {
    let mut names = Vec::new();
    let mut page_token = String::new();
    for _ in 0..20 {
        let answer = state
            .chat
            .list_models(pb::ListModelsRequest {
                context: caller.call_context(),
                page_size: 1000,
                page_token: page_token.clone(),
            })
            .await
            .map_err(|status| from_status(&status))?;
        let page: Value = serde_json::from_slice(&answer.into_inner().body)
            .map_err(|malformed| error(502, &super::malformed_answer(&malformed)))?;
        for model in page["models"].as_array().into_iter().flatten() {
            let name = model["name"].as_str().unwrap_or_default();
            names.push(name.strip_prefix("models/").unwrap_or(name).to_owned());
        }
        match page["nextPageToken"].as_str() {
            Some(token) if !token.is_empty() => page_token = token.to_owned(),
            _ => break,
        }
    }
    Ok(names)
}

pub async fn list(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let names = match model_names(&state, &caller, openai_from_status, openai_error).await {
        Ok(names) => names,
        Err(answer) => return answer,
    };
    let mut data: Vec<Value> = names.iter().map(|name| model_object(name)).collect();
    // gemini-balance's image generation as a chat model.
    data.push(model_object(&format!(
        "{}-chat",
        state.translation.get().create_image_model
    )));
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

pub async fn retrieve(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
    Path(model): Path<String>,
) -> Response {
    let answer = state
        .chat
        .clone()
        .get_model(pb::GetModelRequest {
            context: caller.call_context(),
            model: model.clone(),
        })
        .await;
    match answer {
        Ok(_) => axum::Json(model_object(
            model.strip_prefix("models/").unwrap_or(&model),
        ))
        .into_response(),
        Err(status) if status.code() == tonic::Code::NotFound => {
            openai_error(404, &format!("The model {model:?} does not exist"))
        }
        Err(status) => openai_from_status(&status),
    }
}
