#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]
//! Fault runs (`make faults`): the real binary's processes killed with SIGKILL under steady
//! client load, in the split mode on a PostgreSQL cluster of the run's own (which is restarted
//! too), and all-in-one on SQLite. Asserted: no client request fails while the keys, config or
//! logging service or Postgres is down; no request-log row or upstream-attempt row is lost in
//! those outages (each is shorter than the buffers); key state and settings survive. Killing
//! the chat service or the gateway (what serves the request) costs the requests in flight:
//! those are counted and reported, and the clients must be served again once it is back.
//!
//! Run with `--nocapture` to read the figures (`make faults` does).

mod cluster;
mod load;

use std::collections::HashMap;
use std::time::Duration;

use diesel::{Connection, QueryableByName, RunQueryDsl, sql_query, sql_types};
use gb_tests::mock_gemini::{Behavior, MockGemini};

use cluster::{Postgres, Process, free_port};
use load::{CLIENT_TOKEN, Load};

const ADMIN_TOKEN: &str = "sk-faults-admin";
/// How long each service (or Postgres) stays down.
const OUTAGE: Duration = Duration::from_secs(2);
/// Requests served after a restart before the next fault.
const SERVED_AFTER: usize = 40;

fn new_key() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("AIzaSy{}k", id.to_uppercase().replace('0', "x"))
}

/// The settings every process of a run gets.
fn common_env(mock: &MockGemini, keys: &[String], database_url: &str) -> HashMap<String, String> {
    HashMap::from([
        ("API_KEYS".into(), serde_json::to_string(keys).unwrap()),
        ("ALLOWED_TOKENS".into(), CLIENT_TOKEN.into()),
        ("AUTH_TOKEN".into(), ADMIN_TOKEN.into()),
        ("BASE_URL".into(), mock.base_url()),
        ("DATABASE_URL".into(), database_url.into()),
        ("CHECK_INTERVAL_HOURS".into(), "0".into()),
        ("METRICS_ADDR".into(), "127.0.0.1:0".into()),
        ("LOG_LEVEL".into(), "warn".into()),
    ])
}

struct Admin {
    http: reqwest::Client,
    base: String,
}

impl Admin {
    fn new(gateway_port: u16) -> Self {
        Admin {
            http: reqwest::Client::new(),
            base: format!("http://127.0.0.1:{gateway_port}"),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.unwrap();
        let status = answer.status();
        let body: serde_json::Value = answer.json().await.unwrap_or_default();
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    /// Each key's status, in the order given.
    async fn key_statuses(&self, keys: &[String]) -> Vec<String> {
        let listed = self.send(reqwest::Method::GET, "/keys", None).await;
        keys.iter()
            .map(|key| {
                let masked = gb_runtime::secrets::mask_key(key);
                listed["keys"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|entry| entry["key_value"] == masked.as_str())
                    .map_or_else(
                        || "missing".to_owned(),
                        |entry| entry["status"].as_str().unwrap_or("").to_owned(),
                    )
            })
            .collect()
    }

    /// Waits until the keys have these statuses (verdicts arrive in batches).
    async fn wait_for_statuses(&self, keys: &[String], expected: &[&str]) {
        let mut last = Vec::new();
        for _ in 0..300 {
            last = self.key_statuses(keys).await;
            if last == expected {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("key statuses {last:?}, expected {expected:?}");
    }

    async fn setting(&self, name: &str) -> serde_json::Value {
        self.send(reqwest::Method::GET, &format!("/configs/{name}"), None)
            .await["value"]
            .clone()
    }
}

/// Polls `count` until it reaches `expected` (rows arrive in batches, retried with backoff
/// after an outage), for at most a minute; returns the last count.
async fn rows_reaching(expected: i64, count: impl Fn() -> i64) -> i64 {
    let mut last = 0;
    for _ in 0..600 {
        last = count();
        if last >= expected {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    Keys,
    Config,
    Logging,
    Postgres,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_services_killed_and_postgres_restarted_under_load() {
    let mock = MockGemini::start().await.unwrap();
    let keys = vec![new_key(), new_key(), new_key()];
    mock.set_behavior(&keys[2], Behavior::InvalidKey);
    let mut postgres = Postgres::start().await;
    let logs = tempfile::tempdir().unwrap();
    let mut env = common_env(&mock, &keys, &postgres.url());
    env.insert(
        "ENCRYPTION_KEY".into(),
        gb_runtime::secrets::KeyCipher::generate_base64(),
    );
    let names = ["CONFIG", "LOGGING", "KEYS", "CHAT", "GATEWAY"];
    let ports: Vec<u16> = names.iter().map(|_| free_port()).collect();
    for (name, port) in names.iter().zip(&ports) {
        env.insert(format!("{name}_ADDR"), format!("127.0.0.1:{port}"));
        env.insert(format!("{name}_URL"), format!("http://127.0.0.1:{port}"));
    }
    let commands = ["config", "logging", "keys", "chat", "gateway"];
    let mut processes: Vec<Process> = commands
        .iter()
        .zip(&ports)
        .map(|(command, port)| Process::new(command, &[command], env.clone(), *port, logs.path()))
        .collect();
    for process in &mut processes {
        process.start().await;
    }
    let gateway_port = ports[4];
    let admin = Admin::new(gateway_port);
    admin
        .send(
            reqwest::Method::PUT,
            "/configs/MAX_RETRIES",
            Some(serde_json::json!({"value": 4})),
        )
        .await;

    let load = Load::start(
        gateway_port,
        "gemini-2.5-flash",
        6,
        Duration::from_millis(10),
        9,
    );
    load.served_more(SERVED_AFTER, Duration::from_secs(30))
        .await;
    admin
        .wait_for_statuses(&keys, &["active", "active", "disabled"])
        .await;
    let faults = [
        (1, Fault::Keys),
        (3, Fault::Config),
        (5, Fault::Logging),
        (7, Fault::Postgres),
    ];
    for (phase, fault) in faults {
        load.enter(phase);
        match fault {
            Fault::Keys => processes[2].kill(),
            Fault::Config => processes[0].kill(),
            Fault::Logging => processes[1].kill(),
            Fault::Postgres => postgres.stop_server(),
        }
        tokio::time::sleep(OUTAGE).await;
        match fault {
            Fault::Keys => processes[2].start().await,
            Fault::Config => processes[0].start().await,
            Fault::Logging => processes[1].start().await,
            Fault::Postgres => postgres.start_server().await,
        }
        load.enter(phase + 1);
        load.served_more(SERVED_AFTER, Duration::from_secs(30))
            .await;
    }
    let (phases, answered, failures) = load.stop().await;
    let calls = mock.calls().len() as i64;
    let client_rows = rows_reaching(answered as i64, || {
        postgres.count("SELECT count(*) FROM request_logs WHERE kind = 'client' AND request_path LIKE '/v1beta/models/%'")
    })
    .await;
    // Each upstream call once: a success as its request's row, a failure as its error log.
    let attempt_rows = rows_reaching(calls, || {
        postgres.count(
            "SELECT (SELECT count(*) FROM request_logs WHERE outcome = 'success') \
             + (SELECT count(*) FROM error_logs)",
        )
    })
    .await;
    eprintln!("split mode on Postgres, {OUTAGE:?} outages under load:");
    for (phase, count) in phases.iter().enumerate() {
        let what = match phase {
            0 => "before",
            1 => "keys killed",
            3 => "config killed",
            5 => "logging killed",
            7 => "postgres stopped",
            _ => "after restart",
        };
        eprintln!(
            "  phase {phase} ({what}): sent {}, ok {}, failed {}",
            count.sent, count.ok, count.failed
        );
    }
    eprintln!(
        "  request-log rows: {client_rows} for {answered} answered requests (lost {}, duplicated {}); attempts logged (successful rows and error logs): {attempt_rows} for {calls} upstream calls (lost {})",
        (answered as i64 - client_rows).max(0),
        (client_rows - answered as i64).max(0),
        (calls - attempt_rows).max(0),
    );
    let failed: usize = phases.iter().map(|count| count.failed).sum();
    assert_eq!(
        failed,
        0,
        "client requests failed: {:?}",
        &failures[..failures.len().min(10)]
    );
    assert!(client_rows >= answered as i64, "request-log rows lost");
    assert!(attempt_rows >= calls, "attempt rows lost");
    admin
        .wait_for_statuses(&keys, &["active", "active", "disabled"])
        .await;
    assert_eq!(
        admin.setting("MAX_RETRIES").await,
        4,
        "the setting survives"
    );

    // What serves the request, killed: its requests in flight fail; then it serves again.
    let load = Load::start(
        gateway_port,
        "gemini-2.5-pro",
        6,
        Duration::from_millis(10),
        5,
    );
    load.served_more(SERVED_AFTER, Duration::from_secs(30))
        .await;
    load.enter(1);
    processes[3].kill();
    tokio::time::sleep(OUTAGE).await;
    processes[3].start().await;
    load.enter(2);
    load.served_more(SERVED_AFTER, Duration::from_secs(30))
        .await;
    load.enter(3);
    processes[4].kill();
    tokio::time::sleep(OUTAGE).await;
    processes[4].start().await;
    load.enter(4);
    load.served_more(SERVED_AFTER, Duration::from_secs(30))
        .await;
    let (phases, _, failures) = load.stop().await;
    eprintln!(
        "  chat killed: sent {}, failed {}; gateway killed: sent {}, failed {}; after each restart: failed {}",
        phases[1].sent,
        phases[1].failed,
        phases[3].sent,
        phases[3].failed,
        phases[2].failed + phases[4].failed
    );
    assert_eq!(
        phases[4].failed, 0,
        "served again after the gateway restarted"
    );
    // The requests that failed while the chat service was down have their rows all the same,
    // each with the status its client got: the gateway writes those the chat service could not.
    let mut failed_with_chat_down = std::collections::BTreeMap::<u16, usize>::new();
    for phase in &phases[1..=2] {
        for (status, count) in &phase.failed_statuses {
            *failed_with_chat_down.entry(*status).or_default() += count;
        }
    }
    let unanswered =
        phases[1].failed + phases[2].failed - failed_with_chat_down.values().sum::<usize>();
    let mut failed_rows = std::collections::BTreeMap::<u16, i64>::new();
    for (status, count) in &failed_with_chat_down {
        let rows = rows_reaching(*count as i64, || {
            postgres.count(&format!(
                "SELECT count(*) FROM request_logs WHERE status_code = {status} \
                 AND request_path LIKE '/v1beta/models/gemini-2.5-pro:%'"
            ))
        })
        .await;
        failed_rows.insert(*status, rows);
    }
    // What the requests without an answer met (the client's own error), to see why.
    let unanswered_errors: Vec<&String> = failures
        .iter()
        .filter(|failure| {
            (failure.starts_with("phase 1:") || failure.starts_with("phase 2:"))
                && !failure.contains(": HTTP ")
        })
        .collect();
    eprintln!(
        "  requests failed with the chat service down, by status: {failed_with_chat_down:?} (no answer: {unanswered} {unanswered_errors:?}); their rows: {failed_rows:?}"
    );
    for (status, count) in &failed_with_chat_down {
        assert!(
            failed_rows[status] >= *count as i64,
            "rows of failed requests lost (status {status})"
        );
    }
    admin
        .wait_for_statuses(&keys, &["active", "active", "disabled"])
        .await;
    for process in processes.iter_mut().rev() {
        process.terminate();
    }
}

#[derive(QueryableByName)]
struct Integrity {
    #[diesel(sql_type = sql_types::Text)]
    integrity_check: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = sql_types::BigInt)]
    n: i64,
}

fn sqlite_count(path: &std::path::Path, sql: &str) -> i64 {
    let mut connection = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    sql_query(sql)
        .get_result::<Count>(&mut connection)
        .unwrap()
        .n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_in_one_on_sqlite_killed_under_load() {
    let mock = MockGemini::start().await.unwrap();
    let keys = vec![new_key(), new_key(), new_key()];
    mock.set_behavior(&keys[2], Behavior::InvalidKey);
    let data = tempfile::tempdir().unwrap();
    let database = data.path().join("gemini-balance.db");
    let mut env = common_env(&mock, &keys, database.to_str().unwrap());
    let port = free_port();
    env.insert("GATEWAY_ADDR".into(), format!("127.0.0.1:{port}"));
    for name in ["CHAT", "KEYS", "CONFIG", "LOGGING"] {
        env.insert(format!("{name}_ADDR"), format!("127.0.0.1:{}", free_port()));
    }
    let mut process = Process::new("all-in-one", &[], env, port, data.path());
    process.start().await;
    let admin = Admin::new(port);
    admin
        .send(
            reqwest::Method::PUT,
            "/configs/MAX_RETRIES",
            Some(serde_json::json!({"value": 4})),
        )
        .await;
    let load = Load::start(port, "gemini-2.5-flash", 6, Duration::from_millis(10), 2);
    load.served_more(200, Duration::from_secs(30)).await;
    admin
        .wait_for_statuses(&keys, &["active", "active", "disabled"])
        .await;
    load.enter(1);
    process.kill();
    let (before, answered_before, _) = load.stop().await;
    process.start().await;
    let after = Load::start(port, "gemini-2.5-pro", 6, Duration::from_millis(10), 1);
    after.served_more(200, Duration::from_secs(30)).await;
    let (after_phases, answered_after, failures) = after.stop().await;
    let rows_after = rows_reaching(answered_after as i64, || {
        sqlite_count(&database, "SELECT count(*) AS n FROM request_logs WHERE kind = 'client' AND request_path LIKE '%gemini-2.5-pro%'")
    })
    .await;
    let rows_before = sqlite_count(
        &database,
        "SELECT count(*) AS n FROM request_logs WHERE kind = 'client' AND request_path LIKE '%gemini-2.5-flash%'",
    );
    admin
        .wait_for_statuses(&keys, &["active", "active", "disabled"])
        .await;
    assert_eq!(
        admin.setting("MAX_RETRIES").await,
        4,
        "the setting survives"
    );
    process.terminate();
    let mut connection = diesel::SqliteConnection::establish(database.to_str().unwrap()).unwrap();
    let integrity = sql_query("PRAGMA integrity_check")
        .get_result::<Integrity>(&mut connection)
        .unwrap();
    eprintln!(
        "all-in-one on SQLite, kill -9 under load: before the kill {} answered, {rows_before} logged (the unflushed buffer lost: {}), {} failed while down; after the restart {answered_after} answered, {rows_after} logged; integrity_check: {}",
        answered_before,
        (answered_before as i64 - rows_before).max(0),
        before[1].failed,
        integrity.integrity_check
    );
    assert_eq!(integrity.integrity_check, "ok");
    assert_eq!(after_phases[0].failed, 0, "{failures:?}");
    assert!(
        rows_after >= answered_after as i64,
        "rows after the restart lost"
    );
}
