//! Anthropic Messages requests → Gemini `generateContent` bodies.
//!
//! Only what the client asked for is set: no sampling value is injected. `tool_use` blocks
//! become `functionCall` parts, `tool_result` blocks `functionResponse` parts; a thought
//! signature given back (in a `thinking` or `redacted_thinking` block, or inside a tool-use id,
//! where this gateway put it) is restored on the part that follows it, so that multi-turn tool
//! use works with Gemini 3 models.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::ids;
use crate::gemini_body::{Body, function_declaration};
use crate::openai::chat_request::FetchedMedia;

/// `POST /v1/messages` (and `count_tokens`, which needs no `max_tokens`).
#[derive(Debug, Deserialize)]
pub struct MessagesRequest {
    pub model: String,
    pub messages: Vec<InputMessage>,
    #[serde(default)]
    pub system: Option<Value>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub top_k: Option<u64>,
    #[serde(default)]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub tools: Option<Vec<Tool>>,
    #[serde(default)]
    pub tool_choice: Option<Value>,
    #[serde(default)]
    pub thinking: Option<Value>,
    #[serde(default)]
    pub metadata: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub struct InputMessage {
    pub role: String,
    pub content: Value,
}

#[derive(Debug, Deserialize)]
pub struct Tool {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub input_schema: Option<Value>,
}

impl MessagesRequest {
    /// Whether the client asked for thinking (its blocks then carry the thought signatures).
    pub fn wants_thinking(&self) -> bool {
        self.thinking.as_ref().is_some_and(|thinking| {
            matches!(thinking["type"].as_str(), Some("enabled" | "adaptive"))
        })
    }
}

/// A client error in the request.
#[derive(Debug, PartialEq)]
pub struct InvalidRequest(pub String);

fn invalid(message: impl Into<String>) -> InvalidRequest {
    InvalidRequest(message.into())
}

/// Every `url` source of an image or document, to fetch before translating.
pub fn remote_urls(request: &MessagesRequest) -> Vec<String> {
    let mut urls = Vec::new();
    let mut visit = |block: &Value| {
        if matches!(block["type"].as_str(), Some("image" | "document"))
            && block["source"]["type"] == "url"
            && let Some(url) = block["source"]["url"].as_str()
            && !urls.iter().any(|known| known == url)
        {
            urls.push(url.to_owned());
        }
    };
    for message in &request.messages {
        for block in message.content.as_array().into_iter().flatten() {
            visit(block);
            for inner in block["content"].as_array().into_iter().flatten() {
                visit(inner);
            }
        }
    }
    urls
}

/// The text of a `system` value or a `tool_result`'s content: a string, or text blocks.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|block| block["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// An `image` or `document` block's source as a Gemini part.
fn media_part(
    block: &Value,
    at: &str,
    fetched: &HashMap<String, FetchedMedia>,
) -> Result<Value, InvalidRequest> {
    let source = &block["source"];
    match source["type"].as_str() {
        Some("base64") => {
            let data = source["data"]
                .as_str()
                .ok_or_else(|| invalid(format!("{at}.source.data is required")))?;
            let mime = source["media_type"]
                .as_str()
                .unwrap_or(if block["type"] == "document" {
                    "application/pdf"
                } else {
                    "image/png"
                });
            Ok(json!({"inlineData": {"mimeType": mime, "data": data}}))
        }
        Some("url") => {
            let url = source["url"].as_str().unwrap_or_default();
            let media = fetched
                .get(url)
                .ok_or_else(|| invalid(format!("{at}.source.url {url:?} could not be read")))?;
            Ok(json!({"inlineData": {"mimeType": media.mime_type, "data": media.base64}}))
        }
        Some("text") => {
            let text = source["data"].as_str().unwrap_or_default();
            Ok(match block["title"].as_str() {
                Some(title) => json!({"text": format!("{title}\n\n{text}")}),
                None => json!({"text": text}),
            })
        }
        Some("file") => Err(invalid(format!(
            "{at}: file sources are not supported by this gateway yet; send the content as base64"
        ))),
        Some(other) => Err(invalid(format!(
            "{at}.source.type {other:?} is not base64, url or text"
        ))),
        None => Err(invalid(format!("{at}.source.type is required"))),
    }
}

/// A `tool_result`'s content as a `functionResponse` body, plus its image parts.
fn tool_result(
    block: &Value,
    name: &str,
    at: &str,
    fetched: &HashMap<String, FetchedMedia>,
) -> Result<Vec<Value>, InvalidRequest> {
    let content = &block["content"];
    let mut media = Vec::new();
    for (position, inner) in content.as_array().into_iter().flatten().enumerate() {
        match inner["type"].as_str() {
            Some("text") => {}
            Some("image" | "document") => {
                media.push(media_part(
                    inner,
                    &format!("{at}.content[{position}]"),
                    fetched,
                )?);
            }
            other => {
                return Err(invalid(format!(
                    "{at}.content[{position}].type {other:?} is not text, image or document"
                )));
            }
        }
    }
    let text = text_of(content);
    let is_error = block["is_error"].as_bool() == Some(true);
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(object)) if !is_error => Value::Object(object),
        _ if is_error => json!({"error": text}),
        Ok(other) => json!({"result": other}),
        Err(_) => json!({"result": text}),
    };
    let mut parts = vec![json!({"functionResponse": {"name": name, "response": response}})];
    parts.extend(media);
    Ok(parts)
}

/// The messages as Gemini `contents`, and the texts of the `system` messages among them (Claude
/// Code sends some), which go to the system instruction.
fn contents(
    request: &MessagesRequest,
    fetched: &HashMap<String, FetchedMedia>,
) -> Result<(Vec<Value>, Vec<String>), InvalidRequest> {
    let mut contents: Vec<Value> = Vec::new();
    let mut system = Vec::new();
    // Tool-use id → the function's name, for the results that answer it.
    let mut call_names: HashMap<String, String> = HashMap::new();
    for (index, message) in request.messages.iter().enumerate() {
        let role = match message.role.as_str() {
            "user" => "user",
            "assistant" => "model",
            "system" => {
                system.push(text_of(&message.content));
                continue;
            }
            other => {
                return Err(invalid(format!(
                    "messages[{index}].role {other:?} is not user, assistant or system"
                )));
            }
        };
        let blocks: Vec<Value> = match &message.content {
            Value::String(text) => vec![json!({"type": "text", "text": text})],
            Value::Array(blocks) => blocks.clone(),
            _ => {
                return Err(invalid(format!(
                    "messages[{index}].content must be a string or an array of blocks"
                )));
            }
        };
        let mut parts = Vec::new();
        // A thought signature given back in a thinking block belongs to the part after it.
        let mut signature: Option<String> = None;
        for (position, block) in blocks.iter().enumerate() {
            let at = format!("messages[{index}].content[{position}]");
            let mut part = match block["type"].as_str() {
                Some("text") => json!({"text": block["text"].as_str().unwrap_or_default()}),
                Some("image" | "document") if role == "user" => media_part(block, &at, fetched)?,
                Some("tool_result") if role == "user" => {
                    let id = block["tool_use_id"].as_str().unwrap_or_default();
                    let name = call_names.get(id).ok_or_else(|| {
                        invalid(format!(
                            "{at}.tool_use_id {id:?} answers no tool_use of an earlier assistant message"
                        ))
                    })?;
                    parts.extend(tool_result(block, name, &at, fetched)?);
                    continue;
                }
                Some("tool_use") if role == "model" => {
                    let id = block["id"].as_str().unwrap_or_default();
                    let name = block["name"].as_str().unwrap_or_default();
                    if name.is_empty() {
                        return Err(invalid(format!("{at}.name is required")));
                    }
                    call_names.insert(id.to_owned(), name.to_owned());
                    let input = match &block["input"] {
                        Value::Object(input) => Value::Object(input.clone()),
                        Value::Null => json!({}),
                        _ => return Err(invalid(format!("{at}.input must be an object"))),
                    };
                    if signature.is_none() {
                        signature = ids::signature_in_tool_id(id);
                    }
                    json!({"functionCall": {"name": name, "args": input}})
                }
                Some("thinking") if role == "model" => {
                    signature = block["signature"]
                        .as_str()
                        .filter(|signature| !signature.is_empty())
                        .map(str::to_owned);
                    continue;
                }
                Some("redacted_thinking") if role == "model" => {
                    signature = block["data"].as_str().map(str::to_owned);
                    continue;
                }
                // Server tools ran at Anthropic's: nothing of theirs to give Gemini.
                Some("server_tool_use" | "web_search_tool_result") => continue,
                Some(other) => {
                    return Err(invalid(format!(
                        "{at}.type {other:?} is not supported in a {} message",
                        message.role
                    )));
                }
                None => return Err(invalid(format!("{at}.type is required"))),
            };
            if let Some(signature) = signature.take() {
                part["thoughtSignature"] = json!(signature);
            }
            parts.push(part);
        }
        if parts.is_empty() {
            continue;
        }
        // Gemini wants turns to alternate: consecutive messages of one role are one turn.
        match contents.last_mut() {
            Some(last) if last["role"] == role => {
                if let Some(existing) = last["parts"].as_array_mut() {
                    existing.extend(parts);
                }
            }
            _ => contents.push(json!({"role": role, "parts": parts})),
        }
    }
    Ok((contents, system))
}

/// `thinking` → Gemini's thinking config: a budget before Gemini 3, a level from it on.
fn thinking_config(model: &str, thinking: &Value) -> Result<Option<Value>, InvalidRequest> {
    let gemini_3 = model.starts_with("gemini-3");
    // `display: omitted`: the client wants no thought text (the signatures still come).
    let show = thinking["display"] != "omitted";
    let mut config = match thinking["type"].as_str() {
        Some("enabled") => {
            let budget = thinking["budget_tokens"].as_u64().ok_or_else(|| {
                invalid("thinking.budget_tokens is required when thinking is enabled")
            })?;
            if gemini_3 {
                let level = if budget < 8192 { "low" } else { "high" };
                json!({"thinkingLevel": level, "includeThoughts": true})
            } else {
                json!({"thinkingBudget": budget, "includeThoughts": true})
            }
        }
        Some("adaptive") if gemini_3 => json!({"includeThoughts": true}),
        Some("adaptive") => json!({"thinkingBudget": -1, "includeThoughts": true}),
        Some("disabled") if gemini_3 => json!({"thinkingLevel": "low"}),
        // 2.5 Pro cannot think less than 128 tokens; the others can stop.
        Some("disabled") if model.starts_with("gemini-2.5-pro") => json!({"thinkingBudget": 128}),
        Some("disabled") => json!({"thinkingBudget": 0}),
        None => return Ok(None),
        Some(other) => {
            return Err(invalid(format!(
                "thinking.type {other:?} is not enabled, adaptive or disabled"
            )));
        }
    };
    if !show && config.get("includeThoughts").is_some() {
        config["includeThoughts"] = json!(false);
    }
    Ok(Some(config))
}

/// `generationConfig`: only what the client set.
fn generation_config(
    request: &MessagesRequest,
    model: &str,
) -> Result<Map<String, Value>, InvalidRequest> {
    let mut config = Map::new();
    let mut set = |name: &str, value: Option<Value>| {
        if let Some(value) = value {
            config.insert(name.to_owned(), value);
        }
    };
    set("maxOutputTokens", request.max_tokens.map(Value::from));
    set("temperature", request.temperature.map(Value::from));
    set("topP", request.top_p.map(Value::from));
    set("topK", request.top_k.map(Value::from));
    set(
        "stopSequences",
        request
            .stop_sequences
            .as_ref()
            .filter(|stops| !stops.is_empty())
            .map(|stops| json!(stops)),
    );
    if let Some(thinking) = &request.thinking {
        set("thinkingConfig", thinking_config(model, thinking)?);
    }
    Ok(config)
}

/// The request's tools as Gemini tools: custom tools as function declarations (their
/// `input_schema` cleaned of what Gemini refuses), Anthropic's web search as Google Search.
fn tools(request: &MessagesRequest) -> Result<Vec<Value>, InvalidRequest> {
    let mut declarations = Vec::new();
    let mut tools = Vec::new();
    for (index, tool) in request.tools.iter().flatten().enumerate() {
        match tool.kind.as_deref() {
            None | Some("custom") => declarations.push(function_declaration(
                &tool.name,
                tool.description.as_deref(),
                tool.input_schema.as_ref(),
            )),
            Some(kind) if kind.starts_with("web_search") => tools.push(json!({"googleSearch": {}})),
            Some(kind) => {
                return Err(invalid(format!(
                    "tools[{index}].type {kind:?}: Anthropic's own tools are not available on Gemini; declare it as a custom tool with an input_schema"
                )));
            }
        }
    }
    if !declarations.is_empty() {
        tools.insert(0, json!({"functionDeclarations": declarations}));
    }
    Ok(tools)
}

fn tool_config(choice: &Value) -> Result<Value, InvalidRequest> {
    let config = match choice["type"].as_str() {
        Some("auto") => json!({"mode": "AUTO"}),
        Some("any") => json!({"mode": "ANY"}),
        Some("none") => json!({"mode": "NONE"}),
        Some("tool") => {
            let name = choice["name"]
                .as_str()
                .ok_or_else(|| invalid("tool_choice.name is required for type tool"))?;
            json!({"mode": "ANY", "allowedFunctionNames": [name]})
        }
        other => {
            return Err(invalid(format!(
                "tool_choice.type {other:?} is not auto, any, tool or none"
            )));
        }
    };
    Ok(json!({"functionCallingConfig": config}))
}

/// The Gemini body for a Messages request served by `model`, its remote media in `fetched`.
pub fn to_gemini(
    request: &MessagesRequest,
    model: &str,
    fetched: &HashMap<String, FetchedMedia>,
) -> Result<Value, InvalidRequest> {
    if request.messages.is_empty() {
        return Err(invalid("messages: at least one message is required"));
    }
    let (contents, system_messages) = contents(request, fetched)?;
    let mut system = Vec::new();
    match &request.system {
        None => {}
        Some(value @ (Value::String(_) | Value::Array(_))) => system.push(text_of(value)),
        Some(_) => {
            return Err(invalid(
                "system must be a string or an array of text blocks",
            ));
        }
    }
    system.extend(system_messages);
    let tools = tools(request)?;
    let tool_config = match &request.tool_choice {
        Some(choice) if !tools.is_empty() => Some(tool_config(choice)?),
        _ => None,
    };
    Ok(Body {
        contents,
        system,
        config: generation_config(request, model)?,
        tools,
        tool_config,
    }
    .into_json())
}

#[cfg(test)]
mod tests;
