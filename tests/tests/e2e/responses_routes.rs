//! OpenAI's Responses API over real HTTP: a response whole and streamed (its typed events),
//! kept and read back, continued with `previous_response_id`, deleted, each caller's own; a
//! function call round trip on Gemini 3 with its thought signature; errors in OpenAI's shape.

use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, Backend, CLIENT_TOKEN, Mode, TestApp, status_and_json};
use crate::two_setups;

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = app.http.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    status_and_json(request.send().await.unwrap()).await
}

async fn create(app: &TestApp, body: &Value) -> (u16, Value) {
    send(
        app,
        reqwest::Method::POST,
        "/v1/responses",
        CLIENT_TOKEN,
        Some(body),
    )
    .await
}

/// A stream's events as (name, data), checking the SSE framing and the sequence numbers.
async fn stream(app: &TestApp, body: &Value) -> Vec<(String, Value)> {
    let response = app
        .http
        .post(app.url("/v1/responses"))
        .bearer_auth(CLIENT_TOKEN)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = response.text().await.unwrap();
    let events: Vec<(String, Value)> = text
        .split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| {
            let (name, data) = event.split_once('\n').unwrap();
            let name = name.strip_prefix("event: ").unwrap().to_owned();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(data["type"], name.as_str());
            (name, data)
        })
        .collect();
    for (position, (_, data)) in events.iter().enumerate() {
        assert_eq!(data["sequence_number"], position as u64);
    }
    events
}

fn output_text(response: &Value) -> String {
    response["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["type"] == "message")
        .flat_map(|item| item["content"].as_array().unwrap().iter())
        .filter_map(|part| part["text"].as_str())
        .collect()
}

async fn responses_kept_continued_and_deleted(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    let (status, first) = create(
        &app,
        &json!({"model": "gemini-2.5-flash", "input": "hello there", "instructions": "be brief"}),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["object"], "response");
    assert_eq!(first["status"], "completed");
    assert_eq!(first["model"], "gemini-2.5-flash");
    assert!(first["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(output_text(&first), "Echo: hello there");
    assert_eq!(first["usage"]["input_tokens"], 2);
    assert_eq!(first["usage"]["output_tokens"], 3);
    assert_eq!(first["instructions"], "be brief");
    assert_eq!(
        app.mock.calls()[0].body["systemInstruction"],
        json!({"parts": [{"text": "be brief"}]})
    );
    let id = first["id"].as_str().unwrap().to_owned();

    // Kept: read back as it was answered; another caller does not see it.
    let (status, read) = send(
        &app,
        reqwest::Method::GET,
        &format!("/v1/responses/{id}"),
        CLIENT_TOKEN,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(read, first);
    let (status, other) = send(
        &app,
        reqwest::Method::GET,
        &format!("/v1/responses/{id}"),
        ADMIN_TOKEN,
        None,
    )
    .await;
    assert_eq!(status, 404, "{other}");
    assert_eq!(other["error"]["type"], "not_found_error");

    // Continued: the stored conversation comes first, the instructions do not carry over.
    let (status, second) = create(
        &app,
        &json!({"model": "gemini-2.5-flash", "input": "and again", "previous_response_id": id}),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["previous_response_id"], id.as_str());
    let sent = app.mock.calls()[1].body.clone();
    assert_eq!(
        sent["contents"],
        json!([
            {"role": "user", "parts": [{"text": "hello there"}]},
            {"role": "model", "parts": [{"text": "Echo: hello there", "thoughtSignature": "c2lnbmF0dXJlLW9mLXRoZS1tb2Nr"}]},
            {"role": "user", "parts": [{"text": "and again"}]}
        ])
    );
    assert!(sent.get("systemInstruction").is_none());
    let (status, refused) = send(
        &app,
        reqwest::Method::POST,
        "/v1/responses",
        ADMIN_TOKEN,
        Some(&json!({"model": "gemini-2.5-flash", "input": "x", "previous_response_id": id})),
    )
    .await;
    assert_eq!(
        status, 400,
        "another caller's response is no previous: {refused}"
    );
    assert_eq!(refused["error"]["param"], "previous_response_id");

    // `user` is the request's label in its row.
    let (status, _) = create(
        &app,
        &json!({"model": "gemini-2.5-flash", "input": "x", "user": "user-8", "store": false}),
    )
    .await;
    assert_eq!(status, 200);
    app.eventually("the labelled row", async || {
        app.db
            .texts("SELECT client_label AS text FROM request_logs WHERE request_path = '/v1/responses' AND client_label <> ''")
            .await
            == ["user-8"]
    })
    .await;

    // store: false keeps nothing.
    let (_, unkept) = create(
        &app,
        &json!({"model": "gemini-2.5-flash", "input": "x", "store": false}),
    )
    .await;
    assert_eq!(unkept["store"], false);
    let path = format!("/v1/responses/{}", unkept["id"].as_str().unwrap());
    assert_eq!(
        send(&app, reqwest::Method::GET, &path, CLIENT_TOKEN, None)
            .await
            .0,
        404
    );

    // Deleted: once, by its caller.
    let path = format!("/v1/responses/{id}");
    assert_eq!(
        send(&app, reqwest::Method::DELETE, &path, ADMIN_TOKEN, None)
            .await
            .0,
        404
    );
    let (status, deleted) = send(&app, reqwest::Method::DELETE, &path, CLIENT_TOKEN, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        deleted,
        json!({"id": id, "object": "response", "deleted": true})
    );
    assert_eq!(
        send(&app, reqwest::Method::GET, &path, CLIENT_TOKEN, None)
            .await
            .0,
        404
    );
    assert_eq!(
        send(&app, reqwest::Method::DELETE, &path, CLIENT_TOKEN, None)
            .await
            .0,
        404
    );

    // Streamed: Responses' typed events, the text in order, the response kept at the end.
    let events = stream(
        &app,
        &json!({"model": "gemini-2.5-flash", "input": "one two three", "stream": true}),
    )
    .await;
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names[..4],
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added"
        ]
    );
    assert_eq!(
        names[names.len() - 4..],
        [
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    let text: String = events
        .iter()
        .filter(|(name, _)| name == "response.output_text.delta")
        .map(|(_, data)| data["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Echo: one two three");
    let completed = &events.last().unwrap().1["response"];
    assert_eq!(output_text(completed), "Echo: one two three");
    assert_eq!(completed["usage"]["output_tokens"], 4);
    let path = format!("/v1/responses/{}", completed["id"].as_str().unwrap());
    let (status, read) = send(&app, reqwest::Method::GET, &path, CLIENT_TOKEN, None).await;
    assert_eq!(status, 200);
    assert_eq!(&read, completed);
    app.stop().await;
}
two_setups!(kept, responses_kept_continued_and_deleted);

async fn function_call_round_trip_on_gemini_3(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    let tools = json!([{"type": "function", "name": "weather", "description": "Weather of a city", "strict": true,
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}}]);
    let (status, first) = create(
        &app,
        &json!({"model": "gemini-3-pro-preview", "input": "Paris", "tools": tools, "store": false}),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let output = first["output"].as_array().unwrap().clone();
    let reasoning = output
        .iter()
        .find(|item| item["type"] == "reasoning")
        .unwrap();
    assert_eq!(
        reasoning["encrypted_content"],
        "c2lnLWZvci1mdW5jdGlvbi1jYWxs"
    );
    let call = output
        .iter()
        .find(|item| item["type"] == "function_call")
        .unwrap()
        .clone();
    assert_eq!(call["name"], "weather");
    assert_eq!(
        serde_json::from_str::<Value>(call["arguments"].as_str().unwrap()).unwrap(),
        json!({"city": "Paris"})
    );

    // Given back as Codex does (store false, the items whole), or only the call (its id
    // carries the signature): Gemini 3 gets the signature either way.
    for with_reasoning in [true, false] {
        let mut input = vec![json!({"role": "user", "content": "Paris"})];
        if with_reasoning {
            input.push(reasoning.clone());
        }
        input.push(call.clone());
        input.push(json!({"type": "function_call_output", "call_id": call["call_id"], "output": "{\"celsius\": 21}"}));
        let (status, second) = create(&app, &json!({"model": "gemini-3-pro-preview", "input": input, "tools": tools, "store": false})).await;
        assert_eq!(status, 200, "{second}");
        assert!(output_text(&second).contains("celsius"));
        let sent = app.mock.calls().last().unwrap().body.clone();
        assert_eq!(
            sent["contents"][1]["parts"][0]["thoughtSignature"],
            "c2lnLWZvci1mdW5jdGlvbi1jYWxs"
        );
        assert_eq!(
            sent["contents"][2]["parts"][0]["functionResponse"],
            json!({"name": "weather", "response": {"celsius": 21}})
        );
    }

    // With previous_response_id, the output alone answers the call (its name is the stored one's).
    let (_, kept) = create(
        &app,
        &json!({"model": "gemini-3-pro-preview", "input": "Rome", "tools": tools}),
    )
    .await;
    let call = kept["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["type"] == "function_call")
        .unwrap()
        .clone();
    let (status, answer) = create(&app, &json!({"model": "gemini-3-pro-preview", "tools": tools, "previous_response_id": kept["id"],
        "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}]})).await;
    assert_eq!(status, 200, "{answer}");
    assert!(output_text(&answer).contains("sunny"));

    // Or by item reference, as the AI SDK gives back what was kept (and another caller cannot).
    let input = json!([
        {"role": "user", "content": "Rome"},
        {"type": "item_reference", "id": call["id"]},
        {"type": "function_call_output", "call_id": call["call_id"], "output": "windy"}
    ]);
    let referenced = json!({"model": "gemini-3-pro-preview", "tools": tools, "input": input});
    let (status, answer) = create(&app, &referenced).await;
    assert_eq!(status, 200, "{answer}");
    assert!(output_text(&answer).contains("windy"));
    let sent = app.mock.calls().last().unwrap().body.clone();
    assert_eq!(
        sent["contents"][1]["parts"][0]["thoughtSignature"],
        "c2lnLWZvci1mdW5jdGlvbi1jYWxs"
    );
    let (status, _) = send(
        &app,
        reqwest::Method::POST,
        "/v1/responses",
        ADMIN_TOKEN,
        Some(&referenced),
    )
    .await;
    assert_eq!(status, 400, "another caller's items are not found");

    // Streamed: the call as one arguments delta.
    let events = stream(
        &app,
        &json!({"model": "gemini-3-pro-preview", "input": "Oslo", "tools": tools, "stream": true}),
    )
    .await;
    let arguments: String = events
        .iter()
        .filter(|(name, _)| name == "response.function_call_arguments.delta")
        .map(|(_, data)| data["delta"].as_str().unwrap())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        json!({"city": "Oslo"})
    );
    assert_eq!(events.last().unwrap().0, "response.completed");
    app.stop().await;
}
two_setups!(function_calls, function_call_round_trip_on_gemini_3);

async fn errors_in_openai_shape(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    let check = |body: &Value| {
        assert!(body["error"]["message"].is_string(), "{body}");
        assert!(body["error"]["type"].is_string(), "{body}");
    };
    let (status, body) = send(
        &app,
        reqwest::Method::POST,
        "/v1/responses",
        "sk-wrong",
        Some(&json!({"model": "m", "input": "x"})),
    )
    .await;
    assert_eq!(status, 401);
    check(&body);
    let (status, body) = create(
        &app,
        &json!({"model": "gemini-2.5-flash", "input": "x", "previous_response_id": "resp_nothing"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "previous_response_id");
    let (status, body) = create(
        &app,
        &json!({"model": "gemini-2.5-flash", "input": [{"type": "item_reference", "id": "msg_1"}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["param"], "input[0].id",
        "an item no kept response holds"
    );
    let (status, body) = create(
        &app,
        &json!({"model": "gemini-2.5-flash", "input": "x", "background": true}),
    )
    .await;
    assert_eq!(status, 400);
    check(&body);
    let (status, body) = create(&app, &json!({"input": "x"})).await;
    assert_eq!(status, 400, "no model");
    check(&body);
    let (status, body) = create(&app, &json!({"model": "gemini-0-unknown", "input": "x"})).await;
    assert_eq!(status, 404, "{body}");
    check(&body);
    app.stop().await;
}
two_setups!(errors, errors_in_openai_shape);
