//! The database: one diesel-async pool over Postgres or SQLite, chosen by `DATABASE_URL`.
//!
//! Query code is written once and run on either connection with [`with_connection!`]. Each
//! service embeds its own migrations (one folder per backend) and applies them at start-up.

use std::time::Duration;

use diesel::SqliteConnection;
use diesel::result::{ConnectionError, DatabaseErrorKind};
use diesel_async::pooled_connection::deadpool::{Pool, PoolError};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{
    AsyncConnection, AsyncMigrationHarness, AsyncPgConnection, SimpleAsyncConnection,
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};

use gb_proto::config::ConfigError;
use gb_proto::error::ErrorCode;
use gb_proto::files::FilesError;
use gb_proto::keys::KeysError;
use gb_proto::logging::LoggingError;

use crate::settings::DatabaseLocation;

pub type SqliteAsyncConnection = SyncConnectionWrapper<SqliteConnection>;

/// A pool on one of the two backends.
#[derive(Clone)]
pub enum Database {
    Postgres(Pool<AsyncPgConnection>),
    Sqlite(Pool<SqliteAsyncConnection>),
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    AlreadyExists,
    #[error("database error: {0}")]
    Query(diesel::result::Error),
    #[error("migrations failed: {0}")]
    Migration(String),
}

impl From<diesel::result::Error> for DbError {
    fn from(error: diesel::result::Error) -> Self {
        match error {
            diesel::result::Error::NotFound => DbError::NotFound,
            diesel::result::Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                DbError::AlreadyExists
            }
            other => DbError::Query(other),
        }
    }
}

impl From<PoolError> for DbError {
    fn from(error: PoolError) -> Self {
        DbError::Unavailable(error.to_string())
    }
}

impl DbError {
    /// The code of the table this error is, and the message a caller may see. Query and
    /// migration errors are logged here, once, and shown only as "database error".
    pub fn code_and_message(&self) -> (ErrorCode, String) {
        match self {
            DbError::NotFound => (ErrorCode::NotFound, "not found".to_owned()),
            DbError::AlreadyExists => (ErrorCode::AlreadyExists, "already exists".to_owned()),
            DbError::Unavailable(why) => (ErrorCode::Unavailable, why.clone()),
            DbError::Query(_) | DbError::Migration(_) => {
                tracing::error!(error = %self, "database error");
                (ErrorCode::Internal, "database error".to_owned())
            }
        }
    }
}

/// Each service's error type takes database errors as its `Database` variant.
macro_rules! database_errors_into {
    ($($error:ident),+) => {$(
        impl From<DbError> for $error {
            fn from(error: DbError) -> Self {
                let (code, message) = error.code_and_message();
                $error::Database { code, message }
            }
        }
    )+};
}

database_errors_into!(KeysError, ConfigError, LoggingError, FilesError);

/// Runs `$body` with `$conn` bound to a pooled connection of whichever backend `$db` is.
/// The body is compiled once per backend, so it must be valid diesel for both.
#[macro_export]
macro_rules! with_connection {
    ($db:expr, |$conn:ident| $body:expr) => {
        match $db {
            $crate::database::Database::Postgres(pool) => {
                let mut pooled = pool.get().await.map_err($crate::database::DbError::from)?;
                let $conn = &mut *pooled;
                $body
            }
            $crate::database::Database::Sqlite(pool) => {
                let mut pooled = pool.get().await.map_err($crate::database::DbError::from)?;
                let $conn = &mut *pooled;
                $body
            }
        }
    };
}

/// A new Postgres connection, with a statement timeout.
fn postgres_connection(
    url: &str,
) -> futures::future::BoxFuture<'_, diesel::ConnectionResult<AsyncPgConnection>> {
    Box::pin(async move {
        let mut conn = AsyncPgConnection::establish(url).await?;
        conn.batch_execute("SET statement_timeout = 30000")
            .await
            .map_err(ConnectionError::CouldntSetupConfiguration)?;
        Ok(conn)
    })
}

/// A new SQLite connection: busy timeout, WAL, foreign keys, `synchronous=NORMAL`.
fn sqlite_connection(
    url: &str,
) -> futures::future::BoxFuture<'_, diesel::ConnectionResult<SqliteAsyncConnection>> {
    Box::pin(async move {
        let mut conn = SqliteAsyncConnection::establish(url).await?;
        conn.batch_execute("PRAGMA busy_timeout=5000;")
            .await
            .map_err(ConnectionError::CouldntSetupConfiguration)?;
        // Switching to WAL needs the file to itself, and SQLite answers "locked" at once
        // (without waiting) while another connection is in it: services that start together
        // on one file (the split mode on SQLite) retry.
        let mut tries = 0;
        loop {
            match conn.batch_execute("PRAGMA journal_mode=WAL;").await {
                Ok(()) => break,
                Err(error) if tries < 100 && error.to_string().contains("locked") => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => return Err(ConnectionError::CouldntSetupConfiguration(error)),
            }
        }
        conn.batch_execute("PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;")
            .await
            .map_err(ConnectionError::CouldntSetupConfiguration)?;
        Ok(conn)
    })
}

/// A SQLite connection of its own, for a thread that owns it (the logging service's writer):
/// the pool's settings (busy timeout, WAL, foreign keys, `synchronous=NORMAL`).
pub fn sqlite_connection_blocking(path: &std::path::Path) -> Result<SqliteConnection, DbError> {
    use diesel::Connection as _;
    use diesel::connection::SimpleConnection as _;
    let mut conn = SqliteConnection::establish(&path.to_string_lossy())
        .map_err(|error| DbError::Unavailable(error.to_string()))?;
    conn.batch_execute(
        "PRAGMA busy_timeout=5000; PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; \
         PRAGMA synchronous=NORMAL;",
    )
    .map_err(DbError::Query)?;
    Ok(conn)
}

impl Database {
    /// Opens the pool (creating the SQLite file and its folder when needed), and one
    /// connection: a database that cannot be reached fails the start with a clear message
    /// rather than the first request.
    pub async fn connect(location: &DatabaseLocation) -> Result<Self, DbError> {
        match location {
            DatabaseLocation::Postgres(url) => {
                let mut config = ManagerConfig::<AsyncPgConnection>::default();
                config.custom_setup = Box::new(postgres_connection);
                let manager =
                    AsyncDieselConnectionManager::new_with_config(url.expose().clone(), config);
                let pool = Pool::builder(manager)
                    .max_size(16)
                    .wait_timeout(Some(Duration::from_secs(10)))
                    .create_timeout(Some(Duration::from_secs(10)))
                    .runtime(deadpool::Runtime::Tokio1)
                    .build()
                    .map_err(|error| DbError::Unavailable(error.to_string()))?;
                drop(pool.get().await?);
                Ok(Database::Postgres(pool))
            }
            DatabaseLocation::Sqlite(path) => {
                if let Some(parent) = path
                    .parent()
                    .filter(|parent| !parent.as_os_str().is_empty())
                {
                    std::fs::create_dir_all(parent).map_err(|error| {
                        DbError::Unavailable(format!("cannot create {}: {error}", parent.display()))
                    })?;
                }
                let mut config = ManagerConfig::<SqliteAsyncConnection>::default();
                config.custom_setup = Box::new(sqlite_connection);
                let manager = AsyncDieselConnectionManager::new_with_config(
                    path.to_string_lossy().into_owned(),
                    config,
                );
                let pool = Pool::builder(manager)
                    .max_size(4)
                    .wait_timeout(Some(Duration::from_secs(10)))
                    .runtime(deadpool::Runtime::Tokio1)
                    .build()
                    .map_err(|error| DbError::Unavailable(error.to_string()))?;
                drop(pool.get().await?);
                Ok(Database::Sqlite(pool))
            }
        }
    }

    /// Applies the pending migrations of one service, for whichever backend this is.
    pub async fn run_migrations(
        &self,
        postgres: EmbeddedMigrations,
        sqlite: EmbeddedMigrations,
    ) -> Result<(), DbError> {
        let migration_error =
            |error: Box<dyn std::error::Error + Send + Sync>| DbError::Migration(error.to_string());
        match self {
            Database::Postgres(pool) => {
                let conn = pool.get().await?;
                tokio::task::block_in_place(|| {
                    AsyncMigrationHarness::new(conn)
                        .run_pending_migrations(postgres)
                        .map(drop)
                        .map_err(migration_error)
                })
            }
            Database::Sqlite(pool) => {
                let conn = pool.get().await?;
                tokio::task::block_in_place(|| {
                    AsyncMigrationHarness::new(conn)
                        .run_pending_migrations(sqlite)
                        .map(drop)
                        .map_err(migration_error)
                })
            }
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Database::Postgres(_) => "postgres",
            Database::Sqlite(_) => "sqlite",
        }
    }
}
