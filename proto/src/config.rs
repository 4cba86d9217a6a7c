//! The config service's contract and its errors.

pub mod v1 {
    tonic::include_proto!("gemini_balance.config.v1");
}

use crate::error::{ErrorCode, ServiceError, into_status};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown setting {0}")]
    UnknownSetting(String),
    /// A value refused; the message names the setting.
    #[error("{0}")]
    InvalidSetting(String),
    #[error("no settings given")]
    NothingGiven,
    #[error("{message}")]
    Database { code: ErrorCode, message: String },
}

pub type ConfigResult<T> = Result<T, ConfigError>;

impl ServiceError for ConfigError {
    fn error_code(&self) -> ErrorCode {
        match self {
            ConfigError::UnknownSetting(_) => ErrorCode::NotFound,
            ConfigError::InvalidSetting(_) | ConfigError::NothingGiven => {
                ErrorCode::InvalidArgument
            }
            ConfigError::Database { code, .. } => *code,
        }
    }
}

into_status!(ConfigError);
