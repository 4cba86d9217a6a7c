//! The keys service's contract, its errors, and the outcome classes of an upstream attempt
//! (one definition, used by the chat service's reports, the pool and the logs).

pub mod v1 {
    tonic::include_proto!("gemini_balance.keys.v1");
}

use crate::error::{ErrorCode, ServiceError, into_status};

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("a key id or value is required")]
    KeyRequired,
    #[error("no such key")]
    NoSuchKey,
    #[error("key_value must be a non-empty key without spaces")]
    InvalidKeyValue,
    #[error("this key is already in the pool")]
    AlreadyInPool,
    #[error("no such client token")]
    NoSuchClientToken,
    #[error("{0}")]
    InvalidClientToken(String),
    #[error("{message}")]
    Database { code: ErrorCode, message: String },
}

pub type KeysResult<T> = Result<T, KeysError>;

impl ServiceError for KeysError {
    fn error_code(&self) -> ErrorCode {
        match self {
            KeysError::KeyRequired
            | KeysError::InvalidKeyValue
            | KeysError::InvalidClientToken(_) => ErrorCode::InvalidArgument,
            KeysError::NoSuchKey | KeysError::NoSuchClientToken => ErrorCode::NotFound,
            KeysError::AlreadyInPool => ErrorCode::AlreadyExists,
            KeysError::Database { code, .. } => *code,
        }
    }
}

into_status!(KeysError);

impl v1::OutcomeClass {
    /// The outcome's name in logs, metrics and the statistics API.
    pub fn label(self) -> &'static str {
        match self {
            v1::OutcomeClass::Unspecified => "unspecified",
            v1::OutcomeClass::Success => "success",
            v1::OutcomeClass::ClientError => "client_error",
            v1::OutcomeClass::DeadKey => "dead_key",
            v1::OutcomeClass::Quota => "quota",
            v1::OutcomeClass::Transient => "transient",
        }
    }

    /// The class a stored label names; `None` for a label that is not one.
    pub fn from_label(label: &str) -> Option<Self> {
        [
            v1::OutcomeClass::Success,
            v1::OutcomeClass::ClientError,
            v1::OutcomeClass::DeadKey,
            v1::OutcomeClass::Quota,
            v1::OutcomeClass::Transient,
        ]
        .into_iter()
        .find(|class| class.label() == label)
    }
}

#[cfg(test)]
mod tests {
    use super::v1::OutcomeClass;

    #[test]
    fn labels_round_trip() {
        for class in [
            OutcomeClass::Success,
            OutcomeClass::ClientError,
            OutcomeClass::DeadKey,
            OutcomeClass::Quota,
            OutcomeClass::Transient,
        ] {
            assert_eq!(OutcomeClass::from_label(class.label()), Some(class));
        }
        assert_eq!(OutcomeClass::from_label("unspecified"), None);
    }
}
