use super::*;

/// Tool-use and message ids are random: replace them for snapshots, keeping whether a
/// signature rides in the id.
fn stable_ids(mut value: Value) -> Value {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    if key == "id"
                        && let Some(id) = child.as_str()
                        && id.starts_with("toolu_")
                    {
                        let carries = ids::signature_in_tool_id(id).is_some();
                        *child = json!(if carries {
                            "toolu_X_<signature>"
                        } else {
                            "toolu_X"
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

fn thinking_answer() -> Value {
    json!({
        "candidates": [{"content": {"role": "model", "parts": [
            {"text": "Let me ", "thought": true},
            {"text": "check the weather.", "thought": true},
            {"functionCall": {"name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2lnLTE="},
            {"functionCall": {"name": "weather", "args": {"city": "Rome"}}}
        ]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 30, "cachedContentTokenCount": 10, "candidatesTokenCount": 8, "thoughtsTokenCount": 4, "totalTokenCount": 42}
    })
}

#[test]
fn thinking_and_tool_use_with_thinking_asked_for() {
    insta::assert_json_snapshot!(stable_ids(to_message(
        &thinking_answer(),
        "msg_1",
        "claude-sonnet-4-5",
        true
    )));
}

#[test]
fn without_thinking_the_signature_rides_in_the_tool_use_id() {
    let message = to_message(&thinking_answer(), "msg_2", "claude-haiku-4-5", false);
    let content = message["content"].as_array().unwrap();
    let uses: Vec<&Value> = content
        .iter()
        .filter(|block| block["type"] == "tool_use")
        .collect();
    assert_eq!(uses.len(), 2);
    assert_eq!(
        ids::signature_in_tool_id(uses[0]["id"].as_str().unwrap()),
        Some("c2lnLTE=".to_owned())
    );
    assert_eq!(
        ids::signature_in_tool_id(uses[1]["id"].as_str().unwrap()),
        None
    );
    assert_eq!(message["stop_reason"], "tool_use");
    assert_eq!(
        message["usage"],
        json!({"input_tokens": 20, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 10, "output_tokens": 12})
    );
}

#[test]
fn stop_reasons() {
    assert_eq!(stop_reason(Some("MAX_TOKENS"), false), "max_tokens");
    assert_eq!(stop_reason(Some("SAFETY"), false), "refusal");
    assert_eq!(stop_reason(Some("STOP"), true), "tool_use");
    assert_eq!(stop_reason(Some("STOP"), false), "end_turn");
    assert_eq!(stop_reason(None, false), "end_turn");
    let blocked = to_message(
        &json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}),
        "msg_3",
        "m",
        false,
    );
    assert_eq!(blocked["stop_reason"], "refusal");
    assert_eq!(blocked["content"], json!([]));
}

#[test]
fn stream_events() {
    let mut translator = StreamTranslator::new("msg_4".into(), "claude-sonnet-4-5".into(), true);
    let mut events = Vec::new();
    events.extend(translator.translate(&json!({
        "candidates": [{"content": {"parts": [{"text": "Hmm.", "thought": true}]}, "index": 0}],
        "usageMetadata": {"promptTokenCount": 12}
    })));
    events.extend(translator.translate(&json!({
        "candidates": [{"content": {"parts": [{"text": "Hel", "thoughtSignature": "c2lnLTI="}]}, "index": 0}]
    })));
    events.extend(translator.translate(&json!({
        "candidates": [{"content": {"parts": [{"text": "lo", "thoughtSignature": "c2lnLTM="}]}, "index": 0}]
    })));
    events.extend(translator.translate(&json!({
        "candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": {"a": 1}}}]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 5, "totalTokenCount": 17}
    })));
    events.extend(translator.finish());
    let named: Vec<Value> = events
        .into_iter()
        .map(|(name, data)| {
            assert_eq!(data["type"], name, "the event's name is its data's type");
            data
        })
        .collect();
    insta::assert_json_snapshot!(stable_ids(Value::Array(named)));
}

#[test]
fn an_empty_stream_still_opens_and_closes_the_message() {
    let mut translator = StreamTranslator::new("msg_5".into(), "m".into(), false);
    let names: Vec<&str> = translator.finish().iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        ["message_start", "ping", "message_delta", "message_stop"]
    );
}
