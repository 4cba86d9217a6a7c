//! Outcome reports: every upstream attempt's result goes to the keys service in batches, off
//! the request path (bounded; what overflows is counted in
//! `gemini_outcome_reports_dropped_total` and logged). Each carries this replica's running
//! number, so that the keys service's usage sums can say which reports they include.

use std::sync::{Arc, Mutex};

use gb_proto::keys::v1 as pb;
use gb_proto::keys::v1::keys_service_client::KeysServiceClient;
use gb_runtime::batching::Batcher;
use gb_runtime::grpc::GrpcChannel;
use tokio::task::JoinHandle;

#[derive(Clone)]
pub struct OutcomeReporter {
    batcher: Batcher<pb::Outcome>,
    /// The last running number given; held while queuing, so that numbers reach the keys
    /// service in order.
    seq: Arc<Mutex<u64>>,
}

impl OutcomeReporter {
    /// Reports through `batcher`, numbering from 1.
    pub fn new(batcher: Batcher<pb::Outcome>) -> Self {
        OutcomeReporter {
            batcher,
            seq: Arc::default(),
        }
    }

    /// Queues an outcome under the next running number, and returns that number.
    pub fn push(&self, mut outcome: pb::Outcome) -> u64 {
        let mut seq = self
            .seq
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *seq += 1;
        outcome.seq = *seq;
        self.batcher.push(outcome);
        *seq
    }
}

/// Starts the batching task, reporting as `reporter`; it sends what is left and ends once
/// every reporter is dropped.
pub fn start(
    client: KeysServiceClient<GrpcChannel>,
    reporter: &str,
) -> (OutcomeReporter, JoinHandle<()>) {
    let reporter = reporter.to_owned();
    let (batcher, task) = Batcher::start(
        65_536,
        "gemini_outcome_reports_dropped_total",
        "outcome reports",
        move |outcomes| {
            let mut client = client.clone();
            let reporter = reporter.clone();
            async move {
                client
                    .report_outcomes(pb::ReportOutcomesRequest { outcomes, reporter })
                    .await
                    .map(drop)
            }
        },
    );
    (OutcomeReporter::new(batcher), task)
}
