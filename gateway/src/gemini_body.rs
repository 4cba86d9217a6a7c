//! The pieces of a Gemini `generateContent` body that every translation (OpenAI chat, the
//! Responses API, Anthropic's Messages) builds the same way, and what Gemini's answers mean the
//! same way for all of them.

use serde_json::{Map, Value, json};

use crate::openai::json_schema;

/// A function tool as Gemini declares it: its JSON Schema cleaned of what Gemini refuses, an
/// empty parameter object left out.
pub fn function_declaration(
    name: &str,
    description: Option<&str>,
    parameters: Option<&Value>,
) -> Value {
    let mut declaration = json!({"name": name});
    if let Some(description) = description {
        declaration["description"] = json!(description);
    }
    if let Some(parameters) = parameters
        && parameters
            .get("properties")
            .and_then(Value::as_object)
            .is_some_and(|properties| !properties.is_empty())
    {
        declaration["parameters"] = json_schema::clean(parameters);
    }
    declaration
}

/// What a translated request is made of.
pub struct Body {
    pub contents: Vec<Value>,
    /// The system instruction's texts, in order (empty ones dropped).
    pub system: Vec<String>,
    pub config: Map<String, Value>,
    pub tools: Vec<Value>,
    /// Sent only with tools.
    pub tool_config: Option<Value>,
}

impl Body {
    /// The body as JSON: only what the client set.
    pub fn into_json(self) -> Value {
        let mut body = Map::new();
        body.insert("contents".into(), Value::Array(self.contents));
        let system: Vec<Value> = self
            .system
            .into_iter()
            .filter(|text| !text.is_empty())
            .map(|text| json!({"text": text}))
            .collect();
        if !system.is_empty() {
            body.insert("systemInstruction".into(), json!({"parts": system}));
        }
        if !self.config.is_empty() {
            body.insert("generationConfig".into(), Value::Object(self.config));
        }
        if !self.tools.is_empty() {
            body.insert("tools".into(), Value::Array(self.tools));
            if let Some(config) = self.tool_config {
                body.insert("toolConfig".into(), config);
            }
        }
        Value::Object(body)
    }
}

/// Whether Gemini stopped for safety (the answer was withheld or cut: a content filter, a
/// refusal).
pub fn is_safety_stop(reason: &str) -> bool {
    matches!(
        reason,
        "SAFETY"
            | "RECITATION"
            | "BLOCKLIST"
            | "PROHIBITED_CONTENT"
            | "SPII"
            | "IMAGE_SAFETY"
            | "IMAGE_PROHIBITED_CONTENT"
    )
}
