//! Gemini answers → OpenAI Responses objects and their typed stream events.
//!
//! One state machine serves both: fed a whole answer it builds the response object; fed a
//! stream chunk by chunk it also says what happened as events (`response.created`,
//! `response.output_item.added`, `response.output_text.delta`,
//! `response.function_call_arguments.delta`, the `…done` events, `response.completed`).
//! Thoughts become `reasoning` items (their summary when asked for); a function call's thought
//! signature rides in the `encrypted_content` of the reasoning item before it and inside its
//! call id, so that the next request can give it back to Gemini.

use serde_json::{Value, json};

use super::chat_response::tool_call_id;

/// A stream event: its type and its data (which repeats the type).
pub type Event = (&'static str, Value);

/// An output item's id names its response: `{prefix}_{response}_{n}`, so that an
/// `item_reference` to it can be found among the kept responses.
fn item_id(prefix: &str, response_id: &str, number: usize) -> String {
    let response = response_id.strip_prefix("resp_").unwrap_or(response_id);
    format!("{prefix}_{response}_{number}")
}

/// The response id an item id made by `item_id` names.
pub fn response_of_item(item_id: &str) -> Option<String> {
    let (_, rest) = item_id.split_once('_')?;
    let (response, number) = rest.rsplit_once('_')?;
    (number.parse::<usize>().is_ok() && !response.is_empty()).then(|| format!("resp_{response}"))
}

/// Gemini `usageMetadata` → Responses `usage`.
fn usage(metadata: &Value) -> Value {
    let input = metadata["promptTokenCount"].as_u64().unwrap_or(0);
    let cached = metadata["cachedContentTokenCount"].as_u64().unwrap_or(0);
    let reasoning = metadata["thoughtsTokenCount"].as_u64().unwrap_or(0);
    let output = metadata["candidatesTokenCount"].as_u64().unwrap_or(0) + reasoning;
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": metadata["totalTokenCount"].as_u64().unwrap_or(input + output),
    })
}

/// The item a stream has open.
enum Open {
    None,
    Reasoning {
        id: String,
        text: String,
        signature: Option<String>,
    },
    Message {
        id: String,
        text: String,
    },
}

/// What the request said that the response object repeats.
pub struct Echo {
    pub model: String,
    pub instructions: Option<String>,
    pub max_output_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub tools: Value,
    pub tool_choice: Value,
    pub parallel_tool_calls: bool,
    pub previous_response_id: Option<String>,
    pub reasoning: Value,
    pub text: Value,
    pub store: bool,
    pub metadata: Value,
}

pub struct ResponseTranslator {
    id: String,
    created_at: i64,
    echo: Echo,
    sequence: u64,
    /// Whether events are wanted (a stream); a whole answer only needs the response object.
    emit: bool,
    /// Items started so far (the next item's number).
    items: usize,
    started: bool,
    output: Vec<Value>,
    open: Open,
    /// Gemini's parts of the answer (thoughts left out), for the stored conversation.
    model_parts: Vec<Value>,
    usage: Option<Value>,
    finish_reason: Option<String>,
    blocked: bool,
}

impl ResponseTranslator {
    pub fn new(id: String, created_at: i64, echo: Echo) -> Self {
        ResponseTranslator {
            id,
            created_at,
            echo,
            sequence: 0,
            emit: true,
            items: 0,
            started: false,
            output: Vec::new(),
            open: Open::None,
            model_parts: Vec::new(),
            usage: None,
            finish_reason: None,
            blocked: false,
        }
    }

    /// For a whole answer: no events are made, only the response object.
    pub fn without_events(mut self) -> Self {
        self.emit = false;
        self
    }

    fn new_item_id(&mut self, prefix: &str) -> String {
        self.items += 1;
        item_id(prefix, &self.id, self.items - 1)
    }

    fn event(&mut self, events: &mut Vec<Event>, name: &'static str, mut data: Value) {
        if !self.emit {
            return;
        }
        data["type"] = json!(name);
        data["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        events.push((name, data));
    }

    /// The status and, when incomplete, why.
    fn status(&self) -> (&'static str, Value) {
        match self.finish_reason.as_deref() {
            Some("MAX_TOKENS") => ("incomplete", json!({"reason": "max_output_tokens"})),
            Some(reason) if crate::gemini_body::is_safety_stop(reason) => {
                ("incomplete", json!({"reason": "content_filter"}))
            }
            _ if self.blocked => ("incomplete", json!({"reason": "content_filter"})),
            _ => ("completed", Value::Null),
        }
    }

    /// The response object as it stands (`in_progress` until `finish`).
    fn snapshot(&self, status: &str, incomplete: Value, output: Vec<Value>) -> Value {
        let echo = &self.echo;
        json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": false,
            "error": null,
            "incomplete_details": incomplete,
            "instructions": echo.instructions,
            "max_output_tokens": echo.max_output_tokens,
            "model": echo.model,
            "output": output,
            "parallel_tool_calls": echo.parallel_tool_calls,
            "previous_response_id": echo.previous_response_id,
            "reasoning": echo.reasoning,
            "store": echo.store,
            "temperature": echo.temperature,
            "text": echo.text,
            "tool_choice": echo.tool_choice,
            "tools": echo.tools,
            "top_p": echo.top_p,
            "truncation": "disabled",
            "usage": if status == "in_progress" { Value::Null } else { self.usage.clone().unwrap_or_else(|| usage(&Value::Null)) },
            "user": null,
            "metadata": echo.metadata,
        })
    }

    fn opening(&mut self, events: &mut Vec<Event>) {
        if self.started {
            return;
        }
        self.started = true;
        if !self.emit {
            return;
        }
        let response = self.snapshot("in_progress", Value::Null, Vec::new());
        self.event(
            events,
            "response.created",
            json!({"response": response.clone()}),
        );
        self.event(
            events,
            "response.in_progress",
            json!({"response": response}),
        );
    }

    /// Ends the open item: its `…done` events, and it joins the output.
    fn close(&mut self, events: &mut Vec<Event>) {
        let index = self.output.len();
        match std::mem::replace(&mut self.open, Open::None) {
            Open::None => {}
            Open::Reasoning {
                id,
                text,
                signature,
            } => {
                let summary = if text.is_empty() {
                    json!([])
                } else {
                    let part = json!({"type": "summary_text", "text": text});
                    self.event(
                        events,
                        "response.reasoning_summary_text.done",
                        json!({"item_id": id, "output_index": index, "summary_index": 0, "text": text}),
                    );
                    self.event(
                        events,
                        "response.reasoning_summary_part.done",
                        json!({"item_id": id, "output_index": index, "summary_index": 0, "part": part}),
                    );
                    json!([part])
                };
                let item = json!({"type": "reasoning", "id": id, "summary": summary, "encrypted_content": signature});
                self.event(
                    events,
                    "response.output_item.done",
                    json!({"output_index": index, "item": item}),
                );
                self.output.push(item);
            }
            Open::Message { id, text } => {
                let part =
                    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []});
                self.event(
                    events,
                    "response.output_text.done",
                    json!({"item_id": id, "output_index": index, "content_index": 0, "text": text, "logprobs": []}),
                );
                self.event(
                    events,
                    "response.content_part.done",
                    json!({"item_id": id, "output_index": index, "content_index": 0, "part": part}),
                );
                let item = json!({"type": "message", "id": id, "status": "completed", "role": "assistant", "content": [part]});
                self.event(
                    events,
                    "response.output_item.done",
                    json!({"output_index": index, "item": item}),
                );
                self.output.push(item);
            }
        }
    }

    fn open_reasoning(&mut self, events: &mut Vec<Event>) {
        if matches!(self.open, Open::Reasoning { .. }) {
            return;
        }
        self.close(events);
        let id = self.new_item_id("rs");
        let item = json!({"type": "reasoning", "id": id, "summary": []});
        let index = self.output.len();
        self.event(
            events,
            "response.output_item.added",
            json!({"output_index": index, "item": item}),
        );
        self.open = Open::Reasoning {
            id,
            text: String::new(),
            signature: None,
        };
    }

    fn thought(&mut self, events: &mut Vec<Event>, delta: &str) {
        self.open_reasoning(events);
        let index = self.output.len();
        let Open::Reasoning { id, text, .. } = &mut self.open else {
            return;
        };
        let first = text.is_empty();
        text.push_str(delta);
        let id = id.clone();
        if first {
            self.event(
                events,
                "response.reasoning_summary_part.added",
                json!({"item_id": id, "output_index": index, "summary_index": 0, "part": {"type": "summary_text", "text": ""}}),
            );
        }
        self.event(
            events,
            "response.reasoning_summary_text.delta",
            json!({"item_id": id, "output_index": index, "summary_index": 0, "delta": delta}),
        );
    }

    fn text(&mut self, events: &mut Vec<Event>, delta: &str) {
        if !matches!(self.open, Open::Message { .. }) {
            self.close(events);
            let index = self.output.len();
            let id = self.new_item_id("msg");
            let item = json!({"type": "message", "id": id, "status": "in_progress", "role": "assistant", "content": []});
            self.event(
                events,
                "response.output_item.added",
                json!({"output_index": index, "item": item}),
            );
            self.event(
                events,
                "response.content_part.added",
                json!({"item_id": id, "output_index": index, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}}),
            );
            self.open = Open::Message {
                id,
                text: String::new(),
            };
        }
        let index = self.output.len();
        let Open::Message { id, text } = &mut self.open else {
            return;
        };
        text.push_str(delta);
        let id = id.clone();
        self.event(
            events,
            "response.output_text.delta",
            json!({"item_id": id, "output_index": index, "content_index": 0, "delta": delta, "logprobs": []}),
        );
    }

    fn function_call(&mut self, events: &mut Vec<Event>, call: &Value, signature: Option<&str>) {
        // The signature goes back in a reasoning item just before the call (the open one, or
        // one of its own), and inside the call id.
        if let Some(signature) = signature {
            self.open_reasoning(events);
            if let Open::Reasoning {
                signature: slot, ..
            } = &mut self.open
            {
                *slot = Some(signature.to_owned());
            }
        }
        self.close(events);
        let index = self.output.len();
        let id = self.new_item_id("fc");
        let arguments = match &call["args"] {
            Value::Object(args) => Value::Object(args.clone()).to_string(),
            _ => "{}".to_owned(),
        };
        let call_id = tool_call_id(signature);
        let added = json!({"type": "function_call", "id": id, "call_id": call_id, "name": call["name"], "arguments": "", "status": "in_progress"});
        self.event(
            events,
            "response.output_item.added",
            json!({"output_index": index, "item": added}),
        );
        self.event(
            events,
            "response.function_call_arguments.delta",
            json!({"item_id": id, "output_index": index, "delta": arguments}),
        );
        self.event(
            events,
            "response.function_call_arguments.done",
            json!({"item_id": id, "output_index": index, "arguments": arguments}),
        );
        let item = json!({"type": "function_call", "id": id, "call_id": call_id, "name": call["name"], "arguments": arguments, "status": "completed"});
        self.event(
            events,
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        );
        self.output.push(item);
    }

    /// Keeps a part for the stored conversation (consecutive texts joined).
    fn remember(&mut self, part: &Value) {
        if let (Some(last), Some(text)) = (self.model_parts.last_mut(), part["text"].as_str())
            && last.get("functionCall").is_none()
            && let Some(previous) = last["text"].as_str()
        {
            last["text"] = json!(format!("{previous}{text}"));
            return;
        }
        let mut kept = part.clone();
        if let Some(object) = kept.as_object_mut() {
            object.remove("thought");
        }
        self.model_parts.push(kept);
    }

    /// The events of one Gemini chunk (or of a whole answer).
    pub fn translate(&mut self, gemini: &Value) -> Vec<Event> {
        let mut events = Vec::new();
        self.opening(&mut events);
        if gemini["usageMetadata"].is_object() {
            self.usage = Some(usage(&gemini["usageMetadata"]));
        }
        let candidate = &gemini["candidates"][0];
        if candidate.is_null() && gemini["promptFeedback"]["blockReason"].is_string() {
            self.blocked = true;
        }
        for part in candidate["content"]["parts"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let signature = part["thoughtSignature"].as_str();
            if part["thought"].as_bool() == Some(true) {
                if let Some(text) = part["text"].as_str() {
                    self.thought(&mut events, text);
                }
                continue;
            }
            if let Some(call) = part.get("functionCall") {
                self.remember(part);
                self.function_call(&mut events, call, signature);
            } else if let Some(text) = part["text"].as_str() {
                // A text's signature (Gemini checks none on text) closes thoughts before it.
                if let (
                    Some(signature),
                    Open::Reasoning {
                        signature: slot, ..
                    },
                ) = (signature, &mut self.open)
                {
                    *slot = Some(signature.to_owned());
                }
                self.remember(part);
                self.text(&mut events, text);
            } else if let Some(data) = part.get("inlineData") {
                let mime = data["mimeType"]
                    .as_str()
                    .unwrap_or("application/octet-stream");
                let encoded = data["data"].as_str().unwrap_or_default();
                self.remember(part);
                self.text(
                    &mut events,
                    &format!("\n\n![image](data:{mime};base64,{encoded})\n\n"),
                );
            }
        }
        if let Some(reason) = candidate["finishReason"].as_str() {
            self.finish_reason = Some(reason.to_owned());
        }
        events
    }

    /// The last events: the open item's end, then `response.completed` (or
    /// `response.incomplete`) with the whole response.
    pub fn finish(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        self.opening(&mut events);
        self.close(&mut events);
        if !self.emit {
            return events;
        }
        let response = self.response();
        let name = if response["status"] == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        self.event(&mut events, name, json!({"response": response}));
        events
    }

    /// The response object (complete once `finish` ran).
    pub fn response(&self) -> Value {
        let (status, incomplete) = self.status();
        self.snapshot(status, incomplete, self.output.clone())
    }

    /// The answer as a Gemini `model` turn, for the stored conversation.
    pub fn model_content(&self) -> Value {
        json!({"role": "model", "parts": self.model_parts})
    }

    /// The `error` event that ends a stream which failed after its start.
    pub fn error(&mut self, error: &Value) -> Vec<Event> {
        let mut events = Vec::new();
        let data = json!({
            "code": error["error"]["code"],
            "message": error["error"]["message"],
            "param": null,
        });
        self.event(&mut events, "error", data);
        events
    }
}

#[cfg(test)]
mod tests;
