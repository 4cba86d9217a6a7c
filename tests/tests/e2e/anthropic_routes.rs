//! Anthropic's Messages API over real HTTP: a message whole and streamed, Claude names mapped
//! to Gemini models (and the map changed while running), count_tokens, the model list, a
//! tool-use round trip on Gemini 3 with its thought signatures, and every error in Anthropic's
//! shape with the upstream's status.

use gb_tests::mock_gemini::Behavior;
use serde_json::{Value, json};

use crate::harness::{Backend, CLIENT_TOKEN, Mode, TestApp, status_and_json};
use crate::two_setups;

fn anthropic_post(app: &TestApp, path: &str, body: &Value) -> reqwest::RequestBuilder {
    app.http
        .post(app.url(path))
        .header("x-api-key", CLIENT_TOKEN)
        .header("anthropic-version", "2023-06-01")
        .json(body)
}

async fn post(app: &TestApp, path: &str, body: &Value) -> (u16, Value) {
    status_and_json(anthropic_post(app, path, body).send().await.unwrap()).await
}

/// A stream's events as (name, data), checking the SSE framing on the way.
async fn stream(app: &TestApp, body: &Value) -> Vec<(String, Value)> {
    let response = anthropic_post(app, "/v1/messages", body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = response.text().await.unwrap();
    text.split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| {
            let (name, data) = event.split_once('\n').unwrap();
            let name = name.strip_prefix("event: ").unwrap().to_owned();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(data["type"], name.as_str(), "{event}");
            (name, data)
        })
        .collect()
}

fn hello(model: &str) -> Value {
    json!({"model": model, "max_tokens": 256, "messages": [{"role": "user", "content": "hello there"}]})
}

async fn message_whole_streamed_and_counted(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    let (status, body) = post(&app, "/v1/messages", &hello("claude-sonnet-4-5-20250929")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(
        body["model"], "claude-sonnet-4-5-20250929",
        "the name the client sent"
    );
    assert!(body["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(
        body["content"],
        json!([{"type": "text", "text": "Echo: hello there"}])
    );
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["usage"]["input_tokens"], 2);
    assert_eq!(body["usage"]["output_tokens"], 3);
    let call = &app.mock.calls()[0];
    assert_eq!(
        call.path, "/v1beta/models/gemini-2.5-pro:generateContent",
        "*sonnet* is served by gemini-2.5-pro"
    );
    assert_eq!(
        call.body["generationConfig"],
        json!({"maxOutputTokens": 256})
    );

    // Bearer works too, and under /anthropic/v1; haiku maps to flash; a Gemini name passes.
    let (status, _) = status_and_json(
        app.http
            .post(app.url("/anthropic/v1/messages"))
            .bearer_auth(CLIENT_TOKEN)
            .json(&hello("claude-3-5-haiku-latest"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(app.mock.calls()[1].path.contains("/gemini-2.5-flash:"));
    assert_eq!(
        post(&app, "/v1/messages", &hello("gemini-2.5-flash-lite"))
            .await
            .0,
        200
    );
    assert!(app.mock.calls()[2].path.contains("/gemini-2.5-flash-lite:"));

    // metadata.user_id is the request's label in its row, beside the token's name.
    let mut labelled = hello("claude-sonnet-4-5");
    labelled["metadata"] = json!({"user_id": "user-7"});
    assert_eq!(post(&app, "/v1/messages", &labelled).await.0, 200);
    app.eventually("the labelled row", async || {
        app.db
            .texts("SELECT client_label AS text FROM request_logs WHERE request_path = '/v1/messages' AND client_label <> ''")
            .await
            == ["user-7"]
    })
    .await;

    // The map is a runtime setting.
    app.put_setting(
        "ANTHROPIC_MODEL_MAP",
        json!({"claude-*": "gemini-2.0-flash-exp"}),
    )
    .await;
    app.eventually("the new model map", async || {
        post(&app, "/v1/messages", &hello("claude-opus-4-1"))
            .await
            .0
            == 200
            && app
                .mock
                .calls()
                .last()
                .unwrap()
                .path
                .contains("/gemini-2.0-flash-exp:")
    })
    .await;

    // Streamed: Anthropic's event sequence, the text in order.
    let mut streamed = hello("claude-sonnet-4-5");
    streamed["stream"] = json!(true);
    streamed["model"] = json!("gemini-2.5-flash");
    let events = stream(&app, &streamed).await;
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names[..3], ["message_start", "ping", "content_block_start"]);
    assert_eq!(
        names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    assert!(
        names[3..names.len() - 3]
            .iter()
            .all(|name| *name == "content_block_delta")
    );
    let text: String = events
        .iter()
        .filter_map(|(_, data)| data["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "Echo: hello there");
    let (_, delta) = &events[events.len() - 2];
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 3);
    assert_eq!(events[0].1["message"]["model"], "gemini-2.5-flash");

    // count_tokens: through the pool, with the system prompt and tools in the count request.
    let count = json!({"model": "claude-haiku-4-5", "system": "be brief",
        "messages": [{"role": "user", "content": "one two three four"}]});
    let (status, body) = post(&app, "/v1/messages/count_tokens", &count).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"input_tokens": 4}));
    let call = app.mock.calls().last().unwrap().clone();
    assert!(call.path.ends_with(":countTokens"));
    assert_eq!(
        call.body["generateContentRequest"]["systemInstruction"],
        json!({"parts": [{"text": "be brief"}]})
    );

    // The model list in Anthropic's shape for Anthropic's SDKs, OpenAI's for the others.
    let list: Value = app
        .http
        .get(app.url("/v1/models"))
        .header("x-api-key", CLIENT_TOKEN)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["has_more"], false);
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|model| model["type"] == "model" && model["id"] == "gemini-2.5-pro")
    );
    assert_eq!(list["first_id"], list["data"][0]["id"]);
    let openai: Value = app
        .http
        .get(app.url("/v1/models"))
        .bearer_auth(CLIENT_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openai["object"], "list");
    app.stop().await;
}
two_setups!(messages, message_whole_streamed_and_counted);

async fn tool_round_trip_on_gemini_3(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend)
        .setting(
            "ANTHROPIC_MODEL_MAP",
            r#"{"*opus*": "gemini-3-pro-preview"}"#,
        )
        .spawn()
        .await;
    let tools = json!([{"name": "weather", "description": "Weather of a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]);
    for thinking in [false, true] {
        let mut first = json!({"model": "claude-opus-4-1", "max_tokens": 4096, "tools": tools,
            "messages": [{"role": "user", "content": "Paris"}]});
        if thinking {
            first["thinking"] = json!({"type": "enabled", "budget_tokens": 2048});
        }
        let (status, body) = post(&app, "/v1/messages", &first).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["stop_reason"], "tool_use");
        let content = body["content"].as_array().unwrap().clone();
        let tool_use = content
            .iter()
            .find(|block| block["type"] == "tool_use")
            .unwrap();
        assert_eq!(tool_use["name"], "weather");
        assert_eq!(tool_use["input"], json!({"city": "Paris"}));
        if thinking {
            assert_eq!(
                content[0],
                json!({"type": "thinking", "thinking": "Thinking it over.", "signature": "c2lnLWZvci1mdW5jdGlvbi1jYWxs"}),
                "the thoughts, closed by the signature of the call after them"
            );
            assert_eq!(content[1]["type"], "tool_use");
        } else {
            assert_eq!(
                content.len(),
                1,
                "no thinking block unless asked: {content:?}"
            );
        }
        // The client gives the assistant's content back as it got it, with the tool's result.
        let mut second = first.clone();
        second["messages"] = json!([
            {"role": "user", "content": "Paris"},
            {"role": "assistant", "content": content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use["id"], "content": "{\"celsius\": 21}"}]}
        ]);
        let (status, body) = post(&app, "/v1/messages", &second).await;
        assert_eq!(status, 200, "{body}");
        let text = body["content"]
            .as_array()
            .unwrap()
            .iter()
            .find(|block| block["type"] == "text")
            .unwrap()["text"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(text.contains("celsius"), "{text}");
        let sent = app.mock.calls().last().unwrap().body.clone();
        assert_eq!(
            sent["contents"][1]["parts"][0],
            json!({"functionCall": {"name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2lnLWZvci1mdW5jdGlvbi1jYWxs"}),
            "the signature went back to Gemini (thinking: {thinking})"
        );
        assert_eq!(
            sent["contents"][2]["parts"][0]["functionResponse"],
            json!({"name": "weather", "response": {"celsius": 21}})
        );
    }
    // Without the signature, Gemini 3 refuses; the client gets Google's reason in Anthropic's shape.
    let stripped = json!({"model": "claude-opus-4-1", "max_tokens": 100, "tools": tools, "messages": [
        {"role": "user", "content": "Paris"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01abc", "name": "weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01abc", "content": "sunny"}]}
    ]});
    let (status, body) = post(&app, "/v1/messages", &stripped).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("thought_signature"),
        "{body}"
    );

    // Streamed, the tool use arrives as one block with its arguments as one JSON delta.
    let mut streamed = json!({"model": "claude-opus-4-1", "max_tokens": 100, "tools": tools, "stream": true,
        "messages": [{"role": "user", "content": "Rome"}]});
    streamed["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
    let events = stream(&app, &streamed).await;
    let start = events
        .iter()
        .find(|(_, data)| data["content_block"]["type"] == "tool_use")
        .unwrap();
    assert_eq!(start.1["content_block"]["name"], "weather");
    let arguments: String = events
        .iter()
        .filter_map(|(_, data)| data["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        json!({"city": "Rome"})
    );
    assert!(
        events
            .iter()
            .any(|(_, data)| data["delta"]["type"] == "signature_delta")
    );
    assert_eq!(
        events[events.len() - 2].1["delta"]["stop_reason"],
        "tool_use"
    );
    app.stop().await;
}
two_setups!(tool_round_trip, tool_round_trip_on_gemini_3);

async fn errors_in_anthropic_shape(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend)
        .setting("MAX_RETRIES", "2")
        .spawn()
        .await;
    let shape = |body: &Value, kind: &str| {
        assert_eq!(body["type"], "error", "{body}");
        assert_eq!(body["error"]["type"], kind, "{body}");
        assert!(body["error"]["message"].is_string(), "{body}");
    };
    let unauthorized = app
        .http
        .post(app.url("/v1/messages"))
        .header("x-api-key", "sk-wrong")
        .json(&hello("claude-sonnet-4-5"))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(unauthorized).await;
    assert_eq!(status, 401);
    shape(&body, "authentication_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("x-api-key")
    );

    let malformed = anthropic_post(&app, "/v1/messages", &json!(null))
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(malformed).await;
    assert_eq!(status, 400);
    shape(&body, "invalid_request_error");

    let mut no_max = hello("claude-sonnet-4-5");
    no_max.as_object_mut().unwrap().remove("max_tokens");
    let (status, body) = post(&app, "/v1/messages", &no_max).await;
    assert_eq!(status, 400);
    shape(&body, "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens")
    );

    let (status, body) = post(&app, "/anthropic/v1/nothing", &json!({})).await;
    assert_eq!(status, 404);
    shape(&body, "not_found_error");

    let (status, body) = post(&app, "/v1/messages", &hello("gemini-0-unknown")).await;
    assert_eq!(status, 404, "{body}");
    shape(&body, "not_found_error");

    // Every key at its quota: 429 with retry-after, as the upstream said.
    for key in &app.keys {
        app.mock.set_behavior(
            key,
            Behavior::Quota {
                retry_delay_seconds: Some(30.0),
            },
        );
    }
    let response = anthropic_post(&app, "/v1/messages", &hello("claude-haiku-4-5"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().get("retry-after").is_some());
    let (_, body) = status_and_json(response).await;
    shape(&body, "rate_limit_error");
    app.stop().await;

    // Google's 503 (overloaded) is Anthropic's 529, which its clients retry; a stream too.
    let app = TestApp::builder(mode, backend)
        .setting("MAX_RETRIES", "2")
        .spawn()
        .await;
    for key in &app.keys {
        app.mock
            .set_behavior(key, Behavior::ServerError { status: 503 });
    }
    let (status, body) = post(&app, "/v1/messages", &hello("claude-haiku-4-5")).await;
    assert_eq!(status, 529, "{body}");
    shape(&body, "overloaded_error");
    let mut streamed = hello("claude-haiku-4-5");
    streamed["stream"] = json!(true);
    let (status, body) = post(&app, "/v1/messages", &streamed).await;
    assert_eq!(status, 529, "{body}");
    shape(&body, "overloaded_error");
    app.stop().await;
}
two_setups!(errors, errors_in_anthropic_shape);

/// A stream cut by the upstream after its first chunk ends with an `error` event, and no text
/// is sent twice.
async fn a_stream_cut_after_its_first_chunk_ends_with_an_error_event(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    for key in &app.keys {
        app.mock
            .set_behavior(key, Behavior::CutStreamAfter { chunks: 1 });
    }
    let mut streamed = hello("claude-haiku-4-5");
    streamed["stream"] = json!(true);
    let events = stream(&app, &streamed).await;
    let (name, last) = events.last().unwrap();
    assert_eq!(name, "error", "{events:?}");
    assert!(last["error"]["type"].is_string());
    assert!(!events.iter().any(|(name, _)| name == "message_stop"));
    let texts: Vec<&str> = events
        .iter()
        .filter_map(|(_, data)| data["delta"]["text"].as_str())
        .collect();
    assert_eq!(texts.len(), 1, "the first chunk once: {texts:?}");
    assert_eq!(
        app.mock.calls().len(),
        1,
        "not retried after the first byte"
    );
    app.stop().await;
}
two_setups!(
    stream_cut,
    a_stream_cut_after_its_first_chunk_ends_with_an_error_event
);
