//! The gateway: the HTTP front of gemini-balance. It authenticates callers, translates each
//! client family's HTTP into gRPC calls on the services and back, and holds no business state.
//! It knows the services only by their contracts (`gb-proto`); the launcher (`gb-launcher`)
//! hands it channels to them and a bound listener ([`serve`]).

pub mod anthropic;
pub mod auth;
mod body;
pub mod chat_client;
mod config_routes;
mod console;
pub mod errors;
mod files;
mod gemini_body;
mod gemini_routes;
mod guards;
mod head_limits;
pub mod json_limits;
mod key_admin_routes;
mod logs_routes;
mod managed_tokens;
pub mod openai;
pub mod request_log;
mod router;
mod serve;
mod simple_chat_routes;
pub mod state;
mod stats_routes;
mod token_routes;

pub use router::router;
pub use serve::{ConnectionLimits, serve};
