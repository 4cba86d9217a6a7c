use super::*;

fn translate(request: Value) -> Value {
    let request: ChatCompletionRequest = serde_json::from_value(request).unwrap();
    to_gemini(&request, &HashMap::new()).unwrap()
}

#[test]
fn plain_chat() {
    insta::assert_json_snapshot!(translate(json!({
        "model": "gemini-2.5-flash",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "developer", "content": [{"type": "text", "text": "and kind"}]},
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "hi"},
            {"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}
        ],
        "temperature": 0.3, "top_p": 0.9, "max_completion_tokens": 100, "stop": "END",
        "n": 2, "seed": 42, "presence_penalty": 0.1, "frequency_penalty": 0.2
    })));
}

#[test]
fn nothing_is_injected() {
    let body = translate(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}));
    assert_eq!(
        body,
        json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}]})
    );
}

#[test]
fn tools_round_trip_with_signature() {
    let signature = BASE64.encode(b"opaque-signature");
    let id = format!(
        "call_1{SIGNATURE_MARK}{}",
        URL_SAFE_NO_PAD.encode(b"opaque-signature")
    );
    insta::assert_json_snapshot!(translate(json!({
        "model": "gemini-3-pro-preview",
        "messages": [
            {"role": "user", "content": "weather in Paris and Rome?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": id, "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Rome\"}"},
                 "extra_content": {"google": {"thought_signature": signature}}}
            ]},
            {"role": "tool", "tool_call_id": id, "content": "{\"temp\": 21}"},
            {"role": "tool", "tool_call_id": "call_2", "content": "sunny"}
        ],
        "tools": [{"type": "function", "function": {"name": "weather", "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}}}],
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
        "reasoning_effort": "high"
    })));
}

#[test]
fn json_modes() {
    insta::assert_json_snapshot!(translate(json!({
        "model": "m", "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "strict": true,
            "schema": {"type": "object", "properties": {"n": {"type": "integer"}}, "additionalProperties": false}}}
    })));
    let object = translate(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}}),
    );
    assert_eq!(
        object["generationConfig"]["responseMimeType"],
        "application/json"
    );
}

#[test]
fn audio_and_files() {
    insta::assert_json_snapshot!(translate(json!({
        "model": "m", "messages": [{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}},
            {"type": "file", "file": {"file_id": "https://generativelanguage.googleapis.com/v1beta/files/abc"}}
        ]}]
    })));
}

#[test]
fn bad_requests_name_the_parameter() {
    let request: ChatCompletionRequest = serde_json::from_value(json!({"model": "m", "messages": [
        {"role": "tool", "tool_call_id": "nope", "content": "x"}
    ]}))
    .unwrap();
    assert_eq!(
        to_gemini(&request, &HashMap::new())
            .unwrap_err()
            .param
            .as_deref(),
        Some("messages[0].tool_call_id")
    );
    let request: ChatCompletionRequest =
        serde_json::from_value(json!({"model": "m", "messages": []})).unwrap();
    assert_eq!(
        to_gemini(&request, &HashMap::new())
            .unwrap_err()
            .param
            .as_deref(),
        Some("messages")
    );
    let request: ChatCompletionRequest = serde_json::from_value(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "extreme"})).unwrap();
    assert!(to_gemini(&request, &HashMap::new()).is_err());
}

#[test]
fn remote_images_are_listed_for_fetching() {
    let request: ChatCompletionRequest = serde_json::from_value(
        json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}
        ]}]}),
    )
    .unwrap();
    assert_eq!(
        remote_image_urls(&request),
        vec!["https://example.com/a.png".to_owned()]
    );
    let fetched = HashMap::from([(
        "https://example.com/a.png".to_owned(),
        FetchedMedia {
            mime_type: "image/jpeg".into(),
            base64: "/9j/".into(),
        },
    )]);
    let body = to_gemini(&request, &fetched).unwrap();
    assert_eq!(
        body["contents"][0]["parts"][0]["inlineData"]["mimeType"],
        "image/jpeg"
    );
}
