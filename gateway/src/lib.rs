//! The gateway: the HTTP front of gemini-balance. It authenticates callers, translates each
//! client family's HTTP into gRPC calls on the services and back, and holds no business state.
//!
//! The crate also holds the [`launcher`], which starts the services in either run mode; the
//! `gemini-balance` binary is its command line.

pub mod auth;
mod config_routes;
pub mod errors;
mod gemini_routes;
mod key_admin_routes;
pub mod launcher;
mod logs_routes;
pub mod openai;
pub mod request_log;
mod router;
mod simple_chat_routes;
pub mod state;
mod stats_routes;

pub use router::router;
