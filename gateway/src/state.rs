//! What every route handler shares: the service clients and the token checks. No business state.

use std::sync::Arc;

use gb_proto::chat::v1::chat_service_client::ChatServiceClient;
use gb_proto::keys::v1::keys_service_client::KeysServiceClient;
use gb_runtime::grpc::GrpcChannel;

use crate::auth::Auth;

#[derive(Clone)]
pub struct GatewayState {
    pub chat: ChatServiceClient<GrpcChannel>,
    pub keys: KeysServiceClient<GrpcChannel>,
    pub auth: Arc<Auth>,
}

impl GatewayState {
    pub fn new(chat: GrpcChannel, keys: GrpcChannel, auth: Auth) -> Self {
        const MAX_MESSAGE: usize = 64 * 1024 * 1024;
        GatewayState {
            chat: ChatServiceClient::new(chat)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
            keys: KeysServiceClient::new(keys),
            auth: Arc::new(auth),
        }
    }
}
