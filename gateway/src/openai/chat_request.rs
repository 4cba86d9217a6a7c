//! OpenAI `chat/completions` requests → Gemini `generateContent` bodies.
//!
//! Only what the client asked for is set: no sampling value is injected. Tool results become
//! `functionResponse` parts (not text), assistant tool calls become `functionCall` parts, and a
//! Gemini thought signature given back on a tool call (in `extra_content.google` or inside the
//! call id, where this gateway put it) is restored on its part, so multi-turn tool use works with
//! Gemini 3 models.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};

pub use super::chat_types::{ChatCompletionRequest, Message, Stop, ToolCall};
use super::json_schema;

/// Separates a tool call's own id from the thought signature carried inside it.
pub const SIGNATURE_MARK: &str = ".sig.";

/// A client error in the request, with the parameter it concerns.
#[derive(Debug, PartialEq)]
pub struct InvalidRequest {
    pub message: String,
    pub param: Option<String>,
}

fn invalid(message: impl Into<String>, param: &str) -> InvalidRequest {
    InvalidRequest {
        message: message.into(),
        param: Some(param.to_owned()),
    }
}

/// An image referenced by URL, fetched before translation.
#[derive(Clone, Debug)]
pub struct FetchedMedia {
    pub mime_type: String,
    pub base64: String,
}

/// Every `http(s)` image URL of a request, to fetch before translating it.
pub fn remote_image_urls(request: &ChatCompletionRequest) -> Vec<String> {
    let mut urls = Vec::new();
    for message in &request.messages {
        let Some(Value::Array(parts)) = &message.content else {
            continue;
        };
        for part in parts {
            if part["type"] == "image_url"
                && let Some(url) = image_url(part)
                && (url.starts_with("http://") || url.starts_with("https://"))
                && !urls.iter().any(|known| known == url)
            {
                urls.push(url.to_owned());
            }
        }
    }
    urls
}

fn image_url(part: &Value) -> Option<&str> {
    part["image_url"]["url"]
        .as_str()
        .or_else(|| part["image_url"].as_str())
}

/// `data:<mime>;base64,<data>` → (mime, data).
pub fn parse_data_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    Some((
        if mime.is_empty() {
            "application/octet-stream".into()
        } else {
            mime.to_owned()
        },
        data.to_owned(),
    ))
}

fn text_of(content: &Option<Value>) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| part["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn audio_mime(format: &str) -> String {
    match format {
        "mp3" => "audio/mp3".into(),
        "wav" => "audio/wav".into(),
        other => format!("audio/{other}"),
    }
}

fn user_parts(
    content: &Option<Value>,
    index: usize,
    fetched: &HashMap<String, FetchedMedia>,
) -> Result<Vec<Value>, InvalidRequest> {
    let param = format!("messages[{index}].content");
    match content {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(vec![json!({"text": text})]),
        Some(Value::Array(parts)) => {
            let mut converted = Vec::new();
            for part in parts {
                match part["type"].as_str().unwrap_or_default() {
                    "text" => {
                        converted.push(json!({"text": part["text"].as_str().unwrap_or_default()}))
                    }
                    "image_url" => {
                        let url = image_url(part)
                            .ok_or_else(|| invalid("image_url.url is required", &param))?;
                        if let Some((mime, data)) = parse_data_url(url) {
                            converted.push(json!({"inlineData": {"mimeType": mime, "data": data}}));
                        } else if let Some(media) = fetched.get(url) {
                            converted.push(json!({"inlineData": {"mimeType": media.mime_type, "data": media.base64}}));
                        } else {
                            return Err(invalid(
                                format!("image URL {url:?} is neither a data URL nor http(s)"),
                                &param,
                            ));
                        }
                    }
                    "input_audio" => {
                        let data = part["input_audio"]["data"]
                            .as_str()
                            .ok_or_else(|| invalid("input_audio.data is required", &param))?;
                        let format = part["input_audio"]["format"].as_str().unwrap_or("wav");
                        converted.push(
                            json!({"inlineData": {"mimeType": audio_mime(format), "data": data}}),
                        );
                    }
                    "input_video" => {
                        let data = part["input_video"]["data"]
                            .as_str()
                            .ok_or_else(|| invalid("input_video.data is required", &param))?;
                        let format = part["input_video"]["format"].as_str().unwrap_or("mp4");
                        converted.push(json!({"inlineData": {"mimeType": format!("video/{format}"), "data": data}}));
                    }
                    "file" => {
                        let file = &part["file"];
                        if let Some(data) = file["file_data"].as_str() {
                            let (mime, data) = parse_data_url(data)
                                .unwrap_or_else(|| ("application/pdf".into(), data.to_owned()));
                            converted.push(json!({"inlineData": {"mimeType": mime, "data": data}}));
                        } else if let Some(id) = file["file_id"].as_str() {
                            // A gateway file (`file-7`, from `/v1/files`) by its Files API
                            // name; the chat service gives each attempt its key's copy.
                            let uri = if id.starts_with("file-") {
                                format!("files/{id}")
                            } else {
                                id.to_owned()
                            };
                            converted.push(json!({"fileData": {"fileUri": uri}}));
                        } else {
                            return Err(invalid("file needs file_data or file_id", &param));
                        }
                    }
                    other => {
                        return Err(invalid(
                            format!("unsupported content part type {other:?}"),
                            &param,
                        ));
                    }
                }
            }
            Ok(converted)
        }
        Some(_) => Err(invalid(
            "content must be a string or an array of parts",
            &param,
        )),
    }
}

/// The thought signature a client gave back with a tool call, if any.
fn signature_of(call: &ToolCall) -> Option<String> {
    if let Some(signature) = call
        .extra_content
        .as_ref()
        .and_then(|extra| extra["google"]["thought_signature"].as_str())
    {
        return Some(signature.to_owned());
    }
    signature_in_call_id(&call.id)
}

/// The thought signature this gateway put inside a tool call id (`call_….sig.…`), as Gemini
/// wants it back.
pub(crate) fn signature_in_call_id(id: &str) -> Option<String> {
    let (_, encoded) = id.split_once(SIGNATURE_MARK)?;
    let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    Some(BASE64.encode(bytes))
}

fn function_response(content: &Option<Value>) -> Value {
    let text = text_of(content);
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(object)) => Value::Object(object),
        Ok(other) => json!({"result": other}),
        Err(_) => json!({"result": text}),
    }
}

/// Converts the messages into `systemInstruction` and `contents`.
fn contents(
    request: &ChatCompletionRequest,
    fetched: &HashMap<String, FetchedMedia>,
) -> Result<(Vec<Value>, Vec<Value>), InvalidRequest> {
    let mut system_parts = Vec::new();
    let mut contents: Vec<Value> = Vec::new();
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    for (index, message) in request.messages.iter().enumerate() {
        match message.role.as_str() {
            "system" | "developer" => system_parts.push(json!({"text": text_of(&message.content)})),
            "user" => contents.push(
                json!({"role": "user", "parts": user_parts(&message.content, index, fetched)?}),
            ),
            "assistant" => {
                let mut parts = Vec::new();
                let text = text_of(&message.content);
                if !text.is_empty() {
                    parts.push(json!({"text": text}));
                }
                for call in message.tool_calls.iter().flatten() {
                    call_names.insert(&call.id, &call.function.name);
                    let arguments: Value = if call.function.arguments.trim().is_empty() {
                        json!({})
                    } else {
                        serde_json::from_str(&call.function.arguments).map_err(|error| {
                            invalid(
                                format!("tool call arguments are not JSON: {error}"),
                                &format!("messages[{index}].tool_calls"),
                            )
                        })?
                    };
                    let mut part =
                        json!({"functionCall": {"name": call.function.name, "args": arguments}});
                    if let Some(signature) = signature_of(call) {
                        part["thoughtSignature"] = json!(signature);
                    }
                    parts.push(part);
                }
                if !parts.is_empty() {
                    contents.push(json!({"role": "model", "parts": parts}));
                }
            }
            "tool" | "function" => {
                let call_id = message.tool_call_id.as_deref().unwrap_or_default();
                let Some(name) = call_names.get(call_id) else {
                    return Err(invalid(
                        format!("tool message answers an unknown tool_call_id {call_id:?}"),
                        &format!("messages[{index}].tool_call_id"),
                    ));
                };
                let part = json!({"functionResponse": {"name": name, "response": function_response(&message.content)}});
                // Answers to the calls of one turn go back together, in one user turn.
                let previous_is_responses = contents.last().is_some_and(|last| {
                    last["role"] == "user"
                        && last["parts"].as_array().is_some_and(|parts| {
                            parts
                                .iter()
                                .all(|part| part.get("functionResponse").is_some())
                        })
                });
                match contents.last_mut() {
                    Some(last) if previous_is_responses => {
                        if let Some(parts) = last["parts"].as_array_mut() {
                            parts.push(part);
                        }
                    }
                    _ => contents.push(json!({"role": "user", "parts": [part]})),
                }
            }
            other => {
                return Err(invalid(
                    format!("unknown role {other:?}"),
                    &format!("messages[{index}].role"),
                ));
            }
        }
    }
    Ok((system_parts, contents))
}

/// OpenAI's `tool_choice` given as a string (chat completions and responses alike) → Gemini's
/// function-calling mode.
pub(crate) fn string_tool_choice(mode: &str) -> Result<Value, InvalidRequest> {
    Ok(match mode {
        "auto" => json!({"mode": "AUTO"}),
        "none" => json!({"mode": "NONE"}),
        "required" => json!({"mode": "ANY"}),
        other => {
            return Err(invalid(
                format!("tool_choice {other:?} is not auto, none or required"),
                "tool_choice",
            ));
        }
    })
}

fn tool_config(choice: &Value) -> Result<Option<Value>, InvalidRequest> {
    let config = match choice {
        Value::String(mode) => string_tool_choice(mode)?,
        Value::Object(_) => {
            let name = choice["function"]["name"]
                .as_str()
                .ok_or_else(|| invalid("tool_choice.function.name is required", "tool_choice"))?;
            json!({"mode": "ANY", "allowedFunctionNames": [name]})
        }
        Value::Null => return Ok(None),
        _ => {
            return Err(invalid(
                "tool_choice must be a string or an object",
                "tool_choice",
            ));
        }
    };
    Ok(Some(json!({"functionCallingConfig": config})))
}

/// `reasoning_effort` → Gemini's thinking config: a level for Gemini 3, a budget before it.
pub(crate) fn thinking_config(model: &str, effort: &str) -> Result<Value, InvalidRequest> {
    let gemini_3 = model.starts_with("gemini-3");
    let config = match (effort, gemini_3) {
        ("none", false) | ("minimal", false) => json!({"thinkingBudget": 0}),
        ("low", false) => json!({"thinkingBudget": 1024, "includeThoughts": true}),
        ("medium", false) => json!({"thinkingBudget": 8192, "includeThoughts": true}),
        ("high", false) => json!({"thinkingBudget": 24576, "includeThoughts": true}),
        ("none" | "minimal" | "low", true) => {
            json!({"thinkingLevel": "low", "includeThoughts": effort == "low"})
        }
        ("medium" | "high", true) => json!({"thinkingLevel": "high", "includeThoughts": true}),
        (other, _) => {
            return Err(invalid(
                format!("reasoning_effort {other:?} is not none, minimal, low, medium or high"),
                "reasoning_effort",
            ));
        }
    };
    Ok(config)
}

/// The Gemini body for a chat completion request whose remote images are in `fetched`.
/// `generationConfig`: only what the client set (no sampling value is injected).
fn generation_config(
    request: &ChatCompletionRequest,
) -> Result<Map<String, Value>, InvalidRequest> {
    let mut config = Map::new();
    let mut set = |name: &str, value: Option<Value>| {
        if let Some(value) = value {
            config.insert(name.to_owned(), value);
        }
    };
    set("temperature", request.temperature.map(Value::from));
    set("topP", request.top_p.map(Value::from));
    set(
        "maxOutputTokens",
        request
            .max_completion_tokens
            .or(request.max_tokens)
            .map(Value::from),
    );
    set("candidateCount", request.n.map(Value::from));
    set("seed", request.seed.map(Value::from));
    set("presencePenalty", request.presence_penalty.map(Value::from));
    set(
        "frequencyPenalty",
        request.frequency_penalty.map(Value::from),
    );
    set(
        "stopSequences",
        request.stop.as_ref().map(|stop| match stop {
            Stop::One(one) => json!([one]),
            Stop::Many(many) => json!(many),
        }),
    );
    if let Some(format) = &request.response_format {
        match format["type"].as_str() {
            Some("json_object") => set("responseMimeType", Some(json!("application/json"))),
            Some("json_schema") => {
                set("responseMimeType", Some(json!("application/json")));
                let schema = &format["json_schema"]["schema"];
                if schema.is_object() {
                    set("responseSchema", Some(json_schema::clean(schema)));
                }
            }
            Some("text") | None => {}
            Some(other) => {
                return Err(invalid(
                    format!("response_format type {other:?} is not supported"),
                    "response_format",
                ));
            }
        }
    }
    if let Some(effort) = &request.reasoning_effort {
        set(
            "thinkingConfig",
            Some(thinking_config(&request.model, effort)?),
        );
    }
    Ok(config)
}

/// The function declarations of the request's function tools (JSON Schema cleaned of what
/// Gemini refuses; empty parameter objects left out).
fn function_declarations(request: &ChatCompletionRequest) -> Vec<Value> {
    request
        .tools
        .iter()
        .flatten()
        .filter(|tool| tool.kind == "function")
        .filter_map(|tool| tool.function.as_ref())
        .map(|function| {
            crate::gemini_body::function_declaration(
                &function.name,
                function.description.as_deref(),
                function.parameters.as_ref(),
            )
        })
        .collect()
}

pub fn to_gemini(
    request: &ChatCompletionRequest,
    fetched: &HashMap<String, FetchedMedia>,
) -> Result<Value, InvalidRequest> {
    if request.messages.is_empty() {
        return Err(invalid("messages must not be empty", "messages"));
    }
    let (system_parts, contents) = contents(request, fetched)?;
    let mut body = Map::new();
    body.insert("contents".into(), Value::Array(contents));
    if !system_parts.is_empty() {
        body.insert("systemInstruction".into(), json!({"parts": system_parts}));
    }
    let config = generation_config(request)?;
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    let declarations = function_declarations(request);
    if !declarations.is_empty() {
        body.insert(
            "tools".into(),
            json!([{"functionDeclarations": declarations}]),
        );
        if let Some(choice) = &request.tool_choice
            && let Some(config) = tool_config(choice)?
        {
            body.insert("toolConfig".into(), config);
        }
    }
    Ok(Value::Object(body))
}

#[cfg(test)]
mod tests;
