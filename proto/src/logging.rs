//! The logging service's contract and its errors.

pub mod v1 {
    tonic::include_proto!("gemini_balance.logging.v1");
}

use crate::error::{ErrorCode, ServiceError, into_status};

#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("no error log {0}")]
    NoErrorLog(i64),
    #[error("no error log of this key near that time")]
    NoErrorLogNear,
    #[error("no stored response {0:?}")]
    NoResponse(String),
    #[error("{0} is required")]
    Required(&'static str),
    #[error(
        "sort_by: {0:?} is not one of id, request_time, error_code, model_name, error_type, gemini_key"
    )]
    UnknownSort(String),
    #[error("width_s {0}: expected 60, 3600 or 86400")]
    UnknownWidth(u32),
    #[error("{message}")]
    Database { code: ErrorCode, message: String },
}

pub type LoggingResult<T> = Result<T, LoggingError>;

impl ServiceError for LoggingError {
    fn error_code(&self) -> ErrorCode {
        match self {
            LoggingError::NoErrorLog(_)
            | LoggingError::NoErrorLogNear
            | LoggingError::NoResponse(_) => ErrorCode::NotFound,
            LoggingError::Required(_)
            | LoggingError::UnknownSort(_)
            | LoggingError::UnknownWidth(_) => ErrorCode::InvalidArgument,
            LoggingError::Database { code, .. } => *code,
        }
    }
}

into_status!(LoggingError);
