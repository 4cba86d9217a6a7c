//! The chat service: every call to the Gemini API goes through here.
//!
//! It keeps a local view of the key pool (fed by the keys service's `WatchPool` stream), runs
//! the attempt loop with failure classification, forwards stream chunks as they arrive, and
//! reports each attempt's outcome to the keys service in batches. No database query and no RPC
//! happen on the request path.

pub mod attempts;
pub mod models;
pub mod outcomes;
pub mod pool;
mod service;

use std::sync::Arc;
use std::time::Duration;

use gb_proto::chat::v1::chat_service_server::ChatServiceServer;
use gb_proto::keys::v1::keys_service_client::KeysServiceClient;
use gb_runtime::grpc::GrpcChannel;
use gb_runtime::settings::Settings;
use gb_runtime::upstream::Upstream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use service::{ChatGrpc, failure_status};

use attempts::Attempts;
use outcomes::OutcomeReporter;
use pool::LocalPool;

/// The running chat service's state.
pub struct ChatService {
    pub pool: Arc<LocalPool>,
    attempts: Attempts,
    rules: Arc<models::ModelRules>,
    chat_model: String,
    paid_key: Option<String>,
    reporter_task: JoinHandle<()>,
}

impl ChatService {
    /// Starts following the pool and reporting outcomes; waits briefly for the first snapshot.
    pub async fn start(
        settings: &Settings,
        keys: GrpcChannel,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let upstream = Upstream::from_settings(settings)?;
        let pool = Arc::new(LocalPool::default());
        let keys_client = KeysServiceClient::new(keys);
        tokio::spawn(pool::follow_pool(
            pool.clone(),
            keys_client.clone(),
            shutdown,
        ));
        let (reporter, reporter_task) = OutcomeReporter::start(keys_client);
        if !pool.wait_loaded(Duration::from_secs(10)).await {
            tracing::warn!(
                "the key pool has not arrived from the keys service yet; requests fail until it does"
            );
        }
        tracing::info!(keys = pool.len(), "chat service ready");
        Ok(ChatService {
            attempts: Attempts {
                upstream_host: upstream.host().into(),
                upstream,
                pool: pool.clone(),
                reporter,
                max_retries: settings.max_retries,
            },
            pool,
            rules: Arc::new(models::ModelRules::from_settings(settings)),
            chat_model: settings.chat_model.clone(),
            paid_key: settings.paid_key.clone(),
            reporter_task,
        })
    }

    pub fn grpc_service(&self) -> ChatServiceServer<ChatGrpc> {
        ChatServiceServer::new(ChatGrpc {
            attempts: self.attempts.clone(),
            rules: self.rules.clone(),
            chat_model: self.chat_model.clone(),
            paid_key: self.paid_key.clone(),
        })
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024)
    }

    /// Sends the outcomes still buffered; call after the servers have stopped.
    pub async fn flush(self) {
        let ChatService {
            attempts,
            reporter_task,
            ..
        } = self;
        drop(attempts);
        if tokio::time::timeout(Duration::from_secs(10), reporter_task)
            .await
            .is_err()
        {
            tracing::warn!("outcome reports not flushed within 10s");
        }
    }
}
