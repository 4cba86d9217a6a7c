//! The Gemini-native routes: lossless pass-through, both stream framings, every method,
//! FILTERED_MODELS, the three ways to present a client token, errors in Google's shape.

use serde_json::json;

use crate::harness::{Backend, CLIENT_TOKEN, Mode, TestApp, hello};
use crate::two_setups;

async fn models_are_listed_without_filtered_ones(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    let response = app
        .http
        .get(app.url("/v1beta/models"))
        .header("x-goog-api-key", CLIENT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    let names: Vec<&str> = body["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|model| model["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"models/gemini-2.5-flash"));
    assert!(
        !names.contains(&"models/gemini-pro-vision"),
        "FILTERED_MODELS are hidden"
    );
    let one = app
        .http
        .get(app.url("/gemini/v1beta/models/gemini-2.5-pro"))
        .header("x-goog-api-key", CLIENT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    assert_eq!(
        one.json::<serde_json::Value>().await.unwrap()["name"],
        "models/gemini-2.5-pro"
    );
    let filtered = app
        .http
        .get(app.url("/v1beta/models/gemini-pro-vision"))
        .header("x-goog-api-key", CLIENT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(filtered.status(), 404);
    let calls = app.mock.calls().len();
    let (status, body) = app
        .gemini_post(
            "/v1beta/models/gemini-pro-vision:generateContent",
            &hello("x"),
        )
        .await;
    assert_eq!(status, 404);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("FILTERED_MODELS")
    );
    assert_eq!(
        app.mock.calls().len(),
        calls,
        "a filtered model never reaches the upstream"
    );
    app.stop().await;
}
two_setups!(models, models_are_listed_without_filtered_ones);

async fn bodies_pass_through_unchanged(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend)
        .setting("CUSTOM_HEADERS", "{\"x-custom-header\": \"from-settings\"}")
        .spawn()
        .await;
    let request = json!({
        "contents": [{"role": "user", "parts": [{"text": "keep my fields"}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
        "generationConfig": {"seed": 7, "responseJsonSchema": {"type": "object"}},
        "someFutureRequestField": {"nested": [1, 2, 3]}
    });
    let (status, body) = app
        .gemini_post("/v1beta/models/gemini-2.5-flash:generateContent", &request)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        app.mock.calls()[0].body,
        request,
        "the upstream sees exactly what the client sent"
    );
    assert_eq!(
        body["candidates"][0]["content"]["parts"][0]["text"],
        "Echo: keep my fields"
    );
    assert_eq!(
        body["candidates"][0]["content"]["parts"][0]["thoughtSignature"],
        "c2lnbmF0dXJlLW9mLXRoZS1tb2Nr"
    );
    assert_eq!(
        body["mockFutureField"]["kept"], true,
        "unknown answer fields reach the client"
    );
    assert_eq!(body["usageMetadata"]["promptTokenCount"], 3);
    app.stop().await;
}
two_setups!(pass_through, bodies_pass_through_unchanged);

async fn streams_in_both_framings(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    app.mock.set_stream_chunks(3);
    let (status, sse) = app.stream_sse("alpha beta gamma delta").await;
    assert_eq!(status, 200);
    let events: Vec<&str> = sse
        .split("\r\n\r\n")
        .filter(|event| !event.is_empty())
        .collect();
    assert_eq!(events.len(), 3, "{sse}");
    let text: String = events
        .iter()
        .map(|event| {
            let chunk: serde_json::Value =
                serde_json::from_str(event.strip_prefix("data: ").unwrap()).unwrap();
            chunk["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(text, "Echo: alpha beta gamma delta");
    assert!(app.mock.calls()[0].query.contains("alt=sse"));

    let response = app
        .http
        .post(app.url("/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent"))
        .header("x-goog-api-key", CLIENT_TOKEN)
        .json(&hello("array form"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let array: Vec<serde_json::Value> = response.json().await.unwrap();
    assert_eq!(array.len(), 3);
    assert_eq!(array[2]["candidates"][0]["finishReason"], "STOP");
    app.stop().await;
}
two_setups!(streams, streams_in_both_framings);

async fn stream_chunks_arrive_as_they_are_sent(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    app.mock.set_stream_chunks(5);
    let mut response = app
        .http
        .post(app.url("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"))
        .header("x-goog-api-key", CLIENT_TOKEN)
        .json(&hello("a b c d e f g h i j"))
        .send()
        .await
        .unwrap();
    let mut events = 0;
    let mut reads_with_events = 0;
    while let Some(bytes) = response.chunk().await.unwrap() {
        let in_read = String::from_utf8_lossy(&bytes).matches("data: ").count();
        events += in_read;
        reads_with_events += usize::from(in_read > 0);
    }
    assert_eq!(events, 5);
    // The mock sends a chunk every 5 ms: forwarded as they come, they arrive in separate reads
    // (a little slack for a loaded machine; a buffering gateway would deliver one read).
    assert!(
        reads_with_events >= 3,
        "chunks were coalesced: {reads_with_events} reads"
    );
    app.stop().await;
}
two_setups!(stream_chunks, stream_chunks_arrive_as_they_are_sent);

async fn count_and_embed(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    let (status, body) = app
        .gemini_post(
            "/v1beta/models/gemini-2.5-flash:countTokens",
            &hello("four words right here"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["totalTokens"], 4);
    let (status, body) = app
        .gemini_post(
            "/v1beta/models/gemini-embedding-001:embedContent",
            &json!({"content": {"parts": [{"text": "embed me"}]}, "outputDimensionality": 16}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["embedding"]["values"].as_array().unwrap().len(), 16);
    // Requests without their own `model` get the path's model filled in, as Google requires.
    let (status, body) = app
        .gemini_post(
            "/v1beta/models/gemini-embedding-001:batchEmbedContents",
            &json!({"requests": [
                {"content": {"parts": [{"text": "one"}]}},
                {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "two"}]}}
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["embeddings"].as_array().unwrap().len(), 2);
    app.stop().await;
}
two_setups!(count_embed, count_and_embed);

async fn client_tokens_three_ways(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    let path = "/v1beta/models/gemini-2.5-flash:generateContent";
    let header = app
        .http
        .post(app.url(path))
        .header("x-goog-api-key", CLIENT_TOKEN)
        .json(&hello("a"))
        .send()
        .await
        .unwrap();
    assert_eq!(header.status(), 200);
    let query = app
        .http
        .post(app.url(&format!("{path}?key={CLIENT_TOKEN}")))
        .json(&hello("a"))
        .send()
        .await
        .unwrap();
    assert_eq!(query.status(), 200);
    let bearer = app
        .http
        .post(app.url(path))
        .bearer_auth(CLIENT_TOKEN)
        .json(&hello("a"))
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 200);
    for response in [
        app.http
            .post(app.url(path))
            .json(&hello("a"))
            .send()
            .await
            .unwrap(),
        app.http
            .post(app.url(path))
            .header("x-goog-api-key", "wrong")
            .json(&hello("a"))
            .send()
            .await
            .unwrap(),
        app.http
            .get(app.url("/gemini/v1beta/models?key=wrong"))
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(response.status(), 401);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], 401);
        assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
    }
    assert_eq!(app.mock.calls().len(), 3);
    app.stop().await;
}
two_setups!(client_tokens, client_tokens_three_ways);

async fn bad_input_gets_google_errors(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    let malformed = app
        .http
        .post(app.url("/v1beta/models/gemini-2.5-flash:generateContent"))
        .header("x-goog-api-key", CLIENT_TOKEN)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let body: serde_json::Value = malformed.json().await.unwrap();
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    let (status, body) = app
        .gemini_post("/v1beta/models/gemini-2.5-flash:fly", &hello("x"))
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["status"], "NOT_FOUND");
    let (status, _) = app
        .gemini_post("/v1beta/models/bad%20name:generateContent", &hello("x"))
        .await;
    assert_eq!(status, 400);
    let unknown = app.http.get(app.url("/nowhere")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    assert!(
        app.mock.calls().is_empty(),
        "no bad request reaches the upstream"
    );
    let health: serde_json::Value = app
        .http
        .get(app.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "healthy");
    app.stop().await;
}
two_setups!(bad_input, bad_input_gets_google_errors);

/// A body nested deeper than Google accepts is the client's own error: 400 at the gateway, no
/// upstream call, no key charged, on both families' routes.
async fn a_too_deep_body_is_refused_before_any_key(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    let deep = format!(
        r#"{{"contents":[{{"parts":[{{"text":"x"}}]}}],"x":{}0{}}}"#,
        "[".repeat(110),
        "]".repeat(110)
    );
    let gemini = app
        .http
        .post(app.url("/v1beta/models/gemini-2.5-flash:generateContent"))
        .header("x-goog-api-key", CLIENT_TOKEN)
        .body(deep.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(gemini.status(), 400);
    let body: serde_json::Value = gemini.json().await.unwrap();
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT", "{body}");
    let openai = app
        .http
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_TOKEN)
        .body(format!(
            r#"{{"model":"gemini-2.5-flash","messages":[{{"role":"user","content":"x"}}],"x":{}0{}}}"#,
            "[".repeat(110),
            "]".repeat(110)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(openai.status(), 400);
    let body: serde_json::Value = openai.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    assert!(app.mock.calls().is_empty(), "no upstream call");
    for key in app.key_states().await {
        assert_eq!(key["failure_total"], 0);
    }
    app.stop().await;
}
two_setups!(too_deep, a_too_deep_body_is_refused_before_any_key);

/// An upstream error that is not JSON (a relay's page) reaches a Gemini client with its own
/// content type, not labelled as JSON.
async fn a_relays_error_page_keeps_its_content_type(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    for key in &app.keys {
        app.mock.set_behavior(
            key,
            gb_tests::mock_gemini::Behavior::RelayError { status: 502 },
        );
    }
    let answer = app
        .http
        .post(app.url("/v1beta/models/gemini-2.5-flash:generateContent"))
        .header("x-goog-api-key", CLIENT_TOKEN)
        .json(&crate::harness::hello("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 502);
    assert_eq!(answer.headers()["content-type"], "text/html; charset=utf-8");
    assert!(answer.text().await.unwrap().contains("Relay error"));
    app.stop().await;
}
two_setups!(relay_error, a_relays_error_page_keeps_its_content_type);
