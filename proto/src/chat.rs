//! The chat service's contract and its error: a failed call carries the HTTP status and the
//! Google-shaped body the client should get (the upstream's own when it answered) in the
//! status details, so that a 429 stays a 429 on every route.

pub mod v1 {
    tonic::include_proto!("gemini_balance.chat.v1");
}

use bytes::Bytes;
use prost::Message;

use crate::error::{ErrorCode, ServiceError, google_error_json};

/// A failed chat call, as the client should see it.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct ChatError {
    pub http_status: u16,
    /// Google's error JSON: the upstream's own body (key values masked) or one made here.
    pub body: Bytes,
    pub retry_after_seconds: Option<u32>,
    pub message: String,
    /// The body's content type when it is not JSON.
    pub content_type: Option<String>,
}

pub type ChatResult<T> = Result<T, ChatError>;

/// A server stream of the chat contract, as its service yields it and its callers read it.
pub type ChunkStream = std::pin::Pin<
    Box<
        dyn tonic::codegen::tokio_stream::Stream<Item = Result<v1::GeminiChunk, tonic::Status>>
            + Send,
    >,
>;

/// The chat contract as its callers hold it: the service itself in the same process (no
/// encoding, no copy of a body), or a gRPC client behind the same trait across processes. Its
/// methods take what a generated client's take (a message or a `Request`).
#[derive(Clone)]
pub struct Chat(
    std::sync::Arc<
        dyn v1::chat_service_server::ChatService<
                StreamGenerateContentStream = ChunkStream,
                StreamOpenAiStream = ChunkStream,
            >,
    >,
);

/// The client-style methods of [`Chat`], each the trait's.
macro_rules! chat_calls {
    ($($method:ident($request:ty) -> $response:ty;)*) => {
        impl Chat {
            pub fn new(
                service: impl v1::chat_service_server::ChatService<
                    StreamGenerateContentStream = ChunkStream,
                    StreamOpenAiStream = ChunkStream,
                >,
            ) -> Self {
                Chat(std::sync::Arc::new(service))
            }
            $(
                pub async fn $method(
                    &self,
                    request: impl tonic::IntoRequest<$request>,
                ) -> Result<tonic::Response<$response>, tonic::Status> {
                    self.0.$method(request.into_request()).await
                }
            )*
        }
    };
}

chat_calls! {
    generate_content(v1::GeminiRequest) -> v1::GeminiResponse;
    stream_generate_content(v1::GeminiRequest) -> ChunkStream;
    count_tokens(v1::GeminiRequest) -> v1::GeminiResponse;
    embed_content(v1::GeminiRequest) -> v1::GeminiResponse;
    batch_embed_contents(v1::GeminiRequest) -> v1::GeminiResponse;
    list_models(v1::ListModelsRequest) -> v1::GeminiResponse;
    get_model(v1::GetModelRequest) -> v1::GeminiResponse;
    chat(v1::ChatRequest) -> v1::ChatResponse;
    predict(v1::GeminiRequest) -> v1::GeminiResponse;
    forward_open_ai(v1::OpenAiRequest) -> v1::GeminiResponse;
    stream_open_ai(v1::OpenAiRequest) -> ChunkStream;
    delete_upstream_files(v1::DeleteUpstreamFilesRequest) -> v1::DeleteUpstreamFilesResponse;
    check_proxies(v1::CheckProxiesRequest) -> v1::CheckProxiesResponse;
}

impl ChatError {
    /// An error of the chat service's own making (a refused model, an empty message).
    pub fn local(http_status: u16, message: impl Into<String>) -> Self {
        let message = message.into();
        ChatError {
            http_status,
            body: google_error_json(http_status, &message),
            retry_after_seconds: None,
            message,
            content_type: None,
        }
    }
}

impl ServiceError for ChatError {
    fn error_code(&self) -> ErrorCode {
        ErrorCode::from_http(self.http_status)
    }
}

impl From<ChatError> for tonic::Status {
    fn from(error: ChatError) -> Self {
        let details = v1::UpstreamError {
            http_status: u32::from(error.http_status),
            body: error.body.clone(),
            retry_after_seconds: error.retry_after_seconds,
            content_type: error.content_type.clone(),
        };
        tonic::Status::with_details(
            error.error_code().grpc(),
            error.message,
            Bytes::from(details.encode_to_vec()),
        )
    }
}

/// The upstream's status and body carried by a failed call's status, if any.
pub fn upstream_error(status: &tonic::Status) -> Option<v1::UpstreamError> {
    if status.details().is_empty() {
        return None;
    }
    v1::UpstreamError::decode(status.details()).ok()
}

/// The HTTP status a failed call means: the upstream's own when the status carries it, else
/// the table's for the gRPC code.
pub fn http_status(status: &tonic::Status) -> u16 {
    upstream_error(status)
        .and_then(|upstream| u16::try_from(upstream.http_status).ok())
        .filter(|code| (400..=599).contains(code))
        .unwrap_or_else(|| ErrorCode::from_grpc(status.code()).http())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upstream_status_survives_the_round_trip() {
        let mut error = ChatError::local(429, "slow down");
        error.retry_after_seconds = Some(7);
        let status = tonic::Status::from(error);
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(http_status(&status), 429);
        assert_eq!(
            upstream_error(&status).and_then(|upstream| upstream.retry_after_seconds),
            Some(7)
        );
        let plain = tonic::Status::not_found("no such thing");
        assert_eq!(http_status(&plain), 404);
        assert!(upstream_error(&plain).is_none());
    }
}
