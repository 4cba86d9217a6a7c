//! The config service: owner of the `configs` table, the settings that change while the
//! services run. It reconciles the table with its environment at start (see [`stored`] for the
//! precedence rule), validates every change with the same parser as the environment, and pushes
//! the stored values to every service over `WatchConfigs`.
//!
//! One replica: it serializes changes in memory.

mod schema;
mod service;
mod store;
pub mod stored;

use std::sync::Arc;

use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use gb_proto::config::v1::config_service_server::ConfigServiceServer;
use gb_runtime::database::Database;
use gb_runtime::grpc::{InternalToken, RequireToken};
use gb_runtime::settings::Settings;
use gb_runtime::tasks::Tasks;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;

pub use service::ConfigGrpc;
pub use stored::StoredSettings;

const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

pub struct ConfigService {
    pub stored: Arc<StoredSettings>,
    shutdown: CancellationToken,
}

impl ConfigService {
    /// Migrates and reconciles the stored settings with `environment`.
    pub async fn start(
        environment: &Settings,
        db: Database,
        tasks: &Tasks,
    ) -> anyhow::Result<Self> {
        db.run_migrations(POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS)
            .await?;
        let stored = StoredSettings::open(db, environment.clone()).await?;
        Ok(ConfigService {
            stored: Arc::new(stored),
            shutdown: tasks.shutdown().clone(),
        })
    }

    /// The gRPC service, behind the admin-token check.
    pub fn grpc_service(
        &self,
        admin_token: &InternalToken,
    ) -> InterceptedService<ConfigServiceServer<ConfigGrpc>, RequireToken> {
        InterceptedService::new(
            ConfigServiceServer::new(ConfigGrpc {
                stored: self.stored.clone(),
                shutdown: self.shutdown.clone(),
            }),
            RequireToken::new(admin_token),
        )
    }
}
