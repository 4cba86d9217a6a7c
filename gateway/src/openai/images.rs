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

use super::{parse_body, unix_now};
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
        .unwrap_or_else(|| state.translation.get().create_image_model.clone());
    let (prompt, directed_count, directed_ratio) = prompt_directives(&request.prompt);
    let images = match imagen(
        &state,
        &caller,
        model,
        &prompt,
        directed_count.unwrap_or(count),
        directed_ratio.as_deref().unwrap_or(ratio),
    )
    .await
    {
        Ok(images) => images,
        Err(answer) => return answer,
    };
    let data: Vec<Value> = images
        .into_iter()
        .map(|image| {
            let mut entry = if as_url {
                json!({"url": image.data_url()})
            } else {
                json!({"b64_json": image.base64})
            };
            if let Some(revised) = image.revised_prompt {
                entry["revised_prompt"] = json!(revised);
            }
            entry
        })
        .collect();
    axum::Json(json!({"created": unix_now(), "data": data})).into_response()
}

/// One generated image.
pub struct Image {
    pub mime_type: String,
    pub base64: String,
    pub revised_prompt: Option<String>,
}

impl Image {
    pub fn data_url(&self) -> String {
        format!("data:{};base64,{}", self.mime_type, self.base64)
    }
}

/// gemini-balance's prompt directives: `{n:2}` asks for two images, `{ratio:16:9}` sets the
/// aspect ratio; both are taken out of the prompt.
pub fn prompt_directives(prompt: &str) -> (String, Option<u32>, Option<String>) {
    let mut clean = String::with_capacity(prompt.len());
    let (mut count, mut ratio) = (None, None);
    let mut rest = prompt;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let inside = &rest[open + 1..open + close];
        let recognised = if let Some(value) = inside.strip_prefix("n:") {
            value
                .trim()
                .parse()
                .ok()
                .filter(|n| (1..=4).contains(n))
                .map(|n| count = Some(n))
                .is_some()
        } else if let Some(value) = inside.strip_prefix("ratio:") {
            let value = value.trim();
            ["1:1", "3:4", "4:3", "9:16", "16:9"]
                .contains(&value)
                .then(|| ratio = Some(value.to_owned()))
                .is_some()
        } else {
            false
        };
        clean.push_str(&rest[..open]);
        if !recognised {
            clean.push_str(&rest[open..=open + close]);
        }
        rest = &rest[open + close + 1..];
    }
    clean.push_str(rest);
    (
        clean.split_whitespace().collect::<Vec<_>>().join(" "),
        count,
        ratio,
    )
}

/// Imagen's `predict` through the chat service (PAID_KEY when set): the images, or the
/// client's answer for a failure.
pub async fn imagen(
    state: &GatewayState,
    caller: &Caller,
    model: String,
    prompt: &str,
    count: u32,
    ratio: &str,
) -> Result<Vec<Image>, Response> {
    let body = json!({
        "instances": [{"prompt": prompt}],
        "parameters": {"sampleCount": count, "aspectRatio": ratio}
    });
    let answer = state
        .chat
        .clone()
        .predict(pb::GeminiRequest {
            context: caller.call_context(),
            model,
            body: Bytes::from(body.to_string()),
        })
        .await
        .map_err(|status| openai_from_status(&status))?;
    let answer = super::upstream_json(&answer.into_inner().body)?;
    Ok(answer["predictions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|prediction| {
            Some(Image {
                base64: prediction["bytesBase64Encoded"].as_str()?.to_owned(),
                mime_type: prediction["mimeType"]
                    .as_str()
                    .unwrap_or("image/png")
                    .to_owned(),
                revised_prompt: prediction["prompt"].as_str().map(str::to_owned),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::{aspect_ratio, prompt_directives};

    #[test]
    fn directives_are_taken_out_of_the_prompt() {
        assert_eq!(
            prompt_directives("a {n:2} lighthouse {ratio:16:9} at dusk {other}"),
            (
                "a lighthouse at dusk {other}".to_owned(),
                Some(2),
                Some("16:9".to_owned())
            )
        );
        assert_eq!(prompt_directives("plain"), ("plain".to_owned(), None, None));
        assert_eq!(prompt_directives("{n:9} x").1, None);
    }

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
