//! The OpenAI-format surface over real HTTP: chat (plain, streamed, tools with thought
//! signatures, media, JSON mode), model variants, models, embeddings, images, speech, the
//! pass-through to Google's OpenAI layer, the simple chat endpoints, and OpenAI-shaped errors.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use gb_tests::mock_gemini::Behavior;
use serde_json::{Value, json};

use crate::harness::{Backend, CLIENT_TOKEN, Mode, TestApp, new_key, status_and_json};
use crate::two_setups;

async fn post(app: &TestApp, path: &str, body: &Value) -> (u16, Value) {
    let response = app
        .http
        .post(app.url(path))
        .bearer_auth(CLIENT_TOKEN)
        .json(body)
        .send()
        .await
        .unwrap();
    status_and_json(response).await
}

/// A GET with the client token as Bearer; the JSON answer.
async fn get_json(app: &TestApp, path: &str) -> Value {
    app.http
        .get(app.url(path))
        .bearer_auth(CLIENT_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn stream_events(app: &TestApp, path: &str, body: &Value) -> Vec<String> {
    let response = app
        .http
        .post(app.url(path))
        .bearer_auth(CLIENT_TOKEN)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = response.text().await.unwrap();
    text.split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

fn assert_openai_error(body: &Value) {
    assert!(body["error"]["message"].is_string(), "{body}");
    assert!(body["error"]["type"].is_string(), "{body}");
    assert!(body["error"].get("param").is_some(), "{body}");
}

fn user(text: &str) -> Value {
    json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": text}]})
}

async fn chat_plain_and_streamed(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    for prefix in ["/v1", "/hf/v1"] {
        let (status, body) = post(
            &app,
            &format!("{prefix}/chat/completions"),
            &user("hello there"),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(
            body["choices"][0]["message"]["content"],
            "Echo: hello there"
        );
        assert_eq!(body["choices"][0]["finish_reason"], "stop");
        assert_eq!(body["usage"]["prompt_tokens"], 2);
    }
    assert_eq!(
        app.mock.calls()[0].body,
        json!({"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}),
        "nothing injected"
    );

    let mut request = user("one two three four");
    request["stream"] = json!(true);
    request["stream_options"] = json!({"include_usage": true});
    let events = stream_events(&app, "/v1/chat/completions", &request).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|event| serde_json::from_str(event).unwrap())
        .collect();
    assert!(chunks.len() >= 4, "{events:?}");
    assert!(
        chunks
            .iter()
            .all(|chunk| chunk["id"] == chunks[0]["id"]
                && chunk["object"] == "chat.completion.chunk")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Echo: one two three four");
    let finishing: Vec<&Value> = chunks
        .iter()
        .filter(|chunk| !chunk["choices"][0]["finish_reason"].is_null())
        .collect();
    assert_eq!(finishing.len(), 1);
    assert_eq!(finishing[0]["choices"][0]["finish_reason"], "stop");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["prompt_tokens"], 4);
    app.stop().await;
}
two_setups!(chat, chat_plain_and_streamed);

async fn tool_round_trip_keeps_thought_signatures(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    let tools = json!([{"type": "function", "function": {"name": "weather", "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}}}]);
    let first = json!({"model": "gemini-3-pro-preview", "messages": [{"role": "user", "content": "Paris"}], "tools": tools, "tool_choice": "auto"});
    let (status, body) = post(&app, "/v1/chat/completions", &first).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    let call = body["choices"][0]["message"]["tool_calls"][0].clone();
    assert_eq!(call["function"]["name"], "weather");
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"city": "Paris"})
    );
    assert_eq!(
        call["extra_content"]["google"]["thought_signature"],
        "c2lnLWZvci1mdW5jdGlvbi1jYWxs"
    );
    let sent_tools = &app.mock.calls()[0].body;
    assert!(
        sent_tools["tools"][0]["functionDeclarations"][0]["parameters"]
            .get("additionalProperties")
            .is_none()
    );
    assert_eq!(
        sent_tools["toolConfig"]["functionCallingConfig"]["mode"],
        "AUTO"
    );

    // The client sends the call back as most clients do: id only, extra_content dropped.
    let second = json!({"model": "gemini-3-pro-preview", "tools": tools, "messages": [
        {"role": "user", "content": "Paris"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": call["id"], "type": "function", "function": call["function"]}]},
        {"role": "tool", "tool_call_id": call["id"], "content": "{\"temperature\": 21}"}
    ]});
    let (status, body) = post(&app, "/v1/chat/completions", &second).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("temperature")
    );
    let sent = &app.mock.calls()[1].body;
    let model_turn = &sent["contents"][1];
    assert_eq!(model_turn["role"], "model");
    assert_eq!(
        model_turn["parts"][0]["thoughtSignature"], "c2lnLWZvci1mdW5jdGlvbi1jYWxs",
        "the signature went back to Gemini"
    );
    assert_eq!(
        sent["contents"][2]["parts"][0]["functionResponse"],
        json!({"name": "weather", "response": {"temperature": 21}})
    );

    // Streamed, the call arrives as one tool-call delta.
    let mut streamed = first.clone();
    streamed["stream"] = json!(true);
    let events = stream_events(&app, "/v1/chat/completions", &streamed).await;
    let chunks: Vec<Value> = events
        .iter()
        .filter(|event| *event != "[DONE]")
        .map(|event| serde_json::from_str(event).unwrap())
        .collect();
    let delta_call = chunks
        .iter()
        .find_map(|chunk| {
            chunk["choices"][0]["delta"]["tool_calls"]
                .as_array()
                .cloned()
        })
        .unwrap();
    assert_eq!(delta_call[0]["index"], 0);
    assert_eq!(delta_call[0]["function"]["name"], "weather");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
    app.stop().await;
}
two_setups!(tools, tool_round_trip_keeps_thought_signatures);

async fn media_json_and_reasoning(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend)
        .setting("FETCH_PRIVATE_URLS", "true")
        .spawn()
        .await;
    let image_url = format!("http://{}/_mock/image.png", app.mock.addr);
    let request = json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="}},
        {"type": "image_url", "image_url": {"url": image_url}}
    ]}]});
    let (status, body) = post(&app, "/v1/chat/completions", &request).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .matches("saw image/png")
            .count(),
        2
    );

    let mut json_mode = user("structured");
    json_mode["response_format"] = json!({"type": "json_object"});
    let (_, body) = post(&app, "/v1/chat/completions", &json_mode).await;
    let parsed: Value =
        serde_json::from_str(body["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(parsed["echo"], "Echo: structured");

    let mut reasoning = user("think");
    reasoning["reasoning_effort"] = json!("low");
    let (_, body) = post(&app, "/v1/chat/completions", &reasoning).await;
    assert_eq!(
        body["choices"][0]["message"]["reasoning_content"],
        "Thinking it over."
    );
    assert_eq!(
        body["usage"]["completion_tokens_details"]["reasoning_tokens"],
        3
    );
    assert_eq!(
        app.mock.calls().last().unwrap().body["generationConfig"]["thinkingConfig"]["thinkingBudget"],
        1024
    );

    let mut short = user("a b c d e f");
    short["max_tokens"] = json!(2);
    let (_, body) = post(&app, "/v1/chat/completions", &short).await;
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    app.stop().await;

    // Without FETCH_PRIVATE_URLS, a URL on a private address is refused.
    let app = TestApp::builder(mode, backend).spawn().await;
    let (status, body) = post(&app, "/v1/chat/completions", &request).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("private address")
    );
    assert!(app.mock.calls().is_empty());
    app.stop().await;
}
two_setups!(media, media_json_and_reasoning);

async fn model_variants_on_both_surfaces(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend)
        .setting("THINKING_MODELS", "[\"gemini-2.5-pro\"]")
        .setting("THINKING_BUDGET_MAP", "{\"gemini-2.5-flash\": 2048}")
        .setting(
            "SAFETY_SETTINGS",
            "[{\"category\": \"HARM_CATEGORY_HARASSMENT\", \"threshold\": \"OFF\"}]",
        )
        .spawn()
        .await;
    let (status, body) = post(&app, "/v1/chat/completions", &json!({"model": "gemini-2.5-flash-search", "messages": [{"role": "user", "content": "news"}]})).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("[Example source](https://example.com/source)")
    );
    let call = app.mock.calls().last().unwrap().clone();
    assert_eq!(call.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(call.body["tools"], json!([{"googleSearch": {}}]));
    assert_eq!(
        call.body["generationConfig"]["thinkingConfig"]["thinkingBudget"], 2048,
        "THINKING_BUDGET_MAP"
    );
    assert_eq!(
        call.body["safetySettings"][0]["threshold"], "OFF",
        "SAFETY_SETTINGS when the client sends none"
    );

    let (_, body) = post(&app, "/v1/chat/completions", &json!({"model": "gemini-2.0-flash-exp-image", "messages": [{"role": "user", "content": "draw"}]})).await;
    assert!(
        body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("![image](data:image/png;base64,")
    );
    assert_eq!(
        app.mock.calls().last().unwrap().body["generationConfig"]["responseModalities"],
        json!(["TEXT", "IMAGE"])
    );

    // The Gemini-native route applies the same handling.
    let (status, _) = app
        .gemini_post(
            "/v1beta/models/gemini-2.5-pro-non-thinking:generateContent",
            &crate::harness::hello("quiet"),
        )
        .await;
    assert_eq!(status, 200);
    let call = app.mock.calls().last().unwrap().clone();
    assert_eq!(call.path, "/v1beta/models/gemini-2.5-pro:generateContent");
    assert_eq!(
        call.body["generationConfig"]["thinkingConfig"]["thinkingBudget"],
        128
    );
    let own_safety = json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}], "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_LOW_AND_ABOVE"}]});
    app.gemini_post(
        "/v1beta/models/gemini-2.0-flash-exp:generateContent",
        &own_safety,
    )
    .await;
    assert_eq!(
        app.mock.calls().last().unwrap().body,
        own_safety,
        "the client's own safety settings are kept"
    );

    let (status, body) = post(
        &app,
        "/v1/chat/completions",
        &json!({"model": "gemini-pro-vision", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(status, 404);
    assert_openai_error(&body);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("FILTERED_MODELS")
    );

    let listed: Value = get_json(&app, "/v1/models").await;
    assert_eq!(listed["object"], "list");
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|model| model["id"].as_str().unwrap())
        .collect();
    for id in [
        "gemini-2.5-flash",
        "gemini-2.5-flash-search",
        "gemini-2.5-pro-search",
        "gemini-2.0-flash-exp-image",
        "gemini-2.5-pro-non-thinking",
    ] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    assert!(!ids.contains(&"gemini-pro-vision"));
    let gemini_shape: Value = app
        .http
        .get(app.url("/v1/models"))
        .header("x-goog-api-key", CLIENT_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        gemini_shape["models"].is_array(),
        "Gemini-family clients get Google's list on /v1/models"
    );
    let one: Value = get_json(&app, "/v1/models/gemini-2.5-flash").await;
    assert_eq!(
        one,
        json!({"id": "gemini-2.5-flash", "object": "model", "created": 0, "owned_by": "google"})
    );
    app.stop().await;
}
two_setups!(variants, model_variants_on_both_surfaces);

async fn embeddings_images_speech(mode: Mode, backend: Backend) {
    let paid = new_key();
    let app = TestApp::builder(mode, backend)
        .setting("PAID_KEY", &paid)
        .spawn()
        .await;
    let (status, body) = post(
        &app,
        "/v1/embeddings",
        &json!({"model": "gemini-embedding-001", "input": "one text", "dimensions": 4}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let floats: Vec<f64> = body["data"][0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|value| value.as_f64().unwrap())
        .collect();
    assert_eq!(floats.len(), 4);
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let (_, encoded) = post(&app, "/v1/embeddings", &json!({"model": "gemini-embedding-001", "input": ["one text", "two"], "dimensions": 4, "encoding_format": "base64"})).await;
    assert_eq!(encoded["data"].as_array().unwrap().len(), 2);
    let bytes = BASE64
        .decode(encoded["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let decoded: Vec<f64> = bytes
        .chunks(4)
        .map(|four| f64::from(f32::from_le_bytes(four.try_into().unwrap())))
        .collect();
    for (a, b) in decoded.iter().zip(&floats) {
        assert!((a - b).abs() < 1e-6, "base64 carries the same vector");
    }
    // OpenAI's names (what tools like the `llm` CLI know) are served by Gemini's model.
    for name in [
        "text-embedding-3-small",
        "text-embedding-3-large",
        "text-embedding-ada-002",
    ] {
        let (status, body) = post(
            &app,
            "/v1/embeddings",
            &json!({"model": name, "input": "one text", "dimensions": 4}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["model"], name, "the name the client sent");
        assert_eq!(
            body["data"][0]["embedding"],
            json!(floats),
            "the same model's vector"
        );
        assert!(
            app.mock
                .calls()
                .last()
                .unwrap()
                .path
                .contains("/gemini-embedding-001:")
        );
    }

    let (status, body) = post(
        &app,
        "/v1/images/generations",
        &json!({"prompt": "a cat", "n": 2, "size": "1024x1792", "response_format": "b64_json"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    assert!(
        BASE64
            .decode(body["data"][0]["b64_json"].as_str().unwrap())
            .unwrap()
            .starts_with(b"\x89PNG")
    );
    let call = app.mock.calls().last().unwrap().clone();
    assert_eq!(call.path, "/v1beta/models/imagen-3.0-generate-002:predict");
    assert_eq!(
        call.body["parameters"],
        json!({"sampleCount": 2, "aspectRatio": "9:16"})
    );
    assert_eq!(call.key, paid, "PAID_KEY for Imagen");
    let (status, body) = post(
        &app,
        "/v1/images/generations",
        &json!({"prompt": "a cat", "size": "1000x1000"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "size");

    let response = app
        .http
        .post(app.url("/v1/audio/speech"))
        .bearer_auth(CLIENT_TOKEN)
        .json(&json!({"model": "tts-1", "input": "Hello there", "voice": "kore", "speed": 1.5}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "audio/wav");
    let wav = response.bytes().await.unwrap();
    assert_eq!(&wav[..4], b"RIFF");
    assert_eq!(&wav[8..16], b"WAVEfmt ");
    assert_eq!(
        u32::from_le_bytes(wav[24..28].try_into().unwrap()),
        24_000,
        "24 kHz"
    );
    assert_eq!(
        u16::from_le_bytes(wav[22..24].try_into().unwrap()),
        1,
        "mono"
    );
    assert_eq!(
        u16::from_le_bytes(wav[34..36].try_into().unwrap()),
        16,
        "16-bit"
    );
    assert_eq!(wav.len(), 44 + 4800);
    let call = app.mock.calls().last().unwrap().clone();
    assert_eq!(
        call.path,
        "/v1beta/models/gemini-2.5-flash-preview-tts:generateContent"
    );
    assert_eq!(
        call.body["generationConfig"]["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"],
        "Kore"
    );
    assert!(
        call.body["contents"][0]["parts"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Speak in a fast speed voice")
    );
    app.stop().await;
}
two_setups!(embeddings_images_speech_routes, embeddings_images_speech);

async fn passthrough_to_googles_openai_layer(mode: Mode, backend: Backend) {
    let paid = new_key();
    let app = TestApp::builder(mode, backend)
        .setting("PAID_KEY", &paid)
        .spawn()
        .await;
    let (status, body) = post(&app, "/openai/v1/chat/completions", &json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}], "top_k": 5, "user": null})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "Echo: hi");
    let call = app.mock.calls().last().unwrap().clone();
    assert_eq!(call.path, "/v1beta/openai/chat/completions");
    assert!(app.keys.contains(&call.key), "a pool key as Bearer");
    assert!(call.body.get("top_k").is_none() && call.body.get("user").is_none());

    let events = stream_events(&app, "/openai/v1/chat/completions", &json!({"model": "gemini-2.5-flash", "stream": true, "messages": [{"role": "user", "content": "a b"}]})).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    assert_eq!(events.iter().filter(|event| *event == "[DONE]").count(), 1);

    let models: Value = get_json(&app, "/openai/v1/models").await;
    assert!(models["data"].as_array().unwrap().len() > 3);
    let (status, _) = post(
        &app,
        "/openai/v1/embeddings",
        &json!({"model": "gemini-embedding-001", "input": ["x", "y"]}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = post(
        &app,
        "/openai/v1/images/generations",
        &json!({"model": "dall-e-3", "prompt": "a dog", "n": 1}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let call = app.mock.calls().last().unwrap().clone();
    assert_eq!(call.key, paid);
    assert_eq!(call.body["model"], "imagen-3.0-generate-002");

    // Same classification as everywhere: a dead key is stepped around.
    app.mock.set_behavior(&app.keys[0], Behavior::InvalidKey);
    app.mock.set_behavior(&app.keys[1], Behavior::InvalidKey);
    let (status, body) = post(&app, "/openai/v1/chat/completions", &user("x")).await;
    assert_eq!(status, 400);
    assert_openai_error(&body);
    app.wait_for_key(0, |key| key["status"] == "disabled").await;
    app.stop().await;
}
two_setups!(passthrough, passthrough_to_googles_openai_layer);

async fn simple_chat_endpoints(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    for (path, token_header) in [
        ("/gemini/chat", "x-goog-api-key"),
        ("/openai/chat", "authorization"),
    ] {
        let token = if token_header == "authorization" {
            format!("Bearer {CLIENT_TOKEN}")
        } else {
            CLIENT_TOKEN.to_owned()
        };
        let response = app
            .http
            .post(app.url(path))
            .header(token_header, token.clone())
            .json(&json!({"message": "ping"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({"response": "Echo: ping"})
        );
        let with_model = app
            .http
            .post(app.url(path))
            .header(token_header, token.clone())
            .json(&json!({"message": "ping", "model": "gemini-2.5-pro"}))
            .send()
            .await
            .unwrap();
        assert_eq!(with_model.status(), 200);
        assert_eq!(
            app.mock.calls().last().unwrap().path,
            "/v1beta/models/gemini-2.5-pro:generateContent"
        );
        let empty = app
            .http
            .post(app.url(path))
            .header(token_header, token)
            .json(&json!({"message": " "}))
            .send()
            .await
            .unwrap();
        assert_eq!(empty.status(), 400);
        let anonymous = app
            .http
            .post(app.url(path))
            .json(&json!({"message": "ping"}))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), 401);
    }
    app.stop().await;
}
two_setups!(simple_chat, simple_chat_endpoints);

async fn errors_in_openai_shape(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    let malformed = app
        .http
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_TOKEN)
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert_openai_error(&malformed.json().await.unwrap());
    let anonymous = app
        .http
        .post(app.url("/v1/chat/completions"))
        .json(&user("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let body: Value = anonymous.json().await.unwrap();
    assert_openai_error(&body);
    assert_eq!(body["error"]["type"], "authentication_error");
    let (status, body) = post(
        &app,
        "/v1/chat/completions",
        &json!({"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(status, 404);
    assert_openai_error(&body);
    let (status, body) = post(
        &app,
        "/v1/chat/completions",
        &json!({"model": "gemini-2.5-flash", "messages": []}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "messages");
    for key in &app.keys {
        app.mock.set_behavior(
            key,
            Behavior::Quota {
                retry_delay_seconds: Some(9.0),
            },
        );
    }
    let response = app
        .http
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_TOKEN)
        .json(&user("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429, "a 429 stays a 429");
    assert_eq!(response.headers()["retry-after"], "9");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");
    app.stop().await;
}
two_setups!(errors, errors_in_openai_shape);

/// An upstream answer that is not JSON is a 502 in OpenAI's shape on every translated route,
/// never an empty 200.
async fn a_malformed_upstream_answer_is_a_502(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    for key in &app.keys {
        app.mock.set_behavior(key, Behavior::MalformedAnswer);
    }
    for (path, body) in [
        ("/v1/chat/completions", user("x")),
        (
            "/v1/embeddings",
            json!({"model": "gemini-embedding-001", "input": "x"}),
        ),
        (
            "/v1/audio/speech",
            json!({"model": "tts-1", "input": "x", "voice": "Kore"}),
        ),
    ] {
        let (status, answer) = post(&app, path, &body).await;
        assert_eq!(status, 502, "{path}: {answer}");
        assert_openai_error(&answer);
        assert_eq!(answer["error"]["type"], "api_error", "{path}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|message| message.contains("malformed JSON")),
            "{path}: {answer}"
        );
    }
    let models = app
        .http
        .get(app.url("/v1/models"))
        .bearer_auth(CLIENT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(models.status(), 502);
    app.stop().await;
}
two_setups!(malformed_upstream, a_malformed_upstream_answer_is_a_502);

/// gemini-balance's `{CREATE_IMAGE_MODEL}-chat` model and its prompt directives.
async fn image_chat_model(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    let request = json!({"model": "imagen-3.0-generate-002-chat", "messages": [
        {"role": "user", "content": "a lighthouse {n:2} at dusk {ratio:16:9}"}
    ]});
    let (status, body) = post(&app, "/v1/chat/completions", &request).await;
    assert_eq!(status, 200, "{body}");
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(
        content.matches("![image](data:image/png;base64,").count(),
        2
    );
    let call = app.mock.calls().last().unwrap().clone();
    assert_eq!(call.path, "/v1beta/models/imagen-3.0-generate-002:predict");
    assert_eq!(call.body["instances"][0]["prompt"], "a lighthouse at dusk");
    assert_eq!(
        call.body["parameters"],
        json!({"sampleCount": 2, "aspectRatio": "16:9"})
    );

    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    let events = stream_events(&app, "/v1/chat/completions", &streamed).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    let first: Value = serde_json::from_str(&events[0]).unwrap();
    assert!(
        first["choices"][0]["delta"]["content"]
            .as_str()
            .unwrap()
            .contains("![image]")
    );

    let (status, _) = post(
        &app,
        "/v1/images/generations",
        &json!({"prompt": "a cat {ratio:3:4}", "response_format": "url"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        app.mock.calls().last().unwrap().body["parameters"]["aspectRatio"],
        "3:4"
    );

    let listed: Value = get_json(&app, "/v1/models").await;
    assert!(
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|model| model["id"] == "imagen-3.0-generate-002-chat")
    );
    app.stop().await;
}
two_setups!(image_chat, image_chat_model);

/// TOOLS_CODE_EXECUTION_ENABLED, URL_CONTEXT_ENABLED, SHOW_SEARCH_LINK and video input.
async fn built_in_tools_and_search_links(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend)
        .setting("TOOLS_CODE_EXECUTION_ENABLED", "true")
        .setting("URL_CONTEXT_ENABLED", "true")
        .setting("SHOW_SEARCH_LINK", "false")
        .spawn()
        .await;
    let (status, _) = post(&app, "/v1/chat/completions", &user("compute")).await;
    assert_eq!(status, 200);
    assert_eq!(
        app.mock.calls().last().unwrap().body["tools"],
        json!([{"codeExecution": {}}, {"urlContext": {}}])
    );
    let (_, body) = post(&app, "/v1/chat/completions", &json!({"model": "gemini-2.5-flash-search", "messages": [{"role": "user", "content": "news"}]})).await;
    assert!(
        !body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("Sources"),
        "SHOW_SEARCH_LINK=false"
    );
    let video = json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what happens"},
        {"type": "input_video", "input_video": {"data": "AAAAIGZ0eXA=", "format": "mp4"}}
    ]}]});
    let (status, body) = post(&app, "/v1/chat/completions", &video).await;
    assert_eq!(status, 200, "{body}");
    let sent = app.mock.calls().last().unwrap().body.clone();
    assert_eq!(
        sent["contents"][0]["parts"][1]["inlineData"]["mimeType"],
        "video/mp4"
    );
    assert_eq!(
        sent["tools"],
        json!([{"urlContext": {}}]),
        "no code execution on media"
    );
    app.stop().await;
}
two_setups!(built_in_tools, built_in_tools_and_search_links);

/// FAKE_STREAM_ENABLED: a plain upstream call, empty keep-alive chunks until it answers.
async fn fake_streaming(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend)
        .setting("FAKE_STREAM_ENABLED", "true")
        .setting("FAKE_STREAM_EMPTY_DATA_INTERVAL_SECONDS", "0.05")
        .spawn()
        .await;
    for key in &app.keys {
        app.mock.set_behavior(key, Behavior::Slow { millis: 400 });
    }
    let mut request = user("slow answer");
    request["stream"] = json!(true);
    let events = stream_events(&app, "/v1/chat/completions", &request).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|event| serde_json::from_str(event).unwrap())
        .collect();
    let heartbeats = chunks
        .iter()
        .filter(|chunk| chunk["choices"][0]["delta"]["content"] == "")
        .count();
    assert!(
        heartbeats >= 3,
        "keep-alive chunks while waiting: {events:?}"
    );
    let text: String = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Echo: slow answer");
    assert!(chunks.iter().all(|chunk| chunk["id"] == chunks[0]["id"]));
    assert!(
        app.mock
            .calls()
            .iter()
            .all(|call| call.path.ends_with(":generateContent")),
        "a plain call upstream"
    );
    app.stop().await;
}
two_setups!(fake_stream, fake_streaming);

/// Errors axum raises itself (body too large, wrong method, unknown route) in each family's shape.
async fn framework_errors_in_the_clients_shape(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    let huge = vec![b'x'; 64 * 1024 * 1024 + 1];
    let response = app
        .http
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_TOKEN)
        .body(huge.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_openai_error(&response.json().await.unwrap());
    let response = app
        .http
        .post(app.url("/v1beta/models/gemini-2.5-flash:generateContent"))
        .header("x-goog-api-key", CLIENT_TOKEN)
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], 413);
    let response = app
        .http
        .get(app.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_openai_error(&response.json().await.unwrap());
    let response = app
        .http
        .get(app.url("/v1/no-such-route"))
        .bearer_auth(CLIENT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_openai_error(&response.json().await.unwrap());
    assert!(app.mock.calls().is_empty());
    app.stop().await;
}
two_setups!(framework_errors, framework_errors_in_the_clients_shape);
