//! The protobuf contracts shared by every gemini-balance service, compiled once.
//!
//! Each module includes the code generated for one service package; the file descriptor set
//! serves gRPC server reflection.

pub mod chat {
    pub mod v1 {
        tonic::include_proto!("gemini_balance.chat.v1");
    }
}

pub mod keys {
    pub mod v1 {
        tonic::include_proto!("gemini_balance.keys.v1");
    }
}

pub mod config {
    pub mod v1 {
        tonic::include_proto!("gemini_balance.config.v1");
    }
}

pub mod logging {
    pub mod v1 {
        tonic::include_proto!("gemini_balance.logging.v1");
    }
}

/// Every message and service of this crate, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("gemini_balance_descriptor");
