//! The files service: owner of the `files` table, the files' upstream copies and the resumable
//! upload sessions, and of the content in an object store (`store.rs`). It never calls Google:
//! the chat service makes and deletes the upstream copies with the keys it holds, and records
//! them here. Any number of replicas may share one database and one S3-compatible store.

mod files;
mod schema;
mod service;
mod sessions;
mod store;
mod table;

use std::sync::Arc;
use std::time::Duration;

use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use gb_proto::files::v1::files_service_server::FilesServiceServer;
use gb_runtime::database::Database;
use gb_runtime::grpc::{InternalToken, RequireToken};
use gb_runtime::live::LiveSettings;
use gb_runtime::tasks::Tasks;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;

pub use files::Files;
pub use service::FilesGrpc;
use sessions::Sessions;
pub use store::ContentStore;

const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// gRPC messages: a data message is at most a few hundred KB; the start and heads are small.
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

pub struct FilesService {
    files: Arc<Files>,
    sessions: Arc<Sessions>,
}

impl FilesService {
    /// Migrates, opens the store and starts the cleanup.
    pub async fn start(live: &LiveSettings, db: Database, tasks: &Tasks) -> anyhow::Result<Self> {
        db.run_migrations(POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS)
            .await?;
        let store = ContentStore::open(&live.current())?;
        tracing::info!(store = %store.describe, "files kept");
        let files = Arc::new(Files {
            table: table::FilesTable::new(db.clone()),
            store,
            live: live.clone(),
        });
        let sessions = Arc::new(Sessions::new(db));
        tasks.spawn(cleanup(
            files.clone(),
            sessions.clone(),
            tasks.shutdown().clone(),
        ));
        Ok(FilesService { files, sessions })
    }

    /// The gRPC service, behind the admin-token check.
    pub fn grpc_service(
        &self,
        admin_token: &InternalToken,
    ) -> InterceptedService<FilesServiceServer<FilesGrpc>, RequireToken> {
        InterceptedService::new(
            FilesServiceServer::new(FilesGrpc {
                files: self.files.clone(),
                sessions: self.sessions.clone(),
            })
            .max_decoding_message_size(MAX_MESSAGE),
            RequireToken::new(admin_token),
        )
    }
}

/// Every `FILES_CLEANUP_INTERVAL_HOURS` while `FILES_CLEANUP_ENABLED`: the upstream copies
/// past their expiry are forgotten (Google has deleted them; the next request that needs one
/// makes it again), and upload sessions left for a day are dropped with their parts.
async fn cleanup(files: Arc<Files>, sessions: Arc<Sessions>, shutdown: CancellationToken) {
    loop {
        let settings = files.live.current();
        let period = settings
            .files
            .files_cleanup_interval
            .0
            .unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        if !files.live.current().files.files_cleanup_enabled {
            continue;
        }
        let now = gb_runtime::now_ms();
        match files.table.forget_expired_copies(now).await {
            Ok(0) => {}
            Ok(forgotten) => tracing::info!(forgotten, "expired upstream copies forgotten"),
            Err(error) => tracing::warn!(%error, "forgetting expired upstream copies failed"),
        }
        match sessions.expire(&files, now).await {
            Ok(0) => {}
            Ok(dropped) => tracing::info!(dropped, "old upload sessions dropped"),
            Err(error) => tracing::warn!(%error, "dropping old upload sessions failed"),
        }
    }
}
