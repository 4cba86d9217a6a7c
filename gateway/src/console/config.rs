//! `/console/config`: every setting of the config registry in gemini-balance's tabs, with
//! where its value comes from and whether it may change here. The page shows each value as
//! JSON (readable without scripts); `config.js` turns it into the editor of its kind and saves
//! through `PUT /api/config` (hot reload), resets through `DELETE /configs/{name}` and `POST
//! /api/config/reset`.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use gb_proto::config::v1 as pb;

use super::{Chrome, failure, render, when};
use crate::state::GatewayState;

pub struct Setting {
    pub name: String,
    pub value_json: String,
    pub kind: String,
    pub secret: bool,
    pub editable: bool,
    pub source: &'static str,
    pub source_label: &'static str,
    pub about: &'static str,
    pub not_applied: String,
    pub updated: String,
    /// `model`: a model name or a list of them (the picker offers the models list).
    pub picker: &'static str,
}

pub struct Tab {
    pub id: &'static str,
    pub label: &'static str,
    pub settings: Vec<Setting>,
}

#[derive(Template)]
#[template(path = "console/config.html")]
struct ConfigPage {
    chrome: Chrome,
    tabs: Vec<Tab>,
    models: Vec<String>,
    models_problem: String,
}

/// gemini-balance's tabs: which one a setting is in.
fn tab_of(name: &str) -> &'static str {
    const MODEL: [&str; 14] = [
        "TEST_MODEL",
        "FILTERED_MODELS",
        "CHAT_MODEL",
        "SEARCH_MODELS",
        "IMAGE_MODELS",
        "THINKING_MODELS",
        "THINKING_BUDGET_MAP",
        "SHOW_THINKING_PROCESS",
        "SAFETY_SETTINGS",
        "TOOLS_CODE_EXECUTION_ENABLED",
        "URL_CONTEXT_ENABLED",
        "URL_CONTEXT_MODELS",
        "ANTHROPIC_MODEL_MAP",
        "EMBEDDING_MODEL_MAP",
    ];
    match name {
        _ if MODEL.contains(&name) || name == "SHOW_SEARCH_LINK" => "model",
        _ if name.starts_with("TTS_") => "tts",
        "CREATE_IMAGE_MODEL" | "PAID_KEY" | "FETCH_PRIVATE_URLS" => "image",
        _ if name.starts_with("FAKE_STREAM") => "stream",
        _ if name.starts_with("LOG_")
            || name.starts_with("AUTO_DELETE_")
            || name == "ERROR_LOG_RECORD_REQUEST_BODY" =>
        {
            "logging"
        }
        _ if name.starts_with("FILES_")
            || name.ends_with("_ADDR")
            || name.ends_with("_URL") && name != "BASE_URL"
            || name.ends_with("_TIMEOUT")
            || matches!(
                name,
                "MAX_CONNECTIONS" | "ADMIN_SESSION_EXPIRE" | "DATABASE_URL" | "ENCRYPTION_KEY"
            ) =>
        {
            "other"
        }
        _ => "api",
    }
}

fn picker_of(name: &str) -> &'static str {
    if name.ends_with("_MODEL") || name.ends_with("_MODELS") {
        "model"
    } else {
        ""
    }
}

/// How long the picker's models list is kept.
const MODELS_KEPT: std::time::Duration = std::time::Duration::from_secs(600);

/// The model names the chat service lists (`models/` dropped), or why there are none; a list
/// fetched in the last ten minutes is used again.
async fn model_names(state: &GatewayState) -> Result<Vec<String>, String> {
    let kept = |models: &std::sync::Mutex<Option<(std::time::Instant, Vec<String>)>>| {
        models.lock().unwrap_or_else(|e| e.into_inner()).clone()
    };
    if let Some((fetched, names)) = kept(&state.console.models)
        && fetched.elapsed() < MODELS_KEPT
    {
        return Ok(names);
    }
    let names = fetch_model_names(state).await?;
    *state
        .console
        .models
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some((std::time::Instant::now(), names.clone()));
    Ok(names)
}

async fn fetch_model_names(state: &GatewayState) -> Result<Vec<String>, String> {
    let request = gb_proto::chat::v1::ListModelsRequest {
        context: Some(gb_proto::chat::v1::CallContext {
            caller: "admin".into(),
            request_id: uuid::Uuid::new_v4().to_string(),
            ..Default::default()
        }),
        page_size: 1_000,
        page_token: String::new(),
    };
    let body = state
        .chat
        .clone()
        .list_models(request)
        .await
        .map_err(|status| status.message().to_owned())?
        .into_inner()
        .body;
    let listed: serde_json::Value =
        serde_json::from_slice(&body).map_err(|error| error.to_string())?;
    Ok(listed["models"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|model| model["name"].as_str())
        .map(|name| name.trim_start_matches("models/").to_owned())
        .collect())
}

pub async fn page(State(state): State<GatewayState>, headers: HeaderMap, uri: Uri) -> Response {
    let chrome = match Chrome::of(&state, &headers, uri.query(), "config") {
        Ok(chrome) => chrome,
        Err(login) => return login.into_response(),
    };
    let entries = match state
        .config
        .clone()
        .list_configs(pb::ListConfigsRequest {})
        .await
    {
        Ok(answer) => answer.into_inner().entries,
        Err(status) => return failure(&chrome, &status),
    };
    let t = chrome.t;
    let mut tabs: Vec<Tab> = [
        ("api", t.tab_api),
        ("model", t.tab_model),
        ("tts", t.tab_tts),
        ("image", t.tab_image),
        ("stream", t.tab_stream),
        ("logging", t.tab_logging),
        ("other", t.tab_other),
    ]
    .into_iter()
    .map(|(id, label)| Tab {
        id,
        label,
        settings: Vec::new(),
    })
    .collect();
    for entry in entries {
        let (source, source_label) = match entry.source() {
            pb::ConfigSource::Api => ("api", t.source_api),
            pb::ConfigSource::Environment => ("environment", t.source_environment),
            pb::ConfigSource::Default | pb::ConfigSource::Unspecified => {
                ("default", t.source_default)
            }
        };
        let english = gb_runtime::settings::DECLARATIONS
            .iter()
            .find(|declaration| declaration.name == entry.name)
            .map(|declaration| declaration.description)
            .unwrap_or_default();
        let about = match chrome.lang {
            "zh-CN" => super::setting_help::about_zh(&entry.name).unwrap_or(english),
            _ => english,
        };
        let tab = tab_of(&entry.name);
        let setting = Setting {
            picker: picker_of(&entry.name),
            value_json: entry.value_json.clone(),
            kind: entry.kind.clone(),
            secret: entry.secret,
            editable: entry.editable,
            source,
            source_label,
            about,
            not_applied: entry.not_applied.clone(),
            updated: when(entry.updated_at_ms),
            name: entry.name,
        };
        if let Some(tab) = tabs.iter_mut().find(|candidate| candidate.id == tab) {
            tab.settings.push(setting);
        }
    }
    tabs.retain(|tab| !tab.settings.is_empty());
    let (models, models_problem) = match model_names(&state).await {
        Ok(models) => (models, String::new()),
        Err(problem) => (Vec::new(), problem),
    };
    render(&ConfigPage {
        chrome,
        tabs,
        models,
        models_problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_has_a_tab_as_gemini_balance_groups_them() {
        assert_eq!(tab_of("API_KEYS"), "api");
        assert_eq!(tab_of("MAX_RETRIES"), "api");
        assert_eq!(tab_of("THINKING_BUDGET_MAP"), "model");
        assert_eq!(tab_of("TTS_VOICE_NAME"), "tts");
        assert_eq!(tab_of("CREATE_IMAGE_MODEL"), "image");
        assert_eq!(tab_of("FAKE_STREAM_ENABLED"), "stream");
        assert_eq!(tab_of("AUTO_DELETE_ERROR_LOGS_DAYS"), "logging");
        assert_eq!(tab_of("BASE_URL"), "api");
        assert_eq!(tab_of("FILES_MAX_SIZE_MB"), "other");
        assert_eq!(picker_of("SEARCH_MODELS"), "model");
        assert_eq!(picker_of("MAX_RETRIES"), "");
    }
}
