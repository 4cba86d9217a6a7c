//! The Gemini API as the chat and keys services call it.
//!
//! - [`client`]: one pooled HTTP client per route out (direct or per proxy), keys placed where
//!   each endpoint wants them, a key→proxy mapping stable across restarts;
//! - [`failure`]: the classification of every failed attempt (the rules of the key pool).

pub mod client;
pub mod failure;

pub use client::{KeyPlacement, ProxyReach, Upstream, reach_through_proxy, stable_route_index};
pub use failure::{DEFAULT_COOLDOWN, FailureClass, QuotaHit, UpstreamFailure, classify};
