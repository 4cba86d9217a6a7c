//! What every route handler shares: the service clients and the token checks. No business state.

use std::sync::Arc;

use gb_proto::chat::v1::chat_service_client::ChatServiceClient;
use gb_proto::keys::v1::keys_service_client::KeysServiceClient;
use gb_runtime::grpc::GrpcChannel;

use gb_runtime::settings::Settings;

use crate::auth::Auth;
use crate::openai::media_fetch::MediaFetcher;

/// Settings of the translations the gateway does (speech, images, media URLs).
pub struct Translation {
    pub tts_model: String,
    pub tts_voice_name: String,
    pub tts_speed: String,
    pub create_image_model: String,
    pub show_search_link: bool,
    pub fake_stream_interval: Option<std::time::Duration>,
    pub media: MediaFetcher,
}

impl Translation {
    pub fn from_settings(settings: &Settings) -> Self {
        Translation {
            tts_model: settings.tts_model.clone(),
            tts_voice_name: settings.tts_voice_name.clone(),
            tts_speed: settings.tts_speed.clone(),
            create_image_model: settings.create_image_model.clone(),
            show_search_link: settings.show_search_link,
            fake_stream_interval: settings.fake_stream_interval,
            media: MediaFetcher::new(settings.fetch_private_urls),
        }
    }
}

#[derive(Clone)]
pub struct GatewayState {
    pub chat: ChatServiceClient<GrpcChannel>,
    pub keys: KeysServiceClient<GrpcChannel>,
    pub auth: Arc<Auth>,
    pub translation: Arc<Translation>,
}

impl GatewayState {
    pub fn new(chat: GrpcChannel, keys: GrpcChannel, auth: Auth, translation: Translation) -> Self {
        const MAX_MESSAGE: usize = 64 * 1024 * 1024;
        GatewayState {
            chat: ChatServiceClient::new(chat)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
            keys: KeysServiceClient::new(keys),
            auth: Arc::new(auth),
            translation: Arc::new(translation),
        }
    }
}
