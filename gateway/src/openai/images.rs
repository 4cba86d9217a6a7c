//! `POST images/generations`: Imagen's `predict` (with `PAID_KEY` when set, else the pool).
//! Every size OpenAI documents maps to the nearest aspect ratio Imagen serves; images come back
//! as `b64_json`, or as data URLs in `url` (this gateway hosts no images).

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use gb_proto::chat::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{context, parse_body, unix_now};
use crate::auth::Caller;
use crate::errors::{openai_error_with_param, openai_from_status};
use crate::state::GatewayState;

#[derive(Deserialize)]
struct ImageRequest {
    prompt: String,
    model: Option<String>,
    n: Option<u32>,
    size: Option<String>,
    response_format: Option<String>,
}

/// OpenAI's documented sizes → Imagen's aspect ratios (1:1, 3:4, 4:3, 9:16, 16:9).
pub fn aspect_ratio(size: &str) -> Option<&'static str> {
    match size {
        "auto" | "256x256" | "512x512" | "1024x1024" => Some("1:1"),
        "1792x1024" => Some("16:9"),
        "1024x1792" => Some("9:16"),
        "1536x1024" => Some("4:3"),
        "1024x1536" => Some("3:4"),
        _ => None,
    }
}

pub async fn generate_images(
    State(state): State<GatewayState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let request: ImageRequest = match parse_body(&body) {
        Ok(request) => request,
        Err(answer) => return answer,
    };
    if request.prompt.trim().is_empty() {
        return openai_error_with_param(400, "prompt must not be empty", Some("prompt"));
    }
    let count = request.n.unwrap_or(1);
    if !(1..=4).contains(&count) {
        return openai_error_with_param(400, "n must be between 1 and 4 for Imagen", Some("n"));
    }
    let size = request.size.as_deref().unwrap_or("1024x1024");
    let Some(ratio) = aspect_ratio(size) else {
        return openai_error_with_param(
            400,
            &format!(
                "size {size:?} is not one of auto, 256x256, 512x512, 1024x1024, 1536x1024, 1024x1536, 1792x1024, 1024x1792"
            ),
            Some("size"),
        );
    };
    let as_url = match request.response_format.as_deref() {
        None | Some("b64_json") => false,
        Some("url") => true,
        Some(other) => {
            return openai_error_with_param(
                400,
                &format!("response_format {other:?} is not url or b64_json"),
                Some("response_format"),
            );
        }
    };
    let model = request
        .model
        .filter(|model| model.starts_with("imagen"))
        .unwrap_or_else(|| state.translation.create_image_model.clone());
    let body = json!({
        "instances": [{"prompt": request.prompt}],
        "parameters": {"sampleCount": count, "aspectRatio": ratio}
    });
    let answer = state
        .chat
        .clone()
        .predict(pb::GeminiRequest {
            context: context(&caller),
            model,
            body: Bytes::from(body.to_string()),
        })
        .await;
    let answer: Value = match answer {
        Ok(answer) => serde_json::from_slice(&answer.into_inner().body).unwrap_or_default(),
        Err(status) => return openai_from_status(&status),
    };
    let data: Vec<Value> = answer["predictions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|prediction| {
            let encoded = prediction["bytesBase64Encoded"].as_str()?;
            let mime = prediction["mimeType"].as_str().unwrap_or("image/png");
            let mut image = if as_url {
                json!({"url": format!("data:{mime};base64,{encoded}")})
            } else {
                json!({"b64_json": encoded})
            };
            if let Some(revised) = prediction["prompt"].as_str() {
                image["revised_prompt"] = json!(revised);
            }
            Some(image)
        })
        .collect();
    axum::Json(json!({"created": unix_now(), "data": data})).into_response()
}

#[cfg(test)]
mod tests {
    use super::aspect_ratio;

    #[test]
    fn every_documented_size_maps() {
        for size in [
            "auto",
            "256x256",
            "512x512",
            "1024x1024",
            "1536x1024",
            "1024x1536",
            "1792x1024",
            "1024x1792",
        ] {
            assert!(aspect_ratio(size).is_some(), "{size}");
        }
        assert_eq!(aspect_ratio("1024x1792"), Some("9:16"));
        assert_eq!(aspect_ratio("1027x1792"), None);
    }
}
