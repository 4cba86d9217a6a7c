//! The logging service: owner of `error_logs`, `request_logs` and the counters the statistics
//! are read from (`call_rollups`).
//!
//! The chat service records each client request it answers (one row, with the attempt that
//! ended it) and each failed attempt (an error log), the gateway the requests it answers alone;
//! both send them here in batches. On Postgres, request logs are partitioned by day
//! (`partitions.rs`). The admin API reads the
//! error logs and the statistics (calls per period, attention keys, per-key models, tokens per
//! key and per client token and day) from here; the statistics come from counters kept per
//! time bucket as the records arrive (`rollups.rs`, `stats.rs`), never from the raw rows.
//! It also keeps the Responses API objects a client asked to store (`responses.rs`, for
//! `previous_response_id`). Old logs (and buckets, and stored responses) are deleted as the
//! retention settings say.

mod partitions;
mod responses;
pub mod retention;
mod rollups;
mod schema;
mod service;
mod sqlite_writer;
mod stats;
mod store;
mod write;

use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use gb_proto::logging::v1::logging_service_server::LoggingServiceServer;
use gb_runtime::database::Database;
use gb_runtime::grpc::{InternalToken, RequireToken};
use gb_runtime::live::LiveSettings;
use gb_runtime::tasks::Tasks;
use tonic::service::interceptor::InterceptedService;

pub use service::LoggingGrpc;

const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

pub struct LoggingService {
    db: Database,
    writer: write::Writer,
    retention: retention::Retention,
}

impl LoggingService {
    /// Migrates and starts the retention task.
    pub async fn start(live: LiveSettings, db: Database, tasks: &Tasks) -> anyhow::Result<Self> {
        db.run_migrations(POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS)
            .await?;
        // Today's partition before the first row (after a stop of days, rows of a day without
        // one would fill the default partition and keep that day from getting its own).
        partitions::ensure(&db, gb_runtime::now_ms()).await?;
        let writer = write::Writer::start(&db, &live.current().shared.database)?;
        let retention = retention::Retention {
            db: db.clone(),
            live,
        };
        tasks.spawn(retention.clone().run(tasks.shutdown().clone()));
        Ok(LoggingService {
            db,
            writer,
            retention,
        })
    }

    /// The gRPC service, behind the admin-token check.
    pub fn grpc_service(
        &self,
        admin_token: &InternalToken,
    ) -> InterceptedService<LoggingServiceServer<LoggingGrpc>, RequireToken> {
        InterceptedService::new(
            LoggingServiceServer::new(LoggingGrpc {
                db: self.db.clone(),
                writer: self.writer.clone(),
                retention: self.retention.clone(),
            })
            .max_decoding_message_size(64 * 1024 * 1024),
            RequireToken::new(admin_token),
        )
    }
}
