//! `gb-bench`: the benchmark harness (`make bench`).
//!
//! - `gb-bench upstream ADDR`: the fast mock upstream;
//! - `gb-bench passthrough ADDR UPSTREAM`: the minimal reverse proxy;
//! - `gb-bench run --gateway PATH [--smoke]`: starts both and the gateway (all-in-one and
//!   microservices), measures them side by side, writes `report.md` and `report.json`.

mod console;
mod files;
mod instructions;
mod load;
mod log_volume;
mod one_core;
mod passthrough;
mod postgres;
mod run;
mod upstream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "gb-bench", about = "Benchmark harness of gemini-balance")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The fast mock upstream (zero delay unless --delay-ms).
    Upstream {
        address: SocketAddr,
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
    },
    /// A minimal reverse proxy in front of the upstream.
    Passthrough {
        address: SocketAddr,
        upstream: SocketAddr,
    },
    /// Closed-loop load on one gateway's Gemini route, for profiling.
    Load {
        /// The gateway's base URL.
        base: String,
        #[arg(long, default_value_t = 64)]
        connections: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Holds streams open on one gateway, for memory profiling.
    Hold {
        base: String,
        #[arg(long, default_value_t = 1000)]
        streams: usize,
        #[arg(long, default_value_t = 30)]
        seconds: u64,
    },
    /// The logging service alone at volume (the bench's last phase), on one backend or both.
    Logs {
        /// The gemini-balance binary whose logging service is measured.
        #[arg(long)]
        gateway: PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        requests: u64,
        /// `sqlite`, `postgres` or `both`.
        #[arg(long, default_value = "both")]
        backend: String,
    },
    /// The instructions a request costs (the bench's callgrind phase) of one binary.
    Instructions {
        #[arg(long)]
        gateway: PathBuf,
        #[arg(long, default_value_t = 1_000)]
        requests: u64,
        /// Keep callgrind's dumps (one a route, in the routes' order) in this folder, for
        /// `callgrind_annotate`.
        #[arg(long)]
        keep: Option<PathBuf>,
    },
    /// The one-core phase alone (the bench's CPU time per request) of one binary, for A/B runs
    /// against another build, alternated, on a machine too noisy for one whole run.
    OneCore {
        #[arg(long)]
        gateway: PathBuf,
        /// Seconds each measurement lasts.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// The key selection phase alone: ns per pick with 10 and 10,000 keys, without and with
    /// `KEY_MODEL_LIMITS` on the model, the four alternated `rounds` times (medians printed).
    Select {
        #[arg(long, default_value_t = 1_000_000)]
        iterations: u64,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// The files phase alone: one file of `size_mb` up and down through the all-in-one
    /// gateway, against the same bytes to and from a file straight, with the peak RSS growth.
    Files {
        #[arg(long)]
        gateway: PathBuf,
        #[arg(long, default_value_t = 1024)]
        size_mb: usize,
    },
    /// The console phase alone: `keys` added through the console's bulk add, then its keys
    /// page and a search timed against the admin API's JSON list of every key.
    Console {
        #[arg(long)]
        gateway: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        keys: usize,
        #[arg(long, default_value_t = 21)]
        reads: usize,
    },
    /// The whole measurement.
    Run {
        /// The gemini-balance binary to measure.
        #[arg(long)]
        gateway: PathBuf,
        /// Where the reports go.
        #[arg(long, default_value = "target/bench")]
        out: PathBuf,
        /// A few seconds, small loads: checks that the harness runs and writes its reports.
        #[arg(long)]
        smoke: bool,
        /// Another gemini-balance binary (an earlier build), run all-in-one beside the one
        /// measured and loaded the same way: a same-run baseline for a change.
        #[arg(long)]
        baseline: Option<PathBuf>,
        /// Client requests the logging-volume phase writes (default: 10,000,000; smoke: 20,000).
        #[arg(long)]
        log_requests: Option<u64>,
        /// Run the split services on a Postgres database of their own (`TEST_POSTGRES_URL`)
        /// instead of one SQLite file.
        #[arg(long)]
        split_on_postgres: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Upstream { address, delay_ms } => {
                upstream::serve(address, Duration::from_millis(delay_ms)).await
            }
            Command::Passthrough { address, upstream } => {
                passthrough::serve(address, upstream).await
            }
            Command::Run {
                gateway,
                out,
                smoke,
                baseline,
                log_requests,
                split_on_postgres,
            } => {
                run::run(
                    &gateway,
                    &out,
                    smoke,
                    baseline.as_deref(),
                    log_requests,
                    split_on_postgres,
                )
                .await
            }
            Command::Logs {
                gateway,
                requests,
                backend,
            } => {
                let data =
                    std::env::temp_dir().join(format!("gb-bench-logs-{}", std::process::id()));
                let postgres_admin = postgres::admin_url();
                let measured =
                    log_volume::run(&gateway, &data, &postgres_admin, requests, 50, &backend).await;
                let _ = std::fs::remove_dir_all(&data);
                for volume in measured? {
                    eprintln!("{}", serde_json::to_string(&volume)?);
                }
                Ok(())
            }
            Command::Instructions {
                gateway,
                requests,
                keep,
            } => {
                let data = std::env::temp_dir()
                    .join(format!("gb-bench-instructions-{}", std::process::id()));
                let this = std::env::current_exe()?;
                let counted = instructions::run(&this, &gateway, &data, requests).await;
                if let Some(keep) = keep {
                    instructions::keep_dumps(&data, &keep)?;
                }
                let _ = std::fs::remove_dir_all(&data);
                eprintln!("{}", serde_json::to_string(&counted?)?);
                Ok(())
            }
            Command::OneCore { gateway, seconds } => {
                let data =
                    std::env::temp_dir().join(format!("gb-bench-one-core-{}", std::process::id()));
                let this = std::env::current_exe()?;
                let measured =
                    one_core::run(&this, &gateway, &data, Duration::from_secs(seconds), 1_000)
                        .await;
                let _ = std::fs::remove_dir_all(&data);
                for (name, figures) in measured? {
                    eprintln!("{name}: {}", serde_json::to_string(&figures)?);
                }
                Ok(())
            }
            Command::Files { gateway, size_mb } => {
                let data =
                    std::env::temp_dir().join(format!("gb-bench-files-{}", std::process::id()));
                let figures = files::run(&gateway, &data, size_mb).await;
                let _ = std::fs::remove_dir_all(&data);
                eprintln!("{}", serde_json::to_string_pretty(&figures?)?);
                Ok(())
            }
            Command::Console {
                gateway,
                keys,
                reads,
            } => {
                let data =
                    std::env::temp_dir().join(format!("gb-bench-console-{}", std::process::id()));
                let figures = console::run(&gateway, &data, keys, reads).await;
                let _ = std::fs::remove_dir_all(&data);
                eprintln!("{}", serde_json::to_string_pretty(&figures?)?);
                Ok(())
            }
            Command::Select { iterations, rounds } => {
                for (name, figure) in run::select_medians(iterations, rounds) {
                    eprintln!("{name}: {figure:.1} ns per pick");
                }
                Ok(())
            }
            Command::Hold {
                base,
                streams,
                seconds,
            } => {
                let target = run::gemini(&base, "hold-600000", "streamGenerateContent?alt=sse");
                let held = load::hold_streams(
                    &load::client(),
                    &target,
                    streams,
                    Duration::from_secs(seconds),
                )
                .await;
                eprintln!("{held} streams held");
                tokio::time::sleep(Duration::from_secs(seconds)).await;
                Ok(())
            }
            Command::Load {
                base,
                connections,
                seconds,
            } => {
                let target = run::gemini(&base, "gemini-2.5-flash", "generateContent");
                let (rps, errors) = load::closed_loop(
                    &load::client(),
                    &target,
                    connections,
                    Duration::from_secs(seconds),
                )
                .await;
                eprintln!("{rps:.0} requests/s, {errors} errors");
                Ok(())
            }
        }
    })
}
