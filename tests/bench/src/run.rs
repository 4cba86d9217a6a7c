//! The measurement: every target started as its own process on this machine, the same loads
//! against each, in one run; ratios against the direct and pass-through baselines of the same
//! run, absolute figures beside them.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::load::{self, HttpClient, Latency, StreamTimings, Target};

pub const CLIENT_TOKEN: &str = "bench-client-token";
pub(crate) const ADMIN_TOKEN: &str = "bench-admin-token";

/// The sizes of one run.
struct Plan {
    rates: [u64; 2],
    warmup: Duration,
    duration: Duration,
    peak_duration: Duration,
    streams: u64,
    open_streams: usize,
    select_iterations: u64,
    one_core_duration: Duration,
    /// Sequential requests per route counted by callgrind.
    counted_requests: u64,
    /// Client requests whose records the logging-volume phase writes.
    log_requests: u64,
    stats_reads: usize,
    /// The file moved through the files APIs, in MB.
    file_mb: usize,
    /// The keys of the console phase's pool, and the reads of each page timed.
    console_keys: usize,
    console_reads: usize,
}

impl Plan {
    fn new(smoke: bool) -> Self {
        if smoke {
            Plan {
                rates: [200, 500],
                warmup: Duration::from_millis(100),
                duration: Duration::from_millis(400),
                peak_duration: Duration::from_millis(400),
                streams: 10,
                open_streams: 100,
                select_iterations: 10_000,
                one_core_duration: Duration::from_millis(400),
                counted_requests: 20,
                log_requests: 20_000,
                stats_reads: 5,
                file_mb: 16,
                console_keys: 1_000,
                console_reads: 5,
            }
        } else {
            Plan {
                rates: [1000, 5000],
                warmup: Duration::from_secs(1),
                duration: Duration::from_secs(5),
                peak_duration: Duration::from_secs(5),
                streams: 200,
                open_streams: 10_000,
                select_iterations: 2_000_000,
                one_core_duration: Duration::from_secs(5),
                counted_requests: 1_000,
                log_requests: 10_000_000,
                stats_reads: 50,
                file_mb: 1024,
                console_keys: 10_000,
                console_reads: 21,
            }
        }
    }
}

pub(crate) fn free_address() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Raises the open-file limit to its hard maximum: 10,000 open streams need ~40,000 sockets
/// across the processes, and children inherit the limit.
fn raise_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write and read only the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        // Root may raise the hard limit too (up to fs.nr_open); others get their hard limit.
        let raised = libc::rlimit {
            rlim_cur: 262_144,
            rlim_max: 262_144,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            return raised.rlim_cur;
        }
        let wanted = limit.rlim_max.min(1_048_576);
        limit.rlim_cur = wanted;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            let mut current = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut current);
            return current.rlim_cur;
        }
        wanted
    }
}

/// Resident memory of a process, in MB (from /proc).
fn rss_mb(pid: Option<u32>) -> f64 {
    pid.map_or(0.0, |pid| status_mb(pid, "VmRSS:"))
}

/// A `/proc/{pid}/status` figure in MB (`VmRSS:`, `VmHWM:`).
pub(crate) fn status_mb(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(field))
                .and_then(|value| value.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kilobytes| kilobytes / 1024.0)
}

/// One body of `size_mb` through the all-in-one gateway, alone: the growth of its peak
/// resident memory (VmHWM, reset first through `clear_refs`) over its resident memory before,
/// in MB. `None` when the peak cannot be reset (not the process's owner) or the request fails.
async fn body_peak_growth_mb(
    client: &HttpClient,
    base: &str,
    pid: u32,
    size_mb: usize,
) -> Option<f64> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").ok()?;
    let before = status_mb(pid, "VmRSS:");
    let prefix = br#"{"contents":[{"parts":[{"text":""#;
    let suffix = br#""}]}]}"#;
    let mut body = Vec::with_capacity(size_mb * 1024 * 1024);
    body.extend_from_slice(prefix);
    body.resize(size_mb * 1024 * 1024 - suffix.len(), b'a');
    body.extend_from_slice(suffix);
    let mut target = gemini(base, "gemini-2.5-flash", "generateContent");
    target.body = bytes::Bytes::from(body);
    load::send(client, &target).await.ok()?;
    Some(status_mb(pid, "VmHWM:") - before)
}

#[derive(Default)]
pub(crate) struct Processes {
    children: Vec<Child>,
}

impl Processes {
    pub(crate) fn spawn(&mut self, command: &mut Command) -> anyhow::Result<Option<u32>> {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id();
        self.children.push(child);
        Ok(pid)
    }
}

pub(crate) async fn wait_for(client: &HttpClient, url: &str) -> anyhow::Result<()> {
    for _ in 0..600 {
        let request = hyper::Request::get(url).body(http_body_util::Full::new(Bytes::new()))?;
        if let Ok(response) = client.request(request).await
            && response.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("{url} never answered")
}

pub(crate) fn gateway_env(command: &mut Command, upstream: SocketAddr, data: &Path, keys: usize) {
    let keys: Vec<String> = (0..keys)
        .map(|index| format!("AIzaSyBench{index:029}"))
        .collect();
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("API_KEYS", serde_json::to_string(&keys).unwrap_or_default())
        .env("ALLOWED_TOKENS", CLIENT_TOKEN)
        .env("AUTH_TOKEN", ADMIN_TOKEN)
        .env("BASE_URL", format!("http://{upstream}/v1beta"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", data.join("bench.db").display()),
        )
        .env("CHECK_INTERVAL_HOURS", "0")
        .env("TIME_OUT", "60")
        .env("LOG_LEVEL", "warn");
}

pub fn gemini(base: &str, model: &str, action: &str) -> Target {
    Target {
        url: format!("{base}/v1beta/models/{model}:{action}"),
        body: Bytes::from_static(
            br#"{"contents":[{"role":"user","parts":[{"text":"Hello, bench"}]}]}"#,
        ),
        headers: vec![("x-goog-api-key", CLIENT_TOKEN.to_owned())],
    }
}

pub(crate) fn openai(base: &str, model: &str, stream: bool) -> Target {
    Target {
        url: format!("{base}/v1/chat/completions"),
        body: Bytes::from(json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "Hello, bench"}]}).to_string()),
        headers: vec![("authorization", format!("Bearer {CLIENT_TOKEN}"))],
    }
}

/// Anthropic's Messages route, with a Claude name the model map turns into `model`'s family.
pub(crate) fn anthropic(base: &str, model: &str) -> Target {
    Target {
        url: format!("{base}/v1/messages"),
        body: Bytes::from(json!({"model": model, "max_tokens": 256, "messages": [{"role": "user", "content": "Hello, bench"}]}).to_string()),
        headers: vec![
            ("x-api-key", CLIENT_TOKEN.to_owned()),
            ("anthropic-version", "2023-06-01".to_owned()),
        ],
    }
}

/// OpenAI's Responses route, `store: false` (the translation alone; a kept response adds one
/// row written through the logging service per request).
pub(crate) fn responses(base: &str, model: &str) -> Target {
    Target {
        url: format!("{base}/v1/responses"),
        body: Bytes::from(
            json!({"model": model, "input": "Hello, bench", "store": false}).to_string(),
        ),
        headers: vec![("authorization", format!("Bearer {CLIENT_TOKEN}"))],
    }
}

/// ns per pick of the chat service's key selection, with `keys` keys in the pool; `limited`:
/// with `KEY_MODEL_LIMITS` naming the model (limits high enough never to refuse), so that each
/// pick checks and counts the key's use of it.
fn select_cost_ns(keys: usize, iterations: u64, limited: bool) -> f64 {
    use gb_proto::keys::v1 as pb;
    use gb_runtime::settings::SettingValue;
    let pool = gb_chat::pool::LocalPool::default();
    if limited {
        let table = r#"{"gemini-2.5-*": {"rpm": 1000000000000, "tpm": 1000000000000, "rpd": 1000000000000}, "paid:gemini-2.5-pro": {"rpm": 1}}"#;
        pool.set_limits(gb_chat::pool::PoolLimits {
            table: gb_runtime::settings::KeyModelLimits::parse(table).unwrap_or_default(),
            reset: Default::default(),
        });
    }
    let snapshot = pb::PoolSnapshot {
        keys: (1..=keys as i64)
            .map(|id| pb::PoolKey {
                id,
                value: format!("key-{id}"),
                status: pb::KeyStatus::Active as i32,
                cooldown_until_ms: 0,
                key_type: "gemini".into(),
                ..Default::default()
            })
            .collect(),
        usage: None,
    };
    pool.apply(pb::pool_event::Event::Snapshot(snapshot));
    // Each pick's attempt is reported (settled with its running number), and the keys
    // service's sums acknowledge the reports every 64 picks, as they do a few times a second.
    let mut seq = 0u64;
    let mut pick = |checksum: &mut i64| {
        if let Ok(key) = pool.pick("gemini-2.5-flash", &[], 0) {
            *checksum = checksum.wrapping_add(key.id);
            seq += 1;
            key.settle(Some(seq), 10);
            if limited && seq.is_multiple_of(64) {
                pool.apply(pb::pool_event::Event::Usage(pb::UsageUpdate {
                    usage: Vec::new(),
                    applied: [(pool.reporter().to_owned(), seq)].into(),
                }));
            }
        }
    };
    let mut checksum = 0i64;
    // Warm up (caches, the first allocations), then measure.
    for _ in 0..iterations / 10 {
        pick(&mut checksum);
    }
    let started = Instant::now();
    for _ in 0..iterations {
        pick(&mut checksum);
    }
    std::hint::black_box(checksum);
    started.elapsed().as_nanos() as f64 / iterations as f64
}

/// The four selection figures, each the median of `rounds` alternated measurements.
pub fn select_medians(iterations: u64, rounds: usize) -> Vec<(&'static str, f64)> {
    let phases: [(&'static str, usize, bool); 4] = [
        ("10 keys", 10, false),
        ("10,000 keys", 10_000, false),
        ("10 keys, limits on", 10, true),
        ("10,000 keys, limits on", 10_000, true),
    ];
    let mut figures: Vec<Vec<f64>> = vec![Vec::new(); phases.len()];
    for _ in 0..rounds.max(1) {
        for (index, (_, keys, limited)) in phases.iter().enumerate() {
            figures[index].push(select_cost_ns(*keys, iterations, *limited));
        }
    }
    phases
        .iter()
        .zip(figures)
        .map(|((name, _, _), mut measured)| {
            measured.sort_by(f64::total_cmp);
            (*name, measured[measured.len() / 2])
        })
        .collect()
}

pub async fn run(
    gateway: &Path,
    out: &Path,
    smoke: bool,
    baseline: Option<&Path>,
    log_requests: Option<u64>,
    split_on_postgres: bool,
) -> anyhow::Result<()> {
    let mut plan = Plan::new(smoke);
    if let Some(requests) = log_requests {
        plan.log_requests = requests;
    }
    let file_limit = raise_file_limit();
    // Each open stream costs the gateway two sockets (client side, upstream side).
    let open_streams = plan
        .open_streams
        .min(file_limit.saturating_sub(1_000) as usize / 2);
    let data = std::env::temp_dir().join(format!("gb-bench-{}", std::process::id()));
    std::fs::create_dir_all(&data)?;
    let this = std::env::current_exe()?;
    let mut processes = Processes {
        children: Vec::new(),
    };
    let client = load::client();

    let upstream = free_address()?;
    processes.spawn(
        Command::new(&this)
            .arg("upstream")
            .arg(upstream.to_string()),
    )?;
    let passthrough = free_address()?;
    processes.spawn(
        Command::new(&this)
            .arg("passthrough")
            .arg(passthrough.to_string())
            .arg(upstream.to_string()),
    )?;

    // All in one process.
    let all_in_one = free_address()?;
    let mut command = Command::new(gateway);
    gateway_env(&mut command, upstream, &data.join("all-in-one"), 10);
    command
        .env("GATEWAY_ADDR", all_in_one.to_string())
        .env("METRICS_ADDR", free_address()?.to_string());
    std::fs::create_dir_all(data.join("all-in-one"))?;
    let all_in_one_pid = processes.spawn(&mut command)?;

    // The baseline binary, all in one process, configured the same way.
    let baseline_base = match baseline {
        Some(binary) => {
            let address = free_address()?;
            let mut command = Command::new(binary);
            gateway_env(&mut command, upstream, &data.join("baseline"), 10);
            command
                .env("GATEWAY_ADDR", address.to_string())
                .env("METRICS_ADDR", free_address()?.to_string());
            std::fs::create_dir_all(data.join("baseline"))?;
            processes.spawn(&mut command)?;
            Some(format!("http://{address}"))
        }
        None => None,
    };

    // Microservices: config, logging, keys, files, chat, gateway as six processes over gRPC, on one
    // SQLite file, or (`--split-on-postgres`) on a Postgres database of their own.
    std::fs::create_dir_all(data.join("microservices"))?;
    let postgres_admin = crate::postgres::admin_url();
    let micro_database = if split_on_postgres {
        Some(crate::postgres::BenchDatabase::create(&postgres_admin, "split").await?)
    } else {
        None
    };
    let addresses: Vec<(&str, std::net::SocketAddr)> =
        ["config", "logging", "keys", "files", "chat", "gateway"]
            .into_iter()
            .map(|service| Ok((service, free_address()?)))
            .collect::<anyhow::Result<_>>()?;
    let micro = addresses[5].1;
    for (service, _) in &addresses {
        let mut command = Command::new(gateway);
        gateway_env(&mut command, upstream, &data.join("microservices"), 10);
        if let Some(database) = &micro_database {
            command
                .env("DATABASE_URL", &database.url)
                .env("ENCRYPTION_KEY", crate::postgres::ENCRYPTION_KEY);
        }
        command.arg(service);
        for (other, address) in &addresses {
            let name = other.to_uppercase();
            command.env(format!("{name}_URL"), format!("http://{address}"));
            // Every process gets its own free address for the services it does not run.
            let own = if other == service {
                *address
            } else {
                free_address()?
            };
            command.env(format!("{name}_ADDR"), own.to_string());
        }
        command.env("METRICS_ADDR", free_address()?.to_string());
        processes.spawn(&mut command)?;
        if *service != "gateway" {
            // Each one starts before what depends on it (one database among them).
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    let direct_base = format!("http://{upstream}");
    let passthrough_base = format!("http://{passthrough}");
    let all_in_one_base = format!("http://{all_in_one}");
    let micro_base = format!("http://{micro}");
    wait_for(&client, &format!("{direct_base}/v1beta/models")).await?;
    wait_for(&client, &format!("{passthrough_base}/v1beta/models")).await?;
    wait_for(&client, &format!("{all_in_one_base}/health")).await?;
    wait_for(&client, &format!("{micro_base}/health")).await?;
    if let Some(base) = &baseline_base {
        wait_for(&client, &format!("{base}/health")).await?;
    }
    // The chat services have the pool once a generate call succeeds.
    for base in [&all_in_one_base, &micro_base]
        .into_iter()
        .chain(baseline_base.as_ref())
    {
        let target = gemini(base, "gemini-2.5-flash", "generateContent");
        for _ in 0..100 {
            if load::send(&client, &target).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let rss_idle_mb = rss_mb(all_in_one_pid);

    // Memory per body, before any load has grown the heap: the peak grows by about the
    // body's size times this, plus a constant.
    let body_sizes_mb: &[usize] = if smoke { &[4] } else { &[16, 48] };
    let mut body_peaks = Vec::new();
    if let Some(pid) = all_in_one_pid {
        for &size in body_sizes_mb {
            if let Some(growth) = body_peak_growth_mb(&client, &all_in_one_base, pid, size).await {
                body_peaks.push((size, growth));
            }
        }
    }

    let mut targets: Vec<(&str, Target)> = vec![
        (
            "direct",
            gemini(&direct_base, "gemini-2.5-flash", "generateContent"),
        ),
        (
            "passthrough",
            gemini(&passthrough_base, "gemini-2.5-flash", "generateContent"),
        ),
        (
            "gateway all-in-one, Gemini route",
            gemini(&all_in_one_base, "gemini-2.5-flash", "generateContent"),
        ),
        (
            "gateway all-in-one, OpenAI route",
            openai(&all_in_one_base, "gemini-2.5-flash", false),
        ),
        (
            "gateway all-in-one, Anthropic route",
            anthropic(&all_in_one_base, "claude-haiku-4-5"),
        ),
        (
            "gateway all-in-one, Responses route",
            responses(&all_in_one_base, "gemini-2.5-flash"),
        ),
        (
            "gateway microservices, Gemini route",
            gemini(&micro_base, "gemini-2.5-flash", "generateContent"),
        ),
        (
            "gateway microservices, OpenAI route",
            openai(&micro_base, "gemini-2.5-flash", false),
        ),
    ];
    if let Some(base) = &baseline_base {
        targets.push((
            "baseline all-in-one, Gemini route",
            gemini(base, "gemini-2.5-flash", "generateContent"),
        ));
    }

    let mut latency: BTreeMap<String, Vec<Latency>> = BTreeMap::new();
    let mut rss_5k_mb: f64 = 0.0;
    for rate in plan.rates {
        for (name, target) in &targets {
            let sampler = if name.contains("all-in-one, Gemini") && rate == plan.rates[1] {
                let pid = all_in_one_pid;
                Some(tokio::spawn(async move {
                    let mut peak: f64 = 0.0;
                    for _ in 0..200 {
                        peak = peak.max(rss_mb(pid));
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    peak
                }))
            } else {
                None
            };
            // A client of its own per phase: no connection of a phase is left to the next.
            let measured =
                load::open_loop(&load::client(), target, rate, plan.warmup, plan.duration).await;
            if let Some(sampler) = sampler {
                sampler.abort();
                rss_5k_mb = rss_mb(all_in_one_pid).max(rss_5k_mb);
                if let Ok(peak) = sampler.await {
                    rss_5k_mb = rss_5k_mb.max(peak);
                }
            }
            latency
                .entry((*name).to_owned())
                .or_default()
                .push(measured);
        }
    }

    let mut peak: BTreeMap<String, (f64, u64)> = BTreeMap::new();
    for (name, target) in &targets {
        peak.insert(
            (*name).to_owned(),
            load::closed_loop(&load::client(), target, 64, plan.peak_duration).await,
        );
    }

    let stream_targets: Vec<(&str, Target)> = vec![
        (
            "direct",
            gemini(&direct_base, "stream-5x10", "streamGenerateContent?alt=sse"),
        ),
        (
            "gateway all-in-one, Gemini route",
            gemini(
                &all_in_one_base,
                "stream-5x10",
                "streamGenerateContent?alt=sse",
            ),
        ),
        (
            "gateway all-in-one, OpenAI route",
            openai(&all_in_one_base, "stream-5x10", true),
        ),
        (
            "gateway microservices, Gemini route",
            gemini(&micro_base, "stream-5x10", "streamGenerateContent?alt=sse"),
        ),
    ];
    let mut streams: BTreeMap<String, StreamTimings> = BTreeMap::new();
    for (name, target) in &stream_targets {
        streams.insert(
            (*name).to_owned(),
            load::stream_timings(&load::client(), target, plan.streams).await,
        );
    }

    let hold = gemini(
        &all_in_one_base,
        "hold-120000",
        "streamGenerateContent?alt=sse",
    );
    let held = load::hold_streams(
        &load::client(),
        &hold,
        open_streams,
        Duration::from_secs(if smoke { 10 } else { 90 }),
    )
    .await;
    let rss_streams_mb = rss_mb(all_in_one_pid);

    let select_10 = select_cost_ns(10, plan.select_iterations, false);
    let select_10000 = select_cost_ns(10_000, plan.select_iterations, false);
    let select_limited_10 = select_cost_ns(10, plan.select_iterations, true);
    let select_limited_10000 = select_cost_ns(10_000, plan.select_iterations, true);

    drop(processes);
    if let Some(database) = micro_database {
        database.drop_database().await;
    }
    // The targets pinned to one core, alone on the machine but for their load and upstream.
    let one_core =
        crate::one_core::run(&this, gateway, &data, plan.one_core_duration, plan.rates[0]).await?;
    // Instructions per request, counted by callgrind (repeatable where time is not).
    let instructions =
        crate::instructions::run(&this, gateway, &data, plan.counted_requests).await?;
    // The logging service alone at volume, on both backends.
    let log_volume = crate::log_volume::run(
        gateway,
        &data,
        &postgres_admin,
        plan.log_requests,
        plan.stats_reads,
        "both",
    )
    .await?;
    // One large file up and down through the files APIs.
    let files = crate::files::run(gateway, &data, plan.file_mb).await?;
    // The console's keys page with a large pool.
    let console =
        crate::console::run(gateway, &data, plan.console_keys, plan.console_reads).await?;
    let _ = std::fs::remove_dir_all(&data);

    let report = Report {
        smoke,
        plan: &plan,
        latency,
        peak,
        streams,
        rss_idle_mb,
        rss_5k_mb,
        rss_streams_mb,
        body_peaks,
        one_core,
        instructions,
        log_volume,
        files,
        console,
        held,
        open_streams,
        select_10,
        select_10000,
        select_limited_10,
        select_limited_10000,
        file_limit,
    };
    report.write(out)?;
    report.check().map_err(|problems| {
        anyhow::anyhow!(
            "this run is broken, its figures are not results:\n  {}",
            problems.join("\n  ")
        )
    })
}

struct Report<'a> {
    smoke: bool,
    plan: &'a Plan,
    latency: BTreeMap<String, Vec<Latency>>,
    peak: BTreeMap<String, (f64, u64)>,
    streams: BTreeMap<String, StreamTimings>,
    rss_idle_mb: f64,
    rss_5k_mb: f64,
    rss_streams_mb: f64,
    /// (body MB, peak growth MB) for single large bodies.
    body_peaks: Vec<(usize, f64)>,
    one_core: [(String, crate::one_core::OneCore); 3],
    instructions: crate::instructions::Instructions,
    log_volume: Vec<crate::log_volume::LogVolume>,
    files: crate::files::FilesFigures,
    console: crate::console::ConsoleFigures,
    held: usize,
    open_streams: usize,
    select_10: f64,
    select_10000: f64,
    select_limited_10: f64,
    select_limited_10000: f64,
    file_limit: u64,
}

fn round(value: f64, places: i32) -> f64 {
    let factor = 10f64.powi(places);
    (value * factor).round() / factor
}

/// The share of failed requests past which a row is not a measurement.
const MAX_ERROR_SHARE: f64 = 0.01;

impl Report<'_> {
    /// What makes the run unfit to report: a row with more than 1% errors, a peak below what
    /// the same target sustained at a fixed rate earlier in the run, streams not held.
    fn check(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        for (name, runs) in &self.latency {
            for run in runs {
                if run.sent == 0 || run.errors as f64 > MAX_ERROR_SHARE * run.sent as f64 {
                    problems.push(format!(
                        "{name} at {} requests/s: {} errors of {} sent",
                        run.rate, run.errors, run.sent
                    ));
                }
            }
        }
        // A file in transit must not sit in memory (issue 11: less than 64 MB of growth).
        for (what, growth) in [
            ("upload", self.files.upload_peak_growth_mb),
            ("download", self.files.download_peak_growth_mb),
        ] {
            if growth >= 64.0 {
                problems.push(format!(
                    "a {} MB file's {what} grew the gateway's peak RSS by {growth:.1} MB (bound: 64)",
                    self.files.size_mb
                ));
            }
        }
        for (name, (rps, errors)) in &self.peak {
            let completed = rps * self.plan.peak_duration.as_secs_f64();
            if *errors as f64 > MAX_ERROR_SHARE * (completed + *errors as f64) {
                problems.push(format!(
                    "{name} peak: {errors} errors beside {completed:.0} answers"
                ));
            }
            let sustained = self
                .latency
                .get(name)
                .and_then(|runs| runs.iter().map(|run| run.achieved_rps).reduce(f64::max))
                .unwrap_or(0.0);
            if *rps < 0.5 * sustained {
                problems.push(format!(
                    "{name} peak: {rps:.0} requests/s, below half of the {sustained:.0} it sustained at a fixed rate in this run"
                ));
            }
        }
        for (name, measured) in &self.one_core {
            let run = measured.at_1k;
            if measured.requests == 0
                || run.sent == 0
                || run.errors as f64 > MAX_ERROR_SHARE * run.sent as f64
            {
                problems.push(format!(
                    "{name} on one core: {} requests measured, {} errors of {} sent at {} requests/s",
                    measured.requests, run.errors, run.sent, run.rate
                ));
            }
        }
        if self.held < self.open_streams * 9 / 10 {
            problems.push(format!(
                "{} of {} open streams held",
                self.held, self.open_streams
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    fn at(&self, name: &str, rate_index: usize) -> Latency {
        self.latency
            .get(name)
            .and_then(|runs| runs.get(rate_index).copied())
            .unwrap_or_default()
    }

    fn summary(&self) -> Value {
        let direct = self.at("direct", 1);
        let gateway = self.at("gateway all-in-one, Gemini route", 1);
        let micro = self.at("gateway microservices, Gemini route", 1);
        let peak = |name: &str| self.peak.get(name).map_or(0.0, |(rps, _)| *rps);
        let stream = |name: &str| self.streams.get(name).copied().unwrap_or_default();
        json!({
            "overhead_p50_ms_5k": round(gateway.p50_ms - direct.p50_ms, 3),
            "overhead_p99_ms_5k": round(gateway.p99_ms - direct.p99_ms, 3),
            "overhead_p99_ms_5k_microservices": round(micro.p99_ms - direct.p99_ms, 3),
            "peak_rps_direct": round(peak("direct"), 0),
            "peak_rps_passthrough": round(peak("passthrough"), 0),
            "peak_rps_gateway": round(peak("gateway all-in-one, Gemini route"), 0),
            "peak_rps_baseline": round(peak("baseline all-in-one, Gemini route"), 0),
            "stream_ttfb_overhead_p50_ms": round(stream("gateway all-in-one, Gemini route").ttfb_p50_ms - stream("direct").ttfb_p50_ms, 3),
            "rss_idle_mb": round(self.rss_idle_mb, 1),
            "rss_5k_mb": round(self.rss_5k_mb, 1),
            "open_streams_held": self.held,
            "body_peak_growth_per_body_byte": self.body_peaks.last().map(|(size, growth)| round(growth / *size as f64, 2)),
            "cpu_ms_per_request_gemini_1core": round(self.one_core[0].1.cpu_ms_per_request, 4),
            "cpu_ms_per_request_openai_1core": round(self.one_core[1].1.cpu_ms_per_request, 4),
            "cpu_ms_per_request_passthrough_1core": round(self.one_core[2].1.cpu_ms_per_request, 4),
            "p99_ms_1k_1core_gateway": round(self.one_core[0].1.at_1k.p99_ms, 3),
            "p99_ms_1k_1core_passthrough": round(self.one_core[2].1.at_1k.p99_ms, 3),
            "instructions_per_request_gemini": self.instructions.gemini_per_request,
            "instructions_per_request_openai": self.instructions.openai_per_request,
            "instructions_per_request_anthropic": self.instructions.anthropic_per_request,
            "instructions_per_request_responses": self.instructions.responses_per_request,
            "log_volume_requests": self.plan.log_requests,
            "stats_p99_ms_10m": round(self.log_volume.iter().map(|volume| volume.stats_p99_ms).fold(0.0, f64::max), 2),
            "log_write_rps_postgres": round(self.log_volume.iter().find(|volume| volume.backend == "postgres").map_or(0.0, |volume| volume.write_rps), 0),
            "log_write_rps_sqlite": round(self.log_volume.iter().find(|volume| volume.backend == "sqlite").map_or(0.0, |volume| volume.write_rps), 0),
            "select_ns_10_keys": round(self.select_10, 1),
            "select_ns_10000_keys": round(self.select_10000, 1),
            "select_ns_10_keys_with_limits": round(self.select_limited_10, 1),
            "select_ns_10000_keys_with_limits": round(self.select_limited_10000, 1),
            "file_mb": self.files.size_mb,
            "file_upload_mb_s_gateway": round(self.files.upload_mb_s, 0),
            "file_upload_mb_s_store": round(self.files.store_write_mb_s, 0),
            "file_download_mb_s_gateway": round(self.files.download_mb_s, 0),
            "file_download_mb_s_store": round(self.files.store_read_mb_s, 0),
            "file_upload_peak_rss_growth_mb": round(self.files.upload_peak_growth_mb, 1),
            "file_download_peak_rss_growth_mb": round(self.files.download_peak_growth_mb, 1),
            "console_keys": self.console.keys,
            "console_keys_page_ms": round(self.console.page_ms, 1),
            "console_keys_search_ms": round(self.console.search_ms, 1),
            "console_json_list_ms": round(self.console.json_list_ms, 1),
            "console_add_keys_per_s": round(self.console.add_keys_per_s, 0),
        })
    }

    fn markdown(&self, summary: &Value) -> String {
        let mut text = String::new();
        let rates = self.plan.rates;
        text.push_str(&format!(
            "# gemini-balance benchmark{}\n\nOne run on this machine ({} cores), every target its own process, the load generator in another; the mock upstream answers at once. Latencies are from each request's scheduled start (open loop), in ms.\n\n",
            if self.smoke { " (smoke: tiny loads, figures meaningless)" } else { "" },
            std::thread::available_parallelism().map_or(0, usize::from)
        ));
        text.push_str(&format!("| target | p50 @{r0} | p99 @{r0} | p50 @{r1} | p99 @{r1} | errors | peak rps (64 conns) | peak ÷ pass-through |\n|---|---|---|---|---|---|---|---|\n", r0 = rates[0], r1 = rates[1]));
        let passthrough_peak = self.peak.get("passthrough").map_or(0.0, |(rps, _)| *rps);
        for (name, runs) in &self.latency {
            let low = runs.first().copied().unwrap_or_default();
            let high = runs.get(1).copied().unwrap_or_default();
            let (peak, _) = self.peak.get(name).copied().unwrap_or_default();
            text.push_str(&format!(
                "| {name} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {:.0} | {:.2} |\n",
                low.p50_ms,
                low.p99_ms,
                high.p50_ms,
                high.p99_ms,
                low.errors + high.errors,
                peak,
                if passthrough_peak > 0.0 {
                    peak / passthrough_peak
                } else {
                    0.0
                }
            ));
        }
        text.push_str("\n| stream (5 chunks, 10 ms apart) | TTFB p50 | TTFB p99 | gap p50 | gap p99 | coalesced reads | chunks per stream |\n|---|---|---|---|---|---|---|\n");
        for (name, timings) in &self.streams {
            text.push_str(&format!(
                "| {name} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {:.1} |\n",
                timings.ttfb_p50_ms,
                timings.ttfb_p99_ms,
                timings.gap_p50_ms,
                timings.gap_p99_ms,
                timings.coalesced_reads,
                timings.chunks_per_stream
            ));
        }
        text.push_str("\n| pinned to one core (load and upstream on the other) | CPU ms per request | requests measured | p50 @1000 | p99 @1000 |\n|---|---|---|---|---|\n");
        for (name, measured) in &self.one_core {
            text.push_str(&format!(
                "| {name} | {:.4} | {} | {:.3} | {:.3} |\n",
                measured.cpu_ms_per_request,
                measured.requests,
                measured.at_1k.p50_ms,
                measured.at_1k.p99_ms
            ));
        }
        text.push_str(&format!(
            "\nInstructions per request (callgrind, all-in-one with logging, {} sequential requests a route, background work included): Gemini route {}, OpenAI route {}, Anthropic route {}, Responses route {} (`store: false`).\n",
            self.instructions.requests,
            self.instructions.gemini_per_request,
            self.instructions.openai_per_request,
            self.instructions.anthropic_per_request,
            self.instructions.responses_per_request
        ));
        text.push_str("\n| logging service alone (client requests' rows, an error log for one in 20) | requests written | write requests/s | statistics p50 ms | p99 ms | log bytes per request | counter rows (bytes) |\n|---|---|---|---|---|---|---|\n");
        for volume in &self.log_volume {
            text.push_str(&format!(
                "| {} | {} | {:.0} | {:.2} | {:.2} | {:.0} | {} ({}) |\n",
                volume.backend,
                volume.requests,
                volume.write_rps,
                volume.stats_p50_ms,
                volume.stats_p99_ms,
                volume.log_bytes_per_request,
                volume.rollup_rows,
                volume.rollup_bytes
            ));
        }
        let files = &self.files;
        text.push_str(&format!(
            "\nOne {} MB file through the all-in-one gateway (gateway and files service in one process, the local directory store): up at {:.0} MB/s ({:.2} × writing the same bytes to a file straight, {:.0} MB/s), down at {:.0} MB/s ({:.2} × reading them straight, {:.0} MB/s); peak RSS grew by {:.1} MB while it went up and {:.1} MB while it came down.\n",
            files.size_mb,
            files.upload_mb_s,
            files.upload_mb_s / files.store_write_mb_s.max(1e-9),
            files.store_write_mb_s,
            files.download_mb_s,
            files.download_mb_s / files.store_read_mb_s.max(1e-9),
            files.store_read_mb_s,
            files.upload_peak_growth_mb,
            files.download_peak_growth_mb
        ));
        let console = &self.console;
        text.push_str(&format!(
            "\nThe console's keys page with {} keys (added through its bulk add, 500 a form, at {:.0} keys/s): one page of 50 in {:.1} ms, a search of every key sorted by calls (100 a page) in {:.1} ms, against the admin API's JSON list of every key in {:.1} ms ({:.2} × and {:.2} × that baseline; medians of {} reads).\n",
            console.keys,
            console.add_keys_per_s,
            console.page_ms,
            console.search_ms,
            console.json_list_ms,
            console.page_ms / console.json_list_ms.max(1e-9),
            console.search_ms / console.json_list_ms.max(1e-9),
            console.reads
        ));
        for (size, growth) in &self.body_peaks {
            text.push_str(&format!(
                "\nOne {size} MB body alone through the all-in-one gateway: peak RSS grows by {growth:.1} MB ({:.2} × the body).\n",
                growth / *size as f64
            ));
        }
        text.push_str(&format!(
            "\nMemory (all-in-one RSS): {:.1} MB idle, {:.1} MB at {} requests/s, {:.1} MB holding {} open streams (of {} opened; file limit {}).\n\nKey selection: {:.1} ns with 10 keys, {:.1} ns with 10,000 keys; with `KEY_MODEL_LIMITS` on the model (each pick checks and counts the key's use): {:.1} ns with 10 keys, {:.1} ns with 10,000 keys.\n\n## Summary\n\n```json\n{}\n```\n",
            self.rss_idle_mb, self.rss_5k_mb, rates[1], self.rss_streams_mb, self.held, self.open_streams, self.file_limit, self.select_10, self.select_10000, self.select_limited_10, self.select_limited_10000,
            serde_json::to_string_pretty(summary).unwrap_or_default()
        ));
        text
    }

    fn write(&self, out: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(out)?;
        let summary = self.summary();
        let json = json!({
            "summary": summary,
            "smoke": self.smoke,
            "latency": self.latency,
            "peak_rps": self.peak.iter().map(|(name, (rps, errors))| (name.clone(), json!({"rps": round(*rps, 0), "errors": errors}))).collect::<BTreeMap<_, _>>(),
            "streams": self.streams,
            "rss_streams_mb": round(self.rss_streams_mb, 1),
            "one_core": self.one_core.iter().map(|(name, measured)| (name.clone(), json!(measured))).collect::<BTreeMap<_, _>>(),
            "instructions": self.instructions,
            "body_peaks_mb": self.body_peaks,
            "log_volume": self.log_volume,
            "files": self.files,
            "console": self.console,
            "file_limit": self.file_limit,
        });
        std::fs::write(
            out.join("report.json"),
            serde_json::to_string_pretty(&json)?,
        )?;
        std::fs::write(out.join("report.md"), self.markdown(&summary))?;
        eprintln!("{}", self.markdown(&summary));
        Ok(())
    }
}
