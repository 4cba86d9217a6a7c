//! Gemini answers → Anthropic `message` objects and Messages stream events.
//!
//! Thoughts become `thinking` blocks, text `text` blocks, `functionCall` parts `tool_use`
//! blocks. A part's thought signature goes back to the client in a `thinking` block just before
//! it when the client asked for thinking, else (for tool uses) inside the tool-use id.

use serde_json::{Value, json};

use super::ids;

/// Gemini `finishReason` → Anthropic `stop_reason`.
pub fn stop_reason(reason: Option<&str>, has_tool_use: bool) -> &'static str {
    match reason {
        Some("MAX_TOKENS") => "max_tokens",
        Some(reason) if crate::gemini_body::is_safety_stop(reason) => "refusal",
        _ if has_tool_use => "tool_use",
        _ => "end_turn",
    }
}

/// Gemini `usageMetadata` → Anthropic `usage` (cached prompt tokens are reads, apart from
/// `input_tokens`, as Anthropic counts them).
pub fn usage(metadata: &Value) -> Value {
    let prompt = metadata["promptTokenCount"].as_u64().unwrap_or(0);
    let cached = metadata["cachedContentTokenCount"].as_u64().unwrap_or(0);
    let output = metadata["candidatesTokenCount"].as_u64().unwrap_or(0)
        + metadata["thoughtsTokenCount"].as_u64().unwrap_or(0);
    json!({
        "input_tokens": prompt.saturating_sub(cached),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "output_tokens": output,
    })
}

/// One piece of a candidate, in Anthropic's terms, in order.
#[derive(Debug, PartialEq)]
enum Piece {
    Thinking(String),
    /// A signature closing the thinking before the next piece.
    Signature(String),
    /// The signature of a text part: Gemini does not check those it gets back, so one is
    /// given to the client only where no text block is open (a stream has one on every chunk,
    /// and a text must not be cut into pieces by them).
    TextSignature(String),
    Text(String),
    ToolUse {
        id: String,
        name: Value,
        input: Value,
    },
}

/// Reads a candidate's parts; `thinking`: the client asked for thinking blocks.
fn pieces(candidate: &Value, thinking: bool) -> Vec<Piece> {
    let mut pieces = Vec::new();
    for part in candidate["content"]["parts"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let signature = part["thoughtSignature"].as_str();
        let is_thought = part["thought"].as_bool() == Some(true);
        if is_thought {
            if let Some(text) = part["text"].as_str() {
                pieces.push(Piece::Thinking(text.to_owned()));
            }
            if thinking && let Some(signature) = signature {
                pieces.push(Piece::Signature(signature.to_owned()));
            }
            continue;
        }
        if thinking && let Some(signature) = signature {
            pieces.push(if part.get("functionCall").is_some() {
                Piece::Signature(signature.to_owned())
            } else {
                Piece::TextSignature(signature.to_owned())
            });
        }
        if let Some(call) = part.get("functionCall") {
            let carried = if thinking { None } else { signature };
            pieces.push(Piece::ToolUse {
                id: ids::tool_use_id(carried),
                name: call["name"].clone(),
                input: match &call["args"] {
                    Value::Object(args) => Value::Object(args.clone()),
                    _ => json!({}),
                },
            });
        } else if let Some(text) = part["text"].as_str() {
            pieces.push(Piece::Text(text.to_owned()));
        } else if let Some(data) = part.get("inlineData") {
            let mime = data["mimeType"]
                .as_str()
                .unwrap_or("application/octet-stream");
            let encoded = data["data"].as_str().unwrap_or_default();
            pieces.push(Piece::Text(format!(
                "\n\n![image](data:{mime};base64,{encoded})\n\n"
            )));
        } else if let Some(code) = part.get("executableCode") {
            let language = code["language"].as_str().unwrap_or("").to_ascii_lowercase();
            pieces.push(Piece::Text(format!(
                "\n```{language}\n{}\n```\n",
                code["code"].as_str().unwrap_or_default()
            )));
        } else if let Some(result) = part.get("codeExecutionResult") {
            pieces.push(Piece::Text(format!(
                "\n```\n{}\n```\n",
                result["output"].as_str().unwrap_or_default()
            )));
        }
    }
    pieces
}

/// A whole Gemini answer as an Anthropic `message`; `model` is the name the client sent.
pub fn to_message(answer: &Value, id: &str, model: &str, thinking: bool) -> Value {
    let candidate = &answer["candidates"][0];
    let mut content: Vec<Value> = Vec::new();
    for piece in pieces(candidate, thinking) {
        let last = content.last_mut();
        match piece {
            Piece::Thinking(text) => match last {
                Some(block) if block["type"] == "thinking" && block["signature"] == "" => {
                    let joined =
                        format!("{}{text}", block["thinking"].as_str().unwrap_or_default());
                    block["thinking"] = json!(joined);
                }
                _ => content.push(json!({"type": "thinking", "thinking": text, "signature": ""})),
            },
            Piece::TextSignature(_)
                if last.as_ref().is_some_and(|block| block["type"] == "text") => {}
            Piece::Signature(signature) | Piece::TextSignature(signature) => match last {
                Some(block) if block["type"] == "thinking" && block["signature"] == "" => {
                    block["signature"] = json!(signature);
                }
                _ => content
                    .push(json!({"type": "thinking", "thinking": "", "signature": signature})),
            },
            Piece::Text(text) => match last {
                Some(block) if block["type"] == "text" => {
                    let joined = format!("{}{text}", block["text"].as_str().unwrap_or_default());
                    block["text"] = json!(joined);
                }
                _ => content.push(json!({"type": "text", "text": text})),
            },
            Piece::ToolUse { id, name, input } => {
                content.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
            }
        }
    }
    let has_tool_use = content.iter().any(|block| block["type"] == "tool_use");
    let reason = if candidate.is_null() && answer["promptFeedback"]["blockReason"].is_string() {
        "refusal"
    } else {
        stop_reason(candidate["finishReason"].as_str(), has_tool_use)
    };
    json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": null,
        "usage": usage(&answer["usageMetadata"]),
    })
}

/// The block a stream has open.
#[derive(Clone, Copy, PartialEq)]
enum Open {
    None,
    Thinking,
    Text,
}

/// Turns a Gemini stream into Anthropic's event sequence, chunk by chunk. Each event is its
/// `(name, data)`.
pub struct StreamTranslator {
    id: String,
    model: String,
    thinking: bool,
    started: bool,
    open: Open,
    /// Blocks started so far (the next block's index).
    blocks: usize,
    has_tool_use: bool,
    finish_reason: Option<String>,
    usage: Value,
}

pub type Event = (&'static str, Value);

impl StreamTranslator {
    pub fn new(id: String, model: String, thinking: bool) -> Self {
        StreamTranslator {
            id,
            model,
            thinking,
            started: false,
            open: Open::None,
            blocks: 0,
            has_tool_use: false,
            finish_reason: None,
            usage: usage(&Value::Null),
        }
    }

    fn close(&mut self, events: &mut Vec<Event>) {
        if self.open != Open::None {
            events.push((
                "content_block_stop",
                json!({"type": "content_block_stop", "index": self.blocks - 1}),
            ));
            self.open = Open::None;
        }
    }

    fn start(&mut self, events: &mut Vec<Event>, block: Value, open: Open) -> usize {
        self.close(events);
        events.push((
            "content_block_start",
            json!({"type": "content_block_start", "index": self.blocks, "content_block": block}),
        ));
        self.blocks += 1;
        self.open = open;
        self.blocks - 1
    }

    fn delta(events: &mut Vec<Event>, index: usize, delta: Value) {
        events.push((
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index, "delta": delta}),
        ));
    }

    /// `message_start` and the first `ping`, sent before the first chunk's blocks.
    fn opening(&mut self, events: &mut Vec<Event>) {
        if self.started {
            return;
        }
        self.started = true;
        let mut usage = self.usage.clone();
        usage["output_tokens"] = json!(0);
        events.push((
            "message_start",
            json!({"type": "message_start", "message": {
                "id": self.id, "type": "message", "role": "assistant", "model": self.model,
                "content": [], "stop_reason": null, "stop_sequence": null, "usage": usage
            }}),
        ));
        events.push(ping());
    }

    /// The events of one Gemini chunk.
    pub fn translate(&mut self, gemini: &Value) -> Vec<Event> {
        let mut events = Vec::new();
        if gemini["usageMetadata"].is_object() {
            self.usage = usage(&gemini["usageMetadata"]);
        }
        self.opening(&mut events);
        let candidate = &gemini["candidates"][0];
        for piece in pieces(candidate, self.thinking) {
            match piece {
                Piece::Thinking(text) => {
                    if self.open != Open::Thinking {
                        self.start(
                            &mut events,
                            json!({"type": "thinking", "thinking": "", "signature": ""}),
                            Open::Thinking,
                        );
                    }
                    Self::delta(
                        &mut events,
                        self.blocks - 1,
                        json!({"type": "thinking_delta", "thinking": text}),
                    );
                }
                Piece::TextSignature(_) if self.open == Open::Text => {}
                Piece::Signature(signature) | Piece::TextSignature(signature) => {
                    if self.open != Open::Thinking {
                        self.start(
                            &mut events,
                            json!({"type": "thinking", "thinking": "", "signature": ""}),
                            Open::Thinking,
                        );
                    }
                    Self::delta(
                        &mut events,
                        self.blocks - 1,
                        json!({"type": "signature_delta", "signature": signature}),
                    );
                    self.close(&mut events);
                }
                Piece::Text(text) => {
                    if self.open != Open::Text {
                        self.start(&mut events, json!({"type": "text", "text": ""}), Open::Text);
                    }
                    Self::delta(
                        &mut events,
                        self.blocks - 1,
                        json!({"type": "text_delta", "text": text}),
                    );
                }
                Piece::ToolUse { id, name, input } => {
                    self.has_tool_use = true;
                    let index = self.start(
                        &mut events,
                        json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                        Open::None,
                    );
                    Self::delta(
                        &mut events,
                        index,
                        json!({"type": "input_json_delta", "partial_json": input.to_string()}),
                    );
                    events.push((
                        "content_block_stop",
                        json!({"type": "content_block_stop", "index": index}),
                    ));
                }
            }
        }
        if let Some(reason) = candidate["finishReason"].as_str() {
            self.finish_reason = Some(reason.to_owned());
        }
        if candidate.is_null() && gemini["promptFeedback"]["blockReason"].is_string() {
            self.finish_reason = Some("SAFETY".to_owned());
        }
        events
    }

    /// What follows the last Gemini chunk: the open block's stop, `message_delta` with the
    /// stop reason and the usage, `message_stop`.
    pub fn finish(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        self.opening(&mut events);
        self.close(&mut events);
        events.push((
            "message_delta",
            json!({
                "type": "message_delta",
                "delta": {
                    "stop_reason": stop_reason(self.finish_reason.as_deref(), self.has_tool_use),
                    "stop_sequence": null
                },
                "usage": self.usage,
            }),
        ));
        events.push(("message_stop", json!({"type": "message_stop"})));
        events
    }
}

/// A `ping` event (sent at the start, and while the upstream is silent).
pub fn ping() -> Event {
    ("ping", json!({"type": "ping"}))
}

#[cfg(test)]
mod tests;
