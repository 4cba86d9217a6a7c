//! Managed client tokens (issue 14, item 3): created through the admin API (the value shown
//! once), checked by the gateway from the list the keys service pushes: the model rule (403 in
//! the client's shape), the request rate and the daily budget (429 with `Retry-After`), revocation
//! and rotation seen at once, and `ALLOWED_TOKENS` unchanged beside them.

use serde_json::json;

use crate::harness::{Backend, CLIENT_TOKEN, Mode, TestApp, hello, status_and_json};
use crate::{microservices_only, two_setups};

const FLASH: &str = "/v1beta/models/gemini-2.5-flash:generateContent";
const PRO: &str = "/v1beta/models/gemini-2.5-pro:generateContent";

async fn post_with(app: &TestApp, base: &str, token: &str, path: &str) -> (u16, serde_json::Value) {
    status_and_json(
        app.gemini_send_to(base, token, path, &hello("managed"))
            .await,
    )
    .await
}

async fn create_token(app: &TestApp, spec: serde_json::Value) -> (i64, String) {
    let (status, body) = app.admin_post("/api/tokens", &spec).await;
    assert_eq!(status, 201, "{body}");
    let value = body["token"].as_str().unwrap().to_owned();
    assert!(value.starts_with("sk-gb-"), "{body}");
    (body["id"].as_i64().unwrap(), value)
}

/// Waits until the gateway at `base` answers `token` with `status` on flash: within a second
/// for a revocation (the bound), within the usual 5 s for the rest.
async fn until_answered(app: &TestApp, base: &str, token: &str, status: u16, what: &str) {
    let limit = std::time::Duration::from_secs(if status == 401 { 1 } else { 5 });
    app.eventually_within(what, limit, || async {
        post_with(app, base, token, FLASH).await.0 == status
    })
    .await;
}

async fn managed_tokens_follow_their_rules(mode: Mode, backend: Backend) {
    let mut app = TestApp::builder(mode, backend).spawn().await;
    let base = app.base_url.clone();
    let (id, token) = create_token(
        &app,
        json!({"name": "team-a", "models": ["gemini-2.5-flash*"], "rpm": 4}),
    )
    .await;
    until_answered(&app, &base, &token, 200, "the new token is known").await;

    // The model rule, in each family's shape, without an upstream call.
    let calls = app.mock.calls().len();
    let (status, body) = post_with(&app, &base, &token, PRO).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED", "{body}");
    let response = app
        .http
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&token)
        .json(&json!({"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gemini-2.5-pro"),
        "{body}"
    );
    assert_eq!(
        app.mock.calls().len(),
        calls,
        "no upstream call for a refused model"
    );

    // Four requests a minute (the refused ones count): the fifth waits.
    assert_eq!(post_with(&app, &base, &token, FLASH).await.0, 200);
    let (status, body) = post_with(&app, &base, &token, FLASH).await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("4 requests per minute"),
        "{body}"
    );
    // ALLOWED_TOKENS are unlimited, as before.
    for _ in 0..6 {
        assert_eq!(app.generate("unlimited").await.0, 200);
    }

    // Listed masked, with what it spent; the value is nowhere.
    let (status, listed) = app.admin_get("/api/tokens").await;
    assert_eq!(status, 200, "{listed}");
    let row = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["id"] == id)
        .cloned()
        .unwrap();
    assert_eq!(row["name"], "team-a");
    assert_eq!(row["rpm"], 4);
    assert!(row["tpm"].is_null());
    assert!(!listed.to_string().contains(&token), "{listed}");
    assert_eq!(row["masked"], gb_runtime::secrets::mask_key(&token));
    app.eventually("its tokens are in the usage", || async {
        let (_, listed) = app.admin_get("/api/tokens").await;
        listed["tokens"][0]["usage"]["tokens_today"]
            .as_u64()
            .is_some_and(|tokens| tokens > 0)
    })
    .await;

    // A daily budget that one answer spends.
    let (_, frugal) = create_token(&app, json!({"name": "frugal", "daily_token_budget": 1})).await;
    until_answered(&app, &base, &frugal, 200, "the frugal token is known").await;
    app.eventually("the spent budget refuses", || async {
        post_with(&app, &base, &frugal, FLASH).await.0 == 429
    })
    .await;
    let response = app
        .http
        .post(app.url(FLASH))
        .header("x-goog-api-key", &frugal)
        .json(&hello("over budget"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    let retry_after: i64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let now = gb_runtime::now_ms();
    let to_midnight = (86_400_000 - now.rem_euclid(86_400_000)) / 1000;
    assert!(
        (retry_after - to_midnight).abs() <= 2,
        "{retry_after} vs {to_midnight}"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("daily token budget"),
        "{body}"
    );

    // Kept across a restart; rotation: the old value stops, the new one works.
    app.restart().await;
    let base = app.base_url.clone();
    let (status, rotated) = app
        .admin_post(&format!("/api/tokens/{id}/rotate"), &json!({}))
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new_value = rotated["token"].as_str().unwrap().to_owned();
    until_answered(&app, &base, &token, 401, "the old value stops").await;
    until_answered(&app, &base, &new_value, 200, "the new value works").await;
    // Disabled, then enabled again; bad input named.
    let (status, body) = app
        .admin_send(
            reqwest::Method::PATCH,
            &format!("/api/tokens/{id}"),
            Some(&json!({"enabled": false, "rpm": null})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["rpm"].is_null(), "{body}");
    until_answered(&app, &base, &new_value, 401, "a disabled token is refused").await;
    let (status, body) = app
        .admin_send(
            reqwest::Method::PATCH,
            &format!("/api/tokens/{id}"),
            Some(&json!({"rpm": -1})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app
        .admin_post("/api/tokens", &json!({"name": "x", "models": ["[a"]}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("[a"),
        "{body}"
    );
    let (status, _) = app
        .admin_send(reqwest::Method::DELETE, "/api/tokens/999999", None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = post_with(&app, &base, CLIENT_TOKEN, FLASH).await;
    assert_eq!(status, 200, "ALLOWED_TOKENS still unlimited");
    app.stop().await;
}
two_setups!(managed_tokens, managed_tokens_follow_their_rules);

/// Revocation reaches every gateway replica within a second.
async fn revocation_reaches_every_gateway(mode: Mode, backend: Backend) {
    let mut app = TestApp::builder(mode, backend).spawn().await;
    let second = app.spawn_second_front().await;
    let first = app.base_url.clone();
    let (id, token) = create_token(&app, json!({"name": "short-lived"})).await;
    until_answered(&app, &first, &token, 200, "known by the first gateway").await;
    until_answered(&app, &second, &token, 200, "known by the second gateway").await;
    let (status, body) = app
        .admin_send(reqwest::Method::DELETE, &format!("/api/tokens/{id}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    until_answered(&app, &first, &token, 401, "refused by the first gateway").await;
    until_answered(&app, &second, &token, 401, "refused by the second gateway").await;
    app.stop().await;
}
microservices_only!(revocation, revocation_reaches_every_gateway);
