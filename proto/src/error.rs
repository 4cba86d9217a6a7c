//! One table of error codes, for every service and for the gateway on the way back.
//!
//! Each code has one gRPC code, one HTTP status and one Google `status` string; services turn
//! their errors into a `tonic::Status` through [`ServiceError::error_code`], and the gateway maps
//! a status back to HTTP through the same table. Google's error JSON is built here, once.

use tonic::Code;

/// What kind of failure an error is, whatever service it comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidArgument,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    MethodNotAllowed,
    AlreadyExists,
    FailedPrecondition,
    TooLarge,
    RateLimited,
    Cancelled,
    Internal,
    Unimplemented,
    BadGateway,
    Unavailable,
    Timeout,
}

/// The table: code, gRPC code, HTTP status, Google's `status` string. Where two rows share a
/// gRPC code or an HTTP status, the first one is the way back.
const TABLE: &[(ErrorCode, Code, u16, &str)] = &[
    (
        ErrorCode::InvalidArgument,
        Code::InvalidArgument,
        400,
        "INVALID_ARGUMENT",
    ),
    (
        ErrorCode::Unauthenticated,
        Code::Unauthenticated,
        401,
        "UNAUTHENTICATED",
    ),
    (
        ErrorCode::PermissionDenied,
        Code::PermissionDenied,
        403,
        "PERMISSION_DENIED",
    ),
    (ErrorCode::NotFound, Code::NotFound, 404, "NOT_FOUND"),
    (
        ErrorCode::MethodNotAllowed,
        Code::FailedPrecondition,
        405,
        "FAILED_PRECONDITION",
    ),
    (
        ErrorCode::AlreadyExists,
        Code::AlreadyExists,
        409,
        "ALREADY_EXISTS",
    ),
    (
        ErrorCode::FailedPrecondition,
        Code::FailedPrecondition,
        400,
        "FAILED_PRECONDITION",
    ),
    (
        ErrorCode::RateLimited,
        Code::ResourceExhausted,
        429,
        "RESOURCE_EXHAUSTED",
    ),
    (
        ErrorCode::TooLarge,
        Code::ResourceExhausted,
        413,
        "RESOURCE_EXHAUSTED",
    ),
    (ErrorCode::Cancelled, Code::Cancelled, 499, "CANCELLED"),
    (ErrorCode::Internal, Code::Internal, 500, "INTERNAL"),
    (
        ErrorCode::Unimplemented,
        Code::Unimplemented,
        501,
        "UNIMPLEMENTED",
    ),
    (
        ErrorCode::Unavailable,
        Code::Unavailable,
        503,
        "UNAVAILABLE",
    ),
    (ErrorCode::BadGateway, Code::Unavailable, 502, "UNAVAILABLE"),
    (
        ErrorCode::Timeout,
        Code::DeadlineExceeded,
        504,
        "DEADLINE_EXCEEDED",
    ),
];

fn row(code: ErrorCode) -> (Code, u16, &'static str) {
    TABLE
        .iter()
        .find(|(candidate, ..)| *candidate == code)
        .map_or(
            (Code::Internal, 500, "INTERNAL"),
            |(_, grpc, http, google)| (*grpc, *http, google),
        )
}

impl ErrorCode {
    pub fn grpc(self) -> Code {
        row(self).0
    }

    pub fn http(self) -> u16 {
        row(self).1
    }

    /// Google's `status` string, as in `{"error":{"status": …}}`.
    pub fn google_status(self) -> &'static str {
        row(self).2
    }

    /// The code of an HTTP status: an exact row, else the class (other 4xx: a failed
    /// precondition; anything else: internal).
    pub fn from_http(status: u16) -> Self {
        if let Some((code, ..)) = TABLE.iter().find(|(_, _, http, _)| *http == status) {
            return *code;
        }
        match status {
            400..=499 => ErrorCode::FailedPrecondition,
            _ => ErrorCode::Internal,
        }
    }

    /// The code of a gRPC code (the codes no service sends fold into their nearest row).
    pub fn from_grpc(grpc: Code) -> Self {
        if let Some((code, ..)) = TABLE.iter().find(|(_, candidate, ..)| *candidate == grpc) {
            return *code;
        }
        match grpc {
            Code::OutOfRange => ErrorCode::InvalidArgument,
            Code::Aborted => ErrorCode::AlreadyExists,
            _ => ErrorCode::Internal,
        }
    }
}

/// An error of one service: which code of the table it is. Its `Display` is the message.
pub trait ServiceError: std::error::Error {
    fn error_code(&self) -> ErrorCode;
}

/// A service error as a gRPC status: the table's code, the error's message.
pub fn status_of(error: &impl ServiceError) -> tonic::Status {
    tonic::Status::new(error.error_code().grpc(), error.to_string())
}

/// `{"error":{"code","message","status"}}`, Google's error shape, for an HTTP status.
pub fn google_error_json(http_status: u16, message: &str) -> bytes::Bytes {
    let status = ErrorCode::from_http(http_status).google_status();
    let body = serde_json::json!({
        "error": {"code": http_status, "message": message, "status": status}
    });
    bytes::Bytes::from(body.to_string())
}

/// `impl From<$error> for tonic::Status` through the table, for each service's error enum.
macro_rules! into_status {
    ($error:ty) => {
        impl From<$error> for tonic::Status {
            fn from(error: $error) -> Self {
                $crate::error::status_of(&error)
            }
        }
    };
}
pub(crate) use into_status;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_statuses_round_trip() {
        for status in [400, 401, 403, 404, 409, 413, 429, 500, 501, 502, 503, 504] {
            assert_eq!(ErrorCode::from_http(status).http(), status, "{status}");
        }
        for code in [
            Code::InvalidArgument,
            Code::Unauthenticated,
            Code::NotFound,
            Code::ResourceExhausted,
            Code::Unavailable,
            Code::DeadlineExceeded,
        ] {
            assert_eq!(ErrorCode::from_grpc(code).grpc(), code, "{code:?}");
        }
        assert_eq!(ErrorCode::from_grpc(Code::ResourceExhausted).http(), 429);
        assert_eq!(ErrorCode::from_grpc(Code::Unavailable).http(), 503);
        assert_eq!(ErrorCode::from_http(418), ErrorCode::FailedPrecondition);
    }

    #[test]
    fn google_errors_are_json_with_the_status_of_the_table() {
        let body = google_error_json(429, "slow \"down\"\n");
        let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        assert_eq!(
            parsed,
            serde_json::json!({"error": {"code": 429, "message": "slow \"down\"\n", "status": "RESOURCE_EXHAUSTED"}})
        );
    }
}
