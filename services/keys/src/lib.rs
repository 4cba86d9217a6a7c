//! The keys service: owner of the `keys` table and of the pool's state.
//!
//! It imports `API_KEYS` at start (no duplicates across restarts), keeps every key's state
//! (active, cooling down, disabled; failures; counters) in memory and in the database, pushes
//! the pool to the chat replicas over `WatchPool`, takes their outcomes in batches, and
//! re-checks failed keys every `CHECK_INTERVAL_HOURS` with `TEST_MODEL`.

pub mod pool;
mod schema;
mod service;
pub mod state;
mod store;
pub mod verify;

use std::sync::Arc;

use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use gb_proto::keys::v1::keys_service_server::KeysServiceServer;
use gb_runtime::database::Database;
use gb_runtime::grpc::RequireToken;
use gb_runtime::secrets::{KeyCipher, load_or_create_key_file};
use gb_runtime::settings::{DatabaseLocation, Settings};
use gb_runtime::upstream::Upstream;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;

pub use pool::KeyPool;
pub use service::KeysGrpc;
use verify::Verifier;

const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// The running service's state, ready to be served.
pub struct KeysService {
    pub pool: Arc<KeyPool>,
    verifier: Arc<Verifier>,
}

/// The key under which values are encrypted: `ENCRYPTION_KEY`, or, on SQLite without one, a key
/// generated on first start and kept beside the database file (mode 0600).
pub fn resolve_cipher(settings: &Settings) -> anyhow::Result<KeyCipher> {
    if let Some(encoded) = &settings.encryption_key {
        return Ok(KeyCipher::from_base64(encoded)?);
    }
    let DatabaseLocation::Sqlite(path) = &settings.database else {
        anyhow::bail!(
            "setting ENCRYPTION_KEY: required with a Postgres DATABASE_URL (32 bytes, base64)"
        );
    };
    let key_path = path.with_file_name("encryption.key");
    let (encoded, created) = load_or_create_key_file(&key_path)?;
    if created {
        tracing::warn!(
            path = %key_path.display(),
            "no ENCRYPTION_KEY given: generated one and stored it beside the database; back it up, the keys cannot be read without it"
        );
    } else {
        tracing::info!(path = %key_path.display(), "using the encryption key stored beside the database");
    }
    Ok(KeyCipher::from_base64(&encoded)?)
}

impl KeysService {
    /// Migrates, loads the pool, imports `API_KEYS` and starts the periodic checks.
    pub async fn start(
        settings: &Settings,
        db: Database,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        db.run_migrations(POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS)
            .await?;
        let cipher = resolve_cipher(settings)?;
        let pool = KeyPool::open(db, cipher, settings.max_failures).await?;
        let added = pool.import(&settings.api_keys).await?;
        tracing::info!(
            keys = pool.list().len(),
            imported = added,
            "key pool loaded"
        );
        let upstream = Upstream::from_settings(settings)?;
        let verifier = Arc::new(Verifier::new(upstream, settings.test_model.clone()));
        // Cooldowns end with time, not with an event: refresh the pool gauges on a tick too.
        let gauges = pool.clone();
        let gauges_shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = gauges_shutdown.cancelled() => return,
                    _ = ticker.tick() => gauges.record_gauges(),
                }
            }
        });
        if let Some(interval) = settings.check_interval {
            tokio::spawn(verify::run_periodic_checks(
                pool.clone(),
                verifier.clone(),
                interval,
                shutdown,
            ));
        }
        Ok(KeysService { pool, verifier })
    }

    /// The gRPC service, behind the admin-token check.
    pub fn grpc_service(
        &self,
        admin_token: Arc<str>,
    ) -> InterceptedService<KeysServiceServer<KeysGrpc>, RequireToken> {
        let service = KeysGrpc {
            pool: self.pool.clone(),
            verifier: self.verifier.clone(),
        };
        InterceptedService::new(
            KeysServiceServer::new(service),
            RequireToken::new(admin_token),
        )
    }
}
