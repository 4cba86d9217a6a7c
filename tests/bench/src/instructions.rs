//! Instructions a request costs, counted by callgrind: the all-in-one gateway (logging on) run
//! under `valgrind --tool=callgrind`, warmed up uninstrumented, then counted over a number of
//! sequential requests per route (with the background work they cause: their log batches and
//! outcome reports, given a second to be written). Unlike time, the count repeats from run to
//! run on a shared, noisy machine.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use crate::load;
use crate::run::{
    Processes, anthropic, free_address, gateway_env, gemini, openai, responses, wait_for,
};

/// Instructions per request of each route.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Instructions {
    pub requests: u64,
    pub gemini_per_request: u64,
    pub openai_per_request: u64,
    pub anthropic_per_request: u64,
    pub responses_per_request: u64,
}

async fn control(pid: u32, argument: &str) -> anyhow::Result<()> {
    let status = Command::new("callgrind_control")
        .arg(argument)
        .arg(pid.to_string())
        .stdout(std::process::Stdio::null())
        .status()
        .await?;
    anyhow::ensure!(status.success(), "callgrind_control {argument} failed");
    Ok(())
}

/// The instructions (`Ir`) of the newest dump in `dir`.
fn newest_dump_total(dir: &Path, seen: &mut Vec<PathBuf>) -> anyhow::Result<u64> {
    let mut dumps: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("callgrind.out"))
                && !seen.contains(path)
        })
        .collect();
    dumps.sort();
    let Some(dump) = dumps.pop() else {
        anyhow::bail!("callgrind wrote no dump in {}", dir.display());
    };
    let text = std::fs::read_to_string(&dump)?;
    seen.push(dump);
    text.lines()
        .find_map(|line| {
            line.strip_prefix("totals:")
                .or_else(|| line.strip_prefix("summary:"))
        })
        .and_then(|total| total.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("a callgrind dump without totals"))
}

/// Copies the dumps of a run (in `data`) to `keep`.
pub fn keep_dumps(data: &Path, keep: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(keep)?;
    for entry in std::fs::read_dir(data.join("callgrind"))?.flatten() {
        std::fs::copy(entry.path(), keep.join(entry.file_name()))?;
    }
    Ok(())
}

/// Counts `requests` sequential requests of each route.
pub async fn run(
    this: &Path,
    gateway: &Path,
    data: &Path,
    requests: u64,
) -> anyhow::Result<Instructions> {
    let mut processes = Processes::default();
    let upstream = free_address()?;
    processes.spawn(Command::new(this).arg("upstream").arg(upstream.to_string()))?;
    let dir = data.join("callgrind");
    std::fs::create_dir_all(&dir)?;
    let address = free_address()?;
    let mut command = Command::new("valgrind");
    command
        .arg("--tool=callgrind")
        .arg("--instr-atstart=no")
        .arg(format!(
            "--callgrind-out-file={}/callgrind.out.%p",
            dir.display()
        ))
        .arg(gateway);
    gateway_env(&mut command, upstream, &dir, 10);
    command
        .env("GATEWAY_ADDR", address.to_string())
        .env("METRICS_ADDR", free_address()?.to_string());
    let Some(pid) = processes.spawn(&mut command)? else {
        anyhow::bail!("the gateway under callgrind has no pid");
    };
    let client = load::client();
    let base = format!("http://{address}");
    wait_for(&client, &format!("{base}/health")).await?;
    let routes = [
        gemini(&base, "gemini-2.5-flash", "generateContent"),
        openai(&base, "gemini-2.5-flash", false),
        anthropic(&base, "claude-haiku-4-5"),
        responses(&base, "gemini-2.5-flash"),
    ];
    for route in &routes {
        for _ in 0..50 {
            load::send(&client, route)
                .await
                .map_err(|error| anyhow::anyhow!("warm-up: {error}"))?;
        }
    }
    control(pid, "--instr=on").await?;
    let mut seen = Vec::new();
    let mut per_request = Vec::new();
    for route in &routes {
        tokio::time::sleep(Duration::from_secs(1)).await;
        control(pid, "--zero").await?;
        for _ in 0..requests {
            load::send(&client, route)
                .await
                .map_err(|error| anyhow::anyhow!("under callgrind: {error}"))?;
        }
        // Their log records and outcome reports leave in batches, within the second.
        tokio::time::sleep(Duration::from_secs(1)).await;
        control(pid, "--dump").await?;
        per_request.push(newest_dump_total(&dir, &mut seen)? / requests.max(1));
    }
    drop(processes);
    Ok(Instructions {
        requests,
        gemini_per_request: per_request[0],
        openai_per_request: per_request[1],
        anthropic_per_request: per_request[2],
        responses_per_request: per_request[3],
    })
}
