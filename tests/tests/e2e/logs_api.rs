//! Request and error logs, statistics and retention: the rows and figures match the requests
//! made (counts, statuses, tokens, keys, clients), the error-log API filters, looks up and
//! deletes, and retention deletes what it should and nothing else.

use chrono::{Duration as Days, Utc};
use gb_runtime::secrets::mask_key;
use gb_tests::mock_gemini::Behavior;
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Backend, CLIENT_TOKEN, Mode, TestApp};
use crate::{each_setup, two_setups};

/// Token counts of an answer's `usageMetadata`: (prompt, completion).
fn usage(body: &Value) -> (u64, u64) {
    let metadata = &body["usageMetadata"];
    (
        metadata["promptTokenCount"].as_u64().unwrap_or(0),
        metadata["candidatesTokenCount"].as_u64().unwrap_or(0)
            + metadata["thoughtsTokenCount"].as_u64().unwrap_or(0),
    )
}

/// The usage of a stream: its last event that carries one.
fn stream_usage(sse: &str) -> (u64, u64) {
    sse.lines()
        .rev()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .find(|event| event.get("usageMetadata").is_some())
        .map_or((0, 0), |event| usage(&event))
}

async fn error_total(app: &TestApp, query: &str) -> u64 {
    let (status, body) = app.admin_get(&format!("/api/logs/errors{query}")).await;
    assert_eq!(status, 200, "{query}: {body}");
    body["total"].as_u64().unwrap()
}

/// What [`traffic`] sent: the mock's own record of it is the truth the figures must match.
struct Traffic {
    first: String,
    second: String,
    prompt: u64,
    completion: u64,
    /// Upstream attempts (one failed: a 500 on the first key, retried on the second).
    attempts: u64,
    on_first: u64,
}

/// Three answers (the first retried once after a 500), a stream, a refused request; returns
/// once every attempt is counted.
async fn traffic(mode: Mode, backend: Backend) -> (TestApp, Traffic) {
    let app = TestApp::builder(mode, backend).spawn().await;
    let (first, second) = (app.keys[0].clone(), app.keys[1].clone());
    app.mock
        .queue_behaviors(&first, vec![Behavior::ServerError { status: 500 }]);
    let (mut prompt, mut completion) = (0, 0);
    for question in ["one", "two", "three"] {
        let (status, body) = app.generate(question).await;
        assert_eq!(status, 200, "{body}");
        let (p, c) = usage(&body);
        prompt += p;
        completion += c;
    }
    let (status, sse) = app.stream_sse("a stream").await;
    assert_eq!(status, 200);
    let (p, c) = stream_usage(&sse);
    assert!(p > 0 && c > 0, "{sse}");
    prompt += p;
    completion += c;
    // A request the gateway refuses is recorded too.
    let refused = app
        .http
        .post(app.url("/v1beta/models/gemini-2.5-flash:generateContent"))
        .header("x-goog-api-key", "not-a-token")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    // The upstream's record is the truth: one call per attempt, the failed one included.
    let calls = app.mock.calls();
    let attempts = calls.len() as u64;
    assert_eq!(attempts, 5);
    let on_first = calls.iter().filter(|call| call.key == first).count() as u64;
    app.eventually("every attempt is counted", || async {
        app.admin_get("/api/stats/calls").await.1["calls_1m"]["total"] == attempts
    })
    .await;
    app.eventually("the failed attempt's error log is written", || async {
        error_total(&app, "").await == 1
    })
    .await;
    let traffic = Traffic {
        first,
        second,
        prompt,
        completion,
        attempts,
        on_first,
    };
    (app, traffic)
}

/// Call counts per period, the calls of a period, attention keys, one key's calls and usage.
async fn statistics_match_the_upstream(mode: Mode, backend: Backend) {
    let (
        app,
        Traffic {
            first,
            second,
            attempts,
            on_first,
            ..
        },
    ) = traffic(mode, backend).await;
    let (_, counts) = app.admin_get("/api/stats/calls").await;
    for period in ["calls_1m", "calls_1h", "calls_24h", "calls_month"] {
        assert_eq!(
            counts[period],
            json!({"total": attempts, "success": attempts - 1, "failure": 1}),
            "{period}"
        );
    }

    let (status, details) = app.admin_get("/api/stats/details?period=1h").await;
    assert_eq!(status, 200, "{details}");
    let details = details.as_array().unwrap();
    assert_eq!(details.len() as u64, attempts);
    let failed: Vec<&Value> = details
        .iter()
        .filter(|call| call["is_success"] == false)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["key"], mask_key(&first));
    assert_eq!(failed[0]["status_code"], 500);
    assert!(
        details
            .iter()
            .all(|call| call["model"] == "gemini-2.5-flash")
    );

    let (_, attention) = app
        .admin_get("/api/stats/attention-keys?status_code=500&period=1h")
        .await;
    assert_eq!(
        attention,
        json!([{"key": mask_key(&first), "key_id": failed[0]["key_id"], "count": 1}])
    );
    let (_, own) = app
        .admin_get(&format!("/api/stats/key-details?key={second}&period=1h"))
        .await;
    assert_eq!(own.as_array().unwrap().len() as u64, attempts - on_first);
    let (status, usage_of_first) = app
        .admin_get(&format!("/api/key-usage-details/{first}"))
        .await;
    assert_eq!(status, 200, "{usage_of_first}");
    assert_eq!(usage_of_first["usage"]["gemini-2.5-flash"], on_first);

    app.stop().await;
}
each_setup!(statistics, statistics_match_the_upstream);

/// Tokens per day, per client token and per key, summed from the answers' `usageMetadata`.
async fn tokens_match_the_answers(mode: Mode, backend: Backend) {
    let (
        app,
        Traffic {
            first,
            second,
            prompt,
            completion,
            attempts,
            ..
        },
    ) = traffic(mode, backend).await;
    let (_, by_client) = app.admin_get("/api/stats/tokens?group_by=client").await;
    let rows = by_client["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{by_client}");
    assert!(rows[0]["client"].as_str().unwrap().starts_with("token-"));
    assert_eq!(rows[0]["day"], Utc::now().format("%Y-%m-%d").to_string());
    assert_eq!(
        (
            rows[0]["prompt_tokens"].clone(),
            rows[0]["completion_tokens"].clone(),
            rows[0]["calls"].clone()
        ),
        (json!(prompt), json!(completion), json!(attempts - 1))
    );
    let (_, by_key) = app.admin_get("/api/stats/tokens?group_by=key&days=1").await;
    let rows = by_key["rows"].as_array().unwrap();
    let sum = |field: &str| {
        rows.iter()
            .map(|row| row[field].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(
        (sum("prompt_tokens"), sum("completion_tokens")),
        (prompt, completion)
    );
    assert!(
        rows.iter()
            .all(|row| row["key"] == mask_key(&first) || row["key"] == mask_key(&second))
    );

    app.stop().await;
}
two_setups!(tokens, tokens_match_the_answers);

/// The error log of the failed attempt: listed, detailed, looked up, and every filter.
async fn the_error_log_api(mode: Mode, backend: Backend) {
    let (app, Traffic { first, second, .. }) = traffic(mode, backend).await;
    let (_, listed) = app.admin_get("/api/logs/errors").await;
    assert_eq!(listed["total"], 1, "{listed}");
    let log = &listed["logs"][0];
    assert_eq!(log["gemini_key"], mask_key(&first));
    assert_eq!(log["error_code"], 500);
    assert_eq!(log["model_name"], "gemini-2.5-flash");
    let id = log["id"].as_i64().unwrap();
    let (status, details) = app
        .admin_get(&format!("/api/logs/errors/{id}/details"))
        .await;
    assert_eq!(status, 200);
    assert!(
        details["error_log"]
            .as_str()
            .unwrap()
            .contains("internal error")
    );
    assert_eq!(
        details["request_msg"],
        Value::Null,
        "bodies are kept only when asked for"
    );
    let now = Utc::now().to_rfc3339();
    let (status, found) = app
        .admin_get(&format!(
            "/api/logs/errors/lookup?gemini_key={first}&timestamp={}&status_code=500",
            urlencode(&now)
        ))
        .await;
    assert_eq!((status, found["id"].as_i64()), (200, Some(id)), "{found}");
    let (status, _) = app
        .admin_get(&format!(
            "/api/logs/errors/lookup?gemini_key={first}&timestamp={}&status_code=429",
            urlencode(&now)
        ))
        .await;
    assert_eq!(status, 404);

    assert_eq!(error_total(&app, "?error_code_search=500").await, 1);
    assert_eq!(error_total(&app, "?error_code_search=429").await, 0);
    assert_eq!(error_total(&app, &format!("?key_search={first}")).await, 1);
    assert_eq!(error_total(&app, &format!("?key_search={second}")).await, 0);
    assert_eq!(error_total(&app, "?error_search=gemini-generate").await, 1);
    assert_eq!(
        error_total(&app, "?error_search=nothing-like-this").await,
        0
    );
    let tomorrow = (Utc::now() + Days::days(1)).format("%Y-%m-%d");
    assert_eq!(
        error_total(&app, &format!("?start_date={tomorrow}")).await,
        0
    );
    assert_eq!(error_total(&app, &format!("?end_date={tomorrow}")).await, 1);
    for bad in [
        "?limit=0",
        "?sort_order=sideways",
        "?sort_by=password",
        "?error_search=a%00b",
        "?key_search=%00",
        "?error_code_search=abc",
        "?start_date=soon",
    ] {
        let (status, body) = app.admin_get(&format!("/api/logs/errors{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }

    app.stop().await;
}
two_setups!(error_logs, the_error_log_api);

/// One row per client request, carrying what its last attempt knew: the retried request's row
/// names the key that answered, its two attempts and its tokens; no row is written per attempt
/// (the failed attempt is its error log, with its latency); a request the chat service refuses
/// before any attempt, and one the gateway refuses, have a row with no key and no attempt.
async fn one_row_per_client_request(mode: Mode, backend: Backend) {
    let (
        app,
        Traffic {
            first,
            second,
            prompt,
            completion,
            ..
        },
    ) = traffic(mode, backend).await;
    let invalid = app
        .http
        .post(app.url("/v1beta/models/gemini-2.5-flash%20x:generateContent"))
        .header("x-goog-api-key", CLIENT_TOKEN)
        .json(&json!({"contents": [{"parts": [{"text": "hi"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 400);
    let rows = || {
        app.db.texts(
            "SELECT CAST(attempts AS TEXT) || ' ' || key_masked || ' ' || CAST(status_code AS TEXT) \
             || ' ' || outcome || ' ' || CAST(prompt_tokens AS TEXT) || ' ' \
             || CAST(completion_tokens AS TEXT) AS text FROM request_logs \
             WHERE request_path LIKE '/v1beta/models/gemini-2.5-flash%' ORDER BY id",
        )
    };
    app.eventually("six client requests are recorded", || async {
        rows().await.len() == 6
    })
    .await;
    let rows = rows().await;
    let fields: Vec<Vec<&str>> = rows.iter().map(|row| row.split(' ').collect()).collect();
    let answered: Vec<&Vec<&str>> = fields.iter().filter(|row| row[2] == "200").collect();
    assert_eq!(answered.len(), 4, "{rows:?}");
    let retried: Vec<&&Vec<&str>> = answered.iter().filter(|row| row[0] == "2").collect();
    assert_eq!(retried.len(), 1, "{rows:?}");
    assert_eq!(retried[0][1], mask_key(&second), "{rows:?}");
    assert!(
        answered
            .iter()
            .all(|row| row[3] == "success" && (row[0] == "1" || row[0] == "2")),
        "{rows:?}"
    );
    let tokens = |column: usize| -> u64 {
        answered
            .iter()
            .map(|row| row[column].parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!((tokens(4), tokens(5)), (prompt, completion), "{rows:?}");
    // Refused: by the gateway (401, no caller) and by the chat service (400, invalid model).
    let mut refused: Vec<String> = fields
        .iter()
        .filter(|row| row[2] != "200")
        .map(|row| row.join(" "))
        .collect();
    refused.sort();
    assert_eq!(refused, ["0  400  0 0", "0  401  0 0"], "{rows:?}");
    // The failed attempt: its error log, listed among the calls with its key and status.
    let (_, logs) = app.admin_get("/api/logs/errors").await;
    assert_eq!(logs["total"], 1, "{logs}");
    let (_, details) = app.admin_get("/api/stats/details?period=1h").await;
    let failed: Vec<&Value> = details
        .as_array()
        .unwrap()
        .iter()
        .filter(|call| call["is_success"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{details}");
    assert_eq!(failed[0]["key"], mask_key(&first));
    app.stop().await;
}
two_setups!(request_rows, one_row_per_client_request);

/// A stream the client leaves after its first chunk still has its row, written when the
/// gateway lets go of it: its key, one attempt, the success it was so far, counted once.
async fn a_stream_left_early_has_its_row(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    // A long stream: 50 chunks, 200 ms apart.
    app.mock.set_stream_chunks(50);
    app.mock.set_stream_delay(200);
    let mut response = app
        .http
        .post(app.url("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"))
        .header("x-goog-api-key", CLIENT_TOKEN)
        .json(&json!({"contents": [{"parts": [{"text": "a long story to leave early"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let first = response.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).starts_with("data: "));
    drop(response);
    let row = || {
        app.db.texts(
            "SELECT CAST(attempts AS TEXT) || ' ' || key_masked || ' ' || CAST(status_code AS TEXT) \
             || ' ' || outcome AS text FROM request_logs WHERE request_path LIKE '%streamGenerateContent%'",
        )
    };
    app.eventually("the stream left early is recorded", || async {
        !row().await.is_empty()
    })
    .await;
    let key = mask_key(&app.mock.calls()[0].key);
    assert_eq!(row().await, [format!("1 {key} 200 success")]);
    app.eventually("and counted", || async {
        app.admin_get("/api/stats/calls").await.1["calls_1m"]
            == json!({"total": 1, "success": 1, "failure": 0})
    })
    .await;
    app.stop().await;
}
two_setups!(stream_left_early, a_stream_left_early_has_its_row);

/// Every client request has its row (the refused one too), and no row holds the token.
async fn client_requests_are_recorded_without_the_token(mode: Mode, backend: Backend) {
    let (app, _) = traffic(mode, backend).await;
    app.eventually("client requests are recorded", || async {
        app.db
            .texts("SELECT request_path AS text FROM request_logs WHERE kind = 'client'")
            .await
            .iter()
            .filter(|path| path.starts_with("/v1beta/models/gemini-2.5-flash:"))
            .count()
            == 5
    })
    .await;
    let statuses = app
        .db
        .texts("SELECT CAST(status_code AS TEXT) AS text FROM request_logs WHERE kind = 'client' AND request_path LIKE '/v1beta/%'")
        .await;
    assert_eq!(statuses.iter().filter(|status| *status == "401").count(), 1);
    for row in app.db.config_and_log_rows().await {
        assert!(!row.contains(CLIENT_TOKEN), "{row}");
    }
    // The caller's name is keyed by the server's secret: not a plain hash of the token that a
    // guess could be checked against, and the same for every request of that token.
    let names = app
        .db
        .texts("SELECT DISTINCT client AS text FROM request_logs WHERE client LIKE 'token-%'")
        .await;
    assert_eq!(names.len(), 1, "{names:?}");
    let unsalted: String = {
        use sha2::Digest;
        sha2::Sha256::digest(CLIENT_TOKEN.as_bytes())[..6]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    };
    assert_ne!(names[0], format!("token-{unsalted}"));
    app.stop().await;
}
two_setups!(client_rows, client_requests_are_recorded_without_the_token);

/// Error logs deleted one, then a selection, then all.
async fn error_logs_are_deleted_one_some_or_all(mode: Mode, backend: Backend) {
    let (app, Traffic { first, second, .. }) = traffic(mode, backend).await;
    let (_, listed) = app.admin_get("/api/logs/errors").await;
    let id = listed["logs"][0]["id"].as_i64().unwrap();
    let (status, _) = app
        .admin_send(Method::DELETE, &format!("/api/logs/errors/{id}"), None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .admin_send(Method::DELETE, &format!("/api/logs/errors/{id}"), None)
        .await;
    assert_eq!(status, 404);
    for key in [&first, &second] {
        app.mock
            .queue_behaviors(key, vec![Behavior::ServerError { status: 500 }]);
    }
    assert_eq!(app.generate("fails twice").await.0, 500);
    app.eventually("two more error logs", || async {
        error_total(&app, "").await == 2
    })
    .await;
    let (_, listed) = app
        .admin_get("/api/logs/errors?sort_by=request_time&sort_order=asc")
        .await;
    let oldest = listed["logs"][0]["id"].clone();
    let (status, body) = app
        .admin_send(
            Method::DELETE,
            "/api/logs/errors",
            Some(&json!({"ids": [oldest]})),
        )
        .await;
    assert_eq!((status, body["deleted"].clone()), (200, json!(1)), "{body}");
    let (status, _) = app
        .admin_send(
            Method::DELETE,
            "/api/logs/errors",
            Some(&json!({"ids": []})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, body) = app
        .admin_send(Method::DELETE, "/api/logs/errors/all", None)
        .await;
    assert_eq!((status, body["deleted"].clone()), (200, json!(1)), "{body}");
    assert_eq!(error_total(&app, "").await, 0);
    app.stop().await;
}
two_setups!(deletion, error_logs_are_deleted_one_some_or_all);

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// ERROR_LOG_RECORD_REQUEST_BODY, switched on while running: the body the upstream got is kept.
/// Each try fails once on every key: `MAX_FAILURES` is high, so that the tries made before the
/// setting arrives do not disable the keys (which a slow machine showed).
async fn request_bodies_when_asked(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend)
        .setting("MAX_FAILURES", "1000")
        .spawn()
        .await;
    app.put_setting("ERROR_LOG_RECORD_REQUEST_BODY", json!(true))
        .await;
    app.eventually("the setting reaches the chat service", || async {
        for key in &app.keys {
            app.mock
                .queue_behaviors(key, vec![Behavior::ServerError { status: 503 }]);
        }
        app.generate("record me").await;
        let (_, listed) = app.admin_get("/api/logs/errors").await;
        let Some(id) = listed["logs"][0]["id"].as_i64() else {
            return false;
        };
        let (_, details) = app
            .admin_get(&format!("/api/logs/errors/{id}/details"))
            .await;
        details["request_msg"]["contents"][0]["parts"][0]["text"] == "record me"
    })
    .await;
    app.stop().await;
}
two_setups!(request_bodies, request_bodies_when_asked);

fn days_ago(days: i64) -> String {
    (Utc::now() - Days::days(days))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

async fn retention_deletes_what_it_should(mode: Mode, backend: Backend) {
    let app = TestApp::builder(mode, backend).spawn().await;
    app.db
        .execute(&format!(
            "INSERT INTO error_logs (error_message, error_time) VALUES ('ten days', '{}'), ('two days', '{}');
             INSERT INTO request_logs (request_time, kind) VALUES ('{}', 'attempt'), ('{}', 'attempt');
             INSERT INTO responses (id, client, created_at, response, contents) VALUES
                 ('resp_forty_days', 'token-x', '{}', '{{}}', '[]'), ('resp_one_day', 'token-x', '{}', '{{}}', '[]');",
            days_ago(10),
            days_ago(2),
            days_ago(40),
            days_ago(10),
            days_ago(40),
            days_ago(1),
        ))
        .await;
    let kept_responses = || app.db.texts("SELECT id AS text FROM responses");
    let errors = || app.db.texts("SELECT error_message AS text FROM error_logs");
    let old_attempts = || {
        app.db
            .texts("SELECT CAST(id AS TEXT) AS text FROM request_logs WHERE kind = 'attempt'")
    };

    // Error logs: on by default (7 days); 5 days now.
    app.put_setting("AUTO_DELETE_ERROR_LOGS_DAYS", json!(5))
        .await;
    app.eventually("error logs older than 5 days go", || async {
        errors().await == vec!["two days".to_owned()]
    })
    .await;
    assert_eq!(
        old_attempts().await.len(),
        2,
        "request logs are kept by default"
    );

    // Request logs: off by default; on, 30 days. The admin requests made so far have rows of
    // their own (written in batches): recent, they stay.
    let client_rows = || {
        app.db
            .texts("SELECT request_path AS text FROM request_logs WHERE kind = 'client'")
    };
    app.eventually("the admin requests are recorded", || async {
        client_rows().await.len() >= 2
    })
    .await;
    let recent = client_rows().await.len();
    assert_eq!(
        kept_responses().await.len(),
        2,
        "kept while request logs are"
    );
    app.put_setting("AUTO_DELETE_REQUEST_LOGS_ENABLED", json!(true))
        .await;
    app.eventually(
        "request logs and stored responses older than 30 days go",
        || async {
            old_attempts().await.len() == 1
                && kept_responses().await == vec!["resp_one_day".to_owned()]
        },
    )
    .await;
    assert!(
        client_rows().await.len() >= recent,
        "recent client rows stay"
    );

    // Switched off, nothing more goes, however short the days. One change of three settings
    // (one snapshot): once the request-log part of it has deleted the 10-day row, the logging
    // service has run its retention on the error-log part too.
    let (status, body) = app
        .admin_send(
            reqwest::Method::PUT,
            "/api/config",
            Some(&json!({
                "AUTO_DELETE_ERROR_LOGS_ENABLED": false,
                "AUTO_DELETE_ERROR_LOGS_DAYS": 1,
                "AUTO_DELETE_REQUEST_LOGS_DAYS": 5,
            })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    app.eventually("request logs older than 5 days go", || async {
        old_attempts().await.is_empty()
    })
    .await;
    assert_eq!(errors().await, vec!["two days".to_owned()]);
    assert_eq!(kept_responses().await, vec!["resp_one_day".to_owned()]);
    app.stop().await;
}
two_setups!(retention, retention_deletes_what_it_should);

/// On Postgres, request logs live in day partitions made ahead, and retention drops a day's
/// partition whole once its day is past; the rows of other days stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_log_partitions_are_made_ahead_and_dropped_whole() {
    let app = TestApp::builder(Mode::Microservices, Backend::Postgres)
        .spawn()
        .await;
    let partitions = || {
        app.db.texts(
            "SELECT c.relname::text AS text FROM pg_inherits i JOIN pg_class c \
             ON c.oid = i.inhrelid WHERE i.inhparent = 'request_logs'::regclass ORDER BY 1",
        )
    };
    let day = |days: i64| {
        format!(
            "request_logs_p{}",
            (Utc::now() + Days::days(days)).format("%Y%m%d")
        )
    };
    let made = partitions().await;
    for ahead in [1, 2] {
        assert!(made.contains(&day(ahead)), "{made:?}");
    }
    // The rows from before partitioning (here: since the migration today) are one partition.
    assert!(made.contains(&"request_logs_before".to_owned()), "{made:?}");
    assert!(
        made.contains(&"request_logs_default".to_owned()),
        "{made:?}"
    );

    // As a database partitioned for months looks: a partition per day, 40 and 10 days ago and
    // today, each with rows.
    let bounds = |days: i64| {
        let from = (Utc::now() + Days::days(days)).date_naive();
        (day(days), from, from + Days::days(1))
    };
    let mut setup = String::from(
        "ALTER TABLE request_logs DETACH PARTITION request_logs_before; \
         DROP TABLE request_logs_before;",
    );
    for days in [-40, -10, 0] {
        let (name, from, to) = bounds(days);
        setup.push_str(&format!(
            "CREATE TABLE {name} PARTITION OF request_logs FOR VALUES FROM ('{from}') TO ('{to}');"
        ));
    }
    setup.push_str(&format!(
        "INSERT INTO request_logs (request_time, kind, request_path) VALUES \
         ('{}', 'client', '/forty'), ('{}', 'client', '/forty'), ('{}', 'client', '/ten');",
        days_ago(40),
        days_ago(40),
        days_ago(10),
    ));
    app.db.execute(&setup).await;
    // A request now lands in today's partition.
    assert_eq!(app.generate("today").await.0, 200);
    app.eventually("today's row is in today's partition", || async {
        app.db
            .texts("SELECT tableoid::regclass::text AS text FROM request_logs WHERE request_path LIKE '/v1beta/%'")
            .await
            == vec![day(0)]
    })
    .await;

    let paths = || {
        app.db
            .texts("SELECT request_path AS text FROM request_logs WHERE request_path IN ('/forty', '/ten') ORDER BY 1")
    };
    app.put_setting("AUTO_DELETE_REQUEST_LOGS_ENABLED", json!(true))
        .await;
    app.eventually("the partition of 40 days ago is dropped", || async {
        !partitions().await.contains(&day(-40))
    })
    .await;
    assert_eq!(paths().await, ["/ten"]);
    assert!(partitions().await.contains(&day(-10)));
    let (status, body) = app
        .admin_send(
            reqwest::Method::PUT,
            "/api/config",
            Some(&json!({"AUTO_DELETE_REQUEST_LOGS_DAYS": 5})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    app.eventually("and that of 10 days ago", || async {
        !partitions().await.contains(&day(-10))
    })
    .await;
    assert!(paths().await.is_empty());
    let kept = partitions().await;
    for days in [0, 1, 2] {
        assert!(kept.contains(&day(days)), "{kept:?}");
    }
    assert_eq!(
        app.db
            .texts(
                "SELECT request_path AS text FROM request_logs WHERE request_path LIKE '/v1beta/%'"
            )
            .await
            .len(),
        1,
        "today's row stays"
    );
    app.stop().await;
}

/// A logging service outage shorter than the buffers loses no row: the records wait in the
/// gateway's and the chat service's buffers, retried with backoff, and arrive once it is back.
async fn a_logging_outage_loses_no_row(mode: Mode, backend: Backend) {
    let _one_at_a_time = crate::harness::OUTAGES.lock().await;
    let mut app = TestApp::builder(mode, backend).spawn().await;
    let retried = || crate::harness::batches_retried_past_three_tries("log records");
    let before = retried();
    app.outage_of(crate::harness::Service::Logging, async |app: &TestApp| {
        for index in 0..20 {
            let (status, body) = app.generate(&format!("during the outage {index}")).await;
            assert_eq!(status, 200, "serving goes on: {body}");
            // A request the gateway refuses: its row is the gateway's own to ship (the chat
            // service ships the rows of the requests it answers).
            let refused = app
                .http
                .get(app.url("/v1beta/models"))
                .header("x-goog-api-key", "not-a-token")
                .send()
                .await
                .unwrap();
            assert_eq!(refused.status(), 401);
        }
        // The outage lasts until both shippers (gateway, chat) have retried past the point
        // where their batches were once dropped. Three tries are 0.7 s of backoff plus three
        // failed connections to a stopped service, which on a loaded machine (the other tests
        // run beside this one) once took more than 5 s: the bound is 20 s.
        let three_tries = std::time::Duration::from_secs(20);
        app.eventually_within(
            "both shippers retry past three tries",
            three_tries,
            || async { retried() >= before + 2 },
        )
        .await;
    })
    .await;
    // After the outage each shipper retries on its backoff, up to 5 s between tries.
    let backoff_and_more = std::time::Duration::from_secs(15);
    app.eventually_within("every request of the outage is recorded", backoff_and_more, || async {
        let statuses = app
            .db
            .texts("SELECT CAST(status_code AS TEXT) AS text FROM request_logs WHERE kind = 'client' AND request_path LIKE '/v1beta/%'")
            .await;
        let of = |status: &str| statuses.iter().filter(|row| *row == status).count();
        of("200") == 20 && of("401") == 20
    })
    .await;
    // Every answered request's attempt is counted too.
    app.eventually("and every attempt counted", || async {
        app.admin_get("/api/stats/calls").await.1["calls_1h"]["success"] == 20
    })
    .await;
    app.stop().await;
}

crate::microservices_only!(logging_outage, a_logging_outage_loses_no_row);
