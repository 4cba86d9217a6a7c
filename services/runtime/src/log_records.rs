//! Request and error records on their way to the logging service: batched, off the request
//! path, bounded; what is dropped under overload is counted in
//! `gemini_log_records_dropped_total` and logged.

use gb_proto::logging::v1 as pb;
use gb_proto::logging::v1::logging_service_client::LoggingServiceClient;
use tokio::task::JoinHandle;

use crate::batching::Batcher;
use crate::grpc::GrpcChannel;

#[derive(Clone)]
pub enum LogRecord {
    Request(pb::RequestRecord),
    Error(pb::ErrorRecord),
}

pub type LogShipper = Batcher<LogRecord>;

/// The most of a request body an error log keeps.
pub const MAX_RECORDED_BODY: usize = 256 * 1024;

/// Starts the shipper; its task ends once every clone is dropped and the rest is sent.
pub fn start(channel: GrpcChannel) -> (LogShipper, JoinHandle<()>) {
    let client = LoggingServiceClient::new(channel);
    Batcher::start(
        32_768,
        "gemini_log_records_dropped_total",
        "log records",
        move |records: Vec<LogRecord>| {
            let mut client = client.clone();
            async move {
                let mut request = pb::WriteRecordsRequest::default();
                for record in records {
                    match record {
                        LogRecord::Request(record) => request.requests.push(record),
                        LogRecord::Error(record) => request.errors.push(record),
                    }
                }
                client.write_records(request).await.map(drop)
            }
        },
    )
}

/// A request body as an error log keeps it: text, cut at [`MAX_RECORDED_BODY`].
pub fn recorded_body(body: &[u8]) -> String {
    let cut = &body[..body.len().min(MAX_RECORDED_BODY)];
    let mut text = String::from_utf8_lossy(cut).into_owned();
    if body.len() > MAX_RECORDED_BODY {
        text.push_str(&format!("… ({} bytes in all)", body.len()));
    }
    text
}
