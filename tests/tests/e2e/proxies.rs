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
