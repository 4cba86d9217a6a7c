//! The statistics over more upstream attempts than the old 500,000-row cap, loaded through the
//! logging service's own write path (`WriteRecords`, in batches as the chat service sends
//! them), each statistic of the admin API checked against the test's own count of what it
//! wrote: calls per period, attention keys, a key's models, tokens per day by client and key.

use std::collections::BTreeMap;

use chrono::{Datelike, TimeZone, Utc};
use gb_proto::keys::v1::OutcomeClass;
use gb_proto::logging::v1 as logging;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::harness::{ADMIN_TOKEN, Backend, Mode, TestApp, new_key};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// More than the old cap of 500,000 rows a statistic read.
const ATTEMPTS: usize = 640_000;
const BATCH: usize = 5_000;
const MODELS: [&str; 2] = ["gemini-2.5-flash", "gemini-2.5-pro"];
const CLIENTS: [&str; 2] = ["token-aaaa11112222", "token-bbbb33334444"];
/// Ages of the bulk, each well inside or outside the windows (which are cut at whole minutes),
/// 85% of them within the last day: 20 minutes, 5 hours, 23 hours, 26 hours, 3 days.
const AGES: [i64; 20] = [
    20 * MINUTE,
    20 * MINUTE,
    20 * MINUTE,
    20 * MINUTE,
    20 * MINUTE,
    20 * MINUTE,
    20 * MINUTE,
    5 * HOUR,
    5 * HOUR,
    5 * HOUR,
    5 * HOUR,
    5 * HOUR,
    5 * HOUR,
    5 * HOUR,
    23 * HOUR,
    23 * HOUR,
    23 * HOUR,
    26 * HOUR,
    26 * HOUR,
    3 * DAY,
];

struct Written {
    at_ms: i64,
    key: usize,
    model: &'static str,
    client: &'static str,
    status: u32,
    prompt: u64,
    completion: u64,
}

/// A batch as the chat service sends it.
#[derive(Default)]
struct Records {
    requests: Vec<logging::RequestRecord>,
    errors: Vec<logging::ErrorRecord>,
}

impl Records {
    fn len(&self) -> usize {
        self.requests.len() + self.errors.len()
    }
}

/// The records of a client request that took one attempt, as the chat service writes them:
/// the request's row (with the attempt's key, status and tokens), and an error log when the
/// attempt failed.
fn attempt(
    index: usize,
    now: i64,
    age: i64,
    keys: &[(i64, String)],
    records: &mut Records,
) -> Written {
    let key = index % keys.len();
    let status = match index % 10 {
        0 => 429,
        1 => 500,
        _ => 200,
    };
    let success = status == 200;
    let written = Written {
        at_ms: now - age - (index % 1000) as i64,
        key,
        model: MODELS[(index / 3) % 2],
        client: CLIENTS[(index / 7) % 2],
        status,
        prompt: if success { 3 + (index % 5) as u64 } else { 0 },
        completion: if success { 7 } else { 0 },
    };
    let outcome = match status {
        200 => OutcomeClass::Success,
        429 => OutcomeClass::Quota,
        _ => OutcomeClass::Transient,
    };
    let record = logging::RequestRecord {
        at_ms: written.at_ms,
        kind: logging::RecordKind::Client.into(),
        method: "POST".into(),
        path: format!("/v1beta/models/{}:generateContent", written.model),
        model: written.model.into(),
        key_id: keys[key].0,
        key_masked: keys[key].1.clone(),
        status_code: status,
        latency_ms: 50 + (index % 1000) as u32,
        prompt_tokens: written.prompt,
        completion_tokens: written.completion,
        client: written.client.into(),
        outcome: outcome.into(),
        attempts: 1,
        label: String::new(),
    };
    if !success {
        records.errors.push(logging::ErrorRecord {
            at_ms: record.at_ms,
            key_id: record.key_id,
            key_masked: record.key_masked.clone(),
            model: record.model.clone(),
            error_type: "gemini-generate".into(),
            error_class: outcome.into(),
            error_code: status,
            error_message: "failed".into(),
            request_body: String::new(),
            client: record.client.clone(),
            latency_ms: record.latency_ms,
        });
    }
    records.requests.push(record);
    written
}

async fn write(
    client: &mut logging::logging_service_client::LoggingServiceClient<tonic::transport::Channel>,
    records: Records,
) {
    let mut request = tonic::Request::new(logging::WriteRecordsRequest {
        requests: records.requests,
        errors: records.errors,
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {ADMIN_TOKEN}").parse().unwrap(),
    );
    client.write_records(request).await.unwrap();
}

fn counts(written: &[Written], since: i64) -> Value {
    let inside: Vec<&Written> = written.iter().filter(|w| w.at_ms >= since).collect();
    let success = inside.iter().filter(|w| w.status == 200).count();
    json!({"total": inside.len(), "success": success, "failure": inside.len() - success})
}

fn day_of(at_ms: i64) -> String {
    Utc.timestamp_millis_opt(at_ms)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string()
}

/// An admin GET, its time added to the slowest seen.
async fn timed(app: &TestApp, path: &str, slowest: &mut std::time::Duration) -> (u16, Value) {
    let started = Instant::now();
    let answer = app.admin_get(path).await;
    *slowest = (*slowest).max(started.elapsed());
    answer
}

async fn statistics_are_exact_past_the_old_cap(mode: Mode, backend: Backend) {
    let keys = vec![new_key(), new_key(), new_key()];
    let app = TestApp::builder(mode, backend)
        .keys(keys.clone())
        .spawn()
        .await;
    let listed = app.key_states().await;
    let pool: Vec<(i64, String)> = listed
        .iter()
        .map(|key| {
            (
                key["id"].as_i64().unwrap(),
                key["key_value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut client = logging::logging_service_client::LoggingServiceClient::new(
        tonic::transport::Endpoint::from_shared(format!("http://{}", app.logging_addr.unwrap()))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let started = Instant::now();
    let now = Utc::now().timestamp_millis();
    let mut written = Vec::with_capacity(ATTEMPTS + 100);
    let mut batch = Records::default();
    for index in 0..ATTEMPTS {
        let age = AGES[(index / 10) % AGES.len()];
        written.push(attempt(index, now, age, &pool, &mut batch));
        if batch.len() >= BATCH {
            write(&mut client, std::mem::take(&mut batch)).await;
        }
    }
    write(&mut client, batch).await;
    // The last minute's attempts, written last so that they are seconds old when read.
    let now = Utc::now().timestamp_millis();
    let mut recent = Records::default();
    for index in 0..100 {
        written.push(attempt(ATTEMPTS + index, now, 5_000, &pool, &mut recent));
    }
    write(&mut client, recent).await;
    let loaded = started.elapsed();

    let mut slowest = std::time::Duration::ZERO;
    let (status, calls) = timed(&app, "/api/stats/calls", &mut slowest).await;
    assert_eq!(status, 200, "{calls}");
    let now = Utc::now().timestamp_millis();
    let month_start = Utc
        .with_ymd_and_hms(Utc::now().year(), Utc::now().month(), 1, 0, 0, 0)
        .unwrap()
        .timestamp_millis();
    assert_eq!(calls["calls_1m"], counts(&written, now - MINUTE + 30_000));
    assert_eq!(calls["calls_1h"], counts(&written, now - HOUR + 30_000));
    assert_eq!(calls["calls_24h"], counts(&written, now - DAY + 30_000));
    assert_eq!(calls["calls_month"], counts(&written, month_start));
    assert!(
        calls["calls_24h"]["total"].as_u64().unwrap() > 500_000,
        "more than the old cap in one window: {calls}"
    );

    let day_ago = now - DAY + 30_000;
    let (_, attention) = timed(
        &app,
        "/api/stats/attention-keys?status_code=429&period=24h&limit=10",
        &mut slowest,
    )
    .await;
    let mut expected: Vec<(u64, i64)> = (0..pool.len())
        .map(|key| {
            let count = written
                .iter()
                .filter(|w| w.key == key && w.status == 429 && w.at_ms >= day_ago)
                .count() as u64;
            (count, pool[key].0)
        })
        .collect();
    expected.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let expected: Vec<Value> = expected
        .iter()
        .map(|(count, id)| {
            let masked = &pool.iter().find(|(key_id, _)| key_id == id).unwrap().1;
            json!({"key": masked, "key_id": id, "count": count})
        })
        .collect();
    assert_eq!(attention, Value::Array(expected));

    let (_, usage) = timed(
        &app,
        &format!("/api/key-usage-details/{}", keys[1]),
        &mut slowest,
    )
    .await;
    for model in MODELS {
        let of_model: Vec<&Written> = written
            .iter()
            .filter(|w| w.key == 1 && w.model == model && w.at_ms >= day_ago)
            .collect();
        let listed = usage["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["model"] == model)
            .unwrap();
        let success = of_model.iter().filter(|w| w.status == 200).count();
        assert_eq!(listed["calls"], of_model.len(), "{model}: {listed}");
        assert_eq!(listed["success"], success, "{model}");
        assert_eq!(
            listed["prompt_tokens"],
            of_model.iter().map(|w| w.prompt).sum::<u64>()
        );
        assert_eq!(
            listed["completion_tokens"],
            of_model.iter().map(|w| w.completion).sum::<u64>()
        );
        // Latencies 50..1049 ms: the median in the (300, 1000] bucket, p99 in (1000, 3000].
        assert_eq!(listed["latency_p50_ms"], 1000, "{listed}");
        assert_eq!(listed["latency_p99_ms"], 3000, "{listed}");
    }

    let today_start = now - now.rem_euclid(DAY);
    let week_start = today_start - 6 * DAY;
    for group_by in ["client", "key"] {
        let (_, tokens) = timed(
            &app,
            &format!("/api/stats/tokens?group_by={group_by}&days=7"),
            &mut slowest,
        )
        .await;
        let mut expected: BTreeMap<(String, String), (u64, u64, u64)> = BTreeMap::new();
        for w in written
            .iter()
            .filter(|w| w.status == 200 && w.at_ms >= week_start)
        {
            let group = if group_by == "client" {
                w.client.to_owned()
            } else {
                pool[w.key].1.clone()
            };
            let entry = expected.entry((day_of(w.at_ms), group)).or_default();
            entry.0 += 1;
            entry.1 += w.prompt;
            entry.2 += w.completion;
        }
        let got: BTreeMap<(String, String), (u64, u64, u64)> = tokens["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                (
                    (
                        row["day"].as_str().unwrap().to_owned(),
                        row[group_by].as_str().unwrap().to_owned(),
                    ),
                    (
                        row["calls"].as_u64().unwrap(),
                        row["prompt_tokens"].as_u64().unwrap(),
                        row["completion_tokens"].as_u64().unwrap(),
                    ),
                )
            })
            .collect();
        assert_eq!(got, expected, "tokens by {group_by}");
    }
    eprintln!(
        "{mode:?} on {backend:?}: {} attempts loaded through WriteRecords in {loaded:.1?}; the slowest statistic answered in {slowest:.1?}",
        written.len(),
    );
    app.stop().await;
}
crate::microservices_only!(
    statistics_past_the_old_cap,
    statistics_are_exact_past_the_old_cap
);

/// An upgrade: a database whose attempts were logged before the counters existed gets them
/// filled by the migration, so that the statistics read the same before and after.
async fn counters_are_filled_from_the_attempts_already_logged(mode: Mode, backend: Backend) {
    let mut app = TestApp::builder(mode, backend).spawn().await;
    app.mock.set_behavior(
        &app.keys[1],
        gb_tests::mock_gemini::Behavior::Quota {
            retry_delay_seconds: Some(1.0),
        },
    );
    for index in 0..6 {
        assert_eq!(
            app.generate(&format!("before the upgrade {index}")).await.0,
            200
        );
    }
    // Every attempt once: a success as its request's row, a failure as its error log.
    let attempts = || {
        app.db.texts(
            "SELECT CAST((SELECT COUNT(*) FROM request_logs WHERE outcome = 'success') \
             + (SELECT COUNT(*) FROM error_logs) AS TEXT) AS text",
        )
    };
    app.eventually("every attempt is logged", || async {
        attempts()
            .await
            .first()
            .and_then(|count| count.parse::<usize>().ok())
            == Some(app.mock.calls().len())
    })
    .await;
    let (_, calls_before) = app.admin_get("/api/stats/calls").await;
    let (_, tokens_before) = app.admin_get("/api/stats/tokens?group_by=key").await;
    assert!(
        calls_before["calls_24h"]["total"].as_u64().unwrap() >= 6,
        "{calls_before}"
    );

    // The state of a database from before the counters: a row per attempt (kind 'attempt')
    // beside each client request's row (no key, no outcome), no counters, no attempt counts,
    // the two migrations since not run.
    app.db
        .execute(
            "INSERT INTO request_logs (request_time, request_method, request_path, kind, \
               model_name, key_id, key_masked, status_code, is_success, latency_ms, \
               prompt_tokens, completion_tokens, client, outcome) \
             SELECT error_time, 'POST', '/v1beta/models', 'attempt', model_name, key_id, \
               key_masked, error_code, FALSE, 0, 0, 0, client, error_class FROM error_logs; \
             INSERT INTO request_logs (request_time, request_method, request_path, kind, \
               model_name, key_id, key_masked, status_code, is_success, latency_ms, \
               prompt_tokens, completion_tokens, client, outcome) \
             SELECT request_time, request_method, request_path, 'attempt', model_name, key_id, \
               key_masked, status_code, is_success, latency_ms, prompt_tokens, \
               completion_tokens, client, outcome FROM request_logs WHERE kind = 'client' \
               AND outcome = 'success'; \
             UPDATE request_logs SET key_id = 0, key_masked = '', outcome = '', \
               prompt_tokens = 0, completion_tokens = 0 WHERE kind = 'client'; \
             DROP TABLE call_rollups; \
             ALTER TABLE request_logs DROP COLUMN attempts; \
             ALTER TABLE error_logs DROP COLUMN latency_ms; \
             DELETE FROM __diesel_schema_migrations \
               WHERE version IN ('20261201000004', '20261201000005');",
        )
        .await;
    app.restart().await;
    let (_, calls_after) = app.admin_get("/api/stats/calls").await;
    let (_, tokens_after) = app.admin_get("/api/stats/tokens?group_by=key").await;
    assert_eq!(calls_after, calls_before);
    assert_eq!(tokens_after, tokens_before);
    app.stop().await;
}
crate::two_setups!(
    counters_filled_on_upgrade,
    counters_are_filled_from_the_attempts_already_logged
);
