//! Gemini answers → OpenAI `chat.completion` objects and `chat.completion.chunk` streams.
//!
//! Text becomes `content`, thoughts `reasoning_content`, `functionCall` parts `tool_calls` (the
//! thought signature travels back to the client in `extra_content.google.thought_signature` and
//! inside the call id), inline images become markdown data URLs, finish reasons and usage map to
//! OpenAI's.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};

use super::chat_request::SIGNATURE_MARK;

/// Gemini `finishReason` → OpenAI `finish_reason`.
pub fn finish_reason(reason: &str, has_tool_calls: bool) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        reason if crate::gemini_body::is_safety_stop(reason) => "content_filter",
        _ if has_tool_calls => "tool_calls",
        _ => "stop",
    }
}

/// Gemini `usageMetadata` → OpenAI `usage`.
pub fn usage(metadata: &Value) -> Option<Value> {
    if !metadata.is_object() {
        return None;
    }
    let prompt = metadata["promptTokenCount"].as_u64().unwrap_or(0);
    let thoughts = metadata["thoughtsTokenCount"].as_u64().unwrap_or(0);
    let completion = metadata["candidatesTokenCount"].as_u64().unwrap_or(0) + thoughts;
    let total = metadata["totalTokenCount"]
        .as_u64()
        .unwrap_or(prompt + completion);
    Some(json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        "completion_tokens_details": {"reasoning_tokens": thoughts}
    }))
}

/// A new tool call id; the part's thought signature, when there is one, rides inside it.
pub(crate) fn tool_call_id(signature: Option<&str>) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    match signature.and_then(|signature| BASE64.decode(signature).ok()) {
        Some(bytes) => format!(
            "call_{}{SIGNATURE_MARK}{}",
            &id[..24],
            URL_SAFE_NO_PAD.encode(bytes)
        ),
        None => format!("call_{}", &id[..24]),
    }
}

/// What one candidate (or one chunk of it) says, in OpenAI's terms.
#[derive(Default)]
struct CandidateContent {
    content: String,
    reasoning: String,
    tool_calls: Vec<Value>,
}

fn read_candidate(
    candidate: &Value,
    first_tool_index: usize,
    show_sources: bool,
) -> CandidateContent {
    let mut read = CandidateContent::default();
    for part in candidate["content"]["parts"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(call) = part.get("functionCall") {
            let signature = part["thoughtSignature"].as_str();
            let mut tool_call = json!({
                "index": first_tool_index + read.tool_calls.len(),
                "id": tool_call_id(signature),
                "type": "function",
                "function": {
                    "name": call["name"],
                    "arguments": call.get("args").map_or_else(|| "{}".to_owned(), Value::to_string)
                }
            });
            if let Some(signature) = signature {
                tool_call["extra_content"] = json!({"google": {"thought_signature": signature}});
            }
            read.tool_calls.push(tool_call);
        } else if let Some(text) = part["text"].as_str() {
            if part["thought"].as_bool() == Some(true) {
                read.reasoning.push_str(text);
            } else {
                read.content.push_str(text);
            }
        } else if let Some(data) = part.get("inlineData")
            && data["mimeType"]
                .as_str()
                .is_some_and(|mime| mime.starts_with("image/"))
        {
            let mime = data["mimeType"].as_str().unwrap_or("image/png");
            let encoded = data["data"].as_str().unwrap_or_default();
            read.content
                .push_str(&format!("\n\n![image](data:{mime};base64,{encoded})\n\n"));
        } else if let Some(code) = part.get("executableCode") {
            let language = code["language"].as_str().unwrap_or("").to_ascii_lowercase();
            read.content.push_str(&format!(
                "\n```{language}\n{}\n```\n",
                code["code"].as_str().unwrap_or_default()
            ));
        } else if let Some(result) = part.get("codeExecutionResult") {
            read.content.push_str(&format!(
                "\n```\n{}\n```\n",
                result["output"].as_str().unwrap_or_default()
            ));
        }
    }
    if show_sources && let Some(sources) = grounding_sources(&candidate["groundingMetadata"]) {
        read.content.push_str(&sources);
    }
    read
}

/// Google Search sources (the `-search` models), as a markdown list.
fn grounding_sources(metadata: &Value) -> Option<String> {
    let chunks = metadata["groundingChunks"].as_array()?;
    let links: Vec<String> = chunks
        .iter()
        .filter_map(|chunk| {
            let web = chunk.get("web")?;
            let uri = web["uri"].as_str()?;
            let title = web["title"].as_str().unwrap_or(uri);
            Some(format!("- [{title}]({uri})"))
        })
        .collect();
    (!links.is_empty()).then(|| format!("\n\n**Sources**\n{}\n", links.join("\n")))
}

/// A whole Gemini answer as a `chat.completion`; `show_sources` appends Google Search sources
/// (`SHOW_SEARCH_LINK`).
pub fn to_openai(answer: &Value, id: &str, model: &str, created: i64, show_sources: bool) -> Value {
    let mut choices = Vec::new();
    for (position, candidate) in answer["candidates"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let read = read_candidate(candidate, 0, show_sources);
        let has_tools = !read.tool_calls.is_empty();
        let mut message = json!({
            "role": "assistant",
            "content": if read.content.is_empty() && has_tools { Value::Null } else { json!(read.content) },
        });
        if !read.reasoning.is_empty() {
            message["reasoning_content"] = json!(read.reasoning);
        }
        if has_tools {
            let calls: Vec<Value> = read
                .tool_calls
                .into_iter()
                .map(|mut call| {
                    if let Some(object) = call.as_object_mut() {
                        object.remove("index");
                    }
                    call
                })
                .collect();
            message["tool_calls"] = json!(calls);
        }
        choices.push(json!({
            "index": candidate["index"].as_u64().unwrap_or(position as u64),
            "message": message,
            "finish_reason": finish_reason(candidate["finishReason"].as_str().unwrap_or("STOP"), has_tools),
            "logprobs": null
        }));
    }
    if choices.is_empty() {
        // The prompt itself was blocked: no candidate, a block reason.
        choices.push(json!({
            "index": 0,
            "message": {"role": "assistant", "content": ""},
            "finish_reason": if answer["promptFeedback"]["blockReason"].is_string() { "content_filter" } else { "stop" },
            "logprobs": null
        }));
    }
    let mut completion = json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
    });
    if let Some(usage) = usage(&answer["usageMetadata"]) {
        completion["usage"] = usage;
    }
    completion
}

/// Turns a Gemini stream into `chat.completion.chunk` objects, chunk by chunk.
pub struct StreamTranslator {
    id: String,
    model: String,
    created: i64,
    include_usage: bool,
    /// Per candidate: whether the role was sent, how many tool calls so far.
    role_sent: Vec<bool>,
    tool_calls: Vec<usize>,
    last_usage: Option<Value>,
    show_sources: bool,
}

impl StreamTranslator {
    pub fn new(id: String, model: String, created: i64, include_usage: bool) -> Self {
        StreamTranslator {
            id,
            model,
            created,
            include_usage,
            role_sent: Vec::new(),
            tool_calls: Vec::new(),
            last_usage: None,
            show_sources: true,
        }
    }

    /// Whether Google Search sources are appended (`SHOW_SEARCH_LINK`).
    pub fn show_sources(mut self, show: bool) -> Self {
        self.show_sources = show;
        self
    }

    fn chunk(&self, choices: Vec<Value>) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        })
    }

    /// The OpenAI chunks for one Gemini chunk (none when it carries nothing to say).
    pub fn translate(&mut self, gemini: &Value) -> Vec<Value> {
        if let Some(usage) = usage(&gemini["usageMetadata"]) {
            self.last_usage = Some(usage);
        }
        let mut choices = Vec::new();
        for (position, candidate) in gemini["candidates"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let index = candidate["index"]
                .as_u64()
                .map_or(position, |index| index as usize);
            if self.role_sent.len() <= index {
                self.role_sent.resize(index + 1, false);
                self.tool_calls.resize(index + 1, 0);
            }
            let read = read_candidate(candidate, self.tool_calls[index], self.show_sources);
            let mut delta = Map::new();
            if !self.role_sent[index] {
                delta.insert("role".into(), json!("assistant"));
                self.role_sent[index] = true;
            }
            if !read.content.is_empty() {
                delta.insert("content".into(), json!(read.content));
            }
            if !read.reasoning.is_empty() {
                delta.insert("reasoning_content".into(), json!(read.reasoning));
            }
            if !read.tool_calls.is_empty() {
                self.tool_calls[index] += read.tool_calls.len();
                delta.insert("tool_calls".into(), json!(read.tool_calls));
            }
            let finish = candidate["finishReason"]
                .as_str()
                .map(|reason| finish_reason(reason, self.tool_calls[index] > 0));
            if delta.is_empty() && finish.is_none() {
                continue;
            }
            choices.push(
                json!({"index": index, "delta": delta, "finish_reason": finish, "logprobs": null}),
            );
        }
        if choices.is_empty() {
            return Vec::new();
        }
        vec![self.chunk(choices)]
    }

    /// An empty chunk (fake streaming's keep-alive).
    pub fn heartbeat(&self) -> Value {
        self.chunk(vec![
            json!({"index": 0, "delta": {"content": ""}, "finish_reason": null, "logprobs": null}),
        ])
    }

    /// What follows the last Gemini chunk: the usage chunk, when the client asked for it.
    pub fn finish(&mut self) -> Vec<Value> {
        if !self.include_usage {
            return Vec::new();
        }
        let mut last = self.chunk(Vec::new());
        last["usage"] = self.last_usage.take().unwrap_or_else(
            || json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}),
        );
        vec![last]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tool call ids are random: replace them for snapshots, keeping the signature part.
    fn stable_ids(mut value: Value) -> Value {
        fn walk(value: &mut Value) {
            match value {
                Value::Object(map) => {
                    for (key, child) in map.iter_mut() {
                        if key == "id"
                            && let Some(id) = child.as_str()
                            && id.starts_with("call_")
                        {
                            let signature = id
                                .split_once(SIGNATURE_MARK)
                                .map(|(_, signature)| signature.to_owned());
                            *child = json!(match signature {
                                Some(signature) => format!("call_X{SIGNATURE_MARK}{signature}"),
                                None => "call_X".to_owned(),
                            });
                        } else {
                            walk(child);
                        }
                    }
                }
                Value::Array(items) => items.iter_mut().for_each(walk),
                _ => {}
            }
        }
        walk(&mut value);
        value
    }

    #[test]
    fn text_thoughts_and_usage() {
        let answer = json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"text": "Let me think.", "thought": true},
                {"text": "Hello"}, {"text": " world"}
            ]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2, "thoughtsTokenCount": 3, "totalTokenCount": 10}
        });
        insta::assert_json_snapshot!(to_openai(
            &answer,
            "chatcmpl-1",
            "gemini-2.5-flash",
            1700000000,
            true
        ));
    }

    #[test]
    fn tool_calls_carry_the_signature() {
        let answer = json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"functionCall": {"name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": "b3BhcXVl"}
            ]}, "finishReason": "STOP"}]
        });
        let completion = to_openai(
            &answer,
            "chatcmpl-2",
            "gemini-3-pro-preview",
            1700000000,
            true,
        );
        insta::assert_json_snapshot!(stable_ids(completion.clone()));
        let id = completion["choices"][0]["message"]["tool_calls"][0]["id"]
            .as_str()
            .unwrap();
        assert!(id.ends_with(&URL_SAFE_NO_PAD.encode(b"opaque")));
    }

    #[test]
    fn finish_reasons() {
        assert_eq!(finish_reason("MAX_TOKENS", false), "length");
        assert_eq!(finish_reason("SAFETY", false), "content_filter");
        assert_eq!(finish_reason("STOP", true), "tool_calls");
        assert_eq!(finish_reason("STOP", false), "stop");
        let blocked = to_openai(
            &json!({"promptFeedback": {"blockReason": "SAFETY"}}),
            "x",
            "m",
            0,
            true,
        );
        assert_eq!(blocked["choices"][0]["finish_reason"], "content_filter");
    }

    #[test]
    fn images_become_data_urls() {
        let answer = json!({"candidates": [{"content": {"parts": [
            {"text": "Here:"}, {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
        ]}, "finishReason": "STOP"}]});
        let content = to_openai(&answer, "x", "m", 0, true)["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(content.contains("![image](data:image/png;base64,iVBORw0KGgo=)"));
    }

    #[test]
    fn stream_chunks() {
        let mut translator = StreamTranslator::new(
            "chatcmpl-3".into(),
            "gemini-2.5-flash".into(),
            1700000000,
            true,
        );
        let mut chunks = Vec::new();
        chunks.extend(translator.translate(&json!({"candidates": [{"content": {"parts": [{"text": "think", "thought": true}]}, "index": 0}]})));
        chunks.extend(translator.translate(
            &json!({"candidates": [{"content": {"parts": [{"text": "Hel"}]}, "index": 0}]}),
        ));
        chunks.extend(translator.translate(&json!({"candidates": [{"content": {"parts": [
            {"functionCall": {"name": "f", "args": {}}}
        ]}, "finishReason": "STOP", "index": 0}], "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 2, "totalTokenCount": 3}})));
        chunks.extend(translator.finish());
        insta::assert_json_snapshot!(stable_ids(Value::Array(chunks)));
    }
}
