//! The chat contract served in the same process (the all-in-one mode): the gateway calls the
//! service's handlers directly, with no protobuf encoding, no framing and no copy of a body.
//! Each call still gets the span and the metrics an RPC gets (`grpc::direct_call`), so traces
//! and dashboards read the same in both run modes; the admin-token check has no boundary to
//! guard here.

use gb_proto::chat::ChunkStream;
use gb_proto::chat::v1 as pb;
use gb_proto::chat::v1::chat_service_server::{ChatService, SERVICE_NAME};
use gb_runtime::grpc::direct_call;
use tonic::{Request, Response, Status};

use crate::ChatGrpc;

/// [`ChatGrpc`] behind the contract's trait, each call spanned and counted as an RPC.
pub struct DirectChat(pub ChatGrpc);

/// The contract's impl: each method the same call on the handlers, as `Service/Method` (the
/// whole impl, so that `async_trait` sees the methods).
macro_rules! direct {
    ($($method:ident($request:ty) -> $response:ty, $name:literal;)*) => {
        #[tonic::async_trait]
        impl ChatService for DirectChat {
            type StreamGenerateContentStream = ChunkStream;
            type StreamOpenAiStream = ChunkStream;
            $(
                async fn $method(&self, request: Request<$request>) -> Result<Response<$response>, Status> {
                    direct_call(SERVICE_NAME, $name, self.0.$method(request)).await
                }
            )*
        }
    };
}

direct! {
    generate_content(pb::GeminiRequest) -> pb::GeminiResponse, "GenerateContent";
    stream_generate_content(pb::GeminiRequest) -> ChunkStream, "StreamGenerateContent";
    count_tokens(pb::GeminiRequest) -> pb::GeminiResponse, "CountTokens";
    embed_content(pb::GeminiRequest) -> pb::GeminiResponse, "EmbedContent";
    batch_embed_contents(pb::GeminiRequest) -> pb::GeminiResponse, "BatchEmbedContents";
    list_models(pb::ListModelsRequest) -> pb::GeminiResponse, "ListModels";
    get_model(pb::GetModelRequest) -> pb::GeminiResponse, "GetModel";
    chat(pb::ChatRequest) -> pb::ChatResponse, "Chat";
    predict(pb::GeminiRequest) -> pb::GeminiResponse, "Predict";
    forward_open_ai(pb::OpenAiRequest) -> pb::GeminiResponse, "ForwardOpenAi";
    stream_open_ai(pb::OpenAiRequest) -> ChunkStream, "StreamOpenAi";
    delete_upstream_files(pb::DeleteUpstreamFilesRequest) -> pb::DeleteUpstreamFilesResponse, "DeleteUpstreamFiles";
    check_proxies(pb::CheckProxiesRequest) -> pb::CheckProxiesResponse, "CheckProxies";
}
