//! What every gemini-balance service shares.
//!
//! - [`settings`]: the environment (and `.env`) read into typed, validated settings;
//! - [`config_registry`] and [`live`]: the settings that change while running, and how every
//!   service follows them;
//! - [`batching`] and [`log_records`]: records sent in bounded batches off the request path;
//! - [`database`]: the diesel-async pool over Postgres or SQLite and migrations at start-up;
//! - [`secrets`]: key encryption at rest, fingerprints, masking and constant-time comparison;
//! - [`grpc`]: channels (TCP or in-process), trace context, auth and the server scaffolding;
//! - [`tasks`]: the owner every spawned task has, waited for at shutdown;
//! - [`telemetry`]: logs and OpenTelemetry export;
//! - [`shutdown`]: one cancellation token for SIGINT and SIGTERM, and the drain;
//! - [`time`]: the contracts' milliseconds and the tables' timestamps, converted in one place.

pub mod batching;
pub mod config_registry;
pub mod database;
pub mod grpc;
pub mod live;
pub mod log_records;
pub mod metrics;
pub mod secrets;
pub mod settings;
pub mod shutdown;
pub mod tasks;
pub mod telemetry;
pub mod time;

pub use time::now_ms;
