//! Quotas per key and model (issue 14, item 1): Google counts a key's quota per model, so a 429
//! whose `QuotaFailure` names a model rests the key for that model alone: until the next
//! midnight Pacific time for a quota per day, for `RetryInfo`'s delay for one per minute. The
//! key keeps serving the other models, and the rest survives a restart. (That a key serves the
//! model again once its time has come is shown with the time injected, in the unit tests of
//! the chat pool and of the keys service's state.)

use gb_tests::mock_gemini::Behavior;

use crate::each_setup;
use crate::harness::{Backend, Mode, TestApp, hello};

const PRO: &str = "/v1beta/models/gemini-2.5-pro:generateContent";
const FLASH: &str = "/v1beta/models/gemini-2.5-flash:generateContent";

/// The models a key's admin view says it rests for, with their ends (Unix ms).
fn model_cooldowns(key: &serde_json::Value) -> Vec<(String, i64)> {
    key["model_cooldowns"]
        .as_array()
        .map(|cooldowns| {
            cooldowns
                .iter()
                .map(|cooling| {
                    let until = chrono::DateTime::parse_from_rfc3339(
                        cooling["until"].as_str().unwrap_or_default(),
                    )
                    .map_or(0, |until| until.timestamp_millis());
                    (
                        cooling["model"].as_str().unwrap_or_default().to_owned(),
                        until,
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every key spent its daily `gemini-2.5-pro` requests: `pro` answers Google's 429 once per
/// key, then the gateway's own 429 without an upstream call, until midnight Pacific time (also
/// after a restart); `gemini-2.5-flash` is served by the same keys all along.
async fn a_daily_quota_rests_the_key_for_that_model_alone(mode: Mode, backend: Backend) {
    let mut app = TestApp::builder(mode, backend).spawn().await;
    for key in &app.keys {
        app.mock.set_behavior(
            key,
            Behavior::ModelQuota {
                model: "gemini-2.5-pro".into(),
                per_day: true,
                retry_delay_seconds: 20.0,
            },
        );
    }
    let before = gb_runtime::now_ms();
    let (status, body) = app.gemini_post(PRO, &hello("pro")).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(app.calls_per_key(), vec![1, 1], "each key tried once");
    let after = gb_runtime::now_ms();
    let zone = gb_runtime::settings::TimeZone::default();
    let midnights = [zone.next_midnight_ms(before), zone.next_midnight_ms(after)];
    for index in 0..app.keys.len() {
        let key = app
            .wait_for_key(index, |key| !model_cooldowns(key).is_empty())
            .await;
        let cooldowns = model_cooldowns(&key);
        assert_eq!(cooldowns.len(), 1, "{key}");
        assert_eq!(cooldowns[0].0, "gemini-2.5-pro");
        assert!(
            midnights.contains(&cooldowns[0].1),
            "resting until midnight in Los Angeles ({midnights:?}), not RetryInfo's 20 s: {key}"
        );
        assert_eq!(key["status"], "active", "the key itself is not cooling");
        assert_eq!(
            key["failure_count"], 0,
            "a quota is not a failure of the key"
        );
    }
    for round in 0..2 {
        if round == 1 {
            app.restart().await;
        }
        app.mock.clear_calls();
        for _ in 0..3 {
            let (status, body) = app.gemini_post(FLASH, &hello("flash")).await;
            assert_eq!(status, 200, "the other models are served: {body}");
        }
        assert_eq!(app.mock.calls().len(), 3);
        let (retry_after, _) = app.gemini_post_refused(PRO, &hello("pro again")).await;
        let midnight_in = (midnights[1] - gb_runtime::now_ms()) / 1000;
        assert!(
            retry_after.abs_diff(midnight_in.max(0) as u64) <= 2,
            "Retry-After {retry_after} s, midnight in {midnight_in} s"
        );
        assert_eq!(
            app.mock.calls().len(),
            3,
            "no upstream call for a model every key rests for (round {round})"
        );
    }
    app.stop().await;
}
each_setup!(
    daily_model_quota,
    a_daily_quota_rests_the_key_for_that_model_alone
);

/// A per-minute quota of `gemini-2.5-flash` on one key: that key rests for `flash` for the
/// `RetryInfo` delay, serves `gemini-2.5-pro` meanwhile, and `flash` again afterwards.
async fn a_minute_quota_rests_the_key_for_its_delay(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    app.mock.queue_behaviors(
        &app.keys[0],
        vec![Behavior::ModelQuota {
            model: "gemini-2.5-flash".into(),
            per_day: false,
            retry_delay_seconds: 1.0,
        }],
    );
    let started = gb_runtime::now_ms();
    let (status, body) = app.gemini_post(FLASH, &hello("flash")).await;
    assert_eq!(status, 200, "moved on to the other key: {body}");
    assert_eq!(app.calls_per_key(), vec![1, 1]);
    let key = app
        .wait_for_key(0, |key| !model_cooldowns(key).is_empty())
        .await;
    let cooldowns = model_cooldowns(&key);
    assert_eq!(cooldowns[0].0, "gemini-2.5-flash", "{key}");
    assert!(
        cooldowns[0].1 >= started + 1_000 && cooldowns[0].1 <= gb_runtime::now_ms() + 1_000,
        "for RetryInfo's second: {key}"
    );
    app.mock.clear_calls();
    for _ in 0..4 {
        assert_eq!(app.gemini_post(PRO, &hello("pro")).await.0, 200);
    }
    assert_eq!(
        app.calls_per_key(),
        vec![2, 2],
        "the key serves the other model while it rests for this one"
    );
    app.eventually("the key serves flash again after the delay", || async {
        assert_eq!(app.gemini_post(FLASH, &hello("flash again")).await.0, 200);
        app.mock
            .calls()
            .iter()
            .any(|call| call.key == app.keys[0] && call.path.contains("gemini-2.5-flash"))
    })
    .await;
    app.stop().await;
}
each_setup!(
    minute_model_quota,
    a_minute_quota_rests_the_key_for_its_delay
);
