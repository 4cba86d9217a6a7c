//! The files service's contract and its errors.

pub mod v1 {
    tonic::include_proto!("gemini_balance.files.v1");
}

use crate::error::{ErrorCode, ServiceError, into_status};

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// Unknown, or another client's (the same answer: a file's existence is not disclosed).
    #[error("no file {0}")]
    NotFound(String),
    #[error("no upload session {0}")]
    SessionNotFound(String),
    #[error("the file is over the {max_mb} MB limit (FILES_MAX_SIZE_MB)")]
    TooLarge { max_mb: u64 },
    #[error("{0}")]
    InvalidArgument(String),
    /// A resumable upload's chunk that does not start where the received bytes end.
    #[error("the chunk starts at {given}, the session has received {received} bytes")]
    WrongOffset { given: i64, received: i64 },
    #[error("the upload session {0} has been cancelled or finalized")]
    SessionClosed(String),
    /// The object store failed.
    #[error("file storage: {0}")]
    Storage(String),
    #[error("{message}")]
    Database { code: ErrorCode, message: String },
}

pub type FilesResult<T> = Result<T, FilesError>;

impl ServiceError for FilesError {
    fn error_code(&self) -> ErrorCode {
        match self {
            FilesError::NotFound(_) | FilesError::SessionNotFound(_) => ErrorCode::NotFound,
            FilesError::TooLarge { .. } => ErrorCode::TooLarge,
            FilesError::InvalidArgument(_) => ErrorCode::InvalidArgument,
            FilesError::WrongOffset { .. } | FilesError::SessionClosed(_) => {
                ErrorCode::FailedPrecondition
            }
            FilesError::Storage(_) => ErrorCode::Unavailable,
            FilesError::Database { code, .. } => *code,
        }
    }
}

into_status!(FilesError);
