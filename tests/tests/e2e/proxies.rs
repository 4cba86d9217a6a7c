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
    app.stop().await;
}

/// gemini-balance's proxy checks: each proxy of `PROXIES` tried against `BASE_URL`'s host, a
/// dead one named with its error, passwords masked in every answer; a proxy given in its
/// masked form (as the settings list it) is the configured one. (The live proxy answers and the
/// dead one does not, while the upstream itself is up: each check goes through its proxy.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_are_checked() {
    let proxy = MockGemini::start().await.unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://user:s3cret-pass@{}", closed.local_addr().unwrap());
    drop(closed);
    let proxies = serde_json::to_string(&[format!("http://{}", proxy.addr), dead.clone()]).unwrap();
    let app = TestApp::builder(Mode::Microservices, Backend::Sqlite)
        .setting("PROXIES", &proxies)
        .spawn()
        .await;
    let (status, all) = app
        .admin_post("/proxy/check-all", &serde_json::json!({}))
        .await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["total"], 2);
    assert_eq!(all["available"], 1);
    let results = all["results"].as_array().unwrap();
    assert_eq!(results[0]["is_available"], true, "{all}");
    assert!(results[0]["status_code"].as_u64().is_some());
    assert_eq!(results[1]["is_available"], false);
    assert!(
        results[1]["error_message"]
            .as_str()
            .is_some_and(|error| !error.is_empty())
    );
    assert!(!all.to_string().contains("s3cret-pass"), "{all}");
    let masked = results[1]["proxy"].as_str().unwrap().to_owned();
    assert!(masked.contains("***"), "{masked}");

    let (status, one) = app
        .admin_post("/proxy/check", &serde_json::json!({"proxy": masked}))
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["is_available"], false);
    assert_eq!(one["proxy"], results[1]["proxy"]);
    let (status, refused) = app
        .admin_post("/proxy/check", &serde_json::json!({"proxy": " "}))
        .await;
    assert_eq!(status, 400, "{refused}");
    let (status, _) = app
        .http
        .post(app.url("/proxy/check-all"))
        .send()
        .await
        .map(|response| (response.status().as_u16(), ()))
        .unwrap();
    assert_eq!(status, 401, "the admin token is needed");
}
