//! Administrative routes: the key resource, gemini-balance's key routes and their answer
//! shapes, and the admin token on every one of them.

use serde_json::json;

use crate::harness::{ADMIN_TOKEN, Backend, CLIENT_TOKEN, Mode, TestApp, new_key};
use crate::two_setups;

async fn key_resource(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend)
        .keys(vec![new_key()])
        .spawn()
        .await;
    let added = new_key();
    let (status, body) = app
        .admin_post("/keys", &json!({"key_value": added, "key_type": "gemini"}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["key"]["key_value"],
        gb_runtime::secrets::mask_key(&added)
    );
    assert!(!body.to_string().contains(&added));
    let (status, body) = app.admin_post("/keys", &json!({"key_value": added})).await;
    assert_eq!(status, 409, "the same key cannot be stored twice: {body}");
    let (status, body) = app
        .admin_post("/keys", &json!({"key_type": "gemini"}))
        .await;
    assert_eq!(status, 400, "{body}");
    // The new key reaches the chat service's pool (pushed over the pool stream) and serves.
    let mut served = false;
    for _ in 0..100 {
        assert_eq!(app.generate("to the new key").await.0, 200);
        if app.mock.calls().iter().any(|call| call.key == added) {
            served = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(served, "the added key never served");
    app.mock
        .set_behavior(&app.keys[0], gb_tests::mock_gemini::Behavior::InvalidKey);
    for _ in 0..3 {
        assert_eq!(app.generate("the dead key is stepped around").await.0, 200);
    }
    app.wait_for_key(0, |key| key["status"] == "disabled").await;
    let (status, listed) = app.admin_get("/keys").await;
    assert_eq!(status, 200);
    let text = listed.to_string();
    assert!(
        !text.contains(&added) && !text.contains(&app.keys[0]),
        "values are masked"
    );
    let entry = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["key_value"] == gb_runtime::secrets::mask_key(&added))
        .unwrap()
        .clone();
    let id = entry["id"].as_i64().unwrap();
    let deleted = app
        .http
        .delete(app.url(&format!("/keys/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let again = app
        .http
        .delete(app.url(&format!("/keys/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    let (_, listed) = app.admin_get("/keys").await;
    assert_eq!(listed["keys"].as_array().unwrap().len(), 1);
    // Deleted: no longer used.
    app.mock.clear_calls();
    let (status, _) = app.generate("nobody left").await;
    assert_eq!(status, 503, "the only remaining key is disabled");
    assert!(app.mock.calls().is_empty());
    app.stop().await;
}
two_setups!(key_resource_routes, key_resource);

async fn gemini_balance_key_routes(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend)
        .setting("MAX_FAILURES", "5")
        .spawn()
        .await;
    let (good, bad) = (app.keys[0].clone(), app.keys[1].clone());
    app.mock
        .set_behavior(&bad, gb_tests::mock_gemini::Behavior::InvalidKey);

    let (status, body) = app.admin_get("/v1/keys/list").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "success");
    assert_eq!(body["total"], 2);
    assert_eq!(
        body["data"]["valid_keys"][gb_runtime::secrets::mask_key(&good)],
        0
    );

    let (status, body) = app
        .admin_post(&format!("/gemini/v1beta/verify-key/{good}"), &json!({}))
        .await;
    assert_eq!((status, body.clone()), (200, json!({"status": "valid"})));
    let (status, body) = app
        .admin_post(&format!("/gemini/v1beta/verify-key/{bad}"), &json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "invalid");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("API key not valid")
    );
    let (status, _) = app
        .admin_post(
            &format!("/gemini/v1beta/verify-key/{}", new_key()),
            &json!({}),
        )
        .await;
    assert_eq!(status, 404);

    let (_, listed) = app.admin_get("/hf/v1/keys/list").await;
    assert_eq!(
        listed["data"]["invalid_keys"][gb_runtime::secrets::mask_key(&bad)],
        0,
        "verified dead: disabled"
    );

    let (status, body) = app
        .admin_post(
            "/gemini/v1beta/verify-selected-keys",
            &json!({"keys": [good, bad]}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["success"], true);
    assert_eq!(body["valid_count"], 1);
    assert_eq!(body["invalid_count"], 1);
    assert_eq!(
        body["failed_keys"][gb_runtime::secrets::mask_key(&bad)]["error_code"],
        400
    );
    assert!(!body.to_string().contains(&bad), "answers mask keys");
    let (status, body) = app
        .admin_post("/gemini/v1beta/verify-selected-keys", &json!({"keys": []}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["success"], false);

    let (status, body) = app
        .admin_post(
            &format!("/gemini/v1beta/reset-fail-count/{bad}"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["success"], true);
    assert_eq!(app.key_states().await[1]["status"], "active");
    let (status, body) = app
        .admin_post(
            &format!("/gemini/v1beta/reset-fail-count/{}", new_key()),
            &json!({}),
        )
        .await;
    assert_eq!((status, body["success"].clone()), (404, json!(false)));

    app.admin_post(&format!("/gemini/v1beta/verify-key/{bad}"), &json!({}))
        .await;
    let (status, body) = app
        .admin_post(
            "/gemini/v1beta/reset-all-fail-counts?key_type=invalid",
            &json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["reset_count"], 1);
    let (status, body) = app
        .admin_post(
            "/gemini/v1beta/reset-selected-fail-counts",
            &json!({"keys": [good, new_key()], "key_type": "valid"}),
        )
        .await;
    assert_eq!(status, 207, "one key unknown: {body}");
    let (status, _) = app
        .admin_post(
            "/gemini/v1beta/reset-selected-fail-counts",
            &json!({"keys": []}),
        )
        .await;
    assert_eq!(status, 400);
    // By id, too: what an admin sees in a masked listing is enough to act on a key.
    let (status, _) = app
        .admin_post("/gemini/v1beta/reset-fail-count/1", &json!({}))
        .await;
    assert_eq!(status, 200);
    app.stop().await;
}
two_setups!(gemini_balance_routes, gemini_balance_key_routes);

async fn admin_routes_need_the_admin_token(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    let key = &app.keys[0];
    let routes: Vec<(reqwest::Method, String)> = vec![
        (reqwest::Method::GET, "/keys".into()),
        (reqwest::Method::POST, "/keys".into()),
        (reqwest::Method::DELETE, "/keys/1".into()),
        (reqwest::Method::GET, "/v1/keys/list".into()),
        (reqwest::Method::GET, "/hf/v1/keys/list".into()),
        (
            reqwest::Method::POST,
            format!("/gemini/v1beta/verify-key/{key}"),
        ),
        (
            reqwest::Method::POST,
            "/gemini/v1beta/verify-selected-keys".into(),
        ),
        (
            reqwest::Method::POST,
            format!("/gemini/v1beta/reset-fail-count/{key}"),
        ),
        (
            reqwest::Method::POST,
            "/gemini/v1beta/reset-all-fail-counts".into(),
        ),
        (
            reqwest::Method::POST,
            "/gemini/v1beta/reset-selected-fail-counts".into(),
        ),
        // Settings.
        (reqwest::Method::GET, "/configs".into()),
        (reqwest::Method::GET, "/configs/MAX_RETRIES".into()),
        (reqwest::Method::PUT, "/configs/MAX_RETRIES".into()),
        (reqwest::Method::DELETE, "/configs/MAX_RETRIES".into()),
        (reqwest::Method::GET, "/api/config".into()),
        (reqwest::Method::PUT, "/api/config".into()),
        (reqwest::Method::POST, "/api/config/reset".into()),
        // Error logs.
        (reqwest::Method::GET, "/api/logs/errors".into()),
        (reqwest::Method::GET, "/api/logs/errors/1/details".into()),
        (
            reqwest::Method::GET,
            format!("/api/logs/errors/lookup?gemini_key={key}&timestamp=2026-01-01T00:00:00Z"),
        ),
        (reqwest::Method::DELETE, "/api/logs/errors".into()),
        (reqwest::Method::DELETE, "/api/logs/errors/all".into()),
        (reqwest::Method::DELETE, "/api/logs/errors/1".into()),
        // Statistics.
        (reqwest::Method::GET, "/api/stats/details?period=1h".into()),
        (reqwest::Method::GET, "/api/stats/attention-keys".into()),
        (
            reqwest::Method::GET,
            format!("/api/stats/key-details?key={key}&period=1h"),
        ),
        (reqwest::Method::GET, "/api/stats/calls".into()),
        (reqwest::Method::GET, "/api/stats/tokens".into()),
        (
            reqwest::Method::GET,
            format!("/api/key-usage-details/{key}"),
        ),
    ];
    for (method, path) in routes {
        for token in [None, Some(CLIENT_TOKEN), Some("wrong")] {
            let mut request = app
                .http
                .request(method.clone(), app.url(&path))
                .json(&json!({"keys": [key], "key_value": key}));
            if let Some(token) = token {
                request = request.bearer_auth(token).header("x-goog-api-key", token);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{method} {path} with {token:?}");
            let body: serde_json::Value = response.json().await.unwrap();
            assert!(body["error"]["message"].is_string());
        }
    }
    assert!(app.mock.calls().is_empty());
    let (_, listed) = app.admin_get("/keys").await;
    assert_eq!(
        listed["keys"].as_array().unwrap().len(),
        2,
        "nothing changed"
    );
    app.stop().await;
}
two_setups!(admin_token, admin_routes_need_the_admin_token);
