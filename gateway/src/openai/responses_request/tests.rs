use super::*;

fn translate_with(request: Value, previous: &Previous) -> Result<Value, InvalidRequest> {
    let request: ResponsesRequest = serde_json::from_value(request).unwrap();
    let model = request.model.clone();
    to_gemini(&request, &model, previous, &HashMap::new())
}

fn translate(request: Value) -> Value {
    translate_with(request, &Previous::default()).unwrap()
}

#[test]
fn a_string_input_and_nothing_injected() {
    assert_eq!(
        translate(json!({"model": "gemini-2.5-flash", "input": "hi"})),
        json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
    );
}

#[test]
fn items_instructions_and_settings() {
    insta::assert_json_snapshot!(translate(json!({
        "model": "gemini-2.5-flash",
        "instructions": "Be terse.",
        "input": [
            {"role": "developer", "content": "Answer in French."},
            {"role": "user", "content": [
                {"type": "input_text", "text": "What is this?"},
                {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "auto"},
                {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}
            ]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Une image."}]},
            {"role": "user", "content": "Merci"}
        ],
        "max_output_tokens": 200, "temperature": 0.4, "top_p": 0.8,
        "text": {"format": {"type": "json_schema", "name": "answer", "strict": true,
            "schema": {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false}}},
        "reasoning": {"effort": "low", "summary": "auto"}
    })));
}

#[test]
fn function_call_round_trip_restores_the_signature() {
    let signature = "c2lnLWZvci1mdW5jdGlvbi1jYWxs";
    let in_id = super::super::chat_response::tool_call_id(Some(signature));
    let body = translate(json!({
        "model": "gemini-3-pro-preview",
        "tools": [{"type": "function", "name": "weather", "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}, "strict": true},
            {"type": "web_search"}],
        "tool_choice": {"type": "function", "name": "weather"},
        "input": [
            {"role": "user", "content": "Paris and Rome?"},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "cmVhc29uaW5n"},
            {"type": "function_call", "id": "fc_1", "call_id": "call_plain", "name": "weather", "arguments": "{\"city\":\"Paris\"}"},
            {"type": "function_call", "id": "fc_2", "call_id": in_id, "name": "weather", "arguments": "{\"city\":\"Rome\"}"},
            {"type": "function_call_output", "call_id": "call_plain", "output": "{\"celsius\": 21}"},
            {"type": "function_call_output", "call_id": in_id, "output": "rainy"}
        ]
    }));
    let model_turn = &body["contents"][1]["parts"];
    assert_eq!(model_turn[0]["thoughtSignature"], "cmVhc29uaW5n");
    assert_eq!(model_turn[1]["thoughtSignature"], signature);
    let mut stable = body.clone();
    stable["contents"][1]["parts"][1]["thoughtSignature"] = json!("<in the call id>");
    insta::assert_json_snapshot!(stable);
}

#[test]
fn a_previous_response_comes_first_and_names_its_calls() {
    let stored = json!([
        {"role": "user", "parts": [{"text": "weather?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "weather", "args": {}}, "thoughtSignature": "c2ln"}]}
    ]);
    let response = json!({"output": [{"type": "function_call", "call_id": "call_9", "name": "weather", "arguments": "{}"}]});
    let previous = Previous::from_stored(stored.to_string().as_bytes(), &response);
    let body = translate_with(
        json!({"model": "m", "instructions": "new rules", "input": [{"type": "function_call_output", "call_id": "call_9", "output": "sunny"}]}),
        &previous,
    )
    .unwrap();
    assert_eq!(body["contents"][0], stored[0]);
    assert_eq!(body["contents"][1], stored[1]);
    assert_eq!(
        body["contents"][2],
        json!({"role": "user", "parts": [{"functionResponse": {"name": "weather", "response": {"result": "sunny"}}}]})
    );
    assert_eq!(
        body["systemInstruction"],
        json!({"parts": [{"text": "new rules"}]})
    );
}

#[test]
fn bad_requests_name_their_parameter() {
    let error = |request: Value| translate_with(request, &Previous::default()).unwrap_err();
    let unknown_call = error(
        json!({"model": "m", "input": [{"type": "function_call_output", "call_id": "call_x", "output": "1"}]}),
    );
    assert_eq!(unknown_call.param.as_deref(), Some("input[0].call_id"));
    let reference =
        error(json!({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}));
    assert_eq!(reference.param.as_deref(), Some("input[0].type"));
    let tool = error(json!({"model": "m", "input": "x", "tools": [{"type": "code_interpreter"}]}));
    assert_eq!(tool.param.as_deref(), Some("tools[0].type"));
    let effort = error(json!({"model": "m", "input": "x", "reasoning": {"effort": "extreme"}}));
    assert_eq!(effort.param.as_deref(), Some("reasoning.effort"));
    let empty = error(json!({"model": "m", "input": []}));
    assert_eq!(empty.param.as_deref(), Some("input"));
    let role = error(json!({"model": "m", "input": [{"role": "tool", "content": "x"}]}));
    assert_eq!(role.param.as_deref(), Some("input[0].role"));
}

#[test]
fn item_references_are_resolved_from_kept_items() {
    let mut request: ResponsesRequest = serde_json::from_value(json!({"model": "m", "input": [
        {"role": "user", "content": "Paris"},
        {"type": "item_reference", "id": "fc_abc_0"},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}
    ]}))
    .unwrap();
    assert_eq!(referenced_items(&request), ["fc_abc_0"]);
    let mut items = HashMap::new();
    assert!(
        resolve_references(&mut request, &items)
            .unwrap_err()
            .message
            .contains("fc_abc_0")
    );
    items.insert(
        "fc_abc_0".to_owned(),
        json!({"type": "function_call", "id": "fc_abc_0", "call_id": "call_1", "name": "weather", "arguments": "{}"}),
    );
    resolve_references(&mut request, &items).unwrap();
    let body = to_gemini(&request, "m", &Previous::default(), &HashMap::new()).unwrap();
    assert_eq!(
        body["contents"][1]["parts"][0]["functionCall"]["name"],
        "weather"
    );
    assert_eq!(
        body["contents"][2]["parts"][0]["functionResponse"]["name"],
        "weather"
    );
}
