//! The load generator: closed loop for peak throughput, open loop at a fixed rate for latency
//! (measured from each request's scheduled start, so a slow server cannot hide its queueing),
//! stream timings (time to first chunk, gaps between chunks), and open streams held at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(20_000)
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector)
}

/// One kind of request against one server.
#[derive(Clone)]
pub struct Target {
    pub url: String,
    pub body: Bytes,
    pub headers: Vec<(&'static str, String)>,
}

impl Target {
    fn request(&self) -> hyper::Request<Full<Bytes>> {
        let mut builder =
            hyper::Request::post(&self.url).header("content-type", "application/json");
        for (name, value) in &self.headers {
            builder = builder.header(*name, value);
        }
        builder
            .body(Full::new(self.body.clone()))
            .unwrap_or_default()
    }
}

/// Sends one request and reads its whole answer; `Err` unless it is a 200.
pub async fn send(client: &HttpClient, target: &Target) -> Result<(), String> {
    let response = client
        .request(target.request())
        .await
        .map_err(|error| error.to_string())?;
    let status = response.status();
    let _ = response
        .into_body()
        .collect()
        .await
        .map_err(|error| error.to_string())?;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("status {status}"))
    }
}

/// Latency percentiles of a run, in milliseconds.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Latency {
    pub rate: u64,
    pub sent: u64,
    pub errors: u64,
    pub achieved_rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[expect(
    clippy::expect_used,
    reason = "three significant figures are always accepted"
)]
fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("a histogram with three significant figures")
}

fn millis(microseconds: u64) -> f64 {
    microseconds as f64 / 1000.0
}

/// Requests at a fixed rate for `duration` (after `warmup`), each on its own task, dispatched
/// on a 1 ms tick (in bursts of rate/1000).
pub async fn open_loop(
    client: &HttpClient,
    target: &Target,
    rate: u64,
    warmup: Duration,
    duration: Duration,
) -> Latency {
    let recorded = Arc::new(std::sync::Mutex::new(histogram()));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let total = warmup + duration;
    let mut sent: u64 = 0;
    let mut measured_sent: u64 = 0;
    let mut tasks = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    while start.elapsed() < total {
        ticker.tick().await;
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due {
            let scheduled = start + Duration::from_secs_f64(sent as f64 / rate as f64);
            let measured = scheduled >= start + warmup;
            measured_sent += u64::from(measured);
            let (client, target, recorded, errors) = (
                client.clone(),
                target.clone(),
                recorded.clone(),
                errors.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let result = send(&client, &target).await;
                let latency = scheduled.elapsed().as_micros() as u64;
                if !measured {
                    return;
                }
                match result {
                    Ok(()) => {
                        let _ = recorded
                            .lock()
                            .map(|mut histogram| histogram.record(latency.max(1)));
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
            sent += 1;
        }
    }
    for task in tasks {
        let _ = task.await;
    }
    let histogram = recorded
        .lock()
        .map(|histogram| histogram.clone())
        .unwrap_or_else(|_| histogram());
    Latency {
        rate,
        sent: measured_sent,
        errors: errors.load(Ordering::Relaxed),
        achieved_rps: histogram.len() as f64 / duration.as_secs_f64(),
        p50_ms: millis(histogram.value_at_quantile(0.50)),
        p90_ms: millis(histogram.value_at_quantile(0.90)),
        p99_ms: millis(histogram.value_at_quantile(0.99)),
        max_ms: millis(histogram.max()),
    }
}

/// Requests back to back on `connections` connections for `duration`: completed per second.
pub async fn closed_loop(
    client: &HttpClient,
    target: &Target,
    connections: usize,
    duration: Duration,
) -> (f64, u64) {
    let completed = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (client, target, completed, errors) = (
                client.clone(),
                target.clone(),
                completed.clone(),
                errors.clone(),
            );
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    match send(&client, &target).await {
                        Ok(()) => completed.fetch_add(1, Ordering::Relaxed),
                        Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
    (
        completed.load(Ordering::Relaxed) as f64 / duration.as_secs_f64(),
        errors.load(Ordering::Relaxed),
    )
}

#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct StreamTimings {
    pub streams: u64,
    pub ttfb_p50_ms: f64,
    pub ttfb_p99_ms: f64,
    pub gap_p50_ms: f64,
    pub gap_p99_ms: f64,
    /// Reads that carried more than one event: chunks coalesced on the way.
    pub coalesced_reads: u64,
    pub chunks_per_stream: f64,
}

/// Sequential streams: time to the first chunk, and between chunks.
pub async fn stream_timings(client: &HttpClient, target: &Target, count: u64) -> StreamTimings {
    let mut ttfb = histogram();
    let mut gaps = histogram();
    let mut coalesced = 0;
    let mut chunks = 0u64;
    for _ in 0..count {
        let started = Instant::now();
        let Ok(response) = client.request(target.request()).await else {
            continue;
        };
        let mut body = response.into_body();
        let mut last: Option<Instant> = None;
        while let Some(Ok(frame)) = body.frame().await {
            let Some(data) = frame.data_ref() else {
                continue;
            };
            let events = data.windows(6).filter(|window| window == b"data: ").count() as u64;
            if events == 0 {
                continue;
            }
            chunks += events;
            coalesced += u64::from(events > 1 && !data.ends_with(b"[DONE]\n\n"));
            let now = Instant::now();
            match last {
                None => {
                    let _ = ttfb.record(now.duration_since(started).as_micros() as u64);
                }
                Some(previous) => {
                    let _ = gaps.record(now.duration_since(previous).as_micros().max(1) as u64);
                }
            }
            last = Some(now);
        }
    }
    StreamTimings {
        streams: count,
        ttfb_p50_ms: millis(ttfb.value_at_quantile(0.5)),
        ttfb_p99_ms: millis(ttfb.value_at_quantile(0.99)),
        gap_p50_ms: millis(gaps.value_at_quantile(0.5)),
        gap_p99_ms: millis(gaps.value_at_quantile(0.99)),
        coalesced_reads: coalesced,
        chunks_per_stream: chunks as f64 / count.max(1) as f64,
    }
}

/// Opens `count` streams that the upstream holds open, and counts how many are open at once
/// (their first chunk received) within `limit`.
pub async fn hold_streams(
    client: &HttpClient,
    target: &Target,
    count: usize,
    limit: Duration,
) -> usize {
    let opened = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(tokio::sync::Notify::new());
    let mut tasks = Vec::with_capacity(count);
    for _ in 0..count {
        let (client, target, opened, release) = (
            client.clone(),
            target.clone(),
            opened.clone(),
            release.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let Ok(response) = client.request(target.request()).await else {
                return;
            };
            let mut body = response.into_body();
            if let Some(Ok(_)) = body.frame().await {
                opened.fetch_add(1, Ordering::Relaxed);
                // Hold the stream open until told to let go.
                release.notified().await;
            }
        }));
    }
    let deadline = Instant::now() + limit;
    while opened.load(Ordering::Relaxed) < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let held = opened.load(Ordering::Relaxed);
    for task in tasks {
        task.abort();
    }
    held
}
