#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]
//! End-to-end tests: the real services (both run modes, SQLite and Postgres) against the mock
//! Gemini API, over real HTTP and gRPC.

mod harness;

mod admin;
mod anthropic_routes;
mod client_tokens;
mod config_api;
mod connections;
mod console;
mod files;
mod gemini_routes;
mod google_files;
mod grpc;
mod key_limits;
mod key_pool;
mod logs_api;
mod model_quotas;
mod openai_routes;
mod proxies;
mod responses_routes;
mod secrets;
mod stats_volume;

/// Runs `$body(mode, backend)` once per run mode and database, as four tests in a module.
#[macro_export]
macro_rules! each_setup {
    ($name:ident, $body:ident) => {
        mod $name {
            use $crate::harness::{Backend, Mode};

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn all_in_one_sqlite() {
                super::$body(Mode::AllInOne, Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn all_in_one_postgres() {
                super::$body(Mode::AllInOne, Backend::Postgres).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn microservices_sqlite() {
                super::$body(Mode::Microservices, Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn microservices_postgres() {
                super::$body(Mode::Microservices, Backend::Postgres).await
            }
        }
    };
}

/// Runs `$body(mode, backend)` in the two setups furthest apart: all-in-one on SQLite and
/// microservices on Postgres.
#[macro_export]
macro_rules! two_setups {
    ($name:ident, $body:ident) => {
        mod $name {
            use $crate::harness::{Backend, Mode};

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn all_in_one_sqlite() {
                super::$body(Mode::AllInOne, Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn microservices_postgres() {
                super::$body(Mode::Microservices, Backend::Postgres).await
            }
        }
    };
}

/// Runs `$body(mode, backend)` in the microservice mode only, on both backends (for what only
/// split services can do, such as one of them stopping alone).
#[macro_export]
macro_rules! microservices_only {
    ($name:ident, $body:ident) => {
        mod $name {
            use $crate::harness::{Backend, Mode};

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn microservices_sqlite() {
                super::$body(Mode::Microservices, Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn microservices_postgres() {
                super::$body(Mode::Microservices, Backend::Postgres).await
            }
        }
    };
}
