//! The attempt loop through its `send` seam: every failure class, the retry bound, and what the
//! client gets when every attempt fails. No network: `send` answers what each test scripts.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use gb_proto::chat::ChatError;
use gb_proto::keys::v1 as pb;
use gb_runtime::batching::Batcher;
use gb_runtime::settings::Settings;
use gb_upstream::{DEFAULT_COOLDOWN, FailureClass, UpstreamFailure};

use super::{Attempts, Call, CallError, Origin};
use crate::chat_settings::ChatSettings;
use crate::pool::{LocalPool, NoKey};

struct Harness {
    attempts: Attempts,
    settings: ChatSettings,
    outcomes: Arc<Mutex<Vec<pb::Outcome>>>,
}

fn harness(keys: usize, max_retries: u32) -> Harness {
    harness_with(keys, &[("MAX_RETRIES", max_retries.to_string())])
}

fn harness_with(keys: usize, settings: &[(&str, String)]) -> Harness {
    let pool = LocalPool::default();
    let keys = (1..=keys as i64)
        .map(|id| pb::PoolKey {
            id,
            value: format!("AIzaSy-test-key-{id}"),
            status: pb::KeyStatus::Active.into(),
            cooldown_until_ms: 0,
            key_type: "gemini".into(),
            ..Default::default()
        })
        .collect();
    pool.apply(pb::pool_event::Event::Snapshot(pb::PoolSnapshot {
        keys,
        usage: None,
    }));
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let sink = outcomes.clone();
    let (reporter, _) = Batcher::start(64, "test_outcomes_dropped", "outcomes", move |batch| {
        sink.lock().unwrap_or_else(|e| e.into_inner()).extend(batch);
        async { Ok(()) }
    });
    let (logs, _) = Batcher::start(64, "test_logs_dropped", "logs", |_| async { Ok(()) });
    let environment = Settings::from_lookup(&|name| {
        settings
            .iter()
            .find(|(wanted, _)| *wanted == name)
            .map(|(_, value)| value.clone())
    });
    let Ok(chat_settings) = environment
        .map_err(anyhow::Error::from)
        .and_then(|settings| ChatSettings::from_settings(&settings))
    else {
        panic!("the test settings parse");
    };
    Harness {
        attempts: Attempts {
            pool: Arc::new(pool),
            reporter: crate::outcomes::OutcomeReporter::new(reporter),
            logs,
            // Never called: no test body names a gateway file.
            files: crate::files::FileLink::new(
                gb_runtime::grpc::connect(
                    "http://127.0.0.1:9",
                    gb_runtime::grpc::InternalToken::new("test").unwrap(),
                )
                .unwrap(),
            ),
        },
        settings: chat_settings,
        outcomes,
    }
}

fn call() -> Call<'static> {
    Call::native(
        Origin::default(),
        reqwest::Method::POST,
        "models/gemini-2.5-flash:generateContent",
        Some(Bytes::from_static(b"{}")),
        "gemini-2.5-flash",
    )
}

fn failure(status: u16, body: &str) -> UpstreamFailure {
    UpstreamFailure::from_response(status, Bytes::from(body.to_owned()))
}

/// Runs the loop with `send` answering the scripted results in order; returns the result and
/// the ids of the keys each attempt was sent on.
async fn run(
    harness: &Harness,
    script: Vec<Result<&'static str, UpstreamFailure>>,
) -> (Result<super::Attempted<&'static str>, CallError>, Vec<i64>) {
    let script = Mutex::new(VecDeque::from(script));
    let sent_on = Mutex::new(Vec::new());
    let call = call();
    let result = harness
        .attempts
        .attempt(&harness.settings, &call, |key| {
            sent_on
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(key.id);
            let next = script
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front()
                .unwrap_or(Ok("unscripted"));
            async move { next }
        })
        .await;
    (result, sent_on.into_inner().unwrap_or_default())
}

/// The outcome reports, once `count` of them have been batched out.
async fn outcomes(harness: &Harness, count: usize) -> Vec<pb::Outcome> {
    for _ in 0..400 {
        let seen = harness
            .outcomes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if seen.len() >= count {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{count} outcome reports never arrived");
}

fn class_of(outcome: &pb::Outcome) -> pb::OutcomeClass {
    outcome.class()
}

const INVALID_KEY: &str = r#"{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#;
const BAD_REQUEST: &str =
    r#"{"error":{"code":400,"message":"contents is not specified","status":"INVALID_ARGUMENT"}}"#;
const QUOTA_37S: &str = r#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}]}}"#;
const UNAVAILABLE: &str = r#"{"error":{"code":503,"message":"overloaded","status":"UNAVAILABLE"}}"#;

#[tokio::test]
async fn the_first_success_ends_the_loop() {
    let harness = harness(3, 3);
    let (result, sent_on) = run(&harness, vec![Ok("answer")]).await;
    let Ok(done) = result else {
        panic!("the call failed")
    };
    assert_eq!((done.value, done.attempts), ("answer", 1));
    assert_eq!(sent_on.len(), 1);
}

#[tokio::test]
async fn the_clients_own_error_is_returned_at_once_and_not_counted() {
    let harness = harness(3, 3);
    let (result, sent_on) = run(&harness, vec![Err(failure(400, BAD_REQUEST))]).await;
    let Err(CallError::Upstream(returned)) = result else {
        panic!("expected the 400")
    };
    assert_eq!(
        (returned.status, returned.class),
        (400, FailureClass::ClientError)
    );
    assert_eq!(sent_on.len(), 1, "not retried");
    let key = sent_on[0];
    assert!(
        (0..3).any(|_| harness
            .attempts
            .pool
            .pick("gemini-2.5-flash", &[], gb_runtime::now_ms())
            .is_ok_and(|picked| picked.id == key)),
        "the key stays in service"
    );
    let reported = outcomes(&harness, 1).await;
    assert_eq!(class_of(&reported[0]), pb::OutcomeClass::ClientError);
}

#[tokio::test]
async fn a_dead_key_is_disabled_at_once_and_the_next_key_answers() {
    let harness = harness(3, 3);
    let (result, sent_on) = run(&harness, vec![Err(failure(400, INVALID_KEY)), Ok("answer")]).await;
    let Ok(done) = result else {
        panic!("the call failed")
    };
    assert_eq!(done.attempts, 2);
    assert_ne!(sent_on[0], sent_on[1]);
    let dead = sent_on[0];
    for _ in 0..6 {
        let picked = harness
            .attempts
            .pool
            .pick("gemini-2.5-flash", &[], gb_runtime::now_ms());
        assert!(
            picked.is_ok_and(|key| key.id != dead),
            "a disabled key is never picked"
        );
    }
    let reported = outcomes(&harness, 1).await;
    assert_eq!(class_of(&reported[0]), pb::OutcomeClass::DeadKey);
    assert_eq!(reported[0].key_id, dead);
}

#[tokio::test]
async fn a_quota_error_cools_the_key_for_the_upstream_delay() {
    let harness = harness(2, 3);
    let before = gb_runtime::now_ms();
    let (result, sent_on) = run(&harness, vec![Err(failure(429, QUOTA_37S)), Ok("answer")]).await;
    assert!(result.is_ok());
    let cooled = sent_on[0];
    let now = gb_runtime::now_ms();
    for _ in 0..4 {
        assert_ne!(
            harness
                .attempts
                .pool
                .pick("gemini-2.5-flash", &[], now)
                .ok()
                .map(|key| key.id),
            Some(cooled)
        );
    }
    // Free again once the 37 s have passed (time injected into the pick).
    let later = before + 37_000 + 1_000;
    assert!((0..2).any(|_| {
        harness
            .attempts
            .pool
            .pick("gemini-2.5-flash", &[], later)
            .is_ok_and(|key| key.id == cooled)
    }));
    let reported = outcomes(&harness, 1).await;
    assert_eq!(class_of(&reported[0]), pb::OutcomeClass::Quota);
    assert_eq!(reported[0].retry_after_ms, 37_000);
}

#[tokio::test]
async fn a_quota_error_without_a_delay_cools_for_the_default() {
    let harness = harness(1, 3);
    let before = gb_runtime::now_ms();
    let (result, _) = run(&harness, vec![Err(failure(429, "{}"))]).await;
    let Err(CallError::Upstream(returned)) = result else {
        panic!("expected the 429")
    };
    assert_eq!(returned.status, 429, "a 429 stays a 429");
    let default_ms = DEFAULT_COOLDOWN.as_millis() as i64;
    let Err(NoKey::AllCooling { until_ms }) =
        harness.attempts.pool.pick("gemini-2.5-flash", &[], before)
    else {
        panic!("the key should be cooling");
    };
    assert!(until_ms >= before + default_ms && until_ms <= gb_runtime::now_ms() + default_ms);
}

#[tokio::test]
async fn transient_failures_move_on_until_max_retries_then_return_the_last() {
    let harness = harness(5, 3);
    let script = vec![
        Err(failure(500, "{}")),
        Err(failure(502, "{}")),
        Err(failure(503, UNAVAILABLE)),
        Ok("never sent"),
    ];
    let (result, sent_on) = run(&harness, script).await;
    assert_eq!(sent_on.len(), 3, "MAX_RETRIES attempts");
    let distinct: std::collections::HashSet<_> = sent_on.iter().collect();
    assert_eq!(distinct.len(), 3, "each attempt on another key");
    let Err(error) = result else {
        panic!("every attempt failed")
    };
    let chat_error = ChatError::from(error);
    assert_eq!(chat_error.http_status, 503);
    assert_eq!(chat_error.body, Bytes::from_static(UNAVAILABLE.as_bytes()));
    let reported = outcomes(&harness, 3).await;
    assert!(
        reported
            .iter()
            .all(|outcome| class_of(outcome) == pb::OutcomeClass::Transient)
    );
}

#[tokio::test]
async fn with_fewer_keys_than_retries_each_key_is_tried_once() {
    let harness = harness(2, 5);
    let script = vec![
        Err(failure(503, UNAVAILABLE)),
        Err(failure(503, UNAVAILABLE)),
    ];
    let (result, sent_on) = run(&harness, script).await;
    assert_eq!(sent_on.len(), 2);
    let Err(CallError::Upstream(last)) = result else {
        panic!("the last failure")
    };
    assert_eq!(last.status, 503);
}

#[tokio::test]
async fn no_usable_key_is_a_503_and_all_cooling_a_429_with_retry_after() {
    let harness = harness(0, 3);
    let (result, sent_on) = run(&harness, vec![]).await;
    assert!(sent_on.is_empty());
    let Err(error) = result else { panic!("no key") };
    assert_eq!(ChatError::from(error).http_status, 503);

    let harness = harness_with_all_cooling();
    let (result, sent_on) = run(&harness, vec![]).await;
    assert!(sent_on.is_empty(), "no upstream call when every key cools");
    let Err(error) = result else {
        panic!("all cooling")
    };
    let error = ChatError::from(error);
    assert_eq!(error.http_status, 429);
    assert!(
        error
            .retry_after_seconds
            .is_some_and(|seconds| seconds >= 1)
    );
}

fn harness_with_all_cooling() -> Harness {
    let harness = harness(2, 3);
    let until = gb_runtime::now_ms() + 30_000;
    for _ in 0..2 {
        if let Ok(key) = harness.attempts.pool.pick("gemini-2.5-flash", &[], 0) {
            key.mark_cooling_until(until);
        }
    }
    harness
}

#[tokio::test]
async fn this_replica_stops_picking_a_key_at_max_failures_before_the_verdict() {
    let harness = harness_with(
        2,
        &[
            ("MAX_RETRIES", "1".to_owned()),
            ("MAX_FAILURES", "2".to_owned()),
        ],
    );
    // One attempt per call: fail whichever key is picked, until one key has failed twice.
    let mut failures = std::collections::HashMap::new();
    let failing = loop {
        let (_, sent_on) = run(&harness, vec![Err(failure(503, UNAVAILABLE))]).await;
        let count = failures.entry(sent_on[0]).or_insert(0);
        *count += 1;
        if *count == 2 {
            break sent_on[0];
        }
    };
    for _ in 0..6 {
        let (_, sent_on) = run(&harness, vec![Ok("answer")]).await;
        assert_ne!(
            sent_on,
            vec![failing],
            "a key at MAX_FAILURES is not picked"
        );
    }
}

#[tokio::test]
async fn a_success_starts_the_count_over() {
    let harness = harness_with(
        1,
        &[
            ("MAX_RETRIES", "1".to_owned()),
            ("MAX_FAILURES", "2".to_owned()),
        ],
    );
    for script in [
        Err(failure(503, UNAVAILABLE)),
        Ok("answer"),
        Err(failure(503, UNAVAILABLE)),
    ] {
        let (_, sent_on) = run(&harness, vec![script]).await;
        assert_eq!(sent_on.len(), 1);
    }
    let (result, sent_on) = run(&harness, vec![Ok("answer")]).await;
    assert!(
        result.is_ok() && sent_on.len() == 1,
        "one failure since the success: still in use"
    );
}
