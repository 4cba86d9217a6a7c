use super::*;

fn echo() -> Echo {
    Echo {
        model: "gemini-3-pro-preview".into(),
        instructions: None,
        max_output_tokens: None,
        temperature: None,
        top_p: None,
        tools: json!([]),
        tool_choice: json!("auto"),
        parallel_tool_calls: true,
        previous_response_id: None,
        reasoning: json!({"effort": null, "summary": null}),
        text: json!({"format": {"type": "text"}}),
        store: true,
        metadata: json!({}),
    }
}

/// Item and call ids are random: replace them for snapshots, keeping whether a call id carries
/// a signature.
fn stable(mut value: Value) -> Value {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    match (key.as_str(), child.as_str()) {
                        ("id" | "item_id", Some(id)) => {
                            let prefix = id.split('_').next().unwrap_or_default().to_owned();
                            *child = json!(format!("{prefix}_X"));
                        }
                        ("call_id", Some(id)) => {
                            let carries =
                                crate::openai::chat_request::signature_in_call_id(id).is_some();
                            *child = json!(if carries { "call_X.sig" } else { "call_X" });
                        }
                        _ => walk(child),
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
fn a_whole_answer_with_thoughts_text_and_a_call() {
    let mut translator = ResponseTranslator::new("resp_1".into(), 1_700_000_000, echo());
    translator.translate(&json!({
        "candidates": [{"content": {"role": "model", "parts": [
            {"text": "Considering.", "thought": true},
            {"text": "Checking the weather."},
            {"functionCall": {"name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2lnLTE="}
        ]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 6, "thoughtsTokenCount": 2, "totalTokenCount": 18}
    }));
    translator.finish();
    let response = translator.response();
    insta::assert_json_snapshot!(stable(response.clone()));
    let call = &response["output"][3];
    assert_eq!(
        crate::openai::chat_request::signature_in_call_id(call["call_id"].as_str().unwrap()),
        Some("c2lnLTE=".to_owned())
    );
    assert_eq!(response["output"][2]["encrypted_content"], "c2lnLTE=");
    assert_eq!(
        translator.model_content(),
        json!({"role": "model", "parts": [
            {"text": "Checking the weather."},
            {"functionCall": {"name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2lnLTE="}
        ]})
    );
}

#[test]
fn max_tokens_and_blocks_are_incomplete() {
    let mut translator = ResponseTranslator::new("resp_2".into(), 0, echo());
    translator.translate(&json!({"candidates": [{"content": {"parts": [{"text": "cut"}]}, "finishReason": "MAX_TOKENS"}]}));
    let events = translator.finish();
    assert_eq!(events.last().unwrap().0, "response.incomplete");
    assert_eq!(
        translator.response()["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    let mut blocked = ResponseTranslator::new("resp_3".into(), 0, echo());
    blocked.translate(&json!({"promptFeedback": {"blockReason": "SAFETY"}}));
    blocked.finish();
    assert_eq!(
        blocked.response()["incomplete_details"],
        json!({"reason": "content_filter"})
    );
}

#[test]
fn stream_events() {
    let mut translator = ResponseTranslator::new("resp_4".into(), 1_700_000_000, echo());
    let mut events = Vec::new();
    events.extend(
        translator.translate(&json!({"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]})),
    );
    events.extend(translator.translate(&json!({"candidates": [{"content": {"parts": [{"text": "lo", "thoughtSignature": "c2ln"}]}}]})));
    events.extend(translator.translate(&json!({
        "candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": {"a": 1}}}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7}
    })));
    events.extend(translator.finish());
    let numbers: Vec<u64> = events
        .iter()
        .map(|(_, data)| data["sequence_number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (0..events.len() as u64).collect::<Vec<_>>());
    let named: Vec<Value> = events
        .into_iter()
        .map(|(name, mut data)| {
            assert_eq!(data["type"], name);
            if let Some(object) = data.as_object_mut() {
                object.remove("response");
            }
            data
        })
        .collect();
    insta::assert_json_snapshot!(stable(Value::Array(named)));
}

#[test]
fn item_ids_name_their_response() {
    let mut translator = ResponseTranslator::new("resp_0123abcd".into(), 0, echo());
    translator.translate(&json!({"candidates": [{"content": {"parts": [
        {"text": "t"}, {"functionCall": {"name": "f", "args": {}}}
    ]}, "finishReason": "STOP"}]}));
    translator.finish();
    let ids: Vec<String> = translator.response()["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["msg_0123abcd_0", "fc_0123abcd_1"]);
    assert!(
        ids.iter()
            .all(|id| response_of_item(id).as_deref() == Some("resp_0123abcd"))
    );
    assert_eq!(response_of_item("msg_abc"), None);
    assert_eq!(response_of_item("fc_x_y"), None);
}
