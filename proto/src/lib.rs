//! The protobuf contracts shared by every gemini-balance service, compiled once, with what two
//! services share about them: each service's error type beside its contract, one error-code
//! table ([`error`]), the outcome classes of an upstream attempt.
//!
//! Each service module includes the code generated for its package (`v1`); the file descriptor
//! set serves gRPC server reflection.

pub mod chat;
pub mod config;
pub mod error;
pub mod files;
pub mod keys;
pub mod logging;

/// Every message and service of this crate, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("gemini_balance_descriptor");
