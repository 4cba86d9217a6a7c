//! The logging service at volume, on each backend: `requests` client requests' records (a
//! client record and an upstream attempt each, as the hot path sends them) written through its
//! own write path (`WriteRecords` batches of 512 from four senders, as a gateway and chat
//! replicas send them), then every statistic read repeatedly over that volume. Gives the
//! requests per second the write path sustains and the statistics' p99.

use std::path::Path;
use std::time::{Duration, Instant};

use gb_proto::keys::v1::OutcomeClass;
use gb_proto::logging::v1 as pb;
use gb_proto::logging::v1::logging_service_client::LoggingServiceClient;
use tokio::process::Command;

use crate::run::{ADMIN_TOKEN, Processes, free_address};

/// What one backend measured.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct LogVolume {
    pub backend: String,
    pub requests: u64,
    pub write_rps: f64,
    pub stats_p50_ms: f64,
    pub stats_p99_ms: f64,
    /// On disk after the writes: request and error logs (with their index) per request, and
    /// the counters in all (Postgres: `pg_total_relation_size` of the logs' tables and
    /// partitions; SQLite: the whole file, counters included).
    pub log_bytes_per_request: f64,
    pub rollup_bytes: u64,
    pub rollup_rows: u64,
}

const SENDERS: usize = 4;
/// Records per batch, as the shippers send them.
const BATCH: usize = 512;
const KEYS: i64 = 100;
const MODELS: [&str; 3] = ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash"];

fn authorized<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = format!("Bearer {ADMIN_TOKEN}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// The records of request `index`, spread over the last 30 days, as the chat service sends
/// them: the request's row, with its attempt's key, status and tokens; one in 20 failed (429),
/// which also leaves an error log.
fn records(index: u64, now_ms: i64, batch: &mut pb::WriteRecordsRequest) {
    let at_ms = now_ms - (index as i64 * 7_919) % (30 * 86_400_000);
    let key_id = 1 + (index as i64 % KEYS);
    let model = MODELS[(index % 3) as usize];
    let status = if index.is_multiple_of(20) { 429 } else { 200 };
    let client = format!("token-{:012x}", index % 8);
    let outcome = if status == 200 {
        OutcomeClass::Success
    } else {
        OutcomeClass::Quota
    };
    let latency_ms = 200 + (index % 3_000) as u32;
    if status != 200 {
        batch.errors.push(pb::ErrorRecord {
            at_ms,
            key_id,
            key_masked: format!("AIzaSy…{key_id:04}"),
            model: model.into(),
            error_type: "gemini-generate".into(),
            error_class: outcome.into(),
            error_code: status,
            error_message: "Resource has been exhausted (e.g. check quota).".into(),
            request_body: String::new(),
            client: client.clone(),
            latency_ms,
        });
    }
    batch.requests.push(pb::RequestRecord {
        at_ms,
        kind: pb::RecordKind::Client.into(),
        method: "POST".into(),
        path: format!("/v1beta/models/{model}:generateContent"),
        model: model.into(),
        key_id,
        key_masked: format!("AIzaSy…{key_id:04}"),
        status_code: status,
        latency_ms,
        prompt_tokens: if status == 200 { 12 } else { 0 },
        completion_tokens: if status == 200 { 40 } else { 0 },
        client,
        outcome: outcome.into(),
        attempts: 1,
        label: String::new(),
    });
}

async fn connect(
    address: std::net::SocketAddr,
) -> anyhow::Result<LoggingServiceClient<tonic::transport::Channel>> {
    for _ in 0..200 {
        if let Ok(endpoint) = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
            && let Ok(channel) = endpoint.connect().await
        {
            return Ok(
                LoggingServiceClient::new(channel).max_decoding_message_size(64 * 1024 * 1024)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the logging service at {address} never answered")
}

/// Writes `requests` requests' records and reads the statistics, on the service at `address`.
async fn measure(
    backend: &str,
    address: std::net::SocketAddr,
    requests: u64,
    reads: usize,
) -> anyhow::Result<LogVolume> {
    let client = connect(address).await?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64);
    let started = Instant::now();
    let per_sender = requests / SENDERS as u64;
    let senders: Vec<_> = (0..SENDERS as u64)
        .map(|sender| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let mut batch = pb::WriteRecordsRequest::default();
                for index in sender * per_sender..(sender + 1) * per_sender {
                    records(index, now_ms, &mut batch);
                    if batch.requests.len() + batch.errors.len() >= BATCH {
                        let full = std::mem::take(&mut batch);
                        client.write_records(authorized(full)).await?;
                    }
                }
                if !batch.requests.is_empty() {
                    client.write_records(authorized(batch)).await?;
                }
                Ok::<_, tonic::Status>(())
            })
        })
        .collect();
    for sender in senders {
        sender.await??;
    }
    let written = per_sender * SENDERS as u64;
    let write_rps = written as f64 / started.elapsed().as_secs_f64();

    let mut client = client;
    let day_ago = now_ms - 86_400_000;
    let mut timings = Vec::with_capacity(reads * 4);
    for round in 0..reads {
        let timed = Instant::now();
        client
            .call_counts(authorized(pb::CallCountsRequest {}))
            .await?;
        timings.push(timed.elapsed());
        let timed = Instant::now();
        client
            .attention_keys(authorized(pb::AttentionKeysRequest {
                since_ms: day_ago,
                status_code: 429,
                limit: 20,
            }))
            .await?;
        timings.push(timed.elapsed());
        let timed = Instant::now();
        client
            .key_model_usage(authorized(pb::KeyModelUsageRequest {
                key_id: 1 + (round as i64 % KEYS),
                since_ms: day_ago,
            }))
            .await?;
        timings.push(timed.elapsed());
        let timed = Instant::now();
        client
            .token_usage(authorized(pb::TokenUsageRequest {
                group_by: pb::TokenGrouping::Client.into(),
                since_ms: now_ms - 30 * 86_400_000,
            }))
            .await?;
        timings.push(timed.elapsed());
    }
    timings.sort();
    let at = |quantile: f64| {
        timings
            .get(((timings.len() as f64 * quantile) as usize).min(timings.len().saturating_sub(1)))
            .map_or(0.0, |elapsed| elapsed.as_secs_f64() * 1000.0)
    };
    Ok(LogVolume {
        backend: backend.to_owned(),
        requests: written,
        write_rps,
        stats_p50_ms: at(0.5),
        stats_p99_ms: at(0.99),
        ..LogVolume::default()
    })
}

/// A logging service on `database`.
fn logging_process(
    processes: &mut Processes,
    gateway: &Path,
    database: &str,
) -> anyhow::Result<std::net::SocketAddr> {
    let address = free_address()?;
    processes.spawn(
        Command::new(gateway)
            .arg("logging")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", database)
            .env("AUTH_TOKEN", ADMIN_TOKEN)
            .env(
                "ENCRYPTION_KEY",
                "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            )
            .env("LOGGING_ADDR", address.to_string())
            .env("CONFIG_URL", format!("http://{}", free_address()?))
            .env("METRICS_ADDR", free_address()?.to_string())
            .env("LOG_LEVEL", "warn"),
    )?;
    Ok(address)
}

/// Both backends: SQLite in `data`, Postgres in a database of its own on `postgres_admin_url`
/// (created and dropped here with `psql`).
pub async fn run(
    gateway: &Path,
    data: &Path,
    postgres_admin_url: &str,
    requests: u64,
    reads: usize,
    backends: &str,
) -> anyhow::Result<Vec<LogVolume>> {
    let mut results = Vec::new();
    if backends != "postgres" {
        let mut processes = Processes::default();
        let dir = data.join("log-volume");
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("logs.db");
        let sqlite = logging_process(
            &mut processes,
            gateway,
            &format!("sqlite://{}", file.display()),
        )?;
        let mut measured = measure("sqlite", sqlite, requests, reads).await?;
        drop(processes);
        let size = |path: &Path| std::fs::metadata(path).map_or(0, |metadata| metadata.len());
        let file_bytes = size(&file) + size(&dir.join("logs.db-wal"));
        measured.log_bytes_per_request = file_bytes as f64 / measured.requests.max(1) as f64;
        results.push(measured);
    }
    if backends == "sqlite" {
        return Ok(results);
    }

    let database = crate::postgres::BenchDatabase::create(postgres_admin_url, "logs").await?;
    let mut processes = Processes::default();
    let postgres = logging_process(&mut processes, gateway, &database.url)?;
    let mut measured = measure("postgres", postgres, requests, reads).await;
    drop(processes);
    if let Ok(measured) = &mut measured {
        let sizes = Command::new("psql")
            .args([
                database.url.as_str(),
                "-tAc",
                // Request logs are partitioned: their size is their partitions'.
                "SELECT (SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('request_logs'))::bigint + pg_total_relation_size('error_logs'), pg_total_relation_size('call_rollups'), (SELECT count(*) FROM call_rollups)",
            ])
            .output()
            .await?;
        let text = String::from_utf8_lossy(&sizes.stdout);
        let numbers: Vec<u64> = text
            .trim()
            .split('|')
            .filter_map(|part| part.parse().ok())
            .collect();
        if let [logs, rollups, rows] = numbers[..] {
            measured.log_bytes_per_request = logs as f64 / measured.requests.max(1) as f64;
            measured.rollup_bytes = rollups;
            measured.rollup_rows = rows;
        }
    }
    database.drop_database().await;
    results.push(measured?);
    Ok(results)
}
