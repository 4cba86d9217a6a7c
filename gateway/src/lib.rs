//! The gateway: the HTTP front of gemini-balance. It authenticates callers, translates each
//! client family's HTTP into gRPC calls on the services and back, and holds no business state.
//!
//! The crate also holds the [`launcher`], which starts the services in either run mode; the
//! `gemini-balance` binary is its command line.

pub mod auth;
pub mod errors;
mod gemini_routes;
mod key_admin_routes;
pub mod launcher;
pub mod openai;
mod router;
mod simple_chat_routes;
pub mod state;

pub use router::router;
