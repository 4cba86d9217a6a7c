//! `PROXIES`: every key always leaves through the same proxy, across restarts. Two more mock
//! servers stand in for the proxies (an HTTP proxy receives absolute-form requests, which the
//! mock routes by path), so the test sees which proxy carried which key.

use std::collections::HashMap;

use gb_tests::mock_gemini::MockGemini;
use gb_upstream::stable_route_index;

use crate::harness::{Backend, Mode, TestApp, new_key};

fn proxy_of_each_key(keys: &[String], proxies: &[&MockGemini]) -> HashMap<String, Vec<usize>> {
    let mut seen: HashMap<String, Vec<usize>> = HashMap::new();
    for (index, proxy) in proxies.iter().enumerate() {
        for call in proxy.calls() {
            let used = seen.entry(call.key).or_default();
            if !used.contains(&index) {
                used.push(index);
            }
        }
    }
    assert_eq!(seen.len(), keys.len(), "every key went out through a proxy");
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_key_keeps_its_proxy() {
    let first = MockGemini::start().await.unwrap();
    let second = MockGemini::start().await.unwrap();
    let keys: Vec<String> = (0..6).map(|_| new_key()).collect();
    let proxies = serde_json::to_string(&[
        format!("http://{}", first.addr),
        format!("http://{}", second.addr),
    ])
    .unwrap();
    let mut app = TestApp::builder(Mode::AllInOne, Backend::Sqlite)
        .keys(keys.clone())
        .setting("PROXIES", &proxies)
        .spawn()
        .await;
    for _ in 0..12 {
        assert_eq!(app.generate("through a proxy").await.0, 200);
    }
    assert!(app.mock.calls().is_empty(), "nothing went out directly");
    let before = proxy_of_each_key(&keys, &[&first, &second]);
    for key in &keys {
        assert_eq!(
            before[key],
            vec![stable_route_index(key, 2)],
            "one fixed proxy per key"
        );
    }
    first.clear_calls();
    second.clear_calls();
    app.restart().await;
    for _ in 0..12 {
        assert_eq!(app.generate("after restart").await.0, 200);
    }
    assert_eq!(
        proxy_of_each_key(&keys, &[&first, &second]),
        before,
        "the same mapping after a restart"
    );
    app.stop().await;
}

/// A file's copy at Google is uploaded like every other call: to `BASE_URL`'s host, through
/// the key's proxy (gemini-balance's upload went straight to Google's host, proxy or not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_copy_goes_through_the_keys_proxy() {
    let proxy = MockGemini::start().await.unwrap();
    let app = TestApp::builder(Mode::AllInOne, Backend::Sqlite)
        .keys(vec![new_key()])
        .setting("PROXIES", &format!("[\"http://{}\"]", proxy.addr))
        .spawn()
        .await;
    let file =
        crate::google_files::upload_resumable(&app, &crate::files::content(5000), "text/plain")
            .await;
    let body = serde_json::json!({"contents": [{"role": "user", "parts": [
        {"text": "read it"}, {"fileData": {"fileUri": file["uri"]}}
    ]}]});
    let (status, answer) = app
        .gemini_post("/v1beta/models/gemini-2.5-flash:generateContent", &body)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert!(app.mock.calls().is_empty(), "nothing went out directly");
    let copies = proxy.files().all();
    assert_eq!(copies.len(), 1, "the copy was uploaded through the proxy");
    assert_eq!(copies[0].key, app.keys[0]);
    assert!(
        proxy
            .calls()
            .iter()
            .any(|call| call.path == "/upload/v1beta/files"),
        "{:?}",
        proxy
            .calls()
            .iter()
            .map(|call| &call.path)
            .collect::<Vec<_>>()
    );
    app.stop().await;
}
