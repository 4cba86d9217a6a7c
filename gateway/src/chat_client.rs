//! The chat contract across processes: a gRPC client behind the contract's own trait, so that
//! the handlers call `gb_proto::chat::Chat` the same way whether the chat service runs in this
//! process (the all-in-one mode hands the service itself) or behind `CHAT_URL`.

use gb_proto::chat::v1 as pb;
use gb_proto::chat::v1::chat_service_client::ChatServiceClient;
use gb_proto::chat::v1::chat_service_server::ChatService;
use gb_proto::chat::{Chat, ChunkStream};
use gb_runtime::grpc::GrpcChannel;
use tonic::{Request, Response, Status};

/// Bodies may carry inline media: as large as the gateway accepts.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

struct RemoteChat(ChatServiceClient<GrpcChannel>);

/// The chat service behind `channel`.
pub fn remote(channel: GrpcChannel) -> Chat {
    Chat::new(RemoteChat(
        ChatServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE),
    ))
}

/// The impl, each unary method the client's call and each stream the client's, boxed.
macro_rules! remote {
    (
        unary { $($unary:ident($unary_request:ty) -> $unary_response:ty;)* }
        streams { $($stream:ident($stream_request:ty);)* }
    ) => {
        #[tonic::async_trait]
        impl ChatService for RemoteChat {
            type StreamGenerateContentStream = ChunkStream;
            type StreamOpenAiStream = ChunkStream;
            $(
                async fn $unary(&self, request: Request<$unary_request>) -> Result<Response<$unary_response>, Status> {
                    self.0.clone().$unary(request).await
                }
            )*
            $(
                async fn $stream(&self, request: Request<$stream_request>) -> Result<Response<ChunkStream>, Status> {
                    let stream = self.0.clone().$stream(request).await?;
                    Ok(stream.map(|chunks| Box::pin(chunks) as ChunkStream))
                }
            )*
        }
    };
}

remote! {
    unary {
        generate_content(pb::GeminiRequest) -> pb::GeminiResponse;
        count_tokens(pb::GeminiRequest) -> pb::GeminiResponse;
        embed_content(pb::GeminiRequest) -> pb::GeminiResponse;
        batch_embed_contents(pb::GeminiRequest) -> pb::GeminiResponse;
        list_models(pb::ListModelsRequest) -> pb::GeminiResponse;
        get_model(pb::GetModelRequest) -> pb::GeminiResponse;
        chat(pb::ChatRequest) -> pb::ChatResponse;
        predict(pb::GeminiRequest) -> pb::GeminiResponse;
        forward_open_ai(pb::OpenAiRequest) -> pb::GeminiResponse;
        delete_upstream_files(pb::DeleteUpstreamFilesRequest) -> pb::DeleteUpstreamFilesResponse;
        check_proxies(pb::CheckProxiesRequest) -> pb::CheckProxiesResponse;
    }
    streams {
        stream_generate_content(pb::GeminiRequest);
        stream_open_ai(pb::OpenAiRequest);
    }
}
