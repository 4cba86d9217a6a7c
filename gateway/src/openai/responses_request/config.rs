//! What a Responses request asks of the model besides its input: `generationConfig` (output
//! length, sampling, `text.format`, reasoning), the tools and the tool choice.

use serde_json::{Map, Value, json};

use super::super::chat_request::{InvalidRequest, string_tool_choice, thinking_config};
use super::super::json_schema;
use super::{ResponsesRequest, invalid};
use crate::gemini_body::function_declaration;

/// `text.format` → Gemini's response MIME type and schema.
fn text_format(text: &Value, config: &mut Map<String, Value>) -> Result<(), InvalidRequest> {
    let format = &text["format"];
    match format["type"].as_str() {
        None | Some("text") => {}
        Some("json_object") => {
            config.insert("responseMimeType".into(), json!("application/json"));
        }
        Some("json_schema") => {
            config.insert("responseMimeType".into(), json!("application/json"));
            if format["schema"].is_object() {
                config.insert(
                    "responseSchema".into(),
                    json_schema::clean(&format["schema"]),
                );
            }
        }
        Some(other) => {
            return Err(invalid(
                format!("text.format.type {other:?} is not supported"),
                "text.format",
            ));
        }
    }
    Ok(())
}

pub(super) fn generation_config(
    request: &ResponsesRequest,
    model: &str,
) -> Result<Map<String, Value>, InvalidRequest> {
    let mut config = Map::new();
    if let Some(tokens) = request.max_output_tokens {
        config.insert("maxOutputTokens".into(), json!(tokens));
    }
    if let Some(temperature) = request.temperature {
        config.insert("temperature".into(), json!(temperature));
    }
    if let Some(top_p) = request.top_p {
        config.insert("topP".into(), json!(top_p));
    }
    if let Some(text) = &request.text {
        text_format(text, &mut config)?;
    }
    if let Some(reasoning) = &request.reasoning {
        let mut thinking = match reasoning["effort"].as_str() {
            Some(effort) => thinking_config(model, effort)
                .map_err(|error| invalid(error.message, "reasoning.effort"))?,
            None => json!({}),
        };
        if request.wants_summaries() {
            thinking["includeThoughts"] = json!(true);
        }
        if thinking
            .as_object()
            .is_some_and(|thinking| !thinking.is_empty())
        {
            config.insert("thinkingConfig".into(), thinking);
        }
    }
    Ok(config)
}

/// A function tool as a Gemini function declaration.
fn declaration(tool: &Value, at: &str) -> Result<Value, InvalidRequest> {
    let name = tool["name"]
        .as_str()
        .ok_or_else(|| invalid("a function tool needs a name", &format!("{at}.name")))?;
    Ok(function_declaration(
        name,
        tool["description"].as_str(),
        Some(&tool["parameters"]),
    ))
}

pub(super) fn tools(request: &ResponsesRequest) -> Result<Vec<Value>, InvalidRequest> {
    let mut declarations = Vec::new();
    let mut tools = Vec::new();
    for (index, tool) in request.tools.iter().flatten().enumerate() {
        let at = format!("tools[{index}]");
        match tool["type"].as_str() {
            // A namespace (Codex groups its sub-agent tools so) is its functions.
            Some("namespace") => {
                for (inner, function) in tool["tools"].as_array().into_iter().flatten().enumerate()
                {
                    if function["type"] == "function" {
                        declarations.push(declaration(function, &format!("{at}.tools[{inner}]"))?);
                    }
                }
            }
            Some("function") => declarations.push(declaration(tool, &at)?),
            Some(kind) if kind.starts_with("web_search") => tools.push(json!({"googleSearch": {}})),
            other => {
                return Err(invalid(
                    format!(
                        "tool type {other:?} is not supported (function, namespace and web_search are)"
                    ),
                    &format!("{at}.type"),
                ));
            }
        }
    }
    if !declarations.is_empty() {
        tools.insert(0, json!({"functionDeclarations": declarations}));
    }
    Ok(tools)
}

pub(super) fn tool_config(choice: &Value) -> Result<Value, InvalidRequest> {
    let config = match choice {
        Value::String(mode) => string_tool_choice(mode)?,
        Value::Object(_) if choice["type"] == "function" => {
            let name = choice["name"]
                .as_str()
                .ok_or_else(|| invalid("tool_choice.name is required", "tool_choice"))?;
            json!({"mode": "ANY", "allowedFunctionNames": [name]})
        }
        _ => {
            return Err(invalid(
                "tool_choice must be auto, none, required or a function",
                "tool_choice",
            ));
        }
    };
    Ok(json!({"functionCallingConfig": config}))
}
