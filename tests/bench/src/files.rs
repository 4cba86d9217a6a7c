//! One large file through the all-in-one gateway (gateway and files service in one process):
//! upload and download throughput against the same bytes written to and read from a file
//! straight (the store's own speed, the baseline), and the process's peak resident memory
//! while the file moves (VmHWM, reset first), which must stay flat.

use std::convert::Infallible;
use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::run::{CLIENT_TOKEN, Processes, gateway_env, status_mb, wait_for};

const CHUNK: usize = 1024 * 1024;

#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct FilesFigures {
    pub size_mb: usize,
    pub upload_mb_s: f64,
    pub store_write_mb_s: f64,
    pub download_mb_s: f64,
    pub store_read_mb_s: f64,
    /// Peak RSS growth of the gateway process while the file went up, and came down, in MB.
    pub upload_peak_growth_mb: f64,
    pub download_peak_growth_mb: f64,
}

type StreamingClient = Client<HttpConnector, BoxBody<Bytes, Infallible>>;

/// `size_mb` of 1 MB chunks, all the same buffer: the load generator holds 1 MB.
fn chunks(
    size_mb: usize,
) -> impl futures::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send + 'static {
    let chunk = Bytes::from((0..CHUNK).map(|at| (at % 251) as u8).collect::<Vec<_>>());
    futures::stream::iter((0..size_mb).map(move |_| Ok(Frame::data(chunk.clone()))))
}

fn reset_peak(pid: u32) -> f64 {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    status_mb(pid, "VmRSS:")
}

fn rate(size_mb: usize, started: Instant) -> f64 {
    size_mb as f64 / started.elapsed().as_secs_f64().max(1e-9)
}

pub async fn run(gateway: &Path, data: &Path, size_mb: usize) -> anyhow::Result<FilesFigures> {
    let dir = data.join("files");
    std::fs::create_dir_all(&dir)?;
    let address = crate::run::free_address()?;
    let mut processes = Processes::default();
    let mut command = Command::new(gateway);
    // No upstream call is made: the address only has to parse.
    gateway_env(&mut command, address, &dir, 1);
    command
        .env("GATEWAY_ADDR", address.to_string())
        .env("METRICS_ADDR", crate::run::free_address()?.to_string())
        .env("FILES_MAX_SIZE_MB", (size_mb + 1).to_string())
        .env("BODY_READ_TIMEOUT", "600");
    let pid = processes
        .spawn(&mut command)?
        .ok_or_else(|| anyhow::anyhow!("the gateway has no pid"))?;
    let base = format!("http://{address}");
    wait_for(&crate::load::client(), &format!("{base}/health")).await?;
    let client: StreamingClient = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let mut figures = FilesFigures {
        size_mb,
        ..FilesFigures::default()
    };

    // Up: raw upload of Google's Files API, streamed.
    let before = reset_peak(pid);
    let started = Instant::now();
    let request = hyper::Request::post(format!("{base}/upload/v1beta/files"))
        .header("x-goog-api-key", CLIENT_TOKEN)
        .header("x-goog-upload-protocol", "raw")
        .header("content-type", "application/octet-stream")
        .header("content-length", (size_mb * CHUNK).to_string())
        .body(BodyExt::boxed(StreamBody::new(chunks(size_mb))))?;
    let answer = client.request(request).await?;
    anyhow::ensure!(
        answer.status().is_success(),
        "the upload answered {}",
        answer.status()
    );
    let body = answer.into_body().collect().await?.to_bytes();
    figures.upload_mb_s = rate(size_mb, started);
    figures.upload_peak_growth_mb = status_mb(pid, "VmHWM:") - before;
    let file: serde_json::Value = serde_json::from_slice(&body)?;
    let id = file["file"]["name"]
        .as_str()
        .and_then(|name| name.strip_prefix("files/file-"))
        .ok_or_else(|| anyhow::anyhow!("the upload answered no file: {file}"))?
        .to_owned();

    // Down: the design's `/files/{id}`, read as it arrives.
    let before = reset_peak(pid);
    let started = Instant::now();
    let request = hyper::Request::get(format!("{base}/files/{id}"))
        .header("x-goog-api-key", CLIENT_TOKEN)
        .body(BodyExt::boxed(http_body_util::Empty::new()))?;
    let answer = client.request(request).await?;
    anyhow::ensure!(
        answer.status().is_success(),
        "the download answered {}",
        answer.status()
    );
    let mut frames = answer.into_body().into_data_stream();
    let mut received = 0usize;
    while let Some(frame) = frames.next().await {
        received += frame?.len();
    }
    anyhow::ensure!(received == size_mb * CHUNK, "{received} bytes came down");
    figures.download_mb_s = rate(size_mb, started);
    figures.download_peak_growth_mb = status_mb(pid, "VmHWM:") - before;
    drop(processes);

    // The baseline: the same bytes to a file and back, straight.
    let path = dir.join("baseline.bin");
    let started = Instant::now();
    let mut written = tokio::fs::File::create(&path).await?;
    let mut source = Box::pin(chunks(size_mb));
    while let Some(Ok(frame)) = source.next().await {
        if let Ok(data) = frame.into_data() {
            written.write_all(&data).await?;
        }
    }
    written.flush().await?;
    drop(written);
    figures.store_write_mb_s = rate(size_mb, started);
    let started = Instant::now();
    let mut read = tokio::fs::File::open(&path).await?;
    let mut buffer = vec![0u8; CHUNK];
    while read.read(&mut buffer).await? > 0 {}
    figures.store_read_mb_s = rate(size_mb, started);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(figures)
}
