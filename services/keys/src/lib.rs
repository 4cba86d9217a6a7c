//! The keys service: owner of the `keys` table and of the pool's state.
//!
//! It imports `API_KEYS` at start (no duplicates across restarts), keeps every key's state
//! (active, cooling down, disabled; failures; counters) in memory and in the database, pushes
//! the pool to the chat replicas over `WatchPool`, takes their outcomes in batches, and
//! re-checks failed keys every `CHECK_INTERVAL_HOURS` with `TEST_MODEL`.

pub mod client_tokens;
pub mod pool;
mod schema;
mod service;
pub mod state;
mod store;
pub mod usage;
pub mod verify;

use std::sync::Arc;

use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use gb_proto::keys::v1::keys_service_server::KeysServiceServer;
use gb_runtime::database::Database;
use gb_runtime::grpc::{InternalToken, RequireToken};
use gb_runtime::live::{Live, LiveSettings};
use gb_runtime::tasks::Tasks;
use gb_upstream::Upstream;
use tonic::service::interceptor::InterceptedService;

pub use pool::KeyPool;
pub use service::KeysGrpc;
use verify::Verifier;

const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// How often the changed usage sums are pushed to the chat replicas.
const USAGE_PUSH_PERIOD: std::time::Duration = std::time::Duration::from_millis(200);

/// The running service's state, ready to be served.
pub struct KeysService {
    pub pool: Arc<KeyPool>,
    pub client_tokens: Arc<client_tokens::ClientTokens>,
    verifier: Live<Verifier>,
    tasks: Tasks,
}

/// Applies changes of `API_KEYS` and `MAX_FAILURES` to the pool.
fn follow_settings(live: &LiveSettings, pool: &Arc<KeyPool>, tasks: &Tasks) {
    let keys_pool = pool.clone();
    let (changes, mut pending) = tokio::sync::mpsc::unbounded_channel();
    live.on_change(
        |settings| settings.keys.api_keys.expose().clone(),
        move |before, after, _| {
            let _ = changes.send((before, after));
        },
    );
    // One change after the other, in order.
    tasks.spawn(async move {
        while let Some((before, after)) = pending.recv().await {
            match keys_pool.apply_key_list(&before, &after).await {
                Ok((added, removed)) => {
                    tracing::info!(added, removed, "API_KEYS changed: key pool updated")
                }
                Err(error) => {
                    tracing::error!(%error, "API_KEYS changed but the pool could not follow")
                }
            }
        }
    });
    let usage_pool = pool.clone();
    live.on_change(
        |settings| {
            (
                settings.chat.key_model_limits.clone(),
                settings.chat.quota_reset_timezone,
            )
        },
        move |_, (limits, reset), _| usage_pool.set_usage_settings(limits, reset),
    );
    let failures_pool = pool.clone();
    live.on_change(
        |settings| settings.keys.max_failures,
        move |_, max_failures, _| {
            failures_pool.set_max_failures(max_failures);
            tracing::info!(max_failures, "MAX_FAILURES changed");
        },
    );
}

impl KeysService {
    /// Migrates, loads the pool, imports `API_KEYS`, starts the periodic checks and follows
    /// the settings (`API_KEYS`, `MAX_FAILURES`, `TEST_MODEL`, `CHECK_INTERVAL_HOURS`, the
    /// upstream ones) while running.
    pub async fn start(live: &LiveSettings, db: Database, tasks: &Tasks) -> anyhow::Result<Self> {
        let shutdown = tasks.shutdown().clone();
        db.run_migrations(POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS)
            .await?;
        let settings = live.current();
        let cipher = gb_runtime::secrets::resolve_cipher(&settings)?;
        let client_tokens = client_tokens::ClientTokens::open(db.clone(), cipher.clone()).await?;
        let pool = KeyPool::open(db, cipher, settings.keys.max_failures).await?;
        let added = pool.import(settings.keys.api_keys.expose()).await?;
        tracing::info!(
            keys = pool.list().len(),
            imported = added,
            "key pool loaded"
        );
        pool.set_usage_settings(
            settings.chat.key_model_limits.clone(),
            settings.chat.quota_reset_timezone,
        );
        follow_settings(live, &pool, tasks);
        let verifier = live.derive("key checks", |settings| {
            Ok(Verifier::new(
                Upstream::from_settings(&settings.upstream)?,
                settings.keys.test_model.clone(),
            ))
        })?;
        // Cooldowns end with time, not with an event: refresh the pool gauges on a tick too.
        let gauges = pool.clone();
        let gauges_shutdown = shutdown.clone();
        tasks.spawn(async move {
            let mut ticker = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = gauges_shutdown.cancelled() => return,
                    _ = ticker.tick() => gauges.record_gauges(),
                }
            }
        });
        // The usage sums go to the chat replicas a few times a second at most.
        let usage = pool.clone();
        let usage_shutdown = shutdown.clone();
        tasks.spawn(async move {
            let mut ticker = tokio::time::interval(USAGE_PUSH_PERIOD);
            loop {
                tokio::select! {
                    _ = usage_shutdown.cancelled() => return,
                    _ = ticker.tick() => usage.publish_usage(),
                }
            }
        });
        tasks.spawn(verify::run_periodic_checks(
            pool.clone(),
            verifier.clone(),
            live.clone(),
            shutdown.clone(),
        ));
        Ok(KeysService {
            pool,
            client_tokens,
            verifier,
            tasks: tasks.clone(),
        })
    }

    /// The gRPC service, behind the admin-token check.
    pub fn grpc_service(
        &self,
        admin_token: &InternalToken,
    ) -> InterceptedService<KeysServiceServer<KeysGrpc>, RequireToken> {
        let service = KeysGrpc {
            pool: self.pool.clone(),
            client_tokens: self.client_tokens.clone(),
            verifier: self.verifier.clone(),
            tasks: self.tasks.clone(),
        };
        InterceptedService::new(
            KeysServiceServer::new(service),
            RequireToken::new(admin_token),
        )
    }
}
