//! The key pool's rules, one test each: failure classes, cooldown, MAX_FAILURES, reset on
//! success, no retry of the client's own errors, the upstream status when every attempt fails,
//! streams cut after output, state across restarts, round robin, periodic re-checks.

use gb_tests::mock_gemini::Behavior;

use crate::harness::{Backend, Mode, TestApp, new_key};
use crate::{each_setup, two_setups};

/// 400 API_KEY_INVALID: the key is disabled at once and never tried again.
async fn dead_key_is_disabled_at_once(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    app.mock.set_behavior(&app.keys[0], Behavior::InvalidKey);
    let (status, body) = app.generate("hello").await;
    assert_eq!(status, 200, "{body}");
    let disabled = app.wait_for_key(0, |key| key["status"] == "disabled").await;
    assert!(
        disabled["last_error"]
            .as_str()
            .unwrap()
            .contains("API key not valid")
    );
    for _ in 0..4 {
        assert_eq!(app.generate("again").await.0, 200);
    }
    assert_eq!(app.calls_per_key(), vec![1, 5]);
    app.stop().await;
}
each_setup!(dead_key, dead_key_is_disabled_at_once);

/// 403 (suspended consumer): dead as well.
async fn suspended_key_is_disabled(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    app.mock.set_behavior(&app.keys[0], Behavior::Suspended);
    assert_eq!(app.generate("hello").await.0, 200);
    app.wait_for_key(0, |key| key["status"] == "disabled").await;
    app.stop().await;
}
two_setups!(suspended_key, suspended_key_is_disabled);

/// 429 with RetryInfo: the key cools down for the given delay (not counted as a failure), the
/// request moves on, and the key serves again once the delay is over.
async fn quota_cools_down_and_moves_on(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    app.mock.queue_behaviors(
        &app.keys[0],
        vec![Behavior::Quota {
            retry_delay_seconds: Some(1.5),
        }],
    );
    assert_eq!(app.generate("hello").await.0, 200);
    let cooling = app
        .wait_for_key(0, |key| key["status"] == "cooling_down")
        .await;
    assert_eq!(
        cooling["failure_count"], 0,
        "a quota error is not a failure of the key"
    );
    assert!(cooling["cooldown_until"].is_string());
    for _ in 0..4 {
        assert_eq!(app.generate("while cooling").await.0, 200);
    }
    assert_eq!(
        app.calls_per_key(),
        vec![1, 5],
        "a cooling key is not picked"
    );
    app.wait_for_key(0, |key| key["status"] == "active").await;
    app.eventually("the key serves again after its cooldown", || async {
        assert_eq!(app.generate("after cooling").await.0, 200);
        app.calls_per_key()[0] >= 2
    })
    .await;
    app.stop().await;
}
each_setup!(quota_cooldown, quota_cools_down_and_moves_on);

/// 5xx: counted as a failure, the request moves on to another key.
async fn server_error_counts_and_moves_on(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    app.mock
        .queue_behaviors(&app.keys[0], vec![Behavior::ServerError { status: 503 }]);
    let (status, body) = app.generate("hello").await;
    assert_eq!(status, 200, "{body}");
    let failed = app.wait_for_key(0, |key| key["failure_count"] == 1).await;
    assert_eq!(failed["status"], "active");
    assert_eq!(app.calls_per_key(), vec![1, 1]);
    app.stop().await;
}
each_setup!(server_error, server_error_counts_and_moves_on);

/// MAX_FAILURES transient failures in a row disable the key.
async fn max_failures_disable(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend)
        .setting("MAX_FAILURES", "2")
        .spawn()
        .await;
    app.mock
        .set_behavior(&app.keys[0], Behavior::ServerError { status: 500 });
    let mut sent = 0;
    while app.calls_per_key()[0] < 2 {
        assert_eq!(app.generate("hello").await.0, 200);
        sent += 1;
        assert!(sent < 20);
    }
    app.wait_for_key(0, |key| {
        key["status"] == "disabled" && key["failure_count"] == 2
    })
    .await;
    // The verdict reaches the chat service over the pool stream: from then on (two requests
    // in a row, one per key of the ring, leaving it alone), it is never picked again.
    app.eventually("the chat service has the verdict", || async {
        let before = app.calls_per_key()[0];
        for _ in 0..2 {
            assert_eq!(app.generate("after").await.0, 200);
        }
        app.calls_per_key()[0] == before
    })
    .await;
    let before = app.calls_per_key()[0];
    for _ in 0..4 {
        assert_eq!(app.generate("after").await.0, 200);
    }
    assert_eq!(
        app.calls_per_key()[0],
        before,
        "a disabled key is not picked"
    );
    app.stop().await;
}
each_setup!(max_failures, max_failures_disable);

/// A success resets the count of failures in a row.
async fn success_resets_failures(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend)
        .setting("MAX_FAILURES", "3")
        .spawn()
        .await;
    app.mock.queue_behaviors(
        &app.keys[0],
        vec![
            Behavior::ServerError { status: 500 },
            Behavior::ServerError { status: 500 },
        ],
    );
    while app.calls_per_key()[0] < 2 {
        assert_eq!(app.generate("hello").await.0, 200);
    }
    app.wait_for_key(0, |key| key["failure_count"] == 2).await;
    while app.calls_per_key()[0] < 3 {
        assert_eq!(app.generate("hello").await.0, 200);
    }
    let healed = app.wait_for_key(0, |key| key["failure_count"] == 0).await;
    assert_eq!(healed["status"], "active");
    assert!(healed["success_count"].as_u64().unwrap() >= 1);
    app.stop().await;
}
each_setup!(success_resets, success_resets_failures);

/// The client's own 400 is returned as is, after one attempt, and not held against the key.
async fn client_error_not_retried(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    let (status, body) = app
        .gemini_post(
            "/v1beta/models/gemini-2.5-flash:generateContent",
            &serde_json::json!({"contents": []}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("contents is not specified")
    );
    let (status, body) = app
        .gemini_post(
            "/v1beta/models/no-such-model:generateContent",
            &crate::harness::hello("x"),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["status"], "NOT_FOUND");
    assert_eq!(app.mock.calls().len(), 2, "one attempt each, no retry");
    // Outcomes are applied in the order they were reported: once a success on each key that
    // came after the errors is in, the errors' outcomes are too.
    for _ in 0..2 {
        assert_eq!(app.generate("fine").await.0, 200);
    }
    for index in 0..2 {
        app.wait_for_key(index, |key| key["success_count"].as_u64() >= Some(1))
            .await;
    }
    for key in app.key_states().await {
        assert_eq!(key["failure_count"], 0);
        assert_eq!(key["status"], "active");
    }
    app.stop().await;
}
each_setup!(client_error, client_error_not_retried);

/// When every attempt fails, the client gets the upstream's own status and body.
async fn all_failing_returns_upstream_status(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend)
        .keys(vec![new_key(), new_key(), new_key()])
        .setting("MAX_RETRIES", "2")
        .spawn()
        .await;
    for key in &app.keys {
        app.mock
            .set_behavior(key, Behavior::ServerError { status: 503 });
    }
    let (status, body) = app.generate("hello").await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["status"], "UNAVAILABLE");
    assert_eq!(
        body["error"]["message"],
        "The model is overloaded. Please try again later."
    );
    assert_eq!(
        app.mock.calls().len(),
        2,
        "MAX_RETRIES attempts, each on another key"
    );
    app.stop().await;

    let app = TestApp::builder(mode, backend).spawn().await;
    for key in &app.keys {
        app.mock.set_behavior(
            key,
            Behavior::Quota {
                retry_delay_seconds: Some(20.0),
            },
        );
    }
    let response = app
        .http
        .post(app.url("/v1beta/models/gemini-2.5-flash:generateContent"))
        .header("x-goog-api-key", crate::harness::CLIENT_TOKEN)
        .json(&crate::harness::hello("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429, "a 429 stays a 429");
    assert_eq!(response.headers()["retry-after"], "20");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    assert!(
        body["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .any(|detail| detail["retryDelay"] == "20s")
    );
    // Every key is cooling now: the gateway answers 429 itself, without calling upstream.
    let calls = app.mock.calls().len();
    let (status, body) = app.generate("again").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(app.mock.calls().len(), calls);
    app.stop().await;
}
each_setup!(all_failing, all_failing_returns_upstream_status);

fn data_events(sse: &str) -> Vec<serde_json::Value> {
    sse.split("\r\n\r\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect()
}

/// A stream cut after output ends with an error event: no retry, no text twice.
async fn stream_cut_midway(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    app.mock.set_stream_chunks(3);
    app.mock
        .set_behavior(&app.keys[0], Behavior::CutStreamAfter { chunks: 1 });
    let (status, sse) = app.stream_sse("one two three four five six").await;
    assert_eq!(status, 200);
    let events = data_events(&sse);
    assert_eq!(events.len(), 2, "one chunk, then the error event: {sse}");
    assert!(events[0]["candidates"].is_array());
    assert!(events[1]["error"]["code"].as_u64().unwrap() >= 500);
    assert_eq!(sse.matches("Echo:").count(), 1, "no text sent twice");
    assert_eq!(app.mock.calls().len(), 1, "no retry after the first byte");
    app.wait_for_key(0, |key| key["failure_count"] == 1).await;
    app.stop().await;
}
each_setup!(stream_cut, stream_cut_midway);

/// A stream that fails before its first byte is retried on another key, unseen by the client.
async fn stream_retried_before_first_byte(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    app.mock
        .set_behavior(&app.keys[0], Behavior::ServerError { status: 500 });
    let (status, sse) = app.stream_sse("hello stream").await;
    assert_eq!(status, 200);
    let events = data_events(&sse);
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|event| event.get("error").is_none()));
    assert_eq!(app.calls_per_key(), vec![1, 1]);
    app.stop().await;
}
two_setups!(stream_retry, stream_retried_before_first_byte);

/// Key state is persisted: after a restart, a disabled key stays disabled, a cooling key stays
/// cooling, and re-importing API_KEYS adds no duplicate.
async fn key_state_survives_restart(mode: Mode, backend: Backend) {
    let mut app = TestApp::builder(mode, backend).spawn().await;
    app.mock.set_behavior(&app.keys[0], Behavior::InvalidKey);
    app.mock.set_behavior(
        &app.keys[1],
        Behavior::Quota {
            retry_delay_seconds: Some(120.0),
        },
    );
    let (status, _) = app.generate("hello").await;
    assert_eq!(status, 429);
    app.wait_for_key(0, |key| key["status"] == "disabled").await;
    app.wait_for_key(1, |key| key["status"] == "cooling_down")
        .await;
    app.restart().await;
    let (_, listed) = app.admin_get("/keys").await;
    assert_eq!(
        listed["keys"].as_array().unwrap().len(),
        2,
        "no duplicate after re-import"
    );
    let states = app.key_states().await;
    assert_eq!(states[0]["status"], "disabled");
    assert_eq!(states[1]["status"], "cooling_down");
    app.mock.clear_calls();
    let (status, body) = app.generate("after restart").await;
    assert_eq!(status, 429, "{body}");
    assert!(
        app.mock.calls().is_empty(),
        "the restarted chat service knows the state"
    );
    app.stop().await;
}
each_setup!(restart, key_state_survives_restart);

/// Round robin: the load spreads evenly over usable keys.
async fn round_robin_spreads(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend)
        .keys(vec![new_key(), new_key(), new_key()])
        .spawn()
        .await;
    for _ in 0..30 {
        assert_eq!(app.generate("spread").await.0, 200);
    }
    assert_eq!(app.calls_per_key(), vec![10, 10, 10]);
    app.stop().await;
}
two_setups!(round_robin, round_robin_spreads);

/// Every CHECK_INTERVAL_HOURS, disabled keys are re-checked with TEST_MODEL and come back.
async fn periodic_check_revives_keys(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend)
        .setting("CHECK_INTERVAL_HOURS", "0.0002")
        .spawn()
        .await;
    app.mock.set_behavior(&app.keys[0], Behavior::InvalidKey);
    assert_eq!(app.generate("hello").await.0, 200);
    app.wait_for_key(0, |key| key["status"] == "disabled").await;
    app.mock.set_behavior(&app.keys[0], Behavior::Ok);
    app.wait_for_key(0, |key| key["status"] == "active").await;
    let check = app
        .mock
        .calls()
        .into_iter()
        .rev()
        .find(|call| call.key == app.keys[0])
        .unwrap();
    assert_eq!(
        check.path, "/v1beta/models/gemini-2.5-flash-lite:generateContent",
        "TEST_MODEL is used"
    );
    app.stop().await;
}
two_setups!(periodic_check, periodic_check_revives_keys);

/// A key that goes dead while the keys service is down is disabled once it is back: the chat
/// service's outcome reports wait, retried, and are applied when they arrive.
async fn a_keys_outage_loses_no_verdict(mode: Mode, backend: Backend) {
    let _one_at_a_time = crate::harness::OUTAGES.lock().await;
    let mut app = TestApp::builder(mode, backend).spawn().await;
    app.mock.set_behavior(&app.keys[0], Behavior::InvalidKey);
    let retried = || crate::harness::batches_retried_past_three_tries("outcome reports");
    let before = retried();
    app.outage_of(crate::harness::Service::Keys, async |app: &TestApp| {
        for _ in 0..4 {
            assert_eq!(app.generate("during the outage").await.0, 200);
        }
        assert!(
            app.calls_per_key()[0] >= 1,
            "the dead key was tried during the outage"
        );
        app.eventually("the outcome reports retry past three tries", || async {
            retried() > before
        })
        .await;
    })
    .await;
    let dead = app.wait_for_key(0, |key| key["status"] == "disabled").await;
    assert!(
        dead["last_error"]
            .as_str()
            .is_some_and(|error| error.contains("API key not valid")),
        "{dead}"
    );
    assert_eq!(app.key_states().await[1]["status"], "active");
    app.stop().await;
}

crate::microservices_only!(keys_outage, a_keys_outage_loses_no_verdict);
