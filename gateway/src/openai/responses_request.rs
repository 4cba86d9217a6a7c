//! OpenAI Responses requests (`POST /v1/responses`) → Gemini `generateContent` bodies.
//!
//! `input` (a string or items: messages, `function_call`, `function_call_output`, `reasoning`)
//! becomes `contents`, after the stored conversation of `previous_response_id` when there is
//! one; `instructions` and system/developer messages the system instruction. A thought
//! signature given back (a `reasoning` item's `encrypted_content`, or inside a call id, where
//! this gateway put it) is restored on the part after it. Only what the client set is sent.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::chat_request::{FetchedMedia, InvalidRequest, parse_data_url, signature_in_call_id};
use crate::gemini_body::Body;
use config::{generation_config, tool_config, tools};

#[derive(Debug, Deserialize)]
pub struct ResponsesRequest {
    pub model: String,
    #[serde(default)]
    pub input: Value,
    #[serde(default)]
    pub instructions: Option<String>,
    #[serde(default)]
    pub tools: Option<Vec<Value>>,
    #[serde(default)]
    pub tool_choice: Option<Value>,
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default)]
    pub text: Option<Value>,
    #[serde(default)]
    pub reasoning: Option<Value>,
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub store: Option<bool>,
    #[serde(default)]
    pub previous_response_id: Option<String>,
    #[serde(default)]
    pub metadata: Option<Value>,
    #[serde(default)]
    pub background: Option<bool>,
    #[serde(default)]
    pub user: Option<String>,
}

impl ResponsesRequest {
    /// `store` defaults to true, as at OpenAI.
    pub fn keeps(&self) -> bool {
        self.store.unwrap_or(true)
    }

    /// Whether the client asked for reasoning summaries (Gemini's thoughts).
    pub fn wants_summaries(&self) -> bool {
        self.reasoning
            .as_ref()
            .is_some_and(|reasoning| reasoning["summary"].is_string())
    }
}

fn invalid(message: impl Into<String>, param: &str) -> InvalidRequest {
    InvalidRequest {
        message: message.into(),
        param: Some(param.to_owned()),
    }
}

/// The conversation a previous response leaves: its Gemini contents, and the names of the
/// functions it called by call id (a `function_call_output` names only the call).
#[derive(Debug, Default)]
pub struct Previous {
    pub contents: Vec<Value>,
    pub call_names: HashMap<String, String>,
}

impl Previous {
    pub fn from_stored(contents: &[u8], response: &Value) -> Self {
        let contents = serde_json::from_slice::<Vec<Value>>(contents).unwrap_or_default();
        let call_names = response["output"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|item| item["type"] == "function_call")
            .filter_map(|item| {
                Some((
                    item["call_id"].as_str()?.to_owned(),
                    item["name"].as_str()?.to_owned(),
                ))
            })
            .collect();
        Previous {
            contents,
            call_names,
        }
    }
}

/// The `item_reference` ids of the input (items of kept responses, given by id).
pub fn referenced_items(request: &ResponsesRequest) -> Vec<String> {
    request
        .input
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| item["type"] == "item_reference")
        .filter_map(|item| item["id"].as_str().map(str::to_owned))
        .collect()
}

/// Puts the referenced items (found by id in `items`) in place of their references.
pub fn resolve_references(
    request: &mut ResponsesRequest,
    items: &HashMap<String, Value>,
) -> Result<(), InvalidRequest> {
    let Value::Array(input) = &mut request.input else {
        return Ok(());
    };
    for (index, item) in input.iter_mut().enumerate() {
        if item["type"] != "item_reference" {
            continue;
        }
        let id = item["id"].as_str().unwrap_or_default();
        let found = items.get(id).ok_or_else(|| {
            invalid(
                format!("Item with id {id:?} not found (only the items of kept responses can be referenced)"),
                &format!("input[{index}].id"),
            )
        })?;
        *item = found.clone();
    }
    Ok(())
}

/// Every `http(s)` URL of an `input_image` or `input_file`, to fetch before translating.
pub fn remote_urls(request: &ResponsesRequest) -> Vec<String> {
    let mut urls = Vec::new();
    for item in request.input.as_array().into_iter().flatten() {
        for part in item["content"].as_array().into_iter().flatten() {
            let url = match part["type"].as_str() {
                Some("input_image") => part["image_url"].as_str(),
                Some("input_file") => part["file_url"].as_str(),
                _ => None,
            };
            if let Some(url) = url
                && (url.starts_with("http://") || url.starts_with("https://"))
                && !urls.iter().any(|known| known == url)
            {
                urls.push(url.to_owned());
            }
        }
    }
    urls
}

fn media(
    url: &str,
    fetched: &HashMap<String, FetchedMedia>,
    at: &str,
) -> Result<Value, InvalidRequest> {
    if let Some((mime, data)) = parse_data_url(url) {
        return Ok(json!({"inlineData": {"mimeType": mime, "data": data}}));
    }
    match fetched.get(url) {
        Some(media) => {
            Ok(json!({"inlineData": {"mimeType": media.mime_type, "data": media.base64}}))
        }
        None => Err(invalid(
            format!("{url:?} is neither a data URL nor http(s)"),
            at,
        )),
    }
}

/// A message item's content as Gemini parts.
fn message_parts(
    content: &Value,
    at: &str,
    fetched: &HashMap<String, FetchedMedia>,
) -> Result<Vec<Value>, InvalidRequest> {
    let parts = match content {
        Value::String(text) => return Ok(vec![json!({"text": text})]),
        Value::Array(parts) => parts,
        _ => return Err(invalid("content must be a string or an array of parts", at)),
    };
    let mut converted = Vec::new();
    for (position, part) in parts.iter().enumerate() {
        let at = format!("{at}[{position}]");
        match part["type"].as_str() {
            Some("input_text" | "output_text" | "text") => {
                converted.push(json!({"text": part["text"].as_str().unwrap_or_default()}));
            }
            Some("refusal") => {
                converted.push(json!({"text": part["refusal"].as_str().unwrap_or_default()}));
            }
            Some("input_image") => {
                let url = part["image_url"].as_str().ok_or_else(|| {
                    invalid(
                        "input_image needs image_url (file_id is not supported)",
                        &at,
                    )
                })?;
                converted.push(media(url, fetched, &at)?);
            }
            Some("input_file") => {
                if let Some(data) = part["file_data"].as_str() {
                    let (mime, data) = parse_data_url(data)
                        .unwrap_or_else(|| ("application/pdf".into(), data.to_owned()));
                    converted.push(json!({"inlineData": {"mimeType": mime, "data": data}}));
                } else if let Some(url) = part["file_url"].as_str() {
                    converted.push(media(url, fetched, &at)?);
                } else if let Some(id) = part["file_id"]
                    .as_str()
                    .filter(|id| id.starts_with("file-"))
                {
                    // A gateway file (`/v1/files`): the chat service gives each attempt its
                    // key's copy.
                    converted.push(json!({"fileData": {"fileUri": format!("files/{id}")}}));
                } else {
                    return Err(invalid(
                        "input_file needs file_data, file_url or the file_id of a file uploaded to /v1/files",
                        &at,
                    ));
                }
            }
            other => {
                return Err(invalid(
                    format!("content part type {other:?} is not supported"),
                    &at,
                ));
            }
        }
    }
    Ok(converted)
}

/// A `function_call_output`'s output as a `functionResponse` body.
fn function_output(output: &Value) -> Value {
    let text = match output {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(object)) => Value::Object(object),
        Ok(other) => json!({"result": other}),
        Err(_) => json!({"result": text}),
    }
}

/// Appends parts to the conversation: consecutive parts of one role are one turn.
fn push(contents: &mut Vec<Value>, role: &str, parts: Vec<Value>) {
    if parts.is_empty() {
        return;
    }
    match contents.last_mut() {
        Some(last) if last["role"] == role => {
            if let Some(existing) = last["parts"].as_array_mut() {
                existing.extend(parts);
            }
        }
        _ => contents.push(json!({"role": role, "parts": parts})),
    }
}

/// The input items after `previous`: (contents, system texts).
fn contents(
    request: &ResponsesRequest,
    previous: &Previous,
    fetched: &HashMap<String, FetchedMedia>,
) -> Result<(Vec<Value>, Vec<String>), InvalidRequest> {
    let mut contents = previous.contents.clone();
    let mut system = Vec::new();
    let mut call_names = previous.call_names.clone();
    let items = match &request.input {
        Value::String(text) => vec![json!({"role": "user", "content": text})],
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        _ => {
            return Err(invalid(
                "input must be a string or an array of items",
                "input",
            ));
        }
    };
    // A signature given back in a reasoning item belongs to the part after it.
    let mut signature: Option<String> = None;
    for (index, item) in items.iter().enumerate() {
        let at = format!("input[{index}]");
        let kind = item["type"].as_str().unwrap_or("message");
        match kind {
            "message" => {
                let role = item["role"].as_str().unwrap_or_default();
                let content_at = format!("{at}.content");
                match role {
                    "system" | "developer" => {
                        let parts = message_parts(&item["content"], &content_at, fetched)?;
                        system.extend(
                            parts
                                .iter()
                                .filter_map(|part| part["text"].as_str().map(str::to_owned)),
                        );
                    }
                    "user" => push(
                        &mut contents,
                        "user",
                        message_parts(&item["content"], &content_at, fetched)?,
                    ),
                    "assistant" => {
                        let mut parts = message_parts(&item["content"], &content_at, fetched)?;
                        if let (Some(first), Some(signature)) =
                            (parts.first_mut(), signature.take())
                        {
                            first["thoughtSignature"] = json!(signature);
                        }
                        push(&mut contents, "model", parts);
                    }
                    other => {
                        return Err(invalid(
                            format!("role {other:?} is not user, assistant, system or developer"),
                            &format!("{at}.role"),
                        ));
                    }
                }
            }
            "function_call" => {
                let name = item["name"].as_str().unwrap_or_default();
                let call_id = item["call_id"].as_str().unwrap_or_default();
                if name.is_empty() || call_id.is_empty() {
                    return Err(invalid("a function_call needs name and call_id", &at));
                }
                call_names.insert(call_id.to_owned(), name.to_owned());
                let arguments = item["arguments"].as_str().unwrap_or("{}");
                let args: Value = if arguments.trim().is_empty() {
                    json!({})
                } else {
                    serde_json::from_str(arguments).map_err(|error| {
                        invalid(
                            format!("arguments are not JSON: {error}"),
                            &format!("{at}.arguments"),
                        )
                    })?
                };
                let mut part = json!({"functionCall": {"name": name, "args": args}});
                if let Some(signature) = signature.take().or_else(|| signature_in_call_id(call_id))
                {
                    part["thoughtSignature"] = json!(signature);
                }
                push(&mut contents, "model", vec![part]);
            }
            "function_call_output" => {
                let call_id = item["call_id"].as_str().unwrap_or_default();
                let name = call_names.get(call_id).ok_or_else(|| {
                    invalid(
                        format!("no function_call with call_id {call_id:?} before this output"),
                        &format!("{at}.call_id"),
                    )
                })?;
                let part = json!({"functionResponse": {"name": name, "response": function_output(&item["output"])}});
                push(&mut contents, "user", vec![part]);
            }
            "reasoning" => {
                signature = item["encrypted_content"]
                    .as_str()
                    .filter(|content| !content.is_empty())
                    .map(str::to_owned);
            }
            other => {
                return Err(invalid(
                    format!(
                        "input item type {other:?} is not supported (item references need the items given whole)"
                    ),
                    &format!("{at}.type"),
                ));
            }
        }
    }
    Ok((contents, system))
}

/// The Gemini body for a Responses request served by `model`, after `previous`.
pub fn to_gemini(
    request: &ResponsesRequest,
    model: &str,
    previous: &Previous,
    fetched: &HashMap<String, FetchedMedia>,
) -> Result<Value, InvalidRequest> {
    let (contents, system_messages) = contents(request, previous, fetched)?;
    if contents.is_empty() {
        return Err(invalid("input must hold at least one message", "input"));
    }
    let system = request
        .instructions
        .iter()
        .cloned()
        .chain(system_messages)
        .collect();
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

mod config;
#[cfg(test)]
mod tests;
