//! Steady client load through the gateway while the faults happen: every answer is counted by
//! the phase it came in (which fault was on), so that a lost request names its fault.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub const CLIENT_TOKEN: &str = "sk-faults-client";

#[derive(Default)]
struct Tally {
    /// Per phase: requests sent, answered 200, failed (status or transport error).
    sent: Vec<usize>,
    ok: Vec<usize>,
    failed: Vec<usize>,
    /// Per phase: the statuses of the failed requests that got an HTTP answer.
    failed_statuses: Vec<BTreeMap<u16, usize>>,
    /// Requests that got an HTTP answer (the gateway logs each of those).
    answered: usize,
    failures: Vec<String>,
}

pub struct Load {
    phase: Arc<AtomicUsize>,
    tally: Arc<Mutex<Tally>>,
    stop: CancellationToken,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

/// What one phase saw.
#[derive(Debug, Clone)]
pub struct PhaseCount {
    pub sent: usize,
    pub ok: usize,
    pub failed: usize,
    /// The failed requests that got an HTTP answer, by status (the rest got none).
    pub failed_statuses: BTreeMap<u16, usize>,
}

impl Load {
    /// `workers` clients, each sending a Gemini request for `model`, then pausing `pause`.
    pub fn start(
        gateway_port: u16,
        model: &str,
        workers: usize,
        pause: Duration,
        phases: usize,
    ) -> Self {
        let phase = Arc::new(AtomicUsize::new(0));
        let tally = Arc::new(Mutex::new(Tally {
            sent: vec![0; phases],
            ok: vec![0; phases],
            failed: vec![0; phases],
            failed_statuses: vec![BTreeMap::new(); phases],
            ..Tally::default()
        }));
        let stop = CancellationToken::new();
        let url = format!("http://127.0.0.1:{gateway_port}/v1beta/models/{model}:generateContent");
        let workers = (0..workers)
            .map(|_| {
                let (phase, tally, stop, url) =
                    (phase.clone(), tally.clone(), stop.clone(), url.clone());
                tokio::spawn(async move {
                    let client = reqwest::Client::builder()
                        .timeout(Duration::from_secs(20))
                        .build()
                        .unwrap();
                    while !stop.is_cancelled() {
                        let now = phase.load(Ordering::SeqCst);
                        tally.lock().unwrap().sent[now] += 1;
                        let answer = client
                            .post(&url)
                            .header("x-goog-api-key", CLIENT_TOKEN)
                            .json(&serde_json::json!({"contents": [{"parts": [{"text": "fault run"}]}]}))
                            .send()
                            .await;
                        {
                            let mut tally = tally.lock().unwrap();
                            match answer {
                                Ok(answer) if answer.status() == 200 => {
                                    tally.ok[now] += 1;
                                    tally.answered += 1;
                                }
                                Ok(answer) => {
                                    tally.failed[now] += 1;
                                    tally.answered += 1;
                                    *tally.failed_statuses[now]
                                        .entry(answer.status().as_u16())
                                        .or_default() += 1;
                                    tally.failures.push(format!("phase {now}: HTTP {}", answer.status()));
                                }
                                Err(error) => {
                                    tally.failed[now] += 1;
                                    tally.failures.push(format!("phase {now}: {error:?}"));
                                }
                            }
                        }
                        tokio::time::sleep(pause).await;
                    }
                })
            })
            .collect();
        Load {
            phase,
            tally,
            stop,
            workers,
        }
    }

    /// Counts what follows under `phase`.
    pub fn enter(&self, phase: usize) {
        self.phase.store(phase, Ordering::SeqCst);
    }

    /// Waits until `count` more requests have been answered 200 (load goes on, the fault is
    /// past for the clients).
    pub async fn served_more(&self, count: usize, limit: Duration) {
        let start: usize = self.tally.lock().unwrap().ok.iter().sum();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let now: usize = self.tally.lock().unwrap().ok.iter().sum();
            if now >= start + count {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                let last: Vec<String> = {
                    let tally = self.tally.lock().unwrap();
                    tally.failures.iter().rev().take(5).cloned().collect()
                };
                panic!("the clients were not served again: {last:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the clients (each finishes its request) and returns the count per phase and the
    /// number of requests that got an HTTP answer.
    pub async fn stop(self) -> (Vec<PhaseCount>, usize, Vec<String>) {
        self.stop.cancel();
        for worker in self.workers {
            worker.await.unwrap();
        }
        let tally = self.tally.lock().unwrap();
        let phases = (0..tally.sent.len())
            .map(|phase| PhaseCount {
                sent: tally.sent[phase],
                ok: tally.ok[phase],
                failed: tally.failed[phase],
                failed_statuses: tally.failed_statuses[phase].clone(),
            })
            .collect();
        (phases, tally.answered, tally.failures.clone())
    }
}
