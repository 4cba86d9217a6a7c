//! The chat service: every call to the Gemini API goes through here.
//!
//! It keeps a local view of the key pool (fed by the keys service's `WatchPool` stream), runs
//! the attempt loop with failure classification, forwards stream chunks as they arrive, and
//! reports each attempt's outcome to the keys service in batches. No database query and no RPC
//! happen on the request path.

pub mod attempts;
pub mod chat_settings;
mod direct;
pub mod files;
pub mod limits;
pub mod models;
mod openai_calls;
pub mod outcomes;
pub mod pool;
mod service;
mod usage;

use std::sync::Arc;
use std::time::Duration;

use gb_proto::chat::v1::chat_service_server::ChatServiceServer;
use gb_proto::keys::v1::keys_service_client::KeysServiceClient;
use gb_runtime::grpc::{GrpcChannel, InternalToken, RequireToken};
use gb_runtime::live::{Live, LiveSettings};
use gb_runtime::log_records::LogShipper;
use gb_runtime::tasks::Tasks;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;

pub use service::ChatGrpc;

use attempts::Attempts;
use chat_settings::ChatSettings;
use pool::{LocalPool, PoolLimits};

/// The running chat service's state.
pub struct ChatService {
    pub pool: Arc<LocalPool>,
    attempts: Attempts,
    settings: Live<ChatSettings>,
    reporter_task: JoinHandle<()>,
}

/// The limits the pick honours, from the settings.
fn pool_limits(settings: &gb_runtime::settings::Settings) -> PoolLimits {
    PoolLimits {
        table: settings.chat.key_model_limits.clone(),
        reset: settings.chat.quota_reset_timezone,
    }
}

impl ChatService {
    /// Starts following the pool and reporting outcomes; waits briefly for the first snapshot.
    /// Request and error logs go to `logs`; referenced files are read from `files`.
    pub async fn start(
        live: &LiveSettings,
        keys: GrpcChannel,
        files: GrpcChannel,
        logs: LogShipper,
        tasks: &Tasks,
    ) -> anyhow::Result<Self> {
        let settings = live.derive("chat settings", ChatSettings::from_settings)?;
        let pool = Arc::new(LocalPool::default());
        pool.set_limits(pool_limits(&live.current()));
        let limits_pool = pool.clone();
        live.on_change(pool_limits, move |_, limits, _| {
            limits_pool.set_limits(limits);
            tracing::info!("KEY_MODEL_LIMITS or QUOTA_RESET_TIMEZONE changed");
        });
        let keys_client = KeysServiceClient::new(keys);
        tasks.spawn(pool::follow_pool(
            pool.clone(),
            keys_client.clone(),
            tasks.shutdown().clone(),
        ));
        let (reporter, reporter_task) = outcomes::start(keys_client, pool.reporter());
        if !pool.wait_loaded(Duration::from_secs(10)).await {
            tracing::warn!(
                "the key pool has not arrived from the keys service yet; requests fail until it does"
            );
        }
        tracing::info!(keys = pool.len(), "chat service ready");
        Ok(ChatService {
            attempts: Attempts {
                pool: pool.clone(),
                reporter,
                logs,
                files: files::FileLink::new(files),
            },
            settings,
            pool,
            reporter_task,
        })
    }

    /// The gRPC service, behind the admin-token check (whoever reaches the port would
    /// otherwise spend the pool).
    pub fn grpc_service(
        &self,
        admin_token: &InternalToken,
    ) -> InterceptedService<ChatServiceServer<ChatGrpc>, RequireToken> {
        let server = ChatServiceServer::new(ChatGrpc {
            attempts: self.attempts.clone(),
            settings: self.settings.clone(),
        })
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024);
        InterceptedService::new(server, RequireToken::new(admin_token))
    }

    /// The contract served in this process, called without the gRPC hop (the all-in-one
    /// mode's gateway holds this).
    pub fn direct(&self) -> gb_proto::chat::Chat {
        gb_proto::chat::Chat::new(direct::DirectChat(ChatGrpc {
            attempts: self.attempts.clone(),
            settings: self.settings.clone(),
        }))
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
