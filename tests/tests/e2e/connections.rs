//! Hostile connections held off: slow headers (slowloris), silent and idle connections, more
//! connections than the cap, a body declared too large, a body sent too slowly. Raw TCP, so
//! that the client can misbehave as an attacker would.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{Backend, CLIENT_TOKEN, Mode, TestApp};

async fn connect(app: &TestApp) -> TcpStream {
    let address = app.base_url.trim_start_matches("http://");
    TcpStream::connect(address).await.unwrap()
}

/// Waits for the server to close the connection (end of stream or reset), reading and
/// discarding whatever it sends first; panics if it stays open for `limit`.
async fn closed_by_the_server(stream: &mut TcpStream, limit: Duration, what: &str) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(count) => received.extend_from_slice(&buffer[..count]),
            }
        }
    };
    assert!(
        tokio::time::timeout(limit, read_all).await.is_ok(),
        "the server kept the connection open: {what}"
    );
    received
}

async fn held_off_app(settings: &[(&str, &str)]) -> TestApp {
    let mut builder = TestApp::builder(Mode::AllInOne, Backend::Sqlite);
    for (name, value) in settings {
        builder = builder.setting(name, value);
    }
    builder.spawn().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_silent_connections_are_cut_off() {
    let app = held_off_app(&[("HEADER_READ_TIMEOUT", "0.5")]).await;
    // Slowloris: a header byte every 100 ms, never the end of the headers.
    let mut slow = connect(&app).await;
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let dripping = async {
        for _ in 0..100 {
            if slow.write_all(b"X").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), dripping)
        .await
        .ok();
    closed_by_the_server(&mut slow, Duration::from_secs(5), "slow headers").await;
    // A connection that never says anything.
    let mut silent = connect(&app).await;
    closed_by_the_server(&mut silent, Duration::from_secs(5), "silent").await;
    // A kept-alive connection, idle after its request.
    let mut idle = connect(&app).await;
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer =
        closed_by_the_server(&mut idle, Duration::from_secs(5), "idle after a request").await;
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "served first"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_connections_new_ones_are_refused_at_once() {
    let app = held_off_app(&[("MAX_CONNECTIONS", "3"), ("HEADER_READ_TIMEOUT", "60")]).await;
    // The harness's own client may hold kept-alive connections: take the rest of the cap.
    let mut held = Vec::new();
    loop {
        let mut stream = connect(&app).await;
        let mut byte = [0u8; 1];
        match tokio::time::timeout(Duration::from_millis(300), stream.read(&mut byte)).await {
            // Still open after a while: it holds a place.
            Err(_) => held.push(stream),
            // Closed at once: the cap is reached.
            Ok(_) => break,
        }
        assert!(
            held.len() <= 3,
            "more connections than MAX_CONNECTIONS were kept"
        );
    }
    let mut refused = connect(&app).await;
    closed_by_the_server(&mut refused, Duration::from_secs(1), "past the cap").await;
    // One place given back: a new client is served again.
    drop(held.pop());
    app.eventually("a place is free again", || async {
        let Ok(mut stream) = TcpStream::connect(app.base_url.trim_start_matches("http://")).await
        else {
            return false;
        };
        if stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .is_err()
        {
            return false;
        }
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut answer)).await;
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200")
    })
    .await;
    drop(held);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_declared_too_large_is_refused_before_it_is_sent() {
    let app = held_off_app(&[]).await;
    let mut stream = connect(&app).await;
    let request = format!(
        "POST /v1beta/models/gemini-2.5-flash:generateContent HTTP/1.1\r\nHost: x\r\nx-goog-api-key: {CLIENT_TOKEN}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        100 * 1024 * 1024
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // Not a byte of the body is sent: the answer comes from the header alone.
    let mut answer = vec![0u8; 4096];
    let count = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("answered without waiting for the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..count]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("\"status\":\"RESOURCE_EXHAUSTED\""),
        "in Google's shape: {answer}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_too_slowly_is_cut_off_as_a_whole() {
    let app = held_off_app(&[("BODY_READ_TIMEOUT", "0.5")]).await;
    let mut stream = connect(&app).await;
    let request = format!(
        "POST /v1beta/models/gemini-2.5-flash:generateContent HTTP/1.1\r\nHost: x\r\nx-goog-api-key: {CLIENT_TOKEN}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // A byte every 100 ms: each frame is quick, the whole body is not.
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    for _ in 0..99 {
        let _ = stream.write_all(b" ").await;
        if let Ok(Ok(count)) =
            tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buffer)).await
            && count > 0
        {
            answer.extend_from_slice(&buffer[..count]);
            break;
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(app.mock.calls().is_empty(), "nothing went upstream");
    drop(stream);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uri_or_headers_too_large_are_refused_in_the_family_shape() {
    let app = held_off_app(&[]).await;
    // 20 KiB of query: under hyper's own limit (which answers with no body), over the gateway's.
    let long_query = format!("pad={}", "a".repeat(20 * 1024));
    let gemini = app
        .http
        .post(format!(
            "{}/v1beta/models/gemini-2.5-flash:generateContent?{long_query}",
            app.base_url
        ))
        .header("x-goog-api-key", CLIENT_TOKEN)
        .json(&serde_json::json!({"contents": [{"parts": [{"text": "hi"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(gemini.status(), 414);
    let body: serde_json::Value = gemini.json().await.unwrap();
    assert_eq!(body["error"]["code"], 414, "Google's shape: {body}");
    assert!(body["error"]["status"].is_string(), "{body}");

    let openai = app
        .http
        .post(format!("{}/v1/chat/completions?{long_query}", app.base_url))
        .bearer_auth(CLIENT_TOKEN)
        .json(&serde_json::json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(openai.status(), 414);
    let body: serde_json::Value = openai.json().await.unwrap();
    assert_eq!(
        body["error"]["type"], "invalid_request_error",
        "OpenAI's shape: {body}"
    );

    // 80 headers of 1 KiB: under hyper's count and buffer, over the gateway's 64 KiB.
    let mut request = app
        .http
        .post(format!("{}/v1/chat/completions", app.base_url))
        .bearer_auth(CLIENT_TOKEN);
    for index in 0..80 {
        request = request.header(format!("x-pad-{index}"), "b".repeat(1024));
    }
    let headers = request
        .json(&serde_json::json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(headers.status(), 431);
    let body: serde_json::Value = headers.json().await.unwrap();
    assert_eq!(
        body["error"]["code"], "request_too_large",
        "OpenAI's shape: {body}"
    );
    assert!(app.mock.calls().is_empty(), "nothing went upstream");
    app.stop().await;
}
