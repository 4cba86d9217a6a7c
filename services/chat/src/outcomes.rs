//! Outcome reports: every upstream attempt's result goes to the keys service in batches, off
//! the request path. The buffer is bounded; what overflows is counted and logged, never silent.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gb_proto::keys::v1 as pb;
use gb_proto::keys::v1::keys_service_client::KeysServiceClient;
use gb_runtime::grpc::GrpcChannel;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const BUFFER: usize = 65_536;
const BATCH: usize = 512;
const LINGER: Duration = Duration::from_millis(50);

#[derive(Clone)]
pub struct OutcomeReporter {
    sender: mpsc::Sender<pb::Outcome>,
    dropped: Arc<AtomicU64>,
}

impl OutcomeReporter {
    /// Starts the batching task; it sends what is left and ends once every reporter is dropped.
    pub fn start(client: KeysServiceClient<GrpcChannel>) -> (Self, JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(BUFFER);
        let dropped = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(send_batches(client, receiver, dropped.clone()));
        (OutcomeReporter { sender, dropped }, task)
    }

    pub fn report(&self, outcome: pb::Outcome) {
        if self.sender.try_send(outcome).is_err() {
            metrics::counter!("gemini_outcome_reports_dropped_total").increment(1);
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(
                    dropped_total = dropped,
                    "outcome buffer full: outcome reports dropped"
                );
            }
        }
    }
}

async fn send_batches(
    mut client: KeysServiceClient<GrpcChannel>,
    mut receiver: mpsc::Receiver<pb::Outcome>,
    dropped: Arc<AtomicU64>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        // Wait for the first outcome, then linger briefly to gather more.
        if receiver.recv_many(&mut batch, BATCH).await == 0 {
            return;
        }
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < BATCH {
            let room = BATCH - batch.len();
            match tokio::time::timeout_at(deadline, receiver.recv_many(&mut batch, room)).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let outcomes = std::mem::take(&mut batch);
        let count = outcomes.len() as u64;
        let mut sent = false;
        for attempt in 0..3u32 {
            let request = pb::ReportOutcomesRequest {
                outcomes: outcomes.clone(),
            };
            match client.report_outcomes(request).await {
                Ok(_) => {
                    sent = true;
                    break;
                }
                Err(status) => {
                    tracing::warn!(code = ?status.code(), message = status.message(), attempt, "reporting outcomes failed");
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
            }
        }
        if !sent {
            metrics::counter!("gemini_outcome_reports_dropped_total").increment(count);
            let total = dropped.fetch_add(count, Ordering::Relaxed) + count;
            tracing::error!(
                lost = count,
                dropped_total = total,
                "outcome batch lost after retries"
            );
        }
    }
}
