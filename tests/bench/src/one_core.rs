//! One core for the target, the other for the rest: the all-in-one gateway (logging on) and
//! the pass-through each pinned to core 0 (`taskset`), a mock upstream of their own and the
//! load generator on core 1. Gives the CPU time a request costs the gateway (its utime + stime
//! over the requests it served) and the tail at a light fixed rate, beside the pass-through's.

use std::path::Path;
use std::time::Duration;

use tokio::process::Command;

use crate::load::{self, Latency};
use crate::run::{Processes, free_address, gateway_env, gemini, openai, wait_for};

/// What one pinned target measured.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct OneCore {
    pub cpu_ms_per_request: f64,
    pub requests: u64,
    pub at_1k: Latency,
}

/// utime + stime of a process, in ms (from /proc/{pid}/stat).
fn cpu_ms(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) in parentheses.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|value| value.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    // SAFETY: sysconf reads a constant of the system.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) * 1000.0 / per_second.max(1.0)
}

/// Lets every thread of this process run only on `cores`.
fn run_on(cores: impl Iterator<Item = usize> + Clone) {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return;
    };
    for task in tasks.flatten() {
        let Ok(tid) = task.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // SAFETY: the set is a plain bit set on the stack, passed by pointer with its size.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for core in cores.clone() {
                libc::CPU_SET(core, &mut set);
            }
            libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }
}

/// Closed-loop load for `duration`, then a fixed 1k req/s run: the CPU per request of the
/// first, the latencies of the second.
async fn measure(pid: u32, target: &load::Target, duration: Duration, rate: u64) -> OneCore {
    let before = cpu_ms(pid);
    let (rps, _) = load::closed_loop(&load::client(), target, 16, duration).await;
    let requests = (rps * duration.as_secs_f64()) as u64;
    let spent = cpu_ms(pid) - before;
    let at_1k = load::open_loop(
        &load::client(),
        target,
        rate,
        Duration::from_millis(500),
        duration,
    )
    .await;
    OneCore {
        cpu_ms_per_request: if requests > 0 {
            spent / requests as f64
        } else {
            0.0
        },
        requests,
        at_1k,
    }
}

/// The gateway's Gemini and OpenAI routes and the pass-through, each pinned to core 0.
pub async fn run(
    this: &Path,
    gateway: &Path,
    data: &Path,
    duration: Duration,
    rate: u64,
) -> anyhow::Result<[(String, OneCore); 3]> {
    // Read before pinning: the count follows this process's affinity.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if cores < 2 {
        anyhow::bail!("the one-core phase needs two cores");
    }
    let mut processes = Processes::default();
    let upstream = free_address()?;
    processes.spawn(
        Command::new("taskset")
            .args(["-c", "1"])
            .arg(this)
            .arg("upstream")
            .arg(upstream.to_string()),
    )?;
    let passthrough = free_address()?;
    let passthrough_pid = processes.spawn(
        Command::new("taskset")
            .args(["-c", "0"])
            .arg(this)
            .arg("passthrough")
            .arg(passthrough.to_string())
            .arg(upstream.to_string()),
    )?;
    let address = free_address()?;
    let dir = data.join("one-core");
    std::fs::create_dir_all(&dir)?;
    let mut command = Command::new("taskset");
    command.args(["-c", "0"]).arg(gateway);
    gateway_env(&mut command, upstream, &dir, 10);
    command
        .env("GATEWAY_ADDR", address.to_string())
        .env("METRICS_ADDR", free_address()?.to_string());
    let gateway_pid = processes.spawn(&mut command)?;
    let client = load::client();
    let gateway_base = format!("http://{address}");
    let passthrough_base = format!("http://{passthrough}");
    wait_for(&client, &format!("{gateway_base}/health")).await?;
    wait_for(&client, &format!("{passthrough_base}/v1beta/models")).await?;
    let warm = gemini(&gateway_base, "gemini-2.5-flash", "generateContent");
    for _ in 0..100 {
        if load::send(&client, &warm).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(client);
    let (Some(gateway_pid), Some(passthrough_pid)) = (gateway_pid, passthrough_pid) else {
        anyhow::bail!("a pinned process has no pid");
    };
    run_on(std::iter::once(1));
    let gemini_route = measure(gateway_pid, &warm, duration, rate).await;
    let openai_route = measure(
        gateway_pid,
        &openai(&gateway_base, "gemini-2.5-flash", false),
        duration,
        rate,
    )
    .await;
    let passthrough_route = measure(
        passthrough_pid,
        &gemini(&passthrough_base, "gemini-2.5-flash", "generateContent"),
        duration,
        rate,
    )
    .await;
    run_on(0..cores);
    Ok([
        ("gateway, Gemini route".to_owned(), gemini_route),
        ("gateway, OpenAI route".to_owned(), openai_route),
        ("passthrough".to_owned(), passthrough_route),
    ])
}
