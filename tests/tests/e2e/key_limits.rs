//! Known limits per key and model (issue 14, item 2): with `KEY_MODEL_LIMITS` set to what Google
//! allows, the pool steps around a key at its limit before Google refuses it; with every key at
//! it, the client gets the gateway's own 429 with `Retry-After`, and no call goes upstream. The
//! mock enforces the same limits as Google does, and counts what it refused.

use gb_tests::mock_quotas::ModelQuota;

use crate::harness::{Backend, CLIENT_TOKEN, Mode, TestApp, hello};
use crate::{microservices_only, two_setups};

const FLASH: &str = "/v1beta/models/gemini-2.5-flash:generateContent";
const PRO: &str = "/v1beta/models/gemini-2.5-pro:generateContent";

/// The `/api/stats/limits` row of one key and model.
async fn usage_row(app: &TestApp, key_index: usize, model: &str) -> Option<serde_json::Value> {
    let (status, body) = app.admin_get("/api/stats/limits").await;
    assert_eq!(status, 200, "{body}");
    let masked = gb_runtime::secrets::mask_key(&app.keys[key_index]);
    body["keys"]
        .as_array()?
        .iter()
        .find(|row| row["key"] == masked.as_str() && row["model"] == model)
        .cloned()
}

/// Three requests a minute per key for flash (Google's, enforced by the mock, and the same in
/// `KEY_MODEL_LIMITS`): six requests are served, three on each key, and the seventh gets the
/// gateway's own 429 without an upstream call; the mock refused nothing. Pro, with no limit,
/// is still served. A limit of 0 per day, set while running, stops pro at once; removing it
/// serves pro again.
async fn requests_per_minute_are_honoured_before_google_refuses(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend)
        .setting("KEY_MODEL_LIMITS", r#"{"gemini-2.5-flash": {"rpm": 3}}"#)
        .spawn()
        .await;
    for key in &app.keys {
        app.mock.set_model_quota(
            key,
            "gemini-2.5-flash",
            ModelQuota {
                rpm: Some(3),
                rpd: None,
            },
        );
    }
    for round in 0..6 {
        let (status, body) = app.gemini_post(FLASH, &hello("flash")).await;
        assert_eq!(status, 200, "request {round}: {body}");
    }
    assert_eq!(app.calls_per_key(), vec![3, 3]);
    let (retry_after, body) = app.gemini_post_refused(FLASH, &hello("one too many")).await;
    assert!(
        (1..=61).contains(&retry_after),
        "free again when the first request leaves the minute: {retry_after}"
    );
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED", "{body}");
    assert_eq!(app.mock.calls().len(), 6, "no upstream call at the limit");
    assert_eq!(app.mock.quota_refusals(), 0, "Google never had to refuse");
    let (status, body) = app.gemini_post(PRO, &hello("pro")).await;
    assert_eq!(status, 200, "another model is not limited: {body}");

    // The keys service's sums, every replica's reports together.
    app.eventually("the statistics show the minute's use", || async {
        usage_row(&app, 0, "gemini-2.5-flash")
            .await
            .is_some_and(|row| row["requests_last_minute"] == 3 && row["rpm"] == 3)
    })
    .await;
    let row = usage_row(&app, 0, "gemini-2.5-flash").await.unwrap();
    assert_eq!(row["requests_today"], 3, "{row}");
    assert!(row["tokens_last_minute"].as_u64().unwrap() > 0, "{row}");
    assert!(row["tpm"].is_null() && row["rpd"].is_null(), "{row}");

    app.put_setting(
        "KEY_MODEL_LIMITS",
        serde_json::json!({"gemini-2.5-flash": {"rpm": 3}, "gemini-2.5-pro": {"rpd": 0}}),
    )
    .await;
    app.eventually("a limit of 0 a day stops pro", || async {
        app.gemini_post(PRO, &hello("pro")).await.0 == 429
    })
    .await;
    let upstream = app.mock.calls().len();
    assert_eq!(app.gemini_post(PRO, &hello("pro")).await.0, 429);
    assert_eq!(app.mock.calls().len(), upstream, "no upstream call");
    app.put_setting(
        "KEY_MODEL_LIMITS",
        serde_json::json!({"gemini-2.5-flash": {"rpm": 3}}),
    )
    .await;
    app.eventually("pro is served again without the limit", || async {
        app.gemini_post(PRO, &hello("pro")).await.0 == 200
    })
    .await;
    app.stop().await;
}
two_setups!(
    requests_per_minute,
    requests_per_minute_are_honoured_before_google_refuses
);

/// Two chat replicas (each behind its own gateway) share one key's count through the keys
/// service: once the first has spent the key's minute and the keys service has summed it, the
/// second refuses too, having made at most what it sent before the next push reached it (a poll
/// every 25 ms against a push every 200 ms), far fewer than the limit it would serve on its own
/// count.
async fn two_chat_replicas_share_the_counts(mode: Mode, backend: Backend) {
    const RPM: usize = 20;
    let key = crate::harness::new_key();
    let mut app = TestApp::builder(mode, backend)
        .keys(vec![key.clone()])
        .setting(
            "KEY_MODEL_LIMITS",
            &format!(r#"{{"gemini-2.5-flash": {{"rpm": {RPM}}}}}"#),
        )
        .spawn()
        .await;
    // The mock does not enforce the limit here: what the second replica overshoots is served,
    // and counted.
    let second = app.spawn_second_front().await;
    for round in 0..RPM {
        let (status, body) = app.gemini_post(FLASH, &hello("first")).await;
        assert_eq!(status, 200, "request {round}: {body}");
    }
    assert_eq!(app.gemini_post(FLASH, &hello("first")).await.0, 429);
    // The keys service has every report of the first replica; its next push carries them.
    app.eventually(
        "the keys service sums the first replica's minute",
        || async {
            usage_row(&app, 0, "gemini-2.5-flash")
                .await
                .is_some_and(|row| row["requests_last_minute"] == RPM)
        },
    )
    .await;
    let served_by_second = std::sync::atomic::AtomicUsize::new(0);
    app.eventually("the second replica refuses the spent key", || async {
        let status = app
            .gemini_send_to(&second, CLIENT_TOKEN, FLASH, &hello("second"))
            .await
            .status()
            .as_u16();
        if status == 200 {
            served_by_second.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        status == 429
    })
    .await;
    let served = served_by_second.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        served < RPM / 2,
        "the second replica served {served} before it heard of the first one's {RPM}"
    );
    assert_eq!(
        app.mock.calls().len(),
        RPM + served,
        "at most what was sent before the sums arrived went upstream"
    );
    app.stop().await;
}
microservices_only!(two_replicas, two_chat_replicas_share_the_counts);
