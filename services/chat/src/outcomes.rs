//! Outcome reports: every upstream attempt's result goes to the keys service in batches, off
//! the request path (bounded; what overflows is counted in
//! `gemini_outcome_reports_dropped_total` and logged).

use gb_proto::keys::v1 as pb;
use gb_proto::keys::v1::keys_service_client::KeysServiceClient;
use gb_runtime::batching::Batcher;
use gb_runtime::grpc::GrpcChannel;
use tokio::task::JoinHandle;

pub type OutcomeReporter = Batcher<pb::Outcome>;

/// Starts the batching task; it sends what is left and ends once every reporter is dropped.
pub fn start(client: KeysServiceClient<GrpcChannel>) -> (OutcomeReporter, JoinHandle<()>) {
    Batcher::start(
        65_536,
        "gemini_outcome_reports_dropped_total",
        "outcome reports",
        move |outcomes| {
            let mut client = client.clone();
            async move {
                client
                    .report_outcomes(pb::ReportOutcomesRequest { outcomes })
                    .await
                    .map(drop)
            }
        },
    )
}
