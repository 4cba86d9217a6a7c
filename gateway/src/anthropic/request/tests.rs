use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::*;

fn translate_for(model: &str, request: Value) -> Result<Value, InvalidRequest> {
    let request: MessagesRequest = serde_json::from_value(request).unwrap();
    to_gemini(&request, model, &HashMap::new())
}

fn translate(request: Value) -> Value {
    translate_for("gemini-2.5-pro", request).unwrap()
}

#[test]
fn plain_message_with_system_blocks_and_sampling() {
    insta::assert_json_snapshot!(translate(json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 512,
        "system": [
            {"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Answer in French."}
        ],
        "messages": [
            {"role": "user", "content": "Bonjour"},
            {"role": "system", "content": [{"type": "text", "text": "The user is in Lyon."}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Salut"}]},
            {"role": "user", "content": [
                {"type": "text", "text": "Regarde", "cache_control": {"type": "ephemeral"}},
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}}
            ]}
        ],
        "temperature": 0.2, "top_p": 0.9, "top_k": 40, "stop_sequences": ["FIN"],
        "metadata": {"user_id": "user-7"}
    })));
}

#[test]
fn nothing_is_injected() {
    assert_eq!(
        translate(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]})),
        json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}]})
    );
}

#[test]
fn documents_of_every_source() {
    insta::assert_json_snapshot!(translate(json!({
        "model": "m", "max_tokens": 10,
        "messages": [{"role": "user", "content": [
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}},
            {"type": "document", "title": "notes", "source": {"type": "text", "media_type": "text/plain", "data": "plain notes"}},
            {"type": "text", "text": "summarise both"}
        ]}]
    })));
}

#[test]
fn tool_use_round_trip_restores_the_signatures() {
    let from_thinking = BASE64.encode(b"signature in a thinking block");
    let in_id = BASE64.encode(b"signature in the id");
    let carried = super::ids::tool_use_id(Some(&in_id));
    let body = translate_for(
        "gemini-3-pro-preview",
        json!({
            "model": "claude-opus-4-1", "max_tokens": 1024,
            "tools": [{
                "name": "weather", "description": "The weather of a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false, "$schema": "http://json-schema.org/draft-07/schema#"}
            }, {"name": "now", "input_schema": {"type": "object", "properties": {}}}],
            "tool_choice": {"type": "tool", "name": "weather", "disable_parallel_tool_use": true},
            "messages": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "Two cities.", "signature": from_thinking},
                    {"type": "tool_use", "id": "toolu_first", "name": "weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": carried, "name": "weather", "input": {"city": "Rome"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_first", "content": "{\"celsius\": 21}"},
                    {"type": "tool_result", "tool_use_id": carried, "content": [{"type": "text", "text": "station offline"}], "is_error": true},
                    {"type": "text", "text": "And tomorrow?"}
                ]}
            ]
        }),
    )
    .unwrap();
    let parts = &body["contents"][1]["parts"];
    assert_eq!(parts[0]["thoughtSignature"], json!(from_thinking));
    assert_eq!(parts[1]["thoughtSignature"], json!(in_id));
    let mut stable = body.clone();
    stable["contents"][1]["parts"][1]["thoughtSignature"] = json!("<in the id>");
    insta::assert_json_snapshot!(stable);
}

#[test]
fn tool_results_with_images_and_json() {
    let body = translate(json!({
        "model": "m", "max_tokens": 10,
        "messages": [
            {"role": "user", "content": "shoot"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "camera", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [
                {"type": "text", "text": "taken"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
            ]}]}
        ]
    }));
    assert_eq!(
        body["contents"][2]["parts"],
        json!([
            {"functionResponse": {"name": "camera", "response": {"result": "taken"}}},
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
        ])
    );
}

#[test]
fn thinking_maps_to_a_budget_or_a_level() {
    let with = |model: &str, thinking: Value| {
        translate_for(
            model,
            json!({"model": "x", "max_tokens": 10, "thinking": thinking, "messages": [{"role": "user", "content": "q"}]}),
        )
        .map(|body| body["generationConfig"]["thinkingConfig"].clone())
    };
    let enabled = json!({"type": "enabled", "budget_tokens": 2048});
    assert_eq!(
        with("gemini-2.5-flash", enabled.clone()),
        Ok(json!({"thinkingBudget": 2048, "includeThoughts": true}))
    );
    assert_eq!(
        with("gemini-3-pro-preview", enabled),
        Ok(json!({"thinkingLevel": "low", "includeThoughts": true}))
    );
    assert_eq!(
        with(
            "gemini-3-pro-preview",
            json!({"type": "enabled", "budget_tokens": 16000})
        ),
        Ok(json!({"thinkingLevel": "high", "includeThoughts": true}))
    );
    assert_eq!(
        with("gemini-2.5-flash", json!({"type": "adaptive"})),
        Ok(json!({"thinkingBudget": -1, "includeThoughts": true}))
    );
    assert_eq!(
        with("gemini-2.5-flash", json!({"type": "disabled"})),
        Ok(json!({"thinkingBudget": 0}))
    );
    assert_eq!(
        with("gemini-2.5-pro", json!({"type": "disabled"})),
        Ok(json!({"thinkingBudget": 128}))
    );
    assert_eq!(
        with(
            "gemini-2.5-pro",
            json!({"type": "adaptive", "display": "omitted"})
        ),
        Ok(json!({"thinkingBudget": -1, "includeThoughts": false}))
    );
    assert!(with("gemini-2.5-flash", json!({"type": "enabled"})).is_err());
    assert!(with("gemini-2.5-flash", json!({"type": "sometimes"})).is_err());
}

#[test]
fn tool_choices_and_server_tools() {
    let with = |choice: Value| {
        translate(json!({
            "model": "m", "max_tokens": 10, "tool_choice": choice,
            "tools": [{"name": "f", "input_schema": {"type": "object", "properties": {"a": {"type": "string"}}}},
                      {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
            "messages": [{"role": "user", "content": "q"}]
        }))
    };
    let auto = with(json!({"type": "auto"}));
    assert_eq!(
        auto["toolConfig"],
        json!({"functionCallingConfig": {"mode": "AUTO"}})
    );
    assert_eq!(auto["tools"][1], json!({"googleSearch": {}}));
    assert_eq!(
        with(json!({"type": "any"}))["toolConfig"]["functionCallingConfig"]["mode"],
        "ANY"
    );
    assert_eq!(
        with(json!({"type": "none"}))["toolConfig"]["functionCallingConfig"]["mode"],
        "NONE"
    );
}

#[test]
fn bad_requests_say_what_is_wrong() {
    let error = |request: Value| translate_for("m", request).unwrap_err().0;
    assert!(error(json!({"model": "m", "messages": []})).contains("at least one message"));
    assert!(
        error(json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}))
            .contains("messages[0].role")
    );
    assert!(
        error(
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_nowhere", "content": "x"}
            ]}]})
        )
        .contains("toolu_nowhere")
    );
    assert!(
        error(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "bash_20250124", "name": "bash"}]})
        )
        .contains("bash_20250124")
    );
    assert!(
        error(
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "file", "file_id": "file_1"}}
            ]}]})
        )
        .contains("file sources")
    );
    assert!(
        error(
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "hologram"}]}]})
        )
        .contains("hologram")
    );
}
