//! Calls forwarded to Google's OpenAI-compatible layer (`{BASE_URL}/openai/…`): which paths
//! and methods are forwarded, and the call the attempt loop sends.

use gb_proto::chat::ChatError;
use gb_proto::chat::v1 as pb;

use crate::attempts::{Call, Origin};
use crate::chat_settings::ChatSettings;

/// `openai/{path}` below `BASE_URL`, for the paths Google's OpenAI layer serves.
pub(crate) fn openai_path(request: &pb::OpenAiRequest) -> Result<String, ChatError> {
    let path = request.path.trim_matches('/');
    let known = matches!(
        path,
        "models" | "chat/completions" | "embeddings" | "images/generations"
    ) || path
        .strip_prefix("models/")
        .is_some_and(|model| crate::models::normalize(model).is_some());
    if !known {
        return Err(ChatError::local(
            404,
            format!("openai/{path} is not forwarded"),
        ));
    }
    Ok(format!("openai/{path}"))
}

pub(crate) fn openai_call<'a>(
    settings: &'a ChatSettings,
    origin: Origin,
    request: &'a pb::OpenAiRequest,
    path: &'a str,
) -> Result<Call<'a>, ChatError> {
    let method = match request.method.as_str() {
        "GET" => reqwest::Method::GET,
        "POST" | "" => reqwest::Method::POST,
        other => {
            return Err(ChatError::local(
                405,
                format!("method {other} is not forwarded"),
            ));
        }
    };
    let body = (method == reqwest::Method::POST).then(|| request.body.clone());
    Ok(Call {
        method,
        path,
        body,
        model: &request.model,
        placement: gb_upstream::KeyPlacement::Bearer,
        fixed_key: if request.paid {
            settings.paid_key.as_deref()
        } else {
            None
        },
        origin,
        files: None,
    })
}
