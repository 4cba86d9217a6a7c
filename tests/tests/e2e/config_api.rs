//! The settings API and hot reload: a change made through the API reaches every service while
//! it runs (keys, chat, gateway; in both run modes), the precedence rule between environment
//! and API across restarts, validation that names the setting, and secrets masked in every
//! read and encrypted in every stored row.

use gb_runtime::secrets::mask_key;
use gb_tests::mock_gemini::{Behavior, MockGemini};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{
    ADMIN_TOKEN, Backend, CLIENT_TOKEN, Mode, TestApp, hello, new_key, status_and_json,
};
use crate::{each_setup, two_setups};

async fn generate_as(app: &TestApp, token: &str) -> u16 {
    let response = app
        .http
        .post(app.url("/v1beta/models/gemini-2.5-flash:generateContent"))
        .header("x-goog-api-key", token)
        .json(&hello("who is asking"))
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

/// The calls of one generate request: (status, keys the upstream saw, in order).
async fn attempts_of_one_request(app: &TestApp, mock: &MockGemini) -> (u16, Vec<String>) {
    mock.clear_calls();
    let (status, _) = app.generate("count my attempts").await;
    (
        status,
        mock.calls().into_iter().map(|call| call.key).collect(),
    )
}

/// One change after the other, each seen in the service that owns it, with no restart.
async fn changes_apply_while_running(mode: Mode, backend: Backend) {
    let keys = vec![new_key(), new_key(), new_key()];
    let app = TestApp::builder(mode, backend)
        .keys(keys.clone())
        .setting("MAX_FAILURES", "100")
        .spawn()
        .await;

    // MAX_RETRIES, read by the chat service: three attempts, then one.
    for key in &keys {
        app.mock
            .set_behavior(key, Behavior::ServerError { status: 503 });
    }
    let (status, tried) = attempts_of_one_request(&app, &app.mock).await;
    assert_eq!((status, tried.len()), (503, 3));
    app.put_setting("MAX_RETRIES", json!(1)).await;
    app.eventually("MAX_RETRIES=1 in the chat service", || async {
        let (status, tried) = attempts_of_one_request(&app, &app.mock).await;
        status == 503 && tried.len() == 1
    })
    .await;

    // API_KEYS, read by the keys service: a key added to the list joins the pool and serves;
    // the masked values sent back keep the other keys.
    let added = new_key();
    let mut listed: Vec<Value> = app.setting("API_KEYS").await["value"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(listed[0], mask_key(&keys[0]));
    listed.push(json!(added));
    app.put_setting("API_KEYS", Value::Array(listed.clone()))
        .await;
    app.put_setting("MAX_RETRIES", json!(4)).await;
    app.eventually("the added key serves", || async {
        let (status, tried) = attempts_of_one_request(&app, &app.mock).await;
        status == 200 && tried.last() == Some(&added)
    })
    .await;
    // A key removed from the list leaves the pool; the others stay.
    listed.remove(0);
    app.put_setting("API_KEYS", Value::Array(listed)).await;
    app.eventually("the removed key leaves the pool", || async {
        let states = app.key_states().await;
        states[0].is_null() && !states[1].is_null() && !states[2].is_null()
    })
    .await;

    // ALLOWED_TOKENS, read by the gateway: the old token stops working, the new one works.
    app.put_setting("ALLOWED_TOKENS", json!(["client-token-two"]))
        .await;
    app.eventually("ALLOWED_TOKENS in the gateway", || async {
        generate_as(&app, CLIENT_TOKEN).await == 401
            && generate_as(&app, "client-token-two").await == 200
    })
    .await;
    app.put_setting("ALLOWED_TOKENS", json!([CLIENT_TOKEN]))
        .await;

    // BASE_URL, THINKING_BUDGET_MAP and SAFETY_SETTINGS, read by the chat service.
    let second = MockGemini::start().await.unwrap();
    app.put_setting("BASE_URL", json!(second.base_url())).await;
    app.put_setting("THINKING_BUDGET_MAP", json!({"gemini-2.5-flash": 1234}))
        .await;
    app.put_setting(
        "SAFETY_SETTINGS",
        json!([{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]),
    )
    .await;
    app.eventually(
        "BASE_URL and the model rules in the chat service",
        || async {
            let (status, _) = attempts_of_one_request(&app, &second).await;
            let calls = second.calls();
            status == 200
                && calls.last().is_some_and(|call| {
                    call.body["generationConfig"]["thinkingConfig"]["thinkingBudget"] == 1234
                        && call.body["safetySettings"][0]["threshold"] == "BLOCK_ONLY_HIGH"
                })
        },
    )
    .await;

    // FILTERED_MODELS: a model filtered now is refused without an upstream call.
    app.put_setting("FILTERED_MODELS", json!(["gemini-2.5-flash"]))
        .await;
    app.eventually("FILTERED_MODELS in the chat service", || async {
        let (status, tried) = attempts_of_one_request(&app, &second).await;
        (400..500).contains(&status) && tried.is_empty()
    })
    .await;
    app.put_setting("FILTERED_MODELS", Value::Null).await;

    // TIME_OUT: an answer slower than the new limit fails.
    for key in keys.iter().chain([&added]) {
        second.set_behavior(key, Behavior::Slow { millis: 1500 });
    }
    app.put_setting("MAX_RETRIES", json!(1)).await;
    app.put_setting("TIME_OUT", json!(0.3)).await;
    app.eventually("TIME_OUT in the chat service", || async {
        let started = std::time::Instant::now();
        let (status, _) = app.generate("too slow").await;
        status >= 500 && started.elapsed() < std::time::Duration::from_millis(1200)
    })
    .await;
    app.stop().await;
}
each_setup!(hot_reload, changes_apply_while_running);

/// MAX_FAILURES, read by the keys service: lowered to 1, one failure disables a key.
async fn max_failures_applies_while_running(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    app.put_setting("MAX_FAILURES", json!(1)).await;
    // The keys service gets it over its settings stream: until then a failure only counts.
    // Each round fails the first key once, waits for that outcome to be applied, and starts
    // the next from a reset key, until one failure is enough to disable it.
    let key_id = app.key_states().await[0]["id"].clone();
    app.eventually("MAX_FAILURES=1 reaches the keys service", || async {
        let reset = format!("/gemini/v1beta/reset-fail-count/{key_id}");
        assert_eq!(app.admin_post(&reset, &json!({})).await.0, 200);
        let before = app.key_states().await[0]["failure_total"]
            .as_u64()
            .unwrap_or(0);
        app.mock
            .queue_behaviors(&app.keys[0], vec![Behavior::ServerError { status: 500 }]);
        let calls = app.calls_per_key()[0];
        while app.calls_per_key()[0] == calls {
            assert_eq!(app.generate("the first key fails once").await.0, 200);
        }
        let failed = app
            .wait_for_key(0, |key| key["failure_total"].as_u64() > Some(before))
            .await;
        failed["status"] == "disabled" && failed["failure_count"] == 1
    })
    .await;
    assert_eq!(app.key_states().await[1]["status"], "active");
    app.stop().await;
}
two_setups!(max_failures, max_failures_applies_while_running);

/// The environment's value until the API sets one; the API's value across restarts while the
/// environment stays the same; a changed environment wins at the next start; reset goes back
/// to the environment (or the default).
async fn precedence(mode: Mode, backend: Backend) {
    let mut app = TestApp::builder(mode, backend)
        .setting("MAX_RETRIES", "2")
        .spawn()
        .await;
    let shown = app.setting("MAX_RETRIES").await;
    assert_eq!(
        (shown["value"].clone(), shown["source"].clone()),
        (json!(2), json!("environment"))
    );

    app.put_setting("MAX_RETRIES", json!(4)).await;
    app.restart().await;
    let shown = app.setting("MAX_RETRIES").await;
    assert_eq!(
        (shown["value"].clone(), shown["source"].clone()),
        (json!(4), json!("api")),
        "the API's value survives a restart"
    );

    app.set_env("MAX_RETRIES", "5");
    app.restart().await;
    let shown = app.setting("MAX_RETRIES").await;
    assert_eq!(
        (shown["value"].clone(), shown["source"].clone()),
        (json!(5), json!("environment")),
        "a changed environment wins"
    );

    app.put_setting("MAX_RETRIES", json!(3)).await;
    app.put_setting("LOG_LEVEL", json!("debug")).await;
    let (status, flat) = app.admin_post("/api/config/reset", &json!({})).await;
    assert_eq!(status, 200, "{flat}");
    assert_eq!(flat["MAX_RETRIES"], 5);
    assert_eq!(flat["LOG_LEVEL"], "info");
    assert_eq!(app.setting("LOG_LEVEL").await["source"], "default");

    // One setting back to the environment's value alone.
    app.put_setting("MAX_RETRIES", json!(3)).await;
    let (status, body) = app
        .admin_send(Method::DELETE, "/configs/MAX_RETRIES", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["config"]["value"], 5);
    app.stop().await;
}
two_setups!(precedence_rule, precedence);

/// Bad values are refused with the setting named, and nothing changes (all or none).
async fn bad_values_are_refused(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    let put = |name: &str, body: Value| {
        let path = format!("/configs/{name}");
        let app = &app;
        async move { app.admin_send(Method::PUT, &path, Some(&body)).await }
    };
    for (name, value, expected) in [
        ("MAX_RETRIES", json!("three"), "MAX_RETRIES"),
        ("MAX_RETRIES", json!(0), "MAX_RETRIES"),
        ("MAX_RETRIES", json!([1]), "MAX_RETRIES"),
        ("TIME_OUT", json!(-1), "TIME_OUT"),
        ("BASE_URL", json!("not a url"), "BASE_URL"),
        ("API_KEYS", json!([1, 2]), "API_KEYS"),
        (
            "SAFETY_SETTINGS",
            json!([{"category": 1}]),
            "SAFETY_SETTINGS",
        ),
        ("LOG_LEVEL", json!("very=loud=please"), "LOG_LEVEL"),
        ("NOT_A_SETTING", json!(1), "NOT_A_SETTING"),
        // Each of these once answered 200 and then stopped the next start.
        ("PROXIES", json!(["http://[bad"]), "PROXIES"),
        ("PROXIES", json!(["socks5://[::1"]), "PROXIES"),
        ("PROXIES", json!(["http://h:99999"]), "PROXIES"),
        ("PROXIES", json!(["https://"]), "PROXIES"),
        ("BASE_URL", json!(""), "BASE_URL"),
        ("TIME_OUT", json!(1e300), "TIME_OUT"),
        ("TIME_OUT", json!(0), "TIME_OUT"),
        ("CHECK_INTERVAL_HOURS", json!(1e300), "CHECK_INTERVAL_HOURS"),
        (
            "FAKE_STREAM_EMPTY_DATA_INTERVAL_SECONDS",
            json!(1e300),
            "FAKE_STREAM_EMPTY_DATA_INTERVAL_SECONDS",
        ),
        ("AUTH_TOKEN", json!("new-admin"), "AUTH_TOKEN"),
    ] {
        let (status, body) = put(name, json!({ "value": value })).await;
        assert_eq!(status, 400, "{name}={value}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{name}={value}: {message}");
    }
    let (status, body) = put("MAX_RETRIES", json!({"wrong": 1})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app
        .admin_send(
            Method::PUT,
            "/api/config",
            Some(&json!({"MAX_RETRIES": 2, "TIME_OUT": -1})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("TIME_OUT")
    );
    assert_eq!(app.setting("MAX_RETRIES").await["value"], 3, "all or none");
    let (status, _) = app.admin_get("/configs/NOT_A_SETTING").await;
    assert_eq!(status, 404);
    // Nothing refused was kept: the next start succeeds, on the same settings.
    let mut app = app;
    app.restart().await;
    assert_eq!(app.setting("PROXIES").await["value"], json!([]));
    assert_eq!(app.generate("still serving").await.0, 200);
    app.stop().await;
}
two_setups!(validation, bad_values_are_refused);

/// A stored value that cannot apply (an earlier version accepted it) does not stop the start:
/// its setting runs on the environment's value or the default, the API says it is not applied,
/// and setting it again clears that.
async fn a_stored_value_that_cannot_apply_does_not_stop_the_start(mode: Mode, backend: Backend) {
    let mut app = TestApp::builder(mode, backend).spawn().await;
    app.put_setting("MAX_RETRIES", json!(2)).await;
    app.db
        .execute(
            "INSERT INTO configs (key, value, env_value, source, updated_at) VALUES ('FAKE_STREAM_EMPTY_DATA_INTERVAL_SECONDS', '1e300', NULL, 'api', '2026-01-01 00:00:00')",
        )
        .await;
    app.restart().await;
    let entry = app.setting("FAKE_STREAM_EMPTY_DATA_INTERVAL_SECONDS").await;
    assert_eq!(entry["applied"], false, "{entry}");
    assert_eq!(entry["value"], 5.0, "the default is in force: {entry}");
    assert!(
        entry["problem"]
            .as_str()
            .is_some_and(|problem| problem.contains("FAKE_STREAM_EMPTY_DATA_INTERVAL_SECONDS")),
        "{entry}"
    );
    assert_eq!(
        app.setting("MAX_RETRIES").await["value"],
        2,
        "the rest applies"
    );
    assert!(crate::harness::captured_logs().contains("the stored value cannot apply"));
    assert_eq!(app.generate("serving").await.0, 200);
    app.put_setting("FAKE_STREAM_EMPTY_DATA_INTERVAL_SECONDS", json!(2))
        .await;
    let entry = app.setting("FAKE_STREAM_EMPTY_DATA_INTERVAL_SECONDS").await;
    assert_eq!(
        (entry["applied"].clone(), entry["value"].clone()),
        (json!(true), json!(2.0))
    );
    app.restart().await;
    assert_eq!(
        app.setting("FAKE_STREAM_EMPTY_DATA_INTERVAL_SECONDS").await["value"],
        2.0
    );
    app.stop().await;
}
two_setups!(
    stored_value_not_applied,
    a_stored_value_that_cannot_apply_does_not_stop_the_start
);

/// Secrets are masked in every read, a read sent back as it is changes nothing, and no secret
/// is stored in clear in the settings or log tables.
async fn secrets_are_masked_and_encrypted(mode: Mode, backend: Backend) {
    let paid = new_key();
    let app = TestApp::builder(mode, backend)
        .setting("PAID_KEY", &paid)
        .setting("PROXIES", "[\"http://user:hunter2@127.0.0.1:9\"]")
        // Until the change of PROXIES below reaches the chat service, calls go to that dead
        // proxy: they must not disable the keys meanwhile (the test waits for the change by
        // its effect, a call served).
        .setting("MAX_FAILURES", "1000")
        .spawn()
        .await;
    // Proxies are not used in this test: clear them through the API (stored encrypted too).
    let secrets: Vec<String> = app
        .keys
        .iter()
        .cloned()
        .chain([
            paid.clone(),
            CLIENT_TOKEN.to_owned(),
            ADMIN_TOKEN.to_owned(),
            "hunter2".into(),
        ])
        .collect();
    let (status, flat) = app.admin_get("/api/config").await;
    assert_eq!(status, 200);
    let (_, listing) = app.admin_get("/configs").await;
    for text in [flat.to_string(), listing.to_string()] {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "a secret is shown: {text}");
        }
    }
    assert_eq!(flat["API_KEYS"][0], mask_key(&app.keys[0]));
    assert_eq!(flat["AUTH_TOKEN"], mask_key(ADMIN_TOKEN));
    assert_eq!(flat["PROXIES"][0], "http://user:***@127.0.0.1:9");

    // What was read, sent back: accepted, and the real values stay in force.
    let (status, body) = app
        .admin_send(Method::PUT, "/api/config", Some(&flat))
        .await;
    assert_eq!(status, 200, "{body}");
    app.put_setting("PROXIES", json!([])).await;
    app.eventually("the pool still serves with the client token", || async {
        app.generate("still here").await.0 == 200
    })
    .await;
    assert_eq!(
        app.key_states()
            .await
            .iter()
            .filter(|key| !key.is_null())
            .count(),
        2
    );

    // A failure whose upstream body names the key: logged, masked.
    app.mock
        .queue_behaviors(&app.keys[0], vec![Behavior::Suspended]);
    app.mock
        .queue_behaviors(&app.keys[1], vec![Behavior::Suspended]);
    app.generate("names the key").await;
    app.eventually("the error logs are written", || async {
        app.admin_get("/api/logs/errors").await.1["total"].as_u64() >= Some(1)
    })
    .await;
    let rows = app.db.config_and_log_rows().await;
    assert!(rows.iter().any(|row| row.starts_with("API_KEYS ")));
    for row in &rows {
        for secret in &secrets {
            assert!(!row.contains(secret.as_str()), "stored in clear: {row}");
        }
    }
    app.stop().await;
}
two_setups!(secrets, secrets_are_masked_and_encrypted);

/// The original design's `/configs` resource answers in its shape.
async fn configs_resource(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    let (status, body) = app.admin_get("/configs").await;
    assert_eq!(status, 200);
    let configs = body["configs"].as_array().unwrap();
    let retries = configs
        .iter()
        .find(|config| config["key"] == "MAX_RETRIES")
        .unwrap();
    assert_eq!(retries["value"], 3);
    assert_eq!(retries["kind"], "integer");
    assert_eq!(retries["editable"], true);
    let auth = configs
        .iter()
        .find(|config| config["key"] == "AUTH_TOKEN")
        .unwrap();
    assert_eq!(
        (auth["editable"].clone(), auth["secret"].clone()),
        (json!(false), json!(true))
    );
    let response = app
        .http
        .put(app.url("/configs/MAX_RETRIES"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].is_string());
    app.stop().await;
}
two_setups!(configs_shape, configs_resource);
